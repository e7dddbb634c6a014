"""Per-annotation model features, and the index that finds rejected pairs fast.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "features",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("annotation_id", sa.String(36), sa.ForeignKey("annotations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model_id", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("annotation_id", "kind", "model_id", "model_version"),
    )
    op.create_index("ix_features_annotation_id", "features", ["annotation_id"])
    op.create_index("ix_decisions_pair", "decisions", ["encounter_id", "candidate_individual_id"])


def downgrade() -> None:
    op.drop_index("ix_decisions_pair", table_name="decisions")
    op.drop_table("features")
