"""An import that fills the disk: it stops at once with a clear error, keeps what it
committed, removes the files it wrote for photos left without a row, and a second import
after space is freed brings in the rest, each photo once.

Measured before (a 6 MB filesystem holding a 60-photo nyala catalog, a second card of 60):
"catalog database error: (sqlite3.OperationalError) database or disk is full (Background on
this error at: https://sqlalche.me/...)", and 9 originals left in the media folder that no
photo row named. The database filling is real here (SQLite's own ``max_page_count`` limit,
which fails exactly as a full disk does: SQLITE_FULL); a full disk under the originals is an
``OSError`` ENOSPC injected at the file system call the writes go through.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import event, select

from tests.photofactory import make_dated_shots
from wildid.catalog.models import Photo
from wildid.errors import DiskFullError
from wildid.ingest.importer import ImportOptions, run_import


def _options() -> ImportOptions:
    return ImportOptions(species="zebra", workers=1, commit_every=5)


def _files(folder: Path) -> set[str]:
    return {p.name.split(".")[0].split("_")[0] for p in folder.rglob("*") if p.is_file()}


def _check_consistent(catalog) -> set[str]:
    """Every photo row has its original and thumbnail, and no file is left without a row."""
    with catalog.session() as s:
        shas = set(s.scalars(select(Photo.sha256)))
    assert _files(catalog.media.root) == shas
    assert _files(catalog.thumb_dir) == shas
    return shas


def test_the_database_filling_stops_the_import_and_keeps_what_it_saved(catalog,
                                                                         tmp_path: Path) -> None:
    first = make_dated_shots(tmp_path / "first", 5)
    assert run_import(catalog, first, _options()).imported == 5
    with catalog.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    def limit(dbapi, _record) -> None:  # every new connection: the database cannot grow much
        dbapi.execute(f"PRAGMA max_page_count={pages + 2}")

    event.listen(catalog.engine, "connect", limit)
    catalog.engine.dispose()
    card = make_dated_shots(tmp_path / "card", 40, first=5)
    with pytest.raises(DiskFullError) as raised:
        run_import(catalog, card, _options())
    message = str(raised.value)
    assert message.startswith(f"the disk holding the catalog is full ({catalog.root}, ")
    assert "import the same folders again once there is room" in message
    assert "database error" not in message and "sqlalche.me" not in message
    saved = len(_check_consistent(catalog)) - 5
    assert 0 < saved < 40
    assert f"{saved} photos of this import were saved before it filled" in message

    event.remove(catalog.engine, "connect", limit)  # space freed
    catalog.engine.dispose()
    report = run_import(catalog, card, _options())
    assert (report.status, report.imported, report.duplicates) == ("completed", 40 - saved, saved)
    assert len(_check_consistent(catalog)) == 45


def test_a_full_disk_under_the_originals_stops_at_once_and_removes_what_it_wrote(
        catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = make_dated_shots(tmp_path / "card", 20)
    real_replace = os.replace
    calls = {"n": 0}

    def filling(src, dst) -> None:  # a thumbnail and an original per photo; the 8th fills it
        calls["n"] += 1
        if calls["n"] > 2 * 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", filling)
    with pytest.raises(DiskFullError) as raised:
        run_import(catalog, card, _options())
    # stopped at the first full write (the photos already read ahead fail with it), instead
    # of trying the other 12 and reporting each one as skipped
    assert 2 * 7 + 1 <= calls["n"] <= 2 * 7 + 1 + 2 * 3
    assert "5 photos of this import were saved before it filled" in str(raised.value)
    assert len(_check_consistent(catalog)) == 5  # photos 6 and 7 wrote files: removed
    assert not [p for p in catalog.root.rglob(".*") if p.is_file() and "tmp" in p.name]

    monkeypatch.setattr(os, "replace", real_replace)
    report = run_import(catalog, card, _options())
    assert (report.status, report.imported, report.duplicates) == ("completed", 15, 5)
    assert len(_check_consistent(catalog)) == 20


def test_a_cancel_that_meets_a_full_disk_removes_what_it_wrote(catalog, tmp_path: Path) -> None:
    """Cancel commits what was prepared; when that commit finds the disk full, the photos'
    files are removed as on any full disk, and the error says so."""
    from wildid.progress import CancelToken

    first = make_dated_shots(tmp_path / "first", 3)
    assert run_import(catalog, first, _options()).imported == 3
    with catalog.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    def limit(dbapi, _record) -> None:
        dbapi.execute(f"PRAGMA max_page_count={pages}")  # not one page more

    event.listen(catalog.engine, "connect", limit)
    catalog.engine.dispose()
    from wildid.catalog.models import Meta

    for n in range(10_000):  # fill what room the last pages have left
        try:
            with catalog.session() as s:
                s.add(Meta(key=f"filler-{n}", value="x" * 500))
        except DiskFullError:
            break
    token = CancelToken()
    seen = []

    def progress(p) -> None:  # Cancel at the 14th photo: more rows than the pages hold
        seen.append(p)
        if p.done >= 14:
            token.cancel()

    card = make_dated_shots(tmp_path / "card", 20, first=3)
    options = ImportOptions(species="zebra", workers=1, commit_every=100)
    with pytest.raises(DiskFullError, match="Nothing of this import was saved"):
        run_import(catalog, card, options, progress=progress, cancel=token)
    assert token.cancelled
    event.remove(catalog.engine, "connect", limit)
    catalog.engine.dispose()
    assert len(_check_consistent(catalog)) == 3
