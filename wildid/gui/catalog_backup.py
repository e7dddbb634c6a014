"""File → Back up catalog…: ``wildid backup`` from the app.

Why in the app: the catalog's database runs in WAL mode, so copying its folder while the app
is open can pair a database with a log from another moment. The backup reads one consistent
state through SQLite (:mod:`wildid.catalog.backup`) while the app keeps running; again into
the same folder it copies only the originals imported since.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from wildid.catalog.backup import backup_catalog, report_lines
from wildid.gui.jobs import Job
from wildid.gui.menu_tool import MenuTool

TITLE = "Back up catalog"


class CatalogBackup(MenuTool):
    """Asks for a folder, backs the catalog up there in the background, reports."""

    finished = Signal(object)  # the BackupReport

    def start(self) -> Job | None:
        """Ask where, then back up; None when no folder was chosen or a backup runs."""
        if self.busy:
            return None
        catalog = self.services.catalog
        start = str(catalog.root.parent)

        def ask(parent: QWidget) -> str | None:
            return QFileDialog.getExistingDirectory(
                parent, "Back up the catalog into a folder: new, empty, or an earlier backup "
                "(best on another disk)", start) or None

        folder = self.prompts.choose(TITLE, ask)
        if not folder:
            return None

        def work(progress: Any = None, cancel: Any = None) -> Any:
            return backup_catalog(catalog, folder, progress, cancel)

        # reads only: it runs beside review decisions and imports
        return self.run("Backing up the catalog", work, writes=False,
                        failed="The backup failed")

    def _done(self, report: Any) -> None:
        self.prompts.inform(TITLE, "\n\n".join(report_lines(report)))
        self.finished.emit(report)
