"""Model manifests: what a valid one looks like, and that a broken one says what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wildid.errors import ModelError
from wildid.vision.manifest import load_manifest
from wildid.vision.registry import shipped_models_dir

SHA = "ab" * 32


def manifest_dict(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "manifest_version": 1,
        "id": "user_embed",
        "version": "2.0",
        "task": "embedder",
        "file": "user_embed.onnx",
        "sha256": SHA,
        "input": {
            "name": "pixels", "size": [440, 440], "layout": "NCHW", "colour": "RGB",
            "dtype": "float32", "scaling": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        },
        "outputs": [{"name": "emb", "shape": ["batch", 2152], "dim": 2152}],
        "licence": {"spdx": "MIT", "files": []},
    }
    base.update(changes)
    return base


def write(tmp_path: Path, data: Any, name: str = "m.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_valid_manifest_loads_with_defaults_and_converts_mean_std(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, manifest_dict()))
    assert (m.id, m.version, m.task) == ("user_embed", "2.0", "embedder")
    assert m.model_path == tmp_path / "user_embed.onnx"
    assert m.input is not None and m.input.size == (440, 440)
    assert m.input.resize == "letterbox"
    # ImageNet mean/std on 0..1 becomes subtract/divide on 0..255.
    assert m.input.subtract == pytest.approx((0.485 * 255, 0.456 * 255, 0.406 * 255))
    assert m.input.divide == pytest.approx((0.229 * 255, 0.224 * 255, 0.225 * 255))
    assert m.output().dim == 2152 and m.output("emb").name == "emb"
    assert m.normalised is False and m.licence.spdx == "MIT"


def test_scalar_subtract_divide_apply_to_every_channel(tmp_path: Path) -> None:
    data = manifest_dict()
    data["input"]["scaling"] = {"subtract": 127, "divide": 128}
    m = load_manifest(write(tmp_path, data))
    assert m.input is not None
    assert m.input.subtract == (127.0, 127.0, 127.0) and m.input.divide == (128.0, 128.0, 128.0)


@pytest.mark.parametrize("field", ["id", "version", "task", "file", "sha256", "outputs", "licence"])
def test_missing_field_is_named(tmp_path: Path, field: str) -> None:
    data = manifest_dict()
    del data[field]
    path = write(tmp_path, data)
    with pytest.raises(ModelError) as err:
        load_manifest(path)
    assert str(path) in str(err.value)
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"task": "segmenter"}, "task"),
        ({"sha256": "xyz"}, "sha256"),
        ({"file": "../elsewhere/model.onnx"}, "plain file name"),
        ({"id": "has space"}, "id"),
        ({"manifest_version": 99}, "manifest_version"),
        ({"input": None}, "needs an 'input'"),
        ({"outputs": []}, "at least one"),
        ({"outputs": [{"shape": [1]}]}, "outputs.name"),
        ({"licence": "MIT"}, "licence"),
        ({"size_bytes": -4}, "size_bytes"),
    ],
)
def test_invalid_values_are_rejected_with_the_field(
    tmp_path: Path, changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ModelError, match="model manifest") as err:
        load_manifest(write(tmp_path, manifest_dict(**changes)))
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("input_changes", "words"),
    [
        ({"size": [224]}, "input.size"),
        ({"layout": "CHW"}, "input.layout"),
        ({"colour": "YUV"}, "input.colour"),
        ({"scaling": {"subtract": [1, 2]}}, "scaling.subtract"),
        ({"scaling": {"divide": 0}}, "divides by zero"),
        ({"size": "dynamic", "resize": "letterbox"}, "max_side"),
        ({"resize": "crop"}, "input.resize"),
    ],
)
def test_invalid_image_input_is_rejected(tmp_path: Path, input_changes: dict[str, Any], words: str) -> None:
    data = manifest_dict()
    data["input"].update(input_changes)
    with pytest.raises(ModelError) as err:
        load_manifest(write(tmp_path, data))
    assert words in str(err.value)


def test_matcher_needs_inputs_but_no_image_input(tmp_path: Path) -> None:
    data = manifest_dict(task="matcher", input=None)
    with pytest.raises(ModelError, match="inputs"):
        load_manifest(write(tmp_path, data))
    data["inputs"] = [{"name": n} for n in ("kpts0", "kpts1", "desc0", "desc1")]
    assert load_manifest(write(tmp_path, data)).task == "matcher"


def test_bad_json_and_missing_file_name_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "{not json")
    with pytest.raises(ModelError, match="not valid JSON") as err:
        load_manifest(path)
    assert str(path) in str(err.value)
    with pytest.raises(ModelError, match="does not exist"):
        load_manifest(tmp_path / "absent.json")
    with pytest.raises(ModelError, match="JSON object"):
        load_manifest(write(tmp_path, [1, 2]))


def test_unknown_keys_are_kept_not_rejected(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, manifest_dict(trained_on="lions")))
    assert m.extra == {"trained_on": "lions"}


def test_shipped_manifests_are_complete() -> None:
    folder = shipped_models_dir()
    paths = sorted(folder.glob("*.json"))
    ids = {load_manifest(p).id for p in paths}
    assert {"efficientnet_lite0_embed", "aliked_n16"} <= ids
    for path in paths:
        m = load_manifest(path)
        assert m.licence.spdx and m.licence.files, path
        for lic in m.licence.files:
            assert (folder / lic).is_file(), f"{path.name}: licence file {lic} missing"
        assert m.size_bytes, path
        for key in ("packages", "upstream", "script", "exported"):
            assert m.provenance.get(key), f"{path.name}: provenance.{key} missing"


def stage_dict(**changes: Any) -> dict[str, Any]:
    stages: dict[str, Any] = {"detect": {"file": "kp_detect.onnx", "sha256": SHA, "size_bytes": 10},
                              "describe": {"file": "kp_describe.onnx", "sha256": SHA.upper()},
                              "method": "a note for people"}
    stages.update(changes)
    return manifest_dict(task="keypoints", stages=stages)


def test_a_keypoints_model_may_ship_in_stages(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, stage_dict()))
    assert set(m.stages) == {"detect", "describe"} and "stages" not in m.extra
    assert m.stage_path("detect") == tmp_path / "kp_detect.onnx"
    assert (m.stages["detect"].size_bytes, m.stages["describe"].sha256) == (10, SHA)
    assert load_manifest(write(tmp_path, manifest_dict(task="keypoints"))).stages == {}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (manifest_dict(stages={"detect": {}, "describe": {}}), "not supported for a embedder"),
        (stage_dict(describe=None), "stages.describe must be an object"),
        (stage_dict(detect={"file": "../kp.onnx", "sha256": SHA}), "stages.detect.file"),
        (stage_dict(detect={"file": "kp.onnx", "sha256": "12"}), "stages.detect.sha256"),
        (stage_dict(detect={"sha256": SHA}), "stages.detect.file"),
        (stage_dict(detect={"file": "kp.onnx", "sha256": SHA, "size_bytes": -1}), "size_bytes"),
        (manifest_dict(task="keypoints", stages=["detect"]), "stages must be an object"),
    ],
)
def test_invalid_stages_are_rejected_with_the_field(tmp_path: Path, data: dict[str, Any], words: str) -> None:
    with pytest.raises(ModelError, match=words):
        load_manifest(write(tmp_path, data))


def test_shipped_aliked_ships_in_stages() -> None:
    m = load_manifest(shipped_models_dir() / "aliked_n16.json")
    assert set(m.stages) == {"detect", "describe"}
    for stage in m.stages.values():
        assert (shipped_models_dir() / stage.file).stat().st_size == stage.size_bytes
