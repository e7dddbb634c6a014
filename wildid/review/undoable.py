"""Applied operations: what a user action did, so it can be undone and redone as a unit.

The recording and playing of steps lives in :mod:`wildid.review.changes`; an
:class:`Operation` owns the recorded steps and the decision rows standing for it now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wildid.errors import ReviewError
from wildid.review.changes import Changes, Recorder, Step, _SetFields, compensate
from wildid.review.details import chunks

__all__ = ["Operation", "OperationGroup"]


class Operation:
    """A user action that has been applied; :meth:`revert` and :meth:`reapply` toggle it.

    ``label`` is what an Undo menu shows ("Confirm as Stripe"); ``changes`` says which records
    it touches (the same set for apply, revert and reapply).
    """

    def __init__(self, label: str, changes: Changes, reviewer: str = "",
                 steps: Sequence[Step] = (), decision_ids: Sequence[str] = ()) -> None:
        self.label = label
        self.changes = changes
        self.reviewer = reviewer
        self._steps = list(steps)
        self._decision_ids = list(decision_ids)
        self._applied = True

    @classmethod
    def from_recorder(cls, label: str, changes: Changes, rec: Recorder) -> Operation:
        return cls(label, changes, rec.reviewer, rec.steps, rec.decision_ids)

    @property
    def applied(self) -> bool:
        """True while the operation's effect is in the catalog."""
        return self._applied

    @property
    def is_noop(self) -> bool:
        """True when applying it changed nothing (an undo stack need not keep it)."""
        return not self._steps and not self._decision_ids

    @property
    def decision_ids(self) -> list[str]:
        """The decision rows currently standing for this operation (newest compensations)."""
        return list(self._decision_ids)

    def revert(self, catalog: Any) -> Changes:
        """Undo: restore what the operation found, appending ``revert`` decision rows."""
        if not self._applied:
            raise ReviewError(f"'{self.label}' is already undone")
        with catalog.session() as s:
            new_ids = self._play(s, forward=False)
        self._settle(new_ids, applied=False)
        return self.changes

    def reapply(self, catalog: Any) -> Changes:
        """Redo: write the operation's result again, appending its decisions again."""
        if self._applied:
            raise ReviewError(f"'{self.label}' is already applied")
        with catalog.session() as s:
            new_ids = self._play(s, forward=True)
        self._settle(new_ids, applied=True)
        return self.changes

    def _play(self, s: Session, forward: bool) -> list[str]:
        """Write one direction in ``s``; the caller commits, then calls :meth:`_settle`."""
        held = preload(s, self._steps)  # noqa: F841 - the session keeps rows weakly
        if forward:
            for step in self._steps:
                step.redo(s)
        else:
            for step in reversed(self._steps):
                step.undo(s)
        note = f"{'redo' if forward else 'undo'}: {self.label}"
        return [compensate(s, did, self.reviewer, note) for did in self._decision_ids]

    def _settle(self, new_ids: list[str], applied: bool) -> None:
        self._decision_ids = new_ids
        self._applied = applied

    def __repr__(self) -> str:
        state = "applied" if self._applied else "reverted"
        return f"<Operation {self.label!r} {state}>"


def preload(s: Session, steps: Sequence[Step]) -> list[Any]:
    """Read the rows the field steps write, one query per table and chunk, so playing them
    finds each in the session instead of reading it alone: undoing the times of 5,000
    encounters took 4.8 s row by row. The caller holds the list while it plays: the
    session's identity map keeps rows only as long as something else does."""
    wanted: dict[type, set[str]] = {}
    for step in steps:
        if isinstance(step, _SetFields):
            wanted.setdefault(step.model, set()).add(step.pk)
    held: list[Any] = []
    for model, keys in wanted.items():
        for part in chunks(sorted(keys)):
            held += s.scalars(select(model).where(model.id.in_(part)))  # type: ignore[attr-defined]
    return held


class OperationGroup:
    """Several applied operations undone and redone as one named step (e.g. a batch confirm)."""

    def __init__(self, label: str, operations: Sequence[Operation | OperationGroup]) -> None:
        self.label = label
        self.operations = list(operations)
        changes = Changes()
        for op in self.operations:
            changes = changes | op.changes
        self.changes = changes

    @property
    def applied(self) -> bool:
        return all(op.applied for op in self.operations)

    @property
    def is_noop(self) -> bool:
        return all(op.is_noop for op in self.operations)

    def revert(self, catalog: Any) -> Changes:
        """Undo every member, newest first, in one transaction."""
        if not self.applied:
            raise ReviewError(f"'{self.label}' is already undone")
        self._run(catalog, forward=False)
        return self.changes

    def reapply(self, catalog: Any) -> Changes:
        """Redo every member, oldest first, in one transaction."""
        if self.applied:
            raise ReviewError(f"'{self.label}' is already applied")
        self._run(catalog, forward=True)
        return self.changes

    def _leaves(self) -> list[Operation]:
        out: list[Operation] = []
        for op in self.operations:
            out.extend(op._leaves() if isinstance(op, OperationGroup) else [op])
        return out

    def _run(self, catalog: Any, forward: bool) -> None:
        leaves = self._leaves() if forward else self._leaves()[::-1]
        with catalog.session() as s:
            results = [(op, op._play(s, forward)) for op in leaves]
        for op, new_ids in results:
            op._settle(new_ids, applied=forward)
