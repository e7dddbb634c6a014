"""CLI review commands: decisions (audit trail), confirm, reject, name, merge, rename, split.

They call the same core operations as the desktop app. Ids may be given as a unique prefix of at
least 8 characters (like git); individuals also by name or alias.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from wildid.catalog import open_catalog
from wildid.cli.arguments import count
from wildid.cli.output import print_json, print_table
from wildid.ids import short_id
from wildid.review import (
    confirm_match,
    decision_history,
    encounter_detail,
    merge_individuals,
    new_individual,
    reject_candidate,
    remove_individual,
    rename_individual,
)
from wildid.review.lookup import find_encounter_id, find_individual_id

T = TypeVar("T")


def default_reviewer() -> str:
    """``$WILDID_REVIEWER``, else the login name: every decision records who made it."""
    name = os.environ.get("WILDID_REVIEWER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    reviewer = argparse.ArgumentParser(add_help=False)
    reviewer.add_argument("--reviewer", default=None, metavar="NAME",
                          help="who decides (default: $WILDID_REVIEWER or your login name)")
    parents = [common, reviewer]

    p = sub.add_parser("decisions", parents=[common], help="show the review audit trail",
                       description="Decisions, newest first: who decided what, when, seeing which "
                       "scores. Undone decisions stay listed, followed by their revert rows.")
    p.add_argument("--encounter", metavar="ID", help="only this encounter (id or unique prefix)")
    p.add_argument("--individual", metavar="ID", help="only decisions naming this individual")
    p.add_argument("--limit", type=count(0), default=0, help="show at most this many (0: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_decisions)

    p = sub.add_parser("confirm", parents=parents, help="confirm an encounter as an individual")
    p.add_argument("encounter", metavar="ENCOUNTER_ID")
    p.add_argument("individual", metavar="INDIVIDUAL", help="id, unique id prefix, or name")
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_confirm)

    p = sub.add_parser("reject", parents=parents,
                       help="record that an encounter is not an individual")
    p.add_argument("encounter", metavar="ENCOUNTER_ID")
    p.add_argument("individual", metavar="INDIVIDUAL", help="id, unique id prefix, or name")
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser("name", parents=parents, help="name a new individual from an encounter")
    p.add_argument("encounter", metavar="ENCOUNTER_ID")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--species", help="species of the new individual (default: the encounter's)")
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_name)

    p = sub.add_parser("merge", parents=parents,
                       help="merge two individuals that are the same animal")
    p.add_argument("keep", metavar="KEEP", help="the individual that stays")
    p.add_argument("merge", metavar="MERGE", help="the individual folded into KEEP")
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("rename", parents=parents, help="rename an individual (old name kept as alias)")
    p.add_argument("individual", metavar="INDIVIDUAL")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.set_defaults(func=cmd_rename)

    p = sub.add_parser("remove", parents=parents,
                       help="remove an individual that has no sightings (named by mistake)",
                       description="An individual whose sightings were all moved to another "
                       "(it was named new, then found to be a known animal) stays in every list. "
                       "This takes it off them; the decision is on the audit trail (`wildid "
                       "decisions --individual NAME`) and its name is free again. Refused while "
                       "it has sightings: move them, or merge it into the one it really is.")
    p.add_argument("individual", metavar="INDIVIDUAL", help="id, unique id prefix, or name")
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("split", parents=parents,
                       help="give photos of a burst that show another animal their own encounter",
                       description="An import puts one camera's photos taken within the burst gap "
                       "into one encounter; when some of them show another animal (a herd), "
                       "the boxes on the photos named here move together into one new encounter "
                       "of that animal, so one decision names it. --each gives every box an "
                       "encounter of its own instead (several other animals), as Own encounter "
                       "(O) does in the app's box editor. Then the encounters are matched again.")
    p.add_argument("encounter", metavar="ENCOUNTER_ID")
    p.add_argument("photos", metavar="PHOTO", nargs="+",
                   help="a photo of the encounter by file name (as `wildid encounters` and "
                   "`wildid match` show it) or path, or 8 or more characters of a box's "
                   "annotation id")
    p.add_argument("--each", action="store_true",
                   help="an encounter for each box (they show different animals)")
    p.add_argument("--no-identify", action="store_true",
                   help="do not extract features and match the encounters afterwards")
    p.set_defaults(func=cmd_split)


def _reviewer(args: argparse.Namespace) -> str:
    return (args.reviewer or "").strip() or default_reviewer()


def _lookup(catalog: Any, find: Callable[[Session], T]) -> T:
    """Resolve what the user typed in a short read-only session."""
    with catalog.session() as s:
        return find(s)


def cmd_confirm(args: argparse.Namespace) -> int:
    with open_catalog(args.catalog, create=False) as catalog:
        enc, ind = _lookup(catalog, lambda s: (find_encounter_id(s, args.encounter),
                                               find_individual_id(s, args.individual)))
        confirm_match(catalog, enc, ind, _reviewer(args), note=args.note)
        detail = encounter_detail(catalog, enc)
    print(f"Confirmed encounter {short_id(enc)} as {detail.individual_name} ({short_id(ind)})")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    with open_catalog(args.catalog, create=False) as catalog:
        enc, ind = _lookup(catalog, lambda s: (find_encounter_id(s, args.encounter),
                                               find_individual_id(s, args.individual)))
        op = reject_candidate(catalog, enc, ind, _reviewer(args), note=args.note)
    print(f"Recorded: encounter {short_id(enc)} is {op.label[0].lower()}{op.label[1:]} "
          f"({short_id(ind)}); it will not be proposed again for this encounter")
    return 0


def cmd_name(args: argparse.Namespace) -> int:
    with open_catalog(args.catalog, create=False) as catalog:
        enc = _lookup(catalog, lambda s: find_encounter_id(s, args.encounter))
        new_individual(catalog, enc, args.name, _reviewer(args), species=args.species,
                       note=args.note)
        detail = encounter_detail(catalog, enc)
    print(f"New individual {detail.individual_name} ({short_id(detail.individual_id)}) "
          f"from encounter {short_id(enc)}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    with open_catalog(args.catalog, create=False) as catalog:
        keep, gone = _lookup(catalog, lambda s: (find_individual_id(s, args.keep),
                                                 find_individual_id(s, args.merge)))
        op = merge_individuals(catalog, keep, gone, _reviewer(args), note=args.note)
    print(f"{op.label}: {len(op.changes.encounters)} encounters moved")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    with open_catalog(args.catalog, create=False) as catalog:
        ind = _lookup(catalog, lambda s: find_individual_id(s, args.individual))
        op = rename_individual(catalog, ind, args.new_name, _reviewer(args))
    print(f"{op.label} ({short_id(ind)})")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with open_catalog(args.catalog, create=False) as catalog:
        ind = _lookup(catalog, lambda s: find_individual_id(s, args.individual, resolve=False))
        op = remove_individual(catalog, ind, _reviewer(args), note=args.note)
    print(f"{op.label} ({short_id(ind)})")
    return 0


def _boxes_named(s: Session, encounter_id: str, names: list[str]) -> list[str]:
    """The annotation ids of the encounter's boxes on the photos ``names`` name (file name,
    path, or at least 8 characters of an annotation id's start or end, as ids are typed
    elsewhere), in the order given. An error names every photo that matches none of its boxes,
    and refuses to take every box: the rest of the burst stays in the encounter."""
    from pathlib import PurePath

    from sqlalchemy import select

    from wildid.catalog.models import Annotation, Photo
    from wildid.errors import NotFoundError, ReviewError

    rows = s.execute(select(Annotation.id, Photo.original_path)
                     .join(Photo, Photo.id == Annotation.photo_id)
                     .where(Annotation.encounter_id == encounter_id)
                     .order_by(Annotation.created_at, Annotation.id)).all()
    found: list[str] = []
    missing = []
    for name in names:
        hits = [a for a, path in rows
                if name in (path, PurePath(path or "").name)
                or (len(name) >= 8 and (a.startswith(name) or a.endswith(name)))]
        if not hits:
            missing.append(name)
        found += [a for a in hits if a not in found]
    files = ", ".join(PurePath(p or "").name for _, p in rows)
    if missing:
        raise NotFoundError(f"not a photo of encounter {short_id(encounter_id)}: "
                            f"{', '.join(missing)} (its photos: {files})")
    if len(found) == len(rows):
        raise ReviewError(f"that is every photo of encounter {short_id(encounter_id)} ({files}): "
                          "name only those of the other animals, the rest stay")
    return found


def cmd_split(args: argparse.Namespace) -> int:
    from wildid.cli.catalog_commands import _identify, print_identification
    from wildid.review import separate_annotations

    with open_catalog(args.catalog, create=False) as catalog:
        enc = _lookup(catalog, lambda s: find_encounter_id(s, args.encounter))
        boxes = _lookup(catalog, lambda s: _boxes_named(s, enc, args.photos))
        reviewer = _reviewer(args)
        made = []
        for group in ([[box] for box in boxes] if args.each else [boxes]):
            separate_annotations(catalog, group, reviewer=reviewer)
            made.append(encounter_detail(catalog, _encounter_of(catalog, group[0])))
        for detail in made:
            files = ", ".join(a.file_name for a in detail.annotations)
            print(f"New encounter {short_id(detail.id)} for {files} "
                  f"(split from encounter {short_id(enc)})")
        if not args.no_identify:
            summary = _identify(catalog)
            print_identification(summary, "burst split")
            if "error" in summary:
                return 1
    return 0


def _encounter_of(catalog: Any, annotation_id: str) -> str:
    from wildid.catalog.models import Annotation

    with catalog.session() as s:
        return s.get(Annotation, annotation_id).encounter_id


def cmd_decisions(args: argparse.Namespace) -> int:
    with open_catalog(args.catalog, create=False) as catalog:
        with catalog.session() as s:
            enc = find_encounter_id(s, args.encounter) if args.encounter else None
            ind = find_individual_id(s, args.individual, resolve=False) if args.individual else None
        rows = decision_history(catalog, encounter_id=enc, individual_id=ind,
                                limit=args.limit or None)
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    # "matcher": what it said of the individual when the decision was made ("91 %, 1st", "not
    # proposed"), worded as the app's History tab words it; --json has the raw scores
    print_table(["time (UTC)", "reviewer", "verdict", "encounter", "individual", "matcher", "note"],
                [[r.decided_at.isoformat(timespec="seconds"), r.reviewer,
                  r.verdict + (f" of {short_id(r.reverts_id)}" if r.reverts_id else "")
                  + (" (undone)" if r.reverted else ""),
                  short_id(r.encounter_id or ""), r.candidate_name, r.evidence, r.note]
                 for r in rows])
    return 0
