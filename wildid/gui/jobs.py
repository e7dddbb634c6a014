"""Background work for the desktop app: core functions run off the GUI thread.

A job wraps any core function that takes ``progress`` and ``cancel`` keyword arguments
(``wildid/progress.py``). It runs in a QThreadPool worker, which talks back only through queued
signals of a private bridge object; the runner turns them into the signals of a :class:`Job`,
emitted on the GUI thread. So no widget is ever touched, and no Python object the GUI connected
is ever released, on a worker thread (see :class:`_Bridge` for why the latter matters).
Core functions open their own ``catalog.session()`` inside the worker: one session per thread.

SQLite has a single writer, so jobs that write the catalog (imports, feature extraction) run one
after another in a one-thread pool, as Anki does; read-only jobs (loading a 100k-row table) use a
separate pool and never wait behind an import.

Progress is throttled in the worker (at most ~20 signals a second) because an import reports
every photo and a flood of queued signals would make the event loop itself the bottleneck.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QThreadPool,
    Signal,
    Slot,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from wildid.errors import Cancelled
from wildid.progress import CancelToken, Progress

log = logging.getLogger(__name__)

JobFunction = Callable[..., Any]
ErrorSink = Callable[[BaseException], None]
PROGRESS_INTERVAL_S = 0.05


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


class Job(QObject):
    """One background task as the GUI sees it. Its signals are emitted on the GUI thread only.

    ``finished`` is emitted last, whatever the outcome, after exactly one of ``succeeded``,
    ``failed`` or ``cancelled``.
    """

    started = Signal()
    progressed = Signal(object)  # Progress
    succeeded = Signal(object)  # the function's return value
    failed = Signal(object)  # the exception
    cancelled = Signal()
    finished = Signal()

    def __init__(self, title: str, writes: bool, parent: QObject | None = None,
                 disposable: bool = False) -> None:
        super().__init__(parent)
        self.title = title
        self.writes = writes
        self.disposable = disposable
        self.token = CancelToken()
        self.state = JobState.QUEUED
        self.last_progress: Progress | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def cancel(self) -> None:
        """Ask the job to stop at its next checkpoint; work committed so far is kept."""
        self.token.cancel()

    @property
    def cancel_requested(self) -> bool:
        return self.token.cancelled

    def _mark_started(self) -> None:
        self.state = JobState.RUNNING
        self.started.emit()

    def _show_progress(self, progress: Progress) -> None:
        if self.state.active:
            self.last_progress = progress
            self.progressed.emit(progress)

    def _end(self, outcome: JobState, value: Any) -> None:
        self.state = outcome
        if outcome is JobState.SUCCEEDED:
            self.result = value
            self.succeeded.emit(value)
        elif outcome is JobState.FAILED:
            self.error = value
            self.failed.emit(value)
        else:
            self.cancelled.emit()
        self.finished.emit()


class _Work:
    """What a worker thread may touch of a job: a plain Python record, no Qt object.

    The runner keeps it (and so the function, often a closure) until the worker has let go,
    so the last reference to anything from the GUI side is always dropped on the GUI thread.
    """

    __slots__ = ("key", "title", "fn", "token", "value")

    def __init__(self, key: int, title: str, fn: JobFunction, token: CancelToken) -> None:
        self.key, self.title, self.fn, self.token = key, title, fn, token
        self.value: Any = None


class _Bridge(QObject):
    """The only Qt object worker threads emit signals on.

    Why a separate object: Qt frees the disconnected ("orphaned") connections of a sender
    lazily, during that sender's next emit, in the emitting thread. Were the workers to emit on
    a :class:`Job`, whose public signals carry lambdas that capture widgets, a worker could free
    such a lambda and with it the last reference to a widget, destroying the widget outside the
    GUI thread ("QBasicTimer::stop: Failed. Possibly trying to stop from a different thread",
    then a segmentation fault: seen in CI). This object is connected only to the runner's own
    slots, so nothing Python-side is ever freed in a worker.
    """

    started = Signal(object)  # key
    progressed = Signal(object, object)  # key, Progress
    done = Signal(object, str)  # key, JobState value; the worker no longer touches the job after


class _Runnable:
    """Runs one job in a pool thread; reports only through the bridge, by the job's key.

    A plain object handed to ``QThreadPool.start`` as a callable: a Python ``QRunnable``
    subclass with auto-delete is deleted twice (by the pool and by PySide).
    """

    def __init__(self, work: _Work, bridge: _Bridge) -> None:
        self._work: _Work | None = work
        self._bridge = bridge
        self._key = work.key
        self._last_emit = 0.0
        self._last_stage = ""

    def _progress(self, progress: Progress) -> None:
        now = time.monotonic()
        final = progress.total > 0 and progress.done >= progress.total
        if final or progress.stage != self._last_stage or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_emit, self._last_stage = now, progress.stage
            self._emit(self._bridge.progressed, self._key, progress)

    def run(self) -> None:
        work, self._work = self._work, None
        assert work is not None
        threading.current_thread().name = f"job: {work.title}"
        outcome = self._run(work)
        del work  # the runner still holds it: never the last reference
        self._emit(self._bridge.done, self._key, outcome.value)

    def _run(self, work: _Work) -> JobState:
        token = work.token
        if token.cancelled:  # cancelled while still queued
            return JobState.CANCELLED
        self._emit(self._bridge.started, self._key)
        fn = work.fn
        try:
            work.value = fn(progress=self._progress, cancel=token)
            return JobState.SUCCEEDED
        except Cancelled:
            return JobState.CANCELLED
        except BaseException as exc:  # handed to the GUI thread, which logs and shows it
            work.value = exc
            return JobState.FAILED
        finally:
            del fn

    @staticmethod
    def _emit(signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the runner was deleted meanwhile (app closing)
            pass


class JobRunner(QObject):
    """Starts jobs and keeps the active ones; ``errors`` receives failures nobody handled."""

    job_added = Signal(object)  # Job
    job_done = Signal(object)  # Job, after its own finished signal

    def __init__(self, errors: ErrorSink | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._errors = errors
        self._writer = QThreadPool(self)
        self._writer.setMaxThreadCount(1)
        self._reader = QThreadPool(self)
        self._reader.setMaxThreadCount(2)
        self._jobs: list[Job] = []
        # Until the worker has let go of it: the job, and what the worker may touch.
        self._held: dict[int, tuple[Job, _Work]] = {}
        self._next_key = 0
        # Created after the pools, so it is destroyed after them (their destructors wait for
        # the workers, which may still be emitting on it).
        self._bridge = _Bridge(self)
        queued = Qt.ConnectionType.QueuedConnection
        self._bridge.started.connect(self._started, queued)
        self._bridge.progressed.connect(self._progressed, queued)
        self._bridge.done.connect(self._done, queued)

    @property
    def active_jobs(self) -> list[Job]:
        return list(self._jobs)

    def submit(self, title: str, fn: JobFunction, *, writes: bool = True,
               report_errors: bool = True, disposable: bool = False) -> Job:
        """Run ``fn(progress=..., cancel=...)`` in the background and return its Job.

        ``writes=False`` for read-only work, which may run beside a writer. Failures go to the
        error sink unless ``report_errors`` is False (the caller shows them itself).
        ``disposable`` for work nobody waits for (loading a table to show): quitting or
        switching catalogs stops it without asking, as it would be redone on demand.
        """
        job = Job(title, writes, self, disposable=disposable)
        if report_errors and self._errors is not None:
            job.failed.connect(self._errors)
        self._next_key += 1
        work = _Work(self._next_key, title, fn, job.token)
        self._jobs.append(job)
        self._held[work.key] = (job, work)
        self.job_added.emit(job)
        (self._writer if writes else self._reader).start(_Runnable(work, self._bridge).run)
        return job

    @Slot(object)
    def _started(self, key: int) -> None:
        held = self._held.get(key)
        if held is not None:
            held[0]._mark_started()

    @Slot(object, object)
    def _progressed(self, key: int, progress: Progress) -> None:
        held = self._held.get(key)
        if held is not None:
            held[0]._show_progress(progress)

    @Slot(object, str)
    def _done(self, key: int, outcome: str) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        job, work = held
        value, work.value, work.fn = work.value, None, None
        try:
            job._end(JobState(outcome), value)
        finally:
            if job in self._jobs:
                self._jobs.remove(job)
            self.job_done.emit(job)
            job.deleteLater()

    def cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until every started job returned (used when closing); True if all did."""
        deadline = time.monotonic() + timeout_ms / 1000
        ok = self._writer.waitForDone(timeout_ms)
        left = max(0, int((deadline - time.monotonic()) * 1000))
        return self._reader.waitForDone(left) and ok


class JobsModel(QAbstractListModel):
    """The runner's active jobs as a list model (title, fraction, message) for views."""

    JobRole = Qt.ItemDataRole.UserRole + 1
    FractionRole = Qt.ItemDataRole.UserRole + 2
    MessageRole = Qt.ItemDataRole.UserRole + 3

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        runner.job_added.connect(self._add)
        runner.job_done.connect(self._remove)
        for job in runner.active_jobs:
            self._add(job)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._jobs)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._jobs):
            return None
        job = self._jobs[index.row()]
        progress = job.last_progress
        if role == Qt.ItemDataRole.DisplayRole:
            return job.title if progress is None else f"{job.title}: {progress.stage}"
        if role == self.JobRole:
            return job
        if role == self.FractionRole:
            return None if progress is None else progress.fraction
        if role == self.MessageRole:
            return "" if progress is None else progress.message
        return None

    def job_at(self, row: int) -> Job:
        return self._jobs[row]

    def _add(self, job: Job) -> None:
        row = len(self._jobs)
        self.beginInsertRows(QModelIndex(), row, row)
        self._jobs.append(job)
        self.endInsertRows()
        job.progressed.connect(lambda _p, j=job: self._changed(j))

    def _changed(self, job: Job) -> None:
        if job in self._jobs:
            index = self.index(self._jobs.index(job))
            self.dataChanged.emit(index, index)

    def _remove(self, job: Job) -> None:
        if job not in self._jobs:
            return
        row = self._jobs.index(job)
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._jobs[row]
        self.endRemoveRows()


class JobRow(QWidget):
    """One running job in the status bar: title, progress bar, Cancel."""

    def __init__(self, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.setSpacing(6)
        self.label = QLabel(job.title)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(140)
        self.bar.setRange(0, 0)  # busy until the first progress report says how much there is
        self.bar.setTextVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip(f"Stop “{job.title}”; work finished so far is kept")
        self.cancel_button.clicked.connect(self._cancel)
        for widget in (self.label, self.bar, self.cancel_button):
            layout.addWidget(widget)
        job.progressed.connect(self._show_progress)

    def _show_progress(self, progress: Progress) -> None:
        fraction = progress.fraction
        if fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(fraction * 1000))
        total = f" {progress.done}/{progress.total}" if progress.total > 0 else ""
        self.label.setText(f"{self.job.title}: {progress.stage}{total}")
        self.setToolTip(progress.message)

    def _cancel(self) -> None:
        self.job.cancel()
        self.cancel_button.setEnabled(False)
        self.label.setText(f"{self.job.title}: stopping…")


class JobsStatusWidget(QWidget):
    """Status-bar strip listing the jobs of a :class:`JobsModel`, each with progress and Cancel."""

    def __init__(self, model: JobsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(12)
        self.rows: list[JobRow] = []
        model.rowsInserted.connect(self._inserted)
        model.rowsAboutToBeRemoved.connect(self._removing)
        self._inserted(QModelIndex(), 0, model.rowCount() - 1)

    def _inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        for row in range(first, last + 1):
            widget = JobRow(self.model.job_at(row), self)
            self.rows.insert(row, widget)
            self._layout.insertWidget(row, widget)
        self.setVisible(bool(self.rows))

    def _removing(self, _parent: QModelIndex, first: int, last: int) -> None:
        for row in range(last, first - 1, -1):
            widget = self.rows.pop(row)
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self.setVisible(bool(self.rows))
