"""CLI commands over the catalog: import, info, photos, encounters, individuals."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from wildid.catalog import open_catalog
from wildid.catalog.models import (
    Annotation,
    Decision,
    Encounter,
    Feature,
    ImportBatch,
    Individual,
    Photo,
)
from wildid.catalog.types import utcnow
from wildid.cli.arguments import count, duration, moment
from wildid.cli.catalogs import open_existing, open_or_make
from wildid.cli.output import ProgressBar, failure_lines, human_bytes, print_json, print_table
from wildid.errors import WildIdError
from wildid.ids import short_id
from wildid.progress import CancelToken
from wildid.review.queries import encounter_photo_files
from wildid.review.views import file_name
from wildid.vision.formats import SUPPORTED_TYPES as PHOTO_TYPES

if TYPE_CHECKING:
    from wildid.ingest.importer import ImportReport


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("import", parents=[common], help="import photos from files or folders",
                       description=f"Import photos ({PHOTO_TYPES}) recursively. Duplicates "
                       "are skipped by content; bad files are reported and skipped.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--observer", help="who took the photos (recorded on each encounter)")
    p.add_argument("--species", help="species of the animals in these photos")
    p.add_argument("--burst-gap", type=float, default=60.0, metavar="SECONDS",
                   help="photos from one camera this close in time form one encounter (default 60)")
    p.add_argument("--reference-in-place", action="store_true",
                   help="do not copy originals into the catalog; remember where they are")
    p.add_argument("--workers", type=count(1), default=2, help="worker threads (default 2)")
    p.add_argument("--no-identify", action="store_true",
                   help="do not extract features and match the new encounters afterwards")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "species", parents=[common], help="set the species of encounters (mend an import)",
        description="Give encounters a species: one forgotten or misspelled at import (importing "
        "the card again would skip every photo as a duplicate). Boxes that had the encounter's "
        "species follow it; a box given another species in the app's box editor keeps that. "
        "The encounters are then matched again under the new species' profile.")
    p.add_argument("species", metavar="SPECIES", help='the species to set ("" clears it)')
    p.add_argument("encounters", metavar="ENCOUNTER_ID", nargs="*",
                   help="encounters (id or the piece of it shown)")
    p.add_argument("--from", dest="from_species", metavar="OLD",
                   help='also every encounter whose species is OLD, any case ("" for those '
                        "with none)")
    p.add_argument("--reviewer", default=None, metavar="NAME",
                   help="who makes the change (default: $WILDID_REVIEWER or your login name)")
    p.add_argument("--no-identify", action="store_true",
                   help="do not match the changed encounters again now")
    p.set_defaults(func=cmd_species)

    p = sub.add_parser(
        "retime", parents=[common], help="correct photo times a camera's clock got wrong",
        description="Move the times of the chosen encounters' photos by what the camera's clock "
        "was off: --by the error itself (-26y124d, +1h), or --first-at the real time of the "
        "earliest of those photos. Each encounter's time follows its photos; what the camera "
        "wrote is kept beside it. Choose encounters by id, or those of one import (--batch), "
        "narrowed to one camera (--camera) or to those dated in the future or at a factory "
        "date (--doubtful), which the import report names. A card from several cameras whose "
        "clocks were off by different amounts takes one command per camera. The app's "
        "Encounters page does the same (Correct time…), with Undo.")
    p.add_argument("encounters", metavar="ENCOUNTER_ID", nargs="*",
                   help="encounters (id or the piece of it shown)")
    p.add_argument("--batch", metavar="IMPORT_ID",
                   help="every encounter of this import ('latest' for the last one)")
    p.add_argument("--camera", metavar="TEXT",
                   help="only encounters whose camera (make|model|serial, or the folder of "
                        "photos without them: `wildid encounters --json`) contains TEXT")
    p.add_argument("--doubtful", action="store_true",
                   help="only encounters dated in the future or at a camera's factory date")
    shift = p.add_mutually_exclusive_group(required=True)
    shift.add_argument("--by", type=duration, metavar="DURATION",
                       help="add this to every time (+1h, -26y124d, 90min; y is 365 days)")
    shift.add_argument("--first-at", type=moment, metavar="DATETIME",
                       help="the real time of the earliest chosen photo, as 2026-11-20 08:00 "
                            "(in the clock `wildid photos` shows, or with a +02:00 offset)")
    p.add_argument("--reviewer", default=None, metavar="NAME",
                   help="who makes the change (default: $WILDID_REVIEWER or your login name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_retime)

    p = sub.add_parser(
        "find-strips", parents=[common],
        help="find camera-trap data strips on photos imported by an older wildid",
        description="Look for a camera trap's printed bar of text (camera, date, temperature) "
        "at the top or bottom of every photo without one on record, as imports have done since "
        "catalog revision 0007, and stop those photos' automatic boxes at it: the text matched "
        "between any two photos of one camera. Boxes somebody drew are left as they are. The "
        "moved boxes are described and matched again; the app's Edit \u2192 Undo takes the "
        "change back when it was made there.")
    p.add_argument("--workers", type=count(1), default=2, help="photos decoded at once (default 2)")
    p.add_argument("--no-identify", action="store_true",
                   help="do not extract features and match again now")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_find_strips)

    p = sub.add_parser("info", parents=[common], help="catalog location, size and counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("backup", parents=[common],
                       help="copy the catalog consistently, even while the app is open",
                       description="Copies the database (through SQLite's backup API: one "
                       "consistent state, even while the app or an import writes) and the "
                       "originals into FOLDER, which becomes a catalog folder of its own. Again "
                       "to the same folder, only new originals are copied. Caches are left out "
                       "(rebuilt when needed).")
    p.add_argument("folder", metavar="FOLDER",
                   help="a new or empty folder, or an earlier backup of this catalog")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("photos", parents=[common], help="list photos")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=count(0), default=0, help="show at most this many (0: all)")
    p.set_defaults(func=cmd_photos)

    p = sub.add_parser("encounters", parents=[common], help="list encounters")
    p.add_argument("--json", action="store_true")
    p.add_argument("--state", choices=["unreviewed", "confirmed", "unidentifiable", "flagged"])
    p.add_argument("--limit", type=count(0), default=0, help="show at most this many (0: all)")
    p.set_defaults(func=cmd_encounters)

    p = sub.add_parser("individuals", parents=[common], help="list known individuals")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_individuals)


def report_dict(report: ImportReport) -> dict[str, object]:
    return {
        "batch_id": report.batch_id,
        "status": report.status,
        "found": report.n_found,
        "imported": report.imported,
        "duplicates": report.duplicates,
        "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
        "ignored": dict(sorted(report.ignored.items())),
        "catalogs_left_alone": report.catalogs,
        "new_encounters": len(report.new_encounter_ids),
        "with_data_strip": report.with_data_strip,
        "doubtful_times": [{"path": path, "taken_utc": _fmt_time(taken), "kind": kind}
                           for path, taken, kind in report.doubtful_times],
        "species": report.species,
        "species_inferred": report.species_inferred,
        "species_suggested": report.species_suggested,
        "seconds": round(report.seconds, 3),
        "photos_per_second": round(report.photos_per_second, 2),
    }


def print_report(report: ImportReport) -> None:
    print(f"Import {report.status}: {report.imported} imported, {report.duplicates} duplicates "
          f"skipped, {len(report.skipped)} files skipped, {len(report.new_encounter_ids)} new "
          f"encounters ({report.seconds:.1f} s, {report.photos_per_second:.1f} photos/s)")
    if report.with_data_strip:
        print(f"Data strips: {report.with_data_strip} of the photos have a camera's text bar "
              "printed on them; their boxes leave it out, so that one camera's text does not "
              "match between different animals")
    if report.doubtful_times:
        from wildid.ingest.clock import describe_doubtful

        kinds = {kind for _path, _taken, kind in report.doubtful_times}
        each = (", for one camera at a time (`--camera`): their clocks were off by different "
                "amounts" if len(kinds) > 1 else "")
        print(f"Camera clocks: {describe_doubtful(report.doubtful_times)} Their times are kept "
              "as the camera wrote them; `wildid retime --batch "
              f"{short_id(report.batch_id)} --doubtful --first-at \"YYYY-MM-DD HH:MM\"` gives "
              f"the earliest its real time and moves the rest with it (or `--by` the clock's "
              f"error){each}")
    if report.species_inferred and report.new_encounter_ids:
        print(f"Species: none given, so the new encounters are {report.species}, the species of "
              "every individual in this catalog (--species sets another)")
    elif report.species and report.new_encounter_ids and not report.species_inferred:
        from wildid.matching.profiles import profile_for, species_names

        if profile_for(report.species).name == "default":  # a misspelling reads the same
            print(f"Species: {report.species} has no profile of its own, so it is matched with "
                  f"the generic profile (names with their own: {', '.join(species_names())}); "
                  f"if that was a misspelling, `wildid species NAME --from "
                  f"\"{report.species}\"` mends it")
    if report.species_suggested:
        print(f"Species: none given, and these photos look like {report.species_suggested}: "
              f"`wildid species {report.species_suggested} --from \"\"` gives that species (and "
              "its profile) to every encounter without one; --species sets one at import")
    if report.skipped:
        print("Skipped:")
        for path, reason in report.skipped:
            print(f"  {path}: {reason}")
    if report.ignored:
        from wildid.ingest.scan import describe_ignored

        print(f"Not photos, left alone: {describe_ignored(report.ignored)}")
    if report.catalogs:
        from wildid.ingest.scan import describe_catalogs

        print(f"Left alone: {describe_catalogs(report.catalogs)}")
    if report.status == "completed" and report.n_found == 0:
        print("No photos found in the given folders.")


def cmd_import(args: argparse.Namespace) -> int:
    from wildid.ingest.importer import ImportOptions, run_import

    options = ImportOptions(observer=args.observer, species=args.species,
                            burst_gap_s=args.burst_gap, reference_in_place=args.reference_in_place,
                            workers=max(1, args.workers))
    cancel = CancelToken()
    bar = ProgressBar()
    with open_or_make(args.catalog) as catalog:
        try:
            report = run_import(catalog, args.paths, options, progress=bar, cancel=cancel)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        finally:
            bar.close()
        _suggest_species(catalog, report)
        identification = _after_import(catalog, report, args)
    if args.json:
        out = report_dict(report)
        if identification is not None:
            out["identification"] = identification
        print_json(out)
    else:
        print_report(report)
        if identification is not None:
            print_identification(identification)
    if report.imported == 0 and report.duplicates == 0:
        return 1
    return 0


def _after_import(catalog: object, report: ImportReport,
                  args: argparse.Namespace) -> dict[str, object] | None:
    """Extract features and match the new encounters, as the desktop app does after an import.

    Returns what identification did, for the report: without it an import ends with minutes of
    silent work and no word of what became of the photos. A failure here (a damaged model file,
    say) is reported but does not undo the import.
    """
    if args.no_identify or not report.imported:
        return None
    return _identify(catalog)


def _suggest_species(catalog: object, report: ImportReport) -> None:
    """With no species at all, what the photos look like (a suggestion; nothing is set)."""
    from wildid.engine.species_guess import suggest_species

    try:
        suggest_species(catalog, report)
    except Exception as exc:  # noqa: BLE001 - a suggestion never fails an import
        print(f"wildid: no species suggestion ({exc})", file=sys.stderr)


def cmd_species(args: argparse.Namespace) -> int:
    from wildid.cli.review_commands import default_reviewer
    from wildid.matching.profiles import profile_for
    from wildid.review import set_encounter_species
    from wildid.review.lookup import find_encounter_id
    from wildid.review.queries import encounters_with_species

    if not args.encounters and args.from_species is None:
        print("wildid: name the encounters, or --from OLD for every encounter of a species "
              '(--from "" for those with none)', file=sys.stderr)
        return 2
    with open_catalog(args.catalog, create=False) as catalog:
        with catalog.session() as s:
            ids = [find_encounter_id(s, e) for e in args.encounters]
        if args.from_species is not None:
            ids += encounters_with_species(catalog, args.from_species)
        if not ids:
            print(f"No encounter has the species {args.from_species!r}: nothing changed")
            return 0
        reviewer = (args.reviewer or "").strip() or default_reviewer()
        op = set_encounter_species(catalog, ids, args.species, reviewer)
        n, total = len(op.changes.encounters & set(ids)), len(set(ids))
        others = len(op.changes.encounters) - n  # still to review, showed one of these boxes
        wanted = args.species.strip()
        profile = profile_for(wanted or None)
        what = (f"the {profile.name} profile" if profile.name != "default"
                else "the generic profile (no profile of its own)")
        print(f"Species {wanted or '(none)'} set on {n} of {total} encounter"
              f"{'' if total == 1 else 's'} ({total - n} had it already); "
              f"they are matched with {what}")
        if others:
            print(f"{others} other encounter{'' if others == 1 else 's'} to review showed one of "
                  "their boxes as a candidate and will be matched again")
        if op.changes.individuals:
            k = len(op.changes.individuals)
            print(f"{k} individual{' takes' if k == 1 else 's take'} the species too (every "
                  "sighting of it has it now)")
        if n and not args.no_identify:
            summary = _identify(catalog)
            print_identification(summary, "species set")
            if "error" in summary:
                return 1
    return 0


def _retime_targets(catalog: Any, args: argparse.Namespace) -> list[str]:
    """The encounters ``wildid retime`` moves: those named, else the import's, narrowed."""
    from wildid.ingest.clock import doubtful
    from wildid.review.lookup import find_encounter_id, find_import_batch_id

    if bool(args.encounters) == bool(args.batch):
        raise WildIdError("name the encounters, or --batch IMPORT_ID ('latest' for the last "
                          "import), not both")
    with catalog.session() as s:
        if args.encounters:
            if args.camera or args.doubtful:
                raise WildIdError("--camera and --doubtful narrow a --batch; named encounters "
                                  "are moved as named")
            return [find_encounter_id(s, e) for e in args.encounters]
        batch = find_import_batch_id(s, args.batch)
        rows = s.execute(select(Encounter.id, Encounter.camera_key, Encounter.taken_utc)
                         .where(Encounter.import_batch_id == batch)
                         .order_by(Encounter.taken_utc, Encounter.id)).all()
    wanted = (args.camera or "").casefold()
    now = utcnow()
    return [e for e, key, taken in rows
            if wanted in (key or "").casefold()
            and (not args.doubtful or doubtful(taken, now) is not None)]


def cmd_retime(args: argparse.Namespace) -> int:
    from wildid.cli.review_commands import default_reviewer
    from wildid.review.retime import describe_shift, earliest_time, shift_times

    with open_catalog(args.catalog, create=False) as catalog:
        ids = _retime_targets(catalog, args)
        if not ids:
            print("No encounter of that import matches: nothing changed")
            return 1
        delta = args.by
        if delta is None:
            first = earliest_time(catalog, ids)
            if first is None:
                raise WildIdError("none of these photos has a time to move; --first-at needs "
                                  "one")
            delta = args.first_at - first
        reviewer = (args.reviewer or "").strip() or default_reviewer()
        op = shift_times(catalog, ids, delta, reviewer)
        first = earliest_time(catalog, ids)
    n = len(op.changes.encounters)
    if args.json:
        print_json({"encounters": sorted(op.changes.encounters), "shift_seconds":
                    delta.total_seconds(), "first": _fmt_time(first)})
        return 0
    if not n:
        print("None of these photos has a time: nothing changed")
        return 1
    print(f"Moved the photo times of {n} encounter{'' if n == 1 else 's'} by "
          f"{describe_shift(delta)}; the earliest is now {_fmt_time(first)}")
    return 0


def cmd_find_strips(args: argparse.Namespace) -> int:
    from wildid.ingest.strip_rescan import find_strips_in_catalog

    cancel = CancelToken()
    bar = ProgressBar()
    with open_catalog(args.catalog, create=False) as catalog:
        try:
            report = find_strips_in_catalog(catalog, progress=bar, cancel=cancel,
                                            workers=args.workers)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        finally:
            bar.close()
        identification = None
        if report.boxes_moved and not args.no_identify:
            identification = _identify(catalog)
    if args.json:
        out: dict[str, Any] = {
            "scanned": report.scanned, "with_strip": report.with_strip,
            "boxes_moved": report.boxes_moved, "drawn_boxes_kept": report.drawn_boxes_kept,
            "unreadable": [{"photo": p, "reason": r} for p, r in report.unreadable],
            "status": report.status}
        if identification is not None:
            out["identification"] = identification
        print_json(out)
    else:
        n = report.scanned
        print(f"Looked at {n} photo{'' if n == 1 else 's'} without a data strip on record: "
              f"{report.with_strip} {'has' if report.with_strip == 1 else 'have'} a camera's "
              "text bar printed on them")
        if report.boxes_moved:
            k = report.boxes_moved
            print(f"  {k} automatic box{'' if k == 1 else 'es'} now stop{'s' if k == 1 else ''} "
                  "at the strip; their features and matches are redone")
        if report.drawn_boxes_kept:
            k = report.drawn_boxes_kept
            print(f"  {k} photo{'' if k == 1 else 's'} with a strip {'has' if k == 1 else 'have'} "
                  "boxes somebody drew: left as they are (check that they leave the strip out)")
        if report.unreadable:
            print("Not readable, skipped:")
            for photo, reason in report.unreadable:
                print(f"  {photo}: {reason}")
        if identification is not None:
            print_identification(identification, "boxes moved off the strips")
    return 1 if identification is not None and "error" in identification else 0


def _identify(catalog: object) -> dict[str, object]:
    """What the desktop app does after a change: extract what is missing, match what is due."""
    from wildid.engine import identify_new

    bar = ProgressBar()
    t0 = time.perf_counter()
    try:
        match = identify_new(catalog, progress=bar)
    except WildIdError as exc:
        return {"error": str(exc)}
    finally:
        bar.close()
    failed = match.extraction.failed if match.extraction is not None else []
    return {
        "matched": len(match.matched),
        "likely_known": len(match.matched) - len(match.likely_new),
        "likely_new": len(match.likely_new),
        "not_matched": [{"encounter": e, "reason": r} for e, r in match.skipped],
        "failed_annotations": [{"annotation": a, "reason": r} for a, r in failed],
        "cancelled": match.cancelled,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def print_identification(summary: dict[str, object], done: str = "photos imported") -> None:
    """One line on what identification made of the import (or of the change ``done`` names:
    "species set"), then anything that went wrong."""
    from wildid.engine.extraction import failures_by_reason

    if "error" in summary:
        print(f"wildid: {done}, but identification failed: {summary['error']}\n"
              "  fix the cause and run `wildid match --all`", file=sys.stderr)
        return
    n = summary["matched"]
    print(f"Identification: {n} encounter{'' if n == 1 else 's'} matched in "
          f"{summary['seconds']:.1f} s, "
          f"{summary['likely_known']} likely known, {summary['likely_new']} likely new (review "
          "them in the app, or `wildid match --all` to list the candidates)")
    if summary["cancelled"]:
        print("  stopped before the end: `wildid match --all` finishes the rest")
    failed = [(row["annotation"], row["reason"])
              for row in summary["failed_annotations"]]  # type: ignore[attr-defined]
    for line in failure_lines(failures_by_reason(failed)):
        print(f"  {line}")
    for row in summary["not_matched"]:  # type: ignore[attr-defined]
        print(f"  encounter {short_id(row['encounter'])} not matched: {row['reason']}")


def cmd_backup(args: argparse.Namespace) -> int:
    from wildid.catalog.backup import backup_catalog, report_lines

    bar = ProgressBar()
    with open_existing(args.catalog) as catalog:
        try:
            report = backup_catalog(catalog, args.folder, progress=bar)
        finally:
            bar.close()
    if args.json:
        print_json({"folder": str(report.target), "photos": report.photos,
                    "copied": report.copied, "copied_bytes": report.copied_bytes,
                    "database_bytes": report.database_bytes, "missing": report.missing,
                    "in_place": report.in_place})
        return 0
    for line in report_lines(report):
        print(line)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from wildid.ingest.clock import FUTURE, RESET, doubtful_encounter_counts
    from wildid.ingest.strip_rescan import strips_pending  # decoding modules: not at startup

    with open_existing(args.catalog) as catalog:
        with catalog.session() as s:
            counts = {
                name: s.scalar(select(func.count()).select_from(model)) or 0
                for name, model in (("photos", Photo), ("annotations", Annotation),
                                    ("encounters", Encounter), ("individuals", Individual),
                                    ("decisions", Decision), ("features", Feature),
                                    ("imports", ImportBatch))
            }
            unreviewed = s.scalar(select(func.count()).select_from(Encounter)
                                  .where(Encounter.state == "unreviewed")) or 0
            clocks = doubtful_encounter_counts(s, utcnow())
        size = catalog.media.size_bytes() + sum(
            f.stat().st_size for f in catalog.root.glob("catalog.sqlite*") if f.is_file())
        cache = sum(f.stat().st_size for f in (catalog.root / "cache").rglob("*") if f.is_file())
        info = {"catalog": str(catalog.root), "catalog_id": catalog.meta("catalog_id"),
                "size_bytes": size, "cache_bytes": cache, "counts": counts,
                "unreviewed_encounters": unreviewed,
                "data_strips_looked_for": not strips_pending(catalog),
                "encounters_dated": {"in_the_future": clocks[FUTURE],
                                     "at_a_factory_date": clocks[RESET]}}
    if args.json:
        print_json(info)
        return 0
    print(f"Catalog: {info['catalog']}")
    print(f"Size:    {human_bytes(size)}")
    print(f"Cache:   {human_bytes(info['cache_bytes'])} (thumbnails and the matcher's index; "
          "safe to delete, rebuilt when needed)")
    for name, n in counts.items():
        print(f"{name.capitalize():<12} {n}")
    print(f"{'Unreviewed':<12} {unreviewed} encounters")
    if clocks[FUTURE] or clocks[RESET]:
        said = [f"{n} {'in the future' if kind == FUTURE else 'at a camera factory date'}"
                for kind, n in clocks.items() if n]
        total = sum(clocks.values())
        print(f"{'Encounter' if total == 1 else 'Encounters'} dated {' and '.join(said)}: a "
              "camera's clock was wrong; `wildid retime` corrects them")
    if not info["data_strips_looked_for"]:
        print("Photos imported by an older wildid were not looked at for camera-trap data "
              "strips: `wildid find-strips` does it")
    return 0


def _fmt_time(value: object) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")  # type: ignore[attr-defined]


def cmd_photos(args: argparse.Namespace) -> int:
    with open_existing(args.catalog) as catalog, catalog.session() as s:
        q = select(Photo).order_by(Photo.taken_utc, Photo.original_path)
        if args.limit:
            q = q.limit(args.limit)
        photos = list(s.scalars(q))
        rows = [{"id": p.id, "sha256": p.sha256, "path": p.original_path,
                 "taken_utc": _fmt_time(p.taken_utc), "taken_raw": p.taken_raw,
                 "tz_known": p.tz_known, "utc_offset_minutes": p.utc_offset_minutes,
                 "width": p.width, "height": p.height, "format": p.format,
                 "lat": p.gps_lat, "lon": p.gps_lon, "alt": p.gps_alt,
                 "camera": " ".join(x for x in (p.camera_make, p.camera_model) if x) or None,
                 "serial": p.camera_serial, "stored": p.stored_path,
                 # rows of a camera trap's data strip, left out of the automatic box
                 "strip_top": p.strip_top, "strip_bottom": p.strip_bottom} for p in photos]
    if args.json:
        print_json(rows)
    else:
        print_table(["id", "taken (UTC)", "size", "camera", "lat", "lon", "path"],
                    [[short_id(r["id"]), r["taken_utc"], _size(r), r["camera"],
                      _round(r["lat"]), _round(r["lon"]), r["path"]] for r in rows])
    return 0


def _size(row: dict[str, Any]) -> str:
    """The size as "4000x3000", with the data strip's rows when the photo has one."""
    strip = (row["strip_top"] or 0) + (row["strip_bottom"] or 0)
    return f"{row['width']}x{row['height']}" + (f" (strip {strip})" if strip else "")


def _round(v: object) -> object:
    return round(v, 5) if isinstance(v, float) else v


def cmd_encounters(args: argparse.Namespace) -> int:
    with open_existing(args.catalog) as catalog:
        with catalog.session() as s:
            n_ann = (select(Annotation.encounter_id, func.count().label("n"))
                     .group_by(Annotation.encounter_id).subquery())
            q = (select(Encounter, Individual.name, n_ann.c.n)
                 .outerjoin(Individual, Individual.id == Encounter.individual_id)
                 .outerjoin(n_ann, n_ann.c.encounter_id == Encounter.id)
                 .order_by(Encounter.taken_utc, Encounter.id))
            if args.state:
                q = q.where(Encounter.state == args.state)
            if args.limit:
                q = q.limit(args.limit)
            rows = [{"id": e.id, "taken_utc": _fmt_time(e.taken_utc), "state": e.state,
                     "individual_id": e.individual_id, "individual": name, "photos": n or 0,
                     "observer": e.observer, "species": e.species, "lat": e.gps_lat,
                     "lon": e.gps_lon, "camera": e.camera_key} for e, name, n in s.execute(q)]
        files = encounter_photo_files(catalog, [r["id"] for r in rows])
    for r in rows:
        r["photo_files"] = files.get(r["id"], [])
    if args.json:
        print_json(rows)
    else:
        print_table(["id", "taken (UTC)", "photos", "state", "individual", "species", "observer",
                     "photo"],
                    [[short_id(r["id"]), r["taken_utc"], r["photos"], r["state"], r["individual"],
                      r["species"], r["observer"], _first_photo(r["photo_files"])]
                     for r in rows])
    return 0


def _first_photo(paths: list[str]) -> str:
    """The first photo's file name, and how many more there are."""
    if not paths:
        return ""
    more = f" (+{len(paths) - 1})" if len(paths) > 1 else ""
    return file_name(paths[0]) + more


def cmd_individuals(args: argparse.Namespace) -> int:
    from wildid.review.history import retired_individual_ids

    with open_existing(args.catalog) as catalog, catalog.session() as s:
        n_enc = (select(Encounter.individual_id, func.count().label("n"),
                        func.max(Encounter.taken_utc).label("last"))
                 .group_by(Encounter.individual_id).subquery())
        q = (select(Individual, n_enc.c.n, n_enc.c.last)
             .outerjoin(n_enc, n_enc.c.individual_id == Individual.id)
             .where(Individual.merged_into_id.is_(None)).order_by(Individual.name))
        found = s.execute(q).all()
        # undone namings and removed individuals, as the app's gallery leaves them out
        retired = retired_individual_ids(s, [i.id for i, _, _ in found])
        rows = [{"id": i.id, "name": i.name, "species": i.species, "sex": i.sex,
                 "encounters": n or 0, "last_seen": _fmt_time(last)} for i, n, last in found
                if i.id not in retired]
    if args.json:
        print_json(rows)
    else:
        print_table(["id", "name", "species", "encounters", "last seen"],
                    [[short_id(r["id"]), r["name"], r["species"], r["encounters"], r["last_seen"]]
                     for r in rows])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `wildid` instead")
