"""In-memory identification engine: local index + verification + fusion + aggregation.

The pipeline for one query (see DESIGN.md §4 for the measurements behind it):

1. **Candidates with high recall** — LNBNN over one index of *all* database descriptors
   (a global ImageNet shortlist lost the right animal too often), plus, when the query has a
   global embedding, the global top ``global_shortlist`` (a union, never a filter).  With SIFT,
   the mirrored query descriptors vote too (a lion's face seen from the other side).
2. **Spatial verification** of the ``shortlist`` best annotations: the LNBNN correspondences are
   checked for one consistent similarity transform; the inliers' summed weight is a score and
   the inliers are what the GUI draws.
3. **Calibrated fusion** — a :class:`CalibrationModel` maps the raw scores (``lnbnn``, ``sv``,
   ``inliers``, ``global`` and any other source added later) to P(same individual).
4. **Per-individual aggregation** (noisy-or of an individual's two best annotations) and the
   open-set verdict: likely a new individual when the best probability is below the
   calibrated threshold.
5. **Learned re-ranking** (when a matcher and a second-stage calibration are given): the best
   ``rerank_top`` individuals' ``rerank_annotations`` most probable annotations are matched
   against the query by the learned matcher (LightGlue on stored ALIKED keypoints), and the
   second stage maps the first stage's logit and the best match's summed confidence to
   P(same individual).  The threshold is then the second stage's.

No catalog code here: the caller adds annotations with their features and individual ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from wildid.errors import MatchingError
from wildid.matching import parallel
from wildid.matching.aggregation import IndividualScore, aggregate
from wildid.matching.calibration import CalibrationModel, FirstPlaceCalibration
from wildid.matching.features import (
    LearnedKeypoints,
    LocalFeatures,
    colourless,
    mirror_sift_descriptors,
)
from wildid.matching.geometry import Verification, verify
from wildid.matching.global_index import GlobalIndex
from wildid.matching.local_index import AnnotationMatches, KnnResult, LnbnnResult, LocalIndex
from wildid.matching.photometric import PhotometricQuery, photometric_agreement

log = logging.getLogger(__name__)

COLOUR = "colour"  # the colour histogram's vector source, as the profiles name it

__all__ = ["RERANK_SOURCES", "RERANK_TRANSFORMS", "TILT_SHARE", "TILT_SPREAD_DEG", "TURN_MIN_DEG",
           "Candidate", "DatabaseEntry", "Identification", "Identifier", "IdentifierConfig",
           "TurnedQuery", "best_annotations", "drop_static", "local_score_names", "matcher_view",
           "query_tilt", "rerank_row", "rerank_rows", "score_transform"]


@dataclass(frozen=True)
class IdentifierConfig:
    """Tunable parameters of the pipeline (per species profile, see ``defaults/``)."""

    k: int = 4  # LNBNN neighbours that vote
    knorm: int = 1  # the (k + knorm)-th neighbour is the normaliser
    nprobe: int = 6  # inverted-file lists of ~8000 rows (or twice as many of ~2000) per query row
    mirror: bool = True  # mirrored query descriptors vote too (SIFT only)
    mirror_weight: float = 1.0
    shortlist: int = 40  # annotations verified spatially
    global_shortlist: int = 20  # global top-N added to the candidates (when embeddings exist)
    sv_method: str = "similarity"
    sv_threshold: float = 0.05  # share of the database crop's diagonal
    aggregation: str = "noisy_or"  # "max", "noisy_or" or "sum_top" over annotation scores
    aggregation_top: int = 2  # how many of an individual's best annotations noisy_or combines
    aggregation_odds: float = 1.0  # noisy_or combines at these odds (aggregation.py)
    method: str = "fused"  # "lnbnn" = the HotSpotter baseline: raw LNBNN, nothing else
    # photometric verification of the shortlist (raw score "texture", see photometric.py); needs
    # features extracted with their texture.  Band-pass in working-size pixels.
    photometric: bool = False
    photo_sigma_fine: float = 1.4
    photo_sigma_coarse: float = 5.0
    # learned re-ranking (profiles with ``learned_keypoints``): the best this-many individuals
    # are matched again by the learned matcher and rescored by the profile's second stage, each
    # through its best ``rerank_annotations`` annotations (the best match of them counts)
    rerank_top: int = 5
    rerank_annotations: int = 1

    def aggregate(self, scores: Mapping[Hashable, float],
                  individual_of: Callable[[Hashable], Hashable] | Mapping[Hashable, Hashable]
                  ) -> list[IndividualScore]:
        """Individuals ranked from per-annotation probabilities as this configuration says
        (the identifier, ``wildid calibrate`` and the fit script all rank through here)."""
        return aggregate(scores, individual_of, self.aggregation, self.aggregation_top,
                         self.aggregation_odds)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IdentifierConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


_COUNT_SCORES = ("lnbnn", "sv", "inliers")  # vote sums and counts: fitted through log1p


def local_score_names(config: IdentifierConfig) -> list[str]:
    """The raw scores local matching produces under ``config`` (before any vector source), in
    the order calibrations list them."""
    return [*_COUNT_SCORES, *(["texture"] if config.photometric else [])]


def score_transform(name: str) -> str:
    """How a calibration transforms a raw score: counts and sums by log1p, similarities as is."""
    return "log1p" if name in _COUNT_SCORES else "identity"


@dataclass(frozen=True)
class Candidate:
    """One proposed individual for a query, with the evidence the GUI shows."""

    individual_id: Hashable
    score: float  # calibrated P(same individual)
    raw: dict[str, float]  # raw scores of the best annotation, by source
    best_key: Hashable  # the database annotation that matched best
    inliers: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    # (M, 4): query x, y and database x, y of the verified correspondences, in crop pixels


@dataclass(frozen=True)
class Identification:
    """Ranked candidates plus the open-set verdict; iterates like a list of candidates."""

    candidates: list[Candidate]
    likely_new: bool
    threshold: float
    seconds: float
    annotation_scores: dict[Hashable, float] = field(default_factory=dict)  # before aggregation
    also_rank: int | None = None
    """Where the individual asked for by ``identify(also=...)`` ranks among all (0: first);
    None when it was not asked for or has nothing to compare."""

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.candidates)

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, i: int) -> Candidate:
        return self.candidates[i]


@dataclass(frozen=True)
class DatabaseEntry:
    """One database annotation for :meth:`Identifier.add_many` (the arguments of ``add``)."""

    key: Hashable
    individual_id: Hashable
    features: LocalFeatures | None
    global_vec: np.ndarray | None = None
    species: str | None = None
    viewpoint: str | None = None
    vectors: Mapping[str, np.ndarray] | None = None


@dataclass
class _Entry:
    individual_id: Hashable
    species: str | None
    viewpoint: str | None


def _compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == "unknown" or b == "unknown" or a == b


class Identifier:
    """Ranks the known individuals for a query annotation (see the module docstring)."""

    def __init__(self, config: IdentifierConfig | None = None,
                 calibration: CalibrationModel | None = None,
                 mirror_descriptors: Callable[[np.ndarray], np.ndarray] | None = None,
                 matcher: object | None = None,
                 rerank_calibration: CalibrationModel | None = None,
                 size_slope: float = 0.0, size_reference: int = 0, size_floor: int = 0,
                 size_slope_small: float = 0.0, size_small_verified: float = 0.0,
                 first_place: FirstPlaceCalibration | None = None,
                 verdict_slope_small: float = 0.0, verdict_small_verified: float = 0.0,
                 size_slope_single: float | None = None) -> None:
        self.config = config or IdentifierConfig()
        # how the shown scores move in a catalog smaller than the calibration's (size_shift)
        self.size_slope = size_slope
        self.size_reference = size_reference
        self.size_floor = size_floor
        self.size_slope_small = size_slope_small
        # the small-catalog slope for a candidate with one photo compared (None: as others)
        self.size_slope_single = size_slope_single
        self.size_small_verified = size_small_verified
        # how far the "likely new" threshold rises in a catalog of a handful of individuals
        # (verdict_shift)
        self.verdict_slope_small = verdict_slope_small
        self.verdict_small_verified = verdict_small_verified
        self.first_place = first_place  # the shown scores re-read by rank (FirstPlaceCalibration)
        self.calibration = calibration
        # both or neither: a second stage without its matcher (model missing) is not applied
        self.matcher = matcher if rerank_calibration is not None else None
        self.rerank_calibration = rerank_calibration if matcher is not None else None
        # how the query's descriptors look in the mirrored crop: the SIFT bin permutation, or
        # the sign flips of a profile's learned projection (DescriptorProjection.mirror)
        self.mirror_descriptors = mirror_descriptors or mirror_sift_descriptors
        self.local = LocalIndex(k=self.config.k, knorm=self.config.knorm,
                                nprobe=self.config.nprobe)
        self.vectors: dict[str, GlobalIndex] = {}  # one cosine index per vector source
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def individual_of(self, key: Hashable) -> Hashable:
        return self._entries[key].individual_id

    def add(self, key: Hashable, individual_id: Hashable, features: LocalFeatures | None,
            global_vec: np.ndarray | None = None, species: str | None = None,
            viewpoint: str | None = None,
            vectors: Mapping[str, np.ndarray] | None = None) -> None:
        """Add (or replace) one database annotation of a known individual.

        ``global_vec`` is the embedding of the active embedder (score source ``"global"``);
        ``vectors`` adds further named unit-vector sources (``"colour"``, a re-id model...),
        each scored by cosine similarity and fused by the calibration like any other score.
        """
        self.add_many([DatabaseEntry(key, individual_id, features, global_vec, species,
                                     viewpoint, vectors)])

    def add_many(self, items: Iterable[DatabaseEntry]) -> None:
        """:meth:`add` for many annotations, their local descriptors indexed in batches
        (:meth:`LocalIndex.add_many`): what loading a catalog's index does."""
        local: list[tuple[Hashable, LocalFeatures]] = []
        try:
            for e in items:
                self.remove(e.key)
                self._entries[e.key] = _Entry(e.individual_id, e.species, e.viewpoint)
                if e.features is not None:
                    local.append((e.key, e.features))
                for name, vec in _named(e.global_vec, e.vectors).items():
                    self.vectors.setdefault(name, GlobalIndex()).add(e.key, vec)
        finally:  # entries added so far keep their descriptors when a later vector is refused
            self.local.add_many(local)

    def remove(self, key: Hashable) -> None:
        if self._entries.pop(key, None) is not None:
            self.local.remove(key)
            for index in self.vectors.values():
                index.remove(key)

    def relabel(self, key: Hashable, individual_id: Hashable) -> None:
        """Move an annotation to another individual (a merge or a correction); no re-indexing."""
        self._entries[key].individual_id = individual_id

    # -- identification ---------------------------------------------------------------------
    def identify(self, query_features: LocalFeatures | None, top_k: int = 10,
                 exclude_keys: Collection[Hashable] = (),
                 exclude_pairs: Iterable[tuple[Hashable, Hashable]] = (),
                 query_key: Hashable | None = None, global_vec: np.ndarray | None = None,
                 species: str | None = None, viewpoint: str | None = None,
                 vectors: Mapping[str, np.ndarray] | None = None,
                 turned: TurnedQuery | None = None,
                 same_frame: Collection[Hashable] = (),
                 also: Hashable | None = None) -> Identification:
        """Rank individuals for a query.

        ``exclude_keys``: database annotations never to use (e.g. the query's own encounter).
        ``exclude_pairs``: ``(query_key, individual_id)`` pairs a person already rejected;
        those individuals are dropped for this ``query_key``.  Annotations of another species
        or of a different known viewpoint (left vs right flank) are not compared.
        ``turned`` describes the query again turned by a given angle, for the learned matcher
        when the photo is turned (see :func:`query_tilt`); without it the matcher sees the
        query only as it is.
        ``same_frame``: database annotations framed as the query is, by the same fixed camera
        (a camera trap's whole photos): their correspondences at the same place in both
        frames are the scene, not the animal, and are dropped (:func:`drop_static`); where
        that is a whole scene (:data:`STATIC_SCENE`), the colour histograms, mostly the
        scene's colours, are not compared either.
        ``also``: an individual a person wants compared whatever the first stage thinks (the
        right animal, they believe, is not among the candidates): its annotations are verified
        as shortlisted ones are, it is returned after the ``top_k`` when it ranks below them
        (even when rejected before), and ``also_rank`` says where it ranks.
        """
        t0 = time.perf_counter()
        if not self._entries:
            return Identification([], True, self.shown_threshold(), 0.0)
        excluded = set(exclude_keys) | {
            k for k, e in self._entries.items()
            if not (_compatible(species, e.species) and _compatible(viewpoint, e.viewpoint))}
        rejected = {ind for qk, ind in exclude_pairs if qk == query_key} - {also}
        verify = frozenset() if also is None else frozenset(  # not a pass over every entry
            k for k, e in self._entries.items() if e.individual_id == also and k not in excluded)
        raw, matches = self._raw_scores(query_features, _named(global_vec, vectors), excluded,
                                        frozenset(same_frame), verify)
        reranks = self.reranks(query_features)
        want = max(top_k, self.config.rerank_top) if reranks else top_k
        candidates, scores = self._rank(raw, matches, rejected, want)
        also_rank = next((i for i, c in enumerate(candidates) if c.individual_id == also), None)
        if also is not None and also_rank is None:  # below the ones ranked: look further
            everyone, _ = self._rank(raw, matches, rejected, len(self._entries))
            also_rank = next((i for i, c in enumerate(everyone) if c.individual_id == also),
                             None)
            if also_rank is not None:
                candidates.append(everyone[also_rank])
        if reranks:
            view = matcher_view(query_features,  # type: ignore[arg-type]
                                query_tilt(matches.values()), turned)
            candidates = self._rerank(query_features, candidates,  # type: ignore[arg-type]
                                      scores, view)
            if also_rank is not None and also_rank < len(candidates):  # the re-ranked order
                also_rank = next(i for i, c in enumerate(candidates) if c.individual_id == also)
        candidates = _keep(candidates, top_k, also)
        compared = len(self._entries) - sum(1 for k in excluded if k in self._entries)
        verified = candidates[0].raw.get("sv", 0.0) if candidates else 0.0
        photos = self._photos_compared(candidates, excluded, compared)
        candidates, threshold = self._shown(
            candidates, self._threshold(reranks),
            [self.size_shift(compared, verified, m) for m in photos],
            self.verdict_shift(compared, verified))
        likely_new = not candidates or candidates[0].score < threshold
        return Identification(candidates, likely_new, threshold, time.perf_counter() - t0, scores,
                              also_rank)

    def _photos_compared(self, candidates: list[Candidate], excluded: set[Hashable],
                         compared: int) -> list[int]:
        """How many of each candidate's annotations the query was compared with, where that
        changes the size shift (a catalog below the small-catalog start, with a slope of its
        own for single photos); elsewhere 2 for every candidate, which reads as "several"."""
        if self.size_slope_single is None or self.size_slope_single == self.size_slope_small \
                or compared >= self._small_start():
            return [2] * len(candidates)
        count: dict[Hashable, int] = {}
        for key, entry in self._entries.items():
            if key not in excluded:
                count[entry.individual_id] = count.get(entry.individual_id, 0) + 1
        return [count.get(c.individual_id, 0) for c in candidates]

    def _small_start(self) -> int:
        """Where the small-catalog range begins: ``size_floor``, or the calibration's own
        size where that is smaller (a young catalog's refit holds down to its size)."""
        return self.size_floor if self.size_reference <= 0 else \
            min(self.size_floor, self.size_reference)

    def shown(self, scores: Sequence[float], shifts: Sequence[float], threshold: float,
              raised: float = 0.0) -> tuple[list[int], list[float], float]:
        """Calibrated scores as shown: the order to show them in, their shown values in that
        order, and the threshold in the same terms.

        Each score's logit moves by its size shift (:meth:`size_shift`; one per candidate,
        since a single photo's is its own below the small-catalog start), and the scores are
        shown best first after it. The threshold is a probability, fitted where no shift
        applies, so it does not move for them: the verdict follows the corrected level;
        ``raised`` is what the threshold's own logit gains (:meth:`verdict_shift`). The
        first-place calibration then re-reads both, the threshold as a first candidate's
        score: it is monotone, so it changes no verdict."""
        first = self.first_place if self.calibration is not None and \
            self.config.method != "lnbnn" else None

        def show(p: float, is_first: bool, moved: float) -> float:
            if not moved and first is None:
                return float(p)
            z = _logit(p) + moved
            return _sigmoid(first.logit(z, is_first) if first is not None else z)

        order = list(range(len(scores)))
        if len(set(shifts)) > 1:  # the shift differs between candidates: best first after it
            order.sort(key=lambda i: -(_logit(scores[i]) + shifts[i]))
        values = [show(scores[i], n == 0, shifts[i]) for n, i in enumerate(order)]
        return order, values, show(threshold, True, raised)

    def _shown(self, candidates: list[Candidate], threshold: float, shifts: Sequence[float],
               raised: float = 0.0) -> tuple[list[Candidate], float]:
        """The candidates as shown (:meth:`shown`), and the threshold in the same terms."""
        order, values, shown_threshold = self.shown([c.score for c in candidates], shifts,
                                                    threshold, raised)
        return ([replace(candidates[i], score=v) for i, v in zip(order, values, strict=True)],
                shown_threshold)

    def size_shift(self, compared: int, verified: float = 0.0, photos: int = 2) -> float:
        """What the shown scores' logit gains when a query is compared with ``compared``
        annotations: ``size_slope * log(compared / size_reference)`` below the reference, else 0;
        below ``size_floor`` as at the floor, plus ``size_slope_small * log(compared /
        size_floor)`` (counted from the reference where that is smaller), that last part times
        ``1 - verified / size_small_verified`` (not below 0) where ``verified`` is the first
        candidate's spatially verified score. For a candidate compared through a single photo
        (``photos`` 1) that last part takes ``size_slope_single`` where it is set.

        Why: a calibration holds at the catalog size it was fitted at. In a smaller catalog
        LNBNN's normaliser (the next-nearest descriptor, from another photo) lies farther, so
        every candidate collects more votes and every probability runs high. On catalogs of 10
        development nyala identities the shipped calibration showed candidates at 54-58 % on
        average where 17-18 % were right. Above the floor the shift is one number per query, so
        it moves the level, the threshold's verdict included, and never the order. The slope was
        fitted between the floor and the reference; above the reference nothing is measured, so
        nothing moves. Below the floor (a first catalog of one to four individuals) there are no
        other individuals' photos to compete at all: every query keypoint's nearest neighbours
        lie in the few photos there are, whoever the animal, and new animals came up "likely
        known" at 77-90 %; that range has its own slope, fitted on such catalogs with new
        animals among the queries (tests/benchmarks/fit_tiny_catalogs.py). The pile-up gives
        votes and loose inliers, not a strong verified match: no new animal in those catalogs
        reached a verified score of 8 (nyala) or 6 (lion), so that part eases off with the first
        candidate's and is gone at ``size_small_verified``; without the easing, a patterned
        animal photographed twice was called new in a catalog of three annotations. How far a
        candidate's score runs high there depends on how many of its photos were compared:
        several photos that each match a little combine into a high score (nyala multiplies
        their odds), one photo does not. In nyala catalogs of one photo per animal, one slope
        for all showed first candidates at 2-5 % where 10-34 % were right, so a single photo has
        a slope of its own (0 for nyala), and below the floor the candidates are shown in the
        order their shifted scores give."""
        if (compared <= 0 or self.calibration is None or self.config.method == "lnbnn"):
            return 0.0
        shift = 0.0
        if self.size_slope > 0 and 0 < self.size_reference and compared < self.size_reference:
            n = min(max(compared, self.size_floor), self.size_reference)
            shift += self.size_slope * float(np.log(n / self.size_reference))
        # a calibration fitted on a catalog smaller than the floor (`wildid calibrate` on a
        # young catalog) holds down to its own size: the small slope counts from there
        start = self._small_start()
        slope = self.size_slope_small if photos != 1 or self.size_slope_single is None \
            else self.size_slope_single
        if slope > 0 and compared < start:
            eased = 1.0 if self.size_small_verified <= 0 else \
                max(0.0, 1.0 - verified / self.size_small_verified)
            shift += slope * eased * float(np.log(compared / start))
        return shift

    def verdict_shift(self, compared: int, verified: float = 0.0) -> float:
        """What the "likely new" threshold's logit gains when a query is compared with
        ``compared`` annotations: ``verdict_slope_small * log(start / compared)`` below the
        start of the small-catalog range (``size_floor``, or the reference where that is
        smaller, as in :meth:`size_shift`), times ``1 - verified / verdict_small_verified``
        (not below 0), where ``verified`` is the first candidate's spatially verified score.

        Why: in a first catalog of one to four individuals, the calibration can say how
        likely a candidate is, but not whether the animal is new. A new animal's keypoints
        find their nearest neighbours in the few photos there are, whoever it is, so its best
        candidate scores about as high as a known animal's (default profile, development
        draws, one-individual catalogs: first candidates shown at 55-64 % for new animals,
        59-67 % for known ones), and the whole catalog's threshold (shown as 26 %) called no
        new animal new. What a
        known animal has and a new one does not is a strong verified match, so there the
        threshold rises unless the first candidate has one. Fitted for the verdict's balanced
        accuracy, as the threshold itself is (tests/benchmarks/fit_tiny_catalogs.py); the
        shown scores do not move, so the shown threshold is per query
        (``Identification.threshold``)."""
        if (compared <= 0 or self.verdict_slope_small <= 0 or self.calibration is None
                or self.config.method == "lnbnn"):
            return 0.0
        start = self._small_start()
        if compared >= start:
            return 0.0
        eased = 1.0 if self.verdict_small_verified <= 0 else \
            max(0.0, 1.0 - verified / self.verdict_small_verified)
        return self.verdict_slope_small * eased * float(np.log(start / compared))

    def shown_threshold(self, reranked: bool = False) -> float:
        """The new-individual threshold in the terms the candidates are shown in (what
        :meth:`identify` reports): the calibration's, read as a first candidate's score."""
        return self._shown([], self._threshold(reranked), [])[1]

    def _threshold(self, reranked: bool = False) -> float:
        if reranked and self.rerank_calibration is not None:
            return self.rerank_calibration.threshold
        return self.calibration.threshold if self.calibration is not None else 0.5

    def reranks(self, query: LocalFeatures | None) -> bool:
        """Whether ``query`` gets the learned re-ranking (a matcher, a second stage, and
        learned keypoints stored with the query's features)."""
        return (self.matcher is not None and query is not None and query.learned is not None
                and self.config.rerank_top > 0 and self.config.method != "lnbnn")

    def learned_evidence(self, learned: LearnedKeypoints | None, key: Hashable) -> float:
        """Summed confidence of the learned matcher's matches between the query's learned
        keypoints and one database annotation's (0 when either has none)."""
        if self.matcher is None or learned is None or key not in self.local:
            return 0.0
        db = self.local.features(key).learned
        if db is None or not len(db) or not len(learned):
            return 0.0
        _, _, conf = self.matcher.match(learned, db)  # type: ignore[attr-defined]
        return float(np.sum(conf))

    def _rerank(self, query: LocalFeatures, candidates: list[Candidate],
                scores: Mapping[Hashable, float],
                learned: LearnedKeypoints | None = None) -> list[Candidate]:
        """Second stage for the best ``rerank_top`` individuals (see the module docstring),
        sorted by the new probabilities. Each individual's evidence is the best learned match
        among its ``rerank_annotations`` most probable annotations (``scores``: the first
        stage's per annotation); its shown annotation and inliers stay the first stage's.

        The others follow them: the first stage ranked them below all of the re-ranked ones
        and the matcher never looked at them, so one whose first-stage probability is above
        the second stage's lowest is shown at that lowest (an unchecked individual never
        outranks a checked one; on the nyala leave-one-out 5 of 283 known and 12 of 297 new
        queries had one that would have).

        ``learned``: the query's learned keypoints as the matcher should see them (turned
        upright, :func:`matcher_view`); without them, the stored ones.
        """
        assert self.rerank_calibration is not None
        head = candidates[: self.config.rerank_top]
        if not head:
            return candidates
        view = learned if learned is not None else query.learned
        rows = rerank_rows(head, scores, self.individual_of, self.config.rerank_annotations,
                           lambda key: self.learned_evidence(view, key))
        probs = self.rerank_calibration.predict(rows)
        rescored = sorted((replace(c, score=float(p), raw={**c.raw, "lightglue": r["lightglue"]})
                           for c, p, r in zip(head, probs, rows, strict=True)),
                          key=lambda c: -c.score)
        floor = rescored[-1].score
        return rescored + [c if c.score <= floor else replace(c, score=floor)
                           for c in candidates[len(head):]]

    def raw_scores(self, query_features: LocalFeatures | None,
                   global_vec: np.ndarray | None = None,
                   exclude_keys: Collection[Hashable] = (),
                   vectors: Mapping[str, np.ndarray] | None = None,
                   verified: dict[Hashable, Verification] | None = None,
                   same_frame: Collection[Hashable] = ()
                   ) -> dict[Hashable, dict[str, float]]:
        """Raw scores per candidate annotation (for fitting calibration on labelled queries);
        ``verified``, when given, receives each verified candidate's verification (what
        :func:`query_tilt` reads the photo's turn from); ``same_frame`` as for
        :meth:`identify`, so a calibration learns from the scores identification computes."""
        raw, seen = self._raw_scores(query_features, _named(global_vec, vectors),
                                     set(exclude_keys), frozenset(same_frame))
        if verified is not None:
            verified.update(seen)
        return raw

    def _raw_scores(self, query: LocalFeatures | None, vecs: dict[str, np.ndarray],
                    excluded: set[Hashable], same_frame: frozenset[Hashable] = frozenset(),
                    verify: frozenset[Hashable] = frozenset()
                    ) -> tuple[dict[Hashable, dict[str, float]], dict[Hashable, Verification]]:
        cfg = self.config
        raw: dict[Hashable, dict[str, float]] = {}
        verified: dict[Hashable, Verification] = {}
        lnbnn: dict[Hashable, float] = {}
        results: list[tuple[LnbnnResult, LocalFeatures, bool]] = []
        scene: set[Hashable] = set()  # annotations sharing the query's static scene
        if query is not None and len(query) and self.local.n_descriptors:
            if cfg.mirror and cfg.method != "lnbnn" and query.is_rootsift:
                # one search for the plain and the mirrored descriptors: each inverted list
                # is read once per query, not twice
                mirrored = _mirrored(query, self.mirror_descriptors)
                n = len(query)
                both = self.local.knn(np.vstack([query.descriptors, mirrored.descriptors]),
                                      cfg.k + cfg.knorm, excluded)
                res, scene = self._drop_static(self.local.score_knn(
                    KnnResult(both.dist[:n], both.slot[:n], both.kp[:n]), cfg.k, cfg.knorm),
                    query, same_frame)
                res_m = self.local.score_knn(
                    KnnResult(both.dist[n:], both.slot[n:], both.kp[n:]), cfg.k, cfg.knorm)
                results += [(res, query, False), (res_m, mirrored, True)]
                lnbnn = dict(res.scores)
                for key, s in res_m.scores.items():
                    lnbnn[key] = lnbnn.get(key, 0.0) + cfg.mirror_weight * s
            else:
                res, scene = self._drop_static(
                    self.local.query(query, exclude_keys=excluded, k=cfg.k, knorm=cfg.knorm),
                    query, same_frame)
                results.append((res, query, False))
                lnbnn = dict(res.scores)
        for key, s in lnbnn.items():
            raw[key] = {"lnbnn": s}
        if cfg.method == "lnbnn":
            return raw, verified
        shortlist = sorted(lnbnn, key=lambda k: -lnbnn[k])[: cfg.shortlist]
        for name, vec in vecs.items():
            index = self.vectors.get(name)
            if index is not None and len(index) and cfg.global_shortlist > 0:
                top = index.search(vec, cfg.global_shortlist, index.mask_for(excluded=excluded))
                shortlist += [k for k, _ in top if k not in lnbnn and k not in shortlist]
        shortlist += sorted((k for k in verify if k not in shortlist), key=str)  # asked for
        photo = (PhotometricQuery.of(query, cfg.photo_sigma_fine, cfg.photo_sigma_coarse)
                 if cfg.photometric and query is not None else None)
        for key in shortlist:
            entry = raw.setdefault(key, {"lnbnn": 0.0})
            if query is not None and key in self.local:
                best, mirrored = self._verify(query, key, results)
                entry["sv"] = best.score
                entry["inliers"] = float(best.n_inliers)
                verified[key] = best
                if photo is not None:
                    db = self.local.features(key)
                    if db.texture_jpeg:  # features from before the texture: leave it missing
                        agree = photometric_agreement(photo, db, best, mirrored)
                        entry["texture"] = 0.0 if agree is None else agree
        for name, vec in vecs.items():
            index = self.vectors.get(name)
            if index is None or (name == COLOUR and colourless(vec)):
                continue  # a night shot's colour tells nothing: the score stays missing
            for key, sim in index.similarity_of(vec, raw).items():
                if name == COLOUR and (key in scene or colourless(index.vector(key))):
                    continue  # the colours of one trap's scene, or of a night shot
                raw[key][name] = sim
        return raw, verified

    def _drop_static(self, res: LnbnnResult, query: LocalFeatures,
                     same_frame: frozenset[Hashable]
                     ) -> tuple[LnbnnResult, set[Hashable]]:
        """``res`` without the correspondences of :func:`drop_static` for annotations framed
        as the query is (their LNBNN scores lose those votes), and the annotations that
        share the query's scene: at least :data:`STATIC_SCENE` correspondences in place."""
        keys = [k for k in same_frame if k in res.matches]
        if not keys:
            return res, set()
        scores, matches = dict(res.scores), dict(res.matches)
        scene = set()
        for key in keys:
            m = matches[key]
            kept = drop_static(query, self.local.features(key), m)
            dropped = len(m.query_idx) - len(kept.query_idx)
            if not dropped:
                continue
            if dropped >= STATIC_SCENE:
                scene.add(key)
            scores[key] = max(0.0, scores.get(key, 0.0) - float(m.weight.sum() - kept.weight.sum()))
            if len(kept.query_idx):
                matches[key] = kept
            else:
                del matches[key]
        return LnbnnResult(scores, matches), scene

    def _verify(self, query: LocalFeatures, key: Hashable,
                results: list[tuple[LnbnnResult, LocalFeatures, bool]]
                ) -> tuple[Verification, bool]:
        """Best verification of ``key`` over the plain and the mirrored correspondences, and
        whether it came from the mirrored ones (its transform then maps the mirrored query)."""
        db = self.local.features(key)
        best: Verification | None = None
        best_mirrored = False
        for res, q, mirrored in results:
            m: AnnotationMatches | None = res.matches.get(key)
            if m is None:
                continue
            ver = verify(q, db, m.query_idx, m.db_idx, m.weight, method=self.config.sv_method,
                         threshold=self.config.sv_threshold)
            if mirrored and ver.n_inliers:
                # report inliers at the query's real keypoint positions
                inl = ver.inliers.copy()
                inl[:, :2] = query.xy[m.query_idx[ver.inlier_idx]]
                ver = replace(ver, inliers=inl, mirrored=True)
            if best is None or ver.score > best.score:
                best, best_mirrored = ver, mirrored
        if best is None:
            return Verification(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 0.0,
                                None), False
        return best, best_mirrored

    def _rank(self, raw: dict[Hashable, dict[str, float]], verified: dict[Hashable, Verification],
              rejected: set[Hashable], top_k: int
              ) -> tuple[list[Candidate], dict[Hashable, float]]:
        keys = [k for k in raw if self._entries[k].individual_id not in rejected]
        if not keys:
            return [], {}
        rows = [raw[k] for k in keys]
        if self.calibration is not None and self.config.method != "lnbnn":
            probs = self.calibration.predict(rows)
        else:
            # uncalibrated fallback: LNBNN mapped to (0, 1) monotonically
            probs = np.array([1.0 - np.exp(-r.get("lnbnn", 0.0) / 5.0) for r in rows])
        scores = dict(zip(keys, probs.tolist(), strict=False))
        ranked = self.config.aggregate(scores, self.individual_of)
        out = []
        for item in ranked[:top_k]:
            ver = verified.get(item.best_key)
            inliers = ver.inliers if ver is not None else np.zeros((0, 4), np.float32)
            out.append(Candidate(item.individual_id, float(item.score), dict(raw[item.best_key]),
                                 item.best_key, inliers))
        return out, scores


# the learned matcher sees the query turned back (query_tilt) when the photo is turned by at
# least TURN_MIN_DEG; rotations within TILT_SPREAD_DEG of each other vote together, and the
# winning group must hold TILT_SHARE of the verified weight
TURN_MIN_DEG = 20.0
TILT_SPREAD_DEG = 15.0
TILT_SHARE = 1 / 3

TurnedQuery = Callable[[float], "LearnedKeypoints | None"]
"""Describes the query again turned by an angle in degrees (clockwise on screen, the image
frame's y pointing down: the sense of ``Verification.rotation_degrees``); None when it cannot
(the photo is gone, no keypoint model)."""


def query_tilt(verified: Iterable[Verification]) -> float:
    """How far to turn the query so that it stands as the catalog's photos do, in degrees; 0
    when that is under ``TURN_MIN_DEG``.

    SIFT and the verification turn with the photo; ALIKED and LightGlue do not (the right
    nyala's summed LightGlue confidence falls from 41 upright to 29 at 15°, 18 at 45° and 7.5
    at 90°, under the new-individual threshold). A tilted camera or a lying animal turns
    everything in the query, so every true correspondence, background included, verifies
    with the same rotation: the verified pairs vote with their weight (``score``), each
    rotation gathers the votes within ``TILT_SPREAD_DEG`` of it, and the weighted mean of
    the best-supported group is the turn, if that group holds at least ``TILT_SHARE`` of the
    weight. (On 40 upright development queries the winning group held 0.34-0.98 of it, the
    one with a chance turn of -63° 0.20; on the same photos turned by 15-90° 0.46-1.00.) One
    turn for the whole query, not one per
    candidate: turning only the candidates the first stage believes gave the turned view to
    them alone, and on nyala queries turned by 25° that moved as many wrong as right.
    """
    rot, weight = [], []
    for ver in verified:
        r = ver.rotation_degrees()
        if r is not None and ver.score > 0:
            rot.append(r)
            weight.append(ver.score)
    if not rot:
        return 0.0
    phase = np.exp(1j * np.radians(np.asarray(rot)))
    w = np.asarray(weight, np.float64)
    near = np.abs(np.angle(phase[:, None] / phase[None, :])) <= np.radians(TILT_SPREAD_DEG)
    support = near @ w
    best = int(np.argmax(support))
    if support[best] < TILT_SHARE * w.sum():
        return 0.0
    group = near[best]
    tilt = float(np.degrees(np.angle(np.sum(w[group] * phase[group]))))
    return tilt if abs(tilt) >= TURN_MIN_DEG else 0.0


def matcher_view(query: LocalFeatures, tilt: float,
                 turned: TurnedQuery | None) -> LearnedKeypoints | None:
    """The query's learned keypoints for the matcher: described again turned back by ``tilt``
    (:func:`query_tilt` of its verified pairs) when that is not 0 and ``turned`` can, else
    the stored ones."""
    if turned is None or not tilt:
        return query.learned
    t0 = time.perf_counter()
    view = turned(tilt)
    log.debug("query described turned by %+.0f deg for the learned matcher (%.0f ms)", tilt,
              1000 * (time.perf_counter() - t0))
    return view if view is not None and len(view) else query.learned


# the second stage's sources and their transforms (see Identifier._rerank)
RERANK_SOURCES = ["fused", "lightglue"]
RERANK_TRANSFORMS = ["identity", "log1p"]


def best_annotations(scores: Mapping[Hashable, float],
                     individual_of: Callable[[Hashable], Hashable],
                     individuals: Collection[Hashable], n: int) -> dict[Hashable, list[Hashable]]:
    """Each of ``individuals``' ``n`` most probable annotations by the first stage (``scores``),
    best first: the ones the learned matcher compares the query with. A second photo of an
    individual often shows the flank at the query's angle where the best-scoring one does not
    (nyala leave-one-out top-1 with the best 4 individuals: 34.2 % through one annotation
    each, 37.1 % through two)."""
    wanted = set(individuals)
    groups: dict[Hashable, list[tuple[float, Hashable]]] = {}
    for key, p in scores.items():
        ind = individual_of(key)
        if ind in wanted:
            groups.setdefault(ind, []).append((p, key))
    return {ind: [k for _, k in sorted(members, key=lambda m: -m[0])[: max(1, n)]]
            for ind, members in groups.items()}


def rerank_rows(head: Sequence[Any], scores: Mapping[Hashable, float],
                individual_of: Callable[[Hashable], Hashable], per_individual: int,
                evidence: Callable[[Hashable], float]) -> list[dict[str, float]]:
    """The second stage's rows for the first stage's best individuals ``head`` (each with its
    calibrated ``score``, ``individual_id`` and ``best_key``): each through the best learned
    match among its ``per_individual`` most probable annotations (``scores``: the first stage's
    per annotation). The identifier, ``wildid calibrate`` and the fit script build them here;
    only where ``evidence`` (annotation key -> summed confidence) comes from differs."""
    keys = best_annotations(scores, individual_of, [c.individual_id for c in head],
                            per_individual)
    wanted = [keys.get(c.individual_id, [c.best_key]) for c in head]
    # the matcher's pairs are independent: two at a time (wildid.matching.parallel)
    pairs = list(dict.fromkeys(k for ks in wanted for k in ks))
    found = dict(zip(pairs, parallel.map_side_by_side(evidence, pairs), strict=True))
    return [rerank_row(c.score, max(found[k] for k in ks)) for c, ks in zip(head, wanted,
                                                                             strict=True)]


def rerank_row(score: float, evidence: float) -> dict[str, float]:
    """One candidate's second-stage inputs: the first stage's logit (a calibrated probability,
    so the logit is what a logistic model adds to) and the learned matcher's summed
    confidence."""
    q = min(max(score, 1e-6), 1.0 - 1e-6)
    return {"fused": float(np.log(q / (1.0 - q))), "lightglue": float(evidence)}


def _logit(p: float) -> float:
    q = min(max(p, 1e-9), 1.0 - 1e-9)
    return float(np.log(q / (1.0 - q)))


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-min(max(z, -35.0), 35.0))))


def _named(global_vec: np.ndarray | None,
           vectors: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    out = dict(vectors or {})
    if global_vec is not None:
        out["global"] = global_vec
    return {name: vec for name, vec in out.items() if _usable(name, vec)}


def _keep(candidates: list[Candidate], top_k: int, also: Hashable | None) -> list[Candidate]:
    """The first ``top_k`` candidates, and ``also``'s after them when it ranks lower."""
    kept = candidates[:top_k]
    if also is not None and all(c.individual_id != also for c in kept):
        kept += [c for c in candidates[top_k:] if c.individual_id == also][:1]
    return kept


def _usable(name: str, vec: np.ndarray) -> bool:
    """Whether a vector can be compared by cosine.

    One that is NaN, infinite or all zero (what a faulty embedder export gives, stored before
    extraction refused such vectors) is left out: that source is then missing for this
    annotation, as colour is for a greyscale photo, and the calibration fills in. Indexing it
    would fail the whole catalog's index, and no encounter could be matched.
    """
    v = np.asarray(vec, np.float32)
    if v.size and np.isfinite(v).all() and np.any(v):
        return True
    log.warning("a %s vector is empty, zero or not a number; compared without it", name)
    return False


# two keypoints are the same place of a fixed camera's frame when they are this close, as a
# share of the crop's width and height (a trap's mount sways by a few pixels)
STATIC_TOLERANCE = 0.015
# a pair shares a static scene (a trap's) when at least this many of its correspondences are
# in place: its colour histograms then compare that scene, and are left out. Photos from one
# handheld camera, never framed twice alike, have a few at most
STATIC_SCENE = 20


def drop_static(query: LocalFeatures, db: LocalFeatures, m: AnnotationMatches,
                tolerance: float = STATIC_TOLERANCE) -> AnnotationMatches:
    """The correspondences of ``m`` whose two keypoints are *not* at the same place of
    their frames (positions as shares of each crop's width and height).

    Why: a camera trap photographs its own scene in every photo: the same rocks, trunks
    and grass, at the same pixels. Between two of its whole photos the scene matches
    perfectly, whichever animals stand in front of it, so different animals would verify
    as one (five generated animals before one trap's scene: every pair verified with some
    300 points, and a stranger came out known at 77 %). An animal that moved does not
    stay at the same pixels; one standing exactly where it stood before loses those points
    too, which is the price.
    """
    if not len(m.query_idx):
        return m
    q = query.xy[m.query_idx] / np.maximum(np.asarray(query.image_size, np.float32), 1.0)
    d = db.xy[m.db_idx] / np.maximum(np.asarray(db.image_size, np.float32), 1.0)
    moved = (np.abs(q - d) > tolerance).any(axis=1)
    if moved.all():
        return m
    return AnnotationMatches(m.query_idx[moved], m.db_idx[moved], m.weight[moved])


def _mirrored(query: LocalFeatures,
              mirror_descriptors: Callable[[np.ndarray], np.ndarray] = mirror_sift_descriptors
              ) -> LocalFeatures:
    """The query's keypoints as they sit in the left-right mirrored crop."""
    xy = query.xy.copy()
    xy[:, 0] = query.image_size[0] - 1 - xy[:, 0]
    return LocalFeatures(xy, mirror_descriptors(query.descriptors), query.scores,
                         query.sizes, np.pi - query.angles, query.image_size, query.extractor)


def require_features(features: LocalFeatures | None) -> LocalFeatures:
    if features is None or not len(features):
        raise MatchingError("this annotation has no local features; extract them first")
    return features
