"""The identification engine bound to a catalog: extraction, the incremental index, matching.

``identify_new`` is what the desktop app runs in the background after an import (``wildid
import`` too), and ``refresh_matches`` what its review screen runs for the encounters it shows
next once a decision or a box edit made their candidates out of date; the CLI commands
(``wildid extract``, ``wildid match``, ``wildid eval``) use the same
:class:`~wildid.engine.identification.CatalogEngine`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["compare_with", "engine_for", "identify_new", "process_new", "refresh_matches"]

_engines: dict[str, Any] = {}
_lock = threading.Lock()


def engine_for(catalog: Any) -> Any:
    """The engine of ``catalog``, kept per catalog folder so its index stays warm between calls."""
    from wildid.engine.identification import CatalogEngine

    key = str(catalog.root)
    with _lock:
        engine = _engines.get(key)
        if engine is None or engine.catalog is not catalog:
            engine = _engines[key] = CatalogEngine(catalog)
        return engine


def forget(catalog: Any) -> None:
    """Drop the cached engine of a catalog (closed, or its models changed)."""
    with _lock:
        _engines.pop(str(catalog.root), None)


def identify_new(catalog: Any, progress: Any = None, cancel: Any = None,
                 encounter_ids: Iterable[str] | None = None) -> Any:
    """Extract features for new annotations, then match unreviewed encounters not yet matched.

    Returns the :class:`~wildid.engine.identification.MatchReport`, its ``extraction`` filled
    in, so a caller can say what became of an import: how many encounters look known or new,
    and which photos could not be processed.
    """
    from wildid.engine.identification import MatchReport

    engine = engine_for(catalog)
    # Encounters another wildid process adds while this one extracts (the app identifying in
    # the background during `wildid import`, two imports at once) are that process's to
    # extract and match: matched here before their features exist, each was reported as "not
    # matched: no features (extraction failed?)". So only those due before extraction count.
    due = set(engine.pending_encounters(encounter_ids))
    extraction = engine.extract(progress, cancel)
    if extraction.cancelled:
        return MatchReport(extraction=extraction, cancelled=True)
    pending = [e for e in engine.pending_encounters(encounter_ids) if e in due]
    report = engine.match_many(pending, progress=progress, cancel=cancel)
    report.extraction = extraction
    return report


def refresh_matches(catalog: Any, encounter_ids: Sequence[str], progress: Any = None,
                    cancel: Any = None) -> Any:
    """Match again those of ``encounter_ids`` whose candidates are out of date.

    What the review screen runs in the background for the encounters it shows next: a box
    drawn since has no features yet (extracted first), and a decision since may have named
    the very animal they show (:func:`wildid.review.queries.stale_results`); results of
    another engine or calibration count too (``pending_encounters``). Returns the
    :class:`~wildid.engine.identification.MatchReport` (``matched`` empty when nothing was due).
    """
    from wildid.engine.identification import MatchReport
    from wildid.review.queries import stale_results

    engine = engine_for(catalog)
    extraction = engine.extract(progress, cancel)
    if extraction.cancelled:
        return MatchReport(extraction=extraction, cancelled=True)
    due = set(stale_results(catalog, encounter_ids)) | set(engine.pending_encounters(encounter_ids))
    report = (engine.match_many([e for e in dict.fromkeys(encounter_ids) if e in due],
                                progress=progress, cancel=cancel) if due else MatchReport())
    report.extraction = extraction
    return report


def compare_with(catalog: Any, encounter_id: str, individual_id: str) -> Any:
    """What the review screen's *Compare with…* shows: the evidence for one individual,
    wherever it ranks (``CatalogEngine.compare``), as a
    :class:`~wildid.review.views.CandidateView` whose ``rank`` is its place among all; None
    when the encounter has nothing to compare with it. Nothing is stored."""
    from wildid.review.queries import candidate_view

    engine = engine_for(catalog)
    engine.extract()
    row = engine.compare(encounter_id, individual_id)
    return None if row is None else candidate_view(catalog, encounter_id, row)


def refit_scores(catalog: Any, progress: Any = None, cancel: Any = None) -> dict[str, Any]:
    """``wildid calibrate`` for the app: refit each species profile's scores from the catalog's
    confirmed decisions and save them (:func:`wildid.engine.calibrate.calibrate_catalog`).

    It runs on the engine already loaded, so its index is not built again; afterwards that
    engine is dropped, so the next identification uses the refitted profiles and matches the
    unreviewed encounters again (their results carry the old calibration's tag).
    """
    from wildid.engine.calibrate import calibrate_catalog

    report = calibrate_catalog(catalog, engine=engine_for(catalog), progress=progress)
    if report.get("saved"):
        forget(catalog)
    return report


def reset_scores(catalog: Any) -> bool:
    """``wildid calibrate --reset``: remove ``catalog``'s refitted profiles, so the shipped ones
    are used again, and drop its loaded engine with them (its unreviewed encounters are then
    matched again). Returns whether there was anything to remove."""
    from wildid.engine.identification import forget_refits

    if not forget_refits(catalog.root):
        return False
    forget(catalog)
    return True


def process_new(catalog: Any, progress: Any = None, cancel: Any = None,
                encounter_ids: Iterable[str] | None = None) -> Any:
    """:func:`identify_new` for callers that only need to know which encounters changed.

    Returns a :class:`~wildid.review.changes.Changes` naming the encounters that got new
    candidates, so open views refresh only those.
    """
    from wildid.review.changes import Changes

    report = identify_new(catalog, progress, cancel, encounter_ids)
    return Changes(encounters=frozenset(report.matched))
