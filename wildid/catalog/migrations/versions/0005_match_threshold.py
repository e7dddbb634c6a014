"""The new-individual threshold each identification was judged against, so the review screen
can colour scores relative to it (a 34 % match above a 20 % threshold is a plausible match).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("match_summaries") as batch:
        batch.add_column(sa.Column("threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("match_summaries") as batch:
        batch.drop_column("threshold")
