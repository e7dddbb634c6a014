"""Alembic environment: always run with a connection handed in by wildid.catalog.migrate."""

from __future__ import annotations

from alembic import context

from wildid.catalog.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when someone runs the alembic CLI
    raise RuntimeError("run migrations through wildid.catalog.migrate, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER via table copies
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
