"""The review screen's background refresh of out-of-date candidates (``Services.refresh_matches``)
with the real engine, beyond what tests/gui/test_identification_flow.py shows end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.photofactory import make_animal_pair
from wildid.catalog.models import Annotation, Photo
from wildid.engine import forget
from wildid.ingest.importer import ImportOptions, run_import

JOB_TIMEOUT_MS = 120_000


def _encounter_of(catalog: Any, path: Path) -> str:
    with catalog.session() as s:
        return s.scalars(select(Annotation.encounter_id).join(Photo)
                         .where(Photo.original_path == str(path))).one()


def test_an_encounter_with_nothing_to_match_is_not_refreshed_at_every_step(
        services: Any, settings: Any, qtbot: Any, tmp_path: Path) -> None:
    """Its photo gone after the import: the refresh finds nothing to match, and the next asks
    queue no job until something about the encounter changes."""
    from wildid.gui.services import changes

    catalog = services.catalog
    shot, _ = make_animal_pair(tmp_path / "photos", 43, seeds=(86, 87), width=640, height=480)
    run_import(catalog, [shot.path], ImportOptions(burst_gap_s=-1, reference_in_place=True,
                                                   workers=1))
    shot.path.unlink()
    encounter = _encounter_of(catalog, shot.path)
    settings.auto_identify = True
    assert services.refresh_matches([encounter]) is not None
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    # nothing to match: no candidates stored, and asked again nothing is queued
    assert services.refresh_matches([encounter]) is None
    services.notify(changes([encounter]))  # a box edit, say
    assert services.refresh_matches([encounter]) is not None
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    forget(catalog)
