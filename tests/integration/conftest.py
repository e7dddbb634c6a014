"""Fixtures of the engine's integration tests: generated animals, some of them named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.integration.animals import PATTERNS, encounter_of, import_photos, make_photos
from wildid.catalog.models import Encounter
from wildid.engine import forget
from wildid.review import new_individual


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return make_photos(tmp_path_factory.mktemp("animals"))


@pytest.fixture
def known(catalog, photos) -> Iterator[dict[int, str]]:
    """The database photos imported and each named as a new individual."""
    import_photos(catalog, photos["db"])
    ids = {}
    for p, path in zip(PATTERNS, photos["db"], strict=True):
        enc = encounter_of(catalog, path)
        new_individual(catalog, enc, f"animal-{p}", "Tester")
        with catalog.session() as s:
            ids[p] = s.scalars(select(Encounter.individual_id).where(Encounter.id == enc)).one()
    yield ids
    forget(catalog)
