"""A row of buttons for QActions that never clips: what does not fit goes into a "More" menu.

Each button mirrors one ``QAction`` (enabled, checked, tooltip) and triggers it; its label is
fixed (the action's text may change, as Edit > Undo's does, without making the bar jump). When
the bar is narrower than all its buttons, those with the highest ``overflow`` rank are hidden
one by one, and their actions are listed, with their shortcuts, in the "More" button's menu.
Buttons are placed by hand at their preferred width, so a shown button is never squeezed.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QAction, QKeySequence, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QMenu, QPushButton, QSizePolicy, QStyle, QWidget

__all__ = ["ActionBar", "ActionButton", "describe"]


def describe(action: QAction) -> str:
    """The action's text and keys for a tooltip: 'Undo Confirm as Luna (Ctrl+Z or Ctrl+Y)'."""
    text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")
    keys = " or ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                       for s in action.shortcuts() if not s.isEmpty())
    return f"{text} ({keys})" if keys else text


class ActionButton(QPushButton):
    """A push button that mirrors a QAction and triggers it; :meth:`bind` swaps the action.

    Push buttons rather than tool buttons: the app's stylesheet draws disabled push buttons
    greyed, so an action that cannot apply right now visibly cannot be clicked.
    """

    def __init__(self, label: str, action: QAction, parent: QWidget | None = None) -> None:
        super().__init__(label, parent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._action: QAction | None = None
        self.clicked.connect(self._clicked)
        self.bind(action)

    def action(self) -> QAction | None:
        return self._action

    def bind(self, action: QAction) -> None:
        """Mirror and trigger ``action`` from now on (instead of the one bound before)."""
        old = self._action
        if old is not None:
            old.changed.disconnect(self._sync)
            old.toggled.disconnect(self.setChecked)
        self._action = action
        self.setCheckable(action.isCheckable())
        action.changed.connect(self._sync)
        action.toggled.connect(self.setChecked)
        self._sync()

    def _sync(self) -> None:
        action = self._action
        if action is None:
            return
        # A tooltip set on purpose says more than the action's name; else name and keys.
        tip = action.toolTip()
        plain = action.text().replace("&", "").rstrip("…")
        self.setToolTip(describe(action) if tip in ("", plain) else tip)
        self.setEnabled(action.isEnabled())
        if action.isCheckable():
            self.setChecked(action.isChecked())

    def _clicked(self, _checked: bool = False) -> None:
        if self._action is not None:
            self._action.trigger()


@dataclass
class _Item:
    key: str
    button: ActionButton
    overflow: int  # 0: always shown; otherwise higher ranks go into "More" first
    right: bool  # in the group aligned to the right end of the bar


class ActionBar(QWidget):
    """Buttons in a row: a left group, a right group, and "More ▾" for what does not fit."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("actionBar")
        self._items: list[_Item] = []
        self.more_menu = QMenu(self)
        self.more_menu.aboutToShow.connect(self._fill_more)
        self.more = QPushButton("More", self)
        self.more.setObjectName("button_more")
        self.more.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.more.setToolTip("The actions that do not fit on this bar (all are also in the menus)")
        self.more.setMenu(self.more_menu)
        self.more.hide()
        self._hidden: list[_Item] = []
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    # ------------------------------------------------------------------ building
    def add(self, key: str, label: str, action: QAction, overflow: int = 0,
            right: bool = False) -> ActionButton:
        button = ActionButton(label, action, self)
        button.setObjectName(f"button_{key}")
        self._items.append(_Item(key, button, overflow, right))
        self.more.raise_()
        self.updateGeometry()
        self._arrange()
        return button

    def button(self, key: str) -> ActionButton:
        return next(item.button for item in self._items if item.key == key)

    def buttons(self) -> list[ActionButton]:
        return [item.button for item in self._items]

    def hidden_keys(self) -> list[str]:
        """The keys of the buttons that did not fit (their actions are under "More")."""
        return [item.key for item in self._hidden]

    # ------------------------------------------------------------------ sizes
    def _spacing(self) -> int:
        spacing = self.style().pixelMetric(QStyle.PixelMetric.PM_LayoutHorizontalSpacing)
        return spacing if spacing >= 0 else 6

    def _width(self, items: list[_Item], more: bool) -> int:
        widths = [i.button.sizeHint().width() for i in items]
        if more:
            widths.append(self.more.sizeHint().width())
        gap = self._spacing()
        groups = {i.right for i in items}
        extra = 2 * gap if len(groups) == 2 else 0  # a wider gap between the two groups
        return sum(widths) + gap * max(0, len(widths) - 1) + extra

    def _height(self) -> int:
        hints = [i.button.sizeHint().height() for i in self._items]
        return max([self.more.sizeHint().height(), *hints])

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self._width(self._items, False), self._height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        kept = [i for i in self._items if i.overflow == 0]
        return QSize(self._width(kept, len(kept) < len(self._items)), self._height())

    # ------------------------------------------------------------------ layout
    def _fitting(self, width: int) -> list[_Item]:
        shown = list(self._items)
        ranked = sorted((i for i in self._items if i.overflow),
                        key=lambda i: (-i.overflow, -self._items.index(i)))
        for item in ranked:
            if self._width(shown, len(shown) < len(self._items)) <= width:
                break
            shown.remove(item)
        return shown

    def _arrange(self) -> None:
        shown = self._fitting(self.width())
        self._hidden = [i for i in self._items if i not in shown]
        height, gap = self.height(), self._spacing()
        x = 0
        for item in (i for i in shown if not i.right):
            x = self._place(item.button, x, height) + gap
        right = [i.button for i in shown if i.right]
        if self._hidden:
            right.append(self.more)
        end = self.width()
        for button in reversed(right):
            width = button.sizeHint().width()
            end -= width
            self._place(button, end, height)
            end -= gap
        for item in self._hidden:
            item.button.hide()
        self.more.setVisible(bool(self._hidden))

    @staticmethod
    def _place(button: QPushButton, x: int, height: int) -> int:
        hint = button.sizeHint()
        button.setGeometry(x, max(0, (height - hint.height()) // 2), hint.width(), hint.height())
        button.show()
        return x + hint.width()

    def _fill_more(self) -> None:
        self.more_menu.clear()
        for item in self._hidden:
            action = item.button.action()
            if action is not None:
                self.more_menu.addAction(action)

    # ------------------------------------------------------------------ events
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._arrange()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._arrange()

    def event(self, event: QEvent) -> bool:
        # A button's size hint changed (font, style sheet, label): place the buttons again.
        if event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.StyleChange,
                            QEvent.Type.FontChange):
            self.updateGeometry()
            self._arrange()
        return super().event(event)
