"""A one-line timeline of an individual's sightings: when it was seen, and the gaps between.

Ticks adapt to the span (days, months or years) so a calf seen twice in a week and a bull seen
over ten seasons both read well. Sightings on the same day stack upwards.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

__all__ = ["SightingTimeline", "time_ticks"]


def time_ticks(start: datetime, end: datetime, max_ticks: int = 8) -> list[tuple[datetime, str]]:
    """Tick positions and labels between ``start`` and ``end`` (aware datetimes)."""
    span = end - start
    if span <= timedelta(days=14):
        step = max(1, round(span.days / max_ticks) or 1)
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
        ticks = [first + timedelta(days=i * step) for i in range(max_ticks + 3)]
        return [(t, t.strftime("%d %b")) for t in ticks if start <= t <= end]
    if span <= timedelta(days=730):
        months = max(1, round(span.days / 30.44 / max_ticks))
        ticks, year, month = [], start.year, start.month
        while True:
            t = datetime(year, month, 1, tzinfo=start.tzinfo or UTC)
            if t > end:
                break
            if t >= start:
                ticks.append((t, t.strftime("%b %Y")))
            month += months
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
        return ticks
    years = max(1, round(span.days / 365.25 / max_ticks))
    ticks = []
    for year in range(start.year, end.year + 1, years):
        t = datetime(year, 1, 1, tzinfo=start.tzinfo or UTC)
        if start <= t <= end:
            ticks.append((t, str(year)))
    return ticks


class SightingTimeline(QWidget):
    """Dots on a time axis, one per sighting; the newest is highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._times: list[datetime] = []
        self.setMinimumHeight(70)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(420, 84)

    def set_times(self, times: list[datetime | None]) -> None:
        self._times = sorted(t for t in times if t is not None)
        self.update()

    def times(self) -> list[datetime]:
        return list(self._times)

    def _range(self) -> tuple[datetime, datetime]:
        start, end = self._times[0], self._times[-1]
        pad = max((end - start) * 0.05, timedelta(days=1))
        return start - pad, end + pad

    def x_of(self, when: datetime) -> float:
        start, end = self._range()
        area = self._axis_rect()
        fraction = (when - start) / (end - start)
        return area.left() + fraction * area.width()

    def _axis_rect(self) -> QRectF:
        return QRectF(self.rect()).adjusted(16, 8, -16, -24)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = self._axis_rect()
        text = self.palette().color(self.foregroundRole())
        if not self._times:
            painter.setPen(text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "No dated sighting yet")
            painter.end()
            return
        y = area.bottom()
        painter.setPen(QPen(text, 1))
        painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        metrics = QFontMetrics(painter.font())
        start, end = self._range()
        last_right = -1e9
        for when, label in time_ticks(start, end):
            x = self.x_of(when)
            painter.drawLine(QPointF(x, y), QPointF(x, y + 4))
            width = metrics.horizontalAdvance(label)
            if x - width / 2 > last_right + 6:  # skip labels that would overlap
                painter.drawText(QPointF(x - width / 2, y + 6 + metrics.ascent()), label)
                last_right = x + width / 2
        per_day: Counter[str] = Counter()
        for i, when in enumerate(self._times):
            day = when.strftime("%Y-%m-%d")
            stack = per_day[day]
            per_day[day] += 1
            newest = i == len(self._times) - 1
            painter.setPen(QPen(QColor(255, 255, 255), 1))
            painter.setBrush(QColor(200, 60, 40) if newest else QColor(40, 90, 160))
            radius = 6 if newest else 5
            centre = QPointF(self.x_of(when), y - 9 - stack * 9)
            if centre.y() > area.top():
                painter.drawEllipse(centre, radius, radius)
        painter.end()
