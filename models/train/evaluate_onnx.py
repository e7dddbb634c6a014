"""Measure an exported embedder with onnxruntime on the benchmark photos (no torch needed).

Runs in the project venv (onnxruntime, numpy, Pillow)::

    .venv/bin/python models/train/evaluate_onnx.py models/reid_lite0_nyala_lion.json \
        --dataset-root ../shared/datasets --out /tmp/reid_eval.json

The preprocessing is read from the model's manifest (``input.size``, ``input.scaling``), so this
checks the manifest as much as the model. Reports, per species, closed-set top-1/top-5/mAP of the
``query`` split against the ``database`` split, the positive/negative cosine distributions, and the
CPU time per image at batch 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reid_metrics import evaluate  # noqa: E402


def preprocess(path: Path, spec: dict) -> np.ndarray:
    """Resize as the manifest says ("stretch" or "letterbox") and scale to float32 NCHW."""
    w, h = spec["size"]
    with Image.open(path) as im:
        img = im.convert("RGB")
    if spec.get("resize", "stretch") == "letterbox":
        s = min(w / img.width, h / img.height)
        nw, nh = max(1, round(img.width * s)), max(1, round(img.height * s))
        canvas = Image.new("RGB", (w, h), tuple(spec.get("fill", [127, 127, 127])))
        canvas.paste(img.resize((nw, nh), Image.Resampling.BILINEAR), ((w - nw) // 2, (h - nh) // 2))
        img = canvas
    else:
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    sub = np.asarray(spec["scaling"]["subtract"], dtype=np.float32)
    div = np.asarray(spec["scaling"]["divide"], dtype=np.float32)
    return ((np.asarray(img, dtype=np.float32) - sub) / div).transpose(2, 0, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("manifest", type=Path)
    p.add_argument("--dataset-root", type=Path, required=True)
    p.add_argument("--species", nargs="+", default=["nyala", "lion"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    man = json.loads(args.manifest.read_text())
    onnx_path = args.manifest.parent / man["file"]
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    if digest != man["sha256"]:
        raise SystemExit(f"sha256 mismatch for {onnx_path}")
    spec = man["input"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    result: dict = {"model": man["id"], "bytes": onnx_path.stat().st_size, "species": {}}
    timings: list[float] = []
    for sp in args.species:
        folder = args.dataset_root / sp
        rows = [line.split(",") for line in (folder / "manifest.csv").read_text().splitlines()[1:]]
        embs = []
        for start in range(0, len(rows), 16):
            x = np.stack([preprocess(folder / r[0], spec) for r in rows[start : start + 16]])
            embs.append(sess.run(None, {name: x})[0])
        emb = np.concatenate(embs)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)  # already unit length; harmless
        ids = [r[1] for r in rows]
        db = [i for i, r in enumerate(rows) if r[2] == "database"]
        q = [i for i, r in enumerate(rows) if r[2] == "query"]
        result["species"][sp] = evaluate(
            emb[db], [ids[i] for i in db], emb[q], [ids[i] for i in q], pairs=True
        )
        for r in rows[:20]:
            x = preprocess(folder / r[0], spec)[None]
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            timings.append(time.perf_counter() - t0)
        m = result["species"][sp]
        print(
            f"{sp}: top1 {m['top1']:.3f} top5 {m['top5']:.3f} mAP {m['mAP']:.3f} "
            f"pos cos {m['pairs']['positive']['mean']:.3f}±{m['pairs']['positive']['std']:.3f} "
            f"neg cos {m['pairs']['negative']['mean']:.3f}±{m['pairs']['negative']['std']:.3f} "
            f"AUC {m['pairs']['auc']:.3f}",
            flush=True,
        )
    result["ms_per_image_batch1_median"] = 1000 * float(np.median(timings))
    print(f"{result['ms_per_image_batch1_median']:.1f} ms/image (batch 1, {args.threads} threads, median)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
