"""Grouping photos into encounters: a burst from one camera is one animal at one moment.

Grouping runs after the photos of an import are committed and covers every photo that has no
annotation yet, whichever import brought it. So an import that was killed half-way and run
again still groups the photos of the first attempt, and a burst split across the two runs
ends up in one encounter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath

from sqlalchemy import select
from sqlalchemy.orm import Session

from wildid.catalog.models import Annotation, Encounter, Photo

EXIF_CAMERA = "camera:"
"""Prefix of a camera key made from EXIF (the others name the source folder)."""


def camera_key(photo: Photo) -> str:
    """What identifies 'the same camera': EXIF make/model/serial, else the source folder."""
    parts = [photo.camera_make, photo.camera_model, photo.camera_serial]
    if any(parts):
        return EXIF_CAMERA + "|".join(p or "" for p in parts)
    return "folder:" + str(PurePath(photo.original_path).parent)


@dataclass
class GroupingOptions:
    burst_gap_s: float = 60.0
    observer: str | None = None
    species: str | None = None
    import_batch_id: str | None = None


def group_pending(session: Session, options: GroupingOptions) -> list[str]:
    """Give every photo without an annotation a full-frame annotation inside an encounter
    (full frame: the whole photo without a camera trap's data strip, ``Photo.picture_box``).

    Returns the ids of encounters created. The caller commits.
    """
    pending = list(
        session.scalars(select(Photo).where(~Photo.annotations.any()).order_by(Photo.taken_utc))
    )
    if not pending:
        return []
    gap = timedelta(seconds=options.burst_gap_s)
    by_camera: dict[str, list[Photo]] = {}
    created: list[str] = []
    for photo in pending:
        if photo.taken_utc is None:
            # Without a time there is no burst to speak of: the photo stands alone.
            created.append(_attach(session, photo, None, options).id)
            continue
        by_camera.setdefault(camera_key(photo), []).append(photo)

    for key, photos in by_camera.items():
        photos.sort(key=lambda p: (p.taken_utc, p.original_path))
        assert photos[0].taken_utc is not None and photos[-1].taken_utc is not None
        neighbours = _existing_timeline(session, key, photos[0].taken_utc - gap,
                                        photos[-1].taken_utc + gap)
        current: Encounter | None = None
        last_time: datetime | None = None
        for photo in photos:
            t = photo.taken_utc
            assert t is not None
            if current is None or last_time is None or t - last_time > gap:
                current = _nearest_existing(neighbours, t, gap)
                if current is None:
                    current = _new_encounter(session, photo, key, options)
                    created.append(current.id)
            _annotate(session, photo, current, options)
            if current.taken_utc is None or t < current.taken_utc:
                current.taken_utc = t
            last_time = t
    return created


def _existing_timeline(session: Session, key: str, start: datetime,
                       end: datetime) -> list[tuple[datetime, Encounter]]:
    rows = session.execute(
        select(Photo.taken_utc, Encounter)
        .join(Annotation, Annotation.photo_id == Photo.id)
        .join(Encounter, Encounter.id == Annotation.encounter_id)
        .where(Encounter.camera_key == key, Photo.taken_utc >= start, Photo.taken_utc <= end)
    ).all()
    return [(t, enc) for t, enc in rows if t is not None]


def _nearest_existing(timeline: list[tuple[datetime, Encounter]], t: datetime,
                      gap: timedelta) -> Encounter | None:
    best: tuple[timedelta, Encounter] | None = None
    for other_t, enc in timeline:
        d = abs(other_t - t)
        if d <= gap and (best is None or d < best[0]):
            best = (d, enc)
    return None if best is None else best[1]


def _new_encounter(session: Session, photo: Photo, key: str | None,
                   options: GroupingOptions) -> Encounter:
    enc = Encounter(
        observer=options.observer,
        species=options.species,
        taken_utc=photo.taken_utc,
        gps_lat=photo.gps_lat,
        gps_lon=photo.gps_lon,
        camera_key=key,
        import_batch_id=options.import_batch_id or photo.import_batch_id,
    )
    session.add(enc)
    session.flush()
    return enc


def _annotate(session: Session, photo: Photo, encounter: Encounter,
              options: GroupingOptions) -> Annotation:
    if encounter.gps_lat is None and photo.gps_lat is not None:
        encounter.gps_lat, encounter.gps_lon = photo.gps_lat, photo.gps_lon
    x, y, w, h = photo.picture_box()  # the whole photo, less a camera trap's data strip
    ann = Annotation(
        photo=photo, encounter=encounter, x=x, y=y, w=w, h=h, full_frame=True, viewpoint="unknown",
        species=options.species or encounter.species,
    )
    session.add(ann)
    return ann


def _attach(session: Session, photo: Photo, key: str | None, options: GroupingOptions) -> Encounter:
    enc = _new_encounter(session, photo, key or camera_key(photo), options)
    _annotate(session, photo, enc, options)
    return enc
