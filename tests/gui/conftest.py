"""Fixtures for the GUI tests (pytest-qt, offscreen).

* QSettings go to an INI file under the test's own folder, never the developer's config;
* modal dialogs (QMessageBox, QFileDialog, QInputDialog) never block: they are recorded and
  answered from the ``dialogs`` fixture's scripted answers;
* ``services`` and ``main_window`` are built on a real, migrated catalog in ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox

from tests.photofactory import make_card


@dataclass
class DialogRecorder:
    """What dialogs the code opened, and the answers scripted for the next ones."""

    shown: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    question_answer: QMessageBox.StandardButton = QMessageBox.StandardButton.Yes
    folders: list[str] = field(default_factory=list)  # next getExistingDirectory results
    files: list[list[str]] = field(default_factory=list)  # next getOpenFileNames results
    save_paths: list[str] = field(default_factory=list)  # next getSaveFileName results
    texts: list[str | None] = field(default_factory=list)  # next QInputDialog.getText results

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.shown]

    def texts_of(self, kind: str) -> list[str]:
        return [text for k, text in self.shown if k == kind]


@pytest.fixture(autouse=True)
def _gc_on_gui_thread(qapp: Any) -> Iterator[None]:
    """As in the app: cyclic garbage is collected on the GUI thread only (see gc_guard)."""
    from wildid.gui.gc_guard import GuiGarbageCollector

    collector = GuiGarbageCollector()
    collector.install()
    yield
    collector.uninstall()
    collector.deleteLater()


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder))
    yield folder


@pytest.fixture(autouse=True)
def dialogs(monkeypatch: pytest.MonkeyPatch) -> DialogRecorder:
    """Record every modal dialog instead of showing it (a shown dialog would hang the test)."""
    rec = DialogRecorder()

    def message(kind: str) -> Any:
        def show(_parent: Any, _title: str, text: str = "", *args: Any, **kwargs: Any) -> Any:
            rec.shown.append((kind, text))
            return rec.question_answer if kind == "question" else QMessageBox.StandardButton.Ok
        return staticmethod(show)

    for kind in ("information", "warning", "critical", "question", "about"):
        monkeypatch.setattr(QMessageBox, kind, message(kind))

    def box_exec(box: QMessageBox) -> int:
        text = box.text()
        if box.informativeText():
            text += "\n" + box.informativeText()
        rec.shown.append(("box", text))
        return int(QMessageBox.StandardButton.Ok)

    def dialog_exec(dialog: QDialog) -> int:
        rec.shown.append(("dialog", dialog.windowTitle()))
        return int(QDialog.DialogCode.Rejected)

    monkeypatch.setattr(QMessageBox, "exec", box_exec)
    monkeypatch.setattr(QDialog, "exec", dialog_exec)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(
        lambda *a, **k: rec.folders.pop(0) if rec.folders else ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(
        lambda *a, **k: (rec.files.pop(0) if rec.files else [], "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(
        lambda *a, **k: (rec.save_paths.pop(0) if rec.save_paths else "", "")))

    def get_text(*_a: Any, **_k: Any) -> tuple[str, bool]:
        answer = rec.texts.pop(0) if rec.texts else None
        return ("", False) if answer is None else (answer, True)

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    return rec


@pytest.fixture
def settings(qapp: Any) -> Any:
    """Settings on the isolated store; no automatic identification unless a test asks."""
    from wildid.gui.settings import Settings

    s = Settings()
    s.auto_identify = False
    s.reviewer_name = "Tester"
    return s


@pytest.fixture
def error_handler(qapp: Any) -> Iterator[Any]:
    from wildid.gui.errors import ErrorHandler

    handler = ErrorHandler()
    yield handler
    handler.uninstall()


@pytest.fixture
def services(tmp_path: Path, settings: Any, error_handler: Any) -> Iterator[Any]:
    from wildid.gui.services import Services

    svc = Services.open(tmp_path / "catalog", settings, error_handler.report)
    yield svc
    svc.close()


@pytest.fixture
def main_window(qtbot: Any, services: Any, error_handler: Any) -> Iterator[Any]:
    from wildid.gui.main_window import MainWindow

    window = MainWindow(services, error_handler)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()


@pytest.fixture
def small_card(tmp_path: Path) -> Path:
    """A card of 12 small photos in bursts (two cameras), as ``DCIM/...`` folders."""
    folder = tmp_path / "card"
    make_card(folder, 12, seed=3, width=320, height=240)
    return folder
