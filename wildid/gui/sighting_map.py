"""An offline map of where an individual was seen: points on a lat/lon grid with a scale bar.

No tile server (wildid works in the field without a network). Positions are drawn with an
equirectangular projection scaled by cos(latitude) around the centre, which is accurate to well
under a percent over the few tens of kilometres a home range spans. A "nice" graticule (1-2-5
steps in degrees) and a scale bar in m/km give the reader distances; points are joined in time
order and the latest sighting is drawn larger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QToolTip, QWidget

__all__ = ["MapPoint", "SightingMap", "nice_step", "scale_bar_metres"]

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEG_LAT = math.pi * EARTH_RADIUS_KM / 180.0
MIN_SPAN_KM = 0.5  # a single sighting still gets a readable neighbourhood
MARGIN = 36


@dataclass(frozen=True)
class MapPoint:
    lat: float
    lon: float
    when: datetime | None = None
    label: str = ""


def nice_step(span: float, target_lines: int = 5) -> float:
    """A 1-2-5 × 10^k step giving about ``target_lines`` grid lines over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / max(1, target_lines)
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


def scale_bar_metres(metres_per_pixel: float, max_pixels: float) -> float:
    """The longest 1-2-5 distance (m) whose bar fits in ``max_pixels``."""
    limit = metres_per_pixel * max_pixels
    if limit <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(limit))
    for mult in (5, 2, 1):
        if mult * power <= limit:
            return mult * power
    return power


class SightingMap(QWidget):
    """Sightings as points on a graticule; hover a point for its date and label."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._points: list[MapPoint] = []
        self.setMouseTracking(True)
        self.setMinimumSize(240, 180)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(420, 300)

    def set_points(self, points: list[MapPoint]) -> None:
        """Sightings with coordinates; order them by time for the joining track."""
        self._points = [p for p in points if _valid(p.lat, p.lon)]
        self._points.sort(key=lambda p: (p.when is None, p.when or datetime.min))
        self.update()

    def points(self) -> list[MapPoint]:
        return list(self._points)

    # ------------------------------------------------------------------ projection
    def _frame(self) -> tuple[float, float, float, float]:
        """(centre lat, centre lon, km per degree of longitude there, pixels per km)."""
        lats = [p.lat for p in self._points]
        lons = [p.lon for p in self._points]
        lat0 = (min(lats) + max(lats)) / 2
        lon0 = (min(lons) + max(lons)) / 2
        km_lon = KM_PER_DEG_LAT * max(0.01, math.cos(math.radians(lat0)))
        span_x = max((max(lons) - min(lons)) * km_lon, MIN_SPAN_KM)
        span_y = max((max(lats) - min(lats)) * KM_PER_DEG_LAT, MIN_SPAN_KM)
        plot = self._plot_rect()
        px_per_km = min(plot.width() / (span_x * 1.15), plot.height() / (span_y * 1.15))
        return lat0, lon0, km_lon, px_per_km

    def _plot_rect(self) -> QRectF:
        return QRectF(self.rect()).adjusted(MARGIN + 14, 10, -12, -MARGIN)

    def project(self, lat: float, lon: float) -> QPointF:
        """Widget position of (lat, lon) in the current frame."""
        lat0, lon0, km_lon, px_per_km = self._frame()
        centre = self._plot_rect().center()
        return QPointF(centre.x() + (lon - lon0) * km_lon * px_per_km,
                       centre.y() - (lat - lat0) * KM_PER_DEG_LAT * px_per_km)

    def _unproject(self, point: QPointF) -> tuple[float, float]:
        lat0, lon0, km_lon, px_per_km = self._frame()
        centre = self._plot_rect().center()
        lon = lon0 + (point.x() - centre.x()) / (km_lon * px_per_km)
        lat = lat0 - (point.y() - centre.y()) / (KM_PER_DEG_LAT * px_per_km)
        return lat, lon

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(236, 240, 230))
        plot = self._plot_rect()
        painter.setPen(QPen(QColor(160, 166, 150), 1))
        painter.drawRect(plot)
        if not self._points:
            painter.setPen(QColor(90, 90, 90))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "No sighting has GPS coordinates")
            painter.end()
            return
        self._draw_grid(painter, plot)
        self._draw_track(painter)
        self._draw_scale_bar(painter, plot)
        painter.end()

    def _draw_grid(self, painter: QPainter, plot: QRectF) -> None:
        lat_top, lon_left = self._unproject(plot.topLeft())
        lat_bottom, lon_right = self._unproject(plot.bottomRight())
        metrics = QFontMetrics(painter.font())
        grid_pen = QPen(QColor(190, 196, 182), 1, Qt.PenStyle.DotLine)
        step = nice_step(max(lon_right - lon_left, lat_top - lat_bottom))
        decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
        painter.setClipRect(self.rect())
        lon = math.ceil(lon_left / step) * step
        while lon <= lon_right:
            x = self.project(lat_bottom, lon).x()
            painter.setPen(grid_pen)
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.setPen(QColor(80, 84, 76))
            text = f"{lon:.{decimals}f}°"
            width = metrics.horizontalAdvance(text)
            left = min(max(x - width / 2, 2.0), self.width() - width - 2.0)
            painter.drawText(QPointF(left, plot.bottom() + metrics.ascent() + 3), text)
            lon += step
        lat = math.ceil(lat_bottom / step) * step
        while lat <= lat_top:
            y = self.project(lat, lon_left).y()
            painter.setPen(grid_pen)
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(QColor(80, 84, 76))
            painter.save()
            painter.translate(plot.left() - 4, y)
            painter.rotate(-90)
            text = f"{lat:.{decimals}f}°"
            painter.drawText(QPointF(-metrics.horizontalAdvance(text) / 2, 0), text)
            painter.restore()
            lat += step
        painter.setPen(QColor(60, 60, 60))
        painter.drawText(QPointF(plot.right() - 14, plot.top() + metrics.ascent() + 2), "N↑")

    def _draw_track(self, painter: QPainter) -> None:
        positions = [self.project(p.lat, p.lon) for p in self._points]
        if len(positions) > 1:
            painter.setPen(QPen(QColor(40, 90, 160, 120), 1.5))
            painter.drawPolyline(QPolygonF(positions))
        for i, pos in enumerate(positions):
            last = i == len(positions) - 1
            radius = 7 if last else 5
            painter.setPen(QPen(QColor(255, 255, 255), 1.5))
            painter.setBrush(QColor(200, 60, 40) if last else QColor(40, 90, 160))
            painter.drawEllipse(pos, radius, radius)

    def _draw_scale_bar(self, painter: QPainter, plot: QRectF) -> None:
        px_per_km = self._frame()[3]
        metres = scale_bar_metres(1000.0 / px_per_km, plot.width() / 3)
        if metres <= 0:
            return
        length = metres / 1000.0 * px_per_km
        x0, y0 = plot.left() + 10, plot.bottom() - 12
        painter.setPen(QPen(QColor(30, 30, 30), 2))
        painter.drawLine(QPointF(x0, y0), QPointF(x0 + length, y0))
        painter.drawLine(QPointF(x0, y0 - 4), QPointF(x0, y0 + 4))
        painter.drawLine(QPointF(x0 + length, y0 - 4), QPointF(x0 + length, y0 + 4))
        label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
        painter.drawText(QPointF(x0, y0 - 6), label)

    # ------------------------------------------------------------------ hover
    def point_at(self, pos: QPointF, tolerance: float = 8.0) -> MapPoint | None:
        best, best_d = None, tolerance
        for point in self._points:
            p = self.project(point.lat, point.lon)
            d = math.hypot(p.x() - pos.x(), p.y() - pos.y())
            if d <= best_d:
                best, best_d = point, d
        return best

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        point = self.point_at(event.position()) if self._points else None
        if point is None:
            QToolTip.hideText()
            return
        when = point.when.strftime("%Y-%m-%d %H:%M UTC") if point.when else "date unknown"
        text = f"{when}\n{point.lat:.5f}, {point.lon:.5f}"
        if point.label:
            text += f"\n{point.label}"
        QToolTip.showText(event.globalPosition().toPoint(), text, self)


def _valid(lat: float | None, lon: float | None) -> bool:
    return (lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180
            and not (lat == 0 and lon == 0))
