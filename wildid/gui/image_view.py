"""Zoomable photo views for comparing two animals, with matched keypoints drawn across them.

Scene coordinates are always the photo's *original oriented pixels*: the (smaller) decoded
pixmap is scaled up inside the scene to the original size. Boxes and keypoints coming from the
catalog (stored in original pixels) are therefore placed as they are, whatever size the photo
was decoded at.

:class:`ImageView` is one photo: wheel zoom around the cursor, drag to pan, ``+``/``-``/``0``
(fit) on the keyboard, and a drawn placeholder with a message when the photo is missing or
corrupt (a review session must never crash on a bad file). :class:`PairView` holds two views
side by side, can link their zoom, and paints the matched keypoint pairs as coloured lines on a
transparent overlay above both views, so each side still zooms and pans on its own.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QWidget,
)

__all__ = ["ImageView", "PairView", "match_colours", "placeholder_image", "rgb_to_qimage"]

MIN_ZOOM = 0.25  # relative to fit-to-window
MAX_ZOOM = 40.0
WHEEL_STEP = 1.25
MAX_DRAWN_MATCHES = 400  # more lines only hide the photos and slow painting
KEYPOINT_RADIUS = 4.0  # viewport pixels, whatever the zoom


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A deep-copied QImage of an RGB uint8 array (safe to build in a worker thread)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def placeholder_image(message: str, size: QSize | None = None) -> QImage:
    """A dark grey image with a crossed frame and ``message``, shown instead of a bad photo."""
    size = size if size is not None and not size.isEmpty() else QSize(800, 600)
    # Keep the placeholder's aspect but a modest pixel count: text is drawn at this size.
    scale = 800 / max(size.width(), size.height())
    w, h = max(200, round(size.width() * scale)), max(150, round(size.height() * scale))
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(60, 60, 64))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(110, 110, 116), 3))
    painter.drawRect(10, 10, w - 20, h - 20)
    painter.drawLine(10, 10, w - 10, h - 10)
    painter.drawLine(w - 10, 10, 10, h - 10)
    box = QRectF(w * 0.1, h * 0.3, w * 0.8, h * 0.4)
    painter.fillRect(box, QColor(40, 40, 44, 230))
    font = QFont()
    font.setPixelSize(max(14, h // 24))
    painter.setFont(font)
    painter.setPen(QColor(235, 235, 235))
    painter.drawText(box.adjusted(12, 8, -12, -8),
                     Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, message)
    painter.end()
    return image


def match_colours(n: int) -> list[QColor]:
    """``n`` distinct, bright colours (golden-ratio hue steps) so each pair is recognisable."""
    return [QColor.fromHsvF((0.13 + i * 0.618034) % 1.0, 0.85, 1.0) for i in range(n)]


class ImageView(QGraphicsView):
    """One photo that zooms around the cursor, pans by dragging and fits on ``0``."""

    viewChanged = Signal()
    """The visible part changed (zoom, pan, resize, new image): overlays redraw."""
    zoomChanged = Signal(float)
    """The user zoomed; the value is the new zoom relative to fit-to-window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._pixmap_item)
        self._box_item: QGraphicsRectItem | None = None
        self._keypoints = np.zeros((0, 2), np.float32)
        self._keypoint_brushes: list[QBrush] = []
        self._keypoints_visible = True
        self._fitted = True
        self._placeholder_message: str | None = None
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QBrush(QColor(32, 32, 36)))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(160, 120)
        self.horizontalScrollBar().valueChanged.connect(self.viewChanged)
        self.verticalScrollBar().valueChanged.connect(self.viewChanged)
        self.set_placeholder("No photo")

    # ------------------------------------------------------------------ content
    def set_image(self, image: QImage, original_size: tuple[int, int] | None = None) -> None:
        """Show ``image``; ``original_size`` (w, h) makes scene units original pixels."""
        if image.isNull():
            self.set_placeholder("The photo could not be shown (empty image)")
            return
        self._placeholder_message = None
        self._show(QPixmap.fromImage(image), original_size or (image.width(), image.height()))

    def set_placeholder(self, message: str, original_size: tuple[int, int] | None = None) -> None:
        """Show a drawn placeholder with ``message`` (missing, corrupt or still loading)."""
        self._placeholder_message = message
        size = QSize(*original_size) if original_size else None
        self._show(QPixmap.fromImage(placeholder_image(message, size)), original_size)

    @property
    def placeholder_message(self) -> str | None:
        """The placeholder's message, or None while a real photo is shown."""
        return self._placeholder_message

    def has_image(self) -> bool:
        return self._placeholder_message is None

    def _show(self, pixmap: QPixmap, original_size: tuple[int, int] | None) -> None:
        ow, oh = original_size or (pixmap.width(), pixmap.height())
        self._pixmap_item.setPixmap(pixmap)
        self._pixmap_item.setTransform(
            QTransform.fromScale(ow / max(1, pixmap.width()), oh / max(1, pixmap.height())))
        self.scene().setSceneRect(QRectF(0, 0, ow, oh))
        self.fit_to_window()

    def image_rect(self) -> QRectF:
        """The photo's extent in scene (original pixel) coordinates."""
        return self.scene().sceneRect()

    def set_box(self, box: tuple[float, float, float, float] | None) -> None:
        """Outline ``box`` (x, y, w, h in original pixels) — the annotation being compared."""
        if self._box_item is not None:
            self.scene().removeItem(self._box_item)
            self._box_item = None
        if box is None:
            return
        pen = QPen(QColor(255, 214, 10), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._box_item = self.scene().addRect(QRectF(*box), pen)
        self._box_item.setZValue(5)

    def set_keypoints(self, points: np.ndarray, colours: list[QColor] | None = None) -> None:
        """Mark ``points`` (M, 2) in original pixels with small circles of constant size.

        The circles are painted in :meth:`drawForeground`, not added as scene items: a
        comparison draws up to 400 of them per photo, and building that many graphics items
        took ~28 ms per photo at every encounter shown (and each kept Python references).
        """
        self._keypoints = np.asarray(points, np.float32).reshape(-1, 2)
        colours = colours or match_colours(len(self._keypoints))
        self._keypoint_brushes = [QBrush(colour) for colour in colours[:len(self._keypoints)]]
        self.viewport().update()

    def set_keypoints_visible(self, visible: bool) -> None:
        if visible != self._keypoints_visible:
            self._keypoints_visible = visible
            self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        super().drawForeground(painter, rect)
        if not self._keypoints_visible or not self._keypoint_brushes:
            return
        # Map the points to viewport pixels and draw there, so circles keep their size
        # whatever the zoom (what ItemIgnoresTransformations did for one item per point).
        world = painter.worldTransform()
        points = self._keypoints[:len(self._keypoint_brushes)].astype(np.float64)
        xs = world.m11() * points[:, 0] + world.m21() * points[:, 1] + world.dx()
        ys = world.m12() * points[:, 0] + world.m22() * points[:, 1] + world.dy()
        exposed = world.mapRect(rect).adjusted(-KEYPOINT_RADIUS - 1, -KEYPOINT_RADIUS - 1,
                                               KEYPOINT_RADIUS + 1, KEYPOINT_RADIUS + 1)
        inside = np.flatnonzero((xs >= exposed.left()) & (xs <= exposed.right())
                                & (ys >= exposed.top()) & (ys <= exposed.bottom()))
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(0, 0, 0, 200), 1))
        for i in inside.tolist():
            painter.setBrush(self._keypoint_brushes[i])
            painter.drawEllipse(QPointF(xs[i], ys[i]), KEYPOINT_RADIUS, KEYPOINT_RADIUS)
        painter.restore()

    def keypoints(self) -> np.ndarray:
        return self._keypoints

    # ------------------------------------------------------------------ zoom & pan
    def _fit_scale(self) -> float:
        rect = self.image_rect()
        view = self.viewport().rect()
        if rect.isEmpty() or view.isEmpty():
            return 1.0
        return min(view.width() / rect.width(), view.height() / rect.height())

    def zoom_level(self) -> float:
        """Current magnification relative to fit-to-window (1.0 = fitted)."""
        return self.transform().m11() / self._fit_scale()

    def fit_to_window(self) -> None:
        """Show the whole photo; stays fitted across resizes until the user zooms."""
        scale = self._fit_scale()
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(self.image_rect().center())
        self._fitted = True
        self.viewChanged.emit()

    def is_fitted(self) -> bool:
        return self._fitted

    def set_zoom_level(self, level: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``level`` × fit, keeping the scene point under ``anchor`` (view pos) fixed."""
        level = min(MAX_ZOOM, max(MIN_ZOOM, level))
        anchor = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        scene_point = self.mapToScene(anchor.toPoint())
        scale = level * self._fit_scale()
        self.setTransform(QTransform.fromScale(scale, scale))
        # Scroll so the anchored scene point is back under the anchor.
        moved = self.mapFromScene(scene_point)
        delta = moved - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + delta.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + delta.y())
        self._fitted = abs(level - 1.0) < 1e-6
        self.viewChanged.emit()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Multiply the zoom by ``factor`` (user action: tells linked views)."""
        self.set_zoom_level(self.zoom_level() * factor, anchor)
        self.zoomChanged.emit(self.zoom_level())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return super().wheelEvent(event)
        self.zoom_by(WHEEL_STEP ** steps, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(WHEEL_STEP)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_by(1 / WHEEL_STEP)
        elif key == Qt.Key.Key_0:
            self.fit_to_window()
            self.zoomChanged.emit(1.0)
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fitted:
            self.fit_to_window()
        else:
            self.viewChanged.emit()

    def scene_to_widget(self, point: QPointF, widget: QWidget) -> QPointF | None:
        """Where scene ``point`` appears in ``widget`` coordinates; None when scrolled away."""
        view_point = self.mapFromScene(point)
        if not self.viewport().rect().contains(view_point):
            return None
        return widget.mapFromGlobal(self.viewport().mapToGlobal(QPointF(view_point)))


class _MatchOverlay(QWidget):
    """Transparent layer over both views painting a line per matched keypoint pair."""

    def __init__(self, pair: PairView) -> None:
        super().__init__(pair)
        self._pair = pair
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        pair = self._pair
        if not pair.matches_visible() or len(pair.matches()) == 0:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for (qx, qy, cx, cy), colour in zip(pair.matches(), pair.colours(), strict=True):
            a = pair.left.scene_to_widget(QPointF(float(qx), float(qy)), self)
            b = pair.right.scene_to_widget(QPointF(float(cx), float(cy)), self)
            if a is None or b is None:
                continue
            line_colour = QColor(colour)
            line_colour.setAlpha(170)
            painter.setPen(QPen(line_colour, 1.4))
            painter.drawLine(a, b)
        painter.end()


class PairView(QWidget):
    """Query photo (left) and candidate photo (right), optionally zoom-linked, with matches."""

    matchesToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.left = ImageView(self)
        self.right = ImageView(self)
        self.left.setObjectName("queryView")
        self.right.setObjectName("candidateView")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.left, 1)
        layout.addWidget(self.right, 1)
        self._matches = np.zeros((0, 4), np.float32)
        self._colours: list[QColor] = []
        self._show_matches = True
        self._sync_zoom = False
        self._syncing = False
        self._overlay = _MatchOverlay(self)
        self._overlay.raise_()
        for view, other in ((self.left, self.right), (self.right, self.left)):
            view.viewChanged.connect(self._overlay.update)
            view.zoomChanged.connect(lambda level, o=other: self._follow_zoom(o, level))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._overlay.setGeometry(self.rect())
        self._overlay.raise_()

    # ------------------------------------------------------------------ matches
    def set_matches(self, inliers: np.ndarray | None) -> None:
        """Matched pairs as rows (query x, y, candidate x, y) in original pixels of each photo."""
        matches = np.zeros((0, 4), np.float32) if inliers is None else \
            np.asarray(inliers, np.float32).reshape(-1, 4)
        if len(matches) > MAX_DRAWN_MATCHES:  # an even subsample keeps the spatial spread
            keep = np.linspace(0, len(matches) - 1, MAX_DRAWN_MATCHES).round().astype(int)
            matches = matches[keep]
        self._matches = matches
        self._colours = match_colours(len(matches))
        self.left.set_keypoints(matches[:, :2], self._colours)
        self.right.set_keypoints(matches[:, 2:], self._colours)
        self._apply_visibility()

    def matches(self) -> np.ndarray:
        return self._matches

    def colours(self) -> list[QColor]:
        return self._colours

    def matches_visible(self) -> bool:
        return self._show_matches

    def set_matches_visible(self, visible: bool) -> None:
        if visible != self._show_matches:
            self._show_matches = visible
            self._apply_visibility()
            self.matchesToggled.emit(visible)

    def toggle_matches(self) -> None:
        self.set_matches_visible(not self._show_matches)

    def _apply_visibility(self) -> None:
        self.left.set_keypoints_visible(self._show_matches)
        self.right.set_keypoints_visible(self._show_matches)
        self._overlay.update()

    # ------------------------------------------------------------------ linked zoom
    def sync_zoom(self) -> bool:
        return self._sync_zoom

    def set_sync_zoom(self, on: bool) -> None:
        """Link the two views' zoom (relative to fit); panning stays independent."""
        self._sync_zoom = on
        if on:
            self._follow_zoom(self.right, self.left.zoom_level())

    def _follow_zoom(self, other: ImageView, level: float) -> None:
        if not self._sync_zoom or self._syncing:
            return
        self._syncing = True
        try:
            if abs(level - 1.0) < 1e-6:
                other.fit_to_window()
            else:
                other.set_zoom_level(level)
        finally:
            self._syncing = False

    def fit_both(self) -> None:
        self.left.fit_to_window()
        self.right.fit_to_window()
