"""Decisions about an individual itself (rename, edit, merge) join the audit trail: their rows
name no encounter, so ``decisions.encounter_id`` becomes nullable.

SQLite cannot alter a column, so the table is rebuilt -- by hand, not with Alembic's batch mode:
batch mode copies the rows into a temporary table whose ``reverts_id`` still references
``decisions``, and dropping the old table (foreign keys are on) then sets every copied undo link
to NULL. Here the new table references *itself*, the old one is dropped (nothing else
references it) and the new one renamed, which SQLite follows in its foreign keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("id", "encounter_id", "candidate_individual_id", "candidate_annotation_id", "verdict",
            "scores", "reviewer", "decided_at", "reverts_id", "note")
_INDEXES = {
    "ix_decisions_encounter_id": ["encounter_id"],
    "ix_decisions_candidate_individual_id": ["candidate_individual_id"],
    "ix_decisions_decided_at": ["decided_at"],
    "ix_decisions_pair": ["encounter_id", "candidate_individual_id"],
    "ix_decisions_reverts_id": ["reverts_id"],
}


def _rebuild(encounter_nullable: bool) -> None:
    op.create_table(
        "decisions_rebuilt",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("encounter_id", sa.String(36), sa.ForeignKey("encounters.id", ondelete="CASCADE"),
                  nullable=encounter_nullable),
        sa.Column("candidate_individual_id", sa.String(36),
                  sa.ForeignKey("individuals.id", ondelete="SET NULL")),
        sa.Column("candidate_annotation_id", sa.String(36),
                  sa.ForeignKey("annotations.id", ondelete="SET NULL")),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("scores", sa.Text()),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("reverts_id", sa.String(36),
                  sa.ForeignKey("decisions_rebuilt.id", ondelete="SET NULL")),
        sa.Column("note", sa.Text(), nullable=False),
    )
    cols = ", ".join(_COLUMNS)
    op.execute(f"INSERT INTO decisions_rebuilt ({cols}) SELECT {cols} FROM decisions")
    op.drop_table("decisions")  # its indexes go with it
    op.rename_table("decisions_rebuilt", "decisions")
    for name, columns in _INDEXES.items():
        op.create_index(name, "decisions", columns)


def upgrade() -> None:
    _rebuild(encounter_nullable=True)


def downgrade() -> None:
    # rows about individuals have no encounter: they cannot exist in the old schema
    op.execute("UPDATE decisions SET reverts_id = NULL WHERE reverts_id IN "
               "(SELECT id FROM decisions WHERE encounter_id IS NULL)")
    op.execute("DELETE FROM decisions WHERE encounter_id IS NULL")
    _rebuild(encounter_nullable=False)
