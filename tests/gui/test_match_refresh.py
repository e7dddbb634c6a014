"""The review screen's background refresh of out-of-date candidates (``Services.refresh_matches``)
with the real engine, beyond what tests/gui/test_identification_flow.py shows end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.photofactory import make_animal_pair
from wildid.catalog.models import Annotation, Photo
from wildid.engine import forget
from wildid.ingest.importer import ImportOptions, run_import

JOB_TIMEOUT_MS = 120_000


def _encounter_of(catalog: Any, path: Path) -> str:
    with catalog.session() as s:
        return s.scalars(select(Annotation.encounter_id).join(Photo)
                         .where(Photo.original_path == str(path))).one()


def test_an_encounter_with_nothing_to_match_is_not_refreshed_at_every_step(
        services: Any, settings: Any, qtbot: Any, tmp_path: Path) -> None:
    """Its photo gone after the import: the refresh finds nothing to match, and the next asks
    queue no job until something about the encounter changes."""
    from wildid.gui.services import changes

    catalog = services.catalog
    shot, _ = make_animal_pair(tmp_path / "photos", 43, seeds=(86, 87), width=640, height=480)
    run_import(catalog, [shot.path], ImportOptions(burst_gap_s=-1, reference_in_place=True,
                                                   workers=1))
    shot.path.unlink()
    encounter = _encounter_of(catalog, shot.path)
    settings.auto_identify = True
    assert services.refresh_matches([encounter]) is not None
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    # nothing to match: no candidates stored, and asked again nothing is queued
    assert services.refresh_matches([encounter]) is None
    services.notify(changes([encounter]))  # a box edit, say
    assert services.refresh_matches([encounter]) is not None
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    forget(catalog)


def _summary(catalog: Any, encounter_id: str) -> Any:
    from wildid.catalog.models import MatchSummary

    with catalog.session() as s:
        return s.get(MatchSummary, encounter_id)


def _has_features(catalog: Any, encounter_id: str) -> bool:
    from wildid.catalog.models import Feature

    with catalog.session() as s:
        return s.scalar(select(Feature.id).join(Annotation)
                        .where(Annotation.encounter_id == encounter_id).limit(1)) is not None


def _edit_in_dialog(services: Any, qtbot: Any, encounter_id: str, edit: Any) -> None:
    """Open the box editor's window on an encounter, make ``edit`` on its editor, close it."""
    from wildid.gui.annotation_editor import AnnotationDialog

    dialog = AnnotationDialog(services, encounter_id)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(dialog.editor.canvas.has_image, timeout=10_000)
    edit(dialog.editor)
    dialog.reject()
    dialog.editor.prefetch.shutdown()


def test_box_edits_are_identified_when_the_editor_closes(services: Any, settings: Any,
                                                         qtbot: Any, tmp_path: Path) -> None:
    """A box narrowed to the animal and a second animal's box get their candidates as soon as
    the box editor closes, not when the review screen reaches them; a moved box of a confirmed
    sighting gets its features again (it is never matched again, but the index describes it)."""
    from wildid.engine import process_new
    from wildid.review import new_individual

    catalog = services.catalog
    first, second = make_animal_pair(tmp_path / "photos", 44, seeds=(88, 89), width=800,
                                     height=600)
    run_import(catalog, [first.path, second.path],
               ImportOptions(burst_gap_s=-1, reference_in_place=True, workers=1))
    known, later = _encounter_of(catalog, first.path), _encounter_of(catalog, second.path)
    new_individual(catalog, known, "Kito", "Tester")
    process_new(catalog)
    assert _summary(catalog, later) is not None
    settings.auto_identify = True

    added: list[str] = []

    def narrow_and_add(editor: Any) -> None:
        editor.add_box(tuple(float(v) for v in second.box))
        before = {b.encounter_id for b in editor.boxes}
        editor.add_box((0.0, 0.0, 160.0, 120.0))  # a second animal: its own encounter
        added.extend({b.encounter_id for b in editor.boxes} - before)
        # the narrowed box's candidates are set aside until it is matched again
        assert _summary(catalog, later) is None

    _edit_in_dialog(services, qtbot, later, narrow_and_add)
    assert len(added) == 1
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    summary = _summary(catalog, later)
    assert summary is not None and not summary.likely_new
    with catalog.session() as s:
        from wildid.catalog.models import Individual, MatchCandidate

        best = s.scalars(select(Individual.name).join(
            MatchCandidate, MatchCandidate.individual_id == Individual.id)
            .where(MatchCandidate.encounter_id == later)
            .order_by(MatchCandidate.rank).limit(1)).one()
    assert best == "Kito"
    assert _summary(catalog, added[0]) is not None and _has_features(catalog, added[0])

    # the confirmed sighting's box moved: not matched (it is named), but described again
    _edit_in_dialog(services, qtbot, known,
                    lambda editor: editor.add_box(tuple(float(v) for v in first.box)))
    assert not _has_features(catalog, known)
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    assert _has_features(catalog, known)
    assert _summary(catalog, known) is None  # named: extracted, not matched
    forget(catalog)


def test_requests_made_while_a_refresh_runs_are_all_matched_after_it(
        services: Any, settings: Any, qtbot: Any, monkeypatch: Any) -> None:
    """The review screen's next few and the box editor's encounters, asked while a refresh
    runs, are matched together after it: a later ask does not drop an earlier one, and one
    that asked for extraction keeps it."""
    import threading

    import wildid.gui.services as services_module

    release = threading.Event()
    calls: list[list[str]] = []

    def entry(_catalog: Any, ids: Any, _progress: Any = None, _cancel: Any = None) -> Any:
        calls.append(list(ids))
        release.wait(30)
        from wildid.engine.identification import MatchReport

        return MatchReport()

    monkeypatch.setattr(services_module, "engine_function", lambda *_names: entry)
    settings.auto_identify = True
    assert services.refresh_matches(["a"], extract=True) is not None
    qtbot.waitUntil(lambda: bool(calls), timeout=10_000)
    assert services.refresh_matches(["b", "c"], extract=True) is None  # waits for the first
    assert services.refresh_matches(["c", "d"]) is None
    release.set()
    qtbot.waitUntil(lambda: len(calls) == 2 and not services.jobs.active_jobs, timeout=10_000)
    assert calls == [["a"], ["b", "c", "d"]]
