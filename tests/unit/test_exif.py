"""EXIF: time zones, GPS signs, camera fields, fallbacks, and garbage that never raises."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, TiffImagePlugin

from tests.photofactory import (
    build_exif,
    encode,
    make_card,
    make_garbage_exif_jpeg,
    make_photo,
    make_text_as_jpg,
)
from wildid.ingest.exif import parse_exif_datetime, parse_offset, read_exif

R = TiffImagePlugin.IFDRational
EXIF, GPS = ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo
PIXELS = np.full((24, 32, 3), 128, np.uint8)


def _read(tags: dict[int, object], fmt: str = "JPEG"):
    return read_exif(encode(PIXELS, fmt, 90, tags), f"x.{fmt.lower()}")


def test_offset_gives_exact_utc(tmp_path: Path) -> None:
    path = make_photo(tmp_path / "IMG_0001.JPG", 64, 48, taken=datetime(2024, 5, 1, 14, 3, 22),
                      offset="+02:00")
    info = read_exif(path.read_bytes(), path.name)
    assert info.taken_raw == "2024:05:01 14:03:22"
    assert info.taken_local == datetime(2024, 5, 1, 14, 3, 22)
    assert info.taken_utc == datetime(2024, 5, 1, 12, 3, 22, tzinfo=UTC)
    assert (info.utc_offset_minutes, info.tz_known) == (120, True)
    assert info.taken_source == "DateTimeOriginal" and info.warnings == []


def test_negative_half_hour_offset_crosses_midnight() -> None:
    info = _read(build_exif(datetime(2024, 12, 31, 22, 0), "-05:30"))
    assert info.taken_utc == datetime(2025, 1, 1, 3, 30, tzinfo=UTC)
    assert info.utc_offset_minutes == -330


def test_unknown_zone_keeps_local_time_labelled_utc() -> None:
    info = _read(build_exif(datetime(2024, 5, 1, 6, 30)))
    assert info.tz_known is False and info.utc_offset_minutes is None
    assert info.taken_local == datetime(2024, 5, 1, 6, 30)
    assert info.taken_utc == datetime(2024, 5, 1, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("lat, lon", [(-24.5, 31.25), (51.5, -0.125), (-33.9, -70.6), (1.3, 103.8)])
def test_gps_hemispheres(lat: float, lon: float) -> None:
    info = _read(build_exif(gps=(lat, lon, 812.5)))
    assert info.gps_lat == pytest.approx(lat, abs=1e-6)
    assert info.gps_lon == pytest.approx(lon, abs=1e-6)
    assert info.gps_alt == pytest.approx(812.5)


def test_altitude_below_sea_level_and_camera_fields() -> None:
    info = _read(build_exif(gps=(31.5, 35.5, -430.0), make="NIKON CORPORATION\x00",
                            model=" NIKON D7500 ", serial="7654321", orientation=8))
    assert info.gps_alt == pytest.approx(-430.0)
    assert (info.camera_make, info.camera_model, info.camera_serial) == (
        "NIKON CORPORATION", "NIKON D7500", "7654321")
    assert info.orientation == 8


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "HEIC"])
def test_round_trip_in_other_formats(fmt: str) -> None:
    if fmt == "HEIC":
        pytest.importorskip("pillow_heif")
    tags = build_exif(datetime(2023, 7, 9, 18, 45, 1), "+03:00", (-1.95, 30.06, 1500.0),
                      serial="X9", orientation=6)
    info = _read(tags, fmt)
    assert info.taken_utc == datetime(2023, 7, 9, 15, 45, 1, tzinfo=UTC)
    assert info.gps_lat == pytest.approx(-1.95) and info.gps_lon == pytest.approx(30.06)
    assert info.camera_serial == "X9" and info.camera_make == "Canon"
    # HEIC: libheif applies the rotation itself, so nothing is left for us to apply.
    assert info.orientation == (1 if fmt == "HEIC" else 6)


def test_date_priority_falls_back_with_a_warning() -> None:
    tags = build_exif(datetime(2024, 1, 1, 8, 0), "+01:00")
    tags[EXIF][0x9003] = "0000:00:00 00:00:00"  # type: ignore[index]
    tags[EXIF][0x9004] = "2024:01:01 08:00:05"  # type: ignore[index]
    info = _read(tags)
    assert info.taken_source == "DateTimeDigitized"
    assert info.taken_local == datetime(2024, 1, 1, 8, 0, 5) and info.tz_known
    assert any("0000:00:00" in w for w in info.warnings)


def test_only_ifd0_datetime_with_offset_time() -> None:
    tags = {0x0132: "2022:02:02 10:00:00", EXIF: {0x9010: "+09:00"}}
    info = _read(tags)
    assert info.taken_source == "DateTime"
    assert info.taken_utc == datetime(2022, 2, 2, 1, 0, tzinfo=UTC)


def test_subseconds_order_a_burst() -> None:
    tags = build_exif(datetime(2024, 5, 1, 6, 30, 0), subsec="75")
    assert _read(tags).taken_local == datetime(2024, 5, 1, 6, 30, 0, 750000)


def test_garbage_values_never_raise(tmp_path: Path) -> None:
    path = make_garbage_exif_jpeg(tmp_path / "garbage.jpg", "values")
    info = read_exif(path.read_bytes(), path.name)
    assert info.taken_utc is None and info.taken_raw is None
    assert info.gps_lat is None and info.gps_lon is None and info.gps_alt is None
    assert info.orientation == 1
    text = " | ".join(info.warnings)
    for expected in ("0000:00:00", "garbage!", "2024:13:45", "orientation 42", "latitude"):
        assert expected in text


def test_garbage_bytes_never_raise(tmp_path: Path) -> None:
    path = make_garbage_exif_jpeg(tmp_path / "garbage.jpg", "bytes")
    info = read_exif(path.read_bytes(), path.name)
    assert info.taken_utc is None and info.camera_make is None
    assert info.warnings  # the user is told the EXIF was unreadable


def test_not_an_image_and_no_exif(tmp_path: Path) -> None:
    info = read_exif(make_text_as_jpg(tmp_path / "notes.jpg").read_bytes(), "notes.jpg")
    assert info.taken_utc is None and "not an image" in info.warnings[0]
    bare = read_exif(encode(PIXELS, "PNG"), "bare.png")
    assert bare.taken_utc is None and bare.camera_make is None and bare.warnings == []


@pytest.mark.parametrize("gps, problem", [
    ({1: "N", 2: (R(12, 0), R(0, 1), R(0, 1)), 3: "E", 4: (R(30, 1), R(0, 1), R(0, 1))},
     "zero denominator"),
    ({1: "N", 2: (R(95, 1), R(0, 1), R(0, 1)), 3: "E", 4: (R(30, 1), R(0, 1), R(0, 1))},
     "out of range"),
    ({1: "N", 2: (R(0, 1), R(0, 1), R(0, 1)), 3: "E", 4: (R(0, 1), R(0, 1), R(0, 1))}, "0,0"),
    ({1: "N", 2: (R(12, 1), R(0, 1), R(0, 1))}, "only one coordinate"),
])
def test_unusable_gps_is_dropped_with_a_warning(gps: dict[int, object], problem: str) -> None:
    info = _read({GPS: gps})
    assert info.gps_lat is None and info.gps_lon is None
    assert any(problem in w for w in info.warnings), info.warnings


def test_lenient_gps_forms() -> None:
    gps = {1: "s", 2: (R(12, 1), R(59, 1), R(60, 1)), 4: (R(30, 1), R(30, 1), R(0, 1)),
           5: b"\x00", 6: R(0, 0)}
    info = _read({GPS: gps})
    assert info.gps_lat == pytest.approx(-13.0)  # lower-case ref; 60 s from a rounding writer
    assert info.gps_lon == pytest.approx(30.5)  # missing ref: assumed east, with a warning
    assert info.gps_alt is None
    assert any("no valid hemisphere" in w for w in info.warnings)
    assert any("altitude" in w for w in info.warnings)


@pytest.mark.parametrize("raw, expected", [
    ("2024:05:01 14:03:22", datetime(2024, 5, 1, 14, 3, 22)),
    ("2024-05-01T14:03:22.5", datetime(2024, 5, 1, 14, 3, 22, 500000)),
    ("0000:00:00 00:00:00", None), ("    :  :     :  :  ", None), ("2024:02:30 10:00:00", None),
    ("yesterday", None)])
def test_parse_exif_datetime(raw: str, expected: datetime | None) -> None:
    assert parse_exif_datetime(raw) == expected


@pytest.mark.parametrize("raw, minutes", [
    ("+02:00", 120), ("-05:30", -330), ("+0545", 345), ("+09", 540), ("Z", 0),
    ("+15:00", None), ("+02:75", None), ("02:00", None), ("", None)])
def test_parse_offset(raw: str, minutes: int | None) -> None:
    assert parse_offset(raw) == minutes


def test_card_looks_like_a_camera_card(tmp_path: Path) -> None:
    shots = make_card(tmp_path, 14, seed=5, width=320, height=240)
    assert len(shots) == 14
    canon = [s for s in shots if s.path.parent.name == "100CANON"]
    assert [s.path.name for s in canon] == [f"IMG_{i:04d}.JPG" for i in range(1, len(canon) + 1)]
    times = [s.taken_local for s in shots]
    assert times == sorted(times)
    for before, after in zip(shots, shots[1:], strict=False):
        gap = (after.taken_local - before.taken_local).total_seconds()
        assert gap <= 2.0 if before.burst == after.burst else gap >= 120
    for shot in shots:
        info = read_exif(shot.path.read_bytes(), shot.path.name)
        assert info.camera_serial == shot.camera_serial
        assert info.tz_known == (shot.offset is not None)
        assert abs((info.taken_local - shot.taken_local).total_seconds()) < 0.01
        assert (info.gps_lat is None) == (shot.gps is None)
    assert len({s.burst for s in shots}) < len(shots)  # some bursts have several frames
