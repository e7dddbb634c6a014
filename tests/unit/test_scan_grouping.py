from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests import photofactory as pf
from wildid.catalog.models import Encounter, Photo
from wildid.ingest import scan as scan_mod
from wildid.ingest.grouping import GroupingOptions, camera_key, group_pending
from wildid.ingest.scan import scan_paths


def test_scan_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ("b/IMG_2.JPG", "a/IMG_1.jpeg", "a/deep/x.PNG", "a/._IMG_1.jpeg", "a/notes.txt",
                ".hidden/y.jpg", "c.heic", "d.tif"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    result = scan_paths([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in result.files] == [
        "c.heic", "d.tif", "a/IMG_1.jpeg", "a/deep/x.PNG", "b/IMG_2.JPG"]
    assert result.issues == []
    assert result.ignored == {".txt": 1}  # counted; the hidden resource fork is not


def test_scan_counts_what_it_passes_over_by_type(tmp_path: Path) -> None:
    """A RAW+JPEG card: the JPEGs and the WebP are photos; RAW, video and sidecars are counted
    by type (not listed as errors), and a RAW-only card says what to do."""
    for rel in ("DCIM/IMG_1.JPG", "DCIM/IMG_1.CR2", "DCIM/IMG_2.JPG", "DCIM/IMG_2.CR2",
                "DCIM/IMG_3.CR2", "DCIM/MVI_4.MP4", "DCIM/IMG_1.XMP", "x.webp", "README"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    result = scan_paths([tmp_path])
    assert sorted(p.name for p in result.files) == ["IMG_1.JPG", "IMG_2.JPG", "x.webp"]
    assert result.issues == []
    assert result.ignored == {".cr2": 3, ".mp4": 1, ".xmp": 1, "": 1}
    text = scan_mod.describe_ignored(result.ignored)
    assert text.startswith("3 .cr2 (camera RAW), 1 (no extension) (not a photo type")
    assert "1 .mp4 (video)" in text and "1 .xmp (camera sidecar)" in text
    assert "import the camera's JPEGs" in text
    assert "RAW" not in scan_mod.describe_ignored({".mp4": 2})
    assert scan_mod.describe_ignored({}) == ""


def test_a_raw_file_given_directly_is_named_as_raw(tmp_path: Path) -> None:
    (tmp_path / "IMG_9.NEF").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    reasons = dict(scan_paths([tmp_path / "IMG_9.NEF", tmp_path / "notes.txt"]).issues)
    assert reasons[str(tmp_path / "IMG_9.NEF")] == ("not a supported photo type (camera RAW; "
                                                   "wildid reads JPEG, PNG, TIFF, HEIC and WebP)")
    assert reasons[str(tmp_path / "notes.txt")] == ("not a supported photo type "
                                                   "(wildid reads JPEG, PNG, TIFF, HEIC and WebP)")


def test_scan_reports_missing_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = scan_paths([tmp_path / "nope", tmp_path / "notes.txt"])
    reasons = dict(result.issues)
    assert "no such file" in reasons[str(tmp_path / "nope")]
    assert "not a supported photo type" in reasons[str(tmp_path / "notes.txt")]


def test_folder_disappearing_mid_scan_is_reported(tmp_path: Path, monkeypatch) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "p.jpg").write_bytes(b"x")
    real = os.scandir

    def flaky(path):  # noqa: ANN001, ANN202
        if not isinstance(path, int) and Path(path).name == "b" and Path(path).exists():
            shutil.rmtree(path)  # the card reader drops the folder while we look at it
        return real(path)

    monkeypatch.setattr(scan_mod.os, "scandir", flaky)
    result = scan_paths([tmp_path])
    assert [p.parent.name for p in result.files] == ["a", "c"]
    assert result.issues == [(str(tmp_path / "b"), "folder disappeared during the scan")]


def test_symlink_loops_do_not_hang(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "p.jpg").write_bytes(b"x")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    result = scan_paths([tmp_path])
    assert len(result.files) == 1


def _photo(session, sha: str, t: datetime | None, serial: str = "1", path: str = "/c/x.jpg") -> Photo:
    p = Photo(sha256=sha * 64 if len(sha) == 1 else sha, original_path=path, file_size=1,
              format="JPEG", width=10, height=10, taken_utc=t, camera_make="Canon",
              camera_serial=serial)
    session.add(p)
    session.flush()
    return p


def test_grouping_bursts_per_camera(catalog) -> None:
    t0 = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    with catalog.session() as s:
        _photo(s, "a", t0)
        _photo(s, "b", t0 + timedelta(seconds=30))
        _photo(s, "c", t0 + timedelta(seconds=85))  # 55 s after b: same burst
        _photo(s, "d", t0 + timedelta(seconds=200))  # new burst
        _photo(s, "e", t0 + timedelta(seconds=10), serial="2")  # other camera
        _photo(s, "f", None)  # undated: alone
        created = group_pending(s, GroupingOptions(burst_gap_s=60, observer="me"))
    assert len(created) == 4
    with catalog.session() as s:
        sizes = sorted(len(e.annotations) for e in s.scalars(select(Encounter)))
        assert sizes == [1, 1, 1, 3]
        assert group_pending(s, GroupingOptions()) == []


def test_grouping_joins_an_existing_encounter_across_imports(catalog) -> None:
    t0 = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    with catalog.session() as s:
        _photo(s, "a", t0)
        group_pending(s, GroupingOptions())
    with catalog.session() as s:
        _photo(s, "b", t0 + timedelta(seconds=20))
        assert group_pending(s, GroupingOptions()) == []
        (enc,) = s.scalars(select(Encounter)).all()
        assert len(enc.annotations) == 2


def test_camera_key_falls_back_to_folder() -> None:
    p = Photo(original_path="/card/DCIM/100/x.jpg")
    assert camera_key(p) == "folder:/card/DCIM/100"
    p2 = Photo(original_path="/x.jpg", camera_make="Canon", camera_model="R5", camera_serial="9")
    assert camera_key(p2) == "camera:Canon|R5|9"


@pytest.mark.parametrize("orientation", [6, 8])
def test_import_applies_orientation_to_size(tmp_path: Path, catalog, orientation: int) -> None:
    from wildid.ingest.importer import run_import

    pf.make_photo(tmp_path / "in" / "r.jpg", width=400, height=300, orientation=orientation)
    report = run_import(catalog, [tmp_path / "in"])
    assert report.imported == 1
    with catalog.session() as s:
        p = s.scalars(select(Photo)).one()
        assert (p.width, p.height, p.orientation) == (300, 400, orientation)
