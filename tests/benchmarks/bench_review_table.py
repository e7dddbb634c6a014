"""The encounters table's one query (``wildid.review.encounter_rows``) at 20,000 and 100,000
encounters: medians of 5 runs, wall and CPU seconds.

Why a benchmark: the unit test asserts the table is read in one SELECT (what keeps it linear);
how long that SELECT takes depends on the machine and on what else runs beside it, so the time
is measured here, not asserted in the suite. Catalogs as ``tests.unit.test_review_support``
builds them: one-photo encounters, a fifth confirmed, half with a match summary.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.unit.test_review_support import bulk_encounters
from wildid.catalog import open_catalog
from wildid.review import encounter_rows

SIZES = (20_000, 100_000)
RUNS = 5


def main() -> None:
    for n in SIZES:
        work = Path(tempfile.mkdtemp(prefix="wildid-bench-table-"))
        try:
            with open_catalog(work / "catalog") as cat:
                bulk_encounters(cat, n)
                assert len(encounter_rows(cat, limit=10)) == 10  # warm the connection
                walls, cpus = [], []
                for _ in range(RUNS):
                    w0, c0 = time.perf_counter(), time.process_time()
                    rows = encounter_rows(cat)
                    walls.append(time.perf_counter() - w0)
                    cpus.append(time.process_time() - c0)
                    assert len(rows) == n
            print(f"{n:,} encounters: encounter_rows median {statistics.median(walls):.3f} s wall, "
                  f"{statistics.median(cpus):.3f} s CPU over {RUNS} runs "
                  f"({n / statistics.median(walls):,.0f} rows/s)", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
