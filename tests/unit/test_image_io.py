"""Decoding photos: bad files give the right ImageError, orientation and reduced decode work."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from tests.photofactory import (
    encode,
    make_bomb_png,
    make_garbage_exif_jpeg,
    make_long_path,
    make_non_utf8_name,
    make_photo,
    make_text_as_jpg,
    make_truncated,
    make_truncated_jpeg,
    make_zero_byte,
)
from wildid.errors import ImageError
from wildid.vision import image_io
from wildid.vision.image_io import (
    apply_orientation,
    crop,
    decode,
    decode_floor,
    load_image,
    probe,
    reduction_factor,
)


def _marked(width: int = 96, height: int = 64) -> np.ndarray:
    """A non-square image with a red block in the stored top-left corner."""
    rgb = np.full((height, width, 3), 40, np.uint8)
    rgb[:16, :16] = (255, 0, 0)
    return rgb


def _red_centre(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero((image[:, :, 0] > 180) & (image[:, :, 1] < 90))
    return float(ys.mean()) / image.shape[0], float(xs.mean()) / image.shape[1]


def test_probe_reads_the_header(tmp_path: Path) -> None:
    path = make_photo(tmp_path / "IMG_0001.JPG", 640, 480, orientation=6)
    info = probe(path.read_bytes(), str(path))
    assert (info.format, info.width, info.height, info.orientation) == ("JPEG", 640, 480, 6)
    assert info.oriented_size == (480, 640)


@pytest.mark.parametrize("maker, message", [
    (make_zero_byte, r"^empty\.jpg is empty \(0 bytes\)$"),
    (make_text_as_jpg, r"^notes\.jpg is not an image: it contains text$"),
    (make_bomb_png, r"^bomb\.png declares 30000x30000 pixels, more than the 120-megapixel limit$"),
])
def test_bad_files_fail_at_probe(tmp_path: Path, maker, message: str) -> None:
    name = {"make_zero_byte": "empty.jpg", "make_text_as_jpg": "notes.jpg",
            "make_bomb_png": "bomb.png"}[maker.__name__]
    path = maker(tmp_path / name)
    data = path.read_bytes()
    for fn in (probe, decode):
        with pytest.raises(ImageError, match=message):
            fn(data, str(path))


def test_bomb_file_is_tiny_and_independent_of_pillow_globals(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone disabled Pillow's guard
    with pytest.raises(ImageError, match="more than the 120-megapixel limit"):
        decode(path.read_bytes(), "bomb.png")


def test_pillows_pixel_limit_does_not_refuse_normal_photos(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_photo(tmp_path / "a.png", 200, 150, fmt="PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert decode(path.read_bytes(), "a.png").shape == (150, 200, 3)


@pytest.mark.parametrize("load_truncated", [False, True])
def test_truncated_jpeg_is_an_error_even_if_pillow_would_hide_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load_truncated: bool) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)
    data = make_truncated_jpeg(tmp_path / "IMG_0003.JPG", keep=0.6).read_bytes()
    assert probe(data, "IMG_0003.JPG").width == 640  # the header is intact...
    for max_side in (None, 256):  # ...but no decode path returns a half-grey photo
        with pytest.raises(ImageError, match=r"^IMG_0003\.JPG is truncated"):
            decode(data, "IMG_0003.JPG", max_side)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_truncated_other_formats_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            fmt: str) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = make_truncated(tmp_path / f"x.{fmt.lower()}", fmt, keep=0.7, width=120,
                          height=90).read_bytes()
    with pytest.raises(ImageError, match="truncated"):
        decode(data, "x")


def test_unsupported_and_raw_files(tmp_path: Path) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    with pytest.raises(ImageError, match=r"^a\.gif is a GIF file, which wildid cannot import"):
        probe(gif.getvalue(), "a.gif")
    tiff_like = make_photo(tmp_path / "x.tif", 32, 24, fmt="TIFF").read_bytes()
    with pytest.raises(ImageError, match="camera RAW file"):
        probe(tiff_like, "IMG_0001.CR2")
    with pytest.raises(ImageError, match="unknown file format"):
        probe(bytes(range(256)) * 4, "noise.jpg")


def test_damaged_header_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="damaged"):
        probe(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40, "bad.jpg")


def test_garbage_exif_does_not_stop_decoding(tmp_path: Path) -> None:
    for kind in ("values", "bytes"):
        data = make_garbage_exif_jpeg(tmp_path / f"{kind}.jpg", kind).read_bytes()
        assert probe(data, "g.jpg").orientation == 1
        assert decode(data, "g.jpg").shape == (240, 320, 3)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
@pytest.mark.parametrize("orientation, where", [(6, (0.1, 0.9)), (8, (0.9, 0.1)), (3, (0.9, 0.9))])
def test_orientation_is_applied(fmt: str, orientation: int, where: tuple[float, float]) -> None:
    data = encode(_marked(), fmt, 95, {0x0112: orientation})
    image = decode(data, f"x.{fmt}")
    expected_shape = (64, 96) if orientation == 3 else (96, 64)
    assert image.shape == (*expected_shape, 3)
    assert np.allclose(_red_centre(image), where, atol=0.1)
    info = probe(data, "x")
    assert (info.oriented_height, info.oriented_width) == expected_shape


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow(orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    rgb = cv2.resize(rng.integers(0, 255, (6, 9, 3), dtype=np.uint8), (90, 60),
                     interpolation=cv2.INTER_NEAREST)
    data = encode(rgb, "PNG", exif={0x0112: orientation})
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert np.array_equal(decode(data, "x.png"), expected)
    assert np.array_equal(apply_orientation(rgb, orientation), expected)


@pytest.mark.parametrize("long_side, max_side, factor", [
    (4000, 256, 8), (4000, 500, 8), (4000, 501, 4), (1600, 256, 4), (640, 256, 2),
    (300, 256, 1), (4000, None, 1), (4001, 501, 8), (4001, 502, 4)])
def test_reduction_factor(long_side: int, max_side: int | None, factor: int) -> None:
    assert reduction_factor(long_side, max_side) == factor


def test_jpeg_uses_reduced_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_photo(tmp_path / "a.jpg", 1600, 1200, orientation=8).read_bytes()
    flags: list[int] = []
    real = cv2.imdecode

    def spy(buf: np.ndarray, flag: int) -> np.ndarray:
        flags.append(flag)
        return real(buf, flag)

    monkeypatch.setattr(image_io.cv2, "imdecode", spy)
    image = decode(data, "a.jpg", max_side=256)
    assert image.shape == (256, 192, 3)  # 1600x1200 rotated by orientation 8
    assert flags == [cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION]
    full = decode(data, "a.jpg")
    small = cv2.resize(full, (192, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - image).mean() < 4  # same picture, just decoded smaller


def test_decode_never_enlarges_and_keeps_aspect(tmp_path: Path) -> None:
    data = make_photo(tmp_path / "a.png", 300, 100, fmt="PNG").read_bytes()
    assert decode(data, "a.png", max_side=1000).shape == (100, 300, 3)
    assert decode(data, "a.png", max_side=150).shape == (50, 150, 3)


def test_decode_floor(tmp_path: Path) -> None:
    data = make_photo(tmp_path / "a.jpg", 1600, 1200).read_bytes()
    assert decode_floor(data).shape == (150, 200, 3)


def _pillow_bytes(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    grey16 = np.array([[0, 32896, 65535]], np.uint16)
    ok, buf = cv2.imencode(".png", grey16)
    assert ok
    image = decode(buf.tobytes(), "g16.png")
    assert image.dtype == np.uint8 and image.shape == (1, 3, 3)
    assert image[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize("mode, fmt, colour", [
    ("RGBA", "PNG", (200, 30, 10, 255)), ("P", "PNG", None), ("L", "JPEG", 128),
    ("CMYK", "JPEG", (0, 255, 255, 0)), ("LA", "PNG", (90, 255)), ("1", "TIFF", 1)])
def test_other_modes_become_rgb8(mode: str, fmt: str, colour: object) -> None:
    if mode == "P":
        image = Image.new("RGB", (40, 30), (200, 30, 10)).convert("P")
    else:
        image = Image.new(mode, (40, 30), colour)  # type: ignore[arg-type]
    out = decode(_pillow_bytes(image, fmt), f"x.{fmt}")
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    expected = np.asarray(image.convert("RGB"))[15, 20]
    assert np.abs(out[15, 20].astype(int) - expected).max() <= 3


def test_heic_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pillow_heif")
    try:
        path = make_photo(tmp_path / "IMG_0001.HEIC", 96, 64, fmt="HEIC", orientation=6)
    except (KeyError, OSError, ValueError) as exc:
        pytest.skip(f"pillow-heif cannot encode HEIC here: {exc}")
    data = path.read_bytes()
    info = probe(data, path.name)
    assert info.format == "HEIF" and info.oriented_size == (64, 96)
    assert decode(data, path.name).shape == (96, 64, 3)
    assert decode(data, path.name, max_side=48).shape == (48, 32, 3)
    with pytest.raises(ImageError):
        decode(data[: len(data) // 2], path.name)


def test_crop_scales_from_original_coordinates(tmp_path: Path) -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3)
    patch = crop(image, (400, 200, 800, 400), original_size=(2000, 1000))
    assert patch.shape == (40, 80, 3)
    assert np.array_equal(patch, image[20:60, 40:120])
    assert crop(image, (150, 50, 500, 500)).shape == (50, 50, 3)  # clipped to the image
    with pytest.raises(ImageError, match="outside"):
        crop(image, (300, 10, 5, 5))


def test_load_image_and_awkward_paths(tmp_path: Path) -> None:
    for path in (make_non_utf8_name(tmp_path), make_long_path(tmp_path)):
        assert load_image(path, max_side=32).shape[2] == 3
    assert len(str(make_long_path(tmp_path / "b"))) > 300
    with pytest.raises(ImageError, match="cannot read missing.jpg"):
        load_image(tmp_path / "missing.jpg")
