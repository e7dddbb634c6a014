"""review.burst_check: when an encounter's photos lead to different known animals."""

from __future__ import annotations

import numpy as np

from wildid.review.burst_check import different_animals
from wildid.review.views import CandidateView


def cand(individual: str, score: float, photo: str | None, rank: int = 0) -> CandidateView:
    return CandidateView(rank=rank, individual_id=individual, name=individual.title(),
                         species="nyala", score=score, raw_scores={}, query_annotation_id=photo,
                         best_annotation=None, inliers=np.zeros((0, 4), np.float32),
                         n_encounters=1, last_seen=None, last_seen_gps=None,
                         days_since_last_seen=None, distance_km=None)


def test_two_photos_leading_to_two_likely_animals_are_named_best_first() -> None:
    found = different_animals([cand("amani", 0.9, "p1"), cand("baraka", 0.6, "p2"),
                               cand("chui", 0.5, "p1")], 0.4)
    assert [(m.query_annotation_id, m.candidate.individual_id) for m in found] == [
        ("p1", "amani"), ("p2", "baraka")]


def test_each_photo_is_named_by_its_strongest_candidate_whatever_the_order() -> None:
    found = different_animals([cand("chui", 0.5, "p1"), cand("baraka", 0.45, "p2"),
                               cand("amani", 0.8, "p1")], 0.4)
    assert [(m.query_annotation_id, m.candidate.individual_id) for m in found] == [
        ("p1", "amani"), ("p2", "baraka")]


def test_one_animal_or_nothing_likely_enough_says_nothing() -> None:
    # every likely candidate came through one photo
    assert different_animals([cand("amani", 0.9, "p1"), cand("baraka", 0.8, "p1")], 0.4) == []
    # two photos, one animal
    assert different_animals([cand("amani", 0.9, "p1"), cand("amani", 0.7, "p2")], 0.4) == []
    # the other photo's candidate is under the threshold
    assert different_animals([cand("amani", 0.9, "p1"), cand("baraka", 0.39, "p2")], 0.4) == []
    # exactly at the threshold counts, as the verdict counts it
    assert len(different_animals([cand("amani", 0.9, "p1"), cand("baraka", 0.4, "p2")], 0.4)) == 2
    # no threshold (an encounter matched by nothing that judged it), or no photo on record
    assert different_animals([cand("amani", 0.9, "p1"), cand("baraka", 0.8, "p2")], None) == []
    assert different_animals([cand("amani", 0.9, "p1"), cand("baraka", 0.8, None)], 0.4) == []
    assert different_animals([], 0.4) == []
