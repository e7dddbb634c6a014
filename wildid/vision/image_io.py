"""Loading photos safely and fast: format sniffing, bomb guard, reduced-size JPEG decode.

Everything here works on bytes already in memory (the importer reads each file once) and
returns RGB ``uint8`` arrays of shape HxWx3 with the EXIF orientation applied, so the rest of
wildid never thinks about orientation, bit depth or colour modes.

Choices worth knowing:

* **Decompression bombs** are refused from the declared size in the header, before any pixel
  is decoded, against our own :data:`MAX_PIXELS`. We call Pillow's format factory directly
  instead of ``Image.open`` so neither Pillow's process-global ``MAX_IMAGE_PIXELS`` nor its
  warning filter decides what happens. OpenCV only ever sees bytes that passed that check, and
  its output size is compared with the header.
* **Truncated files are errors.** A JPEG cut mid-scan (an interrupted copy from a card)
  decodes "successfully" in libjpeg with a grey lower half, and Pillow hides it too when
  someone sets ``ImageFile.LOAD_TRUNCATED_IMAGES``. We check the file structure ourselves
  (JPEG end-of-image marker after the scan, PNG ``IEND``, TIFF strips inside the file, WebP
  RIFF length) so the user is told and can copy the photo again. A JPEG whose only flaw is a
  missing end marker is therefore refused too; we accept that rare false alarm.
* **JPEG** decodes with libjpeg-turbo's DCT scaling (``IMREAD_REDUCED_COLOR_2/4/8``), taking
  the largest reduction whose long side is still >= ``max_side``, then an area resize.
* **Orientation**: JPEG/PNG/WebP pixels are stored unrotated and we apply the EXIF tag. Pillow
  (>= 11) already rotates TIFF while loading, and libheif applies the HEIC container rotation
  (pillow-heif then resets the EXIF tag to 1); we apply only what the decoder left undone, so
  a photo is never rotated twice.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile

from wildid.errors import ImageError
from wildid.vision.formats import RAW_SUFFIXES, SUPPORTED_FORMATS, SUPPORTED_TYPES

__all__ = [
    "MAX_PIXELS", "RAW_SUFFIXES", "SUPPORTED_FORMATS", "SUPPORTED_TYPES", "ImageInfo", "probe",
    "decode", "decode_floor",
    "load_image", "crop", "apply_orientation", "reduction_factor", "open_image", "exif_of",
    "collect_warnings",
]

MAX_PIXELS = 120_000_000
"""Largest photo we decode (120 MP: beyond every current camera, far below a bomb)."""

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm",
                          b"hevs", b"mif1", b"msf1"})
_OTHER_MAGIC = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"%PDF", "PDF"), (b"\x00\x00\x01\x00", "ICO"),
                (b"8BPS", "Photoshop"), (b"PK\x03\x04", "ZIP"))
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
            4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_ORIENTATION_TAG = 0x0112

_plugins_lock = threading.Lock()
_plugins_ready = False
_warnings_lock = threading.RLock()


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: stored size, orientation still to apply, and the size as shown."""

    format: str
    width: int
    height: int
    orientation: int
    oriented_width: int
    oriented_height: int

    @property
    def oriented_size(self) -> tuple[int, int]:
        return self.oriented_width, self.oriented_height


def _short(name: str) -> str:
    return Path(name).name or name


def _ensure_plugins() -> None:
    """Load Pillow's plugins and register pillow-heif once per process."""
    global _plugins_ready
    if _plugins_ready:
        return
    with _plugins_lock:
        if not _plugins_ready:
            Image.init()
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
            except ImportError:  # HEIC then reports "unsupported"; everything else works
                pass
            _plugins_ready = True


def _sniff(data: bytes, name: str) -> str:
    """Identify the format from magic bytes (never from the file name)."""
    short = _short(name)
    if not data:
        raise ImageError(f"{short} is empty (0 bytes)")
    if os.path.splitext(short)[1].lower() in RAW_SUFFIXES:
        raise ImageError(f"{short} is a camera RAW file, which wildid cannot import; "
                         "import the camera's JPEG instead")
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    for magic, kind in _OTHER_MAGIC:
        if data.startswith(magic):
            raise ImageError(f"{short} is a {kind} file, which wildid cannot import "
                             f"(supported: {SUPPORTED_TYPES})")
    if data[4:8] == b"ftyp":
        brand = data[8:12].decode("ascii", "replace").strip()
        raise ImageError(f"{short} is an unsupported ISO media file (brand '{brand}'); "
                         f"supported: {SUPPORTED_TYPES}")
    if _looks_like_text(data[:512]):
        raise ImageError(f"{short} is not an image: it contains text")
    raise ImageError(f"{short} is not an image (unknown file format)")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a multi-byte character cut at the end
    return True


def open_image(data: bytes, name: str) -> ImageFile.ImageFile:
    """Parse the header lazily with Pillow and refuse bombs; no pixel is decoded yet."""
    fmt = _sniff(data, name)
    _ensure_plugins()
    short = _short(name)
    if fmt not in Image.OPEN:
        raise ImageError(f"{short} is a {fmt} file but support for it is not installed")
    factory, _accept = Image.OPEN[fmt]
    try:
        with collect_warnings():  # the JPEG plugin parses EXIF (for DPI) while opening
            im = factory(io.BytesIO(data), name)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a damaged header
        if not _bytes_complete(fmt, data):
            raise _truncated(name) from exc
        raise ImageError(f"{short} is damaged: its {fmt} header cannot be read ({exc})") from exc
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{short} declares an empty image ({width}x{height} pixels)")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{short} declares {width}x{height} pixels, more than the "
                         f"{MAX_PIXELS // 1_000_000}-megapixel limit")
    return im


def _png_chunks(data: bytes) -> tuple[bool, bytes | None]:
    """Walk PNG chunks: (IEND reached inside the file, raw eXIf payload or None)."""
    pos, exif = 8, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if kind == b"eXIf" and end <= len(data):
            exif = data[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            return True, exif
        pos = end
    return False, exif


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Turn Pillow's ``UserWarning("Corrupt EXIF data...")`` and friends into strings.

    ``warnings.catch_warnings`` swaps process-global state, so our threads take turns (the
    parse inside is sub-millisecond); the messages go to the caller's report, not stderr.
    """
    messages: list[str] = []
    with _warnings_lock, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    messages.extend(str(w.message).strip() for w in caught)


def exif_of(im: Image.Image, data: bytes) -> Image.Exif:
    """The image's EXIF without decoding pixels (Pillow's PNG ``getexif`` would decode all).

    Sub-IFDs are parsed lazily by ``get_ifd``: call it inside :func:`collect_warnings` too.
    """
    if im.format == "PNG":
        _complete, raw = _png_chunks(data)
        exif = Image.Exif()
        if raw:
            exif.load(raw if raw.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + raw)
        return exif
    return im.getexif()


def _orientation(im: Image.Image, data: bytes) -> int:
    try:
        with collect_warnings():
            value = exif_of(im, data).get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - garbage EXIF must not stop a decodable photo
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _bytes_complete(fmt: str, data: bytes) -> bool:
    """Structure check from the bytes alone (JPEG, PNG, WebP); other formats pass."""
    if fmt in ("JPEG", "MPO"):
        return _jpeg_complete(data)
    if fmt == "PNG":
        return _png_chunks(data)[0]
    if fmt == "WEBP":
        return struct.unpack("<I", data[4:8])[0] + 8 <= len(data)
    return True


def _truncated(name: str) -> ImageError:
    return ImageError(f"{_short(name)} is truncated: the image data ends early "
                      "(an interrupted copy?); copy it again from the camera or card")


def _check_complete(im: Image.Image, data: bytes, name: str) -> None:
    """Refuse files cut short, whatever Pillow's LOAD_TRUNCATED_IMAGES says (module doc)."""
    ok = _bytes_complete(str(im.format), data)
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        for offsets_tag, counts_tag in ((273, 279), (324, 325)):
            offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
            if offsets and counts:
                ok = max(o + c for o, c in zip(offsets, counts, strict=False)) <= len(data)
    if not ok:
        raise _truncated(name)


def _jpeg_complete(data: bytes) -> bool:
    """True when an end-of-image marker follows the first scan.

    Inside entropy-coded data every 0xFF is followed by 0x00 or a restart marker, so the first
    FF D9 after the start of scan is the real end of the primary image (bytes.find is C-fast).
    """
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return True  # malformed, not short: the decoder reports the damage
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xD9:
            return False
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        if marker == 0xDA:
            return data.find(b"\xff\xd9", pos + 2 + length) != -1
        pos += 2 + length
    return False


def probe(data: bytes, name: str) -> ImageInfo:
    """Format, stored size and orientation from the header, without decoding pixels.

    Raises :class:`ImageError` for empty files, non-images, unsupported formats and bombs.
    """
    return _info(open_image(data, name), data)


def _info(im: Image.Image, data: bytes) -> ImageInfo:
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    orientation = _orientation(im, data)
    width, height = im.size
    if fmt == "TIFF":
        tags = getattr(im, "tag_v2", {})
        width, height = tags.get(256, width), tags.get(257, height)
    elif fmt == "HEIF":
        orientation = 1  # libheif rotates from the container; pillow-heif reset the EXIF tag
    swap = orientation in (5, 6, 7, 8)
    return ImageInfo(fmt, width, height, orientation,
                     height if swap else width, width if swap else height)


def reduction_factor(long_side: int, max_side: int | None) -> int:
    """Largest JPEG DCT reduction (1, 2, 4 or 8) that keeps the long side >= ``max_side``."""
    if not max_side or max_side <= 0:
        return 1
    for factor in (8, 4, 2):
        if -(-long_side // factor) >= max_side:
            return factor
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into displayed pixels for EXIF orientation 1-8."""
    ops = {1: (), 2: ("flip",), 3: ("rot180",), 4: ("flipud",), 5: ("transpose",),
           6: ("cw",), 7: ("transverse",), 8: ("ccw",)}.get(orientation, ())
    for op in ops:
        if op == "flip":
            image = image[:, ::-1]
        elif op == "flipud":
            image = image[::-1]
        elif op == "rot180":
            image = image[::-1, ::-1]
        elif op == "transpose":
            image = image.swapaxes(0, 1)
        elif op == "cw":
            image = np.rot90(image, k=-1)
        elif op == "ccw":
            image = np.rot90(image, k=1)
        elif op == "transverse":
            image = np.rot90(image, k=2).swapaxes(0, 1)
    return np.ascontiguousarray(image)


def _fit(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink so the long side is at most ``max_side`` (never enlarges)."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _to_rgb8(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> RGB uint8 (16-bit scaled, not clipped; alpha dropped)."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float32)
        top = float(arr.max()) if arr.size else 0.0
        if mode == "F" and top <= 1.0:
            arr = arr * 255.0
        elif mode.startswith("I;16") or top > 255.0:
            arr = arr / (257.0 if top <= 65535.0 else top / 255.0)
        grey = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def _decode_jpeg_cv2(data: bytes, info: ImageInfo, max_side: int | None,
                     name: str) -> np.ndarray | None:
    factor = reduction_factor(max(info.width, info.height), max_side)
    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, _REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        return None
    expected = (-(-info.height // factor), -(-info.width // factor))
    if bgr.shape[:2] != expected:
        raise ImageError(f"{_short(name)} is damaged: it decodes to {bgr.shape[1]}x"
                         f"{bgr.shape[0]} pixels but its header says {info.width}x{info.height}")
    return cv2.cvtColor(_fit(bgr, max_side), cv2.COLOR_BGR2RGB)


def decode(data: bytes, name: str, max_side: int | None = None) -> np.ndarray:
    """Decode to RGB uint8 HxWx3, orientation applied, long side <= ``max_side`` if given."""
    im = open_image(data, name)
    info = _info(im, data)
    _check_complete(im, data, name)
    if info.format == "JPEG" and im.mode in ("RGB", "L"):
        rgb = _decode_jpeg_cv2(data, info, max_side, name)
        if rgb is not None:
            return apply_orientation(rgb, info.orientation)
    try:
        if info.format == "JPEG" and max_side:
            factor = reduction_factor(max(info.width, info.height), max_side)
            im.draft("RGB", (-(-info.width // factor), -(-info.height // factor)))
        im.load()
        remaining = 1 if info.format == "HEIF" else _orientation(im, data)
        rgb = _to_rgb8(im)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder failures of any kind mean a bad file
        raise ImageError(f"{_short(name)} is damaged and cannot be decoded ({exc})") from exc
    return apply_orientation(_fit(rgb, max_side), remaining)


def decode_floor(data: bytes) -> np.ndarray:
    """The fastest possible JPEG decode (1/8 scale, BGR, no checks): a benchmark baseline only."""
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_REDUCED_COLOR_8)


def load_image(path: str | os.PathLike[str], max_side: int | None = None) -> np.ndarray:
    """Read a file and :func:`decode` it (unreadable files raise :class:`ImageError`)."""
    name = os.fsdecode(os.fspath(path))
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {_short(name)}: {exc.strerror or exc}") from exc
    return decode(data, name, max_side)


def crop(image: np.ndarray, box: tuple[float, float, float, float],
         original_size: tuple[int, int] | None = None) -> np.ndarray:
    """Cut ``box`` = (x, y, w, h), given in oriented original-pixel coordinates, out of ``image``.

    ``original_size`` is the oriented (width, height) of the original photo when ``image`` was
    decoded smaller; the box is scaled by decoded/original per axis and clipped to the image.
    """
    img_h, img_w = image.shape[:2]
    orig_w, orig_h = original_size or (img_w, img_h)
    sx, sy = img_w / orig_w, img_h / orig_h
    x, y, w, h = box
    x0, y0 = max(0, int(np.floor(x * sx))), max(0, int(np.floor(y * sy)))
    x1, y1 = min(img_w, int(np.ceil((x + w) * sx))), min(img_h, int(np.ceil((y + h) * sy)))
    if x1 <= x0 or y1 <= y0:
        raise ImageError(f"the box {tuple(box)} lies outside the {orig_w}x{orig_h} photo")
    return image[y0:y1, x0:x1]
