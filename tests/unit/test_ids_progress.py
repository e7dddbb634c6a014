from __future__ import annotations

import threading
import uuid

import pytest

from wildid.errors import Cancelled
from wildid.ids import is_id, new_id
from wildid.progress import CancelToken, Progress, ProgressReporter


def test_new_ids_are_uuid7_unique_and_sorted() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids[:10])
    assert is_id(ids[0]) and not is_id("nope")


def test_ids_unique_across_threads() -> None:
    out: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [new_id() for _ in range(1000)]
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 4000


def test_progress_fraction_and_eta() -> None:
    p = Progress("Importing", 5, 10)
    assert p.fraction == 0.5
    assert Progress("Scanning", 3, 0).fraction is None


def test_reporter_forwards_and_cancels() -> None:
    seen: list[Progress] = []
    token = CancelToken()
    r = ProgressReporter("x", 3, seen.append, token)
    r.advance()
    r.checkpoint()
    token.cancel()
    with pytest.raises(Cancelled):
        r.checkpoint()
    assert [p.done for p in seen] == [1]
