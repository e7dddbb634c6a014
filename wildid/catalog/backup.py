"""A whole-catalog backup that is consistent while wildid is running (``wildid backup``).

Why not copy the folder: the database runs in WAL mode, so its latest commits can be in
``catalog.sqlite-wal`` beside it, and a file copy made while the app (or an import in a
terminal) writes can pair a database with a log from another moment. The copy here reads the
database through SQLite's online backup API, which yields one consistent state, and copies the
originals, which are content-addressed (named by their sha256) and never rewritten: a file
already in the backup under its name is the same photo and is not copied again, so a second
backup to the same folder copies only what is new. The caches (thumbnails, the matcher's index)
are left out; they are rebuilt from the rest. The backup is itself a catalog folder: open it as
any other (``--catalog``, File > Open catalog) or copy its ``catalog.sqlite`` back.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from wildid.catalog.failures import disk_full_message, is_disk_full
from wildid.catalog.models import Photo
from wildid.catalog.store import DB_NAME, Catalog, holds_other_files
from wildid.errors import CatalogError, DiskFullError
from wildid.progress import CancelToken, ProgressCallback, ProgressReporter
from wildid.units import human_bytes

__all__ = ["BackupReport", "backup_catalog", "report_lines"]


@dataclass
class BackupReport:
    """What a backup did."""

    target: Path
    photos: int = 0  # originals the catalog holds in its media folder
    copied: int = 0  # of them copied this time (the others were in the backup already)
    copied_bytes: int = 0
    database_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # originals gone from the media folder
    in_place: int = 0  # photos imported with "reference in place": their files are elsewhere
    resumed: bool = False  # the folder held a backup cut short (originals, no database)


def backup_catalog(catalog: Catalog, target: Path | str,
                   progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> BackupReport:
    """Back the catalog up into the folder ``target``: new or empty, or an earlier backup of
    this catalog (then only new originals are copied). Refused inside the catalog itself and
    over a folder that holds anything else."""
    target = Path(target).expanduser().resolve()
    _check_target(catalog, target)
    report = BackupReport(target, resumed=(target / "media").is_dir()
                          and not (target / DB_NAME).exists())
    with catalog.session() as s:
        paths = list(s.scalars(select(Photo.stored_path)))
    stored = [p for p in paths if p]
    report.photos = len(stored)
    report.in_place = len(paths) - len(stored)
    reporter = ProgressReporter("Backing up", len(stored) + 1, progress, cancel)
    reporter.emit()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for rel in stored:
            source = catalog.media.path(rel)
            copy = target / "media" / rel
            if not source.exists():
                report.missing.append(rel)
            elif not (copy.exists() and copy.stat().st_size == source.stat().st_size):
                copy.parent.mkdir(parents=True, exist_ok=True)
                partial = copy.with_name(f".{copy.name}.partial")
                shutil.copyfile(source, partial)
                os.replace(partial, copy)  # a cut-off copy never takes the photo's name
                report.copied += 1
                report.copied_bytes += copy.stat().st_size
            reporter.advance(1)
            reporter.checkpoint()
        # the database last: a backup that stops half-way holds originals, never a database
        # naming photos the backup lacks
        report.database_bytes = _copy_database(catalog.db_path, target / DB_NAME)
        reporter.advance(1)
    except (OSError, sqlite3.Error) as exc:
        if is_disk_full(exc):
            raise DiskFullError(disk_full_message(target, "the backup")) from exc
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CatalogError(f"cannot back up to {target}: {reason}") from exc
    return report


def _check_target(catalog: Catalog, target: Path) -> None:
    root = catalog.root.resolve()
    if target == root or root in target.parents:
        raise CatalogError(f"{target} is inside the catalog itself: choose a folder elsewhere "
                           "(best on another disk)")
    # a backup cut short (the disk filled, Cancel) holds originals and no database yet: it is
    # taken up again, not refused as a folder of other files
    if holds_other_files(target, allowed={"media"}):
        raise CatalogError(f"{target} holds other files: choose a new or empty folder, or an "
                           "earlier backup of this catalog")
    if (target / DB_NAME).exists() and _catalog_id(target / DB_NAME) != catalog.meta("catalog_id"):
        raise CatalogError(f"{target} holds another catalog: choose a new or empty folder, or "
                           "an earlier backup of this catalog")


def _catalog_id(db_path: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _copy_database(source: Path, target: Path) -> int:
    """One consistent state of the live database (SQLite's online backup API), written beside
    the target and moved over it once complete."""
    partial = target.with_name(f".{target.name}.partial")
    for leftover in (partial, partial.with_name(partial.name + "-journal")):
        leftover.unlink(missing_ok=True)
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, nothing beside it
        finally:
            dst.close()
    except sqlite3.Error:
        for leftover in (partial, partial.with_name(partial.name + "-journal")):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return target.stat().st_size


def report_lines(report: BackupReport) -> list[str]:
    """What a backup did, as ``wildid backup`` prints it and the app reports it."""
    earlier = "the backup cut short before" if report.resumed else "an earlier backup"
    copied = (f"all there from {earlier}" if not report.copied
              else f"all copied ({human_bytes(report.copied_bytes)})"
              if report.copied == report.photos
              else f"{report.copied} copied ({human_bytes(report.copied_bytes)}), the rest "
                   f"there from {earlier}")
    lines = [f"Backed up to {report.target}: the database "
             f"({human_bytes(report.database_bytes)}) and {report.photos} originals, {copied}."]
    if report.in_place:
        lines.append(f"{report.in_place} photos were imported to stay where they are (reference "
                     "in place): their files are not in the catalog's folder and are not in "
                     "this backup.")
    if report.missing:
        lines.append(f"{len(report.missing)} originals are missing from the catalog's media "
                     f"folder and could not be backed up (first: {report.missing[0]}).")
    return lines
