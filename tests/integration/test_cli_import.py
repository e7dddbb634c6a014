"""End to end through the `wildid` command: a generated card with bursts, EXIF time and GPS,
duplicates and every kind of bad file."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import photofactory as pf
from wildid.catalog import open_catalog
from wildid.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def card(tmp_path: Path) -> tuple[Path, list[pf.CardShot], dict[str, Path]]:
    folder = tmp_path / "card"
    shots = pf.make_card(folder, 14, seed=3, width=640, height=480)
    # A second copy of two photos elsewhere on the card: duplicates by content.
    dup_dir = folder / "copies"
    dup_dir.mkdir()
    for shot in shots[:2]:
        shutil.copy(shot.path, dup_dir / ("copy_" + shot.path.name))
    bad = pf.make_all_bad(folder / "bad")
    bad["non_utf8"] = pf.make_non_utf8_name(folder)
    bad["long_path"] = pf.make_long_path(folder / "long", seed=5)
    return folder, shots, bad


def test_import_card_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str], card) -> None:
    folder, shots, bad = card
    cat = str(tmp_path / "catalog")
    rc, out, _ = _run(capsys, "import", str(folder), "--catalog", cat, "--observer", "Ana",
                      "--species", "Tragelaphus angasii", "--json")
    assert rc == 0
    report = json.loads(out)
    skipped = {Path(item["path"]).name: item["reason"] for item in report["skipped"]}
    # Each bad file is reported with its reason, and only those.
    assert set(skipped) == {"truncated.jpg", "empty.jpg", "notes.jpg", "bomb.png", "gone.jpg"}
    assert "truncated" in skipped["truncated.jpg"] or "damaged" in skipped["truncated.jpg"]
    assert "empty" in skipped["empty.jpg"]
    assert "text" in skipped["notes.jpg"]
    assert "megapixel" in skipped["bomb.png"]
    assert "cannot read" in skipped["gone.jpg"]
    # garbage EXIF, a non-UTF-8 name and a very long path import fine.
    expected = len(shots) + 3
    assert report["imported"] == expected
    assert report["duplicates"] == 2
    assert report["status"] == "completed"
    assert report["with_data_strip"] == 0  # scenery is never taken for a camera's text bar
    assert report["doubtful_times"] == []  # a camera set right is not doubted

    rc, out, _ = _run(capsys, "photos", "--catalog", cat, "--json")
    photos = json.loads(out)
    assert len(photos) == expected
    # the table shows each id's last 8 characters, as every table and message does
    rc, out, _ = _run(capsys, "photos", "--catalog", cat)
    assert sorted(line.split()[0] for line in out.splitlines()[2:]) == \
        sorted(p["id"][-8:] for p in photos)
    by_name = {Path(p["path"]).name: p for p in photos}
    canon = next(s for s in shots if s.offset == "+02:00")
    p = by_name[canon.path.name]
    # Local time with a +02:00 offset is stored as UTC, with the offset and raw string kept.
    local = canon.taken_local.replace(microsecond=0)
    assert p["taken_raw"] == local.strftime("%Y:%m:%d %H:%M:%S")
    assert p["utc_offset_minutes"] == 120 and p["tz_known"] is True
    taken = datetime.fromisoformat(p["taken_utc"])
    assert taken.astimezone(UTC).replace(tzinfo=None, microsecond=0) == (
        local - (datetime(2000, 1, 1, 2) - datetime(2000, 1, 1)))
    assert p["lat"] == pytest.approx(canon.gps[0], abs=1e-5)
    assert p["lon"] == pytest.approx(canon.gps[1], abs=1e-5)
    nikon = next(s for s in shots if s.offset is None)
    assert by_name[nikon.path.name]["tz_known"] is False
    assert by_name[nikon.path.name]["lat"] is None

    # Bursts become encounters: one per burst of the card, plus one per undated photo.
    rc, out, _ = _run(capsys, "encounters", "--catalog", cat, "--json")
    encounters = json.loads(out)
    n_bursts = len({s.burst for s in shots})
    assert len(encounters) == n_bursts + 3
    assert sum(e["photos"] for e in encounters) == expected
    assert all(e["observer"] == "Ana" and e["state"] == "unreviewed" for e in encounters)

    # Originals were copied into the media store.
    stored = list((tmp_path / "catalog" / "media").rglob("*.*"))
    assert len(stored) == expected

    rc, out, _ = _run(capsys, "info", "--catalog", cat, "--json")
    info = json.loads(out)
    assert info["counts"]["photos"] == expected and info["counts"]["encounters"] == len(encounters)
    thumbs = tmp_path / "catalog" / "cache" / "thumbs"
    assert info["cache_bytes"] == sum(f.stat().st_size for f in thumbs.rglob("*") if f.is_file())

    # Re-importing the same card adds nothing and says so.
    rc, out, _ = _run(capsys, "import", str(folder), "--catalog", cat, "--json")
    again = json.loads(out)
    assert rc == 0 and again["imported"] == 0 and again["duplicates"] == expected + 2
    rc, out, _ = _run(capsys, "encounters", "--catalog", cat, "--json")
    assert len(json.loads(out)) == len(encounters)


def test_import_nothing_importable_exits_non_zero(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    pf.make_text_as_jpg(folder / "notes.jpg")
    pf.make_zero_byte(folder / "empty.jpg")
    pf.make_bomb_png(folder / "bomb.png")
    rc, out, _ = _run(capsys, "import", str(folder), "--catalog", str(tmp_path / "c"))
    assert rc == 1
    assert "notes.jpg" in out and "not an image" in out


def test_a_raw_only_card_says_why_nothing_came_in(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "card" / "DCIM"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"IMG_{i}.CR2").write_bytes(b"II*\x00" + bytes(64))
    (folder / "MVI_9.MOV").write_bytes(bytes(64))
    rc, out, _ = _run(capsys, "import", str(tmp_path / "card"), "--catalog", str(tmp_path / "c"))
    assert rc == 1
    assert "Not photos, left alone: 3 .cr2 (camera RAW), 1 .mov (video)" in out
    assert "import the camera's JPEGs" in out and "No photos found" in out
    rc, out, _ = _run(capsys, "import", str(tmp_path / "card"), "--catalog", str(tmp_path / "c"),
                      "--json")
    assert rc == 1 and json.loads(out)["ignored"] == {".cr2": 3, ".mov": 1}


def test_a_folder_holding_the_catalog_does_not_import_the_catalog(tmp_path: Path,
                                                                   capsys) -> None:
    """A user keeps the catalog beside the card folders and imports the folder above both.
    Before, the catalog's thumbnails came in as new photos, each a new encounter to review,
    and its database files were listed as "not photos". Catalog folders (this one, another,
    a backup) are left out whole, and the report says so."""
    root = tmp_path / "wildlife"
    for i in range(2):
        pf.make_photo(root / "card" / f"IMG_{i}.jpg", 320, 240, seed=i + 1, pattern_seed=5)
    cat = root / "catalog"
    assert _run(capsys, "import", str(root / "card"), "--catalog", str(cat), "--no-identify")[0] == 0
    assert _run(capsys, "backup", str(root / "backup"), "--catalog", str(cat))[0] == 0
    pf.make_photo(root / "later" / "IMG_9.jpg", 320, 240, seed=9)
    rc, out, _ = _run(capsys, "import", str(root), "--catalog", str(cat), "--no-identify",
                      "--json")
    assert rc == 0
    report = json.loads(out)
    assert (report["imported"], report["duplicates"], report["ignored"]) == (1, 2, {})
    assert report["catalogs_left_alone"] == [str(root / "backup"), str(root / "catalog")]
    rc, out, _ = _run(capsys, "import", str(cat), "--catalog", str(cat), "--no-identify")
    assert rc == 1 and f"Left alone: the wildid catalog in {cat} (" in out
    rc, out, _ = _run(capsys, "photos", "--catalog", str(cat), "--json")
    assert sorted(Path(p["path"]).name for p in json.loads(out)) == [
        "IMG_0.jpg", "IMG_1.jpg", "IMG_9.jpg"]


def test_reference_in_place_keeps_originals_where_they_are(tmp_path: Path, capsys) -> None:
    photo = pf.make_photo(tmp_path / "in" / "a.jpg", width=320, height=240)
    cat = tmp_path / "c"
    rc, out, _ = _run(capsys, "import", str(photo), "--catalog", str(cat), "--reference-in-place")
    assert rc == 0
    rc, out, _ = _run(capsys, "photos", "--catalog", str(cat), "--json")
    (row,) = json.loads(out)
    assert row["stored"] is None and row["path"] == str(photo)
    assert not (cat / "media").exists() or not any((cat / "media").rglob("*.jpg"))


def test_unknown_catalog_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    cat = tmp_path / "c"
    cat.mkdir()
    (cat / "catalog.sqlite").write_bytes(b"junk" * 10)
    rc, _, err = _run(capsys, "info", "--catalog", str(cat))
    assert rc == 2 and "not SQLite" in err


def test_python_dash_m_works(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "wildid", "--help"], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[2],
                            env={**os.environ})
    assert result.returncode == 0 and "import" in result.stdout


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    """`wildid encounters --json | head -1` and the like: no traceback when the pipe closes."""
    import subprocess
    import sys

    open_catalog(tmp_path / "c").close()
    proc = subprocess.Popen([sys.executable, "-m", "wildid", "--catalog", str(tmp_path / "c"),
                             "encounters", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    proc.stdout.close()  # gone before the first byte is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_catalog_option_before_or_after_the_command(tmp_path: Path, capsys) -> None:
    for where, args in ((tmp_path / "a", ["--catalog", str(tmp_path / "a"), "info", "--json"]),
                        (tmp_path / "b", ["info", "--json", "--catalog", str(tmp_path / "b")])):
        open_catalog(where).close()
        rc, out, _ = _run(capsys, *args)
        assert rc == 0
        assert json.loads(out)["catalog"] == str(where.resolve())


def test_only_import_makes_a_catalog_at_a_path_that_has_none(tmp_path: Path, capsys,
                                                              monkeypatch) -> None:
    """`--catalog ~/nyala-catlog info` (a typo) made an empty catalog there and said 0 photos,
    as if the real one had lost them. Reading commands now say there is none; `import`
    makes one; the default catalog is made on first use, as the app makes it."""
    typo = tmp_path / "nyala-catlog"
    for command in (["info"], ["photos"], ["encounters"], ["individuals"], ["extract"],
                    ["match", "--all"], ["calibrate"], ["decisions"]):
        rc, _, err = _run(capsys, "--catalog", str(typo), *command)
        assert rc == 2, command
        assert f"no catalog at {typo.resolve()}" in err, command
    assert not typo.exists()
    # nor does import make one among a folder's own files (the app's New catalog refuses too)
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    (pictures / "holiday.jpg").write_bytes(b"not ours")
    photo = tmp_path / "card" / "a.jpg"
    photo.parent.mkdir()
    pf.make_photo(photo, width=64, height=48)
    rc, _, err = _run(capsys, "--catalog", str(pictures), "import", str(photo))
    assert rc == 2 and "holds other files and no catalog" in err
    assert [p.name for p in pictures.iterdir()] == ["holiday.jpg"]
    (pictures / "holiday.jpg").unlink()
    (pictures / ".DS_Store").write_bytes(b"")  # an empty folder as a Mac leaves it
    rc, _, _ = _run(capsys, "--catalog", str(pictures), "import", str(photo))
    assert rc == 0 and (pictures / "catalog.sqlite").exists()
    monkeypatch.setenv("WILDID_HOME", str(tmp_path / "home"))
    rc, out, _ = _run(capsys, "info", "--json")
    assert rc == 0 and json.loads(out)["catalog"] == str((tmp_path / "home" / "catalog").resolve())
