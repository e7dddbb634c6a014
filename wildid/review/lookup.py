"""Finding records from what a person types: a full id, a unique id prefix (like git), or a name.

Ids are UUIDv7 strings: the first 12 hex digits are a millisecond timestamp, so records made by
one import share long prefixes, while the last 12 are random. So a piece of an id must be at
least 8 characters and is looked up as a prefix first, then as a suffix (the random tail is
what tells records of one batch apart); an ambiguous one is refused with the matches listed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wildid.catalog.models import Encounter, ImportBatch, Individual
from wildid.errors import NotFoundError, ReviewError
from wildid.ids import SHORT_ID_LENGTH
from wildid.review.history import merge_links, resolve_with, retired_individual_ids

__all__ = ["MIN_PREFIX", "find_encounter_id", "find_import_batch_id", "find_individual_id"]

MIN_PREFIX = SHORT_ID_LENGTH  # what messages show (wildid.ids.short_id) can be typed back
_SHOWN = 5


def _by_piece(s: Session, model: Any, text: str, what: str) -> list[str]:
    prefix = text.strip().lower()
    if not prefix:
        raise ReviewError(f"no {what} id given")
    if len(prefix) < MIN_PREFIX and len(prefix) != 36:
        raise ReviewError(f"give at least {MIN_PREFIX} characters of the {what} id ({prefix!r} is "
                          "too short)")
    # A range on the primary key uses its index, unlike LIKE with SQLite's default collation.
    found = list(s.scalars(select(model.id).where(model.id >= prefix, model.id < prefix + "~")
                           .order_by(model.id).limit(_SHOWN + 1)))
    if not found and len(prefix) < 36:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = list(s.scalars(select(model.id).where(model.id.like("%" + escaped, escape="\\"))
                               .order_by(model.id).limit(_SHOWN + 1)))
    return found


def _ambiguous(what: str, text: str, options: list[str]) -> ReviewError:
    listed = ", ".join(options[:_SHOWN]) + (", ..." if len(options) > _SHOWN else "")
    return ReviewError(f"{what} {text!r} is ambiguous: it matches {listed}")


def _one_by_piece(s: Session, model: Any, text: str, what: str) -> str:
    """The one id of ``model`` that ``text`` names (see :func:`_by_piece`); none or several
    is an error saying so."""
    matches = _by_piece(s, model, text, what)
    if not matches:
        raise NotFoundError(f"no {what} id starts or ends with {text.strip()!r}")
    if len(matches) > 1:
        raise _ambiguous(f"{what} id", text, matches)
    return matches[0]


def find_encounter_id(s: Session, text: str) -> str:
    """The encounter id that ``text`` (an id, or a unique prefix or suffix of one) names."""
    return _one_by_piece(s, Encounter, text, "encounter")


def find_import_batch_id(s: Session, text: str) -> str:
    """The import that ``text`` names: ``latest`` (the last one started), an id, or a unique
    piece of one (``wildid import --json`` prints its ``batch_id``)."""
    if text.strip().lower() == "latest":
        found = s.scalars(select(ImportBatch.id).order_by(ImportBatch.started_at.desc(),
                                                         ImportBatch.id.desc()).limit(1)).first()
        if found is None:
            raise NotFoundError("nothing was imported into this catalog yet")
        return found
    return _one_by_piece(s, ImportBatch, text, "import")


def find_individual_id(s: Session, text: str, resolve: bool = True) -> str:
    """The individual that ``text`` names: an id, a unique id prefix/suffix, a name or an alias.

    Names are matched ignoring case; a current name wins over an alias. Merged-away ids resolve
    to the survivor unless ``resolve`` is False.
    """
    wanted = " ".join(text.split())
    if not wanted:
        raise ReviewError("no individual given")
    found: list[str] = []
    if len(wanted) >= MIN_PREFIX and " " not in wanted:
        found = _by_piece(s, Individual, wanted, "individual")
        if len(found) > 1:
            raise _ambiguous("individual id", text, found)
    if not found:
        folded = wanted.casefold()
        live = [(i, n, a) for i, n, a in s.execute(
            select(Individual.id, Individual.name, Individual.aliases)
            .where(Individual.merged_into_id.is_(None)))]
        retired = retired_individual_ids(s, [i for i, _, _ in live])
        by_name = [i for i, n, _ in live if n.casefold() == folded and i not in retired]
        by_alias = [i for i, _, a in live
                    if any(x.casefold() == folded for x in (a or [])) and i not in retired]
        found = by_name or by_alias
        if len(found) > 1:
            raise _ambiguous("name", text, found)
    if not found:
        raise NotFoundError(f"no individual named {wanted!r}, and no individual id starts or ends "
                            "with it")
    return resolve_with(merge_links(s), found[0]) if resolve else found[0]
