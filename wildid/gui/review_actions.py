"""The review page's actions: names, shortcuts and help text in one table.

Every review action has a keyboard shortcut (DESIGN.md §9) and a button; the same ``QAction``
objects are what the main window puts in its Review menu (``ReviewPage.actions()``), so a
shortcut, a button and a menu entry can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QPushButton, QWidget

__all__ = ["ACTIONS", "ActionSpec", "action_button", "make_actions", "resolve_shortcut_clashes"]


@dataclass(frozen=True)
class ActionSpec:
    key: str  # attribute suffix and objectName ("confirm" -> action "reviewConfirm")
    text: str
    shortcuts: tuple[str, ...]
    tip: str
    button: str = ""  # label on the action bar; empty = menu and keyboard only
    checkable: bool = False

    @property
    def button_text(self) -> str:
        """The bar's label with the easiest key to remember: 'Confirm (Y)'."""
        letters = [s for s in self.shortcuts if len(s) == 1]
        return f"{self.button} ({letters[0]})" if letters else self.button


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("confirm", "&Confirm match", ("Return", "Enter", "Y"),
               "The new sighting is the selected candidate individual", "Confirm"),
    ActionSpec("reject", "&Not this one", ("N", "X"),
               "The selected candidate is a different animal; show the next candidate",
               "Not this one"),
    ActionSpec("new_individual", "New &individual…", ("Ctrl+N", "I"),
               "None of the candidates: name a new individual", "New individual"),
    ActionSpec("unsure", "&Unsure, skip", ("S",),
               "Decide later: the encounter moves to the end of the queue", "Skip"),
    ActionSpec("flag", "&Flag for curator…", ("F",),
               "Ask a curator to look at this encounter", "Flag"),
    ActionSpec("unidentifiable", "Un&identifiable", ("U",),
               "The photos cannot identify the animal (blurred, hidden, wrong side)",
               "Unidentifiable"),
    ActionSpec("next_candidate", "Next candidate", ("Right", "J"), "Show the next candidate"),
    ActionSpec("previous_candidate", "Previous candidate", ("Left", "K"),
               "Show the previous candidate"),
    ActionSpec("next_encounter", "Next encounter", ("PgDown", "Down"),
               "Go to the next encounter in the queue without deciding"),
    ActionSpec("previous_encounter", "Previous encounter", ("PgUp", "Up"),
               "Go back to the previous encounter in the queue"),
    ActionSpec("next_photo", "Next photo of the encounter", ("]",),
               "Show the next photo of this burst"),
    ActionSpec("previous_photo", "Previous photo of the encounter", ("[",),
               "Show the previous photo of this burst"),
    ActionSpec("undo", "&Undo", ("Ctrl+Z",), "Undo the last review action", "Undo"),
    ActionSpec("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo the action just undone",
               "Redo"),
    ActionSpec("toggle_matches", "Show &matched points", ("M",),
               "Draw the keypoints the matcher paired between the two photos", "Matches",
               checkable=True),
    ActionSpec("sync_zoom", "&Link zoom", ("L",), "Zoom both photos together", "Link zoom",
               checkable=True),
    ActionSpec("edit_boxes", "&Edit boxes…", ("E",),
               "Draw or correct the boxes around the animal in this encounter's photos",
               "Edit boxes"),
)


def make_actions(parent: QWidget, handlers: dict[str, Callable[[], None]]) -> dict[str, QAction]:
    """Create one QAction per :data:`ACTIONS` entry, added to ``parent``.

    Shortcuts are scoped to ``parent`` and its children, so letter keys act only while the
    review page is the visible page, and never while the user types in another page's field.
    """
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, parent)
        action.setObjectName("review" + "".join(p.title() for p in spec.key.split("_")))
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        keys = " or ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText)
                           for s in spec.shortcuts)
        action.setToolTip(f"{spec.tip} ({keys})")
        action.setStatusTip(spec.tip)
        action.setCheckable(spec.checkable)
        if spec.button:  # what a tool button shows; Qt re-reads it on every action change
            action.setIconText(spec.button_text)
        handler = handlers[spec.key]
        if spec.checkable:
            action.toggled.connect(lambda _on, h=handler: h())
        else:
            action.triggered.connect(lambda _checked=False, h=handler: h())
        parent.addAction(action)
        actions[spec.key] = action
    return actions


def action_button(action: QAction) -> QPushButton:
    """A push button that mirrors ``action`` (label, tooltip, enabled, checked) and triggers it.

    Push buttons rather than tool buttons: the app's stylesheet draws disabled push buttons
    greyed, so an action that cannot apply right now visibly cannot be clicked.
    """
    button = QPushButton(action.iconText())
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setCheckable(action.isCheckable())

    def sync() -> None:
        button.setText(action.iconText())
        button.setToolTip(action.toolTip())
        button.setEnabled(action.isEnabled())
        if action.isCheckable():
            button.setChecked(action.isChecked())

    action.changed.connect(sync)
    action.toggled.connect(button.setChecked)
    button.clicked.connect(lambda _checked=False: action.trigger())
    sync()
    return button


def resolve_shortcut_clashes(page: QWidget, actions: dict[str, QAction]) -> None:
    """Give up keys the page's window already binds (its Edit > Undo, File > New...).

    Two actions with one shortcut both active make Qt fire neither ("ambiguous"), so inside
    the main window its Undo/Redo (which call the same ``services.undo``) serve Ctrl+Z and
    Ctrl+Shift+Z; on its own the page keeps every key of :data:`ACTIONS`.
    """
    mine = set(actions.values())
    taken = {seq.toString() for action in page.window().findChildren(QAction)
             if action not in mine
             and action.shortcutContext() != Qt.ShortcutContext.WidgetWithChildrenShortcut
             for seq in action.shortcuts()}
    for spec in ACTIONS:
        keys = [QKeySequence(k) for k in spec.shortcuts]
        actions[spec.key].setShortcuts([k for k in keys if k.toString() not in taken])
