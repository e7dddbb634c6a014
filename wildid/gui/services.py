"""What every page needs, built once per open catalog and handed to the pages (no globals).

``Services`` holds the open :class:`~wildid.catalog.Catalog`, the review core's
:class:`~wildid.review.undo.UndoStack`, the background :class:`~wildid.gui.jobs.JobRunner` and the
user's :class:`~wildid.gui.settings.Settings`. Opening another catalog builds a new Services (and
new pages), so no page can keep talking to a closed database.

Change notification follows Anki: whoever changes the catalog says *what* changed with a
``Changes`` value (``data_changed``), and each page decides for itself whether to reload.
Pages push undoable review operations through :meth:`Services.push`; the Edit menu follows
``undo_changed``.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

from wildid.catalog import Catalog, open_catalog
from wildid.gui.jobs import ErrorSink, Job, JobRunner
from wildid.gui.settings import Settings
from wildid.review import Changes, Operation, OperationGroup, UndoStack

log = logging.getLogger(__name__)

ENGINE_MODULE = "wildid.engine"


def engine_function(*names: str) -> Callable[..., Any] | None:
    """The first of ``names`` the engine module has, or None when it is not installed (a
    missing module *inside* the engine is an error, not an absent engine)."""
    try:
        engine = importlib.import_module(ENGINE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != ENGINE_MODULE:
            raise
        return None
    for name in names:
        fn = getattr(engine, name, None)
        if callable(fn):
            return fn
    return None


def engine_entry_point() -> Callable[..., Any] | None:
    """The engine's ``identify_new`` (or an older engine's ``process_new``) when the engine is
    installed, else None (logged)."""
    entry = engine_function("identify_new", "process_new")
    if entry is None:
        log.info("%s is not available: new photos are not identified automatically", ENGINE_MODULE)
    return entry


def changes(encounters: Iterable[str] = (), individuals: Iterable[str] = ()) -> Changes:
    """A ``Changes`` value for changes made outside the review operations (imports...)."""
    return Changes(encounters=frozenset(encounters), individuals=frozenset(individuals))


class Services(QObject):
    """The open catalog and the app-wide helpers that work on it."""

    data_changed = Signal(object)  # Changes
    undo_changed = Signal()
    # what an undo changed, emitted just before data_changed (from the menu or a page alike):
    # the review page shows the encounter an undone decision returns to the reviewer
    undone = Signal(object)  # Changes
    # the engine's MatchReport after a background identification: what became of an import
    identification_finished = Signal(object)

    def __init__(self, catalog: Catalog, settings: Settings, errors: ErrorSink | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.settings = settings
        self.report_error: ErrorSink = errors or (lambda exc: log.error("unhandled: %s", exc))
        self.jobs = JobRunner(errors, self)
        # Pages may push onto the stack directly; on_change keeps the Edit menu in step either way.
        self.undo_stack = UndoStack(catalog, on_change=lambda _stack: self.undo_changed.emit())
        self._closed = False
        self._refresh_job: Job | None = None
        self._refresh_wanted: list[str] | None = None  # asked for while a refresh ran
        self._refresh_extract = False  # and one of those asks wanted features extracted
        # matched again with nothing to match (no photo could be read): not asked again on every
        # step through the queue, only once something about them changes
        self._refresh_futile: set[str] = set()
        self.data_changed.connect(lambda what: self._refresh_futile.difference_update(
            getattr(what, "encounters", ())))

    @classmethod
    def open(cls, path: Path | str, settings: Settings, errors: ErrorSink | None = None,
             parent: QObject | None = None) -> Services:
        """Open (creating if needed) the catalog at ``path``; raises CatalogError subclasses."""
        catalog = open_catalog(path)
        settings.add_recent_catalog(catalog.root)
        return cls(catalog, settings, errors, parent)

    @property
    def reviewer(self) -> str:
        """The name recorded on decisions."""
        return self.settings.reviewer_name

    # ------------------------------------------------------------ changes and undo -------
    def notify(self, what: Changes) -> None:
        """Tell every page that ``what`` changed in the catalog."""
        self.data_changed.emit(what)

    def push(self, op: Operation | OperationGroup) -> None:
        """Record an applied review operation for undo and announce what it changed."""
        self.undo_stack.push(op)
        self.notify(op.changes)

    def undo(self) -> Changes | None:
        """Undo the last operation; returns what it changed (None when there was nothing)."""
        return self._history(self.undo_stack.can_undo, self.undo_stack.undo, self.undone)

    def redo(self) -> Changes | None:
        """Redo the last undone operation; returns what it changed (None when nothing)."""
        return self._history(self.undo_stack.can_redo, self.undo_stack.redo)

    def _history(self, possible: bool, step: Callable[[], Changes],
                 announce: SignalInstance | None = None) -> Changes | None:
        if not possible:
            return None
        what = step()
        if announce is not None:
            announce.emit(what)
        self.notify(what)
        return what

    # ------------------------------------------------------------ background work --------
    def identify_new(self, encounter_ids: Iterable[str] = ()) -> Job | None:
        """Extract features and match new encounters in the background, when the engine exists."""
        entry = engine_entry_point()
        if entry is None:
            return None
        catalog, ids = self.catalog, frozenset(encounter_ids)

        def work(progress: Any = None, cancel: Any = None) -> Any:
            return entry(catalog, progress, cancel)

        job = self.jobs.submit("Identification", work, writes=True)
        job.succeeded.connect(lambda result: self._identified(result, ids))
        return job

    def _identified(self, result: Any, ids: frozenset[str]) -> None:
        matched = getattr(result, "matched", None)
        if matched is not None:  # a MatchReport: say what changed, then what came of it
            self.notify(changes(matched))
            self.identification_finished.emit(result)
        else:
            self.notify(result if isinstance(result, Changes) else changes(ids))

    def refresh_matches(self, encounter_ids: Sequence[str], extract: bool = False) -> Job | None:
        """Match again in the background those of ``encounter_ids`` whose candidates are out of
        date: the review screen asks this for the encounters it shows next, so an animal named
        a moment ago is a candidate for its later sightings, and a box drawn since is used; the
        box editor asks it for the encounters its edits touched when it closes.

        Nothing is queued when all is current (one short read decides; see
        :func:`~wildid.review.queries.stale_results`), unless ``extract``: the box editor's
        edits may have moved a box of a confirmed sighting, which is never matched again but
        whose features must be extracted again for the index to describe the animal the box
        now holds. While a refresh runs, further requests wait and run together after it (one
        job for all of them, never a queue): the review screen's next few and the editor's
        encounters alike. Like identification after an import it follows the "identify
        automatically" setting; a failure is logged, not shown on every step through the queue
        (the import reports a broken model).
        """
        from wildid.review.queries import stale_results

        if not self.settings.auto_identify or self._closed:
            return None
        if self._refresh_job is not None and self._refresh_job.state.active:
            waiting = self._refresh_wanted or []
            self._refresh_wanted = list(dict.fromkeys([*waiting, *encounter_ids]))
            self._refresh_extract = self._refresh_extract or extract
            return None
        entry = engine_function("refresh_matches")
        ids = [e for e in encounter_ids if e not in self._refresh_futile]
        if entry is None or not (extract or stale_results(self.catalog, ids)):
            return None
        catalog = self.catalog

        def work(progress: Any = None, cancel: Any = None) -> Any:
            return entry(catalog, ids, progress, cancel)

        job = self._refresh_job = self.jobs.submit("Updating matches", work, writes=True,
                                                   report_errors=False)
        job.succeeded.connect(self._refreshed)
        job.failed.connect(lambda exc: log.warning("updating matches failed: %s", exc))
        job.finished.connect(self._refresh_finished)
        return job

    def _refreshed(self, report: Any) -> None:
        if report.matched:
            self.notify(changes(report.matched))
        self._refresh_futile |= {e for e, _reason in report.skipped}

    def _refresh_finished(self) -> None:
        self._refresh_job = None
        wanted, self._refresh_wanted = self._refresh_wanted, None
        extract, self._refresh_extract = self._refresh_extract, False
        if wanted:
            self.refresh_matches(wanted, extract=extract)

    def close(self, timeout_ms: int = 30_000) -> bool:
        """Stop background jobs and close the catalog; False if a job did not stop in time."""
        if self._closed:
            return True
        self.jobs.cancel_all()
        stopped = self.jobs.wait(timeout_ms)
        if not stopped:
            log.warning("background jobs did not stop within %d ms", timeout_ms)
        self.undo_stack.clear()
        engine = sys.modules.get(ENGINE_MODULE)
        if engine is not None and hasattr(engine, "forget"):
            engine.forget(self.catalog)  # its in-memory index belongs to this catalog
        self.catalog.close()
        self._closed = True
        return stopped
