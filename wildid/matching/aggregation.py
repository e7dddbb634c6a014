"""From per-annotation scores to a ranking of individuals.

Why it matters: an individual with ten photos should not win only because it has ten chances,
and one with a single photo should not be buried.  Options:

* ``max`` — the best annotation speaks for the individual (robust default for raw scores).
* ``noisy_or`` — for calibrated probabilities: ``1 - prod(1 - p)`` over the individual's best
  ``top_n`` annotations, i.e. evidence from several independent photos adds up, with
  diminishing returns.  ``odds`` > 1 combines them at odds multiplied by it and divides the
  result's odds by it again: one annotation keeps its probability, and a second or third
  photo that also matches adds more than plain noisy-or lets it (plain noisy-or of small
  probabilities is nearly their sum, which a single strong chance match outweighs).
* ``name_scores`` — HotSpotter's "nsum" for LNBNN votes: every query keypoint gives an individual
  at most its best vote over all of that individual's annotations, then votes are summed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import numpy as np

from wildid.errors import MatchingError

__all__ = ["IndividualScore", "aggregate", "name_scores"]


@dataclass(frozen=True)
class IndividualScore:
    """Aggregated score of one individual and the annotation that contributed most."""

    individual_id: Hashable
    score: float
    best_key: Hashable


def aggregate(scores: Mapping[Hashable, float], individual_of: Callable[[Hashable], Hashable]
              | Mapping[Hashable, Hashable], method: str = "max",
              top_n: int = 3, odds: float = 1.0) -> list[IndividualScore]:
    """Rank individuals from annotation scores; best first (ties keep a stable order).
    ``odds``: noisy-or's odds factor (see the module docstring)."""
    if not odds > 0:
        raise MatchingError(f"aggregation odds must be positive, not {odds!r}")
    lookup = individual_of.__getitem__ if isinstance(individual_of, Mapping) else individual_of
    groups: dict[Hashable, list[tuple[float, Hashable]]] = defaultdict(list)
    for key, s in scores.items():
        groups[lookup(key)].append((float(s), key))
    out = []
    for ind, members in groups.items():
        members.sort(key=lambda sk: -sk[0])
        best_score, best_key = members[0]
        if method == "max":
            value = best_score
        elif method == "noisy_or":
            # plain floats: NumPy's per-call cost on lists of two or three, over the ~1,700
            # individuals a 10,000-annotation catalog puts here, was 26 ms of each query
            keep = 1.0
            for s, _ in members[:top_n]:
                s = min(max(s, 0.0), 1.0)
                keep *= 1.0 - s if odds == 1.0 else 1.0 / (1.0 + odds * s / max(1.0 - s, 1e-12))
            value = 1.0 - keep
            if odds != 1.0:
                # back to the annotations' scale: the result's odds divided by the factor
                scaled = value / max(keep, 1e-300) / odds
                value = scaled / (1.0 + scaled)
        elif method == "sum_top":
            value = float(sum(s for s, _ in members[:top_n]))
        else:
            raise MatchingError(f"unknown aggregation {method!r}")
        out.append(IndividualScore(ind, value, best_key))
    out.sort(key=lambda x: -x.score)
    return out


def name_scores(query_idx: Mapping[Hashable, np.ndarray], weights: Mapping[Hashable, np.ndarray],
                individual_of: Callable[[Hashable], Hashable] | Mapping[Hashable, Hashable]
                ) -> dict[Hashable, float]:
    """Per-individual LNBNN score: each query keypoint counts once per individual (its best).

    ``query_idx[key]`` and ``weights[key]`` are the query keypoints that voted for annotation
    ``key`` and their weights (as in :class:`~wildid.matching.local_index.AnnotationMatches`).
    """
    lookup = individual_of.__getitem__ if isinstance(individual_of, Mapping) else individual_of
    per_ind: dict[Hashable, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for key, q in query_idx.items():
        per_ind[lookup(key)].append((np.asarray(q), np.asarray(weights[key], np.float64)))
    out: dict[Hashable, float] = {}
    for ind, parts in per_ind.items():
        q = np.concatenate([p[0] for p in parts])
        w = np.concatenate([p[1] for p in parts])
        if q.size == 0:
            out[ind] = 0.0
            continue
        best = np.full(int(q.max()) + 1, 0.0)
        np.maximum.at(best, q, w)
        out[ind] = float(best.sum())
    return out
