from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from wildid.catalog import open_catalog
from wildid.catalog.migrate import HEAD_REVISION, head_revision
from wildid.catalog.models import Annotation, Base, Decision, Encounter, Individual, Photo
from wildid.catalog.store import STRIPS_PENDING
from wildid.errors import CatalogError, CatalogVersionError


def _photo(sha: str = "a" * 64, **kw: object) -> Photo:
    fields: dict[str, object] = dict(sha256=sha, original_path="/card/IMG_1.JPG", file_size=10,
                                     format="JPEG", width=40, height=30)
    fields.update(kw)
    return Photo(**fields)


def test_new_catalog_is_at_head_with_wal_and_foreign_keys(catalog) -> None:
    with catalog.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        rev = MigrationContext.configure(conn).get_current_revision()
    assert rev == head_revision()
    assert catalog.meta("catalog_id")
    assert (catalog.root / "catalog.sqlite").exists()


def test_an_up_to_date_catalog_opens_without_loading_alembic(tmp_path: Path) -> None:
    """Every command opens the catalog; Alembic is a sixth of its start-up and only needed to
    migrate. The shortcut trusts HEAD_REVISION, so it must name the newest migration."""
    import subprocess
    import sys

    assert HEAD_REVISION == head_revision()
    open_catalog(tmp_path / "c").close()  # created and migrated (Alembic loaded here)
    probe = ("import sys; from wildid.catalog import open_catalog; "
             f"open_catalog({str(tmp_path / 'c')!r}).close(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_models_match_migrated_schema(catalog) -> None:
    """The ORM classes and the Alembic migrations describe the same schema."""
    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_from_first_migration_keeps_data_and_backs_up(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    old = open_catalog(root, target_revision="0001")
    with old.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO individuals (id, name, aliases, notes, created_at, updated_at) "
            "VALUES ('ind-1', 'Stripe', '[]', '', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        assert "features" not in {r[0] for r in conn.execute(
            text("SELECT name FROM sqlite_master WHERE type='table'"))}
    old.close()

    cat = open_catalog(root)
    try:
        assert cat.migration_backup is not None and cat.migration_backup.exists()
        with cat.session() as s:
            assert s.get(Individual, "ind-1").name == "Stripe"
        with cat.engine.connect() as conn:
            tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        assert "features" in tables
        backup = sqlite3.connect(cat.migration_backup)
        assert backup.execute("SELECT name FROM individuals").fetchall() == [("Stripe",)]
        assert backup.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        backup.close()
    finally:
        cat.close()
    # Opening an up-to-date catalog makes no further backup.
    again = open_catalog(root)
    assert again.migration_backup is None
    again.close()


def test_catalog_from_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    open_catalog(root).close()
    db = root / "catalog.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(CatalogVersionError, match="newer wildid"):
        open_catalog(root)
    assert db.read_bytes() == before
    assert not (root / "backups").exists()


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    root.mkdir()
    (root / "catalog.sqlite").write_text("hello")
    with pytest.raises(CatalogError, match="not SQLite"):
        open_catalog(root)


def _read_only_mount(folder: Path) -> bool:
    """A real read-only file system at ``folder`` (root with mount rights only; else False)."""
    import subprocess

    folder.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(folder)],
                        capture_output=True).returncode == 0
    return ok


def test_a_catalog_on_a_read_only_disk_is_refused_clearly(tmp_path: Path) -> None:
    """A write-locked card, a read-only share: before, the first query failed with a
    traceback ending in "unable to open database file"."""
    import subprocess

    disk = tmp_path / "disk"
    if not _read_only_mount(disk):
        pytest.skip("cannot mount a file system here (needs root with mount rights)")
    try:
        open_catalog(disk / "cat").close()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(CatalogError) as raised:
            open_catalog(disk / "cat")
        assert str(raised.value).startswith(f"cannot write to the catalog in {disk / 'cat'}: "
                                            "the disk it is on is read-only")
        assert "copy the catalog folder somewhere you can write" in str(raised.value)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_catalog_the_user_may_not_write_is_refused_clearly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's folder (simulated: as root every permission check passes)."""
    import os

    root = tmp_path / "cat"
    open_catalog(root).close()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == root
                        else real_access(p, mode))
    with pytest.raises(CatalogError, match=r"cannot write to the catalog in .*: you may not "
                                           r"write there"):
        open_catalog(root)


def test_a_damaged_database_says_what_to_do(tmp_path: Path) -> None:
    """A failing card or a copy cut short damages the file: the error names the file, says
    the photos are separate and unaffected, and how to restore or recover, instead of a raw
    "(sqlite3.DatabaseError) database disk image is malformed" and a link."""
    from wildid.catalog.models import Meta

    root = tmp_path / "cat"
    catalog = open_catalog(root)
    with catalog.session() as s:
        s.add_all(Meta(key=f"filler-{i}", value="x" * 400) for i in range(400))
    catalog.close()
    db = root / "catalog.sqlite"
    data = bytearray(db.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle:middle + 4 * page] = b"\x00" * 4 * page  # four pages of rows zeroed
    db.write_bytes(bytes(data))
    catalog = open_catalog(root)
    try:
        with pytest.raises(CatalogError) as raised:
            with catalog.session() as s:
                list(s.scalars(select(Meta.value)))
    finally:
        catalog.close()
    message = str(raised.value)
    assert message.startswith(f"the catalog database {db} is damaged (SQLite: ")
    assert f"The photos in {root / 'media'} are separate files and unaffected" in message
    assert ".recover" in message and "sqlalche.me" not in message

    data[16:24] = b"\xff" * 8  # the header itself
    db.write_bytes(bytes(data))
    with pytest.raises(CatalogError, match=r"is damaged \(SQLite: file is not a database\)"):
        open_catalog(root)


def test_open_without_create(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog"):
        open_catalog(tmp_path / "missing", create=False)


def test_times_round_trip_as_utc(catalog) -> None:
    shot = datetime(2026, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    with catalog.session() as s:
        s.add(_photo(taken_utc=shot, utc_offset_minutes=120, tz_known=True,
                     taken_raw="2026:03:01 14:30:00"))
    with catalog.session() as s:
        p = s.scalars(select(Photo)).one()
        assert p.taken_utc == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
        assert p.utc_offset_minutes == 120 and p.taken_raw == "2026:03:01 14:30:00"


def test_sha256_is_unique(catalog) -> None:
    with catalog.session() as s:
        s.add(_photo())
    with pytest.raises(CatalogError):
        with catalog.session() as s:
            s.add(_photo())


def test_foreign_keys_are_enforced(catalog) -> None:
    with pytest.raises(CatalogError):
        with catalog.session() as s:
            s.add(Annotation(photo_id="no-such-photo", w=1, h=1))


def test_deleting_a_photo_cascades_to_annotations(catalog) -> None:
    with catalog.session() as s:
        p = _photo()
        enc = Encounter()
        s.add_all([p, enc])
        s.flush()
        s.add(Annotation(photo=p, encounter=enc, w=40, h=30))
    with catalog.session() as s:
        s.delete(s.scalars(select(Photo)).one())
    with catalog.session() as s:
        assert s.scalars(select(Annotation)).all() == []
        assert len(s.scalars(select(Encounter)).all()) == 1


def test_ids_are_client_minted_uuid7(catalog) -> None:
    with catalog.session() as s:
        ind = Individual(name="A")
        s.add(ind)
        s.flush()
        enc = Encounter(individual=ind)
        s.add(enc)
        s.flush()
        s.add(Decision(encounter_id=enc.id, verdict="match", reviewer="me"))
    import uuid
    assert uuid.UUID(ind.id).version == 7


def test_upgrade_to_individual_decisions_keeps_the_audit_trail(tmp_path: Path) -> None:
    """0006 makes decisions.encounter_id nullable by rebuilding the table: every row and every
    undo link (``reverts_id``, a reference into the same table) must survive the rebuild."""
    root = tmp_path / "cat"
    old = open_catalog(root, target_revision="0005")
    with old.engine.begin() as conn:
        conn.execute(text("INSERT INTO encounters (id, state, created_at, updated_at) VALUES "
                          "('enc-1', 'confirmed', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        for did, verdict, reverts in (("d-1", "match", None), ("d-2", "revert", "d-1"),
                                      ("d-3", "match", "d-2")):
            conn.execute(text(
                "INSERT INTO decisions (id, encounter_id, verdict, reviewer, decided_at, "
                "reverts_id, note) VALUES (:i, 'enc-1', :v, 'Ada', '2026-01-01 00:00:00', :r, '')"),
                {"i": did, "v": verdict, "r": reverts})
    old.close()

    cat = open_catalog(root)
    try:
        with cat.session() as s:
            rows = {d.id: (d.verdict, d.encounter_id, d.reverts_id)
                    for d in s.scalars(select(Decision))}
            assert rows == {"d-1": ("match", "enc-1", None), "d-2": ("revert", "enc-1", "d-1"),
                            "d-3": ("match", "enc-1", "d-2")}
            s.add(Decision(encounter_id=None, verdict="rename", reviewer="Ada", note="renamed"))
        with cat.engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
            indexes = {r[1] for r in conn.execute(text("PRAGMA index_list('decisions')"))}
        assert {"ix_decisions_encounter_id", "ix_decisions_reverts_id", "ix_decisions_pair",
                "ix_decisions_candidate_individual_id"} <= indexes
        # deleting an encounter still cascades to its decisions (the rebuilt foreign keys hold)
        with cat.session() as s:
            s.delete(s.get(Encounter, "enc-1"))
        with cat.session() as s:
            assert [d.verdict for d in s.scalars(select(Decision))] == ["rename"]
    finally:
        cat.close()


def test_upgrade_to_data_strips_keeps_photos_whole(tmp_path: Path) -> None:
    """0007 adds the data strip rows to photos: photos imported before get 0 (nothing was
    looked for), so their automatic box stays the whole photo, and a downgrade drops them."""
    root = tmp_path / "cat"
    old = open_catalog(root, target_revision="0006")
    with old.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO photos (id, sha256, original_path, file_size, format, width, height, "
            "orientation, tz_known, imported_at) VALUES ('p-1', 'abc', '/card/a.jpg', 10, "
            "'JPEG', 640, 480, 1, 0, '2026-01-01 00:00:00')"))
    old.close()

    cat = open_catalog(root)
    try:
        assert cat.upgraded_from == "0006"
        # its photos were never looked at for data strips: the app offers `find-strips`
        assert cat.meta(STRIPS_PENDING) == "0006"
        with cat.session() as s:
            photo = s.get(Photo, "p-1")
            assert (photo.strip_top, photo.strip_bottom) == (0, 0)
            assert photo.picture_box() == (0.0, 0.0, 640.0, 480.0)
            photo.strip_bottom = 31
        with cat.session() as s:
            assert s.get(Photo, "p-1").picture_box() == (0.0, 0.0, 640.0, 449.0)
    finally:
        cat.close()
    from alembic import command

    from wildid.catalog.migrate import alembic_config

    cfg = alembic_config()
    cat = open_catalog(root)
    try:
        assert cat.upgraded_from is None  # nothing to upgrade this time
        assert cat.meta(STRIPS_PENDING) == "0006"  # until something looks
        with cat.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO annotations (id, photo_id, x, y, w, h, full_frame, viewpoint, "
                "created_at, updated_at) VALUES ('a-1', 'p-1', 0, 0, 640, 449, 1, 'unknown', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006")
            columns = {r[1] for r in conn.execute(text("PRAGMA table_info('photos')"))}
            # the photo's boxes stay (a copied and dropped photos table cascaded to them)
            kept = conn.execute(text("SELECT id FROM annotations")).scalars().all()
        assert "strip_top" not in columns and "strip_bottom" not in columns
        assert kept == ["a-1"]
    finally:
        cat.close()
