"""Background loading and caching of photos, thumbnails and review data for the GUI thread.

The review screen must switch candidate or encounter instantly: it never decodes a photo or
queries candidates itself. It asks this cache; a hit returns at once, a miss queues the work on
a small thread pool and a signal says when the result is there. The page also prefetches the
next encounters of the queue, so in steady state every switch is a hit.

Workers only build ``QImage`` objects and plain dataclasses (both safe off the GUI thread); each
database read opens its own session via ``catalog.session()`` (one session per thread).
Results that went stale while loading (an encounter invalidated after a decision) are dropped
by a per-key generation counter instead of being cached.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from wildid.errors import WildIdError
from wildid.gui.image_view import rgb_to_qimage

log = logging.getLogger(__name__)

__all__ = ["LRU", "LoadedImage", "Prefetcher", "ReviewBundle", "REVIEW_MAX_SIDE", "THUMB_MAX_SIDE"]

REVIEW_MAX_SIDE = 2048  # enough to inspect markings when zoomed; ~12 MB per decoded photo
THUMB_MAX_SIDE = 256  # the catalog's thumbnails; views scale while painting


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo, or the reason it could not be decoded (then ``image`` is None)."""

    image: QImage | None
    error: str = ""

    @property
    def nbytes(self) -> int:
        return 0 if self.image is None else self.image.sizeInBytes()


@dataclass(frozen=True)
class ReviewBundle:
    """Everything the review page shows about one encounter, read in one background job."""

    encounter_id: str
    detail: Any = None  # wildid.review.queries.EncounterDetail
    candidates: list[Any] = field(default_factory=list)  # list[CandidateView]
    error: str = ""
    knows_individuals: bool = True  # the catalog has a named animal to compare with


class LRU:
    """Least-recently-used map capped by a total cost (bytes or entry count)."""

    def __init__(self, budget: int, cost: Callable[[Any], int] = lambda _v: 1) -> None:
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._budget = budget
        self._cost = cost
        self._used = 0

    def get(self, key: Any) -> Any:
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        self.pop(key)
        self._data[key] = value
        self._used += self._cost(value)
        while self._used > self._budget and len(self._data) > 1:
            _old_key, old = self._data.popitem(last=False)
            self._used -= self._cost(old)

    def pop(self, key: Any) -> None:
        if key in self._data:
            self._used -= self._cost(self._data.pop(key))

    def clear(self) -> None:
        self._data.clear()
        self._used = 0

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def keys(self) -> list[Any]:
        return list(self._data)


class _Relay(QObject):
    """Carries results from workers to the GUI thread (queued because it lives there).

    Workers emit on this object only, never on the Prefetcher: Qt frees a sender's
    disconnected connections during its next emit, in the emitting thread, and the
    Prefetcher's public signals are connected to lambdas that may hold widgets (see
    ``wildid/gui/jobs.py``). This one is connected to a single slot and nothing else.
    """

    done = Signal(object, object, object)  # kind, key, value


class _Job:
    """One background load, handed to ``QThreadPool.start`` as a plain callable (a Python
    ``QRunnable`` subclass would be deleted twice: by the pool and by PySide, see jobs.py)."""

    def __init__(self, relay: _Relay, kind: str, key: Any, work: Callable[[], Any]) -> None:
        self._relay, self._kind, self._key, self._work = relay, kind, key, work

    def run(self) -> None:
        work, self._work = self._work, None
        value = work()
        del work  # never drop the last reference to GUI-side objects in a worker thread
        try:
            self._relay.done.emit(self._kind, self._key, value)
        except RuntimeError:  # the prefetcher was deleted while we worked
            pass


def _decode(path: Path, max_side: int) -> LoadedImage:
    from wildid.vision.image_io import load_image

    try:
        return LoadedImage(rgb_to_qimage(load_image(path, max_side=max_side)))
    except WildIdError as exc:
        return LoadedImage(None, str(exc))
    except Exception as exc:  # noqa: BLE001 - a worker must always report back
        log.exception("decoding %s failed", path)
        return LoadedImage(None, f"{Path(path).name} could not be shown ({exc})")


def _thumbnail(thumb: Path, fallback: Path | None, max_side: int) -> LoadedImage:
    """The cached thumbnail, or a reduced decode of the photo when the cache file is gone."""
    image = QImage(str(thumb)) if thumb and thumb.is_file() else QImage()
    if image.isNull():
        if fallback is None:
            return LoadedImage(None, "no thumbnail")
        return _decode(fallback, max_side)
    if max(image.width(), image.height()) > max_side:
        image = image.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return LoadedImage(image)


class Prefetcher(QObject):
    """Cache + background loader for photos, thumbnails and per-encounter review bundles."""

    imageReady = Signal(str, int)  # path, max_side
    thumbnailReady = Signal(str)  # thumbnail path
    bundleReady = Signal(str)  # encounter id
    queueReady = Signal(int, object, object, str)  # token, ids, counts by state, error
    resultReady = Signal(str, int, object, str)  # name, token, value, error

    def __init__(self, catalog: Any, parent: QObject | None = None, threads: int = 2,
                 image_budget: int = 320 * 2**20, thumb_budget: int = 96 * 2**20) -> None:
        super().__init__(parent)
        self._catalog = catalog
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_done)
        self._images = LRU(image_budget, lambda v: max(1, v.nbytes))
        self._thumbs = LRU(thumb_budget, lambda v: max(1, v.nbytes))
        self._bundles = LRU(64)
        self._pending: set[tuple[str, Any]] = set()
        self._generation: dict[str, int] = {}
        self._queue_token = 0
        self._result_token = 0

    # ------------------------------------------------------------------ photos
    def image(self, path: Path | str, max_side: int = REVIEW_MAX_SIDE) -> LoadedImage | None:
        """The decoded photo if cached (never blocks), else None."""
        return self._images.get((str(path), max_side))

    def request_image(self, path: Path | str, max_side: int = REVIEW_MAX_SIDE,
                      urgent: bool = False) -> None:
        """Decode ``path`` in the background unless cached or already queued."""
        key = (str(path), max_side)
        if key in self._images:
            return
        self._submit("image", key, lambda: _decode(Path(key[0]), max_side), urgent)

    # ------------------------------------------------------------------ thumbnails
    def thumbnail(self, thumb_path: Path | str) -> LoadedImage | None:
        return self._thumbs.get(str(thumb_path))

    def request_thumbnail(self, thumb_path: Path | str, fallback: Path | str | None = None,
                          max_side: int = THUMB_MAX_SIDE) -> None:
        """Load a small preview; ``fallback`` (the photo) is decoded if the file is missing."""
        key = str(thumb_path)
        if key in self._thumbs:
            return
        fb = Path(fallback) if fallback else None
        self._submit("thumb", key, lambda: _thumbnail(Path(key), fb, max_side), False)

    # ------------------------------------------------------------------ review bundles
    def bundle(self, encounter_id: str) -> ReviewBundle | None:
        return self._bundles.get(encounter_id)

    def request_bundle(self, encounter_id: str, urgent: bool = False,
                       refresh: bool = False) -> None:
        """Read the encounter's detail and ranked candidates in the background.

        ``refresh`` reloads a cached bundle but keeps serving the cached one until the new
        one arrives (for changes that only touch what candidates show, e.g. a sighting count).
        """
        if encounter_id in self._bundles and not refresh:
            return
        generation = self._generation.get(encounter_id, 0)
        catalog = self._catalog

        def work() -> tuple[int, ReviewBundle]:
            from wildid.review import queries

            try:
                detail = queries.encounter_detail(catalog, encounter_id)
                candidates = queries.candidates_for(catalog, encounter_id)
                known = bool(candidates) or queries.knows_individuals(catalog)
                return generation, ReviewBundle(encounter_id, detail, list(candidates),
                                                knows_individuals=known)
            except WildIdError as exc:
                return generation, ReviewBundle(encounter_id, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - a worker must always report back
                log.exception("loading encounter %s failed", encounter_id)
                return generation, ReviewBundle(encounter_id, error=f"unexpected error: {exc}")

        self._submit("bundle", encounter_id, work, urgent)

    def invalidate(self, encounter_id: str) -> None:
        """Forget a cached bundle (its candidates changed); loads in flight become stale."""
        self._bundles.pop(encounter_id)
        self._generation[encounter_id] = self._generation.get(encounter_id, 0) + 1
        self._pending.discard(("bundle", encounter_id))

    def refresh_bundles(self, keep: set[str]) -> None:
        """Reload the cached bundles in ``keep`` in the background (serving the old ones
        meanwhile) and forget all others; a change to an individual touches every
        candidate list that shows it, but only the encounters near the reviewer matter now."""
        for encounter_id in self._bundles.keys():
            if encounter_id in keep:
                self.request_bundle(encounter_id, refresh=True)
            else:
                self.invalidate(encounter_id)

    # ------------------------------------------------------------------ review queue
    def request_queue(self, order: str) -> int:
        """Read the review queue (and counts for the done view); returns the request token.

        ``queueReady`` carries the token so the page can ignore answers to older requests.
        """
        self._queue_token += 1
        token = self._queue_token
        catalog = self._catalog

        def work() -> tuple[list[str], dict[str, int], str]:
            from wildid.review import queries

            try:
                ids = queries.review_queue(catalog, order)
                flagged = queries.review_queue(catalog, order, states=("flagged",))
                return ids, {"flagged for a curator": len(flagged)}, ""
            except WildIdError as exc:
                return [], {}, str(exc)

        self._submit("queue", token, work, True)
        return token

    # ------------------------------------------------------------------ any read
    def request_result(self, name: str, work: Callable[[], Any]) -> int:
        """Run a read-only ``work()`` in the background; ``resultReady`` brings its value.

        ``work`` runs and is released on a worker thread, so it must not hold widgets:
        capture the catalog and plain values, never ``self``.

        Returns a token: a page keeps the latest one and ignores answers to older requests.
        """
        self._result_token += 1
        token = self._result_token

        def wrapped() -> tuple[Any, str]:
            try:
                return work(), ""
            except WildIdError as exc:
                return None, str(exc)
            except Exception as exc:  # noqa: BLE001 - a worker must always report back
                log.exception("background read %s failed", name)
                return None, f"unexpected error: {exc}"

        self._submit("result", (name, token), wrapped, True)
        return token

    # ------------------------------------------------------------------ machinery
    def _submit(self, kind: str, key: Any, work: Callable[[], Any], urgent: bool) -> None:
        if (kind, key) in self._pending:
            return
        self._pending.add((kind, key))
        self._pool.start(_Job(self._relay, kind, key, work).run, 1 if urgent else 0)

    @Slot(object, object, object)
    def _on_done(self, kind: str, key: Any, value: Any) -> None:
        if kind == "bundle":
            generation, bundle = value
            if generation != self._generation.get(key, 0):
                return  # invalidated while loading; a fresh request is (or will be) queued
            self._pending.discard((kind, key))
            self._bundles.put(key, bundle)
            self.bundleReady.emit(key)
            return
        self._pending.discard((kind, key))
        if kind == "queue":
            ids, counts, error = value
            self.queueReady.emit(key, ids, counts, error)
        elif kind == "result":
            result, error = value
            self.resultReady.emit(key[0], key[1], result, error)
        elif kind == "image":
            self._images.put(key, value)
            self.imageReady.emit(key[0], key[1])
        elif kind == "thumb":
            self._thumbs.put(key, value)
            self.thumbnailReady.emit(key)

    def is_idle(self) -> bool:
        """True when nothing is queued or running (tests wait for this)."""
        return not self._pending and self._pool.activeThreadCount() == 0

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Drop queued work and wait for running jobs (call before the catalog closes)."""
        self._pool.clear()
        self._pool.waitForDone(timeout_ms)
