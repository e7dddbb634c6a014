"""Terminal output for the CLI: tables, JSON, and a progress bar on stderr."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from wildid.ids import short_id
from wildid.progress import Progress
from wildid.units import human_bytes

__all__ = ["ProgressBar", "failure_lines", "human_bytes", "print_json", "print_table"]

NAMED_IDS = 3  # annotations named on a line whose reason failed many


def failure_lines(grouped: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """One line per reason (``extraction.failures_by_reason``): ``features failed for
    annotation 1a2b3c4d: why``, or for a reason that failed many (a faulty model), ``features
    failed for 27 annotations (1a2b3c4d, ... and 24 more): why``. The ids show with
    ``wildid photos`` and ``wildid encounters``."""
    lines = []
    for reason, ids in grouped:
        if len(ids) == 1:
            lines.append(f"features failed for annotation {short_id(ids[0])}: {reason}")
            continue
        named = ", ".join(short_id(a) for a in ids[:NAMED_IDS])
        more = f" and {len(ids) - NAMED_IDS:,} more" if len(ids) > NAMED_IDS else ""
        lines.append(f"features failed for {len(ids):,} annotations ({named}{more}): {reason}")
    return lines


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    """Plain aligned columns; empty cells for None."""
    out = out if out is not None else sys.stdout
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out.write(fmt.format(*headers).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(fmt.format(*row).rstrip() + "\n")


def print_json(value: Any, out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stdout
    json.dump(value, out, indent=2, ensure_ascii=False, default=str)
    out.write("\n")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """A one-line progress bar with count, rate and ETA, redrawn at most 10 times a second.

    Writes only when stderr is a terminal unless ``force`` is set, so logs and pipes stay clean.
    """

    def __init__(self, out: TextIO | None = None, force: bool = False) -> None:
        self.out = out if out is not None else sys.stderr
        self.enabled = force or self.out.isatty()
        self._last = 0.0
        self._stage = ""

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        final = p.total > 0 and p.done >= p.total
        if not final and now - self._last < 0.1 and p.stage == self._stage:
            return
        self._last, self._stage = now, p.stage
        width = min(shutil.get_terminal_size((80, 20)).columns, 120)
        rate = f"{p.rate:.1f}/s" if p.rate else ""
        eta = p.eta_seconds
        tail = f" {p.done}/{p.total} {rate}" + (f" ETA {_duration(eta)}" if eta is not None else "")
        if p.total <= 0:
            line = f"{p.stage}… {p.done if p.done else ''}"
        else:
            bar_w = max(10, width - len(p.stage) - len(tail) - 4)
            filled = int(bar_w * (p.fraction or 0.0))
            line = f"{p.stage} [{'#' * filled}{'.' * (bar_w - filled)}]{tail}"
        self.out.write("\r" + line[:width - 1].ljust(width - 1))
        if final:
            self.out.write("\n")
        self.out.flush()

    def close(self) -> None:
        if self.enabled and self._stage:
            self.out.write("\n")
            self.out.flush()
            self._stage = ""
