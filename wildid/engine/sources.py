"""Feature sources: what the engine computes for every annotation, each tagged with its model.

A source turns annotation crops into bytes stored in the catalog's ``features`` table under
(kind, model_id, model_version). Tagging by model means switching models never mixes vectors
from different embedding spaces: an annotation is simply "pending" for the new model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from wildid.matching import parallel
from wildid.matching.features import LearnedKeypoints

if TYPE_CHECKING:
    from wildid.matching.profiles import SpeciesProfile


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

    A profile with a ``descriptor_projection`` stores projected descriptors, named by the
    projection's id (``rootsift/lion+proj:lion-v1``): features made before it,
    or with another one, are re-extracted.

    A profile with an ``attention_power`` places its keypoints where its ``attention_model``
    looks (see ``RootSiftExtractor.extract``); the model's id and version are then part of the
    stored name (``rootsift/nyala+att:reid_lite0_nyala_lion@1.1.0``), so features made with
    another model, or without one because it was missing, are re-extracted once it is back.
    A profile that verifies photometrically stores the grey working-size crop with them
    (``+tex``). A profile with ``learned_keypoints`` stores that many keypoints of its
    ``keypoint_model`` (ALIKED) beside the SIFT ones, for the learned matcher that re-ranks the
    best candidates (``+lg:aliked_n16@1.0.0x256``); without the model they are left out and
    re-extracted once it is back, like the attention.
    ``attention`` maps a model id to its embedder, or to None when that model is unavailable;
    ``keypoints`` does the same for keypoint models.
    """

    profiles: dict
    model_id: str = "rootsift"
    model_version: str = "1"
    kind: str = "local"
    per_species: bool = True
    attention: Callable[[str], object | None] | None = None
    keypoints: Callable[[str], object | None] | None = None
    # the same keypoint models on both cores, for a turned query at match time (nothing else
    # runs then: 171 against 262 ms for a nyala crop turned by 25 deg); None: ``keypoints``
    query_keypoints: Callable[[str], object | None] | None = None

    def __post_init__(self) -> None:
        # per thread: crops are described side by side (compute), each thread its own SIFT
        self._extractors = threading.local()
        self._attention_models: dict[str, object | None] = {}
        self._keypoint_models: dict[str, object | None] = {}

    def _keypoint_model(self, profile: SpeciesProfile) -> object | None:
        model_id = profile.models().get("keypoints")
        if model_id is None or self.keypoints is None:
            return None
        if model_id not in self._keypoint_models:
            self._keypoint_models[model_id] = self.keypoints(model_id)
        return self._keypoint_models[model_id]

    def working_side(self) -> int:
        return max(max(p.long_side, p.long_side_max) for p in self.profiles.values())

    def _attention_model(self, profile: SpeciesProfile) -> object | None:
        model_id = profile.models().get("attention")
        if model_id is None or self.attention is None:
            return None
        if model_id not in self._attention_models:
            model = self.attention(model_id)
            if model is not None and not getattr(model, "has_attention", False):
                model = None
            self._attention_models[model_id] = model
        return self._attention_models[model_id]

    def extractor_name(self, species: str | None) -> str:
        from wildid.matching.profiles import profile_for

        return self._name(profile_for(species, self.profiles))

    def _name(self, profile: object) -> str:
        name = f"rootsift/{profile.name}"  # type: ignore[attr-defined]
        model = self._attention_model(profile)
        if model is not None:
            name += f"+att:{model.model_id}@{model.model_version}"  # type: ignore[attr-defined]
        if profile.tophat > 0:  # type: ignore[attr-defined]
            name += f"+th{profile.tophat}"  # type: ignore[attr-defined]  # SIFT on the stripe map
        if profile.ridge_keypoints > 0:  # type: ignore[attr-defined]
            name += f"+ridge{profile.ridge_keypoints}"  # type: ignore[attr-defined]
        projection = profile.projection()  # type: ignore[attr-defined]
        if projection is not None:
            name += f"+proj:{projection.id}"
        if profile.long_side_max > profile.long_side:  # type: ignore[attr-defined]
            name += f"+max{profile.long_side_max}"  # type: ignore[attr-defined]  # large crops
        if profile.config.photometric:  # type: ignore[attr-defined]
            name += "+tex"  # stored with the grey crop photometric verification compares
        learned = self._keypoint_model(profile)
        if learned is not None:
            name += (f"+lg:{learned.model_id}@{learned.model_version}"  # type: ignore[attr-defined]
                     f"x{profile.learned_keypoints}")  # type: ignore[attr-defined]
        return name

    def compute(self, crops: list[np.ndarray], species: list[str | None] | None = None) -> list[bytes]:
        from dataclasses import replace

        from wildid.matching.profiles import profile_for

        profiles = [profile_for(species[i] if species else None, self.profiles)
                    for i in range(len(crops))]
        maps: list[np.ndarray | None] = [None] * len(crops)
        by_model: dict[str, list[int]] = {}
        for i, profile in enumerate(profiles):
            if self._attention_model(profile) is not None:
                by_model.setdefault(profile.models()["attention"], []).append(i)
        for model_id, idx in by_model.items():  # one batched run per attention model
            model = self._attention_models[model_id]
            for i, att in zip(idx, model.attention([crops[i] for i in idx]),  # type: ignore[union-attr]
                              strict=True):
                maps[i] = att
        names = {p.name: self._name(p) for p in profiles}  # loads the models, in this thread

        def describe(i: int) -> bytes:
            crop, profile, att = crops[i], profiles[i], maps[i]
            extractors = getattr(self._extractors, "by_profile", None)
            if extractors is None:
                extractors = self._extractors.by_profile = {}
            ext = extractors.get(profile.name)
            if ext is None:
                ext = extractors[profile.name] = profile.extractor()
            feats = ext.extract(crop, attention=att)  # type: ignore[attr-defined]
            model = self._keypoint_model(profile)
            learned = None if model is None else learned_keypoints(
                model, crop, att, profile.learned_keypoints, profile.long_side)
            return replace(feats, extractor=names[profile.name], learned=learned).to_bytes()

        # Two crops at once, each on one core: SIFT (OpenCV) and ALIKED (onnxruntime, its
        # session on one thread: see CatalogEngine._keypoint_model) leave part of the second
        # core idle when one crop has both.
        return parallel.map_side_by_side(describe, range(len(crops)))

    def turned_learned(self, crop: np.ndarray, species: str | None,
                       degrees: float) -> LearnedKeypoints | None:
        """The learned keypoints of ``crop`` turned by ``degrees`` (clockwise on screen), as
        extraction would place them on a photo taken that way: the attention is computed on
        the crop as it is (the model saw animals upright) and turned with it; nothing is
        kept in the corners the turn fills. None when the profile has no keypoint model.
        For the learned matcher's turned query (``query_tilt``)."""
        from wildid.matching.profiles import profile_for

        profile = profile_for(species, self.profiles)
        model = self._keypoint_model(profile)
        if model is None or crop.size == 0:
            return None
        if self.query_keypoints is not None:
            model = self.query_keypoints(profile.models()["keypoints"]) or model
        attention = self._attention_model(profile)
        att = None if attention is None else attention.attention([crop])[0]  # type: ignore[attr-defined]
        h, w = crop.shape[:2]
        weight = (np.ones((h, w), np.float32) if att is None else
                  cv2.resize(np.maximum(np.asarray(att, np.float32), 0), (w, h),
                             interpolation=cv2.INTER_LINEAR))
        canvas, turned_weight = turn_image(crop, weight, degrees)
        # the same detail as upright: the working size grows with the canvas
        side = round(profile.long_side * max(canvas.shape[:2]) / max(h, w))
        return learned_keypoints(model, canvas, turned_weight, profile.learned_keypoints, side)


def turn_image(image: np.ndarray, weight: np.ndarray,
               degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned by ``degrees`` clockwise on screen on a canvas that holds all of it,
    and ``weight`` (same height and width) turned alike, zero in the corners the turn adds
    and within 2 px of its edges (their step is not the animal's)."""
    h, w = image.shape[:2]
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # y down: clockwise
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64) @ rot.T
    low = corners.min(0)
    size = np.ceil(corners.max(0) - low - 1e-6).astype(int) + 1  # cos 90° is 6e-17, not 0
    matrix = np.hstack([rot, -low[:, None]]).astype(np.float64)
    out_w, out_h = int(size[0]), int(size[1])
    canvas = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones((h, w), np.uint8), matrix, (out_w, out_h),
                            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8))
    turned = cv2.warpAffine(np.asarray(weight, np.float32), matrix, (out_w, out_h),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return canvas, turned * inside


# learned keypoints detected per keypoint kept when an attention map chooses (see below)
LEARNED_POOL = 6


def learned_keypoints(model: object, crop: np.ndarray, attention: np.ndarray | None, n: int,
                      side: int) -> LearnedKeypoints:
    """``n`` keypoints of a learned detector on ``crop``, placed like the SIFT ones.

    With an attention map, ``LEARNED_POOL`` times ``n`` are detected and the ``n`` with the
    highest score x attention² kept (on full-frame nyala photos the strongest responses sit on
    gravel and branches); without one, the ``n`` strongest. The pool matters: on the nyala
    development queries (first stage 36.3 % top-1), LightGlue on the best 256 of 768
    detections re-ranked to 34.1 % with the shipped second stage, on the best 256 of 1,536 to
    37.8 %: the wider pool lets the attention reach more of the animal, and matches on the
    background drop (median summed confidence for wrong candidates 7.7 -> 5.3, right ones
    13.8 -> 10.9). Measured with ``tests/benchmarks/research_lightglue.py``.
    """
    from wildid.matching.features import attention_at

    if attention is None:
        f = model.extract(crop, max_keypoints=n, max_side=side)  # type: ignore[attr-defined]
        return LearnedKeypoints.quantised(f.xy, f.scores, f.descriptors, f.image_size)

    def choose(xy: np.ndarray, scores: np.ndarray) -> np.ndarray:
        weight = scores * attention_at(attention, xy, crop.shape[:2]) ** 2
        return np.argsort(-weight, kind="stable")[:n]

    # Only the kept keypoints are described (the model's stages): 1,536 detections at the
    # nyala profile's 512 px took 250 ms per crop on one core described whole, 150 ms so.
    f = model.extract(crop, max_keypoints=LEARNED_POOL * n,  # type: ignore[attr-defined]
                      max_side=side, choose=choose)
    return LearnedKeypoints.quantised(f.xy, f.scores, f.descriptors, f.image_size)
