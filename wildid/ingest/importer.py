"""Importing a card of photos into a catalog: the engine behind ``wildid import`` and the GUI.

Design for speed and safety:

* each file is read from disk once; the bytes are hashed, probed, EXIF-parsed, decoded at
  reduced size for the thumbnail and copied into the media store from memory;
* two worker threads do that work (hashing, JPEG decoding and file I/O release the GIL), while
  the calling thread owns the database session and commits every ``commit_every`` photos;
* a photo row is only committed after its original and thumbnail are on disk, so a killed
  import leaves at worst an orphan file in the media store, never a row without its file; the
  next run skips what was committed (sha256 dedup) and groups leftovers into encounters.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wildid.catalog import Catalog
from wildid.catalog.failures import disk_full_message, is_disk_full
from wildid.catalog.models import Encounter, ImportBatch, ImportIssue, Individual, Photo
from wildid.catalog.types import utcnow
from wildid.errors import Cancelled, DiskFullError, ImageError, WildIdError
from wildid.ingest.clock import doubtful
from wildid.ingest.data_strip import strips_of_photo
from wildid.ingest.exif import read_exif
from wildid.ingest.grouping import GroupingOptions, group_pending
from wildid.ingest.hashing import read_and_hash
from wildid.ingest.scan import display_path, scan_paths
from wildid.ingest.thumbnails import make_thumbnail, thumbnail_path, write_thumbnail
from wildid.progress import CancelToken, ProgressCallback, ProgressReporter
from wildid.vision.image_io import decode, probe

if TYPE_CHECKING:
    from wildid.matching.profiles import SpeciesProfile

log = logging.getLogger(__name__)

THUMB_SIDE = 256


@dataclass
class ImportOptions:
    """What the user chose for this import."""

    observer: str | None = None
    species: str | None = None
    burst_gap_s: float = 60.0
    reference_in_place: bool = False
    workers: int = 2
    commit_every: int = 25


@dataclass
class ImportReport:
    """What happened, for the CLI's summary and the GUI's report dialog."""

    batch_id: str
    status: str
    n_found: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    """Other files in the folders (RAW, video, sidecars), by extension: see ``ScanResult``."""
    catalogs: list[str] = field(default_factory=list)
    """wildid catalog folders under the chosen ones, left out: see ``ScanResult.catalogs``."""
    new_encounter_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    species: str | None = None
    """The species the new encounters got: the one asked for, or the catalog's (below)."""
    species_inferred: bool = False
    """No species was given and every known individual of the catalog is of ``species``."""
    species_suggested: str | None = None
    """With no species at all: the profile its photos clearly look like, for the caller to
    suggest (filled by ``wildid.engine.species_guess.suggest_species``; nothing is set)."""

    with_data_strip: int = 0
    """Photos with a camera trap's data strip printed on them: their automatic boxes stop at
    it (``wildid.ingest.data_strip``)."""
    doubtful_times: list[tuple[str, datetime, str]] = field(default_factory=list)
    """(file name, time, kind) of photos whose camera's clock looks wrong: dated in the future
    or at a factory date (``wildid.ingest.clock``). They are imported as the camera dated them."""

    @property
    def photos_per_second(self) -> float:
        return self.imported / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Prepared:
    """A photo read, checked and stored on disk, waiting for its database row."""

    path: Path
    photo: Photo | None = None
    duplicate: bool = False
    error: str | None = None


class _Claims:
    """Thread-safe set of sha256 seen in this run, so two copies of a file import once."""

    def __init__(self, known: set[str]) -> None:
        self._known = known
        self._lock = threading.Lock()

    def claim(self, sha: str) -> bool:
        with self._lock:
            if sha in self._known:
                return False
            self._known.add(sha)
            return True

    def release(self, sha: str) -> None:
        with self._lock:
            self._known.discard(sha)


def _prepare(path: Path, catalog: Catalog, claims: _Claims, options: ImportOptions) -> _Prepared:
    """Everything for one file that does not touch the database (runs in a worker thread)."""
    name = display_path(path)
    try:
        data, sha = read_and_hash(path)
    except ImageError as exc:
        return _Prepared(path, error=str(exc))
    except OSError as exc:
        return _Prepared(path, error=f"cannot read the file: {exc.strerror or exc}")
    if not claims.claim(sha):
        return _Prepared(path, duplicate=True)
    try:
        info = probe(data, name)
        exif = read_exif(data, name)
        image = decode(data, name, max_side=THUMB_SIDE)
        write_thumbnail(catalog.thumb_dir, sha, make_thumbnail(image, THUMB_SIDE))
        strips = strips_of_photo(image, info.oriented_height)
        stored = None
        if not options.reference_in_place:
            stored = catalog.media.put(sha, path.suffix or f".{info.format.lower()}", data)
    except (WildIdError, OSError) as exc:
        claims.release(sha)
        if isinstance(exc, DiskFullError) or is_disk_full(exc):
            # not this photo's fault: every photo after it would fail the same way
            thumbnail_path(catalog.thumb_dir, sha).unlink(missing_ok=True)
            raise DiskFullError(disk_full_message(catalog.root)) from exc
        return _Prepared(path, error=str(exc) if isinstance(exc, WildIdError)
                         else f"cannot store the photo: {exc}")
    photo = Photo(
        sha256=sha,
        stored_path=stored,
        original_path=os.path.abspath(name),
        file_size=len(data),
        format=info.format,
        width=info.oriented_width,
        height=info.oriented_height,
        orientation=exif.orientation,
        taken_raw=exif.taken_raw,
        taken_utc=exif.taken_utc,
        utc_offset_minutes=exif.utc_offset_minutes,
        tz_known=exif.tz_known,
        gps_lat=exif.gps_lat,
        gps_lon=exif.gps_lon,
        gps_alt=exif.gps_alt,
        camera_make=exif.camera_make,
        camera_model=exif.camera_model,
        camera_serial=exif.camera_serial,
        strip_top=strips.top,
        strip_bottom=strips.bottom,
    )
    return _Prepared(path, photo=photo)


def run_import(catalog: Catalog, paths: list[Path], options: ImportOptions | None = None,
               progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> ImportReport:
    """Import photos under ``paths`` into ``catalog`` and return the report.

    Bad files are reported and skipped; only a cancel (``Cancelled`` is *not* raised: the
    report's status says ``cancelled``) or a catalog failure stops the batch early. Everything
    committed before a cancel or crash stays, and a re-run continues where it stopped.
    """
    options = options or ImportOptions()
    started = utcnow()
    with catalog.session() as s:
        given = (options.species or "").strip() or None
        species = given or catalog_species(s)
        inferred = given is None and species is not None
        options = replace(options, species=species)
        batch = ImportBatch(
            sources=[display_path(p) for p in paths],
            options={"observer": options.observer, "species": options.species,
                     "species_inferred": inferred,
                     "burst_gap_s": options.burst_gap_s,
                     "reference_in_place": options.reference_in_place, "pid": os.getpid()},
        )
        s.add(batch)
        s.flush()
        batch_id = batch.id
        known = set(s.scalars(select(Photo.sha256)))
    report = ImportReport(batch_id=batch_id, status="running", species=species,
                          species_inferred=inferred)
    reporter = ProgressReporter("Scanning", 0, progress, cancel)
    reporter.emit()
    full: DiskFullError | None = None
    try:
        scanned = scan_paths(list(paths), cancel)
        report.n_found = len(scanned.files)
        report.skipped.extend(scanned.issues)
        report.ignored = dict(scanned.ignored)
        report.catalogs = list(scanned.catalogs)
        reporter = ProgressReporter("Importing", len(scanned.files), progress, cancel)
        reporter.emit()
        _import_files(catalog, scanned.files, batch_id, known, options, report, reporter, cancel)
        report.status = "completed"
    except Cancelled:
        report.status = "cancelled"
    except DiskFullError as exc:
        full = exc
    finally:
        try:
            _finish(catalog, batch_id, report, options)
        except DiskFullError as exc:
            # the batch stays "running" in the database; the next import marks it
            # interrupted and groups its photos into encounters (``group_pending``)
            log.warning("import %s: its end could not be recorded: %s", batch_id, exc)
            full = full or exc
        report.seconds = (utcnow() - started).total_seconds()
    if full is not None:
        again = "import the same folders again once there is room"
        kept = (f"Nothing of this import was saved; {again}" if not report.imported else
                f"{report.imported:,} photo{'' if report.imported == 1 else 's'} of this "
                f"import {'was' if report.imported == 1 else 'were'} saved before it filled; "
                f"{again}, and those are skipped as already in the catalog")
        raise DiskFullError(f"{full}. {kept}") from full
    return report


def catalog_species(s: Session) -> str | None:
    """The species every known individual of the catalog shares, or None.

    A citizen scientist's catalog is nearly always one species, and an import without one
    would otherwise be matched by the generic profile against nobody: species-less encounters
    are never compared with individuals of a species profile. None when the catalog knows no
    individual yet, or its individuals are of several species or of none (then the user has to
    say). Spellings of one species ("Nyala", "nyala") count as one, and so do the names a
    species profile answers to ("nyala", "Tragelaphus angasii"): the most used is returned.
    """
    species = func.coalesce(func.nullif(func.trim(Individual.species), ""), Encounter.species)
    counts: Counter[str] = Counter()
    for name, n in s.execute(select(species, func.count())  # a row per spelling, not per sighting
                             .select_from(Individual)
                             .join(Encounter, Encounter.individual_id == Individual.id)
                             .group_by(species)):
        counts[(name or "").strip()] += n
    if not counts or "" in counts:
        return None
    if len({n.lower() for n in counts}) > 1:  # several names: are they one profile's?
        from wildid.matching.profiles import load_profiles  # only then

        profiles = load_profiles()
        if len({_species_key(n, profiles) for n in counts}) != 1:
            return None
    return counts.most_common(1)[0][0]


def _species_key(name: str, profiles: Mapping[str, SpeciesProfile]) -> str:
    """What makes two species names one species here: the species profile that claims the
    name (by name or alias), else the name itself, case aside. Names no profile claims are
    not merged by the generic profile: "zebra" and "Equus quagga" may be one species or
    two, and only the user knows."""
    from wildid.matching.profiles import profile_for

    profile = profile_for(name, profiles)
    return f"profile:{profile.name}" if profile.name != "default" else name.lower()


def _import_files(catalog: Catalog, files: list[Path], batch_id: str, known: set[str],
                  options: ImportOptions, report: ImportReport, reporter: ProgressReporter,
                  cancel: CancelToken | None) -> None:
    claims = _Claims(known)
    pending_rows: list[_Prepared] = []
    window = max(2, options.workers * 3)  # bounded read-ahead: each holds a whole file in memory
    with ThreadPoolExecutor(max_workers=max(1, options.workers),
                            thread_name_prefix="wildid-import") as pool:
        queue: deque[Future[_Prepared]] = deque()
        todo = iter(files)
        try:
            for path in todo:
                queue.append(pool.submit(_prepare, path, catalog, claims, options))
                if len(queue) >= window:
                    _collect(queue.popleft().result(), pending_rows, report, reporter)
                    if len(pending_rows) >= options.commit_every:
                        _commit(catalog, batch_id, pending_rows, report)
                    reporter.checkpoint()
            while queue:
                _collect(queue.popleft().result(), pending_rows, report, reporter)
                reporter.checkpoint()
            _commit(catalog, batch_id, pending_rows, report)
        except Cancelled:
            for fut in queue:
                fut.cancel()
            # Finished work is kept: what was prepared before the cancel is committed below,
            # and so are the photos a worker was on (the pool waits for them anyway; left
            # out, their originals stayed in the media folder with no row naming them)
            for fut in queue:
                if not fut.cancelled() and fut.exception() is None:
                    _collect(fut.result(), pending_rows, report, reporter)
            try:
                _commit(catalog, batch_id, pending_rows, report)
            except DiskFullError:  # the disk filled as the cancel came: as below
                _remove_uncommitted(catalog, list(pending_rows))
                raise
            raise
        except DiskFullError:
            for fut in queue:
                fut.cancel()
            written = list(pending_rows)
            for fut in queue:  # the photos the workers finished meanwhile wrote files too
                if not fut.cancelled() and fut.exception() is None:
                    written.append(fut.result())
            _remove_uncommitted(catalog, written)
            raise


def _remove_uncommitted(catalog: Catalog, items: list[_Prepared]) -> None:
    """Delete the originals and thumbnails this import wrote for photos that never got their
    database row: on a full disk they take the room the user has to free, and nothing would
    ever use them (a later import writes them again)."""
    shas = {i.photo.sha256 for i in items if i.photo is not None}
    if not shas:
        return
    with catalog.session() as s:  # reading works on a full disk
        kept = set(s.scalars(select(Photo.sha256).where(Photo.sha256.in_(shas))))
    for item in items:
        photo = item.photo
        if photo is None or photo.sha256 in kept:
            continue
        files = [thumbnail_path(catalog.thumb_dir, photo.sha256)]
        if photo.stored_path:
            files.append(catalog.media.path(photo.stored_path))
        for file in files:
            try:
                file.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove %s: %s", file, exc)


def _collect(prepared: _Prepared, pending: list[_Prepared], report: ImportReport,
             reporter: ProgressReporter) -> None:
    if prepared.duplicate:
        report.duplicates += 1
    elif prepared.error is not None:
        report.skipped.append((display_path(prepared.path), prepared.error))
    else:
        pending.append(prepared)
    reporter.advance(1, display_path(prepared.path.name))


def _commit(catalog: Catalog, batch_id: str, pending: list[_Prepared], report: ImportReport) -> None:
    if not pending:
        return
    with catalog.session() as s:
        for item in pending:
            assert item.photo is not None
            item.photo.import_batch_id = batch_id
            s.add(item.photo)
        batch = s.get(ImportBatch, batch_id)
        assert batch is not None
        batch.n_imported += len(pending)
    report.imported += len(pending)
    report.with_data_strip += sum(1 for item in pending
                                  if item.photo is not None and (item.photo.strip_top
                                                                 or item.photo.strip_bottom))
    now = utcnow()
    for item in pending:
        assert item.photo is not None
        kind = doubtful(item.photo.taken_utc, now)
        if kind is not None:
            report.doubtful_times.append((display_path(item.path.name), item.photo.taken_utc,
                                          kind))  # type: ignore[arg-type]
    pending.clear()


def _finish(catalog: Catalog, batch_id: str, report: ImportReport, options: ImportOptions) -> None:
    """Group new photos into encounters and persist the report, whatever stopped the batch."""
    with catalog.session() as s:
        report.new_encounter_ids = group_pending(
            s, GroupingOptions(options.burst_gap_s, options.observer, options.species, batch_id)
        )
        batch = s.get(ImportBatch, batch_id)
        assert batch is not None
        batch.status = report.status if report.status != "running" else "failed"
        batch.finished_at = utcnow()
        batch.n_found = report.n_found
        batch.n_duplicates = report.duplicates
        batch.n_skipped = len(report.skipped)
        for path, reason in report.skipped:
            s.add(ImportIssue(batch_id=batch_id, path=path, reason=reason))
    if report.status == "running":
        report.status = "failed"
