"""Camera-trap photos: neither the data strip printed on them (``wildid.ingest.data_strip``)
nor the scene a fixed trap shows in every photo (``identifier.drop_static``) may make
different animals from one trap look like the same individual."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tests.integration.animals import PATTERNS, encounter_of, import_photos
from tests.photofactory import add_data_strip, random_pose, render, write_photo
from wildid.catalog.models import Annotation, Encounter, MatchCandidate, MatchSummary, Photo
from wildid.engine import forget, process_new
from wildid.ingest.importer import ImportOptions, run_import
from wildid.review import new_individual

WIDTH, HEIGHT = 800, 600


def _trap_shot(folder: Path, name: str, pattern: int, seed: int, minute: int) -> Path:
    """One trap photo: the animal in its own scene and pose, the trap's strip below, where
    only the time differs from the trap's other photos."""
    rng = np.random.default_rng(seed)
    scene, _ = render(WIDTH, HEIGHT, seed=seed, pattern_seed=pattern,
                      pose=random_pose(rng, 0.25))
    photo, _ = add_data_strip(scene, "bottom", share=40 / HEIGHT,
                              text=f"CAM-07  21C  2026-11-02  06:{minute:02d}:14")
    return write_photo(folder / f"{name}.jpg", photo, quality=88)


def _name_each(catalog, known: dict[int, Path]) -> dict[int, str]:
    """Each pattern's photo named as a new individual: {pattern: individual id}."""
    ids = {}
    for p, path in known.items():
        enc = encounter_of(catalog, path)
        new_individual(catalog, enc, f"animal-{p}", "Tester")
        with catalog.session() as s:
            ids[p] = s.scalars(select(Encounter.individual_id).where(Encounter.id == enc)).one()
    return ids


def test_animals_from_one_trap_are_told_apart_by_their_markings_not_its_strip(
        catalog, tmp_path) -> None:
    folder = tmp_path / "card"
    known, queries = {}, {}
    for i, p in enumerate(PATTERNS):
        known[p] = _trap_shot(folder / "db", f"db{p}", p, seed=2 * p, minute=i)
        queries[p] = _trap_shot(folder / "query", f"q{p}", p, seed=2 * p + 1, minute=20 + i)
    stranger = _trap_shot(folder / "query", "stranger", 99, seed=500, minute=59)
    import_photos(catalog, list(known.values()))
    with catalog.session() as s:
        for photo, box in s.execute(select(Photo, Annotation).join(Annotation)):
            # the strip is found and the automatic box stops above it
            assert 40 <= photo.strip_bottom <= 40 + 2 * HEIGHT / 192 and photo.strip_top == 0
            assert box.full_frame and (box.y, box.h) == (0, HEIGHT + 40 - photo.strip_bottom)
    ids = _name_each(catalog, known)
    try:
        import_photos(catalog, [*queries.values(), stranger])
        process_new(catalog)
        with catalog.session() as s:
            for p, path in queries.items():
                enc = encounter_of(catalog, path)
                first = s.scalars(select(MatchCandidate).where(MatchCandidate.encounter_id == enc)
                                  .order_by(MatchCandidate.rank)).first()
                assert first is not None
                assert first.individual_id == ids[p], f"animal {p} not ranked first"
            cands = s.scalars(select(MatchCandidate)).all()
            assert cands
            for cand in cands:
                # matched points are on the animals' pictures, never on the strips' text
                pairs = np.frombuffer(cand.inliers, np.float32).reshape(-1, 4)
                assert (pairs[:, [1, 3]] < HEIGHT).all()
            summary = s.get(MatchSummary, encounter_of(catalog, stranger))
            assert summary is not None and summary.likely_new
    finally:
        forget(catalog)


def test_the_import_says_how_many_photos_had_a_strip(tmp_path, capsys) -> None:
    from wildid.cli import main as cli_main

    folder = tmp_path / "card"
    for i in range(2):
        _trap_shot(folder, f"trap{i}", 11 + i, seed=40 + i, minute=i)
    plain, _ = render(WIDTH, HEIGHT, seed=60, pattern_seed=13)
    write_photo(folder / "plain.jpg", plain, quality=88)
    args = ["--catalog", str(tmp_path / "cat"), "import", str(folder), "--species", "nyala"]
    assert cli_main([*args, "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["with_data_strip"] == 2
    assert cli_main([*args[:2], "photos", "--json"]) == 0
    strips = {Path(p["path"]).name: (p["strip_top"], p["strip_bottom"])
              for p in json.loads(capsys.readouterr().out)}
    assert strips["plain.jpg"] == (0, 0)
    assert all(top == 0 and 40 <= bottom <= 40 + 2 * HEIGHT / 192
               for name, (top, bottom) in strips.items() if name.startswith("trap"))
    assert cli_main([*args[:2], "photos"]) == 0
    listed = capsys.readouterr().out
    assert f"{WIDTH}x{HEIGHT + 40} (strip {strips['trap0.jpg'][1]})" in listed
    assert f"{WIDTH}x{HEIGHT} " in listed  # the plain photo: its size alone
    (folder / "more").mkdir()
    _trap_shot(folder / "more", "trap9", 14, seed=49, minute=9)
    assert cli_main([*args[:3], str(folder / "more"), *args[4:]]) == 0
    assert "Data strips: 1 of the photos have a camera's text bar" in capsys.readouterr().out


def _static_shot(folder: Path, name: str, pattern: int, seed: int, scene: int = 77,
                 make: str | None = "Browning") -> Path:
    """A fixed trap's photo: always the same scene (the same rocks and grass at the same
    pixels), the animal in its own pose, the trap's make and model in the EXIF."""
    from tests.photofactory import build_exif

    rng = np.random.default_rng(seed)
    img, _ = render(WIDTH, HEIGHT, seed=scene, pattern_seed=pattern, noise_seed=seed,
                    pose=random_pose(rng, 0.25))
    exif = build_exif(make=make, model="BTC-8E" if make else None, serial=None)
    return write_photo(folder / f"{name}.jpg", img, quality=88, exif=exif)


@pytest.mark.parametrize("species", [None, "nyala"])
def test_a_fixed_traps_scene_does_not_make_its_animals_one(catalog, tmp_path, species) -> None:
    """Five animals and a stranger before one trap's scene, whole photos: matched by their
    markings, not by the scene every photo shares (``identifier.drop_static``)."""
    folder = tmp_path / "trap"
    known = {p: _static_shot(folder / "db", f"db{p}", p, 1000 + p) for p in PATTERNS}
    queries = {p: _static_shot(folder / "q", f"q{p}", p, 2000 + p) for p in PATTERNS}
    stranger = _static_shot(folder / "q", "stranger", 99, 3000)
    options = ImportOptions(burst_gap_s=-1, reference_in_place=True, workers=1, species=species)
    run_import(catalog, list(known.values()), options)
    with catalog.session() as s:  # boxes a row or two apart (a strip found a row higher)
        for box in s.scalars(select(Annotation)):
            box.h -= 2
    ids = _name_each(catalog, known)
    try:
        run_import(catalog, [*queries.values(), stranger], options)
        process_new(catalog)
        with catalog.session() as s:
            for p, path in queries.items():
                cands = s.scalars(select(MatchCandidate).where(
                    MatchCandidate.encounter_id == encounter_of(catalog, path))
                    .order_by(MatchCandidate.rank)).all()
                assert cands[0].individual_id == ids[p], f"animal {p} not ranked first"
                # the others are told apart: well under the right one
                assert cands[1].score < cands[0].score / 2
                assert "colour" not in cands[0].raw_scores  # the scene's colours, not compared
            summary = s.get(MatchSummary, encounter_of(catalog, stranger))
            assert summary is not None and summary.likely_new
    finally:
        forget(catalog)


def test_photos_without_a_known_camera_keep_what_matches_in_place(catalog, tmp_path) -> None:
    """Without EXIF the camera is only guessed from the folder, which may hold one
    individual's photos: nothing is dropped then, and the same scene still matches."""
    folder = tmp_path / "folder"
    first = _static_shot(folder, "a", 11, 1, make=None)
    second = _static_shot(folder, "b", 12, 2, make=None)
    options = ImportOptions(burst_gap_s=-1, reference_in_place=True, workers=1)
    run_import(catalog, [first], options)
    new_individual(catalog, encounter_of(catalog, first), "animal-11", "Tester")
    try:
        run_import(catalog, [second], options)
        process_new(catalog)
        with catalog.session() as s:
            best = s.scalars(select(MatchCandidate).where(
                MatchCandidate.encounter_id == encounter_of(catalog, second))
                .order_by(MatchCandidate.rank)).first()
            assert best is not None and "colour" in best.raw_scores
            assert best.raw_scores["inliers"] > 150  # the scene, as before
    finally:
        forget(catalog)
