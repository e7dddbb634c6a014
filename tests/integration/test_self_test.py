"""`wildid self-test`: an installation checks itself offline, and says which step fails."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.modelfactory import write_user_embedder
from wildid.cli import main
from wildid.paths import user_models_dir
from wildid.vision.registry import shipped_models_dir


def test_a_working_installation_passes_every_step(capsys) -> None:
    assert main(["self-test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["models", "photos", "catalog", "import and name",
                           "identify (nyala profile)", "identify (lion profile)"]
    assert all(s["ok"] for s in steps.values())
    assert "reid_lite0_nyala_lion" in steps["models"]["detail"]
    assert "the one cut short skipped" in steps["import and name"]["detail"]
    assert "re-ranked by LightGlue" in steps["identify (nyala profile)"]["detail"]
    assert "ranks Lion A first" in steps["identify (lion profile)"]["detail"]


def test_a_faulty_embedder_in_use_fails_identification_and_says_why(capsys) -> None:
    write_user_embedder(user_models_dir(), faulty=True)
    assert main(["models", "--use", "tiny_user_embedder"]) == 0
    capsys.readouterr()
    assert main(["self-test"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("wildid cannot identify animals on this computer: see the step that "
                       "failed")
    failed = [line for line in out if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  identify (nyala profile)")
    assert "model tiny_user_embedder gave an embedding that is not a number" in failed[0]
    assert not any("lion profile" in line for line in out)  # stopped at the failure


def test_a_damaged_shipped_model_is_named_first(tmp_path: Path, capsys,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An installer whose ALIKED file was cut short (a bad download or disk): the check stops
    at the models, naming the file, before anything is imported."""
    from wildid.engine import runtime

    bundle = tmp_path / "bundle"
    shutil.copytree(shipped_models_dir(), bundle / "models", copy_function=os.symlink)
    onnx = bundle / "models" / "aliked_n16_detect.onnx"
    data = onnx.read_bytes()
    onnx.unlink()  # the link: the cut-short copy replaces it, the shipped file stays intact
    onnx.write_bytes(data[:1000])
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)  # as a PyInstaller build
    monkeypatch.setattr(runtime, "_registry", None)
    assert main(["self-test", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["steps"]] == ["models"]
    assert "aliked_n16" in report["steps"][0]["detail"]
    assert "truncated" in report["steps"][0]["detail"]
