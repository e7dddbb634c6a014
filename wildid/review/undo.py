"""A linear undo/redo history of applied operations, kept in the core so the CLI and tests
can use it as the GUI does (the GUI only shows ``undo_label`` and calls :meth:`UndoStack.undo`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from wildid.errors import ReviewError
from wildid.review.changes import Changes

__all__ = ["UndoStack", "Undoable"]


class Undoable(Protocol):
    """What the stack needs: :class:`Operation` and :class:`OperationGroup` both qualify."""

    label: str
    changes: Changes

    @property
    def applied(self) -> bool: ...

    @property
    def is_noop(self) -> bool: ...

    def revert(self, catalog: Any) -> Changes: ...

    def reapply(self, catalog: Any) -> Changes: ...


class UndoStack:
    """Applied operations, oldest first, with a cursor; pushing after an undo drops the redo branch.

    ``on_change(stack)`` is called after every push, undo, redo and clear, so a menu can relabel
    itself. If an undo or redo fails (the records changed since), the stack is left as it was
    and the :class:`ReviewError` propagates.
    """

    def __init__(self, catalog: Any, limit: int = 200,
                 on_change: Callable[[UndoStack], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.catalog = catalog
        self.limit = limit
        self.on_change = on_change
        self._ops: list[Undoable] = []
        self._cursor = 0  # ops[:cursor] are applied, ops[cursor:] can be redone

    def push(self, op: Undoable) -> None:
        """Record an operation that was just applied (a no-op is ignored)."""
        if not op.applied:
            raise ReviewError(f"'{op.label}' is not applied; push operations as they return")
        if op.is_noop:
            return
        del self._ops[self._cursor:]
        self._ops.append(op)
        if len(self._ops) > self.limit:
            del self._ops[: len(self._ops) - self.limit]
        self._cursor = len(self._ops)
        self._notify()

    def undo(self) -> Changes:
        """Revert the latest applied operation and return what it touched."""
        if not self.can_undo:
            raise ReviewError("nothing to undo")
        changes = self._ops[self._cursor - 1].revert(self.catalog)
        self._cursor -= 1
        self._notify()
        return changes

    def redo(self) -> Changes:
        """Reapply the latest undone operation and return what it touched."""
        if not self.can_redo:
            raise ReviewError("nothing to redo")
        changes = self._ops[self._cursor].reapply(self.catalog)
        self._cursor += 1
        self._notify()
        return changes

    @property
    def can_undo(self) -> bool:
        return self._cursor > 0

    @property
    def can_redo(self) -> bool:
        return self._cursor < len(self._ops)

    @property
    def undo_label(self) -> str | None:
        """Label of what Undo would revert ("Confirm as Stripe"), or None."""
        return self._ops[self._cursor - 1].label if self.can_undo else None

    @property
    def redo_label(self) -> str | None:
        return self._ops[self._cursor].label if self.can_redo else None

    def clear(self) -> None:
        """Forget the history (the catalog is untouched), e.g. when another catalog opens."""
        self._ops.clear()
        self._cursor = 0
        self._notify()

    def __len__(self) -> int:
        return len(self._ops)

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self)
