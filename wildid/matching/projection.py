"""A learned linear projection of RootSIFT descriptors, per species profile.

Why: RootSIFT compares gradient histograms with every bin weighted alike. Trained on the
spatially verified keypoint pairs between photos of the *same* animal (the database split of
the development photos), a linear map can whiten what varies between two photos of one mark
(light, blur, small pose changes) and keep what tells marks apart (Mikolajczyk & Matas' optimal
linear projection). It learns the species' markings, not the individuals: trained on half of the
lion identities, it raised LNBNN top-1 on queries of the *other* half as much as on its own
(29.5 -> 34.4 % and 47.0 -> 50.0 %; docs/identification.md). It is fitted by
``tests/benchmarks/research_projection.py --save``.

The map is symmetric under the SIFT mirror permutation (both covariances were symmetrised), so
mirroring a projected descriptor is a sign flip per component (``signs``): the mirrored search
needs no raw descriptors.  The file's sha256 is checked on load, like a model's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from wildid.errors import MatchingError

__all__ = ["DescriptorProjection"]


@dataclass(frozen=True)
class DescriptorProjection:
    """``unit((d - mean) @ matrix)``; ``signs`` mirror a projected row."""

    id: str
    mean: np.ndarray  # (dim,)
    matrix: np.ndarray  # (dim, out)
    signs: np.ndarray  # (out,) +1 / -1

    def apply(self, descriptors: np.ndarray) -> np.ndarray:
        """Project RootSIFT rows (float32, unit length out)."""
        d = np.asarray(descriptors, np.float32)
        if d.ndim != 2 or d.shape[1] != self.mean.shape[0]:
            raise MatchingError(f"projection {self.id} takes {self.mean.shape[0]}-d descriptors, "
                                f"got shape {d.shape}")
        # OpenCV's product, not NumPy's: a BLAS call wakes OpenBLAS threads that keep spinning
        # while OpenCV's own threads run the next crop's SIFT, and on 2 cores that cut lion
        # extraction from 81 to 50 images/s (measured); cv2.gemm keeps it at 79
        z = cv2.gemm(np.ascontiguousarray(d - self.mean), self.matrix, 1.0, None, 0.0)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), np.float32(1e-12))
        return z.astype(np.float32)

    def mirror(self, projected: np.ndarray) -> np.ndarray:
        """The projection of the mirrored descriptors, from the projected ones."""
        return (np.asarray(projected, np.float32) * self.signs).astype(np.float32)

    def save(self, path: Path, info: dict[str, Any] | None = None) -> str:
        """Write the ``.npz`` file; returns its sha256 (to record in the profile)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez(fh, id=np.array(self.id), mean=self.mean.astype(np.float32),
                     matrix=self.matrix.astype(np.float32), signs=self.signs.astype(np.float32),
                     info=np.array(json.dumps(info or {}, sort_keys=True)))
        return hashlib.sha256(path.read_bytes()).hexdigest()

    @classmethod
    def load(cls, path: Path, sha256: str | None = None) -> DescriptorProjection:
        """Read and check a projection file; a missing or altered file is a clear error."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MatchingError(f"descriptor projection {path} is missing ({exc}); reinstall "
                                "wildid or refit it with tests/benchmarks/research_projection.py"
                                ) from exc
        digest = hashlib.sha256(data).hexdigest()
        if sha256 and digest != sha256:
            raise MatchingError(f"descriptor projection {path} is damaged or was replaced (sha256 "
                                f"{digest[:12]}..., expected {sha256[:12]}...); reinstall wildid")
        try:
            with np.load(path, allow_pickle=False) as z:
                proj = cls(str(z["id"]), z["mean"].astype(np.float32),
                           z["matrix"].astype(np.float32), z["signs"].astype(np.float32))
        except (OSError, KeyError, ValueError) as exc:
            raise MatchingError(f"descriptor projection {path} is unreadable: {exc}") from exc
        if (proj.mean.ndim != 1 or proj.matrix.shape[0] != proj.mean.shape[0]
                or proj.signs.shape != (proj.matrix.shape[1],)
                or not np.all(np.abs(proj.signs) == 1)):
            raise MatchingError(f"descriptor projection {path} has inconsistent shapes")
        return proj
