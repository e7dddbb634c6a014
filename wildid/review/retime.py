"""Correcting a camera's clock after the import, as one undoable operation.

A camera trap that restarted at its factory date, or a camera set to the wrong year, dated
every photo of a card wrongly by the same amount (the import report says which look so:
``wildid.ingest.clock``). Importing the card again would skip every photo as a duplicate, so
the times are mended in the catalog: the photos of the chosen encounters move by the clock's
error, and each encounter's time follows its photos. What the camera wrote stays in the
photo's ``taken_raw``. Identification does not use times, so nothing is matched again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from wildid.catalog.models import Annotation, Encounter, Photo
from wildid.errors import NotFoundError, ReviewError
from wildid.review.changes import Changes, Recorder
from wildid.review.details import chunks
from wildid.review.undoable import Operation

__all__ = ["describe_shift", "earliest_time", "shift_times"]

_EDITOR = "time correction"


def describe_shift(delta: timedelta) -> str:
    """``+1 d 2 h``, ``-30 min``, ``+26 y 124 d``: a clock's error as people say it (years of
    365 days; the exact seconds are in the operation)."""
    sign = "-" if delta < timedelta(0) else "+"
    rest = int(abs(delta).total_seconds())
    parts = []
    for unit, seconds in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if rest >= seconds:
            parts.append(f"{rest // seconds} {unit}")
            rest %= seconds
    return sign + (" ".join(parts) if parts else "0 s")


def _photos_of(s: Any, encounter_ids: Sequence[str]) -> dict[str, Photo]:
    photos: dict[str, Photo] = {}
    for part in chunks(list(encounter_ids)):
        for photo in s.scalars(select(Photo).join(Annotation)
                               .where(Annotation.encounter_id.in_(part))):
            photos[photo.id] = photo
    return photos


def _known(s: Any, encounter_ids: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(encounter_ids))
    found = {e for part in chunks(wanted)
             for e in s.scalars(select(Encounter.id).where(Encounter.id.in_(part)))}
    missing = [e for e in wanted if e not in found]
    if missing:
        raise NotFoundError(f"no encounter {missing[0]}")
    return wanted


def earliest_time(catalog: Any, encounter_ids: Sequence[str]) -> datetime | None:
    """The earliest photo time of these encounters (what "the first photo was taken at …"
    moves), None when none of their photos has a time."""
    with catalog.session() as s:
        times = [p.taken_utc for p in _photos_of(s, _known(s, encounter_ids)).values()
                 if p.taken_utc is not None]
    return min(times) if times else None


def shift_times(catalog: Any, encounter_ids: Sequence[str], delta: timedelta,
                reviewer: str = _EDITOR) -> Operation:
    """Move every dated photo of these encounters by ``delta``, as one undoable operation.

    Each encounter's time becomes its earliest photo's again, and so does that of any other
    encounter sharing one of the photos (two animals on one photo, one encounter each), so
    the two cannot disagree on when the photo was taken. Photos without a time keep none.
    The operation's changes name the encounters and their individuals (first and last seen).
    """
    with catalog.session() as s:
        wanted = _known(s, encounter_ids)
        photos = _photos_of(s, wanted)
        rec = Recorder(s, reviewer)
        moved: set[str] = set()
        for photo in photos.values():
            if photo.taken_utc is None:
                continue
            try:
                shifted = photo.taken_utc + delta
            except OverflowError:
                raise ReviewError(f"shifting {photo.taken_utc:%Y-%m-%d} by {describe_shift(delta)} "
                                  "leaves the calendar") from None
            if rec.set(photo, flush=False, taken_utc=shifted) is not None:
                moved.add(photo.id)
        s.flush()  # once: 5,000 encounters took 5.6 s flushing photo by photo
        touched: set[str] = set()
        for part in chunks(sorted(moved)):
            touched.update(s.scalars(select(Annotation.encounter_id)
                                     .where(Annotation.photo_id.in_(part),
                                            Annotation.encounter_id.is_not(None))))
        individuals: set[str] = set()
        for part in chunks(sorted(touched)):
            earliest = dict(s.execute(
                select(Annotation.encounter_id, func.min(Photo.taken_utc))
                .join(Photo, Photo.id == Annotation.photo_id)
                .where(Annotation.encounter_id.in_(part))
                .group_by(Annotation.encounter_id)).all())
            for enc in s.scalars(select(Encounter).where(Encounter.id.in_(part))):
                rec.set(enc, flush=False, taken_utc=earliest.get(enc.id))
                if enc.individual_id is not None:
                    individuals.add(enc.individual_id)
        s.flush()
        n = len(touched)
        label = f"Shift times {describe_shift(delta)}" + (f" on {n} encounters" if n != 1 else "")
        return Operation.from_recorder(label, Changes(encounters=frozenset(touched),
                                                      individuals=frozenset(individuals)), rec)
