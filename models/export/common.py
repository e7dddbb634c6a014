"""What the model-building scripts share: file hashes, the manifest's JSON layout and writer,
the synthetic test image and onnxruntime session the exports are checked with, and LightGlue's
match filter.  Free of torch, so the quantiser (``quantise_matcher.py``) runs in the app's own
venv too."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata as md
import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort

SCRIPT = "models/export/make_models.sh"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic textured RGB uint8 image (multi-scale noise plus hard-edged blobs)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for cell, weight in ((64, 0.5), (16, 0.3), (4, 0.2)):
        small = rng.random((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        big = np.kron(small, np.ones((cell, cell, 1), np.float32))[:h, :w]
        img += weight * big
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(40):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(4, 30)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.random(3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def packages(*names: str) -> dict[str, str]:
    return {n: md.version(n) for n in names}


def dumps(manifest: dict) -> str:
    """JSON with 2-space indents, but short lists of numbers/strings kept on one line."""
    text = json.dumps(manifest, indent=2)
    return re.sub(
        r"\[\s*((?:-?[\w.\"*]+,\s*)*-?[\w.\"*]+)\s*\]",
        lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]",
        text,
    )


def write_manifest(out: Path, manifest: dict,
                   exporter: tuple[str, ...] = ("torch", "onnx", "onnxscript", "onnxruntime")) -> None:
    onnx_path = out / manifest["file"]
    manifest["sha256"] = sha256(onnx_path)
    manifest["size_bytes"] = onnx_path.stat().st_size
    manifest["provenance"]["script"] = SCRIPT
    manifest["provenance"]["exported"] = dt.date.today().isoformat()
    manifest["provenance"]["exporter"] = packages(*exporter)
    path = out / f"{manifest['id']}.json"
    path.write_text(dumps(manifest) + "\n", encoding="utf-8")
    print(f"   wrote {path.name} ({manifest['size_bytes'] / 1e6:.1f} MB, sha256 {manifest['sha256'][:12]}…)")


def source_model(out: Path, model_id: str, step: str) -> tuple[Path, dict]:
    """The exported model a derived one is made from (its ONNX file and manifest), checked
    against the manifest's sha256; ``step`` names the make_models.sh step that exports it."""
    src, manifest_path = out / f"{model_id}.onnx", out / f"{model_id}.json"
    if not src.is_file() or not manifest_path.is_file():
        raise SystemExit(f"{src} and its manifest are needed first (make_models.sh --only {step})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if sha256(src) != manifest["sha256"]:
        raise SystemExit(f"{src} does not match the sha256 in {manifest_path.name}")
    return src, manifest


def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def filter_matches(scores: np.ndarray, th: float) -> np.ndarray:
    """NumPy copy of LightGlue's filter_matches; returns matches0 (-1 = unmatched)."""
    m0 = scores.argmax(1)
    m1 = scores.argmax(0)
    mutual = m1[m0] == np.arange(len(m0))
    conf = np.exp(scores[np.arange(len(m0)), m0])
    return np.where(mutual & (conf > th), m0, -1)
