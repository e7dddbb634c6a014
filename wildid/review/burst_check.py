"""Whether an encounter's photos point at different known animals (a herd in one burst).

An import puts one camera's photos within the burst gap into one encounter. That is right for
one animal and wrong for a herd photographed animal after animal: confirming the encounter
then names every animal in it as one individual. Each photo of an encounter is matched on its
own and every candidate remembers the photo it came through (``query_annotation_id``), so
when two different individuals each clear the match threshold through two different photos,
the photos most likely show two animals and the reviewer should split the burst first (box
editor, "Own encounter").

Measured (2026-12-07; catalogs of nyala named from all their development database photos,
then their development query photos matched one by one and paired as two-photo bursts,
combined as the engine combines a burst's photos): with 12 nyala known, the check fired for
1 of 18 pairs of one nyala's photos and 157 of 258 pairs of two; with 40 known, 12 of 76 and
1,567 of 3,410. Those one-nyala pairs are photos of different days; a real burst's photos,
seconds apart, look more alike than that. A stricter line trades both alike (with 40 known:
scores of 0.5 and more 6 / 76 and 703 / 3,410; 0.6 3 / 76 and 409 / 3,410), so the check
keeps the verdict's own line: each animal named is one the encounter would call likely known.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["PhotoMatch", "different_animals"]


class _Candidate(Protocol):
    """What the check reads of a candidate: the review's ``CandidateView`` or the CLI's."""

    @property
    def individual_id(self) -> Hashable: ...

    @property
    def score(self) -> float: ...

    @property
    def query_annotation_id(self) -> str | None: ...


C = TypeVar("C", bound=_Candidate)


@dataclass(frozen=True)
class PhotoMatch(Generic[C]):
    """The strongest likely candidate that came through one photo of the encounter."""

    query_annotation_id: str
    candidate: C


def different_animals(candidates: Sequence[C], threshold: float | None) -> list[PhotoMatch[C]]:
    """Per photo, its strongest candidate at or above ``threshold``, best first, when at least
    two photos lead to different individuals; else an empty list (one animal, or nothing
    likely enough to say). Candidates without a recorded photo (synced from elsewhere) and an
    encounter without a threshold say nothing."""
    if threshold is None:
        return []
    best: dict[str, C] = {}
    for cand in candidates:
        q = cand.query_annotation_id
        if q is None or cand.score < threshold:
            continue
        if q not in best or cand.score > best[q].score:
            best[q] = cand
    if len({c.individual_id for c in best.values()}) < 2:
        return []
    return [PhotoMatch(q, c) for q, c in sorted(best.items(), key=lambda kv: -kv[1].score)]
