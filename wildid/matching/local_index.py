"""One nearest-neighbour index over the local descriptors of *all* database annotations.

Why one index (HotSpotter): matching a query against every database descriptor at once finds the
right animal even when a global embedding would have dropped it from a shortlist, and the
distance to a farther neighbour tells how *distinctive* each match is (LNBNN: local naive-Bayes
nearest neighbour).  A query descriptor votes for the annotations of its ``k`` nearest
neighbours with weight ``d_norm - d_i``, where ``d_norm`` is the distance of the neighbour
ranked ``k + knorm``: a descriptor that matches a stripe end shared by many animals gets a small
weight, one that matches a single animal closely gets a large one.

Incremental updates without a full rebuild: the descriptors live in an inverted file
(:mod:`wildid.matching._ivf`): ``add`` appends rows to the lists of their nearest centroids,
``remove`` tombstones the annotation (its rows are skipped at once and dropped at the next
compaction).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from wildid.errors import MatchingError
from wildid.matching._ivf import IvfStore
from wildid.matching.features import LocalFeatures

__all__ = ["AnnotationMatches", "KnnResult", "LnbnnResult", "LocalIndex", "lnbnn_scores"]

# Most rows ``LocalIndex.add_many`` passes to the store at once: 64 MB as float32 (~65 nyala
# annotations), beyond which larger batches gained nothing measurable.
BATCH_ROWS = 131_072


@dataclass(frozen=True)
class KnnResult:
    """Neighbours of each query descriptor, nearest first (Euclidean distance)."""

    dist: np.ndarray  # (nq, k) float32, inf where fewer neighbours exist
    slot: np.ndarray  # (nq, k) int32 annotation slot (-1 where none)
    kp: np.ndarray  # (nq, k) int32 keypoint index inside that annotation


@dataclass(frozen=True)
class AnnotationMatches:
    """Putative correspondences with one database annotation (one row per query keypoint)."""

    query_idx: np.ndarray  # (m,) int32 keypoint index in the query
    db_idx: np.ndarray  # (m,) int32 keypoint index in the database annotation
    weight: np.ndarray  # (m,) float32 LNBNN weight of each correspondence


@dataclass(frozen=True)
class LnbnnResult:
    """Per-annotation LNBNN scores (sum of the best vote of each query keypoint) and matches."""

    scores: dict[Hashable, float]
    matches: dict[Hashable, AnnotationMatches]

    def ranked(self) -> list[tuple[Hashable, float]]:
        return sorted(self.scores.items(), key=lambda kv: -kv[1])


def lnbnn_scores(knn: KnnResult, k: int, knorm: int = 1
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LNBNN votes from neighbour lists: (query_idx, slot, db_kp, weight), one per useful vote.

    A query keypoint votes at most once per annotation (its best neighbour there), so an animal
    with many near-identical photos does not win just by count of copies of one keypoint.
    """
    if knn.dist.shape[1] < k + knorm:
        raise MatchingError("not enough neighbours for LNBNN scoring")
    norm = knn.dist[:, k + knorm - 1:k + knorm]
    dist = knn.dist[:, :k]
    weight = norm - dist
    valid = np.isfinite(weight) & (weight > 0) & (knn.slot[:, :k] >= 0)
    # keypoints with fewer than k + knorm neighbours (tiny index): use the farthest one found
    short = ~np.isfinite(norm[:, 0])
    if short.any():
        finite = np.where(np.isfinite(knn.dist), knn.dist, -np.inf).max(axis=1)
        weight[short] = finite[short, None] - dist[short]
        valid[short] = np.isfinite(weight[short]) & (weight[short] > 0) & (knn.slot[short, :k] >= 0)
    q = np.broadcast_to(np.arange(dist.shape[0], dtype=np.int32)[:, None], dist.shape)[valid]
    slot, kp, w = knn.slot[:, :k][valid], knn.kp[:, :k][valid], weight[valid].astype(np.float32)
    if q.size == 0:
        return q, slot, kp, w
    # keep the best vote per (query keypoint, annotation); neighbours are sorted by distance so
    # the first occurrence of each pair is the best one
    pair = q.astype(np.int64) * (int(slot.max()) + 1) + slot
    _, first = np.unique(pair, return_index=True)
    first.sort()
    return q[first], slot[first], kp[first], w[first]


class LocalIndex:
    """kNN index over all database descriptors with LNBNN scoring and incremental updates.

    Keys are any hashable annotation ids.  ``nprobe`` trades speed for neighbour recall (see
    :mod:`wildid.matching._ivf`); ``nprobe >= n_lists`` searches exactly.
    """

    def __init__(self, k: int = 4, knorm: int = 1, nprobe: int = 6, list_rows: int = 2000,
                 train_rows: int = 40000, compact_dead: float = 0.3, seed: int = 0) -> None:
        self.k, self.knorm, self.nprobe = k, knorm, nprobe
        self.compact_dead = compact_dead
        self._store_args = dict(list_rows=list_rows, train_rows=train_rows, seed=seed)
        self._store: IvfStore | None = None
        self._slot_of: dict[Hashable, int] = {}
        self._key_of: dict[int, Hashable] = {}
        self._features: dict[int, LocalFeatures] = {}
        self._alive = np.zeros(0, bool)
        self._rows_of_slot = np.zeros(0, np.int64)
        self._dead_rows = 0

    # -- content ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    @property
    def n_descriptors(self) -> int:
        """Live descriptor rows (what a query searches)."""
        return int(self._rows_of_slot[self._alive].sum()) if len(self._alive) else 0

    @property
    def n_lists(self) -> int:
        return 0 if self._store is None else self._store.n_lists

    def features(self, key: Hashable) -> LocalFeatures:
        """Keypoint geometry of an indexed annotation (no descriptors: see :meth:`add`)."""
        return self._features[self._slot_of[key]]

    def keys(self) -> list[Hashable]:
        return list(self._slot_of)

    def add(self, key: Hashable, features: LocalFeatures) -> None:
        """Index the descriptors of one annotation (replacing any earlier entry for ``key``)."""
        self.add_many([(key, features)])

    def add_many(self, items: Iterable[tuple[Hashable, LocalFeatures]]) -> None:
        """Index many annotations, exactly as :meth:`add` one after the other would.

        Why batches: the rows of one annotation spread over hundreds of inverted lists, and
        appending them list by list per annotation was most of the time it takes to load a
        catalog's index (2,500 nyala annotations: 1.6 M appends, 16 of 41 s). Rows are passed
        to the store in batches of up to ``BATCH_ROWS``, each ending where the store would
        (re)train (:meth:`IvfStore.rows_before_training`), so the lists and every search
        result are those of one-at-a-time adding.
        """
        pending: list[tuple[int, np.ndarray]] = []  # (slot, descriptors) not yet in the store
        rows = 0
        try:
            for key, features in items:
                if key in self._slot_of:  # a replacement: the removal comes first, in order
                    self._flush(pending)
                    pending, rows = [], 0
                    self.remove(key)
                if len(features) and self._store is not None and features.dim != self._store.dim:
                    raise MatchingError(f"descriptor size {features.dim} does not match the "
                                        f"index ({self._store.dim}); features of another "
                                        "extractor?")
                slot = self._register(key, features)
                if not len(features):
                    continue
                if self._store is None:
                    self._store = IvfStore(features.dim, **self._store_args)  # type: ignore[arg-type]
                pending.append((slot, features.descriptors))
                rows += len(features)
                until = self._store.rows_before_training()
                if rows >= BATCH_ROWS or (until is not None and rows >= until):
                    self._flush(pending)
                    pending, rows = [], 0
        finally:  # what was registered gets its rows, even when a later item is refused
            self._flush(pending)
            if self._store is not None:
                self._store.settle()  # the lists written now, not at the first query

    def _register(self, key: Hashable, features: LocalFeatures) -> int:
        """A new slot for ``key``, keeping the geometry of its features; returns the slot."""
        slot = len(self._alive)
        self._alive = np.append(self._alive, True)
        self._rows_of_slot = np.append(self._rows_of_slot, len(features))
        self._slot_of[key], self._key_of[slot] = slot, key
        # Geometry only: the descriptors live (8-bit) in the store; a float32 copy per annotation
        # would be 4x the store's memory (5 GB at 10,000 annotations).
        self._features[slot] = replace(features, descriptors=np.zeros((len(features), 0), np.float32))
        return slot

    def _flush(self, pending: list[tuple[int, np.ndarray]]) -> None:
        """Pass registered annotations' rows to the store in one call."""
        if not pending:
            return
        assert self._store is not None
        desc = pending[0][1] if len(pending) == 1 else np.concatenate([d for _, d in pending])
        slot = np.concatenate([np.full(len(d), s, np.int32) for s, d in pending])
        kp = np.concatenate([np.arange(len(d), dtype=np.int32) for _, d in pending])
        self._store.add(desc, slot, kp)

    def remove(self, key: Hashable) -> None:
        """Forget an annotation: a tombstone now, rows dropped at the next compaction."""
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return
        del self._key_of[slot]
        self._features.pop(slot, None)
        self._alive[slot] = False
        self._dead_rows += int(self._rows_of_slot[slot])
        total = int(self._rows_of_slot.sum())
        if self._store is not None and self._dead_rows > self.compact_dead * max(total, 1):
            self._store.compact(self._alive)
            self._rows_of_slot[~self._alive] = 0
            self._dead_rows = 0

    # -- queries ------------------------------------------------------------------------------
    def knn(self, descriptors: np.ndarray, k: int, exclude_keys: Iterable[Hashable] = (),
            nprobe: int | None = None) -> KnnResult:
        """The ``k`` nearest live database descriptors of every query row."""
        q = np.ascontiguousarray(descriptors, dtype=np.float32)
        if self._store is None or len(q) == 0:
            empty = np.full((len(q), k), -1, np.int32)
            return KnnResult(np.full((len(q), k), np.inf, np.float32), empty, empty.copy())
        ok = self._alive.copy()
        for key in exclude_keys:
            slot = self._slot_of.get(key)
            if slot is not None:
                ok[slot] = False
        dist, slot, kp = self._store.search(q, k, nprobe or self.nprobe, ok)
        return KnnResult(dist, slot, kp)

    def query(self, features: LocalFeatures, exclude_keys: Iterable[Hashable] = (),
              k: int | None = None, knorm: int | None = None,
              descriptors: np.ndarray | None = None) -> LnbnnResult:
        """LNBNN score of every database annotation that got a vote, with its correspondences.

        ``descriptors`` replaces the query's own (e.g. their mirrored version) while keeping
        its keypoints.
        """
        k = self.k if k is None else k
        knorm = self.knorm if knorm is None else knorm
        desc = features.descriptors if descriptors is None else descriptors
        return self.score_knn(self.knn(desc, k + knorm, exclude_keys), k, knorm)

    def score_knn(self, knn: KnnResult, k: int, knorm: int) -> LnbnnResult:
        """Turn neighbour lists into per-annotation LNBNN scores and correspondences."""
        q, slot, kp, w = lnbnn_scores(knn, k, knorm)
        scores: dict[Hashable, float] = {}
        matches: dict[Hashable, AnnotationMatches] = {}
        if q.size == 0:
            return LnbnnResult(scores, matches)
        order = np.argsort(slot, kind="stable")
        q, slot, kp, w = q[order], slot[order], kp[order], w[order]
        starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
        ends = np.r_[starts[1:], len(slot)]
        sums = np.add.reduceat(w, starts)
        for a, b, total in zip(starts, ends, sums, strict=False):
            key = self._key_of.get(int(slot[a]))
            if key is None:
                continue
            scores[key] = float(total)
            matches[key] = AnnotationMatches(q[a:b], kp[a:b], w[a:b])
        return LnbnnResult(scores, matches)
