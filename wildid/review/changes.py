"""Recording exactly what an operation changed, so undo and redo are exact.

An operation (:mod:`wildid.review.undoable`) is recorded while it runs, as a list of small
steps (a field set from *before* to *after*, a row inserted, a row deleted, a swap of cached
match results) plus the decision rows it appended. Reverting plays the steps backwards and
*compensates* each decision by appending a new row; redo plays them forwards and compensates
again. So the audit trail only ever grows:

- compensating a normal decision appends a ``revert`` row whose ``reverts_id`` names it;
- compensating a ``revert`` row appends a fresh copy of the decision it reverted, whose
  ``reverts_id`` names that revert row (the undo it undoes), so every chain can be followed.

A decision is *in effect* when it is not a ``revert`` row and no row names it in ``reverts_id``
(see :mod:`wildid.review.history`).

Before undoing a step the current value must still equal what the operation wrote (and before
redoing, what it found), otherwise :class:`ReviewError` is raised and nothing is written: an undo
never silently overwrites a change made since (by the CLI, another window, or sync).

Rows that others may still point at are not deleted on undo: an :class:`Individual` created by an
operation stays (decision rows name it, and ``ON DELETE SET NULL`` would rewrite history), and so
does an encounter that decision rows refer to. The queries hide both (an individual whose every
``new_individual`` decision was reverted and that has no encounter; an encounter without
annotations). ``updated_at`` columns are not restored: they record the last write, for sync.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from wildid.catalog.models import (
    Base,
    Decision,
    Encounter,
    Feature,
    Individual,
    MatchCandidate,
    MatchSummary,
)
from wildid.errors import ReviewError
from wildid.ids import short_id
from wildid.review.details import CHUNK, chunks

# Columns never recorded or restored: they describe the last write, not the domain state.
_BOOKKEEPING = frozenset({"updated_at"})


@dataclass(frozen=True)
class Changes:
    """Which records an operation (or its undo) touched, so each view redraws only if it must."""

    encounters: frozenset[str] = frozenset()
    individuals: frozenset[str] = frozenset()
    annotations: frozenset[str] = frozenset()

    def __or__(self, other: Changes) -> Changes:
        return Changes(self.encounters | other.encounters, self.individuals | other.individuals,
                       self.annotations | other.annotations)

    def __bool__(self) -> bool:
        return bool(self.encounters or self.individuals or self.annotations)


def row_values(obj: Base) -> dict[str, Any]:
    """Every column of ``obj`` except bookkeeping, deep-copied (JSON lists must not alias)."""
    mapper = obj.__mapper__
    return {attr.key: copy.deepcopy(getattr(obj, attr.key)) for attr in mapper.column_attrs
            if attr.key not in _BOOKKEEPING}


def _pk(model: type[Base], values: dict[str, Any]) -> Any:
    return values["encounter_id"] if model is MatchSummary else values["id"]


class Step(Protocol):
    """One recorded write that can be played backwards (undo) and forwards (redo)."""

    def undo(self, s: Session) -> None: ...

    def redo(self, s: Session) -> None: ...


@dataclass
class _SetFields:
    model: type[Base]
    pk: str
    before: dict[str, Any]
    after: dict[str, Any]

    def _swap(self, s: Session, expect: dict[str, Any], target: dict[str, Any], verb: str) -> None:
        obj = s.get(self.model, self.pk)
        if obj is None:
            raise ReviewError(f"cannot {verb}: the {self.model.__name__.lower()} {short_id(self.pk)} "
                              "no longer exists")
        for key, value in expect.items():
            if getattr(obj, key) != value:
                raise ReviewError(f"cannot {verb}: {self.model.__name__.lower()} {short_id(self.pk)} "
                                  f"was changed since ({key})")
        for key, value in target.items():
            setattr(obj, key, copy.deepcopy(value))

    def undo(self, s: Session) -> None:
        self._swap(s, self.after, self.before, "undo")

    def redo(self, s: Session) -> None:
        self._swap(s, self.before, self.after, "redo")


def _kept_on_undo(s: Session, model: type[Base], pk: str) -> bool:
    """True when deleting this created row would rewrite history through a foreign key."""
    if model is Individual:
        return True
    if model is Encounter:
        return bool(s.scalar(select(exists().where(Decision.encounter_id == pk))))
    return False


@dataclass
class _Insert:
    model: type[Base]
    values: dict[str, Any]

    def undo(self, s: Session) -> None:
        pk = _pk(self.model, self.values)
        obj = s.get(self.model, pk)
        if obj is None or _kept_on_undo(s, self.model, pk):
            return
        s.delete(obj)
        s.flush()

    def redo(self, s: Session) -> None:
        obj = s.get(self.model, _pk(self.model, self.values))
        if obj is None:
            s.add(self.model(**copy.deepcopy(self.values)))
        else:
            for key, value in self.values.items():
                setattr(obj, key, copy.deepcopy(value))
        s.flush()


@dataclass
class _Delete:
    model: type[Base]
    values: dict[str, Any]

    def undo(self, s: Session) -> None:
        if s.get(self.model, _pk(self.model, self.values)) is not None:
            raise ReviewError(f"cannot undo: the {self.model.__name__.lower()} exists again")
        s.add(self.model(**copy.deepcopy(self.values)))
        s.flush()

    def redo(self, s: Session) -> None:
        obj = s.get(self.model, _pk(self.model, self.values))
        if obj is not None:
            s.delete(obj)
            s.flush()


@dataclass
class _CacheSwap:
    """Match results and features made stale by an edit: set aside now, brought back on undo.

    Each direction stashes whatever cache rows exist at that moment and restores the stash of
    the other direction, so results computed after the edit are kept for a redo.

    ``referencing``: other encounters' candidates that show one of these boxes go too. Those of
    encounters still to review take their whole results with them (candidates and summary), so
    they are matched again (see :func:`~wildid.review.queries.stale_results`): their list was
    ranked with the box as it was, and its matched keypoints would be drawn on the box as it
    is. Which encounters those are is settled at the first take and kept, so an undo after
    they were matched again swaps exactly the rows the edit set aside. A reviewed encounter's
    list is history and is not matched again: only the candidate rows showing the box go.
    """

    annotation_ids: frozenset[str]
    encounter_ids: frozenset[str]
    features: bool
    referencing: bool
    stash: list[tuple[type[Base], dict[str, Any]]] = field(default_factory=list)
    referenced: frozenset[str] | None = None

    def take(self, s: Session) -> None:
        annotations = sorted(self.annotation_ids)
        if self.referencing and annotations and self.referenced is None:
            referenced: set[str] = set()
            for part in chunks(annotations):  # a whole import's boxes at once, in bounded INs
                referenced.update(s.scalars(
                    select(MatchCandidate.encounter_id).distinct()
                    .join(Encounter, Encounter.id == MatchCandidate.encounter_id)
                    .where(MatchCandidate.best_annotation_id.in_(part),
                           Encounter.individual_id.is_(None))))
            self.referenced = frozenset(referenced) - self.encounter_ids
        whole = sorted(self.encounter_ids | (self.referenced or frozenset()))
        found: dict[Base, None] = {}  # each row once, in a stable order
        for part in chunks(whole):
            found.update(dict.fromkeys(s.scalars(
                select(MatchCandidate).where(MatchCandidate.encounter_id.in_(part)))))
        if self.referencing:
            for part in chunks(annotations, CHUNK // 2):  # two INs of it in one statement
                found.update(dict.fromkeys(s.scalars(select(MatchCandidate).where(or_(
                    MatchCandidate.query_annotation_id.in_(part),
                    MatchCandidate.best_annotation_id.in_(part))))))
        for part in chunks(whole):
            found.update(dict.fromkeys(s.scalars(
                select(MatchSummary).where(MatchSummary.encounter_id.in_(part)))))
        if self.features:
            for part in chunks(annotations):
                found.update(dict.fromkeys(s.scalars(
                    select(Feature).where(Feature.annotation_id.in_(part)))))
        rows = list(found)
        taken = [(type(r), row_values(r)) for r in rows]
        for r in rows:
            s.delete(r)
        s.flush()
        restore, self.stash = self.stash, taken
        for model, values in restore:
            s.add(model(**copy.deepcopy(values)))
        s.flush()

    def undo(self, s: Session) -> None:
        self.take(s)

    def redo(self, s: Session) -> None:
        self.take(s)

    @property
    def encounters_touched(self) -> set[str]:
        return {str(v["encounter_id"]) for m, v in self.stash if m in (MatchCandidate, MatchSummary)}


class Recorder:
    """Writes through one session and records each write as an undoable step."""

    def __init__(self, session: Session, reviewer: str) -> None:
        self.session = session
        self.reviewer = reviewer
        self.steps: list[Step] = []
        self.decision_ids: list[str] = []

    def set(self, obj: Base, flush: bool = True, **fields: Any) -> _SetFields | None:
        """Set ``fields`` on ``obj``, recording only the ones that really change.

        Returns the recorded step (its ``before`` and ``after`` hold just the changed fields),
        or None when nothing changed. ``flush=False`` leaves the write to the next flush: an
        operation over thousands of rows (a whole import's times moved) flushes once.
        """
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for key, value in fields.items():
            old = getattr(obj, key)
            if old != value:
                before[key] = copy.deepcopy(old)
                after[key] = copy.deepcopy(value)
                setattr(obj, key, value)
        if not after:
            return None
        step = _SetFields(type(obj), obj.id, before, after)  # type: ignore[attr-defined]
        self.steps.append(step)
        if flush:
            self.session.flush()
        return step

    def insert(self, obj: Base) -> None:
        self.session.add(obj)
        self.session.flush()
        self.steps.append(_Insert(type(obj), row_values(obj)))

    def delete(self, obj: Base) -> None:
        self.steps.append(_Delete(type(obj), row_values(obj)))
        self.session.delete(obj)
        self.session.flush()

    def set_aside_caches(self, annotation_ids: Iterable[str], encounter_ids: Iterable[str],
                         features: bool = True, referencing: bool = False) -> set[str]:
        """Remove stale features/match results (recorded); returns the encounters affected."""
        swap = _CacheSwap(frozenset(annotation_ids), frozenset(encounter_ids), features, referencing)
        swap.take(self.session)
        self.steps.append(swap)
        return swap.encounters_touched

    def record_edit(self, individual_id: str, verdict: str, note: str,
                    details: dict[str, Any] | None = None) -> Decision:
        """Append a decision about an individual itself (``rename``, ``edit``, ``merge``).

        Such rows name no encounter; undo compensates them like any other decision, so the
        trail shows who renamed an animal and who undid it.
        """
        return self.decide(None, verdict, individual_id, details, note)

    def decide(self, encounter_id: str | None, verdict: str,
               candidate_individual_id: str | None = None,
               scores: dict[str, Any] | None = None, note: str = "",
               reverts_id: str | None = None) -> Decision:
        """Append a decision row made by this operation's reviewer."""
        row = Decision(encounter_id=encounter_id, verdict=verdict,
                       candidate_individual_id=candidate_individual_id,
                       scores=copy.deepcopy(scores), note=note, reviewer=self.reviewer,
                       reverts_id=reverts_id)
        self.session.add(row)
        self.session.flush()
        self.decision_ids.append(row.id)
        return row


def _tip(s: Session, decision_id: str) -> Decision:
    """The newest row in the chain of rows cancelling ``decision_id`` (itself when none).

    Another operation may have compensated this one's decision (an unassign reverts the match a
    confirm made; undoing the unassign appends a copy): the row to compensate now is the tip.
    """
    row = s.get(Decision, decision_id)
    if row is None:
        raise ReviewError(f"decision {short_id(decision_id)} no longer exists; cannot undo or redo it")
    for _ in range(10_000):
        successor = s.scalars(select(Decision).where(Decision.reverts_id == row.id)
                              .order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(1)).first()
        if successor is None:
            return row
        row = successor
    raise ReviewError(f"the history of decision {short_id(decision_id)} is too long to follow")


def compensate(s: Session, decision_id: str, reviewer: str, note: str) -> str:
    """Append the row that cancels ``decision_id`` (see module docstring); returns its id.

    A redo copy names the revert row it cancels in ``reverts_id``, so chains can be followed.
    """
    start = s.get(Decision, decision_id)
    row = _tip(s, decision_id)
    if start is not None and (row.verdict == "revert") != (start.verdict == "revert"):
        raise ReviewError(f"decision {short_id(decision_id)} was already undone or redone elsewhere")
    if row.verdict == "revert":
        original = s.get(Decision, row.reverts_id) if row.reverts_id else None
        if original is None:
            raise ReviewError(f"the decision reverted by {short_id(row.id)} no longer exists")
        new = Decision(encounter_id=original.encounter_id, verdict=original.verdict,
                       candidate_individual_id=original.candidate_individual_id,
                       candidate_annotation_id=original.candidate_annotation_id,
                       scores=copy.deepcopy(original.scores), note=original.note,
                       reviewer=reviewer, reverts_id=row.id)
    else:
        new = Decision(encounter_id=row.encounter_id, verdict="revert", reverts_id=row.id,
                       candidate_individual_id=row.candidate_individual_id, note=note,
                       reviewer=reviewer)
    s.add(new)
    s.flush()
    return new.id
