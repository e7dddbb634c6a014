"""Argument types shared by the commands: counts that refuse what makes no sense, durations
and moments (``wildid retime``).

Why: ``--top 0`` stored no candidates for every unreviewed encounter (the review screen then
had none to show), and a negative ``--limit`` sliced lists from the end. argparse reports a
refused value with the command's usage, before anything is opened.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def count(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value
    parse.__name__ = "count"  # argparse names the type in its messages
    return parse


def share(text: str) -> float:
    """An argparse ``type``: a fraction strictly between 0 and 1 (``--holdout``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0 and 1 (a share, as 0.25)")
    return value


_DURATION_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "min": 60,
                   "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(min|y|w|d|h|m|s)", re.IGNORECASE)


def duration(text: str) -> timedelta:
    """An argparse ``type``: a signed clock error such as ``+1h``, ``-26y124d``, ``90min``,
    ``-2d 3h 10m 5s`` (y: 365 days; m and min: minutes). Zero is refused: it changes nothing."""
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-").strip()
    seconds, at = 0.0, 0
    for match in _DURATION.finditer(body):
        if body[at:match.start()].strip():
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        at = match.end()
    if not body or body[at:].strip() or at == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (as +1h, -26y124d, 90min, -2d 3h)")
    if seconds == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is no change")
    return timedelta(seconds=sign * seconds)


def moment(text: str) -> datetime:
    """An argparse ``type``: a date and time as ``2026-11-20 08:00`` (seconds and a UTC offset
    such as ``+02:00`` optional). Without an offset it is read in the clock the photo times are
    shown in (``wildid photos``): UTC where the camera gave its zone, else the camera's own."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date and time (as 2026-11-20 08:00)") from None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
