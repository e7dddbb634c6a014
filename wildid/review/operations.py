"""Review actions as small named operations: each applies at once and can be undone exactly.

Every function runs in one transaction, appends :class:`~wildid.catalog.models.Decision` rows
where the action is a decision about an encounter (reviewer, time, and the candidate's scores as
shown), and returns an applied :class:`Operation` (see :mod:`wildid.review.changes` for how undo
keeps the history append-only). Edits of an individual itself write a decision row too, with no
encounter: ``rename`` and ``edit`` (what changed, before and after) and ``merge`` (besides the
``match`` row of each encounter it moves), so the audit trail answers who renamed or merged an
animal, and undo appends their ``revert`` rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wildid.catalog.models import Encounter, Individual, MatchCandidate, MatchSummary
from wildid.errors import NotFoundError, ReviewError
from wildid.review.changes import Changes, Recorder
from wildid.review.history import (
    merge_links,
    resolve_with,
    retired_individual_ids,
    settling_decisions,
)
from wildid.review.undoable import Operation, OperationGroup

__all__ = [
    "Changes", "Operation", "OperationGroup", "INDIVIDUAL_FIELDS", "confirm_match",
    "flag_for_curator", "mark_unidentifiable", "mark_unsure", "merge_individuals",
    "move_encounter", "new_individual", "reject_candidate", "remove_individual",
    "rename_individual", "unassign_encounter", "update_individual",
]

INDIVIDUAL_FIELDS = ("species", "sex", "life_stage", "notes")


def _encounter(s: Session, encounter_id: str) -> Encounter:
    enc = s.get(Encounter, encounter_id)
    if enc is None:
        raise NotFoundError(f"no encounter with id {encounter_id}")
    return enc


def _individual(s: Session, individual_id: str) -> Individual:
    """The surviving individual for ``individual_id`` (merged-away ids resolve)."""
    if s.get(Individual, individual_id) is None:
        raise NotFoundError(f"no individual with id {individual_id}")
    ind = s.get(Individual, resolve_with(merge_links(s), individual_id))
    assert ind is not None
    return ind


def _reviewer(reviewer: str) -> str:
    name = (reviewer or "").strip()
    if not name:
        raise ReviewError("a reviewer name is needed to record a decision")
    return name


def _shown_scores(s: Session, encounter_id: str, individual_id: str) -> dict[str, Any] | None:
    """The engine's scores for this pair, recorded when the caller passed none (the CLI).

    When the encounter was matched but this individual was not among its candidates (the
    reviewer chose it by hand), that is recorded too (``proposed: False``), so the trail
    tells a decision the matcher backed from one it did not; None when never matched.
    """
    links = merge_links(s)
    shown = list(s.scalars(select(MatchCandidate).where(MatchCandidate.encounter_id == encounter_id)
                           .order_by(MatchCandidate.rank)))
    for c in shown:
        if resolve_with(links, c.individual_id) == individual_id:
            return {"score": c.score, "rank": c.rank, "raw_scores": dict(c.raw_scores or {}),
                    "engine": c.engine}
    summary = s.get(MatchSummary, encounter_id)
    if summary is None:
        return None
    return {"proposed": False, "candidates": len(shown), "best_score": summary.best_score,
            "likely_new": summary.likely_new, "engine": summary.engine}


def _name_taken(s: Session, name: str, species: str | None, except_id: str | None = None) -> bool:
    """True when another live individual of ``species`` already has this name (any case)."""
    wanted = name.casefold()
    q = select(Individual.id, Individual.name).where(Individual.merged_into_id.is_(None))
    q = q.where(Individual.species.is_(None) if species is None else Individual.species == species)
    clashes = [i for i, n in s.execute(q) if n.casefold() == wanted and i != except_id]
    return bool(clashes) and bool(set(clashes) - retired_individual_ids(s, clashes))


def _clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ReviewError("the name must not be empty")
    if len(cleaned) > 200:
        raise ReviewError("the name is too long (200 characters at most)")
    return cleaned


def _assign(catalog: Any, label_fmt: str, encounter_id: str, individual_id: str, reviewer: str,
            scores: dict[str, Any] | None, note: str, must_change: bool) -> Operation:
    reviewer = _reviewer(reviewer)
    with catalog.session() as s:
        enc = _encounter(s, encounter_id)
        ind = _individual(s, individual_id)
        previous = enc.individual_id
        if must_change and previous == ind.id:
            raise ReviewError(f"the encounter already belongs to {ind.name}")
        if scores is None:
            scores = _shown_scores(s, enc.id, ind.id)
        rec = Recorder(s, reviewer)
        rec.set(enc, individual_id=ind.id, state="confirmed")
        rec.decide(enc.id, "match", ind.id, scores, note)
        changes = Changes(frozenset({enc.id}), frozenset({ind.id} | ({previous} if previous else set())))
        return Operation.from_recorder(label_fmt.format(name=ind.name), changes, rec)


def confirm_match(catalog: Any, encounter_id: str, individual_id: str, reviewer: str,
                  scores: dict[str, Any] | None = None, note: str = "") -> Operation:
    """The encounter is this individual: assign it and mark it confirmed (decision ``match``).

    ``scores`` are the values the reviewer saw; when None, the stored candidate's are recorded.
    """
    return _assign(catalog, "Confirm as {name}", encounter_id, individual_id, reviewer, scores,
                   note, must_change=False)


def move_encounter(catalog: Any, encounter_id: str, individual_id: str, reviewer: str,
                   note: str = "") -> Operation:
    """Reassign an encounter to another individual (a correction; decision ``match``)."""
    return _assign(catalog, "Move to {name}", encounter_id, individual_id, reviewer, None, note,
                   must_change=True)


def reject_candidate(catalog: Any, encounter_id: str, individual_id: str, reviewer: str,
                     scores: dict[str, Any] | None = None, note: str = "") -> Operation:
    """The encounter is *not* this individual (decision ``no_match``); it is not proposed again."""
    reviewer = _reviewer(reviewer)
    with catalog.session() as s:
        enc = _encounter(s, encounter_id)
        ind = _individual(s, individual_id)
        if enc.individual_id == ind.id:
            raise ReviewError(f"the encounter is confirmed as {ind.name}; move or unassign it "
                              "before rejecting that individual")
        if scores is None:
            scores = _shown_scores(s, enc.id, ind.id)
        rec = Recorder(s, reviewer)
        rec.decide(enc.id, "no_match", ind.id, scores, note)
        return Operation.from_recorder(f"Not {ind.name}",
                                       Changes(frozenset({enc.id}), frozenset({ind.id})), rec)


def new_individual(catalog: Any, encounter_id: str, name: str, reviewer: str,
                   species: str | None = None, scores: dict[str, Any] | None = None,
                   note: str = "") -> Operation:
    """Name a new individual from this encounter (decision ``new_individual``).

    ``species`` defaults to the encounter's. A name already used by another individual of the
    same species (ignoring case) is refused.
    """
    reviewer = _reviewer(reviewer)
    name = _clean_name(name)
    with catalog.session() as s:
        enc = _encounter(s, encounter_id)
        if species is None:
            species = enc.species
        else:
            species = species.strip() or None
        if _name_taken(s, name, species):
            raise ReviewError(f"there is already an individual named {name!r}"
                              + (f" ({species})" if species else ""))
        previous = enc.individual_id
        rec = Recorder(s, reviewer)
        ind = Individual(name=name, species=species, aliases=[], notes="")
        rec.insert(ind)
        rec.set(enc, individual_id=ind.id, state="confirmed")
        rec.decide(enc.id, "new_individual", ind.id, scores, note)
        changes = Changes(frozenset({enc.id}), frozenset({ind.id} | ({previous} if previous else set())))
        return Operation.from_recorder(f"New individual {name}", changes, rec)


def _set_state(catalog: Any, label: str, encounter_id: str, reviewer: str, verdict: str,
               note: str, state: str, clear_individual: bool) -> Operation:
    reviewer = _reviewer(reviewer)
    with catalog.session() as s:
        enc = _encounter(s, encounter_id)
        previous = enc.individual_id
        rec = Recorder(s, reviewer)
        if clear_individual:
            rec.set(enc, state=state, individual_id=None)
        else:
            rec.set(enc, state=state)
        # A flag names the individual it was assigned to, so that individual's history shows it.
        rec.decide(enc.id, verdict, None if clear_individual else previous, None, note)
        touched = frozenset({previous}) if previous else frozenset()
        return Operation.from_recorder(label, Changes(frozenset({enc.id}), touched), rec)


def mark_unsure(catalog: Any, encounter_id: str, reviewer: str, note: str = "",
                individual_id: str | None = None, scores: dict[str, Any] | None = None) -> Operation:
    """Not sure (decision ``unsure``): nothing changes, but the queue shows it last."""
    reviewer = _reviewer(reviewer)
    with catalog.session() as s:
        enc = _encounter(s, encounter_id)
        ind = _individual(s, individual_id) if individual_id else None
        rec = Recorder(s, reviewer)
        rec.decide(enc.id, "unsure", ind.id if ind else None, scores, note)
        return Operation.from_recorder("Not sure", Changes(
            frozenset({enc.id}), frozenset({ind.id}) if ind else frozenset()), rec)


def flag_for_curator(catalog: Any, encounter_id: str, reviewer: str, note: str = "") -> Operation:
    """Ask a curator to look (state ``flagged``, decision ``flag``); the individual stays."""
    return _set_state(catalog, "Flag for curator", encounter_id, reviewer, "flag", note,
                      state="flagged", clear_individual=False)


def mark_unidentifiable(catalog: Any, encounter_id: str, reviewer: str, note: str = "") -> Operation:
    """No individual can be told from these photos (state ``unidentifiable``, unassigned)."""
    return _set_state(catalog, "Unidentifiable", encounter_id, reviewer, "unidentifiable", note,
                      state="unidentifiable", clear_individual=True)


def unassign_encounter(catalog: Any, encounter_id: str, reviewer: str, note: str = "") -> Operation:
    """Back to unreviewed, without an individual.

    The history records it as a ``revert`` of each decision in effect that settled the encounter
    (a match, new individual, flag or unidentifiable); undo brings them back.
    """
    reviewer = _reviewer(reviewer)
    with catalog.session() as s:
        enc = _encounter(s, encounter_id)
        if enc.state == "unreviewed" and enc.individual_id is None:
            raise ReviewError("the encounter is already unreviewed and unassigned")
        previous = enc.individual_id
        settled = settling_decisions(s, enc.id)
        rec = Recorder(s, reviewer)
        rec.set(enc, individual_id=None, state="unreviewed")
        for decision in settled:
            rec.decide(enc.id, "revert", decision.candidate_individual_id, None,
                       note or "unassigned", reverts_id=decision.id)
        return Operation.from_recorder("Unassign", Changes(
            frozenset({enc.id}), frozenset({previous}) if previous else frozenset()), rec)


def merge_individuals(catalog: Any, keep_id: str, merge_id: str, reviewer: str,
                      note: str = "") -> Operation:
    """``merge_id`` is the same animal as ``keep_id``: fold it in, deleting nothing.

    Its encounters move to ``keep_id`` (one ``match`` decision each), it points at the survivor
    through ``merged_into_id``, and its name and aliases become aliases of the survivor. Empty
    species/sex/life stage of the survivor are filled in; notes are appended. Different
    species are refused.
    """
    reviewer = _reviewer(reviewer)
    with catalog.session() as s:
        keep = _individual(s, keep_id)
        gone = _individual(s, merge_id)
        if keep.id == gone.id:
            raise ReviewError(f"{keep.name} and {gone.name} are already the same individual")
        if keep.species and gone.species and keep.species != gone.species:
            raise ReviewError(f"cannot merge {gone.name} ({gone.species}) into {keep.name} "
                              f"({keep.species}): different species")
        rec = Recorder(s, reviewer)
        moved = list(s.scalars(select(Encounter).where(Encounter.individual_id == gone.id)
                               .order_by(Encounter.taken_utc, Encounter.id)))
        decision_note = f"merged {gone.name} into {keep.name}" + (f": {note}" if note else "")
        for enc in moved:
            rec.set(enc, individual_id=keep.id)
            rec.decide(enc.id, "match", keep.id, None, decision_note)
        aliases = list(keep.aliases or [])
        for alias in [gone.name, *(gone.aliases or [])]:
            if alias != keep.name and alias not in aliases:
                aliases.append(alias)
        fill = {k: getattr(gone, k) for k in ("species", "sex", "life_stage")
                if getattr(keep, k) is None and getattr(gone, k) is not None}
        notes = keep.notes or ""
        if gone.notes and gone.notes not in notes:
            notes = f"{notes}\n\n{gone.notes}" if notes else gone.notes
        rec.set(keep, aliases=aliases, notes=notes, **fill)
        rec.set(gone, merged_into_id=keep.id)
        rec.record_edit(keep.id, "merge", decision_note,
                        {"merged_id": gone.id, "merged_name": gone.name,
                         "encounters_moved": len(moved)})
        changes = Changes(frozenset(e.id for e in moved), frozenset({keep.id, gone.id}))
        return Operation.from_recorder(f"Merge {gone.name} into {keep.name}", changes, rec)


def remove_individual(catalog: Any, individual_id: str, reviewer: str,
                      note: str = "") -> Operation:
    """Take an individual without sightings off the catalog's lists, as one undoable step.

    Why: naming a new individual and then finding it is a known one (its sighting moved there)
    left an individual of no sightings in the gallery and in every chooser, for good. Its row
    stays (decisions name it, and the trail must read as it happened): a ``remove`` decision
    retires it (``history.retired_individual_ids``), which hides it from lists and lookups and
    frees its name. Refused while a sighting is still its: move those, or merge it instead.
    """
    reviewer = _reviewer(reviewer)
    with catalog.session() as s:
        ind = s.get(Individual, individual_id)  # not resolved: never the merge's survivor
        if ind is None:
            raise NotFoundError(f"no individual with id {individual_id}")
        if ind.merged_into_id is not None:
            raise ReviewError(f"{ind.name} was merged into another individual already")
        if ind.id in retired_individual_ids(s, [ind.id]):
            raise ReviewError(f"{ind.name} is removed already")
        sightings = s.scalar(select(func.count()).where(Encounter.individual_id == ind.id))
        if sightings:
            raise ReviewError(f"{ind.name} has {sightings} sighting{'' if sightings == 1 else 's'}"
                              ": move them to another individual, or merge it into the one it "
                              "really is (its name then stays as an alias)")
        rec = Recorder(s, reviewer)
        rec.record_edit(ind.id, "remove", f"removed {ind.name} (no sightings)"
                        + (f": {note}" if note else ""), {"name": ind.name})
        return Operation.from_recorder(f"Remove {ind.name}",
                                       Changes(individuals=frozenset({ind.id})), rec)


def rename_individual(catalog: Any, individual_id: str, name: str, reviewer: str) -> Operation:
    """Give an individual a new display name; the old one becomes an alias (searchable)."""
    reviewer = _reviewer(reviewer)
    name = _clean_name(name)
    with catalog.session() as s:
        ind = _individual(s, individual_id)
        if name == ind.name:
            raise ReviewError(f"the individual is already named {name!r}")
        if _name_taken(s, name, ind.species, except_id=ind.id):
            raise ReviewError(f"there is already an individual named {name!r}"
                              + (f" ({ind.species})" if ind.species else ""))
        aliases = [a for a in (ind.aliases or []) if a != name]
        if ind.name not in aliases:
            aliases.append(ind.name)
        old = ind.name
        rec = Recorder(s, reviewer)
        rec.set(ind, name=name, aliases=aliases)
        rec.record_edit(ind.id, "rename", f"renamed {old} to {name}",
                        {"before": {"name": old}, "after": {"name": name}})
        return Operation.from_recorder(f"Rename {old} to {name}",
                                       Changes(individuals=frozenset({ind.id})), rec)


def _describe_edit(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``sex: none -> female; notes edited`` (notes can be long: the row's scores hold them)."""
    parts = []
    for key in sorted(before):
        label = key.replace("_", " ")
        if key == "notes":
            parts.append("notes edited")
        else:
            parts.append(f"{label}: {before[key] or 'none'} \u2192 {after[key] or 'none'}")
    return "; ".join(parts)


def update_individual(catalog: Any, individual_id: str, reviewer: str, **fields: Any) -> Operation:
    """Edit species, sex, life_stage or notes (other names are refused)."""
    reviewer = _reviewer(reviewer)
    unknown = sorted(set(fields) - set(INDIVIDUAL_FIELDS))
    if unknown:
        raise ReviewError(f"cannot edit {', '.join(unknown)} here "
                          f"(editable: {', '.join(INDIVIDUAL_FIELDS)})")
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise ReviewError(f"{key} must be text")
        if key == "notes":
            values[key] = value or ""
        else:
            values[key] = (value or "").strip() or None
    with catalog.session() as s:
        ind = _individual(s, individual_id)
        rec = Recorder(s, reviewer)
        step = rec.set(ind, **values)
        if step is not None:  # what really changed, as undo will restore it
            rec.record_edit(ind.id, "edit", _describe_edit(step.before, step.after),
                            {"before": step.before, "after": step.after})
        return Operation.from_recorder(f"Edit {ind.name}", Changes(individuals=frozenset({ind.id})), rec)
