"""One individual: its facts (editable), sightings with photos, timeline, map and history.

Edits are review operations like any other (rename keeps the old name as an alias; merge
never deletes), saved at once and undoable from the Edit menu. The page reads the individual
in the background and redraws when the catalog says that individual or one of its encounters
changed.
"""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wildid.errors import WildIdError
from wildid.gui.cards import Card, CardModel, card_grid
from wildid.gui.formatting import fmt_coords, fmt_date, fmt_datetime, plural
from wildid.gui.individual_chooser import choose_individual
from wildid.gui.prefetch import Prefetcher
from wildid.gui.prompts import Prompts
from wildid.gui.sighting_map import MapPoint, SightingMap
from wildid.gui.sighting_timeline import SightingTimeline
from wildid.ids import short_id
from wildid.review import operations, queries

__all__ = ["IndividualPage", "encounter_card"]

SEXES = ("", "female", "male")
LIFE_STAGES = ("", "juvenile", "subadult", "adult")
VERDICTS = {"match": "Confirmed match", "no_match": "Rejected as candidate",
            "new_individual": "Named as new individual", "unsure": "Unsure",
            "flag": "Flagged for curator", "unidentifiable": "Unidentifiable", "revert": "Undone",
            "rename": "Renamed", "edit": "Details edited", "merge": "Merged",
            "remove": "Removed (no sightings)"}


def encounter_card(detail: Any) -> Card:
    """A card for one ``EncounterDetail`` of the individual."""
    first = detail.annotations[0] if detail.annotations else None
    lines = (fmt_coords(detail.gps_lat, detail.gps_lon),
             f"{plural(len(detail.annotations), 'photo')} · {detail.state}")
    return Card(id=detail.id, title=fmt_datetime(detail.taken_utc), lines=lines,
                thumb_path=first.thumb_path if first else None,
                photo_path=first.photo_path if first else None, payload=detail)


class IndividualPage(QWidget):
    """Everything about one individual, with rename/edit, merge and move-encounter actions."""

    back_requested = Signal()
    open_encounter_requested = Signal(str)

    def __init__(self, services: Any, prefetch: Prefetcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("individualPage")
        self.services = services
        self.prefetch = prefetch
        self.prompts = Prompts(self)
        self.individual_id: str | None = None
        self.detail: Any = None
        self.history: list[Any] = []
        self._token = 0
        self._form_dirty = False
        self._build()
        prefetch.resultReady.connect(self._on_result)
        prefetch.thumbnailReady.connect(self._on_thumbnail)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        back = QPushButton("← All individuals")
        back.clicked.connect(self.back_requested)
        self.title = QLabel()
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.title.setFont(font)
        self.subtitle = QLabel()
        self.merge_button = QPushButton("Merge another individual into this one…")
        self.merge_button.clicked.connect(self.merge)
        top = QHBoxLayout()
        top.addWidget(back)
        top.addWidget(self.title)
        top.addWidget(self.subtitle, 1)
        top.addWidget(self.merge_button)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self.remove)
        top.addWidget(self.remove_button)

        self.name = QLineEdit()
        self.species = QLineEdit()
        self.sex = QComboBox()
        for value in SEXES:
            self.sex.addItem(value or "unknown", value)
        self.life_stage = QComboBox()
        self.life_stage.setEditable(True)
        for value in LIFE_STAGES:
            self.life_stage.addItem(value or "unknown", value)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Marks, scars, behaviour…")
        self.aliases = QLabel()
        self.aliases.setWordWrap(True)
        self.save_button = QPushButton("Save changes")
        self.save_button.clicked.connect(self.save)
        for widget in (self.name, self.species):
            widget.textEdited.connect(self._mark_dirty)
        self.notes.textChanged.connect(self._mark_dirty)
        self.sex.activated.connect(self._mark_dirty)
        self.life_stage.currentTextChanged.connect(self._mark_dirty)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("Species:", self.species)
        form.addRow("Sex:", self.sex)
        form.addRow("Life stage:", self.life_stage)
        form.addRow("Notes:", self.notes)
        form.addRow("Also known as:", self.aliases)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.portrait = QLabel()
        self.portrait.setObjectName("individualPortrait")
        self.portrait.setFixedSize(320, 200)
        self.portrait.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.portrait.setStyleSheet("background: #323236; color: #cccccc;")
        left_layout.addWidget(self.portrait)
        left_layout.addLayout(form, 1)
        left_layout.addWidget(self.save_button)
        left.setFixedWidth(320)

        self.timeline = SightingTimeline()
        self.encounters = CardModel(self.prefetch, self)
        self.encounter_view = card_grid(self.encounters, QSize(200, 176), 110)
        self.encounter_view.activated.connect(
            lambda index: self.open_encounter_requested.emit(self.encounters.card(index.row()).id))
        self.move_button = QPushButton("Move to another individual…")
        self.move_button.clicked.connect(self.move_selected_encounter)
        self.review_button = QPushButton("Open in Review")
        self.review_button.clicked.connect(self._review_selected)
        self.boxes_button = QPushButton("Edit boxes…")
        self.boxes_button.clicked.connect(self._edit_boxes)
        actions = QHBoxLayout()
        actions.addWidget(QLabel("Selected sighting:"))
        for button in (self.review_button, self.boxes_button, self.move_button):
            actions.addWidget(button)
        actions.addStretch(1)
        sightings = QWidget()
        sightings_layout = QVBoxLayout(sightings)
        sightings_layout.addWidget(self.timeline)
        sightings_layout.addWidget(self.encounter_view, 1)
        sightings_layout.addLayout(actions)
        self.map = SightingMap()
        self.history_table = QTableWidget(0, 6)
        self.history_table.setHorizontalHeaderLabels(["When", "Decision", "Matcher", "Sighting",
                                                      "Reviewer", "Note"])
        self.history_table.horizontalHeaderItem(2).setToolTip(
            "What the matcher showed for this individual when the decision was made: its score "
            "and place, or \u201cnot proposed\u201d when the reviewer chose it by hand")
        self.history_table.verticalHeader().setVisible(False)
        self.history_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.history_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(sightings, "Sightings")
        self.tabs.addTab(self.map, "Map")
        self.tabs.addTab(self.history_table, "History")
        body = QHBoxLayout()
        body.addWidget(left)
        body.addWidget(self.tabs, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(top)
        layout.addLayout(body, 1)

    def _mark_dirty(self, *_args: Any) -> None:
        self._form_dirty = True

    # ------------------------------------------------------------------ loading
    def show_individual(self, individual_id: str) -> None:
        if individual_id != self.individual_id:
            self._form_dirty = False
        self.individual_id = individual_id
        self.reload()

    def reload(self) -> None:
        if self.individual_id is None:
            return
        catalog, wanted = self.services.catalog, self.individual_id

        def work() -> tuple[Any, list[Any]]:
            detail = queries.individual_detail(catalog, wanted)
            return detail, queries.decision_history(catalog, individual_id=detail.id, limit=500)

        self._token = self.prefetch.request_result("individual", work)

    def _on_result(self, name: str, token: int, value: Any, error: str) -> None:
        if name != "individual" or token != self._token:
            return
        if error:
            self.prompts.error(error)
            return
        self.detail, self.history = value
        self.individual_id = self.detail.id  # a merged-away id resolves to the survivor
        self._fill()

    def _fill(self) -> None:
        d = self.detail
        self.title.setText(escape(d.name))
        seen = (f"first seen {fmt_date(d.first_seen)} · last seen {fmt_date(d.last_seen)}"
                if d.last_seen is not None else "no dated sighting")
        self.subtitle.setText(f"{escape(d.species or 'species unknown')} · "
                              f"{plural(d.n_encounters, 'sighting')} · {seen}")
        self.remove_button.setEnabled(d.n_encounters == 0)
        self.remove_button.setToolTip(
            f"Take {d.name} off the catalog's lists: it has no sightings (named by mistake?). "
            "Undo brings it back." if d.n_encounters == 0 else
            f"Only an individual without sightings can be removed: move {d.name}'s sightings "
            "to another individual, or merge it into the one it really is.")
        if not self._form_dirty:
            self.name.setText(d.name)
            self.species.setText(d.species or "")
            self.sex.setCurrentIndex(max(0, self.sex.findData(d.sex or "")))
            index = self.life_stage.findData(d.life_stage or "")
            if index >= 0:
                self.life_stage.setCurrentIndex(index)
            else:
                self.life_stage.setEditText(d.life_stage or "")
            self.notes.setPlainText(d.notes)
            self._form_dirty = False
        merged = [n for _i, n in d.merged_from]
        self.aliases.setText(", ".join(escape(a) for a in d.aliases) or "—")
        self.aliases.setToolTip(f"Merged from: {', '.join(merged)}" if merged else "")
        self.encounters.set_cards([encounter_card(e) for e in d.encounters])
        self.tabs.setTabText(0, f"Sightings ({len(d.encounters)})")
        self.timeline.set_times([t for t, _lat, _lon in d.sightings])
        self.map.set_points([MapPoint(lat, lon, t, d.name) for t, lat, lon in d.sightings
                             if lat is not None and lon is not None])
        self._fill_history()
        self._show_portrait()

    def _show_portrait(self) -> None:
        """The latest sighting's thumbnail (loaded in the background if not cached)."""
        path = self.detail.thumb_path if self.detail is not None else None
        if path is None:
            self.portrait.setPixmap(QPixmap())
            self.portrait.setText("No photo")
            return
        loaded = self.prefetch.thumbnail(path)
        if loaded is None:
            self.prefetch.request_thumbnail(path)
            return
        if loaded.image is None:
            self.portrait.setText(loaded.error or "No photo")
            return
        self.portrait.setPixmap(QPixmap.fromImage(loaded.image).scaled(
            self.portrait.size(), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))

    def _on_thumbnail(self, path: str) -> None:
        if self.detail is not None and str(self.detail.thumb_path) == path:
            self._show_portrait()

    def _fill_history(self) -> None:
        dates = {e.id: fmt_datetime(e.taken_utc) for e in self.detail.encounters}
        self.history_table.setRowCount(len(self.history))
        for row, h in enumerate(self.history):
            cells = (fmt_datetime(h.decided_at), VERDICTS.get(h.verdict, h.verdict), h.evidence,
                     "" if h.encounter_id is None
                     else dates.get(h.encounter_id, short_id(h.encounter_id)),
                     h.reviewer, h.note)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if h.reverted or h.verdict == "revert":
                    item.setForeground(QColor(130, 130, 130))
                    item.setToolTip("This decision was undone" if h.reverted else "")
                self.history_table.setItem(row, column, item)

    def on_data_changed(self, changes: Any) -> None:
        """Reload when this individual, or a sighting shown here, changed."""
        if self.individual_id is None or self.detail is None:
            return
        shown = {e.id for e in self.detail.encounters}
        group = {self.individual_id, *(i for i, _n in self.detail.merged_from)}
        if (set(getattr(changes, "individuals", ())) & group
                or set(getattr(changes, "encounters", ())) & shown):
            self.reload()

    # ------------------------------------------------------------------ actions
    def _push(self, run: Any) -> bool:
        try:
            op = run()
        except WildIdError as exc:
            self.prompts.error(str(exc))
            return False
        self.services.push(op)
        return True

    def save(self) -> None:
        """Write the edited fields: a rename (old name kept as alias) and/or an update."""
        d = self.detail
        if d is None:
            return
        catalog, reviewer = self.services.catalog, self.services.reviewer
        name = self.name.text().strip()
        fields = {"species": self.species.text().strip() or None,
                  "sex": self.sex.currentData() or None,
                  "life_stage": self.life_stage.currentText().strip() or None,
                  "notes": self.notes.toPlainText()}
        if fields["life_stage"] == "unknown":
            fields["life_stage"] = None
        current = {"species": d.species, "sex": d.sex, "life_stage": d.life_stage,
                   "notes": d.notes}
        changed = {k: v for k, v in fields.items() if v != current[k]}
        ok = True
        if name and name != d.name:
            ok = self._push(lambda: operations.rename_individual(catalog, d.id, name, reviewer))
        if ok and changed:
            ok = self._push(lambda: operations.update_individual(catalog, d.id, reviewer,
                                                                 **changed))
        if ok:
            self._form_dirty = False
            self.reload()

    def merge(self) -> None:
        """Choose another individual and fold it into this one (undoable, deletes nothing)."""
        d = self.detail
        if d is None:
            return
        chosen = self.prompts.choose("Merge individuals", lambda parent: choose_individual(
            self.services.catalog, parent, "Merge individuals",
            f"Which individual is really {d.name}? Its sightings move here and its name "
            "becomes an alias.", exclude={d.id}, species=d.species, prefetch=self.prefetch,
            reference=d.thumb_path))
        if not chosen:
            return
        self._push(lambda: operations.merge_individuals(self.services.catalog, d.id, chosen,
                                                        self.services.reviewer))

    def remove(self) -> None:
        """Take an individual without sightings off the lists (undoable; on the audit trail),
        then go back to the gallery, where it no longer is."""
        d = self.detail
        if d is None or not self.prompts.confirm(
                "Remove individual",
                f"Remove {d.name}? It has no sightings; its name becomes free for another "
                "animal. The decision is kept on the audit trail, and Undo brings it back."):
            return
        if self._push(lambda: operations.remove_individual(self.services.catalog, d.id,
                                                           self.services.reviewer)):
            self.back_requested.emit()

    def selected_encounter(self) -> str | None:
        index = self.encounter_view.currentIndex()
        card = self.encounters.card(index.row()) if index.isValid() else None
        return card.id if card else None

    def move_selected_encounter(self) -> None:
        encounter_id, d = self.selected_encounter(), self.detail
        if encounter_id is None or d is None:
            self.prompts.error("Select a sighting first.")
            return
        card = self.encounters.card(self.encounter_view.currentIndex().row())
        target = self.prompts.choose("Move sighting", lambda parent: choose_individual(
            self.services.catalog, parent, "Move sighting",
            f"This sighting is not {d.name}. Which individual is it?", exclude={d.id},
            species=d.species, prefetch=self.prefetch,
            reference=card.thumb_path if card is not None else None))
        if target:
            self._push(lambda: operations.move_encounter(self.services.catalog, encounter_id,
                                                         target, self.services.reviewer))

    def _review_selected(self) -> None:
        encounter_id = self.selected_encounter()
        if encounter_id is not None:
            self.open_encounter_requested.emit(encounter_id)

    def _edit_boxes(self) -> None:
        from wildid.gui.annotation_editor import AnnotationDialog

        encounter_id = self.selected_encounter()
        if encounter_id is not None:
            self.editor_dialog = AnnotationDialog(self.services, encounter_id, self.prefetch, self)
            self.editor_dialog.open()
