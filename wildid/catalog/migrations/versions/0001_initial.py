"""Initial catalog: photos, annotations, encounters, individuals, decisions, imports.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.String(36), primary_key=True)


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True),
                    sa.Column("value", sa.Text(), nullable=False))
    op.create_table(
        "import_batches", _id(),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("n_found", sa.Integer(), nullable=False),
        sa.Column("n_imported", sa.Integer(), nullable=False),
        sa.Column("n_duplicates", sa.Integer(), nullable=False),
        sa.Column("n_skipped", sa.Integer(), nullable=False),
    )
    op.create_table(
        "import_issues", _id(),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("import_batches.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_import_issues_batch_id", "import_issues", ["batch_id"])
    op.create_table(
        "photos", _id(),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("stored_path", sa.Text()),
        sa.Column("original_path", sa.Text(), nullable=False),
        sa.Column("file_size", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("orientation", sa.Integer(), nullable=False),
        sa.Column("taken_raw", sa.String(64)),
        sa.Column("taken_utc", sa.DateTime()),
        sa.Column("utc_offset_minutes", sa.Integer()),
        sa.Column("tz_known", sa.Boolean(), nullable=False),
        sa.Column("gps_lat", sa.Float()),
        sa.Column("gps_lon", sa.Float()),
        sa.Column("gps_alt", sa.Float()),
        sa.Column("camera_make", sa.String(128)),
        sa.Column("camera_model", sa.String(128)),
        sa.Column("camera_serial", sa.String(128)),
        sa.Column("import_batch_id", sa.String(36),
                  sa.ForeignKey("import_batches.id", ondelete="SET NULL")),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_photos_taken_utc", "photos", ["taken_utc"])
    op.create_index("ix_photos_import_batch_id", "photos", ["import_batch_id"])
    op.create_table(
        "individuals", _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("species", sa.String(200)),
        sa.Column("sex", sa.String(32)),
        sa.Column("life_stage", sa.String(32)),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("merged_into_id", sa.String(36), sa.ForeignKey("individuals.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_individuals_name", "individuals", ["name"])
    op.create_index("ix_individuals_merged_into_id", "individuals", ["merged_into_id"])
    op.create_table(
        "encounters", _id(),
        sa.Column("individual_id", sa.String(36), sa.ForeignKey("individuals.id", ondelete="SET NULL")),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("observer", sa.String(200)),
        sa.Column("species", sa.String(200)),
        sa.Column("taken_utc", sa.DateTime()),
        sa.Column("gps_lat", sa.Float()),
        sa.Column("gps_lon", sa.Float()),
        sa.Column("camera_key", sa.String(400)),
        sa.Column("import_batch_id", sa.String(36),
                  sa.ForeignKey("import_batches.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    for col in ("individual_id", "state", "taken_utc", "import_batch_id"):
        op.create_index(f"ix_encounters_{col}", "encounters", [col])
    op.create_index("ix_encounters_camera_time", "encounters", ["camera_key", "taken_utc"])
    op.create_table(
        "annotations", _id(),
        sa.Column("photo_id", sa.String(36), sa.ForeignKey("photos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("encounter_id", sa.String(36), sa.ForeignKey("encounters.id", ondelete="SET NULL")),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("w", sa.Float(), nullable=False),
        sa.Column("h", sa.Float(), nullable=False),
        sa.Column("full_frame", sa.Boolean(), nullable=False),
        sa.Column("viewpoint", sa.String(16), nullable=False),
        sa.Column("species", sa.String(200)),
        sa.Column("quality", sa.String(16)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_annotations_photo_id", "annotations", ["photo_id"])
    op.create_index("ix_annotations_encounter_id", "annotations", ["encounter_id"])
    op.create_table(
        "decisions", _id(),
        sa.Column("encounter_id", sa.String(36), sa.ForeignKey("encounters.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("candidate_individual_id", sa.String(36),
                  sa.ForeignKey("individuals.id", ondelete="SET NULL")),
        sa.Column("candidate_annotation_id", sa.String(36),
                  sa.ForeignKey("annotations.id", ondelete="SET NULL")),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("scores", sa.Text()),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("reverts_id", sa.String(36), sa.ForeignKey("decisions.id", ondelete="SET NULL")),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_decisions_encounter_id", "decisions", ["encounter_id"])
    op.create_index("ix_decisions_candidate_individual_id", "decisions", ["candidate_individual_id"])
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])


def downgrade() -> None:
    for table in ("decisions", "annotations", "encounters", "individuals", "photos",
                  "import_issues", "import_batches", "meta"):
        op.drop_table(table)
