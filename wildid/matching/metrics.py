"""Evaluation metrics for identification, closed- and open-set.

Conventions (what ``wildid eval`` reports):

* **top-k** — a query is correct when its true individual is among the first ``k`` *individuals*
  of its ranking (a ranking lists each individual once, best first).
* **per-identity top-k** — the same, averaged first over the queries of each individual and then
  over individuals, so a few heavily photographed animals cannot dominate the number.
* **mAP** — mean over queries of the average precision of the ranked *database annotations*
  (every annotation of the true individual is relevant), the usual re-identification mAP.
* **BAKS / BAUS** (open set) — balanced accuracy on known and on unknown samples: a known query
  counts as correct when the top individual is its own and it was not declared new; an unknown
  query when it was declared new; each is averaged per individual, then over individuals.
* **AUROC** of the new-individual decision — probability that a random unknown query gets a
  lower best score than a random known one (ties count one half).
* **Reliability** of the shown scores — the candidates grouped by score band, and in each band
  how often the candidate was the right individual; the **calibration error** is the mean gap
  between a band's mean score and that rate, weighted by the band's candidates. A reviewer reads
  "70 %" as "right about seven times in ten": this says whether that holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = [
    "auroc",
    "average_precision",
    "calibration_error",
    "mean_average_precision",
    "open_set_accuracy",
    "per_identity_top_k",
    "rank_of_truth",
    "reliability",
    "top_k_accuracy",
]


def rank_of_truth(ranking: Sequence[Hashable], truth: Hashable) -> int | None:
    """1-based rank of ``truth`` among the distinct entries of ``ranking``; None if absent."""
    seen: set[Hashable] = set()
    for item in ranking:
        if item in seen:
            continue
        seen.add(item)
        if item == truth:
            return len(seen)
    return None


def _hits(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable], k: int) -> list[bool]:
    if len(rankings) != len(truths):
        raise ValueError("one ranking per query is needed")
    hits = []
    for ranking, truth in zip(rankings, truths, strict=False):
        r = rank_of_truth(ranking, truth)
        hits.append(r is not None and r <= k)
    return hits


def top_k_accuracy(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable],
                   k: int = 1) -> float:
    """Share of queries whose true individual is within the first ``k`` individuals."""
    hits = _hits(rankings, truths, k)
    return float(np.mean(hits)) if hits else 0.0


def per_identity_top_k(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable],
                       k: int = 1) -> float:
    """Top-k accuracy averaged within each true individual, then across individuals."""
    by_id: dict[Hashable, list[bool]] = defaultdict(list)
    for hit, truth in zip(_hits(rankings, truths, k), truths, strict=False):
        by_id[truth].append(hit)
    return float(np.mean([np.mean(v) for v in by_id.values()])) if by_id else 0.0


def average_precision(relevant: Sequence[bool], n_relevant: int | None = None) -> float:
    """AP of one ranked list: mean of precision@i at each relevant position i.

    ``n_relevant`` is the number of relevant items overall (defaults to those in the list);
    relevant items missing from a truncated list then count as precision 0.
    """
    rel = np.asarray(relevant, dtype=bool)
    total = int(rel.sum()) if n_relevant is None else int(n_relevant)
    if total == 0:
        return 0.0
    positions = np.flatnonzero(rel) + 1
    precisions = np.arange(1, len(positions) + 1) / positions
    return float(precisions.sum() / total)


def mean_average_precision(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable],
                           n_relevant: Sequence[int] | None = None) -> float:
    """mAP over queries; each ranking lists the *identities of ranked database annotations*."""
    aps = []
    for i, (ranking, truth) in enumerate(zip(rankings, truths, strict=False)):
        total = None if n_relevant is None else n_relevant[i]
        aps.append(average_precision([x == truth for x in ranking], total))
    return float(np.mean(aps)) if aps else 0.0


def open_set_accuracy(predicted: Sequence[Hashable | None], truths: Sequence[Hashable],
                      known: set[Hashable] | frozenset[Hashable]) -> tuple[float, float]:
    """(BAKS, BAUS) for predictions where None means "new individual".

    Queries whose truth is in ``known`` are known samples, the others unknown.  Returns NaN for
    a side with no samples.
    """
    known_hits: dict[Hashable, list[bool]] = defaultdict(list)
    unknown_hits: dict[Hashable, list[bool]] = defaultdict(list)
    for pred, truth in zip(predicted, truths, strict=False):
        if truth in known:
            known_hits[truth].append(pred is not None and pred == truth)
        else:
            unknown_hits[truth].append(pred is None)

    def balanced(groups: dict[Hashable, list[bool]]) -> float:
        return float(np.mean([np.mean(v) for v in groups.values()])) if groups else float("nan")

    return balanced(known_hits), balanced(unknown_hits)


# score bands of the reliability table: finer where most candidates are (few are shown high)
RELIABILITY_EDGES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


def reliability(scores: Sequence[float], right: Sequence[bool],
                edges: Sequence[float] = RELIABILITY_EDGES) -> list[dict[str, float]]:
    """Per score band ``[low, high)`` (the last one includes ``high``): the candidates in it
    (``n``), their mean score and the share that were the right individual; empty bands are
    left out. Scores outside the edges go to the nearest band."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(right, dtype=bool)
    if s.shape != y.shape:
        raise ValueError("scores and right must have the same length")
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("edges must be at least two increasing values")
    band = np.clip(np.searchsorted(e, s, side="right") - 1, 0, len(e) - 2)
    out = []
    for b in range(len(e) - 1):
        inside = band == b
        n = int(inside.sum())
        if n:
            out.append({"low": float(e[b]), "high": float(e[b + 1]), "n": n,
                        "mean_score": float(s[inside].mean()), "right": float(y[inside].mean())})
    return out


def calibration_error(bands: Sequence[dict[str, float]]) -> float:
    """Expected calibration error of a :func:`reliability` table: the bands' ``|mean score -
    share right|`` weighted by their candidates; NaN for an empty table."""
    total = sum(b["n"] for b in bands)
    if not total:
        return float("nan")
    return float(sum(b["n"] * abs(b["mean_score"] - b["right"]) for b in bands) / total)


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted one half); NaN if one class."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends, strict=False):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
