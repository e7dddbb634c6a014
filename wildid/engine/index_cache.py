"""The engine's index saved inside the catalog folder, so a start restores it instead of
building it from every annotation's features again.

Why: the first match after a start (``wildid match``, the app's first identification job,
``wildid calibrate``) builds the index from the catalog: ~15 s for 2,500 nyala annotations and
~75-85 s for 10,000 on a 2-core laptop, most of it assigning descriptor rows to inverted
lists. Restoring the lists it built reads a file instead: 0.7 s and 2.5 s (docs/
identification.md, Scale, "The saved index").

Where: ``<catalog>/cache/index/<profile>.index``, one file per species profile; safe to delete
(the next match builds it again). It is large: about the index's memory (~370 KB per nyala
annotation with its learned keypoints; less for lion).

What keeps it honest: the file names the annotations it holds with their individual, species,
viewpoint and the ids of the feature rows they were indexed from. After restoring, the engine
compares that with the catalog as it does at every sync, so annotations labelled, relabelled,
merged, removed or re-extracted since are applied as one small difference, whoever changed
the catalog meanwhile (another copy of wildid, a restored backup). A file from another wildid
version, with other profile settings or other feature models, or that does not read back whole
(each array carries its CRC-32), is not used (a warning is logged and the index is built).

Crash safety: a file is written beside the old one and moved over it only once complete and
flushed to disk, so a crash or a full disk leaves the previous file (or none), never half of one.
A save that would leave less than ``KEEP_FREE_BYTES`` free is not attempted: the catalog's
database lives on the same disk.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import shutil
import struct
import time
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from wildid import __version__
from wildid.errors import MatchingError
from wildid.matching.identifier import Identifier
from wildid.matching.index_state import clear_identifier, identifier_state, restore_identifier

log = logging.getLogger(__name__)

__all__ = ["CACHE_FORMAT", "index_path", "read_index", "remove_index", "write_index"]

CACHE_FORMAT = 2  # 1: a NumPy .npz (slower to read: member copies and zip checksums)
# The file: this head (magic, bytes of array data, bytes of JSON), the arrays (each at a
# multiple of 64 bytes), then the JSON that names them (dtype, shape, offset, size, CRC-32)
# with the header and the identifier's state.
_MAGIC = b"WILDIDX\x02"
_HEAD = struct.Struct("<8sQQ")
# a half-written file this old was abandoned (writing one takes seconds)
ABANDONED_AFTER_S = 3600
# disk space a save leaves free at least, for the catalog and everything else
KEEP_FREE_BYTES = 2_000_000_000


def index_path(catalog_root: Path, profile: str) -> Path:
    """Where the index of ``profile`` is kept for the catalog at ``catalog_root``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", profile) or "_"
    return catalog_root / "cache" / "index" / f"{safe}.index"


def write_index(path: Path, ident: Identifier, header: Mapping[str, Any]) -> int:
    """Save ``ident``'s index with ``header`` (what :func:`read_index` checks); returns bytes.

    Raises OSError when the folder cannot be written (the old file, if any, stays).
    """
    meta, arrays = identifier_state(ident)
    table, offset = [], 0
    for name, a in arrays.items():
        offset = _aligned(offset)
        table.append([name, a.dtype.str, list(a.shape), offset, a.nbytes])
        offset += a.nbytes
    doc = {"cache": CACHE_FORMAT, "wildid": __version__, "header": dict(header), "state": meta,
           "arrays": table}
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    free = shutil.disk_usage(path.parent).free
    if free - offset < KEEP_FREE_BYTES:
        # the catalog database shares this disk: a cache must not take the room its next
        # write needs
        raise OSError(errno.ENOSPC, f"{offset / 1e6:.0f} MB would leave less than "
                      f"{KEEP_FREE_BYTES / 1e9:.0f} GB free ({free / 1e6:.0f} MB free)")
    # a fresh name, created with the umask's permissions like the rest of the catalog folder
    # (mkstemp's would be owner-only)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            crcs = []
            f.seek(_HEAD.size)  # the head and the JSON go last, once the checksums are known
            for (_, _, _, at, _), a in zip(table, arrays.values(), strict=True):
                data = _bytes_of(np.ascontiguousarray(a))
                crcs.append(zlib.crc32(data))
                f.seek(_HEAD.size + at)
                f.write(data)
            body = f.tell() - _HEAD.size
            for row, crc in zip(table, crcs, strict=True):
                row.append(crc)
            text = json.dumps(doc).encode("utf-8")
            f.write(text)
            f.seek(0)
            f.write(_HEAD.pack(_MAGIC, body, len(text)))
            f.flush()
            os.fsync(f.fileno())
        size = os.path.getsize(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return size


def read_index(path: Path, ident: Identifier, header: Mapping[str, Any]) -> dict[str, Any]:
    """Restore the index saved at ``path`` into the empty ``ident``; returns the saved header.

    ``header`` holds what must be equal for the file to be used (settings, models): a file
    whose header differs there, of another version, or damaged raises
    :class:`~wildid.errors.MatchingError` saying why, and ``ident`` stays empty.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
            if len(head) != _HEAD.size or head[:len(_MAGIC)] != _MAGIC:
                raise MatchingError("it is not a saved index of this format")
            _, body, text_size = _HEAD.unpack(head)
            f.seek(_HEAD.size + body)
            text = f.read(text_size)
            if len(text) != text_size:
                raise MatchingError("it is truncated")
            doc = json.loads(text.decode("utf-8"))
            if doc.get("cache") != CACHE_FORMAT or doc.get("wildid") != __version__:
                raise MatchingError(f"it was saved by another version of wildid "
                                    f"({doc.get('wildid')})")
            saved = doc["header"]
            for key, value in header.items():
                if saved.get(key) != value:
                    raise MatchingError(f"its {key} changed since it was saved")
            with _Arrays(f, doc["arrays"], body) as arrays:
                restore_identifier(ident, doc["state"], arrays)
                try:
                    arrays.verify()
                except MatchingError:
                    clear_identifier(ident)
                    raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, struct.error) as exc:
        # (not from restoring: restore_identifier empties ``ident`` and raises MatchingError)
        raise MatchingError(f"it cannot be read ({exc})") from exc
    return saved


class _Arrays(Mapping[str, np.ndarray]):
    """The file's arrays by name, each read when asked for; :meth:`verify` checks them all
    against their CRC-32s.

    The checksums are computed on a second thread while the next arrays are read and
    restored (``zlib`` and file reads both release the GIL): at 10,000 nyala annotations that is
    ~0.7 s of reading 3.8 GB. Until :meth:`verify` returns, what was read is not trusted.
    """

    def __init__(self, f: BinaryIO, table: list[list[Any]], body: int) -> None:
        self._f, self._body = f, body
        self._table = {row[0]: row[1:] for row in table}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wildid-crc")
        self._checks: list[tuple[str, int, Future[int]]] = []

    def __enter__(self) -> _Arrays:
        return self

    def __exit__(self, *exc: object) -> None:
        for _, _, fut in self._checks:
            fut.cancel()
        self._pool.shutdown(wait=True)

    def __getitem__(self, name: str) -> np.ndarray:
        dtype, shape, at, nbytes, crc = self._table[name]
        dtype = np.dtype(dtype)
        if dtype.hasobject or at < 0 or at + nbytes > self._body or nbytes != dtype.itemsize * int(
                np.prod(shape, dtype=np.int64)):
            raise MatchingError(f"saved index: {name} lies outside the file")
        self._f.seek(_HEAD.size + at)
        out = np.empty(shape, dtype)
        view = _bytes_of(out)
        done = 0
        while done < nbytes:  # one read into the array itself: no copy
            got = self._f.readinto(memoryview(view)[done:])  # type: ignore[attr-defined]
            if not got:
                raise MatchingError(f"saved index: {name} is truncated")
            done += got
        # restoring only reads the arrays until verify() (it changes none in place)
        self._checks.append((name, crc, self._pool.submit(zlib.crc32, view)))
        return out

    def verify(self) -> None:
        """Raise ``MatchingError`` naming the first array that does not match its checksum."""
        for name, crc, fut in self._checks:
            if fut.result() != crc:
                raise MatchingError(f"saved index: {name} is damaged (checksum)")

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def _aligned(offset: int) -> int:
    return -(-offset // 64) * 64


def _bytes_of(a: np.ndarray) -> np.ndarray:
    """A C-contiguous array's memory as flat bytes (a view, empty arrays included)."""
    return a.reshape(-1).view(np.uint8)


def remove_index(path: Path) -> None:
    """Forget the saved index (nothing of the profile is indexed any more)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the saved index %s: %s", path, exc)


def _remove_abandoned(path: Path) -> None:
    """Delete half-written files a killed process left (a nyala one can be gigabytes); one
    another process is writing now is younger than ``ABANDONED_AFTER_S``."""
    now = time.time()
    for tmp in path.parent.glob(f"{path.stem}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > ABANDONED_AFTER_S:
                tmp.unlink()
        except OSError:
            pass  # gone meanwhile, or not ours to delete


def _sync_folder(folder: Path) -> None:
    """Flush the rename itself (POSIX; Windows has no directory handles to flush)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
