"""The engine's index saved inside the catalog folder, so a start restores it instead of
building it from every annotation's features again.

Why: the first match after a start (``wildid match``, the app's first identification job,
``wildid calibrate``) builds the index from the catalog: ~15 s for 2,500 nyala annotations and
~85 s for 10,000 on a 2-core laptop, most of it assigning descriptor rows to inverted lists.
Restoring the lists it built reads a file instead (docs/identification.md, Scale).

Where: ``<catalog>/cache/index/<profile>.npz``, one file per species profile; safe to delete
(the next match builds it again). It is large: about the index's memory (~270 KB per nyala
annotation, ~135 KB per lion one).

What keeps it honest: the file names the annotations it holds with their individual, species,
viewpoint and the ids of the feature rows they were indexed from. After restoring, the engine
compares that with the catalog as it does at every sync, so annotations labelled, relabelled,
merged, removed or re-extracted since are applied as one small difference, whoever changed
the catalog meanwhile (another copy of wildid, a restored backup). A file from another wildid
version, with other profile settings or other feature models, or that does not read back whole,
is not used (a warning is logged and the index is built).

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
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from wildid import __version__
from wildid.errors import MatchingError
from wildid.matching.identifier import Identifier
from wildid.matching.index_state import identifier_state, restore_identifier

log = logging.getLogger(__name__)

__all__ = ["CACHE_FORMAT", "index_path", "read_index", "remove_index", "write_index"]

CACHE_FORMAT = 1
_META = "meta.json"
# a half-written file this old was abandoned (writing one takes seconds)
ABANDONED_AFTER_S = 3600
# disk space a save leaves free at least, for the catalog and everything else
KEEP_FREE_BYTES = 2_000_000_000


def index_path(catalog_root: Path, profile: str) -> Path:
    """Where the index of ``profile`` is kept for the catalog at ``catalog_root``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", profile) or "_"
    return catalog_root / "cache" / "index" / f"{safe}.npz"


def write_index(path: Path, ident: Identifier, header: Mapping[str, Any]) -> int:
    """Save ``ident``'s index with ``header`` (what :func:`read_index` checks); returns bytes.

    Raises OSError when the folder cannot be written (the old file, if any, stays).
    """
    meta, arrays = identifier_state(ident)
    doc = {"cache": CACHE_FORMAT, "wildid": __version__, "header": dict(header), "state": meta}
    blob = np.frombuffer(json.dumps(doc).encode("utf-8"), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    size = blob.nbytes + sum(a.nbytes for a in arrays.values())
    free = shutil.disk_usage(path.parent).free
    if free - size < KEEP_FREE_BYTES:
        # the catalog database shares this disk: a cache must not take the room its next
        # write needs
        raise OSError(errno.ENOSPC, f"{size / 1e6:.0f} MB would leave less than "
                      f"{KEEP_FREE_BYTES / 1e9:.0f} GB free ({free / 1e6:.0f} MB free)")
    # a fresh name, created with the umask's permissions like the rest of the catalog folder
    # (mkstemp's would be owner-only)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **{_META: blob}, **arrays)
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
        with np.load(path, allow_pickle=False) as files:
            doc = json.loads(files[_META].tobytes().decode("utf-8"))
            if doc.get("cache") != CACHE_FORMAT or doc.get("wildid") != __version__:
                raise MatchingError(f"it was saved by another version of wildid "
                                    f"({doc.get('wildid')})")
            saved = doc["header"]
            for key, value in header.items():
                if saved.get(key) != value:
                    raise MatchingError(f"its {key} changed since it was saved")
            restore_identifier(ident, doc["state"], files)
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise MatchingError(f"it cannot be read ({exc})") from exc
    return saved


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
