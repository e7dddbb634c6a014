"""Thumbnail cards: one list model and one delegate for every gallery-like list in the app.

The candidate strip, the individuals gallery and an individual's encounters all show the same
thing: a picture, a bold title, a line or two of facts, and sometimes a score. A card's picture
is asked for only when the view paints it, so thumbnails load lazily (in the background, via
:class:`~wildid.gui.prefetch.Prefetcher`) for the rows actually on screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from wildid.gui.formatting import fmt_date, plural
from wildid.gui.prefetch import Prefetcher

__all__ = ["BadgeRole", "Card", "CardDelegate", "CardModel", "IdRole", "LinesRole", "ScoreRole",
           "ThresholdRole", "card_grid", "individual_card", "score_colour"]

LinesRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
BadgeRole = Qt.ItemDataRole.UserRole + 3
IdRole = Qt.ItemDataRole.UserRole + 4
ThresholdRole = Qt.ItemDataRole.UserRole + 5

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Card:
    """What one card shows; ``id`` is the catalog id of the thing behind it."""

    id: str
    title: str
    lines: tuple[str, ...] = ()
    thumb_path: Path | None = None
    photo_path: Path | None = None  # decoded small when the thumbnail file is missing
    score: float | None = None
    threshold: float | None = None  # the new-individual cut-off the score is judged against
    badge: str = ""
    tooltip: str = ""
    payload: Any = field(default=None, compare=False)


GOOD_MATCH = 0.7  # calibrated probability from which a match is shown green
PLAIN_AMBER = 0.4  # without a threshold (nothing recorded yet), amber starts here


def individual_card(summary: Any) -> Card:
    """The card of an ``IndividualSummary``: the individuals gallery and the individual chooser
    show the same picture and facts."""
    # photos without a camera time (scans, exports, the shared crops) leave both dates empty:
    # "last —" read like a missing value, not like "no date on any photo"
    seen = (f"last {fmt_date(summary.last_seen)}" if summary.last_seen is not None
            else "no dates")
    lines = (summary.species or "species unknown",
             f"{plural(summary.n_encounters, 'sighting')} · {seen}")
    tip = [summary.name]
    if summary.aliases:
        tip.append("Also known as " + ", ".join(summary.aliases))
    tip.append(f"First seen {fmt_date(summary.first_seen)}, last seen "
               f"{fmt_date(summary.last_seen)}" if summary.last_seen is not None
               else "No sighting has a date (the photos carry no camera time)")
    return Card(id=summary.id, title=summary.name, lines=lines, thumb_path=summary.thumb_path,
                tooltip="\n".join(tip), payload=summary)


def score_colour(score: float, threshold: float | None = None) -> QColor:
    """Red → amber → green as the calibrated probability rises (colour-blind safe enough
    together with the printed percentage).

    Red means below the new-individual ``threshold`` the identification used, so the bar
    agrees with the "likely a new individual" verdict: with a threshold of 20 %, a 34 % match
    is a plausible one (amber), not a bad one.
    """
    amber_from = PLAIN_AMBER if threshold is None else threshold
    if score >= max(GOOD_MATCH, amber_from):
        return QColor(46, 160, 67)
    if score >= amber_from:
        return QColor(219, 154, 4)
    return QColor(207, 34, 46)


class CardModel(QAbstractListModel):
    """A flat list of :class:`Card` whose thumbnails come lazily from a prefetcher."""

    def __init__(self, prefetcher: Prefetcher, parent: Any = None) -> None:
        super().__init__(parent)
        self._prefetch = prefetcher
        self._cards: list[Card] = []
        self._rows_by_thumb: dict[str, list[int]] = {}
        prefetcher.thumbnailReady.connect(self._on_thumbnail)

    def set_cards(self, cards: list[Card]) -> None:
        self.beginResetModel()
        self._cards = list(cards)
        self._rows_by_thumb = {}
        for row, card in enumerate(self._cards):
            key = card.thumb_path or card.photo_path
            if key is not None:
                self._rows_by_thumb.setdefault(str(key), []).append(row)
        self.endResetModel()

    def cards(self) -> list[Card]:
        return list(self._cards)

    def card(self, row: int) -> Card | None:
        return self._cards[row] if 0 <= row < len(self._cards) else None

    def row_of(self, card_id: str) -> int:
        for row, card in enumerate(self._cards):
            if card.id == card_id:
                return row
        return -1

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self._cards)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        card = self.card(index.row()) if index.isValid() else None
        if card is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return card.title
        if role == Qt.ItemDataRole.DecorationRole:
            return self._image(card)
        if role == Qt.ItemDataRole.ToolTipRole:
            return card.tooltip or "\n".join((card.title, *card.lines))
        if role == LinesRole:
            return list(card.lines)
        if role == ScoreRole:
            return card.score
        if role == ThresholdRole:
            return card.threshold
        if role == BadgeRole:
            return card.badge
        if role == IdRole:
            return card.id
        return None

    def _image(self, card: Card) -> QImage | None:
        if card.thumb_path is None and card.photo_path is None:
            return None
        key = card.thumb_path or card.photo_path
        loaded = self._prefetch.thumbnail(key)
        if loaded is None:
            self._prefetch.request_thumbnail(key, card.photo_path)
            return None
        return loaded.image

    def _on_thumbnail(self, path: str) -> None:
        for row in self._rows_by_thumb.get(path, ()):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class CardDelegate(QStyledItemDelegate):
    """Paints a card: picture on top, optional badge and score bar, title and fact lines."""

    def __init__(self, size: QSize, picture_height: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._size = size
        self._picture_h = picture_height

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802
        return self._size

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(3, 3, -3, -3)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        base = palette.color(QPalette.ColorRole.Highlight) if selected else \
            palette.color(QPalette.ColorRole.Base)
        painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(base)
        painter.drawRoundedRect(rect, 6, 6)
        text_colour = palette.color(QPalette.ColorRole.HighlightedText if selected
                                    else QPalette.ColorRole.Text)

        picture = QRect(rect.left() + 4, rect.top() + 4, rect.width() - 8, self._picture_h)
        image = index.data(Qt.ItemDataRole.DecorationRole)
        painter.fillRect(picture, QColor(50, 50, 54))
        if isinstance(image, QImage) and not image.isNull():
            scaled = image.size().scaled(picture.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(picture.center())
            painter.drawImage(target, image)
        badge = index.data(BadgeRole)
        if badge:
            self._draw_badge(painter, picture, str(badge))

        y = picture.bottom() + 4
        score = index.data(ScoreRole)
        if score is not None:
            threshold = index.data(ThresholdRole)
            y = self._draw_score(painter, QRect(picture.left(), y, picture.width(), 16),
                                 float(score), text_colour,
                                 None if threshold is None else float(threshold))
        title_font = QFont(option.font)
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.setPen(text_colour)
        metrics = QFontMetrics(title_font)
        title = metrics.elidedText(str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
                                   Qt.TextElideMode.ElideRight, picture.width())
        painter.drawText(QRect(picture.left(), y, picture.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        y += metrics.height()
        painter.setFont(option.font)
        metrics = QFontMetrics(option.font)
        dim = QColor(text_colour)
        dim.setAlpha(200)
        painter.setPen(dim)
        for line in index.data(LinesRole) or []:
            if y + metrics.height() > rect.bottom():
                break
            text = metrics.elidedText(line, Qt.TextElideMode.ElideRight, picture.width())
            painter.drawText(QRect(picture.left(), y, picture.width(), metrics.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            y += metrics.height()
        painter.restore()

    @staticmethod
    def _draw_badge(painter: QPainter, picture: QRect, text: str) -> None:
        metrics = QFontMetrics(painter.font())
        box = QRect(picture.left() + 4, picture.top() + 4,
                    metrics.horizontalAdvance(text) + 10, metrics.height() + 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    @staticmethod
    def _draw_score(painter: QPainter, bar: QRect, score: float, text_colour: QColor,
                    threshold: float | None = None) -> int:
        score = min(1.0, max(0.0, score))
        label = f"{score * 100:.0f} %"
        metrics = QFontMetrics(painter.font())
        label_w = metrics.horizontalAdvance("100 %") + 6
        track = QRect(bar.left(), bar.top() + 4, bar.width() - label_w, bar.height() - 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(128, 128, 128, 90))
        painter.drawRoundedRect(track, 3, 3)
        filled = QRect(track.left(), track.top(), max(2, round(track.width() * score)),
                       track.height())
        painter.setBrush(score_colour(score, threshold))
        painter.drawRoundedRect(filled, 3, 3)
        painter.setPen(text_colour)
        painter.drawText(QRect(track.right() + 4, bar.top(), label_w, bar.height()),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        return bar.bottom() + 2


def card_grid(model: CardModel, size: QSize, picture_height: int,
              name: str = "") -> QListView:
    """A view of ``model``'s cards in rows that wrap with the width, as every gallery of the
    app shows them (individuals, an individual's sightings, the individual chooser)."""
    view = QListView()
    if name:
        view.setObjectName(name)
    view.setModel(model)
    view.setItemDelegate(CardDelegate(size, picture_height, view))
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setMovement(QListView.Movement.Static)
    view.setUniformItemSizes(True)
    view.setSpacing(4)
    view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
    return view
