"""Local features of one annotation crop: extraction without a model (RootSIFT) and storage.

Why a working size: photos arrive at any resolution (130 px lion crops, 2500 px originals), and
SIFT finds different keypoints at different resolutions.  Every crop is therefore resized so its
long side equals ``long_side`` before extraction; keypoint coordinates are mapped back to the
pixel frame of the *original* crop, so the GUI can draw matches on the photo it shows.

Storage: features are extracted once at import and kept as bytes (:meth:`LocalFeatures.to_bytes`):
descriptors quantised to 8 bits, coordinates and keypoint attributes in float16.  About 140 bytes
per keypoint, i.e. ~70 KB for 500 keypoints.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

import cv2
import numpy as np

from wildid.errors import ImageError, MatchingError

if TYPE_CHECKING:
    from wildid.matching.projection import DescriptorProjection

__all__ = [
    "LearnedKeypoints",
    "LocalFeatures",
    "RootSiftExtractor",
    "colour_histogram",
    "colourless",
    "encode_texture",
    "features_from_arrays",
    "mirror_sift_descriptors",
    "resize_to_working",
    "ridge_map",
    "stripe_map",
    "to_gray",
]

_MAGIC = b"WLF1"
# magic, name length, n keypoints, descriptor dim, quantisation kind, scale, width, height
_HEADER = struct.Struct("<4sHIHBfII")
_QUANT_U8 = 1  # non-negative descriptors (RootSIFT): q = round(x * scale), uint8
_QUANT_I8 = 2  # signed descriptors (ALIKED, ...):   q = round(x * scale), int8
_QUANT_F16 = 3  # anything else, stored as float16
# optional trailing block (older readers stop before it): magic, length, JPEG of the grey
# working image that photometric verification compares (see wildid.matching.photometric)
_TEXTURE = struct.Struct("<4sI")
_TEXTURE_MAGIC = b"WTX1"
_TEXTURE_QUALITY = 92
# optional trailing block: learned keypoints for the re-ranking matcher (see LearnedKeypoints);
# magic, n, dim, scale, width, height, then float16 (x, y, score) rows and int8 descriptors
_LEARNED = struct.Struct("<4sIHfII")
_LEARNED_MAGIC = b"WLK1"


@dataclass(frozen=True)
class LearnedKeypoints:
    """Keypoints of a learned detector (ALIKED) kept beside the SIFT ones for the learned
    matcher that re-ranks the best candidates (LightGlue, see ``Identifier``).

    Same attribute names as ``wildid.vision.keypoints.LocalFeatures``, so the matcher takes
    them as they are; coordinates in the original crop's pixels like the SIFT keypoints.
    The descriptors stay int8 in memory as they are stored (``codes`` = unit rows x
    ``scale``; ~134 bytes per keypoint, 256 keypoints ~34 KB): the index holds them for every
    annotation but the matcher reads them for a handful of candidates per query, so
    ``descriptors`` decodes on use (float32 would be 1.3 GB at 10,000 annotations).
    Build from float descriptors with :meth:`quantised`.
    """

    xy: np.ndarray  # float32 (N, 2)
    scores: np.ndarray  # float32 (N,)
    codes: np.ndarray  # int8 (N, D)
    scale: float
    image_size: tuple[int, int]

    @classmethod
    def quantised(cls, xy: np.ndarray, scores: np.ndarray, descriptors: np.ndarray,
                  image_size: tuple[int, int]) -> LearnedKeypoints:
        """From float descriptors (one scale for the whole block: the peak maps to 127)."""
        desc = np.asarray(descriptors, np.float32)
        n = int(np.asarray(xy).shape[0])
        codes, scale = (_quantise_i8(desc) if n and desc.ndim == 2 and desc.shape[1]
                        else (np.zeros((n, 0), np.int8), 1.0))
        return cls(np.asarray(xy, np.float32), np.asarray(scores, np.float32), codes, scale,
                   (int(image_size[0]), int(image_size[1])))

    @property
    def descriptors(self) -> np.ndarray:
        """float32 (N, D) unit rows."""
        return _unit_rows(self.codes.astype(np.float32) / np.float32(self.scale))

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def to_bytes(self) -> bytes:
        n, dim = len(self), int(self.codes.shape[1]) if self.codes.ndim == 2 else 0
        geom = np.stack([self.xy[:, 0], self.xy[:, 1], self.scores], axis=1).astype(np.float16)
        body = geom.tobytes() + np.ascontiguousarray(self.codes, np.int8).tobytes()
        return _LEARNED.pack(_LEARNED_MAGIC, n, dim, self.scale, *self.image_size) + body

    @classmethod
    def from_buffer(cls, data: bytes, pos: int) -> tuple[LearnedKeypoints, int]:
        """The block at ``pos`` of ``data`` and the position after it."""
        try:
            _, n, dim, scale, width, height = _LEARNED.unpack_from(data, pos)
        except struct.error as exc:
            raise MatchingError("stored learned keypoints are truncated") from exc
        pos += _LEARNED.size
        end = pos + n * 3 * 2 + n * dim
        if len(data) < end:
            raise MatchingError("stored learned keypoints are truncated")
        if not np.isfinite(scale) or scale <= 0:
            raise MatchingError("stored learned keypoints have a damaged scale")
        geom = np.frombuffer(data, np.float16, n * 3, pos).reshape(n, 3).astype(np.float32)
        codes = np.frombuffer(data, np.int8, n * dim, pos + n * 6).reshape(n, dim).copy()
        return cls(np.ascontiguousarray(geom[:, :2]), geom[:, 2].copy(), codes, float(scale),
                   (int(width), int(height))), end


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints and descriptors of one crop, in the original crop's pixel coordinates.

    ``descriptors`` are float32 rows of unit L2 norm (every extractor here produces unit vectors,
    so distances compare across keypoints).  ``sizes`` and ``angles`` (radians) are zero when the
    extractor has none (learned detectors); ``scores`` is the detector response.
    """

    xy: np.ndarray
    descriptors: np.ndarray
    scores: np.ndarray
    sizes: np.ndarray
    angles: np.ndarray
    image_size: tuple[int, int]
    extractor: str = "rootsift"
    # JPEG of the grey crop at the profile's working size, kept encoded (~10 KB, decoded only
    # for shortlisted candidates) when the profile verifies photometrically; else None
    texture_jpeg: bytes | None = None
    # ALIKED keypoints for the learned re-ranking matcher when the profile uses one, else None
    learned: LearnedKeypoints | None = None

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    @property
    def is_rootsift(self) -> bool:
        """RootSIFT features, whatever profile made them (stored as ``rootsift/<profile>``)."""
        return self.extractor.split("/", 1)[0] == "rootsift"

    @property
    def dim(self) -> int:
        return int(self.descriptors.shape[1])

    def subset(self, idx: np.ndarray) -> LocalFeatures:
        """The keypoints selected by ``idx`` (index array or boolean mask)."""
        return LocalFeatures(self.xy[idx], self.descriptors[idx], self.scores[idx], self.sizes[idx],
                             self.angles[idx], self.image_size, self.extractor, self.texture_jpeg,
                             self.learned)

    def texture(self) -> np.ndarray | None:
        """The grey working-size crop stored with the features (uint8), or None."""
        if not self.texture_jpeg:
            return None
        img = cv2.imdecode(np.frombuffer(self.texture_jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise MatchingError("stored feature texture is not a readable JPEG")
        return img

    def to_bytes(self) -> bytes:
        """Compact serialisation: 8-bit descriptors, float16 geometry (see module docstring)."""
        desc = np.asarray(self.descriptors, dtype=np.float32)
        n, dim = desc.shape if desc.ndim == 2 else (0, 0)
        if n and float(desc.min()) >= 0.0:
            quant, peak = _QUANT_U8, float(desc.max())
            scale = 255.0 / peak if peak > 0 else 1.0
            qdesc = np.clip(np.rint(desc * scale), 0, 255).astype(np.uint8)
        elif n:
            quant = _QUANT_I8
            qdesc, scale = _quantise_i8(desc)
        else:
            quant, scale, qdesc = _QUANT_F16, 1.0, desc.astype(np.float16)
        name = self.extractor.encode("utf-8")
        geom = np.stack([self.xy[:, 0], self.xy[:, 1], self.scores, self.sizes, self.angles],
                        axis=1).astype(np.float16) if n else np.zeros((0, 5), np.float16)
        header = _HEADER.pack(_MAGIC, len(name), n, dim, quant, scale, *self.image_size)
        tail = b""
        if self.texture_jpeg:
            tail = _TEXTURE.pack(_TEXTURE_MAGIC, len(self.texture_jpeg)) + self.texture_jpeg
        if self.learned is not None:
            tail += self.learned.to_bytes()
        return header + name + geom.tobytes() + qdesc.tobytes() + tail

    # bytes of a serialised blob that always hold its header and extractor name (the longest
    # shipped name, nyala's with attention, stripe, ridge and learned keypoints, is 84 bytes)
    HEADER_PEEK: ClassVar[int] = 1024

    @staticmethod
    def extractor_of(data: bytes) -> str:
        """The extractor name stored in serialised features, without decoding the arrays
        (the first ``HEADER_PEEK`` bytes are enough)."""
        try:
            magic, name_len, *_ = _HEADER.unpack_from(data, 0)
        except struct.error:
            return ""
        if magic != _MAGIC:
            return ""
        return bytes(data[_HEADER.size:_HEADER.size + name_len]).decode("utf-8", "replace")

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Inverse of :meth:`to_bytes` (descriptors are re-normalised to unit length)."""
        try:
            magic, name_len, n, dim, quant, scale, width, height = _HEADER.unpack_from(data, 0)
        except struct.error as exc:
            raise MatchingError("stored local features are truncated") from exc
        if magic != _MAGIC:
            raise MatchingError("stored local features have an unknown format")
        pos = _HEADER.size
        name = data[pos:pos + name_len].decode("utf-8")
        pos += name_len
        geom = np.frombuffer(data, np.float16, n * 5, pos).reshape(n, 5).astype(np.float32)
        pos += n * 5 * 2
        dtype = {_QUANT_U8: np.uint8, _QUANT_I8: np.int8, _QUANT_F16: np.float16}.get(quant)
        if dtype is None:
            raise MatchingError("stored local features use an unknown quantisation")
        raw = np.frombuffer(data, dtype, n * dim, pos)
        if raw.size != n * dim:
            raise MatchingError("stored local features are truncated")
        desc = raw.reshape(n, dim).astype(np.float32) / np.float32(scale)
        desc = _unit_rows(desc)
        pos += n * dim * np.dtype(dtype).itemsize
        texture, learned = None, None
        while len(data) > pos:  # optional trailing blocks, each named by its magic
            block = bytes(data[pos:pos + 4])
            if block == _TEXTURE_MAGIC and len(data) >= pos + _TEXTURE.size:
                _, size_t = _TEXTURE.unpack_from(data, pos)
                if len(data) < pos + _TEXTURE.size + size_t:
                    raise MatchingError("stored local features have a damaged texture block")
                texture = bytes(data[pos + _TEXTURE.size:pos + _TEXTURE.size + size_t])
                pos += _TEXTURE.size + size_t
            elif block == _LEARNED_MAGIC:
                learned, pos = LearnedKeypoints.from_buffer(data, pos)
            else:
                raise MatchingError("stored local features have a damaged trailing block")
        return cls(np.ascontiguousarray(geom[:, :2]), desc, geom[:, 2].copy(), geom[:, 3].copy(),
                   geom[:, 4].copy(), (int(width), int(height)), name, texture, learned)


def _quantise_i8(desc: np.ndarray) -> tuple[np.ndarray, float]:
    """Signed rows as int8 with one scale for the block (its peak maps to 127)."""
    peak = float(np.abs(desc).max())
    scale = 127.0 / peak if peak > 0 else 1.0
    return np.clip(np.rint(desc * scale), -127, 127).astype(np.int8), scale


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def features_from_arrays(xy: np.ndarray, descriptors: np.ndarray, image_size: tuple[int, int],
                         extractor: str, scores: np.ndarray | None = None,
                         sizes: np.ndarray | None = None,
                         angles: np.ndarray | None = None) -> LocalFeatures:
    """Wrap the output of any keypoint extractor (e.g. the ONNX ALIKED one) as LocalFeatures."""
    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    n = xy.shape[0]
    raw = np.asarray(descriptors, dtype=np.float32)
    desc = _unit_rows(raw.reshape(n, raw.shape[-1] if raw.ndim == 2 else -1))

    def column(values: np.ndarray | None) -> np.ndarray:
        return np.zeros(n, np.float32) if values is None else np.asarray(values, np.float32).reshape(n)

    return LocalFeatures(xy, desc, column(scores), column(sizes), column(angles),
                         (int(image_size[0]), int(image_size[1])), extractor)


def to_gray(image: np.ndarray) -> np.ndarray:
    """An RGB (or already grey) uint8 image as a single grey channel."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    raise ImageError(f"unsupported image shape {image.shape}")


def resize_to_working(image: np.ndarray, long_side: int,
                      detail_side: int | None = None) -> tuple[np.ndarray, float]:
    """Resize so the long side is ``long_side``; return the image and the scale applied.

    ``detail_side`` (optional) first reduces images larger than it to that long side, so a sharp
    full-resolution photo and a small crop of the same animal carry the same level of detail
    after normalisation; images already smaller are left as they are.
    """
    h, w = image.shape[:2]
    if h < 2 or w < 2:
        raise ImageError(f"image too small for features: {w}x{h}")
    src = image
    if detail_side is not None and max(h, w) > detail_side:
        s = detail_side / max(h, w)
        src = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                         interpolation=cv2.INTER_AREA)
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    sh, sw = src.shape[:2]
    if (sw, sh) == size:
        return src, scale
    interp = cv2.INTER_AREA if size[0] < sw else cv2.INTER_CUBIC
    return cv2.resize(src, size, interpolation=interp), scale


# SIFT descriptor layout (OpenCV): index = (i * 4 + j) * 8 + orientation bin over a 4x4 grid in
# the keypoint's rotated frame.  Mirroring the image left-right (keypoint angle a -> pi - a)
# reverses the grid axis i and reflects the orientation bins b -> -b (mod 8).  Checked against
# descriptors computed on a flipped photo: mean relative error 0.13 (interpolation), vs ~1.0
# for a wrong permutation.
def _mirror_permutation() -> np.ndarray:
    perm = np.empty(128, dtype=np.int64)
    for i in range(4):
        for j in range(4):
            for b in range(8):
                perm[(i * 4 + j) * 8 + b] = ((3 - i) * 4 + j) * 8 + ((8 - b) % 8)
    return perm


_MIRROR = _mirror_permutation()


def mirror_sift_descriptors(descriptors: np.ndarray) -> np.ndarray:
    """Descriptors of the left-right mirrored patches, by permuting SIFT bins (no re-extraction).

    Used for query-side flip augmentation: a flank photographed from the other side, or an
    annotation stored mirrored, can then be matched without extracting features again.
    """
    return np.ascontiguousarray(descriptors[:, _MIRROR])


class RootSiftExtractor:
    """RootSIFT keypoints of a crop normalised to a working size (OpenCV SIFT, no model)."""

    def __init__(self, max_keypoints: int = 1000, long_side: int = 512,
                 contrast_threshold: float = 0.02, detail_side: int | None = None,
                 attention_power: float = 0.0, attention_pool: int = 3,
                 projection: DescriptorProjection | None = None, texture: bool = False,
                 tophat: int = 0, ridge_keypoints: int = 0, long_side_max: int = 0) -> None:
        if ridge_keypoints > 0 and projection is not None:
            # the ridge channel is kept apart by its sign, which a signed projection would mix
            raise MatchingError("a descriptor projection and ridge keypoints cannot be combined")
        self.max_keypoints = max_keypoints
        # a second channel: this many keypoints on ridge_map, stored with negated descriptors
        self.ridge_keypoints = ridge_keypoints
        # detect and describe on the white top-hat of the working image (diameter in working
        # pixels; 0 = the grey image itself): see stripe_map
        self.tophat = tophat
        # keep the grey working image with the features (photometric verification)
        self.texture = texture
        # learned map applied to the RootSIFT rows (the profile's descriptor_projection)
        self.projection = projection
        self.long_side = long_side
        # larger crops are described at up to this long side (working_side)
        self.long_side_max = max(long_side_max, long_side)
        self.contrast_threshold = contrast_threshold
        self.detail_side = detail_side
        self.attention_power = attention_power
        self.attention_pool = max(1, attention_pool)
        self._sift = cv2.SIFT_create(nfeatures=max_keypoints,
                                     contrastThreshold=contrast_threshold)
        self._sifts: dict[int, cv2.SIFT] = {}  # larger budgets for larger crops
        self._sift_pool = (cv2.SIFT_create(nfeatures=max_keypoints * self.attention_pool,
                                           contrastThreshold=contrast_threshold)
                           if attention_power > 0 else None)
        self._ridge_sift = (cv2.SIFT_create(nfeatures=ridge_keypoints * (
            self.attention_pool if attention_power > 0 else 1),
            contrastThreshold=contrast_threshold) if ridge_keypoints > 0 else None)

    @property
    def name(self) -> str:
        return "rootsift"

    def working_side(self, side: int) -> int:
        """The long side a crop whose long side is ``side`` pixels is described at.

        ``long_side`` for crops up to that size (smaller ones are enlarged to it: SIFT finds
        more of what matches on a small crop enlarged, measured on the 130 px development lion
        photos); a larger crop at twice its own size, at most ``long_side_max``. A fixed size
        would bring every full-size photo down to the detail of the photos it was chosen on:
        on the lion photos shrunk to half (65 px), the size chosen the same way (128 px) gave
        LNBNN top-1 26.8 % on the 130 px originals, where describing them at 256 px gave
        37.8 % (docs/identification.md, "Photos larger than the development ones").
        """
        if side <= self.long_side or self.long_side_max <= self.long_side:
            return self.long_side
        return min(self.long_side_max, 2 * side)

    def keypoint_budget(self, working: int) -> int:
        """Keypoints kept from a crop described at ``working`` px: ``max_keypoints`` at
        ``long_side``, in proportion above it (2,000 at 512 px for the lion profile's 1,000).

        A sharp crop at twice the side has about four times the keypoints (the 512 px nyala
        photos ~3,600 on median, the lion photos at 256 px ~900): a fixed budget would keep
        a third of them where it was tuned keeping nearly all. On the lion photos at 256 px
        (LNBNN top-1) keeping 250 / 500 / 1,000 / 2,000 gave 33.1 / 38.6 / 37.8 / 37.0 %:
        little is lost down to about half, much below it.
        """
        if working <= self.long_side:
            return self.max_keypoints
        return round(self.max_keypoints * working / self.long_side)

    def _larger_sift(self, budget: int) -> cv2.SIFT:
        """A SIFT detector keeping ``budget`` keypoints (made once per budget)."""
        made = self._sifts.get(budget)
        if made is None:
            made = self._sifts[budget] = cv2.SIFT_create(nfeatures=budget,
                                                         contrastThreshold=self.contrast_threshold)
        return made

    def _attended(self, keypoints: Sequence[cv2.KeyPoint], size: tuple[int, int],
                  attention: np.ndarray, budget: int) -> np.ndarray:
        """Indices of the ``budget`` keypoints by response x attention^power, best first."""
        pts = np.array([k.pt for k in keypoints], dtype=np.float32)
        response = np.array([k.response for k in keypoints], dtype=np.float32)
        weight = response * attention_at(attention, pts, size) ** np.float32(self.attention_power)
        return np.argsort(-weight, kind="stable")[:budget]

    def _detect(self, sift: cv2.SIFT, work: np.ndarray, mask: np.ndarray | None,
                attention: np.ndarray | None, budget: int,
                size: tuple[int, int]) -> tuple[list[cv2.KeyPoint], np.ndarray | None]:
        """SIFT keypoints and raw descriptors of ``work``: the ``budget`` best, by response x
        attention^power when a map is given (``sift`` then detects the larger pool).

        A pool is detected first and only the kept keypoints are described: describing the
        whole pool took 51 of every 44 + 7 ms per nyala channel (3,000 detected, 1,000 kept),
        and the descriptors are the same to the bit (``sift.compute`` rebuilds the pyramid
        the detection used, from the kept keypoints' octaves).
        """
        try:
            if attention is None and sift.getNFeatures() <= budget:
                # SIFT's own limit (ties at the last response may pass it): describe in one go
                keypoints, desc = sift.detectAndCompute(work, mask)
            else:
                keypoints, desc = sift.detect(work, mask), None
            if not keypoints:
                return [], None
            if attention is not None:
                keep = self._attended(keypoints, work.shape[:2], attention, budget)
            elif len(keypoints) > budget:  # the strongest responses
                keep = np.argsort([-k.response for k in keypoints], kind="stable")[:budget]
            else:
                keep = None
            if keep is not None:
                keypoints = [keypoints[i] for i in keep]
                desc = None if desc is None else desc[keep]
            if desc is None:
                keypoints, desc = sift.compute(work, keypoints)
        except cv2.error as exc:
            raise ImageError(f"SIFT failed on a {size[0]}x{size[1]} crop: {exc}") from exc
        return ([], None) if desc is None or not keypoints else (list(keypoints), desc)

    def extract(self, image: np.ndarray, mask: np.ndarray | None = None,
                attention: np.ndarray | None = None) -> LocalFeatures:
        """Features of ``image`` (RGB or grey uint8 crop); ``mask`` (same size) limits keypoints.

        ``attention`` (a non-negative map of any size covering the whole crop, e.g. where a
        re-identification model looks) re-ranks keypoints when the extractor has an
        ``attention_power``: ``attention_pool`` times the budget are detected and the
        ``max_keypoints`` with the highest response x attention^power are kept, so the budget
        goes to the animal rather than to the ground and bushes around it.  Without a map the
        strongest responses are kept, as before.
        """
        gray = to_gray(np.asarray(image))
        h, w = gray.shape[:2]
        side = self.working_side(max(h, w))
        work, scale = resize_to_working(gray, side, self.detail_side)
        texture = None
        if self.texture:  # at the base working size, where its band-pass was chosen
            base = work if side == self.long_side else resize_to_working(
                gray, self.long_side, self.detail_side)[0]
            texture = encode_texture(base)
        stripes = stripe_map(work, self.tophat) if self.tophat > 0 else work
        work_mask = None
        if mask is not None:
            work_mask = cv2.resize(mask.astype(np.uint8), (work.shape[1], work.shape[0]),
                                   interpolation=cv2.INTER_NEAREST)
        weigh = attention is not None and self._sift_pool is not None
        sift = self._sift_pool if weigh else self._sift
        att = attention if weigh else None
        budget = self.keypoint_budget(side)
        if budget != self.max_keypoints and not weigh:
            sift = self._larger_sift(budget)
        keypoints, desc = self._detect(sift, stripes, work_mask, att, budget, (w, h))
        n_first = len(keypoints)
        if self._ridge_sift is not None:
            # the ridge channel: negated, so its descriptors (RootSIFT rows are >= 0) are never
            # the nearest neighbours of the first channel's, and LNBNN keeps the two apart in
            # one index; the mirror permutation commutes with the sign
            more, more_desc = self._detect(self._ridge_sift, ridge_map(work), work_mask, att,
                                           self.ridge_keypoints, (w, h))
            if more:
                keypoints = keypoints + more
                desc = more_desc if desc is None else np.concatenate([desc, more_desc])
        if desc is None or not keypoints:
            return replace(features_from_arrays(np.zeros((0, 2)), np.zeros((0, 128)), (w, h),
                                                self.name), texture_jpeg=texture)
        pts = np.array([k.pt for k in keypoints], dtype=np.float32)
        # pixel centres: (x + 0.5) / scale - 0.5 maps the working frame back to the original
        xy = (pts + 0.5) / np.float32(scale) - 0.5
        sizes = np.array([k.size for k in keypoints], dtype=np.float32) / np.float32(scale)
        angles = np.deg2rad(np.array([k.angle for k in keypoints], dtype=np.float32))
        scores = np.array([k.response for k in keypoints], dtype=np.float32)
        desc = desc.astype(np.float32)
        desc /= np.maximum(desc.sum(axis=1, keepdims=True), 1e-12)  # RootSIFT: L1, then sqrt
        desc = np.sqrt(desc)
        desc[n_first:] *= -1.0
        if self.projection is not None:
            desc = self.projection.apply(desc)
        return replace(features_from_arrays(xy, desc, (w, h), self.name, scores, sizes, angles),
                       texture_jpeg=texture)


def stripe_map(gray: np.ndarray, diameter: int) -> np.ndarray:
    """The thin bright markings of a grey image: its white top-hat (the image minus its
    morphological opening by a disc of ``diameter`` pixels), stretched so the brightest 0.5 %
    saturate.

    Why: a nyala's identity is in the white stripes and spots on its flank, which keep their
    layout across years, while coat colour darkens with age and the light changes between
    sightings.  The top-hat keeps only structures narrower than the disc (stripes, spots, the
    white chevron) and drops the slow shading of the body, so SIFT detects and describes the
    marking pattern itself.  On the nyala development photos it raised LNBNN top-1 on queries
    from another sighting than any database photo from 17.6 % to 25.2 % (same run, same keypoint
    budget and attention placement; see docs/identification.md).  Mirroring commutes with it
    (the disc is symmetric), so the mirrored search is unchanged.
    """
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    hat = cv2.morphologyEx(np.ascontiguousarray(gray), cv2.MORPH_TOPHAT, disc).astype(np.float32)
    peak = float(np.percentile(hat, 99.5)) if hat.size else 0.0
    return np.clip(hat * (255.0 / max(peak, 1e-6)), 0, 255).astype(np.uint8)


def ridge_map(gray: np.ndarray, sigmas: Sequence[float] = (1.2, 2.0)) -> np.ndarray:
    """Bright ridges of a grey image: the largest of ``-lambda_min(Hessian) * sigma^2`` over
    ``sigmas`` (pixels), where the image curves down across a thin bright line, stretched so the
    brightest 0.5 % saturate.

    Why a second map beside :func:`stripe_map`: the top-hat keeps everything narrower than its
    disc, spots and blobs included, while the Hessian answers to *elongated* bright structure
    along a direction, so SIFT finds other keypoints with other neighbourhoods on the same
    stripes.  Alone it did worse than the top-hat on nyala; searched next to it (see
    RootSiftExtractor's ``ridge_keypoints``) the two found different individuals.  Mirroring
    commutes with it (the Hessian's eigenvalues do not depend on orientation).
    """
    img = np.asarray(gray, np.float32)
    best = np.zeros_like(img)
    for sigma in sigmas:
        g = cv2.GaussianBlur(img, (0, 0), sigma)
        dxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3)
        dyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3)
        dxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3)
        lam = (dxx + dyy) * 0.5 - np.sqrt(((dxx - dyy) * 0.5) ** 2 + dxy * dxy)
        np.maximum(best, np.maximum(-lam, 0.0) * np.float32(sigma * sigma), out=best)
    peak = float(np.percentile(best, 99.5)) if best.size else 0.0
    return np.clip(best * (255.0 / max(peak, 1e-6)), 0, 255).astype(np.uint8)


def encode_texture(gray: np.ndarray) -> bytes:
    """JPEG bytes of a grey uint8 image (the texture stored with local features)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(gray),
                           [cv2.IMWRITE_JPEG_QUALITY, _TEXTURE_QUALITY])
    if not ok:
        raise ImageError("could not encode the feature texture")
    return buf.tobytes()


def attention_at(attention: np.ndarray, points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``attention`` (any grid covering an image of ``size`` = (h, w)), scaled to a maximum of 1,
    sampled bilinearly at ``points`` (x, y in that image's pixels)."""
    att = np.asarray(attention, np.float32)
    if att.ndim != 2 or not att.size or not np.isfinite(att).all():
        raise ImageError(f"attention map must be a finite 2-D array, got shape {att.shape}")
    att = np.maximum(att, 0.0)
    peak = float(att.max())
    att = att / peak if peak > 0 else np.ones_like(att)
    h, w = size
    full = cv2.resize(att, (w, h), interpolation=cv2.INTER_LINEAR)
    xi = np.clip(np.rint(points[:, 0]).astype(np.int64), 0, w - 1)
    yi = np.clip(np.rint(points[:, 1]).astype(np.int64), 0, h - 1)
    return full[yi, xi]


# a photo is colourless (an infrared night shot, a greyscale scan) when at least this share of
# its pixels falls in the lowest saturation bin (saturation under 32 of 255); washed-out colour
# photos of grey nyala bulls on pale sand reach 0.967, a greyscale photo 1.0
COLOURLESS_SHARE = 0.99


def colourless(hist: np.ndarray, bins: tuple[int, int, int] = (16, 8, 8)) -> bool:
    """Whether a :func:`colour_histogram` is of a photo without colour.

    Why it matters: comparing such a photo's histogram with a colour photo's says nothing
    about the animal (a night shot of one lion is as grey as a night shot of another, and
    as unlike her day shots), so the identifier leaves the colour score out for such pairs
    and the calibration fills in what it has for different individuals."""
    h = np.asarray(hist, np.float32).ravel()
    if h.size != bins[0] * bins[1] * bins[2]:
        return False
    p = h.reshape(bins) ** 2  # the histogram is square-rooted and unit length
    return float(p[:, 0, :].sum()) >= COLOURLESS_SHARE * max(float(p.sum()), 1e-12)


def colour_histogram(image: np.ndarray, bins: tuple[int, int, int] = (16, 8, 8),
                     side: int = 128) -> np.ndarray:
    """Unit-length square-rooted HSV histogram of an RGB crop (1024 values by default).

    The dot product of two such vectors is the Bhattacharyya coefficient of the histograms.
    A cheap whole-crop cue (coat colour, light, surroundings of the same outing): alone it put
    the right lion first for 24 % of the development queries and the right nyala for 12 %,
    where the ImageNet embedding managed 1-2 %.  16 hue x 8 saturation x 8 value bins did as
    well as 4096-bin variants (LAB 8x8x8: 13 % / 8 %).  Computed on a copy shrunk to ``side``
    pixels, so the photo's resolution does not matter.
    """
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ImageError("a colour histogram needs an RGB image")
    small, _ = resize_to_working(np.ascontiguousarray(rgb[:, :, :3]), side)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
    hist = np.sqrt(hist / max(float(hist.sum()), 1.0)).astype(np.float32)
    return hist / max(float(np.linalg.norm(hist)), 1e-12)
