"""Tiny user ONNX embedders built with onnx.helper, the way a user adds a model: a model file and
its manifest in a folder. Shared by the model unit tests and the engine's integration tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest


def write_user_embedder(folder: Path, colour: str = "RGB", output: str = "feat",
                        faulty: bool = False) -> Path:
    """A tiny ONNX embedder: global average pool of an 8x8 image -> 3-d vector.

    ``faulty`` takes the logarithm of the pooled values, as a broken export might: channels
    whose mean is below the middle (normalised below zero) give NaN, so a dark crop has no
    usable embedding while a bright one does. Returns the manifest's path.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat" if faulty else "feat"], axis=1)]
    if faulty:
        nodes.append(helper.make_node("Log", ["flat"], ["feat"]))
    graph = helper.make_graph(
        nodes, "tiny_embedder",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "tiny.onnx"
    onnx.save(model, str(onnx_path))
    data = onnx_path.read_bytes()
    manifest = {
        "manifest_version": 1, "id": "tiny_user_embedder", "version": "0.1", "task": "embedder",
        "file": "tiny.onnx", "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
        "input": {"name": "pixels", "size": [8, 8], "layout": "NCHW", "colour": colour,
                  "dtype": "float32", "resize": "stretch",
                  "scaling": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
        "outputs": [{"name": output, "shape": ["batch", 3], "dim": 3}],
        "licence": {"spdx": "CC0-1.0"},
    }
    path = folder / "tiny.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path
