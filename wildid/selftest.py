"""``wildid self-test``: does this installation identify animals? Offline, in a throwaway catalog.

Why: an installed wildid can start and still fail at the first identification: a model file
left out of the build, an onnxruntime that cannot run on this CPU, a codec missing, a user's
model that is broken. The maintainers' build check (``tests/packaging/check_frozen.py``) runs
on the build machine; this runs wherever wildid is installed, with nothing but what was
installed, and says which step failed and why. Its photos are generated
(``wildid.synthetic``): per species profile, two patterned animals and a second sighting of
the first in another scene and pose, which must rank its animal first; and a file cut short,
which must be skipped. Nyala runs every shipped model (the re-identification embedder that
places keypoints, ALIKED and LightGlue for the re-ranking), lion its descriptor projection and
photometric check. An unexpected error is logged with its traceback.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from wildid.errors import WildIdError
from wildid.synthetic import render

__all__ = ["SelfTestReport", "Step", "run_self_test"]

log = logging.getLogger(__name__)

SIZE = (800, 600)
WARP = 0.25
# Per species profile, (pattern, scene seed) of each photo: two animals, then the first again
# in another scene and pose. Nyala runs every shipped model (the re-identification embedder
# places its keypoints; ALIKED and LightGlue re-rank); lion its projection of the descriptors
# and the photometric check.
PHOTOS = {"nyala": {"a.jpg": (61, 3), "b.jpg": (62, 5), "a_again.jpg": (61, 4)},
          "lion": {"a.jpg": (63, 7), "b.jpg": (64, 9), "a_again.jpg": (63, 8)}}
RERANKED = {"nyala"}  # profiles whose best candidate must carry LightGlue evidence


@dataclass
class Step:
    """One step of the test: what it checked, whether it passed, in how long, and what it
    found (or why it failed)."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class SelfTestReport:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def lines(self) -> list[str]:
        """One line per step, as the CLI prints and the app shows them."""
        return [f"{'ok  ' if s.ok else 'FAIL'}  {s.name} ({s.seconds:.1f} s): {s.detail}"
                for s in self.steps]


def _write_photos(folder: Path) -> dict[str, Path]:
    """The photos by ``species/name``, and ``cut_short.jpg``: a card's photo cut short."""
    paths = {}
    for species, photos in PHOTOS.items():
        (folder / species).mkdir(parents=True, exist_ok=True)
        for name, (pattern, seed) in photos.items():
            rgb, _box = render(*SIZE, seed=seed, pattern_seed=pattern, warp=WARP)
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise WildIdError("OpenCV could not encode a JPEG")
            path = paths[f"{species}/{name}"] = folder / species / name
            path.write_bytes(data.tobytes())
    cut = paths["cut_short.jpg"] = folder / "cut_short.jpg"
    cut.write_bytes(paths["nyala/a.jpg"].read_bytes()[:3000])
    return paths


def _models() -> str:
    from wildid.engine.identification import active_profiles
    from wildid.engine.model_uses import model_uses
    from wildid.engine.runtime import default_registry

    registry = default_registry()
    uses = model_uses(registry, active_profiles())
    entries = {e.id: e for e in registry.list()}
    broken = [f"{model_id}: {entries[model_id].problem if model_id in entries else 'missing'}"
              for model_id in sorted(uses)
              if model_id not in entries or not entries[model_id].ok]
    if broken:
        raise WildIdError("models in use are not usable: " + "; ".join(broken))
    return f"{len(uses)} in use, all intact ({', '.join(sorted(uses))})"


def _encounter_of(catalog: Any, path: Path) -> str:
    from sqlalchemy import select

    from wildid.catalog.models import Annotation, Photo

    with catalog.session() as s:
        return s.scalars(select(Annotation.encounter_id).join(Photo)
                         .where(Photo.original_path == str(path.resolve()))).one()


def run_self_test(progress: Callable[[str], None] | None = None,
                  workdir: Path | None = None) -> SelfTestReport:
    """Run every step, stopping at the first that fails (the later ones need it)."""
    from sqlalchemy import select

    from wildid.catalog import open_catalog
    from wildid.catalog.models import Individual, MatchCandidate
    from wildid.engine import forget, identify_new
    from wildid.ingest.importer import ImportOptions, run_import
    from wildid.review import new_individual

    report = SelfTestReport()
    state: dict[str, Any] = {}

    def step(name: str, work: Callable[[], str]) -> bool:
        if progress is not None:
            progress(name)
        t0 = time.perf_counter()
        try:
            detail, ok = work(), True
        except WildIdError as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - any failure is this step's finding
            log.exception("self-test step %s failed", name)
            detail, ok = f"{type(exc).__name__}: {exc}", False
        report.steps.append(Step(name, ok, time.perf_counter() - t0, detail))
        return ok

    with tempfile.TemporaryDirectory(prefix="wildid-self-test-", dir=workdir) as tmp:
        root = Path(tmp)

        def photos() -> str:
            state["paths"] = _write_photos(root / "card")
            return (f"{len(state['paths']) - 1} generated photos and one cut short, "
                    f"{SIZE[0]}x{SIZE[1]}")

        def catalog() -> str:
            state["catalog"] = open_catalog(root / "catalog", create=True)
            return "a new catalog opens"

        def known() -> str:
            cat, paths = state["catalog"], state["paths"]
            for species in PHOTOS:
                options = ImportOptions(species=species, burst_gap_s=-1.0,
                                        reference_in_place=True, workers=1)
                files = [paths[f"{species}/a.jpg"], paths[f"{species}/b.jpg"]]
                done = run_import(cat, files + ([paths["cut_short.jpg"]]
                                                if species == "nyala" else []), options)
                if done.imported != 2 or len(done.skipped) != (species == "nyala"):
                    raise WildIdError(f"{species}: expected 2 photos imported, got "
                                      f"{done.imported}; skipped: {done.skipped}")
                for name, label in (("a.jpg", "A"), ("b.jpg", "B")):
                    new_individual(cat, _encounter_of(cat, paths[f"{species}/{name}"]),
                                   f"{species.capitalize()} {label}", "self-test")
            return ("4 photos imported and named (2 nyala, 2 lion); the one cut short "
                    "skipped and said why")

        def identify(species: str) -> Callable[[], str]:
            def work() -> str:
                cat, paths = state["catalog"], state["paths"]
                again = paths[f"{species}/a_again.jpg"]
                t0 = time.perf_counter()
                run_import(cat, [again], ImportOptions(species=species, reference_in_place=True,
                                                       workers=1))
                result = identify_new(cat)
                seconds = time.perf_counter() - t0
                failed = result.extraction.failed if result.extraction is not None else []
                if failed:
                    raise WildIdError(f"features failed: {failed[0][1]}")
                encounter = _encounter_of(cat, again)
                with cat.session() as s:
                    ranked = s.execute(select(Individual.name, MatchCandidate.raw_scores)
                                       .join(Individual,
                                             Individual.id == MatchCandidate.individual_id)
                                       .where(MatchCandidate.encounter_id == encounter)
                                       .order_by(MatchCandidate.rank)).all()
                names = [name for name, _raw in ranked]
                wanted = f"{species.capitalize()} A"
                if names[:1] != [wanted]:
                    raise WildIdError(f"the second sighting of {wanted} ranks "
                                      f"{', '.join(names) or 'nobody'} first, not {wanted}")
                detail = (f"the second sighting ranks {wanted} first of {len(names)} in "
                          f"{seconds:.1f} s")
                if species in RERANKED:
                    lightglue = (ranked[0][1] or {}).get("lightglue", 0.0)
                    if lightglue <= 0.0:
                        raise WildIdError("the learned re-ranking (ALIKED and LightGlue) did "
                                          "not run")
                    detail += f", re-ranked by LightGlue (evidence {lightglue:.1f})"
                return detail
            return work

        try:
            steps: list[tuple[str, Callable[[], str]]] = [
                ("models", _models), ("photos", photos), ("catalog", catalog),
                ("import and name", known)]
            steps += [(f"identify ({species} profile)", identify(species)) for species in PHOTOS]
            for name, work in steps:
                if not step(name, work):
                    break
        finally:
            cat = state.get("catalog")
            if cat is not None:
                forget(cat)
                cat.close()
    return report
