"""``wildid find-strips`` speed against the decode floor, measured in the same run.

Uses the import benchmark's 300 camera-like 12-megapixel JPEGs (``bench_import.make_set``),
imported once into a catalog that references them in place. Every pass then decodes each photo
at 256 px as the import does and looks for a data strip; these photos have none, so a pass
changes nothing and can be repeated. Per run (default 3):

* floor: read and decode every photo at 1/8 scale with OpenCV on 2 threads;
* one worker / two workers: ``find_strips_in_catalog(workers=1 / 2)``.

Medians in photos/second, with the two workers' ratio to the floor and to one worker.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.benchmarks.bench_import import RUNS, bench_dir, floor_rate, make_set
from wildid.catalog import open_catalog
from wildid.ingest.importer import ImportOptions, run_import
from wildid.ingest.strip_rescan import find_strips_in_catalog


def pass_rate(root: Path, workers: int, n: int) -> float:
    with open_catalog(root, create=False) as cat:
        t0 = time.perf_counter()
        report = find_strips_in_catalog(cat, workers=workers)
        elapsed = time.perf_counter() - t0
    assert report.scanned == n and report.operation is None, report
    return n / elapsed


def main() -> None:
    files = make_set()
    work = Path(tempfile.mkdtemp(prefix="wildid-bench-strips-", dir=bench_dir()))
    try:
        root = work / "catalog"
        with open_catalog(root) as cat:
            report = run_import(cat, [files[0].parents[2]],
                                ImportOptions(workers=2, reference_in_place=True))
        assert report.imported == len(files), report
        for f in files:  # warm the page cache so every pass measures CPU work
            f.read_bytes()
        floors, ones, twos = [], [], []
        for run in range(RUNS):
            floors.append(floor_rate(files))
            ones.append(pass_rate(root, 1, len(files)))
            twos.append(pass_rate(root, 2, len(files)))
            print(f"run {run + 1}: floor {floors[-1]:.1f}, one worker {ones[-1]:.1f}, "
                  f"two workers {twos[-1]:.1f} photos/s", flush=True)
        f_med, one, two = (statistics.median(v) for v in (floors, ones, twos))
        print(f"median over {RUNS} runs of {len(files)} photos: decode floor {f_med:.1f} "
              f"photos/s, find-strips {one:.1f} (one worker) / {two:.1f} (two) photos/s; "
              f"two workers {two / f_med:.2f} of the floor, {two / one:.2f}x one worker")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
