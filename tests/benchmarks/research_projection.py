"""Research: a learned linear projection of RootSIFT, trained on the database split (not a test).

    nice -n 10 .venv/bin/python tests/benchmarks/research_projection.py --species lion

Positive descriptor pairs are the spatially verified inliers between photos of the *same*
individual in the database split (ratio test 0.9 + similarity verification, plain and mirrored).
The projection whitens the difference of positive pairs (intra-class covariance), then rotates
onto the principal axes of all database descriptors (Mikolajczyk & Matas' optimal linear
projection), optionally rescaled by ``eigenvalue^-(1 - power) / 2``.  Both covariances are made
symmetric under the SIFT mirror permutation, so mirroring a projected descriptor is a per-
component sign flip (printed as a check).  LNBNN then runs through the app's own index
(raw vs projected, mirror off, same code), queries never used for training.

Results (2026-12-02) are in docs/identification.md.  ``--save projection_lion.npz`` writes the
file the lion profile ships (``wildid/matching/defaults``; deterministic for the same features)
and prints the id and sha256 to put into the profile (``fit_calibration.py`` then refits it).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import research_eval as R  # noqa: E402

from wildid.matching.features import LocalFeatures, _mirror_permutation  # noqa: E402
from wildid.matching.geometry import match_descriptors, verify  # noqa: E402
from wildid.matching.identifier import Identifier, IdentifierConfig, _mirrored  # noqa: E402
from wildid.matching.profiles import DEFAULTS_PATH  # noqa: E402
from wildid.matching.projection import DescriptorProjection  # noqa: E402

SPECS = {"lion": ("sift:L=256:N=1000:C=0.02", 2), "nyala": ("sift:L=512:N=1000:C=0.02:A=2", 4)}


def positive_pairs(db: list, feats: list[LocalFeatures]) -> tuple[np.ndarray, np.ndarray]:
    """Descriptor pairs of verified inliers between database photos of the same individual."""
    members = collections.defaultdict(list)
    for i, (_, identity, _) in enumerate(db):
        members[identity].append(i)
    xs, ys = [], []
    for group in members.values():
        for a, b in itertools.combinations(group, 2):
            best = None
            for q in (feats[a], _mirrored(feats[a])):
                qi, di, w = match_descriptors(q.descriptors, feats[b].descriptors, 0.9)
                v = verify(q, feats[b], qi, di, w)
                if best is None or v.n_inliers > best[0]:
                    best = (v.n_inliers, q.descriptors[qi[v.inlier_idx]],
                            feats[b].descriptors[di[v.inlier_idx]])
            if best is not None and best[0] >= 5:
                xs.append(best[1])
                ys.append(best[2])
    return np.vstack(xs), np.vstack(ys)


def fit_projection(x: np.ndarray, y: np.ndarray, all_desc: np.ndarray, power: float,
                   projection_id: str) -> DescriptorProjection:
    """The projection ``unit((d - mean) @ matrix)`` and its mirror signs."""
    perm = _mirror_permutation()

    def sym(c: np.ndarray) -> np.ndarray:
        return (c + c[perm][:, perm]) / 2

    mu = (all_desc.mean(0) + all_desc.mean(0)[perm]) / 2
    d = x - y
    ev, evec = np.linalg.eigh(sym(d.T @ d / len(d)) + 1e-4 * np.eye(d.shape[1]))
    w1 = evec @ np.diag(ev ** -0.5) @ evec.T
    z = (all_desc[::3] - mu) @ w1
    ev2, evec2 = np.linalg.eigh(sym(z.T @ z / len(z)))
    order = np.argsort(-ev2)
    rot = w1 @ evec2[:, order]
    signs = np.sign(np.einsum("ij,ij->j", rot[perm], rot))
    matrix = rot @ np.diag(ev2[order] ** (-(1 - power) / 2))
    return DescriptorProjection(projection_id, mu.astype(np.float32), matrix.astype(np.float32),
                                signs.astype(np.float32))


def projected(f: LocalFeatures, projection: DescriptorProjection) -> LocalFeatures:
    return LocalFeatures(f.xy, projection.apply(f.descriptors), f.scores, f.sizes, f.angles,
                         f.image_size, f.extractor)


def lnbnn_top(db: list, qs: list, db_feats: list, q_feats: list, k: int) -> tuple[float, float]:
    ident = Identifier(IdentifierConfig(k=k, knorm=1, nprobe=6, mirror=False, method="lnbnn"))
    for i, ((_, identity, _), f) in enumerate(zip(db, db_feats, strict=True)):
        ident.add(i, identity, f)
    hits = []
    for (_, identity, _), f in zip(qs, q_feats, strict=True):
        ids = [c.individual_id for c in ident.identify(f, top_k=5)]
        hits.append((ids[:1] == [identity], identity in ids))
    h = np.array(hits)
    return float(h[:, 0].mean()), float(h[:, 1].mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--species", default="lion", choices=sorted(SPECS))
    ap.add_argument("--powers", default="1,0.5", help="comma list of eigenvalue powers")
    ap.add_argument("--save", default="", help="fit on the whole database split with the first "
                    "power and write this file into wildid/matching/defaults (no evaluation)")
    args = ap.parse_args()
    spec, k = SPECS[args.species]
    items = R.load_manifest(args.species)
    db = [x for x in items if x[2] == "database"]
    qs = [x for x in items if x[2] == "query"]
    feats = R.features_for(args.species, spec, db + qs)
    db_feats, q_feats = feats[:len(db)], feats[len(db):]
    t0 = time.perf_counter()
    x, y = positive_pairs(db, db_feats)
    print(f"{len(x)} positive descriptor pairs in {time.perf_counter() - t0:.0f} s")
    all_desc = np.vstack([f.descriptors for f in db_feats])
    if args.save:
        power = float(args.powers.split(",")[0])
        proj = fit_projection(x, y, all_desc, power, f"{args.species}-v1")
        path = DEFAULTS_PATH.parent / args.save
        digest = proj.save(path, {"species": args.species, "features": spec, "power": power,
                                  "positive_pairs": int(len(x)),
                                  "fitted_on": f"{args.species} database split",
                                  "script": "tests/benchmarks/research_projection.py"})
        print(json.dumps({"file": args.save, "id": proj.id, "sha256": digest}))
        return
    top1, top5 = lnbnn_top(db, qs, db_feats, q_feats, k)
    print(f"{args.species} raw RootSIFT      LNBNN top1 {top1 * 100:5.1f}  top5 {top5 * 100:5.1f}")
    for power in (float(p) for p in args.powers.split(",")):
        proj = fit_projection(x, y, all_desc, power, f"{args.species}-p{power:g}")
        top1, top5 = lnbnn_top(db, qs, [projected(f, proj) for f in db_feats],
                               [projected(f, proj) for f in q_feats], k)
        print(f"{args.species} projected p={power:<4} LNBNN top1 {top1 * 100:5.1f}  "
              f"top5 {top5 * 100:5.1f}")


if __name__ == "__main__":
    main()
