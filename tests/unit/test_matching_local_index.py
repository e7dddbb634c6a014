"""One kNN index over all database descriptors: LNBNN scores, add/remove == rebuild."""

from __future__ import annotations

import numpy as np
import pytest

from wildid.errors import MatchingError
from wildid.matching._ivf import IvfStore, kmeans
from wildid.matching.features import features_from_arrays
from wildid.matching.local_index import KnnResult, LocalIndex, lnbnn_scores


def random_features(rng: np.random.Generator, n: int, dim: int = 16):
    return features_from_arrays(rng.random((n, 2)) * 100, rng.normal(size=(n, dim)), (100, 100), "t")


def test_lnbnn_weights_by_hand() -> None:
    # one query keypoint, neighbours in annotations 7, 7, 3 at distances 0.1, 0.2, 0.5
    knn = KnnResult(np.array([[0.1, 0.2, 0.5]], np.float32), np.array([[7, 7, 3]], np.int32),
                    np.array([[0, 1, 2]], np.int32))
    q, slot, kp, w = lnbnn_scores(knn, k=2, knorm=1)
    # k=2 neighbours vote with d_norm - d = 0.4 and 0.3; one vote per annotation (the best)
    assert q.tolist() == [0] and slot.tolist() == [7] and kp.tolist() == [0]
    assert w.tolist() == pytest.approx([0.4])
    with pytest.raises(MatchingError):
        lnbnn_scores(knn, k=3, knorm=1)


def test_query_finds_the_annotation_with_the_same_descriptors() -> None:
    rng = np.random.default_rng(0)
    index = LocalIndex(k=2, train_rows=1000, list_rows=50, nprobe=8)
    db = {f"a{i}": random_features(rng, 60) for i in range(40)}
    index.add_many(db.items())
    assert index.n_lists > 1 and index.n_descriptors == 40 * 60
    target = db["a17"]
    noisy = features_from_arrays(target.xy, target.descriptors + 0.05 * rng.normal(size=(60, 16)),
                                 target.image_size, "t")
    result = index.query(noisy)
    assert result.ranked()[0][0] == "a17"
    m = result.matches["a17"]
    assert (m.query_idx == m.db_idx).mean() > 0.9  # the correspondences are the right keypoints
    # excluding the best key hands the query to someone else and never returns it
    assert "a17" not in index.query(noisy, exclude_keys=["a17"]).scores


@pytest.mark.parametrize("train_rows", [10**9, 800])  # flat (exact) store, and an inverted file
def test_add_remove_equals_rebuild(train_rows: int) -> None:
    rng = np.random.default_rng(1)
    feats = {i: random_features(rng, 40) for i in range(60)}
    live = LocalIndex(k=3, train_rows=train_rows, list_rows=40, nprobe=10**6)
    for key, f in feats.items():
        live.add(key, f)
    for key in range(0, 60, 4):
        live.remove(key)
    live.add(3, feats[3])  # re-adding replaces, never duplicates
    rebuilt = LocalIndex(k=3, train_rows=train_rows, list_rows=40, nprobe=10**6)
    for key, f in feats.items():
        if key % 4:
            rebuilt.add(key, f)
    assert sorted(live.keys()) == sorted(rebuilt.keys())
    assert live.n_descriptors == rebuilt.n_descriptors
    query = random_features(rng, 30)
    a, b = live.query(query), rebuilt.query(query)
    assert a.scores.keys() == b.scores.keys()
    for key in a.scores:
        assert a.scores[key] == pytest.approx(b.scores[key], rel=1e-5)
    assert not any(k % 4 == 0 for k in a.scores)


@pytest.mark.parametrize("batch_rows", [131_072, 700])
def test_add_many_builds_the_lists_one_at_a_time_adding_builds(monkeypatch,
                                                              batch_rows: int) -> None:
    """Batches end where the store (re)trains, so the codebook, the lists (row for row) and the
    neighbours are those of adding the annotations one by one: through several trainings, the
    split past SPLIT_ROWS, a replacement inside the batch and batches cut by their size."""
    from wildid.matching import _ivf, local_index

    monkeypatch.setattr(_ivf, "SPLIT_ROWS", 3000)
    monkeypatch.setattr(local_index, "BATCH_ROWS", batch_rows)
    rng = np.random.default_rng(21)
    x = _structured_rows(rng, 9000)
    items = [(i, features_from_arrays(rng.random((len(r), 2)) * 100, r, (100, 100), "t"))
             for i, r in enumerate(np.split(x, np.cumsum(rng.integers(20, 130, 120))[:-1]))
             if len(r)]
    items.insert(40, (5, items[5][1]))  # re-adding replaces, in order, never duplicates
    one = LocalIndex(k=3, train_rows=1000, list_rows=60, nprobe=4)
    for key, f in items:
        one.add(key, f)
    many = LocalIndex(k=3, train_rows=1000, list_rows=60, nprobe=4)
    many.add_many(items)
    a, b = one._store, many._store
    assert a is not None and b is not None and a.split and b.split
    assert a.trained_at == b.trained_at and a.n_lists == b.n_lists > 8
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert [lst.n + lst.pending_rows for lst in a.lists] == [
        lst.n + lst.pending_rows for lst in b.lists]
    for ca, cb in zip(a._raw_rows(), b._raw_rows(), strict=True):  # codes, norms, slot, kp...
        np.testing.assert_array_equal(ca, cb)
    assert a._slot_lists.keys() == b._slot_lists.keys()  # which lists hold each annotation
    for key, lists in a._slot_lists.items():
        np.testing.assert_array_equal(lists, b._slot_lists[key])
    assert sorted(one.keys()) == sorted(many.keys())
    query = features_from_arrays(rng.random((50, 2)) * 100, x[::180] + 0.01, (100, 100), "t")
    ra, rb = one.query(query), many.query(query)
    assert ra.scores == rb.scores


def test_add_many_keeps_what_it_registered_when_an_item_is_refused() -> None:
    rng = np.random.default_rng(22)
    index = LocalIndex(k=2)
    good = [(i, random_features(rng, 30)) for i in range(3)]
    with pytest.raises(MatchingError):
        index.add_many([*good, ("bad", random_features(rng, 30, dim=32))])
    assert sorted(index.keys()) == [0, 1, 2] and index.n_descriptors == 90
    assert index._store is not None and index._store.n_rows == 90
    assert index.query(good[1][1]).ranked()[0][0] == 1


def test_remove_compacts_tombstones() -> None:
    rng = np.random.default_rng(2)
    index = LocalIndex(train_rows=10**9, compact_dead=0.3)
    for i in range(10):
        index.add(i, random_features(rng, 20))
    for i in range(4):
        index.remove(i)
    assert index.n_descriptors == 120
    assert index._store is not None and index._store.n_rows == 120  # compacted after >30 % dead
    index.remove("never added")  # no error


def test_descriptor_size_mismatch_is_refused() -> None:
    rng = np.random.default_rng(3)
    index = LocalIndex()
    index.add("a", random_features(rng, 10, dim=16))
    with pytest.raises(MatchingError):
        index.add("b", random_features(rng, 10, dim=32))


def test_ivf_search_with_all_lists_is_exact() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = IvfStore(8, list_rows=50, train_rows=100)
    store.add(x, np.arange(500, dtype=np.int32), np.zeros(500, np.int32))
    assert store.n_lists == 10 and store.n_rows == 500
    q = rng.normal(size=(20, 8)).astype(np.float32)
    dist, slot, _ = store.search(q, 5, nprobe=10, ok_slot=np.ones(500, bool))
    exact = np.sort(np.linalg.norm(q[:, None] - x[None], axis=2), axis=1)[:, :5]
    np.testing.assert_allclose(dist, exact, rtol=2e-2)  # 8-bit storage
    centroids = kmeans(x, 4, seed=0)
    np.testing.assert_array_equal(centroids, kmeans(x, 4, seed=0))  # deterministic


def _rootsift_like(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray:
    x = rng.exponential(size=(n, dim)).astype(np.float32)  # histogram-like, peaks well under 0.35
    return np.sqrt(x / x.sum(axis=1, keepdims=True))


def test_8bit_kernel_finds_what_the_float_search_finds() -> None:
    """Non-negative (RootSIFT) stores use the onnxruntime 8-bit kernel; same neighbours."""
    from wildid.matching import _distance_kernel

    assert _distance_kernel.session() is not None, "the shipped kernel must load"
    rng = np.random.default_rng(5)
    x = _rootsift_like(rng, 3000)
    store = IvfStore(128, list_rows=200, train_rows=1000)
    store.add(x, np.arange(3000, dtype=np.int32) // 3, np.arange(3000, dtype=np.int32))
    assert store.nonneg and store.n_lists > 5
    q = np.vstack([x[:40] + 0.01, _rootsift_like(rng, 40)])
    ok = np.ones(1000, bool)
    ok[::4] = False  # excluded annotations must never come back
    dk, sk, kk = store.search(q, 5, nprobe=store.n_lists, ok_slot=ok)
    store.use_kernel = False
    df, sf, kf = store.search(q, 5, nprobe=store.n_lists, ok_slot=ok)
    np.testing.assert_allclose(dk, df, atol=4e-3)  # the kernel rounds the query to 7 bits too
    assert (kk[:, 0] == kf[:, 0]).mean() > 0.9  # the rest may swap: near-ties under 8-bit rounding
    assert ok[sk].all() and (sk == kk // 3).all()
    exact = np.linalg.norm(q[:, None] - x[None], axis=2)
    exact[:, ~ok[np.arange(3000) // 3]] = np.inf
    best = np.sort(exact, axis=1)[:, :5]
    np.testing.assert_allclose(dk, best, atol=5e-3)
    # the rows it returns really are (within rounding) the nearest ones
    np.testing.assert_allclose(np.take_along_axis(exact, kk, axis=1), best, atol=5e-3)


def test_signed_rows_use_the_kernel_and_find_the_same_neighbours() -> None:
    """Projected (signed) descriptors: the shifted-query kernel agrees with the float search."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = IvfStore(128, list_rows=300, train_rows=1000)
    store.add(x, (np.arange(3000) // 3).astype(np.int32), np.arange(3000, dtype=np.int32))
    assert not store.nonneg and store.n_lists > 5
    q = np.vstack([x[:40] + 0.02 * rng.normal(size=(40, 128)).astype(np.float32),
                   rng.normal(size=(40, 128)).astype(np.float32)])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.ones(1000, bool)
    ok[::4] = False
    dk, sk, kk = store.search(q, 5, nprobe=store.n_lists, ok_slot=ok)
    store.use_kernel = False
    df, sf, kf = store.search(q, 5, nprobe=store.n_lists, ok_slot=ok)
    np.testing.assert_allclose(dk, df, atol=1e-2)  # the query is rounded to 6 bits + sign
    clear = ok[np.arange(40) // 3]  # queries near a row that is not excluded
    assert (kk[:40][clear, 0] == np.arange(40)[clear]).all()  # a clear nearest one is found
    assert (kk[:, 0] == kf[:, 0]).mean() > 0.9  # the rest may swap near-ties
    assert ok[sk].all() and (sk == kk // 3).all()
    exact = np.linalg.norm(q[:, None] - x[None], axis=2)
    exact[:, ~ok[np.arange(3000) // 3]] = np.inf
    np.testing.assert_allclose(dk, np.sort(exact, axis=1)[:, :5], atol=1.5e-2)


def test_negated_rows_after_nonnegative_ones_turn_the_store_signed_not_clipped() -> None:
    """A negated channel (the ridge keypoints) arriving in a store of plain RootSIFT rows: the
    store turns signed, and both kinds are found as the float search finds them."""
    rng = np.random.default_rng(8)
    plain, ridge = _rootsift_like(rng, 1500), -_rootsift_like(rng, 1500)
    store = IvfStore(128, list_rows=200, train_rows=1000)
    store.add(plain, (np.arange(1500) // 3).astype(np.int32), np.arange(1500, dtype=np.int32))
    assert store.nonneg and store.n_lists > 1
    q = np.vstack([plain[:20] + 0.01, ridge[:20] - 0.01])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.ones(1000, bool)
    _, _, kk = store.search(q, 3, nprobe=store.n_lists, ok_slot=ok)
    assert (kk[:20, 0] == np.arange(20)).all()  # negative queries take the float path meanwhile
    store.add(ridge, (500 + np.arange(1500) // 3).astype(np.int32),
              1500 + np.arange(1500, dtype=np.int32))
    assert not store.nonneg
    dk, _, kk = store.search(q, 3, nprobe=store.n_lists, ok_slot=ok)
    assert (kk[:20, 0] == np.arange(20)).all() and (kk[20:, 0] == 1500 + np.arange(20)).all()
    store.use_kernel = False
    df, _, kf = store.search(q, 3, nprobe=store.n_lists, ok_slot=ok)
    np.testing.assert_allclose(dk, df, atol=1e-2)
    store.train()  # regrouping keeps the sums the signed kernel needs
    store.use_kernel = True
    _, _, kk = store.search(q, 3, nprobe=store.n_lists, ok_slot=ok)
    assert (kk[:20, 0] == np.arange(20)).all() and (kk[20:, 0] == 1500 + np.arange(20)).all()


@pytest.mark.parametrize("split", [False, True])  # whole rows; the coarse split
def test_kernel_calls_side_by_side_give_what_one_thread_gives(monkeypatch, split: bool) -> None:
    """The lists searched on two threads at once, or one at a time on two intra-op threads:
    the same neighbours, bit for bit, as one thread searching them in turn (each query row's
    probe cells belong to one list)."""
    from wildid.matching import _ivf, parallel

    rng = np.random.default_rng(9)
    x = np.vstack([_rootsift_like(rng, 2000), -_rootsift_like(rng, 2000)])
    if split:
        monkeypatch.setattr(_ivf, "SPLIT_ROWS", 1000)
        x = _structured_rows(rng, 4000)
    # past SPLIT_ROWS the lists are COARSE_LIST_GROWTH times larger
    store = IvfStore(128, list_rows=25 if split else 100, train_rows=1000)
    store.add(x, (np.arange(4000) // 4).astype(np.int32), np.arange(4000, dtype=np.int32))
    assert store.n_lists >= 16 and bool(store.split) is split
    q = np.vstack([x[:50] + 0.01, x[2000:2050] - 0.01])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.ones(1000, bool)
    ok[::5] = False
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    monkeypatch.setattr(_ivf, "SIDE_BY_SIDE_ROWS", 10**9)  # two calls at once, one thread each
    two = store.search(q, 4, nprobe=6, ok_slot=ok)
    monkeypatch.setattr(_ivf, "SIDE_BY_SIDE_ROWS", 0)  # one call at a time on two threads
    wide = store.search(q, 4, nprobe=6, ok_slot=ok)
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    one = store.search(q, 4, nprobe=6, ok_slot=ok)
    for a, b, c in zip(two, wide, one, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    assert ok[two[1][two[1] >= 0]].all()


def test_8bit_kernel_with_fewer_rows_than_k_and_all_masked() -> None:
    rng = np.random.default_rng(6)
    store = IvfStore(128)
    store.add(_rootsift_like(rng, 3), np.array([0, 0, 1], np.int32), np.arange(3, dtype=np.int32))
    dist, slot, _ = store.search(_rootsift_like(rng, 2), 5, nprobe=4, ok_slot=np.array([True, False]))
    assert (slot[:, :2] == 0).all() and (slot[:, 2:] == -1).all()
    assert np.isfinite(dist[:, :2]).all() and not np.isfinite(dist[:, 2:]).any()


def test_shipped_kernel_is_what_the_builder_makes() -> None:
    pytest.importorskip("onnx")
    from wildid.matching import _distance_kernel

    assert _distance_kernel.KERNEL_PATH.read_bytes() == \
        _distance_kernel.build_model().SerializeToString()


@pytest.mark.parametrize("train_rows", [10**9, 1000])  # one flat list; trained inverted lists
def test_kernel_bias_cache_follows_exclusions_and_new_rows(train_rows: int) -> None:
    """The per-list bias is cached between queries: an excluded annotation must still never
    come back, it must come back once allowed again, and rows added later must be found."""
    rng = np.random.default_rng(11)
    x = _rootsift_like(rng, 3000)
    store = IvfStore(128, list_rows=200, train_rows=train_rows)
    store.add(x, np.arange(3000, dtype=np.int32) // 3, np.arange(3000, dtype=np.int32))
    q = x[30:33] + 0.001  # the rows of slot 10
    ok = np.ones(1000, bool)
    _, slot, _ = store.search(q, 3, nprobe=store.n_lists, ok_slot=ok)
    assert (slot[:, 0] == 10).all()
    ok[10] = False
    _, slot, _ = store.search(q, 3, nprobe=store.n_lists, ok_slot=ok)
    assert (slot != 10).all()
    many = np.ones(1000, bool)
    many[::3] = False  # a third of the annotations ruled out: most lists masked
    many[10] = False
    _, slot, _ = store.search(q, 3, nprobe=store.n_lists, ok_slot=many)
    assert many[slot].all()
    ok[10] = True
    _, slot, _ = store.search(q, 3, nprobe=store.n_lists, ok_slot=ok)
    assert (slot[:, 0] == 10).all()
    new = _rootsift_like(rng, 3)
    store.add(new, np.full(3, 1000, np.int32), np.arange(3, dtype=np.int32))
    ok = np.ones(1001, bool)
    _, slot, kp = store.search(new, 1, nprobe=store.n_lists, ok_slot=ok)
    assert (slot[:, 0] == 1000).all() and (kp[:, 0] == np.arange(3)).all()


def _structured_rows(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray:
    """Unit rows whose variance sits on a few axes, as SIFT's does (the coarse split applies):
    a common direction, ten strong axes and weak noise; half of them negated, like a ridge
    channel."""
    basis = np.linalg.qr(np.random.default_rng(99).normal(size=(dim, 11)))[0].T
    x = basis[0] + rng.normal(size=(n, 10)) @ (0.25 * basis[1:]) + 0.01 * rng.normal(size=(n, dim))
    x[: n // 2] *= -1
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_coarse_split_finds_the_exact_neighbours(monkeypatch) -> None:
    """Rows with structure in a large store are kept on their principal axes, the kernel reads
    half of each, and the re-scored candidates are the exact nearest rows: kernel and float
    search agree."""
    from wildid.matching import _ivf

    monkeypatch.setattr(_ivf, "SPLIT_ROWS", 3000)
    rng = np.random.default_rng(12)
    x = _structured_rows(rng, 4000)
    store = IvfStore(128, list_rows=200, train_rows=1000)
    store.add(x[:1500], (np.arange(1500) // 4).astype(np.int32), np.arange(1500, dtype=np.int32))
    assert store.centroids is not None and store.split is None  # trained, below SPLIT_ROWS
    assert store.rot is None and store.lists[0].desc.shape[0] == 128
    store.add(x[1500:], (np.arange(1500, 4000) // 4).astype(np.int32),
              np.arange(1500, 4000, dtype=np.int32))  # 4,000 >= 2 x 1,500: retrained, split
    assert store.split and store.coarse == 64 and store.lists[0].desc.shape[0] == 64
    np.testing.assert_allclose(store.rot.T @ store.rot, np.eye(128), atol=1e-5)
    q = _structured_rows(np.random.default_rng(13), 60)
    q[:30] = x[:30] + 0.003 * rng.normal(size=(30, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.ones(1000, bool)
    ok[1::5] = False
    dk, sk, kk = store.search(q, 5, nprobe=store.n_lists, ok_slot=ok)
    store.use_kernel = False
    df, sf, kf = store.search(q, 5, nprobe=store.n_lists, ok_slot=ok)
    np.testing.assert_allclose(dk, df, atol=1e-5)  # the same decoded rows, re-scored in float
    assert (kk == kf).mean() > 0.97
    assert ok[sk].all()
    exact = np.linalg.norm(q[:, None] - x[None], axis=2)
    exact[:, ~ok[np.arange(4000) // 4]] = np.inf
    best = np.sort(exact, axis=1)[:, :5]
    np.testing.assert_allclose(dk, best, atol=1.5e-2)  # 8-bit rows (steps of ~0.008 here)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in
                    zip(kk, np.argsort(exact, axis=1)[:, :5], strict=True)]) > 0.95
    clear = ok[np.arange(30) // 4]
    assert (kk[:30][clear, 0] == np.arange(30)[clear]).all()


def test_coarse_split_survives_compaction_and_retraining(monkeypatch) -> None:
    """Compaction renumbers the rest rows and retraining regroups codes without refitting the
    axes: the same search gives the same distances before and after each."""
    from wildid.matching import _ivf

    monkeypatch.setattr(_ivf, "SPLIT_ROWS", 1000)
    rng = np.random.default_rng(14)
    x = _structured_rows(rng, 3000)
    store = IvfStore(128, list_rows=150, train_rows=1000)
    store.add(x, (np.arange(3000) // 3).astype(np.int32), np.arange(3000, dtype=np.int32))
    rot, scale = store.rot.copy(), store.scale
    q = x[::50] + 0.002
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    alive = np.ones(1000, bool)
    alive[::3] = False
    before = store.search(q, 4, nprobe=store.n_lists, ok_slot=alive)
    store.compact(alive)
    assert store.n_rows == 3000 - 3 * int((~alive).sum()) and store._gn == store.n_rows
    after = store.search(q, 4, nprobe=store.n_lists, ok_slot=alive)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[2], after[2])
    store.train()
    assert np.array_equal(store.rot, rot) and store.scale == scale
    again = store.search(q, 4, nprobe=store.n_lists, ok_slot=alive)
    np.testing.assert_allclose(again[0], before[0], atol=1e-6)
    new = _structured_rows(rng, 50)
    store.add(new, np.full(50, 1000, np.int32), np.arange(50, dtype=np.int32))
    ok = np.ones(1001, bool)
    ok[::3] = False
    _, slot, kp = store.search(new[:5], 1, nprobe=store.n_lists, ok_slot=ok)
    assert (slot[:, 0] == 1000).all() and (kp[:, 0] == np.arange(5)).all()


@pytest.mark.parametrize("use_kernel", [True, False])
def test_split_store_rows_go_to_their_nearest_centroid(monkeypatch, use_kernel: bool) -> None:
    """A split store assigns rows by the kernel on their whole-row codes against the centroids
    rotated back (or in float without the kernel): at the split, at a retraining and for rows
    added after; each row's list is its nearest centroid, up to rounding."""
    from wildid.matching import _ivf

    monkeypatch.setattr(_ivf, "SPLIT_ROWS", 2000)
    monkeypatch.setattr(_ivf, "_RECODE_ROWS", 700)  # several blocks
    rng = np.random.default_rng(15)
    x = _structured_rows(rng, 9000)
    store = IvfStore(128, list_rows=50, train_rows=1000)
    store.use_kernel = use_kernel
    for a in range(0, 9000, 500):  # trains at 1,000, 2,000 (the split), 4,000 and 8,000
        store.add(x[a:a + 500], (np.arange(a, a + 500) // 5).astype(np.int32),
                  np.arange(a, a + 500, dtype=np.int32))
    assert store.split and store.trained_at == 8000 and store.n_lists == 8000 // 200
    gap, same = [], 0
    for li, lst in enumerate(store.lists):
        lst.settle()
        rows = x[lst.kp[: lst.n]] @ store.rot  # kp: the row's number in x
        d2 = ((rows[:, None, :] - store.centroids[None]) ** 2).sum(axis=2)
        gap.extend(d2[:, li] - d2.min(axis=1))
        same += int((d2.argmin(axis=1) == li).sum())
    # the stored rows are rounded to 8 bits and the kernel rounds the centroids: near-ties
    # may go either way (measured: 98.8 % / 99.5 % same list, largest gap 0.007 / 0.003)
    assert same / 9000 > 0.97
    assert np.percentile(gap, 99) < 2e-3 and max(gap) < 0.02  # rows at distance² ~0.24


def test_isotropic_rows_keep_whole_rows(monkeypatch) -> None:
    """Rows without dominant axes (the coarse half would hold half the variance) keep the
    full-width layout, however large the store."""
    from wildid.matching import _ivf

    monkeypatch.setattr(_ivf, "SPLIT_ROWS", 1000)
    rng = np.random.default_rng(15)
    x = rng.normal(size=(2000, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = IvfStore(128, list_rows=200, train_rows=1000)
    store.add(x, np.arange(2000, dtype=np.int32), np.zeros(2000, np.int32))
    assert store.split is False and store.rot is None and store.lists[0].desc.shape[0] == 128


def test_lists_are_fine_below_split_rows_and_coarse_past_it(monkeypatch) -> None:
    """Below SPLIT_ROWS the lists hold ``list_rows`` rows and a query row scans FINE_PROBES times
    the probes asked for; from the first training past it, lists are COARSE_LIST_GROWTH times
    larger and the probes are as asked (the same neighbour recall, see _ivf)."""
    from wildid.matching import _ivf

    monkeypatch.setattr(_ivf, "SPLIT_ROWS", 3000)
    rng = np.random.default_rng(21)
    x = _rootsift_like(rng, 4000)  # isotropic enough: whole rows, so only the lists change
    store = IvfStore(128, list_rows=50, train_rows=1000)
    probed: list[int] = []
    search_lists = store._search_lists_8bit

    def spy(kernel, q, k, flat, *rest):
        probed.append(len(np.unique(flat)))
        return search_lists(kernel, q, k, flat, *rest)

    monkeypatch.setattr(store, "_search_lists_8bit", spy)
    store.add(x[:2000], (np.arange(2000) // 4).astype(np.int32), np.arange(2000, dtype=np.int32))
    assert store.trained_at == 2000 and store.n_lists == 2000 // 50 and not store.coarse_lists
    ok = np.ones(1000, bool)
    store.search(x[:1], 3, nprobe=5, ok_slot=ok)
    assert probed[-1] == 5 * _ivf.FINE_PROBES
    store.add(x[2000:], (np.arange(2000, 4000) // 4).astype(np.int32),
              np.arange(2000, 4000, dtype=np.int32))
    assert store.trained_at == 4000 and store.coarse_lists
    assert store.n_lists == 4000 // (50 * _ivf.COARSE_LIST_GROWTH)
    store.search(x[:1], 3, nprobe=5, ok_slot=ok)
    assert probed[-1] == 5
    _, slot, kp = store.search(x[3990:4000], 1, nprobe=store.n_lists, ok_slot=np.ones(1000, bool))
    assert slot[:, 0].tolist() == (np.arange(3990, 4000) // 4).tolist()
    assert kp[:, 0].tolist() == list(range(3990, 4000))


@pytest.mark.parametrize("signed", [False, True])
def test_kernel_assigns_codes_to_the_nearest_centroid(signed: bool) -> None:
    """The 8-bit kernel's assignment of coded rows (k-means and every training) agrees with the
    float one except within rounding of a tie, for plain and two-channel (negated) stores."""
    from wildid.matching import _distance_kernel
    from wildid.matching._ivf import nearest_centroid, nearest_centroid_codes

    rng = np.random.default_rng(31)
    x = _rootsift_like(rng, 3000)
    if signed:
        x[1500:] *= -1
    scale = 127.0 / (4.0 / np.sqrt(128))
    codes = np.clip(np.rint(x * scale), -127, 127).astype(np.int8)
    vec = codes.astype(np.float32) / np.float32(scale)
    centroids = kmeans(vec, 40, seed=1)
    want = nearest_centroid(vec, centroids)
    got = nearest_centroid_codes(_distance_kernel.session(), codes, scale, centroids, signed)
    agree = got == want
    assert agree.mean() > 0.97
    # where they differ, the kernel's centroid is as near as the best, within rounding
    d = ((vec[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    rows = np.flatnonzero(~agree)
    assert (d[rows, got[rows]] - d[rows, want[rows]] < 0.02 * d[rows, want[rows]] + 1e-3).all()
    if signed:  # the channels never share a centroid's side
        assert (np.sign(centroids[got].sum(axis=1)) == np.sign(x.sum(axis=1))).all()


def test_training_without_the_kernel_assigns_in_float() -> None:
    """Without the 8-bit kernel (a broken install) training decodes the rows and assigns them
    in float32; the exact search finds the same neighbours either way."""
    rng = np.random.default_rng(41)
    x = np.vstack([_rootsift_like(rng, 1500), -_rootsift_like(rng, 1500)])
    stores = []
    for use_kernel in (True, False):
        store = IvfStore(128, list_rows=50, train_rows=1000)
        store.use_kernel = use_kernel
        store.add(x, (np.arange(3000) // 4).astype(np.int32), np.arange(3000, dtype=np.int32))
        assert store.trained_at == 3000 and store.n_lists == 60
        stores.append(store)
    q = x[::97] + 0.01
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.ones(750, bool)
    (_, s1, k1), (_, s2, k2) = (st.search(q, 3, nprobe=st.n_lists, ok_slot=ok) for st in stores)
    np.testing.assert_array_equal(k1[:, 0], np.arange(0, 3000, 97))
    np.testing.assert_array_equal(k2[:, 0], k1[:, 0])
