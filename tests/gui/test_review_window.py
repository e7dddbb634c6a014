"""The Review page inside the real main window: shortcuts bound once, the Review menu, one
Undo for the whole window, and an action bar that fits small laptop screens."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import QMenu
from sqlalchemy import select

from tests.gui.review_data import ScriptedPrompts, build_world, make_settings, state_of
from wildid.catalog.models import Decision
from wildid.gui.main_window import MainWindow
from wildid.gui.review_actions import ACTIONS
from wildid.gui.services import Services


def _keys(action: QAction) -> list[str]:
    return [s.toString(QKeySequence.SequenceFormat.PortableText) for s in action.shortcuts()
            if not s.isEmpty()]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Any]:
    w = build_world(tmp_path)
    yield w
    w.catalog.close()


@pytest.fixture
def window(qtbot: Any, world: Any, tmp_path: Path, error_handler: Any) -> Iterator[MainWindow]:
    """The main window on the review world, showing the Review page with its first encounter."""
    services = Services(world.catalog, make_settings(tmp_path), error_handler.report)
    win = MainWindow(services, error_handler)
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    qtbot.waitExposed(win)
    win.page("review").prompts = ScriptedPrompts(texts=["Spot"])
    win.show_page("review")
    settle(qtbot, win.page("review"))
    yield win
    win.close()


def settle(qtbot: Any, page: Any) -> None:
    def ready() -> bool:
        return (page.state() == "review" and not page.is_loading()
                and all(v.placeholder_message != "Loading…" for v in (page.pair.left,
                                                                      page.pair.right)))
    qtbot.waitUntil(ready, timeout=10_000)


def focus_review(qtbot: Any, win: MainWindow) -> Any:
    page = win.page("review")
    win.activateWindow()
    page.setFocus()
    qtbot.waitUntil(page.hasFocus, timeout=2000)
    return page


def verdicts(world: Any, encounter_id: str) -> list[str]:
    with world.catalog.session() as s:
        rows = s.scalars(select(Decision).where(Decision.encounter_id == encounter_id)
                         .order_by(Decision.decided_at, Decision.id))
        return [d.verdict for d in rows]


def _menu_actions(menu: QMenu) -> Iterator[QAction]:
    for action in menu.actions():
        sub = action.menu()
        if sub is not None:
            yield from _menu_actions(sub)
        elif not action.isSeparator():
            yield action


# ------------------------------------------------------------------ shortcuts ------------

def test_every_shortcut_is_bound_to_one_action_only(qtbot: Any, window: MainWindow) -> None:
    """Qt fires neither of two active actions sharing a key, so each key has one action."""
    for key in ("import", "individuals", "encounters", "review"):  # every page built and shown
        window.show_page(key)
        qtbot.wait(10)
    bound: dict[str, list[str]] = defaultdict(list)
    for action in window.findChildren(QAction):
        for key in _keys(action):
            bound[key].append(f"{action.text()!r} on {action.parent().objectName()}")
    clashes = {key: names for key, names in bound.items() if len(names) > 1}
    assert clashes == {}
    # Nothing was resolved by dropping keys: each review action has the keys it declares.
    page = window.page("review")
    for spec in ACTIONS:
        if not spec.window_action:
            assert _keys(page.actions_by_key[spec.key]) == [
                QKeySequence(k).toString() for k in spec.shortcuts], spec.key
    assert len(bound["Ctrl+Z"]) == 1 and len(bound["Ctrl+N"]) == 1


def test_ctrl_n_is_new_individual_and_ctrl_shift_n_a_new_catalog(
        qtbot: Any, window: MainWindow, world: Any) -> None:
    assert _keys(window.menu_actions.new_catalog) == ["Ctrl+Shift+N"]
    page = focus_review(qtbot, window)
    first = page.current_encounter_id()
    qtbot.keyClick(page, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert page.prompts.asked == ["New individual"]
    assert state_of(world.catalog, first)[0] == "confirmed"  # a new individual "Spot"
    with qtbot.waitSignal(window.menu_actions.new_catalog.triggered, timeout=1000):
        qtbot.keyClick(page, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier
                       | Qt.KeyboardModifier.ShiftModifier)
    assert page.prompts.asked == ["New individual"]  # not asked again


def test_undo_on_the_review_page_is_edit_undo_and_runs_once(
        qtbot: Any, window: MainWindow, world: Any) -> None:
    edit = window.menu_actions
    page = window.page("review")
    # The page lends nothing of its own for undo: its keys and buttons are Edit's actions.
    assert page.actions_by_key["undo"] is edit.undo and page.actions_by_key["redo"] is edit.redo
    assert [a for a in window.findChildren(QAction) if "Ctrl+Z" in _keys(a)] == [edit.undo]
    undo_button = page.action_bar.button("undo")
    assert not undo_button.isEnabled()

    stripe = world.queries["q_stripe"]
    page = focus_review(qtbot, window)
    qtbot.keyClick(page, Qt.Key.Key_Y)
    assert verdicts(world, stripe) == ["match"]
    assert undo_button.isEnabled() and "Ctrl+Z" in undo_button.toolTip()
    settle(qtbot, page)
    focus_review(qtbot, window)
    qtbot.keyClick(page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert verdicts(world, stripe) == ["match", "revert"]  # undone exactly once
    assert state_of(world.catalog, stripe) == ("unreviewed", None)
    qtbot.waitUntil(lambda: page.current_encounter_id() == stripe, timeout=5000)
    qtbot.keyClick(page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert verdicts(world, stripe) == ["match", "revert", "match"]
    undo_button.click()  # the bar's button is Edit > Undo as well
    assert verdicts(world, stripe) == ["match", "revert", "match", "revert"]
    qtbot.keyClick(page, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # redo's other key
    assert state_of(world.catalog, stripe)[0] == "confirmed"


# ------------------------------------------------------------------ Review menu ----------

def test_review_menu_lists_the_review_actions_with_their_shortcuts(
        qtbot: Any, window: MainWindow) -> None:
    menu = window.menu_actions.review_menu
    assert menu is not None and menu.menuAction().isEnabled()
    page = window.page("review")
    listed = list(_menu_actions(menu))
    # The page's own QAction objects: keys, enabled state and checks always agree.
    for key in ("confirm", "reject", "new_individual", "unsure", "flag", "unidentifiable",
                "next_candidate", "previous_candidate", "next_encounter", "previous_encounter",
                "next_photo", "previous_photo", "toggle_matches", "sync_zoom", "edit_boxes"):
        assert page.actions_by_key[key] in listed, key
    assert all(_keys(action) for action in listed)
    # What the menu shows as the key is the one the button advertises.
    assert _keys(page.actions_by_key["confirm"])[0] == "Y"
    assert _keys(page.actions_by_key["new_individual"])[0] == "I"
    # Every key of the window, the pages' included, can be found in some menu.
    in_menus = {a for m in window.menuBar().actions() if m.menu() for a in _menu_actions(m.menu())}
    unlisted = [a.text() for a in window.findChildren(QAction) if _keys(a) and a not in in_menus]
    assert unlisted == []
    # Chosen from the menu, an entry acts on the review page.
    second = page.queue[1]
    page.actions_by_key["next_encounter"].trigger()
    assert page.current_encounter_id() == second
    # The menu works on the Review page only: elsewhere it cannot act on a hidden encounter.
    window.show_page("individuals")
    assert not menu.menuAction().isEnabled()
    window.show_page("review")
    assert menu.menuAction().isEnabled()


# ------------------------------------------------------------------ action bar -----------

@pytest.fixture
def app_look(qapp: Any) -> Iterator[None]:
    """The app's real stylesheet and palette (button paddings decide what fits)."""
    from wildid.gui import style

    sheet, palette, font = qapp.styleSheet(), qapp.palette(), qapp.font()
    style.apply(qapp)
    yield
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setFont(font)


@pytest.mark.parametrize(("width", "height", "point_size"), [
    (1366, 768, 0), (1280, 720, 0), (760, 520, 0), (1366, 768, 12)])
def test_action_bar_is_never_clipped(qtbot: Any, qapp: Any, app_look: None, window: MainWindow,
                                     width: int, height: int, point_size: int) -> None:
    if point_size:  # a desktop with a larger font
        font = QFont(qapp.font())
        font.setPointSize(point_size)
        qapp.setFont(font)
    window.resize(width, height)
    qtbot.waitUntil(lambda: window.size().width() == width, timeout=2000)
    page = window.page("review")
    bar = page.action_bar
    qtbot.wait(20)  # style sheet polish and layout requests
    inside = window.rect()
    shown = [b for b in [*bar.buttons(), bar.more] if b.isVisible()]
    rects = []
    for button in shown:
        rect = QRect(button.mapTo(window, QPoint(0, 0)), button.size())
        assert inside.contains(rect), (button.objectName(), rect, inside)
        assert button.width() == button.sizeHint().width(), button.objectName()
        assert all(not rect.intersects(other) for other in rects), button.objectName()
        rects.append(rect)
    # The primary decisions always have a button; whatever did not fit is under "More".
    for key in ("confirm", "reject", "new_individual", "unsure"):
        assert bar.button(key).isVisible(), key
    hidden = [b for b in bar.buttons() if not b.isVisible()]
    assert bar.more.isVisible() == bool(hidden)
    bar.more_menu.aboutToShow.emit()
    assert bar.more_menu.actions() == [b.action() for b in hidden]
    if (width, point_size) in ((1366, 0), (1280, 0)):
        assert hidden == []  # a 1366x768 laptop and the default 1280 px window show them all
