"""A photo view on which boxes can be drawn, moved and resized with the mouse.

Boxes live in scene coordinates, which :class:`~wildid.gui.image_view.ImageView` keeps equal to
the photo's original oriented pixels, so what the user draws is already what the catalog
stores. The canvas only reports edits (:attr:`BoxCanvas.boxDrawn`, :attr:`BoxCanvas.boxEdited`);
the editor turns them into undoable operations and redraws from the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QCursor, QFont, QMouseEvent, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsSceneHoverEvent,
    QGraphicsSceneMouseEvent,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from wildid.gui.image_view import ImageView
from wildid.review.annotation_ops import MIN_BOX_SIDE

__all__ = ["BoxCanvas", "BoxItem", "BoxSpec"]

HANDLE_PX = 8  # how close (screen pixels) to an edge a press resizes instead of moving
MIN_SIDE = MIN_BOX_SIDE  # smallest box side in original pixels (the core refuses smaller)


@dataclass(frozen=True)
class BoxSpec:
    id: str
    rect: QRectF
    label: str
    full_frame: bool = False


class BoxItem(QGraphicsRectItem):
    """One annotation box; drag inside to move, near an edge or corner to resize."""

    def __init__(self, spec: BoxSpec, canvas: BoxCanvas) -> None:
        super().__init__(spec.rect)
        self.spec = spec
        self._canvas = canvas
        self._edges: tuple[bool, bool, bool, bool] = (False, False, False, False)  # l, t, r, b
        self._press: QPointF | None = None
        self._start = QRectF(spec.rect)
        self.setAcceptHoverEvents(True)
        self.setZValue(20)
        # A dark tag with the box number and viewpoint, readable on any photo at any zoom.
        self._tag = QGraphicsRectItem(self)
        self._tag.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self._tag.setPen(QPen(Qt.PenStyle.NoPen))
        self._tag.setBrush(QColor(0, 0, 0, 190))
        self._text = QGraphicsSimpleTextItem(spec.label, self._tag)
        font = QFont(self._text.font())
        font.setBold(True)
        self._text.setFont(font)
        self._text.setPos(4, 1)
        self._tag.setRect(self._text.boundingRect().adjusted(0, 0, 8, 2))
        self._tag.setPos(spec.rect.topLeft())
        self.set_selected(False)

    def set_selected(self, selected: bool) -> None:
        colour = QColor(255, 214, 10) if selected else QColor(0, 200, 255)
        pen = QPen(colour, 3 if selected else 2,
                   Qt.PenStyle.DashLine if self.spec.full_frame else Qt.PenStyle.SolidLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        fill = QColor(colour)
        fill.setAlpha(28 if selected else 0)
        self.setBrush(fill)
        self._text.setBrush(QBrush(colour))

    def _zone(self, pos: QPointF) -> tuple[bool, bool, bool, bool]:
        tolerance = HANDLE_PX / max(1e-6, self._canvas.transform().m11())
        r = self.rect()
        return (abs(pos.x() - r.left()) <= tolerance, abs(pos.y() - r.top()) <= tolerance,
                abs(pos.x() - r.right()) <= tolerance, abs(pos.y() - r.bottom()) <= tolerance)

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        left, top, right, bottom = self._zone(event.pos())
        if (left and top) or (right and bottom):
            shape = Qt.CursorShape.SizeFDiagCursor
        elif (right and top) or (left and bottom):
            shape = Qt.CursorShape.SizeBDiagCursor
        elif left or right:
            shape = Qt.CursorShape.SizeHorCursor
        elif top or bottom:
            shape = Qt.CursorShape.SizeVerCursor
        else:
            shape = Qt.CursorShape.SizeAllCursor
        self.setCursor(QCursor(shape))

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or self._canvas.drawing:
            event.ignore()
            return
        self._edges = self._zone(event.pos())
        self._press = event.scenePos()
        self._start = QRectF(self.rect())
        self._canvas.select(self.spec.id, user=True)
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if self._press is None:
            return
        self.setRect(self.dragged(self._start, self._edges, event.scenePos() - self._press,
                                  self._canvas.image_rect()))
        self._tag.setPos(self.rect().topLeft())

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if self._press is None:
            return
        self._press = None
        if self.rect() != self._start:
            self._canvas.boxEdited.emit(self.spec.id, QRectF(self.rect()))

    @staticmethod
    def dragged(start: QRectF, edges: tuple[bool, bool, bool, bool], delta: QPointF,
                bounds: QRectF) -> QRectF:
        """``start`` moved (no edge held) or resized (edges held) by ``delta``, kept in bounds."""
        left, top, right, bottom = edges
        r = QRectF(start)
        if not any(edges):
            dx = min(max(delta.x(), bounds.left() - r.left()), bounds.right() - r.right())
            dy = min(max(delta.y(), bounds.top() - r.top()), bounds.bottom() - r.bottom())
            return r.translated(dx, dy)
        if left:
            r.setLeft(min(max(bounds.left(), r.left() + delta.x()), r.right() - MIN_SIDE))
        if right:
            r.setRight(max(min(bounds.right(), r.right() + delta.x()), r.left() + MIN_SIDE))
        if top:
            r.setTop(min(max(bounds.top(), r.top() + delta.y()), r.bottom() - MIN_SIDE))
        if bottom:
            r.setBottom(max(min(bounds.bottom(), r.bottom() + delta.y()), r.top() + MIN_SIDE))
        return r


class BoxCanvas(ImageView):
    """An :class:`ImageView` with editable boxes and a drawing mode for new ones."""

    boxDrawn = Signal(QRectF)
    boxEdited = Signal(str, QRectF)
    boxSelected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: dict[str, BoxItem] = {}
        self._selected: str | None = None
        self.drawing = False
        self._rubber: QGraphicsRectItem | None = None
        self._origin = QPointF()

    def set_boxes(self, boxes: list[BoxSpec], selected: str | None = None) -> None:
        for item in self._items.values():
            self.scene().removeItem(item)
        self._items = {b.id: BoxItem(b, self) for b in boxes}
        for item in self._items.values():
            self.scene().addItem(item)
        wanted = selected if selected in self._items else (boxes[0].id if boxes else None)
        self._selected = None
        if wanted is not None:
            self.select(wanted)

    def box_ids(self) -> list[str]:
        return list(self._items)

    def box_rect(self, box_id: str) -> QRectF:
        return self._items[box_id].rect()

    def selected(self) -> str | None:
        return self._selected

    def select(self, box_id: str, user: bool = False) -> None:
        if box_id not in self._items:
            return
        for key, item in self._items.items():
            item.set_selected(key == box_id)
        changed = box_id != self._selected
        self._selected = box_id
        if changed or user:
            self.boxSelected.emit(box_id)

    # ------------------------------------------------------------------ drawing mode
    def start_drawing(self) -> None:
        """The next left-button drag draws a new box (Esc cancels)."""
        self.drawing = True
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def stop_drawing(self) -> None:
        self.drawing = False
        if self._rubber is not None:
            self.scene().removeItem(self._rubber)
            self._rubber = None
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().unsetCursor()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.drawing and event.button() == Qt.MouseButton.LeftButton:
            self._origin = self._clamp(self.mapToScene(event.position().toPoint()))
            pen = QPen(QColor(255, 214, 10), 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber = self.scene().addRect(QRectF(self._origin, self._origin), pen)
            self._rubber.setZValue(30)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.drawing and self._rubber is not None:
            point = self._clamp(self.mapToScene(event.position().toPoint()))
            self._rubber.setRect(QRectF(self._origin, point).normalized())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.drawing and self._rubber is not None:
            rect = self._rubber.rect()
            self.stop_drawing()
            if rect.width() >= MIN_SIDE and rect.height() >= MIN_SIDE:
                self.boxDrawn.emit(rect)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def _clamp(self, point: QPointF) -> QPointF:
        bounds = self.image_rect()
        return QPointF(min(max(point.x(), bounds.left()), bounds.right()),
                       min(max(point.y(), bounds.top()), bounds.bottom()))
