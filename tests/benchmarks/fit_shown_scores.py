"""Fit how a species profile's candidates are shown: the catalog-size shift and the
first-place calibration.

    nice -n 10 .venv/bin/python tests/benchmarks/fit_shown_scores.py [--save] [--every 2]

Why the size shift: the shipped calibrations were fitted on the whole database split of the
development photos (458 lion, 1186 nyala annotations).  A new user's catalog holds far fewer,
and there LNBNN's normaliser (the next-nearest descriptor, from another photo) lies farther
away, so every candidate collects more votes and every shown probability runs high: on
catalogs of 20 development identities, nyala's calibration error was 37 points and no new
individual was recognised as new.  The ranking holds; only the level moves.  So the shown
score's logit gets ``size_slope * log(n / size_reference)`` for ``n`` annotations compared
below the reference (never above it: how scores move in catalogs larger than the fit's is not
measured; below the smallest catalogs fitted, ``size_floor``, as there).

Why the first-place calibration: the calibrations are fitted on every annotation pair, and
among the shown candidates the first was right more often than its probability said (lion,
whole database: shown at 31 % on average, right 44 %), the others less often.  See
``wildid.matching.calibration.FirstPlaceCalibration``.

Data: the *database* split only (the query split stays untouched for reporting accuracy).
Random subsets of 10, 20 and 40 identities (every photo of each), several draws; inside each,
leave-one-out: every ``every``-th annotation whose individual has another photo in the subset
queries the others through the real :class:`Identifier` with the shipped profile (learned
re-ranking included).  Each query's five shown candidates, right or wrong, are the data; the
slope minimises their log loss with the shipped score as offset, then the first-place map is
fitted on the shifted scores (subsets and the whole database).  Both are fitted on half of the
draws and reported on the other half (the "held-out draws" figures); the saved ones are
fitted on all of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import research_eval as R  # noqa: E402

from wildid.matching import metrics  # noqa: E402
from wildid.matching.calibration import FirstPlaceCalibration, fit_logistic  # noqa: E402
from wildid.matching.identifier import DatabaseEntry, Identifier  # noqa: E402
from wildid.matching.profiles import (  # noqa: E402
    DEFAULTS_PATH,
    SpeciesProfile,
    load_profiles,
    save_profiles,
)

SIZES = (10, 20, 40)
TOP = 5  # candidates a query shows in the review strip's first screen
TEN_BANDS = np.linspace(0.0, 1.0, 11)


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(q / (1 - q))


def collect(name: str, species: str, sizes: tuple[int, ...], draws: int,
            every: int) -> list[dict]:
    """One record per (subset, query) of ``species``' photos through profile ``name``: the shown
    candidates' scores and whether each is right, and ``n``, the annotations compared."""
    return cached("sizes", name, species, f"{sizes}|{draws}|{every}",
                  lambda prof: _collect(prof, species, sizes, draws, every))


def cached(kind: str, name: str, species: str, key: str,
           make: Callable[[SpeciesProfile], list[dict]]) -> list[dict]:
    """``make(profile)``'s records, cached under the research cache by the profile's settings
    and calibrations and ``key`` (what else the records depend on)."""
    prof = load_profiles()[name]
    calibrations = json.dumps([prof.to_dict()[k] for k in ("calibration", "rerank_calibration")])
    tag = hashlib.sha1(f"{prof.settings_digest()}|{calibrations}|{key}"
                       .encode()).hexdigest()[:10]
    cache = R.CACHE / f"{kind}_{name}_{species}_{tag}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    out = make(prof)
    cache.write_bytes(pickle.dumps(out))
    return out


def calibrated_identifier(prof: SpeciesProfile, matcher: object, items: list, feats: list,
                          colour: np.ndarray, members: Iterable[int]) -> Identifier:
    """``prof``'s identifier holding ``members`` and showing scores at the calibrated level:
    no size shift of either kind and no first-place map, whatever an earlier --save wrote
    (the fits add those themselves), and the "likely new" threshold as calibrated (no rise)."""
    ident = prof.identifier(matcher=matcher)
    ident.size_slope, ident.size_slope_small, ident.first_place = 0.0, 0.0, None
    ident.size_slope_single = None
    ident.verdict_slope_small = 0.0
    ident.add_many(DatabaseEntry(i, items[i][1], feats[i], vectors={"colour": colour[i]})
                   for i in members)
    return ident


def database(prof: SpeciesProfile, species: str) -> tuple[list, list, np.ndarray, object]:
    """The database split's photos of ``species``, their features through ``prof`` (learned
    keypoints included), colour vectors, and the profile's matcher (None if it does not
    re-rank)."""
    from wildid.vision.registry import ModelRegistry

    items = [x for x in R.load_manifest(species) if x[2] == "database"]
    feats = R.features_for(species, R.profile_spec(prof), items)
    if prof.learned_keypoints:
        learned = R.learned_for(species, prof.learned_keypoints, prof.long_side, items)
        feats = [replace(f, learned=g) for f, g in zip(feats, learned, strict=True)]
    colour = R.colour_for(species + "_db", items)
    matcher = ModelRegistry().matcher(prof.matcher_model) if prof.reranks else None
    return items, feats, colour, matcher


def _collect(prof: SpeciesProfile, species: str, sizes: tuple[int, ...], draws: int,
             every: int) -> list[dict]:
    items, feats, colour, matcher = database(prof, species)
    identities = sorted({ind for _, ind, _ in items})
    plans = [(len(identities), 0)] + [(k, d) for k in sizes for d in range(draws)]
    out: list[dict] = []
    for size, draw in plans:
        t0 = time.perf_counter()
        chosen = set(random.Random(f"{species}-{size}-{draw}").sample(identities, size))
        members = [i for i, (_, ind, _) in enumerate(items) if ind in chosen]
        ident = calibrated_identifier(prof, matcher, items, feats, colour, members)
        count: dict[str, int] = {}
        for i in members:
            count[items[i][1]] = count.get(items[i][1], 0) + 1
        queries = [i for i in members[::every] if count[items[i][1]] > 1]
        for i in queries:
            res = ident.identify(feats[i], top_k=TOP, exclude_keys={i},
                                 vectors={"colour": colour[i]})
            out.append({"size": size, "draw": draw, "n": len(members) - 1, "species": species,
                        "p": np.array([c.score for c in res.candidates]),
                        "y": np.array([c.individual_id == items[i][1] for c in res.candidates])})
        print(f"  {prof.name} on {species}: {size} identities draw {draw}: {len(members)} annotations, "
              f"{len(queries)} queries, {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)
    return out


def with_reference(records: list[dict], reference: float) -> list[dict]:
    """``records`` with ``x`` = log(n / reference), 0 at or above it (as the identifier
    applies it)."""
    return [{**r, "x": min(float(np.log(r["n"] / reference)), 0.0)} for r in records]


def fit_slope(records: list[dict]) -> float:
    """The slope ``s`` minimising the log loss of sigmoid(logit(p) + s * x) (Newton's method)."""
    z = np.concatenate([_logit(r["p"]) for r in records])
    x = np.concatenate([np.full(len(r["p"]), r["x"]) for r in records])
    y = np.concatenate([r["y"] for r in records]).astype(float)
    return newton_slope(z, x, y)


def newton_slope(z: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """The ``s`` minimising the log loss of sigmoid(z + s * x) against ``y`` (Newton)."""
    return float(newton_weights(z, x[:, None], y)[0])


def newton_weights(z: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The ``w`` minimising the log loss of sigmoid(z + x @ w) against ``y``, one weight per
    column of ``x`` (Newton's method)."""
    w = np.zeros(x.shape[1])
    for _ in range(50):
        q = 1 / (1 + np.exp(-(z + x @ w)))
        hess = (x * (q * (1 - q))[:, None]).T @ x + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, x.T @ (q - y))
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def shown(r: dict, slope: float, first: FirstPlaceCalibration | None) -> np.ndarray:
    """A record's candidates as the identifier shows them with this slope and first-place
    calibration (Identifier._shown)."""
    z = _logit(r["p"]) + slope * r["x"]
    if first is not None:
        z = np.array([first.logit(v, i == 0) for i, v in enumerate(z)])
    return 1 / (1 + np.exp(-z))


def fit_first_place(records: list[dict], slope: float) -> FirstPlaceCalibration | None:
    """logit' = scale * logit + intercept (+ first for the first candidate), by log loss over
    every shown candidate; None when the fit would not keep the order (scale <= 0, first < 0)."""
    z = np.concatenate([_logit(r["p"]) + slope * r["x"] for r in records])
    is_first = np.concatenate([np.arange(len(r["p"])) == 0 for r in records]).astype(float)
    y = np.concatenate([r["y"] for r in records]).astype(float)
    coef, intercept = fit_logistic(np.column_stack([z, is_first]), y, l2=1e-4)
    if coef[0] <= 0 or coef[1] < 0:
        return None
    return FirstPlaceCalibration(round(float(coef[0]), 4), round(float(coef[1]), 4),
                                 round(float(intercept), 4))


def _ece(p: np.ndarray, y: np.ndarray) -> float:
    """Calibration error over ten equal score bands (finer at the top than `wildid eval`'s)."""
    return metrics.calibration_error(metrics.reliability(p, y.astype(bool), TEN_BANDS))


def summary(records: list[dict], slope: float, first: FirstPlaceCalibration | None = None) -> str:
    """Calibration error (ten equal bands, :func:`_ece`) over every shown candidate and over the
    first ones alone, and the first and the other candidates' mean shown score vs share right."""
    rows = [r for r in records if len(r["p"])]
    p = [shown(r, slope, first) for r in rows]
    y = [r["y"].astype(float) for r in rows]
    p_all, y_all = np.concatenate(p), np.concatenate(y)
    p1, y1 = np.array([a[0] for a in p]), np.array([b[0] for b in y])
    rest = np.concatenate([a[1:] for a in p]), np.concatenate([b[1:] for b in y])
    return (f"ECE {_ece(p_all, y_all) * 100:4.1f} (first {_ece(p1, y1) * 100:4.1f})  first "
            f"{p1.mean() * 100:4.1f} % vs right {y1.mean() * 100:4.1f} %, others "
            f"{rest[0].mean() * 100:4.1f} % vs {rest[1].mean() * 100:4.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="lion,nyala,default")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--save", action="store_true",
                    help=f"write each profile's size shift and first-place calibration into "
                         f"{DEFAULTS_PATH}")
    args = ap.parse_args()
    profiles = load_profiles()
    for name in args.profiles.split(","):
        data = ["lion", "nyala"] if name == "default" else [name]
        records = [r for sp in data for r in collect(name, sp, SIZES, args.draws, args.every)]
        full = {sp: max(r["n"] for r in records if r["species"] == sp) for sp in data}
        # the default profile's calibration was fitted on both whole databases at once: its
        # reference is their geometric mean
        reference = float(np.exp(np.mean(np.log(list(full.values())))))
        records = with_reference(records, reference)
        small = [r for r in records if r["n"] < full[r["species"]]]
        whole = [r for r in records if r["n"] == full[r["species"]]]
        halves = [[r for r in small if r["draw"] % 2 == h] for h in (0, 1)]
        for h in (0, 1):
            s = max(fit_slope(halves[h]), 0.0)
            f = fit_first_place(halves[h] + whole, s)
            for sp in data:
                for size in SIZES:
                    test = [r for r in halves[1 - h] if r["size"] == size and r["species"] == sp]
                    label = f"{name} on {sp}, {size:3d} ids, held-out draws:"
                    pad = " " * len(label)
                    print(f"{label} shipped          {summary(test, 0.0)}\n"
                          f"{pad} slope {s:.3f}      {summary(test, s)}\n"
                          f"{pad} + first place    {summary(test, s, f)}", flush=True)
        slope = fit_slope(small)
        first = fit_first_place(small + whole, max(slope, 0.0))
        for sp in data:
            mine = [r for r in whole if r["species"] == sp]
            label = f"{name} on {sp}, whole database:"
            pad = " " * len(label)
            print(f"{label} shipped          {summary(mine, 0.0)}\n"
                  f"{pad} + first place    {summary(mine, max(slope, 0.0), first)}", flush=True)
        print(f"{name}: slope {slope:.3f} (all draws), reference {reference:.0f} annotations, "
              f"smallest {min(r['n'] for r in small)}; first place {first}", flush=True)
        profiles[name].first_place = first
        if first is not None:
            first.info = {"fitted_on": f"{' + '.join(data)} database split: subsets of "
                          f"{', '.join(map(str, SIZES))} identities and the whole, "
                          f"leave-one-out of one annotation in {args.every}, {TOP} shown candidates each"}
        # a negative slope (scores running *low* in small catalogs, as the default profile's
        # do on both species) is not applied: the identifier only lowers scores
        keep = slope > 0
        profiles[name].size_slope = round(slope, 4) if keep else 0.0
        profiles[name].size_reference = int(round(reference)) if keep else 0
        # the smallest catalog the slope was fitted on: a smaller one gets that one's shift
        profiles[name].size_floor = min(r["n"] for r in small) if keep else 0
    if args.save:
        import json

        note = json.loads(DEFAULTS_PATH.read_text(encoding="utf-8")).get("note", "")
        save_profiles(profiles, DEFAULTS_PATH, note=note)
        print(f"wrote {DEFAULTS_PATH}")


if __name__ == "__main__":
    main()
