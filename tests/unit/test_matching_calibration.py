"""Calibration: probabilities in [0, 1], monotone in the evidence, fusion, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wildid.errors import MatchingError
from wildid.matching.calibration import (
    CalibrationModel,
    fit_calibration,
    fit_isotonic,
    fit_logistic,
)


def _pairs(rng: np.random.Generator, n: int = 400) -> tuple[list[dict[str, float]], np.ndarray]:
    y = rng.random(n) < 0.3
    lnbnn = np.where(y, rng.gamma(4.0, 2.0, n), rng.gamma(1.5, 1.0, n))
    cosine = np.where(y, rng.normal(0.6, 0.1, n), rng.normal(0.45, 0.1, n))
    return [{"lnbnn": float(a), "global": float(b)} for a, b in zip(lnbnn, cosine, strict=False)], y


def test_logistic_recovers_a_known_slope() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 1))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 0.5)))
    y = rng.random(4000) < p
    coef, intercept = fit_logistic(x, y, l2=0.0)
    assert coef[0] == pytest.approx(2.0, abs=0.2)
    assert intercept == pytest.approx(-0.5, abs=0.15)


def test_isotonic_is_pool_adjacent_violators_by_hand() -> None:
    iso = fit_isotonic(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 0.0, 1.0]))
    # 2 and 3 violate order and pool to 0.5
    assert iso(np.array([1.0, 2.0, 3.0, 4.0])).tolist() == [0.0, 0.5, 0.5, 1.0]


def test_calibrated_scores_monotone_and_bounded() -> None:
    rng = np.random.default_rng(0)
    raw, y = _pairs(rng)
    for isotonic in (False, True):
        model = fit_calibration(raw, y, transforms=["log1p", "identity"], isotonic=isotonic)
        grid = [{"lnbnn": float(v), "global": 0.5} for v in np.linspace(0, 50, 60)]
        p = model.predict(grid)
        assert np.all((p >= 0) & (p <= 1))
        assert np.all(np.diff(p) >= -1e-12)
        assert p[-1] > p[0]


def test_fusion_beats_single_source_and_missing_source_is_neutral() -> None:
    rng = np.random.default_rng(3)
    raw, y = _pairs(rng, 2000)
    both = fit_calibration(raw, y, features=["lnbnn", "global"], transforms=["log1p", "identity"])
    assert both.features == ["lnbnn", "global"]
    assert both.coef[0] > 0 and both.coef[1] > 0
    # a missing global score is filled with the typical non-match value, not counted as evidence
    p_missing = both.predict_one({"lnbnn": 8.0})
    p_high = both.predict_one({"lnbnn": 8.0, "global": 0.9})
    assert p_missing < p_high


def test_round_trip_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw, y = _pairs(rng)
    model = fit_calibration(raw, y, transforms=["log1p", "identity"], isotonic=True, threshold=0.3)
    model.save(tmp_path / "cal.json")
    loaded = CalibrationModel.load(tmp_path / "cal.json")
    assert loaded.threshold == 0.3
    np.testing.assert_allclose(loaded.predict(raw[:20]), model.predict(raw[:20]))


def test_needs_both_classes() -> None:
    with pytest.raises(MatchingError):
        fit_calibration([{"a": 1.0}, {"a": 2.0}], [True, True])


def test_evidence_never_counts_against_a_match() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    y = rng.random(n) < 0.1
    good = rng.normal(0, 1, n) + 2.0 * y
    # a copy of the good score plus noise that is *anti*-correlated with matches once the
    # good score is known: an unconstrained fit gives it a negative weight
    echo = good + rng.normal(0, 0.3, n) - 0.8 * y
    rows = [{"good": float(g), "echo": float(e)} for g, e in zip(good, echo, strict=True)]
    free = fit_calibration(rows, y, ["good", "echo"], ["identity", "identity"],
                           non_negative=False)
    assert free.coef[1] < 0
    model = fit_calibration(rows, y, ["good", "echo"], ["identity", "identity"])
    assert (model.coef >= 0).all() and model.info["dropped"] == ["echo"]
    # more evidence never lowers the probability
    p = model.predict([{"good": 1.0, "echo": 0.0}, {"good": 1.0, "echo": 5.0}])
    assert p[1] >= p[0]


def test_unbalanced_probabilities_follow_the_base_rate() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.random(n) < 0.05
    score = rng.normal(0, 1, n) + 1.5 * y
    rows = [{"s": float(v)} for v in score]
    honest = fit_calibration(rows, y, ["s"], ["identity"])
    balanced = fit_calibration(rows, y, ["s"], ["identity"], balance=True)
    assert abs(float(honest.predict(rows).mean()) - y.mean()) < 0.01
    assert float(balanced.predict(rows).mean()) > 0.3  # odds at equal priors: inflated
