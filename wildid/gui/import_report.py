"""What an import did, shown after it ends: counts, skipped files with reasons, next step."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wildid.engine.extraction import failures_by_reason
from wildid.gui.style import set_role
from wildid.ingest.clock import describe_doubtful
from wildid.ingest.importer import ImportReport
from wildid.ingest.scan import describe_catalogs, describe_ignored

MAX_REASONS = 5  # reasons a photo failed, each said once; the log has every photo


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def summary_text(report: ImportReport, species_given: int | None = None) -> str:
    """One sentence a person reads first: what came in, what did not, how fast.
    ``species_given``: how many new encounters got the suggested species, once asked."""
    head = {"completed": "Import finished", "cancelled": "Import cancelled",
            "failed": "Import failed"}.get(report.status, f"Import {report.status}")
    parts = [f"{_plural(report.imported, 'photo')} imported",
             f"{_plural(report.duplicates, 'duplicate')} already in the catalog",
             f"{_plural(len(report.skipped), 'file')} skipped"]
    tail = f"{_plural(len(report.new_encounter_ids), 'new encounter')}"
    speed = f" in {report.seconds:.1f} s" if report.seconds else ""
    kept = " Everything imported before you pressed Cancel is kept." if report.status == "cancelled" else ""
    none = (" No photos were found in the chosen folders."
            if report.status == "completed" and report.n_found == 0 else "")
    if report.species_inferred and report.new_encounter_ids:
        species = (f" Species: {report.species}, the species of every individual in this "
                   "catalog (none was given).")
    elif report.species_suggested and species_given is not None:
        species = (f" Species {report.species_suggested} given to "
                   f"{_plural(species_given, 'new encounter')} (Undo reverts it).")
    elif report.species_suggested:
        species = (" No species was given, and these photos look like "
                   f"{report.species_suggested}.")
    else:
        species = ""
    strips = (" A camera's data strip (its printed text) is left out of the boxes of "
              f"{_plural(report.with_data_strip, 'photo')}." if report.with_data_strip else "")
    clocks = describe_doubtful(report.doubtful_times)
    if clocks:
        clocks = (f" {clocks} Their times are kept as the camera wrote them; Correct time… "
                  "on the Encounters page moves the selected encounters' times.")
    return f"{head}{speed}: {', '.join(parts)}; {tail}.{species}{strips}{clocks}{kept}{none}"


def ignored_text(report: ImportReport) -> str:
    """The files the scan passed over (RAW, video, sidecars) and the catalog folders it left
    out, or "" when there were none."""
    text = describe_ignored(report.ignored)
    lines = [f"Not photos, left alone: {text}."] if text else []
    catalogs = describe_catalogs(report.catalogs)
    if catalogs:
        lines.append(f"Left alone: {catalogs}.")
    return "\n".join(lines)


def identification_text(report: Any) -> str:
    """What identification made of the import (an engine ``MatchReport``): how many encounters
    look known or new, and the photos whose features could not be computed, with why."""
    matched, new = len(report.matched), len(report.likely_new)
    text = (f"Identification: {_plural(matched, 'encounter')} matched, {matched - new:,} "
            f"likely known, {new:,} likely new.")
    if report.cancelled:
        text += " Stopped before the end: the rest is identified at the next import."
    failed = list(report.extraction.failed) if report.extraction is not None else []
    if failed:
        text += (f" {_plural(len(failed), 'photo')} could not be processed (matched without "
                 f"{'it' if len(failed) == 1 else 'them'}):")
        grouped = failures_by_reason(failed)
        text += "".join(f"\n• {reason}" + (f" ({_plural(len(ids), 'photo')})" if len(ids) > 1 else "")
                        for reason, ids in grouped[:MAX_REASONS])
        if len(grouped) > MAX_REASONS:
            rest = sum(len(ids) for _reason, ids in grouped[MAX_REASONS:])
            text += f"\n• and {rest:,} more (see the log)"
    return text


class ImportReportView(QWidget):
    """The report of the last import; ``review_requested`` carries its new encounter ids."""

    review_requested = Signal(list)
    species_requested = Signal(str, list)  # the suggested species, the new encounter ids

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: ImportReport | None = None
        self.summary = set_role(QLabel(), "summary")
        self.summary.setWordWrap(True)
        self.ignored = QLabel()
        self.ignored.setWordWrap(True)
        self.ignored.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.identified = QLabel()
        self.identified.setWordWrap(True)
        self.identified.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.identified.setVisible(False)
        self.skipped_label = QLabel("Skipped files")
        self.skipped = QTableWidget(0, 2)
        self.skipped.setHorizontalHeaderLabels(["File", "Reason"])
        self.skipped.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.skipped.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.skipped.setAlternatingRowColors(True)
        self.skipped.setWordWrap(False)
        self.skipped.setTextElideMode(Qt.TextElideMode.ElideLeft)  # keep file names visible
        self.skipped.verticalHeader().setVisible(False)
        header = self.skipped.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.review_button = set_role(QPushButton("Review new encounters"), "primary")
        self.review_button.clicked.connect(self._review)
        # a suggestion from what the photos look like: applied only when asked (undoable)
        self.species_button = QPushButton()
        self.species_button.setVisible(False)
        self.species_button.clicked.connect(self._give_species)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.species_button)
        buttons.addWidget(self.review_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.ignored)
        layout.addWidget(self.identified)
        layout.addWidget(self.skipped_label)
        layout.addWidget(self.skipped, 1)
        layout.addStretch(0)  # with no skipped files the text stays at the top, not spread out
        layout.addLayout(buttons)

    def show_report(self, report: ImportReport) -> None:
        self.report = report
        self.summary.setText(summary_text(report))
        self.ignored.setText(ignored_text(report))
        self.ignored.setVisible(bool(report.ignored or report.catalogs))
        self.identified.setVisible(False)  # until this import's identification ends
        self.skipped.setRowCount(len(report.skipped))
        for row, (path, reason) in enumerate(report.skipped):
            path_item = QTableWidgetItem(path)
            path_item.setToolTip(path)
            reason_item = QTableWidgetItem(reason)
            reason_item.setToolTip(reason)
            self.skipped.setItem(row, 0, path_item)
            self.skipped.setItem(row, 1, reason_item)
        self.skipped.resizeColumnToContents(0)
        self.skipped.setColumnWidth(0, min(self.skipped.columnWidth(0), 420))
        has_skipped = bool(report.skipped)
        self.skipped_label.setVisible(has_skipped)
        self.skipped.setVisible(has_skipped)
        self.review_button.setEnabled(bool(report.new_encounter_ids))
        suggested = report.species_suggested if report.new_encounter_ids else None
        self.species_button.setText(f"Give them species {suggested}" if suggested else "")
        self.species_button.setToolTip("Set this species on the new encounters (Undo reverts "
                                       "it); they are matched again under its profile")
        self.species_button.setVisible(bool(suggested))

    def species_given(self, count: int) -> None:
        """Say that the suggestion was applied to ``count`` encounters (the button goes)."""
        self.species_button.setVisible(False)
        if self.report is not None:
            self.summary.setText(summary_text(self.report, species_given=count))

    def _give_species(self) -> None:
        if self.report is not None and self.report.species_suggested:
            self.species_requested.emit(self.report.species_suggested,
                                        list(self.report.new_encounter_ids))

    def show_identifying(self) -> None:
        """Say that identification of the new encounters is running in the background."""
        self.identified.setText("Identifying the new encounters in the background…")
        self.identified.setVisible(True)

    def show_identification(self, report: Any) -> None:
        """Add what identification made of the import, once its background job ends."""
        self.identified.setText(identification_text(report))
        self.identified.setVisible(True)

    def skipped_rows(self) -> list[tuple[str, str]]:
        """The table's contents, as shown (tests and copy-to-clipboard read this)."""
        return [(self.skipped.item(r, 0).text(), self.skipped.item(r, 1).text())
                for r in range(self.skipped.rowCount())]

    def _review(self) -> None:
        if self.report is not None and self.report.new_encounter_ids:
            self.review_requested.emit(list(self.report.new_encounter_ids))
