"""Content hashes of photo files: the sha256 that names a photo everywhere in wildid.

The importer reads each file exactly once (``read_and_hash``) and decodes, probes and stores
the photo from those bytes, so a slow SD card or network share is read a single time.
``hash_file`` streams for the places that must not hold a whole file in memory (verifying the
media store, the sync client re-checking a blob before upload).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from wildid.errors import ImageError

__all__ = ["read_and_hash", "hash_file", "hash_bytes"]

_MIB = 1 << 20


def _read_error(path: str | os.PathLike[str], exc: OSError) -> ImageError:
    """Translate an OSError into the user-facing ImageError (the cause stays chained)."""
    name = os.fsdecode(os.fspath(path))
    reason = exc.strerror or exc.__class__.__name__
    if isinstance(exc, IsADirectoryError):
        reason = "it is a folder, not a file"
    elif isinstance(exc, FileNotFoundError):
        reason = ("the file does not exist (a broken link or a file removed during the import)")
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    return ImageError(f"cannot read {Path(name).name}: {reason}")


def hash_bytes(data: bytes) -> str:
    """sha256 hex digest of bytes already in memory."""
    return hashlib.sha256(data).hexdigest()


def read_and_hash(path: str | os.PathLike[str], max_bytes: int | None = None) -> tuple[bytes, str]:
    """Read the whole file once and return ``(bytes, sha256 hex)``.

    ``max_bytes`` guards against someone pointing the importer at a disk image or video:
    larger files raise :class:`ImageError` before being read. Any ``OSError`` (missing file,
    folder, dangling link, permission) becomes an :class:`ImageError` with a readable reason.
    """
    try:
        with open(path, "rb") as fh:
            if max_bytes is not None:
                size = os.fstat(fh.fileno()).st_size
                if size > max_bytes:
                    raise ImageError(
                        f"{Path(os.fsdecode(os.fspath(path))).name} is {size / _MIB:.0f} MiB, "
                        f"more than the {max_bytes / _MIB:.0f} MiB limit for a photo")
            data = fh.read()
    except OSError as exc:
        raise _read_error(path, exc) from exc
    return data, hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike[str], chunk: int = _MIB) -> str:
    """sha256 hex digest of a file, streamed ``chunk`` bytes at a time (constant memory)."""
    digest = hashlib.sha256()
    buf = bytearray(max(1, chunk))
    view = memoryview(buf)
    try:
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(view):
                digest.update(view[:n])
    except OSError as exc:
        raise _read_error(path, exc) from exc
    return digest.hexdigest()
