"""Argument types shared by the commands: counts that refuse what makes no sense.

Why: ``--top 0`` stored no candidates for every unreviewed encounter (the review screen then
had none to show), and a negative ``--limit`` sliced lists from the end. argparse reports a
refused value with the command's usage, before anything is opened.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


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
