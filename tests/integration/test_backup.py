"""``wildid backup``: a consistent copy of a catalog in use, incremental for its originals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.photofactory import make_dated_shots
from wildid.catalog import open_catalog
from wildid.catalog.backup import backup_catalog, report_lines
from wildid.catalog.models import Decision, Photo
from wildid.cli import main as cli_main
from wildid.errors import CatalogError
from wildid.ingest.importer import ImportOptions, run_import
from wildid.review import new_individual


def _counts(catalog) -> tuple[int, int]:
    with catalog.session() as s:
        return (s.scalar(select(func.count()).select_from(Photo)),
                s.scalar(select(func.count()).select_from(Decision)))


def test_a_backup_of_a_catalog_in_use_is_whole_and_the_next_copies_only_new_photos(
        catalog, tmp_path: Path) -> None:
    """The catalog stays open (its latest commits in the WAL file beside the database, where
    a copy of catalog.sqlite alone would miss them); the backup opens as a catalog with every
    photo and decision, and each original byte for byte."""
    run_import(catalog, make_dated_shots(tmp_path / "card1", 6), ImportOptions(species="zebra"))
    with catalog.session() as s:
        encounter = s.scalars(select(Photo).limit(1)).one().annotations[0].encounter_id
    new_individual(catalog, encounter, "Stripy", "tester")
    assert (catalog.root / "catalog.sqlite-wal").stat().st_size > 0  # not checkpointed
    target = tmp_path / "backups" / "zebras"
    report = backup_catalog(catalog, target)
    assert (report.photos, report.copied, report.missing, report.in_place) == (6, 6, [], 0)
    with open_catalog(target, create=False) as copy:
        assert _counts(copy) == _counts(catalog) == (6, 1)
        assert copy.meta("catalog_id") == catalog.meta("catalog_id")
        with copy.session() as s:
            for photo in s.scalars(select(Photo)):
                assert copy.media.path(photo.stored_path).read_bytes() == \
                    catalog.media.path(photo.stored_path).read_bytes()
    assert not (target / "cache").exists()  # rebuilt when needed, not copied

    again = backup_catalog(catalog, target)
    assert (again.photos, again.copied, again.resumed) == (6, 0, False)
    assert "all there from an earlier backup" in report_lines(again)[0]
    run_import(catalog, make_dated_shots(tmp_path / "card2", 3, first=6), ImportOptions(species="zebra"))
    third = backup_catalog(catalog, target)
    assert (third.photos, third.copied) == (9, 3)
    with open_catalog(target, create=False) as copy:
        assert _counts(copy) == (9, 1)


def test_a_backup_goes_nowhere_it_could_do_harm(catalog, tmp_path: Path) -> None:
    inside = catalog.root / "backup"
    with pytest.raises(CatalogError, match="inside the catalog itself"):
        backup_catalog(catalog, inside)
    busy = tmp_path / "Documents"
    busy.mkdir()
    (busy / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(CatalogError, match="holds other files"):
        backup_catalog(catalog, busy)
    other = open_catalog(tmp_path / "other")
    other.close()
    with pytest.raises(CatalogError, match="holds another catalog"):
        backup_catalog(catalog, tmp_path / "other")
    assert [p.name for p in busy.iterdir()] == ["thesis.docx"] and not inside.exists()


def test_cli_backup_says_what_it_copied(catalog, tmp_path: Path, capsys) -> None:
    run_import(catalog, make_dated_shots(tmp_path / "card", 2), ImportOptions(species="zebra"))
    run_import(catalog, make_dated_shots(tmp_path / "kept", 1, first=2),
               ImportOptions(species="zebra", reference_in_place=True))
    args = ["backup", "--catalog", str(catalog.root), str(tmp_path / "bk")]
    assert cli_main(args) == 0
    said = capsys.readouterr().out
    assert "and 2 originals, all copied" in said
    assert "1 photos were imported to stay where they are" in said
    assert cli_main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["photos"], report["copied"], report["in_place"]) == (2, 0, 1)


def test_a_backup_cut_short_is_taken_up_again(catalog, tmp_path: Path) -> None:
    """Cancelled half-way (or stopped by a full disk), the folder holds some originals and no
    database (it is written last); backing up into it again finishes the job instead of
    refusing a folder of "other files"."""
    from wildid.errors import Cancelled
    from wildid.progress import CancelToken

    run_import(catalog, make_dated_shots(tmp_path / "card", 6), ImportOptions(species="zebra"))
    token = CancelToken()

    def progress(p) -> None:
        if p.done >= 3:
            token.cancel()

    target = tmp_path / "bk"
    with pytest.raises(Cancelled):
        backup_catalog(catalog, target, progress=progress, cancel=token)
    assert not (target / "catalog.sqlite").exists()
    copied_first = sum(1 for p in (target / "media").rglob("*") if p.is_file())
    assert 0 < copied_first < 6
    report = backup_catalog(catalog, target)
    assert (report.photos, report.copied, report.resumed) == (6, 6 - copied_first, True)
    assert "the rest there from the backup cut short before" in report_lines(report)[0]
    with open_catalog(target, create=False) as copy:
        assert _counts(copy) == (6, 0)
