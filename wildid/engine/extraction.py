"""``wildid extract``: compute features for every annotation the active models have not seen.

Runs after each import and on demand. Resumable by construction: work is committed per chunk
and "pending" is recomputed from the database at the start, so a cancelled or killed run just
continues. Photos are decoded at reduced size (never larger than the sources need) in a thread
pool while the models run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wildid.catalog import Catalog
from wildid.catalog.models import Annotation, Encounter, Feature, Photo
from wildid.catalog.types import utcnow
from wildid.engine.sources import FeatureSource
from wildid.errors import Cancelled, WildIdError
from wildid.ids import new_id
from wildid.progress import CancelToken, ProgressCallback, ProgressReporter
from wildid.vision.image_io import crop, load_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    annotation_id: str
    path: str
    box: tuple[float, float, float, float]
    photo_size: tuple[int, int]
    missing: tuple[int, ...]  # indexes into the sources list
    species: str | None = None


@dataclass
class ExtractionReport:
    processed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds_per_source: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False


def failures_by_reason(failed: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(reason, annotation ids) in the order first met, from ``ExtractionReport.failed``.

    A faulty model fails every crop with one message: reports say it once, with how many it
    cost, instead of once per photo.
    """
    grouped: dict[str, list[str]] = {}
    for annotation_id, reason in failed:
        grouped.setdefault(reason, []).append(annotation_id)
    return list(grouped.items())

def _tag(source: FeatureSource) -> tuple[str, str, str]:
    return (source.kind, source.model_id, source.model_version)


def pending_jobs(catalog: Catalog, sources: Sequence[FeatureSource]) -> list[_Job]:
    """Annotations lacking at least one source's features, oldest first."""
    with catalog.session() as s:
        have: dict[tuple[str, str, str], set[str]] = {}
        for kind, mid, ver, ann_id in s.execute(
                select(Feature.kind, Feature.model_id, Feature.model_version, Feature.annotation_id)):
            have.setdefault((kind, mid, ver), set()).add(ann_id)
        rows = s.execute(
            select(Annotation.id, Annotation.x, Annotation.y, Annotation.w, Annotation.h,
                   Photo.stored_path, Photo.original_path, Photo.width, Photo.height,
                   func.coalesce(Annotation.species, Encounter.species))
            .join(Photo, Photo.id == Annotation.photo_id)
            .outerjoin(Encounter, Encounter.id == Annotation.encounter_id)
            .order_by(Annotation.created_at, Annotation.id)
        ).all()
        jobs = []
        for ann_id, x, y, w, h, stored, original, pw, ph, species in rows:
            missing = tuple(i for i, src in enumerate(sources)
                            if ann_id not in have.get(_tag(src), set()))
            if missing:
                jobs.append(_Job(ann_id, str(catalog.photo_path(stored, original)),
                                 (x, y, w, h), (pw, ph), missing, species))
    return jobs


def annotation_crop(catalog: Catalog, annotation_id: str, side: int) -> np.ndarray:
    """One annotation's crop, read from its photo as extraction reads it (``side``: the
    sources' working side). Raises ``WildIdError`` when the annotation or its photo is gone
    or the photo cannot be decoded."""
    with catalog.session() as s:
        row = s.execute(
            select(Annotation.x, Annotation.y, Annotation.w, Annotation.h,
                   Photo.stored_path, Photo.original_path, Photo.width, Photo.height)
            .join(Photo, Photo.id == Annotation.photo_id)
            .where(Annotation.id == annotation_id)).first()
    if row is None:
        raise WildIdError(f"no annotation {annotation_id}")
    x, y, w, h, stored, original, pw, ph = row
    job = _Job(annotation_id, str(catalog.photo_path(stored, original)), (x, y, w, h), (pw, ph),
               ())
    try:
        return _load_crop(job, side)
    except OSError as exc:
        raise WildIdError(f"cannot read {job.path}: {exc.strerror or exc}") from exc


def _load_crop(job: _Job, side: int) -> np.ndarray:
    """Decode only as large as needed for the crop's long side to reach ``side`` pixels."""
    pw, ph = job.photo_size
    crop_long = max(job.box[2], job.box[3], 1.0)
    max_side = int(np.ceil(side * max(pw, ph) / crop_long))
    image = load_image(job.path, max_side=max_side if max_side < max(pw, ph) else None)
    return np.ascontiguousarray(crop(image, job.box, job.photo_size))


def _chunks(items: list[_Job], n: int) -> Iterator[list[_Job]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def extract_pending(catalog: Catalog, sources: Sequence[FeatureSource],
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                    chunk: int = 16) -> ExtractionReport:
    """Compute and store missing features; bad photos are reported and skipped."""
    report = ExtractionReport()
    if not sources:
        return report
    jobs = pending_jobs(catalog, sources)
    reporter = ProgressReporter("Extracting features", len(jobs), progress, cancel)
    reporter.emit()
    side = max(src.working_side() for src in sources)
    batches = list(_chunks(jobs, chunk))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="wildid-decode") as pool:
        # Decoding of the next chunk overlaps with inference on the current one.
        upcoming = [pool.submit(_load_crop, j, side) for j in batches[0]] if batches else []
        try:
            for index, batch in enumerate(batches):
                loaded = upcoming
                if index + 1 < len(batches):
                    upcoming = [pool.submit(_load_crop, j, side) for j in batches[index + 1]]
                crops: list[tuple[_Job, np.ndarray]] = []
                for job, fut in zip(batch, loaded, strict=True):
                    try:
                        crops.append((job, fut.result()))
                    except WildIdError as exc:
                        report.failed.append((job.annotation_id, str(exc)))
                        log.warning("no features for annotation %s (%s): %s", job.annotation_id,
                                    job.path, exc)
                rows = _compute(sources, crops, report)
                _store(catalog, rows)
                report.processed += len(crops)
                reporter.advance(len(batch))
                reporter.checkpoint()
        except Cancelled:
            report.cancelled = True
            for fut in upcoming:
                fut.cancel()
    return report


def _compute(sources: Sequence[FeatureSource], crops: list[tuple[_Job, np.ndarray]],
             report: ExtractionReport) -> list[Feature]:
    rows: list[Feature] = []
    # Global sources first: an embedder that also gives the local features' attention map runs
    # once for both (it remembers its last crops), and its time is then counted as its own
    # instead of the local source's.
    for i in sorted(range(len(sources)), key=lambda i: sources[i].kind != "global"):
        src = sources[i]
        todo = [(j, c) for j, c in crops if i in j.missing]
        if not todo:
            continue
        t0 = time.perf_counter()
        try:
            done = list(zip(todo, _run(src, todo), strict=True))
        except WildIdError:
            # One crop the source cannot take (a box a pixel wide, say) failed the whole
            # chunk, and every annotation in it went without features: each alone instead,
            # so only the bad ones fail.
            done = []
            for item in todo:
                try:
                    done.append((item, _run(src, [item])[0]))
                except WildIdError as exc:
                    if item[0].annotation_id not in {a for a, _ in report.failed}:
                        report.failed.append((item[0].annotation_id, str(exc)))
        key = f"{src.kind}:{src.model_id}"
        report.seconds_per_source[key] = (report.seconds_per_source.get(key, 0.0)
                                          + time.perf_counter() - t0)
        rows.extend(Feature(annotation_id=j.annotation_id, kind=src.kind, model_id=src.model_id,
                            model_version=src.model_version, data=b)
                    for (j, _), b in done)
    return rows


def _run(src: FeatureSource, todo: list[tuple[_Job, np.ndarray]]) -> list[bytes]:
    """The source's blobs for these crops (with their species, for a per-species source)."""
    if getattr(src, "per_species", False):
        return src.compute([c for _, c in todo],  # type: ignore[call-arg]
                           species=[j.species for j, _ in todo])
    return src.compute([c for _, c in todo])


def _store(catalog: Catalog, rows: list[Feature]) -> None:
    """Insert features; an annotation deleted meanwhile (box edited, photo removed) is skipped,
    and so is a feature another process stored meanwhile.

    Why the second: two wildid processes on one catalog (the app identifying in the background
    while ``wildid import`` runs in a terminal, or two imports) each extract every annotation
    still missing features, the other's included. The first to store a chunk wins; the other's
    insert met the unique constraint and its whole identification failed (measured: two
    imports of 60 nyala photos started a second apart; the second's identification failed).
    The features are the same computation, so keeping the stored one loses nothing.
    """
    if not rows:
        return
    with catalog.session() as s:
        alive = set(s.scalars(select(Annotation.id).where(
            Annotation.id.in_({r.annotation_id for r in rows}))))
        values = [{"id": r.id or new_id(), "annotation_id": r.annotation_id, "kind": r.kind,
                   "model_id": r.model_id, "model_version": r.model_version, "data": r.data,
                   "created_at": r.created_at or utcnow()}
                  for r in rows if r.annotation_id in alive]
        if not values:
            return
        # the catalog is SQLite (catalog/store.py): INSERT ... ON CONFLICT DO NOTHING
        statement = sqlite_insert(Feature).on_conflict_do_nothing(
            index_elements=["annotation_id", "kind", "model_id", "model_version"])
        for part in _parts(values, 100):  # bound parameters per statement stay few
            s.execute(statement, part)


def _parts(values: list[dict], n: int) -> Iterator[list[dict]]:
    for i in range(0, len(values), n):
        yield values[i:i + n]

