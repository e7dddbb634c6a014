"""Photo views: zoom around the cursor, pan, keyboard, fit, linked zoom, matched-keypoint
lines across two views, placeholders for bad photos, and the background photo cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.photofactory import make_photo, make_truncated_jpeg
from wildid.gui.image_view import ImageView, PairView
from wildid.gui.prefetch import Prefetcher


def image(width: int, height: int, colour: str = "#808080") -> QImage:
    img = QImage(width, height, QImage.Format.Format_RGB32)
    img.fill(QColor(colour))
    return img


@pytest.fixture
def view(qtbot) -> ImageView:
    widget = ImageView()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    qtbot.waitExposed(widget)
    # A photo decoded at a quarter of its original size: scene units stay original pixels.
    widget.set_image(image(400, 300), original_size=(1600, 1200))
    return widget


def wheel(widget: ImageView, pos: QPoint, steps: int) -> None:
    event = QWheelEvent(QPointF(pos), QPointF(widget.viewport().mapToGlobal(pos)), QPoint(0, 0),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget.viewport(), event)


def test_scene_is_in_original_pixels_and_fits(view):
    assert view.image_rect().width() == 1600 and view.image_rect().height() == 1200
    assert view.is_fitted() and view.zoom_level() == pytest.approx(1.0)
    centre = view.mapFromScene(QPointF(800, 600))
    assert abs(centre.x() - view.viewport().width() / 2) <= 2


def test_wheel_zooms_around_the_cursor(view):
    cursor = QPoint(300, 100)
    under = view.mapToScene(cursor)
    wheel(view, cursor, 2)
    assert view.zoom_level() == pytest.approx(1.25 ** 2, rel=1e-3)
    after = view.mapToScene(cursor)
    assert abs(after.x() - under.x()) < 6 and abs(after.y() - under.y()) < 6
    assert not view.is_fitted()


def test_keyboard_zoom_fit_and_drag_pan(qtbot, view):
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert view.zoom_level() == pytest.approx(1.5625, rel=1e-3)
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert view.zoom_level() == pytest.approx(1.25, rel=1e-3)
    before = view.horizontalScrollBar().value()
    start, end = QPoint(200, 150), QPoint(120, 150)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     start)
    QTest.mouseMove(view.viewport(), QPoint(160, 150))
    QTest.mouseMove(view.viewport(), end)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, end)
    assert view.horizontalScrollBar().value() > before  # dragged left: the view moved right
    qtbot.keyClick(view, Qt.Key.Key_0)
    assert view.is_fitted() and view.zoom_level() == pytest.approx(1.0)
    view.resize(600, 300)
    qtbot.waitUntil(lambda: view.viewport().width() > 500)
    assert view.zoom_level() == pytest.approx(1.0)  # stays fitted when the window grows


def test_placeholder_for_missing_photo(view):
    view.set_placeholder("This photo cannot be shown.\nIMG_1.JPG is truncated",
                         original_size=(1600, 1200))
    assert not view.has_image()
    assert "truncated" in view.placeholder_message
    assert view.image_rect().width() == 1600  # boxes still land where they belong


@pytest.fixture
def pair(qtbot) -> PairView:
    widget = PairView()
    qtbot.addWidget(widget)
    widget.resize(820, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.left.set_image(image(200, 150, "#000000"), original_size=(800, 600))
    widget.right.set_image(image(400, 300, "#000000"), original_size=(800, 600))
    return widget


def test_matches_are_drawn_as_lines_across_both_views(qtbot, pair):
    pair.set_matches(np.array([[400, 300, 400, 300]], np.float32))  # both photo centres
    a = pair.left.scene_to_widget(QPointF(400, 300), pair)
    b = pair.right.scene_to_widget(QPointF(400, 300), pair)
    assert a is not None and b is not None and b.x() > a.x()
    assert abs(a.y() - b.y()) < 2
    gap = QPoint(pair.left.geometry().right() + 4, round(a.y()))
    shot = pair.grab().toImage()
    assert shot.pixelColor(gap).saturation() > 100  # the coloured line crosses the gap
    pair.toggle_matches()
    assert not pair.matches_visible()
    shot = pair.grab().toImage()
    assert shot.pixelColor(gap).saturation() < 50


def test_many_matches_are_subsampled(pair):
    pair.set_matches(np.random.default_rng(0).uniform(0, 600, (2000, 4)).astype(np.float32))
    assert len(pair.matches()) == 400
    assert len(pair.left.keypoints()) == 400


def test_linked_zoom_follows_the_other_view(pair):
    wheel(pair.left, QPoint(100, 100), 1)
    assert pair.right.zoom_level() == pytest.approx(1.0)  # not linked yet
    pair.set_sync_zoom(True)
    assert pair.right.zoom_level() == pytest.approx(1.25, rel=1e-3)
    wheel(pair.right, QPoint(100, 100), 2)
    assert pair.left.zoom_level() == pytest.approx(pair.right.zoom_level(), rel=1e-3)
    pair.right.fit_to_window()
    pair.right.zoomChanged.emit(1.0)
    assert pair.left.is_fitted()


def test_prefetcher_decodes_in_the_background_and_reports_bad_files(qtbot, tmp_path: Path):
    good = make_photo(tmp_path / "good.jpg", 1200, 900, seed=1)
    bad = make_truncated_jpeg(tmp_path / "bad.jpg", width=640, height=480)
    prefetch = Prefetcher(catalog=None)
    assert prefetch.image(good) is None  # never blocks: nothing cached yet
    with qtbot.waitSignals([prefetch.imageReady, prefetch.imageReady], timeout=10_000):
        prefetch.request_image(good, max_side=600)
        prefetch.request_image(bad, max_side=600)
    loaded = prefetch.image(good, 600)
    assert loaded.image is not None and max(loaded.image.width(), loaded.image.height()) == 600
    failed = prefetch.image(bad, 600)
    assert failed.image is None and "truncated" in failed.error
    prefetch.shutdown()


def keypoint_pixel(view: ImageView, point: QPointF) -> QColor:
    """The viewport's colour where scene ``point`` is shown."""
    return view.viewport().grab().toImage().pixelColor(view.mapFromScene(point))


def test_keypoints_are_painted_at_their_place_and_keep_their_size_when_zoomed(view):
    red = QColor("#ff0000")
    view.set_keypoints(np.array([[800, 600]], np.float32), [red])
    assert keypoint_pixel(view, QPointF(800, 600)) == red
    # 4 px from the centre is the outline; 8 scene px (2 viewport px when fitted) still red.
    assert keypoint_pixel(view, QPointF(808, 600)) == red
    assert keypoint_pixel(view, QPointF(800, 660)) == QColor("#808080")
    view.set_zoom_level(8.0, QPointF(view.mapFromScene(QPointF(800, 600))))
    assert keypoint_pixel(view, QPointF(800, 600)) == red
    # Zoomed 8x, 8 scene pixels are ~16 viewport pixels: beyond the circle's 4 px radius.
    assert keypoint_pixel(view, QPointF(808, 600)) == QColor("#808080")
    view.set_keypoints_visible(False)
    assert keypoint_pixel(view, QPointF(800, 600)) == QColor("#808080")
    view.set_keypoints_visible(True)
    view.set_keypoints(np.zeros((0, 2), np.float32))
    assert keypoint_pixel(view, QPointF(800, 600)) == QColor("#808080")
