"""The app shell: window, menus, shortcuts, pages, catalogs, settings, errors, jobs."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from wildid.catalog import open_catalog
from wildid.errors import Cancelled, ReviewError
from wildid.gui.jobs import JobState
from wildid.gui.settings import Settings


def _keys(action: Any) -> list[str]:
    return [s.toString(QKeySequence.SequenceFormat.PortableText) for s in action.shortcuts()]


def test_main_window_shows_catalog_pages_and_menus(main_window: Any, services: Any) -> None:
    assert main_window.isVisible()
    assert str(services.catalog.root) in main_window.windowTitle()
    menus = [a.text().replace("&", "") for a in main_window.menuBar().actions()]
    assert menus == ["File", "Edit", "View", "Review", "Tools", "Help"]
    actions = main_window.menu_actions
    assert _keys(actions.new_catalog) == ["Ctrl+Shift+N"]
    assert _keys(actions.import_photos) == ["Ctrl+I"]
    assert _keys(actions.undo) == ["Ctrl+Z"]
    assert _keys(actions.redo) == ["Ctrl+Shift+Z", "Ctrl+Y"]
    assert _keys(actions.quit) == [QKeySequence(QKeySequence.StandardKey.Quit).toString()]
    assert [_keys(actions.pages[k]) for k in ("import", "review", "individuals", "encounters")] \
        == [["Ctrl+1"], ["Ctrl+2"], ["Ctrl+3"], ["Ctrl+4"]]
    # Nothing to undo yet: the Edit menu says so.
    assert not actions.undo.isEnabled() and not actions.redo.isEnabled()
    # Our own pages are always there.
    assert main_window.nav.available("import") and main_window.nav.available("encounters")


def test_view_shortcuts_switch_pages(main_window: Any, qtbot: Any) -> None:
    main_window.activateWindow()
    qtbot.keyClick(main_window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert main_window.nav.current_key() == "encounters"
    assert main_window.nav.stack.currentWidget() is main_window.page("encounters")
    qtbot.keyClick(main_window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert main_window.nav.current_key() == "import"
    assert main_window.menu_actions.pages["import"].isChecked()


def test_missing_page_module_disables_its_entry(qtbot: Any, services: Any, monkeypatch: Any) -> None:
    import wildid.gui.pages as pages
    from wildid.gui.main_window import MainWindow

    real = pages.importlib.import_module

    def without_review(name: str) -> Any:
        if name == "wildid.gui.review_page":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name)

    monkeypatch.setattr(pages.importlib, "import_module", without_review)
    window = MainWindow(services)
    qtbot.addWidget(window)
    assert not window.nav.available("review")
    assert not window.menu_actions.pages["review"].isEnabled()
    item = window.nav.list.item(1)
    assert not item.flags() & Qt.ItemFlag.ItemIsEnabled
    assert window.show_page("review") is False
    window.review_encounters(["x"])  # no Review page: a status message, nothing breaks
    assert window.nav.current_key() != "review"


def test_undo_menu_follows_the_undo_stack(main_window: Any, services: Any) -> None:
    from wildid.review import Changes

    class FakeOp:
        label = "Confirm as Stripe"
        changes = Changes(encounters=frozenset({"e1"}))
        applied, is_noop = True, False
        reverted = 0

        def revert(self, _catalog: Any) -> Changes:
            self.applied = False
            return self.changes

        def reapply(self, _catalog: Any) -> Changes:
            self.applied = True
            return self.changes

    seen: list[Any] = []
    services.data_changed.connect(seen.append)
    services.push(FakeOp())
    assert main_window.menu_actions.undo.isEnabled()
    assert main_window.menu_actions.undo.text() == "&Undo Confirm as Stripe"
    main_window.menu_actions.undo.trigger()
    assert main_window.menu_actions.redo.text() == "&Redo Confirm as Stripe"
    assert not main_window.menu_actions.undo.isEnabled()
    main_window.menu_actions.redo.trigger()
    assert main_window.menu_actions.undo.isEnabled()
    assert len(seen) == 3 and all(c.encounters == {"e1"} for c in seen)


def test_layout_and_page_are_remembered(qtbot: Any, services: Any, settings: Settings,
                                        tmp_path: Path) -> None:
    from wildid.gui.main_window import MainWindow

    window = MainWindow(services)
    qtbot.addWidget(window)
    window.resize(780, 560)  # the offscreen screen is 800x600: a restored window must fit
    window.show_page("encounters")
    window.save_layout()
    # A fresh Settings object reads the INI file back: the values really were persisted.
    reread = Settings()
    assert reread.current_page == "encounters"
    assert reread.window_geometry is not None
    again = MainWindow(services)
    qtbot.addWidget(again)
    assert again.nav.current_key() == "encounters"
    assert (again.width(), again.height()) == (780, 560)


def test_settings_round_trip(settings: Settings, tmp_path: Path) -> None:
    settings.reviewer_name = "  Ana  "
    settings.review_order = "oldest"
    settings.import_reference_in_place = True
    settings.import_burst_gap_s = 12.5
    for i in range(12):
        settings.add_recent_catalog(tmp_path / f"cat{i}")
    settings.add_recent_catalog(tmp_path / "cat3")
    settings.sync()
    again = Settings()
    assert again.reviewer_name == "Ana"
    assert again.review_order == "oldest"
    assert again.import_reference_in_place is True
    assert again.import_burst_gap_s == 12.5
    recent = again.recent_catalogs
    assert len(recent) == 8 and recent[0] == str((tmp_path / "cat3").resolve())
    assert len(set(recent)) == len(recent)
    with pytest.raises(ValueError):
        again.review_order = "random"
    # The file lives in the isolated test folder, not the developer's config.
    assert "qsettings" in again.store.fileName()


def test_open_and_new_catalog_switch_services(main_window: Any, tmp_path: Path, dialogs: Any) -> None:
    first = main_window.services
    other = tmp_path / "other"
    dialogs.save_paths.append(str(other))
    main_window.menu_actions.new_catalog.trigger()
    assert main_window.services is not first
    assert main_window.services.catalog.root == other.resolve()
    assert str(other.resolve()) in main_window.windowTitle()
    assert main_window.page("import").services is main_window.services
    # Back to the first one through the recent list.
    main_window.fill_recent_menu(main_window.menu_actions.recent_menu)
    entries = [a for a in main_window.menu_actions.recent_menu.actions() if a.isEnabled()]
    assert str(first.catalog.root) in [a.text() for a in entries]
    dialogs.folders.append(str(first.catalog.root))
    main_window.menu_actions.open_catalog.trigger()
    assert main_window.services.catalog.root == first.catalog.root


def test_only_work_a_person_would_miss_is_asked_about_before_stopping(
        main_window: Any, services: Any, dialogs: Any, qtbot: Any) -> None:
    """The app reopens on the Encounters page and loads its table in the background; closing
    it soon after asked whether to stop "Loading encounters". Such work is stopped without a
    question now; work that changes or copies something is still asked about, by name."""
    def wait_until_cancelled(progress: Any = None, cancel: Any = None) -> None:
        while not cancel.cancelled:
            time.sleep(0.01)
        raise Cancelled()

    loading = services.jobs.submit("Loading encounters", wait_until_cancelled, writes=False,
                                   disposable=True)
    assert main_window._stop_jobs("Quitting") is True
    assert dialogs.shown == []
    qtbot.waitUntil(lambda: not loading.state.active, timeout=5000)

    services.jobs.submit("Loading encounters", wait_until_cancelled, writes=False,
                         disposable=True)
    backup = services.jobs.submit("Backing up the catalog", wait_until_cancelled,
                                  writes=False, report_errors=False)
    dialogs.question_answer = QMessageBox.StandardButton.No
    assert main_window._stop_jobs("Quitting") is False
    assert dialogs.shown == [("question", "Quitting stops the work still running (Backing up "
                                          "the catalog). What is done so far is kept. Stop it?")]
    assert backup.state.active
    dialogs.question_answer = QMessageBox.StandardButton.Yes
    assert main_window._stop_jobs("Quitting") is True
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=5000)


def _newer_catalog(root: Path) -> Path:
    """A catalog stamped with a schema revision this wildid does not know (a newer one)."""
    import sqlite3

    open_catalog(root).close()
    with sqlite3.connect(root / "catalog.sqlite") as db:
        db.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
    return root


def test_newer_catalog_is_refused_and_current_kept(main_window: Any, tmp_path: Path,
                                                   dialogs: Any) -> None:
    newer = _newer_catalog(tmp_path / "newer")
    before = main_window.services
    assert main_window.open_catalog(newer) is False
    assert main_window.services is before
    assert before.catalog.meta("catalog_id")  # still open and working
    assert any("newer wildid" in text for text in dialogs.texts_of("warning"))


def test_help_menu_lists_shortcuts_and_about(main_window: Any, dialogs: Any) -> None:
    from wildid.gui.menus import shortcut_list

    rows = dict(shortcut_list(main_window))
    assert rows["Import photos"] == QKeySequence("Ctrl+I").toString(
        QKeySequence.SequenceFormat.NativeText)
    assert "Encounters" in rows
    main_window.menu_actions.shortcuts.trigger()
    main_window.menu_actions.about.trigger()
    assert dialogs.kinds() == ["dialog", "about"]
    assert "wildid" in dialogs.shown[1][1]


def test_reviewer_name_dialog(main_window: Any, dialogs: Any, settings: Settings) -> None:
    dialogs.texts.append("Mpho")
    main_window.menu_actions.reviewer.trigger()
    assert settings.reviewer_name == "Mpho"
    assert main_window.services.reviewer == "Mpho"
    assert "Mpho" in main_window.reviewer_label.text()


# ---------------------------------------------------------------- errors ------------------

@pytest.mark.qt_no_exception_capture
def test_exception_in_a_slot_shows_dialog_and_app_keeps_running(
        qtbot: Any, error_handler: Any, dialogs: Any, tmp_path: Path, request: Any) -> None:
    from wildid.gui.errors import LOG_NAME, remove_logging, setup_logging

    error_handler.log_file = setup_logging(folder=tmp_path / "logs")
    error_handler.install()
    request.addfinalizer(lambda: remove_logging(error_handler.log_file))
    button = QPushButton("boom")
    qtbot.addWidget(button)
    clicks: list[int] = []

    def broken_slot() -> None:
        clicks.append(1)
        raise RuntimeError("the slot broke")

    button.clicked.connect(broken_slot)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialogs.shown) == 1)
    kind, text = dialogs.shown[0]
    assert kind == "box" and "RuntimeError: the slot broke" in text
    assert str(tmp_path / "logs" / LOG_NAME) in text
    # Still alive: the event loop runs and the same slot fires again.
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialogs.shown) == 2)
    assert len(clicks) == 2
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "the slot broke" in (tmp_path / "logs" / LOG_NAME).read_text()


@pytest.mark.qt_no_exception_capture
def test_user_errors_are_plain_and_cancelled_is_silent(qtbot: Any, error_handler: Any,
                                                       dialogs: Any) -> None:
    error_handler.install()
    sys.excepthook(Cancelled, Cancelled("stop"), None)
    sys.excepthook(ReviewError, ReviewError("That name is already taken"), None)
    qtbot.waitUntil(lambda: len(dialogs.shown) == 1)
    QApplication.processEvents()
    assert dialogs.shown == [("box", "That name is already taken")]  # no traceback text


@pytest.mark.qt_no_exception_capture
def test_exception_in_a_worker_thread_is_shown_on_the_gui_thread(
        qtbot: Any, error_handler: Any, dialogs: Any, monkeypatch: Any) -> None:
    error_handler.install()
    shown_on: list[bool] = []
    real_show = error_handler._show

    def spy(exc: BaseException) -> None:
        shown_on.append(threading.current_thread() is threading.main_thread())
        real_show(exc)

    monkeypatch.setattr(error_handler, "_show", spy)
    error_handler._report.disconnect()
    error_handler._report.connect(spy, Qt.ConnectionType.QueuedConnection)
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(dialogs.shown) == 1)
    assert "ZeroDivisionError" in dialogs.shown[0][1]
    assert shown_on == [True]


def test_uninstall_restores_previous_hooks(error_handler: Any) -> None:
    before = (sys.excepthook, threading.excepthook)
    error_handler.install()
    assert sys.excepthook != before[0]
    error_handler.uninstall()
    assert (sys.excepthook, threading.excepthook) == before


# ---------------------------------------------------------------- jobs --------------------

def test_job_reports_progress_result_and_shows_in_status_bar(main_window: Any, services: Any,
                                                             qtbot: Any) -> None:
    from wildid.progress import ProgressReporter

    gate = threading.Event()

    def work(progress: Any = None, cancel: Any = None) -> str:
        reporter = ProgressReporter("Counting", 3, progress, cancel)
        for _ in range(3):
            gate.wait(5)
            reporter.advance()
        return f"done in {threading.current_thread().name}"

    job = services.jobs.submit("Counting sheep", work)
    strip = main_window._jobs_widget
    qtbot.waitUntil(lambda: len(strip.rows) == 1)
    assert strip.isVisible() and strip.rows[0].label.text().startswith("Counting sheep")
    updates: list[Any] = []
    job.progressed.connect(updates.append)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        gate.set()
    assert job.state is JobState.SUCCEEDED
    assert job.result.startswith("done in job: Counting sheep")  # ran off the GUI thread
    assert updates and updates[-1].done == 3
    qtbot.waitUntil(lambda: not strip.rows)
    assert not strip.isVisible()


def test_job_cancel_button_stops_the_job(main_window: Any, services: Any, qtbot: Any) -> None:
    def work(progress: Any = None, cancel: Any = None) -> None:
        while True:
            cancel.raise_if_cancelled()
            time.sleep(0.01)

    job = services.jobs.submit("Endless", work)
    strip = main_window._jobs_widget
    qtbot.waitUntil(lambda: len(strip.rows) == 1)
    with qtbot.waitSignal(job.cancelled, timeout=10_000):
        qtbot.mouseClick(strip.rows[0].cancel_button, Qt.MouseButton.LeftButton)
    assert job.state is JobState.CANCELLED


def test_failed_job_goes_to_the_error_handler(services: Any, qtbot: Any, dialogs: Any) -> None:
    def work(progress: Any = None, cancel: Any = None) -> None:
        raise ReviewError("no such thing")

    job = services.jobs.submit("Failing", work)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        pass
    assert job.state is JobState.FAILED and isinstance(job.error, ReviewError)
    # our messages are lowercase for "wildid: error: "; a dialog shows them in sentence case
    qtbot.waitUntil(lambda: dialogs.shown == [("box", "No such thing")])


def test_writers_run_one_at_a_time_readers_beside_them(services: Any, qtbot: Any) -> None:
    running: list[str] = []
    overlaps: list[set[str]] = []
    lock = threading.Lock()

    def work(name: str) -> Any:
        def run(progress: Any = None, cancel: Any = None) -> None:
            with lock:
                running.append(name)
                overlaps.append(set(running))
            time.sleep(0.15)
            with lock:
                running.remove(name)
        return run

    jobs = [services.jobs.submit("w1", work("w1")), services.jobs.submit("w2", work("w2")),
            services.jobs.submit("r1", work("r1"), writes=False)]
    qtbot.waitUntil(lambda: all(not j.state.active for j in jobs), timeout=10_000)
    assert not any({"w1", "w2"} <= seen for seen in overlaps)
    assert any("r1" in seen and len(seen) > 1 for seen in overlaps)


def _record_emitting_threads(obj: Any, seen: set[str]) -> None:
    """Connect a direct probe to every signal ``obj``'s class declares (private ones too)."""
    from PySide6.QtCore import QMetaMethod

    meta = obj.metaObject()
    for i in range(meta.methodOffset(), meta.methodCount()):
        method = meta.method(i)
        if method.methodType() == QMetaMethod.MethodType.Signal:
            name = bytes(method.name().data()).decode()
            getattr(obj, name).connect(
                lambda *_a, n=name: seen.add(f"{n} in {threading.current_thread().name}"),
                Qt.ConnectionType.DirectConnection)


def test_workers_never_emit_on_jobs_or_the_runner(services: Any, qtbot: Any) -> None:
    """Qt frees a sender's disconnected connections during its next emit, in the emitting
    thread. Jobs and the runner carry connections to lambdas that capture widgets, so a worker
    emitting on them could destroy a widget outside the GUI thread (the CI segfault): every
    signal of theirs must be emitted on the GUI thread, whatever the job's outcome."""
    gate = threading.Event()

    def blocker(progress: Any = None, cancel: Any = None) -> None:
        gate.wait(10)

    def fine(progress: Any = None, cancel: Any = None) -> int:
        from wildid.progress import ProgressReporter

        reporter = ProgressReporter("Working", 2, progress, cancel)
        reporter.advance()
        reporter.advance()
        return 1

    def failing(progress: Any = None, cancel: Any = None) -> None:
        raise ReviewError("boom")

    seen: set[str] = set()
    _record_emitting_threads(services.jobs, seen)
    first = services.jobs.submit("Blocker", blocker)
    jobs = [services.jobs.submit("Fine", fine), services.jobs.submit("Failing", failing,
                                                                      report_errors=False),
            services.jobs.submit("Cancelled", fine)]
    for job in [first, *jobs]:  # the worker cannot have started these yet: the gate is shut
        _record_emitting_threads(job, seen)
    jobs[2].cancel()
    gate.set()
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=10_000)
    assert [j.state for j in jobs] == [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]
    main = threading.current_thread().name
    assert seen and all(entry.endswith(f" in {main}") for entry in seen), sorted(seen)
    assert {"started in " + main, "progressed in " + main, "finished in " + main} <= seen


def test_run_starts_the_app_and_returns_when_the_window_closes(tmp_path: Path, qapp: Any,
                                                               monkeypatch: Any) -> None:
    from wildid.gui import app as app_module

    before = sys.excepthook
    sigint = signal.getsignal(signal.SIGINT)
    closed: list[str] = []

    def close_soon() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if w.objectName() == "MainWindow" and w.isVisible()]
        closed.extend(w.windowTitle() for w in windows)
        for w in windows:
            w.close()
        if not windows:
            QTimer.singleShot(50, close_soon)

    QTimer.singleShot(100, close_soon)
    code = app_module.run(tmp_path / "started")
    assert code == 0
    assert closed and str((tmp_path / "started").resolve()) in closed[0]
    assert (tmp_path / "started" / "catalog.sqlite").exists()
    assert sys.excepthook == before  # run() leaves no hooks or log handlers behind
    assert signal.getsignal(signal.SIGINT) is sigint
    assert not [h for h in logging.getLogger().handlers if hasattr(h, "_wildid_file_handler")]
    assert (Path(os.environ["WILDID_HOME"]) / "logs" / "wildid.log").exists()
    assert qapp.organizationName() == "wildid" and qapp.applicationName() == "wildid"
    assert not qapp.windowIcon().isNull()


def test_ctrl_z_works_while_a_page_has_focus(main_window: Any, services: Any, qtbot: Any) -> None:
    """A page binding Ctrl+Z itself would make the shortcut ambiguous (Qt then fires neither)."""
    from PySide6.QtGui import QAction

    from wildid.review import Changes

    page = main_window.page("encounters")
    clash = QAction("page undo", page)
    clash.setShortcuts([QKeySequence("Ctrl+Z"), QKeySequence("Alt+U")])
    clash.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    page.addAction(clash)
    main_window._resolve_shortcut_conflicts()
    assert _keys(clash) == ["Alt+U"]

    class Op:
        label, changes, is_noop, applied = "Rename", Changes(individuals=frozenset({"i"})), False, True

        def revert(self, _c: Any) -> Changes:
            self.applied = False
            return self.changes

    op = Op()
    services.push(op)
    main_window.show_page("encounters")
    page.table.setFocus()  # not a text field: those keep Ctrl+Z for their own text
    main_window.activateWindow()
    qtbot.keyClick(page.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert op.applied is False


def test_run_refuses_a_newer_catalog_at_start(tmp_path: Path, qapp: Any, dialogs: Any) -> None:
    import sqlite3

    from wildid.gui import app as app_module

    root = _newer_catalog(tmp_path / "from-the-future")
    assert app_module.run(root) == 2  # the user closed the message instead of choosing another
    assert dialogs.kinds() == ["box"] and "newer wildid" in dialogs.shown[0][1]
    with sqlite3.connect(root / "catalog.sqlite") as db:  # nothing was changed
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("from_the_future",)


def test_without_a_display_the_app_says_so_instead_of_aborting(tmp_path: Path) -> None:
    """On Linux with no desktop session Qt aborted the process (a core dump) naming a missing
    library. ``wildid`` now says there is no display and how to go on, and exits 2."""
    import subprocess

    from wildid.gui.app import no_display_reason

    assert "no display" in no_display_reason({}, "linux")
    assert no_display_reason({"DISPLAY": ":0"}, "linux") is None
    assert no_display_reason({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert no_display_reason({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert no_display_reason({}, "darwin") is None and no_display_reason({}, "win32") is None
    if not sys.platform.startswith("linux"):
        return
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(HOME=str(tmp_path), WILDID_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "wildid", "--catalog", str(tmp_path / "c")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    assert "no display to open the app on" in out.stderr and "xvfb-run" in out.stderr
    assert not (tmp_path / "c").exists()  # nothing was created for a window never shown


def test_file_menu_backs_the_catalog_up_in_the_background(main_window: Any, services: Any,
                                                          qtbot: Any, tmp_path: Path) -> None:
    """File → Back up catalog…: no folder chosen, nothing runs; a folder chosen, the catalog
    is copied there by a background job and the report says what was copied; the copy opens
    as a catalog with the same photos. A folder holding other files is refused, said."""
    from tests.gui.review_data import ScriptedPrompts
    from tests.photofactory import make_shot
    from wildid.ingest.importer import ImportOptions, run_import

    shots = [make_shot(tmp_path / f"p{i}.jpg", 320, 240, seed=i + 1).path for i in range(3)]
    run_import(services.catalog, shots, ImportOptions(species="zebra", workers=1))
    target = tmp_path / "backup"
    main_window.prompts = ScriptedPrompts(choices=[None, str(target)])
    action = main_window.menu_actions.backup
    assert action.text() == "&Back up catalog…"
    action.trigger()
    assert main_window.prompts.asked == ["Back up catalog"] and not services.jobs.active_jobs
    with qtbot.waitSignal(main_window.catalog_backup.finished, timeout=30_000) as done:
        action.trigger()
    assert (done.args[0].photos, done.args[0].copied) == (3, 3)
    title, text = main_window.prompts.informed[-1]
    assert title == "Back up catalog" and text.startswith(f"Backed up to {target}")
    with open_catalog(target, create=False) as copy, copy.session() as s:
        from sqlalchemy import func, select

        from wildid.catalog.models import Photo

        assert s.scalar(select(func.count()).select_from(Photo)) == 3

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    main_window.prompts.choices = [str(busy)]
    action.trigger()
    qtbot.waitUntil(lambda: bool(main_window.prompts.errors), timeout=30_000)
    assert "holds other files" in main_window.prompts.errors[-1]


def test_help_menu_checks_the_installation_in_the_background(main_window: Any, services: Any,
                                                            qtbot: Any) -> None:
    """Help → Check installation…: `wildid self-test` as a background job (the open catalog is
    not touched), then a report of every step."""
    from tests.gui.review_data import ScriptedPrompts

    main_window.prompts = ScriptedPrompts()
    action = main_window.menu_actions.check_install
    assert action.text() == "&Check installation…"
    action.trigger()
    tool = main_window.install_check
    assert tool.busy and tool.start() is None  # one check at a time
    # its end reaches the window through the event loop, which only the wait runs
    with qtbot.waitSignal(tool.finished, timeout=60_000) as done:
        pass
    assert done.args[0].ok
    title, text = main_window.prompts.informed[-1]
    assert title == "Installation check"
    assert text.startswith("wildid identifies animals on this computer.")
    assert "identify (lion profile)" in text
    assert services.catalog.meta("catalog_id")  # the open catalog, still there and unchanged
