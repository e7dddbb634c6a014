"""The main window: assembles navigation, pages, menus, the jobs strip and catalog switching.

It owns no domain logic. Pages get the :class:`~wildid.gui.services.Services` of the open catalog;
opening another catalog builds new Services and new pages, then closes the old ones.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, QTimer, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QWidget,
)

from wildid.catalog.store import DB_NAME, holds_other_files
from wildid.errors import CatalogError
from wildid.gui.errors import ErrorHandler
from wildid.gui.import_page import PathDropFilter
from wildid.gui.jobs import JobsModel, JobsStatusWidget
from wildid.gui.menus import Actions, build_menus, fill_review_menu
from wildid.gui.pages import PAGES, Navigation, page_class
from wildid.gui.prompts import Prompts
from wildid.gui.services import Services
from wildid.gui.settings import Settings
from wildid.paths import default_catalog_dir, log_dir

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The app window for one open catalog at a time.

    ``menu_actions`` holds the menu actions by name (:class:`~wildid.gui.menus.Actions`).
    """

    def __init__(self, services: Services, errors: ErrorHandler | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.settings: Settings = services.settings
        self.errors = errors
        self.prompts = Prompts(self)  # the questions and reports its menu actions show
        if errors is not None:
            errors.parent_widget = self
        self.setObjectName("MainWindow")
        self.setMinimumSize(760, 520)
        self.nav = Navigation(PAGES)
        self.setCentralWidget(self.nav)
        self.menu_actions: Actions = build_menus(self, self)
        self.nav.page_changed.connect(self._page_changed)
        self.reviewer_label = QLabel()
        self.statusBar().addPermanentWidget(self.reviewer_label)
        self._jobs_widget: JobsStatusWidget | None = None
        self._drop = PathDropFilter(self, self.import_paths)
        self._install(services)
        self._restore_layout()

    # ------------------------------------------------------------ services and pages -----
    def _install(self, services: Services) -> None:
        self.services = services
        for spec in PAGES:
            cls, error = page_class(spec)
            if error is not None:
                services.report_error(error)
            self.nav.set_page(spec.key, cls(services) if cls is not None else None)
            self.menu_actions.pages[spec.key].setEnabled(cls is not None)
        self._connect_pages()
        self._resolve_shortcut_conflicts()
        if self._jobs_widget is not None:
            self.statusBar().removeWidget(self._jobs_widget)
            self._jobs_widget.deleteLater()
        model = JobsModel(services.jobs)
        self._jobs_widget = JobsStatusWidget(model)
        model.setParent(self._jobs_widget)  # goes with the widget when the catalog changes
        self.statusBar().addWidget(self._jobs_widget)
        services.undo_changed.connect(self._update_undo)
        services.jobs.job_done.connect(self._job_done)
        self._update_undo()
        self._update_reviewer()
        self.setWindowTitle(f"{services.catalog.root} — wildid")
        # after the window is up: a question before it would have nothing to stand on
        QTimer.singleShot(0, self._offer_strip_scan)

    def _connect_pages(self) -> None:
        """Wire the signals pages offer for moving between them (each one optional)."""
        import_page = self.page("import")
        if import_page is not None:
            import_page.review_requested.connect(self.review_encounters)
        for key in ("encounters", "individuals"):
            page = self.page(key)
            signal = getattr(page, "open_encounter_requested", None)
            if signal is not None:
                signal.connect(self.open_encounter)
        review = self.page("review")
        signal = getattr(review, "open_individual_requested", None)
        if signal is not None:
            signal.connect(self.open_individual)
        # One Ctrl+Z for the whole window: the Review page's Undo/Redo buttons use Edit's.
        share = getattr(review, "use_window_actions", None)
        if share is not None:
            share({"undo": self.menu_actions.undo, "redo": self.menu_actions.redo})
        sections = getattr(review, "menu_sections", None)
        menu = self.menu_actions.review_menu
        if menu is not None:
            fill_review_menu(menu, sections() if sections is not None else None)
            self._update_review_menu()

    def _update_review_menu(self) -> None:
        """The Review menu acts on the Review page, so it is usable while that page shows."""
        menu = self.menu_actions.review_menu
        if menu is not None:
            menu.menuAction().setEnabled(self.nav.current_key() == "review"
                                         and self.nav.available("review"))

    def _resolve_shortcut_conflicts(self) -> None:
        """Menu shortcuts win over a page's own action with the same keys (a safety net).

        Qt triggers neither of two enabled actions with one shortcut ("ambiguous overload"), so
        a page that binds Ctrl+Z itself would make Ctrl+Z do nothing. Pages are written not to
        (the shell's tests check every key is bound once); should one still do it, its
        duplicate key is dropped, with a warning in the log.
        """
        window_keys = {seq.toString() for action in self.findChildren(QAction)
                       if action.parent() is self for seq in action.shortcuts()}
        for spec in PAGES:
            page = self.page(spec.key)
            if page is None:
                continue
            for action in page.findChildren(QAction):
                kept = [seq for seq in action.shortcuts() if seq.toString() not in window_keys]
                if len(kept) != len(action.shortcuts()):
                    log.warning("page %s: %s keeps %s (menu shortcut wins)", spec.key,
                                action.text(), [k.toString() for k in kept])
                    action.setShortcuts(kept)

    def page(self, key: str) -> Any:
        """The page widget for ``key`` (None when that page is not in this build)."""
        return self.nav.page(key)

    def show_page(self, key: str) -> bool:
        return self.nav.show_page(key)

    def _page_changed(self, key: str) -> None:
        self.menu_actions.pages[key].setChecked(True)
        self.settings.current_page = key
        self._update_review_menu()

    # ------------------------------------------------------------ navigation between pages
    def review_encounters(self, encounter_ids: list[str]) -> None:
        """Go to Review, starting with the first of ``encounter_ids``."""
        review = self.page("review")
        if review is None:
            self.statusBar().showMessage("The Review page is not available in this version", 5000)
            return
        self.show_page("review")
        if encounter_ids and hasattr(review, "open_encounter"):
            review.open_encounter(encounter_ids[0])

    def open_encounter(self, encounter_id: str) -> None:
        self.review_encounters([encounter_id])

    def open_individual(self, individual_id: str) -> None:
        page = self.page("individuals")
        if page is not None and self.show_page("individuals"):
            page.open_individual(individual_id)

    # ------------------------------------------------------------ commands ---------------
    def import_paths(self, paths: list[Path]) -> None:
        """Dropped folders/photos: list them on the Import page and show it."""
        page = self.page("import")
        page.add_paths(paths)
        self.show_page("import")
        self.statusBar().showMessage(f"Added {len(paths)} item(s) to import", 4000)

    def import_photos(self) -> None:
        self.show_page("import")
        self.page("import").choose_folder()

    def undo(self) -> None:
        self.services.undo()

    def redo(self) -> None:
        self.services.redo()

    def _update_undo(self) -> None:
        stack = self.services.undo_stack
        self.menu_actions.undo.setEnabled(stack.can_undo)
        self.menu_actions.redo.setEnabled(stack.can_redo)
        self.menu_actions.undo.setText(f"&Undo {stack.undo_label}" if stack.can_undo else "&Undo")
        self.menu_actions.redo.setText(f"&Redo {stack.redo_label}" if stack.can_redo else "&Redo")

    def set_reviewer_name(self) -> None:
        name, ok = QInputDialog.getText(self, "Reviewer name",
                                        "Name recorded with your review decisions:",
                                        text=self.settings.reviewer_name)
        if ok and name.strip():
            self.settings.reviewer_name = name
            self._update_reviewer()

    def _update_reviewer(self) -> None:
        self.reviewer_label.setText(f"Reviewer: {self.settings.reviewer_name}")

    def _job_done(self, job: Any) -> None:
        if job.error is None and job.state.value == "succeeded" and job.writes:
            self.statusBar().showMessage(f"{job.title} finished", 4000)

    def refit_scores(self) -> None:
        """Tools → Refit match scores (``wildid calibrate`` in the background, then a report)."""
        self._score_refit().start()

    def reset_scores(self) -> None:
        """Tools → Use the shipped match scores (``wildid calibrate --reset``)."""
        self._score_refit().reset()

    def find_data_strips(self) -> None:
        """Tools → Find camera data strips in older photos (``wildid find-strips``)."""
        self._strip_scan().start()

    def backup_catalog(self) -> None:
        """File → Back up catalog… (``wildid backup`` in the background, then a report)."""
        from wildid.gui.catalog_backup import CatalogBackup

        self._tool("catalog_backup", CatalogBackup).start()

    def check_installation(self) -> None:
        """Help → Check installation… (``wildid self-test`` in the background, then a report)."""
        from wildid.gui.install_check import InstallCheck

        self._tool("install_check", InstallCheck).start()

    def _offer_strip_scan(self) -> None:
        """Once, for a catalog upgraded from before imports looked for camera data strips whose
        photos nobody has looked at since: offer to now (the Tools menu does it any time)."""
        from wildid.gui.strip_scan import OFFER
        from wildid.ingest.strip_rescan import strips_looked_for, strips_pending

        catalog = self.services.catalog
        if strips_pending(catalog):
            strips_looked_for(catalog)  # asked once, whatever the answer (Tools menu stays)
            self._strip_scan().start(OFFER)

    def _strip_scan(self) -> Any:
        from wildid.gui.strip_scan import StripScan

        return self._tool("strip_scan", StripScan)

    def _score_refit(self) -> Any:
        from wildid.gui.score_refit import ScoreRefit

        return self._tool("score_refit", ScoreRefit)

    def _tool(self, attr: str, cls: type) -> Any:
        """The Tools menu's helper kept as ``attr`` (tests wait on its signals): one per open
        catalog, made by ``cls(services, prompts, window)``, asking through today's prompts."""
        tool = getattr(self, attr, None)
        if tool is None or tool.services is not self.services:
            tool = cls(self.services, self.prompts, self)
            setattr(self, attr, tool)
        tool.prompts = self.prompts
        return tool

    def open_log_folder(self) -> None:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # ------------------------------------------------------------ catalogs ---------------
    def new_catalog(self) -> None:
        start = str(default_catalog_dir().parent)
        path, _ = QFileDialog.getSaveFileName(
            self, "Name the folder for the new catalog", start, "",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if not path:
            return
        target = Path(path)
        if holds_other_files(target):
            QMessageBox.warning(self, "wildid", f"{target} already holds other files. "
                                "Choose a new or empty folder for a catalog.")
            return
        self.open_catalog(target, create=True)

    def open_catalog_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a catalog folder",
                                                  str(self.services.catalog.root.parent))
        if folder:
            self.open_catalog(Path(folder), create=False)

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        current = str(self.services.catalog.root)
        recent = [p for p in self.settings.recent_catalogs if p != current]
        for path in recent:
            action = menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_catalog(Path(p), create=False))
        if not recent:
            menu.addAction("No other recent catalogs").setEnabled(False)

    def open_catalog(self, path: Path, create: bool = False) -> bool:
        """Switch to the catalog at ``path``; on failure say why and keep the current one."""
        if path.resolve() == self.services.catalog.root:
            return True
        if not create and not (path / DB_NAME).exists():
            QMessageBox.warning(self, "wildid", f"There is no wildid catalog in {path}.")
            return False
        if not self._stop_jobs("Switching catalogs"):
            return False
        try:
            services = Services.open(path, self.settings, self.services.report_error)
        except CatalogError as exc:
            log.warning("cannot open catalog %s: %s", path, exc)
            QMessageBox.warning(self, "wildid", f"Could not open the catalog in {path}:\n\n{exc}")
            return False
        old = self.services
        current = self.nav.current_key() or "import"
        self._install(services)
        self.show_page(current)
        old.close()
        old.deleteLater()
        self.statusBar().showMessage(f"Opened {services.catalog.root}", 5000)
        return True

    def _stop_jobs(self, doing: str) -> bool:
        """Ask before cancelling running jobs; True when none are left running.

        Only work a person would miss is asked about: loading the encounters table (the
        page the app reopens on) is stopped without a question, which had asked whether to
        stop "Loading encounters" when the app was closed soon after it opened.
        """
        jobs = self.services.jobs.active_jobs
        if not jobs:
            return True
        asked = [j for j in jobs if not j.disposable]
        if asked:
            titles = ", ".join(sorted({j.title for j in asked}))
            answer = QMessageBox.question(
                self, "wildid", f"{doing} stops the work still running ({titles}). What is "
                "done so far is kept. Stop it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.services.jobs.cancel_all()
        return self.services.jobs.wait()

    # ------------------------------------------------------------ window state -----------
    def _restore_layout(self) -> None:
        geometry, state = self.settings.window_geometry, self.settings.window_state
        if geometry is None or not self.restoreGeometry(geometry):
            self._first_geometry()
        if state is not None:
            self.restoreState(state)
        if not self.show_page(self.settings.current_page):
            self.show_page("import")

    def _first_geometry(self) -> None:
        """1280x800, or less on a small screen (a 1366x768 laptop), centred."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(1280, 800)
            return
        area = screen.availableGeometry()
        size = QSize(min(1280, round(area.width() * 0.94)), min(800, round(area.height() * 0.92)))
        self.resize(size.expandedTo(self.minimumSize()))
        self.move(area.center() - self.rect().center())

    def save_layout(self) -> None:
        self.settings.window_geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._stop_jobs("Quitting"):
            event.ignore()
            return
        self.save_layout()
        self.services.close()
        super().closeEvent(event)
