"""Global embeddings: one unit vector per animal crop, for the candidate shortlist.

Any manifest with task ``embedder`` works here: the shipped EfficientNet-Lite0 or a user's
export (for example a MiewID model with 440x440 input, ImageNet mean/std and 2152-d
output).  Whatever the graph returns is flattened per image and L2-normalised here, so
cosine similarity is a dot product downstream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wildid.errors import ModelError
from wildid.vision.manifest import ModelManifest
from wildid.vision.onnx_models import OnnxModel, as_rgb_uint8, fit_fixed, l2_normalise, to_tensor


class GlobalEmbedder:
    """Embeds RGB uint8 crops of any size as L2-normalised float32 vectors."""

    def __init__(self, manifest: ModelManifest, threads: int = 2, batch_size: int = 16) -> None:
        if manifest.task != "embedder":
            raise ModelError(f"model {manifest.id!r} is a {manifest.task} model, not an embedder")
        spec = manifest.input
        if spec is None or spec.size is None:
            raise ModelError(
                f"{manifest.path}: an embedder needs a fixed input size ([height, width])"
            )
        self.manifest = manifest
        self.spec = spec
        self.model = OnnxModel(manifest, threads=threads)
        self.output_name = manifest.outputs[0].name
        fixed = self.model.fixed_batch()
        self.batch_size = fixed if fixed else max(1, batch_size)
        self._dim = manifest.outputs[0].dim
        self._last: tuple | None = None  # (image ids, images, rows, maps) of the last run

    ATTENTION = "attention"

    @property
    def has_attention(self) -> bool:
        """Whether the graph also says where it looks (an ``attention`` output, [N, h, w]).

        Only for inputs stretched over the whole crop: a letterboxed map would not line up.
        """
        return (self.spec.resize == "stretch"
                and any(o.name == self.ATTENTION for o in self.manifest.outputs))

    def attention(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One non-negative map per image ([h, w] over the whole crop) from the model's
        ``attention`` output; local features use it to place keypoints on the animal."""
        if not self.has_attention:
            raise ModelError(f"model {self.manifest.id} has no {self.ATTENTION!r} output")
        return self._outputs(images)[1]

    def _outputs(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Raw embedding rows and (when the model has them) attention maps, one graph run per
        batch for both.

        The last call is remembered by the identity of its images: extraction asks for the
        attention and for the embedding of the same crops, and the model then runs once.
        """
        key = tuple(id(img) for img in images)
        last = self._last
        if last is not None and last[0] == key:
            return last[2], last[3]
        names = [self.output_name] + ([self.ATTENTION] if self.has_attention else [])
        prepared = [fit_fixed(as_rgb_uint8(img), self.spec) for img in images]
        rows, maps = [], []
        for start in range(0, len(prepared), self.batch_size):
            part = prepared[start : start + self.batch_size]
            outs = self.model.run(names, {self.spec.name: to_tensor(part, self.spec)})
            out = np.asarray(outs[0])
            if out.shape[0] != len(part):
                raise ModelError(
                    f"model {self.manifest.id} returned {out.shape[0]} rows for {len(part)} images"
                )
            rows.append(out.reshape(len(part), -1).astype(np.float32))
            if len(outs) > 1:
                att = np.asarray(outs[1])
                if att.ndim != 3 or att.shape[0] != len(part) or not np.isfinite(att).all():
                    raise ModelError(f"model {self.manifest.id} returned an attention output of "
                                     f"shape {att.shape} for {len(part)} images; expected "
                                     "[N, h, w] finite")
                maps.extend(np.maximum(att.astype(np.float32), 0.0))
        result = (np.concatenate(rows, axis=0), maps)
        # the images are kept with the key, so their ids cannot be reused while it is remembered
        self._last = (key, list(images), *result)
        return result

    def _check_usable(self, rows: np.ndarray) -> None:
        """Refuse rows that are not a number or all zero, naming the model and the way out.

        A faulty export (a float16 overflow, a division by zero in the graph) gives NaN for some
        photos; stored, such a vector cannot be compared with any other, so extraction reports
        the crop instead and the rest of the batch goes on.
        """
        not_finite = ~np.isfinite(rows).all(axis=1)
        zero = ~not_finite & ~rows.any(axis=1)
        bad = int(not_finite.sum() + zero.sum())
        if not bad:
            return
        what = "an embedding that is not a number" if not_finite.any() else "an all-zero embedding"
        where = "this crop" if len(rows) == 1 else f"{bad} of {len(rows)} crops"
        raise ModelError(
            f"model {self.manifest.id} gave {what} for {where}: the model or its export is faulty; "
            "choose another embedder with `wildid models --use MODEL_ID`, or go back to the "
            "shipped one with `wildid models --reset embedder`")

    @property
    def model_id(self) -> str:
        return self.manifest.id

    @property
    def model_version(self) -> str:
        return self.manifest.version

    @property
    def dim(self) -> int:
        """Length of each embedding (from the manifest, else from a first run)."""
        if self._dim is None:
            probe = np.zeros((*self.spec.size, 3), np.uint8)  # type: ignore[misc]
            self._dim = int(self.embed([probe]).shape[1])
        return self._dim

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) float32 unit vectors for N uint8 RGB images (H x W x 3, any size)."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        raw = self._outputs(images)[0]
        self._check_usable(raw)
        result = l2_normalise(raw)
        if self._dim is None:
            self._dim = int(result.shape[1])
        elif result.shape[1] != self._dim:
            raise ModelError(
                f"model {self.manifest.id} returned {result.shape[1]}-d vectors but its manifest "
                f"says {self._dim}; fix {self.manifest.path.name}"
            )
        return result
