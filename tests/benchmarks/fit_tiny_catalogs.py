"""Fit how far shown scores drop in catalogs of a handful of individuals (``size_slope_small``).

    nice -n 10 .venv/bin/python tests/benchmarks/fit_tiny_catalogs.py [--save] [--draws 12]

Why: ``fit_shown_scores.py`` fits the catalog-size shift on subsets of 10-40 identities and
holds it at its smallest catalog (``size_floor``) below that.  A new user's first catalog is
smaller still: with one to four named nyala, every other nyala of the card came up "likely
known" at 77-90 % (`wildid eval` on development manifests of one to four known and as many
unknown identities: BAUS 0 % in 8 of 9 draws).  With no other individual's photos to
compete, every query keypoint's nearest neighbours lie in the few photos there are, so LNBNN
votes and verified inliers pile up on them whoever the animal is.  Below the floor the shown
logit therefore gets ``size_slope_small * log(n / size_floor)`` more.

Data: the *database* split only.  Catalogs of 1, 2 and 4 identities (every photo of each),
``--draws`` draws each; known queries are leave-one-out inside the catalog, unknown queries
as many photos of as many other identities (half the animals of a first card are new, a
moderate guess: with one individual known, more are).  Each query's shown candidates are
recorded with the shipped shift and first-place map; the slope is fitted on them by log loss
(after the first-place map, then divided by its scale, since the identifier applies the shift
before it).  It is fitted on the even draws and reported on the odd ones, then saved fitted
on all.  The shift eases off with the first candidate's spatially verified score and is gone
at ``size_small_verified`` (:func:`fit_full`): without that, strong right matches in catalogs
of a few annotations fell under the threshold (two integration tests in
tests/integration/test_engine.py; docs/identification.md, "Catalogs of a handful of
individuals").  Each held-out line shows the scores with no small-catalog shift, the flat slope and
the eased one.

The shift corrects the shown level but leaves the verdict poor there (the default profile
called no new animal new), so the "likely new" threshold also rises below the floor
(``verdict_slope_small``, eased off by the same verified score and gone at
``verdict_small_verified``; ``Identifier.verdict_shift``).  That pair is fitted for the
verdict's balanced accuracy, as ``wildid calibrate`` chooses the threshold (:func:`fit_verdict`),
on top of the shift as saved, and every profile gets it, the default one from the others'
smallest floor.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fit_shown_scores as F  # noqa: E402

from wildid.matching.identifier import Identifier  # noqa: E402
from wildid.matching.profiles import (  # noqa: E402
    DEFAULTS_PATH,
    SpeciesProfile,
    load_profiles,
    save_profiles,
)

SIZES = (1, 2, 4)
FULL_GRID = (5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0)
VERDICT_FULL = (3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0)


def collect(name: str, species: str, draws: int) -> list[dict]:
    """One record per (catalog, query): the shown candidates' calibrated scores (no shift, no
    map) and whether each is right, ``n`` compared annotations, the threshold and ``known``."""
    return F.cached("tiny", name, species, f"{SIZES}|{draws}|raw",
                    lambda prof: _collect(prof, species, draws))


def _collect(prof: SpeciesProfile, species: str, draws: int) -> list[dict]:
    items, feats, colour, matcher = F.database(prof, species)
    photos: dict[str, list[int]] = {}
    for i, (_, ind, _) in enumerate(items):
        photos.setdefault(ind, []).append(i)
    several = sorted(ind for ind, idx in photos.items() if len(idx) > 1)
    out: list[dict] = []
    for size in SIZES:
        for draw in range(draws):
            t0 = time.perf_counter()
            rng = random.Random(f"tiny-{species}-{size}-{draw}")
            chosen = rng.sample(several, size)
            others = rng.sample(sorted(set(photos) - set(chosen)), size)
            members = [i for ind in chosen for i in photos[ind]]
            strangers = [i for ind in others for i in photos[ind]]
            strangers = rng.sample(strangers, min(len(members), len(strangers)))
            ident = F.calibrated_identifier(prof, matcher, items, feats, colour, members)
            for i, known in [(i, True) for i in members] + [(i, False) for i in strangers]:
                res = ident.identify(feats[i], top_k=F.TOP, exclude_keys={i},
                                     vectors={"colour": colour[i]})
                out.append({"size": size, "draw": draw, "species": species, "known": known,
                            "n": len(members) - (1 if known else 0), "threshold": res.threshold,
                            "p": np.array([c.score for c in res.candidates]),
                            "raw": [dict(c.raw) for c in res.candidates],
                            "y": np.array([c.individual_id == items[i][1]
                                           for c in res.candidates])})
            print(f"  {prof.name} on {species}: {size} identities draw {draw}: {len(members)} "
                  f"annotations, {len(members) + len(strangers)} queries, "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def shown(r: dict, ident: Identifier) -> tuple[np.ndarray, bool]:
    """A record's candidates as ``ident`` (a profile's identifier, not filled) shows them, its
    size shift and first-place map applied, and whether the verdict is "likely new" (against
    the threshold as ``ident`` raises it)."""
    z = F._logit(r["p"]) + ident.size_shift(r["n"], verified(r))
    raised = ident.verdict_shift(r["n"], verified(r))
    new = len(z) == 0 or z[0] < F._logit(np.array([r["threshold"]]))[0] + raised
    if ident.first_place is not None:
        z = np.array([ident.first_place.logit(v, i == 0) for i, v in enumerate(z)])
    return 1 / (1 + np.exp(-z)), bool(new)


def verified(r: dict) -> float:
    """The first candidate's spatially verified score (what the small-catalog shift eases by)."""
    return float(r["raw"][0].get("sv", 0.0)) if r["raw"] else 0.0


def shown_by(prof: SpeciesProfile, small: float, full: float = 0.0, rise: float = 0.0,
             rise_full: float = 0.0) -> Identifier:
    """The (empty) identifier ``prof`` makes with ``small`` as its small-catalog slope, eased
    off by the first candidate's verified score up to ``full``, and the "likely new"
    threshold rising by ``rise`` (eased up to ``rise_full``)."""
    return replace(prof, size_slope_small=small, size_small_verified=full,
                   verdict_slope_small=rise, verdict_small_verified=rise_full).identifier()


def fit_full(records: list[dict]) -> float:
    """Where the small-catalog shift is gone: the first of FULL_GRID at least twice the
    highest verified score a new animal's first candidate reached in ``records`` (a margin, so
    no new animal like those escapes the shift by its evidence)."""
    top = max(verified(r) for r in records if not r["known"] and len(r["p"]))
    return next((g for g in FULL_GRID if g >= 2 * top), FULL_GRID[-1])


def fit_small(records: list[dict], prof: SpeciesProfile, full: float = 0.0) -> float:
    """``size_slope_small`` by log loss over every shown candidate (Newton's method on the
    post-map slope, divided back by the map's scale), never negative; eased off by the first
    candidate's verified score up to ``full`` (0: not eased)."""
    rows = [r for r in records if len(r["p"])]
    floor = max(prof.size_floor, 1)
    ident = shown_by(prof, 0.0)
    z = F._logit(np.concatenate([shown(r, ident)[0] for r in rows]))
    eased = [1.0 if full <= 0 else max(0.0, 1.0 - verified(r) / full) for r in rows]
    x = np.concatenate([np.full(len(r["p"]), e * np.log(min(r["n"], floor) / floor))
                        for r, e in zip(rows, eased, strict=True)])
    y = np.concatenate([r["y"] for r in rows]).astype(float)
    t = F.newton_slope(z, x, y)
    scale = prof.first_place.scale if prof.first_place is not None else 1.0
    return max(t / scale, 0.0)


def balanced(records: list[dict], ident: Identifier) -> float:
    """The "likely new" verdict's balanced accuracy over ``records`` as ``ident`` gives it,
    averaged over catalog sizes: known queries called known (whatever came first, as
    ``wildid calibrate`` chooses its threshold: the reviewer still sees the candidates) and
    new ones called new."""
    values = []
    for size in SIZES:
        rows = [r for r in records if r["size"] == size and len(r["p"])]
        known = [not shown(r, ident)[1] for r in rows if r["known"]]
        new = [shown(r, ident)[1] for r in rows if not r["known"]]
        if known and new:
            values.append((np.mean(known) + np.mean(new)) / 2)
    return float(np.mean(values)) if values else 0.0


def fit_rise(records: list[dict], prof: SpeciesProfile, rise_full: float) -> float:
    """``verdict_slope_small`` for a given easing: the smallest of the best on a grid of 0 to
    4 (steps of 0.1) by the verdict's balanced accuracy, with the profile's shown-score
    shift applied first."""
    best, best_v = 0.0, balanced(records, shown_by(prof, prof.size_slope_small,
                                                   prof.size_small_verified))
    for rise in np.arange(0.1, 4.01, 0.1):
        v = balanced(records, shown_by(prof, prof.size_slope_small, prof.size_small_verified,
                                       float(rise), rise_full))
        if v > best_v + 1e-9:
            best, best_v = float(rise), v
    return round(best, 1)


def fit_verdict(records: list[dict], prof: SpeciesProfile) -> tuple[float, float]:
    """``verdict_slope_small`` and ``verdict_small_verified``: the easing (from VERDICT_FULL)
    whose slope, fitted on every other draw of ``records`` and measured on the rest and the
    other way round, holds best out of sample; then the slope at that easing fitted on all
    of them."""
    draws = sorted({r["draw"] for r in records})
    halves = [[r for r in records if draws.index(r["draw"]) % 2 == h] for h in (0, 1)]

    def held_out(rise_full: float) -> float:
        return float(np.mean([balanced(halves[1 - h], shown_by(
            prof, prof.size_slope_small, prof.size_small_verified,
            fit_rise(halves[h], prof, rise_full), rise_full)) for h in (0, 1)]))

    rise_full = max(VERDICT_FULL, key=held_out)
    return fit_rise(records, prof, rise_full), rise_full


def summary(records: list[dict], prof: SpeciesProfile, small: float, full: float = 0.0,
            rise: float = 0.0, rise_full: float = 0.0) -> str:
    rows = [r for r in records if len(r["p"])]
    ident = shown_by(prof, small, full, rise, rise_full)
    shown_rows = [shown(r, ident) for r in rows]
    p = np.concatenate([s for s, _ in shown_rows])
    y = np.concatenate([r["y"] for r in rows]).astype(float)
    known = [(s, new, r) for (s, new), r in zip(shown_rows, rows, strict=True) if r["known"]]
    unknown = [(s, new) for (s, new), r in zip(shown_rows, rows, strict=True) if not r["known"]]
    baks = np.mean([not new and bool(r["y"][0]) for _s, new, r in known])
    called = np.mean([not new for _s, new, _r in known])
    baus = np.mean([new for _s, new in unknown])
    first_known = np.mean([s[0] for s, _n, _r in known])
    first_unknown = np.mean([s[0] for s, _n in unknown])
    return (f"ECE {F._ece(p, y) * 100:4.1f}  known: first shown {first_known * 100:4.1f} %, "
            f"right and called known {baks * 100:4.1f} %  unknown: first shown "
            f"{first_unknown * 100:4.1f} %, called new {baus * 100:4.1f} %  (known called "
            f"known {called * 100:4.1f} %)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="lion,nyala,default")
    ap.add_argument("--draws", type=int, default=12)
    ap.add_argument("--save", action="store_true",
                    help=f"write each profile's size_slope_small, size_small_verified, "
                         f"verdict_slope_small and verdict_small_verified into {DEFAULTS_PATH}")
    args = ap.parse_args()
    profiles = load_profiles()
    # a profile without a size shift of its own (the default one: its fitted slope ran the
    # other way) takes the smallest floor of the others as where its small catalogs begin
    floors = [p.size_floor for p in profiles.values() if p.size_floor > 0]
    for name in args.profiles.split(","):
        # fitted from scratch, whatever an earlier --save wrote
        prof = replace(profiles[name], verdict_slope_small=0.0, verdict_small_verified=0.0)
        if prof.size_floor <= 0:
            prof = replace(prof, size_floor=min(floors))
        data = ["lion", "nyala"] if name == "default" else [name]
        records = [r for sp in data for r in collect(name, sp, args.draws)]
        halves = [[r for r in records if r["draw"] % 2 == h] for h in (0, 1)]
        for h in (0, 1):
            flat = fit_small(halves[h], prof)
            full = fit_full(halves[h])
            small = fit_small(halves[h], prof, full)
            for sp in data:
                for size in SIZES:
                    test = [r for r in halves[1 - h] if r["size"] == size and r["species"] == sp]
                    label = f"{name} on {sp}, {size} ids, held-out draws:"
                    pad = " " * len(label)
                    print(f"{label} no small shift     {summary(test, prof, 0.0)}\n"
                          f"{pad} small {flat:.3f} flat   {summary(test, prof, flat)}\n"
                          f"{pad} small {small:.3f} to {full:2.0f}  "
                          f"{summary(test, prof, small, full)}", flush=True)
        full = fit_full(records)
        small = fit_small(records, prof, full)
        # a profile with no size slope of its own (the default one) is left as it is: its
        # fitted small slope (0.546) helped on lion and hurt on one-nyala catalogs, and called
        # no new animal new either way
        keep = profiles[name].size_slope > 0
        print(f"{name}: size_slope_small {small:.3f}, gone at a verified score of {full:.0f} "
              f"(all draws; floor {prof.size_floor})" + ("" if keep else ", not applied"),
              flush=True)
        if keep:
            prof = replace(prof, size_slope_small=round(small, 4), size_small_verified=full)
        # the "likely new" threshold's rise, on top of the shown scores as saved
        small, full = prof.size_slope_small, prof.size_small_verified
        for h in (0, 1):
            rise, rise_full = fit_verdict(halves[h], prof)
            for sp in data:
                for size in SIZES:
                    test = [r for r in halves[1 - h] if r["size"] == size and r["species"] == sp]
                    label = f"{name} on {sp}, {size} ids, held-out draws:"
                    print(f"{label} as shipped  {summary(test, prof, small, full)}\n"
                          f"{' ' * len(label)} rise {rise:.1f} to {rise_full:2.0f}  "
                          f"{summary(test, prof, small, full, rise, rise_full)}", flush=True)
            before = balanced(halves[1 - h], prof.identifier())
            after = balanced(halves[1 - h], shown_by(prof, small, full, rise, rise_full))
            print(f"  verdict's balanced accuracy on the held-out draws: {before * 100:.1f} -> "
                  f"{after * 100:.1f} %", flush=True)
        rise, rise_full = fit_verdict(records, prof)
        print(f"{name}: verdict_slope_small {rise:.1f}, gone at a verified score of "
              f"{rise_full:.0f} (all draws)", flush=True)
        # the default profile's floor is where its verdict's rise starts (it has no size
        # shift of its own to start from)
        profiles[name] = replace(profiles[name], size_floor=prof.size_floor,
                                 size_slope_small=prof.size_slope_small,
                                 size_small_verified=prof.size_small_verified,
                                 verdict_slope_small=rise, verdict_small_verified=rise_full)
    if args.save:
        note = json.loads(DEFAULTS_PATH.read_text(encoding="utf-8")).get("note", "")
        save_profiles(profiles, DEFAULTS_PATH, note=note)
        print(f"wrote {DEFAULTS_PATH}")


if __name__ == "__main__":
    main()
