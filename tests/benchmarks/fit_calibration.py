"""Fit the shipped species profiles (``wildid/matching/defaults/calibration.json``).

    nice -n 10 .venv/bin/python tests/benchmarks/fit_calibration.py [--every 3]

Uses the *database* split of ``../shared/datasets/{nyala,lion}`` only — the query split stays
untouched for reporting accuracy.  Leave-one-out inside the database: every ``every``-th
annotation queries all the others (known case) and, a second time, the database without its
whole individual (simulated new individual).  The known pairs fit the fused logistic
calibration; the best calibrated score of known vs simulated-new queries picks the threshold
that maximises (BAKS + BAUS) / 2.  Reported numbers come from 2-fold cross-validation over
individuals (calibration and threshold fitted on one half, measured on the other); the saved
model is fitted on all pairs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
from collections.abc import Hashable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import research_eval as R  # noqa: E402

from wildid.matching import metrics  # noqa: E402
from wildid.matching.calibration import CalibrationModel, fit_calibration  # noqa: E402
from wildid.matching.identifier import (  # noqa: E402
    RERANK_SOURCES,
    RERANK_TRANSFORMS,
    IdentifierConfig,
    local_score_names,
    rerank_rows,
    score_transform,
)
from wildid.matching.profiles import (  # noqa: E402
    DEFAULTS_PATH,
    SpeciesProfile,
    load_profiles,
    save_profiles,
)
from wildid.matching.projection import DescriptorProjection  # noqa: E402


def _projection_spec(file: str) -> dict[str, str]:
    """A profile's reference to a projection file in defaults/, with that file's id and sha256
    (refit it with research_projection.py --save, then rerun this script)."""
    path = DEFAULTS_PATH.parent / file
    return {"file": file, "id": DescriptorProjection.load(path).id,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


PROFILES = {
    "nyala": SpeciesProfile("nyala", ["Tragelaphus angasii", "Nyala angasii"], long_side=512,
                            max_keypoints=1000, attention_power=2.0,
                            config=IdentifierConfig(k=4, nprobe=6, rerank_top=4,
                                                    rerank_annotations=2, mirror=False,
                                                    aggregation_top=3, aggregation_odds=50.0),
                            tophat=9,
                            ridge_keypoints=1000, learned_keypoints=256,
                            matcher_model="lightglue_aliked_int8"),
    "lion": SpeciesProfile("lion", ["Panthera leo"], long_side=256, max_keypoints=1000,
                           descriptor_projection=_projection_spec("projection_lion.npz"),
                           config=IdentifierConfig(k=2, nprobe=6, photometric=True)),
}
# The profile for every other species: whole crops at 512 px, plain strongest-response keypoints
# (attention placement and descriptor projections were measured on one species each), fitted on
# the leave-one-out pairs of *both* development species run through this same pipeline, so its
# calibration has seen close-ups (lion) and full-frame photos (nyala) and belongs to the
# keypoints it scores.
DEFAULT = SpeciesProfile("default", [], long_side=512, max_keypoints=1000, attention_power=0.0,
                         config=IdentifierConfig(k=4, nprobe=6))


def sources_of(config: IdentifierConfig) -> list[str]:
    """The fused raw scores of a profile: its local ones and colour."""
    return local_score_names(config) + ["colour"]



def leave_one_out(species: str, prof: SpeciesProfile, every: int) -> list[dict]:
    """Per LOO query: its individual, raw rows when known, raw rows when its individual is new.

    Cached under the research cache folder (keyed by species, profile, stride and the scoring
    code), so refitting the calibration or the threshold rule does not recompute the raw scores.
    """
    import pickle

    c = prof.config  # what changes the raw scores (not nprobe-level speed settings)
    key = (prof.long_side, prof.max_keypoints, prof.contrast_threshold, prof.attention_power,
           prof.tophat, prof.ridge_keypoints, (prof.descriptor_projection or {}).get("sha256"),
           c.k, c.knorm, c.mirror, c.mirror_weight, c.shortlist, c.global_shortlist,
           c.sv_method, c.sv_threshold,
           *((c.photo_sigma_fine, c.photo_sigma_coarse) if c.photometric else ()))
    # and the scoring code itself: a cache from before a fix to it must not be reused
    code = hashlib.sha1(b"".join((REPO / "wildid" / "matching" / f).read_bytes()
                                 for f in ("geometry.py", "identifier.py", "local_index.py",
                                           "_ivf.py", "photometric.py"))).hexdigest()[:10]
    tag = hashlib.sha1(f"{species}|{key}|{every}|{code}".encode()).hexdigest()[:10]
    cache = R.CACHE / f"loo_{species}_{tag}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    out = _leave_one_out(species, prof, every)
    R.CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(out))
    return out


def _leave_one_out(species: str, prof: SpeciesProfile, every: int) -> list[dict]:
    items = [x for x in R.load_manifest(species) if x[2] == "database"]
    feats = R.features_for(species, R.profile_spec(prof), items)
    colour = R.colour_for(species + "_db", items)
    ident, _ = R.build(species, R.profile_spec(prof), prof.config, items, feats, {"colour": colour})
    keys_of: dict[Hashable, set[int]] = {}
    for i, (_, ind, _) in enumerate(items):
        keys_of.setdefault(ind, set()).add(i)
    out = []
    for i in range(0, len(items), every):
        ind = items[i][1]
        vec = {"colour": colour[i]}
        known = ident.raw_scores(feats[i], None, {i}, vec)
        new = ident.raw_scores(feats[i], None, keys_of[ind], vec)
        out.append({"i": i, "ind": ind, "known": known, "new": new,
                    "ids": {k: items[k][1] for k in set(known) | set(new)},
                    "alone": len(keys_of[ind]) == 1})
        if len(out) % 50 == 0:
            print(f"  {species}: {len(out)} leave-one-out queries", file=sys.stderr, flush=True)
    return out


def fit(queries: list[dict], config: IdentifierConfig) -> CalibrationModel:
    rows, labels = [], []
    for q in queries:
        if q["alone"]:
            continue  # nothing of its own left in the database
        for key, raw in q["known"].items():
            rows.append(raw)
            labels.append(q["ids"][key] == q["ind"])
    sources = sources_of(config)
    return fit_calibration(rows, labels, sources, [score_transform(f) for f in sources])


def ranking(model: CalibrationModel, raw: dict, ids: dict,
            config: IdentifierConfig) -> tuple[list, dict]:
    """The first stage's individuals, best first (aggregated as ``config`` tells the
    Identifier), and its probability per annotation."""
    if not raw:
        return [], {}
    keys = list(raw)
    scores = dict(zip(keys, model.predict([raw[k] for k in keys]).tolist(), strict=True))
    return config.aggregate(scores, ids), scores


class LearnedEvidence:
    """LightGlue's summed match confidence between two database photos (query index, key),
    on the learned keypoints the profile stores; memoised on disk under the research cache."""

    def __init__(self, species: str, prof: SpeciesProfile) -> None:
        import pickle

        from wildid.vision.registry import ModelRegistry

        items = [x for x in R.load_manifest(species) if x[2] == "database"]
        n, side = prof.learned_keypoints, prof.long_side
        self.learned = R.learned_for(species, n, side, items)
        self.matcher = ModelRegistry().matcher(prof.matcher_model)
        from wildid.engine.sources import LEARNED_POOL

        self.path = (R.CACHE / f"lgpairs_{species}_{n}of{LEARNED_POOL * n}_{side}_"
                     f"{prof.matcher_model}.pkl")
        self.memo: dict[tuple[int, int], float] = (
            pickle.loads(self.path.read_bytes()) if self.path.exists() else {})
        self._new = 0
        self._lock = threading.Lock()

    def __call__(self, i: int, key: int) -> float:
        pair = (i, key)
        if pair not in self.memo:
            _, _, conf = self.matcher.match(self.learned[i], self.learned[key])
            with self._lock:  # rerank_rows matches two pairs at a time; save() pickles the memo
                self.memo[pair] = float(conf.sum())
                self._new += 1
                if self._new % 500 == 0:
                    self.save()
                    print(f"  {len(self.memo)} LightGlue pairs", file=sys.stderr, flush=True)
        return self.memo[pair]

    def save(self) -> None:
        import pickle

        self.path.write_bytes(pickle.dumps(self.memo))


class Rerank:
    """The second stage (see Identifier._rerank) over leave-one-out queries."""

    def __init__(self, model: CalibrationModel | None, evidence: LearnedEvidence, top: int,
                 per_individual: int) -> None:
        self.model, self.evidence = model, evidence
        self.top, self.per_individual = top, per_individual

    def rows(self, q: dict, ranked: list, scores: dict) -> list[dict[str, float]]:
        """As Identifier._rerank (``scores``: the first stage's per annotation)."""
        return rerank_rows(ranked[: self.top], scores, q["ids"].__getitem__,
                           self.per_individual, lambda key: self.evidence(q["i"], key))

    def best(self, q: dict, ranked: list, scores: dict) -> tuple[Hashable | None, float]:
        """The best re-ranked individual (the rest never outrank them, as in Identifier)."""
        assert self.model is not None
        if not ranked:
            return None, 0.0
        probs = self.model.predict(self.rows(q, ranked, scores))
        j = int(np.argmax(probs))
        return ranked[j].individual_id, float(probs[j])


def fit_rerank(model: CalibrationModel, queries: list[dict], evidence: LearnedEvidence,
               config: IdentifierConfig) -> Rerank:
    """The second stage on the first stage's best ``top`` individuals of every known
    leave-one-out query: logit(first stage) and LightGlue's summed confidence."""
    rows, labels = [], []
    top = config.rerank_top
    stage = Rerank(None, evidence, top, config.rerank_annotations)
    for q in queries:
        if q["alone"]:
            continue
        ranked, scores = ranking(model, q["known"], q["ids"], config)
        rows += stage.rows(q, ranked, scores)
        labels += [r.individual_id == q["ind"] for r in ranked[:top]]
    stage.model = fit_calibration(rows, labels, RERANK_SOURCES, RERANK_TRANSFORMS)
    return stage


def best(model: CalibrationModel, raw: dict, ids: dict, config: IdentifierConfig,
         q: dict | None = None, rerank: Rerank | None = None) -> tuple[Hashable | None, float]:
    ranked, scores = ranking(model, raw, ids, config)
    if rerank is not None and q is not None:
        return rerank.best(q, ranked, scores)
    if not ranked:
        return None, 0.0
    return ranked[0].individual_id, ranked[0].score


def choose_threshold(model: CalibrationModel, queries: list[dict], config: IdentifierConfig,
                     rerank: Rerank | None = None) -> float:
    """The threshold on the best score that best separates known from new queries.

    Balanced accuracy of the "likely new" verdict itself (a known query above the threshold
    counts as right even when its top candidate is wrong: the reviewer still sees candidates).
    Maximising BAKS + BAUS instead calls *every* nyala query new, because known nyala queries
    are ranked right too rarely for any threshold to pay off on BAKS.
    """
    from wildid.engine.calibrate import choose_threshold as rule

    known = [(best(model, q["known"], q["ids"], config, q, rerank)[1], True)
             for q in queries if not q["alone"]]
    new = [best(model, q["new"], q["ids"], config, q, rerank)[1] for q in queries]
    return rule(known, new)


def evaluate(model: CalibrationModel, queries: list[dict], config: IdentifierConfig,
             rerank: Rerank | None = None) -> dict[str, float]:
    threshold = model.threshold if rerank is None else rerank.model.threshold
    preds, truths, auroc_s, auroc_y, top1 = [], [], [], [], []
    for j, q in enumerate(queries):
        if not q["alone"]:
            pred, p = best(model, q["known"], q["ids"], config, q, rerank)
            preds.append(pred if p >= threshold else None)
            truths.append(q["ind"])
            auroc_s.append(p)
            auroc_y.append(True)
            top1.append(pred == q["ind"])
        _, p_new = best(model, q["new"], q["ids"], config, q, rerank)
        preds.append(None if p_new < threshold else "someone")
        truths.append(("new", j))
        auroc_s.append(p_new)
        auroc_y.append(False)
    known = {t for t in truths if not isinstance(t, tuple)}
    baks, baus = metrics.open_set_accuracy(preds, truths, known)
    return {"loo_top1": float(np.mean(top1)), "baks": baks, "baus": baus,
            "auroc_new": metrics.auroc(auroc_s, auroc_y)}


def fit_default(every: int) -> SpeciesProfile:
    """The default profile, fitted on both species' leave-one-out pairs under its own pipeline.

    Reported numbers are leave-one-*species*-out (fitted on one species, measured on the
    other): what a user of a species wildid has no profile for can expect from it.
    """
    per_species = {sp: leave_one_out(sp, DEFAULT, every) for sp in PROFILES}
    cv = {}
    for held_out, test in per_species.items():
        train = [q for sp, qs in per_species.items() if sp != held_out for q in qs]
        model = fit(train, DEFAULT.config)
        model.threshold = choose_threshold(model, train, DEFAULT.config)
        cv[held_out] = {k: round(float(v), 4)
                        for k, v in evaluate(model, test, DEFAULT.config).items()}
    pooled = [q for qs in per_species.values() for q in qs]
    model = fit(pooled, DEFAULT.config)
    model.threshold = choose_threshold(model, pooled, DEFAULT.config)
    model.info.update({"fitted_on": f"{' + '.join(per_species)} database splits through the "
                       f"default pipeline, leave-one-out every {every}th annotation",
                       "species_held_out": cv})
    prof = SpeciesProfile.from_dict("default", DEFAULT.to_dict())
    prof.calibration = model
    prof.info = {"dev_split_note": "fitted on ../shared/datasets development photos of both "
                 "species (database splits only)"}
    print(f"default: coef {np.round(model.coef, 3).tolist()} threshold {model.threshold:.3f} "
          f"species held out {cv}", flush=True)
    return prof


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--out", default=str(DEFAULTS_PATH))
    ap.add_argument("--only", default="", help="comma list of species to refit; the other "
                    "profiles are kept as they are in --out")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    profiles: dict[str, SpeciesProfile | None] = {"default": None}
    if only:
        profiles.update(load_profiles(Path(args.out)))
    for species, prof in PROFILES.items():
        if only and species not in only:
            continue
        queries = leave_one_out(species, prof, args.every)
        inds = sorted({q["ind"] for q in queries})
        halves = [set(inds[0::2]), set(inds[1::2])]
        evidence = LearnedEvidence(species, prof) if prof.learned_keypoints > 0 else None
        cfg = prof.config
        cv, cv2 = [], []
        for a in (0, 1):
            train = [q for q in queries if q["ind"] in halves[a]]
            test = [q for q in queries if q["ind"] in halves[1 - a]]
            model = fit(train, prof.config)
            model.threshold = choose_threshold(model, train, cfg)
            cv.append(evaluate(model, test, cfg))
            if evidence is not None:
                stage = fit_rerank(model, train, evidence, cfg)
                stage.model.threshold = choose_threshold(model, train, cfg, stage)
                cv2.append(evaluate(model, test, cfg, stage))
        model = fit(queries, prof.config)
        model.threshold = choose_threshold(model, queries, cfg)
        report = {k: round(float(np.mean([c[k] for c in cv])), 4) for k in cv[0]}
        model.info.update({"fitted_on": f"{species} database split, leave-one-out every "
                           f"{args.every}th annotation", "cross_validated": report})
        prof.calibration = model
        if evidence is not None:
            stage = fit_rerank(model, queries, evidence, cfg)
            stage.model.threshold = choose_threshold(model, queries, cfg, stage)
            report2 = {k: round(float(np.mean([c[k] for c in cv2])), 4) for k in cv2[0]}
            stage.model.info.update({
                "fitted_on": f"{species} database split, the first stage's best "
                             f"{cfg.rerank_top} "
                             f"individuals of the leave-one-out queries (every {args.every}th)",
                "cross_validated": report2})
            prof.rerank_calibration = stage.model
            evidence.save()
            print(f"{species} re-ranked: coef {np.round(stage.model.coef, 3).tolist()} "
                  f"threshold {stage.model.threshold:.3f} 2-fold CV {report2}", flush=True)
        prof.info = {"dev_split_note": "tuned on ../shared/datasets development photos"}
        profiles[species] = prof
        print(f"{species}: coef {np.round(model.coef, 3).tolist()} threshold "
              f"{model.threshold:.3f} 2-fold CV {report}", flush=True)
    if not only or "default" in only:
        profiles["default"] = fit_default(args.every)
    save_profiles(profiles, Path(args.out),  # type: ignore[arg-type]
                  note="Fitted by tests/benchmarks/fit_calibration.py on the database split "
                       "only (leave-one-out within it); refit from confirmed decisions with "
                       "`wildid calibrate` (wildid.matching.calibration.fit_calibration).")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
