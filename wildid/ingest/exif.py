"""Time, place and camera from a photo's EXIF, tolerant of whatever cameras actually write.

``read_exif`` never raises: field photos carry EXIF written by decade-old firmware, phone apps
and editors, and a broken tag must not stop an import. Every value that is missing, nonsense
or out of range becomes ``None`` and, when it was present but unusable, a line in ``warnings``.

Time: the first usable of DateTimeOriginal -> DateTimeDigitized -> DateTime (``0000:00:00``
and garbage are skipped with a warning), with the matching OffsetTime* tag first and the other
offset tags as fallback, and SubSecTime* for burst ordering. ``taken_local`` is the naive
wall-clock time the camera showed. When no offset is known we cannot know the zone, so
``taken_utc`` holds the local time *labelled* UTC and ``tz_known`` is False: the catalog must
flag such photos instead of pretending the instant is exact.

Pillow's ``getexif()`` holds only IFD0 (Make, Model, Orientation, DateTime); the capture time
and serial live in the Exif sub-IFD and the position in the GPS sub-IFD (``get_ifd``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import ExifTags, Image

from wildid.errors import ImageError
from wildid.vision.image_io import collect_warnings, exif_of, open_image

__all__ = ["ExifInfo", "read_exif", "parse_exif_datetime", "parse_offset"]

_DATE_TAGS = (  # (name, date tag, its offset tag, its sub-second tag)
    ("DateTimeOriginal", 0x9003, 0x9011, 0x9291),
    ("DateTimeDigitized", 0x9004, 0x9012, 0x9292),
    ("DateTime", 0x0132, 0x9010, 0x9290),
)
_OFFSET_TAGS = (0x9011, 0x9012, 0x9010)
_DATE_RE = re.compile(r"^(\d{4})[:\-/.](\d{2})[:\-/.](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?")
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):?(\d{2})?$")
_ALT_RANGE = (-11_000.0, 100_000.0)  # deepest ocean .. edge of space, in metres


@dataclass
class ExifInfo:
    """The EXIF facts wildid stores with a photo (see DESIGN.md §3)."""

    taken_raw: str | None = None
    taken_utc: datetime | None = None
    taken_local: datetime | None = None
    utc_offset_minutes: int | None = None
    tz_known: bool = False
    gps_lat: float | None = None
    gps_lon: float | None = None
    gps_alt: float | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    camera_serial: str | None = None
    orientation: int = 1
    warnings: list[str] = field(default_factory=list)
    taken_source: str | None = None
    """Which tag the time came from (``DateTimeOriginal``...), for the import report."""


def _text(value: Any) -> str | None:
    """EXIF ASCII -> stripped str (bytes decoded leniently, NULs removed), empty -> None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # e.g. a serial number written as LONG instead of ASCII
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def parse_exif_datetime(raw: str, subsec: str | None = None) -> datetime | None:
    """``'2024:05:01 14:03:22'`` (+ optional sub-seconds) -> naive datetime, or None if invalid."""
    match = _DATE_RE.match(raw.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if year < 1800:  # "0000:00:00 00:00:00" is what cameras write when the clock was never set
        return None
    digits = match.group(7) or (subsec or "").strip()
    micro = int((digits + "000000")[:6]) if digits.isdigit() else 0
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), micro)
    except ValueError:
        return None


def parse_offset(raw: str) -> int | None:
    """``'+02:00'``, ``'-0530'``, ``'+02'``, ``'Z'`` -> minutes east of UTC, or None if invalid."""
    raw = raw.strip()
    if raw.upper() == "Z":
        return 0
    match = _OFFSET_RE.match(raw)
    if not match:
        return None
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    if minutes > 14 * 60 or int(match.group(3) or 0) >= 60:
        return None
    return -minutes if match.group(1) == "-" else minutes


def _number(value: Any) -> float | None:
    """A rational/int/float/(num, den) -> finite float, or None (zero denominators included)."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            num, den = value
            return float(num) / float(den) if den else None
        denominator = getattr(value, "denominator", 1)
        if denominator == 0:
            return None
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _coordinate(value: Any, ref: Any, positive: str, negative: str, limit: float, label: str,
                warnings: list[str]) -> float | None:
    """Degrees/minutes/seconds + hemisphere letter -> signed decimal degrees."""
    parts = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(parts) <= 3:
        warnings.append(f"GPS {label} has {len(parts)} components; ignored")
        return None
    numbers = [_number(p) for p in parts]
    if any(n is None for n in numbers):
        warnings.append(f"GPS {label} is not a number (zero denominator?); ignored")
        return None
    degrees, minutes, seconds = (list(numbers) + [0.0, 0.0])[:3]
    assert degrees is not None and minutes is not None and seconds is not None
    if not (0 <= minutes <= 60 and 0 <= seconds <= 60):  # 60 = a writer's rounding, accept
        warnings.append(f"GPS {label} has minutes/seconds outside 0-60; ignored")
        return None
    result = abs(degrees) + minutes / 60 + seconds / 3600
    letter = (_text(ref) or "").upper()[:1]
    if letter not in (positive, negative):
        warnings.append(f"GPS {label} has no valid hemisphere reference ({ref!r}); "
                        f"assumed {positive}")
    if letter == negative or degrees < 0:
        result = -result
    if result < -limit or result > limit:
        warnings.append(f"GPS {label} {result:.5f} is out of range; ignored")
        return None
    return result


def _read_gps(gps: dict[int, Any], info: ExifInfo) -> None:
    if 2 not in gps and 4 not in gps:
        return
    if 2 not in gps or 4 not in gps:
        info.warnings.append("GPS position has only one coordinate; ignored")
        return
    lat = _coordinate(gps[2], gps.get(1), "N", "S", 90.0, "latitude", info.warnings)
    lon = _coordinate(gps[4], gps.get(3), "E", "W", 180.0, "longitude", info.warnings)
    if lat is None or lon is None:
        return
    if lat == 0.0 and lon == 0.0:
        info.warnings.append("GPS position 0,0 ignored (cameras write it when they had no fix)")
        return
    info.gps_lat, info.gps_lon = lat, lon
    if 6 in gps:
        alt = _number(gps[6])
        ref = gps.get(5, 0)
        below = ref in (1, b"\x01", "1") or (isinstance(ref, bytes) and ref[:1] == b"\x01")
        if alt is None or not _ALT_RANGE[0] <= alt <= _ALT_RANGE[1]:
            info.warnings.append("GPS altitude is not a usable number; ignored")
        else:
            info.gps_alt = -abs(alt) if below else alt


def _read_time(tags: dict[int, Any], info: ExifInfo) -> None:
    """``tags``: IFD0 and Exif IFD merged (some writers put Exif tags in IFD0; numbers differ)."""
    for label, tag, offset_tag, subsec_tag in _DATE_TAGS:
        raw = _text(tags.get(tag))
        if raw is None:
            continue
        local = parse_exif_datetime(raw, _text(tags.get(subsec_tag)))
        if local is None:
            info.warnings.append(f"{label} '{raw}' is not a valid date; ignored")
            continue
        info.taken_raw, info.taken_local, info.taken_source = raw, local, label
        for candidate in (offset_tag, *(t for t in _OFFSET_TAGS if t != offset_tag)):
            offset_raw = _text(tags.get(candidate))
            if offset_raw is None:
                continue
            offset = parse_offset(offset_raw)
            if offset is None:
                info.warnings.append(f"time-zone offset '{offset_raw}' is not valid; ignored")
                continue
            info.utc_offset_minutes, info.tz_known = offset, True
            break
        shift = timedelta(minutes=info.utc_offset_minutes or 0)
        info.taken_utc = (local - shift).replace(tzinfo=UTC)
        return


def _fill(exif: Image.Exif, info: ExifInfo, heif: bool) -> None:
    ifd0 = dict(exif)
    exif_ifd: dict[int, Any] = {}
    gps: dict[int, Any] = {}
    for ifd_id, target, label in ((ExifTags.IFD.Exif, exif_ifd, "Exif"),
                                  (ExifTags.IFD.GPSInfo, gps, "GPS")):
        try:
            target.update(exif.get_ifd(ifd_id))
        except Exception as exc:  # noqa: BLE001 - a corrupt sub-IFD loses only its own tags
            info.warnings.append(f"the {label} block of EXIF is damaged ({exc}); ignored")
    tags = {**ifd0, **exif_ifd}
    info.camera_make = _text(tags.get(0x010F))
    info.camera_model = _text(tags.get(0x0110))
    info.camera_serial = _text(tags.get(0xA431))
    orientation = ifd0.get(0x0112, 1)
    if heif:
        orientation = 1  # libheif applies the container rotation itself (see image_io)
    elif not (isinstance(orientation, int) and 1 <= orientation <= 8):
        info.warnings.append(f"orientation {orientation!r} is not 1-8; assumed upright")
        orientation = 1
    info.orientation = orientation
    _read_time(tags, info)
    try:
        _read_gps(gps, info)
    except Exception as exc:  # noqa: BLE001 - unexpected value types must not stop the import
        info.gps_lat = info.gps_lon = info.gps_alt = None
        info.warnings.append(f"GPS data cannot be read ({exc}); ignored")


def read_exif(data: bytes, name: str) -> ExifInfo:
    """Parse EXIF from a JPEG, PNG, TIFF, HEIC or WebP in memory; never raises (see module doc)."""
    info = ExifInfo()
    try:
        im = open_image(data, name)
    except ImageError as exc:
        info.warnings.append(f"no EXIF read: {exc}")
        return info
    with collect_warnings() as pillow_warnings:
        try:
            exif = exif_of(im, data)
            _fill(exif, info, heif=im.format == "HEIF")
            raw = im.info.get("exif")  # PNG: set when eXIf precedes the pixels, as usual
            if not len(exif) and isinstance(raw, bytes) and len(raw) > 14:
                info.warnings.append("EXIF is present but damaged: no tag could be read")
        except Exception as exc:  # noqa: BLE001 - garbage EXIF bytes are common, never fatal
            info.warnings.append(f"EXIF is damaged; what could be read was kept ({exc})")
    info.warnings.extend(f"EXIF: {m}" for m in dict.fromkeys(pillow_warnings))
    return info
