"""Opening a catalog folder: database engine, migrations, media store and caches.

A catalog is a folder that can be moved or backed up as a whole::

    <catalog>/catalog.sqlite     the database (WAL mode, foreign keys on)
    <catalog>/media/             originals copied in, by sha256
    <catalog>/cache/thumbs/      thumbnails (safe to delete; rebuilt on demand)
    <catalog>/backups/           database copies made before each schema upgrade
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, exists, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from wildid import __version__
from wildid.catalog import migrate
from wildid.catalog.failures import damaged_message, disk_full_message, is_damaged, is_disk_full
from wildid.catalog.media import MediaStore
from wildid.catalog.models import ImportBatch, Meta, Photo
from wildid.catalog.types import utcnow
from wildid.errors import CatalogError, DiskFullError
from wildid.ids import new_id

DB_NAME = "catalog.sqlite"


def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode (only an OS crash can lose the
    # last commits), and much faster than FULL for batch imports.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(db_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _on_connect)
    return engine


class Catalog:
    """An open catalog. Use :meth:`session` for units of work; one session per thread."""

    def __init__(self, root: Path, engine: Engine, backup: Path | None) -> None:
        self.root = root
        self.engine = engine
        self.migration_backup = backup
        # the schema revision this opening upgraded the catalog from (None: no upgrade); what
        # the upgrade left undone is noted for later (``_initialise``, ``STRIPS_PENDING``)
        self.upgraded_from: str | None = None
        self.media = MediaStore(root / "media")
        self.thumb_dir = root / "cache" / "thumbs"
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            if is_disk_full(exc):
                raise DiskFullError(disk_full_message(self.root)) from exc
            if is_damaged(exc):
                raise CatalogError(damaged_message(self.db_path, exc)) from exc
            raise CatalogError(f"catalog database error: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def photo_path(self, stored_path: str | None, original_path: str) -> Path:
        """Where a photo's bytes are: in the media store when copied in, else where it was."""
        if stored_path:
            return self.media.path(stored_path)
        return Path(original_path)

    def meta(self, key: str) -> str | None:
        with self.session() as s:
            row = s.get(Meta, key)
            return None if row is None else row.value

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_catalog(path: Path | str, create: bool = True, target_revision: str = "head") -> Catalog:
    """Open (and by default create) the catalog folder at ``path``, migrating it to the head.

    ``target_revision`` exists for tests that build an old catalog and then upgrade it.
    """
    root = Path(path).expanduser().resolve()
    db_path = root / DB_NAME
    if not db_path.exists():
        if not create:
            raise CatalogError(f"no catalog at {root} (expected {DB_NAME} there); "
                               "`wildid import PHOTOS --catalog PATH` makes a new one")
        if root.exists() and not root.is_dir():
            raise CatalogError(f"{root} exists and is not a folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"cannot create the catalog folder {root}: {exc.strerror}") from exc
    _check_sqlite_file(db_path)
    _check_writable(root, db_path)
    engine = make_engine(db_path)
    try:
        before = migrate.stamped_revision(engine)
        backup = migrate.upgrade(engine, db_path, root / "backups", target_revision)
    except SQLAlchemyError as exc:
        engine.dispose()
        if is_damaged(exc):
            raise CatalogError(damaged_message(db_path, exc)) from exc
        raise CatalogError(f"cannot open the catalog database {db_path}: "
                           f"{getattr(exc, 'orig', None) or exc}") from exc
    except BaseException:
        engine.dispose()
        raise
    catalog = Catalog(root, engine, backup)
    if backup is not None:
        catalog.upgraded_from = before
    if target_revision == "head":
        _initialise(catalog)
    return catalog


# Meta key set when an opening upgrades a catalog from before imports looked for camera-trap
# data strips (revision 0007): its photos were never looked at. ``wildid find-strips`` clears
# it; the app offers that pass once while it is set, and ``wildid info`` mentions it.
STRIPS_PENDING = "data_strips_not_looked_for"
_STRIPS_SINCE = "0007"


def holds_other_files(folder: Path, allowed: Collection[str] = ()) -> bool:
    """Whether ``folder`` holds files of its own, so no catalog (or backup) may be made in it:
    anything but a catalog database, hidden files (``.DS_Store``, a desktop's index) and the
    ``allowed`` names. The app's *New catalog*, ``wildid import`` and ``wildid backup`` ask
    this one question, so a folder refused by one is refused by all."""
    if not folder.is_dir() or (folder / DB_NAME).exists():
        return False
    return any(not entry.name.startswith(".") and entry.name not in allowed
               for entry in folder.iterdir())


def _check_sqlite_file(db_path: Path) -> None:
    """Refuse clearly when the catalog file is not a SQLite database at all."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return
    with open(db_path, "rb") as fh:
        header = fh.read(16)
    if header != b"SQLite format 3\x00":
        raise CatalogError(f"{db_path} is not a wildid catalog database (not SQLite)")


def _check_writable(root: Path, db_path: Path) -> None:
    """Refuse clearly when the catalog cannot be written: on a read-only disk (a write-locked
    SD card, a read-only share, a backup disc) or in a folder of another user.

    Why: every decision, import and feature is written to the catalog, and SQLite in WAL mode
    writes beside the database even to read it, so such a catalog failed at its first query
    with a traceback ending in "unable to open database file".
    """
    targets = [root] + [p for p in (db_path, db_path.with_name(db_path.name + "-wal"))
                        if p.exists()]
    if all(os.access(p, os.W_OK) for p in targets):
        return
    try:
        read_only = bool(os.statvfs(root).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs on Windows
        read_only = False
    why = "the disk it is on is read-only" if read_only else "you may not write there"
    raise CatalogError(f"cannot write to the catalog in {root}: {why}. wildid records every "
                       "import and decision in its catalog; copy the catalog folder somewhere "
                       "you can write and open the copy (--catalog, or File > Open catalog)")


def _initialise(catalog: Catalog) -> None:
    """Stamp identity facts once, note what an upgrade left undone, and mark imports a dead
    process left running as interrupted."""
    with catalog.session() as s:
        if s.get(Meta, "catalog_id") is None:
            s.add(Meta(key="catalog_id", value=new_id()))
            s.add(Meta(key="created_by", value=f"wildid {__version__}"))
        before = catalog.upgraded_from
        if before is not None and before < _STRIPS_SINCE and s.get(Meta, STRIPS_PENDING) is None \
                and s.scalar(select(exists().where(Photo.id.is_not(None)))):
            s.add(Meta(key=STRIPS_PENDING, value=before))
        for batch in s.scalars(select(ImportBatch).where(ImportBatch.status == "running")):
            if not _process_alive(batch.options.get("pid")):
                batch.status = "interrupted"
                batch.finished_at = utcnow()


def _process_alive(pid: object) -> bool:
    """True when ``pid`` names a live process on this machine (another import still running)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
