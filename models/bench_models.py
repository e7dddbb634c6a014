"""Throughput of the shipped models through the app's own API (preprocessing included).

Run with the project venv: ``.venv/bin/python models/bench_models.py [--repeat 5]``.
Prints images (or pairs) per second at the sizes the app uses, plus the load average,
because on a shared 2-core machine other work changes the numbers a lot.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable

import numpy as np

from wildid.vision.keypoints import KeypointExtractor
from wildid.vision.registry import ModelRegistry


def textured(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((h // 8 + 1, w // 8 + 1, 3))
    img = np.kron(small, np.ones((8, 8, 1)))[:h, :w] * 0.7 + rng.random((h, w, 3)) * 0.3
    return (img * 255).astype(np.uint8)


CPU_SECONDS: list[float] = []


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall seconds; CPU seconds per call go to CPU_SECONDS (load-independent-ish)."""
    fn()  # warm-up (session arenas, first-run allocations)
    times = []
    cpu = time.process_time()
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    CPU_SECONDS.append((time.process_time() - cpu) / repeat)
    return min(times), float(np.median(times))


def _keep_256(xy: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return np.argsort(-(scores * (1 + xy[:, 0] / 512)), kind="stable")[:256]


def _one_go(reg: ModelRegistry) -> KeypointExtractor:
    """The keypoint model as one graph: its manifest without the stages."""
    manifest = reg.verified(task="keypoints")
    return KeypointExtractor(dataclasses.replace(manifest, stages={}), threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    reg = ModelRegistry()
    print(f"load average before: {os.getloadavg()}")

    emb = reg.embedder()
    crops = [textured(300 + 10 * i, 400, i) for i in range(16)]
    for n in (1, 16):
        # fresh copies at every call: the embedder remembers its last crops (extraction asks
        # for their embedding and attention and runs the model once), which would time a memo
        lo, med = best_of(lambda n=n: emb.embed([c.copy() for c in crops[:n]]), args.repeat)
        print(f"embedder {emb.model_id}: batch {n:2d}: {n / lo:6.1f} img/s best, "
              f"{n / med:6.1f} median, {CPU_SECONDS[-1] * 1000 / n:.0f} cpu-ms/img")

    kp = reg.keypoint_extractor()
    for (h, w), side, k in (((480, 640), 640, 1024), ((480, 640), 480, 1024),
                            ((480, 640), 320, 512), ((240, 320), 320, 512)):
        img = textured(h, w, 1)
        lo, med = best_of(lambda img=img, side=side, k=k: kp.extract(img, k, side), args.repeat)
        print(f"keypoints {kp.model_id}: {w}x{h} max_side {side} top {k}: "
              f"{1 / lo:5.2f} img/s best ({lo * 1000:.0f} ms), {1 / med:5.2f} median, "
              f"{CPU_SECONDS[-1] * 1000:.0f} cpu-ms")

    # As the nyala profile asks (wildid.engine.sources.learned_keypoints): six times the 256 it
    # keeps detected, the rest never described when the model runs in stages.
    staged, whole = reg.keypoint_extractor(threads=1), _one_go(reg)
    img = textured(448, 512, 3)
    for name, model in (("in stages", staged), ("one-go", whole)):
        lo, med = best_of(lambda m=model: m.extract(img, 1536, 512, choose=_keep_256), args.repeat)
        print(f"keypoints {kp.model_id} {name}, 1 thread: 512x448, 256 kept of 1536: "
              f"{lo * 1000:.0f} ms best, {med * 1000:.0f} median, {CPU_SECONDS[-1] * 1000:.0f} cpu-ms")

    a = textured(480, 640, 2)
    for entry in reg.list("matcher"):  # the float LightGlue and its 8-bit derivative
        if not entry.ok:
            continue
        lg = reg.matcher(entry.id)
        for k in (256, 512, 1024):
            fa = kp.extract(a, k)
            fb = kp.extract(a[:, ::-1].copy(), k)
            lo, med = best_of(lambda fa=fa, fb=fb, lg=lg: lg.match(fa, fb), args.repeat)
            print(f"matcher {lg.model_id}: {len(fa)}x{len(fb)} keypoints: "
                  f"{1 / lo:5.2f} pairs/s best ({lo * 1000:.0f} ms), {1 / med:5.2f} median, "
                  f"{CPU_SECONDS[-1] * 1000:.0f} cpu-ms")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
