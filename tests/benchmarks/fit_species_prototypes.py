"""Write the species prototypes `wildid eval` guesses a manifest's species by
(``wildid/matching/defaults/species_prototypes.json``, see ``wildid.engine.species_guess``).

    .venv/bin/python tests/benchmarks/fit_species_prototypes.py [--save]

Each species profile with development photos gets the mean of the unit embeddings of its
*database* photos, by the re-identification model trained on those species (whole photos, as
`wildid eval` imports them). Reported on the *query* split, which the prototypes never saw:
the cosine of 16-photo samples (drawn as the guess draws them, at several offsets) to each
prototype, and what the guess would choose.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from wildid.engine.species_guess import (  # noqa: E402
    PROTOTYPES_PATH,
    SAMPLE,
    Prototypes,
    guess_from_photos,
)
from wildid.vision.image_io import load_image  # noqa: E402
from wildid.vision.registry import ModelRegistry  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
MODEL = "reid_lite0_nyala_lion"
SPECIES = ("nyala", "lion")


def photos(species: str, split: str) -> list[Path]:
    root = DATASETS / species
    with (root / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return [root / r["path"] for r in csv.DictReader(fh) if r["split"].strip() == split]


def embed(model: object, paths: list[Path]) -> np.ndarray:
    out = [np.asarray(model.embed([load_image(p) for p in paths[i:i + 16]]))  # type: ignore[attr-defined]
           for i in range(0, len(paths), 16)]
    vectors = np.concatenate(out).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--save", action="store_true", help=f"write {PROTOTYPES_PATH}")
    args = ap.parse_args()
    model = ModelRegistry().embedder(MODEL)
    vectors, counts = {}, {}
    for species in SPECIES:
        db = embed(model, photos(species, "database"))
        mean = db.mean(axis=0)
        vectors[species] = mean / np.linalg.norm(mean)
        counts[species] = len(db)
    protos = Prototypes(MODEL, model.manifest.version, vectors)
    for species in SPECIES:
        queries = sorted(photos(species, "query"))
        for offset in range(0, 4):
            part = queries[offset::4]  # four disjoint samples of the query photos
            guess = guess_from_photos(part, protos, model)
            print(f"{species} queries, sample {offset} of {SAMPLE}: guessed {guess.profile} "
                  f"({guess.describe()})")
    if args.save:
        data = {"note": "mean unit embedding of each species' development database photos "
                        "(tests/benchmarks/fit_species_prototypes.py)",
                "model": {"id": MODEL, "version": model.manifest.version},
                "photos": counts,
                "prototypes": {n: [round(float(x), 5) for x in v] for n, v in vectors.items()}}
        PROTOTYPES_PATH.write_text(json.dumps(data) + "\n", encoding="utf-8")
        print(f"wrote {PROTOTYPES_PATH}")


if __name__ == "__main__":
    main()
