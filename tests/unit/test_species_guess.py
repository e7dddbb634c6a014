"""Guessing a manifest's species from what its photos look like (wildid.engine.species_guess),
with the shipped re-identification model and prototypes."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from tests.conftest import shared_dataset
from tests.photofactory import make_photo
from wildid.engine.species_guess import (
    MIN_COSINE,
    PROTOTYPES_PATH,
    guess_from_photos,
    load_prototypes,
    sample_paths,
)


def test_the_sample_is_spread_over_the_photos_and_the_same_every_time() -> None:
    paths = [Path(f"/p/{i:03d}.jpg") for i in range(100)]
    picked = sample_paths(list(reversed(paths)), 10)
    assert picked == sample_paths(paths, 10) and len(set(picked)) == 10
    assert picked[0] == paths[0] and picked[-1] == paths[90]
    assert sample_paths(paths[:5], 10) == paths[:5]


def test_photos_of_no_profiled_species_are_left_to_the_generic_profile(tmp_path: Path) -> None:
    """Generated patterned animals are neither nyala nor lion: no species, and the cosines
    say how far they were. An unreadable photo is skipped, not fatal."""
    paths = [make_photo(tmp_path / f"a{i}.jpg", 640, 480, seed=i, pattern_seed=40 + i)
             for i in range(6)]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    guess = guess_from_photos([*paths, tmp_path / "broken.jpg"])
    assert guess.profile is None and guess.photos == 6
    assert set(guess.cosines) == {"nyala", "lion"}
    assert max(guess.cosines.values()) < MIN_COSINE
    assert "6 photos embedded" in guess.describe()


def test_prototypes_for_another_model_version_guess_nothing(tmp_path: Path, caplog) -> None:
    data = json.loads(PROTOTYPES_PATH.read_text(encoding="utf-8"))
    data["model"]["version"] = "0.0.1"
    other = tmp_path / "prototypes.json"
    other.write_text(json.dumps(data), encoding="utf-8")
    photo = make_photo(tmp_path / "a.jpg", 320, 240, pattern_seed=3)
    with caplog.at_level(logging.WARNING):
        guess = guess_from_photos([photo], load_prototypes(other))
    assert guess.profile is None and guess.photos == 0
    assert "prototypes are for reid_lite0_nyala_lion 0.0.1" in caplog.text


@pytest.mark.parametrize("species", ["nyala", "lion"])
def test_development_query_photos_are_recognised(species: str) -> None:
    """The query split (never in the prototypes) is recognised as its species."""
    manifest = shared_dataset(species)
    with manifest.open(newline="", encoding="utf-8") as fh:
        queries = [manifest.parent / r["path"] for r in csv.DictReader(fh)
                   if r["split"].strip() == "query"]
    guess = guess_from_photos(queries)
    assert guess.profile == species and guess.photos == 16
    other = "lion" if species == "nyala" else "nyala"
    assert guess.cosines[species] > guess.cosines[other] + 0.5


def test_an_import_without_any_species_suggests_the_one_its_photos_show(tmp_path: Path,
                                                                          capsys) -> None:
    """Nothing is written: the import says what the photos look like and how to apply it.
    Generated patterned animals get no suggestion."""
    from wildid.cli import main as cli_main

    made = [make_photo(tmp_path / f"g{i}.jpg", 640, 480, seed=i, pattern_seed=60 + i)
            for i in range(3)]
    cat = str(tmp_path / "cat")
    assert cli_main(["import", "--catalog", cat, "--no-identify", "--json",
                     *map(str, made)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["species"] is None and report["species_suggested"] is None

    manifest = shared_dataset("lion")
    with manifest.open(newline="", encoding="utf-8") as fh:
        lions = [str(manifest.parent / r["path"]) for r in csv.DictReader(fh)
                 if r["split"].strip() == "query"][:8]
    assert cli_main(["import", "--catalog", cat, "--no-identify", *lions]) == 0
    out = capsys.readouterr().out
    assert "these photos look like lion" in out and 'wildid species lion --from ""' in out
    assert cli_main(["encounters", "--catalog", cat, "--json"]) == 0
    assert all(e["species"] is None for e in json.loads(capsys.readouterr().out))
