"""Read-only views of the catalog for the review screens and the CLI.

Plain frozen values: no ORM object ever leaves a session, so a view can be handed to another
thread (the GUI's) and read after the session that made it is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from wildid.ingest.thumbnails import THUMB_SIDE, thumbnail_path

Box = tuple[float, float, float, float]
LatLon = tuple[float, float]


def file_name(path: str) -> str:
    """The last part of a recorded photo path (``IMG_0423.JPG``), whichever separator it uses:
    a catalog may hold paths recorded on another system (a synced Windows laptop's
    ``E:\\DCIM\\...``), which ``Path(...).name`` on Linux or macOS would return whole."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AnnotationInfo:
    """One box on one photo, with where to find the photo and its thumbnail."""

    id: str
    photo_id: str
    photo_path: Path
    thumb_path: Path
    sha256: str
    box: Box  # x, y, w, h in oriented original-photo pixels
    full_frame: bool
    viewpoint: str
    species: str | None
    photo_width: int
    photo_height: int
    taken_utc: datetime | None
    gps: LatLon | None
    encounter_id: str | None = None
    quality: str | None = None
    # where the photo came from (the card's file), which the reviewer's notes name; photo_path
    # is the catalog's copy when the photo was copied in
    original_path: str = ""

    @property
    def file_name(self) -> str:
        """The photo's file name as it was on the card (``IMG_0423.JPG``)."""
        return file_name(self.original_path) if self.original_path else self.photo_path.name


@dataclass(frozen=True)
class EncounterDetail:
    """An encounter with its annotations and the headline of its last identification."""

    id: str
    state: str
    taken_utc: datetime | None
    gps_lat: float | None
    gps_lon: float | None
    observer: str | None
    species: str | None
    individual_id: str | None  # resolved through merges
    individual_name: str | None
    annotations: list[AnnotationInfo]
    best_score: float | None
    likely_new: bool
    import_batch_id: str | None
    threshold: float | None = None  # the new-individual cut-off the verdict used


@dataclass(frozen=True)
class CandidateView:
    """One proposed individual for an encounter, with what a reviewer needs to judge it.

    ``last_seen`` is the individual's latest sighting other than the query encounter, and
    ``last_seen_gps`` the place of its latest sighting that has a position. ``days_since_last_seen``
    is negative when that sighting is later than the query (photos imported late).
    """

    rank: int
    individual_id: str
    name: str
    species: str | None
    score: float
    raw_scores: dict[str, Any]
    query_annotation_id: str | None
    best_annotation: AnnotationInfo | None
    inliers: np.ndarray  # (M, 4) float32: query x, y, candidate x, y
    n_encounters: int
    last_seen: datetime | None
    last_seen_gps: LatLon | None
    days_since_last_seen: float | None
    distance_km: float | None
    engine: str = ""
    asked: bool = False
    """Compared on request (*Compare with…*), not among the candidates ranked; ``rank`` is
    then where it ranks among all the individuals compared."""


@dataclass(frozen=True)
class IndividualSummary:
    """A row of the individuals list."""

    id: str
    name: str
    species: str | None
    sex: str | None
    life_stage: str | None
    n_encounters: int
    first_seen: datetime | None
    last_seen: datetime | None
    thumb_path: Path | None
    aliases: list[str]


@dataclass(frozen=True)
class IndividualDetail:
    """Everything the individual page shows: summary, history of sightings, merged ids."""

    id: str
    name: str
    species: str | None
    sex: str | None
    life_stage: str | None
    n_encounters: int
    first_seen: datetime | None
    last_seen: datetime | None
    thumb_path: Path | None
    aliases: list[str]
    notes: str
    merged_from: list[tuple[str, str]]
    encounters: list[EncounterDetail]  # newest first
    sightings: list[tuple[datetime | None, float | None, float | None]]  # oldest first
    created_at: datetime | None = None


@dataclass(frozen=True)
class DecisionRow:
    """One audit-trail row."""

    id: str
    decided_at: datetime
    reviewer: str
    verdict: str
    encounter_id: str | None  # None for decisions about an individual (rename, edit, merge)
    candidate_individual_id: str | None
    candidate_name: str | None
    scores: dict[str, Any] | None
    note: str
    reverts_id: str | None
    reverted: bool = field(default=False)  # a later ``revert`` row cancels this one

    @property
    def evidence(self) -> str:
        """What the matcher said about the decided individual when the decision was made, in a
        few words: "87 %, 1st", "not proposed" (the reviewer chose it by hand), or "" (never
        matched, or a decision about an individual itself)."""
        s = self.scores or {}
        if s.get("proposed") is False:
            return "not proposed"
        score = s.get("score")
        if not isinstance(score, int | float):
            return ""
        rank = s.get("rank")
        place = f", {_ordinal(rank + 1)}" if isinstance(rank, int) else ""
        return f"{100 * score:.0f} %{place}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO times) for the CLI and exports."""
        return {"id": self.id, "decided_at": self.decided_at.isoformat(), "reviewer": self.reviewer,
                "verdict": self.verdict, "encounter_id": self.encounter_id,
                "candidate_individual_id": self.candidate_individual_id,
                "candidate_name": self.candidate_name, "scores": self.scores, "note": self.note,
                "reverts_id": self.reverts_id, "reverted": self.reverted}


class EncounterRow(NamedTuple):
    """One flat row of the encounters table (built 100,000 at a time, so kept minimal).

    A named tuple: attribute access as documented, and ``row[column]`` for table models.
    ``thumb_path`` is computed on access: building 100k paths up front would cost more than
    the query itself, and a table only shows a screenful.
    """

    id: str
    taken_utc: datetime | None
    state: str
    individual_id: str | None
    individual_name: str | None
    n_photos: int
    observer: str | None
    species: str | None
    lat: float | None
    lon: float | None
    best_score: float | None
    thumb_sha256: str | None
    thumb_dir: Path | None = None
    photo_file: str | None = None  # the first photo's file as imported (where it came from)

    @property
    def thumb_path(self) -> Path | None:
        """Thumbnail of the encounter's first photo (the file may not be generated yet)."""
        if self.thumb_sha256 is None or self.thumb_dir is None:
            return None
        return thumbnail_path(self.thumb_dir, self.thumb_sha256, THUMB_SIDE)


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
