"""Finding a camera trap's data strip: the band of text burned into the top or bottom of a photo.

Why it matters: most camera traps print a bar across the photo (camera name, date, time,
temperature, moon phase, a logo) in the same place, font and colours on every photo. Local
features match that text between *any* two photos of one camera as well as they match an
animal's markings, so different animals photographed by one trap verify as the same
individual. On the development lion photos with such a strip added, top-1 fell from 48.8 % to
33.9 %, and nyala's from 44.5 % to 16.8 % (docs/identification.md, "Camera traps"). The
automatic whole-photo box therefore stops at the strip.

What counts as a strip, read on the small image the import decodes anyway (long side 256 px):
an edge row of one flat colour, then 2-16 % of the height later a cliff where the picture
starts (rows with almost none of that colour right after a row mostly of it), and text or
symbols that differ sharply from the fill in some of the rows between. A flat sky, a dark
night ground or a uniform studio background has no text in it, thins out gradually where an
animal enters it, or runs on past 16 % of the height, and is left alone. When in doubt nothing
is trimmed: a missed strip costs what it cost before; a false one would hide a sliver of the
photo's edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DataStrips", "find_data_strips", "strips_in_original_pixels", "strips_of_photo"]

# a strip fills at least this share of the height (at 256 px, thinner bands are 1-4 rows and
# their text is unreadable at that size) and at most this share (taller "bands" are scenery)
MIN_SHARE = 0.02
MAX_SHARE = 0.16
MIN_ROWS = 4
# a pixel is fill when its grey level is within this of the edge row's median (the band's colour)
FILL_TOLERANCE = 6.0
# the edge row is clean fill when this share of it is the band's colour; a row is the picture's
# when less than the second share is; and the band's inner margin, within a few rows of the
# picture, is at least the third share fill (text rows keep the fill between their letters).
# So the picture starts at a cliff: a smooth background that an animal's ears or back enter
# thins out over many rows instead
MARGIN_ROW_FILL = 0.85
PICTURE_ROW_FILL = 0.1
INNER_MARGIN_FILL = 0.5
INNER_MARGIN_ROWS = 3
# text: pixels this far from the fill's grey level, in enough of the band's rows
TEXT_CONTRAST = 80.0
TEXT_PIXEL_SHARE = 0.015
TEXT_ROW_SHARE = 0.25


@dataclass(frozen=True)
class DataStrips:
    """Rows of a data strip at the top and at the bottom of an image (0: none)."""

    top: int = 0
    bottom: int = 0

    def __bool__(self) -> bool:
        return bool(self.top or self.bottom)


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def _band_rows(grey: np.ndarray) -> int:
    """The height of the strip at the *first* rows of ``grey`` (0 when there is none).

    The band's colour is the edge row's, which must be clean fill: a printed bar is one flat
    colour to within a few grey levels, where sand or shadow is not. The band ends where the
    picture starts: two rows with almost none of that colour, within :data:`MAX_SHARE` of
    the height, right after a margin row that is mostly fill (a cliff, where a smooth sky
    that an animal's ears enter thins out row by row). Its text rows keep some fill between
    the letters, however much of them a bold font covers at 256 px, and enough of them must
    hold text: pixels far from the fill.
    """
    h = grey.shape[0]
    limit = int(MAX_SHARE * h)
    lowest = max(MIN_ROWS, math.ceil(MIN_SHARE * h))
    if limit < lowest or h < limit + 3:
        return 0
    rows = grey[:limit + 3]
    colour = float(np.median(rows[0]))
    distance = np.abs(rows - colour)
    fill = (distance <= FILL_TOLERANCE).mean(axis=1)
    if fill[0] < MARGIN_ROW_FILL:
        return 0
    picture = fill < PICTURE_ROW_FILL
    ends = [k for k in range(1, limit + 1) if picture[k] and picture[k + 1]]
    if not ends or ends[0] < lowest:
        return 0  # no band, or one that runs on into the picture: scenery, not a strip
    k = ends[0]
    if fill[max(0, k - INNER_MARGIN_ROWS):k].max() < INNER_MARGIN_FILL:
        return 0  # no margin before the picture: a background thinning out, not a printed bar
    text_rows = (distance[:k] >= TEXT_CONTRAST).mean(axis=1) >= TEXT_PIXEL_SHARE
    if text_rows.mean() < TEXT_ROW_SHARE:
        return 0  # a flat border or sky: nothing printed in it
    return k


def find_data_strips(image: np.ndarray) -> DataStrips:
    """The data strip rows at the top and bottom of ``image`` (RGB or grey, any size)."""
    grey = _grey(image)
    return DataStrips(top=_band_rows(grey), bottom=_band_rows(grey[::-1]))


def strips_in_original_pixels(strips: DataStrips, decoded_height: int,
                              original_height: int) -> DataStrips:
    """Convert rows found on a reduced decode to the original photo's rows, one decoded row
    more each: a reduced decode blends the strip's last row into the picture's first."""
    scale = original_height / max(decoded_height, 1)

    def convert(rows: int) -> int:
        return 0 if rows == 0 else min(original_height, math.ceil((rows + 1) * scale))

    top, bottom = convert(strips.top), convert(strips.bottom)
    if top + bottom >= original_height:  # cannot happen below MAX_SHARE; never leave no picture
        return DataStrips()
    return DataStrips(top=top, bottom=bottom)


def strips_of_photo(decoded: np.ndarray, original_height: int) -> DataStrips:
    """The strips of a photo, in its own rows, from its reduced decode (long side 256 px):
    the one rule the import and ``wildid find-strips`` both apply."""
    return strips_in_original_pixels(find_data_strips(decoded), decoded.shape[0],
                                     original_height)
