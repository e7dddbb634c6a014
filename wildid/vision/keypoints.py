"""Local features (keypoints + descriptors) and learned matching between two sets of them.

``KeypointExtractor`` runs a ``keypoints`` model (shipped: ALIKED-n16, whose graph does
NMS, top-k, sub-pixel refinement and descriptors; it also ships cut in two stages, so a
caller that keeps some of the keypoints has only those described).  The image is shrunk so
its longer side is at most ``max_side`` and padded with edge pixels to the model's multiple
(32); the returned coordinates are mapped back to the pixels of the image the caller passed,
and keypoints that fall into the padding are dropped.

``LightGlueMatcher`` runs a ``matcher`` model (shipped: LightGlue for ALIKED).  Its cost
grows with the product of the two keypoint counts: ~512 keypoints per image is a sensible
cap on a 2-core CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from wildid.errors import ModelError
from wildid.vision.manifest import ModelManifest
from wildid.vision.onnx_models import OnnxModel, as_rgb_uint8, l2_normalise, resize, to_tensor


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one image, in that image's pixel coordinates (x right, y down)."""

    xy: np.ndarray  # float32 (N, 2)
    scores: np.ndarray  # float32 (N,), higher is better
    descriptors: np.ndarray  # float32 (N, D), L2-normalised
    image_size: tuple[int, int]  # (width, height) of the image the features came from

    def __len__(self) -> int:
        return int(self.xy.shape[0])


# the detect stage's keypoints in -1..1 of the padded input, as the describe stage reads them
STAGE_GRID = "keypoints_normalised"


class KeypointExtractor:
    """Detects and describes keypoints with a ``keypoints`` model.

    A model that ships in stages (manifest ``stages``: ``detect``, then ``describe``) is run
    that way, so that keypoints a caller does not keep are never described; otherwise its
    one-go graph describes every keypoint it detects.
    """

    def __init__(self, manifest: ModelManifest, threads: int = 2) -> None:
        if manifest.task != "keypoints":
            raise ModelError(f"model {manifest.id!r} is a {manifest.task} model, not a keypoints model")
        if manifest.input is None:
            raise ModelError(f"{manifest.path}: a keypoints model needs an 'input' object")
        names = {o.name for o in manifest.outputs}
        missing = {"keypoints", "scores", "descriptors"} - names
        if missing:
            raise ModelError(
                f"{manifest.path}: a keypoints model must output keypoints, scores and "
                f"descriptors (missing: {', '.join(sorted(missing))})"
            )
        self.manifest = manifest
        self.spec = manifest.input
        self.top_k_name = next((i.name for i in manifest.inputs if i.name == "top_k"), None)
        self.border = int(manifest.params.get("border", 0))
        self.dim = manifest.output("descriptors").dim
        self.model: OnnxModel | None = None
        if manifest.stages:
            image_inputs = [n for n in (self.spec.name, self.top_k_name) if n]
            self.detect = OnnxModel(manifest, threads=threads, stage="detect",
                                    needs=(image_inputs, ["keypoints", "scores", STAGE_GRID]))
            self.describe = OnnxModel(manifest, threads=threads, stage="describe",
                                      needs=([STAGE_GRID], ["descriptors"]))
            # the maps the describe stage reads come from the detect stage
            missing = [n for n in self.describe.input_names if n not in self.detect.output_names]
            if missing:
                raise ModelError(
                    f"model file {self.describe.path} reads {', '.join(missing)}, which "
                    f"{self.detect.path.name} does not output; fix the stages of "
                    f"{manifest.path.name}"
                )
        else:
            self.model = OnnxModel(manifest, threads=threads)

    @property
    def model_id(self) -> str:
        return self.manifest.id

    @property
    def model_version(self) -> str:
        return self.manifest.version

    def extract(self, image_rgb: np.ndarray, max_keypoints: int = 1024, max_side: int = 640,
                choose: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> LocalFeatures:
        """Keypoints of a uint8 RGB image; coordinates are in ``image_rgb``'s pixels.

        ``choose`` keeps some of the ``max_keypoints`` strongest: given their xy (in
        ``image_rgb``'s pixels) and scores, strongest first, it returns the indices to keep,
        in the order wanted.  With a model in stages only those are described.
        """
        if max_keypoints < 1 or max_side < 16:
            raise ValueError("max_keypoints must be >= 1 and max_side >= 16")
        image = as_rgb_uint8(image_rgb)
        h, w = image.shape[:2]
        if self.spec.size is not None:  # a fixed-size keypoint model: stretch, map back
            out_h, out_w = self.spec.size
            work = resize(image, out_w, out_h)
        else:
            scale = min(1.0, max_side / max(h, w))
            out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
            work = resize(image, out_w, out_h)
        m = self.spec.multiple_of
        pad_h = max(m, -(-out_h // m) * m) - out_h
        pad_w = max(m, -(-out_w // m) * m) - out_w
        if pad_h or pad_w:
            work = cv2.copyMakeBorder(work, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        feed = {self.spec.name: to_tensor([work], self.spec)}
        if self.top_k_name is not None:
            # Ask for a few extra: some may land in the padding and are dropped below.
            want = max_keypoints + max_keypoints // 8 + 8 if (pad_h or pad_w) else max_keypoints
            feed[self.top_k_name] = np.array([min(want, work.shape[0] * work.shape[1])], np.int64)
        if self.model is not None:
            kp, sc, de = self.model.run(["keypoints", "scores", "descriptors"], feed)
            out = {"descriptors": de}
        else:
            out = dict(zip(self.detect.output_names, self.detect.run(None, feed), strict=True))
            kp, sc = out["keypoints"], out["scores"]
        kp = np.asarray(kp, np.float32).reshape(-1, 2)
        sc = np.asarray(sc, np.float32).reshape(-1)

        b = self.border
        keep = (sc > 0) & (kp[:, 0] <= out_w - 1 - b) & (kp[:, 1] <= out_h - 1 - b)
        rows = np.flatnonzero(keep)
        rows = rows[np.argsort(-sc[rows], kind="stable")[:max_keypoints]]
        # Pixel centres map as (x + 0.5) * w / out_w - 0.5.
        xy = np.empty((len(rows), 2), np.float32)
        xy[:, 0] = (kp[rows, 0] + 0.5) * (w / out_w) - 0.5
        xy[:, 1] = (kp[rows, 1] + 0.5) * (h / out_h) - 0.5
        np.clip(xy[:, 0], 0, w - 1, out=xy[:, 0])
        np.clip(xy[:, 1], 0, h - 1, out=xy[:, 1])
        if choose is not None:
            pick = np.asarray(choose(xy, sc[rows]), np.int64).reshape(-1)
            if pick.size and (pick.min() < 0 or pick.max() >= len(rows)):
                raise ValueError(f"choose returned indices outside 0..{len(rows) - 1}")
            rows, xy = rows[pick], xy[pick]
        return LocalFeatures(xy=xy, scores=sc[rows], descriptors=self._descriptors(out, rows),
                             image_size=(w, h))

    def _descriptors(self, out: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        if self.model is not None:
            de = np.asarray(out["descriptors"], np.float32)
            return l2_normalise(de.reshape(de.shape[0], -1)[rows])
        if not len(rows):
            return np.zeros((0, self.dim or 0), np.float32)
        grid = np.asarray(out[STAGE_GRID])[rows]
        feed = {n: (grid if n == STAGE_GRID else out[n]) for n in self.describe.input_names}
        de = np.asarray(self.describe.run(["descriptors"], feed)[0], np.float32)
        return l2_normalise(de.reshape(len(rows), -1))


class LightGlueMatcher:
    """Matches two ``LocalFeatures`` with a LightGlue-style ``matcher`` model."""

    def __init__(self, manifest: ModelManifest, threads: int = 2) -> None:
        if manifest.task != "matcher":
            raise ModelError(f"model {manifest.id!r} is a {manifest.task} model, not a matcher")
        if len(manifest.inputs) != 4:
            raise ModelError(f"{manifest.path}: a matcher takes 4 inputs (kpts0, kpts1, desc0, desc1)")
        self.manifest = manifest
        self.model = OnnxModel(manifest, threads=threads)
        self.names = [i.name for i in manifest.inputs]
        self.output_name = manifest.outputs[0].name
        self.threshold = float(manifest.params.get("filter_threshold", 0.1))

    @property
    def model_id(self) -> str:
        return self.manifest.id

    def match(
        self,
        f0: LocalFeatures,
        f1: LocalFeatures,
        size0: tuple[int, int] | None = None,
        size1: tuple[int, int] | None = None,
        threshold: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mutual best matches above ``threshold``: (idx0, idx1, confidence).

        ``size0``/``size1`` are the (width, height) the keypoints live in; by default the
        sizes recorded in the features.
        """
        th = self.threshold if threshold is None else threshold
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
        if len(f0) == 0 or len(f1) == 0:
            return empty
        feed = {
            self.names[0]: _normalise_keypoints(f0.xy, size0 or f0.image_size),
            self.names[1]: _normalise_keypoints(f1.xy, size1 or f1.image_size),
            self.names[2]: np.ascontiguousarray(f0.descriptors, np.float32)[None],
            self.names[3]: np.ascontiguousarray(f1.descriptors, np.float32)[None],
        }
        scores = np.asarray(self.model.run([self.output_name], feed)[0])[0]
        m0 = scores.argmax(axis=1)
        m1 = scores.argmax(axis=0)
        idx0 = np.arange(scores.shape[0])
        mutual = m1[m0] == idx0
        conf = np.exp(scores[idx0, m0]).astype(np.float32)
        valid = mutual & (conf > th)
        return idx0[valid].astype(np.int64), m0[valid].astype(np.int64), conf[valid]


def _normalise_keypoints(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """LightGlue's normalisation: centre on the image, divide by half the longer side."""
    wh = np.asarray(size, np.float32)
    out = (np.asarray(xy, np.float32) - wh / 2) / (wh.max() / 2)
    return np.ascontiguousarray(out[None])
