"""Python's cyclic garbage collector, run only on the GUI thread.

Why: the collector normally runs whenever allocations pass a threshold, in whatever thread
happens to allocate. When a reference cycle that holds a Qt object (a widget with a lambda
connected to itself, a page that keeps its timer) is collected in a worker thread, Qt destroys
that object outside its own thread: "QBasicTimer::stop: Failed. Possibly trying to stop from a
different thread" and, sometimes, a segmentation fault. PyQt/PySide applications avoid it the
same way (qutebrowser, Orange): switch automatic collection off and collect from a timer on the
GUI thread, where every widget lives.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

__all__ = ["GuiGarbageCollector"]

INTERVAL_MS = 500


class GuiGarbageCollector(QObject):
    """Disables automatic collection while installed and collects on the GUI thread instead.

    Each tick collects the generations whose allocation counters passed gc's own thresholds,
    so the cost stays what the automatic collector would have spent, just moved to a safe place.
    """

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._installed = False

    def install(self) -> None:
        gc.disable()
        self._timer.start()
        self._installed = True

    def uninstall(self) -> None:
        """Stop the timer, collect once here, and give automatic collection back."""
        if not self._installed:
            return
        self._timer.stop()
        self._installed = False
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> None:
        """Collect the generations gc would have collected by now (oldest first)."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return
