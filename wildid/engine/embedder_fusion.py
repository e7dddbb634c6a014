"""Whether ``wildid calibrate`` fuses the active embedder's cosine into the calibrated score,
decided by cross-validation over the catalog's own individuals.

Why: a user who installs a re-identification model trained for their species (a MiewID or
MegaDescriptor export) expects it to rank candidates, not only to put more of them on the
shortlist. Whether its cosine adds to the local evidence differs by model and species (the
shipped re-id model's cosine, fitted honestly on development *query* pairs, took lion top-1
down; WildFusion reports global and local scores fused well above either), so each refit
measures it on the catalog's confirmed sightings instead of assuming: the individuals are
split into folds, the calibration is fitted without and with the cosine on the other folds,
and the cosine is kept only when the held-out individuals' pairs are predicted better (log
loss) and their queries ranked no worse (top-1).

A shipped embedder fine-tuned on a species' reference photos (its manifest's ``species``) is
not tried for that species: the catalog may hold those very photos (the development data sets
do), where its cosines are memorised, and no split of the catalog can tell. That is the
shipped ``reid_lite0_nyala_lion`` for nyala and lion; for every other species, and for any
model the user installs, the trial decides.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wildid.errors import MatchingError
from wildid.matching.calibration import fit_calibration

FOLDS = 5
MIN_INDIVIDUALS = 6  # fewer individuals with a second sighting: too few folds to judge by

#: one confirmed sighting queried against the rest: its individual, and the raw scores of
#: every candidate annotation
KnownQuery = tuple[Hashable, Mapping[Hashable, Mapping[str, float]]]


@dataclass(frozen=True)
class FusionTrial:
    """What the trial found for one embedder and profile (``wildid calibrate`` reports it)."""

    embedder: str
    fused: bool
    reason: str
    individuals: int = 0
    top1: tuple[float, float] | None = None  # held-out top-1 without, with the cosine
    log_loss: tuple[float, float] | None = None  # held-out log loss per pair, without, with

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def not_tried_because(manifest: Any, source: str, profile_names: Sequence[str]) -> str | None:
    """Why the embedder is not tried for a profile answering to ``profile_names``, or None."""
    trained = {str(s).lower() for s in (getattr(manifest, "extra", {}) or {}).get("species", [])}
    overlap = trained & {n.lower() for n in profile_names}
    if source == "shipped" and overlap:
        return (f"fine-tuned on the {sorted(overlap)[0]} reference photos, so its cosines on "
                "them are memorised; not fused for this species")
    return None


def trial(embedder: str, queries: Sequence[KnownQuery], individual_of: Any, aggregate: Any,
          features: Sequence[str], transforms: Sequence[str], embedder_transform: str,
          folds: int = FOLDS, seed: int = 0) -> FusionTrial:
    """Cross-validate the calibration over individuals without and with ``embedder``.

    ``individual_of(key)`` names a candidate annotation's individual; ``aggregate(scores,
    individual_of)`` ranks individuals as the identifier does (``IdentifierConfig.aggregate``).
    """
    known = [(ind, raw) for ind, raw in queries if raw]
    individuals = sorted({ind for ind, _ in known}, key=str)
    if len(individuals) < MIN_INDIVIDUALS:
        return FusionTrial(embedder, False, f"{len(individuals)} individuals with a confirmed "
                           f"second sighting, {MIN_INDIVIDUALS} needed to judge it")
    if not any(embedder in row for _, raw in known for row in raw.values()):
        return FusionTrial(embedder, False, "no candidate has its cosine (features not "
                           "extracted with it)")
    order = individuals[:]
    random.Random(seed).shuffle(order)
    k = min(folds, len(order))
    fold_of = {ind: i % k for i, ind in enumerate(order)}
    base = _held_out(known, fold_of, k, individual_of, aggregate, list(features), list(transforms))
    more = _held_out(known, fold_of, k, individual_of, aggregate, [*features, embedder],
                     [*transforms, embedder_transform])
    if base is None or more is None:
        return FusionTrial(embedder, False, "a fold had no matching or no other pair",
                           len(individuals))
    fused = more[1] < base[1] and more[0] >= base[0]
    reason = ("its cosine predicted the held-out individuals better" if fused else
              "its cosine did not predict the held-out individuals better")
    return FusionTrial(embedder, fused, reason, len(individuals), (base[0], more[0]),
                       (base[1], more[1]))


def _held_out(known: list[KnownQuery], fold_of: dict[Hashable, int], k: int, individual_of: Any,
              aggregate: Any, features: list[str], transforms: list[str]
              ) -> tuple[float, float] | None:
    """(top-1, log loss per pair) over every fold, each fitted on the other folds."""
    right, queried, loss, pairs = 0, 0, 0.0, 0
    for fold in range(k):
        rows, labels = [], []
        for ind, raw in known:
            if fold_of[ind] != fold:
                for key, scores in raw.items():
                    rows.append(scores)
                    labels.append(individual_of(key) == ind)
        try:
            model = fit_calibration(rows, labels, features, transforms)
        except MatchingError:
            return None
        for ind, raw in known:
            if fold_of[ind] != fold:
                continue
            keys = list(raw)
            probs = np.clip(model.predict([raw[key] for key in keys]), 1e-6, 1 - 1e-6)
            same = np.array([individual_of(key) == ind for key in keys])
            loss -= float(np.sum(np.where(same, np.log(probs), np.log1p(-probs))))
            pairs += len(keys)
            ranked = aggregate(dict(zip(keys, probs.tolist(), strict=True)), individual_of)
            right += bool(ranked) and ranked[0].individual_id == ind
            queried += 1
    if not pairs or not queried:
        return None
    return right / queried, loss / pairs  # finite: the probabilities are clipped
