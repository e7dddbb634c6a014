"""Feature sources: what the engine computes for every annotation, each tagged with its model.

A source turns annotation crops into bytes stored in the catalog's ``features`` table under
(kind, model_id, model_version). Tagging by model means switching models never mixes vectors
from different embedding spaces: an annotation is simply "pending" for the new model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class FeatureSource(Protocol):
    """Computes one kind of feature for a batch of RGB crops."""

    kind: str  # "global" or "local"
    model_id: str
    model_version: str

    def working_side(self) -> int:
        """Long side (pixels) the crop needs to have at least, to decode photos no larger."""

    def compute(self, crops: list[np.ndarray]) -> list[bytes]:
        """One stored blob per crop, in order."""


def encode_vector(vec: np.ndarray) -> bytes:
    """A unit embedding as float16 bytes: half the size, far below the precision that matters."""
    return np.asarray(vec, dtype=np.float16).tobytes()


def decode_vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float16).astype(np.float32)


@dataclass
class GlobalSource:
    """An ONNX global embedder (see wildid.vision.onnx_models.GlobalEmbedder)."""

    embedder: object
    model_id: str
    model_version: str
    input_side: int = 224
    kind: str = "global"

    def working_side(self) -> int:
        return self.input_side * 2

    def compute(self, crops: list[np.ndarray]) -> list[bytes]:
        vectors = self.embedder.embed(crops)  # type: ignore[attr-defined]
        return [encode_vector(v) for v in np.asarray(vectors)]


@dataclass
class LocalSource:
    """A local keypoint extractor whose ``extract(crop)`` returns matching.features.LocalFeatures."""

    extractor: object
    model_id: str
    model_version: str
    side: int = 640
    kind: str = "local"

    def working_side(self) -> int:
        return self.side

    def compute(self, crops: list[np.ndarray]) -> list[bytes]:
        return [self.extractor.extract(c).to_bytes() for c in crops]  # type: ignore[attr-defined]


@dataclass
class ColourSource:
    """Colour histogram of the crop (no model): a cheap cue fused by the calibration."""

    model_id: str = "colour-hsv"
    model_version: str = "1"
    kind: str = "global"

    def working_side(self) -> int:
        return 128

    def compute(self, crops: list[np.ndarray]) -> list[bytes]:
        from wildid.matching.features import colour_histogram

        return [encode_vector(colour_histogram(c)) for c in crops]


@dataclass
class SiftSource:
    """RootSIFT local features with the species profile of each annotation.

    The profile decides the working size and keypoint budget (a 130 px lion face and a
    2000 px nyala flank need different ones); the profile's name is stored inside the features
    (``extractor`` = ``rootsift/<profile>``) so an annotation whose species changes later is
    re-extracted instead of being matched with the wrong settings.
    """

    profiles: dict
    model_id: str = "rootsift"
    model_version: str = "1"
    kind: str = "local"
    per_species: bool = True

    def __post_init__(self) -> None:
        self._extractors: dict[str, object] = {}

    def working_side(self) -> int:
        return max(p.long_side for p in self.profiles.values())

    def extractor_name(self, species: str | None) -> str:
        from wildid.matching.profiles import profile_for

        return f"rootsift/{profile_for(species, self.profiles).name}"

    def compute(self, crops: list[np.ndarray], species: list[str | None] | None = None) -> list[bytes]:
        from dataclasses import replace

        from wildid.matching.profiles import profile_for

        out = []
        for i, crop in enumerate(crops):
            profile = profile_for(species[i] if species else None, self.profiles)
            ext = self._extractors.get(profile.name)
            if ext is None:
                ext = self._extractors[profile.name] = profile.extractor()
            feats = ext.extract(crop)  # type: ignore[attr-defined]
            out.append(replace(feats, extractor=f"rootsift/{profile.name}").to_bytes())
        return out
