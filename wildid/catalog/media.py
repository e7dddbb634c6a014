"""Content-addressed media store: originals saved under their sha256.

Copy-in is the default because field cards get wiped: once imported, a photo lives in the
catalog folder. Writes are atomic (temp file + rename) so a killed import never leaves a
half-written original behind under a valid name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from wildid.catalog.failures import disk_full_message, is_disk_full
from wildid.errors import CatalogError, DiskFullError


class MediaStore:
    """Stores bytes at ``<root>/<ab>/<cd>/<sha256><ext>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def relative_path(self, sha256: str, ext: str) -> str:
        ext = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{ext}"

    def put(self, sha256: str, ext: str, data: bytes) -> str:
        """Store ``data`` (already hashed to ``sha256``); return its path relative to the store."""
        rel = self.relative_path(sha256, ext)
        target = self.root / rel
        if target.exists() and target.stat().st_size == len(data):
            return rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=ext)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if is_disk_full(exc):
                raise DiskFullError(disk_full_message(self.root)) from exc
            raise CatalogError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return rel

    def path(self, rel: str) -> Path:
        return self.root / rel

    def size_bytes(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(dirpath, name))
                except OSError:
                    continue
        return total
