"""Which species profile a set of photos shows, by what they look like.

``wildid eval MANIFEST.csv`` takes no species. When neither the manifest's folders, its file
name nor its photos' folders name one (:func:`wildid.engine.evaluation.guess_species`), the
generic profile would run, and a nyala manifest kept in a folder called ``heldout`` would
score about 20 % top-1 instead of about 45 %. So a sample of its photos is embedded by the
re-identification model trained on the species that have profiles, and compared with each
species' prototype: the mean embedding of its development database photos, shipped in
``defaults/species_prototypes.json`` (written by ``tests/benchmarks/fit_species_prototypes.py``).
The same guess is *suggested* (never written) after an import left its encounters without any
species (:func:`suggest_species`): a first-time user who forgot the species would otherwise
have every animal matched by the generic profile.

A species is chosen only when the sample's mean embedding lies clearly nearer one prototype
than any other (:data:`MIN_COSINE`, :data:`MARGIN`). Measured on the development photos
(four disjoint 16-photo samples of the *query* split, which the prototypes never saw): nyala
0.67-0.72 to its prototype and -0.08 to -0.31 to lion's; lion 0.68-0.82 and -0.12 to -0.22;
photos of the tests' generated patterned animals at most 0.2 to either. Other real species were not
available to measure: a zebra card may come close to nyala, which is why the run says what it
chose and how near it was, and ``--species`` overrides it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wildid.errors import ImageError, ModelError, WildIdError
from wildid.matching.profiles import DEFAULTS_PATH

if TYPE_CHECKING:
    from wildid.ingest.importer import ImportReport

log = logging.getLogger(__name__)

PROTOTYPES_PATH = DEFAULTS_PATH.parent / "species_prototypes.json"
SAMPLE = 16  # photos embedded: the mean of 16 lies within a few hundredths of the full set's
MIN_COSINE = 0.45  # the chosen prototype at least this near (same species: 0.63-0.76)
MARGIN = 0.3  # and this much nearer than any other (other species: below 0.2)


@dataclass(frozen=True)
class SpeciesGuess:
    """The profile the photos show (None: no clear one), the sample's cosine to each
    prototype, and how many photos were embedded."""

    profile: str | None
    cosines: dict[str, float] = field(default_factory=dict)
    photos: int = 0

    def describe(self) -> str:
        near = ", ".join(f"{cos:.2f} to {name}" for name, cos in
                         sorted(self.cosines.items(), key=lambda kv: -kv[1]))
        return f"{self.photos} photos embedded; cosine {near}" if near else "no photo embedded"


@dataclass(frozen=True)
class Prototypes:
    model_id: str
    model_version: str
    vectors: dict[str, np.ndarray]


def load_prototypes(path: Path = PROTOTYPES_PATH) -> Prototypes:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        vectors = {name: _unit(np.asarray(v, np.float32))
                   for name, v in data["prototypes"].items()}
        return Prototypes(str(data["model"]["id"]), str(data["model"]["version"]), vectors)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WildIdError(f"cannot read species prototypes {path}: {exc}") from exc


def sample_paths(paths: Sequence[Path], n: int = SAMPLE) -> list[Path]:
    """``n`` photos spread evenly over ``paths`` in name order (the same every run)."""
    ordered = sorted(set(map(Path, paths)))
    if len(ordered) <= n:
        return ordered
    step = len(ordered) / n
    return [ordered[int(i * step)] for i in range(n)]


def guess_from_photos(paths: Sequence[Path], prototypes: Prototypes | None = None,
                      embedder: object | None = None) -> SpeciesGuess:
    """Which prototype a sample of ``paths`` lies clearly nearest (see the module docstring).
    Unreadable photos are skipped; without the prototypes' model, nothing is guessed."""
    try:
        protos = prototypes or load_prototypes()
        model = embedder or _embedder(protos)
    except (ModelError, WildIdError) as exc:
        log.warning("species not guessed from the photos: %s", exc)
        return SpeciesGuess(None)
    from wildid.vision.image_io import load_image

    images = []
    for path in sample_paths(paths):
        try:
            images.append(load_image(path))
        except (ImageError, OSError) as exc:
            log.info("species guess: %s skipped (%s)", path, exc)
    if not images:
        return SpeciesGuess(None)
    vectors = np.asarray(model.embed(images), np.float32)  # type: ignore[attr-defined]
    mean = _unit(np.mean([_unit(v) for v in vectors], axis=0))
    cosines = {name: float(mean @ proto) for name, proto in protos.vectors.items()}
    ranked = sorted(cosines.items(), key=lambda kv: -kv[1])
    best, cos = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else -1.0
    chosen = best if cos >= MIN_COSINE and cos - runner_up >= MARGIN else None
    return SpeciesGuess(chosen, cosines, len(images))


def suggest_species(catalog: Any, report: ImportReport) -> SpeciesGuess | None:
    """For an import that left its encounters without a species (none given, none shared by
    the catalog's individuals): what its photos look like, stored as the report's
    ``species_suggested`` when one profile is clearly nearest. A suggestion only: nothing
    is written, since a species the prototypes never saw (a zebra) may land near one of
    them; ``wildid species`` or *Set species…* applies it. None when there is nothing to ask."""
    if report.species or not report.new_encounter_ids:
        return None
    from sqlalchemy import select

    from wildid.catalog.models import Annotation, Photo
    from wildid.review.details import chunks

    with catalog.session() as s:  # a whole import's encounters, in bounded INs
        rows = [row for part in chunks(report.new_encounter_ids)
                for row in s.execute(select(Photo.stored_path, Photo.original_path)
                                     .join(Annotation, Annotation.photo_id == Photo.id)
                                     .where(Annotation.encounter_id.in_(part))
                                     .distinct())]
    paths = [catalog.photo_path(stored, original) for stored, original in rows]
    guess = guess_from_photos(paths)
    report.species_suggested = guess.profile
    return guess


def _embedder(protos: Prototypes) -> object:
    from wildid.vision.registry import ModelRegistry

    model = ModelRegistry().embedder(protos.model_id)
    if model.manifest.version != protos.model_version:  # type: ignore[attr-defined]
        raise ModelError(f"the prototypes are for {protos.model_id} {protos.model_version}, "
                         f"installed is {model.manifest.version}")  # type: ignore[attr-defined]
    return model


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
