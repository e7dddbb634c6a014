"""Camera clocks that were wrong: which photo times to doubt, said in the import report.

Nothing in a photo says that its camera's clock was wrong. A camera trap whose batteries ran
flat starts again at its factory date (2000-01-01, or 1970-01-01 on some), and a camera set to
the wrong year or month writes times in the future. Identification does not use times, so
such photos are matched as any other; but a sighting's date is what the catalog records, what
the individual's page and timeline show and what is shared, and an import that took them
silently left a user to find "last seen 2000-01-01" months later. The import report says
which photos look so, and ``wildid retime`` (Encounters → *Correct time…* in the app) shifts
their encounters' times by what the clock was off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from wildid.catalog.models import Encounter

FUTURE = "future"
RESET = "reset"

# A time whose zone is unknown is stored as the camera's wall clock read as UTC, up to 14 h
# ahead of the real UTC: only a day past now is surely the future.
FUTURE_SLACK = timedelta(days=1)
# The first week of 2000 or earlier: cameras reset to 2000-01-01 00:00 (or 1970-01-01, 1980-01-01)
# and run on from there; no digital camera of a wildlife survey took its photos then.
RESET_BEFORE = datetime(2000, 1, 8, tzinfo=UTC)


def doubtful(taken_utc: datetime | None, now: datetime) -> str | None:
    """:data:`FUTURE`, :data:`RESET` or None for a photo's time (None: no time, no doubt)."""
    if taken_utc is None:
        return None
    if taken_utc.tzinfo is None:
        taken_utc = taken_utc.replace(tzinfo=UTC)
    if taken_utc > now + FUTURE_SLACK:
        return FUTURE
    if taken_utc < RESET_BEFORE:
        return RESET
    return None


def describe_doubtful(items: Sequence[tuple[str, datetime, str]], named: int = 3) -> str:
    """Sentences for the import report on ``(file name, time, kind)`` rows, "" for none.

    "3 photos are dated in the future (2031-05-02; IMG_0003.jpg, IMG_0004.jpg, IMG_0005.jpg):
    their camera's clock was wrong. 2 photos are dated 2000-01-01, a camera's factory date
    (IMG_0001.jpg, IMG_0002.jpg): the camera's clock was reset."
    """
    parts = []
    for kind in (FUTURE, RESET):
        rows = sorted((t, name) for name, t, k in items if k == kind)
        if not rows:
            continue
        first, last = rows[0][0].date(), rows[-1][0].date()
        span = f"{first}" if first == last else f"{first} to {last}"
        names = ", ".join(name for _t, name in rows[:named])
        more = f" and {len(rows) - named:,} more" if len(rows) > named else ""
        n = len(rows)
        subject = "1 photo is" if n == 1 else f"{n:,} photos are"
        if kind == FUTURE:
            parts.append(f"{subject} dated in the future ({span}; {names}{more}): "
                         f"{'its' if n == 1 else 'their'} camera's clock was wrong.")
        else:
            parts.append(f"{subject} dated {span}, a camera's factory date ({names}{more}): "
                         "the camera's clock was reset.")
    return " ".join(parts)


def doubtful_encounter_counts(session: Any, now: datetime) -> dict[str, int]:
    """How many encounters are dated in the future and at a factory date (``wildid info``
    says so until they are mended: the import report that named them is long gone)."""
    future = session.scalar(select(func.count()).select_from(Encounter)
                            .where(Encounter.taken_utc > now + FUTURE_SLACK)) or 0
    reset = session.scalar(select(func.count()).select_from(Encounter)
                           .where(Encounter.taken_utc < RESET_BEFORE)) or 0
    return {FUTURE: future, RESET: reset}
