"""From a folder of photos to a named individual and back, through the real main window:
import → review → new individual → confirm a second sighting → gallery → undo, undo."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from tests.gui.review_data import ScriptedPrompts, fake_inliers, query_annotation, shoot
from wildid.catalog.models import MatchCandidate, MatchSummary
from wildid.gui.services import changes
from wildid.review import queries


def _names(gallery: Any) -> dict[str, int]:
    return {s.name: s.n_encounters for s in gallery.summaries()}


def _engine_proposes(services: Any, encounter_id: str, individual_id: str,
                     reference_encounter: str) -> None:
    """What the matching engine writes after an identification run (the engine is not part
    of this test): one ranked candidate with its matched keypoints, and the summary."""
    catalog = services.catalog
    q_ann, _ = query_annotation(catalog, encounter_id)
    c_ann, _ = query_annotation(catalog, reference_encounter)
    inliers = fake_inliers((100, 100, 300, 200), (120, 90, 300, 200))
    with catalog.session() as s:
        s.add(MatchCandidate(encounter_id=encounter_id, rank=0, individual_id=individual_id,
                             score=0.88, raw_scores={"local": 41.0}, query_annotation_id=q_ann,
                             best_annotation_id=c_ann, inliers=inliers.tobytes(),
                             engine="test-engine 1"))
        s.add(MatchSummary(encounter_id=encounter_id, best_score=0.88, likely_new=False,
                           engine="test-engine 1"))
    services.notify(changes([encounter_id]))


def test_import_review_gallery_and_undo(qtbot: Any, main_window: Any, services: Any,
                                        tmp_path: Path) -> None:
    folder = tmp_path / "field trip"
    folder.mkdir()
    day = datetime(2024, 7, 1, 8, 0)
    shoot(folder, "IMG_0001", 5, day, "CAM1", seed=21)
    shoot(folder, "IMG_0002", 5, day + timedelta(days=2), "CAM1", seed=22)
    shoot(folder, "IMG_0003", 6, day + timedelta(days=4), "CAM1", seed=23)

    importer = main_window.page("import")
    importer.add_paths([folder])
    importer.start_import()
    qtbot.waitUntil(lambda: not importer.running, timeout=20_000)

    main_window.show_page("review")
    review = main_window.page("review")
    review.prompts = ScriptedPrompts(texts=["Luna"])
    qtbot.waitUntil(lambda: len(review.queue) == 3 and review.state() == "review"
                    and not review.is_loading(), timeout=10_000)
    first, second, third = review.queue  # oldest first: nothing was identified yet
    assert review.banner.isVisible() and review.strip.count() == 0

    review.actions_by_key["new_individual"].trigger()
    assert review.prompts.asked == ["New individual"]
    qtbot.waitUntil(lambda: review.current_encounter_id() == second, timeout=5000)
    assert services.undo_stack.undo_label == "New individual Luna"

    (luna_summary,) = queries.list_individuals(services.catalog, search="Luna")
    _engine_proposes(services, second, luna_summary.id, first)
    qtbot.waitUntil(lambda: review.strip.count() == 1 and not review.is_loading(), timeout=5000)
    assert review.current_candidate().name == "Luna"
    assert len(review.pair.matches()) == 24  # the matched keypoints are drawn

    main_window.activateWindow()
    review.setFocus()
    qtbot.waitUntil(review.hasFocus, timeout=2000)
    qtbot.keyClick(review, Qt.Key.Key_Y)
    qtbot.waitUntil(lambda: review.current_encounter_id() == third, timeout=5000)

    main_window.show_page("individuals")
    gallery = main_window.page("individuals")
    qtbot.waitUntil(lambda: _names(gallery) == {"Luna": 2}, timeout=5000)

    main_window.menu_actions.undo.trigger()  # Edit > Undo: "Confirm as Luna"
    qtbot.waitUntil(lambda: _names(gallery) == {"Luna": 1}, timeout=5000)
    main_window.activateWindow()
    gallery.gallery.setFocus()
    qtbot.keyClick(gallery.gallery, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _names(gallery) == {}, timeout=5000)
    assert gallery.empty.isVisible()

    main_window.show_page("review")
    qtbot.waitUntil(lambda: len(review.queue) == 3 and not review.is_loading(), timeout=5000)
    # Both undone decisions are back in the queue (the proposed match first: it has a
    # score) and the page shows the first of them instead of where it had got to.
    assert review.queue == [second, first, third]
    assert review.current_encounter_id() == second
