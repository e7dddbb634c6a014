"""What ``wildid models`` says each model is used for: the engine's own choices, per profile."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.test_models_registry import add_user_model
from wildid.cli import main as cli_main
from wildid.engine.model_uses import model_uses
from wildid.matching.profiles import load_profiles, save_profiles
from wildid.vision.registry import ModelRegistry


def test_uses_follow_the_profiles_and_the_chosen_embedder(tmp_path: Path) -> None:
    registry = ModelRegistry(user_dir=tmp_path / "user", settings_path=tmp_path / "models.json")
    profiles = load_profiles()
    uses = model_uses(registry, profiles)
    assert uses["reid_lite0_nyala_lion"] == ["global embedding", "nyala: keypoint placement"]
    assert uses["aliked_n16"] == ["nyala: learned keypoints"]
    # the nyala profile re-ranks with the 8-bit LightGlue; the float one is only its reference
    assert uses["lightglue_aliked_int8"] == ["nyala: re-ranking"]
    assert "lightglue_aliked" not in uses and "efficientnet_lite0_embed" not in uses

    add_user_model(tmp_path / "user", "mine")
    registry.refresh()  # listed once above; a new file is seen at the next scan
    registry.set_active("embedder", "mine")
    uses = model_uses(registry, profiles)
    assert uses["mine"] == ["global embedding"]
    assert uses["reid_lite0_nyala_lion"] == ["nyala: keypoint placement"]  # the profile's own

    nyala = profiles["nyala"]
    mine = {"nyala": replace(nyala, matcher_model="lightglue_aliked",
                             config=replace(nyala.config, rerank_top=0))}
    uses = model_uses(registry, mine)  # re-ranking off: no matcher is used, keypoints still stored
    assert "lightglue_aliked" not in uses and "lightglue_aliked_int8" not in uses
    assert uses["aliked_n16"] == ["nyala: learned keypoints"]


def test_without_an_embedder_the_profiles_still_list(tmp_path: Path) -> None:
    empty = ModelRegistry(shipped_dir=tmp_path / "none", user_dir=tmp_path / "alsonone")
    uses = model_uses(empty, load_profiles())
    assert "global embedding" not in sum(uses.values(), [])
    assert uses["lightglue_aliked_int8"] == ["nyala: re-ranking"]


def test_cli_names_a_model_a_profile_needs_but_nobody_installed(
        _isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hand-edited profile naming a matcher that is not installed: `wildid models` lists it
    as missing, with what it was for, and fails (the engine re-ranks without it)."""
    nyala = load_profiles()["nyala"]
    save_profiles({"nyala": replace(nyala, matcher_model="gone_matcher")},
                  _isolated_home / "calibration.json", note="edited by hand")
    assert cli_main(["models", "--json"]) == 1
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["gone_matcher"]["status"] == "missing"
    assert rows["gone_matcher"]["used_for"] == ["nyala: re-ranking"]
    assert not rows["lightglue_aliked_int8"]["active"]


def test_a_user_manifest_reusing_a_shipped_id_is_not_listed_as_in_use(
        _isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user's manifest with the id of the shipped re-id embedder is refused (the shipped one
    keeps it). `wildid models` starred the refused row too and gave it the shipped model's
    uses, as if the broken copy ran; and its exit status said something in use was broken."""
    from wildid.paths import user_models_dir

    add_user_model(user_models_dir(), "reid_lite0_nyala_lion")
    assert cli_main(["models", "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["id"] == "reid_lite0_nyala_lion"]
    shipped, copy = sorted(rows, key=lambda r: r["source"] != "shipped")
    assert shipped["active"] and shipped["status"] == "ok" and shipped["used_for"]
    assert not copy["active"] and copy["used_for"] == [] and copy["status"] == "bad manifest"
