"""Work on a whole import or a whole profile at once stays under SQLite's bound-variable limit:
999 before SQLite 3.32, which some Linux Pythons still link, where one ``IN`` list of every
annotation of a large catalog failed with "too many SQL variables"."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import event

from wildid.engine import engine_for, forget
from wildid.engine.species_guess import suggest_species
from wildid.ingest.importer import ImportReport


@pytest.fixture
def limited(catalog):
    """The catalog with every connection from now on limited to 999 bound variables."""
    event.listen(catalog.engine, "connect",
                 lambda conn, _record: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999))
    catalog.engine.dispose()
    return catalog


def test_a_whole_profiles_features_load_in_bounded_reads(limited) -> None:
    """``wildid calibrate`` loads the features of every annotation of a profile at once."""
    try:
        local, vectors = engine_for(limited).load_features([f"a{i}" for i in range(2500)])
        assert local == {} and vectors == {}
    finally:
        forget(limited)


def test_a_large_imports_species_suggestion_reads_in_bounded_reads(limited) -> None:
    report = ImportReport("batch", "completed", new_encounter_ids=[f"e{i}" for i in range(2500)])
    guess = suggest_species(limited, report)  # no photos behind these ids: nothing to suggest
    assert guess is not None and guess.profile is None
