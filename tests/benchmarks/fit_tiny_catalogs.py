"""Fit how far shown scores drop in catalogs of a handful of individuals (``size_slope_small``,
``size_slope_single``) and how far the "likely new" threshold rises there.

    nice -n 10 .venv/bin/python tests/benchmarks/fit_tiny_catalogs.py [--save] [--draws 8]

Why: ``fit_shown_scores.py`` fits the catalog-size shift on subsets of 10-40 identities and
holds it at its smallest catalog (``size_floor``) below that.  A new user's first catalog is
smaller still: with one to four named nyala, every other nyala of the card came up "likely
known" at 77-90 % (`wildid eval` on development manifests of one to four known and as many
unknown identities: BAUS 0 % in 8 of 9 draws).  With no other individual's photos to
compete, every query keypoint's nearest neighbours lie in the few photos there are, so LNBNN
votes and verified inliers pile up on them.  Below the floor the shown logit therefore gets
``size_slope_small * log(n / size_floor)`` more, and ``size_slope_single`` instead for a
candidate compared through one photo: several photos that each match a little combine into
a high score (nyala multiplies their odds), one photo does not.

Data: the *database* split only.  Three kinds of first catalog (``REGIMES``), ``--draws``
draws per size: every photo of 1, 2 or 4 identities (known queries leave-one-out inside the
catalog); "mixed", 2, 4 or 8 identities with a random one to all-but-one of their photos
(known queries: up to three of the photos left out); "singles", 2 to 16 identities with one
photo each (up to three of their other photos).  Unknown queries are as many photos of as
many other identities (half the animals of a first card are new, a moderate guess: with one
individual known, more are).  Each query's shown candidates are recorded with how many of
each candidate's photos were compared; both slopes are fitted on them by log loss (after the
first-place map, then divided by its scale, since the identifier applies the shift before
it), neither below 0.  They are fitted on the even draws and reported on the odd ones, then
saved fitted on all.  The shift eases off with the first candidate's spatially verified score
and is gone at ``size_small_verified`` (:func:`fit_full`): without that, strong right matches
in catalogs of a few annotations fell under the threshold (two integration tests in
tests/integration/test_engine.py; docs/identification.md, "Catalogs of a handful of
individuals" and "One photo or several").  Each held-out line shows the scores with no
small-catalog shift, as shipped, with one slope for all and with the slope by photos.

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

# the catalogs a first user builds, and the sizes (identities) of each kind: every photo of a
# handful of identities ("tiny", queries leave-one-out); a random one to all-but-one of each
# identity's photos ("mixed", queries from the photos left out); one photo of each ("singles",
# as when every animal is named from one photo, queries from its others)
REGIMES = {"tiny": (1, 2, 4), "mixed": (2, 4, 8), "singles": (2, 4, 8, 16)}
PER_IDENTITY = 3  # known queries per identity in the mixed and singles catalogs
FULL_GRID = (5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0)
VERDICT_FULL = (3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0)


def collect(name: str, species: str, draws: int) -> list[dict]:
    """One record per (catalog, query): the shown candidates' calibrated scores (no shift, no
    map), whether each is right and how many photos of it the query was compared with
    (``m``), ``n`` compared annotations, the threshold, ``known`` and the ``regime``."""
    return F.cached("tiny", name, species, f"{REGIMES}|{PER_IDENTITY}|{draws}|raw|m",
                    lambda prof: _collect(prof, species, draws))


def _collect(prof: SpeciesProfile, species: str, draws: int) -> list[dict]:
    items, feats, colour, matcher = F.database(prof, species)
    photos: dict[str, list[int]] = {}
    for i, (_, ind, _) in enumerate(items):
        photos.setdefault(ind, []).append(i)
    several = sorted(ind for ind, idx in photos.items() if len(idx) > 1)
    out: list[dict] = []
    for regime, sizes in REGIMES.items():
        for size in sizes:
            for draw in range(draws):
                t0 = time.perf_counter()
                rng = random.Random(f"{regime}-{species}-{size}-{draw}")
                chosen = rng.sample(several, size)
                others = rng.sample(sorted(set(photos) - set(chosen)), size)
                members, known = _catalog(regime, chosen, photos, rng)
                strangers = [i for ind in others for i in photos[ind]]
                strangers = rng.sample(strangers, min(len(known), len(strangers)))
                ident = F.calibrated_identifier(prof, matcher, items, feats, colour, members)
                for i, is_known in [(i, True) for i in known] + [(i, False) for i in strangers]:
                    res = ident.identify(feats[i], top_k=F.TOP, exclude_keys={i},
                                         vectors={"colour": colour[i]})
                    count: dict[str, int] = {}
                    for j in members:
                        if j != i:
                            count[items[j][1]] = count.get(items[j][1], 0) + 1
                    out.append({"regime": regime, "size": size, "draw": draw,
                                "species": species, "known": is_known,
                                "n": sum(count.values()), "threshold": res.threshold,
                                "p": np.array([c.score for c in res.candidates]),
                                "m": np.array([count.get(c.individual_id, 0)
                                               for c in res.candidates]),
                                "raw": [dict(c.raw) for c in res.candidates],
                                "y": np.array([c.individual_id == items[i][1]
                                               for c in res.candidates])})
                print(f"  {prof.name} on {species}: {regime} {size} identities draw {draw}: "
                      f"{len(members)} annotations, {len(known) + len(strangers)} queries, "
                      f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def _catalog(regime: str, chosen: list[str], photos: dict[str, list[int]],
             rng: random.Random) -> tuple[list[int], list[int]]:
    """The catalog's annotations and the known queries for one draw of ``regime``."""
    if regime == "tiny":
        members = [i for ind in chosen for i in photos[ind]]
        return members, members
    members, known = [], []
    for ind in chosen:
        idx = photos[ind][:]
        rng.shuffle(idx)
        kept = 1 if regime == "singles" else rng.randint(1, len(idx) - 1)
        members += idx[:kept]
        known += idx[kept:kept + PER_IDENTITY]
    return members, known


def shown(r: dict, ident: Identifier) -> tuple[np.ndarray, np.ndarray, bool]:
    """A record's candidates as ``ident`` (a profile's identifier, not filled) shows them: the
    shown scores best first (each size shift applied, then the first-place map), whether
    each of them is right in that order, and whether the verdict is "likely new" (against
    the threshold as ``ident`` raises it)."""
    n, sv = r["n"], verified(r)
    shifts = [ident.size_shift(n, sv, int(m)) for m in r["m"]]
    order, values, threshold = ident.shown(r["p"], shifts, r["threshold"],
                                           ident.verdict_shift(n, sv))
    p = np.array(values)
    return p, r["y"][order], bool(len(p) == 0 or p[0] < threshold)


def verified(r: dict) -> float:
    """The first candidate's spatially verified score (what the small-catalog shift eases by)."""
    return float(r["raw"][0].get("sv", 0.0)) if r["raw"] else 0.0


def shown_by(prof: SpeciesProfile, small: float, full: float = 0.0, rise: float = 0.0,
             rise_full: float = 0.0, single: float | None = None) -> Identifier:
    """The (empty) identifier ``prof`` makes with ``small`` as its small-catalog slope
    (``single`` for candidates with one photo, None: the same), eased off by the first
    candidate's verified score up to ``full``, and the "likely new" threshold rising by
    ``rise`` (eased up to ``rise_full``)."""
    return replace(prof, size_slope_small=small, size_small_verified=full,
                   verdict_slope_small=rise, verdict_small_verified=rise_full,
                   size_slope_single=single).identifier()


def as_shipped(prof: SpeciesProfile) -> Identifier:
    """``shown_by`` with ``prof``'s own shift, with no rise of the threshold."""
    return shown_by(prof, prof.size_slope_small, prof.size_small_verified,
                    single=prof.size_slope_single)


def fit_full(records: list[dict]) -> float:
    """Where the small-catalog shift is gone: the first of FULL_GRID at least twice the
    highest verified score a new animal's first candidate reached in ``records`` (a margin, so
    no new animal like those escapes the shift by its evidence)."""
    top = max(verified(r) for r in records if not r["known"] and len(r["p"]))
    return next((g for g in FULL_GRID if g >= 2 * top), FULL_GRID[-1])


def fit_shift(records: list[dict], prof: SpeciesProfile) -> tuple[float, float, float]:
    """``size_slope_small``, ``size_slope_single`` and ``size_small_verified`` fitted on
    ``records``. Where candidates with a single photo get no shift (their slope fits to 0),
    the new animals whose first candidate has one photo say nothing about where the shift
    must be gone, so ``fit_full`` looks only at the others (in nyala catalogs of one photo
    per animal a new animal's single-photo first candidate reached a verified score of 23,
    which alone would have kept the shift on every strong match up to 60)."""
    full = fit_full(records)
    multi, single = fit_small(records, prof, full)
    several = [r for r in records if len(r["p"]) and r["m"][0] >= 2]
    if single == 0.0 and any(not r["known"] for r in several):
        full = fit_full(several)
        multi, single = fit_small(records, prof, full)
    return multi, single, full


def holds_across_species(records: list[dict], prof: SpeciesProfile) -> bool:
    """Whether the small-catalog shift, fitted on all species of ``records`` but one, lowers
    the log loss of that one's shown candidates against no small-catalog shift, for each of
    them in turn (printed as it goes)."""
    species = sorted({r["species"] for r in records})
    for sp in species:
        train = [r for r in records if r["species"] != sp]
        test = [r for r in records if r["species"] == sp]
        multi, single, full = fit_shift(train, prof)
        without = log_loss(test, shown_by(prof, 0.0))
        fitted = log_loss(test, shown_by(prof, multi, full, single=single))
        print(f"  {prof.name}: fitted without {sp} ({multi:.3f} / single {single:.3f}, gone at "
              f"{full:.0f}), log loss on {sp}: no small shift {without:.4f}, fitted "
              f"{fitted:.4f}", flush=True)
        if fitted >= without:
            return False
    return len(species) > 1


def fit_small(records: list[dict], prof: SpeciesProfile, full: float = 0.0,
              by_photos: bool = True) -> tuple[float, float]:
    """``size_slope_small`` (candidates with several photos compared) and the slope for
    candidates with one (``size_slope_single``), by log loss over every shown candidate
    (Newton's method on the post-map slopes, divided back by the map's scale), neither
    negative; eased off by the first candidate's verified score up to ``full`` (0: not
    eased). ``by_photos=False`` fits one slope for all (returned twice)."""
    rows = [r for r in records if len(r["p"])]
    floor = max(prof.size_floor, 1)
    ident = shown_by(prof, 0.0)  # the shift above the floor and the first-place map alone
    z = F._logit(np.concatenate([shown(r, ident)[0] for r in rows]))
    eased = [1.0 if full <= 0 else max(0.0, 1.0 - verified(r) / full) for r in rows]
    x = np.concatenate([np.full(len(r["p"]), e * np.log(min(r["n"], floor) / floor))
                        for r, e in zip(rows, eased, strict=True)])
    y = np.concatenate([r["y"] for r in rows]).astype(float)
    scale = prof.first_place.scale if prof.first_place is not None else 1.0
    if not by_photos:
        one = max(F.newton_slope(z, x, y), 0.0) / scale
        return one, one
    # the two slopes, each clamped at 0 (a tiny catalog never raises a score above its
    # calibration): fit both, and where one comes out negative, fix it at 0 and refit the other
    single = np.concatenate([r["m"] == 1 for r in rows])
    cols = np.stack([x * ~single, x * single], axis=1)
    w = F.newton_weights(z, cols, y)
    for j in (0, 1):
        if w[j] < 0:
            w[j] = 0.0
            w[1 - j] = max(F.newton_slope(z, cols[:, 1 - j], y), 0.0)
    return max(w[0], 0.0) / scale, max(w[1], 0.0) / scale


def groups(records: list[dict]) -> list[tuple[str, int]]:
    """The (regime, size) pairs ``records`` hold, in REGIMES order."""
    have = {(r["regime"], r["size"]) for r in records}
    return [(g, s) for g, sizes in REGIMES.items() for s in sizes if (g, s) in have]


def balanced(records: list[dict], ident: Identifier) -> float:
    """The "likely new" verdict's balanced accuracy over ``records`` as ``ident`` gives it,
    averaged over the kinds and sizes of catalog: known queries called known (whatever came
    first, as ``wildid calibrate`` chooses its threshold: the reviewer still sees the
    candidates) and new ones called new."""
    values = []
    for regime, size in groups(records):
        rows = [r for r in records if r["regime"] == regime and r["size"] == size
                and len(r["p"])]
        known = [not shown(r, ident)[2] for r in rows if r["known"]]
        new = [shown(r, ident)[2] for r in rows if not r["known"]]
        if known and new:
            values.append((np.mean(known) + np.mean(new)) / 2)
    return float(np.mean(values)) if values else 0.0


def fit_rise(records: list[dict], prof: SpeciesProfile, rise_full: float) -> float:
    """``verdict_slope_small`` for a given easing: the smallest of the best on a grid of 0 to
    4 (steps of 0.1) by the verdict's balanced accuracy, with the profile's shown-score
    shift applied first."""
    best, best_v = 0.0, balanced(records, as_shipped(prof))
    for rise in np.arange(0.1, 4.01, 0.1):
        v = balanced(records, shown_by(prof, prof.size_slope_small, prof.size_small_verified,
                                       float(rise), rise_full, prof.size_slope_single))
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
            fit_rise(halves[h], prof, rise_full), rise_full, prof.size_slope_single))
            for h in (0, 1)]))

    rise_full = max(VERDICT_FULL, key=held_out)
    return fit_rise(records, prof, rise_full), rise_full


def summary(records: list[dict], ident: Identifier) -> str:
    """How ``ident`` shows ``records``: the calibration error over every shown candidate and
    over first candidates, the first candidates' mean shown score against how often they
    are right, and the verdict on known and new animals."""
    rows = [r for r in records if len(r["p"])]
    if not rows:
        return "no queries"
    seen = [shown(r, ident) for r in rows]
    p, y = np.concatenate([s[0] for s in seen]), np.concatenate([s[1] for s in seen])
    first_p = np.array([s[0][0] for s in seen])
    first_y = np.array([s[1][0] for s in seen], dtype=float)
    known = [s for s, r in zip(seen, rows, strict=True) if r["known"]]
    new = [s for s, r in zip(seen, rows, strict=True) if not r["known"]]
    top1 = np.mean([bool(s[1][0]) for s in known]) if known else float("nan")
    called = np.mean([not s[2] for s in known]) if known else float("nan")
    baus = np.mean([s[2] for s in new]) if new else float("nan")
    return (f"ECE {F._ece(p, y.astype(float)) * 100:4.1f} (first {F._ece(first_p, first_y) * 100:4.1f})"
            f"  first shown {first_p.mean() * 100:4.1f} %, right {first_y.mean() * 100:4.1f} %"
            f"  known: first right {top1 * 100:4.1f} %, called known {called * 100:4.1f} %"
            f"  new called new {baus * 100:4.1f} %")


def log_loss(records: list[dict], ident: Identifier) -> float:
    """Mean log loss of every shown candidate of ``records`` as ``ident`` shows them."""
    seen = [shown(r, ident) for r in records if len(r["p"])]
    p = np.clip(np.concatenate([s[0] for s in seen]), 1e-6, 1 - 1e-6)
    y = np.concatenate([s[1] for s in seen]).astype(float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="lion,nyala,default")
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--save", action="store_true",
                    help=f"write each profile's size_slope_small, size_slope_single, "
                         f"size_small_verified, verdict_slope_small and "
                         f"verdict_small_verified into {DEFAULTS_PATH}")
    args = ap.parse_args()
    profiles = load_profiles()
    # a profile without a size shift of its own (the default one: its fitted slope ran the
    # other way) takes the smallest floor of the others as where its small catalogs begin
    floors = [p.size_floor for p in profiles.values() if p.size_floor > 0]
    for name in args.profiles.split(","):
        shipped = profiles[name]
        # fitted from scratch, whatever an earlier --save wrote
        prof = replace(shipped, verdict_slope_small=0.0, verdict_small_verified=0.0)
        if prof.size_floor <= 0:
            prof = replace(prof, size_floor=min(floors))
        data = ["lion", "nyala"] if name == "default" else [name]
        records = [r for sp in data for r in collect(name, sp, args.draws)]
        halves = [[r for r in records if r["draw"] % 2 == h] for h in (0, 1)]
        for h in (0, 1):
            multi, single, full = fit_shift(halves[h], prof)
            one, _ = fit_small(halves[h], prof, full, by_photos=False)
            fits = {"no small shift": shown_by(prof, 0.0),
                    "as shipped": as_shipped(shipped),
                    f"one slope {one:.3f}": shown_by(prof, one, full),
                    f"{multi:.3f} / single {single:.3f}": shown_by(prof, multi, full,
                                                                 single=single)}
            print(f"{name}, fitted on draws {'odd' if h else 'even'} (gone at {full:.0f}), "
                  f"log loss on the others: " + ", ".join(
                      f"{k} {log_loss(halves[1 - h], v):.4f}" for k, v in fits.items()),
                  flush=True)
            for sp in data:
                for regime, size in groups(halves[1 - h]):
                    test = [r for r in halves[1 - h] if r["regime"] == regime
                            and r["size"] == size and r["species"] == sp]
                    label = f"  {name} on {sp}, {regime} {size}:"
                    for k, v in fits.items():
                        print(f"{label:28s} {k:22s} {summary(test, v)}", flush=True)
                        label = ""
        multi, single, full = fit_shift(records, prof)
        # a profile with no size slope of its own (the default one, for species nothing was
        # measured on) gets the small-catalog shift only if, fitted on the other species, it
        # shows each species' first catalogs better than no shift does (in the fifteenth
        # session, on every photo of one to four animals alone, it did not: 0.546 helped on
        # lion and hurt on one-nyala catalogs)
        keep = shipped.size_slope > 0 or holds_across_species(records, prof)
        print(f"{name}: size_slope_small {multi:.3f}, for a single photo {single:.3f}, gone at "
              f"a verified score of {full:.0f} (all draws; floor {prof.size_floor})"
              + ("" if keep else ", not applied"), flush=True)
        if keep:
            prof = replace(prof, size_slope_small=round(multi, 4), size_small_verified=full,
                           size_slope_single=None if round(single, 4) == round(multi, 4)
                           else round(single, 4))
        # the "likely new" threshold's rise, on top of the shown scores as saved
        for h in (0, 1):
            rise, rise_full = fit_verdict(halves[h], prof)
            raised = shown_by(prof, prof.size_slope_small, prof.size_small_verified, rise,
                              rise_full, prof.size_slope_single)
            for sp in data:
                for regime, size in groups(halves[1 - h]):
                    test = [r for r in halves[1 - h] if r["regime"] == regime
                            and r["size"] == size and r["species"] == sp]
                    label = f"  {name} on {sp}, {regime} {size}:"
                    print(f"{label:28s} {'shipped':22s} {summary(test, shipped.identifier())}\n"
                          f"{'':28s} {f'rise {rise:.1f} to {rise_full:.0f}':22s} "
                          f"{summary(test, raised)}", flush=True)
            before = balanced(halves[1 - h], shipped.identifier())
            after = balanced(halves[1 - h], raised)
            print(f"  verdict's balanced accuracy on the held-out draws: {before * 100:.1f} -> "
                  f"{after * 100:.1f} %", flush=True)
        rise, rise_full = fit_verdict(records, prof)
        print(f"{name}: verdict_slope_small {rise:.1f}, gone at a verified score of "
              f"{rise_full:.0f} (all draws)", flush=True)
        # the default profile's floor is where its verdict's rise starts (it has no size
        # shift of its own to start from)
        profiles[name] = replace(shipped, size_floor=prof.size_floor,
                                 size_slope_small=prof.size_slope_small,
                                 size_slope_single=prof.size_slope_single,
                                 size_small_verified=prof.size_small_verified,
                                 verdict_slope_small=rise, verdict_small_verified=rise_full)
    if args.save:
        note = json.loads(DEFAULTS_PATH.read_text(encoding="utf-8")).get("note", "")
        save_profiles(profiles, DEFAULTS_PATH, note=note)
        print(f"wrote {DEFAULTS_PATH}")


if __name__ == "__main__":
    main()
