"""Photometric verification: aligned crops agree, misaligned or different ones do not; the texture
travels with the stored features and the identifier turns it into the ``texture`` score."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from wildid.errors import MatchingError
from wildid.matching.features import LocalFeatures, RootSiftExtractor
from wildid.matching.geometry import Verification
from wildid.matching.identifier import Identifier, IdentifierConfig, local_score_names
from wildid.matching.photometric import PhotometricQuery, photometric_agreement

from .test_matching_features import texture

EXT = RootSiftExtractor(max_keypoints=300, long_side=256, texture=True)


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx],
                     [scale * np.sin(a), scale * np.cos(a), ty], [0.0, 0.0, 1.0]])


def verification(t: np.ndarray, q_xy: np.ndarray) -> Verification:
    """A verification whose inliers are ``q_xy`` mapped by ``t`` (query -> database)."""
    d_xy = (np.c_[q_xy, np.ones(len(q_xy))] @ t.T)[:, :2]
    inl = np.c_[q_xy, d_xy].astype(np.float32)
    return Verification(np.arange(len(q_xy)), inl, float(len(q_xy)), t)


def grid(w: int, h: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.linspace(0.25 * w, 0.75 * w, 5), np.linspace(0.25 * h, 0.75 * h, 5))
    return np.c_[xs.ravel(), ys.ravel()]


def test_texture_round_trips_and_old_bytes_still_load() -> None:
    img = texture(1)
    feats = EXT.extract(img)
    assert feats.texture_jpeg and feats.texture().shape == (192, 256)  # working size, grey
    back = LocalFeatures.from_bytes(feats.to_bytes())
    assert back.texture_jpeg == feats.texture_jpeg and len(back) == len(feats)
    assert np.abs(back.texture().astype(int) - cv2.cvtColor(cv2.resize(
        img, (256, 192), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)).mean() < 3
    plain = RootSiftExtractor(max_keypoints=300, long_side=256).extract(img)
    assert plain.texture_jpeg is None and plain.texture() is None
    assert LocalFeatures.from_bytes(plain.to_bytes()).texture_jpeg is None  # older format
    with pytest.raises(MatchingError, match="texture"):
        LocalFeatures.from_bytes(feats.to_bytes()[:-10])


def test_right_alignment_agrees_and_a_wrong_one_does_not() -> None:
    img = texture(7)  # 320 x 240 crop
    t = similarity(0.8, 12.0, 40.0, 10.0)  # query -> database
    db_img = cv2.warpAffine(img, t[:2], (320, 240), borderMode=cv2.BORDER_REFLECT)
    query, db = EXT.extract(img), EXT.extract(db_img)
    pq = PhotometricQuery.of(query, 1.4, 5.0)
    assert pq is not None
    pts = grid(320, 240)
    right = photometric_agreement(pq, db, verification(t, pts), mirrored=False)
    shifted = photometric_agreement(pq, db, verification(similarity(0.8, 12.0, 52.0, 18.0), pts),
                                    mirrored=False)
    other = photometric_agreement(pq, EXT.extract(texture(8)), verification(t, pts), False)
    assert right is not None and right > 0.6
    assert shifted is not None and other is not None and max(shifted, other) < 0.3
    # nothing verified, or no texture on one side: no score
    empty = Verification(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 0.0, None)
    assert photometric_agreement(pq, db, empty, mirrored=False) is None
    assert photometric_agreement(pq, replace(db, texture_jpeg=None), verification(t, pts),
                                 False) is None


def test_mirrored_match_compares_the_mirrored_query() -> None:
    img = texture(9)
    flipped = np.ascontiguousarray(img[:, ::-1])
    query, db = EXT.extract(img), EXT.extract(flipped)
    pq = PhotometricQuery.of(query, 1.4, 5.0)
    assert pq is not None
    # the database photo *is* the mirrored query: identity from the mirrored query's frame,
    # inliers reported at the query's real positions
    pts = grid(320, 240)
    real = pts.copy()
    real[:, 0] = 320 - 1 - pts[:, 0]
    ver = verification(np.eye(3), pts)
    ver = replace(ver, inliers=np.c_[real, pts].astype(np.float32))
    assert photometric_agreement(pq, db, ver, mirrored=True) > 0.8  # type: ignore[operator]
    assert photometric_agreement(pq, db, ver, mirrored=False) < 0.3  # type: ignore[operator]


def test_identifier_adds_the_photo_score_only_when_the_profile_asks() -> None:
    cfg = IdentifierConfig(k=2, photometric=True)
    assert local_score_names(cfg) == ["lnbnn", "sv", "inliers", "texture"]
    assert local_score_names(IdentifierConfig()) == ["lnbnn", "sv", "inliers"]
    from .test_matching_geometry import warp

    ident = Identifier(cfg)
    for ind in range(4):
        ident.add(f"ind{ind}", f"ind{ind}", EXT.extract(texture(200 + ind)))
    query = EXT.extract(warp(texture(202), seed=3)[0])
    raw = ident.raw_scores(query)
    assert raw["ind2"]["texture"] > 0.3
    assert max(r.get("texture", 0.0) for k, r in raw.items() if k != "ind2") < raw["ind2"]["texture"]
    ident.config = IdentifierConfig(k=2)
    assert all("texture" not in r for r in ident.raw_scores(query).values())
