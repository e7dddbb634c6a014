"""Camera-trap data strips: how many rows at the top and bottom of each photo are a printed bar
of text (camera, date, temperature), found at import (``wildid.ingest.data_strip``). The
automatic whole-photo box stops at them, so features never match one camera's text between
two animals. Photos imported before keep 0: their boxes are left as they are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("strip_top", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("strip_bottom", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35 and later), not batch mode: batch mode copies the table and
    # drops the old one, and with foreign keys on that deleted every annotation (ON DELETE
    # CASCADE from photos)
    op.drop_column("photos", "strip_bottom")
    op.drop_column("photos", "strip_top")
