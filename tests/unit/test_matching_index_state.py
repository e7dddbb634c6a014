"""A saved identifier's index restores to one that searches and grows as the original does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from wildid.errors import MatchingError
from wildid.matching import _ivf
from wildid.matching.features import LearnedKeypoints, features_from_arrays
from wildid.matching.identifier import DatabaseEntry, Identifier, IdentifierConfig
from wildid.matching.index_state import identifier_state, restore_identifier

from .test_matching_local_index import _structured_rows


def _entries(rng: np.random.Generator, rows: np.ndarray, start: int, signed: bool = False,
             whole_pixels: bool = True) -> list[DatabaseEntry]:
    out = []
    parts = np.split(rows, np.cumsum(rng.integers(20, 130, len(rows) // 20))[:-1])
    for i, r in enumerate(p for p in parts if len(p)):
        key = f"a{start + i}"
        xy = (rng.integers(0, 100, (len(r), 2)).astype(np.float32) if whole_pixels
              else rng.random((len(r), 2)).astype(np.float32) * 100)  # float16 holds: kept so
        feats = features_from_arrays(xy, r if signed else np.abs(r), (100, 80), "rootsift/t")
        extra = {}
        if i % 3 == 0:
            extra["texture_jpeg"] = bytes(rng.integers(0, 255, 40, dtype=np.uint8))
        if i % 4 == 1:
            extra["learned"] = LearnedKeypoints.quantised(
                rng.integers(0, 99, (7, 2)), np.full(7, 0.5), rng.normal(size=(7, 8)), (99, 99))
        feats = replace(feats, **extra)
        out.append(DatabaseEntry(key, f"ind{i % 9}", feats, species="nyala",
                                 viewpoint="left" if i % 2 else None,
                                 vectors={"colour": rng.normal(size=12)}))
    return out


def _saved_and_restored(ident: Identifier, tmp_path: Path) -> Identifier:
    meta, arrays = identifier_state(ident)
    np.savez(tmp_path / "state.npz", **arrays)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as files:
        back = Identifier(ident.config)
        restore_identifier(back, meta, files)
    return back


def _assert_same(a: Identifier, b: Identifier, rng: np.random.Generator, x: np.ndarray) -> None:
    sa, sb = a.local._store, b.local._store
    assert sa is not None and sb is not None
    for ca, cb in zip(sa._raw_rows(), sb._raw_rows(), strict=True):  # codes, norms, slot, kp...
        np.testing.assert_array_equal(ca, cb)
    assert [lst.n for lst in sa.lists] == [lst.n for lst in sb.lists]
    for name in ("centroids", "rot", "rest_scale"):
        np.testing.assert_array_equal(getattr(sa, name), getattr(sb, name))
    np.testing.assert_array_equal(sa._rest[: sa._gn], sb._rest[: sb._gn])
    assert (sa.scale, sa.split, sa.trained_at, sa.nonneg) == (sb.scale, sb.split, sb.trained_at,
                                                             sb.nonneg)
    assert sa._slot_lists.keys() == sb._slot_lists.keys()
    for slot, lists in sa._slot_lists.items():
        np.testing.assert_array_equal(lists, sb._slot_lists[slot])
    assert sorted(a.local.keys()) == sorted(b.local.keys())
    for key in a.local.keys():
        fa, fb = a.local.features(key), b.local.features(key)
        for name in ("xy", "scores", "sizes", "angles"):
            np.testing.assert_array_equal(getattr(fa, name), getattr(fb, name))
        assert (fa.image_size, fa.extractor, fa.texture_jpeg) == (fb.image_size, fb.extractor,
                                                                  fb.texture_jpeg)
        assert (fa.learned is None) == (fb.learned is None)
        if fa.learned is not None:
            assert fb.learned is not None
            np.testing.assert_array_equal(fa.learned.codes, fb.learned.codes)
    assert {k: a.individual_of(k) for k in a.local.keys()} == {
        k: b.individual_of(k) for k in b.local.keys()}
    np.testing.assert_array_equal(a.vectors["colour"].matrix(), b.vectors["colour"].matrix())
    assert list(a.vectors["colour"].keys) == list(b.vectors["colour"].keys)
    desc = np.abs(x[::200]) + 0.01
    query = features_from_arrays(rng.random((len(desc), 2)) * 100, desc, (100, 100), "rootsift/t")
    ra, rb = a.local.query(query), b.local.query(query)
    assert ra.scores == rb.scores and len(ra.scores) > 3


def test_a_split_store_restores_and_grows_as_the_original(monkeypatch, tmp_path: Path) -> None:
    """Through trainings, the split past SPLIT_ROWS, removals (tombstones), textures, learned
    keypoints and a vector source; then both grow by the same annotations, retraining."""
    monkeypatch.setattr(_ivf, "SPLIT_ROWS", 3000)
    rng = np.random.default_rng(5)
    x = _structured_rows(rng, 12000)
    first, later = _entries(rng, x[:7000], 0, True), _entries(rng, x[7000:], 1000, True)
    config = IdentifierConfig(k=3)
    ident = Identifier(config)
    ident.local = type(ident.local)(k=3, train_rows=1000, list_rows=60, nprobe=4)
    ident.add_many(first)
    for e in first[3:9]:
        ident.remove(e.key)
    assert ident.local._store is not None and ident.local._store.split
    assert ident.local._dead_rows > 0  # tombstones kept, not compacted yet
    back = Identifier(config)
    back.local = type(back.local)(k=3, train_rows=1000, list_rows=60, nprobe=4)
    meta, arrays = identifier_state(ident)
    np.savez(tmp_path / "state.npz", **arrays)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as files:
        restore_identifier(back, meta, files)
    _assert_same(ident, back, rng, x)
    trained = ident.local._store.trained_at
    ident.add_many(later)
    back.add_many(later)
    assert ident.local._store.trained_at > trained  # retrained after the restore
    _assert_same(ident, back, rng, x)


def test_a_small_unsigned_store_restores(tmp_path: Path) -> None:
    """Untrained, non-negative rows, keypoints float16 cannot hold (kept as float32)."""
    rng = np.random.default_rng(6)
    x = _structured_rows(rng, 3000)
    ident = Identifier(IdentifierConfig(k=3))
    ident.add_many(_entries(rng, x, 0, whole_pixels=False))
    assert ident.local._store is not None and ident.local._store.centroids is None  # untrained
    back = _saved_and_restored(ident, tmp_path)
    _assert_same(ident, back, rng, x)


def test_a_damaged_state_is_refused_and_leaves_the_identifier_empty(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = _structured_rows(rng, 3000)
    ident = Identifier(IdentifierConfig(k=3))
    ident.add_many(_entries(rng, x, 0))
    meta, arrays = identifier_state(ident)
    damaged = [
        {k: v for k, v in arrays.items() if k != "local/store/l0.slot"},  # missing
        {**arrays, "local/geom": arrays["local/geom"][:-1]},  # short
        {**arrays, "local/store/l0.kp": arrays["local/store/l0.kp"].astype(np.int64)},  # dtype
        {**arrays, "vec0": arrays["vec0"][:, :5]},
    ]
    for bad in damaged:
        back = Identifier(IdentifierConfig(k=3))
        with pytest.raises(MatchingError, match="saved index"):
            restore_identifier(back, meta, bad)
        assert len(back) == 0 and len(back.local) == 0 and back.local._store is None
    with pytest.raises(MatchingError, match="format"):
        restore_identifier(Identifier(IdentifierConfig(k=3)), {**meta, "format": 0}, arrays)
    with pytest.raises(MatchingError, match="store settings"):
        other = Identifier(IdentifierConfig(k=3))
        other.local = type(other.local)(k=3, list_rows=99)
        restore_identifier(other, meta, arrays)
    busy = Identifier(IdentifierConfig(k=3))
    busy.add_many(_entries(rng, x[:200], 0))
    with pytest.raises(MatchingError, match="empty"):
        restore_identifier(busy, meta, arrays)
