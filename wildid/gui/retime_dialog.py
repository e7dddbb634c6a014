"""Asking how far a camera's clock was off: the real time of the earliest photo, or the error.

A person rarely knows the error itself ("26 years and 328 days"), but often knows when the
first photo of a card was really taken: the camera was set up at a known time, or the first
photo shows a watch. So the dialog offers both, shows what the earliest photo's time becomes,
and returns the shift (``wildid.review.retime.shift_times`` applies it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QDateTime, QTimeZone
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from wildid.review.retime import describe_shift

__all__ = ["RetimeDialog", "ask_shift"]

SHOWN = "yyyy-MM-dd HH:mm:ss"


def _to_qt(value: datetime) -> QDateTime:
    return QDateTime.fromSecsSinceEpoch(int(value.timestamp()), QTimeZone.utc())


def _from_qt(value: QDateTime) -> datetime:
    return datetime.fromtimestamp(value.toSecsSinceEpoch(), UTC)


class RetimeDialog(QDialog):
    """The earliest photo's real time, or a shift by days / hours / minutes / seconds."""

    def __init__(self, parent: QWidget | None, count: int, earliest: datetime) -> None:
        super().__init__(parent)
        self.setWindowTitle("Correct time")
        self.earliest = earliest.astimezone(UTC).replace(microsecond=0)
        what = "this encounter" if count == 1 else f"these {count:,} encounters"
        intro = QLabel(f"Use this when a camera's clock was wrong: every photo time of {what} "
                       "moves by the same amount, and each encounter's time follows its photos. "
                       "What the camera wrote is kept. Times are shown as in the catalog (UTC "
                       "where the camera gave its zone, else the camera's own clock).")
        intro.setWordWrap(True)

        self.at = QRadioButton("The earliest photo was really taken at")
        self.at.setChecked(True)
        self.when = QDateTimeEdit(_to_qt(self.earliest))
        self.when.setTimeZone(QTimeZone.utc())
        self.when.setDisplayFormat(SHOWN)
        self.when.setCalendarPopup(True)
        self.by = QRadioButton("Move every time by")
        self.direction = QComboBox()
        self.direction.addItems(["later", "earlier"])
        self.days, self.hours, self.minutes, self.seconds = (
            self._spin(top, unit) for top, unit in ((400 * 366, " d"), (23, " h"),
                                                    (59, " min"), (59, " s")))
        by_row = QHBoxLayout()
        for widget in (self.direction, self.days, self.hours, self.minutes, self.seconds):
            by_row.addWidget(widget)
        by_row.addStretch(1)

        grid = QGridLayout()
        grid.addWidget(self.at, 0, 0)
        grid.addWidget(self.when, 0, 1)
        grid.addWidget(self.by, 1, 0)
        grid.addLayout(by_row, 1, 1)
        self.preview = QLabel()
        self.preview.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert isinstance(ok, QPushButton)
        ok.setText("Move times")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(grid)
        layout.addWidget(self.preview)
        layout.addWidget(self.buttons)

        self.when.dateTimeChanged.connect(self._changed)
        self.direction.currentIndexChanged.connect(self._changed)
        for button in (self.at, self.by):
            button.toggled.connect(self._changed)
        self._changed()
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("m") * 48)

    def _spin(self, top: int, unit: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(0, top)
        spin.setSuffix(unit)
        spin.valueChanged.connect(self._changed)
        return spin

    def shift(self) -> timedelta:
        """What the chosen answer moves every time by."""
        if self.at.isChecked():
            return _from_qt(self.when.dateTime()) - self.earliest
        amount = timedelta(days=self.days.value(), hours=self.hours.value(),
                           minutes=self.minutes.value(), seconds=self.seconds.value())
        return -amount if self.direction.currentText() == "earlier" else amount

    def _changed(self, *_: object) -> None:
        by = self.by.isChecked()
        self.when.setEnabled(not by)
        for widget in (self.direction, self.days, self.hours, self.minutes, self.seconds):
            widget.setEnabled(by)
        delta = self.shift()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert ok is not None
        ok.setEnabled(bool(delta))
        if not delta:
            self.preview.setText(f"The earliest photo stays at {self.earliest:%Y-%m-%d %H:%M:%S}.")
            return
        try:
            after = f"{self.earliest + delta:%Y-%m-%d %H:%M:%S}"
        except OverflowError:
            ok.setEnabled(False)
            self.preview.setText("That moves the photos off the calendar.")
            return
        self.preview.setText(f"The earliest photo moves from {self.earliest:%Y-%m-%d %H:%M:%S} "
                             f"to {after} ({describe_shift(delta)}); the others move with it.")


def ask_shift(parent: QWidget | None, count: int, earliest: datetime) -> timedelta | None:
    """The shift chosen, or None when cancelled."""
    dialog = RetimeDialog(parent, count, earliest)
    return dialog.shift() if dialog.exec() == QDialog.DialogCode.Accepted else None
