"""Camera-trap data strips: found on the small image the import decodes, never on scenery."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.photofactory import add_data_strip, encode, render
from wildid.ingest.data_strip import DataStrips, find_data_strips, strips_in_original_pixels
from wildid.vision.image_io import decode


def _as_imported(rgb: np.ndarray, quality: int = 88) -> np.ndarray:
    """What the import looks at: the JPEG decoded with its long side at 256 px."""
    return decode(encode(rgb, "JPEG", quality), "card.jpg", max_side=256)


@pytest.mark.parametrize(("where", "fill", "ink", "share"), [
    ("bottom", 18, 235, 0.065),   # the common black bar with white text
    ("top", 18, 235, 0.065),
    ("bottom", 235, 20, 0.065),   # a light bar with dark text
    ("top", 60, 250, 0.1),        # a tall grey one
    ("bottom", 18, 235, 0.035),   # a thin one: about 7 rows at 256 px
])
def test_a_printed_strip_is_found_where_it_is(where, fill, ink, share) -> None:
    scene, _ = render(1600, 1200, seed=3, pattern_seed=21)
    photo, rows = add_data_strip(scene, where, share, fill, ink)
    small = _as_imported(photo)
    found = find_data_strips(small)
    in_photo = strips_in_original_pixels(found, small.shape[0], photo.shape[0])
    got, other = (in_photo.top, in_photo.bottom) if where == "top" else (in_photo.bottom,
                                                                          in_photo.top)
    assert other == 0
    # all of the strip, and no more of the picture than one row of the small image
    assert rows <= got <= rows + 2 * photo.shape[0] / small.shape[0]


def test_the_same_scene_without_a_strip_has_none() -> None:
    for seed in range(6):
        scene, _ = render(1200, 900, seed=seed, pattern_seed=30 + seed)
        assert not find_data_strips(_as_imported(scene))


def _studio(rows: int = 200, cols: int = 260) -> np.ndarray:
    """A smooth, even background (sky, bokeh) with a textured animal whose ears reach up to
    5 % of the height and whose head fills the width from about 13 %: the background thins
    out row by row where they enter, and then the picture has none of it, as a printed bar's
    picture would."""
    img = np.full((rows, cols, 3), (205, 190, 170), np.uint8)
    rng = np.random.default_rng(5)
    body = np.zeros((rows, cols), np.uint8)
    cv2.ellipse(body, (cols // 2, int(0.7 * rows)), (int(1.2 * cols), int(0.62 * rows)), 0, 0,
                360, 255, -1)
    for cx in (cols // 2 - 60, cols // 2 + 60):  # ears
        cv2.ellipse(body, (cx, int(0.15 * rows)), (22, 20), 0, 0, 360, 255, -1)
    fur = rng.integers(40, 150, (rows, cols, 3)).astype(np.uint8)
    fur = cv2.GaussianBlur(fur, (0, 0), 1.0)
    img[body > 0] = fur[body > 0]
    return img


def test_an_animal_against_a_smooth_background_is_not_cut() -> None:
    img = _studio()
    assert not find_data_strips(img)
    assert not find_data_strips(np.ascontiguousarray(img[::-1]))  # the same below


def test_a_flat_border_without_text_is_no_strip() -> None:
    scene, _ = render(800, 600, seed=4)
    bordered = np.vstack([np.zeros((40, 800, 3), np.uint8), scene, np.zeros((40, 800, 3),
                                                                             np.uint8)])
    assert not find_data_strips(_as_imported(bordered))


def test_a_strip_taller_than_a_strip_can_be_is_scenery() -> None:
    scene, _ = render(1600, 1200, seed=3, pattern_seed=21)
    photo, _ = add_data_strip(scene, "bottom", share=0.25)
    assert not find_data_strips(_as_imported(photo))


def test_rows_found_small_convert_to_the_photo_with_one_row_to_spare() -> None:
    assert strips_in_original_pixels(DataStrips(top=10), 192, 1536) == DataStrips(top=88)
    assert strips_in_original_pixels(DataStrips(), 192, 1536) == DataStrips()
    # never a box with no picture left
    assert strips_in_original_pixels(DataStrips(top=100, bottom=100), 192, 1536) == DataStrips()


@pytest.mark.shared
@pytest.mark.parametrize("species", ["lion", "nyala"])
def test_no_real_photo_is_taken_for_a_striped_one(species) -> None:
    """Every fourth photo of the real sets (cropped, no trap ever printed on them), read as
    the import reads them: none may lose a sliver of its picture to the detector."""
    import csv

    from tests.conftest import shared_dataset

    manifest = shared_dataset(species)
    rows = list(csv.DictReader(manifest.open(newline="")))[::4]
    found = [r["path"] for r in rows
             if find_data_strips(decode((manifest.parent / r["path"]).read_bytes(), r["path"],
                                        max_side=256))]
    assert len(rows) > 100 and found == []
