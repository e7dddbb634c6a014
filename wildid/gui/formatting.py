"""How dates, places, distances and scores read in the GUI (one place, so every page agrees)."""

from __future__ import annotations

from datetime import datetime

__all__ = ["fmt_coords", "fmt_date", "fmt_datetime", "fmt_days", "fmt_days_apart", "fmt_km",
           "fmt_percent", "plural"]


def fmt_datetime(when: datetime | None) -> str:
    """``2024-05-01 04:30 UTC``; times are stored in UTC (the camera's zone may be unknown)."""
    return "date unknown" if when is None else when.strftime("%Y-%m-%d %H:%M UTC")


def fmt_date(when: datetime | None) -> str:
    return "—" if when is None else when.strftime("%Y-%m-%d")


def fmt_coords(lat: float | None, lon: float | None) -> str:
    """``24.99000° S, 31.59000° E`` (5 decimals ≈ 1 m), or a dash without GPS."""
    if lat is None or lon is None:
        return "no GPS position"
    return (f"{abs(lat):.5f}° {'N' if lat >= 0 else 'S'}, "
            f"{abs(lon):.5f}° {'E' if lon >= 0 else 'W'}")


def fmt_days(days: float | None) -> str:
    """A duration in days as people say it: '3 days', '5 months', '2.1 years'."""
    if days is None:
        return "unknown"
    days = abs(days)
    if days < 1:
        return f"{days * 24:.0f} hours" if days * 24 >= 1 else "less than an hour"
    if days < 60:
        return plural(round(days), "day")
    if days < 730:
        return plural(round(days / 30.44), "month")
    return f"{days / 365.25:.1f} years"


def fmt_days_apart(days: float) -> str:
    """How long before this sighting another one was, ``days`` (negative: after it): '28 days
    before', '1 day after'. A candidate's last sighting can come after the one reviewed (an
    older card imported late), which a plain duration with "before" misstated."""
    return f"{fmt_days(days)} {'after' if days < 0 else 'before'}"


def fmt_km(km: float | None) -> str:
    if km is None:
        return "unknown"
    if km < 1:
        return f"{km * 1000:.0f} m"
    return f"{km:.1f} km" if km < 100 else f"{km:.0f} km"


def fmt_percent(score: float | None) -> str:
    return "—" if score is None else f"{score * 100:.0f} %"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
