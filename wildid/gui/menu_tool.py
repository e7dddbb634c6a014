"""What the menu's background tools share: the services and prompts of the open catalog, and
the one job each runs at a time.

The score refit, the data-strip pass and the backup each ask, run in the background and
report; the window keeps one of each per open catalog (``MainWindow._tool``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from wildid.gui.jobs import Job, JobFunction
from wildid.gui.prompts import Prompts
from wildid.gui.services import Services


class MenuTool(QObject):
    """A menu command that runs in the background; ``busy`` while its job runs."""

    def __init__(self, services: Services, prompts: Prompts, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.prompts = prompts
        self.job: Job | None = None

    @property
    def busy(self) -> bool:
        """Its job is running: a second start would only queue the same work again."""
        return self.job is not None and self.job.state.active

    def run(self, title: str, work: JobFunction, *, writes: bool, failed: str) -> Job:
        """Run ``work`` as this tool's job: its result goes to ``self._done``, a failure to a
        dialog saying ``failed: <why>`` (the tool shows its own errors)."""
        job = self.job = self.services.jobs.submit(title, work, writes=writes,
                                                   report_errors=False)
        job.succeeded.connect(self._done)
        job.failed.connect(lambda exc: self.prompts.error(f"{failed}: {exc}"))
        return job

    def _done(self, result: Any) -> None:
        raise NotImplementedError
