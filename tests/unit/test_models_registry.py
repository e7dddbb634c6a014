"""Model registry: discovery of shipped and user models, health checks, the active choice."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from wildid.errors import ModelError
from wildid.vision.registry import HashCache, ModelRegistry, ModelStatus, shipped_models_dir


def add_user_model(
    folder: Path, model_id: str, payload: bytes = b"not really onnx", *, task: str = "embedder",
    sha: str | None = None, truncate_to: int | None = None, write_file: bool = True, **extra: Any,
) -> Path:
    """A user model whose manifest describes ``payload``; the file on disk may be cut short."""
    folder.mkdir(parents=True, exist_ok=True)
    if write_file:
        (folder / f"{model_id}.onnx").write_bytes(payload[:truncate_to])
    manifest = {
        "manifest_version": 1, "id": model_id, "version": "1", "task": task,
        "file": f"{model_id}.onnx",
        "sha256": sha or hashlib.sha256(payload).hexdigest(),
        "size_bytes": len(payload),
        "input": {"name": "x", "size": [8, 8]},
        "outputs": [{"name": "y"}],
        "licence": {"spdx": "MIT"},
        **extra,
    }
    path = folder / f"{model_id}.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(user_dir=tmp_path / "user", settings_path=tmp_path / "settings" / "models.json")


def test_shipped_models_are_found_and_intact(registry: ModelRegistry) -> None:
    entries = {e.id: e for e in registry.list()}
    for model_id, task in (("efficientnet_lite0_embed", "embedder"), ("aliked_n16", "keypoints")):
        entry = entries[model_id]
        assert entry.source == "shipped" and entry.task == task
        assert entry.status is ModelStatus.OK, entry.problem
    # the re-identification model marks itself the default embedder (params.default)
    assert registry.active("embedder").id == "reid_lite0_nyala_lion"
    assert registry.active("keypoints").id == "aliked_n16"


def test_shipped_dir_resolves_in_source_tree_and_pyinstaller_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert (shipped_models_dir() / "efficientnet_lite0_embed.json").is_file()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert shipped_models_dir() == tmp_path / "models"


def test_user_models_are_listed_with_their_status(registry: ModelRegistry, tmp_path: Path) -> None:
    user = tmp_path / "user"
    add_user_model(user, "good")
    add_user_model(user, "damaged", sha="0" * 64)
    add_user_model(user, "cut", payload=b"0123456789", truncate_to=4)
    add_user_model(user, "gone", write_file=False)
    (user / "broken.json").write_text("{", encoding="utf-8")
    add_user_model(user, "efficientnet_lite0_embed")  # clashes with a shipped id
    entries = {(e.source, e.id): e for e in registry.list()}
    assert entries[("user", "good")].status is ModelStatus.OK
    assert entries[("user", "damaged")].status is ModelStatus.SHA256_MISMATCH
    assert entries[("user", "cut")].status is ModelStatus.SHA256_MISMATCH
    assert "truncated" in entries[("user", "cut")].problem
    assert entries[("user", "gone")].status is ModelStatus.MISSING_FILE
    assert entries[("user", "broken")].status is ModelStatus.BAD_MANIFEST
    clash = entries[("user", "efficientnet_lite0_embed")]
    assert clash.status is ModelStatus.BAD_MANIFEST and "already used" in clash.problem
    # the shipped one keeps its id
    assert registry.get("efficientnet_lite0_embed").source == "shipped"
    assert {e.id for e in registry.list("embedder") if e.source == "user" and e.ok} == {"good"}


def test_a_manifest_saved_with_a_byte_order_mark_is_read(registry: ModelRegistry,
                                                          tmp_path: Path) -> None:
    """Windows Notepad saves UTF-8 with a byte order mark; a manifest edited there was listed
    as "bad manifest: Unexpected UTF-8 BOM"."""
    path = add_user_model(tmp_path / "user", "edited")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert registry.get("edited").status is ModelStatus.OK


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"sha": "0" * 64}, ["expected sha256 " + "0" * 64, "got "]),
        ({"payload": b"x" * 1000, "truncate_to": 600}, ["truncated (600 of 1000 bytes)", "expected sha256"]),
        ({"write_file": False}, ["missing"]),
    ],
)
def test_loading_a_broken_model_names_the_file_and_the_fix(
    registry: ModelRegistry, tmp_path: Path, kwargs: dict[str, Any], words: list[str]
) -> None:
    add_user_model(tmp_path / "user", "broken", **kwargs)
    with pytest.raises(ModelError) as err:
        registry.verified("broken")
    message = str(err.value)
    assert str(tmp_path / "user" / "broken.onnx") in message
    assert "make models" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("stage_payload", "truncate_to", "status", "words"),
    [
        (None, None, ModelStatus.MISSING_FILE, "is missing"),
        (b"y" * 500, 200, ModelStatus.SHA256_MISMATCH, "truncated (200 of 500 bytes)"),
        (b"y" * 500, None, ModelStatus.OK, ""),
    ],
)
def test_a_model_in_stages_is_intact_only_with_every_stage_file(
    registry: ModelRegistry, tmp_path: Path, stage_payload: bytes | None, truncate_to: int | None,
    status: ModelStatus, words: str,
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    stages = {"describe": {"file": "kp_describe.onnx", "sha256": hashlib.sha256(b"d").hexdigest()}}
    (user / "kp_describe.onnx").write_bytes(b"d")
    payload = stage_payload or b"y" * 500
    stages["detect"] = {"file": "kp_detect.onnx", "sha256": hashlib.sha256(payload).hexdigest(),
                        "size_bytes": len(payload)}
    if stage_payload is not None:
        (user / "kp_detect.onnx").write_bytes(stage_payload[:truncate_to])
    add_user_model(user, "kp", task="keypoints", stages=stages)
    entry = registry.get("kp")
    assert entry.status is status
    if status is not ModelStatus.OK:
        assert str(user / "kp_detect.onnx") in entry.problem and words in entry.problem
        with pytest.raises(ModelError, match="make models"):
            registry.verified("kp")


def test_a_file_damaged_after_listing_is_caught_when_loading(registry: ModelRegistry, tmp_path: Path) -> None:
    add_user_model(tmp_path / "user", "later")
    assert registry.get("later").ok
    (tmp_path / "user" / "later.onnx").write_bytes(b"other bytes, other size")
    with pytest.raises(ModelError, match="expected sha256"):
        registry.verified("later")


def test_active_choice_is_persisted_and_validated(registry: ModelRegistry, tmp_path: Path) -> None:
    user = tmp_path / "user"
    add_user_model(user, "mine")
    add_user_model(user, "bad", sha="1" * 64)
    add_user_model(user, "points", task="keypoints")
    registry.set_active("embedder", "mine")
    again = ModelRegistry(user_dir=user, settings_path=tmp_path / "settings" / "models.json")
    assert again.active("embedder").id == "mine"
    assert again.active("keypoints").id == "aliked_n16"
    with pytest.raises(ModelError, match="cannot be used"):
        again.set_active("embedder", "bad")
    with pytest.raises(ModelError, match="for task keypoints, not embedder"):
        again.set_active("embedder", "points")
    with pytest.raises(ModelError, match="no model with id"):
        again.set_active("embedder", "nope")
    with pytest.raises(ModelError, match="unknown task"):
        again.set_active("colouriser", "mine")
    again.set_active("embedder", None)
    assert ModelRegistry(user_dir=user, settings_path=tmp_path / "settings" / "models.json").active(
        "embedder").id == "reid_lite0_nyala_lion"


def test_only_the_embedder_is_chosen_here(registry: ModelRegistry, tmp_path: Path) -> None:
    """Keypoint models and matchers belong to the species profiles (their re-ranking is
    calibrated for them); no part of wildid runs a detector."""
    add_user_model(tmp_path / "user", "points", task="keypoints")
    with pytest.raises(ModelError, match="chosen by each species profile"):
        registry.set_active("keypoints", "points")
    with pytest.raises(ModelError, match="chosen by each species profile.*wildid calibrate"):
        registry.set_active("matcher", "lightglue_aliked_int8")
    with pytest.raises(ModelError, match="no part of wildid uses a detector"):
        registry.set_active("detector", "points")
    assert not (tmp_path / "settings" / "models.json").exists()  # nothing was saved
    registry.set_active("matcher", None)  # going back stays possible (an older version's choice)
    assert registry.active("matcher").id == "lightglue_aliked"


def test_no_model_for_a_task_is_a_clear_error(tmp_path: Path) -> None:
    empty = ModelRegistry(shipped_dir=tmp_path / "none", user_dir=tmp_path / "alsonone")
    assert empty.list() == []
    with pytest.raises(ModelError, match="no detector model is installed"):
        empty.active("detector")


def test_hash_cache_skips_unchanged_files_and_rehashes_changed_ones(tmp_path: Path) -> None:
    file = tmp_path / "weights.bin"
    file.write_bytes(b"A" * 1000)
    cache_path = tmp_path / "cache" / "hashes.json"
    first = HashCache(cache_path).digest(file)
    assert first == hashlib.sha256(b"A" * 1000).hexdigest()
    assert cache_path.is_file()
    # Same size and mtime: a new cache (a new app start) trusts the stored digest.
    st = file.stat()
    file.write_bytes(b"B" * 1000)
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert HashCache(cache_path).digest(file) == first
    # A different mtime forces a re-hash.
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert HashCache(cache_path).digest(file) == hashlib.sha256(b"B" * 1000).hexdigest()
    # A corrupt cache file is ignored, not fatal.
    cache_path.write_text("garbage", encoding="utf-8")
    assert HashCache(cache_path).digest(file) == hashlib.sha256(b"B" * 1000).hexdigest()
