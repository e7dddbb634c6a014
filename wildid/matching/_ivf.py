"""Inverted-file nearest-neighbour store for local descriptors (NumPy only).

Why not FLANN's kd-forest: on 1.2 million RootSIFT descriptors of nyala photos, a 4-tree forest
searched with 64 checks found only 17 % of the true 5 nearest neighbours (46 % at 512 checks,
0.5 ms per descriptor).  An inverted file — rows grouped by their nearest k-means centroid, a
query scanning the rows of its ``nprobe`` nearest centroids exactly — found 82 % at 8 of 1024
lists (0.35 ms) and 92 % at 16, and that raised LNBNN top-1 on lion crops by 4 points.

It is also naturally incremental: a new row is appended to the list of its nearest centroid;
removal is a per-annotation tombstone (the caller's ``ok_slot`` mask) with an occasional
compaction.  The codebook is trained once the store holds ``train_rows`` rows and retrained only
when the store has grown ``retrain_growth`` times since (amortised cost per row stays constant).
Below ``train_rows`` the store is one flat list searched exactly.
"""

from __future__ import annotations

import numpy as np

from wildid.matching import _distance_kernel, parallel

__all__ = ["IvfStore", "kmeans", "nearest_centroid", "smallest_k"]

# Below this many query rows per probed list on average, the lists are searched side by side
# by single-threaded calls; above it, one call at a time on all the threads (_kernel_lists).
# Measured on a 2-core Intel AVX-512 machine, nyala, search alone: ~19 rows per list (10,000
# annotations) 0.96 -> 0.88 s side by side; ~150 (1,186) 0.57 -> 0.66 s, ~600 (300) 0.57 ->
# 0.63 s, ~2,400 (40) 0.24 -> 0.26 s, all slower side by side.
SIDE_BY_SIDE_ROWS = 64


def nearest_centroid(x: np.ndarray, centroids: np.ndarray, block: int = 32768) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) of every row of ``x``."""
    cn = (centroids * centroids).sum(axis=1)
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), block):
        out[start:start + block] = np.argmin(cn[None, :] - 2.0 * (x[start:start + block] @ centroids.T),
                                             axis=1)
    return out


def kmeans(x: np.ndarray, k: int, iterations: int = 10, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means with a seeded random start (deterministic for a given input)."""
    rng = np.random.default_rng(seed)
    k = min(k, len(x))
    centroids = x[rng.choice(len(x), k, replace=False)].astype(np.float32)
    for _ in range(iterations):
        assign = nearest_centroid(x, centroids)
        counts = np.bincount(assign, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        if (~filled).any():  # re-seed empty clusters on random rows
            centroids[~filled] = x[rng.choice(len(x), int((~filled).sum()), replace=False)]
    return centroids


def smallest_k(d: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` smallest entries of each row, smallest first.

    ``k`` passes of a vectorised argmin: for the k <= 10 that LNBNN needs this is 5-15x faster
    than ``np.argpartition``, whose per-row selection dominated the query time.
    """
    k = min(k, d.shape[1])
    work = d.copy()
    rows = np.arange(len(work))
    out = np.empty((len(work), k), np.int64)
    for j in range(k):
        col = work.argmin(axis=1)
        out[:, j] = col
        work[rows, col] = np.inf
    return out


def _unit_rows(x: np.ndarray) -> bool:
    """All rows of unit length (local descriptors are): the signed kernel may clip them."""
    if not len(x):
        return True
    return bool(np.all(np.abs((x * x).sum(axis=1) - 1.0) < 1e-2))


class _List:
    """A growable block of rows (8-bit descriptor, annotation slot, keypoint index).

    Descriptors are stored *transposed* (``desc[:, :n]`` is [dim, n]): the 8-bit kernel takes
    the list as the right-hand operand of its product (see :mod:`._distance_kernel`), and the
    whole buffer is passed without a copy -- columns past ``n`` are masked by an infinite bias.
    Capacity grows by a sixteenth, so that masked tail stays small: the kernel reads it too,
    and growing by a quarter left lists 14 % longer than their rows at 10,000 nyala
    annotations (copying a list on growth is cheap next to reading it at every query).
    """

    __slots__ = ("biases", "columns", "desc", "kp", "n", "norms", "slot", "sums")

    def __init__(self, dim: int, dtype: np.dtype, capacity: int = 64, signed: bool = False) -> None:
        self.desc = np.zeros((dim, capacity), dtype)
        self.norms = np.zeros(capacity, np.float32)
        # each row's sum, which the signed stores' kernel takes back from its shifted queries
        self.sums = np.zeros(capacity if signed else 0, np.float32)
        self.columns = ("norms", "slot", "kp") + (("sums",) if signed else ())
        self.slot = np.full(capacity, -1, np.int32)
        self.kp = np.full(capacity, -1, np.int32)
        self.n = 0
        self.biases: dict[tuple[float, float], np.ndarray] = {}  # see bias()

    @property
    def capacity(self) -> int:
        return len(self.slot)

    def append(self, desc: np.ndarray, norms: np.ndarray, slot: np.ndarray, kp: np.ndarray) -> None:
        need = self.n + len(desc)
        if need > self.capacity:
            cap = max(need, self.capacity + self.capacity // 16, 64)
            grown = np.zeros((self.desc.shape[0], cap), self.desc.dtype)
            grown[:, : self.n] = self.desc[:, : self.n]
            self.desc = grown
            for name in self.columns:
                old = getattr(self, name)
                new = np.full(cap, -1 if name in ("slot", "kp") else 0, old.dtype)
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
        end = self.n + len(desc)
        self.desc[:, self.n:end] = desc.T
        self.norms[self.n:end] = norms
        if self.sums.size:
            self.sums[self.n:end] = desc.sum(axis=1, dtype=np.int32)
        self.slot[self.n:end] = slot
        self.kp[self.n:end] = kp
        self.n = end
        self.biases.clear()

    def make_signed(self) -> None:
        """Keep the row sums the signed kernel needs (a store that was non-negative until now:
        its 0..127 rows are valid signed rows at the same scale)."""
        if "sums" not in self.columns:
            self.sums = self.desc.sum(axis=0, dtype=np.int32).astype(np.float32)
            self.columns = (*self.columns, "sums")
            self.biases.clear()

    def rows(self) -> np.ndarray:
        """The live descriptors as [n, dim] (a copy)."""
        return np.ascontiguousarray(self.desc[:, : self.n].T)

    def keep(self, mask: np.ndarray) -> None:
        n = int(mask.sum())
        self.desc[:, :n] = self.desc[:, : self.n][:, mask]
        for name in self.columns:
            arr = getattr(self, name)
            arr[:n] = arr[: self.n][mask]
        self.n = n
        self.biases.clear()

    def bias(self, unit: np.float32, shift: np.float32) -> np.ndarray:
        """The kernel's per-row bias ``|row|^2 x unit + shift x row sum``, +inf past ``n``.

        Cached per (unit, shift) until the list changes: at 10,000 nyala annotations a query
        touches ~1,300 lists of ~16,000 rows, and recomputing it for each took 0.3 s of a
        2.3 s identification (2-core AVX2 machine).
        """
        key = (float(unit), float(shift))
        out = self.biases.get(key)
        if out is None:
            out = np.full(self.capacity, np.inf, np.float32)
            out[: self.n] = self.norms[: self.n] * unit
            if shift:
                out[: self.n] += shift * self.sums[: self.n]
            self.biases[key] = out
        return out


class IvfStore:
    """Rows grouped by nearest centroid; exact search inside the probed lists.

    Descriptors are kept as 8-bit integers (``int8``) with a scale set by the dimension: 128
    bytes per row instead of 512. Non-negative ones such as RootSIFT use 7 bits (0..127), which
    the onnxruntime kernel multiplies without saturating (:mod:`._distance_kernel`); measured on
    the development photos, LNBNN ranks as with 8 bits. Signed ones (projected descriptors) use
    -127..127 and the same kernel with shifted queries (:meth:`_search_lists_signed`).

    List size: a query scans its ``nprobe`` nearest lists, one matrix product per list. With
    ~1000-row lists those products are small and their fixed cost dominates (worst on a busy
    2-core machine, where BLAS threads wait for each other); 8000-row lists with 6 probes found
    the true 3 nearest neighbours as often (96 % vs 95.6 % with 1000 rows and 16 probes, lion
    photos) in a seventh of the time.
    """

    def __init__(self, dim: int, list_rows: int = 8000, train_rows: int = 20000,
                 max_lists: int = 4096, retrain_growth: float = 2.0, seed: int = 0) -> None:
        self.dim = dim
        self.list_rows, self.train_rows, self.max_lists = list_rows, train_rows, max_lists
        self.retrain_growth, self.seed = retrain_growth, seed
        self.centroids: np.ndarray | None = None
        self.dtype: np.dtype | None = None
        self.scale = 1.0
        self.lists: list[_List] = []
        self.trained_at = 0
        self.nonneg = True  # set by the first rows: non-negative stores use the kernel
        self.use_kernel = True  # False: always the NumPy path (tests compare the two)
        # the lists holding each slot's rows: a query masks excluded slots only in those
        self._slot_lists: dict[int, np.ndarray] = {}

    def _quantise(self, desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """8-bit rows and the squared norms of what they decode to."""
        if self.dtype is None:
            # the scale depends only on the dimension (unit rows: a component above 4/sqrt(dim)
            # is rare; RootSIFT peaks at 0.34 of 0.35), so every store quantises alike
            self.nonneg = not bool((desc < 0).any())
            peak = min(1.0, 4.0 / np.sqrt(self.dim))
            self.dtype = np.dtype(np.int8)
            self.scale = 127.0 / peak
            self.lists = [_List(self.dim, self.dtype, signed=not self.nonneg)]
        elif self.nonneg and bool((desc < 0).any()):
            # signed rows after non-negative ones (a profile that adds a negated channel to
            # features already stored): the store turns signed rather than clip them to zero
            self.nonneg = False
            for lst in self.lists:
                lst.make_signed()
        lo, hi = (0, 127) if self.nonneg else (-127, 127)
        q = np.clip(np.rint(desc * self.scale), lo, hi).astype(self.dtype)
        deq = q.astype(np.float32) / np.float32(self.scale)
        return q, (deq * deq).sum(axis=1)

    @property
    def n_rows(self) -> int:
        return sum(lst.n for lst in self.lists)

    @property
    def n_lists(self) -> int:
        return len(self.lists)

    def add(self, desc: np.ndarray, slot: np.ndarray, kp: np.ndarray) -> None:
        """Append rows; train or retrain the codebook when the store has grown enough."""
        desc = np.ascontiguousarray(desc, np.float32)
        if len(desc) == 0:
            return
        qdesc, norms = self._quantise(desc)
        self._insert(desc, qdesc, norms, slot, kp)
        n = self.n_rows
        if (self.centroids is None and n >= self.train_rows) or (
                self.centroids is not None and n >= self.retrain_growth * self.trained_at
                and len(self.lists) < self.max_lists):
            self.train()

    def _insert(self, desc: np.ndarray, qdesc: np.ndarray, norms: np.ndarray, slot: np.ndarray,
                kp: np.ndarray) -> None:
        if self.centroids is None:
            self.lists[0].append(qdesc, norms, slot, kp)
            self._note_lists(slot, np.zeros(len(slot), np.int64))
            return
        assign = nearest_centroid(desc, self.centroids)
        self._note_lists(slot, assign)
        order = np.argsort(assign, kind="stable")
        bounds = np.flatnonzero(np.r_[True, assign[order][1:] != assign[order][:-1]])
        for a, b in zip(bounds, np.r_[bounds[1:], len(order)], strict=False):
            rows = order[a:b]
            self.lists[int(assign[rows[0]])].append(qdesc[rows], norms[rows], slot[rows], kp[rows])

    def _note_lists(self, slot: np.ndarray, assign: np.ndarray) -> None:
        """Record which lists now hold rows of each slot in ``slot``."""
        pairs = np.unique((slot.astype(np.int64) << 32) | assign.astype(np.int64))
        slots, lists = pairs >> 32, pairs & 0xFFFFFFFF
        bounds = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
        for a, b in zip(bounds, np.r_[bounds[1:], len(pairs)], strict=False):
            key, new = int(slots[a]), lists[a:b]
            old = self._slot_lists.get(key)
            self._slot_lists[key] = new if old is None else np.union1d(old, new)

    def _lists_to_mask(self, ok_slot: np.ndarray) -> np.ndarray:
        """Which lists hold rows of slots ``ok_slot`` rules out (compacted slots hold none)."""
        need = np.zeros(len(self.lists), bool)
        for s in np.flatnonzero(~ok_slot).tolist():
            lists = self._slot_lists.get(s)
            if lists is not None:
                need[lists] = True
        return need

    def train(self) -> None:
        """(Re)build the codebook on the current rows and regroup every row."""
        qdesc, norms, slot, kp = self._raw_rows()
        if len(qdesc) == 0:
            return
        desc = qdesc.astype(np.float32) / np.float32(self.scale)
        n_lists = int(np.clip(len(desc) // self.list_rows, 1, self.max_lists))
        rng = np.random.default_rng(self.seed)
        sample = desc if len(desc) <= 64 * n_lists else desc[rng.choice(len(desc), 64 * n_lists,
                                                                         replace=False)]
        self.centroids = kmeans(sample, n_lists, seed=self.seed)
        assert self.dtype is not None
        self.lists = [_List(self.dim, self.dtype, signed=not self.nonneg)
                      for _ in range(len(self.centroids))]
        self.trained_at = len(desc)
        self._slot_lists = {}
        self._insert(desc, qdesc, norms, slot, kp)

    def _raw_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.concatenate([lst.rows() for lst in self.lists]),
                np.concatenate([lst.norms[: lst.n] for lst in self.lists]),
                np.concatenate([lst.slot[: lst.n] for lst in self.lists]),
                np.concatenate([lst.kp[: lst.n] for lst in self.lists]))

    @property
    def nbytes(self) -> int:
        """Memory held by the rows (capacity included) and the codebook."""
        rows = sum(lst.desc.nbytes + sum(getattr(lst, c).nbytes for c in lst.columns)
                   + sum(b.nbytes for b in lst.biases.values()) for lst in self.lists)
        return rows + (0 if self.centroids is None else self.centroids.nbytes)

    def compact(self, alive_slot: np.ndarray) -> None:
        """Physically drop the rows of removed annotations (tombstoned in ``alive_slot``)."""
        for lst in self.lists:
            lst.keep(alive_slot[lst.slot[: lst.n]])
        for s in [s for s in self._slot_lists if not alive_slot[s]]:
            del self._slot_lists[s]
        if self.centroids is not None and self.n_rows * self.retrain_growth < self.trained_at:
            self.train()  # shrunk a lot: fewer, fuller lists

    def search(self, query: np.ndarray, k: int, nprobe: int, ok_slot: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distance, slot, kp) of the ``k`` nearest ok rows in the probed lists, nearest first."""
        q = np.ascontiguousarray(query, np.float32)
        nq = len(q)
        if self.centroids is None:
            probes = np.zeros((nq, 1), np.int64)
        else:
            nprobe = min(nprobe, len(self.centroids))
            dc = (self.centroids * self.centroids).sum(1)[None, :] - 2.0 * (q @ self.centroids.T)
            probes = np.argpartition(dc, nprobe - 1, axis=1)[:, :nprobe]
        n_probe = probes.shape[1]
        best_d = np.full((nq, n_probe, k), np.inf, np.float32)
        best_s = np.full((nq, n_probe, k), -1, np.int32)
        best_k = np.full((nq, n_probe, k), -1, np.int32)
        flat = probes.ravel()
        qid = np.repeat(np.arange(nq), n_probe)
        pos = np.tile(np.arange(n_probe), nq)
        order = np.argsort(flat, kind="stable")
        flat, qid, pos = flat[order], qid[order], pos[order]
        starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]]) if len(flat) else flat
        kernel = _distance_kernel.session() if self.use_kernel else None
        if kernel is not None and not self.nonneg and _unit_rows(q):
            self._search_lists_signed(kernel, q, k, flat, qid, pos, starts, ok_slot,
                                      best_d, best_s, best_k)
        elif kernel is not None and self.nonneg and not bool((q < 0).any()):
            self._search_lists_8bit(kernel, q, k, flat, qid, pos, starts, ok_slot,
                                    best_d, best_s, best_k)
        else:
            self._search_lists_float(q, k, flat, qid, pos, starts, ok_slot, best_d, best_s, best_k)
        best_d = best_d.reshape(nq, -1)
        pick = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        dist = np.sqrt(np.maximum(np.take_along_axis(best_d, pick, axis=1), 0.0))
        slot = np.take_along_axis(best_s.reshape(nq, -1), pick, axis=1)
        kp = np.take_along_axis(best_k.reshape(nq, -1), pick, axis=1)
        slot[~np.isfinite(dist)] = -1
        return dist.astype(np.float32), slot, kp

    def _search_lists_8bit(self, kernel: object, q: np.ndarray, k: int, flat: np.ndarray,
                           qid: np.ndarray, pos: np.ndarray, starts: np.ndarray,
                           ok_slot: np.ndarray, best_d: np.ndarray, best_s: np.ndarray,
                           best_k: np.ndarray) -> None:
        """Each probed list against its queries in 8-bit integers (see _distance_kernel).

        The query is quantised like the rows (the error is as small as the rows' own), so the
        kernel's products are exact integers; distances come back in float32.
        """
        scale = np.float32(self.scale)
        qq = np.clip(np.rint(q * scale), 0, 127).astype(np.uint8)
        qqn = (qq.astype(np.float32) ** 2).sum(axis=1) / (scale * scale)
        self._kernel_lists(kernel, qq, qqn, scale * scale, 0.0, k, flat, qid, pos, starts,
                           ok_slot, best_d, best_s, best_k)

    def _search_lists_signed(self, kernel: object, q: np.ndarray, k: int, flat: np.ndarray,
                             qid: np.ndarray, pos: np.ndarray, starts: np.ndarray,
                             ok_slot: np.ndarray, best_d: np.ndarray, best_s: np.ndarray,
                             best_k: np.ndarray) -> None:
        """Signed rows (e.g. projected descriptors) through the same unsigned x signed kernel.

        The query is quantised to -63..63 at half the rows' scale and shifted by +64 into the
        kernel's unsigned 1..127; the shift adds ``64 x row sum`` to every dot product, which
        the bias takes back (``+ 128 x row sum`` against the kernel's ``- 2 x dot``). Pair sums
        stay within 2 x 127 x 127, so nothing saturates and the products stay exact. Only for
        unit-length queries: their few components beyond the rows' peak are clipped as the
        stored rows' are (other queries take the float search).
        """
        s_row = np.float32(self.scale)
        s_q = s_row / np.float32(2.0)
        qs_int = np.clip(np.rint(q * s_q), -63, 63)
        qq = (qs_int + 64).astype(np.uint8)
        qqn = (qs_int.astype(np.float32) ** 2).sum(axis=1) / (s_q * s_q)
        self._kernel_lists(kernel, qq, qqn, s_row * s_q, 128.0, k, flat, qid, pos, starts,
                           ok_slot, best_d, best_s, best_k)

    def _kernel_lists(self, kernel: object, qq: np.ndarray, q_norm2: np.ndarray, unit: float,
                      shift_bias: float, k: int, flat: np.ndarray, qid: np.ndarray,
                      pos: np.ndarray, starts: np.ndarray, ok_slot: np.ndarray,
                      best_d: np.ndarray, best_s: np.ndarray, best_k: np.ndarray) -> None:
        """The kernel over each probed list: ``dist2 = (bias - 2 dot) / unit + |q|^2``, where
        ``bias = |row|^2 x unit + shift_bias x row sum`` (``unit``: the product of the two
        quantisation scales)."""
        unit32, shift32 = np.float32(unit), np.float32(shift_bias)
        masked = self._lists_to_mask(ok_slot)
        jobs = [(int(flat[a]), a, b) for a, b in zip(starts, np.r_[starts[1:], len(flat)],
                                                      strict=False)
                if self.lists and self.lists[int(flat[a])].n]

        n_workers = parallel.workers()
        # Hundreds of query rows per list (a small catalog: few lists, each probed by many of
        # the query's rows): the product is the cost, and one call on all the threads does
        # it fastest. A few rows per list (a large catalog: every list is probed by some
        # row): reading the list is the cost, and two single-threaded calls at once on
        # different lists keep both cores busier (wildid.matching.parallel).
        side_by_side = n_workers > 1 and len(flat) < SIDE_BY_SIDE_ROWS * len(jobs)
        sess = _distance_kernel.session(1 if side_by_side else n_workers) or kernel

        def run(chunk: list[tuple[int, int, int]]) -> None:
            # each (query row, probe) cell belongs to one list, so chunks write disjoint cells
            for li, a, b in chunk:
                lst = self.lists[li]
                qs, ps = qid[a:b], pos[a:b]
                n = lst.n
                bias = lst.bias(unit32, shift32)
                if masked[li]:
                    bias = bias.copy()
                    bias[:n][~ok_slot[lst.slot[:n]]] = np.inf
                kk = min(k, n)
                part, top = _distance_kernel.nearest(sess, lst.desc, qq[qs], bias, kk)
                best_d[qs, ps, :kk] = part / unit32 + q_norm2[qs, None]
                best_s[qs, ps, :kk] = lst.slot[top]
                best_k[qs, ps, :kk] = lst.kp[top]

        if not side_by_side:
            run(jobs)
            return
        # small interleaved chunks balance the two threads whatever the lists' sizes
        n_chunks = min(len(jobs), 8 * n_workers)
        parallel.map_side_by_side(run, [jobs[i::n_chunks] for i in range(n_chunks)])

    def _search_lists_float(self, q: np.ndarray, k: int, flat: np.ndarray, qid: np.ndarray,
                            pos: np.ndarray, starts: np.ndarray, ok_slot: np.ndarray,
                            best_d: np.ndarray, best_s: np.ndarray, best_k: np.ndarray) -> None:
        """Each probed list against its queries with BLAS on rows converted to float32."""
        qn = (q * q).sum(axis=1)
        q2 = q * np.float32(-2.0 / self.scale)  # folds the 8-bit scale into the query
        for a, b in zip(starts, np.r_[starts[1:], len(flat)], strict=False):
            lst = self.lists[int(flat[a])] if self.lists else None
            if lst is None or lst.n == 0:
                continue
            qs, ps = qid[a:b], pos[a:b]
            d2 = q2[qs] @ lst.desc[:, : lst.n].astype(np.float32)
            d2 += lst.norms[None, : lst.n]
            d2[:, ~ok_slot[lst.slot[: lst.n]]] = np.inf
            kk = min(k, lst.n)
            top = smallest_k(d2, kk)
            best_d[qs, ps, :kk] = np.take_along_axis(d2, top, axis=1) + qn[qs, None]
            best_s[qs, ps, :kk] = lst.slot[top]
            best_k[qs, ps, :kk] = lst.kp[top]
