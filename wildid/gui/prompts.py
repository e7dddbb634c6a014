"""The few questions pages ask the user, behind one small object tests can replace.

Modal dialogs block a test's event loop; pages therefore never call ``QInputDialog`` directly
but ``self.prompts.ask_text(...)``. A test assigns a scripted stand-in with the answers
it wants (see ``tests/gui/review_data.py``), and reads back what was shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QInputDialog, QLabel, QLineEdit, QMessageBox, QWidget

__all__ = ["Prompts"]

REPORT_WIDTH = 760  # px: the widest a report box grows to fit its longest line


class Prompts:
    """Real dialogs, parented to ``parent`` so they are centred on the page."""

    def __init__(self, parent: QWidget) -> None:
        self._parent = parent

    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        """A one-line answer, or None when the user cancelled."""
        value, ok = QInputDialog.getText(self._parent, title, label, QLineEdit.EchoMode.Normal,
                                         text)
        return value if ok else None

    def confirm(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self._parent, title, question,
                                      QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def choose(self, title: str, chooser: Callable[[QWidget], Any]) -> Any:
        """Run ``chooser(parent)`` (a function that shows a dialog and returns its answer)."""
        return chooser(self._parent)

    def error(self, message: str) -> None:
        QMessageBox.warning(self._parent, "wildid", message)

    def inform(self, title: str, message: str) -> None:
        """A report the user reads and closes (what a longer piece of work came to).

        A message box wraps its text at about 500 px whatever the screen, and a report of
        sentence-long lines (the score refit's, one per species) read as a column of
        fragments: the box is widened to its longest line, up to ``REPORT_WIDTH``.
        """
        box = QMessageBox(QMessageBox.Icon.Information, title, message,
                          QMessageBox.StandardButton.Ok, self._parent)
        label = box.findChild(QLabel, "qt_msgbox_label")  # the text (Qt's own object name)
        if label is not None:
            metrics = label.fontMetrics()
            widest = max((metrics.horizontalAdvance(line) for line in message.splitlines()),
                         default=0)
            label.setMinimumWidth(min(REPORT_WIDTH, widest + 8))
        box.exec()
