"""Every review operation applies, reverts and reapplies exactly, and history only grows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.unit import test_review_support as b
from wildid.catalog.models import (
    Annotation,
    Decision,
    Encounter,
    Feature,
    Individual,
    MatchCandidate,
    MatchSummary,
    Photo,
)
from wildid.errors import NotFoundError, ReviewError
from wildid.review import (
    add_annotation,
    candidates_for,
    confirm_match,
    delete_annotation,
    flag_for_curator,
    list_individuals,
    mark_unidentifiable,
    mark_unsure,
    merge_individuals,
    move_encounter,
    new_individual,
    reject_candidate,
    remove_individual,
    rename_individual,
    separate_annotation,
    separate_annotations,
    set_encounter_species,
    unassign_encounter,
    update_annotation,
    update_individual,
)
from wildid.review.history import latest_settling_decision
from wildid.review.retime import describe_shift, earliest_time, shift_times

R = "tester"


@pytest.fixture
def world(catalog) -> dict[str, str]:
    """Two known nyalas, an unreviewed query with ranked candidates, and a two-animal photo."""
    with catalog.session() as s:
        stripe = b.individual(s, "Stripe")
        spot = b.individual(s, "Spot", sex="male")
        e_stripe = b.encounter(s, b.t(1), 0.0, 1.0, individual=stripe)
        stripe_ann = b.first_annotation(s, e_stripe)
        stripe_ann.x, stripe_ann.w, stripe_ann.full_frame = 10.0, 200.0, False
        e_spot = b.encounter(s, b.t(2), individual=spot)
        q = b.encounter(s, b.t(11, 12), 0.0, 0.0, n_photos=2)
        q_ann = b.first_annotation(s, q)
        b.feature(s, q_ann)
        b.candidate(s, q, stripe, 0, 0.9, best=stripe_ann, inliers=np.arange(8).reshape(2, 4))
        b.candidate(s, q, spot, 1, 0.5)
        b.summary(s, q, 0.9)
        # A second animal on e_spot's photo, in its own encounter, with cached results.
        spot_ann = b.first_annotation(s, e_spot)
        second = Encounter(taken_utc=b.t(2), species="nyala", camera_key="cam")
        s.add(second)
        s.flush()
        second_ann = Annotation(photo_id=spot_ann.photo_id, encounter_id=second.id, x=5.0, y=5.0,
                                w=50.0, h=40.0, full_frame=False)
        s.add(second_ann)
        s.flush()
        b.feature(s, second_ann)
        b.candidate(s, second, spot, 0, 0.3, best=spot_ann)
        b.summary(s, second, 0.3)
        return {"stripe": stripe.id, "spot": spot.id, "e_stripe": e_stripe.id, "e_spot": e_spot.id,
                "q": q.id, "q_ann": q_ann.id, "stripe_ann": stripe_ann.id, "second": second.id,
                "second_ann": second_ann.id, "photo": spot_ann.photo_id}


Op = Callable[[Any, dict[str, str]], Any]
OPERATIONS: dict[str, Op] = {
    "confirm": lambda c, w: confirm_match(c, w["q"], w["stripe"], R),
    "confirm_over_other": lambda c, w: confirm_match(c, w["e_spot"], w["stripe"], R),
    "reject": lambda c, w: reject_candidate(c, w["q"], w["spot"], R),
    "new_individual": lambda c, w: new_individual(c, w["q"], "Nova", R),
    "unsure": lambda c, w: mark_unsure(c, w["q"], R, note="blurry"),
    "flag": lambda c, w: flag_for_curator(c, w["e_stripe"], R, "check the ear notch"),
    "unidentifiable": lambda c, w: mark_unidentifiable(c, w["e_stripe"], R),
    "merge": lambda c, w: merge_individuals(c, w["stripe"], w["spot"], R),
    "move": lambda c, w: move_encounter(c, w["e_spot"], w["stripe"], R),
    "rename": lambda c, w: rename_individual(c, w["stripe"], "Stripey", R),
    "update": lambda c, w: update_individual(c, w["stripe"], R, sex="female", notes="scar"),
    "unassign": lambda c, w: unassign_encounter(c, w["e_stripe"], R),
    "add_box_new_animal": lambda c, w: add_annotation(c, w["photo"], (100, 100, 80, 60), "left"),
    "add_box_to_encounter": lambda c, w: add_annotation(c, w["photo"], (1, 2, 30, 40),
                                                        encounter_id=w["q"]),
    "edit_box": lambda c, w: update_annotation(c, w["q_ann"], box=(10, 10, 100, 100)),
    "edit_viewpoint": lambda c, w: update_annotation(c, w["q_ann"], viewpoint="right"),
    "edit_species": lambda c, w: update_annotation(c, w["q_ann"], species="Panthera leo"),
    "set_encounter_species": lambda c, w: set_encounter_species(c, [w["q"], w["second"]],
                                                                "Panthera leo"),
    "delete_box": lambda c, w: delete_annotation(c, w["second_ann"]),
    "separate_box": lambda c, w: separate_annotation(c, w["q_ann"]),
    "delete_last_box_resets": lambda c, w: delete_annotation(c, w["stripe_ann"]),
    "shift_times": lambda c, w: shift_times(c, [w["e_spot"], w["q"]], timedelta(days=-3)),
}


def _assert_history_grew(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert after[:len(before)] == before, "an existing decision row was changed or removed"
    return after[len(before):]


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_revert_and_reapply_restore_exact_state(catalog, world, name: str) -> None:
    snap0, dec0 = b.snapshot(catalog), b.decisions(catalog)
    op = OPERATIONS[name](catalog, world)
    snap1, dec1 = b.snapshot(catalog), b.decisions(catalog)
    made = _assert_history_grew(dec0, dec1)
    assert snap1 != snap0 or made, "the operation changed nothing"
    assert op.applied and not op.is_noop and op.changes

    assert op.revert(catalog) == op.changes
    assert b.snapshot(catalog) == snap0
    dec2 = b.decisions(catalog)
    reverts = _assert_history_grew(dec1, dec2)
    assert len(reverts) == len(made)
    for original, undo in zip(made, reverts, strict=True):
        if original["verdict"] == "revert":  # undoing an unassign restores what it reverted
            assert undo["verdict"] != "revert" and undo["reverts_id"] == original["id"]
        else:
            assert undo["verdict"] == "revert" and undo["reverts_id"] == original["id"]
        assert undo["encounter_id"] == original["encounter_id"]
        assert undo["reviewer"] == R

    op.reapply(catalog)
    assert b.snapshot(catalog) == snap1
    redone = _assert_history_grew(dec2, b.decisions(catalog))
    keys = ("encounter_id", "candidate_individual_id", "verdict", "scores", "note")
    for original, again in zip(made, redone, strict=True):
        if original["verdict"] != "revert":
            assert {k: again[k] for k in keys} == {k: original[k] for k in keys}
            assert again["id"] != original["id"]

    op.revert(catalog)
    assert b.snapshot(catalog) == snap0
    with pytest.raises(ReviewError):
        op.revert(catalog)


def test_confirm_records_reviewer_and_shown_scores(catalog, world) -> None:
    op = confirm_match(catalog, world["q"], world["stripe"], "Ada", note="clear flank")
    assert op.label == "Confirm as Stripe"
    assert op.changes.encounters == {world["q"]} and op.changes.individuals == {world["stripe"]}
    with catalog.session() as s:
        enc = s.get(Encounter, world["q"])
        assert (enc.state, enc.individual_id) == ("confirmed", world["stripe"])
        d = s.scalars(select(Decision)).one()
    assert (d.verdict, d.reviewer, d.note) == ("match", "Ada", "clear flank")
    assert d.scores["score"] == pytest.approx(0.9) and d.scores["rank"] == 0
    assert d.scores["raw_scores"] == {"global": pytest.approx(0.8), "local": pytest.approx(0.95)}
    confirm_match(catalog, world["q"], world["spot"], "Ada", scores={"score": 0.42})
    with catalog.session() as s:
        latest = s.scalars(select(Decision).order_by(Decision.id.desc())).first()
    assert latest.scores == {"score": 0.42}


def test_a_decision_for_an_individual_the_matcher_did_not_propose_says_so(catalog, world) -> None:
    """The trail tells a confirmation the matcher backed ("90 %, 1st") from one the reviewer
    made by hand ("not proposed": the encounter was matched, this individual was not among its
    candidates), and both from a sighting never matched (nothing recorded)."""
    from wildid.review.queries import decision_history

    with catalog.session() as s:
        nova = b.individual(s, "Nova").id
        unmatched = b.encounter(s, b.t(20)).id
    confirm_match(catalog, world["q"], world["stripe"], R)
    move_encounter(catalog, world["q"], nova, R)
    confirm_match(catalog, unmatched, nova, R)
    rows = decision_history(catalog)
    by = {(r.encounter_id, r.candidate_individual_id): r for r in rows}
    assert by[world["q"], world["stripe"]].evidence == "90 %, 1st"
    hand = by[world["q"], nova]
    assert hand.evidence == "not proposed"
    assert hand.scores == {"proposed": False, "candidates": 2, "best_score": pytest.approx(0.9),
                           "likely_new": False, "engine": hand.scores["engine"]}
    assert by[unmatched, nova].scores is None and by[unmatched, nova].evidence == ""
    from wildid.review.views import _ordinal

    assert [_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_history_is_append_only_and_counted(catalog, world) -> None:
    def count() -> int:
        with catalog.session() as s:
            return s.scalar(select(func.count()).select_from(Decision))

    op = reject_candidate(catalog, world["q"], world["spot"], R)
    assert count() == 1
    op.revert(catalog)
    op.reapply(catalog)
    op.revert(catalog)
    assert count() == 4
    with catalog.session() as s:
        rows = list(s.scalars(select(Decision).order_by(Decision.id)))
    assert [r.verdict for r in rows] == ["no_match", "revert", "no_match", "revert"]
    assert rows[1].reverts_id == rows[0].id and rows[3].reverts_id == rows[2].id
    # The redo copy names the undo it cancels, so the chain can be followed.
    assert rows[0].reverts_id is None and rows[2].reverts_id == rows[1].id


def test_rejected_candidate_is_hidden_until_undone(catalog, world) -> None:
    assert [c.name for c in candidates_for(catalog, world["q"])] == ["Stripe", "Spot"]
    op = reject_candidate(catalog, world["q"], world["stripe"], R)
    shown = candidates_for(catalog, world["q"])
    assert [(c.rank, c.name) for c in shown] == [(0, "Spot")]
    assert [c.name for c in candidates_for(catalog, world["q"], exclude_rejected=False)] == [
        "Stripe", "Spot"]
    op.revert(catalog)
    assert [c.name for c in candidates_for(catalog, world["q"])] == ["Stripe", "Spot"]


def test_reject_refuses_the_assigned_individual(catalog, world) -> None:
    with pytest.raises(ReviewError, match="confirmed as Stripe"):
        reject_candidate(catalog, world["e_stripe"], world["stripe"], R)


def test_new_individual_validates_names(catalog, world) -> None:
    with pytest.raises(ReviewError, match="empty"):
        new_individual(catalog, world["q"], "   ", R)
    with pytest.raises(ReviewError, match="already an individual named"):
        new_individual(catalog, world["q"], "stripe", R)  # same species, any case
    op = new_individual(catalog, world["q"], "  Stripe  ", R, species="lion")  # other species: fine
    with catalog.session() as s:
        ind = s.get(Individual, s.get(Encounter, world["q"]).individual_id)
    assert (ind.name, ind.species) == ("Stripe", "lion")
    assert op.label == "New individual Stripe"
    with pytest.raises(ReviewError):
        new_individual(catalog, world["q"], "Nova", "  ")  # a reviewer is required


def test_undone_new_individual_is_hidden_and_its_name_free(catalog, world) -> None:
    op = new_individual(catalog, world["q"], "Nova", R)
    nova_id = next(iter(op.changes.individuals))
    assert "Nova" in [i.name for i in list_individuals(catalog)]
    op.revert(catalog)
    assert "Nova" not in [i.name for i in list_individuals(catalog)]
    with catalog.session() as s:
        assert s.get(Individual, nova_id) is not None  # kept: the decisions name it
    other = new_individual(catalog, world["e_stripe"], "Nova", R)  # the name is free again
    assert next(iter(other.changes.individuals - {world["stripe"]})) != nova_id
    other.revert(catalog)
    op.reapply(catalog)
    with catalog.session() as s:
        assert s.get(Encounter, world["q"]).individual_id == nova_id  # redo reuses the same id


def test_unassign_reverts_the_settling_decision_and_undo_restores_it(catalog, world) -> None:
    confirm = confirm_match(catalog, world["q"], world["stripe"], R)
    op = unassign_encounter(catalog, world["q"], R)
    with catalog.session() as s:
        enc = s.get(Encounter, world["q"])
        assert (enc.state, enc.individual_id) == ("unreviewed", None)
        rows = list(s.scalars(select(Decision).order_by(Decision.id)))
    assert [r.verdict for r in rows] == ["match", "revert"]
    assert rows[1].reverts_id == rows[0].id
    op.revert(catalog)
    with catalog.session() as s:
        enc = s.get(Encounter, world["q"])
        assert (enc.state, enc.individual_id) == ("confirmed", world["stripe"])
        rows = list(s.scalars(select(Decision).order_by(Decision.id)))
    assert [r.verdict for r in rows] == ["match", "revert", "match"]
    # The undo stack can then undo the confirm too: its live decision is the restored copy.
    assert confirm.applied
    op.reapply(catalog)
    op.revert(catalog)
    confirm.revert(catalog)
    with catalog.session() as s:
        enc = s.get(Encounter, world["q"])
        assert (enc.state, enc.individual_id) == ("unreviewed", None)
        verdicts = [r.verdict for r in s.scalars(select(Decision).order_by(Decision.id))]
    assert verdicts == ["match", "revert", "match", "revert", "match", "revert"]
    with catalog.session() as s:
        assert latest_settling_decision(s, world["q"]) is None  # nothing left in effect
    with pytest.raises(ReviewError, match="already unreviewed"):
        unassign_encounter(catalog, world["q"], R)


def test_unassign_reverts_every_settling_decision_in_effect(catalog, world) -> None:
    confirm_match(catalog, world["q"], world["stripe"], R)
    flag_for_curator(catalog, world["q"], R, "check")
    op = unassign_encounter(catalog, world["q"], R)
    with catalog.session() as s:
        assert latest_settling_decision(s, world["q"]) is None  # the match does not linger
    op.revert(catalog)
    with catalog.session() as s:
        latest = latest_settling_decision(s, world["q"])
        assert (latest.verdict, s.get(Encounter, world["q"]).state) == ("flag", "flagged")


def test_merge_moves_encounters_and_undo_restores(catalog, world) -> None:
    op = merge_individuals(catalog, world["stripe"], world["spot"], R, note="same notch")
    with catalog.session() as s:
        stripe, spot = s.get(Individual, world["stripe"]), s.get(Individual, world["spot"])
        assert spot.merged_into_id == stripe.id and stripe.aliases == ["Spot"]
        assert stripe.sex == "male"  # filled in from the merged individual
        assert s.get(Encounter, world["e_spot"]).individual_id == stripe.id
        d, m = s.scalars(select(Decision).order_by(Decision.verdict)).all()
        assert (d.verdict, d.encounter_id, d.candidate_individual_id) == (
            "match", world["e_spot"], stripe.id)
        assert "merged Spot into Stripe: same notch" == d.note
        # the merge itself is on the record too, about the survivor, with no encounter
        assert (m.verdict, m.encounter_id, m.candidate_individual_id, m.reviewer) == (
            "merge", None, stripe.id, R)
        assert m.scores == {"merged_id": spot.id, "merged_name": "Spot", "encounters_moved": 1}
    assert [i.name for i in list_individuals(catalog)] == ["Stripe"]
    # Spot was a candidate of q: it now resolves to Stripe, listed once.
    assert [c.individual_id for c in candidates_for(catalog, world["q"])] == [world["stripe"]]
    with pytest.raises(ReviewError, match="already the same"):
        merge_individuals(catalog, world["spot"], world["stripe"], R)
    op.revert(catalog)
    with catalog.session() as s:
        assert s.get(Individual, world["spot"]).merged_into_id is None
        assert s.get(Individual, world["stripe"]).aliases == []
        assert s.get(Encounter, world["e_spot"]).individual_id == world["spot"]
    assert sorted(i.name for i in list_individuals(catalog)) == ["Spot", "Stripe"]


def test_an_individual_left_without_sightings_can_be_removed_and_undone(catalog, world) -> None:
    """Spot was named new, then its one sighting was found to be Stripe: Spot stayed in every
    list with no sightings. Removing it hides it from lists and lookups and frees its name;
    the decision is on the trail; undo brings it back. Refused while it has sightings."""
    from wildid.review import find_individual_id

    with pytest.raises(ReviewError, match="Spot has 1 sighting: move them"):
        remove_individual(catalog, world["spot"], R)
    move_encounter(catalog, world["e_spot"], world["stripe"], R)
    op = remove_individual(catalog, world["spot"], R, note="was Stripe")
    assert [i.name for i in list_individuals(catalog)] == ["Stripe"]
    with catalog.session() as s:
        with pytest.raises(NotFoundError):
            find_individual_id(s, "Spot")
        row = s.scalars(select(Decision).where(Decision.verdict == "remove")).one()
        assert (row.encounter_id, row.candidate_individual_id, row.reviewer, row.note) == (
            None, world["spot"], R, "removed Spot (no sightings): was Stripe")
    with pytest.raises(ReviewError, match="removed already"):
        remove_individual(catalog, world["spot"], R)
    named = new_individual(catalog, world["q"], "Spot", R)  # the name is free again
    named.revert(catalog)  # undone in order, newest first
    op.revert(catalog)
    assert [i.name for i in list_individuals(catalog)] == ["Spot", "Stripe"]
    merge_individuals(catalog, world["stripe"], world["spot"], R)
    with pytest.raises(ReviewError, match="merged into another individual"):
        remove_individual(catalog, world["spot"], R)


def test_merge_refuses_different_species(catalog, world) -> None:
    with catalog.session() as s:
        leo = b.individual(s, "Leo", species="lion").id
    with pytest.raises(ReviewError, match="different species"):
        merge_individuals(catalog, world["stripe"], leo, R)


def test_confirm_with_a_merged_away_id_assigns_the_survivor(catalog, world) -> None:
    merge_individuals(catalog, world["stripe"], world["spot"], R)
    confirm_match(catalog, world["q"], world["spot"], R)
    with catalog.session() as s:
        assert s.get(Encounter, world["q"]).individual_id == world["stripe"]


def test_rename_keeps_old_name_as_alias(catalog, world) -> None:
    rename_individual(catalog, world["stripe"], "Stripey", R)
    rename_individual(catalog, world["stripe"], "Stripe", R)
    with catalog.session() as s:
        ind = s.get(Individual, world["stripe"])
    assert (ind.name, ind.aliases) == ("Stripe", ["Stripey"])
    with pytest.raises(ReviewError, match="already an individual"):
        rename_individual(catalog, world["stripe"], "SPOT", R)
    with pytest.raises(ReviewError, match="already named"):
        rename_individual(catalog, world["stripe"], "Stripe", R)


def test_update_individual_refuses_unknown_fields(catalog, world) -> None:
    with pytest.raises(ReviewError, match="cannot edit name"):
        update_individual(catalog, world["stripe"], R, name="X")
    op = update_individual(catalog, world["stripe"], R, species=" ", life_stage="adult")
    with catalog.session() as s:
        ind = s.get(Individual, world["stripe"])
    assert (ind.species, ind.life_stage) == (None, "adult")
    assert op.label == "Edit Stripe"


def test_undo_refuses_to_overwrite_a_later_change(catalog, world) -> None:
    first = rename_individual(catalog, world["stripe"], "A-name", R)
    rename_individual(catalog, world["stripe"], "B-name", R)  # not undone first
    snap = b.snapshot(catalog)
    with pytest.raises(ReviewError, match="changed since"):
        first.revert(catalog)
    assert b.snapshot(catalog) == snap and first.applied


def test_unknown_ids_raise_not_found(catalog, world) -> None:
    with pytest.raises(NotFoundError):
        confirm_match(catalog, "nope", world["stripe"], R)
    with pytest.raises(NotFoundError):
        confirm_match(catalog, world["q"], "nope", R)
    with pytest.raises(NotFoundError):
        delete_annotation(catalog, "nope")


def test_edit_box_sets_aside_features_and_match_results(catalog, world) -> None:
    op = update_annotation(catalog, world["q_ann"], box=(-20, 10, 100, 1000))
    with catalog.session() as s:
        ann = s.get(Annotation, world["q_ann"])
        assert (ann.x, ann.y, ann.w, ann.h, ann.full_frame) == (0.0, 10.0, 80.0, 290.0, False)
        assert s.scalar(select(func.count()).select_from(Feature)
                        .where(Feature.annotation_id == ann.id)) == 0
        assert s.scalar(select(func.count()).select_from(MatchCandidate)
                        .where(MatchCandidate.encounter_id == world["q"])) == 0
        assert s.get(MatchSummary, world["q"]) is None
        # New results computed for the new box...
        b.summary(s, s.get(Encounter, world["q"]), 0.7)
    op.revert(catalog)  # ...are set aside by undo, and the old ones come back
    with catalog.session() as s:
        assert s.get(MatchSummary, world["q"]).best_score == pytest.approx(0.9)
    op.reapply(catalog)
    with catalog.session() as s:
        assert s.get(MatchSummary, world["q"]).best_score == pytest.approx(0.7)


def test_box_validation(catalog, world) -> None:
    with pytest.raises(ReviewError, match="outside"):
        update_annotation(catalog, world["q_ann"], box=(500, 500, 10, 10))
    with pytest.raises(ReviewError, match="four finite"):
        update_annotation(catalog, world["q_ann"], box=(0, 0, float("nan"), 10))
    with pytest.raises(ReviewError, match="viewpoint"):
        update_annotation(catalog, world["q_ann"], viewpoint="sideways")
    assert update_annotation(catalog, world["q_ann"], viewpoint="unknown").is_noop
    # a box a pixel or two wide holds nothing to identify and no features can be made of it
    for box in ((10, 10, 1, 40), (10, 10, 40, 7.5), (-20, 10, 25, 40)):
        with pytest.raises(ReviewError, match=r"a box needs at least 8 px on each side"):
            add_annotation(catalog, world["photo"], box)
    assert add_annotation(catalog, world["photo"], (10, 10, 8, 8)).changes.annotations


def test_second_animal_gets_its_own_encounter(catalog, world) -> None:
    op = add_annotation(catalog, world["photo"], (100, 100, 80, 60), "left", species="nyala")
    new_enc = next(iter(op.changes.encounters))
    assert new_enc not in (world["e_spot"], world["second"])
    with catalog.session() as s:
        enc = s.get(Encounter, new_enc)
        ann = s.get(Annotation, next(iter(op.changes.annotations)))
    assert (enc.taken_utc, enc.state, enc.camera_key, enc.observer) == (b.t(2), "unreviewed", "cam", "Ann")
    assert (ann.viewpoint, ann.full_frame, ann.encounter_id) == ("left", False, new_enc)


def test_a_box_of_another_animal_in_a_burst_gets_its_own_encounter(catalog, world) -> None:
    """A burst's photo of a different animal leaves the burst's encounter with its box; its
    features stay, the burst's results (the box was one of its queries) are set aside."""
    with catalog.session() as s:
        q = s.get(Encounter, world["q"])
        q.observer, q.species = "Bea", "nyala"
    op = separate_annotation(catalog, world["q_ann"])
    assert op.label == "Separate box into its own encounter"
    (new_enc,) = op.changes.encounters - {world["q"]}
    with catalog.session() as s:
        enc = s.get(Encounter, new_enc)
        ann = s.get(Annotation, world["q_ann"])
        assert ann.encounter_id == new_enc
        assert (enc.state, enc.individual_id, enc.observer, enc.species, enc.camera_key) == \
            ("unreviewed", None, "Bea", "nyala", "cam")
        assert enc.taken_utc == s.get(Photo, ann.photo_id).taken_utc  # its own photo's time
        assert s.scalar(select(func.count()).where(Annotation.encounter_id == world["q"])) == 1
        assert s.scalar(select(func.count()).select_from(Feature)
                        .where(Feature.annotation_id == ann.id)) == 1
        assert s.get(MatchSummary, world["q"]) is None
        assert not s.scalars(select(MatchCandidate)
                             .where(MatchCandidate.encounter_id == world["q"])).all()
        b.summary(s, enc, 0.4)  # matched on its own since
    op.revert(catalog)
    with catalog.session() as s:
        assert s.get(Encounter, new_enc) is None
        assert s.get(Annotation, world["q_ann"]).encounter_id == world["q"]
        assert s.get(MatchSummary, world["q"]).best_score == pytest.approx(0.9)
    op.reapply(catalog)
    with catalog.session() as s:
        assert s.get(MatchSummary, new_enc).best_score == pytest.approx(0.4)
        assert s.get(MatchSummary, world["q"]) is None
    with pytest.raises(ReviewError, match="only one of its encounter"):
        separate_annotation(catalog, world["q_ann"])  # alone in its new encounter now
    with pytest.raises(ReviewError, match="only one of its encounter"):
        separate_annotation(catalog, world["stripe_ann"])


def test_delete_last_box_resets_to_full_frame(catalog, world) -> None:
    op = delete_annotation(catalog, world["stripe_ann"])
    assert op.label == "Reset box to full frame"
    with catalog.session() as s:
        ann = s.get(Annotation, world["stripe_ann"])
        assert (ann.x, ann.y, ann.w, ann.h, ann.full_frame) == (0.0, 0.0, 400.0, 300.0, True)
    assert delete_annotation(catalog, world["stripe_ann"]).is_noop


def test_delete_box_removes_an_emptied_encounter_without_history(catalog, world) -> None:
    op = delete_annotation(catalog, world["second_ann"])
    assert world["second"] in op.changes.encounters
    with catalog.session() as s:
        assert s.get(Encounter, world["second"]) is None
    op.revert(catalog)
    with catalog.session() as s:
        assert s.get(Encounter, world["second"]) is not None
        assert s.get(MatchSummary, world["second"]).best_score == pytest.approx(0.3)


def test_delete_box_keeps_an_emptied_encounter_with_history(catalog, world) -> None:
    mark_unsure(catalog, world["second"], R)
    delete_annotation(catalog, world["second_ann"])
    with catalog.session() as s:
        assert s.get(Encounter, world["second"]) is not None
        assert s.scalar(select(func.count()).select_from(Decision)) == 1


def test_delete_box_named_by_a_decision_is_refused(catalog, world) -> None:
    with catalog.session() as s:
        s.add(Decision(encounter_id=world["q"], verdict="match", reviewer="sync",
                       candidate_annotation_id=world["second_ann"]))
    with pytest.raises(ReviewError, match="named by review decisions"):
        delete_annotation(catalog, world["second_ann"])


def test_individual_edits_are_on_the_audit_trail(catalog, world) -> None:
    """Who renamed or edited an animal is recorded, and so is who undid it."""
    from wildid.review import decision_history

    rename = rename_individual(catalog, world["stripe"], "Stripey", R)
    update_individual(catalog, world["stripe"], "Bo", sex="female", notes="")  # notes unchanged
    update_individual(catalog, world["stripe"], "Bo", sex="female")  # nothing changes: no row
    rows = decision_history(catalog, individual_id=world["stripe"])
    edit, named = rows[0], rows[1]
    assert (edit.verdict, edit.reviewer, edit.encounter_id) == ("edit", "Bo", None)
    assert edit.scores == {"before": {"sex": None}, "after": {"sex": "female"}}
    assert edit.note == "sex: none \u2192 female"
    assert (named.verdict, named.reviewer, named.candidate_name) == ("rename", R, "Stripey")
    assert named.scores == {"before": {"name": "Stripe"}, "after": {"name": "Stripey"}}
    assert len([r for r in rows if r.verdict in ("rename", "edit")]) == 2
    # Undoing the rename (the later edit touched other fields) appends a revert row naming it.
    rename.revert(catalog)
    rows = decision_history(catalog, individual_id=world["stripe"])
    undo = rows[0]
    assert undo.verdict == "revert" and undo.reverts_id == named.id and undo.encounter_id is None
    assert next(r for r in rows if r.id == named.id).reverted
    with catalog.session() as s:
        assert s.get(Individual, world["stripe"]).name == "Stripe"
    assert [r.verdict for r in decision_history(catalog, encounter_id=world["q"])] == []


def test_an_individual_takes_the_species_once_every_sighting_has_it(catalog) -> None:
    """Animals named from a misspelled import: once all their sightings are mended, they take
    the species too (one undo step with the sightings); one with a sighting still to mend, or
    with a species of its own, keeps what it has."""
    with catalog.session() as s:
        twice = b.individual(s, "Twice", species="Nyala antelope")
        first = b.encounter(s, b.t(1), individual=twice, species="Nyala antelope").id
        second = b.encounter(s, b.t(2), individual=twice, species="Nyala antelope").id
        own = b.individual(s, "Own", species="Tragelaphus scriptus")
        owns = b.encounter(s, b.t(3), individual=own, species="Nyala antelope").id
        ids = {"twice": twice.id, "own": own.id}

    def species(name: str) -> str | None:
        with catalog.session() as s:
            return s.get(Individual, ids[name]).species

    half = set_encounter_species(catalog, [first], "nyala", R)
    assert species("twice") == "Nyala antelope" and not half.changes.individuals
    op = set_encounter_species(catalog, [second, owns], "nyala", R)
    assert species("twice") == "nyala" and species("own") == "Tragelaphus scriptus"
    assert op.changes.individuals == {ids["twice"]}
    op.revert(catalog)
    assert species("twice") == "Nyala antelope"
    half.revert(catalog)
    # cleared on every sighting: the individual's species is cleared with them
    assert set_encounter_species(catalog, [first, second], "", R).changes.individuals == \
        {ids["twice"]}
    assert species("twice") is None


def test_setting_an_encounters_species_moves_its_boxes_and_sets_its_results_aside(
        catalog, world) -> None:
    """Mending an import's species: the boxes that had the encounter's species follow it, a box
    given another species of its own keeps it, and the results found under the old species are
    set aside (so the encounter is matched again); undo brings all of it back."""
    with catalog.session() as s:
        q = s.get(Encounter, world["q"])
        q.species = "Nyala antelope"
        anns = list(q.annotations)
        for a in anns:
            a.species = "nyala ANTELOPE"  # an import writes the species on both
        own = Annotation(photo_id=anns[0].photo_id, encounter_id=q.id, x=1.0, y=1.0, w=9.0,
                         h=9.0, full_frame=False, species="Tragelaphus scriptus")
        s.add(own)
        s.flush()
        own_id, ann_ids = own.id, [a.id for a in anns]
    op = set_encounter_species(catalog, [world["q"], world["q"]], " nyala ", R)
    assert op.changes.encounters == {world["q"]} and op.label == "Set species nyala"
    with catalog.session() as s:
        assert s.get(Encounter, world["q"]).species == "nyala"
        assert {s.get(Annotation, a).species for a in ann_ids} == {"nyala"}
        assert s.get(Annotation, own_id).species == "Tragelaphus scriptus"
        assert s.get(MatchSummary, world["q"]) is None
        assert s.scalar(select(func.count()).select_from(MatchCandidate)
                        .where(MatchCandidate.encounter_id == world["q"])) == 0
    # the same species again changes nothing
    assert set_encounter_species(catalog, [world["q"]], "nyala", R).is_noop
    op.revert(catalog)
    with catalog.session() as s:
        assert s.get(Encounter, world["q"]).species == "Nyala antelope"
        assert s.get(MatchSummary, world["q"]) is not None
    with pytest.raises(NotFoundError):
        set_encounter_species(catalog, ["no-such-encounter"], "nyala", R)


def test_a_whole_import_at_once_stays_under_sqlites_variable_limit(catalog) -> None:
    """SQLite before 3.32 binds at most 999 values per statement (and builds may set their own
    limit): an operation on every encounter of a large import reads and sets aside in bounded
    chunks, so it works there too."""
    import sqlite3

    from sqlalchemy import event

    event.listen(catalog.engine, "connect",
                 lambda conn, _record: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999))
    catalog.engine.dispose()  # connections from now on have the limit
    with catalog.session() as s:
        encounters = [b.encounter(s, b.t(1)) for _ in range(1200)]
        for enc in encounters[::2]:
            b.summary(s, enc, 0.5)
        ids = [e.id for e in encounters]
    op = set_encounter_species(catalog, ids, "Panthera leo")
    assert len(op.changes.encounters) == 1200
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(MatchSummary)) == 0
    op.revert(catalog)
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(MatchSummary)) == 600
        assert set(s.scalars(select(Encounter.species))) == {"nyala"}


def test_shifting_times_moves_the_photos_and_each_encounter_follows(catalog, world) -> None:
    """A camera whose clock was off: the photos of the chosen encounters move by the error and
    each encounter's time is its earliest photo's again. The second animal on e_spot's photo
    (an encounter of its own, not chosen) follows the photo too, so the two cannot disagree on
    when it was taken; what the camera wrote stays in taken_raw."""
    with catalog.session() as s:
        raw = {p.id: p.taken_raw for p in s.scalars(select(Photo))}
    assert earliest_time(catalog, [world["q"], world["e_spot"]]) == b.t(2)
    op = shift_times(catalog, [world["q"], world["e_spot"]], timedelta(days=400, hours=-1), R)
    assert op.label == "Shift times +1 y 34 d 23 h on 3 encounters"
    assert op.changes.encounters == {world["q"], world["e_spot"], world["second"]}
    assert op.changes.individuals == {world["spot"]}  # its first and last seen moved
    with catalog.session() as s:
        times = {e.id: e.taken_utc for e in s.scalars(select(Encounter))}
        assert {p.id: p.taken_raw for p in s.scalars(select(Photo))} == raw
    moved = timedelta(days=400, hours=-1)
    assert times[world["q"]] == b.t(11, 12) + moved
    assert times[world["e_spot"]] == times[world["second"]] == b.t(2) + moved
    assert times[world["e_stripe"]] == b.t(1)  # not chosen, no shared photo
    assert earliest_time(catalog, [world["q"]]) == b.t(11, 12) + moved


def test_shifting_times_refuses_what_cannot_be_done(catalog, world) -> None:
    with pytest.raises(NotFoundError, match="no encounter nope"):
        shift_times(catalog, [world["q"], "nope"], timedelta(hours=1), R)
    with pytest.raises(ReviewError, match="leaves the calendar"):
        shift_times(catalog, [world["q"]], timedelta(days=-3_000_000), R)
    with catalog.session() as s:  # nothing was half done
        assert s.get(Encounter, world["q"]).taken_utc == b.t(11, 12)
        undated = b.encounter(s, None)
        undated_id = undated.id
    assert earliest_time(catalog, [undated_id]) is None
    assert shift_times(catalog, [undated_id], timedelta(hours=1), R).is_noop


@pytest.mark.parametrize(("delta", "said"), [
    (timedelta(hours=1), "+1 h"), (-timedelta(minutes=90), "-1 h 30 min"),
    (timedelta(days=365 * 26 + 3, seconds=5), "+26 y 3 d 5 s"), (timedelta(0), "+0 s")])
def test_a_shift_is_said_as_people_say_it(delta: timedelta, said: str) -> None:
    assert describe_shift(delta) == said


def test_boxes_of_one_other_animal_move_into_one_encounter_together(catalog) -> None:
    """Three photos of a burst, the last two of another animal: both boxes go into one new
    encounter (the earlier photo's time), and undo puts them back exactly."""
    with catalog.session() as s:
        burst = b.encounter(s, None, n_photos=3)
        boxes = list(s.scalars(select(Annotation).where(Annotation.encounter_id == burst.id)
                               .order_by(Annotation.id)))
        for n, ann in enumerate(boxes):
            s.get(Photo, ann.photo_id).taken_utc = b.t(5, n)
        keep, *other = (a.id for a in boxes)
        burst_id = burst.id
    snap = b.snapshot(catalog)
    op = separate_annotations(catalog, other[::-1], R)
    assert op.label == "Separate 2 boxes into an encounter of their own"
    with catalog.session() as s:
        moved = {s.get(Annotation, a).encounter_id for a in other}
        assert len(moved) == 1 and burst_id not in moved
        assert s.get(Annotation, keep).encounter_id == burst_id
        assert s.get(Encounter, moved.pop()).taken_utc == b.t(5, 1)
    op.revert(catalog)
    assert b.snapshot(catalog) == snap
    with pytest.raises(ReviewError, match="all the boxes of their encounter"):
        separate_annotations(catalog, [keep, *other], R)
    with pytest.raises(ReviewError, match="different encounters"):
        with catalog.session() as s:
            elsewhere = b.first_annotation(s, b.encounter(s, b.t(6), n_photos=2)).id
        separate_annotations(catalog, [keep, elsewhere], R)
