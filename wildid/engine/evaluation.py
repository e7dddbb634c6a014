"""``wildid eval``: identification accuracy on a labelled manifest, through the real pipeline.

A throwaway catalog receives the database photos (imported in place, one encounter per photo),
each labelled with its identity as if a reviewer had confirmed it; the query photos are imported
unlabelled and every query encounter is matched exactly as in the app (same extraction, same
index, same calibration). Nothing about the manifest's files is used except the labels.

Rankings are of *individuals*: top-k is the share of queries whose identity is among the first k
individuals; mAP is the mean average precision of that ranking (one relevant individual per
query, so it equals the mean reciprocal rank, 0 when the identity is not in the top 50).
``open_set`` holds some query identities out of the database: their queries should be answered
"likely new individual" (BAUS), the others matched correctly and not called new (BAKS); AUROC
measures how well the best calibrated score separates the two.
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from wildid.catalog import open_catalog
from wildid.catalog.models import Annotation, Encounter, Individual, Photo
from wildid.engine.identification import CatalogEngine, active_profiles
from wildid.engine.manifest import ManifestRow, open_set_split, read_manifest
from wildid.engine.species_guess import SpeciesGuess, guess_from_photos
from wildid.errors import WildIdError
from wildid.ingest.hashing import hash_file
from wildid.ingest.importer import ImportOptions, run_import
from wildid.matching import metrics
from wildid.matching.identifier import IdentifierConfig
from wildid.matching.profiles import SpeciesProfile, profile_for
from wildid.progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

__all__ = ["baseline_profile", "evaluate_manifest", "guess_species"]

TOP_K = 50
# the best candidates of each query listed in the JSON (`top5`, `scores`) and checked by the
# reliability table: the ones a reviewer compares (the review strip and `wildid match` show
# these first)
SHOWN = 5


def guess_species(manifest: Path, profiles: dict[str, SpeciesProfile],
                  rows: Sequence[ManifestRow] = ()) -> str | None:
    """A species a profile knows, named by the manifest's folders (``.../lion/manifest.csv``,
    nearest first), else by its file name (``nyala_heldout.csv``), else by the folders of
    most of its photos (``photos/Panthera_leo/...``); None when nothing names one.

    Why so many places: ``wildid eval MANIFEST.csv`` takes no species, and a manifest kept
    outside a folder named for its species would otherwise be run by the generic profile
    (nyala top-1 about 20 % instead of 45 %) without anyone asking for it."""
    for part in reversed(manifest.resolve().parent.parts):
        if (found := _profile_named(part, profiles)) is not None:
            return found
    for word in [manifest.stem, *re.split(r"[^A-Za-z]+", manifest.stem)]:
        if (found := _profile_named(word, profiles)) is not None:
            return found
    named: Counter[str] = Counter()
    for row in rows:
        for part in reversed(Path(row.path).parent.parts):
            if (found := _profile_named(part, profiles)) is not None:
                named[found] += 1
                break
    if named:
        name, n = named.most_common(1)[0]
        if n > len(rows) / 2:
            return name
    return None


def _profile_named(word: str, profiles: dict[str, SpeciesProfile]) -> str | None:
    """The profile (not the generic one) whose name or alias ``word`` is, underscores and
    hyphens read as spaces (``Panthera_leo``)."""
    for spelling in {word, word.replace("_", " "), word.replace("-", " ")}:
        if spelling.strip() and (prof := profile_for(spelling, profiles)).name != "default":
            return prof.name
    return None


def evaluate_manifest(manifest: Path, species: str | None = None, open_set: bool = False,
                      holdout: float = 0.25, seed: int = 0, workdir: Path | None = None,
                      method: str = "fused", use_embedder: bool = True,
                      progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                      log_line: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate identification on ``manifest``; returns the figures ``wildid eval`` prints.

    ``method="lnbnn"`` runs the HotSpotter-style baseline (one kNN index, raw LNBNN scores, no
    verification, fusion or calibration) on the same catalog and features.
    """
    say = log_line or (lambda _m: None)
    sheet = read_manifest(Path(manifest))
    rows = sheet.rows
    if sheet.missing:
        say(sheet.describe_missing())
    profiles = active_profiles()
    given = species is not None
    species = species or guess_species(Path(manifest), profiles, rows)
    looked = None
    if species is None:  # nothing names one: what do the photos look like?
        looked = _looks_like(tuple(r.path for r in rows))
        species = looked.profile
    unknown: set[str] = set()
    if open_set:
        rows, unknown = open_set_split(rows, holdout, seed)
    profile = profile_for(species, profiles)
    if method == "lnbnn":
        profile = baseline_profile(profile)
        profiles = {**profiles, profile.name: profile}
    say(f"species profile: {profile.name}" + (f" (species {species})" if species else "")
        + (" for the LNBNN baseline" if method == "lnbnn" else ""))
    named = ", ".join(sorted(n for n in profiles if n != "default"))
    if looked is not None and species is not None:
        say(f"no species given or named by the manifest's folders, its file name or the "
            f"folders of its photos; its photos look like {species} ({looked.describe()}); "
            f"--species names another ({named})")
    elif looked is not None:
        say("no species given, and none named by the manifest's folders, its file name or the "
            f"folders of its photos, nor clearly shown by them ({looked.describe()}): the "
            f"generic profile runs (--species names one: {named})")
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wildid-eval-", dir=workdir) as tmp:
        catalog = open_catalog(Path(tmp) / "catalog")
        try:
            out = _run(catalog, rows, unknown, species, profiles, method, use_embedder,
                       progress, cancel, say)
        finally:
            catalog.close()
    # how the species was settled: given, named by the paths, seen in the photos, or none
    out["species"] = species
    out["species_from"] = ("given" if given else "names" if looked is None
                           else "photos" if species is not None else "none")
    if looked is not None:
        out["species_cosines"] = looked.cosines
    out["missing_photos"] = len(sheet.missing)  # rows whose photo does not exist: left out
    return out


@functools.lru_cache(maxsize=4)
def _looks_like(paths: tuple[Path, ...]) -> SpeciesGuess:
    """:func:`guess_from_photos` once per set of photos: `wildid eval --baseline` evaluates
    the same manifest twice, and the guess loads a model and embeds 16 photos."""
    return guess_from_photos(list(paths))


def baseline_profile(profile: SpeciesProfile) -> SpeciesProfile:
    """``profile`` as the HotSpotter-style baseline runs it: plain strongest-response SIFT
    keypoints on the grey crop and raw LNBNN, nothing learned (no stripe or ridge maps, no
    attention, projection or learned re-ranking: those are wildid's), and an individual's
    photos combined as the baseline always has (plain noisy-or of two; a profile's own way of
    combining them is wildid's too, and would move the baseline with it)."""
    plain = IdentifierConfig()
    config = replace(profile.config, method="lnbnn", mirror=False, aggregation=plain.aggregation,
                     aggregation_top=plain.aggregation_top,
                     aggregation_odds=plain.aggregation_odds)
    return replace(profile, config=config, vectors=[], attention_power=0.0,
                   descriptor_projection=None, tophat=0, ridge_keypoints=0, learned_keypoints=0,
                   rerank_calibration=None)


def _rows_sharing_a_photo(rows: list[ManifestRow],
                          encounter_of: dict[Path, str]) -> list[ManifestRow]:
    """Rows whose photo another row also names (by path, or the same bytes: the import keeps
    one copy). Why say so: a photo listed in both splits is silently a query only, and two
    database labels on one photo silently keep one; a held-out set built by hand can do
    either."""
    by_photo: dict[str, list[ManifestRow]] = {}
    for row in rows:
        if row.path in encounter_of:
            by_photo.setdefault(encounter_of[row.path], []).append(row)
    return [row for group in by_photo.values() if len(group) > 1 for row in group]


def _run(catalog: Any, rows: list[ManifestRow], unknown: set[str], species: str | None,
         profiles: dict[str, SpeciesProfile], method: str, use_embedder: bool,
         progress: ProgressCallback | None, cancel: CancelToken | None,
         say: Callable[[str], None]) -> dict[str, Any]:
    db_rows = [r for r in rows if r.split == "database"]
    q_rows = [r for r in rows if r.split == "query"]
    t0 = time.perf_counter()
    options = ImportOptions(species=species, burst_gap_s=-1.0, reference_in_place=True)
    encounter_of = _import(catalog, [r.path for r in db_rows + q_rows], options, progress, cancel)
    t_import = time.perf_counter() - t0
    lost = [r for r in db_rows + q_rows if r.path not in encounter_of]
    if lost:
        lost_q = sum(r.split == "query" for r in lost)
        say(f"{len(lost)} photo(s) could not be imported and are left out ({lost_q} of them "
            f"queries; first: {lost[0].path}); the log says why")
    shared = _rows_sharing_a_photo(db_rows + q_rows, encounter_of)
    if shared:
        first = shared[0]
        say(f"{len(shared)} manifest rows show a photo another row shows too (the same file, "
            f"or the same bytes under another name; first: {first.path}, {first.identity}, "
            f"{first.split}): a query is never compared with itself, so a photo that is also "
            "in the database is matched against the rest only, and a photo labelled twice in "
            "the database keeps one label")
    _label(catalog, db_rows, encounter_of, species)
    # a throwaway catalog: its index is not saved
    engine = CatalogEngine(catalog, profiles=profiles, persist_index=False,
                           use_embedder=use_embedder and method != "lnbnn")
    t0 = time.perf_counter()
    extraction = engine.extract(progress, cancel)
    t_extract = time.perf_counter() - t0
    for ann, reason in extraction.failed[:10]:
        say(f"extraction failed for annotation {ann}: {reason}")
    t0 = time.perf_counter()
    engine.sync(progress, cancel)
    t_index = time.perf_counter() - t0
    rankings, truths, best_scores, predicted, times = [], [], [], [], []
    per_query: list[dict[str, Any]] = []
    names = _names(catalog)
    for i, row in enumerate(q_rows):
        if cancel is not None:
            cancel.raise_if_cancelled()
        enc = encounter_of.get(row.path)
        if enc is None:  # not imported (unreadable): said after the import, left out
            continue
        match = engine.match_encounter(enc, top_k=TOP_K, store=False, sync=False)
        times.append(match.seconds)
        ranking = [names[str(c.individual_id)] for c, _ in match.candidates]
        rankings.append(ranking)
        truths.append(row.identity)
        best = match.best_score or 0.0
        best_scores.append(best)
        predicted.append(None if match.likely_new else (ranking[0] if ranking else None))
        # which photos failed, and to what: what a user (or a tuner) looks at next
        per_query.append({
            "path": str(row.path), "identity": row.identity,
            "rank": ranking.index(row.identity) + 1 if row.identity in ranking else None,
            "top5": ranking[:SHOWN], "scores": [c.score for c, _ in match.candidates[:SHOWN]],
            "likely_new": match.likely_new, "seconds": match.seconds,
        })
        if progress is not None and (i % 10 == 0 or i == len(q_rows) - 1):
            from wildid.progress import Progress

            progress(Progress("Identifying queries", i + 1, len(q_rows)))
    known_rows = [j for j, t in enumerate(truths) if t not in unknown]
    kr = [rankings[j] for j in known_rows]
    kt = [truths[j] for j in known_rows]
    # queries of an identity with no database photo (not held out by --open-set) can never be
    # right: they count as misses, as in the published protocols, and the user is told so
    in_database = {r.identity for r in db_rows}
    absent = [t for t in kt if t not in in_database]
    if absent:
        ids = len(set(absent))
        which = f"{ids} identity" if ids == 1 else f"{ids} identities"
        say(f"{len(absent)} of {len(kt)} queries ({which}) have no database photo of their "
            "identity: they count as misses (`--open-set` scores queries of new animals by "
            "the new-individual verdict)")
    n_db = len(db_rows)
    profile = profile_for(species, profiles)
    out: dict[str, Any] = {
        "method": method,
        "species_profile": profile.name,
        # the learned matcher re-ranked the best candidates (its model installed and intact)
        "learned_rerank": (profile.config.rerank_top
                           if engine.identifier(profile.name).matcher is not None else 0),
        "learned_rerank_annotations": profile.config.rerank_annotations,
        "n_database": n_db,
        "n_queries": len(kt),
        "n_identities": len({r.identity for r in db_rows}),
        "top1": metrics.top_k_accuracy(kr, kt, 1),
        "top5": metrics.top_k_accuracy(kr, kt, 5),
        "top1_per_identity": metrics.per_identity_top_k(kr, kt, 1),
        "top5_per_identity": metrics.per_identity_top_k(kr, kt, 5),
        "mAP": metrics.mean_average_precision(kr, kt, [1] * len(kt)),
        "seconds_per_query": _median(times),
        "seconds_per_database_image": (t_import + t_extract + t_index) / max(n_db + len(q_rows), 1),
        "seconds_import": t_import,
        "seconds_extract": t_extract,
        "seconds_index": t_index,  # loading the database into the matcher's index
        "extraction_failed": len(extraction.failed),
        "queries_without_database_identity": len(absent),
        "photos_not_imported": len(lost),
        "rows_sharing_a_photo": len(shared),
        "queries": per_query,
    }
    if method != "lnbnn":  # calibrated probabilities; the baseline's LNBNN votes are not
        # the candidates each query lists, and whether each was its animal
        shown = [(p, name == q["identity"]) for q in per_query
                 for p, name in zip(q["scores"], q["top5"], strict=True)]
        bands = metrics.reliability([p for p, _ in shown], [ok for _, ok in shown])
        out["reliability"] = {"candidates_per_query": SHOWN, "bands": bands,
                              "calibration_error": metrics.calibration_error(bands)}
    if unknown:
        known_ids = {r.identity for r in db_rows}
        baks, baus = metrics.open_set_accuracy(predicted, truths, known_ids)
        out.update({
            "open_set": True,
            "n_unknown_queries": sum(1 for t in truths if t not in known_ids),
            "held_out_identities": len(unknown),
            "BAKS": baks, "BAUS": baus,
            "AUROC": metrics.auroc(best_scores, [t in known_ids for t in truths]),
        })
    return out


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _import(catalog: Any, paths: list[Path], options: ImportOptions,
            progress: ProgressCallback | None, cancel: CancelToken | None) -> dict[Path, str]:
    """Import the files; map each manifest path to its encounter (duplicates by content)."""
    report = run_import(catalog, paths, options, progress=progress, cancel=cancel)
    if report.status == "cancelled":
        from wildid.errors import Cancelled

        raise Cancelled("evaluation cancelled")
    with catalog.session() as s:
        pairs = s.execute(select(Photo.original_path, Photo.sha256, Annotation.encounter_id)
                          .join(Annotation, Annotation.photo_id == Photo.id)
                          .where(Annotation.encounter_id.is_not(None))).all()
    by_path = {Path(p): e for p, _, e in pairs}
    by_hash = {h: e for _, h, e in pairs}
    out: dict[Path, str] = {}
    for path in paths:
        enc = by_path.get(path) or by_path.get(path.resolve())
        if enc is None:
            try:
                enc = by_hash.get(hash_file(path))
            except OSError:
                enc = None
        if enc is not None:
            out[path] = enc
    missing = len(set(paths) - set(out))
    if missing:
        log.warning("%d manifest photo(s) could not be imported: %s", missing,
                    "; ".join(f"{p}: {r}" for p, r in report.skipped[:5]))
    if not out:
        raise WildIdError("no manifest photo could be imported")
    return out


def _label(catalog: Any, db_rows: list[ManifestRow], encounter_of: dict[Path, str],
           species: str | None) -> None:
    """One individual per identity; database encounters assigned as if confirmed."""
    by_identity: dict[str, list[str]] = defaultdict(list)
    for row in db_rows:
        enc = encounter_of.get(row.path)
        if enc is not None:
            by_identity[row.identity].append(enc)
    with catalog.session() as s:
        for identity, encs in sorted(by_identity.items()):
            ind = Individual(name=identity, species=species)
            s.add(ind)
            s.flush()
            for enc_id in encs:
                enc = s.get(Encounter, enc_id)
                if enc is not None and enc.individual_id is None:
                    enc.individual_id = ind.id
                    enc.state = "confirmed"


def _names(catalog: Any) -> dict[str, str]:
    with catalog.session() as s:
        return {i: n for i, n in s.execute(select(Individual.id, Individual.name))}
