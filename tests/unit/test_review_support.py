"""Builders and snapshots shared by the review tests (no tests here).

Rows are made directly with the ORM, as the importer and the matching engine would leave them.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import select

from wildid.catalog.models import (
    Annotation,
    Decision,
    Encounter,
    Feature,
    Individual,
    MatchCandidate,
    MatchSummary,
    Photo,
)
from wildid.review.changes import row_values
from wildid.review.history import retired_individual_ids

_counter = itertools.count(1)


def t(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def photo(s: Any, taken: datetime | None = None, lat: float | None = None, lon: float | None = None,
          width: int = 400, height: int = 300) -> Photo:
    n = next(_counter)
    p = Photo(sha256=f"{n:064x}", stored_path=None, original_path=f"/card/IMG_{n:04d}.JPG",
              file_size=1000, format="JPEG", width=width, height=height, taken_utc=taken,
              gps_lat=lat, gps_lon=lon, camera_make="Canon", camera_model="R6")
    s.add(p)
    s.flush()
    return p


def encounter(s: Any, taken: datetime | None = None, lat: float | None = None,
              lon: float | None = None, individual: Individual | None = None,
              state: str | None = None, n_photos: int = 1, species: str | None = "nyala",
              observer: str | None = "Ann") -> Encounter:
    e = Encounter(taken_utc=taken, gps_lat=lat, gps_lon=lon, species=species, observer=observer,
                  individual_id=individual.id if individual else None,
                  state=state or ("confirmed" if individual else "unreviewed"), camera_key="cam")
    s.add(e)
    s.flush()
    for _ in range(n_photos):
        p = photo(s, taken, lat, lon)
        s.add(Annotation(photo_id=p.id, encounter_id=e.id, x=0.0, y=0.0, w=float(p.width),
                         h=float(p.height), full_frame=True, species=species))
    s.flush()
    return e


def individual(s: Any, name: str, species: str | None = "nyala", **kw: Any) -> Individual:
    fields: dict[str, Any] = {"aliases": [], "notes": "", **kw}
    i = Individual(name=name, species=species, **fields)
    s.add(i)
    s.flush()
    return i


def first_annotation(s: Any, enc: Encounter) -> Annotation:
    return s.scalars(select(Annotation).where(Annotation.encounter_id == enc.id)
                     .order_by(Annotation.created_at)).first()


def candidate(s: Any, enc: Encounter, ind: Individual, rank: int, score: float,
              best: Annotation | None = None, inliers: np.ndarray | None = None) -> MatchCandidate:
    query = first_annotation(s, enc)
    c = MatchCandidate(encounter_id=enc.id, individual_id=ind.id, rank=rank, score=score,
                       raw_scores={"global": score - 0.1, "local": score + 0.05},
                       query_annotation_id=query.id if query else None,
                       best_annotation_id=best.id if best else None,
                       inliers=None if inliers is None else inliers.astype(np.float32).tobytes(),
                       engine="test-engine 1")
    s.add(c)
    s.flush()
    return c


def summary(s: Any, enc: Encounter, best: float | None, likely_new: bool = False) -> MatchSummary:
    m = MatchSummary(encounter_id=enc.id, best_score=best, likely_new=likely_new, engine="test-engine 1")
    s.add(m)
    s.flush()
    return m


def feature(s: Any, ann: Annotation, kind: str = "global") -> Feature:
    f = Feature(annotation_id=ann.id, kind=kind, model_id="m", model_version="1", data=b"\x01\x02")
    s.add(f)
    s.flush()
    return f


STATE_MODELS = (Individual, Encounter, Annotation, Photo, Feature, MatchCandidate, MatchSummary)


def snapshot(catalog: Any) -> dict[str, list[str]]:
    """Every domain row (except decisions and bookkeeping times), as the user can observe it.

    Individuals that an undone ``new_individual`` left behind (kept for the audit trail,
    hidden everywhere) are left out.
    """
    out: dict[str, list[str]] = {}
    with catalog.session() as s:
        retired = retired_individual_ids(s)
        for model in STATE_MODELS:
            rows = [row_values(r) for r in s.scalars(select(model))]
            if model is Individual:
                rows = [r for r in rows if r["id"] not in retired]
            out[model.__tablename__] = sorted(repr(sorted(r.items())) for r in rows)
    return out


def decisions(catalog: Any) -> list[dict[str, Any]]:
    """All decision rows in insertion (id) order."""
    with catalog.session() as s:
        return [row_values(d) for d in s.scalars(select(Decision).order_by(Decision.id))]


def bulk_encounters(catalog: Any, n: int, n_individuals: int = 500) -> None:
    """``n`` one-photo encounters (a fifth confirmed to one of ``n_individuals``), fast.

    Raw ``executemany`` (times in the naive-UTC text form the ORM stores), as a large import
    would leave the tables; half the encounters have a match summary.
    """
    from datetime import timedelta

    from wildid.ids import new_id

    start = datetime(2020, 1, 1)
    base = next(_counter) * 10_000_000
    inds = [(new_id(), f"Ind {i:05d}") for i in range(n_individuals)]
    photos, encs, anns, sums = [], [], [], []
    for i in range(n):
        when = (start + timedelta(minutes=7 * i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        pid, eid = new_id(), new_id()
        photos.append((pid, f"{base + i:064x}", f"/card/{i}.jpg", when, when))
        ind = inds[i % n_individuals][0] if i % 5 == 0 else None
        encs.append((eid, ind, "confirmed" if ind else "unreviewed", when, when, when))
        anns.append((new_id(), pid, eid, when, when))
        if i % 2:
            sums.append((eid, (i % 97) / 97, when))
    now = start.strftime("%Y-%m-%d %H:%M:%S.%f")
    with catalog.session() as s:
        conn = s.connection()
        conn.exec_driver_sql(
            "INSERT INTO individuals (id, name, aliases, notes, species, created_at, updated_at) "
            "VALUES (?, ?, '[]', '', 'nyala', ?, ?)", [(i, name, now, now) for i, name in inds])
        conn.exec_driver_sql(
            "INSERT INTO photos (id, sha256, original_path, file_size, format, width, height, "
            "orientation, tz_known, taken_utc, imported_at) "
            "VALUES (?, ?, ?, 1, 'JPEG', 400, 300, 1, 0, ?, ?)", photos)
        conn.exec_driver_sql(
            "INSERT INTO encounters (id, individual_id, state, observer, species, taken_utc, "
            "gps_lat, gps_lon, created_at, updated_at) "
            "VALUES (?, ?, ?, 'Ann', 'nyala', ?, -25.0, 31.0, ?, ?)", encs)
        conn.exec_driver_sql(
            "INSERT INTO annotations (id, photo_id, encounter_id, x, y, w, h, full_frame, viewpoint, "
            "created_at, updated_at) VALUES (?, ?, ?, 0, 0, 400, 300, 1, 'unknown', ?, ?)", anns)
        if sums:
            conn.exec_driver_sql(
                "INSERT INTO match_summaries (encounter_id, best_score, likely_new, engine, "
                "computed_at) VALUES (?, ?, 0, 'e', ?)", sums)
