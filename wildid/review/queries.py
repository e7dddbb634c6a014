"""Read-only views the review screens and the CLI show (frozen values, no ORM objects).

Every function opens its own short session; none writes. Merged individuals resolve to the
survivor everywhere, and an encounter left without boxes (possible after an undo) is hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from wildid.catalog.models import (
    ENCOUNTER_STATES,
    Annotation,
    Decision,
    Encounter,
    Individual,
    MatchCandidate,
    MatchSummary,
    Photo,
)
from wildid.errors import NotFoundError, ReviewError
from wildid.ingest.thumbnails import thumbnail_path
from wildid.review.details import (
    annotation_infos,
    chunks,
    encounter_details,
    haversine_km,
    individual_names,
)
from wildid.review.history import (
    deferred_encounters,
    merge_links,
    merged_group,
    merged_members,
    rejected_pairs,
    resolve_with,
    retired_individual_ids,
    reverted_ids,
    visible_encounter,
)
from wildid.review.table import encounter_rows
from wildid.review.views import (
    AnnotationInfo,
    CandidateView,
    DecisionRow,
    EncounterDetail,
    EncounterRow,
    IndividualDetail,
    IndividualSummary,
)

__all__ = [
    "AnnotationInfo", "CandidateView", "DecisionRow", "EncounterDetail", "EncounterRow",
    "IndividualDetail", "IndividualSummary", "QUEUE_ORDERS", "INDIVIDUAL_ORDERS",
    "annotation_photo_files", "candidates_for", "decision_history", "encounter_detail",
    "encounter_photo_files", "encounter_rows", "haversine_km", "individual_detail",
    "individual_photos", "list_individuals", "matched_first", "rejected_pairs", "review_queue",
]

QUEUE_ORDERS = ("confidence", "oldest")
INDIVIDUAL_ORDERS = ("name", "last_seen", "sightings")
_EMPTY_INLIERS = np.zeros((0, 4), dtype=np.float32)
_MIN_TIME = datetime.min.replace(tzinfo=UTC)


def encounter_detail(catalog: Any, encounter_id: str) -> EncounterDetail:
    """One encounter with its annotations; NotFoundError when the id names none."""
    with catalog.session() as s:
        detail = encounter_details(catalog, s, [encounter_id]).get(encounter_id)
    if detail is None:
        raise NotFoundError(f"no encounter with id {encounter_id}")
    return detail


def _inliers(blob: bytes | None) -> np.ndarray:
    if not blob or len(blob) % 16:
        return _EMPTY_INLIERS.copy()
    return np.frombuffer(blob, dtype=np.float32).reshape(-1, 4).copy()


def candidates_for(catalog: Any, encounter_id: str, exclude_rejected: bool = True) -> list[CandidateView]:
    """The engine's ranked candidates for an encounter, as the review screen shows them.

    Candidates that were merged resolve to the survivor (best rank kept, duplicates dropped);
    individuals the reviewer rejected for this encounter are left out unless
    ``exclude_rejected`` is False. Ranks are renumbered 0, 1, 2... after that filtering.
    """
    with catalog.session() as s:
        query = s.get(Encounter, encounter_id)
        if query is None:
            raise NotFoundError(f"no encounter with id {encounter_id}")
        links = merge_links(s)
        rejected = rejected_pairs(s, encounter_id) if exclude_rejected else set()
        rows = list(s.scalars(select(MatchCandidate).where(MatchCandidate.encounter_id == encounter_id)
                              .order_by(MatchCandidate.rank, MatchCandidate.score.desc())))
        chosen: list[tuple[str, MatchCandidate]] = []
        seen: set[str] = set()
        for row in rows:
            survivor = resolve_with(links, row.individual_id)
            if survivor in seen or survivor in rejected or row.individual_id in rejected:
                continue
            seen.add(survivor)
            chosen.append((survivor, row))
        if not chosen:
            return []
        return _views(catalog, s, query, links, chosen, range(len(chosen)))


def candidate_view(catalog: Any, encounter_id: str, row: MatchCandidate) -> CandidateView:
    """A candidate computed on request (``CatalogEngine.compare``), not stored, as the review
    screen shows stored ones; its ``rank`` is where it ranks among all."""
    with catalog.session() as s:
        query = s.get(Encounter, encounter_id)
        if query is None:
            raise NotFoundError(f"no encounter with id {encounter_id}")
        links = merge_links(s)
        view = _views(catalog, s, query, links,
                      [(resolve_with(links, row.individual_id), row)], [row.rank])[0]
    return replace(view, asked=True)


def _views(catalog: Any, s: Any, query: Encounter, links: dict[str, str],
           chosen: list[tuple[str, MatchCandidate]], ranks: Any) -> list[CandidateView]:
    """Candidate rows (``(survivor individual, row)``) as the review screen shows them."""
    seen = {survivor for survivor, _row in chosen}
    individuals = {i.id: i for i in s.scalars(select(Individual).where(Individual.id.in_(seen)))}
    best = annotation_infos(catalog, s, annotation_ids=[r.best_annotation_id for _, r in chosen
                                                        if r.best_annotation_id])
    stats = _sighting_stats(s, links, seen, exclude=query.id)
    query_gps = ((query.gps_lat, query.gps_lon)
                 if query.gps_lat is not None and query.gps_lon is not None else None)
    out: list[CandidateView] = []
    for rank, (survivor, row) in zip(ranks, chosen, strict=True):
        ind = individuals.get(survivor)
        n, last_seen, last_gps = stats.get(survivor, (0, None, None))
        days = (None if last_seen is None or query.taken_utc is None
                else (query.taken_utc - last_seen).total_seconds() / 86400.0)
        distance = None if last_gps is None or query_gps is None else haversine_km(query_gps, last_gps)
        infos = best.get(row.best_annotation_id or "", [])
        out.append(CandidateView(
            rank=rank, individual_id=survivor, name=ind.name if ind else "?",
            species=ind.species if ind else None, score=row.score,
            raw_scores=dict(row.raw_scores or {}), query_annotation_id=row.query_annotation_id,
            best_annotation=infos[0] if infos else None, inliers=_inliers(row.inliers),
            n_encounters=n, last_seen=last_seen, last_seen_gps=last_gps,
            days_since_last_seen=days, distance_km=distance, engine=row.engine))
    return out


def _sighting_stats(s: Any, links: dict[str, str], survivors: set[str], exclude: str
                    ) -> dict[str, tuple[int, datetime | None, tuple[float, float] | None]]:
    """Per survivor: number of encounters, latest sighting (not ``exclude``), latest position."""
    absorbed = merged_members(links)
    members = {m: sv for sv in survivors for m in {sv} | absorbed.get(sv, set())}
    rows = s.execute(select(Encounter.id, Encounter.individual_id, Encounter.taken_utc,
                            Encounter.gps_lat, Encounter.gps_lon)
                     .where(Encounter.individual_id.in_(list(members)), visible_encounter()))
    count: dict[str, int] = {}
    last: dict[str, datetime] = {}
    last_pos: dict[str, tuple[datetime, tuple[float, float]]] = {}
    for enc_id, ind, taken, lat, lon in rows:
        sv = members[ind]
        count[sv] = count.get(sv, 0) + 1
        if enc_id == exclude or taken is None:
            continue
        if sv not in last or taken > last[sv]:
            last[sv] = taken
        if lat is not None and lon is not None and (sv not in last_pos or taken > last_pos[sv][0]):
            last_pos[sv] = (taken, (lat, lon))
    return {sv: (count.get(sv, 0), last.get(sv), last_pos[sv][1] if sv in last_pos else None)
            for sv in survivors}


# Decisions that change who is known, or through which photos (an undo can do either):
# candidates computed before one of them may lack the individual an encounter shows.
KNOWLEDGE_VERDICTS = ("match", "new_individual", "merge", "revert")


def stale_results(catalog: Any, encounter_ids: Sequence[str]) -> list[str]:
    """Those of ``encounter_ids`` still to review whose stored candidates are out of date.

    Out of date: never matched, set aside by a box edit, computed before the last decision
    that named an individual, gave one more photos, merged two or undid any of these, or
    holding a candidate the reviewer has since said "not this one" about. The review screen
    asks this for the encounters it shows next, so that naming an animal makes it a candidate
    for its later sightings in the same card, and so that a rejected first candidate does not
    leave the scores and the "likely new" verdict that were taken with it in first place: the
    next candidate's score was calibrated as a runner-up's, and the verdict was taken on the
    rejected one's score. What the stored list holds decides, not when it was written: a
    second rejection made while the first one's matching ran is caught too. In the given
    order; a few short reads.
    """
    wanted = list(dict.fromkeys(encounter_ids))
    if not wanted:
        return []
    with catalog.session() as s:
        latest = s.scalar(select(func.max(Decision.decided_at))
                          .where(Decision.verdict.in_(KNOWLEDGE_VERDICTS)))
        rows = s.execute(
            select(Encounter.id, MatchSummary.computed_at)
            .outerjoin(MatchSummary, MatchSummary.encounter_id == Encounter.id)
            .where(Encounter.id.in_(wanted), Encounter.individual_id.is_(None),
                   Encounter.state.in_(("unreviewed", "flagged")))).all()
        stale = {e for e, computed in rows
                 if computed is None or (latest is not None and computed < latest)}
        said_no = set(s.scalars(select(Decision.encounter_id).distinct().where(
            Decision.encounter_id.in_([e for e, _ in rows if e not in stale]),
            Decision.verdict == "no_match"))) if len(stale) < len(rows) else set()
        for e in said_no:  # still proposing an individual the reviewer rejected?
            rejected = rejected_pairs(s, e)
            if rejected and s.scalar(select(MatchCandidate.encounter_id).where(
                    MatchCandidate.encounter_id == e,
                    MatchCandidate.individual_id.in_(rejected)).limit(1)) is not None:
                stale.add(e)
    return [e for e in wanted if e in stale]


def review_queue(catalog: Any, order: str = "confidence",
                 states: Sequence[str] = ("unreviewed",)) -> list[str]:
    """Encounter ids to review, in order.

    ``confidence``: highest best score first, encounters without results last (oldest first);
    ``oldest``: by photo time. Either way, encounters whose latest decision is ``unsure`` go
    to the very end, so "not sure, show me the next" moves on.
    """
    if order not in QUEUE_ORDERS:
        raise ReviewError(f"unknown queue order {order!r} (use one of {', '.join(QUEUE_ORDERS)})")
    bad = [st for st in states if st not in ENCOUNTER_STATES]
    if bad:
        raise ReviewError(f"unknown encounter state {bad[0]!r}")
    with catalog.session() as s:
        q = (select(Encounter.id).outerjoin(MatchSummary, MatchSummary.encounter_id == Encounter.id)
             .where(Encounter.state.in_(list(states)), visible_encounter()))
        by_time = (Encounter.taken_utc.is_(None), Encounter.taken_utc, Encounter.id)
        if order == "confidence":
            q = q.order_by(MatchSummary.best_score.is_(None), MatchSummary.best_score.desc(), *by_time)
        else:
            q = q.order_by(*by_time)
        ids = list(s.scalars(q))
        deferred = deferred_encounters(s)
    if not deferred:
        return ids
    return [i for i in ids if i not in deferred] + [i for i in ids if i in deferred]


def _individuals_filter(only: list[str] | None) -> Any:
    """Restrict per-individual aggregates to ``only`` when it is short (a search while typing)."""
    if only is not None and len(only) <= 900:
        return Encounter.individual_id.in_(only)
    return Encounter.individual_id.is_not(None)


def _individual_aggregates(s: Any, only: list[str] | None = None
                           ) -> dict[str, tuple[int, datetime | None, datetime | None]]:
    rows = s.execute(select(Encounter.individual_id, func.count(), func.min(Encounter.taken_utc),
                            func.max(Encounter.taken_utc))
                     .where(_individuals_filter(only), visible_encounter())
                     .group_by(Encounter.individual_id))
    return {i: (n, first, last) for i, n, first, last in rows}


def _latest_photo_by_individual(s: Any, only: list[str] | None = None) -> dict[str, str]:
    """sha256 of a photo from each individual's latest encounter (its list thumbnail)."""
    rn = func.row_number().over(
        partition_by=Encounter.individual_id,
        order_by=(Encounter.taken_utc.is_(None), Encounter.taken_utc.desc(), Annotation.created_at))
    ranked = (select(Encounter.individual_id.label("ind"), Annotation.photo_id.label("photo"),
                     rn.label("rn"))
              .join(Annotation, Annotation.encounter_id == Encounter.id)
              .where(_individuals_filter(only)).subquery())
    rows = s.execute(select(ranked.c.ind, Photo.sha256).join(Photo, Photo.id == ranked.c.photo)
                     .where(ranked.c.rn == 1))
    return {i: sha for i, sha in rows}


def _fold(absorbed: dict[str, set[str]], per_id: dict[str, Any], survivor: str
          ) -> tuple[int, Any, Any]:
    n, first, last = 0, None, None
    for member in {survivor} | absorbed.get(survivor, set()):
        if member not in per_id:
            continue
        m_n, m_first, m_last = per_id[member]
        n += m_n
        first = m_first if first is None or (m_first is not None and m_first < first) else first
        last = m_last if last is None or (m_last is not None and m_last > last) else last
    return n, first, last


def _summary(catalog: Any, ind: Individual, agg: tuple[int, Any, Any], sha: str | None) -> IndividualSummary:
    return IndividualSummary(
        id=ind.id, name=ind.name, species=ind.species, sex=ind.sex, life_stage=ind.life_stage,
        n_encounters=agg[0], first_seen=agg[1], last_seen=agg[2],
        thumb_path=thumbnail_path(catalog.thumb_dir, sha) if sha else None,
        aliases=list(ind.aliases or []))


def list_individuals(catalog: Any, search: str = "", species: str | None = None,
                     order: str = "name") -> list[IndividualSummary]:
    """Known individuals (merged-away ones excluded); ``search`` matches name and aliases."""
    if order not in INDIVIDUAL_ORDERS:
        raise ReviewError(f"unknown order {order!r} (use one of {', '.join(INDIVIDUAL_ORDERS)})")
    needle = search.strip().casefold()
    with catalog.session() as s:
        q = select(Individual).where(Individual.merged_into_id.is_(None))
        if species is not None:
            q = q.where(Individual.species == species)
        individuals = [i for i in s.scalars(q)
                       if not needle or needle in i.name.casefold()
                       or any(needle in a.casefold() for a in (i.aliases or []))]
        retired = retired_individual_ids(s)
        absorbed = merged_members(merge_links(s))
        # Encounters may still name ids merged into a listed individual (synced data).
        only = (sorted({m for i in individuals for m in {i.id} | absorbed.get(i.id, set())})
                if needle or species is not None else None)
        agg = _individual_aggregates(s, only)
        photos = _latest_photo_by_individual(s, only)
        out = []
        for ind in individuals:
            if ind.id in retired:
                continue
            folded = _fold(absorbed, agg, ind.id)
            out.append(_summary(catalog, ind, folded, photos.get(ind.id)))
    if order == "name":
        out.sort(key=lambda r: (r.name.casefold(), r.id))
    elif order == "last_seen":
        out.sort(key=lambda r: (r.last_seen is None, -(r.last_seen.timestamp() if r.last_seen else 0),
                                r.name.casefold()))
    else:
        out.sort(key=lambda r: (-r.n_encounters, r.name.casefold()))
    return out


def individual_detail(catalog: Any, individual_id: str) -> IndividualDetail:
    """The individual page; an id merged away resolves to the survivor."""
    with catalog.session() as s:
        if s.get(Individual, individual_id) is None:
            raise NotFoundError(f"no individual with id {individual_id}")
        links = merge_links(s)
        survivor_id = resolve_with(links, individual_id)
        ind = s.get(Individual, survivor_id)
        assert ind is not None
        group = merged_group(links, survivor_id)
        merged_from = sorted(((i, n) for i, n in individual_names(s, group - {survivor_id}).items()),
                             key=lambda t: t[1].casefold())
        enc_ids = list(s.scalars(select(Encounter.id).where(Encounter.individual_id.in_(list(group)),
                                                            visible_encounter())))
        details = list(encounter_details(catalog, s, enc_ids).values())
        photos = _latest_photo_by_individual(s, sorted(group))
        sha = next((photos[m] for m in [survivor_id, *sorted(group)] if m in photos), None)
    details.sort(key=lambda d: (d.taken_utc is not None, d.taken_utc or _MIN_TIME, d.id), reverse=True)
    chronological = sorted(details, key=lambda d: (d.taken_utc is None, d.taken_utc or _MIN_TIME, d.id))
    times = [d.taken_utc for d in details if d.taken_utc is not None]
    summary = _summary(catalog, ind, (len(details), min(times, default=None), max(times, default=None)), sha)
    return IndividualDetail(
        **{k: getattr(summary, k) for k in summary.__dataclass_fields__},
        notes=ind.notes or "", merged_from=merged_from, encounters=details,
        sightings=[(d.taken_utc, d.gps_lat, d.gps_lon) for d in chronological],
        created_at=ind.created_at)


def individual_photos(catalog: Any, individual_id: str, first: str | None = None
                      ) -> list[AnnotationInfo]:
    """Every box on an individual's sightings (merged ones included), newest sighting first,
    with the annotation ``first`` (the one a match was found on) in front.

    What the review screen steps through beside a query: the matcher shows a candidate's best
    matching photo, and a reviewer checks the animal's other sides and sightings before
    confirming it; an individual with one photo matching by chance shows few others alike.
    """
    detail = individual_detail(catalog, individual_id)
    photos = [a for e in detail.encounters for a in e.annotations]
    best = next((a for a in photos if a.id == first), None)
    return photos if best is None else matched_first(photos, best)


def matched_first(photos: Sequence[AnnotationInfo], best: AnnotationInfo) -> list[AnnotationInfo]:
    """``best`` (the box a match was found on), then the others of ``photos`` in their order.

    ``best`` comes first even when it is no longer one of the individual's boxes (moved after
    the match): it is what the match showed. The review screen reads an individual's photos
    once and orders them this way for each encounter, whose best match may differ.
    """
    return [best, *(a for a in photos if a.id != best.id)]


def decision_history(catalog: Any, encounter_id: str | None = None, individual_id: str | None = None,
                     limit: int | None = None) -> list[DecisionRow]:
    """The audit trail, newest first; ``individual_id`` covers ids merged into it."""
    with catalog.session() as s:
        candidate = aliased(Individual)
        q = (select(Decision, candidate.name, Decision.id.in_(reverted_ids()))
             .outerjoin(candidate, candidate.id == Decision.candidate_individual_id)
             .order_by(Decision.decided_at.desc(), Decision.id.desc()))
        if encounter_id is not None:
            q = q.where(Decision.encounter_id == encounter_id)
        if individual_id is not None:
            if s.get(Individual, individual_id) is None:
                raise NotFoundError(f"no individual with id {individual_id}")
            links = merge_links(s)
            group = merged_group(links, resolve_with(links, individual_id))
            q = q.where(Decision.candidate_individual_id.in_(list(group)))
        if limit is not None:
            q = q.limit(limit)
        return [DecisionRow(id=d.id, decided_at=d.decided_at, reviewer=d.reviewer, verdict=d.verdict,
                            encounter_id=d.encounter_id,
                            candidate_individual_id=d.candidate_individual_id, candidate_name=name,
                            scores=d.scores, note=d.note, reverts_id=d.reverts_id,
                            reverted=bool(reverted))
                for d, name, reverted in s.execute(q)]


def knows_individuals(catalog: Any) -> bool:
    """Whether the catalog has any individual with a sighting: on a first card it has none,
    and "no known individual resembles this animal" would read as if matching had failed."""
    with catalog.session() as s:
        return bool(s.scalar(select(exists().where(Encounter.individual_id.is_not(None)))))


def catalog_species_names(catalog: Any) -> list[str]:
    """The species written on the catalog's individuals and encounters, each spelling once
    (case aside), most used first: the species fields offer them next to the profiles'."""
    counts: dict[str, tuple[int, str]] = {}
    with catalog.session() as s:
        for column in (Individual.species, Encounter.species):
            for name, n in s.execute(select(func.trim(column), func.count())
                                     .where(func.trim(func.coalesce(column, "")) != "")
                                     .group_by(func.trim(column))):
                seen, first = counts.get(name.lower(), (0, name))
                counts[name.lower()] = (seen + n, first)
    return [name for _n, name in sorted(counts.values(), key=lambda t: (-t[0], t[1]))]


def encounters_with_species(catalog: Any, species: str | None) -> list[str]:
    """The encounters whose own species is ``species``, case and spaces aside (None or blank:
    those with none), oldest first: what `wildid species --from` changes."""
    wanted = (species or "").strip().lower()
    own = func.lower(func.trim(func.coalesce(Encounter.species, "")))
    with catalog.session() as s:
        return list(s.scalars(select(Encounter.id).where(own == wanted)
                              .order_by(Encounter.created_at, Encounter.id)))


def encounter_photo_files(catalog: Any, encounter_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each encounter's photo files as imported, one per box, in time order.

    The command line lists encounters by id; someone naming or confirming them there needs to
    know which photo each one is (``wildid encounters``, ``wildid match``).
    """
    out: dict[str, list[str]] = {}
    with catalog.session() as s:
        for some in chunks(list(encounter_ids)):
            q = (select(Annotation.encounter_id, Photo.original_path)
                 .join(Photo, Photo.id == Annotation.photo_id)
                 .where(Annotation.encounter_id.in_(some))
                 .order_by(Photo.taken_utc, Photo.original_path, Annotation.id))
            for encounter_id, path in s.execute(q):
                out.setdefault(encounter_id, []).append(path)
    return out


def annotation_photo_files(catalog: Any, annotation_ids: Sequence[str]) -> dict[str, str]:
    """The photo file (as imported) each annotation is a box on."""
    out: dict[str, str] = {}
    with catalog.session() as s:
        for some in chunks(list(dict.fromkeys(annotation_ids))):
            q = (select(Annotation.id, Photo.original_path)
                 .join(Photo, Photo.id == Annotation.photo_id)
                 .where(Annotation.id.in_(some)))
            out.update((key, path) for key, path in s.execute(q))
    return out
