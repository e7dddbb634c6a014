"""Finding photos under the folders a user chose, without letting one bad folder stop the rest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from wildid.catalog.store import DB_NAME
from wildid.progress import CancelToken
from wildid.vision.formats import RAW_SUFFIXES, SUPPORTED_TYPES

PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif",
                              ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mts", ".m2ts", ".mkv", ".3gp",
                              ".wmv", ".m4v", ".mpg", ".mpeg", ".lrv"})
SIDECAR_EXTENSIONS = frozenset({".xmp", ".thm", ".aae", ".ctg", ".ind", ".bdm", ".cpi", ".mpl"})


@dataclass
class ScanResult:
    """Candidate photo files in a stable order, plus what could not be scanned and why."""

    files: list[Path] = field(default_factory=list)
    issues: list[tuple[str, str]] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    """Files in the scanned folders that are not photo types wildid reads, counted by
    lower-case extension ("" for none). Counted, not listed one by one: a card shot RAW+JPEG
    holds as many RAW files as photos, and those are expected, not errors."""
    catalogs: list[str] = field(default_factory=list)
    """wildid catalog folders under the chosen ones, left out whole: their media and
    thumbnails are copies of photos already in a catalog (this one's, when a user imports the
    folder that holds it), and their thumbnails would come in as new animals."""


def file_kind(extension: str) -> str:
    """What a file with this extension is, in a user's words (for the ignored-files line)."""
    ext = extension.lower()
    if ext in RAW_SUFFIXES:
        return "camera RAW"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in SIDECAR_EXTENSIONS:
        return "camera sidecar"
    return "not a photo type wildid reads"


def describe_ignored(ignored: dict[str, int]) -> str:
    """One line for the import report: "312 .cr2 (camera RAW), 4 .mp4 (video)", most first.

    When RAW files are among them, the line says what to do, since a RAW-only card is the
    one case where a photographer gets nothing imported and would not know why.
    """
    if not ignored:
        return ""
    order = sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{n:,} {ext or '(no extension)'} ({file_kind(ext)})" for ext, n in order]
    text = ", ".join(parts)
    if any(ext in RAW_SUFFIXES for ext in ignored):
        text += (f". wildid reads {SUPPORTED_TYPES}: import the camera's JPEGs, or export JPEGs "
                 "from your RAW converter")
    return text


def describe_catalogs(catalogs: list[str]) -> str:
    """One line for the import report on the catalog folders left out, "" for none."""
    if not catalogs:
        return ""
    which = "the wildid catalog in " if len(catalogs) == 1 else f"{len(catalogs)} wildid catalogs: "
    return (f"{which}{', '.join(catalogs)} (its originals and thumbnails are photos a catalog "
            "holds already; import the camera's folders instead)")


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
    symlinks are followed once (a visited set of device+inode stops loops). wildid catalog
    folders are left out (``ScanResult.catalogs``).
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
        if any(entry.name == DB_NAME for entry in entries):
            result.catalogs.append(display_path(folder))
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
            else:
                ext = path.suffix.lower()
                result.ignored[ext] = result.ignored.get(ext, 0) + 1
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
                result.issues.append((display_path(path), _unsupported(path.suffix)))
        else:
            result.issues.append((display_path(path), "no such file or folder"))
    return result


def _unsupported(extension: str) -> str:
    kind = file_kind(extension)
    named = "" if kind.startswith("not ") else f"{kind}; "
    return f"not a supported photo type ({named}wildid reads {SUPPORTED_TYPES})"


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__
