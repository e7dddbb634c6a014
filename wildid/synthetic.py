"""Synthetic photos of patterned "animals": what ``wildid self-test`` identifies, and what the
tests' photo factory (``tests/photofactory.py``) builds its cards from.

Deterministic and fast: the same arguments always give the same pixels.

* Content looks photographic to codecs and feature extractors: a smooth sky/ground gradient
  with soft blobs, mid-scale texture and per-pixel sensor noise (a flat colour would give
  SIFT nothing to find and decode unrealistically fast).
* ``pattern_seed`` pastes a distinctive striped/spotted "animal" under a random pose
  (``warp`` adds perspective), so two renders with the same ``pattern_seed`` and different
  ``seed`` show the same individual in different scenes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Box", "Pose", "animal_patch", "jitter_pose", "random_pose", "render"]

Box = tuple[int, int, int, int]


def _scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sky/ground gradient, soft blobs and mid-scale texture (leaves, grass).

    Built at 1/4 size and upscaled once: a single 12 MP resize is most of the cost.
    """
    gh, gw = max(2, height // 96 + 2), max(2, width // 96 + 2)
    sky, ground = rng.uniform(90, 230, 3), rng.uniform(40, 170, 3)
    t = np.linspace(0, 1, gh)[:, None, None] ** rng.uniform(0.5, 2.0)
    small = (sky * (1 - t) + ground * t) * np.ones((1, gw, 1))
    small += rng.normal(0, 28, (gh, gw, 3))
    for _ in range(rng.integers(3, 9)):  # bushes, rocks, shadows
        centre = (int(rng.integers(0, gw)), int(rng.integers(gh // 3, gh)))
        axes = (int(rng.integers(1, max(2, gw // 4))), int(rng.integers(1, max(2, gh // 5))))
        cv2.ellipse(small, centre, axes, 0, 0, 360, rng.uniform(20, 200, 3).tolist(), -1)
    small = cv2.GaussianBlur(np.clip(small, 0, 255).astype(np.uint8), (0, 0), 1.2)
    qw, qh = max(1, width // 4), max(1, height // 4)
    quarter = cv2.resize(small, (qw, qh), interpolation=cv2.INTER_CUBIC)
    texture = rng.integers(-22, 23, (qh, qw, 3), dtype=np.int16)
    quarter = cv2.add(quarter, texture, dtype=cv2.CV_8U)
    return cv2.resize(quarter, (width, height), interpolation=cv2.INTER_LINEAR)


def _add_sensor_noise(image: np.ndarray, rng: np.random.Generator, sigma: float = 6.0) -> None:
    """Per-pixel noise, in place. A seeded 251x257 tile is added block by block: drawing
    36 M fresh normals costs ~120 ms at 12 MP; the tile is unique per photo, so two photos
    never share noise (no false feature matches between them)."""
    tile = np.clip(rng.normal(128, sigma, (251, 257, 3)), 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    for y in range(0, h, 251):
        for x in range(0, w, 257):
            block = image[y:y + 251, x:x + 257]
            cv2.addWeighted(block, 1.0, tile[:block.shape[0], :block.shape[1]], 1.0, -128.0,
                            dst=block)


@functools.lru_cache(maxsize=64)
def animal_patch(pattern_seed: int) -> np.ndarray:
    """The canonical look (RGBA 400x640) of individual ``pattern_seed``: its unique markings."""
    rng = np.random.default_rng(10_000 + pattern_seed)
    h, w = 400, 640
    coat = rng.uniform(120, 200, 3) * np.array([1.0, 0.8, 0.55])
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = coat
    rgb *= np.linspace(1.1, 0.8, h, dtype=np.float32)[:, None, None]  # belly shading
    dark = (coat * rng.uniform(0.15, 0.35)).tolist()
    for _ in range(rng.integers(7, 14)):  # stripes: wavy vertical bands, random widths
        x0, amp, freq = rng.uniform(60, 580), rng.uniform(5, 30), rng.uniform(0.01, 0.04)
        ys = np.arange(40, 360, 8)
        xs = x0 + amp * np.sin(freq * ys + rng.uniform(0, 6.28)) + rng.uniform(-0.3, 0.3) * (ys - 200)
        pts = np.stack([xs, ys], 1).astype(np.int32)
        cv2.polylines(rgb, [pts], False, dark, int(rng.integers(4, 16)), cv2.LINE_AA)
    for _ in range(rng.integers(25, 60)):  # spots, dark and pale
        colour = dark if rng.random() < 0.7 else (coat * 1.35).tolist()
        cv2.circle(rgb, (int(rng.uniform(60, 580)), int(rng.uniform(60, 340))),
                   int(rng.integers(4, 16)), colour, -1, cv2.LINE_AA)
    rgb += np.random.default_rng(pattern_seed).normal(0, 9, rgb.shape).astype(np.float32)
    alpha = np.zeros((h, w), np.uint8)
    cv2.ellipse(alpha, (300, 190), (230, 115), 0, 0, 360, 255, -1, cv2.LINE_AA)  # body
    cv2.ellipse(alpha, (560, 120), (70, 50), -20, 0, 360, 255, -1, cv2.LINE_AA)  # head
    for x in (140, 200, 380, 440):
        cv2.rectangle(alpha, (x, 250), (x + 32, 395), 255, -1)  # legs
    out = np.dstack([np.clip(rgb, 0, 255).astype(np.uint8), alpha])
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Pose:
    """Where and how the animal appears: centre and width as fractions of the frame."""

    cx: float
    cy: float
    width: float
    angle: float
    corners: tuple[tuple[float, float], ...]
    light: float


def random_pose(rng: np.random.Generator, warp: float = 0.0) -> Pose:
    jitter = rng.uniform(-warp, warp, (4, 2)) * 0.35
    return Pose(rng.uniform(0.35, 0.65), rng.uniform(0.4, 0.62), rng.uniform(0.35, 0.55),
                rng.uniform(-12, 12), tuple(map(tuple, jitter)), rng.uniform(0.8, 1.15))


def jitter_pose(pose: Pose, rng: np.random.Generator, amount: float = 0.02) -> Pose:
    """A nearby pose, as in the next frame of a burst."""
    return Pose(pose.cx + rng.uniform(-amount, amount), pose.cy + rng.uniform(-amount, amount),
                pose.width * rng.uniform(1 - amount, 1 + amount),
                pose.angle + rng.uniform(-20, 20) * amount, pose.corners, pose.light)


def _paste_animal(canvas: np.ndarray, patch: np.ndarray, pose: Pose) -> Box:
    """Warp ``patch`` into ``canvas`` in place (only the covered region is touched)."""
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    scale = pose.width * w / pw
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    centred = (src - [pw / 2, ph / 2]) * scale
    centred += np.float32(pose.corners) * [pw * scale, ph * scale]
    rad = np.deg2rad(pose.angle)
    rot = np.float32([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
    dst = centred @ rot.T + [pose.cx * w, pose.cy * h]
    x0, y0 = np.floor(dst.min(0)).astype(int)
    x1, y1 = np.ceil(dst.max(0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return (0, 0, 0, 0)
    matrix = cv2.getPerspectiveTransform(src, np.float32(dst - [x0, y0]))
    size = (x1 - x0, y1 - y0)
    lit = patch.copy()
    lit[:, :, :3] = cv2.convertScaleAbs(patch[:, :, :3], alpha=pose.light)
    warped = cv2.warpPerspective(lit, matrix, size, flags=cv2.INTER_LINEAR)  # RGBA in one pass
    fg = cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB)
    alpha = cv2.extractChannel(warped, 3)
    weight = alpha.astype(np.float32) * np.float32(1 / 255)
    roi = canvas[y0:y1, x0:x1]
    roi[:] = cv2.blendLinear(fg, roi, weight, 1.0 - weight)
    bx, by, bw, bh = cv2.boundingRect(cv2.threshold(alpha, 127, 255, cv2.THRESH_BINARY)[1])
    return (int(x0) + bx, int(y0) + by, bw, bh) if bw and bh else (0, 0, 0, 0)


def render(width: int = 1600, height: int = 1200, seed: int = 0, pattern_seed: int | None = None,
           warp: float = 0.0, pose: Pose | None = None, noise_seed: int | None = None,
           shake: int = 0) -> tuple[np.ndarray, Box | None]:
    """RGB pixels of a scene (``seed``) with an optional animal; returns (image, animal box).

    ``noise_seed``/``shake`` vary the sensor noise and shift the frame a few pixels, as the
    next shot of a burst would.
    """
    rng = np.random.default_rng(seed)
    image = _scene(rng, width + 2 * shake, height + 2 * shake)
    if shake:
        dx, dy = np.random.default_rng((seed, noise_seed or 0)).integers(0, 2 * shake + 1, 2)
        image = np.ascontiguousarray(image[dy:dy + height, dx:dx + width])
    box = None
    if pattern_seed is not None:
        box = _paste_animal(image, animal_patch(pattern_seed), pose or random_pose(rng, warp))
    noise_rng = np.random.default_rng(seed if noise_seed is None else (seed, noise_seed))
    _add_sensor_noise(image, noise_rng)
    return image, box
