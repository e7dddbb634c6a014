"""The engine's index saved in the catalog folder: a new engine restores it instead of loading
every annotation, applies what changed in the catalog since, and builds it when the file is
damaged or of other settings."""

from __future__ import annotations

import logging
import os
import time

import pytest
from sqlalchemy import select

from tests.integration.animals import PATTERNS, encounter_of, import_photos
from wildid.catalog.models import Annotation, Feature
from wildid.engine import identification, index_cache
from wildid.engine.identification import CatalogEngine
from wildid.matching.identifier import Identifier
from wildid.review import confirm_match, merge_individuals, update_annotation


@pytest.fixture(autouse=True)
def _saves_are_due(monkeypatch) -> None:
    """These catalogs are tiny: building their index takes about as long as writing it, and
    the engine saves only when catching up costs more than writing (see the last test)."""
    monkeypatch.setattr(identification, "SAVE_BYTES_PER_SECOND", 1e15)


def _ranking(engine: CatalogEngine, encounter_id: str) -> list[tuple[str, float]]:
    match = engine.match_encounter(encounter_id, store=False)
    return [(str(c.individual_id), round(c.score, 6)) for c, _ in match.candidates]


def _loads(monkeypatch) -> list[int]:
    """How many annotations each ``Identifier.add_many`` call indexes (what loading costs)."""
    counts: list[int] = []
    original = Identifier.add_many

    def counting(self, items):
        items = list(items)
        counts.append(len(items))
        return original(self, items)

    monkeypatch.setattr(Identifier, "add_many", counting)
    return counts


def test_a_new_engine_restores_the_saved_index_instead_of_loading_it(
        catalog, photos, known, monkeypatch) -> None:
    import_photos(catalog, photos["query"][:2])
    path = index_cache.index_path(catalog.root, "default")
    path.parent.mkdir(parents=True)
    abandoned, writing = (path.with_name(f"default.{n}.tmp") for n in ("1.ab", "2.cd"))
    for tmp in (abandoned, writing):
        tmp.write_bytes(b"half an index")
    os.utime(abandoned, (time.time() - 7200, time.time() - 7200))  # a killed process's
    first = CatalogEngine(catalog)
    first.extract()
    assert first.sync() == len(PATTERNS)
    assert path.is_file() and list(path.parent.glob("*.tmp")) == [writing]
    assert path.stat().st_mode & 0o777 == writing.stat().st_mode & 0o777  # the umask's
    query = encounter_of(catalog, photos["query"][0])
    expected = _ranking(first, query)
    assert expected[0][0] == known[PATTERNS[0]]

    loads, seen = _loads(monkeypatch), []
    second = CatalogEngine(catalog)
    assert second.sync(lambda p: seen.append((p.stage, p.done, p.total))) == 0
    assert loads == [] and second.indexed == len(PATTERNS)
    assert seen == [("Restoring the index", 0, 1), ("Restoring the index", 1, 1)]
    assert _ranking(second, query) == expected  # the same candidates, to the score


def test_changes_made_since_the_save_are_applied_after_restoring(
        catalog, photos, known, monkeypatch) -> None:
    """Confirmed, merged and re-extracted annotations (a box moved), whoever changed the catalog
    meanwhile: the restored index ends as a fresh build of today's catalog."""
    import_photos(catalog, photos["query"])
    first = CatalogEngine(catalog)
    first.extract()
    first.sync()
    confirm_match(catalog, encounter_of(catalog, photos["query"][0]), known[PATTERNS[0]],
                  "Tester")
    merge_individuals(catalog, known[PATTERNS[1]], known[PATTERNS[2]], "Tester")
    moved = encounter_of(catalog, photos["db"][3])
    with catalog.session() as s:
        ann = s.scalars(select(Annotation).where(Annotation.encounter_id == moved)).one()
        box, ann_id = (ann.x + 40, ann.y + 30, ann.w - 80, ann.h - 60), ann.id
    update_annotation(catalog, ann_id, box=box)

    loads = _loads(monkeypatch)
    second = CatalogEngine(catalog)
    second.extract()  # the moved box's features again, with new ids
    # one confirmed annotation added, one moved box re-indexed; one relabelled by the merge
    assert second.sync() == 3
    assert loads == [2]
    fresh = CatalogEngine(catalog, persist_index=False)
    fresh.sync()
    assert second._indexed == fresh._indexed
    for path in photos["query"][1:]:
        enc = encounter_of(catalog, path)
        assert _ranking(second, enc) == _ranking(fresh, enc)


def test_a_moved_box_is_indexed_again_in_a_running_engine(catalog, photos, known) -> None:
    engine = CatalogEngine(catalog, persist_index=False)
    engine.extract()
    engine.sync()
    moved = encounter_of(catalog, photos["db"][0])
    with catalog.session() as s:
        ann = s.scalars(select(Annotation).where(Annotation.encounter_id == moved)).one()
        box, ann_id = (ann.x + 40, ann.y + 30, ann.w - 80, ann.h - 60), ann.id
    update_annotation(catalog, ann_id, box=box)
    assert engine.sync() == 1 and engine.indexed == len(PATTERNS) - 1  # its features are gone
    engine.extract()
    assert engine.sync() == 1 and engine.indexed == len(PATTERNS)
    with catalog.session() as s:
        ids = set(s.scalars(select(Feature.id).where(Feature.annotation_id == ann_id)))
    assert set(engine._indexed[ann_id].features.split(",")) <= ids


@pytest.mark.parametrize("damage", ["truncated", "other settings", "not an index",
                                    "a flipped byte"])
def test_an_unusable_saved_index_is_built_again(catalog, photos, known, monkeypatch, caplog,
                                                damage: str) -> None:
    import_photos(catalog, photos["query"][:1])
    first = CatalogEngine(catalog)
    first.extract()
    first.sync()
    query = encounter_of(catalog, photos["query"][0])
    expected = _ranking(first, query)
    path = index_cache.index_path(catalog.root, "default")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "not an index":
        path.write_bytes(b"not an index")
    elif damage == "a flipped byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 3] ^= 0x10  # inside the arrays (the JSON is at the end)
        path.write_bytes(bytes(data))
    else:
        digest = first.profiles["default"].settings_digest
        monkeypatch.setattr(type(first.profiles["default"]), "settings_digest",
                            lambda self: "x" + digest())
    loads = _loads(monkeypatch)
    second = CatalogEngine(catalog)
    with caplog.at_level(logging.WARNING, logger="wildid.engine.identification"):
        assert second.sync() == len(PATTERNS)
    assert "is not used" in caplog.text and loads == [len(PATTERNS)]
    if damage == "a flipped byte":  # caught by its checksum, checked after the restore
        assert "damaged (checksum)" in caplog.text
    assert _ranking(second, query) == expected
    assert path.is_file()  # saved again, whole
    assert CatalogEngine(catalog).sync() == 0


def test_a_checksum_failure_leaves_the_identifier_empty(catalog, photos, known) -> None:
    """The checksums are checked on a second thread while the arrays are restored, so the
    identifier is full when a mismatch is found: it is emptied before the error leaves."""
    from wildid.errors import MatchingError

    import_photos(catalog, photos["query"][:1])
    engine = CatalogEngine(catalog)
    engine.extract()
    engine.sync()
    path = index_cache.index_path(catalog.root, "default")
    header = engine._index_header("default")
    whole = engine.identifier("default")
    fresh = CatalogEngine(catalog).identifier("default")
    assert index_cache.read_index(path, fresh, header)["indexed"] and len(fresh) == len(whole)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))
    damaged = CatalogEngine(catalog).identifier("default")
    with pytest.raises(MatchingError, match="checksum"):
        index_cache.read_index(path, damaged, header)
    assert len(damaged) == 0 and not damaged.vectors and damaged.local.n_descriptors == 0


def test_a_folder_that_cannot_be_written_leaves_matching_working(catalog, photos, known,
                                                                 caplog) -> None:
    import_photos(catalog, photos["query"][:1])
    path = index_cache.index_path(catalog.root, "default")
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    path.parent.write_text("a file where the folder should be")
    engine = CatalogEngine(catalog)
    engine.extract()
    with caplog.at_level(logging.WARNING, logger="wildid.engine.identification"):
        assert engine.sync() == len(PATTERNS)
    assert "could not save the index" in caplog.text
    ranking = _ranking(engine, encounter_of(catalog, photos["query"][0]))
    assert ranking[0][0] == known[PATTERNS[0]]


def test_the_index_is_saved_only_when_catching_up_costs_more_than_writing(
        catalog, photos, known, monkeypatch) -> None:
    path = index_cache.index_path(catalog.root, "default")
    monkeypatch.setattr(identification, "SAVE_BYTES_PER_SECOND", 1.0)  # writing: forever
    slow = CatalogEngine(catalog)
    slow.extract()
    assert slow.sync() == len(PATTERNS) and not path.exists()
    monkeypatch.setattr(identification, "SAVE_BYTES_PER_SECOND", 1e15)  # writing: free
    fast = CatalogEngine(catalog)
    assert fast.sync() == len(PATTERNS) and path.is_file()


def test_a_save_that_would_fill_the_disk_is_skipped(catalog, photos, known, monkeypatch,
                                                    caplog) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(
        free=index_cache.KEEP_FREE_BYTES + 1000))
    import_photos(catalog, photos["query"][:1])
    engine = CatalogEngine(catalog)
    engine.extract()
    with caplog.at_level(logging.WARNING, logger="wildid.engine.identification"):
        assert engine.sync() == len(PATTERNS)
    assert "would leave less than 2 GB free" in caplog.text
    path = index_cache.index_path(catalog.root, "default")
    assert not path.exists() and not list(path.parent.glob("*.tmp"))
