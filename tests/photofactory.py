"""Realistic, deterministic test photos: camera-like JPEGs with EXIF, animals, cards, bad files.

Used by unit tests, integration tests and the import benchmark, so it is fast and seeded:
the same arguments always give the same bytes.

* Content looks photographic to codecs and feature extractors: a smooth sky/ground gradient
  with soft blobs, mid-scale texture and per-pixel sensor noise, so a 12 MP JPEG at q92 is
  ~3-4 MB like a real camera's (a flat colour would be 100 kB and decode unrealistically fast).
* ``pattern_seed`` pastes a distinctive striped/spotted "animal" under a random pose
  (``warp`` adds perspective), so two photos with the same ``pattern_seed`` and different
  ``seed`` show the same individual in different scenes: see :func:`make_animal_pair`.
* JPEGs are encoded with ``cv2.imencode`` and the EXIF APP1 segment is spliced in right after
  SOI with no JFIF segment, as cameras write them (measured: same speed as Pillow's save, ~65 ms
  at 12 MP; generating the content costs ~45 ms, ~80 ms with an animal). PNG/TIFF/HEIC/WebP
  go through Pillow / pillow-heif.
* Bad files for the importer's error paths (``make_zero_byte``, ``make_bomb_png``...). Tests
  run as root here, so ``chmod 000`` does not stop reads: use :func:`make_dangling_symlink` or
  :func:`make_folder_named_jpg` for a file that cannot be read by anyone, and check the return
  value of :func:`make_unreadable` (False = not enforceable, skip) when PermissionError matters.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin

# the content (scenes, animals, poses) is the app's own, which its self-test identifies
from wildid.synthetic import (  # noqa: F401 - re-exported for the tests
    Box,
    Pose,
    animal_patch,
    jitter_pose,
    random_pose,
    render,
)

_R = TiffImagePlugin.IFDRational


# ---------------------------------------------------------------- EXIF & encoding ---------

def build_exif(taken: datetime | None = None, offset: str | None = None,
               gps: tuple[float, float, float | None] | None = None, make: str | None = "Canon",
               model: str | None = "EOS 90D", serial: str | None = "1234", orientation: int = 1,
               subsec: str | None = None) -> dict[int, object]:
    """IFD0 tags as a dict with the Exif (0x8769) and GPS (0x8825) sub-IFDs as nested dicts."""
    ifd0: dict[int, object] = {0x0112: orientation}
    exif: dict[int, object] = {}
    if make is not None:
        ifd0[0x010F] = make
    if model is not None:
        ifd0[0x0110] = model
    if serial is not None:
        exif[0xA431] = serial
    if taken is not None:
        stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
        ifd0[0x0132] = stamp
        exif[0x9003] = exif[0x9004] = stamp
        if subsec is not None:
            exif[0x9291] = subsec
        if offset is not None:
            exif[0x9011] = exif[0x9012] = exif[0x9010] = offset
    if exif:
        ifd0[ExifTags.IFD.Exif] = exif
    if gps is not None:
        ifd0[ExifTags.IFD.GPSInfo] = gps_ifd(*gps)
    return ifd0


def _dms(value: float) -> tuple[_R, _R, _R]:
    """Degrees -> (deg, min, sec) rationals, seconds to 1/10000 (carry done in integers)."""
    units = round(abs(value) * 3600 * 10_000)
    degrees, units = divmod(units, 3600 * 10_000)
    minutes, units = divmod(units, 60 * 10_000)
    return _R(degrees, 1), _R(minutes, 1), _R(units, 10_000)


def gps_ifd(lat: float, lon: float, alt: float | None = None) -> dict[int, object]:
    """GPS sub-IFD with rationals and N/S/E/W references, as a camera writes it."""
    tags: dict[int, object] = {0: b"\x02\x03\x00\x00", 1: "N" if lat >= 0 else "S", 2: _dms(lat),
                               3: "E" if lon >= 0 else "W", 4: _dms(lon)}
    if alt is not None:
        tags[5] = b"\x01" if alt < 0 else b"\x00"
        tags[6] = _R(round(abs(alt) * 100), 100)
    return tags


def to_pillow_exif(tags: dict[int, object]) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in tags.items():
        if isinstance(value, dict):
            exif.get_ifd(tag).update(value)
        else:
            exif[tag] = value
    return exif


def encode(rgb: np.ndarray, fmt: str = "JPEG", quality: int = 92,
           exif: dict[int, object] | None = None) -> bytes:
    """Encode RGB pixels with EXIF ``exif`` (a :func:`build_exif` dict) into file bytes."""
    fmt = fmt.upper()
    exif = exif or {}
    if fmt in ("JPEG", "JPG"):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return splice_app1(buf.tobytes(), to_pillow_exif(exif).tobytes() if exif else None)
    out = io.BytesIO()
    image = Image.fromarray(rgb)
    if fmt == "TIFF":  # Pillow writes sub-IFDs to TIFF only from nested dicts, uncompressed
        image.save(out, "TIFF", tiffinfo=exif)
    elif fmt in ("HEIC", "HEIF"):
        import pillow_heif

        pillow_heif.register_heif_opener()
        image.save(out, "HEIF", quality=quality, exif=to_pillow_exif(exif).tobytes())
    else:
        image.save(out, fmt, exif=to_pillow_exif(exif))
    return out.getvalue()


def splice_app1(jpeg: bytes, exif_bytes: bytes | None) -> bytes:
    """Replace the JFIF APP0 that cv2 writes with an EXIF APP1 right after SOI, as cameras do."""
    body = jpeg[2:]
    if body[:2] == b"\xff\xe0":
        body = body[2 + struct.unpack(">H", body[2:4])[0]:]
    if not exif_bytes:
        return b"\xff\xd8" + body
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(exif_bytes) + 2) + exif_bytes + body


def orient_box(box: Box, size: tuple[int, int], orientation: int) -> Box:
    """A box in stored pixels -> the same box in displayed (EXIF-oriented) pixels."""
    w, h = size
    x, y, bw, bh = box
    maps = {1: lambda p, q: (p, q), 2: lambda p, q: (w - p, q), 3: lambda p, q: (w - p, h - q),
            4: lambda p, q: (p, h - q), 5: lambda p, q: (q, p), 6: lambda p, q: (h - q, p),
            7: lambda p, q: (h - q, w - p), 8: lambda p, q: (q, w - p)}
    pts = [maps[orientation](p, q) for p in (x, x + bw) for q in (y, y + bh)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


# ---------------------------------------------------------------- photos -------------------

def write_photo(path: str | os.PathLike[str] | bytes, rgb: np.ndarray, fmt: str = "JPEG",
                quality: int = 92, exif: dict[int, object] | None = None) -> Path:
    """Write ``rgb`` as the *stored* pixels plus EXIF (a :func:`build_exif` dict).

    For HEIC, pillow-heif turns the EXIF orientation into the container's rotation, so the
    decoded HEIC shows the same oriented image as the JPEG would.
    """
    data = encode(rgb, fmt, quality, exif)
    target = os.fsencode(path) if not isinstance(path, bytes) else path
    os.makedirs(os.path.dirname(target) or b".", exist_ok=True)
    with open(target, "wb") as fh:
        fh.write(data)
    return Path(os.fsdecode(target))


@dataclass(frozen=True)
class Shot:
    """A written photo and where its animal is, in displayed (oriented) pixels."""

    path: Path
    box: Box | None
    pattern_seed: int | None = None


def make_shot(path: str | os.PathLike[str] | bytes, width: int = 1600, height: int = 1200,
              seed: int = 0, taken: datetime | None = None, offset: str | None = None,
              gps: tuple[float, float, float | None] | None = None, make: str | None = "Canon",
              model: str | None = "EOS 90D", serial: str | None = "1234", orientation: int = 1,
              fmt: str = "JPEG", quality: int = 92, pattern_seed: int | None = None,
              warp: float = 0.0, pose: Pose | None = None, subsec: str | None = None) -> Shot:
    """:func:`make_photo` that also returns the animal box."""
    rgb, box = render(width, height, seed, pattern_seed, warp, pose)
    exif = build_exif(taken, offset, gps, make, model, serial, orientation, subsec)
    written = write_photo(path, rgb, fmt, quality, exif)
    if box is not None:
        box = orient_box(box, (width, height), orientation)
    return Shot(written, box, pattern_seed)


def make_photo(path: str | os.PathLike[str] | bytes, width: int = 1600, height: int = 1200,
               seed: int = 0, taken: datetime | None = None, offset: str | None = None,
               gps: tuple[float, float, float | None] | None = None, make: str | None = "Canon",
               model: str | None = "EOS 90D", serial: str | None = "1234", orientation: int = 1,
               fmt: str = "JPEG", quality: int = 92, pattern_seed: int | None = None,
               warp: float = 0.0, subsec: str | None = None) -> Path:
    """Write one realistic photo (``width`` x ``height`` as stored) and return its path.

    ``taken`` None writes no date tags; ``offset`` like ``"+02:00"`` adds OffsetTime*;
    ``gps`` = (lat, lon, alt or None) with signs; ``pattern_seed`` adds an animal.
    """
    return make_shot(path, width, height, seed, taken, offset, gps, make, model, serial,
                     orientation, fmt, quality, pattern_seed, warp, None, subsec).path


def make_animal_pair(folder: str | os.PathLike[str], pattern_seed: int, seeds: tuple[int, int] = (1, 2),
                     width: int = 1024, height: int = 768, warp: float = 0.25,
                     fmt: str = "JPEG") -> tuple[Shot, Shot]:
    """Two photos of the same individual in two different scenes and poses."""
    folder = Path(folder)
    shots = [make_shot(folder / f"ind{pattern_seed}_s{s}.jpg", width, height, seed=s,
                       pattern_seed=pattern_seed, warp=warp, fmt=fmt) for s in seeds]
    return shots[0], shots[1]


def add_data_strip(rgb: np.ndarray, where: str = "bottom", share: float = 0.065,
                   fill: int = 18, ink: int = 235, text: str = "CAM-07  21C  2026-11-02  06:14:33",
                   logo: bool = True, logo_ink: int | None = None,
                   moon: bool = False) -> tuple[np.ndarray, int]:
    """``rgb`` with a camera trap's data strip added above or below it, as most traps print
    one: a flat bar ``share`` of the height, a logo block (``logo_ink``, default ``ink``), the
    text in a bold sans font, and with ``moon`` a moon-phase disc at the right end.
    Returns (new image, the strip's rows). Grey levels only, so RGB and BGR alike."""
    h, w = rgb.shape[:2]
    rows = max(8, round(share * h))
    band = np.full((rows, w, 3), fill, np.uint8)
    scale, thickness = rows / 40, max(1, round(rows / 14))
    left = 0.02 * w
    if logo:
        block = ink if logo_ink is None else logo_ink
        cv2.rectangle(band, (int(0.01 * w), int(0.15 * rows)), (int(0.17 * w), int(0.85 * rows)),
                      (block, block, block), -1)
        cv2.putText(band, "TRAIL", (int(0.02 * w), int(0.72 * rows)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (fill, fill, fill), thickness, cv2.LINE_AA)
        left = 0.2 * w
    cv2.putText(band, text, (int(left), int(0.72 * rows)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (ink, ink, ink), thickness, cv2.LINE_AA)
    if moon:
        cv2.circle(band, (int(0.95 * w), rows // 2), int(0.3 * rows), (ink, ink, ink), -1)
    stacked = np.vstack([band, rgb]) if where == "top" else np.vstack([rgb, band])
    return np.ascontiguousarray(stacked), rows


@dataclass(frozen=True)
class CardShot:
    """One photo of :func:`make_card`: its file and the truth the test can check against."""

    path: Path
    camera_serial: str
    taken_local: datetime
    offset: str | None
    gps: tuple[float, float, float | None] | None
    burst: int
    pattern_seed: int | None
    box: Box | None


_CAMERAS = (  # (folder, file prefix, make, model, serial, offset, has GPS)
    ("100CANON", "IMG_", "Canon", "EOS 90D", "083021001234", "+02:00", True),
    ("100NIKON", "DSC_", "NIKON CORPORATION", "NIKON D7500", "7654321", None, False),
)


def make_card(folder: str | os.PathLike[str], n: int, seed: int = 0, bursts: bool = True,
              width: int = 1600, height: int = 1200, start: datetime = datetime(2024, 5, 1, 6, 30),
              population: int = 6, animal_rate: float = 0.8, quality: int = 92,
              site: tuple[float, float] = (-24.99, 31.59)) -> list[CardShot]:
    """Write ``n`` photos the way a field trip's cards look, and return the truth about each.

    Two cameras (``DCIM/100CANON/IMG_0001.JPG`` with offset and GPS, ``DCIM/100NIKON/
    DSC_0001.JPG`` without either), bursts of 1-5 frames 0.3-2 s apart, minutes between bursts,
    and animals drawn from ``population`` individuals (the same one throughout a burst).
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    counters = [0, 0]
    clock = start
    shots: list[CardShot] = []
    burst = 0
    while len(shots) < n:
        cam = int(rng.integers(0, 2))
        dirname, prefix, make, model, serial, offset, has_gps = _CAMERAS[cam]
        frames = int(rng.integers(1, 6)) if bursts else 1
        scene = int(rng.integers(0, 2**31))
        pattern = int(rng.integers(0, population)) if rng.random() < animal_rate else None
        pose = random_pose(np.random.default_rng(scene), warp=0.2)
        gps = None
        if has_gps:
            gps = (site[0] + rng.normal(0, 0.02), site[1] + rng.normal(0, 0.02),
                   float(rng.uniform(250, 600)))
        for frame in range(min(frames, n - len(shots))):
            counters[cam] += 1
            path = folder / "DCIM" / dirname / f"{prefix}{counters[cam]:04d}.JPG"
            shot_pose = jitter_pose(pose, rng) if frame else pose
            rgb, box = render(width, height, scene, pattern, pose=shot_pose, noise_seed=frame,
                              shake=4)
            subsec = f"{clock.microsecond // 10_000:02d}"
            exif = build_exif(clock.replace(microsecond=0), offset, gps, make, model, serial,
                              subsec=subsec)
            write_photo(path, rgb, "JPEG", quality, exif)
            shots.append(CardShot(path, serial, clock, offset, gps, burst, pattern, box))
            clock += timedelta(seconds=float(rng.uniform(0.3, 2.0)))
        burst += 1
        clock += timedelta(minutes=float(rng.uniform(2, 40)))
    return shots


# ---------------------------------------------------------------- bad files ----------------

def make_truncated(path: str | os.PathLike[str], fmt: str = "JPEG", keep: float = 0.5,
                   **photo: object) -> Path:
    """A valid photo cut to ``keep`` of its bytes (an interrupted copy: cut mid-scan)."""
    photo.setdefault("width", 640)
    photo.setdefault("height", 480)
    written = make_photo(path, fmt=fmt, **photo)  # type: ignore[arg-type]
    data = written.read_bytes()
    written.write_bytes(data[: int(len(data) * keep)])
    return written


def make_truncated_jpeg(path: str | os.PathLike[str], keep: float = 0.5, **photo: object) -> Path:
    return make_truncated(path, "JPEG", keep, **photo)


def make_zero_byte(path: str | os.PathLike[str]) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def make_text_as_jpg(path: str | os.PathLike[str]) -> Path:
    Path(path).write_text("These are my field notes, not a photo.\nNyala seen at 06:30.\n")
    return Path(path)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def make_bomb_png(path: str | os.PathLike[str], width: int = 30000, height: int = 30000) -> Path:
    """A ~100-byte PNG whose header declares ``width`` x ``height`` (nothing big is allocated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 4096)), 9)  # one filter byte + a row
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))
    Path(path).write_bytes(data)
    return Path(path)


def make_garbage_exif_jpeg(path: str | os.PathLike[str], kind: str = "values",
                           width: int = 320, height: int = 240) -> Path:
    """A decodable JPEG with nonsense EXIF.

    ``kind="values"``: DateTimeOriginal ``0000:00:00 00:00:00``, unparseable other dates, GPS
    rationals with zero denominators, an impossible orientation, non-UTF-8 make.
    ``kind="bytes"``: an APP1 "Exif" segment whose TIFF structure points outside itself.
    """
    rgb, _ = render(width, height, seed=99)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    if kind == "values":
        tags: dict[int, object] = {
            0x010F: b"\xff\xfe\x00Can", 0x0112: 42, 0x0132: "garbage!",
            ExifTags.IFD.Exif: {0x9003: "0000:00:00 00:00:00", 0x9004: "2024:13:45 25:61:00",
                                0x9011: "+99:99", 0xA431: 12345},
            ExifTags.IFD.GPSInfo: {1: "N", 2: (_R(12, 0), _R(0, 0), _R(0, 0)), 3: "E",
                                   4: (_R(200, 1), _R(0, 1), _R(0, 1)), 5: b"\x00", 6: _R(5, 0)},
        }
        app1 = to_pillow_exif(tags).tobytes()
    elif kind == "bytes":
        rng = np.random.default_rng(7)
        app1 = (b"Exif\x00\x00MM\x00*\xff\xff\xff\x00" + b"\x00\x05"
                + rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
    else:
        raise ValueError(f"unknown kind {kind!r}")
    Path(path).write_bytes(splice_app1(buf.tobytes(), app1))
    return Path(path)


def make_unreadable(path: str | os.PathLike[str], **photo: object) -> bool:
    """A valid photo with mode 000. Returns whether reading it really fails for this process
    (False when running as root: the test should then skip or use a dangling symlink)."""
    written = make_photo(path, width=64, height=48, **photo)  # type: ignore[arg-type]
    os.chmod(written, 0)
    try:
        with open(written, "rb"):
            return False
    except PermissionError:
        return True


def make_dangling_symlink(path: str | os.PathLike[str]) -> Path:
    """``IMG_x.JPG`` -> a target that does not exist: opening fails for every user, root too."""
    os.symlink(Path(path).parent / "vanished-target.jpg", path)
    return Path(path)


def make_folder_named_jpg(path: str | os.PathLike[str]) -> Path:
    """A folder called like a photo (IsADirectoryError on open)."""
    Path(path).mkdir(parents=True)
    return Path(path)


def make_non_utf8_name(folder: str | os.PathLike[str], **photo: object) -> Path:
    """A photo whose file name is not valid UTF-8 (Latin-1 "été"), as old cards produce.

    The returned Path holds surrogate escapes (``os.fsdecode``); ``os.fsencode`` gives the
    original bytes back. Printing it as UTF-8 raises: a good test for error messages.
    """
    photo.setdefault("width", 64)
    photo.setdefault("height", 48)
    raw = os.path.join(os.fsencode(folder), b"IMG_\xe9t\xe9.jpg")
    return make_photo(raw, **photo)  # type: ignore[arg-type]


def make_long_path(folder: str | os.PathLike[str], min_length: int = 310, **photo: object) -> Path:
    """A photo under nested folders so the full path exceeds ``min_length`` characters
    (each name stays <= 255, the per-name limit of every common file system)."""
    path = Path(folder)
    while len(str(path)) < min_length - 40:
        path = path / ("deep_folder_" + "x" * 88)
    return make_photo(path / ("long_name_" + "y" * 20 + ".jpg"), width=64, height=48,
                      **photo)  # type: ignore[arg-type]


def make_all_bad(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """One of each bad file in ``folder``; keys name the case (for parametrised tests)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "truncated": make_truncated_jpeg(folder / "truncated.jpg"),
        "zero_byte": make_zero_byte(folder / "empty.jpg"),
        "text": make_text_as_jpg(folder / "notes.jpg"),
        "bomb": make_bomb_png(folder / "bomb.png"),
        "garbage_exif": make_garbage_exif_jpeg(folder / "garbage_exif.jpg"),
        "dangling_symlink": make_dangling_symlink(folder / "gone.jpg"),
        "folder": make_folder_named_jpg(folder / "folder.jpg"),
    }



def make_dated_shots(folder: str | os.PathLike[str], n: int, first: int = 0,
                     width: int = 320, height: int = 240) -> list[Path]:
    """``n`` small photos of one camera ten minutes apart (each its own encounter), named
    ``p<first>.jpg`` on: for tests that count what an import or a backup kept."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    start = datetime(2024, 5, 1, 6, 0)
    return [make_shot(folder / f"p{first + i:03d}.jpg", width, height, seed=first + i + 1,
                      taken=start + timedelta(minutes=10 * (first + i)), serial="S1").path
            for i in range(n)]
