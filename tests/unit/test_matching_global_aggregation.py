"""Global cosine shortlist (incremental, masked) and per-individual aggregation."""

from __future__ import annotations

import numpy as np
import pytest

from wildid.errors import MatchingError
from wildid.matching.aggregation import aggregate, name_scores
from wildid.matching.global_index import GlobalIndex


def test_global_search_add_remove_and_mask() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 32)).astype(np.float32)
    index = GlobalIndex(32, dtype=np.float32)
    for i, v in enumerate(vecs):
        index.add(i, v * (i + 1))  # scale does not matter: stored unit length
    top = index.search(vecs[7], k=3)
    assert top[0][0] == 7 and top[0][1] == pytest.approx(1.0, abs=1e-5)
    index.remove(7)
    index.remove(0)
    assert len(index) == 48 and 7 not in index
    rebuilt = GlobalIndex(32, dtype=np.float32)
    for i, v in enumerate(vecs):
        if i not in (0, 7):
            rebuilt.add(i, v)
    q = rng.normal(size=32)
    a, b = index.search(q, k=10), rebuilt.search(q, k=10)
    assert [k for k, _ in a] == [k for k, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
    # mask: only even keys, never key 2
    mask = index.mask_for(allowed=[k for k in index.keys if k % 2 == 0], excluded=[2])
    hits = index.search(q, k=100, mask=mask)
    assert hits and all(k % 2 == 0 and k != 2 for k, _ in hits)
    assert len(hits) == int(mask.sum())


def test_global_index_float16_and_errors() -> None:
    index = GlobalIndex()
    index.add("a", np.array([1.0, 0.0, 0.0]))
    index.add("b", np.array([0.6, 0.8, 0.0]))
    assert index.search(np.array([1.0, 0.1, 0.0]), k=1)[0][0] == "a"
    with pytest.raises(MatchingError):
        index.add("c", np.zeros(3))
    with pytest.raises(MatchingError):
        index.add("d", np.ones(4))
    assert GlobalIndex().search(np.ones(3)) == []


def test_aggregate_max_and_noisy_or_by_hand() -> None:
    scores = {"a1": 0.5, "a2": 0.5, "b1": 0.7}
    owner = {"a1": "A", "a2": "A", "b1": "B"}
    by_max = aggregate(scores, owner, "max")
    assert [(s.individual_id, s.score) for s in by_max] == [("B", 0.7), ("A", 0.5)]
    by_or = aggregate(scores, owner, "noisy_or")
    # A: 1 - 0.5 * 0.5 = 0.75 beats B's single 0.7
    assert by_or[0].individual_id == "A" and by_or[0].score == pytest.approx(0.75)
    assert by_or[0].best_key in ("a1", "a2")
    with pytest.raises(MatchingError):
        aggregate(scores, owner, "mean")


def test_name_scores_count_each_query_keypoint_once_per_individual() -> None:
    q = {"a1": np.array([0, 1]), "a2": np.array([0, 2]), "b1": np.array([0])}
    w = {"a1": np.array([1.0, 0.5]), "a2": np.array([2.0, 0.25]), "b1": np.array([3.0])}
    out = name_scores(q, w, {"a1": "A", "a2": "A", "b1": "B"})
    # A: keypoint 0 -> max(1, 2) = 2, keypoint 1 -> 0.5, keypoint 2 -> 0.25
    assert out == {"A": pytest.approx(2.75), "B": pytest.approx(3.0)}


def test_noisy_or_odds_factor_by_hand_keeps_a_single_annotation() -> None:
    scores = {"a1": 0.2, "a2": 0.2, "b1": 0.3}
    owner = {"a1": "A", "a2": "A", "b1": "B"}
    # plain noisy-or: A 1 - 0.8 * 0.8 = 0.36
    plain = {s.individual_id: s.score for s in aggregate(scores, owner, "noisy_or", 2)}
    assert plain == {"A": pytest.approx(0.36), "B": pytest.approx(0.3)}
    # odds x 4: each 0.2 -> odds 0.25 * 4 = 1 -> 0.5; together 1 - 0.5 * 0.5 = 0.75, odds 3,
    # divided by 4 again: 0.75 -> 0.75 / 1.75. B's single 0.3 stays 0.3.
    boosted = {s.individual_id: s.score for s in aggregate(scores, owner, "noisy_or", 2, odds=4)}
    assert boosted["A"] == pytest.approx(0.75 / 1.75)
    assert boosted["B"] == pytest.approx(0.3)
    assert boosted["A"] > plain["A"]
    # only the best top_n count, and a certain annotation stays certain
    three = {s.individual_id: s.score for s in aggregate(
        {"x": 1.0, "y": 0.0, "z": 0.0}, lambda k: "X", "noisy_or", 2, odds=50)}
    assert three["X"] == pytest.approx(1.0)
    with pytest.raises(MatchingError, match="odds"):
        aggregate(scores, owner, "noisy_or", odds=0.0)


def test_odds_factor_ranks_two_matching_photos_above_one_slightly_better() -> None:
    scores = {"a1": 0.10, "a2": 0.05, "b1": 0.17}
    owner = {"a1": "A", "a2": "A", "b1": "B"}
    # plain: A 1 - 0.9 * 0.95 = 0.145 < 0.17
    assert aggregate(scores, owner, "noisy_or", 2)[0].individual_id == "B"
    # odds x 50: A's photos count as 0.847 and 0.725 together, 0.958, back to 0.31 > 0.17
    ranked = aggregate(scores, owner, "noisy_or", 2, odds=50)
    assert [s.individual_id for s in ranked] == ["A", "B"]
    assert ranked[0].score == pytest.approx(0.313, abs=1e-3)
    assert ranked[1].score == pytest.approx(0.17)
