"""Split the exported ALIKED graph into two stages: detect, then describe the keypoints kept.

The nyala profile detects 1,536 ALIKED keypoints per crop and keeps the 256 that score best
times the re-id model's attention squared (``wildid.engine.sources.learned_keypoints``).  The
one-go graph describes all 1,536, and its descriptor head is ~40 % of the run: 250 ms per
512 px nyala crop on one core against 140 ms when asked for 256.  Run in two stages, only
the kept keypoints are described:

* ``aliked_n16_detect.onnx``: ``image``, ``top_k`` -> ``keypoints``, ``scores`` (as the one-go
  graph), ``keypoints_normalised`` (the same keypoints in -1..1, as the descriptor head reads
  them) and ``level0``..``level3``, the four gated feature levels the descriptor head samples
  (full, 1/2, 1/8 and 1/32 size, 32 channels each);
* ``aliked_n16_describe.onnx``: the levels and any rows of ``keypoints_normalised`` ->
  ``descriptors``.

Both are cut out of ``aliked_n16.onnx`` as it is (no re-export, no torch), so the weights and
the arithmetic are the same: the descriptors of the keypoints kept are those the one-go graph
gives them, checked here on the synthetic test images before the manifest is touched.  The
describe part read the padded image's size and ``top_k`` through two shape look-ups; they are
rewired to ``level0``'s size (the full-size level) and to the number of rows given.

Where the cut lies is found from the graph's structure, not from the exporter's tensor
names: level *i* is the output of the gate (ELU, then the SELU scale) after the convolution
with ALIKED's ``a.conv{i}.weight``; the normalised keypoints are what the graph's only
``GridSample`` reads the score map at.

Needs only ``onnx`` and ``onnxruntime``: ``make_models.sh --only keypoints`` runs it after the
export, and ``python models/export/split_keypoints.py --out models`` on its own.  It adds a
``stages`` object to ``aliked_n16.json`` and changes nothing else there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnx.utils import Extractor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import dumps, session, sha256, source_model, test_image  # noqa: E402

SOURCE_ID = "aliked_n16"
LEVELS = ("level0", "level1", "level2", "level3")
GRID = "keypoints_normalised"


def _cut_points(graph: onnx.GraphProto) -> tuple[list[str], str]:
    """The exporter's names of the four gated levels and of the normalised keypoints."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    levels = []
    for i in range(1, 5):
        convs = [n for n in graph.node if n.op_type == "Conv" and n.input[1] == f"a.conv{i}.weight"]
        if len(convs) != 1:
            raise SystemExit(f"expected one Conv with a.conv{i}.weight, found {len(convs)}")
        tensor = convs[0].output[0]
        for op in ("Elu", "Mul"):  # SELU as exported: Elu, then a Mul by its scale
            nxt = consumers.get(tensor, [])
            if len(nxt) != 1 or nxt[0].op_type != op:
                raise SystemExit(f"level {i}: expected {op} after the gate's previous step")
            tensor = nxt[0].output[0]
        levels.append(tensor)
    samples = [n for n in graph.node if n.op_type == "GridSample"]
    if len(samples) != 1:
        raise SystemExit(f"expected one GridSample (the score at each keypoint), found {len(samples)}")
    reshape = next((n for n in graph.node if samples[0].input[1] in n.output), None)
    if reshape is None or reshape.op_type != "Reshape":
        raise SystemExit("the GridSample's grid is not a Reshape of the normalised keypoints")
    return levels, reshape.input[0]


def _renamed(model: onnx.ModelProto, names: dict[str, str]) -> None:
    """Rename tensors everywhere in ``model``'s graph (nodes, inputs, outputs)."""
    g = model.graph
    for node in g.node:
        node.input[:] = [names.get(x, x) for x in node.input]
        node.output[:] = [names.get(x, x) for x in node.output]
    for value in list(g.input) + list(g.output):
        value.name = names.get(value.name, value.name)


def split(src: Path, detect_path: Path, describe_path: Path) -> None:
    model = onnx.load(str(src))
    levels, grid = _cut_points(model.graph)
    extractor = Extractor(model)
    detect = extractor.extract_model(["image", "top_k"], ["keypoints", "scores", grid, *levels])
    describe = extractor.extract_model([*levels, grid], ["descriptors"])

    g = describe.graph
    rewired = {"image": 0, "top_k": 0}
    nodes = []
    for node in g.node:
        if node.op_type == "Shape" and node.input[0] == "image":  # the padded image's h, w
            node.input[0] = levels[0]
            rewired["image"] += 1
        elif node.input and node.input[0] == "top_k":  # how many keypoints: the rows given
            nodes.append(helper.make_node("Shape", [grid], ["keypoints_given"], start=0, end=1))
            node.input[0] = "keypoints_given"
            rewired["top_k"] += 1
        nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    left = {x for n in g.node for x in n.input} & {"image", "top_k"}
    if left or not all(rewired.values()):
        raise SystemExit(f"the describe stage still reads {sorted(left)} (rewired: {rewired})")

    names = dict(zip(levels, LEVELS, strict=True)) | {grid: GRID}
    for stage, path in ((detect, detect_path), (describe, describe_path)):
        _renamed(stage, names)
        stage.graph.name = f"{SOURCE_ID}_{path.stem.rsplit('_', 1)[-1]}"
        onnx.checker.check_model(stage, full_check=True)
        onnx.save(stage, str(path))


def check(src: Path, detect_path: Path, describe_path: Path) -> dict[str, float]:
    """Both stages against the one-go graph: keypoints and scores as they are, descriptors of a
    shuffled subset of them as the one-go graph gives those rows; stops the build if not."""
    whole, det, des = session(src), session(detect_path), session(describe_path)
    worst = {"keypoints": 0.0, "scores": 0.0, "descriptors": 0.0}
    rng = np.random.default_rng(0)
    for seed, (h, w, k) in enumerate(((448, 576, 1536), (256, 320, 300), (512, 384, 64))):
        x = (test_image(h, w, seed).astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        feed = {"image": x, "top_k": np.array([k], np.int64)}
        kp, sc, de = whole.run(None, feed)
        out = dict(zip([o.name for o in det.get_outputs()], det.run(None, feed), strict=True))
        keep = rng.permutation(len(kp))[: max(1, len(kp) // 6)]
        rows = des.run(None, {GRID: out[GRID][keep], **{n: out[n] for n in LEVELS}})[0]
        worst["keypoints"] = max(worst["keypoints"], float(np.abs(out["keypoints"] - kp).max()))
        worst["scores"] = max(worst["scores"], float(np.abs(out["scores"] - sc).max()))
        worst["descriptors"] = max(worst["descriptors"], float(np.abs(rows - de[keep]).max()))
    print("   largest differences from the one-go graph: "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    if max(worst.values()) > 1e-5:
        raise SystemExit("the two stages do not reproduce the one-go ALIKED graph")
    return worst


def build(out: Path) -> None:
    print(f"== {SOURCE_ID} in two stages")
    src, manifest = source_model(out, SOURCE_ID, "keypoints")
    paths = {stage: out / f"{SOURCE_ID}_{stage}.onnx" for stage in ("detect", "describe")}
    with tempfile.TemporaryDirectory() as tmp:  # nothing in models/ changes until checked
        work = {stage: Path(tmp) / p.name for stage, p in paths.items()}
        split(src, work["detect"], work["describe"])
        worst = check(src, work["detect"], work["describe"])
        for stage, p in paths.items():
            p.write_bytes(work[stage].read_bytes())
    manifest["stages"] = {
        stage: {"file": p.name, "sha256": sha256(p), "size_bytes": p.stat().st_size}
        for stage, p in paths.items()
    }
    manifest["stages"]["method"] = (
        "models/export/split_keypoints.py: cut out of the one-go graph (onnx.utils.Extractor) "
        "at the descriptor head's inputs, for describing only the keypoints a caller keeps")
    manifest["stages"]["verification"] = (
        "vs the one-go graph on 3 synthetic images, descriptors of a shuffled sixth of the "
        "keypoints: max abs diff " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    (out / f"{SOURCE_ID}.json").write_text(dumps(manifest) + "\n", encoding="utf-8")
    for p in paths.values():
        print(f"   wrote {p.name} ({p.stat().st_size / 1e6:.2f} MB)")
    print(f"   added stages to {SOURCE_ID}.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the models folder")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
