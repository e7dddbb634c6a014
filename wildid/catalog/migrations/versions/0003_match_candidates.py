"""Cached identification results per encounter, so review never waits on the models.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_candidates",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("encounter_id", sa.String(36), sa.ForeignKey("encounters.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("individual_id", sa.String(36), sa.ForeignKey("individuals.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("raw_scores", sa.Text(), nullable=False),
        sa.Column("query_annotation_id", sa.String(36),
                  sa.ForeignKey("annotations.id", ondelete="CASCADE")),
        sa.Column("best_annotation_id", sa.String(36),
                  sa.ForeignKey("annotations.id", ondelete="CASCADE")),
        sa.Column("inliers", sa.LargeBinary()),
        sa.Column("engine", sa.String(200), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_match_candidates_encounter", "match_candidates", ["encounter_id", "rank"])
    op.create_table(
        "match_summaries",
        sa.Column("encounter_id", sa.String(36), sa.ForeignKey("encounters.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("best_score", sa.Float()),
        sa.Column("likely_new", sa.Boolean(), nullable=False),
        sa.Column("engine", sa.String(200), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_match_summaries_best_score", "match_summaries", ["best_score"])


def downgrade() -> None:
    op.drop_table("match_summaries")
    op.drop_table("match_candidates")
