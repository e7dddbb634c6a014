"""Raw match scores -> P(same individual), and fusion of several score sources.

Why calibrate: raw scores (LNBNN sums, inlier counts, cosine similarities) live on unrelated
scales, so adding or rank-averaging them is arbitrary (rank averaging measurably hurt here).
A logistic regression on the *vector* of raw scores, fitted on labelled pairs (query, candidate,
same individual or not), learns how much each source is worth and yields a probability; the
"new individual" decision is then a threshold on that probability.  An isotonic map
(pool-adjacent-violators) can follow the logistic output to fix its shape without assuming one.

Each source is transformed before the fit (``log1p`` for unbounded non-negative sums, identity
for cosines); a missing source (e.g. no global embedding for this annotation) is filled with the
value it typically has for *different* individuals, so absence never counts as evidence.

Fitting data for the shipped defaults: the database split only, by cross-validation within it
(see ``tests/benchmarks/fit_calibration.py``); ``wildid calibrate`` refits from the user's
confirmed and rejected decisions with :func:`fit_calibration`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wildid.errors import MatchingError

__all__ = [
    "CalibrationModel",
    "FirstPlaceCalibration",
    "IsotonicMap",
    "fit_calibration",
    "fit_isotonic",
    "fit_logistic",
]

_TRANSFORMS = {
    "identity": lambda x: x,
    "log1p": lambda x: np.log1p(np.maximum(x, 0.0)),
    "sqrt": lambda x: np.sqrt(np.maximum(x, 0.0)),
}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, weights: np.ndarray | None = None,
                 iterations: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method: (coefficients, intercept).

    ``x`` should be standardised; the intercept is not penalised.  ``weights`` balances classes
    (e.g. many more negative than positive pairs).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n, d = x.shape
    sw = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    xa = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2 * sw.sum() / max(n, 1))
    penalty[-1] = 0.0
    for _ in range(iterations):
        z = np.clip(xa @ beta, -35, 35)
        p = 1.0 / (1.0 + np.exp(-z))
        grad = xa.T @ (sw * (p - y)) + penalty * beta
        hess = (xa * (sw * p * (1 - p))[:, None]).T @ xa + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:-1], float(beta[-1])


@dataclass
class IsotonicMap:
    """Monotone non-decreasing step map fitted by pool-adjacent-violators, linear in between."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(values, np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": [float(v) for v in self.x], "y": [float(v) for v in self.y]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Sequence[float]]) -> IsotonicMap:
        return cls(np.asarray(d["x"], np.float64), np.asarray(d["y"], np.float64))


def fit_isotonic(scores: np.ndarray, labels: np.ndarray,
                 weights: np.ndarray | None = None) -> IsotonicMap:
    """Pool-adjacent-violators: the non-decreasing fit of ``labels`` on ``scores``."""
    s = np.asarray(scores, np.float64).ravel()
    t = np.asarray(labels, np.float64).ravel()
    w = np.ones_like(s) if weights is None else np.asarray(weights, np.float64).ravel()
    if s.size == 0:
        raise MatchingError("no pairs to fit a calibration on")
    order = np.argsort(s, kind="mergesort")
    s, t, w = s[order], t[order], w[order]
    # blocks: [value, weight, x_lo, x_hi]
    vals: list[float] = []
    wts: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for si, ti, wi in zip(s, t, w, strict=False):
        vals.append(ti)
        wts.append(wi)
        lo.append(si)
        hi.append(si)
        while len(vals) > 1 and vals[-2] >= vals[-1]:
            wsum = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wsum
            wts[-2] = wsum
            hi[-2] = hi[-1]
            del vals[-1], wts[-1], lo[-1], hi[-1]
    xs, ys = [], []
    for v, a, b in zip(vals, lo, hi, strict=False):
        xs.extend([a, b] if b > a else [a])
        ys.extend([v, v] if b > a else [v])
    return IsotonicMap(np.asarray(xs), np.clip(np.asarray(ys), 0.0, 1.0))


@dataclass
class CalibrationModel:
    """Fused, calibrated P(same individual) from named raw scores.

    ``features`` names the raw score sources in order, ``transforms`` how each is mapped
    before the logistic fit, ``fill`` the value used when a source is missing.
    ``threshold``: a best candidate below it means "likely a new individual".
    """

    features: list[str]
    transforms: list[str]
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    fill: np.ndarray
    isotonic: IsotonicMap | None = None
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)

    def design(self, raw: Sequence[Mapping[str, float]] | np.ndarray) -> np.ndarray:
        """Transformed, standardised feature matrix for raw score rows (dicts or an array)."""
        if isinstance(raw, np.ndarray):
            x = np.asarray(raw, np.float64).reshape(len(raw), len(self.features))
        else:
            x = np.array([[float(r.get(f, np.nan)) for f in self.features] for r in raw],
                         np.float64).reshape(len(raw), len(self.features))
        x = x.copy()
        for j, name in enumerate(self.transforms):
            col = x[:, j]
            col[~np.isfinite(col)] = np.nan
            x[:, j] = _TRANSFORMS[name](col)
            x[np.isnan(x[:, j]), j] = self.fill[j]
        return (x - self.mean) / self.std

    def logit(self, raw: Sequence[Mapping[str, float]] | np.ndarray) -> np.ndarray:
        return self.design(raw) @ self.coef + self.intercept

    def predict(self, raw: Sequence[Mapping[str, float]] | np.ndarray) -> np.ndarray:
        """P(same individual) for each row of raw scores, in [0, 1]."""
        p = 1.0 / (1.0 + np.exp(-np.clip(self.logit(raw), -35, 35)))
        if self.isotonic is not None:
            p = self.isotonic(p)
        return np.clip(p, 0.0, 1.0)

    def predict_one(self, raw: Mapping[str, float]) -> float:
        return float(self.predict([raw])[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features, "transforms": self.transforms,
            "mean": self.mean.tolist(), "std": self.std.tolist(), "coef": self.coef.tolist(),
            "intercept": self.intercept, "fill": self.fill.tolist(),
            "isotonic": None if self.isotonic is None else self.isotonic.to_dict(),
            "threshold": self.threshold, "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationModel:
        try:
            return cls(list(d["features"]), list(d["transforms"]), np.asarray(d["mean"], float),
                       np.asarray(d["std"], float), np.asarray(d["coef"], float),
                       float(d["intercept"]), np.asarray(d["fill"], float),
                       IsotonicMap.from_dict(d["isotonic"]) if d.get("isotonic") else None,
                       float(d.get("threshold", 0.5)), dict(d.get("info", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise MatchingError(f"calibration parameters are malformed: {exc}") from exc

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> CalibrationModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MatchingError(f"cannot read calibration {path}: {exc}") from exc
        return cls.from_dict(data)


def fit_calibration(pairs_raw_scores: Sequence[Mapping[str, float]] | np.ndarray,
                    labels: Sequence[bool] | np.ndarray, features: Sequence[str] | None = None,
                    transforms: Sequence[str] | None = None, isotonic: bool = False,
                    balance: bool = False, l2: float = 1e-2,
                    threshold: float | None = None,
                    non_negative: bool = True) -> CalibrationModel:
    """Fit a :class:`CalibrationModel` on labelled pairs (True = same individual).

    ``pairs_raw_scores``: one mapping of source name -> raw score per pair (or an array whose
    columns follow ``features``).  ``balance`` weighs classes equally: the probability then reads
    as odds at equal priors, which inflates every score (a wrong candidate showed "78 %"); left
    off, it is the share of candidates with these scores that really were the same animal.
    ``non_negative``: every score source is evidence *for* a match, so a fitted negative weight
    (collinear sources, noise) is dropped and the rest refitted; otherwise more verified
    keypoints could lower a candidate's probability.  ``threshold`` defaults to 0.5.
    """
    y = np.asarray(labels, dtype=bool)
    if isinstance(pairs_raw_scores, np.ndarray):
        if features is None:
            raise MatchingError("features must name the columns of an array of scores")
        names = list(features)
        raw = np.asarray(pairs_raw_scores, np.float64).reshape(len(y), len(names))
    else:
        names = list(features) if features is not None else sorted(
            {k for r in pairs_raw_scores for k in r})
        raw = np.array([[float(r.get(f, np.nan)) for f in names] for r in pairs_raw_scores],
                       np.float64).reshape(len(y), len(names))
    if len(y) != len(raw) or y.all() or not y.any():
        raise MatchingError("calibration needs both matching and non-matching pairs")
    tnames = list(transforms) if transforms is not None else ["log1p"] * len(names)
    x = raw.copy()
    fill = np.zeros(len(names))
    for j, t in enumerate(tnames):
        col = _TRANSFORMS[t](np.where(np.isfinite(x[:, j]), x[:, j], np.nan))
        neg = col[~y & np.isfinite(col)]
        fill[j] = float(np.median(neg)) if neg.size else 0.0
        col[~np.isfinite(col)] = fill[j]
        x[:, j] = col
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-12] = 1.0
    z = (x - mean) / std
    weights = None
    if balance:
        weights = np.where(y, 0.5 / y.sum(), 0.5 / (~y).sum()) * len(y)
    active = np.ones(len(names), bool)
    while True:
        coef_a, intercept = fit_logistic(z[:, active], y, l2=l2, weights=weights)
        coef = np.zeros(len(names))
        coef[active] = coef_a
        if not non_negative or (coef >= 0).all() or active.sum() <= 1:
            break
        active[np.argmin(coef)] = False  # the most negative source goes; refit the others
    model = CalibrationModel(names, tnames, mean, std, coef, intercept, fill,
                             threshold=0.5 if threshold is None else float(threshold),
                             info={"n_pairs": int(len(y)), "n_positive": int(y.sum()),
                                   "balanced": balance,
                                   "dropped": [n for n, a in zip(names, active, strict=True)
                                               if not a]})
    if isotonic:
        p = model.predict(raw)
        model.isotonic = fit_isotonic(p, y, weights)
    return model


@dataclass
class FirstPlaceCalibration:
    """The shown candidates' probabilities re-read knowing which one came first.

    Why: the calibrations above are fitted on every annotation pair, then an individual's
    annotations are combined and the best individuals shown. Among the shown candidates the
    first was right far more often than its probability said, and the others less often (lion
    leave-one-out on the whole database split: first shown at 31 % on average, right 44 %; the
    others 5.6 % and 2.8 %). Being ranked first over everyone else is evidence the pair-wise
    fit never saw. The map ``logit' = scale * logit + intercept (+ first for the first candidate)`` is
    monotone with ``scale > 0`` and ``first >= 0``, so the order never changes, and a
    threshold on the first candidate maps through it exactly: the verdict stays the same.
    """

    scale: float = 1.0
    first: float = 0.0
    intercept: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def logit(self, logit: float, is_first: bool) -> float:
        return self.scale * logit + self.intercept + (self.first if is_first else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "first": self.first, "intercept": self.intercept,
                "info": self.info}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FirstPlaceCalibration:
        try:
            out = cls(float(d["scale"]), float(d["first"]), float(d["intercept"]),
                      dict(d.get("info", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise MatchingError(f"first-place calibration is malformed: {exc}") from exc
        if out.scale <= 0 or out.first < 0:
            raise MatchingError("first-place calibration needs scale > 0 and first >= 0 (it "
                                "must keep the candidates' order)")
        return out
