"""Progress reporting and cancellation for long jobs, shared by the CLI, the GUI and tests.

Long core jobs take ``progress`` (a plain callable) and ``cancel`` (a :class:`CancelToken`).
The core calls ``cancel.raise_if_cancelled()`` between units of work, *after* committing the
previous unit, so a cancelled job never leaves half-written state behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wildid.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """A snapshot of a long job: ``done`` of ``total`` units (``total`` 0 when unknown)."""

    stage: str
    done: int
    total: int
    message: str = ""
    started: float = field(default=0.0)

    @property
    def fraction(self) -> float | None:
        """Completed share in [0, 1], or None while the total is unknown."""
        return None if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def rate(self) -> float:
        """Units per second since the job started (0 before the first unit)."""
        elapsed = time.monotonic() - self.started if self.started else 0.0
        return self.done / elapsed if elapsed > 0 and self.done else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Estimated seconds left, or None when it cannot be estimated yet."""
        rate = self.rate
        if rate <= 0 or self.total <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """A thread-safe flag a front end sets and the core polls between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the running job to stop at its next checkpoint."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` when cancel() was called; call only at a safe checkpoint."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


class ProgressReporter:
    """Helper for core jobs: counts units and forwards snapshots to an optional callback."""

    def __init__(self, stage: str, total: int, callback: ProgressCallback | None,
                 cancel: CancelToken | None = None) -> None:
        self.stage = stage
        self.total = total
        self.done = 0
        self._callback = callback
        self._cancel = cancel
        self._started = time.monotonic()

    def advance(self, n: int = 1, message: str = "") -> None:
        """Record ``n`` finished units and notify the callback."""
        self.done += n
        self.emit(message)

    def emit(self, message: str = "") -> None:
        if self._callback is not None:
            self._callback(Progress(self.stage, self.done, self.total, message, self._started))

    def checkpoint(self) -> None:
        """Raise Cancelled if the user asked to stop; call only after committing finished work."""
        if self._cancel is not None:
            self._cancel.raise_if_cancelled()
