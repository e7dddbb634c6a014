"""Thumbnails: small JPEGs with the right colours, sharded paths, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from wildid.errors import ImageError
from wildid.ingest.thumbnails import make_thumbnail, thumbnail_path, write_thumbnail

SHA = "ab" + "cd" + "0123456789abcdef" * 3 + "0123456789ab"


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)


def test_thumbnail_is_a_small_jpeg_with_rgb_preserved() -> None:
    image = np.zeros((1200, 1600, 3), np.uint8)
    image[:, :800] = (220, 20, 20)  # red left half, blue right half
    image[:, 800:] = (20, 20, 220)
    jpeg = make_thumbnail(image)
    assert jpeg[:3] == b"\xff\xd8\xff"
    thumb = _decode(jpeg)
    assert thumb.shape == (192, 256, 3)
    assert np.abs(thumb[96, 40].astype(int) - (220, 20, 20)).max() < 12  # still red, not blue
    assert np.abs(thumb[96, 216].astype(int) - (20, 20, 220)).max() < 12


def test_small_and_grey_images_are_not_enlarged() -> None:
    grey = np.full((100, 60), 77, np.uint8)
    thumb = _decode(make_thumbnail(grey, max_side=256))
    assert thumb.shape == (100, 60, 3)
    assert abs(int(thumb[50, 30, 0]) - 77) <= 2


def test_bad_arrays_are_refused() -> None:
    with pytest.raises(ImageError):
        make_thumbnail(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ImageError):
        make_thumbnail(np.zeros((0, 10, 3), np.uint8))


def test_thumbnail_path_is_sharded(tmp_path: Path) -> None:
    assert thumbnail_path(tmp_path, SHA) == tmp_path / "ab" / "cd" / f"{SHA}_256.jpg"
    assert thumbnail_path(tmp_path, SHA, 512).name == f"{SHA}_512.jpg"
    for bad in ("../../etc/passwd", SHA.upper(), SHA[:-1]):
        with pytest.raises(ValueError):
            thumbnail_path(tmp_path, bad)


def test_write_thumbnail_is_atomic_and_overwrites(tmp_path: Path) -> None:
    target = write_thumbnail(tmp_path, SHA, b"first")
    assert target == thumbnail_path(tmp_path, SHA) and target.read_bytes() == b"first"
    assert write_thumbnail(tmp_path, SHA, b"second").read_bytes() == b"second"
    assert os.listdir(target.parent) == [target.name]  # no temp files left behind


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_thumbnail(tmp_path, SHA, b"data")
    assert list(thumbnail_path(tmp_path, SHA).parent.iterdir()) == []
