"""Metrics checked against cases computed by hand."""

from __future__ import annotations

import math

import pytest

from wildid.matching import metrics


def test_rank_of_truth_counts_distinct_individuals() -> None:
    assert metrics.rank_of_truth(["a", "a", "b", "c"], "b") == 2
    assert metrics.rank_of_truth(["a", "b"], "z") is None


def test_top_k_accuracy_by_hand() -> None:
    rankings = [["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"], ["x", "y", "z"]]
    truths = ["a", "a", "a", "a"]
    assert metrics.top_k_accuracy(rankings, truths, 1) == 0.25
    assert metrics.top_k_accuracy(rankings, truths, 2) == 0.5
    assert metrics.top_k_accuracy(rankings, truths, 3) == 0.75


def test_per_identity_top_k_weighs_individuals_equally() -> None:
    # "a" has three queries (all right), "b" one (wrong): per query 3/4, per identity 1/2
    rankings = [["a"], ["a"], ["a"], ["a"]]
    truths = ["a", "a", "a", "b"]
    assert metrics.top_k_accuracy(rankings, truths, 1) == 0.75
    assert metrics.per_identity_top_k(rankings, truths, 1) == 0.5


def test_average_precision_by_hand() -> None:
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    assert metrics.average_precision([True, False, True]) == pytest.approx((1 + 2 / 3) / 2)
    # a third relevant item never retrieved counts as zero precision
    assert metrics.average_precision([True, False, True], n_relevant=3) == pytest.approx(
        (1 + 2 / 3) / 3)
    assert metrics.average_precision([False, False]) == 0.0


def test_mean_average_precision_by_hand() -> None:
    rankings = [["a", "b", "a"], ["b", "a"]]
    truths = ["a", "a"]
    # query 1: (1 + 2/3)/2 ; query 2: relevant at rank 2 -> 1/2
    assert metrics.mean_average_precision(rankings, truths) == pytest.approx(
        ((1 + 2 / 3) / 2 + 0.5) / 2)


def test_open_set_accuracy_by_hand() -> None:
    known = {"a", "b"}
    predicted = ["a", None, "a", "b", None, "a", None]
    truths = ["a", "a", "b", "b", "u", "v", "v"]
    baks, baus = metrics.open_set_accuracy(predicted, truths, known)
    # a: [T, F] -> 0.5 ; b: [F, T] -> 0.5 ; BAKS = 0.5
    assert baks == pytest.approx(0.5)
    # u: [T] -> 1 ; v: [F, T] -> 0.5 ; BAUS = 0.75
    assert baus == pytest.approx(0.75)
    baks_only, baus_none = metrics.open_set_accuracy(["a"], ["a"], known)
    assert baks_only == 1.0 and math.isnan(baus_none)


def test_auroc_by_hand_with_ties() -> None:
    # positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5 -> 1/2, 0.5>0.1)
    assert metrics.auroc([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx(3.5 / 4)
    assert metrics.auroc([0.1, 0.9], [True, False]) == 0.0
    assert math.isnan(metrics.auroc([0.1, 0.2], [True, True]))


def test_reliability_bands_by_hand() -> None:
    scores = [0.05, 0.08, 0.15, 0.6, 0.95, 1.0]
    right = [False, True, False, True, True, False]
    bands = metrics.reliability(scores, right, edges=(0.0, 0.1, 0.5, 1.0))
    # [0, 0.1): 0.05, 0.08 -> mean 0.065, 1 of 2 right; [0.1, 0.5): 0.15 -> 0 of 1;
    # [0.5, 1.0] (the last band includes 1.0): 0.6, 0.95, 1.0 -> mean 0.85, 2 of 3
    assert [(b["low"], b["high"], b["n"]) for b in bands] == [(0.0, 0.1, 2), (0.1, 0.5, 1),
                                                             (0.5, 1.0, 3)]
    assert [b["mean_score"] for b in bands] == pytest.approx([0.065, 0.15, 0.85])
    assert [b["right"] for b in bands] == pytest.approx([0.5, 0.0, 2 / 3])
    # (2 x |0.065 - 0.5| + 1 x |0.15 - 0| + 3 x |0.85 - 2/3|) / 6
    assert metrics.calibration_error(bands) == pytest.approx(
        (2 * 0.435 + 0.15 + 3 * (0.85 - 2 / 3)) / 6)
    # an empty band is left out; no candidates at all give no error to report
    assert [b["low"] for b in metrics.reliability([0.05, 0.95], [False, True])] == [0.0, 0.9]
    assert metrics.reliability([], []) == [] and math.isnan(metrics.calibration_error([]))
    with pytest.raises(ValueError):
        metrics.reliability([0.5], [True, False])
    with pytest.raises(ValueError):
        metrics.reliability([0.5], [True], edges=(0.5, 0.2))
