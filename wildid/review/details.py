"""Building :class:`EncounterDetail` / :class:`AnnotationInfo` values in batches (no N+1)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from wildid.catalog.models import Annotation, Encounter, Individual, MatchSummary, Photo
from wildid.ingest.thumbnails import thumbnail_path
from wildid.review.history import merge_links, resolve_with
from wildid.review.views import AnnotationInfo, EncounterDetail

T = TypeVar("T")
# Well under SQLite's bound-parameter limit on every version we may meet.
CHUNK = 900
EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (lat, lon) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def annotation_info(catalog: Any, a: Annotation, p: Photo) -> AnnotationInfo:
    gps = (p.gps_lat, p.gps_lon) if p.gps_lat is not None and p.gps_lon is not None else None
    return AnnotationInfo(
        id=a.id, photo_id=p.id, photo_path=catalog.photo_path(p.stored_path, p.original_path),
        thumb_path=thumbnail_path(catalog.thumb_dir, p.sha256), sha256=p.sha256,
        box=(a.x, a.y, a.w, a.h), full_frame=a.full_frame, viewpoint=a.viewpoint,
        species=a.species, photo_width=p.width, photo_height=p.height, taken_utc=p.taken_utc,
        gps=gps, encounter_id=a.encounter_id, quality=a.quality, original_path=p.original_path)


def annotation_infos(catalog: Any, session: Session, *, annotation_ids: Iterable[str] = (),
                     encounter_ids: Iterable[str] = ()) -> dict[str, list[AnnotationInfo]]:
    """Annotations keyed by their own id (``annotation_ids``) or by encounter (``encounter_ids``).

    Within an encounter they are ordered by photo time, then creation (burst order).
    """
    out: dict[str, list[AnnotationInfo]] = {}
    for by_encounter, ids in ((False, list(dict.fromkeys(annotation_ids))),
                              (True, list(dict.fromkeys(encounter_ids)))):
        column = Annotation.encounter_id if by_encounter else Annotation.id
        for part in chunks(ids):
            rows = session.execute(
                select(Annotation, Photo).join(Photo, Photo.id == Annotation.photo_id)
                .where(column.in_(part))
                .order_by(Photo.taken_utc.is_(None), Photo.taken_utc, Annotation.created_at,
                          Annotation.id))
            for a, p in rows:
                key = a.encounter_id if by_encounter else a.id
                out.setdefault(str(key), []).append(annotation_info(catalog, a, p))
    return out


def encounter_details(catalog: Any, session: Session, ids: Sequence[str]) -> dict[str, EncounterDetail]:
    """Details of the encounters ``ids`` (missing ids are simply absent from the result)."""
    links = merge_links(session)
    annotations = annotation_infos(catalog, session, encounter_ids=ids)
    encounters: list[tuple[Encounter, MatchSummary | None]] = []
    for part in chunks(list(ids)):
        encounters.extend(session.execute(
            select(Encounter, MatchSummary)
            .outerjoin(MatchSummary, MatchSummary.encounter_id == Encounter.id)
            .where(Encounter.id.in_(part))).all())
    resolved = {e.id: resolve_with(links, e.individual_id) for e, _ in encounters
                if e.individual_id is not None}
    names = individual_names(session, set(resolved.values()))
    out: dict[str, EncounterDetail] = {}
    for e, summary in encounters:
        ind = resolved.get(e.id)
        out[e.id] = EncounterDetail(
            id=e.id, state=e.state, taken_utc=e.taken_utc, gps_lat=e.gps_lat, gps_lon=e.gps_lon,
            observer=e.observer, species=e.species, individual_id=ind,
            individual_name=names.get(ind) if ind else None,
            annotations=annotations.get(e.id, []),
            best_score=None if summary is None else summary.best_score,
            likely_new=bool(summary is not None and summary.likely_new),
            import_batch_id=e.import_batch_id,
            threshold=None if summary is None else summary.threshold)
    return out


def individual_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in chunks(list(ids)):
        out.update(session.execute(select(Individual.id, Individual.name)
                                   .where(Individual.id.in_(part))).all())
    return out
