"""Shared fixtures. Every test gets its own WILDID_HOME so a developer's real catalog,
settings and models folder never leak into tests (and tests never touch them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("wildid-home")
    monkeypatch.setenv("WILDID_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    return home


@pytest.fixture
def catalog(tmp_path: Path):
    """A fresh, migrated catalog in tmp_path."""
    from wildid.catalog import open_catalog

    cat = open_catalog(tmp_path / "catalog")
    yield cat
    cat.close()


def shared_dataset(name: str) -> Path:
    """Path to ../shared/datasets/<name>/manifest.csv, or skip the test when it is absent."""
    manifest = DATASETS / name / "manifest.csv"
    if not manifest.exists():
        pytest.skip(f"{manifest} not available (../shared is absent)")
    return manifest
