"""Starting the desktop app: ``wildid`` with no arguments calls :func:`run`."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from wildid import __version__
from wildid.errors import CatalogError
from wildid.gui import style
from wildid.gui.errors import ErrorHandler, remove_logging, setup_logging
from wildid.gui.gc_guard import GuiGarbageCollector
from wildid.gui.main_window import MainWindow
from wildid.gui.services import Services
from wildid.gui.settings import APPLICATION, ORGANIZATION, Settings

log = logging.getLogger(__name__)


def create_application() -> QApplication:
    """The QApplication with wildid's names (QSettings keys), DPI policy and look.

    Reuses a running instance (tests, or a host that made one already).
    """
    app = QApplication.instance()
    if app is None:
        # Fractional scale factors (150 %) as the desktop asks, not rounded to 1x or 2x.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("wildid")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("wildid")
    style.apply(app)
    return app


def open_first_catalog(path: Path, settings: Settings, errors: ErrorHandler) -> Services | None:
    """Open ``path``; when that fails, say why and let the user pick another or quit."""
    while True:
        try:
            return Services.open(path, settings, errors.report)
        except CatalogError as exc:
            log.warning("cannot open catalog %s: %s", path, exc)
            box = QMessageBox(QMessageBox.Icon.Warning, "wildid",
                              f"Could not open the catalog in {path}.")
            box.setInformativeText(str(exc))
            other = box.addButton("Open another catalog…", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Close)
            box.exec()
            if box.clickedButton() is not other:
                return None
            folder = QFileDialog.getExistingDirectory(None, "Open a catalog folder",
                                                      str(path.parent))
            if not folder:
                return None
            path = Path(folder)


@contextmanager
def _close_on_signals(app: QApplication) -> Iterator[None]:
    """Ctrl-C in the terminal or SIGTERM (logout, ``kill``) close the window properly, so
    running jobs stop at a checkpoint and the layout is saved. The timer wakes the Python
    interpreter now and then: signal handlers only run between Python bytecodes."""
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, lambda *_: app.closeAllWindows())
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)
    try:
        yield
    finally:
        timer.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def no_display_reason(environ: Mapping[str, str] | None = None,
                      platform: str | None = None) -> str | None:
    """Why the app cannot open a window here, or None when it can (as far as one can tell
    before Qt tries).

    Why: on Linux without a desktop session (ssh, a container, a cron job) Qt aborts the
    process (a core dump) with a message that names a missing library, which sends the user
    looking for the wrong fix. A named platform (``QT_QPA_PLATFORM``: offscreen, wayland,
    vnc...) is the user's own choice and is left to Qt.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("there is no display to open the app on (neither DISPLAY nor WAYLAND_DISPLAY is "
            "set). Start it from a desktop session, or under a virtual screen (xvfb-run "
            "wildid); every command works without one (wildid --help).")


def run(catalog_path: Path | str) -> int:
    """Open the desktop app on ``catalog_path``; returns the process exit code."""
    if QApplication.instance() is None and (reason := no_display_reason()):
        print(f"wildid: {reason}", file=sys.stderr)
        return 2
    app = create_application()
    errors = ErrorHandler()
    log_file = errors.log_file = setup_logging()
    errors.install()
    collector = GuiGarbageCollector(app)
    collector.install()
    log.info("wildid %s starting on %s", __version__, catalog_path)
    try:
        services = open_first_catalog(Path(catalog_path), Settings(), errors)
        if services is None:
            return 2
        window = MainWindow(services, errors)
        window.show()
        with _close_on_signals(app):
            return int(app.exec())
    finally:
        collector.uninstall()
        errors.uninstall()
        log.info("wildid stopped")
        remove_logging(log_file)
