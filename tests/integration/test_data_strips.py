"""Camera-trap photos with a printed data strip: the strip's text must not make different
animals from one trap look like the same individual (``wildid.ingest.data_strip``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from tests.integration.animals import PATTERNS, encounter_of, import_photos
from tests.photofactory import add_data_strip, random_pose, render, write_photo
from wildid.catalog.models import Annotation, Encounter, MatchCandidate, MatchSummary, Photo
from wildid.engine import forget, process_new
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
    ids = {}
    for p, path in known.items():
        enc = encounter_of(catalog, path)
        new_individual(catalog, enc, f"animal-{p}", "Tester")
        with catalog.session() as s:
            ids[p] = s.scalars(select(Encounter.individual_id).where(Encounter.id == enc)).one()
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
    (folder / "more").mkdir()
    _trap_shot(folder / "more", "trap9", 14, seed=49, minute=9)
    assert cli_main([*args[:3], str(folder / "more"), *args[4:]]) == 0
    assert "Data strips: 1 of the photos have a camera's text bar" in capsys.readouterr().out
