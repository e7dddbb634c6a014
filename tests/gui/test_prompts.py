"""The real dialogs behind ``Prompts``: what a report box shows and how wide it is."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

from wildid.gui.prompts import REPORT_WIDTH, Prompts


def _shown(monkeypatch: Any, qtbot: Any, message: str) -> dict[str, Any]:
    """What the box showed (read while it is open: it is gone once ``inform`` returns)."""
    parent = QWidget()
    qtbot.addWidget(parent)
    shown: list[dict[str, Any]] = []

    def keep(box: QMessageBox) -> int:
        label = box.findChild(QLabel, "qt_msgbox_label")
        assert label is not None
        shown.append({"title": box.windowTitle(), "text": box.text(),
                      "min_width": label.minimumWidth(), "metrics": label.fontMetrics()})
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", keep)
    Prompts(parent).inform("Match scores", message)
    assert len(shown) == 1
    return shown[0]


def test_a_report_of_long_lines_is_as_wide_as_its_longest_line(monkeypatch: Any,
                                                                 qtbot: Any) -> None:
    line = ("lion: refitted on 412 pairs from 87 confirmed encounters (61 individuals); "
            "likely new below 23 %")
    box = _shown(monkeypatch, qtbot, line + "\nnyala: kept the shipped scores")
    assert box["title"] == "Match scores"
    assert box["text"].startswith("lion: refitted")
    # a message box alone wraps at ~500 px; this line is wider than that in any usual font
    advance = box["metrics"].horizontalAdvance(line)
    assert advance > 500
    assert box["min_width"] >= min(REPORT_WIDTH, advance)


def test_a_very_long_line_wraps_at_the_report_width(monkeypatch: Any, qtbot: Any) -> None:
    assert _shown(monkeypatch, qtbot, "word " * 400)["min_width"] == REPORT_WIDTH


def test_a_short_message_keeps_a_small_box(monkeypatch: Any, qtbot: Any) -> None:
    assert _shown(monkeypatch, qtbot, "Done.")["min_width"] < 100
