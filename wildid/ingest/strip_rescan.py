"""Looking for camera-trap data strips on photos imported before wildid looked for them.

Why: since catalog revision 0007 the import finds a trap's printed bar of text
(:mod:`wildid.ingest.data_strip`) and stops the automatic box at it, because that text matched
between any two photos of one camera. The migration could not decode every photo of a catalog,
so photos imported before keep ``strip_top = strip_bottom = 0`` and whole-photo boxes that hold
the bar. This pass decodes each such photo at 256 px as the import does (its cached thumbnail
when the original cannot be read), records the strip rows it finds, and moves the automatic
boxes of those photos to the picture above or below the bar, exactly where an import today
would have placed them. A box somebody drew is left as it is.

It is one undoable operation (:class:`~wildid.review.undoable.Operation`): the moved boxes'
features and the match results that used them are set aside, as for an edit in the box editor,
so the next identification describes and matches them again, and an undo brings everything
back. A photo that cannot be read is reported and skipped; nothing is written until the whole
pass has been read, so a cancelled pass changes nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from wildid.catalog.models import Meta, Photo
from wildid.catalog.store import STRIPS_PENDING, Catalog
from wildid.errors import WildIdError
from wildid.ingest.data_strip import DataStrips, strips_of_photo
from wildid.ingest.thumbnails import THUMB_SIDE, thumbnail_path
from wildid.progress import CancelToken, ProgressCallback, ProgressReporter
from wildid.review.changes import Changes, Recorder
from wildid.review.details import chunks
from wildid.review.undoable import Operation
from wildid.vision.image_io import load_image

__all__ = ["StripRescanReport", "find_strips_in_catalog", "strips_looked_for", "strips_pending"]

_EDITOR = "data strip scan"
_BATCH = 32  # photos decoded between checks for cancel and progress reports


@dataclass
class StripRescanReport:
    """What a pass found and changed."""

    scanned: int = 0
    """Photos read: those without a data strip on record (unreadable ones not counted)."""
    with_strip: int = 0
    """Of those, photos with a data strip: its rows are now recorded on the photo."""
    boxes_moved: int = 0
    """Automatic (whole-photo) boxes now stopping at the strip; their features are redone."""
    drawn_boxes_kept: int = 0
    """Photos with a strip whose boxes somebody drew: left as they are."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(photo, reason) for photos whose thumbnail and original could not be read."""
    status: str = "completed"
    """``completed`` or ``cancelled`` (a cancelled pass changes nothing)."""
    operation: Operation | None = None
    """The change, for an undo stack; None when nothing changed."""


def _small_image(catalog: Catalog, sha256: str, stored_path: str | None,
                 original_path: str) -> np.ndarray:
    """The photo at most 256 px on its long side, oriented, as the import decoded it.

    The original is decoded: the cached thumbnail is that image saved as a JPEG at quality 85,
    whose ringing around the strip's text breaks its flat fill (a third of the strips on
    nyala trap copies went unseen in thumbnails). Only when the original cannot be read (a
    card no longer plugged in) is the thumbnail looked at: it showed 26 of those 39 strips.
    """
    try:
        return load_image(catalog.photo_path(stored_path, original_path), max_side=THUMB_SIDE)
    except WildIdError:
        thumb = thumbnail_path(catalog.thumb_dir, sha256, THUMB_SIDE)
        if not thumb.is_file():
            raise
        return load_image(thumb)


def find_strips_in_catalog(catalog: Catalog, progress: ProgressCallback | None = None,
                           cancel: CancelToken | None = None, reviewer: str = _EDITOR,
                           workers: int = 2) -> StripRescanReport:
    """Look for data strips on every photo without one on record; move their automatic boxes.

    Photos imported since revision 0007 were looked at already and are read again (no
    strip and "not looked at" are both 0 on record); the rule is the import's own, so they
    come out as they went in.
    """
    report = StripRescanReport()
    with catalog.session() as s:
        todo = [(p.id, p.sha256, p.stored_path, p.original_path, p.height)
                for p in s.scalars(select(Photo).where(Photo.strip_top == 0,
                                                       Photo.strip_bottom == 0)
                                   .order_by(Photo.imported_at, Photo.id))]
    found: dict[str, DataStrips] = {}
    reporter = ProgressReporter("Looking for data strips", len(todo), progress)
    reporter.emit()

    def look(item: tuple[str, str, str | None, str, int]) -> DataStrips | str:
        """The strips of one photo, or why it could not be read."""
        _, sha, stored, original, height = item
        try:
            image = _small_image(catalog, sha, stored, original)
        except WildIdError as exc:
            return str(exc)
        return strips_of_photo(image, height)

    # decoding releases the GIL: two photos at a time use both cores of a laptop
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(todo), _BATCH):
            if cancel is not None and cancel.cancelled:
                report.status = "cancelled"
                return report
            batch = todo[start:start + _BATCH]
            for item, result in zip(batch, pool.map(look, batch), strict=True):
                if isinstance(result, str):
                    report.unreadable.append((item[3] or item[0], result))
                    continue
                report.scanned += 1
                if result:
                    found[item[0]] = result
            reporter.advance(len(batch))
    report.with_strip = len(found)
    if found:
        report.operation = _apply(catalog, found, report, reviewer)
    strips_looked_for(catalog)  # nothing left that an older wildid did not do
    return report


def strips_pending(catalog: Catalog) -> bool:
    """Whether the catalog was upgraded from before imports looked for data strips and no
    pass has looked at its photos since (``wildid.catalog.store.STRIPS_PENDING``)."""
    return catalog.meta(STRIPS_PENDING) is not None


def strips_looked_for(catalog: Catalog) -> None:
    """Record that the photos were looked at (a pass ran, or the app's offer was answered)."""
    with catalog.session() as s:
        pending = s.get(Meta, STRIPS_PENDING)
        if pending is not None:
            s.delete(pending)


def _apply(catalog: Catalog, found: dict[str, DataStrips], report: StripRescanReport,
           reviewer: str) -> Operation | None:
    """Record the strips and move the automatic boxes, as one operation."""
    with catalog.session() as s:
        rec = Recorder(s, reviewer)
        photos = [p for part in chunks(list(found))  # under SQLite's variable limit
                  for p in s.scalars(select(Photo).where(Photo.id.in_(part))
                                     .options(selectinload(Photo.annotations)))]
        moved: list[str] = []
        encounters: set[str] = set()
        for photo in photos:
            strips = found[photo.id]
            if strips.top + strips.bottom >= photo.height:
                continue
            rec.set(photo, strip_top=strips.top, strip_bottom=strips.bottom)
            x, y, w, h = photo.picture_box()
            drawn = False
            for ann in photo.annotations:
                if not ann.full_frame:
                    drawn = True
                    continue
                if (ann.x, ann.y, ann.w, ann.h) != (x, y, w, h):
                    rec.set(ann, x=x, y=y, w=w, h=h)
                    moved.append(ann.id)
                    if ann.encounter_id:
                        encounters.add(ann.encounter_id)
            report.drawn_boxes_kept += drawn
        report.boxes_moved = len(moved)
        if moved:
            encounters |= rec.set_aside_caches(moved, encounters, referencing=True)
        if not rec.steps:
            return None
        return Operation.from_recorder("Find data strips", Changes(
            encounters=frozenset(encounters), annotations=frozenset(moved)), rec)
