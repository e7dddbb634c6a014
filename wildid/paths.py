"""Where wildid keeps things on this computer (platformdirs, never the working directory)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "wildid"


def data_dir() -> Path:
    """Per-user data folder; ``WILDID_HOME`` overrides it (tests, portable installs)."""
    override = os.environ.get("WILDID_HOME")
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_catalog_dir() -> Path:
    """The catalog opened when the user names none."""
    return data_dir() / "catalog"


def user_models_dir() -> Path:
    """Folder where users drop extra ONNX models with their manifests."""
    return data_dir() / "models"


def log_dir() -> Path:
    override = os.environ.get("WILDID_HOME")
    if override:
        return Path(override) / "logs"
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Per-user cache (model checksums and other things safe to delete)."""
    override = os.environ.get("WILDID_HOME")
    if override:
        return Path(override) / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
