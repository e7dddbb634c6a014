"""The box editor on a real catalog: draw, move, resize, viewpoint, species, delete, undo."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtTest import QTest

from tests.gui.review_data import ScriptedPrompts, import_folder, make_settings, shoot
from wildid.catalog import open_catalog
from wildid.gui.annotation_editor import AnnotationEditor, photo_annotations
from wildid.gui.box_canvas import BoxItem
from wildid.gui.services import Services
from wildid.review import queries


@pytest.fixture
def editor(qtbot, tmp_path: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    when = datetime(2024, 6, 1, 7, 0)
    shoot(folder, "a", 4, when, "S1", seed=3)
    shoot(folder, "b", 4, when + timedelta(seconds=1), "S1", seed=3)
    catalog = open_catalog(tmp_path / "catalog")
    (encounter_id,) = import_folder(catalog, folder)
    services = Services(catalog, make_settings(tmp_path))
    widget = AnnotationEditor(services)
    widget.prompts = ScriptedPrompts()
    qtbot.addWidget(widget)
    widget.resize(1000, 640)
    widget.show()
    widget.open_encounter(encounter_id)
    qtbot.waitUntil(widget.canvas.has_image, timeout=5000)
    widget.encounter_id = encounter_id
    yield widget
    widget.prefetch.shutdown()
    catalog.close()


def view_point(editor: AnnotationEditor, x: float, y: float) -> QPoint:
    return editor.canvas.mapFromScene(QPointF(x, y))


def drag(editor: AnnotationEditor, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A real left-button drag on the canvas, in photo pixel coordinates."""
    viewport = editor.canvas.viewport()
    a, b = view_point(editor, *start), view_point(editor, *end)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for t in (0.3, 0.7, 1.0):
        QTest.mouseMove(viewport, a + (b - a) * t)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def test_full_frame_stays_by_default_and_drawing_narrows_it(editor):
    (box,) = editor.boxes
    assert box.full_frame and box.box == (0, 0, 640, 480)
    assert len(editor.photos) == 2
    editor.start_new_box()
    drag(editor, (100, 120), (400, 360))
    (box,) = photo_annotations(editor.services.catalog, editor.current_photo_id())
    assert not box.full_frame
    x, y, w, h = box.box
    assert abs(x - 100) < 4 and abs(y - 120) < 4 and abs(w - 300) < 6 and abs(h - 240) < 6
    assert editor.services.undo_stack.undo_label == "Edit box"


def test_move_and_resize_with_the_mouse(editor):
    editor.add_box((100, 100, 200, 150))
    drag(editor, (200, 175), (250, 195))  # inside: moves
    (box,) = editor.boxes
    assert abs(box.box[0] - 150) < 3 and abs(box.box[1] - 120) < 3 and abs(box.box[2] - 200) < 1
    right = box.box[0] + box.box[2]
    drag(editor, (right, 190), (right + 60, 190))  # on the right edge: resizes
    (box,) = editor.boxes
    assert abs(box.box[2] - 260) < 4 and abs(box.box[0] - 150) < 3


def test_drag_is_kept_inside_the_photo():
    bounds = QRectF(0, 0, 640, 480)
    moved = BoxItem.dragged(QRectF(500, 400, 100, 60), (False,) * 4, QPointF(300, 300), bounds)
    assert moved == QRectF(540, 420, 100, 60)
    shrunk = BoxItem.dragged(QRectF(10, 10, 100, 100), (True, False, False, False),
                             QPointF(500, 0), bounds)
    assert shrunk.width() >= 8 and shrunk.right() == 110


def test_viewpoint_keys_species_and_photo_navigation(qtbot, editor):
    editor.activateWindow()
    editor.canvas.setFocus()
    qtbot.waitUntil(editor.canvas.hasFocus, timeout=2000)
    qtbot.keyClick(editor.canvas, Qt.Key.Key_L)
    assert editor.boxes[0].viewpoint == "left"
    assert editor.viewpoints.checkedButton().property("viewpoint") == "left"
    qtbot.keyClick(editor.canvas, Qt.Key.Key_B)
    assert editor.boxes[0].viewpoint == "back"
    editor.species.setText("Tragelaphus scriptus")
    editor.species.editingFinished.emit()
    assert editor.boxes[0].species == "Tragelaphus scriptus"
    # a bushbuck is no nyala: the line under the field says which profile a name gets
    assert "generic profile" in editor.species_hint.text()
    editor.species.setText("tragelaphus angasii")
    assert "nyala profile" in editor.species_hint.text()
    assert "Panthera leo" in editor.species_help.suggestions()
    editor.species.setText("Tragelaphus scriptus")
    editor.species.editingFinished.emit()
    first = editor.current_photo_id()
    qtbot.keyClick(editor.canvas, Qt.Key.Key_PageDown)
    assert editor.current_photo_id() != first and editor.boxes[0].viewpoint == "unknown"


def test_second_animal_gets_its_own_encounter_and_delete_resets_the_last(editor):
    catalog = editor.services.catalog
    editor.add_box((50, 50, 200, 200))
    editor.add_box((350, 200, 200, 200))
    assert len(editor.boxes) == 2
    first, second = editor.boxes
    assert first.encounter_id == editor.encounter_id
    assert second.encounter_id != editor.encounter_id
    assert editor.canvas.selected() == second.id
    editor.delete_selected()
    assert [b.id for b in editor.boxes] == [first.id]
    editor.delete_selected()  # the last box of a photo goes back to the full frame
    (box,) = editor.boxes
    assert box.full_frame and box.box == (0, 0, 640, 480)
    assert len(queries.encounter_detail(catalog, editor.encounter_id).annotations) == 2


def test_a_photo_of_another_animal_in_the_burst_gets_its_own_encounter(qtbot, editor):
    """The burst's two photos are one encounter; the second shows another animal (a herd
    photographed in quick succession): O gives its box an encounter of its own."""
    catalog = editor.services.catalog
    assert len(queries.encounter_detail(catalog, editor.encounter_id).annotations) == 2
    editor.canvas.select(editor.boxes[0].id)
    assert editor._actions["separate"].isEnabled()
    editor.step_photo(1)
    editor.canvas.select(editor.boxes[0].id)
    editor.activateWindow()
    editor.canvas.setFocus()
    qtbot.waitUntil(editor.canvas.hasFocus, timeout=2000)
    qtbot.keyClick(editor.canvas, Qt.Key.Key_O)
    (moved,) = editor.boxes
    assert moved.encounter_id != editor.encounter_id
    assert editor.box_list.item(0).text().endswith("whole photo · another encounter")
    assert [a.id for a in queries.encounter_detail(catalog, editor.encounter_id).annotations] \
        != [moved.id]
    assert len(queries.encounter_detail(catalog, editor.encounter_id).annotations) == 1
    assert len(queries.encounter_detail(catalog, moved.encounter_id).annotations) == 1
    # alone in its encounter now: nothing to separate it from
    editor.canvas.select(moved.id)
    assert not editor._actions["separate"].isEnabled()
    assert set(editor.edited_encounters) == {editor.encounter_id, moved.encounter_id}
    editor._actions["undo"].trigger()
    assert editor.boxes[0].encounter_id == editor.encounter_id
    assert not editor.box_list.item(0).text().endswith("another encounter")
    assert not editor.prompts.errors


def test_undo_and_redo_several_edits(editor):
    editor.add_box((50, 50, 200, 200))
    editor.set_viewpoint("right")
    editor.add_box((350, 200, 200, 200))
    assert len(editor.boxes) == 2
    editor._actions["undo"].trigger()
    assert len(editor.boxes) == 1 and editor.boxes[0].viewpoint == "right"
    editor._actions["undo"].trigger()
    assert editor.boxes[0].viewpoint == "unknown" and not editor.boxes[0].full_frame
    editor._actions["undo"].trigger()
    assert editor.boxes[0].full_frame
    for _ in range(3):
        editor._actions["redo"].trigger()
    assert len(editor.boxes) == 2 and editor.boxes[0].viewpoint == "right"
    assert not editor.prompts.errors


def test_a_camera_trap_photo_gets_a_box_above_its_data_strip(qtbot, tmp_path: Path):
    """The import finds the printed strip; the editor shows the automatic box without it,
    drawing still narrows that box, and deleting the last box goes back to it."""
    from tests.photofactory import add_data_strip, render, write_photo

    folder = tmp_path / "trap"
    scene, _ = render(640, 450, seed=8, pattern_seed=12)
    photo, rows = add_data_strip(scene, "bottom", share=30 / 450)
    assert photo.shape[:2] == (480, 640) and rows == 30
    write_photo(folder / "trap.jpg", photo, quality=88)
    catalog = open_catalog(tmp_path / "catalog")
    (encounter_id,) = import_folder(catalog, folder)
    widget = AnnotationEditor(Services(catalog, make_settings(tmp_path)))
    widget.prompts = ScriptedPrompts()
    qtbot.addWidget(widget)
    widget.resize(1000, 640)
    widget.show()
    try:
        widget.open_encounter(encounter_id)
        qtbot.waitUntil(widget.canvas.has_image, timeout=5000)
        (box,) = widget.boxes
        x, y, w, h = box.box
        assert box.full_frame and (x, y, w) == (0, 0, 640)
        assert 480 - 30 - 480 / 256 * 2 <= h <= 480 - 30  # all of the strip, a row or two more
        assert "whole photo without its data strip" in widget.box_list.item(0).text()
        widget.add_box((100, 100, 300, 200))  # drawing narrows the automatic box
        (drawn,) = widget.boxes
        assert drawn.id == box.id and not drawn.full_frame
        widget.canvas.select(drawn.id)
        widget.delete_selected()  # the last box goes back to the automatic one, strip left out
        (back,) = widget.boxes
        assert back.full_frame and back.box == box.box
        assert not widget.prompts.errors
    finally:
        widget.prefetch.shutdown()
        catalog.close()
