"""Indexes the review core leans on: undo/redo follows ``reverts_id`` links, and the
encounters table aggregates annotations per encounter.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decisions_reverts_id", "decisions", ["reverts_id"])
    op.create_index("ix_annotations_encounter_photo", "annotations", ["encounter_id", "photo_id"])


def downgrade() -> None:
    op.drop_index("ix_annotations_encounter_photo", table_name="annotations")
    op.drop_index("ix_decisions_reverts_id", table_name="decisions")
