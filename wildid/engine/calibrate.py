"""``wildid calibrate``: refit score calibration and the new-individual threshold from a catalog.

The catalog's confirmed encounters are labelled data. Leave-one-out: each confirmed encounter
queries all the others (a *known* query: its individual is still in the index) and once more
with its whole individual removed (a *new* query). Known queries give labelled pairs (same
individual or not) for the logistic fusion; the best calibrated score of known vs new queries
gives the threshold that maximises (BAKS + BAUS) / 2. A profile is refitted only when it has
enough matching pairs and individuals; the result is saved in the catalog's folder
(``calibration.json``), which the engine prefers to the shipped profiles for that catalog
only (``--reset`` goes back). A profile that re-ranks its best candidates with the learned
matcher has its second stage refitted on the refitted first stage too (the
best ``rerank_top`` individuals of each known query, matched again), and the threshold is then
chosen on the second stage's scores, as identification uses it. The learned matcher sees each
query as identification shows it to it: turned back when the query's verified pairs say its
photo is turned (``matcher_view``), so the second stage is fitted on the evidence it will get.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import func, select

from wildid.catalog.models import Annotation, Encounter
from wildid.engine.embedder_fusion import FusionTrial, not_tried_because, trial
from wildid.engine.identification import CatalogEngine, catalog_profiles_path, vector_name
from wildid.errors import MatchingError
from wildid.matching.aggregation import IndividualScore
from wildid.matching.calibration import CalibrationModel, fit_calibration
from wildid.matching.features import LearnedKeypoints, LocalFeatures
from wildid.matching.geometry import Verification
from wildid.matching.identifier import (
    RERANK_SOURCES,
    RERANK_TRANSFORMS,
    Identifier,
    local_score_names,
    matcher_view,
    query_tilt,
    rerank_rows,
    score_transform,
)
from wildid.matching.profiles import DEFAULTS_PATH, load_profiles, save_profiles
from wildid.progress import ProgressCallback

__all__ = ["calibrate_catalog", "choose_threshold"]


def choose_threshold(known: list[tuple[float, bool]], new: list[float]) -> float:
    """Threshold on the best score maximising the balanced accuracy of the "likely new" verdict.

    ``known``: (best score, whether the top individual was right) per query whose individual is
    in the catalog; ``new``: best score per query whose individual was absent. A known query above
    the threshold counts as right even when its top candidate is wrong, because the reviewer
    still sees the candidates; maximising BAKS + BAUS instead can call *every* query new when
    known queries are rarely ranked right (nyala), which would make the indicator useless.
    """
    grid = np.unique(np.r_[[p for p, _ in known], new, 0.5])
    best_t, best_v = 0.5, -1.0
    for t in grid:
        tpr = np.mean([p >= t for p, _ in known]) if known else 0.0
        tnr = np.mean([p < t for p in new]) if new else 0.0
        v = (tpr + tnr) / 2
        if v > best_v:
            best_t, best_v = float(t), float(v)
    return best_t


def fused_scores(profile: Any, local: list[str], vectors: list[str]) -> list[str]:
    """The raw scores a refit weighs: the ones the profile's calibration already fuses.

    Not the embedder's cosine by default: the shipped re-identification embedder was trained
    on the development photos, so fusing its cosine makes a calibration trust it far too much
    wherever such photos are the data, and fitted honestly it did not help either
    (docs/identification.md, Tried). Whether the active embedder joins is decided per refit by
    :mod:`wildid.engine.embedder_fusion`. A profile without a calibration falls back to the
    local scores and colour, as ``fit_calibration.py`` fits them.
    """
    named = list(getattr(profile.calibration, "features", None) or [])
    available = set(local) | set(vectors)
    chosen = [f for f in named if f in available]
    return chosen or [*local, *(["colour"] if "colour" in vectors else [])]


def _embedder_trial(engine: CatalogEngine, profile: Any, ident: Identifier, queries: list[_Query],
                    features: list[str], transforms: list[str]) -> FusionTrial | None:
    """Whether the active embedder's cosine joins ``features`` (``embedder_fusion``)."""
    origin = engine.embedder_origin()
    if origin is None:
        return None
    model_id, manifest, source = origin
    why_not = not_tried_because(manifest, source, [profile.name, *profile.aliases])
    if why_not is not None:
        return FusionTrial(model_id, False, why_not)
    known = [(q.individual, q.known) for q in queries if not q.alone]
    return trial(model_id, known, ident.individual_of, ident.config.aggregate, features,
                 transforms, score_transform(model_id))


# Individuals with a confirmed second sighting a profile needs before it is refitted. On
# catalogs of 3 development lions a refit's calibration error on the catalog's later sightings
# was 37.6 points against the shipped scores' 13.0; on 6 nyala it was 4.5 against 8.5
# (docs/identification.md, "Refits on young catalogs").
MIN_INDIVIDUALS = 6


def calibrate_catalog(catalog: Any, min_pairs: int = 20, save: bool = True,
                      engine: CatalogEngine | None = None,
                      progress: ProgressCallback | None = None,
                      min_individuals: int | None = None) -> dict[str, Any]:
    """Refit every species profile with enough confirmed data; returns a report.

    Enough: ``min_pairs`` matching pairs and ``min_individuals`` individuals with a confirmed
    second sighting (:data:`MIN_INDIVIDUALS` when not given). Whether a refit beats the
    shipped scores depends on more than size: on catalogs of 6 to 40 development lions refits
    were worse calibrated on the catalogs' later sightings than the shipped scores (which
    were fitted on hundreds of photos of those very lions), on 6 and 12 nyala better; a
    cross-validation over the catalog's own individuals did not tell the two apart (it
    preferred all seven lion refits it judged), so none is made here
    (docs/identification.md, "Refits on young catalogs"). Annotations without features yet
    are extracted first (``progress`` follows that and the index loading): a confirmed
    encounter that was never extracted is labelled data too.
    """
    least = MIN_INDIVIDUALS if min_individuals is None else min_individuals
    engine = engine or CatalogEngine(catalog)
    extraction = engine.extract(progress)
    engine.sync(progress)
    vector_names = [vector_name(s) for s in engine.vector_sources()]
    with catalog.session() as s:
        rows_of = s.execute(select(Annotation.id, Annotation.encounter_id,
                                   func.coalesce(Annotation.species, Encounter.species))
                            .join(Encounter, Encounter.id == Annotation.encounter_id)).all()
    encounter_of = {a: e for a, e, _ in rows_of}
    species_of = {a: sp for a, _, sp in rows_of}
    report: dict[str, Any] = {"profiles": {}, "saved": None, "extracted": extraction.processed}
    profiles = dict(engine.profiles)
    shipped = load_profiles(DEFAULTS_PATH)
    changed = False
    for name, ident in engine._identifiers.items():  # noqa: SLF001 - same package
        # an embedder a saved calibration fused is tried again below, like any other
        embedders = {v for v in vector_names if v != "colour"}
        features = [f for f in fused_scores(profiles[name], local_score_names(ident.config),
                                            vector_names) if f not in embedders]
        transforms = [score_transform(f) for f in features]
        keys = list(ident._entries)  # noqa: SLF001
        by_encounter: dict[str, list[str]] = defaultdict(list)
        for k in keys:
            by_encounter[encounter_of.get(k, k)].append(k)
        by_individual: dict[Any, set[str]] = defaultdict(set)
        for k in keys:
            by_individual[ident.individual_of(k)].add(k)
        local, vectors = engine.load_features(keys)
        rows, labels, queries = [], [], []
        tilts: list[tuple[str, float, float]] = []  # each query's turn, known and new
        for _enc, anns in by_encounter.items():
            q = anns[0]
            own = ident.individual_of(q)
            feats = local.get(q)
            seen_known: dict[Any, Verification] = {}
            seen_new: dict[Any, Verification] = {}
            frame = engine._same_frame(q)  # noqa: SLF001 - same package
            known_raw = ident.raw_scores(feats, None, set(anns), vectors.get(q, {}), seen_known,
                                         frame)
            new_raw = ident.raw_scores(feats, None, by_individual[own], vectors.get(q, {}),
                                       seen_new, frame)
            alone = by_individual[own] <= set(anns)
            if not alone:
                for k, raw in known_raw.items():
                    rows.append(raw)
                    labels.append(ident.individual_of(k) == own)
            queries.append(_Query(own, alone, known_raw, new_raw, feats))
            # the turns alone are kept, not the verifications (~40 per query, twice)
            tilts.append((q, query_tilt(seen_known.values()), query_tilt(seen_new.values())))
        n_pos = int(sum(labels))
        if n_pos < min_pairs or n_pos == len(labels):
            report["profiles"][name] = {"refitted": False, "reason":
                                        f"{n_pos} matching pairs, {min_pairs} needed"}
            continue
        seen_twice = len({q.individual for q in queries if not q.alone})
        if seen_twice < least:
            report["profiles"][name] = {"refitted": False, "reason": (
                f"{seen_twice} individuals with a confirmed second sighting, {least} needed")}
            continue
        if ident.rerank_calibration is not None:
            queries = [_seen_by_matcher(engine, ident, query, *turn, species_of)
                       for query, turn in zip(queries, tilts, strict=True)]
        fusion = _embedder_trial(engine, profiles[name], ident, queries, features, transforms)
        if fusion is not None and fusion.fused:
            features = [*features, fusion.embedder]
            transforms = [*transforms, score_transform(fusion.embedder)]
        try:
            model = fit_calibration(rows, labels, features, transforms)
        except MatchingError as exc:
            report["profiles"][name] = {"refitted": False, "reason": str(exc)}
            continue
        model.threshold, known = _threshold(model, None, queries, ident)
        model.info.update({"fitted_on": f"catalog {catalog.root}", "queries": len(queries)})
        # fitted at this catalog's size: the scores shift from here as the catalog changes
        # (Identifier.size_shift), not from the size the shipped calibration was fitted at
        profiles[name] = replace(profiles[name], calibration=model,
                                 size_reference=max(len(keys) - 1, 1))
        changed = True
        entry = {"refitted": True, "n_pairs": len(labels), "n_positive": n_pos,
                 "threshold": model.threshold,
                 "loo_top1": float(np.mean([ok for _, ok in known])) if known else None,
                 "features": list(model.features)}
        if fusion is not None:
            entry["embedder"] = fusion.as_dict()
        if ident.rerank_calibration is not None:
            entry["rerank"] = _refit_rerank(model, queries, ident, min_pairs)
            if entry["rerank"]["refitted"]:
                stage = entry["rerank"].pop("model")
                stage.info.update({"fitted_on": f"catalog {catalog.root}"})
                profiles[name] = replace(profiles[name], rerank_calibration=stage)
        base = shipped.get(name)
        digest = base.settings_digest() if base is not None else None
        if digest is not None and profiles[name].settings_digest() == digest:
            # fitted for the shipped settings: valid until an upgrade changes them
            profiles[name] = replace(profiles[name],
                                     info={**profiles[name].info, "settings_of": digest})
        report["profiles"][name] = entry
    if changed and save:
        path = catalog_profiles_path(catalog.root)
        # this catalog's refits, now and from before (another species refitted last time):
        # not the user's hand-edited profiles, which stay theirs for every catalog
        earlier = load_profiles(path, overrides=True) if path.is_file() else {}
        refitted = {n for n, r in report["profiles"].items() if r.get("refitted")}
        theirs = {n: p for n, p in profiles.items() if n in refitted or n in earlier}
        save_profiles(theirs, path, note=f"refitted by `wildid calibrate` on {catalog.root}")
        report["saved"] = str(path)
    return report


@dataclass(frozen=True)
class _Query:
    """One confirmed encounter's leave-one-out query: raw scores with its individual still in
    the index (``known``) and without it (``new``)."""

    individual: Any
    alone: bool  # no other encounter of its individual: no known case
    known: dict[Any, dict[str, float]]
    new: dict[Any, dict[str, float]]
    features: LocalFeatures | None
    # the learned keypoints the matcher sees for the known and the new query (turned back
    # when the photo is turned, as identification shows them); None without re-ranking
    learned_known: LearnedKeypoints | None = None
    learned_new: LearnedKeypoints | None = None


def _seen_by_matcher(engine: CatalogEngine, ident: Identifier, query: _Query, key: str,
                     tilt_known: float, tilt_new: float,
                     species_of: dict[str, str | None]) -> _Query:
    """``query`` with the learned keypoints the matcher sees for its known and new case, as
    identification shows them (``matcher_view``): turned back when the verified pairs said
    the photo is turned (``query_tilt``), its crop then read once from the photo."""
    if not ident.reranks(query.features):
        return query
    assert query.features is not None
    turned = engine._turned_query(key, species_of.get(key))  # noqa: SLF001 - same package
    return replace(query, learned_known=matcher_view(query.features, tilt_known, turned),
                   learned_new=matcher_view(query.features, tilt_new, turned))


def _ranking(model: CalibrationModel, raw: dict[Any, dict[str, float]],
             ident: Identifier) -> tuple[list[IndividualScore], dict[Any, float]]:
    """Individuals by the first stage, aggregated as the identifier does, and the first
    stage's probability per annotation."""
    if not raw:
        return [], {}
    keys = list(raw)
    scores = dict(zip(keys, model.predict([raw[k] for k in keys]).tolist(), strict=True))
    return ident.config.aggregate(scores, ident.individual_of), scores


class _Evidence:
    """The learned matcher's evidence per (query, database annotation), computed once: fitting
    the second stage and choosing its threshold ask for the same pairs (~0.1 s each)."""

    def __init__(self, ident: Identifier) -> None:
        self.ident = ident
        self.memo: dict[tuple[int, Any], float] = {}

    def rows(self, learned: LearnedKeypoints | None, head: list[IndividualScore],
             scores: dict[Any, float]) -> list[dict[str, float]]:
        """The second stage's rows for ``head`` as the matcher sees the query (``learned``),
        each individual through its most probable annotations as ``Identifier._rerank``
        takes them."""
        return rerank_rows(head, scores, self.ident.individual_of,
                           self.ident.config.rerank_annotations, lambda key: self._one(learned, key))

    def _one(self, learned: LearnedKeypoints | None, key: Any) -> float:
        pair = (id(learned), key)  # the views live as long as their _Query
        if pair not in self.memo:
            self.memo[pair] = self.ident.learned_evidence(learned, key)
        return self.memo[pair]


def _best(model: CalibrationModel, stage: CalibrationModel | None, raw: dict[Any, dict[str, float]],
          query: _Query, ident: Identifier, evidence: _Evidence | None = None,
          learned: LearnedKeypoints | None = None) -> tuple[Any, float]:
    """The best individual and its probability, through the second stage when given (and the
    query has learned keypoints), as ``Identifier.identify`` ranks them."""
    ranked, scores = _ranking(model, raw, ident)
    if not ranked:
        return None, 0.0
    if stage is not None and evidence is not None and ident.reranks(query.features):
        # the best is a re-ranked one: the rest never outrank them (Identifier._rerank)
        head = ranked[: ident.config.rerank_top]
        probs = stage.predict(evidence.rows(learned, head, scores))
        j = int(np.argmax(probs))
        return head[j].individual_id, float(probs[j])
    return ranked[0].individual_id, ranked[0].score


def _threshold(model: CalibrationModel, stage: CalibrationModel | None, queries: list[_Query],
               ident: Identifier, evidence: _Evidence | None = None
               ) -> tuple[float, list[tuple[float, bool]]]:
    """The new-individual threshold for these stages, and each known query's (best, right)."""
    known, new = [], []
    for q in queries:
        if not q.alone:
            pred, p = _best(model, stage, q.known, q, ident, evidence, q.learned_known)
            known.append((p, pred == q.individual))
        new.append(_best(model, stage, q.new, q, ident, evidence, q.learned_new)[1])
    return choose_threshold(known, new), known


def _refit_rerank(model: CalibrationModel, queries: list[_Query], ident: Identifier,
                  min_pairs: int) -> dict[str, Any]:
    """Refit the learned re-ranking (second stage) on the refitted first stage: the best
    ``rerank_top`` individuals of every known query, matched again by the learned matcher.

    Without enough matching pairs the shipped second stage is kept: its input is the first
    stage's calibrated probability, which keeps its meaning across a refit.
    """
    rows, labels = [], []
    evidence = _Evidence(ident)
    for q in queries:
        if q.alone or not ident.reranks(q.features):
            continue
        ranked, scores = _ranking(model, q.known, ident)
        head = ranked[: ident.config.rerank_top]
        rows += evidence.rows(q.learned_known, head, scores)
        labels += [r.individual_id == q.individual for r in head]
    n_pos = int(sum(labels))
    if n_pos < min_pairs or n_pos == len(labels):
        return {"refitted": False, "reason": f"{n_pos} matching pairs among the re-ranked "
                f"candidates, {min_pairs} needed; the shipped re-ranking is kept"}
    try:
        stage = fit_calibration(rows, labels, RERANK_SOURCES, RERANK_TRANSFORMS)
    except MatchingError as exc:
        return {"refitted": False, "reason": f"{exc}; the shipped re-ranking is kept"}
    stage.threshold, known = _threshold(model, stage, queries, ident, evidence)
    return {"refitted": True, "model": stage, "n_pairs": len(labels), "n_positive": n_pos,
            "threshold": stage.threshold,
            "loo_top1": float(np.mean([ok for _, ok in known])) if known else None}


def report_lines(report: dict[str, Any]) -> list[str]:
    """What a refit did, per profile, as ``wildid calibrate`` prints it and the app shows it."""
    lines: list[str] = []
    if not report["profiles"]:  # said nothing at all, and exited 1
        lines.append("nothing to refit: no sighting in this catalog is confirmed yet (a refit "
                     f"needs 20 matching pairs and {MIN_INDIVIDUALS} individuals with a "
                     "confirmed second sighting); the shipped calibration stays in use")
    for name, r in report["profiles"].items():
        if r.get("refitted"):
            lines.append(f"{name}: refitted on {r['n_pairs']} pairs ({r['n_positive']} matching); "
                         f"new-individual threshold {r['threshold']:.3f}")
            if r.get("embedder"):
                lines.append(f"  {fusion_line(r['embedder'])}")
            rerank = r.get("rerank")
            if rerank and rerank.get("refitted"):
                lines.append(f"  learned re-ranking refitted on {rerank['n_pairs']} candidates "
                             f"({rerank['n_positive']} matching); the threshold is now "
                             f"{rerank['threshold']:.3f}")
            elif rerank:
                lines.append(f"  learned re-ranking: {rerank['reason']}")
        else:
            lines.append(f"{name}: kept ({r['reason']})")
    if report.get("saved"):
        lines.append(f"saved {report['saved']}")
    return lines


def fusion_line(trial: dict[str, Any]) -> str:
    """What a refit made of the active embedder's cosine, in one line."""
    from wildid.engine.embedder_fusion import FOLDS

    verdict = "fused into the score" if trial["fused"] else "not fused (shortlist only)"
    line = f"embedder {trial['embedder']}: {verdict}: {trial['reason']}"
    if trial.get("top1") and trial.get("log_loss"):
        (t0, t1), (l0, l1) = trial["top1"], trial["log_loss"]
        line += (f" (held-out individuals, {trial['individuals']} in {FOLDS} folds: top-1 "
                 f"{100 * t0:.1f} → {100 * t1:.1f} %, log loss {l0:.3f} → {l1:.3f})")
    return line
