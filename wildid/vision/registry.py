"""Which models exist (shipped with wildid or added by the user), whether they are intact,
and which embedder is active.

Only the embedder is the user's choice here (``CHOSEN_TASKS``): the keypoint model and the
matcher come from each species profile, because a profile's re-ranking calibration is fitted
to the evidence of one keypoint model matched by one matcher, and neither can change alone
(which profile uses which model: :mod:`wildid.engine.model_uses`).

Shipped models live in ``models/`` at the repository root (or ``sys._MEIPASS/models`` in
a PyInstaller build); user models in a folder the caller passes (the app uses
``platformdirs.user_data_dir("wildid")/models``).  Every ``*.json`` there is a manifest.

Checking a file's sha256 reads it whole (LightGlue is ~48 MB), so verified digests are
cached by (path, size, mtime): opening the app re-hashes only files that changed.  The
cache may be persisted to a JSON file the caller names.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wildid.errors import ModelError
from wildid.vision.manifest import TASKS, ModelManifest, load_manifest

if TYPE_CHECKING:
    from wildid.vision.embedder import GlobalEmbedder
    from wildid.vision.keypoints import KeypointExtractor, LightGlueMatcher

FIX_HINT = "run `make models` (from a source checkout) or reinstall wildid"
# tasks whose model the user chooses (``set_active``); the others are chosen by species profiles
CHOSEN_TASKS = ("embedder",)


def shipped_models_dir() -> Path:
    """The folder of models that ship with wildid (PyInstaller bundle or source tree)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "models"
    import wildid

    return Path(wildid.__file__).resolve().parent.parent / "models"


class ModelStatus(enum.StrEnum):
    OK = "ok"
    MISSING_FILE = "missing file"
    SHA256_MISMATCH = "sha256 mismatch"
    BAD_MANIFEST = "bad manifest"


@dataclass(frozen=True)
class ModelEntry:
    """One manifest found on disk, with its health; ``manifest`` is None when unreadable."""

    manifest_path: Path
    source: str  # "shipped" | "user"
    status: ModelStatus
    problem: str = ""
    manifest: ModelManifest | None = None

    @property
    def id(self) -> str:
        return self.manifest.id if self.manifest else self.manifest_path.stem

    @property
    def task(self) -> str:
        return self.manifest.task if self.manifest else ""

    @property
    def version(self) -> str:
        return self.manifest.version if self.manifest else ""

    @property
    def ok(self) -> bool:
        return self.status is ModelStatus.OK


class HashCache:
    """sha256 digests keyed by (resolved path, size, mtime_ns); optionally saved as JSON."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, int | str]] = {}
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict):
                    self._entries = {k: v for k, v in data.items() if isinstance(v, dict)}
            except (OSError, ValueError):
                self._entries = {}  # a corrupt cache only costs a re-hash

    def digest(self, file: Path) -> str:
        """The file's sha256, from the cache when size and mtime are unchanged."""
        st = file.stat()
        key = str(file.resolve())
        with self._lock:
            hit = self._entries.get(key)
            if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
                return str(hit["sha256"])
        h = hashlib.sha256()
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        with self._lock:
            self._entries[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            self._save()
        return digest

    def _save(self) -> None:
        if self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._entries, indent=1), encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError:
            pass  # a cache that cannot be written only costs a re-hash next time


def check_file(manifest: ModelManifest, cache: HashCache | None = None) -> tuple[ModelStatus, str]:
    """Status of the model file a manifest points at (and of its stages' files, when it ships
    in stages too), and a message for the user."""
    cache = cache or HashCache()
    files = [(manifest.model_path, manifest.sha256, manifest.size_bytes)]
    files += [(manifest.stage_path(name), s.sha256, s.size_bytes) for name, s in manifest.stages.items()]
    for file, sha, expected in files:
        status, problem = _check_one(file, sha, expected, manifest, cache)
        if status is not ModelStatus.OK:
            return status, problem
    return ModelStatus.OK, ""


def _check_one(file: Path, sha: str, expected: int | None, manifest: ModelManifest,
               cache: HashCache) -> tuple[ModelStatus, str]:
    if not file.is_file():
        return ModelStatus.MISSING_FILE, (
            f"model file {file} is missing (named by {manifest.path.name}); {FIX_HINT}"
        )
    try:
        size = file.stat().st_size
        got = cache.digest(file)
    except OSError as exc:
        return ModelStatus.MISSING_FILE, f"model file {file} cannot be read: {exc}; {FIX_HINT}"
    if got != sha:
        if expected is not None and size < expected:
            what = f"is truncated ({size} of {expected} bytes)"
        elif expected is not None and size > expected:
            what = f"is too long ({size} bytes, expected {expected})"
        else:
            what = "is damaged or was replaced"
        return ModelStatus.SHA256_MISMATCH, (
            f"model file {file} {what}: expected sha256 {sha}, got {got}; {FIX_HINT}"
        )
    return ModelStatus.OK, ""


class ModelRegistry:
    """Discovers shipped and user models, tracks the active model per task, opens models."""

    def __init__(
        self,
        user_dir: Path | None = None,
        settings_path: Path | None = None,
        shipped_dir: Path | None = None,
        hash_cache_path: Path | None = None,
    ) -> None:
        self.shipped_dir = Path(shipped_dir) if shipped_dir else shipped_models_dir()
        self.user_dir = Path(user_dir) if user_dir else None
        self.settings_path = Path(settings_path) if settings_path else None
        self.cache = HashCache(Path(hash_cache_path) if hash_cache_path else None)
        self._entries: list[ModelEntry] | None = None

    # ------------------------------------------------------------------ discovery
    def refresh(self) -> list[ModelEntry]:
        """Re-scan both folders (e.g. after the user added a model)."""
        entries: list[ModelEntry] = []
        seen: dict[str, ModelEntry] = {}
        folders = [(self.shipped_dir, "shipped")]
        if self.user_dir is not None:
            folders.append((self.user_dir, "user"))
        for folder, source in folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.json")):
                entry = self._inspect(path, source)
                if entry.manifest is not None and entry.id in seen:
                    other = seen[entry.id]
                    entry = ModelEntry(
                        path, source, ModelStatus.BAD_MANIFEST,
                        f"{path}: id {entry.id!r} is already used by {other.manifest_path}",
                        entry.manifest,
                    )
                elif entry.manifest is not None:
                    seen[entry.id] = entry
                entries.append(entry)
        self._entries = entries
        return list(entries)

    def list(self, task: str | None = None) -> list[ModelEntry]:
        """All models found (scanned once, then cached), optionally for one task."""
        if self._entries is None:
            self.refresh()
        assert self._entries is not None
        return [e for e in self._entries if task is None or e.task == task]

    def get(self, model_id: str) -> ModelEntry:
        for entry in self.list():
            usable = entry.manifest is not None and entry.status is not ModelStatus.BAD_MANIFEST
            if usable and entry.id == model_id:
                return entry
        raise ModelError(f"no model with id {model_id!r} (looked in {self._folders_text()})")

    def _inspect(self, path: Path, source: str) -> ModelEntry:
        try:
            manifest = load_manifest(path)
        except ModelError as exc:
            return ModelEntry(path, source, ModelStatus.BAD_MANIFEST, str(exc))
        status, problem = check_file(manifest, self.cache)
        return ModelEntry(path, source, status, problem, manifest)

    def _folders_text(self) -> str:
        folders = [str(self.shipped_dir)] + ([str(self.user_dir)] if self.user_dir else [])
        return " and ".join(folders)

    # ------------------------------------------------------------------ active model
    def _settings(self) -> dict[str, str]:
        if self.settings_path is None or not self.settings_path.is_file():
            return {}
        try:
            data = json.loads(self.settings_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # unreadable choices fall back to the shipped defaults
        active = data.get("active", {}) if isinstance(data, dict) else {}
        return {k: v for k, v in active.items() if isinstance(k, str) and isinstance(v, str)}

    def set_active(self, task: str, model_id: str | None) -> None:
        """Choose the model for ``task`` (None: back to the shipped default) and persist it."""
        if task not in TASKS:
            raise ModelError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
        if model_id is not None and task == "detector":
            raise ModelError("no part of wildid uses a detector model yet: annotation boxes "
                             "come from import (the whole photo) and from the desktop app")
        if model_id is not None and task not in CHOSEN_TASKS:
            raise ModelError(
                f"{task} models are chosen by each species profile, not here: a profile names "
                "the keypoint model and the matcher that its re-ranking was calibrated for "
                "(`keypoint_model`, `matcher_model`); to use others, change them in your copy "
                "of the profile and refit it with `wildid calibrate` (docs/identification.md, "
                "Species profiles)")
        if model_id is not None:
            entry = self.get(model_id)
            if entry.task != task:
                raise ModelError(f"model {model_id!r} is for task {entry.task}, not {task}")
            if not entry.ok:
                raise ModelError(f"model {model_id!r} cannot be used: {entry.problem}")
        active = self._settings()
        if model_id is None:
            active.pop(task, None)
        else:
            active[task] = model_id
        if self.settings_path is None:
            raise ModelError("no settings file was given, so the model choice cannot be saved")
        try:
            self.settings_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.settings_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"active": active}, indent=2), encoding="utf-8")
            os.replace(tmp, self.settings_path)
        except OSError as exc:
            raise ModelError(f"cannot save the model choice to {self.settings_path}: {exc}") from exc

    def active(self, task: str) -> ModelEntry:
        """The chosen model for ``task``, else the shipped one; ModelError when there is none."""
        chosen = self._settings().get(task)
        if chosen is not None:
            for entry in self.list(task):
                if entry.id == chosen and entry.manifest is not None:
                    return entry
        shipped = [e for e in self.list(task) if e.source == "shipped" and e.manifest is not None]
        # a shipped manifest may mark itself the default (params.default) for its task
        shipped.sort(key=lambda e: not (e.manifest and e.manifest.params.get("default")))
        if shipped:
            return next((e for e in shipped if e.ok), shipped[0])
        users = [e for e in self.list(task) if e.ok]
        if users:
            return users[0]
        raise ModelError(f"no {task} model is installed (looked in {self._folders_text()}); {FIX_HINT}")

    # ------------------------------------------------------------------ loading
    def verified(self, entry_or_id: ModelEntry | str | None = None, task: str | None = None) -> ModelManifest:
        """The manifest of a model whose file is present and intact (checked now, cached)."""
        if isinstance(entry_or_id, ModelEntry):
            entry = entry_or_id
        elif isinstance(entry_or_id, str):
            entry = self.get(entry_or_id)
        elif task is not None:
            entry = self.active(task)
        else:
            raise ModelError("name a model or a task")
        if entry.manifest is None:
            raise ModelError(entry.problem)
        if task is not None and entry.task != task:
            raise ModelError(f"model {entry.id!r} is for task {entry.task}, not {task}")
        status, problem = check_file(entry.manifest, self.cache)
        if status is not ModelStatus.OK:
            raise ModelError(problem)
        return entry.manifest

    def embedder(self, model_id: str | None = None, threads: int = 2) -> GlobalEmbedder:
        from wildid.vision.embedder import GlobalEmbedder

        return GlobalEmbedder(self.verified(model_id, task="embedder"), threads=threads)

    def keypoint_extractor(self, model_id: str | None = None, threads: int = 2) -> KeypointExtractor:
        from wildid.vision.keypoints import KeypointExtractor

        return KeypointExtractor(self.verified(model_id, task="keypoints"), threads=threads)

    def matcher(self, model_id: str | None = None, threads: int = 1) -> LightGlueMatcher:
        """One thread per pair by default: the re-ranking matches its pairs two at a time
        (``wildid.matching.parallel``), faster than one pair at a time on two threads."""
        from wildid.vision.keypoints import LightGlueMatcher

        return LightGlueMatcher(self.verified(model_id, task="matcher"), threads=threads)
