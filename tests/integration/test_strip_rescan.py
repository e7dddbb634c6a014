"""Photos imported before wildid looked for camera-trap data strips: ``wildid find-strips``
(``wildid.ingest.strip_rescan``) finds them and stops their automatic boxes at the strip, as an
import does now, so the strip's text no longer matches between different animals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sqlalchemy import select, update

from tests.integration.animals import PATTERNS, encounter_of, import_photos
from tests.integration.test_data_strips import HEIGHT, WIDTH, _name_each, _trap_shot
from tests.photofactory import render, write_photo
from wildid.catalog.models import Annotation, Feature, MatchCandidate, MatchSummary, Photo
from wildid.engine import forget, process_new
from wildid.ingest.strip_rescan import find_strips_in_catalog
from wildid.ingest.thumbnails import thumbnail_path
from wildid.progress import CancelToken

STRIP = 40  # rows of the trap's bar below each photo (``_trap_shot``)


def _as_imported_before(catalog) -> None:
    """What an import before catalog revision 0007 left: no strip on record, every automatic
    box the whole photo (the migration sets the columns to 0 and moves no box)."""
    with catalog.session() as s:
        s.execute(update(Photo).values(strip_top=0, strip_bottom=0))
        for photo in s.scalars(select(Photo)):
            for ann in photo.annotations:
                if ann.full_frame:
                    ann.x, ann.y, ann.w, ann.h = 0.0, 0.0, float(photo.width), float(photo.height)


def older_catalog(root: Path, photos: list[Path]) -> None:
    """A catalog as revision 0006 left it: these photos imported, no strip columns at all."""
    from alembic import command

    from wildid.catalog import open_catalog
    from wildid.catalog.migrate import alembic_config

    with open_catalog(root) as catalog:
        import_photos(catalog, photos)
        _as_imported_before(catalog)
        cfg = alembic_config()
        with catalog.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006")


def _boxes(catalog) -> dict[str, tuple[float, float, bool]]:
    with catalog.session() as s:
        return {Path(p.original_path).name: (a.y, a.h, a.full_frame)
                for p, a in s.execute(select(Photo, Annotation).join(Annotation))}


def _strip_matched(catalog) -> bool:
    """Whether any candidate's matched points lie on the strips' text."""
    with catalog.session() as s:
        for cand in s.scalars(select(MatchCandidate)):
            pairs = np.frombuffer(cand.inliers, np.float32).reshape(-1, 4)
            if (pairs[:, [1, 3]] >= HEIGHT).any():
                return True
    return False


def test_an_older_catalogs_trap_photos_are_matched_without_their_strip(catalog,
                                                                         tmp_path) -> None:
    patterns = PATTERNS[:3]
    folder = tmp_path / "card"
    known = {p: _trap_shot(folder / "db", f"db{p}", p, seed=2 * p, minute=i)
             for i, p in enumerate(patterns)}
    queries = {p: _trap_shot(folder / "query", f"q{p}", p, seed=2 * p + 1, minute=20 + i)
               for i, p in enumerate(patterns)}
    import_photos(catalog, list(known.values()))
    _as_imported_before(catalog)
    ids = _name_each(catalog, known)
    try:
        import_photos(catalog, list(queries.values()))
        _as_imported_before(catalog)
        process_new(catalog)
        assert _strip_matched(catalog)  # what the older catalog suffers from
        with catalog.session() as s:
            assert s.scalar(select(Feature).limit(1)) is not None

        report = find_strips_in_catalog(catalog)

        n = 2 * len(patterns)
        assert (report.scanned, report.with_strip, report.boxes_moved) == (n, n, n)
        assert report.status == "completed" and not report.unreadable
        with catalog.session() as s:
            for photo in s.scalars(select(Photo)):
                assert photo.strip_top == 0
                assert STRIP <= photo.strip_bottom <= STRIP + 2 * HEIGHT / 192
                (box,) = photo.annotations
                assert box.full_frame and (box.y, box.h) == (0, photo.height - photo.strip_bottom)
            # the moved boxes' features and the queries' results are set aside, to be redone
            assert s.scalar(select(Feature).limit(1)) is None
            assert s.scalar(select(MatchSummary).limit(1)) is None
        process_new(catalog)
        assert not _strip_matched(catalog)
        with catalog.session() as s:
            for p, path in queries.items():
                first = s.scalars(select(MatchCandidate)
                                  .where(MatchCandidate.encounter_id == encounter_of(catalog, path))
                                  .order_by(MatchCandidate.rank)).first()
                assert first is not None and first.individual_id == ids[p]

        # one operation: undo puts the boxes (and the results that used them) back
        moved = _boxes(catalog)
        report.operation.revert(catalog)
        assert all((y, h) == (0, HEIGHT + STRIP) for y, h, _ in _boxes(catalog).values())
        with catalog.session() as s:
            assert set(s.scalars(select(Photo.strip_bottom))) == {0}
        report.operation.reapply(catalog)
        assert _boxes(catalog) == moved
        # looked at again: nothing left without a strip, nothing changes
        again = find_strips_in_catalog(catalog)
        assert (again.scanned, again.with_strip, again.operation) == (0, 0, None)
    finally:
        forget(catalog)


def test_drawn_boxes_stay_and_unreadable_photos_are_reported(catalog, tmp_path) -> None:
    folder = tmp_path / "card"
    drawn = _trap_shot(folder, "drawn", 11, seed=1, minute=1)
    gone = _trap_shot(folder, "gone", 12, seed=2, minute=2)  # original and thumbnail lost
    plain, _ = render(WIDTH, HEIGHT, seed=3, pattern_seed=13)
    plain_path = write_photo(folder / "plain.jpg", plain, quality=88)
    kept = _trap_shot(folder, "kept", 14, seed=4, minute=4)
    card_out = _trap_shot(folder, "card_out", 15, seed=5, minute=5)  # its thumbnail is left
    import_photos(catalog, [drawn, gone, plain_path, kept, card_out])
    _as_imported_before(catalog)
    with catalog.session() as s:
        photos = {Path(p.original_path).name: p for p in s.scalars(select(Photo))}
        box = photos["drawn.jpg"].annotations[0]
        box.x, box.y, box.w, box.h, box.full_frame = 100.0, 50.0, 400.0, 300.0, False
        sha_gone = photos["gone.jpg"].sha256
    gone.unlink()
    card_out.unlink()
    thumbnail_path(catalog.thumb_dir, sha_gone).unlink()

    cancel = CancelToken()
    cancel.cancel()
    stopped = find_strips_in_catalog(catalog, cancel=cancel)
    assert stopped.status == "cancelled" and stopped.operation is None
    before = _boxes(catalog)

    seen: list[int] = []
    report = find_strips_in_catalog(catalog, progress=lambda p: seen.append(p.done))
    assert seen[0] == 0 and seen[-1] == 5
    # the photo whose card is out is read from its thumbnail (a JPEG, whose ringing can hide
    # the strip's flat edge row: found or not, it is looked at and not an error)
    thumb_found = int(report.with_strip == 3)
    assert (report.scanned, report.with_strip, report.boxes_moved) == \
        (4, 2 + thumb_found, 1 + thumb_found)
    assert report.drawn_boxes_kept == 1
    ((name, reason),) = report.unreadable
    assert name.endswith("gone.jpg") and "gone.jpg" in reason
    after = _boxes(catalog)
    assert after["drawn.jpg"] == before["drawn.jpg"] == (50.0, 300.0, False)
    assert after["plain.jpg"] == (0, HEIGHT, True)
    assert after["kept.jpg"][1] < HEIGHT + STRIP - STRIP * 0.9
    assert after["card_out.jpg"] == (after["kept.jpg"] if thumb_found else before["card_out.jpg"])
    with catalog.session() as s:
        strips = {Path(p.original_path).name: p.strip_bottom for p in s.scalars(select(Photo))}
    # the drawn box's photo records its strip (a reset to the full frame stops there)
    assert strips["drawn.jpg"] >= STRIP and strips["gone.jpg"] == strips["plain.jpg"] == 0


def test_find_strips_from_the_command_line(tmp_path, capsys) -> None:
    from wildid.cli import main as cli_main

    folder = tmp_path / "card"
    root = tmp_path / "cat"
    older_catalog(root, [_trap_shot(folder, f"trap{i}", 11 + i, seed=40 + i, minute=i)
                         for i in range(2)])
    base = ["--catalog", str(root)]
    # the first command upgrades it; `wildid info` says what the older wildid left undone
    assert cli_main([*base, "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_strips_looked_for"] is False
    assert cli_main([*base, "info"]) == 0
    assert "`wildid find-strips` does it" in capsys.readouterr().out
    assert cli_main([*base, "find-strips", "--json", "--no-identify"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["scanned"], out["with_strip"], out["boxes_moved"]) == (2, 2, 2)
    assert out["status"] == "completed" and "identification" not in out
    assert cli_main([*base, "info"]) == 0
    assert "find-strips" not in capsys.readouterr().out
    assert cli_main([*base, "find-strips", "--no-identify"]) == 0
    assert capsys.readouterr().out.startswith(
        "Looked at 0 photos without a data strip on record: 0 have")
