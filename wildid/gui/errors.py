"""The desktop app's last line of defence: a rotating log file and an error dialog.

This is one of the three places allowed to catch broadly (STYLE.md): an exception that escapes a
slot, a worker thread or a background job is logged with its traceback and shown to the user,
and the app keeps running. ``Cancelled`` means the user pressed Cancel, so it is dropped
silently; any other ``WildIdError`` carries a message written for users and is shown plainly;
anything else is a bug, shown with its details and the log file's location.

Dialogs are only ever opened on the GUI thread: hooks called from worker threads hand the
exception over through a queued signal.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from wildid.errors import Cancelled, WildIdError
from wildid.paths import log_dir

log = logging.getLogger(__name__)

LOG_NAME = "wildid.log"
_HANDLER_TAG = "_wildid_file_handler"


def setup_logging(level: int = logging.INFO, folder: Path | None = None) -> Path:
    """Send log records to ``<log_dir>/wildid.log`` (2 MB x 5 files); returns the file path.

    Idempotent: a second call (a test, a reopened window) does not add a second handler.
    :func:`remove_logging` undoes it (``run()`` does so on exit, which matters in tests).
    """
    folder = folder or log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, _HANDLER_TAG, None) == str(path):
            return path
    handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"))
    handler.setLevel(level)
    alembic = logging.getLogger("alembic")
    restore: list[tuple[logging.Logger | logging.Handler, int]] = [(root, root.level),
                                                                    (alembic, alembic.level)]
    previous = root.getEffectiveLevel()
    if previous > level:
        # Let INFO reach the file without making the handlers already there (the CLI's
        # stderr) any chattier than they were.
        for other in root.handlers:
            if other.level == logging.NOTSET:
                restore.append((other, other.level))
                other.setLevel(previous)
        root.setLevel(level)
    alembic.setLevel(max(logging.WARNING, level))  # it logs two lines each time a catalog opens
    setattr(handler, _HANDLER_TAG, str(path))
    handler._wildid_restore = restore  # type: ignore[attr-defined]
    root.addHandler(handler)
    return path


def remove_logging(path: Path) -> None:
    """Detach the file handler :func:`setup_logging` added for ``path`` and restore levels."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_TAG, None) == str(path):
            root.removeHandler(handler)
            handler.close()
            for target, level in getattr(handler, "_wildid_restore", []):
                target.setLevel(level)


def is_silent(exc: BaseException) -> bool:
    """True for exceptions the user caused on purpose and needs no dialog for."""
    return isinstance(exc, Cancelled)


class ErrorHandler(QObject):
    """Installs ``sys.excepthook`` and ``threading.excepthook``; shows one dialog at a time.

    Created before any window exists; ``parent_widget`` is set to the main window once there is
    one (and again when the window is rebuilt), so dialogs are centred on it.
    """

    _report = Signal(object)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self.parent_widget = parent_widget
        self.log_file: Path | None = None
        self._previous_sys = sys.excepthook
        self._previous_thread = threading.excepthook
        self._installed = False
        self._showing = False
        self.shown: list[str] = []  # messages shown, newest last (tests and the log read it)
        # Queued: a hook running on a worker thread must not build widgets there.
        self._report.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        if self._installed:
            return
        self._previous_sys = sys.excepthook
        self._previous_thread = threading.excepthook
        sys.excepthook = self._sys_hook
        threading.excepthook = self._thread_hook
        self._installed = True

    def uninstall(self) -> None:
        """Put back the hooks that were there before :meth:`install`."""
        if not self._installed:
            return
        if sys.excepthook == self._sys_hook:
            sys.excepthook = self._previous_sys
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread
        self._installed = False

    def report(self, exc: BaseException) -> None:
        """Log ``exc`` and show it to the user (from any thread); background jobs call this."""
        if is_silent(exc):
            log.debug("cancelled: %s", exc)
            return
        if isinstance(exc, WildIdError):
            log.warning("%s: %s", type(exc).__name__, exc, exc_info=(type(exc), exc, exc.__traceback__))
        else:
            log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
        if QApplication.instance() is None:
            return
        self._report.emit(exc)

    def _sys_hook(self, exc_type: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous_sys(exc_type, exc, tb)
            return
        if exc.__traceback__ is None and tb is not None:
            exc = exc.with_traceback(tb)
        self.report(exc)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        self.report(args.exc_value)

    @Slot(object)
    def _show(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.shown.append(message)
        if self._showing:  # never stack dialogs: the first one is enough, the log has the rest
            return
        self._showing = True
        try:
            box = QMessageBox(self.parent_widget)
            box.setWindowTitle("wildid")
            if isinstance(exc, WildIdError):
                box.setIcon(QMessageBox.Icon.Warning)
                # our messages are written to follow "wildid: error: " on a terminal
                box.setText(message[:1].upper() + message[1:])
            else:
                box.setIcon(QMessageBox.Icon.Critical)
                box.setText("Something went wrong, but your catalog is safe and wildid "
                            "keeps running.")
                where = f"\n\nDetails were written to {self.log_file}." if self.log_file else ""
                box.setInformativeText(f"{type(exc).__name__}: {message}{where}")
                box.setDetailedText("".join(
                    traceback.format_exception(type(exc), exc, exc.__traceback__)))
            box.setStandardButtons(QMessageBox.StandardButton.Ok)
            box.exec()
        finally:
            self._showing = False
