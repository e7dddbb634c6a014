"""The flat encounters table: one SQL query for 100,000 rows, no per-row work beyond a tuple.

Aggregates (photo count, representative photo) come from one grouped subquery over
``annotations`` (read along its ``encounter_id`` index), joined once; names and scores by plain
outer joins. Only rows whose individual was merged away (rare: synced data) need a second, tiny
look-up to show the survivor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, func, or_, select, type_coerce

from wildid.catalog.models import Annotation, Encounter, Individual, MatchSummary, Photo
from wildid.errors import NotFoundError
from wildid.review.details import individual_names
from wildid.review.history import merge_links, merged_group, resolve_with
from wildid.review.views import EncounterRow


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def encounter_rows(catalog: Any, state: str | None = None, individual_id: str | None = None,
                   search: str = "", limit: int | None = None) -> list[EncounterRow]:
    """Every encounter with at least one box, newest first, as flat rows for a table view.

    ``individual_id`` includes encounters of ids merged into it; ``search`` matches (ASCII
    case-insensitively) the individual's name, observer, species, or the start of the id.
    """
    per_encounter = (select(Annotation.encounter_id.label("eid"),
                            func.count(Annotation.photo_id.distinct()).label("n"),
                            func.min(Annotation.photo_id).label("photo"))
                     .where(Annotation.encounter_id.is_not(None))
                     .group_by(Annotation.encounter_id).subquery())
    # The time comes back as SQLite's text and is parsed below: the generic column type's
    # per-value processing would cost more than the whole query.
    q = (select(Encounter.id, type_coerce(Encounter.taken_utc, String), Encounter.state,
                Encounter.individual_id, Individual.name, per_encounter.c.n, Encounter.observer,
                Encounter.species, Encounter.gps_lat, Encounter.gps_lon, MatchSummary.best_score,
                Photo.sha256, Individual.merged_into_id, Photo.original_path)
         .join(per_encounter, per_encounter.c.eid == Encounter.id)
         .outerjoin(Individual, Individual.id == Encounter.individual_id)
         .outerjoin(MatchSummary, MatchSummary.encounter_id == Encounter.id)
         .outerjoin(Photo, Photo.id == per_encounter.c.photo)
         # SQLite sorts NULL lowest, so DESC puts encounters without a time last.
         .order_by(Encounter.taken_utc.desc(), Encounter.id))
    if state is not None:
        q = q.where(Encounter.state == state)
    text = search.strip()
    if text:
        pattern = _like(text)
        id_prefix = _like(text.lower())[1:]  # "abc%": the id starts with it
        q = q.where(or_(Individual.name.ilike(pattern, escape="\\"),
                        Encounter.observer.ilike(pattern, escape="\\"),
                        Encounter.species.ilike(pattern, escape="\\"),
                        Encounter.id.like(id_prefix, escape="\\")))
    if limit is not None:
        q = q.limit(limit)
    with catalog.session() as s:
        links: dict[str, str] | None = None
        if individual_id is not None:
            if s.get(Individual, individual_id) is None:
                raise NotFoundError(f"no individual with id {individual_id}")
            links = merge_links(s)
            q = q.where(Encounter.individual_id.in_(
                list(merged_group(links, resolve_with(links, individual_id)))))
        # Plain tuples straight from the DBAPI cursor: no column here needs type processing
        # (the time is parsed below), and building 100k Row objects would cost ~20 %.
        result = s.connection().execute(q)
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
        merged = {r[3] for r in rows if r[12] is not None}
        if merged:
            links = links if links is not None else merge_links(s)
            survivors = {i: resolve_with(links, i) for i in merged}
            names = individual_names(s, set(survivors.values()))
    thumb_dir = catalog.thumb_dir
    parse = datetime.fromisoformat
    out = [EncounterRow(r[0], None if r[1] is None else parse(r[1] + "+00:00"), *r[2:12], thumb_dir,
                        r[13]) for r in rows]
    if merged:
        for k, row in enumerate(out):
            if row.individual_id in survivors:
                survivor = survivors[row.individual_id]
                out[k] = row._replace(individual_id=survivor, individual_name=names.get(survivor))
    return out
