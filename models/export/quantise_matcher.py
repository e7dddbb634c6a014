"""Derive the 8-bit LightGlue (``lightglue_aliked_int8``) from the exported float one.

Identification re-ranks the nyala shortlist with LightGlue, five pairs per query; the float
graph takes ~50 ms per pair of 256 keypoints on a 2-core laptop-class CPU, which put the
nyala profile over its 1 s budget at 10,000 annotations.  onnxruntime's dynamic quantisation
stores the weights of the graph's matrix products as int8 and quantises their inputs on the
fly, which runs the same pair in ~30 ms.  Choices, each measured on LightGlue's summed match
confidence over the nyala leave-one-out pairs (docs/identification.md):

* constant folding first: the exported graph feeds every weight through a ``Transpose``, so
  without it the quantiser finds no constant weight to quantise;
* one scale per output channel: closer to the float scores than one per matrix;
* 7-bit weights (``reduce_range``): without AVX-512 VNNI, onnxruntime multiplies uint8 by
  int8 with an instruction whose 16-bit pair sums saturate at full 8-bit range, so the full
  range would score differently on most laptops than on the machine it was measured on;
* the keypoint encoders, the descriptor input projections, the final assignment projection
  and the matchability head stay float: small matrices that set every score.

Needs only ``onnx`` and ``onnxruntime`` (no torch): ``make_models.sh --only matcher_int8`` runs
it after the float export, and ``python models/export/quantise_matcher.py --out models`` runs
it on its own.  The result is checked against the float model on ALIKED keypoints of the
synthetic test image before its manifest is written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import filter_matches, session, sha256, source_model, test_image, write_manifest  # noqa: E402

SOURCE_ID = "lightglue_aliked"
TARGET_ID = "lightglue_aliked_int8"
FLOAT_INPUTS = ("kpts0", "kpts1", "desc0", "desc1")


def _fold_constants(src: Path, dst: Path) -> None:
    """onnxruntime's basic graph optimisation (constant folding, standard ops only), saved."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])


def _kept_float(folded: Path) -> list[str]:
    """Matrix products left in float: those reading a model input (keypoint encoding,
    descriptor projection) and those of the last weight matrices (the assignment projection
    and the matchability head, shared by both images)."""
    import onnx

    graph = onnx.load(str(folded)).graph
    weights = {i.name for i in graph.initializer}
    products = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    last: list[str] = []  # the last two weight matrices the graph uses, each for both images
    for n in reversed(products):
        if len(last) < 2 and n.input[1] not in last:
            last.append(n.input[1])
    return [n.name for n in products if n.input[0] in FLOAT_INPUTS or n.input[1] in last]


def quantise(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        folded = Path(tmp) / "folded.onnx"
        _fold_constants(src, folded)
        quantize_dynamic(str(folded), str(dst), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True,
                         nodes_to_exclude=_kept_float(folded))


def _aliked_pair(models: Path, n: int = 256) -> dict[str, np.ndarray]:
    """LightGlue's inputs for two overlapping crops of the synthetic test image, from the
    shipped ALIKED model (the float export's own check uses the same two crops)."""
    aliked = session(models / "aliked_n16.onnx")
    img = test_image(480, 640, 7)
    feed: dict[str, np.ndarray] = {}
    for i, v in enumerate((img[0:448, 0:576], img[24:472, 40:616])):
        x = (v.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        kp, sc, de = aliked.run(None, {"image": x, "top_k": np.array([n], np.int64)})
        wh = np.array([v.shape[1], v.shape[0]], np.float32)
        feed[f"kpts{i}"] = ((kp - wh / 2) / (wh.max() / 2)).astype(np.float32)[None]
        feed[f"desc{i}"] = de.astype(np.float32)[None]
    return feed


def check(models: Path, dst: Path) -> dict[str, float]:
    """The 8-bit model against the float one on the test pair; stops the build if it drifts."""
    feed = _aliked_pair(models)
    ref = session(models / f"{SOURCE_ID}.onnx").run(None, feed)[0][0]
    got = session(dst).run(None, feed)[0][0]
    a, b = filter_matches(ref, 0.1), filter_matches(got, 0.1)
    both = (a > -1) | (b > -1)
    agree = float((a[both] == b[both]).mean())
    conf = lambda s, m: float(np.exp(s[np.arange(len(m)), m])[m > -1].sum())  # noqa: E731
    out = {"matches": int((a > -1).sum()), "agree": agree,
           "confidence_ratio": conf(got, b) / max(conf(ref, a), 1e-9)}
    print(f"   {out['matches']} float matches; matches agree {agree:.4f}; summed confidence "
          f"x{out['confidence_ratio']:.3f}")
    if out["matches"] < 50 or agree < 0.9 or abs(out["confidence_ratio"] - 1) > 0.05:
        raise SystemExit("the 8-bit LightGlue drifts from the float one")
    return out


def build(out: Path) -> None:
    print(f"== {TARGET_ID}")
    src, manifest = source_model(out, SOURCE_ID, "matcher")
    dst = out / f"{TARGET_ID}.onnx"
    quantise(src, dst)
    result = check(out, dst)
    for key in ("sha256", "size_bytes"):
        manifest.pop(key, None)
    manifest.update({
        "id": TARGET_ID,
        "name": "LightGlue for ALIKED features, 8-bit weights",
        "description": "lightglue_aliked with the weights of its matrix products stored as "
        "7-bit int8 per output channel and their inputs quantised at run time (onnxruntime "
        "dynamic quantisation); keypoint encoders, input projections, the assignment "
        "projection and the matchability head stay float. ~1.7x faster on a 2-core CPU.",
        "file": dst.name,
    })
    manifest["provenance"] = {
        **manifest["provenance"],
        "derived_from": {"id": SOURCE_ID, "sha256": sha256(src)},
        "method": "models/export/quantise_matcher.py: onnxruntime constant folding, then "
        "quantize_dynamic(QInt8, per_channel, reduce_range, MatMul)",
        "verification": (
            f"vs {SOURCE_ID} on the synthetic test pair: filtered matches agree "
            f"{result['agree']:.4f}, summed confidence x{result['confidence_ratio']:.3f}"
        ),
    }
    write_manifest(out, manifest, exporter=("onnx", "onnxruntime"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the models folder")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
