"""``wildid calibrate``: refit score calibration and the new-individual threshold from a catalog.

The catalog's confirmed encounters are labelled data. Leave-one-out: each confirmed encounter
queries all the others (a *known* query: its individual is still in the index) and once more
with its whole individual removed (a *new* query). Known queries give labelled pairs (same
individual or not) for the logistic fusion; the best calibrated score of known vs new queries
gives the threshold that maximises (BAKS + BAUS) / 2. A profile is refitted only when it has
enough matching pairs; the result is saved as the user's calibration file, which the engine
prefers to the shipped one (``--reset`` goes back).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select

from wildid.catalog.models import Annotation
from wildid.engine.identification import CatalogEngine, user_profiles_path, vector_name
from wildid.errors import MatchingError
from wildid.matching.aggregation import aggregate
from wildid.matching.calibration import CalibrationModel, fit_calibration
from wildid.matching.identifier import local_score_names, score_transform
from wildid.matching.profiles import save_profiles

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


def calibrate_catalog(catalog: Any, min_pairs: int = 20, save: bool = True,
                      engine: CatalogEngine | None = None) -> dict[str, Any]:
    """Refit every species profile with enough confirmed data; returns a report."""
    engine = engine or CatalogEngine(catalog)
    engine.sync()
    vector_names = [vector_name(s) for s in engine.vector_sources()]
    with catalog.session() as s:
        encounter_of = dict(s.execute(select(Annotation.id, Annotation.encounter_id)).all())
    report: dict[str, Any] = {"profiles": {}, "saved": None}
    profiles = dict(engine.profiles)
    changed = False
    for name, ident in engine._identifiers.items():  # noqa: SLF001 - same package
        features = local_score_names(ident.config) + vector_names
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
        for _enc, anns in by_encounter.items():
            q = anns[0]
            own = ident.individual_of(q)
            known_raw = ident.raw_scores(local.get(q), None, set(anns), vectors.get(q, {}))
            new_raw = ident.raw_scores(local.get(q), None, by_individual[own], vectors.get(q, {}))
            alone = by_individual[own] <= set(anns)
            if not alone:
                for k, raw in known_raw.items():
                    rows.append(raw)
                    labels.append(ident.individual_of(k) == own)
            queries.append((own, alone, known_raw, new_raw))
        n_pos = int(sum(labels))
        if n_pos < min_pairs or n_pos == len(labels):
            report["profiles"][name] = {"refitted": False, "reason":
                                        f"{n_pos} matching pairs, {min_pairs} needed"}
            continue
        try:
            model = fit_calibration(rows, labels, features, transforms)
        except MatchingError as exc:
            report["profiles"][name] = {"refitted": False, "reason": str(exc)}
            continue
        known, new = [], []
        for own, alone, known_raw, new_raw in queries:
            if not alone:
                pred, p = _best(model, known_raw, ident)
                known.append((p, pred == own))
            new.append(_best(model, new_raw, ident)[1])
        model.threshold = choose_threshold(known, new)
        model.info.update({"fitted_on": f"catalog {catalog.root}", "queries": len(queries)})
        profiles[name].calibration = model
        changed = True
        report["profiles"][name] = {"refitted": True, "n_pairs": len(labels), "n_positive": n_pos,
                                    "threshold": model.threshold,
                                    "loo_top1": float(np.mean([ok for _, ok in known])) if known else None}
    if changed and save:
        path = user_profiles_path()
        save_profiles(profiles, path, note=f"refitted by `wildid calibrate` on {catalog.root}")
        report["saved"] = str(path)
    return report


def _best(model: CalibrationModel, raw: dict[Any, dict[str, float]], ident: Any) -> tuple[Any, float]:
    if not raw:
        return None, 0.0
    keys = list(raw)
    probs = model.predict([raw[k] for k in keys])
    ranked = aggregate(dict(zip(keys, probs.tolist(), strict=False)), ident.individual_of)
    return ranked[0].individual_id, ranked[0].score
