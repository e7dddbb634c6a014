"""Schema migrations, applied automatically when a catalog opens, after a backup copy.

Why a backup first: a migration that fails half-way on a user's only copy of years of
sightings is the worst thing this app could do. SQLite's online backup API gives a consistent
copy even with WAL files beside the database.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from wildid.errors import CatalogError, CatalogVersionError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

HEAD_REVISION = "0007"
"""The newest revision under ``migrations/versions`` (a test keeps the two in step). A catalog
already there opens without loading Alembic (~0.12 s of every command's start-up)."""


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest schema revision this wildid knows (read from the migration scripts)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def stamped_revision(engine: Engine) -> str | None:
    """The revision stamped in the database by a plain read (None when there is none yet),
    without Alembic: what every start of an up-to-date catalog needs to know."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:  # no such table: a new database, or not one of ours
        return None
    return rows[0][0] if len(rows) == 1 else None


def backup_database(db_path: Path, backup_dir: Path, label: str) -> Path:
    """Copy the database consistently (SQLite backup API) into ``backup_dir``; return the copy."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = backup_dir / f"catalog-{label}-{stamp}.sqlite"
    src = sqlite3.connect(db_path)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return target


def upgrade(engine: Engine, db_path: Path, backup_dir: Path, target: str = "head") -> Path | None:
    """Bring the database to ``target``; back it up first when it already holds a schema.

    Returns the backup path (None when nothing needed migrating or the database was new).
    Raises CatalogVersionError for a catalog stamped with a revision this wildid does not know,
    which means a newer wildid wrote it.
    """
    if target == "head" and stamped_revision(engine) == HEAD_REVISION:
        return None
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    current = current_revision(engine)
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise CatalogVersionError(
            f"this catalog uses schema revision {current!r}, made by a newer wildid; "
            "update wildid to open it (nothing was changed)"
        )
    wanted = script.get_current_head() if target == "head" else target
    if current == wanted:
        return None
    backup = None
    if current is not None:
        backup = backup_database(db_path, backup_dir, f"before-{wanted}")
    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
    except Exception as exc:  # any failure here must name the backup for the user
        where = f"; your data is safe in {backup}" if backup else ""
        raise CatalogError(f"upgrading the catalog schema failed: {exc}{where}") from exc
    return backup
