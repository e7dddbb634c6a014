"""Generated "animals" for the engine's integration tests: each has unique markings and is
photographed twice, in two scenes, under a perspective change (fixtures in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.photofactory import make_animal_pair
from wildid.catalog.models import Annotation, Photo
from wildid.ingest.importer import ImportOptions, run_import

PATTERNS = (11, 12, 13, 14, 15)


def make_photos(root: Path) -> dict[str, list[Path]]:
    """Two photos of each pattern: ``db`` (named in the catalog) and ``query`` (to identify)."""
    out: dict[str, list[Path]] = {"db": [], "query": []}
    for p in PATTERNS:
        first, second = make_animal_pair(root / "src", p, seeds=(2 * p, 2 * p + 1), width=800,
                                         height=600)  # every photo its own scene
        for split, shot in (("db", first), ("query", second)):
            target = root / split / shot.path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shot.path.rename(target)
            out[split].append(target)
    return out


def encounter_of(catalog, path: Path) -> str:
    with catalog.session() as s:
        return s.scalars(select(Annotation.encounter_id).join(Photo)
                         .where(Photo.original_path == str(path))).one()


def import_photos(catalog, files: list[Path]) -> None:
    report = run_import(catalog, files, ImportOptions(burst_gap_s=-1, reference_in_place=True,
                                                      workers=1))
    assert not report.skipped, report.skipped
