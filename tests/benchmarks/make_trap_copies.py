"""Research: copies of a manifest's photos as a camera trap would have taken them (not a test).

    .venv/bin/python tests/benchmarks/make_trap_copies.py ../shared/datasets/nyala/manifest.csv \\
        /tmp/trap/nyala
    .venv/bin/wildid eval /tmp/trap/nyala/manifest.csv --species nyala

``--strip`` (the default) adds a data strip below each photo: a black bar 6.5 % of the photo's
height with a white logo block and "CAM-07  21C  2026-11-14  02:15:05" (time and temperature
drawn per photo) in a bold sans font, as most traps print one. ``--grey queries`` turns the
query photos grey instead (a stand-in for infrared night shots). JPEG photos are written as
JPEG q90, others as PNG; the manifest is written beside them with the same split. Results are
in docs/identification.md ("Camera traps"). The copies never go into the repository.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.photofactory import add_data_strip  # noqa: E402


def strip_below(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """The trap's bar below ``image`` (``photofactory.add_data_strip``, the tests' bar), with
    this photo's time and temperature."""
    text = (f"CAM-07  {rng.randint(-2, 31):>2}C  2026-11-{rng.randint(1, 28):02d}  "
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
    return add_data_strip(image, "bottom", 0.065, fill=18, ink=235, text=text, logo_ink=240,
                          moon=True)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--grey", choices=["none", "queries"], default="none",
                    help="turn the query photos grey instead of adding a strip")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = list(csv.DictReader(args.manifest.open()))
    out = args.out.resolve()
    for row in rows:
        # an absolute path in the manifest would make ``out / path`` the photo itself, and the
        # copy would overwrite it: copies go under OUT only
        if Path(row["path"]).is_absolute() or ".." in Path(row["path"]).parts:
            raise SystemExit(f"{row['path']}: paths must be relative to the manifest's folder "
                             "(a copy is written under OUT at the same relative path)")
    for row in rows:
        image = cv2.imread(str(args.manifest.parent / row["path"]))
        if image is None:
            raise SystemExit(f"cannot read {row['path']}")
        if args.grey == "queries":
            if row["split"] == "query":
                image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        else:
            image = strip_below(image, rng)
        target = out / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix.lower() in (".jpg", ".jpeg"):
            cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        else:
            target = target.with_suffix(".png")
            cv2.imwrite(str(target), image)
            row["path"] = str(Path(row["path"]).with_suffix(".png"))
    with (args.out / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "identity", "split"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("path", "identity", "split")} for r in rows)


if __name__ == "__main__":
    main()
