"""Small JPEG previews in a content-addressed cache, so browsing never decodes originals.

Thumbnails are named by the photo's sha256 and sharded ``ab/cd/<sha>_<size>.jpg`` so no folder
grows past a few hundred entries even with a million photos. They are a cache: written
atomically (temp file + ``os.replace``) so a crash never leaves a half-written JPEG under the
final name, but not fsync'ed, because a lost thumbnail is simply rebuilt from the original.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np

from wildid.errors import ImageError

__all__ = ["THUMB_SIDE", "make_thumbnail", "thumbnail_path", "write_thumbnail"]

THUMB_SIDE = 256
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def make_thumbnail(image_rgb: np.ndarray, max_side: int = THUMB_SIDE, quality: int = 85) -> bytes:
    """Encode an RGB (or grey) uint8 image as a JPEG whose long side is at most ``max_side``."""
    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise ImageError(f"cannot make a thumbnail from an array of {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGR if image.shape[2] == 4
                             else cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageError("the thumbnail could not be encoded as JPEG")
    return buf.tobytes()


def thumbnail_path(cache_dir: str | os.PathLike[str], sha256: str, size: int = THUMB_SIDE) -> Path:
    """Where the thumbnail of ``sha256`` lives: ``cache_dir/ab/cd/<sha256>_<size>.jpg``."""
    if not _SHA_RE.match(sha256):
        raise ValueError(f"not a lowercase sha256 hex digest: {sha256!r}")
    return Path(cache_dir) / sha256[:2] / sha256[2:4] / f"{sha256}_{size}.jpg"


def write_thumbnail(cache_dir: str | os.PathLike[str], sha256: str, jpeg_bytes: bytes,
                    size: int = THUMB_SIDE) -> Path:
    """Store ``jpeg_bytes`` atomically at :func:`thumbnail_path` and return that path."""
    target = thumbnail_path(cache_dir, sha256, size)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{sha256[:8]}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(jpeg_bytes)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache others may read like the originals
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
