"""Cameras whose clocks were wrong: the import says which photos look so, and `wildid retime`
moves their times, one camera at a time, as the report suggests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.photofactory import make_photo
from wildid.cli import main

SERIALS = {"reset": "TRAP-A", "future": "TRAP-B", "right": "TRAP-C"}
FIRST = {"reset": datetime(2000, 1, 1, 0, 0, 10), "future": datetime(2031, 5, 2, 8, 0, 0),
         "right": datetime(2026, 11, 20, 6, 30, 0)}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def card(tmp_path: Path) -> Path:
    """Three camera traps on one card, two photos each, a burst 20 s apart: one restarted at
    its factory date, one set to the wrong year, one right."""
    folder = tmp_path / "card"
    for n, (clock, serial) in enumerate(SERIALS.items()):
        for i in range(2):
            start = FIRST[clock]
            make_photo(folder / f"{serial}_{i}.jpg", 320, 240, seed=10 * n + i,
                       taken=start.replace(second=start.second + 20 * i), serial=serial,
                       model="Trail Cam")
    return folder


def _times(capsys: pytest.CaptureFixture[str], cat: str) -> dict[str, list[str]]:
    """Camera serial -> the times of its encounters and of their photos."""
    _, out, _ = _run(capsys, "encounters", "--catalog", cat, "--json")
    times: dict[str, list[str]] = {}
    for enc in json.loads(out):
        serial = Path(enc["photo_files"][0]).name.split("_")[0]
        times.setdefault(serial, []).append(enc["taken_utc"])
    _, out, _ = _run(capsys, "photos", "--catalog", cat, "--json")
    for photo in json.loads(out):
        times[Path(photo["path"]).name.split("_")[0]].append(photo["taken_utc"])
    return {k: sorted(v) for k, v in times.items()}


def test_import_names_the_doubtful_photos_and_retime_mends_them(tmp_path: Path, card: Path,
                                                               capsys) -> None:
    cat = str(tmp_path / "cat")
    rc, out, _ = _run(capsys, "import", str(card), "--catalog", cat, "--no-identify")
    assert rc == 0
    line = next(x for x in out.splitlines() if x.startswith("Camera clocks:"))
    assert "2 photos are dated in the future (2031-05-02; TRAP-B_0.jpg, TRAP-B_1.jpg)" in line
    assert "2 photos are dated 2000-01-01, a camera's factory date (TRAP-A_0.jpg, " \
        "TRAP-A_1.jpg): the camera's clock was reset" in line
    assert "wildid retime --batch " in line and "one camera at a time (`--camera`)" in line
    batch = line.split("--batch ", 1)[1].split()[0]
    _, out, _ = _run(capsys, "info", "--catalog", cat)  # said until mended
    assert "Encounters dated 1 in the future and 1 at a camera factory date" in out
    before = _times(capsys, cat)
    assert before["TRAP-A"][0] == "2000-01-01T00:00:10+00:00"

    # the factory-date camera: its first photo was really taken when the trap was set up
    rc, out, _ = _run(capsys, "retime", "--catalog", cat, "--batch", batch, "--doubtful",
                      "--camera", "trap-a", "--first-at", "2026-11-19 17:45")
    assert rc == 0, out
    assert out.strip() == ("Moved the photo times of 1 encounter by +26 y 329 d 17 h 44 min "
                           "50 s; the earliest is now 2026-11-19T17:45:00+00:00")
    after = _times(capsys, cat)
    assert after["TRAP-A"] == ["2026-11-19T17:45:00+00:00"] * 2 + ["2026-11-19T17:45:20+00:00"]
    assert after["TRAP-B"] == before["TRAP-B"] and after["TRAP-C"] == before["TRAP-C"]

    # the wrong year: --by the clock's error, for what is still doubtful in that import
    rc, out, _ = _run(capsys, "retime", "--catalog", cat, "--batch", "latest", "--doubtful",
                      "--by=-5y1d", "--json")
    assert rc == 0
    assert json.loads(out)["first"] == "2026-05-02T08:00:00+00:00"
    assert _times(capsys, cat)["TRAP-B"][0] == "2026-05-02T08:00:00+00:00"
    rc, out, _ = _run(capsys, "retime", "--catalog", cat, "--batch", "latest", "--doubtful",
                      "--by", "1h")
    assert rc == 1 and "nothing changed" in out  # none is doubtful any more
    _, out, _ = _run(capsys, "info", "--catalog", cat, "--json")
    assert json.loads(out)["encounters_dated"] == {"in_the_future": 0, "at_a_factory_date": 0}


def test_retime_refuses_a_choice_it_cannot_make(tmp_path: Path, card: Path, capsys) -> None:
    cat = str(tmp_path / "cat")
    assert _run(capsys, "import", str(card), "--catalog", cat, "--no-identify")[0] == 0
    _, out, _ = _run(capsys, "encounters", "--catalog", cat, "--json")
    enc = json.loads(out)[0]["id"]
    rc, _, err = _run(capsys, "retime", "--catalog", cat, enc, "--batch", "latest", "--by", "1h")
    assert rc == 2 and "name the encounters, or --batch" in err
    rc, _, err = _run(capsys, "retime", "--catalog", cat, enc, "--camera", "x", "--by", "1h")
    assert rc == 2 and "--camera and --doubtful narrow a --batch" in err
    rc, _, err = _run(capsys, "retime", "--catalog", cat, "--batch", "nope-nope", "--by", "1h")
    assert rc == 2 and "no import id starts or ends with 'nope-nope'" in err
    with pytest.raises(SystemExit):
        main(["retime", "--catalog", cat, enc, "--by", "soon"])
    assert "is not a duration" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one way of saying the shift, not both
        main(["retime", "--catalog", cat, enc, "--by", "1h", "--first-at", "2026-01-01 00:00"])
    capsys.readouterr()
    rc, out, _ = _run(capsys, "retime", "--catalog", cat, enc, "--by", "1h")
    assert rc == 0 and out.startswith("Moved the photo times of 1 encounter by +1 h")
