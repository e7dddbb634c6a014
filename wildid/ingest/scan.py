"""Finding photos under the folders a user chose, without letting one bad folder stop the rest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from wildid.progress import CancelToken

PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif"})


@dataclass
class ScanResult:
    """Candidate photo files in a stable order, plus what could not be scanned and why."""

    files: list[Path] = field(default_factory=list)
    issues: list[tuple[str, str]] = field(default_factory=list)


def display_path(path: Path | str) -> str:
    """A printable, storable form of a path, even when its bytes are not valid UTF-8."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="replace")


def _is_hidden(name: str) -> bool:
    # "._IMG_0001.JPG" are macOS resource forks on FAT cards, not photos.
    return name.startswith(".")


def scan_paths(paths: list[Path], cancel: CancelToken | None = None) -> ScanResult:
    """Recursively list photo files under ``paths`` (files may be given directly too).

    Folders that vanish or cannot be listed mid-scan are reported, never fatal. Directory
    symlinks are followed once (a visited set of device+inode stops loops).
    """
    result = ScanResult()
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def add_file(path: Path) -> None:
        key = os.fsdecode(os.path.abspath(path))
        if key not in seen_files:
            seen_files.add(key)
            result.files.append(path)

    def walk(folder: Path) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            st = folder.stat()
        except OSError as exc:
            result.issues.append((display_path(folder), f"folder cannot be read: {_reason(exc)}"))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except FileNotFoundError:
            result.issues.append((display_path(folder), "folder disappeared during the scan"))
            return
        except OSError as exc:
            result.issues.append((display_path(folder), f"folder cannot be read: {_reason(exc)}"))
            return
        subdirs: list[Path] = []
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(path)
            elif path.suffix.lower() in PHOTO_EXTENSIONS:
                add_file(path)
        for sub in subdirs:
            walk(sub)

    for given in paths:
        path = Path(given)
        if path.is_dir():
            walk(path)
        elif path.is_file() or path.is_symlink():
            if path.suffix.lower() in PHOTO_EXTENSIONS:
                add_file(path)
            else:
                result.issues.append((display_path(path), "not a supported photo type "
                                      "(JPEG, PNG, TIFF, HEIC)"))
        else:
            result.issues.append((display_path(path), "no such file or folder"))
    return result


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__
