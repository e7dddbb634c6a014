"""The boundary to onnxruntime: opening sessions, running them, and turning crops into tensors.

Everything onnxruntime raises is translated into ``ModelError`` here, with the model file
in the message, so callers deal with one exception type.  The model classes live in
``embedder.py`` (global embeddings) and ``keypoints.py`` (local features and matching).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from wildid.errors import ModelError
from wildid.vision.manifest import ImageInput, ModelManifest

HINT = "run `make models` (from a source checkout), reinstall wildid, or re-export the user model"


class OnnxModel:
    """An onnxruntime CPU session for one manifest, with name checks done up front.

    ``stage`` opens one of the manifest's stage graphs instead of its one-go file. The
    manifest's input and output names describe the one-go graph, so a stage's caller says
    which names its graph must have (``needs``: inputs, outputs).
    """

    def __init__(self, manifest: ModelManifest, threads: int = 2, stage: str | None = None,
                 needs: tuple[Sequence[str], Sequence[str]] | None = None) -> None:
        import onnxruntime as ort  # imported lazily: importing wildid.vision stays cheap

        self.manifest = manifest
        self.path = path = manifest.model_path if stage is None else manifest.stage_path(stage)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # onnxruntime's warnings are not for our users
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load model file {path}: {_first_line(exc)}; {HINT}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_shapes = {i.name: list(i.shape) for i in self.session.get_inputs()}
        if needs is None:
            needs = (([manifest.input.name] if manifest.input else [])
                     + [s.name for s in manifest.inputs], [s.name for s in manifest.outputs])
        for kind, wanted, have in (("input", needs[0], self.input_names),
                                   ("output", needs[1], self.output_names)):
            for name in wanted:
                if name not in have:
                    raise ModelError(
                        f"model file {path} has no {kind} named {name!r} (its {kind}s are "
                        f"{', '.join(have)}); fix {manifest.path.name}"
                    )

    def run(self, outputs: Sequence[str] | None, feed: dict[str, np.ndarray]) -> list[Any]:
        """``session.run`` with onnxruntime's errors turned into ``ModelError``."""
        try:
            return list(self.session.run(list(outputs) if outputs else None, feed))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feed.items())
            raise ModelError(
                f"model {self.manifest.id} ({self.path.name}) failed on inputs "
                f"{shapes}: {_first_line(exc)}"
            ) from exc

    def fixed_batch(self) -> int | None:
        """The batch size the image input requires, or None when it is dynamic."""
        if self.manifest.input is None:
            return None
        dim = self.input_shapes[self.manifest.input.name][0]
        return dim if isinstance(dim, int) and dim > 0 else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """A contiguous HxWx3 uint8 RGB view of a gray, RGB or RGBA uint8 image."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError("images must be uint8 numpy arrays (H x W x 3 RGB)")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise TypeError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("the image is empty")
    return np.ascontiguousarray(image)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking (no aliasing) and bilinear when enlarging."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrink = width < w or height < h
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def fit_fixed(image: np.ndarray, spec: ImageInput) -> np.ndarray:
    """Bring an RGB crop to the manifest's fixed (height, width), by letterbox or stretch."""
    assert spec.size is not None
    out_h, out_w = spec.size
    if spec.resize == "stretch":
        return resize(image, out_w, out_h)
    h, w = image.shape[:2]
    scale = min(out_w / w, out_h / h)
    new_w = min(out_w, max(1, round(w * scale)))
    new_h = min(out_h, max(1, round(h * scale)))
    canvas = np.empty((out_h, out_w, 3), np.uint8)
    canvas[:] = np.asarray(spec.fill, np.uint8)
    top = (out_h - new_h) // 2
    left = (out_w - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resize(image, new_w, new_h)
    return canvas


def to_tensor(images: Sequence[np.ndarray], spec: ImageInput) -> np.ndarray:
    """Stack same-size RGB uint8 images into the model's tensor (colour, scaling, layout)."""
    batch = np.stack(images)  # N x H x W x 3, RGB
    if spec.colour == "BGR":
        batch = batch[..., ::-1]
    if spec.dtype == "uint8":
        out = batch
    else:
        sub = np.asarray(spec.subtract, np.float32)
        div = np.asarray(spec.divide, np.float32)
        out = (batch.astype(np.float32) - sub) / div
        out = out.astype(np.float16) if spec.dtype == "float16" else out
    if spec.layout == "NCHW":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out)


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Unit-length rows (a zero row stays zero instead of becoming NaN)."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)
