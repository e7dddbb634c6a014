"""Closed-set re-identification metrics on L2-normalised embeddings (NumPy only).

Same protocol as ``wildid eval`` and the published anchors: every query is compared with every
database image of its species; top-1 is the identity of the nearest database image, top-5 ranks
identities by their best image. Also summarises the raw cosine scores of positive (same identity)
and negative pairs, which tells whether the scores can be fused with local-matching scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random positive pair scores above a random negative one (ties half)."""
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks of ties
    _, inv, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inv, ranks)
    ranks = (sums / counts)[inv]
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def evaluate(
    db: np.ndarray, db_ids: list[str], q: np.ndarray, q_ids: list[str], pairs: bool = False
) -> dict[str, Any]:
    """Top-1 / top-5 (per identity) / mAP of queries ``q`` against database ``db``."""
    sims = q @ db.T
    db_arr = np.asarray(db_ids)
    q_arr = np.asarray(q_ids)
    top1 = db_arr[sims.argmax(axis=1)] == q_arr

    idents = np.unique(db_arr)
    per_id = np.full((len(q_arr), len(idents)), -np.inf)
    for j, ident in enumerate(idents):
        per_id[:, j] = sims[:, db_arr == ident].max(axis=1)
    ranked = idents[np.argsort(-per_id, axis=1)]
    top5 = (ranked[:, :5] == q_arr[:, None]).any(axis=1)

    aps = []
    for i in range(len(q_arr)):
        rel = db_arr[np.argsort(-sims[i])] == q_arr[i]
        if rel.any():
            hits = np.cumsum(rel)
            aps.append(float((hits[rel] / (np.flatnonzero(rel) + 1)).mean()))
    out: dict[str, Any] = {
        "queries": int(len(q_arr)),
        "database": int(len(db_arr)),
        "identities": int(len(idents)),
        "top1": float(top1.mean()),
        "top5": float(top5.mean()),
        "mAP": float(np.mean(aps)) if aps else 0.0,
        # identity shortlist recall: is the right animal among the k best identities?
        "identity_recall": {
            str(k): float((ranked[:, :k] == q_arr[:, None]).any(axis=1).mean()) for k in (1, 5, 10, 20, 50)
        },
    }
    if pairs:
        same = q_arr[:, None] == db_arr[None, :]
        pos, neg = sims[same], sims[~same]
        best_pos = np.where(same, sims, -np.inf).max(axis=1)
        best_neg = np.where(~same, sims, -np.inf).max(axis=1)
        has_pos = np.isfinite(best_pos)
        out["pairs"] = {
            "positive": _summary(pos),
            "negative": _summary(neg),
            "auc": _auc(pos, neg),
            "best_positive_per_query": _summary(best_pos[has_pos]),
            "best_negative_per_query": _summary(best_neg),
        }
    return out


def _summary(x: np.ndarray) -> dict[str, float]:
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "p05": float(np.percentile(x, 5)),
        "p50": float(np.percentile(x, 50)),
        "p95": float(np.percentile(x, 95)),
    }
