"""Running independent native calls side by side on the machine's (usually two) cores.

Why: the index's kernel calls in a large catalog (see ``_ivf.SIDE_BY_SIDE_ROWS``) and the
learned matcher's pairs are many small onnxruntime runs; extraction describes two crops at
once (``SiftSource.compute``: 80 nyala photos in 21 s instead of 25 s).
One run split over two intra-op threads leaves much of the second core idle (the work per run
is too small to split well), while two single-threaded runs at once keep both busy.
onnxruntime releases the GIL while it runs, and a session may be run from several threads at
once, so plain Python threads are enough. Measured at 10,000 nyala annotations on a 2-core
Intel AVX-512 machine: a list of ~16,000 rows took 0.86 ms as one call on two intra-op threads
and 0.67 ms per list with two single-threaded calls at once; eight LightGlue pairs 313 ms one
after the other on two threads and 236 ms two at a time on one thread each.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["map_side_by_side", "workers"]

T = TypeVar("T")
R = TypeVar("R")

_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def workers() -> int:
    """How many calls run at once: one per core, at most two (the laptops this targets)."""
    return max(1, min(2, os.cpu_count() or 1))


def _pool(n: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(n)
        if pool is None:
            pool = _pools[n] = ThreadPoolExecutor(n, thread_name_prefix="wildid-side-by-side")
        return pool


def map_side_by_side(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, with up to :func:`workers` calls at once (in order).

    Called from one of the pool's own threads it runs in that thread, so nesting cannot
    deadlock the pool.
    """
    items = list(items)
    n = workers()
    if n < 2 or len(items) < 2 or threading.current_thread().name.startswith(
            "wildid-side-by-side"):
        return [fn(x) for x in items]
    return list(_pool(n).map(fn, items))
