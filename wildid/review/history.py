"""What the append-only decision history and the merge links mean *now*.

Two rules make an append-only history readable:

- A decision is **in effect** unless a later row names it in ``reverts_id``. Revert rows
  themselves are never in effect. Undoing an undo appends a fresh copy of the decision whose
  ``reverts_id`` names the revert row it cancels (see :mod:`wildid.review.changes`).
- An individual id **resolves** through its ``merged_into_id`` chain to the surviving
  individual. Chains can only be made acyclic by :func:`merge_individuals`, but synced data
  might not be, so a cycle resolves to its smallest id (the same answer from any entry point).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from wildid.catalog.models import Annotation, Decision, Encounter, Individual
from wildid.errors import NotFoundError

# Verdicts that put an encounter into a reviewed state; ``unassign`` reverts those in effect.
SETTLING_VERDICTS = ("match", "new_individual", "flag", "unidentifiable")


def reverted_ids() -> Any:
    """Subquery of decision ids that a later row cancels (SQLite indexes it once per query)."""
    later = aliased(Decision)  # its own alias: never correlated with an enclosing decisions query
    return select(later.reverts_id).where(later.reverts_id.is_not(None)).scalar_subquery()


def in_effect() -> ColumnElement[bool]:
    """SQL condition: this decision row is a real decision that no revert row cancels."""
    return (Decision.verdict != "revert") & Decision.id.not_in(reverted_ids())


def visible_encounter() -> ColumnElement[bool]:
    """SQL condition: the encounter still shows at least one box (undo can leave one empty)."""
    return exists().where(Annotation.encounter_id == Encounter.id)


def merge_links(session: Session) -> dict[str, str]:
    """``merged_into_id`` of every merged-away individual (a small table: merges are rare)."""
    rows = session.execute(select(Individual.id, Individual.merged_into_id)
                           .where(Individual.merged_into_id.is_not(None)))
    return {i: m for i, m in rows}


def resolve_with(links: dict[str, str], individual_id: str) -> str:
    """Follow ``links`` from ``individual_id`` to the survivor, guarding against cycles."""
    seen: list[str] = []
    current = individual_id
    while current in links:
        if current in seen:
            cycle = seen[seen.index(current):]
            return min(cycle)
        seen.append(current)
        current = links[current]
    return current


def resolve_individual_id(session: Session, individual_id: str) -> str:
    """The surviving individual's id for ``individual_id``; NotFoundError if it names nothing."""
    if session.get(Individual, individual_id) is None:
        raise NotFoundError(f"no individual with id {individual_id}")
    return resolve_with(merge_links(session), individual_id)


def merged_group(links: dict[str, str], survivor_id: str) -> set[str]:
    """``survivor_id`` and every id that resolves to it."""
    group = {survivor_id}
    group.update(i for i in links if resolve_with(links, i) == survivor_id)
    return group


def merged_members(links: dict[str, str]) -> dict[str, set[str]]:
    """For each survivor that absorbed others: the ids merged into it (computed once)."""
    members: dict[str, set[str]] = {}
    for merged in links:
        members.setdefault(resolve_with(links, merged), set()).add(merged)
    return members


def _session_of(session_or_catalog: Any) -> tuple[Session | None, Any]:
    if isinstance(session_or_catalog, Session):
        return session_or_catalog, None
    return None, session_or_catalog


def rejected_pairs(session_or_catalog: Any, encounter_id: str) -> set[str]:
    """Individuals the reviewer said this encounter is *not* (the matching engine skips them).

    For each individual (resolved through merges) the latest decision in effect about it for
    this encounter counts: ``no_match`` rejects it; a later ``match`` or ``unsure`` lifts that.
    Returns the surviving ids and the ids as written in the decisions, so a caller holding
    either finds them. Accepts a :class:`Session` or a catalog.
    """
    session, catalog = _session_of(session_or_catalog)
    if session is None:
        with catalog.session() as s:
            return rejected_pairs(s, encounter_id)
    rows = session.execute(
        select(Decision.candidate_individual_id, Decision.verdict)
        .where(Decision.encounter_id == encounter_id, Decision.candidate_individual_id.is_not(None),
               in_effect())
        .order_by(Decision.decided_at, Decision.id))
    links = merge_links(session)
    latest: dict[str, str] = {}
    raw: dict[str, set[str]] = {}
    for candidate, verdict in rows:
        survivor = resolve_with(links, candidate)
        latest[survivor] = verdict
        raw.setdefault(survivor, set()).add(candidate)
    out: set[str] = set()
    for survivor, verdict in latest.items():
        if verdict == "no_match":
            out.add(survivor)
            out.update(raw[survivor])
    return out


def settling_decisions(session: Session, encounter_id: str) -> list[Decision]:
    """Decisions in effect that put the encounter in a reviewed state, oldest first.

    The latest one says the current state; unassigning reverts them all, so that reading the
    history never finds an older match still standing for an unassigned encounter.
    """
    return list(session.scalars(
        select(Decision)
        .where(Decision.encounter_id == encounter_id, Decision.verdict.in_(SETTLING_VERDICTS),
               in_effect())
        .order_by(Decision.decided_at, Decision.id)))


def latest_settling_decision(session: Session, encounter_id: str) -> Decision | None:
    """The decision in effect that put the encounter in its current reviewed state, if any."""
    settled = settling_decisions(session, encounter_id)
    return settled[-1] if settled else None


def deferred_encounters(session: Session) -> set[str]:
    """Encounters whose latest decision in effect is ``unsure``: the queue shows them last."""
    newest_first = func.row_number().over(
        partition_by=Decision.encounter_id, order_by=(Decision.decided_at.desc(), Decision.id.desc()))
    ranked = (select(Decision.encounter_id, Decision.verdict, newest_first.label("rn"))
              .where(in_effect()).subquery())
    rows = session.execute(select(ranked.c.encounter_id)
                           .where(ranked.c.rn == 1, ranked.c.verdict == "unsure"))
    return {r[0] for r in rows}


def retired_individual_ids(session: Session, among: Iterable[str] | None = None) -> set[str]:
    """Individuals made by a ``new_individual`` decision that was undone, or removed by a
    ``remove`` decision in effect (``operations.remove_individual``), and left unused.

    Undo keeps the row (decisions name it; deleting would rewrite them), so lists hide it.
    """
    created = select(Decision.candidate_individual_id, Decision.id.not_in(reverted_ids())).where(
        Decision.verdict == "new_individual", Decision.candidate_individual_id.is_not(None))
    removed = select(Decision.candidate_individual_id).where(
        Decision.verdict == "remove", Decision.candidate_individual_id.is_not(None),
        Decision.id.not_in(reverted_ids()))
    if among is not None:
        created = created.where(Decision.candidate_individual_id.in_(list(among)))
        removed = removed.where(Decision.candidate_individual_id.in_(list(among)))
    live: dict[str, bool] = {}
    for individual_id, effective in session.execute(created):
        live[individual_id] = live.get(individual_id, False) or bool(effective)
    candidates = [i for i, alive in live.items() if not alive]
    candidates += [i for i in session.scalars(removed) if i not in candidates]
    if not candidates:
        return set()
    used = set(session.scalars(select(Encounter.individual_id).distinct()
                               .where(Encounter.individual_id.in_(candidates))))
    return set(candidates) - used
