"""The review page's actions: names, shortcuts, menu sections and help text in one table.

Every review action has a keyboard shortcut (DESIGN.md §9); most have a button on the page's
action bar. The main window lists the same ``QAction`` objects in its Review menu
(``ReviewPage.menu_sections()``), so a shortcut, a button and a menu entry can never disagree.

Undo and redo are the window's: inside the main window the page uses Edit > Undo / Redo
(``ReviewPage.use_window_actions``), so Ctrl+Z has exactly one action. Only a page shown on
its own (tests, a host without an Edit menu) binds those keys itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

__all__ = ["ACTIONS", "MENU_SECTIONS", "ActionSpec", "make_actions"]

# The Review menu's sections, in order (separators between them).
MENU_SECTIONS = ("decide", "move", "view", "edit")


@dataclass(frozen=True)
class ActionSpec:
    key: str  # attribute suffix and objectName ("confirm" -> action "reviewConfirm")
    text: str
    shortcuts: tuple[str, ...]  # the first one is what menus show: the button's letter
    tip: str
    button: str = ""  # label on the action bar; empty = menu and keyboard only
    checkable: bool = False
    menu: str = ""  # section of the Review menu (MENU_SECTIONS); empty = not in it
    overflow: int = 0  # a bar too narrow moves higher ranks into "More" first; 0 = never
    right: bool = False  # in the bar's right-hand group (how the photos are shown)
    window_action: bool = False  # the main window has it (Edit menu) and lends it to the page

    @property
    def button_text(self) -> str:
        """The bar's label with the easiest key to remember: 'Confirm (Y)'."""
        letters = [s for s in self.shortcuts if len(s) == 1]
        return f"{self.button} ({letters[0]})" if letters else self.button


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("confirm", "&Confirm match", ("Y", "Return", "Enter"),
               "The new sighting is the selected candidate individual", "Confirm",
               menu="decide"),
    ActionSpec("reject", "&Not this one", ("N", "X"),
               "The selected candidate is a different animal; show the next candidate",
               "Not this one", menu="decide", overflow=4),
    ActionSpec("new_individual", "New &individual…", ("I", "Ctrl+N"),
               "None of the candidates: name a new individual", "New individual",
               menu="decide", overflow=5),
    ActionSpec("unsure", "&Unsure, skip", ("S",),
               "Decide later: the encounter moves to the end of the queue", "Skip",
               menu="decide", overflow=6),
    ActionSpec("flag", "&Flag for curator…", ("F",),
               "Ask a curator to look at this encounter", "Flag", menu="decide", overflow=8),
    ActionSpec("unidentifiable", "Un&identifiable", ("U",),
               "The photos cannot identify the animal (blurred, hidden, wrong side)",
               "Unidentifiable", menu="decide", overflow=9),
    ActionSpec("compare", "C&ompare with…", ("C",),
               "Compare this sighting with an individual that is not among the candidates: "
               "its score, rank and matched points", menu="decide"),
    ActionSpec("next_candidate", "Next candidate", ("Right", "J"), "Show the next candidate",
               menu="move"),
    ActionSpec("previous_candidate", "Previous candidate", ("Left", "K"),
               "Show the previous candidate", menu="move"),
    ActionSpec("next_encounter", "Next encounter", ("PgDown", "Down"),
               "Go to the next encounter in the queue without deciding", menu="move"),
    ActionSpec("previous_encounter", "Previous encounter", ("PgUp", "Up"),
               "Go back to the previous encounter in the queue", menu="move"),
    ActionSpec("next_photo", "Next photo of the encounter", ("]",),
               "Show the next photo of this burst", menu="move"),
    ActionSpec("previous_photo", "Previous photo of the encounter", ("[",),
               "Show the previous photo of this burst", menu="move"),
    ActionSpec("next_candidate_photo", "Next photo of the candidate", (".",),
               "Show the candidate individual's next photo (its other sides and sightings)",
               menu="move"),
    ActionSpec("previous_candidate_photo", "Previous photo of the candidate", (",",),
               "Show the candidate individual's previous photo", menu="move"),
    ActionSpec("undo", "&Undo", ("Ctrl+Z",), "Undo the last review action", "Undo",
               overflow=14, window_action=True),
    ActionSpec("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo the action just undone",
               "Redo", overflow=15, window_action=True),
    ActionSpec("toggle_matches", "Show &matched points", ("M",),
               "Draw the keypoints the matcher paired between the two photos", "Matches",
               checkable=True, menu="view", overflow=10, right=True),
    ActionSpec("sync_zoom", "&Link zoom", ("L",), "Zoom both photos together", "Link zoom",
               checkable=True, menu="view", overflow=13, right=True),
    ActionSpec("edit_boxes", "&Edit boxes…", ("E",),
               "Draw or correct the boxes around the animal in this encounter's photos",
               "Edit boxes", menu="edit", overflow=12, right=True),
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
