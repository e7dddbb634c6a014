"""RootSIFT extraction at a working size, compact storage, mirrored descriptors."""

from __future__ import annotations

import struct
from dataclasses import replace

import cv2
import numpy as np
import pytest

from wildid.errors import MatchingError
from wildid.matching.features import (
    LearnedKeypoints,
    LocalFeatures,
    RootSiftExtractor,
    features_from_arrays,
    mirror_sift_descriptors,
    resize_to_working,
    ridge_map,
    stripe_map,
)


def texture(seed: int, h: int = 240, w: int = 320) -> np.ndarray:
    """A random blob/line texture with plenty of SIFT keypoints (RGB uint8)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h // 8, w // 8), dtype=np.uint8), (3, 3), 0)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, p, int(rng.integers(3, 15)), int(c[0]), -1)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)


def test_keypoints_are_in_original_crop_pixels_at_any_resolution() -> None:
    img = texture(0)
    ext = RootSiftExtractor(max_keypoints=300, long_side=320)
    small = ext.extract(img)
    big = ext.extract(cv2.resize(img, (960, 720), interpolation=cv2.INTER_CUBIC))
    assert small.image_size == (320, 240) and big.image_size == (960, 720)
    assert 0 < len(small) <= 300 and 0 < len(big) <= 300
    assert big.xy[:, 0].max() > 320  # big crop coordinates, not working-size ones
    # about the same working image -> mostly the same keypoints, at three times the coordinates
    gap = np.linalg.norm(big.xy[:, None, :] / 3 - small.xy[None, :, :], axis=2).min(axis=1)
    assert np.mean(gap < 1.5) > 0.6
    np.testing.assert_allclose(np.linalg.norm(small.descriptors, axis=1), 1.0, atol=1e-5)
    assert (small.descriptors >= 0).all()  # RootSIFT


def test_crops_larger_than_the_working_size_are_described_at_up_to_its_maximum() -> None:
    """A profile chosen on small photos does not bring a full-size photo down to their detail:
    crops above ``long_side`` are described at twice their size, at most ``long_side_max``;
    the stored texture stays at ``long_side``, where photometric verification was tuned."""
    ext = RootSiftExtractor(max_keypoints=2000, long_side=160, long_side_max=320, texture=True)
    assert [ext.working_side(s) for s in (60, 160, 161, 200, 1000)] == [160, 160, 320, 320, 320]
    fixed = RootSiftExtractor(max_keypoints=2000, long_side=160, texture=True)
    assert fixed.working_side(1000) == 160
    # the keypoint budget grows with the side it is described at
    assert [ext.keypoint_budget(s) for s in (160, 240, 320)] == [2000, 3000, 4000]
    # a sharp 1280 px crop: fine markings only seen above 160 px
    img = cv2.resize(texture(5, 240, 320), (1280, 960), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(1)
    for _ in range(400):
        cv2.circle(img, (int(rng.integers(0, 1280)), int(rng.integers(0, 960))), 5,
                   (255, 255, 255), -1)
    wide, narrow = ext.extract(img), fixed.extract(img)
    assert wide.image_size == narrow.image_size == (1280, 960)  # crop pixels either way
    # the smallest structures it describes are about half the size (crop pixels), and there
    # are more of them
    assert np.percentile(wide.sizes, 10) < 0.65 * np.percentile(narrow.sizes, 10)
    assert len(narrow) <= 2000 and 1.5 * len(narrow) < len(wide) <= 4000
    assert wide.texture().shape == narrow.texture().shape == (120, 160)
    # a crop no larger than long_side is described as before, bit for bit
    small = texture(6, 120, 160)
    np.testing.assert_array_equal(ext.extract(small).descriptors, fixed.extract(small).descriptors)


def test_resize_to_working_scales_long_side() -> None:
    img = np.zeros((100, 50), np.uint8)
    out, scale = resize_to_working(img, 200)
    assert out.shape == (200, 100) and scale == 2.0
    out, scale = resize_to_working(np.zeros((2000, 1000), np.uint8), 200, detail_side=100)
    assert out.shape == (200, 100) and scale == pytest.approx(0.1)


def test_bytes_round_trip_is_compact_and_close() -> None:
    feats = RootSiftExtractor(max_keypoints=200, long_side=320).extract(texture(1))
    blob = feats.to_bytes()
    assert len(blob) < 150 * len(feats) + 64
    back = LocalFeatures.from_bytes(blob)
    assert back.image_size == feats.image_size and back.extractor == "rootsift"
    np.testing.assert_allclose(back.xy, feats.xy, atol=0.3)  # float16 at < 512 px
    cos = (back.descriptors * feats.descriptors).sum(axis=1)
    assert cos.min() > 0.995


def test_signed_descriptors_round_trip() -> None:
    rng = np.random.default_rng(0)
    feats = features_from_arrays(rng.random((50, 2)) * 100, rng.normal(size=(50, 128)),
                                 (100, 80), "aliked_n16", scores=rng.random(50))
    back = LocalFeatures.from_bytes(feats.to_bytes())
    assert back.extractor == "aliked_n16" and len(back) == 50
    assert (back.descriptors * feats.descriptors).sum(axis=1).min() > 0.99
    empty = features_from_arrays(np.zeros((0, 2)), np.zeros((0, 128)), (10, 10), "x")
    assert len(LocalFeatures.from_bytes(empty.to_bytes())) == 0
    with pytest.raises(MatchingError):
        LocalFeatures.from_bytes(b"nonsense")


def test_mirrored_descriptors_match_a_flipped_photo() -> None:
    img = texture(2)
    ext = RootSiftExtractor(max_keypoints=300, long_side=320)
    feats = ext.extract(img)
    flipped = ext.extract(np.ascontiguousarray(img[:, ::-1]))
    mirrored = mirror_sift_descriptors(feats.descriptors)
    # nearest neighbour in the flipped photo: mirrored descriptors land on the mirrored point
    d = mirrored @ flipped.descriptors.T
    nn = d.argmax(axis=1)
    expected_x = img.shape[1] - 1 - feats.xy[:, 0]
    hit = np.abs(flipped.xy[nn, 0] - expected_x) < 2
    assert hit.mean() > 0.6
    plain = (feats.descriptors @ flipped.descriptors.T).argmax(axis=1)
    assert (np.abs(flipped.xy[plain, 0] - expected_x) < 2).mean() < hit.mean() - 0.2


def test_stripe_map_keeps_thin_bright_markings_and_drops_shading() -> None:
    """Thin white stripes on a shaded body survive; the shading and a broad bright patch (wider
    than the disc) do not."""
    h, w = 200, 300
    body = np.tile(np.linspace(40, 160, w, dtype=np.float32), (h, 1))  # slow shading
    img = body.copy()
    for x in (60, 120, 180):
        img[:, x:x + 3] += 80  # stripes 3 px wide
    img[20:80, 220:290] += 80  # a broad bright patch
    out = stripe_map(np.clip(img, 0, 255).astype(np.uint8), 9)
    assert out.dtype == np.uint8 and out.shape == (h, w)
    assert out[:, 60:63].mean() > 200 and out[:, 120:123].mean() > 200
    assert out[:, 20:50].mean() < 10  # shading between the stripes
    assert out[30:70, 235:275].mean() < 10  # inside the broad patch
    flat = stripe_map(np.full((50, 50), 128, np.uint8), 9)
    assert not flat.any()  # nothing to mark: all zero, no division by zero


def test_ridge_map_answers_to_thin_bright_lines_not_to_shading_or_dark_lines() -> None:
    h, w = 200, 300
    img = np.tile(np.linspace(40, 160, w, dtype=np.float32), (h, 1))  # slow shading
    img[:, 100:103] += 70  # a bright stripe 3 px wide
    img[:, 200:203] -= 30  # a dark line: not a marking of this kind
    out = ridge_map(np.clip(img, 0, 255).astype(np.uint8))
    assert out.dtype == np.uint8 and out.shape == (h, w)
    assert out[:, 100:103].mean() > 200
    assert out[:, 20:80].mean() < 5 and out[:, 200:203].mean() < 5  # along the dark line: 0
    assert not ridge_map(np.full((40, 40), 90, np.uint8)).any()  # flat: zero, no division by 0


def test_ridge_channel_is_stored_negated_after_the_first_and_mirrors_the_same_way() -> None:
    img = texture(6)
    first = RootSiftExtractor(max_keypoints=200, long_side=320, tophat=9).extract(img)
    ext = RootSiftExtractor(max_keypoints=200, long_side=320, tophat=9, ridge_keypoints=150)
    both = ext.extract(img)
    n = len(first)
    assert n == 200 and 50 < len(both) - n <= 150
    np.testing.assert_array_equal(both.xy[:n], first.xy)  # the first channel is unchanged
    assert (both.descriptors[:n] >= 0).all() and (both.descriptors[n:] <= 0).all()
    # the two channels never meet in a nearest-neighbour search: cross products are <= 0
    assert float((both.descriptors[:n] @ both.descriptors[n:].T).max()) <= 1e-6
    again = LocalFeatures.from_bytes(both.to_bytes())  # signed rows survive storage
    assert float(np.abs(again.descriptors - both.descriptors).max()) < 0.02
    flipped = ext.extract(np.ascontiguousarray(img[:, ::-1]))
    ridge, ridge_flipped = both.subset(np.arange(n, len(both))), flipped.subset(
        np.flatnonzero((flipped.descriptors <= 0).all(axis=1)))
    nn = (mirror_sift_descriptors(ridge.descriptors) @ ridge_flipped.descriptors.T).argmax(axis=1)
    expected_x = img.shape[1] - 1 - ridge.xy[:, 0]
    assert (np.abs(ridge_flipped.xy[nn, 0] - expected_x) < 2).mean() > 0.6


def test_ridge_channel_refuses_a_signed_projection() -> None:
    from wildid.matching.projection import DescriptorProjection

    proj = DescriptorProjection("test", np.zeros(128, np.float32), np.eye(128, dtype=np.float32),
                                np.ones(128, np.float32))
    with pytest.raises(MatchingError, match="cannot be combined"):
        RootSiftExtractor(ridge_keypoints=100, projection=proj)


def test_tophat_extractor_describes_the_markings_and_mirrors_the_same_way() -> None:
    img = texture(4)
    plain = RootSiftExtractor(max_keypoints=300, long_side=320).extract(img)
    ext = RootSiftExtractor(max_keypoints=300, long_side=320, tophat=9)
    feats = ext.extract(img)
    assert len(feats) > 50 and feats.image_size == plain.image_size
    assert not np.array_equal(feats.xy[:20], plain.xy[:20])  # other keypoints than plain SIFT
    flipped = ext.extract(np.ascontiguousarray(img[:, ::-1]))
    nn = (mirror_sift_descriptors(feats.descriptors) @ flipped.descriptors.T).argmax(axis=1)
    expected_x = img.shape[1] - 1 - feats.xy[:, 0]
    assert (np.abs(flipped.xy[nn, 0] - expected_x) < 2).mean() > 0.6


def test_attention_spends_the_keypoint_budget_where_the_map_is_high() -> None:
    img = texture(5, 240, 320)  # ~170 keypoints all over the crop, half of them on the left
    att = np.zeros((8, 8), np.float32)
    att[:, :4] = 1.0  # "the animal" is the left half
    att[:, 4:] = 0.05
    plain = RootSiftExtractor(max_keypoints=60, long_side=320).extract(img)
    attended = RootSiftExtractor(max_keypoints=60, long_side=320,
                                 attention_power=2.0).extract(img, attention=att)
    left = lambda f: float((f.xy[:, 0] < 150).mean())  # noqa: E731
    assert len(attended) == 60 == len(plain)
    assert left(attended) > 0.9 > left(plain) + 0.2
    # without a power the map is ignored: the strongest responses, as before
    ignored = RootSiftExtractor(max_keypoints=60, long_side=320).extract(img, attention=att)
    assert np.array_equal(ignored.xy, plain.xy)
    # a map of equal values keeps the strongest responses of the larger pool
    flat = RootSiftExtractor(max_keypoints=60, long_side=320, attention_power=2.0).extract(
        img, attention=np.ones((3, 3), np.float32))
    assert np.all(flat.scores[:-1] >= flat.scores[1:])


def test_only_the_kept_keypoints_are_described_with_the_descriptors_of_the_whole_pool() -> None:
    """Describing only the keypoints an attention map keeps gives the descriptors that
    describing the whole pool and keeping them gives (to the bit), on both channels."""
    import cv2

    img = texture(6, 240, 320)
    att = np.zeros((8, 8), np.float32)
    att[:, :4], att[:, 4:] = 1.0, 0.05
    ext = RootSiftExtractor(max_keypoints=60, long_side=320, attention_power=2.0, tophat=9,
                            ridge_keypoints=40)
    got = ext.extract(img, attention=att)
    work = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    from wildid.matching.features import ridge_map, stripe_map

    expected = []
    for sift, channel, budget in ((ext._sift_pool, stripe_map(work, 9), 60),
                                  (ext._ridge_sift, ridge_map(work), 40)):
        keypoints, desc = sift.detectAndCompute(channel, None)
        keep = ext._attended(keypoints, channel.shape[:2], att, budget)
        assert len(keypoints) > budget  # a choice was made
        expected.append(desc[keep])
    desc = np.concatenate(expected).astype(np.float32)
    desc /= desc.sum(axis=1, keepdims=True)
    desc = np.sqrt(desc)
    desc[60:] *= -1
    np.testing.assert_allclose(got.descriptors, desc / np.linalg.norm(desc, axis=1,
                                                                      keepdims=True), atol=1e-6)


def test_attention_map_must_be_finite_and_two_dimensional() -> None:
    from wildid.errors import ImageError
    from wildid.matching.features import attention_at

    pts = np.array([[0.0, 0.0], [319.0, 239.0]], np.float32)
    got = attention_at(np.array([[0.0, 2.0], [4.0, 8.0]], np.float32), pts, (240, 320))
    assert got[0] == pytest.approx(0.0) and got[1] == pytest.approx(1.0)  # scaled to max 1
    assert np.all(attention_at(np.zeros((2, 2), np.float32), pts, (240, 320)) == 1.0)
    for bad in (np.full((2, 2), np.nan, np.float32), np.zeros((2, 2, 2), np.float32),
                np.zeros((0, 0), np.float32)):
        with pytest.raises(ImageError):
            attention_at(bad, pts, (240, 320))


def _learned(n: int, dim: int = 128, seed: int = 0) -> LearnedKeypoints:
    rng = np.random.default_rng(seed)
    desc = rng.normal(size=(n, dim)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    xy = rng.uniform(0, [320, 240], size=(n, 2)).astype(np.float32)
    return LearnedKeypoints.quantised(xy, rng.uniform(0, 1, n).astype(np.float32), desc, (320, 240))


@pytest.mark.parametrize("with_texture", [False, True])
def test_learned_keypoints_round_trip_beside_the_sift_ones(with_texture: bool) -> None:
    """The ALIKED block follows the texture block when both are stored, and either comes back
    as it went in (float16 positions, int8 descriptors) without disturbing the other."""
    feats = RootSiftExtractor(max_keypoints=100, long_side=320).extract(texture(7))
    tex = b"\xff\xd8 fake jpeg bytes" if with_texture else None
    learned = _learned(256)
    blob = replace(feats, texture_jpeg=tex, learned=learned).to_bytes()
    plain = replace(feats, texture_jpeg=tex).to_bytes()
    assert len(blob) - len(plain) < 256 * (128 + 6) + 32  # int8 + float16 rows, small header
    back = LocalFeatures.from_bytes(blob)
    assert back.texture_jpeg == tex and back.learned is not None
    assert len(back.learned) == 256 and back.learned.image_size == (320, 240)
    np.testing.assert_allclose(back.learned.xy, learned.xy, atol=0.15)
    np.testing.assert_allclose(back.learned.scores, learned.scores, atol=1e-3)
    assert (back.learned.descriptors * learned.descriptors).sum(axis=1).min() > 0.99
    # int8 in memory as stored, decoded only when the matcher reads them
    assert back.learned.codes.dtype == np.int8
    np.testing.assert_array_equal(back.learned.codes, learned.codes)
    np.testing.assert_allclose(np.linalg.norm(back.learned.descriptors, axis=1), 1.0, atol=1e-5)
    assert LocalFeatures.from_bytes(plain).learned is None
    assert back.subset(np.arange(10)).learned is back.learned  # a view of the SIFT keypoints only
    empty = LocalFeatures.from_bytes(replace(feats, learned=_learned(0)).to_bytes()).learned
    assert empty is not None and len(empty) == 0


def test_damaged_learned_block_is_a_clear_error() -> None:
    feats = RootSiftExtractor(max_keypoints=50, long_side=320).extract(texture(8))
    blob = replace(feats, learned=_learned(64)).to_bytes()
    for cut in (1, 40, 64 * 128):
        with pytest.raises(MatchingError, match="learned keypoints are truncated"):
            LocalFeatures.from_bytes(blob[:-cut])
    with pytest.raises(MatchingError, match="damaged trailing block"):
        LocalFeatures.from_bytes(feats.to_bytes() + b"JUNKJUNK")
    at = blob.index(b"WLK1") + 10  # the block's descriptor scale
    for bad in (float("nan"), 0.0, -1.0):
        with pytest.raises(MatchingError, match="damaged scale"):
            LocalFeatures.from_bytes(blob[:at] + struct.pack("<f", bad) + blob[at + 4:])


def test_colourless_tells_a_night_shot_from_a_faded_colour_photo() -> None:
    from wildid.matching.features import colour_histogram, colourless

    grey = texture(5)  # R = G = B
    assert colourless(colour_histogram(grey))
    # an animal of muted colour on pale sand: 98 % of the pixels nearly grey (a slight warm
    # cast), a small patch clearly not
    faded = grey.astype(np.float32)
    faded[:, :, 2] *= 0.95
    faded[:40, :40] *= np.array([1.0, 0.8, 0.6], np.float32)
    assert not colourless(colour_histogram(np.clip(faded, 0, 255).astype(np.uint8)))
    assert not colourless(colour_histogram(cv2.cvtColor(grey, cv2.COLOR_RGB2HSV)))
    assert not colourless(np.ones(16, np.float32))  # not a histogram of this layout
