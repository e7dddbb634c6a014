"""Photo times a camera's clock got wrong: which are doubted, and how the report says it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wildid.ingest.clock import FUTURE, RESET, describe_doubtful, doubtful

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("taken", "kind"), [
    (None, None),
    (datetime(2026, 12, 7, 20, 0, tzinfo=UTC), None),  # a zone-less wall clock ahead of UTC
    (NOW + timedelta(days=1, seconds=1), FUTURE),
    (datetime(2031, 5, 2, tzinfo=UTC), FUTURE),
    (datetime(2000, 1, 1, 0, 0, 10, tzinfo=UTC), RESET),
    (datetime(1970, 1, 1, tzinfo=UTC), RESET),
    (datetime(2000, 1, 7, 23, 59), RESET),  # naive: read as UTC
    (datetime(2000, 1, 8, tzinfo=UTC), None),
    (datetime(2019, 1, 1, tzinfo=UTC), None),
])
def test_doubtful_times(taken: datetime | None, kind: str | None) -> None:
    assert doubtful(taken, NOW) == kind


def test_the_report_says_each_kind_once_with_dates_and_a_few_names() -> None:
    assert describe_doubtful([]) == ""
    future = [(f"IMG_{i}.jpg", datetime(2031, 5, 2 + i // 3, tzinfo=UTC), FUTURE) for i in range(5)]
    reset = [("trap.jpg", datetime(2000, 1, 1, tzinfo=UTC), RESET)]
    assert describe_doubtful(future[::-1] + reset) == (
        "5 photos are dated in the future (2031-05-02 to 2031-05-03; IMG_0.jpg, IMG_1.jpg, "
        "IMG_2.jpg and 2 more): their camera's clock was wrong. 1 photo is dated 2000-01-01, "
        "a camera's factory date (trap.jpg): the camera's clock was reset.")
    assert describe_doubtful(future[:1]) == (
        "1 photo is dated in the future (2031-05-02; IMG_0.jpg): its camera's clock was wrong.")
