"""Identification accuracy on the shared photos, wildid vs the HotSpotter-style baseline.

    .venv/bin/python -m tests.benchmarks eval          (part of ``make bench``)

Runs ``wildid eval`` (the real pipeline: import into a throwaway catalog, extraction, matching)
on ``../shared/datasets/{nyala,lion}/manifest.csv`` twice per species in the same run: the
LNBNN baseline (one kNN index over all database descriptors, raw LNBNN scores) and wildid's
fused, calibrated ranking. Prints top-1/top-5/mAP and seconds per query; skips a species whose
manifest is absent.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO.parent / "shared" / "datasets"


def main() -> None:
    from wildid.engine.evaluation import evaluate_manifest

    species = os.environ.get("WILDID_BENCH_SPECIES", "nyala,lion").split(",")
    results: dict[str, dict] = {}
    for name in species:
        manifest = DATASETS / name / "manifest.csv"
        if not manifest.exists():
            print(f"{name}: {manifest} is absent, skipped")
            continue
        for method in ("lnbnn", "fused"):
            r = evaluate_manifest(manifest, method=method,
                                  log_line=lambda m: print(f"  {m}", file=sys.stderr))
            results[f"{name}/{method}"] = r
            label = "LNBNN baseline" if method == "lnbnn" else "wildid"
            print(f"{name:6} {label:15} top-1 {r['top1'] * 100:5.1f} %  top-5 {r['top5'] * 100:5.1f} %"
                  f"  mAP {r['mAP'] * 100:5.1f} %  {r['seconds_per_query']:.3f} s/query (median)"
                  f"  {r['seconds_per_database_image']:.3f} s/database image", flush=True)
        base, ours = results[f"{name}/lnbnn"], results[f"{name}/fused"]
        print(f"{name:6} gain over baseline: top-1 x{ours['top1'] / max(base['top1'], 1e-9):.2f}")
    out = os.environ.get("WILDID_BENCH_JSON")
    if out:
        Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
