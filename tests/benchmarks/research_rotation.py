"""Research: fused identification of *turned* query photos (not a test).

    nice -n 10 .venv/bin/python tests/benchmarks/research_rotation.py --degrees 0,25,45

The database split as it is; every query photo turned by ``--degrees`` (edges reflected) before
its features are extracted, then identified by the shipped profile (its calibration, colour
fused).  ``--old-sign`` also runs the spatial verification with the rotation sign reversed (what
the code did before 2026-12-02), in the same run.  Results are in docs/identification.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import research_eval as R  # noqa: E402
from fit_calibration import PROFILES  # noqa: E402

import wildid.matching.geometry as geometry  # noqa: E402
from wildid.matching import metrics  # noqa: E402
from wildid.matching.profiles import DEFAULTS_PATH, load_profiles  # noqa: E402


def turned(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--species", default="lion", choices=sorted(PROFILES))
    ap.add_argument("--degrees", default="0,25,45")
    ap.add_argument("--old-sign", action="store_true")
    args = ap.parse_args()
    prof = load_profiles(DEFAULTS_PATH)[args.species]
    spec = R.profile_spec(PROFILES[args.species])
    items = R.load_manifest(args.species)
    db = [x for x in items if x[2] == "database"]
    qs = [x for x in items if x[2] == "query"]
    db_feats = R.features_for(args.species, spec, db + qs)[:len(db)]
    colour = R.colour_for(args.species, db + qs)
    ident, _ = R.build(args.species, spec, prof.config, db, db_feats, {"colour": colour[:len(db)]})
    ident.calibration = prof.calibration
    _, extract = R.make_extractor(spec)
    fixed = geometry.verify_points

    def old_sign(*a, **k):  # verify(...) passes the angles as positional arguments 7 and 8
        a = list(a)
        a[6], a[7] = -np.asarray(a[6]), -np.asarray(a[7])
        return fixed(*a, **k)

    variants = [("fixed", fixed)] + ([("old sign", old_sign)] if args.old_sign else [])
    truth = [x[1] for x in qs]
    for degrees in (float(d) for d in args.degrees.split(",")):
        q_feats = [extract(turned(R.read_rgb(p), degrees)) for p, _, _ in qs]
        for name, fn in variants:
            geometry.verify_points = fn
            ranks = [[c.individual_id for c in ident.identify(
                f, top_k=10, vectors={"colour": colour[len(db) + i]})]
                for i, f in enumerate(q_feats)]
            print(f"{args.species} queries turned {degrees:g} deg, {name:<8}: top1 "
                  f"{metrics.top_k_accuracy(ranks, truth, 1) * 100:5.1f}  top5 "
                  f"{metrics.top_k_accuracy(ranks, truth, 5) * 100:5.1f}", flush=True)
        geometry.verify_points = fixed


if __name__ == "__main__":
    main()
