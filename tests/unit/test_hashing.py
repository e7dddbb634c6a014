"""Hashing reads each file once and turns every read failure into an ImageError."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.photofactory import (
    make_dangling_symlink,
    make_folder_named_jpg,
    make_non_utf8_name,
    make_photo,
    make_unreadable,
)
from wildid.errors import ImageError
from wildid.ingest.hashing import hash_bytes, hash_file, read_and_hash


def test_read_and_hash_matches_hashlib(tmp_path: Path) -> None:
    path = make_photo(tmp_path / "IMG_0001.JPG", 320, 240, seed=3)
    data, sha = read_and_hash(path)
    assert data == path.read_bytes()
    assert sha == hashlib.sha256(data).hexdigest() == hash_bytes(data)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_hash_file_streams_to_the_same_digest(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 41 + b"tail")
    assert hash_file(path, chunk=chunk) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_empty_file_hashes_like_empty_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert read_and_hash(path) == (b"", hashlib.sha256(b"").hexdigest())
    assert hash_file(path) == hashlib.sha256(b"").hexdigest()


def test_photofactory_is_deterministic(tmp_path: Path) -> None:
    a = make_photo(tmp_path / "a.jpg", 400, 300, seed=11, pattern_seed=2)
    b = make_photo(tmp_path / "b.jpg", 400, 300, seed=11, pattern_seed=2)
    c = make_photo(tmp_path / "c.jpg", 400, 300, seed=12, pattern_seed=2)
    assert hash_file(a) == hash_file(b) != hash_file(c)


@pytest.mark.parametrize("maker, reason", [
    (make_dangling_symlink, "does not exist"),
    (make_folder_named_jpg, "folder"),
])
def test_unreadable_paths_raise_image_error(tmp_path: Path, maker, reason: str) -> None:
    path = maker(tmp_path / "IMG_0002.JPG")
    for fn in (read_and_hash, hash_file):
        with pytest.raises(ImageError, match=reason) as info:
            fn(path)
        assert isinstance(info.value.__cause__, OSError)


def test_permission_denied_raises_image_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.jpg"
    if not make_unreadable(path):
        pytest.skip("running as root: chmod 000 does not stop reads")
    with pytest.raises(ImageError, match="permission denied"):
        read_and_hash(path)


def test_size_limit_refuses_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    path.write_bytes(b"\0" * (3 << 20))
    with pytest.raises(ImageError, match="3 MiB, more than the 2 MiB limit"):
        read_and_hash(path, max_bytes=2 << 20)


def test_non_utf8_file_name_is_readable(tmp_path: Path) -> None:
    path = make_non_utf8_name(tmp_path)
    data, sha = read_and_hash(path)
    assert len(sha) == 64 and data[:2] == b"\xff\xd8"
