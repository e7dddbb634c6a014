"""Edits of a whole import at once, and their undo: the times of every encounter moved
(``wildid.review.retime.shift_times``, *Correct time…*) and a species set on every encounter
(``set_encounter_species``, *Set species…*). Medians of 3 runs, wall seconds.

Why a benchmark: both run on the app's GUI thread, so their time is how long the window does
not answer; a card of a few thousand photos whose camera's clock was wrong is the case.
Catalogs as ``tests.unit.test_review_support.bulk_encounters`` builds them.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from tests.unit.test_review_support import bulk_encounters
from wildid.catalog import open_catalog
from wildid.catalog.models import Encounter
from wildid.review import set_encounter_species
from wildid.review.retime import shift_times

SIZES = (1_000, 5_000)
RUNS = 3


def _timed(run, undo) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    op = run()
    t1 = time.perf_counter()
    undo(op)
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    for n in SIZES:
        work = Path(tempfile.mkdtemp(prefix="wildid-bench-edits-"))
        try:
            with open_catalog(work / "catalog") as cat:
                bulk_encounters(cat, n)
                with cat.session() as s:
                    ids = list(s.scalars(select(Encounter.id)))
                for label, run in (
                        ("move every time by 1 h",
                         lambda cat=cat, ids=ids: shift_times(cat, ids, timedelta(hours=1))),
                        ("set every species",
                         lambda cat=cat, ids=ids: set_encounter_species(cat, ids, "zebra"))):
                    done = [_timed(run, lambda op, cat=cat: op.revert(cat)) for _ in range(RUNS)]
                    print(f"{n:,} encounters, {label}: median "
                          f"{statistics.median(d[0] for d in done):.2f} s, undo "
                          f"{statistics.median(d[1] for d in done):.2f} s", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
