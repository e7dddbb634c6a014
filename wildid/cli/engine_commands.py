"""CLI engine commands: models, extract, match, eval, calibrate.

They drive the same :class:`~wildid.engine.identification.CatalogEngine` the desktop app runs
in the background, so a figure printed here is what the app does.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from wildid.cli.arguments import count, share
from wildid.cli.catalogs import open_existing
from wildid.cli.output import ProgressBar, failure_lines, print_json, print_table
from wildid.errors import WildIdError
from wildid.ids import short_id
from wildid.progress import CancelToken


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", parents=[common],
                       help="list installed models and what identification uses each for",
                       description="Shipped models and those in the user models folder (a model "
                       "file plus its JSON manifest), their health and what identification uses "
                       "each for. --use MODEL_ID makes an embedder the active one; each species "
                       "profile names its own keypoint model and matcher.")
    p.add_argument("--use", metavar="MODEL_ID", help="make this embedder the active one")
    p.add_argument("--reset", metavar="TASK", help="go back to the shipped model for TASK")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("self-test", parents=[common],
                       help="check that this installation identifies animals (offline)",
                       description="Generates photos of two patterned animals, imports them into "
                       "a throwaway catalog (your catalog is not touched), names them and "
                       "identifies a second sighting of one with every model the species "
                       "profiles use, as after an import. Each step is reported with what "
                       "failed; exits 1 when one did. A few seconds on a laptop.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_self_test)

    p = sub.add_parser("extract", parents=[common],
                       help="compute features for annotations not processed yet")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("match", parents=[common], help="rank known individuals for encounters",
                       description="Extracts missing features, then ranks the known individuals "
                       "for one encounter (or all unreviewed ones with --all) and stores the "
                       "candidates for review.")
    p.add_argument("encounter", nargs="?", metavar="ENCOUNTER_ID",
                   help="id or unique prefix of an encounter")
    p.add_argument("--all", action="store_true", help="every unreviewed encounter")
    p.add_argument("--top", type=count(1), default=5, metavar="K",
                   help="candidates to show (default 5; the review keeps at least 10)")
    p.add_argument("--with", dest="also", metavar="INDIVIDUAL",
                   help="also compare with this individual (name, alias or id) wherever it "
                        "ranks, even when rejected before: its score, rank and matched points "
                        "are printed (with one ENCOUNTER_ID; the stored candidates stay)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("eval", parents=[common], help="measure identification on a labelled manifest",
                       description="MANIFEST.csv has columns path,identity,split (split database "
                       "or query; paths relative to the manifest). Database photos become known "
                       "individuals in a throwaway catalog; each query is identified.")
    p.add_argument("manifest", type=Path, metavar="MANIFEST.csv")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--open-set", action="store_true",
                   help="hold out some identities from the database; report BAKS, BAUS, AUROC")
    p.add_argument("--holdout", type=share, default=0.25,
                   help="share of query identities held out with --open-set (default 0.25)")
    p.add_argument("--species", help="species profile to use (default: from the folder name)")
    p.add_argument("--baseline", action="store_true",
                   help="also run the HotSpotter-style LNBNN baseline on the same photos")
    p.add_argument("--method", choices=["fused", "lnbnn"], default="fused", help=argparse.SUPPRESS)
    p.add_argument("--no-embedder", action="store_true", help="do not use the global embedder")
    p.add_argument("--workdir", type=Path, help="where the throwaway catalog goes (default: temp)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", parents=[common],
                       help="refit score calibration from this catalog's decisions",
                       description="Leave-one-out over the catalog's confirmed encounters: each "
                       "queries the others; the pairs refit the calibration and the new-individual "
                       "threshold per species profile, saved in the catalog's folder for this "
                       "catalog.")
    p.add_argument("--min-pairs", type=count(1), default=20,
                   help="positive pairs a profile needs to be refitted (default 20)")
    p.add_argument("--min-individuals", type=count(1), default=None,
                   help="individuals with a confirmed second sighting a profile needs to be "
                        "refitted (default 6)")
    p.add_argument("--dry-run", action="store_true", help="report, but do not save")
    p.add_argument("--reset", action="store_true",
                   help="delete this catalog's refitted calibration (back to shipped)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)


# ---------------------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> int:
    from wildid.engine.identification import active_profiles
    from wildid.engine.model_uses import model_uses
    from wildid.engine.runtime import default_registry
    from wildid.vision.registry import FIX_HINT

    registry = default_registry()
    if args.use:
        entry = registry.get(args.use)
        registry.set_active(entry.task, entry.id)
        print(f"{entry.id} is now the active {entry.task} model")
    if args.reset:
        registry.set_active(args.reset, None)
        print(f"{args.reset}: back to the shipped model")
    broken: list[dict[str, Any]] = []
    try:
        profiles = active_profiles()
    except WildIdError as exc:  # a damaged install: listed as an error, and exit status 1
        profiles = {}
        broken = [{"id": "species profiles", "task": "profiles", "version": "", "source": "",
                   "active": True, "used_for": [], "status": "error", "problem": str(exc),
                   "path": ""}]
    uses = model_uses(registry, profiles)
    rows = []
    for e in registry.list():
        # a second manifest with a model's id is refused: the first one listed is the one used
        used = e.id in uses and e.id not in {r["id"] for r in rows if r["active"]}
        rows.append({"id": e.id, "task": e.task, "version": e.version, "source": e.source,
                     "active": used, "used_for": uses.get(e.id, []) if used else [],
                     "status": str(e.status), "problem": e.problem or "",
                     "path": str(e.manifest_path)})
    listed = {r["id"] for r in rows}
    # a model a profile names but no manifest provides: that step runs without it (logged)
    rows += [{"id": model_id, "task": "", "version": "", "source": "", "active": True,
              "used_for": used, "status": "missing",
              "problem": f"no manifest for it in {registry.user_dir} or the shipped models; "
              f"{FIX_HINT}", "path": ""}
             for model_id, used in sorted(uses.items()) if model_id not in listed]
    rows += _projection_rows(profiles) + broken
    if args.json:
        print_json(rows)
    else:
        print_table(["", "id", "task", "version", "source", "status", "used for"],
                    [["*" if r["active"] else "", r["id"], r["task"], r["version"], r["source"],
                      r["status"] + (f": {r['problem']}" if r["problem"] else ""),
                      "; ".join(r["used_for"])] for r in rows])
        print(f"\nuser models folder: {registry.user_dir}  (* = in use; the embedder is "
              "chosen with --use, the other models by each species profile)")
    return 0 if all(r["status"] == "ok" for r in rows if r["active"]) else 1


def _projection_rows(profiles: dict[str, Any]) -> list[dict[str, Any]]:
    """The species profiles' learned descriptor projections, checked like models (sha256)."""
    rows = []
    for name, profile in sorted(profiles.items()):
        spec = profile.descriptor_projection
        if not spec:
            continue
        status, problem = "ok", ""
        try:
            profile.projection()
        except WildIdError as exc:
            status, problem = "error", str(exc)
        rows.append({"id": spec.get("id", spec["file"]), "task": f"projection ({name})",
                     "version": "", "source": "shipped", "active": True,
                     "used_for": [f"{name}: local descriptors"], "status": status,
                     "problem": problem, "path": str(profile.projection_path())})
    return rows


# ---------------------------------------------------------------------------- self-test
def cmd_self_test(args: argparse.Namespace) -> int:
    from wildid.selftest import run_self_test

    report = run_self_test(progress=None if args.json else
                           lambda name: print(f"… {name}", file=sys.stderr, flush=True))
    if args.json:
        print_json({"ok": report.ok, "steps": [
            {"name": s.name, "ok": s.ok, "seconds": round(s.seconds, 2), "detail": s.detail}
            for s in report.steps]})
    else:
        for line in report.lines():
            print(line)
        print("wildid works on this computer" if report.ok else
              "wildid cannot identify animals on this computer: see the step that failed")
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------- extract
def cmd_extract(args: argparse.Namespace) -> int:
    from wildid.engine import engine_for
    from wildid.engine.extraction import failures_by_reason

    bar, cancel = ProgressBar(), CancelToken()
    with open_existing(args.catalog) as catalog:
        engine = engine_for(catalog)
        try:
            report = engine.extract(bar, cancel)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        finally:
            bar.close()
    out = {"processed": report.processed, "failed": [{"annotation": a, "reason": r}
                                                      for a, r in report.failed],
           "seconds_per_source": report.seconds_per_source,
           "images_per_second": {k: (report.processed / v if v > 0 else None)
                                 for k, v in report.seconds_per_source.items()}}
    if args.json:
        print_json(out)
    else:
        print(f"extracted features for {report.processed} annotation(s)")
        for key, rate in out["images_per_second"].items():
            if rate:
                print(f"  {key}: {rate:.1f} images/s")
        for line in failure_lines(failures_by_reason(report.failed)):
            print(f"  {line}")
    return 0


# ---------------------------------------------------------------------------- match
def cmd_match(args: argparse.Namespace) -> int:
    from wildid.engine import engine_for
    from wildid.engine.extraction import failures_by_reason
    from wildid.engine.identification import CANDIDATES_KEPT
    from wildid.review.lookup import find_encounter_id, find_individual_id

    if bool(args.encounter) == bool(args.all):
        raise WildIdError("give one ENCOUNTER_ID or --all")
    if args.also is not None and args.all:
        raise WildIdError("--with compares one encounter: give its ENCOUNTER_ID, not --all")
    bar = ProgressBar()
    with open_existing(args.catalog) as catalog:
        engine = engine_for(catalog)
        try:
            extraction = engine.extract(bar)
            if args.all:
                ids = _unreviewed(catalog)  # all of them, afresh
            else:
                with catalog.session() as s:
                    ids = [find_encounter_id(s, args.encounter)]
                    also = (find_individual_id(s, args.also) if args.also is not None
                            else None)
            engine.sync(bar)
            results = []
            for i, enc_id in enumerate(ids):
                # compared on request: printed, not stored (the review's candidates stay)
                results.append(engine.match_encounter(
                    enc_id, top_k=max(args.top, CANDIDATES_KEPT), sync=False,
                    store=args.also is None, also=None if args.all else also))
                if bar.enabled:
                    from wildid.progress import Progress

                    bar(Progress("Matching", i + 1, len(ids)))
        finally:
            bar.close()
        names = _individual_names(catalog)
        photos = _match_photos(catalog, results)
    # their encounters are matched without them
    for line in failure_lines(failures_by_reason(extraction.failed)):
        print(f"wildid: {line}", file=sys.stderr)
    payload = [_match_json(m, names, photos, args.top, max(args.top, CANDIDATES_KEPT))
               for m in results]
    if args.json:
        print_json(payload if args.all else payload[0])
        return 0
    from wildid.review.views import file_name

    if not payload:
        print("no encounter is waiting for review: nothing to match")
    for m in payload:
        verdict = "likely a new individual" if m["likely_new"] else "likely known"
        files = ", ".join(file_name(p) for p in m["photo_files"])
        print(f"encounter {short_id(m['encounter_id'])}{f' ({files})' if files else ''}: {verdict} "
              f"(threshold {m['threshold']:.2f}, {m['seconds']:.2f} s)")
        if not m["candidates"]:
            print("  no candidates" + ("" if m["queried"] else " (no features)"))
            continue
        if m["different_animals"]:
            mixed = m["different_animals"]
            which = ", ".join(f"{p['name']} through {file_name(p['query_photo'] or '?')} "
                              f"({p['score']:.3f})" for p in mixed)
            # the photos of the best matching animal stay; those of each other animal move
            # into one encounter of theirs (a split command each)
            groups: dict[str, list[str]] = {}
            for p in mixed:
                if p["individual_id"] != mixed[0]["individual_id"]:
                    groups.setdefault(p["individual_id"], []).append(
                        shlex.quote(file_name(p["query_photo"] or p["query_annotation_id"])))
            commands = "; ".join(f"wildid split {short_id(m['encounter_id'])} {' '.join(g)}"
                                 for g in groups.values())
            print(f"  these photos match different animals: {which}. If the burst shows more "
                  f"than one animal, split it before confirming: {commands}")
        print_table(["rank", "individual", "score", "inliers", "best photo", "raw"],
                    [[c["rank"], c["name"], f"{c['score']:.3f}", c["n_inliers"],
                      file_name(c["best_photo"]) if c["best_photo"] else "",
                      " ".join(f"{k}={v:.2f}" for k, v in sorted(c["raw"].items()))]
                     for c in m["candidates"]])
        if args.also is not None:
            print(_compared_line(m.get("compared"), args.also))
    return 0


def _compared_line(compared: dict[str, Any] | None, asked: str) -> str:
    """What the individual asked for with ``--with`` came to."""
    from wildid.review.views import file_name

    if compared is None:
        return (f"compared on request: {asked} has no photo this encounter can be compared "
                "with (another species or flank, or no features)")
    raw = " ".join(f"{k}={v:.2f}" for k, v in sorted(compared["raw"].items()))
    photo = f", best photo {file_name(compared['best_photo'])}" if compared["best_photo"] else ""
    return (f"compared on request: {compared['name']} ranks {compared['rank']} of those "
            f"compared, score {compared['score']:.3f}, {compared['n_inliers']} matched points"
            f"{photo} ({raw})")


def _unreviewed(catalog: Any) -> list[str]:
    from sqlalchemy import select

    from wildid.catalog.models import Encounter

    with catalog.session() as s:
        return list(s.scalars(select(Encounter.id).where(Encounter.individual_id.is_(None))
                              .order_by(Encounter.taken_utc, Encounter.id)))


def _individual_names(catalog: Any) -> dict[str, str]:
    from sqlalchemy import select

    from wildid.catalog.models import Individual

    with catalog.session() as s:
        return dict(s.execute(select(Individual.id, Individual.name)).all())


def _match_photos(catalog: Any, results: list[Any]) -> dict[str, Any]:
    """The photo files behind matches: each encounter's and each candidate's best one, so
    that a list of ids says which photos were compared."""
    from wildid.review.queries import annotation_photo_files, encounter_photo_files

    return {"encounters": encounter_photo_files(catalog, [m.encounter_id for m in results]),
            "annotations": annotation_photo_files(
                catalog, [a for m in results for c, q in m.candidates
                          for a in (str(c.best_key), q)])}


def _match_json(m: Any, names: dict[str, str], photos: dict[str, Any],
                top: int | None = None, ranked: int | None = None) -> dict[str, Any]:
    """One encounter's result for output: its ``top`` best candidates (all stored when None);
    the herd check reads all of them, as the review screen does. ``ranked``: how many were
    asked for; an individual compared on request (``also_rank``) that ranked below them
    follows them, and is given apart as ``compared`` with its own rank."""
    from types import SimpleNamespace

    from wildid.review.burst_check import different_animals

    candidates = [{"rank": r + 1, "individual_id": str(c.individual_id),
                   "name": names.get(str(c.individual_id), str(c.individual_id)),
                   "score": c.score, "raw": c.raw, "n_inliers": int(len(c.inliers)),
                   "query_annotation_id": q, "best_annotation_id": str(c.best_key),
                   "best_photo": photos["annotations"].get(str(c.best_key))}
                  for r, (c, q) in enumerate(m.candidates)]
    compared = None
    also_rank = getattr(m, "also_rank", None)
    if also_rank is not None:
        if ranked is not None and len(candidates) > ranked:  # ranked below the others
            compared = dict(candidates.pop(), rank=also_rank + 1)
        else:
            compared = candidates[also_rank]
    # a burst whose photos lead to different known animals (as the review screen says)
    mixed = different_animals([SimpleNamespace(**c) for c in candidates], m.threshold)
    return {
        "encounter_id": m.encounter_id, "likely_new": m.likely_new, "threshold": m.threshold,
        "seconds": m.seconds, "queried": m.queried,
        "photo_files": photos["encounters"].get(m.encounter_id, []),
        "candidates": candidates[:top],
        "compared": compared,
        "different_animals": [{"query_annotation_id": p.query_annotation_id,
                               "query_photo": photos["annotations"].get(p.query_annotation_id),
                               "individual_id": p.candidate.individual_id,
                               "name": p.candidate.name, "score": p.candidate.score}
                              for p in mixed],
    }


# ---------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    from wildid.engine.evaluation import evaluate_manifest

    bar = ProgressBar()
    methods = ["lnbnn", "fused"] if args.baseline else [args.method]
    results = {}
    try:
        for method in methods:
            results[method] = evaluate_manifest(
                args.manifest, species=args.species, open_set=args.open_set,
                holdout=args.holdout, method=method, use_embedder=not args.no_embedder,
                workdir=args.workdir, progress=bar,
                log_line=lambda m: print(m, file=sys.stderr))
            bar.close()
    finally:
        bar.close()
    main = results[methods[-1]]
    if args.baseline:
        main = dict(main, baseline=results["lnbnn"])
    for method, r in results.items():
        label = "LNBNN baseline" if method == "lnbnn" else "wildid"
        rerank = ""
        if r.get("learned_rerank"):
            rerank = f", LightGlue re-ranks the best {r['learned_rerank']}"
            if r.get("learned_rerank_annotations", 1) > 1:
                rerank += f" through {r['learned_rerank_annotations']} photos each"
        print(f"{label}: {r['n_queries']} queries, {r['n_database']} database photos, "
              f"{r['n_identities']} identities (profile {r['species_profile']}{rerank})")
        print(f"  top-1 {r['top1'] * 100:.1f} %   top-5 {r['top5'] * 100:.1f} %   "
              f"mAP {r['mAP'] * 100:.1f} %   (per identity: top-1 {r['top1_per_identity'] * 100:.1f} %, "
              f"top-5 {r['top5_per_identity'] * 100:.1f} %)")
        print(f"  {r['seconds_per_query']:.3f} s per query (median), "
              f"{r['seconds_per_database_image']:.3f} s per database image (import + features"
              f" + index; the index {r.get('seconds_index', 0.0):.1f} s)")
        if (r.get("reliability") or {}).get("bands"):  # no candidates, nothing to say
            print("  " + _reliability_line(r["reliability"]))
        if r.get("open_set"):
            print(f"  open set: {r['held_out_identities']} identities held out, "
                  f"{r['n_unknown_queries']} unknown queries: BAKS {r['BAKS'] * 100:.1f} %  "
                  f"BAUS {r['BAUS'] * 100:.1f} %  AUROC {r['AUROC']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(main, indent=1) + "\n", encoding="utf-8")
    return 0


def _reliability_line(rel: dict) -> str:
    """'scores vs how often right' in one line: the band, the share right, the candidates."""
    bands = " · ".join(f"{b['low'] * 100:.0f}-{b['high'] * 100:.0f} %: {b['right'] * 100:.0f} % "
                       f"({b['n']})" for b in rel["bands"])
    return (f"scores of the best {rel['candidates_per_query']} vs how often right: {bands}; "
            f"calibration error {rel['calibration_error'] * 100:.1f} points")


# ---------------------------------------------------------------------------- calibrate
def cmd_calibrate(args: argparse.Namespace) -> int:
    from wildid.engine import reset_scores
    from wildid.engine.calibrate import calibrate_catalog, report_lines

    if args.reset:
        with open_existing(args.catalog) as catalog:
            removed = reset_scores(catalog)
        print(f"removed the scores refitted on {catalog.root}; the shipped calibration is used "
              "again" if removed else "nothing was refitted on this catalog; the shipped "
              "calibration is in use")
        return 0
    bar = ProgressBar()
    with open_existing(args.catalog) as catalog:
        try:
            report = calibrate_catalog(catalog, min_pairs=args.min_pairs,
                                       min_individuals=args.min_individuals, save=not args.dry_run,
                                       progress=bar)
        finally:
            bar.close()
    if args.json:
        print_json(report)
        return 0
    for line in report_lines(report):
        print(line)
    return 0 if any(r.get("refitted") for r in report["profiles"].values()) else 1
