"""Quantities worded for people: sizes on disk (the CLI's ``info``, a full disk's message)."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """``512 B``, ``1.5 KB``, ``74.0 GB``: binary multiples, one decimal from KB up."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
