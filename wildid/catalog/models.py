"""The catalog schema as a typed SQLAlchemy 2.0 ORM (DESIGN.md §3, aligned with Darwin Core).

Every table's primary key is a client-minted UUIDv7 string so records can later sync to a
community catalog without renumbering. The schema itself changes only through the Alembic
migrations in ``wildid/catalog/migrations``; a test checks that these classes and the migrated
database agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from wildid.catalog.types import JSONText, UTCDateTime, utcnow
from wildid.ids import new_id

VIEWPOINTS = ("unknown", "left", "right", "front", "back", "up", "down")
ENCOUNTER_STATES = ("unreviewed", "confirmed", "unidentifiable", "flagged")
VERDICTS = ("match", "no_match", "unsure", "new_individual", "flag", "unidentifiable", "revert",
            "rename", "edit", "merge", "remove")
# verdicts about an individual rather than an encounter (``encounter_id`` is NULL on their rows)
INDIVIDUAL_VERDICTS = ("rename", "edit", "merge", "remove")


class Base(DeclarativeBase):
    pass


def _id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


class Meta(Base):
    """Key/value facts about the catalog itself (its id, which wildid created it)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ImportBatch(Base):
    """One run of ``wildid import`` (or the GUI's import), with its report."""

    __tablename__ = "import_batches"
    id: Mapped[str] = _id_column()
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # running → completed | cancelled | interrupted (process died; found running at next open)
    status: Mapped[str] = mapped_column(String(16), default="running")
    sources: Mapped[list[str]] = mapped_column(JSONText, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    n_found: Mapped[int] = mapped_column(Integer, default=0)
    n_imported: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_skipped: Mapped[int] = mapped_column(Integer, default=0)
    issues: Mapped[list[ImportIssue]] = relationship(
        back_populates="batch", cascade="all, delete-orphan", order_by="ImportIssue.path"
    )


class ImportIssue(Base):
    """A file an import skipped, and why, so the report survives the process."""

    __tablename__ = "import_issues"
    id: Mapped[str] = _id_column()
    batch_id: Mapped[str] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    batch: Mapped[ImportBatch] = relationship(back_populates="issues")


class Photo(Base):
    """One image file, known by the sha256 of its original bytes."""

    __tablename__ = "photos"
    id: Mapped[str] = _id_column()
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Relative to the catalog's media store when copied in; None when referenced in place.
    stored_path: Mapped[str | None] = mapped_column(Text)
    original_path: Mapped[str] = mapped_column(Text)
    file_size: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    # Pixel size after applying the EXIF orientation: annotation boxes use these coordinates.
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    orientation: Mapped[int] = mapped_column(Integer, default=1)
    taken_raw: Mapped[str | None] = mapped_column(String(64))
    taken_utc: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    utc_offset_minutes: Mapped[int | None] = mapped_column(Integer)
    tz_known: Mapped[bool] = mapped_column(Boolean, default=False)
    gps_lat: Mapped[float | None] = mapped_column(Float)
    gps_lon: Mapped[float | None] = mapped_column(Float)
    gps_alt: Mapped[float | None] = mapped_column(Float)
    camera_make: Mapped[str | None] = mapped_column(String(128))
    camera_model: Mapped[str | None] = mapped_column(String(128))
    camera_serial: Mapped[str | None] = mapped_column(String(128))
    # Rows of a camera trap's printed data strip at the top / bottom (oriented pixels; 0: none),
    # found at import by ``wildid.ingest.data_strip``: the automatic box stops at them.
    strip_top: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    strip_bottom: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    import_batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("import_batches.id", ondelete="SET NULL"), index=True
    )
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    annotations: Mapped[list[Annotation]] = relationship(
        back_populates="photo", cascade="all, delete-orphan"
    )

    def picture_box(self) -> tuple[float, float, float, float]:
        """The automatic box (x, y, w, h): the whole photo without its data strips, if any.

        Why not the whole frame: a strip's text is the same on every photo of one camera, and
        local features would match it between different animals."""
        top, bottom = self.strip_top or 0, self.strip_bottom or 0
        if top + bottom >= self.height:
            top = bottom = 0
        return (0.0, float(top), float(self.width), float(self.height - top - bottom))


class Individual(Base):
    """A known animal (Darwin Core organism). Merges never delete: ``merged_into_id`` aliases."""

    __tablename__ = "individuals"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200), index=True)
    aliases: Mapped[list[str]] = mapped_column(JSONText, default=list)
    species: Mapped[str | None] = mapped_column(String(200))
    sex: Mapped[str | None] = mapped_column(String(32))
    life_stage: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text, default="")
    merged_into_id: Mapped[str | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    encounters: Mapped[list[Encounter]] = relationship(back_populates="individual")


class Encounter(Base):
    """One animal at one time and place (Darwin Core occurrence): a burst of annotations."""

    __tablename__ = "encounters"
    id: Mapped[str] = _id_column()
    individual_id: Mapped[str | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="unreviewed", index=True)
    observer: Mapped[str | None] = mapped_column(String(200))
    species: Mapped[str | None] = mapped_column(String(200))
    taken_utc: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    gps_lat: Mapped[float | None] = mapped_column(Float)
    gps_lon: Mapped[float | None] = mapped_column(Float)
    # What grouped the burst: camera make/model/serial, or the source folder when EXIF has none.
    camera_key: Mapped[str | None] = mapped_column(String(400))
    import_batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("import_batches.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    individual: Mapped[Individual | None] = relationship(back_populates="encounters")
    annotations: Mapped[list[Annotation]] = relationship(
        back_populates="encounter", order_by="Annotation.created_at"
    )


class Annotation(Base):
    """A box on a photo showing one animal; features are computed per annotation."""

    __tablename__ = "annotations"
    id: Mapped[str] = _id_column()
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    encounter_id: Mapped[str | None] = mapped_column(
        ForeignKey("encounters.id", ondelete="SET NULL"), index=True
    )
    # Box in oriented original-pixel coordinates.
    x: Mapped[float] = mapped_column(Float, default=0.0)
    y: Mapped[float] = mapped_column(Float, default=0.0)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    full_frame: Mapped[bool] = mapped_column(Boolean, default=True)
    viewpoint: Mapped[str] = mapped_column(String(16), default="unknown")
    species: Mapped[str | None] = mapped_column(String(200))
    quality: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    photo: Mapped[Photo] = relationship(back_populates="annotations")
    encounter: Mapped[Encounter | None] = relationship(back_populates="annotations")
    features: Mapped[list[Feature]] = relationship(
        back_populates="annotation", cascade="all, delete-orphan"
    )


class Feature(Base):
    """Model output for one annotation, tagged with the model that made it.

    ``kind`` is ``global`` (an embedding vector) or ``local`` (keypoints + descriptors); the blob
    format belongs to the matching code. A changed box invalidates the features (deleted).
    """

    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("annotation_id", "kind", "model_id", "model_version"),)
    id: Mapped[str] = _id_column()
    annotation_id: Mapped[str] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(50))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    annotation: Mapped[Annotation] = relationship(back_populates="features")


class Decision(Base):
    """Append-only audit row: who decided what about which encounter, seeing which scores.

    Nothing ever updates or deletes a decision; undo appends a ``revert`` row that names the
    decision it reverts.  Edits of an individual itself (``rename``, ``edit``, ``merge``) are
    decisions too, so the audit trail says who renamed or merged an animal: their
    ``encounter_id`` is NULL, ``candidate_individual_id`` names the individual, and ``scores``
    holds what changed (``{"before": {...}, "after": {...}}``, or the merged-away individual).
    """

    __tablename__ = "decisions"
    id: Mapped[str] = _id_column()
    encounter_id: Mapped[str | None] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    candidate_individual_id: Mapped[str | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    candidate_annotation_id: Mapped[str | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="SET NULL")
    )
    verdict: Mapped[str] = mapped_column(String(16))
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSONText)
    reviewer: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    reverts_id: Mapped[str | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")


Index("ix_encounters_camera_time", Encounter.camera_key, Encounter.taken_utc)
Index("ix_decisions_pair", Decision.encounter_id, Decision.candidate_individual_id)


class MatchCandidate(Base):
    """One ranked candidate individual for an encounter, as the engine last computed it.

    A cache, not history: recomputed when features or the catalog change. ``inliers`` holds the
    matched keypoint pairs (float32 rows of query x, y, candidate x, y in original-photo pixels)
    so the review screen can draw them without running any model.
    """

    __tablename__ = "match_candidates"
    id: Mapped[str] = _id_column()
    encounter_id: Mapped[str] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    individual_id: Mapped[str] = mapped_column(ForeignKey("individuals.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    raw_scores: Mapped[dict[str, float]] = mapped_column(JSONText, default=dict)
    query_annotation_id: Mapped[str | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"))
    best_annotation_id: Mapped[str | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"))
    inliers: Mapped[bytes | None] = mapped_column(LargeBinary)
    engine: Mapped[str] = mapped_column(String(200))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MatchSummary(Base):
    """Per-encounter headline of the last identification: best score and the open-set verdict."""

    __tablename__ = "match_summaries"
    encounter_id: Mapped[str] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), primary_key=True)
    best_score: Mapped[float | None] = mapped_column(Float, index=True)
    likely_new: Mapped[bool] = mapped_column(Boolean, default=False)
    threshold: Mapped[float | None] = mapped_column(Float)  # the verdict's cut-off; None before 0005
    engine: Mapped[str] = mapped_column(String(200))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


Index("ix_match_candidates_encounter", MatchCandidate.encounter_id, MatchCandidate.rank)
Index("ix_decisions_reverts_id", Decision.reverts_id)
Index("ix_annotations_encounter_photo", Annotation.encounter_id, Annotation.photo_id)
