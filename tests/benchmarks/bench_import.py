"""Import speed against the decode floor, measured in the same run.

Generates (once, cached in $WILDID_BENCH_DIR or /tmp) 300 camera-like 12-megapixel JPEGs with
EXIF (~3-4 MB each, sensor noise, bursts from two cameras), then:

* floor: read each file and decode it at 1/8 scale with OpenCV, on 2 threads — the least work
  any importer that makes thumbnails must do;
* import: ``run_import`` into a fresh catalog (hash, EXIF, probe, reduced decode, thumbnail,
  copy into the media store, database rows, encounter grouping).

Each is repeated (default 3 runs) and the median photos/second reported with the ratio.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests import photofactory as pf
from wildid.catalog import open_catalog
from wildid.ingest.importer import ImportOptions, run_import
from wildid.vision.image_io import decode_floor

N_PHOTOS = int(os.environ.get("WILDID_BENCH_PHOTOS", "300"))
RUNS = int(os.environ.get("WILDID_BENCH_RUNS", "3"))
WIDTH, HEIGHT = 4000, 3000


def bench_dir() -> Path:
    return Path(os.environ.get("WILDID_BENCH_DIR", tempfile.gettempdir())) / "wildid-bench"


def make_set() -> list[Path]:
    card = bench_dir() / f"card-{N_PHOTOS}-{WIDTH}x{HEIGHT}"
    marker = card / "done.json"
    if not marker.exists():
        shutil.rmtree(card, ignore_errors=True)
        t0 = time.perf_counter()
        shots = pf.make_card(card, N_PHOTOS, seed=2024, width=WIDTH, height=HEIGHT)
        marker.write_text(json.dumps({"n": len(shots), "seconds": time.perf_counter() - t0}))
    files = sorted(p for p in card.rglob("*.JPG"))
    assert len(files) == N_PHOTOS, (len(files), card)
    return files


def floor_rate(files: list[Path]) -> float:
    def one(path: Path) -> None:
        img = decode_floor(path.read_bytes())
        assert img is not None

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, files))
    return len(files) / (time.perf_counter() - t0)


def import_rate(files: list[Path]) -> float:
    work = Path(tempfile.mkdtemp(prefix="wildid-bench-cat-", dir=bench_dir()))
    try:
        with open_catalog(work / "catalog") as cat:
            t0 = time.perf_counter()
            report = run_import(cat, [files[0].parents[2]], ImportOptions(workers=2))
            elapsed = time.perf_counter() - t0
        assert report.imported == len(files), report
        return len(files) / elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    files = make_set()
    size = sum(f.stat().st_size for f in files) / len(files) / 1e6
    print(f"{len(files)} JPEGs of {WIDTH}x{HEIGHT}, {size:.1f} MB on average")
    for f in files:  # warm the page cache so both measure CPU work, not the disk
        f.read_bytes()
    floors, imports = [], []
    for run in range(RUNS):
        floors.append(floor_rate(files))
        imports.append(import_rate(files))
        print(f"run {run + 1}: floor {floors[-1]:.1f} photos/s, import {imports[-1]:.1f} photos/s, "
              f"ratio {imports[-1] / floors[-1]:.2f}", flush=True)
    f_med, i_med = statistics.median(floors), statistics.median(imports)
    print(f"median over {RUNS} runs: decode floor {f_med:.1f} photos/s, import {i_med:.1f} photos/s, "
          f"ratio {i_med / f_med:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
