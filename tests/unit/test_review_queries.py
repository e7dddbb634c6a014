"""Read-only review views: details, candidates (days/distance), queue, individuals, history."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit import test_review_support as b
from wildid.catalog.models import Individual
from wildid.errors import NotFoundError, ReviewError
from wildid.review import (
    candidates_for,
    confirm_match,
    decision_history,
    encounter_detail,
    individual_detail,
    list_individuals,
    mark_unsure,
    merge_individuals,
    reject_candidate,
    rejected_pairs,
    rename_individual,
    review_queue,
)
from wildid.review.details import haversine_km

R = "tester"


def test_haversine_hand_checked() -> None:
    # One degree of longitude on the equator is 2*pi*R/360 with the IUGG mean radius.
    assert haversine_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(2 * math.pi * 6371.0088 / 360)
    assert haversine_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(111.195, abs=1e-3)
    assert haversine_km((0.0, 0.0), (90.0, 0.0)) == pytest.approx(math.pi / 2 * 6371.0088)
    assert haversine_km((-25.5, 31.2), (-25.5, 31.2)) == 0.0


def test_candidate_days_and_distance_since_last_seen(catalog) -> None:
    with catalog.session() as s:
        stripe = b.individual(s, "Stripe")
        # Seen at (0, 1) on 1 March, then again on 5 March without GPS.
        b.encounter(s, b.t(1), 0.0, 1.0, individual=stripe)
        b.encounter(s, b.t(5), individual=stripe)
        q = b.encounter(s, b.t(11, 12), 0.0, 0.0)
        b.candidate(s, q, stripe, 0, 0.8)
        q_id = q.id
    (c,) = candidates_for(catalog, q_id)
    assert c.n_encounters == 2
    assert c.last_seen == b.t(5)
    assert c.days_since_last_seen == pytest.approx(6.5)  # 5 March 00:00 -> 11 March 12:00
    assert c.last_seen_gps == (0.0, 1.0)  # the latest sighting that has a position
    assert c.distance_km == pytest.approx(111.195, abs=1e-3)


def test_candidate_stats_ignore_the_query_itself_and_missing_data(catalog) -> None:
    with catalog.session() as s:
        stripe = b.individual(s, "Stripe")
        q = b.encounter(s, None, individual=stripe)  # confirmed already, no time, no GPS
        b.candidate(s, q, stripe, 0, 0.8)
        q_id = q.id
    (c,) = candidates_for(catalog, q_id)
    assert (c.n_encounters, c.last_seen, c.last_seen_gps) == (1, None, None)
    assert c.days_since_last_seen is None and c.distance_km is None


def test_candidate_view_fields(catalog) -> None:
    inl = np.array([[1, 2, 3, 4], [5.5, 6, 7, 8]], dtype=np.float32)
    with catalog.session() as s:
        stripe, spot = b.individual(s, "Stripe"), b.individual(s, "Spot", species="lion")
        e1 = b.encounter(s, b.t(1), -1.5, 30.25, individual=stripe)
        best = b.first_annotation(s, e1)
        q = b.encounter(s, b.t(3))
        b.candidate(s, q, spot, 4, 0.2)  # ranks are renumbered from 0
        b.candidate(s, q, stripe, 2, 0.9, best=best, inliers=inl)
        ids = (q.id, stripe.id, best.id, b.first_annotation(s, q).id)
    c0, c1 = candidates_for(catalog, ids[0])
    assert (c0.rank, c0.name, c0.individual_id, c0.score) == (0, "Stripe", ids[1], pytest.approx(0.9))
    assert (c1.rank, c1.name, c1.species) == (1, "Spot", "lion")
    assert c0.raw_scores == {"global": pytest.approx(0.8), "local": pytest.approx(0.95)}
    assert c0.query_annotation_id == ids[3] and c0.engine == "test-engine 1"
    np.testing.assert_array_equal(c0.inliers, inl)
    assert c0.inliers.dtype == np.float32 and c1.inliers.shape == (0, 4)
    a = c0.best_annotation
    assert a is not None and a.id == ids[2] and c1.best_annotation is None
    assert a.box == (0.0, 0.0, 400.0, 300.0) and a.gps == (-1.5, 30.25)
    assert a.thumb_path.name == f"{a.sha256}_256.jpg" and a.thumb_path.is_relative_to(catalog.thumb_dir)
    assert a.photo_path.as_posix().startswith("/card/IMG_")


def test_rejected_pairs_follow_latest_decision_and_merges(catalog) -> None:
    with catalog.session() as s:
        stripe, spot = b.individual(s, "Stripe"), b.individual(s, "Spot")
        q = b.encounter(s, b.t(3))
        q_id = q.id
        ids = stripe.id, spot.id
    reject_candidate(catalog, q_id, ids[1], R)
    assert rejected_pairs(catalog, q_id) == {ids[1]}
    with catalog.session() as s:
        assert rejected_pairs(s, q_id) == {ids[1]}  # a session works too
    mark_unsure(catalog, q_id, R, individual_id=ids[1])  # a later verdict lifts the rejection
    assert rejected_pairs(catalog, q_id) == set()
    reject_candidate(catalog, q_id, ids[1], R)
    merge_individuals(catalog, ids[0], ids[1], R)
    # Spot is now Stripe: rejecting Spot rejects the survivor too (raw and resolved ids given).
    assert rejected_pairs(catalog, q_id) == {ids[0], ids[1]}


def test_encounter_detail(catalog) -> None:
    with catalog.session() as s:
        stripe = b.individual(s, "Stripe")
        e = b.encounter(s, b.t(4), 1.0, 2.0, individual=stripe, n_photos=3, observer="Bo")
        b.summary(s, e, 0.66, likely_new=True)
        e_id = e.id
    d = encounter_detail(catalog, e_id)
    assert (d.state, d.individual_name, d.observer, d.species) == ("confirmed", "Stripe", "Bo", "nyala")
    assert (d.gps_lat, d.gps_lon, d.taken_utc) == (1.0, 2.0, b.t(4))
    assert len(d.annotations) == 3 and d.best_score == pytest.approx(0.66) and d.likely_new
    assert all(a.encounter_id == e_id for a in d.annotations)
    with pytest.raises(NotFoundError):
        encounter_detail(catalog, "missing")


def test_review_queue_orders(catalog) -> None:
    with catalog.session() as s:
        high = b.encounter(s, b.t(9))
        low = b.encounter(s, b.t(1))
        none_late = b.encounter(s, b.t(8))
        none_early = b.encounter(s, b.t(2))
        no_time = b.encounter(s, None)
        done = b.encounter(s, b.t(3), individual=b.individual(s, "X"))
        b.summary(s, high, 0.95)
        b.summary(s, low, 0.40)
        empty = b.encounter(s, b.t(5), n_photos=0)  # no boxes left: hidden
        ids = {n: e.id for n, e in dict(high=high, low=low, none_late=none_late,
                                        none_early=none_early, no_time=no_time, done=done,
                                        empty=empty).items()}
    names = {v: k for k, v in ids.items()}
    assert [names[i] for i in review_queue(catalog)] == [
        "high", "low", "none_early", "none_late", "no_time"]
    assert [names[i] for i in review_queue(catalog, "oldest")] == [
        "low", "none_early", "none_late", "high", "no_time"]
    assert [names[i] for i in review_queue(catalog, "oldest", states=("confirmed",))] == ["done"]
    op = mark_unsure(catalog, ids["high"], R)  # "not sure": goes to the end
    assert [names[i] for i in review_queue(catalog)][-1] == "high"
    op.revert(catalog)
    assert [names[i] for i in review_queue(catalog)][0] == "high"
    with pytest.raises(ReviewError):
        review_queue(catalog, "random")
    with pytest.raises(ReviewError):
        review_queue(catalog, states=("done",))


def test_list_individuals_search_order_and_merges(catalog) -> None:
    with catalog.session() as s:
        ana = b.individual(s, "Ana")
        bea = b.individual(s, "Béa", species="lion")
        cid = b.individual(s, "Cid")
        for day in (1, 2, 3):
            b.encounter(s, b.t(day), individual=cid)
        b.encounter(s, b.t(20), individual=ana)
        ids = ana.id, bea.id, cid.id
    rename_individual(catalog, ids[2], "Cidro", R)
    rows = list_individuals(catalog)
    assert [r.name for r in rows] == ["Ana", "Béa", "Cidro"]
    cid_row = rows[2]
    assert (cid_row.n_encounters, cid_row.first_seen, cid_row.last_seen) == (3, b.t(1), b.t(3))
    assert cid_row.aliases == ["Cid"] and cid_row.thumb_path is not None
    assert rows[1].thumb_path is None and rows[1].n_encounters == 0
    assert [r.name for r in list_individuals(catalog, search="cid")] == ["Cidro"]  # alias match
    assert [r.name for r in list_individuals(catalog, search="BÉA")] == ["Béa"]
    assert [r.name for r in list_individuals(catalog, species="lion")] == ["Béa"]
    assert [r.name for r in list_individuals(catalog, order="sightings")] == ["Cidro", "Ana", "Béa"]
    assert [r.name for r in list_individuals(catalog, order="last_seen")] == ["Ana", "Cidro", "Béa"]
    merge_individuals(catalog, ids[0], ids[2], R)
    rows = list_individuals(catalog)
    assert [(r.name, r.n_encounters) for r in rows] == [("Ana", 4), ("Béa", 0)]
    assert rows[0].first_seen == b.t(1) and rows[0].aliases == ["Cidro", "Cid"]
    with pytest.raises(ReviewError):
        list_individuals(catalog, order="size")


def test_individual_detail_resolves_merged_ids(catalog) -> None:
    with catalog.session() as s:
        ana, cid = b.individual(s, "Ana", notes="torn ear"), b.individual(s, "Cid")
        b.encounter(s, b.t(1), 1.0, 1.0, individual=cid)
        b.encounter(s, b.t(7), individual=ana)
        b.encounter(s, b.t(3), 2.0, 2.0, individual=ana)
        ids = ana.id, cid.id
    merge_individuals(catalog, ids[0], ids[1], R)
    d = individual_detail(catalog, ids[1])
    assert (d.id, d.name, d.notes, d.n_encounters) == (ids[0], "Ana", "torn ear", 3)
    assert d.merged_from == [(ids[1], "Cid")]
    assert [e.taken_utc for e in d.encounters] == [b.t(7), b.t(3), b.t(1)]
    assert d.sightings == [(b.t(1), 1.0, 1.0), (b.t(3), 2.0, 2.0), (b.t(7), None, None)]
    assert (d.first_seen, d.last_seen) == (b.t(1), b.t(7))
    with pytest.raises(NotFoundError):
        individual_detail(catalog, "missing")


def test_merge_cycles_in_synced_data_do_not_hang(catalog) -> None:
    with catalog.session() as s:
        a, c = b.individual(s, "A"), b.individual(s, "C")
        a.merged_into_id, c.merged_into_id = c.id, a.id
        ids = sorted([a.id, c.id])
    assert individual_detail(catalog, ids[1]).id == ids[0]  # a cycle resolves to its smallest id


def test_decision_history_filters_and_order(catalog) -> None:
    with catalog.session() as s:
        ana, cid = b.individual(s, "Ana"), b.individual(s, "Cid")
        e1, e2 = b.encounter(s, b.t(1)), b.encounter(s, b.t(2))
        ids = ana.id, cid.id, e1.id, e2.id
    confirm_match(catalog, ids[2], ids[0], "Ada")
    op = reject_candidate(catalog, ids[3], ids[1], "Bo")
    op.revert(catalog)
    rows = decision_history(catalog)
    assert [r.verdict for r in rows] == ["revert", "no_match", "match"]  # newest first
    assert rows[1].reverted and not rows[2].reverted and rows[0].reverts_id == rows[1].id
    assert rows[2].candidate_name == "Ana" and rows[2].reviewer == "Ada"
    assert [r.verdict for r in decision_history(catalog, encounter_id=ids[3])] == ["revert", "no_match"]
    assert [r.verdict for r in decision_history(catalog, limit=1)] == ["revert"]
    merge_individuals(catalog, ids[0], ids[1], R)  # Cid's history now shows under Ana too
    assert {r.verdict for r in decision_history(catalog, individual_id=ids[0])} == {
        "match", "no_match", "revert", "merge"}
    assert rows[2].to_dict()["decided_at"].startswith("20")


def test_ghost_individual_without_decisions_is_listed(catalog) -> None:
    # Individuals made outside the review operations (sync, import) show even without encounters.
    with catalog.session() as s:
        s.add(Individual(name="Ghost", aliases=[], notes=""))
    assert [r.name for r in list_individuals(catalog)] == ["Ghost"]


def test_encounter_without_boxes_is_hidden_from_candidate_stats(catalog) -> None:
    with catalog.session() as s:
        stripe = b.individual(s, "Stripe")
        b.encounter(s, b.t(1), individual=stripe)
        b.encounter(s, b.t(9), individual=stripe, n_photos=0)  # left empty by an undo
        q = b.encounter(s, b.t(10))
        b.candidate(s, q, stripe, 0, 0.5)
        q_id = q.id
    (c,) = candidates_for(catalog, q_id)
    assert (c.n_encounters, c.last_seen) == (1, b.t(1))


@pytest.mark.parametrize(("original", "stored", "expected"), [
    ("/media/card/DCIM/100CANON/IMG_0423.JPG", "/cat/photos/ab/abcd.jpg", "IMG_0423.JPG"),
    ("E:\\DCIM\\100CANON\\IMG_0424.JPG", "/cat/photos/ab/abce.jpg", "IMG_0424.JPG"),
    ("", "/cat/photos/ab/abcf.jpg", "abcf.jpg"),  # nothing recorded: the file shown
])
def test_an_annotation_names_its_photo_file_as_it_was_on_the_card(original, stored,
                                                                   expected) -> None:
    """The review headers show this name: the card's, not the catalog copy's, whichever
    system recorded the path."""
    from pathlib import Path

    from wildid.review.views import AnnotationInfo

    info = AnnotationInfo(id="a", photo_id="p", photo_path=Path(stored), thumb_path=Path("t"),
                          sha256="0", box=(0, 0, 1, 1), full_frame=True, viewpoint="unknown",
                          species=None, photo_width=1, photo_height=1, taken_utc=None, gps=None,
                          original_path=original)
    assert info.file_name == expected


def test_individual_photos_put_the_matched_one_first_then_newest_sightings(catalog) -> None:
    """The review screen steps through a candidate's photos: the one matched first, then the
    rest newest sighting first, merged individuals' sightings included."""
    from wildid.review.queries import individual_photos

    with catalog.session() as s:
        a = b.individual(s, "A")
        other = b.individual(s, "B")
        encounters = [b.encounter(s, b.t(day), individual=a) for day in (1, 2, 3)]
        merged = b.encounter(s, b.t(4), individual=other)
        old, mid, new = (b.first_annotation(s, e).id for e in encounters)
        from_b = b.first_annotation(s, merged).id
        ids = {"a": a.id, "other": other.id}
    assert [p.id for p in individual_photos(catalog, ids["a"])] == [new, mid, old]
    assert [p.id for p in individual_photos(catalog, ids["a"], first=old)] == [old, new, mid]
    merge_individuals(catalog, ids["a"], ids["other"], R)
    assert [p.id for p in individual_photos(catalog, ids["other"])] == [from_b, new, mid, old]


def test_results_proposing_a_rejected_individual_are_out_of_date(catalog) -> None:
    """"Not this one" leaves results taken with the rejected animal in the list: out of date
    until they are matched again without it, however late they were written (a second
    rejection made while the first one's matching ran)."""
    from datetime import UTC, datetime, timedelta

    from wildid.catalog.models import MatchCandidate, MatchSummary
    from wildid.review.queries import stale_results

    with catalog.session() as s:
        a, other = b.individual(s, "A"), b.individual(s, "B")
        q = b.encounter(s, b.t(5))
        b.candidate(s, q, a, 0, 0.6)
        b.candidate(s, q, other, 1, 0.1)
        b.summary(s, q, 0.6)
        ids = (q.id, a.id, other.id)
    q, a, other = ids
    assert stale_results(catalog, [q]) == []
    reject_candidate(catalog, q, a, R)
    assert stale_results(catalog, [q]) == [q]
    with catalog.session() as s:  # written after the rejection, yet still proposing A
        s.get(MatchSummary, q).computed_at = datetime.now(UTC) + timedelta(minutes=1)
    assert stale_results(catalog, [q]) == [q]
    with catalog.session() as s:  # matched again without A
        s.query(MatchCandidate).filter_by(encounter_id=q, individual_id=a).delete()
    assert stale_results(catalog, [q]) == []
    confirm_match(catalog, q, other, R)  # no longer to review: never out of date
    assert stale_results(catalog, [q]) == []
