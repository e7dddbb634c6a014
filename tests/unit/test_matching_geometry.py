"""Geometric verification: a textured patch under a perspective warp is matched with inliers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from wildid.matching.features import RootSiftExtractor
from wildid.matching.geometry import match_descriptors, verify, verify_points
from wildid.matching.local_index import LocalIndex

from .test_matching_features import texture


def warp(img: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    rng = np.random.default_rng(seed)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = (src + rng.uniform(-0.12, 0.12, (4, 2)) * [w, h]).astype(np.float32)
    hom = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(img, hom, (w, h), borderMode=cv2.BORDER_REFLECT), hom


@pytest.mark.parametrize("method", ["similarity", "homography", "affine"])
def test_perspective_warp_verifies_with_correct_inliers(method: str) -> None:
    img = texture(5)
    warped, hom = warp(img)
    ext = RootSiftExtractor(max_keypoints=500, long_side=320)
    a, b = ext.extract(img), ext.extract(warped)
    qi, di, w = match_descriptors(a.descriptors, b.descriptors)
    ver = verify(a, b, qi, di, w, method=method, threshold=0.03)
    assert ver.n_inliers >= 20
    assert ver.inliers.shape == (ver.n_inliers, 4)
    # the inliers obey the true warp
    proj = cv2.perspectiveTransform(ver.inliers[None, :, :2], hom)[0]
    err = np.linalg.norm(proj - ver.inliers[:, 2:], axis=1)
    assert np.median(err) < 3.0
    # an unrelated texture gives (almost) nothing
    other = ext.extract(texture(6))
    qi2, di2, w2 = match_descriptors(a.descriptors, other.descriptors)
    assert verify(a, other, qi2, di2, w2, method=method, threshold=0.03).score < 0.2 * ver.score


def test_warped_patch_ranks_first_among_distractors() -> None:
    ext = RootSiftExtractor(max_keypoints=400, long_side=320)
    index = LocalIndex(k=2, nprobe=32)
    for seed in range(20, 32):
        index.add(f"distractor{seed}", ext.extract(texture(seed)))
    index.add("target", ext.extract(texture(7)))
    query = ext.extract(warp(texture(7), seed=3)[0])
    result = index.query(query)
    assert result.ranked()[0][0] == "target"
    m = result.matches["target"]
    ver = verify(query, index.features("target"), m.query_idx, m.db_idx, m.weight)
    assert ver.n_inliers >= 10


def test_two_point_hypotheses_without_keypoint_shape() -> None:
    rng = np.random.default_rng(0)
    q = rng.random((60, 2)) * 200
    angle, scale, shift = 0.3, 1.2, np.array([15.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    d = q @ rot.T + shift
    d[40:] = rng.random((20, 2)) * 200  # outliers
    ver = verify_points(q, d, db_diag=280.0, threshold=0.01)
    assert set(ver.inlier_idx.tolist()) >= set(range(40)) - {0}
    assert ver.n_inliers <= 42
    assert verify_points(q[:2], d[:2], db_diag=280.0).n_inliers == 0


def _rotated(img: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT), m


def test_keypoint_angles_follow_the_rotation_of_the_photo() -> None:
    """What the similarity hypotheses rely on: OpenCV's SIFT angle of a keypoint grows by the
    photo's rotation measured in image coordinates (y down)."""
    img = texture(5)
    turned, m = _rotated(img, 25.0)
    ext = RootSiftExtractor(max_keypoints=500, long_side=320)
    a, b = ext.extract(img), ext.extract(turned)
    qi, di, _ = match_descriptors(a.descriptors, b.descriptors)
    true = np.linalg.norm(a.xy[qi] @ m[:, :2].T + m[:, 2] - b.xy[di], axis=1) < 2.0
    assert true.sum() >= 20
    phi = np.arctan2(m[1, 0], m[0, 0])  # -25 degrees in y-down coordinates
    diff = np.angle(np.exp(1j * (b.angles[di[true]] - a.angles[qi[true]] - phi)))
    assert np.median(np.abs(diff)) < np.deg2rad(5)


@pytest.mark.parametrize("degrees", [-40.0, 20.0, 35.0])
def test_each_correspondence_predicts_the_rotation_of_a_few_true_matches(degrees: float) -> None:
    """Five true matches under a rotation among thirty false ones are found from a single
    correspondence's own scale and orientation (no refinement could rescue a wrong sign here:
    the tolerance is tight and every hypothesis but the true one explains one match)."""
    rng = np.random.default_rng(1)
    phi, scale, shift = np.deg2rad(degrees), 1.3, np.array([40.0, -10.0])
    rot = scale * np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    q = rng.random((35, 2)) * 300
    d = q @ rot.T + shift
    d[5:] = rng.random((30, 2)) * 300
    q_angle = rng.random(35) * 2 * np.pi
    d_angle = q_angle + phi
    d_angle[5:] = rng.random(30) * 2 * np.pi
    q_size = np.full(35, 4.0)
    d_size = q_size * scale
    ver = verify_points(q, d, db_diag=420.0, q_scale=q_size, d_scale=d_size, q_angle=q_angle,
                        d_angle=d_angle, threshold=0.005)
    assert sorted(ver.inlier_idx.tolist()) == [0, 1, 2, 3, 4]


def test_inlier_mask_of_every_hypothesis_is_the_plain_formula() -> None:
    """The n x n hypothesis test (one BLAS product, squared distances) marks exactly what
    projecting every point by every hypothesis and measuring the distance marks."""
    from wildid.matching.geometry import _inliers_of_each

    rng = np.random.default_rng(11)
    n = 400
    q = rng.uniform(0, 640, (n, 2))
    d = q @ np.array([[0.9, -0.2], [0.2, 0.9]]).T + [15.0, -4.0] + rng.normal(0, 4, (n, 2))
    d[::3] = rng.uniform(0, 640, (len(d[::3]), 2))  # a third are wrong matches
    hyps = np.concatenate([rng.normal([[0.9, -0.2], [0.2, 0.9]], 0.05, (n, 2, 2)),
                           rng.normal([[15.0], [-4.0]], 5.0, (n, 2, 1))], axis=2)
    thr = 12.0
    proj = np.einsum("hij,nj->hni", hyps[:, :, :2], q) + hyps[:, None, :, 2]
    expected = np.linalg.norm(proj - d[None], axis=2) < thr
    got = _inliers_of_each(hyps, q, d, thr)
    assert got.shape == (n, n) and 0.05 < expected.mean() < 0.8  # a real mix of both
    np.testing.assert_array_equal(got, expected)
    assert _inliers_of_each(hyps[:1], q[:0], d[:0], thr).shape == (1, 0)


def test_the_refit_transform_stays_as_plausible_as_the_hypotheses() -> None:
    """Hundreds of chance correspondences whose database ends bunch (a catalog of one animal:
    every query keypoint's neighbours are in its photo) once let the least-squares refit
    shrink the query to an eighth of its size, onto the bunch: 374-478 "inliers" instead of
    ~150, through a transform no hypothesis was allowed to have."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = 1500
        q = rng.uniform(0, 500, (n, 2))
        d = np.vstack([rng.normal(250, 15, (n // 2, 2)), rng.uniform(0, 500, (n - n // 2, 2))])
        ver = verify_points(q, d, db_diag=700.0, q_scale=rng.uniform(1, 4, n),
                            d_scale=rng.uniform(1, 4, n), q_angle=rng.uniform(0, 6.28, n),
                            d_angle=rng.uniform(0, 6.28, n), max_scale_change=4.0)
        assert ver.transform is not None
        scale = np.sqrt(abs(np.linalg.det(ver.transform[:2, :2])))
        assert 0.25 < scale < 4.0
        assert ver.n_inliers < 250


def test_a_query_photographed_at_a_higher_resolution_verifies_as_well() -> None:
    """Camera resolution is not a change of scale: the same warped patch saved six times
    larger (a full-resolution field photo against a catalog's small crop) verifies as at the
    database's size, where every hypothesis of scale ~1/6 used to be thrown out; the inliers
    and the transform come back in the query's own pixels."""
    img = texture(7)
    warped, hom = warp(img, seed=3)
    large = cv2.resize(warped, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
    ext = RootSiftExtractor(max_keypoints=500, long_side=320)
    db, small, big = ext.extract(img), ext.extract(warped), ext.extract(large)
    assert max(big.image_size) == 6 * max(small.image_size)
    ref = verify(small, db, *match_descriptors(small.descriptors, db.descriptors))
    ver = verify(big, db, *match_descriptors(big.descriptors, db.descriptors))
    assert ref.n_inliers >= 10
    assert ver.n_inliers >= 0.8 * ref.n_inliers
    q = ver.inliers[:, :2].astype(np.float64)
    assert q.max() > 2 * max(small.image_size)  # the query's own (large) pixels
    truth = cv2.perspectiveTransform(((q + 0.5) / 6 - 0.5)[None], np.linalg.inv(hom))[0]
    assert np.median(np.linalg.norm(truth - ver.inliers[:, 2:], axis=1)) < 3.0
    # the transform maps those pixels within the verification's tolerance (5 % of the diagonal)
    mapped = q @ ver.transform[:2, :2].T + ver.transform[:2, 2]
    err = np.linalg.norm(mapped - ver.inliers[:, 2:], axis=1)
    assert err.max() < 0.05 * np.hypot(*db.image_size) + 1e-3
