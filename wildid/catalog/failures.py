"""What failing storage looks like to the catalog, in words a user can act on.

A full disk and a damaged database reach wildid as an ``OSError`` errno or a SQLite result
code wrapped by SQLAlchemy; shown as they come ("(sqlite3.OperationalError) database or disk
is full", and a link) they say neither where nor what to do. The catalog's session, its media
store and the importer recognise them here and raise errors that name the catalog's folder,
the room left, and how to restore or recover.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from wildid.units import human_bytes


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or what caused it says the disk (or the user's quota) is full: an
    ``OSError`` ENOSPC / EDQUOT, or SQLite's SQLITE_FULL ("database or disk is full")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(seen, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL


def disk_full_message(folder: Path, holding: str = "the catalog") -> str:
    """The disk-full sentence users read: where, and how much room is left (``holding``: what
    the disk holds that wildid was writing, the catalog or a backup of it)."""
    try:
        free = shutil.disk_usage(_existing(folder)).free
    except OSError:
        where = ""
    else:
        where = f", {human_bytes(free)} free"
    return (f"the disk holding {holding} is full ({_existing(folder)}{where}): "
            "free some space, then try again")


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


_SQLITE_DAMAGED = (11, 26)  # SQLITE_CORRUPT ("database disk image is malformed"), SQLITE_NOTADB


def is_damaged(exc: BaseException) -> bool:
    """Whether SQLite says the database file is damaged (a failing card, a copy cut short)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlite_errorcode", None) in _SQLITE_DAMAGED


def damaged_message(db_path: Path, exc: BaseException) -> str:
    """What a user can do about a damaged catalog database, instead of SQLite's words alone.
    The originals are separate files and are not touched by the damage."""
    root = db_path.parent
    backups = sorted((root / "backups").glob("*.sqlite")) if (root / "backups").is_dir() else []
    restore = (f"the newest copy wildid made before a schema upgrade is {backups[-1]}; "
               if backups else "")
    return (f"the catalog database {db_path} is damaged "
            f"(SQLite: {getattr(exc, 'orig', None) or exc}). The photos in {root / 'media'} are "
            f"separate files and unaffected. Restore {db_path.name} from your backup ({restore}"
            "close wildid first). SQLite's own tool can often recover most of it: sqlite3 "
            f"{db_path.name} .recover | sqlite3 recovered.sqlite")
