"""Editing the boxes on an encounter's photos: draw, move, resize, viewpoint, species, delete.

Every photo starts with one full-frame box (the importer's default), and that stays the box
when the user does nothing. Drawing on a photo whose only box is still the full frame narrows
that box to the animal; drawing again adds another animal (which gets its own encounter, as
``wildid.review.annotation_ops.add_annotation`` decides). Each change is saved at once as an
undoable operation on the app's undo stack, then the boxes are redrawn from the catalog.

A box that shows another animal than the rest of its burst (a herd photographed in quick
succession) can be given an encounter of its own (``annotation_ops.separate_annotation``).

Keys: N new box, Delete remove, O own encounter, L/R/F/B/U viewpoint (left, right, front,
back, unknown), PgUp/PgDown previous/next photo, Ctrl+Z / Ctrl+Shift+Z undo/redo, Esc stop
drawing.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import func, select

from wildid.catalog.models import Annotation
from wildid.errors import WildIdError
from wildid.gui.box_canvas import BoxCanvas, BoxSpec
from wildid.gui.prefetch import Prefetcher
from wildid.gui.prompts import Prompts
from wildid.gui.review_panels import CHECKED_STYLE
from wildid.gui.species_help import SpeciesHelp
from wildid.review import annotation_ops, queries
from wildid.review.details import annotation_infos

__all__ = ["AnnotationDialog", "AnnotationEditor", "photo_annotations"]

VIEWPOINT_KEYS = (("left", "L"), ("right", "R"), ("front", "F"), ("back", "B"),
                  ("unknown", "U"))


def photo_annotations(catalog: Any, photo_id: str) -> list[Any]:
    """Every box on one photo (all encounters), oldest first, as AnnotationInfo values."""
    with catalog.session() as s:
        ids = list(s.scalars(select(Annotation.id).where(Annotation.photo_id == photo_id)
                             .order_by(Annotation.created_at, Annotation.id)))
        infos = annotation_infos(catalog, s, annotation_ids=ids)
    return [infos[i][0] for i in ids if i in infos]


def _extent(box: Any) -> str:
    """How the box list names a box's extent: the automatic box as the whole photo (saying
    so when a camera trap's data strip was left out of it), a drawn one by size and place."""
    x, y, w, h = box.box
    if box.full_frame:
        if h < box.photo_height or w < box.photo_width:
            return "whole photo without its data strip"
        return "whole photo"
    return f"{w:.0f}×{h:.0f} at {x:.0f},{y:.0f}"


class AnnotationEditor(QWidget):
    """Boxes of one encounter's photos, editable; saves each change as an undoable operation."""

    def __init__(self, services: Any, prefetch: Prefetcher | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("annotationEditor")
        self.services = services
        self.prompts = Prompts(self)
        self.prefetch = prefetch or Prefetcher(services.catalog, self)
        self.photos: list[Any] = []  # AnnotationInfo of the first box on each photo
        self.photo_index = 0
        self.boxes: list[Any] = []  # AnnotationInfo on the current photo
        self.encounter_id: str | None = None  # the encounter opened (None: a single photo)
        # encounters whose boxes were changed here (undo and redo included): identified again
        # when the editor closes (identify_edited)
        self.edited_encounters: dict[str, None] = {}
        self._build()
        self.prefetch.imageReady.connect(self._on_image)
        services.data_changed.connect(self._on_data_changed)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.setStyleSheet(CHECKED_STYLE)
        self.canvas = BoxCanvas()
        self.canvas.boxDrawn.connect(self._drawn)
        self.canvas.boxEdited.connect(self._edited)
        self.canvas.boxSelected.connect(self._canvas_selected)
        self.box_list = QListWidget()
        self.box_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.box_list.setWordWrap(True)  # "… · another encounter" in a 340 px panel
        self.box_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.box_list.currentRowChanged.connect(self._list_selected)
        self.viewpoints = QButtonGroup(self)
        viewpoint_row = QGridLayout()
        viewpoint_row.setSpacing(4)
        for i, (value, key) in enumerate(VIEWPOINT_KEYS):
            button = QPushButton(f"{value.title()} ({key})")
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.setProperty("viewpoint", value)
            self.viewpoints.addButton(button)
            viewpoint_row.addWidget(button, i // 3, i % 3)
        self.viewpoints.buttonClicked.connect(
            lambda b: self.set_viewpoint(str(b.property("viewpoint"))))
        self.species = QLineEdit()
        self.species.setPlaceholderText("species of this animal")
        self.species.editingFinished.connect(self._species_edited)
        self.photo_label = QLabel()
        self.hint = QLabel("Drag inside a box to move it, near its edge to resize it. "
                           "N draws a new box; the dashed box is the whole photo.")
        self.hint.setWordWrap(True)
        side = QVBoxLayout()
        side.addWidget(self.photo_label)
        side.addWidget(QLabel("Boxes on this photo:"))
        side.addWidget(self.box_list, 1)
        side.addWidget(QLabel("Viewpoint of the selected box:"))
        side.addLayout(viewpoint_row)
        form = QFormLayout()
        form.addRow("Species:", self.species)
        self.species_hint = QLabel()
        form.addRow("", self.species_hint)
        # the profiles' names complete, and the line under says which profile a name gets
        self.species_help = SpeciesHelp(self.species, self.species_hint)
        side.addLayout(form)
        self._actions: dict[str, QAction] = {}
        self._buttons: dict[str, QPushButton] = {}
        for key, text, shortcuts, slot in (
                ("new", "New box", ("N",), self.start_new_box),
                ("delete", "Delete box", ("Delete", "Backspace"), self.delete_selected),
                ("separate", "Own encounter", ("O",), self.separate_selected),
                ("previous", "◀ Photo", ("PgUp",), lambda: self.step_photo(-1)),
                ("next", "Photo ▶", ("PgDown",), lambda: self.step_photo(1)),
                ("undo", "Undo", ("Ctrl+Z",), self._undo),
                ("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), self._redo),
                ("cancel", "Stop drawing", ("Esc",), self.canvas.stop_drawing)):
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(lambda _c=False, f=slot: f())
            self.addAction(action)
            self._actions[key] = action
            button = QPushButton(f"{text} ({shortcuts[0]})" if len(shortcuts[0]) < 4 else text)
            button.setToolTip(f"{text} ({', '.join(shortcuts)})")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(action.trigger)
            action.enabledChanged.connect(button.setEnabled)
            self._buttons[key] = button
        self._buttons["separate"].setToolTip(
            "This box shows another animal than the rest of the burst: give it an encounter "
            "of its own, to review on its own (O)")
        for keys in (("new", "delete"), ("separate",), ("previous", "next"), ("undo", "redo")):
            row = QHBoxLayout()
            for key in keys:
                row.addWidget(self._buttons[key])
            side.addLayout(row)
        side.addWidget(self.hint)
        for value, key in VIEWPOINT_KEYS:
            action = QAction(value, self)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(lambda _c=False, v=value: self.set_viewpoint(v))
            self.addAction(action)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(340)
        layout = QHBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(panel)

    # ------------------------------------------------------------------ loading
    def open_encounter(self, encounter_id: str) -> None:
        """Edit the photos of ``encounter_id`` (one entry per photo of the burst)."""
        detail = queries.encounter_detail(self.services.catalog, encounter_id)
        self.encounter_id = encounter_id
        self.species_help.set_catalog_species(queries.catalog_species_names(self.services.catalog))
        seen: dict[str, Any] = {}
        for info in detail.annotations:
            seen.setdefault(info.photo_id, info)
        self.photos = list(seen.values())
        self.show_photo(0)

    def open_photo(self, photo_id: str) -> None:
        self.encounter_id = None
        self.photos = photo_annotations(self.services.catalog, photo_id)[:1]
        self.show_photo(0)

    def show_photo(self, index: int) -> None:
        if not self.photos:
            self.canvas.set_placeholder("No photo")
            return
        self.photo_index = max(0, min(index, len(self.photos) - 1))
        info = self.photos[self.photo_index]
        self.photo_label.setText(f"<b>Photo {self.photo_index + 1} of {len(self.photos)}</b> · "
                                 f"{info.photo_width}×{info.photo_height} px")
        self._actions["previous"].setEnabled(self.photo_index > 0)
        self._actions["next"].setEnabled(self.photo_index < len(self.photos) - 1)
        self._show_image()
        self.reload_boxes()

    def step_photo(self, delta: int) -> None:
        if 0 <= self.photo_index + delta < len(self.photos):
            self.show_photo(self.photo_index + delta)

    def _show_image(self) -> None:
        info = self.photos[self.photo_index]
        size = (info.photo_width, info.photo_height)
        loaded = self.prefetch.image(info.photo_path)
        if loaded is None:
            self.canvas.set_placeholder("Loading…", size)
            self.prefetch.request_image(info.photo_path, urgent=True)
        elif loaded.image is None:
            self.canvas.set_placeholder(f"This photo cannot be shown.\n{loaded.error}", size)
        else:
            self.canvas.set_image(loaded.image, size)

    def _on_image(self, path: str, _max_side: int) -> None:
        if self.photos and str(self.photos[self.photo_index].photo_path) == path:
            self._show_image()
            self.reload_boxes()

    def current_photo_id(self) -> str | None:
        return self.photos[self.photo_index].photo_id if self.photos else None

    def reload_boxes(self) -> None:
        """Redraw the current photo's boxes from the catalog, keeping the selection."""
        photo_id = self.current_photo_id()
        if photo_id is None:
            return
        keep = self.canvas.selected()
        self.boxes = photo_annotations(self.services.catalog, photo_id)
        specs = [BoxSpec(b.id, QRectF(*b.box), f"{i + 1} {b.viewpoint[0].upper()}", b.full_frame)
                 for i, b in enumerate(self.boxes)]
        self.canvas.set_boxes(specs, keep)
        self.box_list.blockSignals(True)
        self.box_list.clear()
        for i, b in enumerate(self.boxes):
            extent = _extent(b)
            elsewhere = (" · another encounter" if self.encounter_id is not None
                         and b.encounter_id != self.encounter_id else "")
            item = QListWidgetItem(f"{i + 1}. {b.viewpoint} · {b.species or 'species ?'} · "
                                   f"{extent}{elsewhere}")
            item.setData(Qt.ItemDataRole.UserRole, b.id)
            self.box_list.addItem(item)
        self.box_list.blockSignals(False)
        self._canvas_selected(self.canvas.selected() or "")

    def selected_box(self) -> Any:
        selected = self.canvas.selected()
        return next((b for b in self.boxes if b.id == selected), None)

    def _canvas_selected(self, box_id: str) -> None:
        ids = [b.id for b in self.boxes]
        row = ids.index(box_id) if box_id in ids else -1
        self.box_list.blockSignals(True)
        self.box_list.setCurrentRow(row)
        self.box_list.blockSignals(False)
        box = self.selected_box()
        for button in self.viewpoints.buttons():
            button.setChecked(box is not None and button.property("viewpoint") == box.viewpoint)
        self.species.setText(box.species or "" if box is not None else "")
        self._actions["separate"].setEnabled(self._shares_encounter(box))

    def _shares_encounter(self, box: Any) -> bool:
        """Whether ``box`` has other boxes in its encounter (what it could be separated from)."""
        if box is None or box.encounter_id is None:
            return False
        with self.services.catalog.session() as s:
            return bool(s.scalar(select(func.count()).where(
                Annotation.encounter_id == box.encounter_id, Annotation.id != box.id)))

    def _list_selected(self, row: int) -> None:
        if 0 <= row < len(self.boxes):
            self.canvas.select(self.boxes[row].id)

    # ------------------------------------------------------------------ edits
    def _apply(self, run: Any) -> bool:
        try:
            op = run()
        except WildIdError as exc:
            self.prompts.error(str(exc))
            self.reload_boxes()
            return False
        self.services.push(op)
        self._edited_encounters(op.changes)
        self.reload_boxes()
        return True

    def _edited_encounters(self, what: Any) -> None:
        self.edited_encounters.update(dict.fromkeys(getattr(what, "encounters", ()) or ()))

    def identify_edited(self) -> None:
        """Identify again, in the background, the encounters this editor's edits touched.

        A narrowed box, a second animal's new encounter or a moved box has its features
        extracted and, while it is still to review, its candidates matched right away, rather
        than when the review screen reaches it: an encounter without candidates waits at the
        end of the queue, and one whose candidates were set aside would show none. Once per
        editing session (on close), so dragging a box around starts one job, not one per
        movement; it follows the "identify automatically" setting.
        """
        if self.edited_encounters:
            ids, self.edited_encounters = list(self.edited_encounters), {}
            self.services.refresh_matches(ids, extract=True)

    def start_new_box(self) -> None:
        self.canvas.start_drawing()
        self.canvas.setFocus()

    def _drawn(self, rect: QRectF) -> None:
        self.add_box((rect.x(), rect.y(), rect.width(), rect.height()))

    def add_box(self, box: tuple[float, float, float, float]) -> None:
        """Narrow the untouched full-frame box to ``box``, or add another animal's box."""
        catalog, reviewer = self.services.catalog, self.services.reviewer
        if len(self.boxes) == 1 and self.boxes[0].full_frame:
            only = self.boxes[0].id
            self._apply(lambda: annotation_ops.update_annotation(catalog, only, box=box,
                                                                 reviewer=reviewer))
            return
        before = {b.id for b in self.boxes}
        photo_id = self.current_photo_id()
        species = self.photos[self.photo_index].species if self.photos else None
        if self._apply(lambda: annotation_ops.add_annotation(catalog, photo_id, box,
                                                             species=species,
                                                             reviewer=reviewer)):
            new = [b.id for b in self.boxes if b.id not in before]
            if new:
                self.canvas.select(new[0])

    def _edited(self, box_id: str, rect: QRectF) -> None:
        box = (rect.x(), rect.y(), rect.width(), rect.height())
        self._apply(lambda: annotation_ops.update_annotation(
            self.services.catalog, box_id, box=box, reviewer=self.services.reviewer))

    def set_viewpoint(self, viewpoint: str) -> None:
        box = self.selected_box()
        if box is not None and box.viewpoint != viewpoint:
            self._apply(lambda: annotation_ops.update_annotation(
                self.services.catalog, box.id, viewpoint=viewpoint,
                reviewer=self.services.reviewer))

    def _species_edited(self) -> None:
        box = self.selected_box()
        text = self.species.text().strip()
        if box is not None and text != (box.species or ""):
            self._apply(lambda: annotation_ops.update_annotation(
                self.services.catalog, box.id, species=text, reviewer=self.services.reviewer))

    def delete_selected(self) -> None:
        box = self.selected_box()
        if box is not None:
            self._apply(lambda: annotation_ops.delete_annotation(
                self.services.catalog, box.id, reviewer=self.services.reviewer))

    def separate_selected(self) -> None:
        """Give the selected box an encounter of its own (another animal than the burst's)."""
        box = self.selected_box()
        if box is not None:
            self._apply(lambda: annotation_ops.separate_annotation(
                self.services.catalog, box.id, reviewer=self.services.reviewer))

    def _undo(self) -> None:
        self._history(self.services.undo)

    def _redo(self) -> None:
        self._history(self.services.redo)

    def _history(self, step: Any) -> None:
        try:
            self._edited_encounters(step())
        except WildIdError as exc:
            self.prompts.error(str(exc))

    def _on_data_changed(self, _changes: Any) -> None:
        if self.isVisible():
            self.reload_boxes()


class AnnotationDialog(QDialog):
    """The editor in its own window (opened from the review page with E)."""

    def __init__(self, services: Any, encounter_id: str, prefetch: Prefetcher | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit boxes")
        self.editor = AnnotationEditor(services, prefetch, self)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor, 1)
        layout.addWidget(close)
        self.resize(1100, 680)
        self.editor.open_encounter(encounter_id)
        self.finished.connect(lambda _result: self.editor.identify_edited())
