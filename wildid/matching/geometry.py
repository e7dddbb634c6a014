"""Geometric verification of putative keypoint correspondences between two crops.

Why: a descriptor match alone is weak evidence (stripe ends and rosettes repeat across animals);
matches that agree on one spatial transform are strong evidence.  Two estimators:

* ``"similarity"`` — one-point hypotheses (HotSpotter style): each correspondence of keypoints
  with a scale and an orientation (SIFT) defines a similarity transform on its own; every
  hypothesis is scored by the weighted inliers it explains, all at once in NumPy, and the winner
  is refined on its inliers.  Deterministic, robust with few matches, and tolerant of the mild
  non-rigidity of animals.  Keypoints without scale/angle use two-point hypotheses instead.
* ``"homography"`` / ``"affine"`` — OpenCV's USAC MAGSAC++ estimators (``findHomography``,
  ``estimateAffine2D``), for rigid scenes.

The inliers are returned as ``(M, 4)`` rows ``query_x, query_y, db_x, db_y`` in the pixel frames
of the original crops, which is what the GUI draws.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from wildid.matching.features import LocalFeatures

__all__ = ["Verification", "match_descriptors", "verify", "verify_points"]


@dataclass(frozen=True)
class Verification:
    """Outcome of verifying one pair: the inlying correspondences and their summed weight."""

    inlier_idx: np.ndarray  # (m,) indices into the correspondences that were verified
    inliers: np.ndarray  # (m, 4) float32 query xy + database xy
    score: float  # sum of the weights of the inliers
    transform: np.ndarray | None  # 3x3 query -> database, None when nothing verified
    mirrored: bool = False  # the transform maps the mirrored query crop (its inliers do not)

    @property
    def n_inliers(self) -> int:
        return int(self.inlier_idx.size)

    def rotation_degrees(self) -> float | None:
        """How far the database crop is turned from the query, in degrees (-180, 180] in the
        images' own frame (y down: positive turns clockwise on screen); None when nothing was
        verified, for a mirrored match, or a transform that is no rotation and scale."""
        t = self.transform
        if t is None or self.mirrored or not np.isfinite(t).all():
            return None
        a = np.asarray(t, np.float64)[:2, :2]
        if np.linalg.det(a) <= 0:
            return None
        return float(np.degrees(np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])))


_EMPTY = Verification(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 0.0, None)


def match_descriptors(query: np.ndarray, db: np.ndarray, ratio: float = 0.85,
                      mutual: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Putative matches between two descriptor sets: (query_idx, db_idx, weight).

    Ratio test on the two nearest database descriptors (weight = 1 - d1/d2, so distinctive
    matches count more), optionally kept only when the match is mutual.
    """
    if len(query) < 1 or len(db) < 2:
        z = np.zeros(0, np.int64)
        return z, z.copy(), np.zeros(0, np.float32)
    q = np.asarray(query, np.float32)
    d = np.asarray(db, np.float32)
    d2 = (q * q).sum(1)[:, None] + (d * d).sum(1)[None, :] - 2.0 * (q @ d.T)
    np.maximum(d2, 0, out=d2)
    two = np.argpartition(d2, 1, axis=1)[:, :2]
    pair_d = np.take_along_axis(d2, two, axis=1)
    swap = pair_d[:, 0] > pair_d[:, 1]
    two[swap] = two[swap][:, ::-1]
    pair_d[swap] = pair_d[swap][:, ::-1]
    first, second = np.sqrt(pair_d[:, 0]), np.sqrt(pair_d[:, 1])
    keep = first < ratio * np.maximum(second, 1e-12)
    if mutual:
        back = np.argmin(d2, axis=0)
        keep &= back[two[:, 0]] == np.arange(len(q))
    qi = np.flatnonzero(keep)
    weight = 1.0 - first[qi] / np.maximum(second[qi], 1e-12)
    return qi, two[qi, 0], weight.astype(np.float32)


def _similarity_params(q_xy: np.ndarray, d_xy: np.ndarray, s: np.ndarray,
                       theta: np.ndarray) -> np.ndarray:
    """(n, 2, 3) similarity matrices mapping each query point onto its database point."""
    c, sn = s * np.cos(theta), s * np.sin(theta)
    mats = np.empty((len(s), 2, 3), np.float64)
    mats[:, 0, 0], mats[:, 0, 1], mats[:, 1, 0], mats[:, 1, 1] = c, -sn, sn, c
    mats[:, 0, 2] = d_xy[:, 0] - (c * q_xy[:, 0] - sn * q_xy[:, 1])
    mats[:, 1, 2] = d_xy[:, 1] - (sn * q_xy[:, 0] + c * q_xy[:, 1])
    return mats


def _two_point_hypotheses(q_xy: np.ndarray, d_xy: np.ndarray, weight: np.ndarray,
                          top: int = 24) -> np.ndarray:
    """Similarity hypotheses from pairs of the ``top`` strongest correspondences."""
    idx = np.argsort(-weight, kind="stable")[:top]
    a, b = np.triu_indices(len(idx), 1)
    ia, ib = idx[a], idx[b]
    vq, vd = q_xy[ib] - q_xy[ia], d_xy[ib] - d_xy[ia]
    nq = np.linalg.norm(vq, axis=1)
    ok = nq > 1e-6
    s = np.linalg.norm(vd, axis=1)[ok] / nq[ok]
    theta = np.arctan2(vd[ok, 1], vd[ok, 0]) - np.arctan2(vq[ok, 1], vq[ok, 0])
    return _similarity_params(q_xy[ia[ok]], d_xy[ia[ok]], s, theta)


def verify_points(q_xy: np.ndarray, d_xy: np.ndarray, weight: np.ndarray | None = None,
                  db_diag: float = 1.0, q_scale: np.ndarray | None = None,
                  d_scale: np.ndarray | None = None, q_angle: np.ndarray | None = None,
                  d_angle: np.ndarray | None = None, method: str = "similarity",
                  threshold: float = 0.05, max_scale_change: float = 4.0,
                  min_inliers: int = 3) -> Verification:
    """Verify correspondences ``q_xy[i] <-> d_xy[i]``; ``threshold`` is a share of ``db_diag``."""
    q_xy = np.asarray(q_xy, np.float64).reshape(-1, 2)
    d_xy = np.asarray(d_xy, np.float64).reshape(-1, 2)
    n = len(q_xy)
    w = np.ones(n, np.float64) if weight is None else np.asarray(weight, np.float64)
    if n < min_inliers or n < 2:
        return _EMPTY
    thr = threshold * db_diag
    if method in ("homography", "affine"):
        return _verify_opencv(q_xy, d_xy, w, thr, method, min_inliers)
    has_shape = (q_scale is not None and d_scale is not None and q_angle is not None
                 and d_angle is not None and np.all(np.asarray(q_scale) > 0)
                 and np.all(np.asarray(d_scale) > 0))
    if has_shape:
        s = np.asarray(d_scale, np.float64) / np.asarray(q_scale, np.float64)
        # A keypoint's orientation is the direction (cos a, sin a) in image coordinates (y down;
        # OpenCV's angle, in radians): rotating a photo by phi there adds phi to every angle,
        # so each correspondence's own rotation is d - q.  (Until 2026-12-02 this read q - d:
        # a single hypothesis then explained ~5 % of the true matches of a photo turned by
        # 20 degrees instead of ~93 %, and only near-upright pairs verified well.)
        theta = np.asarray(d_angle, np.float64) - np.asarray(q_angle, np.float64)
        hyps = _similarity_params(q_xy, d_xy, s, theta)
    else:
        hyps = _two_point_hypotheses(q_xy, d_xy, w)
    if not len(hyps):
        return _EMPTY
    plausible = _plausible_scale(hyps, max_scale_change)
    inl = _inliers_of_each(hyps, q_xy, d_xy, thr)
    support = (inl * w[None]).sum(axis=1) * plausible
    best = int(np.argmax(support))
    if support[best] <= 0:
        return _EMPTY
    mask = inl[best]
    matrix = np.vstack([hyps[best], [0.0, 0.0, 1.0]])
    # refine on the inliers (least-squares similarity), then re-collect inliers once
    if mask.sum() >= 3:
        refined, _ = cv2.estimateAffinePartial2D(q_xy[mask], d_xy[mask], method=cv2.LMEDS)
        # the refit must stay as plausible as the hypotheses: LMEDS on hundreds of chance
        # inliers (a catalog of one animal) shrank a query to a tenth, where it lands near
        # most database keypoints at once (427 "inliers" instead of 168)
        if refined is not None and _plausible_scale(refined[None], max_scale_change)[0]:
            err2 = np.linalg.norm(q_xy @ refined[:, :2].T + refined[:, 2] - d_xy, axis=1)
            mask2 = err2 < thr
            if (mask2 * w).sum() >= (mask * w).sum():
                mask, matrix = mask2, np.vstack([refined, [0.0, 0.0, 1.0]])
    return _result(mask, q_xy, d_xy, w, matrix, min_inliers)


def _plausible_scale(mats: np.ndarray, max_scale_change: float) -> np.ndarray:
    """Per (n, 2, 3) similarity: whether its scale is within ``max_scale_change`` either way."""
    scale = np.sqrt(np.abs(mats[:, 0, 0] * mats[:, 1, 1] - mats[:, 0, 1] * mats[:, 1, 0]))
    return (scale < max_scale_change) & (scale > 1.0 / max_scale_change)


def _inliers_of_each(hyps: np.ndarray, q_xy: np.ndarray, d_xy: np.ndarray,
                     thr: float) -> np.ndarray:
    """[hypothesis, correspondence] mask: within ``thr`` of where the hypothesis maps it.

    Every correspondence proposes a hypothesis, so this is n x n: in a small catalog an
    annotation collects ~1,000 correspondences and the verification took most of a query
    (0.6 s of 0.8 s against 12 nyala annotations). One BLAS product for all hypotheses'
    2x2 parts and squared distances in place: ~8 ms instead of ~80 ms (``einsum`` and
    ``norm``) at n = 1,000, the same mask.
    """
    proj = hyps[:, :, :2].reshape(-1, 2) @ q_xy.T  # rows: x then y of each hypothesis
    ex, ey = proj[0::2], proj[1::2]
    ex += hyps[:, 0, 2, None]
    ex -= d_xy[None, :, 0]
    ey += hyps[:, 1, 2, None]
    ey -= d_xy[None, :, 1]
    ex *= ex
    ey *= ey
    ex += ey
    return ex < thr * thr


def _verify_opencv(q_xy: np.ndarray, d_xy: np.ndarray, w: np.ndarray, thr: float, method: str,
                   min_inliers: int) -> Verification:
    src, dst = q_xy.astype(np.float32), d_xy.astype(np.float32)
    try:
        if method == "homography":
            if len(src) < 4:
                return _EMPTY
            matrix, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, thr, maxIters=2000,
                                              confidence=0.999)
        else:
            # full affine: OpenCV offers MAGSAC++ for it, not for the 4-dof partial one
            affine, mask = cv2.estimateAffine2D(src, dst, method=cv2.USAC_MAGSAC,
                                                ransacReprojThreshold=thr)
            matrix = None if affine is None else np.vstack([affine, [0.0, 0.0, 1.0]])
    except cv2.error:
        return _EMPTY
    if matrix is None or mask is None:
        return _EMPTY
    return _result(mask.ravel().astype(bool), q_xy, d_xy, w, matrix, min_inliers)


def _result(mask: np.ndarray, q_xy: np.ndarray, d_xy: np.ndarray, w: np.ndarray,
            matrix: np.ndarray, min_inliers: int) -> Verification:
    idx = np.flatnonzero(mask)
    if idx.size < min_inliers:
        return _EMPTY
    inliers = np.hstack([q_xy[idx], d_xy[idx]]).astype(np.float32)
    return Verification(idx, inliers, float(w[idx].sum()), matrix)


def verify(query: LocalFeatures, db: LocalFeatures, query_idx: np.ndarray, db_idx: np.ndarray,
           weight: np.ndarray | None = None, method: str = "similarity",
           threshold: float = 0.05, min_inliers: int = 3) -> Verification:
    """Verify correspondences given as keypoint indices into two feature sets.

    Keypoints are stored in the pixels of each crop as it was decoded: a photo larger than
    the working size arrives at it, a smaller one (a 130 px catalog photo, a tight box on a
    distant animal) as it is. The ratio of the two crops' pixels is then no change of the
    animal's scale, but it counted against the hypotheses' plausible range (1/4 to 4): a
    full-size lion photo against 130 px ones started at 2 before the animal's own scale. The
    query is therefore verified in the database crop's frame, both long sides equal, as SIFT
    saw them (each crop at its profile's working size); the inliers and the transform
    returned are in the crops' own pixels again.
    """
    diag = float(np.hypot(*db.image_size))
    to_db = max(db.image_size) / max(max(query.image_size), 1)
    ver = verify_points(query.xy[query_idx] * to_db, db.xy[db_idx], weight, diag,
                        query.sizes[query_idx] * to_db, db.sizes[db_idx],
                        query.angles[query_idx], db.angles[db_idx], method=method,
                        threshold=threshold, min_inliers=min_inliers)
    if ver.transform is None or to_db == 1.0:
        return ver
    inliers = ver.inliers.copy()
    inliers[:, :2] = query.xy[query_idx[ver.inlier_idx]]
    transform = ver.transform @ np.diag([to_db, to_db, 1.0])
    return replace(ver, inliers=inliers, transform=transform)
