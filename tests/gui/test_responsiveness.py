"""The window stays responsive while photos import and are identified in the background.

A 10 ms QTimer ticks on the GUI thread during a real import of a few hundred generated photos
and the feature extraction and matching that follow it (the real engine and models);
the longest gap between two ticks beyond those 10 ms is how long the GUI was frozen (by GIL
contention, a flood of progress signals, or work done on the GUI thread by mistake).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from tests.photofactory import make_card

N_PHOTOS = 300
TICK_MS = 10
# Measured here (2 shared cores, other jobs running): max lag 60-150 ms. 500 ms leaves room for
# a loaded CI runner; a GUI that does import work on its own thread freezes for seconds.
MAX_LAG_MS = 500


class LagMeter:
    """Records the gaps between ticks of a fast timer on the GUI thread."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.lags: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self.clock.start()
        self._last = self.clock.nsecsElapsed() / 1e6
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        self.lags.append(max(0.0, now - self._last - TICK_MS))
        self._last = now


def test_event_loop_lag_while_importing(main_window: Any, services: Any, settings: Any,
                                        tmp_path: Path, qtbot: Any) -> None:
    folder = tmp_path / "card"
    make_card(folder, N_PHOTOS, seed=11, width=320, height=240, quality=85)
    page = main_window.page("import")
    main_window.show_page("import")
    page.add_paths([folder])
    updates: list[Any] = []
    settings.auto_identify = True
    identification: list[Any] = []
    services.jobs.job_added.connect(
        lambda j: identification.append(j) if j.title == "Identification" else None)
    meter = LagMeter()
    meter.start()
    started = time.perf_counter()
    with qtbot.waitSignal(page.import_finished, timeout=300_000) as blocker:
        job = page.start_import()
        assert job is not None
        job.progressed.connect(updates.append)
    seconds = time.perf_counter() - started
    qtbot.waitUntil(lambda: bool(identification) and not services.jobs.active_jobs,
                    timeout=300_000)
    identify_seconds = time.perf_counter() - started - seconds
    meter.stop()
    from wildid.engine import forget

    forget(services.catalog)
    report = blocker.args[0]
    assert report.status == "completed" and report.imported == N_PHOTOS
    lags = sorted(meter.lags)
    worst = lags[-1]
    p99 = lags[int(0.99 * (len(lags) - 1))]
    print(f"\nimport of {N_PHOTOS} photos in {seconds:.1f} s ({N_PHOTOS / seconds:.0f}/s), "
          f"then extraction and matching in {identify_seconds:.1f} s: "
          f"{len(lags)} ticks, GUI event-loop lag max {worst:.0f} ms, p99 {p99:.0f} ms, "
          f"median {statistics.median(lags):.1f} ms; {len(updates)} progress signals")
    # The GUI really was updating: the progress bar moved while the import ran.
    assert len(updates) >= 5
    assert len(updates) <= seconds * 25 + 10  # throttled to ~20 per second, not one per photo
    assert identification[0].state.value == "succeeded"
    assert worst < MAX_LAG_MS, f"GUI froze for {worst:.0f} ms during import and identification"
