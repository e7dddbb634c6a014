"""What the menu's background tools share: the services and prompts of the open catalog, and
the one job each runs at a time.

The score refit, the data-strip pass and the backup each ask, run in the background and
report; the window keeps one of each per open catalog (``MainWindow._tool``).
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from wildid.gui.jobs import Job
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
