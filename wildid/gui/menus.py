"""The main window's menus and the help dialogs they open.

Menus call back into the window through a small protocol, so this module holds the *what*
(titles, shortcuts, order) and the window the *how*.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Protocol

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wildid import __version__
from wildid.gui.pages import PAGES


class WindowCommands(Protocol):
    """What the menus ask the window to do."""

    def new_catalog(self) -> None: ...
    def open_catalog_dialog(self) -> None: ...
    def fill_recent_menu(self, menu: QMenu) -> None: ...
    def import_photos(self) -> None: ...
    def undo(self) -> None: ...
    def redo(self) -> None: ...
    def set_reviewer_name(self) -> None: ...
    def show_page(self, key: str) -> bool: ...
    def open_log_folder(self) -> None: ...
    def refit_scores(self) -> None: ...
    def reset_scores(self) -> None: ...
    def find_data_strips(self) -> None: ...
    def backup_catalog(self) -> None: ...
    def check_installation(self) -> None: ...


@dataclass
class Actions:
    """The window's actions, by name (tests and the shortcut list use them)."""

    new_catalog: QAction
    open_catalog: QAction
    recent_menu: QMenu
    import_photos: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    reviewer: QAction
    pages: dict[str, QAction] = field(default_factory=dict)
    review_menu: QMenu | None = None  # filled with the Review page's actions by the window
    about: QAction | None = None
    shortcuts: QAction | None = None
    log_folder: QAction | None = None
    refit_scores: QAction | None = None
    reset_scores: QAction | None = None
    find_strips: QAction | None = None
    backup: QAction | None = None
    check_install: QAction | None = None


def _action(window: QMainWindow, text: str, *shortcuts: QKeySequence | str,
            tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcuts:
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
    if tip:
        action.setStatusTip(tip)
    return action


def build_menus(window: QMainWindow, commands: WindowCommands) -> Actions:
    """Create the File, Edit, View, Review, Tools and Help menus on ``window``'s menu bar.

    The Review menu is left empty: the window fills it with the Review page's own actions
    (:func:`fill_review_menu`), which exist only once that page does.
    """
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    # Not Ctrl+N: the Review page uses it for "New individual", the frequent action.
    new = _action(window, "&New catalog…", "Ctrl+Shift+N",
                  tip="Create an empty catalog in a new folder")
    new.triggered.connect(commands.new_catalog)
    open_ = _action(window, "&Open catalog…", QKeySequence.StandardKey.Open,
                    tip="Open another catalog folder")
    open_.triggered.connect(commands.open_catalog_dialog)
    recent = QMenu("Open &recent", window)
    recent.aboutToShow.connect(lambda: commands.fill_recent_menu(recent))
    import_ = _action(window, "&Import photos…", "Ctrl+I",
                      tip="Add a folder of photos and import it")
    import_.triggered.connect(commands.import_photos)
    quit_ = _action(window, "&Quit", QKeySequence.StandardKey.Quit)
    quit_.setMenuRole(QAction.MenuRole.QuitRole)
    quit_.triggered.connect(window.close)
    for item in (new, open_):
        file_menu.addAction(item)
    file_menu.addMenu(recent)
    file_menu.addSeparator()
    file_menu.addAction(import_)
    file_menu.addSeparator()
    file_menu.addAction(quit_)

    edit_menu = bar.addMenu("&Edit")
    undo = _action(window, "&Undo", QKeySequence.StandardKey.Undo)
    undo.triggered.connect(commands.undo)
    redo = _action(window, "&Redo", "Ctrl+Shift+Z", "Ctrl+Y")
    redo.triggered.connect(commands.redo)
    reviewer = _action(window, "Reviewer &name…",
                       tip="The name recorded with each of your review decisions")
    reviewer.triggered.connect(commands.set_reviewer_name)
    edit_menu.addAction(undo)
    edit_menu.addAction(redo)
    edit_menu.addSeparator()
    edit_menu.addAction(reviewer)

    actions = Actions(new, open_, recent, import_, quit_, undo, redo, reviewer)
    actions.backup = _action(
        window, "&Back up catalog…",
        tip="Copy the catalog (database and originals) into a folder, consistently while the "
            "app runs; again into the same folder, only what is new (wildid backup)")
    actions.backup.triggered.connect(commands.backup_catalog)
    file_menu.insertAction(quit_, actions.backup)
    file_menu.insertSeparator(quit_)
    view_menu = bar.addMenu("&View")
    group = QActionGroup(window)
    for number, spec in enumerate(PAGES, start=1):
        page_action = _action(window, f"&{spec.title}", f"Ctrl+{number}", tip=spec.tooltip)
        page_action.setCheckable(True)
        page_action.triggered.connect(lambda _checked=False, key=spec.key: commands.show_page(key))
        group.addAction(page_action)
        view_menu.addAction(page_action)
        actions.pages[spec.key] = page_action

    actions.review_menu = bar.addMenu("&Review")
    actions.review_menu.setObjectName("reviewMenu")
    actions.review_menu.menuAction().setEnabled(False)  # until the Review page is shown

    tools_menu = bar.addMenu("&Tools")
    actions.refit_scores = _action(
        window, "&Refit match scores from my decisions…",
        tip="Fit how match scores and \u201clikely new\u201d are computed on the matches confirmed "
            "in this catalog (wildid calibrate)")
    actions.refit_scores.triggered.connect(commands.refit_scores)
    actions.reset_scores = _action(window, "Use the &shipped match scores",
                                   tip="Forget the refitted scores (wildid calibrate --reset)")
    actions.reset_scores.triggered.connect(commands.reset_scores)
    actions.find_strips = _action(
        window, "Find camera &data strips in older photos…",
        tip="Keep a trail camera's printed bar of text out of the boxes of photos imported "
            "before wildid looked for it (wildid find-strips)")
    actions.find_strips.triggered.connect(commands.find_data_strips)
    tools_menu.addAction(actions.refit_scores)
    tools_menu.addAction(actions.reset_scores)
    tools_menu.addSeparator()
    tools_menu.addAction(actions.find_strips)

    help_menu = bar.addMenu("&Help")
    actions.shortcuts = _action(window, "&Keyboard shortcuts", "Ctrl+/")
    actions.shortcuts.triggered.connect(lambda: ShortcutsDialog(window).exec())
    actions.log_folder = _action(window, "Open &log folder",
                                 tip="Where wildid writes what it did and any errors")
    actions.log_folder.triggered.connect(commands.open_log_folder)
    actions.about = _action(window, "&About wildid")
    actions.about.setMenuRole(QAction.MenuRole.AboutRole)
    actions.about.triggered.connect(lambda: show_about(window))
    actions.check_install = _action(
        window, "&Check installation…",
        tip="Identify generated photos in a throwaway catalog with every model in use, and "
            "say which step fails (wildid self-test)")
    actions.check_install.triggered.connect(commands.check_installation)
    for item in (actions.shortcuts, actions.log_folder, actions.check_install):
        help_menu.addAction(item)
    help_menu.addSeparator()
    help_menu.addAction(actions.about)
    return actions


def fill_review_menu(menu: QMenu, sections: list[list[QAction]] | None) -> None:
    """List the Review page's actions (the same objects: keys, state and checks agree).

    ``sections`` are separated by lines; None when there is no Review page in this build.
    """
    menu.clear()
    if sections is None:
        menu.addAction("The Review page is not available in this version").setEnabled(False)
        return
    for section in (s for s in sections if s):
        if not menu.isEmpty():
            menu.addSeparator()
        for action in section:
            menu.addAction(action)


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent, "About wildid",
        f"<h3>wildid {__version__}</h3>"
        "<p>Photo-identification of individual animals from their natural markings: "
        "offline first, with a shared community catalog.</p>"
        "<p>Licensed under the Apache License 2.0.</p>"
        f"<p style='color:#5d6b62'>Qt for Python {pyside_version} · Python "
        f"{platform.python_version()} · {platform.system()}</p>")


def shortcut_list(root: QWidget) -> list[tuple[str, str]]:
    """Every (action, keys) under ``root`` that has a shortcut, menus and pages alike."""
    seen: set[tuple[str, str]] = set()
    rows: list[tuple[str, str]] = []
    for action in root.findChildren(QAction):
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                         for s in action.shortcuts())
        name = action.text().replace("&", "").rstrip("…").strip()
        if keys and name and (name, keys) not in seen:
            seen.add((name, keys))
            rows.append((name, keys))
    for shortcut in root.findChildren(QShortcut):
        keys = shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)
        name = shortcut.whatsThis() or shortcut.objectName()
        if keys and name and (name, keys) not in seen:
            seen.add((name, keys))
            rows.append((name, keys))
    return rows


class ShortcutsDialog(QDialog):
    """A table of every keyboard shortcut the window and its pages define."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_list(window)
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for row, (name, keys) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(name))
            table.setItem(row, 1, QTableWidgetItem(keys))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.table = table
        self.resize(440, 480)
        self.setWindowModality(Qt.WindowModality.WindowModal)
