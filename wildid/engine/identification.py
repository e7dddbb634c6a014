"""Identification against a catalog: the in-memory index kept in step with the database.

:class:`CatalogEngine` owns one :class:`~wildid.matching.identifier.Identifier` per species
profile, filled with the annotations whose encounter belongs to a known individual. It never
rebuilds: :meth:`CatalogEngine.sync` compares what the catalog says now (annotations, their
individual after merges, species, viewpoint) with what is indexed and only adds, removes or
relabels the difference, so a confirmation in the review screen costs one annotation's worth of
work. Features come from the catalog's ``features`` table (computed once by extraction); nothing
is extracted at query time. The index is saved in the catalog folder and restored at the first
sync after a start (:mod:`wildid.engine.index_cache`), and the same comparison then applies
what changed since it was saved.

Results are stored as :class:`MatchCandidate` rows (the review screen reads them) with the
verified keypoint pairs mapped to original-photo pixels, and one :class:`MatchSummary` per
encounter (best calibrated score and the likely-new verdict).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select

from wildid.catalog import Catalog
from wildid.catalog.models import (
    Annotation,
    Encounter,
    Feature,
    Individual,
    MatchCandidate,
    MatchSummary,
    Photo,
)
from wildid.catalog.types import utcnow
from wildid.engine.extraction import ExtractionReport, annotation_crop, extract_pending
from wildid.engine.index_cache import index_path, read_index, remove_index, write_index
from wildid.engine.sources import ColourSource, FeatureSource, GlobalSource, SiftSource, decode_vector
from wildid.errors import Cancelled, MatchingError, ModelError, WildIdError
from wildid.ingest.grouping import EXIF_CAMERA
from wildid.matching.features import LearnedKeypoints, LocalFeatures
from wildid.matching.identifier import (
    Candidate,
    DatabaseEntry,
    Identifier,
    TurnedQuery,
    local_score_names,
)
from wildid.matching.profiles import (
    DEFAULTS_PATH,
    SpeciesProfile,
    load_profiles,
    profile_for,
    save_profiles,
)
from wildid.paths import data_dir
from wildid.progress import CancelToken, ProgressCallback, ProgressReporter
from wildid.review.details import chunks
from wildid.review.history import rejected_pairs

log = logging.getLogger(__name__)

__all__ = ["CatalogEngine", "EncounterMatch", "MatchReport", "active_profiles",
           "catalog_profiles_path", "forget_refits", "user_profiles_path"]

# Bumped when the scoring itself changes, so cached results are recomputed: 2 = spatial
# verification with the rotation sign fixed (2026-12-02); 3 = the learned matcher sees a
# turned query turned back (2026-12-06); 4 = the verification's refit kept to plausible scales
# and nyala's photos of an individual combined at odds x 50 (2026-12-06, later); 5 = photos of
# different resolutions verified in one frame (2026-12-06, tenth session).
ENGINE_VERSION = "wildid-engine/5"
# Annotations whose features are read and indexed at a time (nyala: ~0.5 GB of descriptors as
# float32), and the unit of the index's loading progress.
SYNC_CHUNK = 500
# candidates stored per encounter for review (the app's candidate strip); `wildid match --top`
# prints fewer but stores no fewer, so a command line run never shortens the app's lists
CANDIDATES_KEPT = 10
# Saving the index (_save_if_due): bytes of the file per descriptor row (nyala: 183 at 2,500
# annotations, 189 at 10,000: the row's codes and columns, keypoint geometry, learned
# keypoints), and the write speed assumed until a save has been timed.
SAVED_ROW_BYTES = 190
SAVE_BYTES_PER_SECOND = 200e6


def user_profiles_path() -> Path:
    """The user's own profiles for every catalog: profiles edited or added by hand (a species
    of their own), and refits that ``wildid calibrate`` saved here before refits were kept
    per catalog (see :func:`active_profiles`)."""
    return data_dir() / "calibration.json"


def catalog_profiles_path(catalog_root: Path) -> Path:
    """Where ``wildid calibrate`` saves the profiles it refitted on one catalog's decisions."""
    return Path(catalog_root) / "calibration.json"


def fitted_on(prof: SpeciesProfile) -> str | None:
    """The catalog ``wildid calibrate`` fitted ``prof``'s calibration on (``catalog <root>``,
    as the calibration's info says), or None for a profile it did not refit."""
    if not prof.info.get("settings_of") or prof.calibration is None:
        return None
    where = str(prof.calibration.info.get("fitted_on", ""))
    return where if where.startswith("catalog ") else None  # else a description of data


def active_profiles(catalog_root: Path | None = None) -> dict[str, SpeciesProfile]:
    """The profiles identification uses in the catalog at ``catalog_root`` (None: none, as for
    `wildid eval`'s throwaway catalogs): the shipped ones, then the user's own
    (:func:`user_profiles_path`), then the refits of that catalog
    (:func:`catalog_profiles_path`), each where it is still valid.

    Why per catalog: a refit learns what scores mean on one catalog's photos (a species, a
    camera, a place). Kept in one file for every catalog, a zebra project's refit of the
    default profile scored another project's hyenas, and a refit on a young catalog of two
    animals set the "likely new" threshold of every other catalog. Refits saved in the user's
    file before (those carry the catalog they were fitted on) still apply, to that catalog
    only; profiles edited by hand there apply everywhere.

    ``wildid calibrate`` saves each profile it refitted with the digest of the shipped settings
    it was fitted for (``info["settings_of"]``). When an upgrade changes those settings (a new
    matcher, another keypoint budget), the old calibration would score features it was never
    fitted on, so the shipped profile is used again, with a warning, until the user
    recalibrates. A copy without that mark was edited by hand and is the user's to keep. A
    file holds only the profiles that differ from the shipped ones; the others, and profiles
    shipped after it was written, are used as shipped.

    ``wildid calibrate`` fits the calibrations and sets the catalog size they hold at
    (``size_reference``), nothing else: the corrections of the shown scores fitted on the
    shipped data (``SHIPPED_CORRECTIONS``: how scores move with catalog size, the first-place
    map, the verdict's rise in tiny catalogs) come from the shipped profile, so a calibration
    saved before an upgrade that brings or refits them gets them too.
    """
    shipped = load_profiles(DEFAULTS_PATH)
    profiles = dict(shipped)
    here = None if catalog_root is None else f"catalog {catalog_root}"
    _overlay(profiles, shipped, user_profiles_path(),
             lambda prof: fitted_on(prof) is None or fitted_on(prof) == here)
    if catalog_root is not None:
        _overlay(profiles, shipped, catalog_profiles_path(catalog_root), lambda prof: True)
    return profiles


def _overlay(profiles: dict[str, SpeciesProfile], shipped: dict[str, SpeciesProfile],
             path: Path, applies: Callable[[SpeciesProfile], bool]) -> None:
    """Replace ``profiles`` by the valid ones of the file at ``path`` that ``applies`` to."""
    if not path.is_file():
        return
    try:
        theirs = load_profiles(path, overrides=True)
    except MatchingError as exc:
        log.warning("ignoring %s: %s", path, exc)
        return
    for name, prof in theirs.items():
        if not applies(prof):
            continue
        fitted_for = prof.info.get("settings_of")
        base = shipped.get(name)
        if fitted_for and base is not None and fitted_for != base.settings_digest():
            log.warning("the %s calibration in %s was fitted for an earlier version of the "
                        "profile; using the shipped one (run `wildid calibrate` to refit)",
                        name, path)
            continue
        if fitted_for and base is not None:
            prof = replace(prof, **{k: getattr(base, k) for k in SHIPPED_CORRECTIONS})
        profiles[name] = prof


def forget_refits(catalog_root: Path) -> bool:
    """Remove the refits of the catalog at ``catalog_root`` (``wildid calibrate --reset``):
    its own file, and refits of it that an older version saved in the user's file. Returns
    whether there was any."""
    removed = False
    own = catalog_profiles_path(catalog_root)
    if own.is_file():
        own.unlink()
        removed = True
    user = user_profiles_path()
    if user.is_file():
        try:
            theirs = load_profiles(user, overrides=True)
        except MatchingError:
            return removed
        here = f"catalog {catalog_root}"
        kept = {n: p for n, p in theirs.items() if fitted_on(p) != here}
        if len(kept) < len(theirs):
            removed = True
            if kept:
                save_profiles(kept, user, note="profiles of your own")
            else:
                user.unlink()
    return removed


# what `wildid calibrate` does not fit, taken from the shipped profile (active_profiles)
SHIPPED_CORRECTIONS = ("size_slope", "size_floor", "size_slope_small", "size_small_verified",
                       "first_place", "verdict_slope_small", "verdict_small_verified",
                       "size_slope_single")


@dataclass(frozen=True)
class _Indexed:
    individual_id: str
    profile: str
    species: str | None
    viewpoint: str | None
    # the ids of the feature rows indexed, comma-joined: re-extracted features (a box moved,
    # another model) have new ids, and the annotation is indexed again
    features: str = ""


@dataclass
class EncounterMatch:
    """The ranked individuals for one encounter (what ``wildid match`` prints)."""

    encounter_id: str
    candidates: list[tuple[Candidate, str]]  # (candidate, query annotation id)
    likely_new: bool
    threshold: float
    seconds: float
    queried: int  # query annotations that had features
    also_rank: int | None = None
    """Where the individual asked for (``match_encounter(also=...)``) ranks (0: first), for
    the query photo through which it scored best; None when not asked or not comparable."""

    @property
    def best_score(self) -> float | None:
        return self.candidates[0][0].score if self.candidates else None


@dataclass
class MatchReport:
    """What a batch of matching did (``process_new`` and ``wildid match --all``)."""

    extraction: ExtractionReport | None = None
    matched: list[str] = field(default_factory=list)
    likely_new: list[str] = field(default_factory=list)  # matched, best score under the threshold
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (encounter id, reason)
    cancelled: bool = False


class CatalogEngine:
    """Extraction sources, the incremental index and identification for one catalog."""

    def __init__(self, catalog: Catalog, registry: object | None = None,
                 profiles: dict[str, SpeciesProfile] | None = None,
                 use_embedder: bool = True, persist_index: bool = True) -> None:
        self.catalog = catalog
        self.profiles = profiles if profiles is not None else active_profiles(catalog.root)
        self._registry = registry
        self._use_embedder = use_embedder
        self._sources: list[FeatureSource] | None = None
        self._active_embedder: Any = None
        self._identifiers: dict[str, Identifier] = {}
        self._matchers: dict[str, Any] = {}  # profile name -> its learned matcher, or None
        self._query_keypoint_models: dict[str, object | None] = {}
        self._indexed: dict[str, _Indexed] = {}
        # the index saved in the catalog folder (index_cache): restored at the first sync,
        # saved again once catching up with the catalog costs more than writing it
        self._persist = persist_index
        self._restore_tried = False
        self._unsaved: set[str] = set()  # profiles changed since they were saved or restored
        self._unsaved_seconds = 0.0  # what applying those changes took
        self._save_rate = SAVE_BYTES_PER_SECOND

    # ------------------------------------------------------------------ sources
    def sources(self) -> list[FeatureSource]:
        """Local RootSIFT, colour and (when a model is installed and intact) the embedder."""
        if self._sources is None:
            embedder = self._embedder_source()
            sources: list[FeatureSource] = [
                SiftSource(self.profiles, attention=self._attention_model,
                           keypoints=self._keypoint_model,
                           query_keypoints=self._query_keypoint_model), ColourSource()]
            if embedder is not None:
                sources.append(embedder)
            self._sources = sources
        return self._sources

    def _attention_model(self, model_id: str) -> object | None:
        """The embedder whose ``attention`` output places a profile's keypoints, or None.

        Only the model's own id is asked for (not the active embedder, which a user may swap
        for one without that output); when it is missing or broken, local features fall back
        to the strongest responses and are re-extracted once it is back (see SiftSource).
        """
        if not self._use_embedder:
            return None
        if self._active_embedder is not None and self._active_embedder.model_id == model_id:
            return self._active_embedder
        try:
            return self._registry_or_default().embedder(model_id)
        except ModelError as exc:
            log.warning("keypoints placed without attention: %s", exc)
            return None

    def _registry_or_default(self) -> Any:
        """The model registry given at construction, else the user's (made on first need)."""
        if self._registry is None:
            from wildid.engine.runtime import default_registry

            self._registry = default_registry()
        return self._registry

    def _keypoint_model(self, model_id: str) -> object | None:
        """A profile's learned keypoint model (ALIKED), or None when it is missing or broken:
        features are then stored without learned keypoints, re-extracted once it is back."""
        if not self._use_embedder:
            return None
        try:
            # one thread: extraction runs two crops side by side (SiftSource.compute)
            return self._registry_or_default().keypoint_extractor(model_id, threads=1)
        except ModelError as exc:
            log.warning("no learned re-ranking: %s", exc)
            return None

    def _query_keypoint_model(self, model_id: str) -> object | None:
        """The keypoint model again, on two threads, for describing a turned query at match
        time (``SiftSource.turned_learned``), loaded on first need and kept."""
        if model_id not in self._query_keypoint_models:
            try:
                self._query_keypoint_models[model_id] = (
                    self._registry_or_default().keypoint_extractor(model_id, threads=2))
            except ModelError as exc:
                log.warning("turned queries described on one thread: %s", exc)
                self._query_keypoint_models[model_id] = None
        return self._query_keypoint_models[model_id]

    def _matcher(self, profile: SpeciesProfile) -> Any:
        """The profile's learned matcher (LightGlue) when it re-ranks and the model is intact
        (loaded once per profile)."""
        model_id = profile.models().get("matcher")
        if not self._use_embedder or model_id is None:
            return None
        if profile.name not in self._matchers:
            try:
                self._matchers[profile.name] = self._registry_or_default().matcher(model_id)
            except ModelError as exc:
                log.warning("no learned re-ranking: %s", exc)
                self._matchers[profile.name] = None
        return self._matchers[profile.name]

    def _embedder_source(self) -> GlobalSource | None:
        if not self._use_embedder:
            return None
        try:
            registry = self._registry_or_default()
            model = registry.embedder(registry.active("embedder").id)
        except ModelError as exc:
            log.warning("no global embedder: %s (identification uses local features only)", exc)
            return None
        self._active_embedder = model
        manifest = model.manifest
        side = max(manifest.input.size) if manifest.input and manifest.input.size else 224
        return GlobalSource(model, manifest.id, manifest.version, input_side=side)

    def embedder_origin(self) -> tuple[str, Any, str] | None:
        """The active embedder's id, manifest and origin (``shipped`` or ``user``), or None
        without one: ``wildid calibrate`` asks whether it may fuse its cosine."""
        source = next((s for s in self.vector_sources() if isinstance(s, GlobalSource)), None)
        if source is None or self._active_embedder is None:
            return None
        try:
            origin = self._registry_or_default().get(source.model_id).source
        except ModelError:
            origin = "user"
        return source.model_id, self._active_embedder.manifest, origin

    def vector_sources(self) -> list[FeatureSource]:
        return [s for s in self.sources() if s.kind == "global"]

    def tag(self) -> str:
        """Identifies the code, models and species profiles (pipeline settings and calibration)
        a stored result came from: unreviewed encounters whose result has another tag are
        matched again (``pending_encounters``), so shown scores never come from an old
        calibration after ``wildid calibrate`` or an upgrade."""
        parts = [f"{s.model_id}@{s.model_version}" for s in self.sources()]
        # the learned matchers that re-rank (a profile without its model ranks by the first
        # stage alone, so results from before the model went missing or came back differ)
        parts += [f"{name}+{m.model_id}@{m.manifest.version}"
                  for name, prof in sorted(self.profiles.items())
                  if (m := self._matcher(prof)) is not None]
        # plain JSON on purpose (no default=str): a value that is not would be hashed through
        # a repr that NumPy abbreviates, and two calibrations could then share a tag
        profiles = json.dumps({n: p.to_dict() for n, p in sorted(self.profiles.items())},
                              sort_keys=True)
        digest = hashlib.sha256(profiles.encode()).hexdigest()[:12]
        return f"{ENGINE_VERSION} " + " ".join(parts) + f" profiles:{digest}"

    # ------------------------------------------------------------------ extraction
    def extract(self, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> ExtractionReport:
        """Features for every annotation the active sources have not processed yet."""
        self._drop_stale_local_features()
        return extract_pending(self.catalog, self.sources(), progress, cancel)

    def _drop_stale_local_features(self) -> None:
        """Local features extracted under another species profile are deleted (re-extracted)."""
        sift = next(s for s in self.sources() if isinstance(s, SiftSource))
        with self.catalog.session() as s:
            rows = s.execute(
                # the header names the profile and models (read no more of the blob than that)
                select(Feature.id, func.substr(Feature.data, 1, LocalFeatures.HEADER_PEEK),
                       func.coalesce(Annotation.species, Encounter.species))
                .join(Annotation, Annotation.id == Feature.annotation_id)
                .outerjoin(Encounter, Encounter.id == Annotation.encounter_id)
                .where(Feature.kind == "local", Feature.model_id == sift.model_id,
                       Feature.model_version == sift.model_version)).all()
            stale = [fid for fid, data, species in rows
                     if _extractor_of(data) != sift.extractor_name(species)]
            for part in chunks(stale):  # a whole catalog's, under SQLite's variable limit
                s.execute(delete(Feature).where(Feature.id.in_(part)))
            if stale:
                log.info("re-extracting %d annotations whose species profile changed", len(stale))

    # ------------------------------------------------------------------ index
    def identifier(self, profile: str) -> Identifier:
        ident = self._identifiers.get(profile)
        if ident is None:
            prof = self._with_scores_at_hand(self.profiles[profile])
            if prof is not self.profiles[profile]:  # the results' tag names what scores them
                self.profiles = {**self.profiles, profile: prof}
            ident = self._identifiers[profile] = prof.identifier(matcher=self._matcher(prof))
        return ident

    def _with_scores_at_hand(self, prof: SpeciesProfile) -> SpeciesProfile:
        """``prof``, or the shipped profile when its calibration weighs an embedder's cosine
        and that embedder is not the active one (``wildid calibrate`` fused it; the user has
        since chosen another model, or it is gone): every candidate would get the same
        stand-in value for it, and the scores would read lower than they are."""
        weighed = set(prof.calibration.features) if prof.calibration is not None else set()
        at_hand = {vector_name(s) for s in self.vector_sources()} | {"colour"}
        missing = sorted(f for f in weighed - at_hand
                         if f not in local_score_names(prof.config))
        if not missing:
            return prof
        shipped = load_profiles(DEFAULTS_PATH).get(prof.name)
        if shipped is None:
            return prof
        log.warning("the %s calibration weighs the cosine of %s, which is not the active "
                    "embedder; using the shipped calibration (choose that model again, or run "
                    "`wildid calibrate` to refit)", prof.name, ", ".join(missing))
        return shipped

    def sync(self, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> int:
        """Bring the index in line with the catalog; returns how many annotations changed.

        The first sync after a start restores the index saved in the catalog folder
        (:mod:`wildid.engine.index_cache`) and goes on from there. Without one it loads every
        labelled annotation (~80 s for 10,000 nyala annotations on a 2-core laptop), so it
        reports "Loading the index" per ``SYNC_CHUNK`` annotations and stops at ``cancel``
        between them (:class:`~wildid.errors.Cancelled`); what is loaded stays, and the next
        sync goes on from there. The index is saved again once catching up with the catalog
        has taken longer than writing it would (:meth:`_save_if_due`).
        """
        wanted = self._labelled_annotations()
        if self._persist and not self._restore_tried:
            self._restore_tried = True
            self._restore({info.profile for info in wanted.values()}, progress)
        started = time.perf_counter()
        try:
            changed = self._apply(wanted, progress, cancel)
        finally:
            self._unsaved_seconds += time.perf_counter() - started
        if self._persist:
            self._save_if_due(progress)
        return changed

    def _apply(self, wanted: dict[str, _Indexed], progress: ProgressCallback | None,
               cancel: CancelToken | None) -> int:
        """Add, remove and relabel what differs between the index and ``wanted``."""
        changed = 0
        for ann_id in [a for a in self._indexed if a not in wanted]:
            self._unindex(ann_id)
            changed += 1
        to_load: list[str] = []
        for ann_id, info in wanted.items():
            old = self._indexed.get(ann_id)
            if old == info:
                continue
            if old is not None and (old.profile, old.species, old.viewpoint, old.features) == (
                    info.profile, info.species, info.viewpoint, info.features):
                self.identifier(info.profile).relabel(ann_id, info.individual_id)
                self._indexed[ann_id] = info
                self._unsaved.add(info.profile)
                changed += 1
                continue
            if old is not None:
                self._unindex(ann_id)
            if info.features:  # counted once loaded
                to_load.append(ann_id)
            elif old is not None:  # its features are gone (a moved box): back once extracted
                changed += 1
        reporter = ProgressReporter("Loading the index", len(to_load), progress, cancel)
        if to_load:
            reporter.emit()
        for start in range(0, len(to_load), SYNC_CHUNK):
            reporter.checkpoint()
            chunk = to_load[start:start + SYNC_CHUNK]
            local, vectors = self.load_features(chunk)
            by_profile: dict[str, list[DatabaseEntry]] = {}
            for ann_id in chunk:
                info = wanted[ann_id]
                feats = local.get(ann_id)
                vecs = vectors.get(ann_id, {})
                if feats is None and not vecs:
                    continue  # deleted meanwhile or unreadable: tried again at the next sync
                by_profile.setdefault(info.profile, []).append(DatabaseEntry(
                    ann_id, info.individual_id, feats, species=info.species,
                    viewpoint=info.viewpoint, vectors=vecs))
            for profile, entries in by_profile.items():
                self._unsaved.add(profile)
                # in batches: see LocalIndex.add_many
                self.identifier(profile).add_many(entries)
                for e in entries:
                    self._indexed[e.key] = wanted[e.key]
                changed += len(entries)
            reporter.advance(len(chunk))
        return changed

    def _unindex(self, ann_id: str) -> None:
        info = self._indexed.pop(ann_id, None)
        if info is not None:
            self.identifier(info.profile).remove(ann_id)
            self._unsaved.add(info.profile)

    # ------------------------------------------------------------------ the saved index
    def _index_header(self, profile: str) -> dict[str, Any]:
        """What must not have changed for a saved index of ``profile`` to be restored."""
        return {"profile": profile, "settings": self.profiles[profile].settings_digest(),
                "sources": sorted(list(tag) for tag in self._source_tags())}

    def _restore(self, profiles: set[str], progress: ProgressCallback | None) -> None:
        """Restore the saved index of each of ``profiles`` that has one (index_cache)."""
        paths = {p: index_path(self.catalog.root, p) for p in sorted(profiles)}
        paths = {p: path for p, path in paths.items() if path.exists()}
        reporter = ProgressReporter("Restoring the index", len(paths), progress)
        if paths:
            reporter.emit()
        for profile, path in paths.items():
            ident = self.identifier(profile)
            try:
                saved = read_index(path, ident, self._index_header(profile))
                indexed = {a: _Indexed(ind, profile, species, viewpoint, features)
                           for a, (ind, species, viewpoint, features)
                           in dict(saved["indexed"]).items()}
                if len(indexed) != len(ident) or any(a not in ident for a in indexed):
                    raise MatchingError("its annotations and its index disagree")
            except (MatchingError, KeyError, TypeError, ValueError) as exc:
                log.warning("the saved index %s is not used (%s); it is built again", path, exc)
                self._identifiers.pop(profile, None)  # a fresh, empty one on next use
            else:
                self._indexed.update(indexed)
                log.info("restored the index of %d %s annotations from %s", len(indexed),
                         profile, path)
            reporter.advance()

    def _save_if_due(self, progress: ProgressCallback | None) -> None:
        """Save the changed profiles' index once catching up with the catalog (what the next
        start would repeat after restoring the saved one) has taken longer than writing it.

        Why not at every change: a confirmation costs milliseconds to index and the file of a
        10,000-annotation nyala catalog is ~3 GB; a start re-applies a few such changes at
        once. Why not only at exit: a crash or a killed process would lose a build of minutes.
        """
        if not self._unsaved:
            return
        rows = sum(self.identifier(p).local.n_descriptors for p in self._unsaved)
        if self._unsaved_seconds < rows * SAVED_ROW_BYTES / self._save_rate:
            return
        reporter = ProgressReporter("Saving the index", len(self._unsaved), progress)
        reporter.emit()
        for profile in sorted(self._unsaved):
            path = index_path(self.catalog.root, profile)
            ident = self.identifier(profile)
            if not len(ident):
                remove_index(path)
                reporter.advance()
                continue
            header = {**self._index_header(profile), "indexed": {
                a: [i.individual_id, i.species, i.viewpoint, i.features]
                for a, i in self._indexed.items() if i.profile == profile}}
            t0 = time.perf_counter()
            try:
                size = write_index(path, ident, header)
            except (OSError, MatchingError) as exc:
                log.warning("could not save the index to %s (it is built again at the next "
                            "start): %s", path, exc)
            else:
                self._save_rate = max(size / max(time.perf_counter() - t0, 1e-3), 1e6)
                log.info("saved the index of %d %s annotations to %s (%.0f MB)",
                         len(header["indexed"]), profile, path, size / 1e6)
            reporter.advance()
        self._unsaved.clear()
        self._unsaved_seconds = 0.0

    @property
    def indexed(self) -> int:
        return len(self._indexed)

    def _source_tags(self) -> dict[tuple[str, str, str], FeatureSource]:
        """The active sources by the tag their features are stored under (kind, model, version)."""
        return {(s.kind, s.model_id, s.model_version): s for s in self.sources()}

    def _labelled_annotations(self) -> dict[str, _Indexed]:
        """Annotations of encounters assigned to an individual, the individual after merges,
        and the ids of their features from the active sources."""
        tags = self._source_tags()
        with self.catalog.session() as s:
            merged = dict(s.execute(select(Individual.id, Individual.merged_into_id)
                                    .where(Individual.merged_into_id.is_not(None))).all())
            rows = s.execute(
                select(Annotation.id, Encounter.individual_id,
                       func.coalesce(Annotation.species, Encounter.species), Annotation.viewpoint)
                .join(Encounter, Encounter.id == Annotation.encounter_id)
                .where(Encounter.individual_id.is_not(None))).all()
            feature_rows = s.execute(
                select(Feature.annotation_id, Feature.id, Feature.kind, Feature.model_id,
                       Feature.model_version)
                .join(Annotation, Annotation.id == Feature.annotation_id)
                .join(Encounter, Encounter.id == Annotation.encounter_id)
                .where(Encounter.individual_id.is_not(None))).all()
        feature_ids: dict[str, list[str]] = {}
        for ann_id, feature_id, *tag in feature_rows:
            if tuple(tag) in tags:
                feature_ids.setdefault(ann_id, []).append(feature_id)
        out = {}
        for ann_id, ind, species, viewpoint in rows:
            seen = set()
            while ind in merged and ind not in seen:
                seen.add(ind)
                ind = merged[ind]
            profile = profile_for(species, self.profiles).name
            out[ann_id] = _Indexed(ind, profile, species, viewpoint,
                                   ",".join(sorted(feature_ids.get(ann_id, ()))))
        return out

    def load_features(self, annotation_ids: Sequence[str]
                      ) -> tuple[dict[str, LocalFeatures], dict[str, dict[str, np.ndarray]]]:
        """Stored local features and named vectors of the active sources for these annotations."""
        tags = self._source_tags()
        local: dict[str, LocalFeatures] = {}
        vectors: dict[str, dict[str, np.ndarray]] = {}
        with self.catalog.session() as s:  # `wildid calibrate` asks for a whole profile's
            rows = [row for part in chunks(list(annotation_ids))
                    for row in s.execute(select(Feature.annotation_id, Feature.kind,
                                                Feature.model_id, Feature.model_version,
                                                Feature.data)
                                         .where(Feature.annotation_id.in_(part)))]
        for ann_id, kind, model_id, version, data in rows:
            source = tags.get((kind, model_id, version))
            if source is None:
                continue
            try:
                if kind == "local":
                    local[ann_id] = LocalFeatures.from_bytes(data)
                else:
                    vectors.setdefault(ann_id, {})[vector_name(source)] = decode_vector(data)
            except (MatchingError, ValueError) as exc:
                log.warning("stored features of annotation %s are unreadable: %s", ann_id, exc)
        return local, vectors

    # ------------------------------------------------------------------ identification
    def match_encounter(self, encounter_id: str, top_k: int = CANDIDATES_KEPT, store: bool = True,
                        sync: bool = True, also: str | None = None) -> EncounterMatch:
        """Rank individuals for an encounter; every annotation of it is a query.

        Per individual the best calibrated score over the encounter's annotations counts.
        Individuals a reviewer rejected for this encounter are never proposed again. The
        new-individual verdict compares the best score with the threshold of the annotation
        that produced it: annotations of different profiles (or one re-ranked by the learned
        matcher and one not) have differently calibrated scores and thresholds.
        ``also``: an individual to compare whatever its rank (``Identifier.identify``); it
        follows the ``top_k`` when it ranks lower, and ``also_rank`` says where.
        """
        t0 = time.perf_counter()
        if sync:
            self.sync()
        with self.catalog.session() as s:
            enc = s.get(Encounter, encounter_id)
            if enc is None:
                raise MatchingError(f"no encounter {encounter_id}")
            queries = s.execute(
                select(Annotation.id, func.coalesce(Annotation.species, Encounter.species),
                       Annotation.viewpoint)
                .join(Encounter, Encounter.id == Annotation.encounter_id)
                .where(Annotation.encounter_id == encounter_id)
                .order_by(Annotation.created_at, Annotation.id)).all()
        own = {q[0] for q in queries}
        rejected = rejected_pairs(self.catalog, encounter_id)
        local, vectors = self.load_features([q[0] for q in queries])
        best: dict[str, tuple[Candidate, str]] = {}
        thresholds: dict[str, float] = {}
        also_ranks: dict[str, int] = {}  # query annotation -> where ``also`` ranked for it
        for ann_id, species, viewpoint in queries:
            feats, vecs = local.get(ann_id), vectors.get(ann_id, {})
            if feats is None and not vecs:
                continue
            profile = profile_for(species, self.profiles)
            ident = self.identifier(profile.name)
            result = ident.identify(feats, top_k=max(top_k, 10), exclude_keys=own,
                                    exclude_pairs=[(ann_id, r) for r in rejected],
                                    query_key=ann_id, species=species, viewpoint=viewpoint,
                                    vectors=vecs, turned=self._turned_query(ann_id, species),
                                    same_frame=self._same_frame(ann_id), also=also)
            thresholds[ann_id] = result.threshold
            if result.also_rank is not None:
                also_ranks[ann_id] = result.also_rank
            for cand in result:
                held = best.get(str(cand.individual_id))
                if held is None or cand.score > held[0].score:
                    best[str(cand.individual_id)] = (cand, ann_id)
        ordered = sorted(best.values(), key=lambda c: -c[0].score)
        ranked = ordered[:top_k]
        also_rank = None
        if also is not None and also in best:
            position = next(i for i, (c, _q) in enumerate(ordered) if str(c.individual_id) == also)
            if position < top_k:
                also_rank = position
            else:  # below the ones kept: where it ranked for its best photo, after them
                also_rank = max(top_k, also_ranks.get(best[also][1], position))
                ranked.append(best[also])
        queried = len(thresholds)
        if ranked:
            threshold = thresholds[ranked[0][1]]
        else:  # nothing to compare: the strictest threshold of the queries says "new"
            threshold = max(thresholds.values(), default=0.5)
        likely_new = not ranked or ranked[0][0].score < threshold
        match = EncounterMatch(encounter_id, ranked, likely_new, threshold,
                               time.perf_counter() - t0, queried, also_rank)
        if store and queried:
            self._store(match, local)
        return match

    def _turned_query(self, ann_id: str, species: str | None) -> TurnedQuery:
        """Describes the query annotation turned (``query_tilt``): its crop is read from
        the photo on the first call only, as extraction reads it. Stored features hold no
        pixels, and a turned description is needed only for a query whose verified pairs say
        the photo is turned, so reading the photo for every query would be waste. A photo
        that cannot be read any more leaves the matcher the query as it is."""
        sift = next(s for s in self.sources() if isinstance(s, SiftSource))
        side = max(s.working_side() for s in self.sources())  # as extraction reads crops
        crop: list[np.ndarray | None] = []

        def turned(degrees: float) -> LearnedKeypoints | None:
            if not crop:
                try:
                    crop.append(annotation_crop(self.catalog, ann_id, side))
                except WildIdError as exc:
                    log.warning("query %s matched upright only: %s", ann_id, exc)
                    crop.append(None)
            if crop[0] is None:
                return None
            return sift.turned_learned(crop[0], species, degrees)

        return turned

    def compare(self, encounter_id: str, individual_id: str) -> MatchCandidate | None:
        """The evidence for one individual a reviewer believes is missing from the candidates
        (``match_encounter(also=...)``): an unsaved ``MatchCandidate`` whose ``rank`` is where
        it ranks among all (0: first), inliers in photo pixels as stored ones have them. None
        when the encounter has nothing to compare with it (another species or flank, no
        features). Nothing is stored: the review's candidates stay."""
        match = self.match_encounter(encounter_id, store=False, also=individual_id)
        if match.also_rank is None:
            return None
        found = [(c, q) for c, q in match.candidates if str(c.individual_id) == individual_id]
        local, _vectors = self.load_features([found[0][1]])
        (row,) = self._candidate_rows(match.encounter_id, found, local, [match.also_rank])
        return row

    def _candidate_rows(self, encounter_id: str, candidates: list[tuple[Candidate, str]],
                        query_features: dict[str, LocalFeatures],
                        ranks: Sequence[int]) -> list[MatchCandidate]:
        """``MatchCandidate`` rows (not added to any session) for these candidates."""
        tag = self.tag()
        ann_ids = {a for c, q in candidates for a in (q, str(c.best_key))}
        with self.catalog.session() as s:
            boxes = {a: (x, y, w, h) for a, x, y, w, h in s.execute(
                select(Annotation.id, Annotation.x, Annotation.y, Annotation.w, Annotation.h)
                .where(Annotation.id.in_(ann_ids)))}
        rows = []
        for rank, (cand, query_id) in zip(ranks, candidates, strict=True):
            inliers = self._to_photo_pixels(cand, query_features.get(query_id), query_id, boxes)
            rows.append(MatchCandidate(
                encounter_id=encounter_id, rank=rank, individual_id=str(cand.individual_id),
                score=float(cand.score), raw_scores={k: float(v) for k, v in cand.raw.items()},
                query_annotation_id=query_id, best_annotation_id=str(cand.best_key),
                inliers=inliers.astype(np.float32).tobytes() if len(inliers) else None,
                engine=tag))
        return rows

    def _store(self, match: EncounterMatch, query_features: dict[str, LocalFeatures]) -> None:
        """Replace the encounter's cached candidates and summary (one transaction)."""
        tag = self.tag()
        rows = self._candidate_rows(match.encounter_id, match.candidates, query_features,
                                    range(len(match.candidates)))
        with self.catalog.session() as s:
            s.execute(delete(MatchCandidate).where(MatchCandidate.encounter_id == match.encounter_id))
            s.add_all(rows)
            summary = s.get(MatchSummary, match.encounter_id)
            if summary is None:
                summary = MatchSummary(encounter_id=match.encounter_id)
                s.add(summary)
            summary.best_score = match.best_score
            summary.likely_new = match.likely_new
            summary.threshold = float(match.threshold)
            summary.engine = tag
            summary.computed_at = utcnow()

    def _same_frame(self, annotation_id: str) -> set[str]:
        """Indexed annotations framed as this one by the same camera: whole photos (the
        automatic box) of the same size from one camera, as a camera trap takes them. Their
        scene sits at the same pixels as the query's, so the identifier drops matches at the
        same place (``drop_static``). The boxes need not be equal to the pixel: a data strip
        found a row higher on one photo moves every position by a fraction of a percent.

        The camera must be known by its EXIF make, model and serial, not guessed from the
        folder (``grouping.camera_key``'s fallback): an archive sorted into one folder per
        individual, exported without EXIF, would otherwise have the *same* animal's photos of
        one size lose their agreement (lion development photos: one query in 127 lost first
        place that way)."""
        with self.catalog.session() as s:
            row = s.execute(
                select(Encounter.camera_key, Photo.width, Photo.height).select_from(Annotation)
                .join(Photo, Photo.id == Annotation.photo_id)
                .join(Encounter, Encounter.id == Annotation.encounter_id)
                .where(Annotation.id == annotation_id, Annotation.full_frame.is_(True))).first()
            if row is None or not (row[0] or "").startswith(EXIF_CAMERA):
                return set()
            key, width, height = row
            same = s.scalars(
                select(Annotation.id)
                .join(Photo, Photo.id == Annotation.photo_id)
                .join(Encounter, Encounter.id == Annotation.encounter_id)
                .where(Encounter.camera_key == key, Encounter.individual_id.is_not(None),
                       Annotation.full_frame.is_(True), Annotation.id != annotation_id,
                       Photo.width == width, Photo.height == height))
            return {a for a in same if a in self._indexed}

    def _to_photo_pixels(self, cand: Candidate, q_feats: LocalFeatures | None, query_id: str,
                         boxes: dict[str, tuple[float, float, float, float]]) -> np.ndarray:
        """Inliers from crop pixels (as extracted) to the original photos' pixels."""
        inl = np.asarray(cand.inliers, np.float32).reshape(-1, 4)
        if not len(inl):
            return inl
        key = str(cand.best_key)
        db_feats = self.identifier(self._indexed[key].profile).local.features(key) \
            if key in self._indexed else None
        if q_feats is None or db_feats is None or query_id not in boxes or key not in boxes:
            return np.zeros((0, 4), np.float32)
        out = inl.copy()
        for cols, feats, box in (((0, 1), q_feats, boxes[query_id]), ((2, 3), db_feats, boxes[key])):
            x, y, w, h = box
            sx = w / max(feats.image_size[0], 1)
            sy = h / max(feats.image_size[1], 1)
            out[:, cols[0]] = x + (inl[:, cols[0]] + 0.5) * sx - 0.5
            out[:, cols[1]] = y + (inl[:, cols[1]] + 0.5) * sy - 0.5
        return out

    def pending_encounters(self, encounter_ids: Iterable[str] | None = None) -> list[str]:
        """Unreviewed encounters without a result from the current engine and models."""
        tag = self.tag()
        with self.catalog.session() as s:
            q = (select(Encounter.id).outerjoin(MatchSummary, MatchSummary.encounter_id == Encounter.id)
                 .where(Encounter.individual_id.is_(None))
                 .where((MatchSummary.engine.is_(None)) | (MatchSummary.engine != tag))
                 .order_by(Encounter.taken_utc, Encounter.id))
            ids = list(s.scalars(q))
        if encounter_ids is not None:
            wanted = set(encounter_ids)
            ids = [i for i in ids if i in wanted]
        return ids

    def match_many(self, encounter_ids: Sequence[str], top_k: int = CANDIDATES_KEPT,
                   progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> MatchReport:
        """Match encounters one by one, each stored at once (a cancel keeps what is done)."""
        report = MatchReport()
        try:
            self.sync(progress, cancel)
        except Cancelled:
            report.cancelled = True
            return report
        reporter = ProgressReporter("Matching", len(encounter_ids), progress, cancel)
        reporter.emit()
        try:
            for enc_id in encounter_ids:
                try:
                    match = self.match_encounter(enc_id, top_k, sync=False)
                except WildIdError as exc:
                    report.skipped.append((enc_id, str(exc)))
                else:
                    if match.queried:
                        report.matched.append(enc_id)
                        if match.likely_new:
                            report.likely_new.append(enc_id)
                    else:
                        report.skipped.append((enc_id, "no features (extraction failed?)"))
                reporter.advance()
                reporter.checkpoint()
        except Cancelled:
            report.cancelled = True
        return report


def vector_name(source: FeatureSource) -> str:
    """Score name of a vector source in the calibration: ``colour`` or the embedder's id."""
    return "colour" if isinstance(source, ColourSource) else source.model_id


def _extractor_of(data: bytes) -> str:
    return LocalFeatures.extractor_of(data)
