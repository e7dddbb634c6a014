"""A herd photographed in quick succession: the burst's encounter holds two animals until the
box of the other one is given its own encounter (``annotation_ops.separate_annotation``); the
engine then stops counting that photo as the first animal's."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from tests.photofactory import make_shot
from wildid.catalog.models import Annotation, MatchCandidate, Photo
from wildid.engine import forget, identify_new
from wildid.ingest.importer import ImportOptions, run_import
from wildid.review import new_individual, separate_annotation


def _annotation_of(catalog, path) -> Annotation:
    with catalog.session() as s:
        return s.scalars(select(Annotation).join(Photo)
                         .where(Photo.original_path == str(path))).one()


def test_a_herds_burst_is_split_and_the_other_animal_no_longer_counts_as_the_first(
        catalog, tmp_path) -> None:
    when = datetime(2024, 6, 1, 7, 0)
    card = tmp_path / "card"
    first = make_shot(card / "a.jpg", 800, 600, seed=1, pattern_seed=21, taken=when).path
    other = make_shot(card / "b.jpg", 800, 600, seed=2, pattern_seed=22,
                      taken=when + timedelta(seconds=20)).path  # the next animal of the herd
    run_import(catalog, [card], ImportOptions(reference_in_place=True, workers=1))
    burst = _annotation_of(catalog, first).encounter_id
    assert _annotation_of(catalog, other).encounter_id == burst  # one encounter, two animals
    new_individual(catalog, burst, "Herd-1", "Tester")
    later = tmp_path / "later"
    query = make_shot(later / "q.jpg", 800, 600, seed=3, pattern_seed=22, warp=0.15,
                      taken=when + timedelta(days=3)).path  # the second animal, days later
    run_import(catalog, [later], ImportOptions(reference_in_place=True, workers=1))
    q_enc = _annotation_of(catalog, query).encounter_id
    other_box = _annotation_of(catalog, other).id
    try:
        identify_new(catalog)
        with catalog.session() as s:
            top = s.scalars(select(MatchCandidate).where(MatchCandidate.encounter_id == q_enc)
                            .order_by(MatchCandidate.rank)).first()
            # wrongly: Herd-1, through the other animal's photo in its burst
            assert top is not None and top.best_annotation_id == other_box

        op = separate_annotation(catalog, other_box, reviewer="Tester")
        separated = _annotation_of(catalog, other).encounter_id
        assert separated != burst and q_enc in op.changes.encounters  # its candidate showed it
        identify_new(catalog)
        with catalog.session() as s:
            shown = s.scalars(select(MatchCandidate.best_annotation_id)
                              .where(MatchCandidate.encounter_id == q_enc)).all()
            assert other_box not in shown  # Herd-1 no longer has that photo
            # the separated encounter is matched on its own, still to review
            assert s.scalars(select(MatchCandidate)
                             .where(MatchCandidate.encounter_id == separated)).first() is not None
    finally:
        forget(catalog)
