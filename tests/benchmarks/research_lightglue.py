"""Research: does LightGlue (on ALIKED keypoints) re-rank the shipped top-K better? (not a test)

    nice -n 10 .venv/bin/python tests/benchmarks/research_lightglue.py --species nyala \
        --keypoints 512 --top 5

Steps, each cached under /tmp/wildid_research:

1. the shipped profile's ranking of every development query (top ``--rank`` individuals, with
   each one's best-matching database annotation);
2. ALIKED-n16 keypoints for every photo (and for each query's mirror image), ``3 x
   --keypoints`` detected and the best ``--keypoints`` kept by score x attention^2 of the
   re-id model, the placement the nyala SIFT channels use;
3. LightGlue between each query and the best annotation of each of its ``--top`` candidates
   (plain, and with ``--mirror`` the mirrored query too): matches, their summed confidence,
   and MAGSAC homography inliers among them.

Then each candidate's logit(calibrated score) + alpha x log1p(LightGlue evidence) re-ranks the
top ``--top``; alpha is chosen on one half of the query identities and applied to the other
(2-fold), so the figure is not tuned on the queries it reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import research_eval as R  # noqa: E402

from wildid.matching.features import attention_at  # noqa: E402
from wildid.matching.profiles import load_profiles  # noqa: E402
from wildid.vision.keypoints import LocalFeatures as KeyFeatures  # noqa: E402
from wildid.vision.registry import ModelRegistry  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
POOL = 512  # ALIKED keypoints cached per photo; --keypoints takes the best of them
EVIDENCE = ("matches", "confidence", "inliers")


def _cached(name: str, make):  # type: ignore[no-untyped-def]
    path = R.CACHE / name
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    R.CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def shipped_ranking(species: str, db: list, qs: list, top: int) -> list[list[tuple]]:
    """Per query: (individual, calibrated score, best annotation index) of the top candidates."""
    prof = load_profiles()[species]
    feats = R.features_for(species, R.profile_spec(prof), db + qs)
    colour = R.colour_for(species, db + qs)
    ident = prof.identifier()
    for i, (_, identity, _) in enumerate(db):
        ident.add(i, identity, feats[i], vectors={"colour": colour[i]})
    out = []
    for j in range(len(qs)):
        res = ident.identify(feats[len(db) + j], top_k=top,
                             vectors={"colour": colour[len(db) + j]})
        out.append([(c.individual_id, c.score, c.best_key) for c in res.candidates])
        if j % 50 == 0:
            print(f"  shipped ranking {j}/{len(qs)}", file=sys.stderr, flush=True)
    return out


def aliked_features(db: list, qs: list, n: int, side: int) -> dict[str, list[KeyFeatures]]:
    registry = ModelRegistry()
    aliked = registry.keypoint_extractor("aliked_n16")
    reid = registry.embedder("reid_lite0_nyala_lion")

    def extract(img: np.ndarray) -> KeyFeatures:
        att = reid.attention([img])[0]
        f = aliked.extract(img, max_keypoints=3 * n, max_side=side)
        weight = f.scores * attention_at(att, f.xy, img.shape[:2]) ** 2
        keep = np.argsort(-weight, kind="stable")[:n]
        return KeyFeatures(f.xy[keep], f.scores[keep], f.descriptors[keep], f.image_size)

    out: dict[str, list[KeyFeatures]] = {"db": [], "q": [], "qm": []}
    t0 = time.perf_counter()
    for i, (p, _, _) in enumerate(db):
        out["db"].append(extract(R.read_rgb(p)))
        if i % 200 == 0:
            print(f"  aliked {i}/{len(db)}", file=sys.stderr, flush=True)
    for p, _, _ in qs:
        img = R.read_rgb(p)
        out["q"].append(extract(img))
        out["qm"].append(extract(np.ascontiguousarray(img[:, ::-1])))
    n_img = len(db) + 2 * len(qs)
    print(f"  aliked + attention: {(time.perf_counter() - t0) / n_img * 1000:.0f} ms/image",
          file=sys.stderr)
    return out


def lightglue_evidence(ranking: list[list[tuple]], feats: dict[str, list[KeyFeatures]],
                       top: int, mirror: bool) -> tuple[list[list[tuple]], float]:
    """Per query and candidate: (matches, confidence sum, homography inliers), best of the
    plain and (with ``mirror``) the mirrored query; and seconds per pair."""
    matcher = ModelRegistry().matcher()

    def one(q: KeyFeatures, d: KeyFeatures) -> tuple[int, float, int]:
        i0, i1, conf = matcher.match(q, d)
        inliers = 0
        if len(i0) >= 8:
            _, mask = cv2.findHomography(q.xy[i0], d.xy[i1], cv2.USAC_MAGSAC,
                                         0.02 * max(d.image_size))
            inliers = int(mask.sum()) if mask is not None else 0
        return len(i0), float(conf.sum()), inliers

    out, pairs, t0 = [], 0, time.perf_counter()
    for j, cands in enumerate(ranking):
        row = []
        for _, _, key in cands[:top]:
            ev = one(feats["q"][j], feats["db"][key])
            pairs += 1
            if mirror:
                ev = tuple(max(a, b) for a, b in zip(ev, one(feats["qm"][j], feats["db"][key]),
                                                     strict=True))
                pairs += 1
            row.append(ev)
        out.append(row)
    return out, (time.perf_counter() - t0) / max(pairs, 1)


def reranked(cands: list[tuple], evidence: list[tuple], alpha: float, which: int) -> list:
    p = np.clip(np.array([c[1] for c in cands], float), 1e-6, 1 - 1e-6)
    score = np.log(p / (1 - p))
    n = len(evidence)
    score[:n] += alpha * np.log1p(np.array([e[which] for e in evidence], float))
    order = list(np.argsort(-score[:n], kind="stable")) + list(range(n, len(cands)))
    return [cands[i][0] for i in order]


def accuracy(js: list[int], truth: list[str], ranking: list, evidence: list, alpha: float,
             which: int) -> tuple[float, float]:
    ranks = [reranked(ranking[j], evidence[j], alpha, which) for j in js]
    top1 = float(np.mean([r[:1] == [truth[j]] for r, j in zip(ranks, js, strict=True)]))
    top5 = float(np.mean([truth[j] in r[:5] for r, j in zip(ranks, js, strict=True)]))
    return top1, top5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--species", default="nyala")
    ap.add_argument("--keypoints", type=int, default=512, help="ALIKED keypoints per photo")
    ap.add_argument("--side", type=int, default=512, help="ALIKED working size (long side)")
    ap.add_argument("--top", type=int, default=5, help="candidates re-ranked per query")
    ap.add_argument("--rank", type=int, default=10, help="candidates kept from the ranking")
    ap.add_argument("--mirror", action="store_true", help="also match the mirrored query")
    args = ap.parse_args()
    if not 0 < args.keypoints <= POOL:
        ap.error(f"--keypoints must be 1..{POOL} (the cached ALIKED features hold {POOL})")
    items = R.load_manifest(args.species)
    db = [x for x in items if x[2] == "database"]
    qs = [x for x in items if x[2] == "query"]
    truth = [identity for _, identity, _ in qs]
    # the ranking depends on the whole profile (settings and calibration), not just its features
    profile = json.dumps(load_profiles()[args.species].to_dict(), sort_keys=True)
    key = hashlib.sha1(profile.encode()).hexdigest()[:8]
    ranking = _cached(f"lg_rank_{args.species}_{key}_{args.rank}.pkl",
                      lambda: shipped_ranking(args.species, db, qs, args.rank))
    # keypoints are kept best first, so a smaller budget is a prefix of a larger one's
    feats = _cached(f"lg_aliked_{args.species}_{args.side}.pkl",
                    lambda: aliked_features(db, qs, POOL, args.side))
    feats = {k: [KeyFeatures(f.xy[:args.keypoints], f.scores[:args.keypoints],
                             f.descriptors[:args.keypoints], f.image_size) for f in v]
             for k, v in feats.items()}
    evidence, per_pair = _cached(
        f"lg_ev_{args.species}_{key}_{args.side}_{args.keypoints}_{args.top}_{args.mirror}.pkl",
        lambda: lightglue_evidence(ranking, feats, args.top, args.mirror))
    everyone = list(range(len(qs)))
    t1, t5 = accuracy(everyone, truth, ranking, evidence, 0.0, 0)
    print(f"shipped ranking: top-1 {t1 * 100:.1f} %, top-5 {t5 * 100:.1f} % ({len(qs)} queries); "
          f"LightGlue {per_pair * 1000:.0f} ms per pair, {args.keypoints} keypoints")
    ids = sorted(set(truth))
    np.random.default_rng(0).shuffle(ids)
    fold = {t: i % 2 for i, t in enumerate(ids)}
    for which, name in enumerate(EVIDENCE):
        hits1, hits5, chosen = [], [], []
        for f in (0, 1):
            train = [j for j in everyone if fold[truth[j]] != f]
            test = [j for j in everyone if fold[truth[j]] == f]
            alpha = max(ALPHAS, key=lambda a, tr=train, w=which:
                        accuracy(tr, truth, ranking, evidence, a, w)[0])
            chosen.append(alpha)
            a1, a5 = accuracy(test, truth, ranking, evidence, alpha, which)
            hits1.append(a1 * len(test))
            hits5.append(a5 * len(test))
        print(f"  + {name:<10} (alpha {chosen[0]:g} / {chosen[1]:g}, 2-fold over identities): "
              f"top-1 {sum(hits1) / len(qs) * 100:.1f} %, top-5 {sum(hits5) / len(qs) * 100:.1f} %")


if __name__ == "__main__":
    main()
