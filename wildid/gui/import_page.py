"""The Import page: choose folders or photos (dialog or drag & drop), set options, import.

The import itself is ``wildid.ingest.importer.run_import`` running as a background job; this page
only collects the choices, shows progress with Cancel, and then the report. When new encounters
came in, identification (``Services.identify_new``) starts on its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDropEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import func, select

from wildid.catalog.models import Individual
from wildid.errors import WildIdError
from wildid.gui.import_report import ImportReportView
from wildid.gui.jobs import Job
from wildid.gui.services import Services, changes
from wildid.gui.species_help import SpeciesHelp
from wildid.gui.style import set_role
from wildid.ingest.importer import ImportOptions, ImportReport, catalog_species, run_import
from wildid.ingest.scan import PHOTO_EXTENSIONS
from wildid.progress import Progress
from wildid.review import set_encounter_species
from wildid.review.queries import catalog_species_names

log = logging.getLogger(__name__)

PHOTO_FILTER = "Photos ({})".format(" ".join(
    f"*{ext} *{ext.upper()}" for ext in sorted(PHOTO_EXTENSIONS)))


def local_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    """The local files and folders a drag carries (web URLs are ignored)."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class PathDropFilter(QObject):
    """Event filter that lets any widget take dropped folders/photos and pass them on."""

    def __init__(self, target: QWidget, on_drop: Callable[[list[Path]], None]) -> None:
        super().__init__(target)
        self._on_drop = on_drop
        target.setAcceptDrops(True)
        target.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if local_paths(event):  # type: ignore[arg-type]
                event.acceptProposedAction()  # type: ignore[attr-defined]
                return True
        elif kind == QEvent.Type.Drop:
            paths = local_paths(event)  # type: ignore[arg-type]
            if paths:
                event.acceptProposedAction()  # type: ignore[attr-defined]
                self._on_drop(paths)
                return True
        return False


class SourceList(QListWidget):
    """The list of folders/photos to import; says how to fill it while it is empty."""

    PLACEHOLDER = "Drop folders or photos here, or use “Add folder…”"

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.PLACEHOLDER)
            painter.end()


def _suggestable_species() -> list[str]:
    """The species an import without one can be told its photos show (those with a prototype,
    ``wildid.engine.species_guess``); none when the prototypes cannot be read."""
    try:
        from wildid.engine.species_guess import load_prototypes

        return sorted(load_prototypes().vectors)
    except WildIdError:
        return []


class ImportPage(QWidget):
    """Collects sources and options, runs the import job, shows the report."""

    review_requested = Signal(list)  # ids of the encounters the import created
    import_finished = Signal(object)  # ImportReport

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.job: Job | None = None
        self._suggestable = _suggestable_species()
        self._importing: list[Path] = []
        self._build()
        self._load_options()
        self._update_state()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        """The catalog's species may have changed since: offer them, say what empty means."""
        super().showEvent(event)
        self.refresh_species()

    def refresh_species(self) -> None:
        try:
            self.species_help.set_catalog_species(catalog_species_names(self.services.catalog))
        except WildIdError as exc:  # a catalog that cannot be read: the import says so later
            log.warning("species suggestions: %s", exc)

    def _empty_species(self) -> str:
        """What an empty species field gives (importer.catalog_species), said before importing."""
        try:
            with self.services.catalog.session() as s:
                shared = catalog_species(s)
                known = s.scalar(select(func.count()).select_from(Individual)) or 0
        except WildIdError:
            return ""
        if shared:
            return f"Left empty: {shared}, the species of every individual in this catalog."
        why = ("no individual is known yet" if not known
               else "the individuals in this catalog do not share one")
        if not self._suggestable:
            return f"Left empty: no species ({why})."
        return (f"Left empty: no species ({why}); the report suggests one when the photos "
                f"clearly show {' or '.join(self._suggestable)}.")

    # ------------------------------------------------------------ layout -----------------
    def _build(self) -> None:
        heading = set_role(QLabel("Import photos"), "heading")
        hint = set_role(QLabel("Add the folders of a memory card or single photos, or drop them "
                               "anywhere on this window."), "subtle")
        hint.setWordWrap(True)

        self.sources = SourceList()
        self.sources.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.sources.setMinimumHeight(self.fontMetrics().height() * 5)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_files_button = QPushButton("Add photos…")
        self.remove_button = QPushButton("Remove")
        self.clear_button = QPushButton("Clear")
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.add_files_button.clicked.connect(self.choose_files)
        self.remove_button.clicked.connect(self._remove_selected)
        self.clear_button.clicked.connect(self.clear_sources)
        self.sources.itemSelectionChanged.connect(self._update_state)
        source_buttons = QVBoxLayout()
        for button in (self.add_folder_button, self.add_files_button, self.remove_button,
                       self.clear_button):
            source_buttons.addWidget(button)
        source_buttons.addStretch(1)
        source_box = QGroupBox("Folders and photos")
        source_row = QHBoxLayout(source_box)
        source_row.addWidget(self.sources, 1)
        source_row.addLayout(source_buttons)

        self.observer = QLineEdit()
        self.observer.setPlaceholderText("who took the photos (optional)")
        self.species = QLineEdit()
        self.species.setPlaceholderText("e.g. Tragelaphus angasii (empty: the catalog's species)")
        self.species.setToolTip("Left empty, the new encounters get the species every individual "
                                "in this catalog has, when they all share one; otherwise none")
        self.copy_in = QRadioButton("Copy into the catalog (safe when the card is wiped)")
        self.reference = QRadioButton("Leave them where they are (reference in place)")
        self._storage = QButtonGroup(self)
        self._storage.addButton(self.copy_in)
        self._storage.addButton(self.reference)
        self.burst_gap = QDoubleSpinBox()
        self.burst_gap.setRange(0.0, 3600.0)
        self.burst_gap.setDecimals(0)
        self.burst_gap.setSuffix(" s")
        self.burst_gap.setMaximumWidth(self.fontMetrics().horizontalAdvance("0000 s") + 60)
        self.burst_gap.setToolTip("Photos from one camera closer in time than this form one "
                                  "encounter (a burst)")
        options_box = QGroupBox("Options")
        form = QFormLayout(options_box)
        form.addRow("Observer:", self.observer)
        form.addRow("Species:", self.species)
        self.species_hint = set_role(QLabel(), "subtle")
        form.addRow("", self.species_hint)
        self.species_help = SpeciesHelp(self.species, self.species_hint, self._empty_species)
        storage = QVBoxLayout()
        storage.setSpacing(2)
        storage.addWidget(self.copy_in)
        storage.addWidget(self.reference)
        form.addRow("Photos:", storage)
        form.addRow("Burst gap:", self.burst_gap)

        self.import_button = set_role(QPushButton("Import"), "primary")
        self.import_button.clicked.connect(self.start_import)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = set_role(QLabel(), "subtle")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_import)
        self.import_button.setMinimumWidth(self.fontMetrics().horizontalAdvance("Import") + 80)
        run_row = QHBoxLayout()
        run_row.addWidget(self.progress, 1)
        run_row.addWidget(self.cancel_button)
        run_row.addStretch(0)
        run_row.addWidget(self.import_button)

        self.report_view = ImportReportView()
        self.report_view.review_requested.connect(self.review_requested)
        self.report_view.species_requested.connect(self.give_species)
        self.services.identification_finished.connect(self.report_view.show_identification)
        self.report_box = QGroupBox("Last import")
        QVBoxLayout(self.report_box).addWidget(self.report_view)
        self.report_box.setVisible(False)

        # Sources and options side by side keep the report tall enough to read at 1366x768.
        choices = QHBoxLayout()
        choices.addWidget(source_box, 3)
        choices.addWidget(options_box, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 12)
        layout.addWidget(heading)
        layout.addWidget(hint)
        layout.addLayout(choices, 2)
        layout.addLayout(run_row)
        layout.addWidget(self.status)
        layout.addWidget(self.report_box, 3)

    # ------------------------------------------------------------ sources ----------------
    @property
    def source_paths(self) -> list[Path]:
        return [Path(self.sources.item(i).text()) for i in range(self.sources.count())]

    def add_paths(self, paths: Iterable[Path | str]) -> None:
        """Add folders/photos to the list (duplicates ignored); drops and dialogs call this."""
        known = {str(p) for p in self.source_paths}
        for path in paths:
            text = os.path.abspath(os.fsdecode(path))
            if text not in known:
                known.add(text)
                self.sources.addItem(text)
        self._update_state()

    def clear_sources(self) -> None:
        self.sources.clear()
        self._update_state()

    def _remove_sources(self, paths: Iterable[Path]) -> None:
        done = {str(p) for p in paths}
        for row in reversed(range(self.sources.count())):
            if self.sources.item(row).text() in done:
                self.sources.takeItem(row)
        self._update_state()

    def _remove_selected(self) -> None:
        for item in self.sources.selectedItems():
            self.sources.takeItem(self.sources.row(item))
        self._update_state()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Add a folder of photos", self.services.settings.last_import_folder)
        if folder:
            self.services.settings.last_import_folder = folder
            self.add_paths([folder])

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add photos", self.services.settings.last_import_folder, PHOTO_FILTER)
        if files:
            self.services.settings.last_import_folder = str(Path(files[0]).parent)
            self.add_paths(files)

    # ------------------------------------------------------------ options ----------------
    def _load_options(self) -> None:
        settings = self.services.settings
        self.observer.setText(settings.import_observer)
        self.species.setText(settings.import_species)
        (self.reference if settings.import_reference_in_place else self.copy_in).setChecked(True)
        self.burst_gap.setValue(settings.import_burst_gap_s)

    def options(self) -> ImportOptions:
        """The options as chosen on the page."""
        return ImportOptions(
            observer=self.observer.text().strip() or None,
            species=self.species.text().strip() or None,
            burst_gap_s=float(self.burst_gap.value()),
            reference_in_place=self.reference.isChecked(),
        )

    def _save_options(self, options: ImportOptions) -> None:
        settings = self.services.settings
        settings.import_observer = options.observer or ""
        settings.import_species = options.species or ""
        settings.import_reference_in_place = options.reference_in_place
        settings.import_burst_gap_s = options.burst_gap_s

    # ------------------------------------------------------------ running ----------------
    @property
    def running(self) -> bool:
        return self.job is not None

    def start_import(self) -> Job | None:
        """Start importing the listed sources in the background; returns the job."""
        paths = self.source_paths
        if self.running or not paths:
            return None
        options = self.options()
        self._save_options(options)
        catalog = self.services.catalog

        def work(progress: Any = None, cancel: Any = None) -> ImportReport:
            report = run_import(catalog, paths, options, progress, cancel)
            try:  # with no species at all: what the photos look like (only suggested)
                from wildid.engine.species_guess import suggest_species

                suggest_species(catalog, report)
            except Exception as exc:  # noqa: BLE001 - a suggestion never fails an import
                log.warning("no species suggestion: %s", exc)
            return report

        self._importing = paths
        self.job = self.services.jobs.submit("Import", work, writes=True)
        self.job.started.connect(lambda: self.status.setText("Scanning folders…"))
        self.job.progressed.connect(self._show_progress)
        self.job.succeeded.connect(self._finished)
        self.job.finished.connect(self._job_ended)
        self.progress.setRange(0, 0)
        # Writers run one at a time: an identification still running goes first.
        self.status.setText("Waiting for the work in progress to finish…")
        self._update_state()
        return self.job

    def give_species(self, species: str, encounter_ids: list[str]) -> None:
        """Apply the report's species suggestion to the import's encounters (undoable); they
        are matched again under the species' profile."""
        try:
            op = set_encounter_species(self.services.catalog, encounter_ids, species,
                                       self.services.reviewer)
        except WildIdError as exc:
            self.status.setText(f"The species could not be set: {exc}")
            return
        if not op.is_noop:
            self.services.push(op)
            self.services.identify_new(op.changes.encounters)
        self.report_view.species_given(len(op.changes.encounters))

    def cancel_import(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Stopping after the current photos; what is done is kept…")

    def _show_progress(self, progress: Progress) -> None:
        if progress.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(progress.fraction * 1000))
        text = progress.stage
        if progress.total:
            text += f" {progress.done:,} of {progress.total:,}"
        if progress.message:
            text += f" — {progress.message}"
        if progress.rate:
            text += f" ({progress.rate:.1f} photos/s"
            eta = progress.eta_seconds
            text += f", about {eta:.0f} s left)" if eta is not None else ")"
        if self.job is not None and not self.job.cancel_requested:
            self.status.setText(text)

    def _finished(self, report: ImportReport) -> None:
        log.info("import %s: %d imported, %d duplicates, %d skipped", report.status,
                 report.imported, report.duplicates, len(report.skipped))
        self.report_view.show_report(report)
        self.report_box.setVisible(True)
        self.status.setText("")
        if report.status == "completed":
            self._remove_sources(self._importing)
        if report.new_encounter_ids:
            self.services.notify(changes(report.new_encounter_ids))
            if self.services.settings.auto_identify:
                if self.services.identify_new(report.new_encounter_ids) is not None:
                    self.report_view.show_identifying()
        self.import_finished.emit(report)

    def _job_ended(self) -> None:
        job, self.job = self.job, None
        if job is not None and job.error is not None:
            self.status.setText(f"Import stopped: {job.error}")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self._update_state()

    def _update_state(self) -> None:
        running = self.running
        has_sources = self.sources.count() > 0
        self.import_button.setEnabled(has_sources and not running)
        self.cancel_button.setEnabled(running and not (self.job and self.job.cancel_requested))
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.remove_button.setEnabled(bool(self.sources.selectedItems()) and not running)
        self.clear_button.setEnabled(has_sources and not running)
        for widget in (self.add_folder_button, self.add_files_button, self.observer, self.species,
                       self.copy_in, self.reference, self.burst_gap):
            widget.setEnabled(not running)
