"""Manifests, image loading and the training augmentations for the re-identification embedder.

Offline training code only (never imported by ``wildid/``). Every random choice is drawn from a
generator seeded by ``(seed, image index, view index)``, so the augmented views -- and therefore the
trained model -- do not depend on the order or the number of worker threads.

Why these augmentations: the photos the app will see are full-resolution field photos of the same
animals, whereas the training set is 512 px (nyala) or ~130 px (lion) crops. So the model must not
key on sharpness, JPEG artefacts, exposure or white balance, nor on the exact crop. Horizontal flip
is *not* label-preserving: a nyala's left and right flanks carry different stripe patterns and a
mirrored left flank looks like the right flank of some other animal. A flipped view is therefore
given a new pseudo-identity (``label + n_classes``), which adds hard negatives and teaches the model
chirality instead of erasing it.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

MEAN_FILL = (124, 116, 104)  # ImageNet mean colour, fills corners exposed by rotation


@dataclass(frozen=True)
class Row:
    """One photo of the benchmark manifests."""

    path: Path
    identity: str  # prefixed with the species, so identities never collide across species
    species: str
    split: str


def read_manifest(dataset_root: Path, species: str) -> list[Row]:
    """Read ``<root>/<species>/manifest.csv`` (``path,identity,split``) in file order."""
    folder = dataset_root / species
    with open(folder / "manifest.csv", newline="") as fh:
        return [
            Row(folder / r["path"], f"{species}:{r['identity']}", species, r["split"])
            for r in csv.DictReader(fh)
        ]


def load_rgb(path: Path) -> Image.Image:
    """Decode a photo as 8-bit RGB (drops alpha/palette the PNG lion crops sometimes have)."""
    with Image.open(path) as im:
        return im.convert("RGB")


def resize_square(img: Image.Image, size: int) -> Image.Image:
    """The inference preprocessing: stretch to ``size`` x ``size``; PIL's bilinear antialiases."""
    return img.resize((size, size), Image.Resampling.BILINEAR)


def to_input(img: Image.Image) -> np.ndarray:
    """HWC uint8 RGB -> CHW float32 scaled as the EfficientNet-Lite checkpoints expect."""
    arr = np.asarray(img, dtype=np.float32)
    return ((arr - 127.0) / 128.0).transpose(2, 0, 1).copy()


def _random_crop_box(w: int, h: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A mild random-resized crop: 65-100 % of the area, aspect jittered by up to 25 %.

    Mild because the identifying pattern covers most of the body; a 30 % crop would often
    cut away the very stripes that tell two animals apart.
    """
    frac = rng.uniform(0.65, 1.0)
    ratio = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
    cw = min(w, w * math.sqrt(frac * ratio))
    ch = min(h, h * math.sqrt(frac / ratio))
    x0 = rng.uniform(0, w - cw)
    y0 = rng.uniform(0, h - ch)
    return (x0, y0, x0 + cw, y0 + ch)


def augment(img: Image.Image, size: int, rng: np.random.Generator) -> tuple[Image.Image, bool]:
    """One random training view of ``img`` at ``size`` x ``size``; returns (view, flipped)."""
    if rng.random() < 0.7:
        angle = rng.uniform(-10.0, 10.0)
        img = img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=MEAN_FILL)
    img = img.crop(tuple(int(round(v)) for v in _random_crop_box(*img.size, rng)))
    flipped = bool(rng.random() < 0.5)
    if flipped:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = resize_square(img, size)

    # Colour: exposure, contrast, saturation and a white-balance cast.
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.3))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.6, 1.4))
    if rng.random() < 0.5:
        gains = rng.uniform(0.9, 1.1, size=3)
        arr = np.asarray(img, dtype=np.float32) * gains
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.05:
        img = img.convert("L").convert("RGB")

    # Resolution: a low-resolution source upsampled, defocus, and compression.
    if rng.random() < 0.5:
        small = max(24, int(size * rng.uniform(0.25, 0.9)))
        img = img.resize((small, small), Image.Resampling.BILINEAR).resize(
            (size, size), Image.Resampling.BILINEAR
        )
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 1.6)))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(25, 92)))
        buf.seek(0)
        with Image.open(buf) as jpg:
            img = jpg.convert("RGB")
    return img, flipped


def view_rng(seed: int, index: int, view: int) -> np.random.Generator:
    """The generator for view ``view`` of image ``index``: independent of processing order."""
    return np.random.default_rng([seed, index, view])
