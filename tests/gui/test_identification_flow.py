"""The real engine behind the GUI: an import starts extraction and matching in the background,
and the review screen then shows the right individual first with its matched keypoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.photofactory import make_animal_pair
from wildid.catalog.models import Annotation, Photo
from wildid.engine import forget
from wildid.ingest.importer import ImportOptions, run_import
from wildid.review import new_individual

JOB_TIMEOUT_MS = 120_000


def _encounter_of(catalog: Any, path: Path) -> str:
    with catalog.session() as s:
        return s.scalars(select(Annotation.encounter_id).join(Photo)
                         .where(Photo.original_path == str(path))).one()


def _asha_and_bomani(catalog: Any, tmp_path: Path) -> tuple[dict[str, str], str]:
    """Two named animals, Asha and Bomani, and a second sighting of Asha still to review:
    the individuals' ids by name, and that sighting's encounter."""
    from wildid.catalog.models import Encounter

    paths = {}
    for p in (51, 52):
        paths[p] = make_animal_pair(tmp_path / "photos", p, seeds=(2 * p, 2 * p + 1),
                                    width=800, height=600)
    run_import(catalog, [paths[51][0].path, paths[52][0].path, paths[51][1].path],
               ImportOptions(burst_gap_s=-1, reference_in_place=True, workers=1))
    ids = {}
    for p, name in ((51, "Asha"), (52, "Bomani")):
        enc = _encounter_of(catalog, paths[p][0].path)
        new_individual(catalog, enc, name, "Tester")
        with catalog.session() as s:
            ids[name] = s.get(Encounter, enc).individual_id
    return ids, _encounter_of(catalog, paths[51][1].path)


def test_import_identifies_and_review_shows_the_match(main_window: Any, services: Any,
                                                      settings: Any, qtbot: Any,
                                                      tmp_path: Path) -> None:
    catalog = services.catalog
    known, queries = [], []
    for p in (31, 32, 33):
        first, second = make_animal_pair(tmp_path / "photos", p, seeds=(2 * p, 2 * p + 1),
                                         width=800, height=600)
        known.append(first.path)
        queries.append(second.path)
    run_import(catalog, known, ImportOptions(burst_gap_s=-1, reference_in_place=True, workers=1))
    names = {}
    for p, path in zip((31, 32, 33), known, strict=True):
        new_individual(catalog, _encounter_of(catalog, path), f"Animal {p}", "Tester")
        names[_encounter_of(catalog, path)] = f"Animal {p}"

    settings.auto_identify = True
    page = main_window.page("import")
    main_window.show_page("import")
    page.add_paths([queries[1]])
    with qtbot.waitSignal(page.import_finished, timeout=JOB_TIMEOUT_MS):
        page.start_import()
    # identification runs as a background job after the import, then the job list is empty
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)

    query = _encounter_of(catalog, queries[1])
    review = main_window.page("review")
    main_window.show_page("review")
    review.open_encounter(query)
    qtbot.waitUntil(lambda: not review.is_loading() and review.current_candidate() is not None,
                    timeout=JOB_TIMEOUT_MS)
    assert review.current_candidate().name == "Animal 32"
    assert len(review.pair.matches()) >= 8
    assert not review.banner.isVisible()  # not "likely new"
    forget(catalog)


def test_an_animal_named_in_review_is_a_candidate_for_its_next_sighting(
        main_window: Any, services: Any, settings: Any, qtbot: Any, tmp_path: Path,
        dialogs: Any) -> None:
    """Two sightings of an animal nobody knew on one card: naming it from the first makes it
    the first candidate of the second, without another import (before, the second kept the
    empty candidate list it got at import)."""
    from wildid.engine import process_new

    catalog = services.catalog
    first, second = make_animal_pair(tmp_path / "photos", 41, seeds=(82, 83), width=800,
                                     height=600)
    run_import(catalog, [first.path, second.path],
               ImportOptions(burst_gap_s=-1, reference_in_place=True, workers=1))
    process_new(catalog)  # nobody is known: both likely new, without candidates
    settings.auto_identify = True
    review = main_window.page("review")
    main_window.show_page("review")
    review.open_encounter(_encounter_of(catalog, first.path))
    qtbot.waitUntil(lambda: not review.is_loading(), timeout=JOB_TIMEOUT_MS)
    assert review.current_candidate() is None and review.banner.isVisible()
    # a first card: nobody to resemble, said as such (not "no known individual resembles")
    assert "no animal is named in this catalog yet" in review.banner.text()
    assert "no animal is named yet" in review.candidate_header.info.text()

    dialogs.texts.append("Zuri")
    review.new_individual()
    later = _encounter_of(catalog, second.path)
    review.open_encounter(later)
    qtbot.waitUntil(lambda: review.current_candidate() is not None, timeout=JOB_TIMEOUT_MS)
    assert review.current_candidate().name == "Zuri"
    assert review.current_encounter_id() == later
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    forget(catalog)


def test_tools_menu_refits_the_scores_reports_and_matches_again(main_window: Any, services: Any,
                                                                 qtbot: Any, tmp_path: Path) -> None:
    """Tools → Refit match scores: declined, nothing runs; accepted, the catalog's confirmed
    sightings refit the profile in the background (as `wildid calibrate`), the report is
    shown, the engine is dropped so identification uses the new scores, and the encounters
    still to review are matched again. Tools → Use the shipped match scores goes back."""
    import json

    from tests.gui.review_data import ScriptedPrompts
    from tests.integration.test_calibrate import PATTERNS, SHOTS, _label
    from tests.photofactory import make_shot
    from wildid.catalog.models import MatchSummary
    from wildid.engine import calibrate, engine_for, identify_new
    from wildid.engine.identification import catalog_profiles_path

    assert len(PATTERNS) >= calibrate.MIN_INDIVIDUALS  # enough animals to judge a refit
    catalog = services.catalog
    photos = {p: [make_shot(tmp_path / f"ind{p}_s{s}.jpg", 640, 480, seed=100 * p + s,
                            pattern_seed=p, warp=0.2).path for s in range(SHOTS)]
              for p in PATTERNS}
    _label(catalog, photos)
    stranger = make_shot(tmp_path / "stranger.jpg", 640, 480, seed=9, pattern_seed=99).path
    run_import(catalog, [stranger], ImportOptions(burst_gap_s=-1, reference_in_place=True,
                                                  workers=1))
    identify_new(catalog)  # the app's engine, loaded; the stranger matched with shipped scores
    stranger_enc = _encounter_of(catalog, stranger)

    def tag() -> str:
        with catalog.session() as s:
            return s.get(MatchSummary, stranger_enc).engine

    before = tag()
    main_window.prompts = ScriptedPrompts(confirms=[False, True])
    main_window.menu_actions.refit_scores.trigger()
    assert main_window.prompts.asked == ["Refit match scores"] and not services.jobs.active_jobs
    with qtbot.waitSignal(main_window.score_refit.finished, timeout=JOB_TIMEOUT_MS) as done:
        main_window.menu_actions.refit_scores.trigger()
    report = done.args[0]
    assert report["profiles"]["default"]["refitted"] and report["saved"]
    title, text = main_window.prompts.informed[-1]
    assert title == "Match scores" and "default: refitted on" in text
    assert "matched again with the new scores" in text and not main_window.prompts.errors
    saved = json.loads(catalog_profiles_path(catalog.root).read_text())["profiles"]["default"]
    assert saved["calibration"]["info"]["fitted_on"] == f"catalog {catalog.root}"
    # identification runs after it, on a new engine with the refitted profile: the encounter
    # still to review is matched again (its result names the new calibration)
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    assert engine_for(catalog).profiles["default"].calibration.info["fitted_on"] == \
        f"catalog {catalog.root}"
    assert tag() != before

    # and back: Tools → Use the shipped match scores
    refitted = tag()
    main_window.prompts.confirms = [True, True]
    main_window.menu_actions.reset_scores.trigger()
    assert not catalog_profiles_path(catalog.root).exists()
    assert main_window.prompts.informed[-1][1].startswith("The shipped match scores are used")
    qtbot.waitUntil(lambda: not services.jobs.active_jobs, timeout=JOB_TIMEOUT_MS)
    assert engine_for(catalog).profiles["default"].calibration.info["fitted_on"] != \
        f"catalog {catalog.root}"
    assert tag() != refitted  # matched again under the shipped scores
    main_window.menu_actions.reset_scores.trigger()  # nothing left to forget: it says so
    assert main_window.prompts.informed[-1][1] == "The shipped match scores are already in use."
    forget(catalog)


def test_not_this_one_matches_the_encounter_again_without_the_rejected_animal(
        main_window: Any, services: Any, settings: Any, qtbot: Any, tmp_path: Path) -> None:
    """Rejecting the first candidate leaves a verdict and scores taken with it first: the
    encounter is matched again without it, so the verdict ("likely new" or not) and the next
    candidate's score are those of a catalog without it (before, the banner stayed as the
    rejected candidate's score had set it, and the next candidate kept its runner-up score)."""
    from wildid.catalog.models import MatchSummary
    from wildid.engine import process_new

    catalog = services.catalog
    _ids, query = _asha_and_bomani(catalog, tmp_path)
    process_new(catalog)

    settings.auto_identify = True
    review = main_window.page("review")
    main_window.show_page("review")
    review.open_encounter(query)
    qtbot.waitUntil(lambda: not review.is_loading() and review.current_candidate() is not None,
                    timeout=JOB_TIMEOUT_MS)
    assert review.current_candidate().name == "Asha" and not review.banner.isVisible()
    with catalog.session() as s:
        before = s.get(MatchSummary, query).computed_at

    review.actions_by_key["reject"].trigger()

    def rematched() -> bool:
        with catalog.session() as s:
            return s.get(MatchSummary, query).computed_at > before

    qtbot.waitUntil(lambda: rematched() and not services.jobs.active_jobs
                    and not review.is_loading(), timeout=JOB_TIMEOUT_MS)
    assert review.current_encounter_id() == query
    shown = review._bundle.candidates
    assert [c.name for c in shown] == ["Bomani"]
    with catalog.session() as s:
        summary = s.get(MatchSummary, query)
        # the verdict and the first score are taken with Bomani first, as the page shows them
        assert summary.best_score == pytest.approx(shown[0].score)
        assert review.banner.isVisible() == summary.likely_new
    forget(catalog)


def test_compare_with_shows_an_individual_the_candidates_do_not(
        main_window: Any, services: Any, settings: Any, qtbot: Any, tmp_path: Path) -> None:
    """A reviewer rejected Asha by mistake, so the strip no longer shows her. Compare with…
    (C) chooses her: her photos are compared in the background and she joins the strip as an
    "asked" card with her score, rank and matched points, selected; Y confirms her, with the
    rank she has among all on the audit trail."""
    from tests.gui.review_data import ScriptedPrompts
    from wildid.catalog.models import Decision, Encounter
    from wildid.engine import process_new
    from wildid.review import reject_candidate

    catalog = services.catalog
    ids, query = _asha_and_bomani(catalog, tmp_path)
    reject_candidate(catalog, query, ids["Asha"], "Tester")
    process_new(catalog)

    review = main_window.page("review")
    main_window.show_page("review")
    review.open_encounter(query)
    qtbot.waitUntil(lambda: not review.is_loading() and review.current_candidate() is not None,
                    timeout=JOB_TIMEOUT_MS)
    assert [c.name for c in review._bundle.candidates] == ["Bomani"]
    review.prompts = ScriptedPrompts(choices=[ids["Asha"]])
    review.actions_by_key["compare"].trigger()
    assert review.prompts.asked == ["Compare with"]
    with qtbot.waitSignal(review.compare_job.finished, timeout=JOB_TIMEOUT_MS):
        pass
    asked = review.current_candidate()
    assert asked.name == "Asha" and asked.asked and asked.rank == 0  # first of all, in fact
    assert [c.name for c in review._bundle.candidates] == ["Bomani", "Asha"]
    assert asked.score > review._bundle.candidates[0].score
    assert "compared on request, ranks 1 of all" in review.candidate_header.info.text()
    from wildid.gui.candidate_strip import candidate_card

    assert candidate_card(asked).badge == "asked · #1"
    assert len(asked.inliers) >= 8  # her matched points, drawn once her photo is shown
    qtbot.waitUntil(lambda: len(review.pair.matches()) == len(asked.inliers),
                    timeout=JOB_TIMEOUT_MS)
    review.actions_by_key["confirm"].trigger()
    with catalog.session() as s:
        assert s.get(Encounter, query).individual_id == ids["Asha"]
        decision = s.scalars(select(Decision).where(Decision.encounter_id == query)
                             .order_by(Decision.decided_at.desc())).first()
        assert decision.verdict == "match" and decision.scores["rank"] == 0
    forget(catalog)
