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

Loading a catalog (the engine indexes every labelled annotation at its first match after a
start) is mostly assigning rows to lists: each training re-assigns every row, so a store of
n rows has assigned ~3n rows to up to ~1,300 centroids by then. The 8-bit kernel does it (k =
1, :func:`nearest_centroid_codes`), for split stores too, from the rows' whole-row codes
against the centroids rotated back; the caller passes annotations in batches
(``LocalIndex.add_many``) and each list queues what is appended until it is next read
(``_List.settle``). 10,000 nyala annotations: see docs/identification.md, Scale.

Coarse pass, exact re-scoring (large stores, see ``SPLIT_ROWS``): the kernel reads only half
of each row. At its first training past ``SPLIT_ROWS`` rows the store fits the rows' principal
axes once and keeps every row rotated onto them: axes 1..dim/2 (8-bit, one scale) are the
*coarse* part, stored transposed for the kernel; axis 0 (float32; in a two-channel nyala store
it spans about -0.94..0.94, the channel) is a column of each list; the remaining axes (8-bit, a
scale each: they span a tenth as much, so their steps are 3x finer than before) are the
*rest*, stored row-major in one store-wide array. The kernel keeps each query row's
``COARSE_K`` best of every probed list; their coarse distance and axis 0's are recomputed
against the float query (the list is still in cache), the best ``COARSE_K`` of all probes get
the rest's distance from one gather, and the ``k`` nearest of those are returned. Why: at
10,000 nyala annotations a query reads nearly the whole store, and the kernel's time follows
the bytes it reads (with few query rows per list; with hundreds, writing and ranking the
[rows x list] distances is the cost, whatever the width). Measured on the development nyala
rows (2.37 M, 300 query rows, brute force, 16 candidates): the five exact float nearest
neighbours are found 95.2 % of the time this way, against 92.9 % by the full-width 8-bit search
it replaced (its query rounded to 7 bits); axes 0..63 as the coarse part gave 91 % (axis 0's
range forces a 2.5x coarser step) and 2..65 90 %. (That split was coded from the float rows;
as shipped it re-codes the 8-bit rows, and LNBNN alone on the development queries gave 34.1 /
60.7 % top-1 / top-5 against 33.5 / 61.6 % for whole rows.) The rows stay 128 bytes plus a
float and a row number. The axes are fitted once, on the rows present then, and kept: refitting would
re-quantise every row again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wildid.matching import _distance_kernel, parallel

__all__ = ["IvfStore", "kmeans", "nearest_centroid", "nearest_centroid_codes", "smallest_k"]

# Below this many query rows per probed list on average, the lists are searched side by side
# by single-threaded calls; above it, one call at a time on all the threads (_kernel_lists).
# Measured on a 2-core Intel AVX-512 machine, nyala, search alone: ~19 rows per list (10,000
# annotations) 0.96 -> 0.88 s side by side; ~150 (1,186) 0.57 -> 0.66 s, ~600 (300) 0.57 ->
# 0.63 s, ~2,400 (40) 0.24 -> 0.26 s, all slower side by side.
SIDE_BY_SIDE_ROWS = 64

# Candidates per query row that the coarse pass keeps from each list, and then from all its
# lists, for exact re-scoring. LNBNN alone on the development nyala queries (harness, mirror
# off): 8 -> 33.2 / 61.0 % top-1 / top-5, 12 and 16 -> 34.5 / 61.0 % (whole rows 33.8 /
# 60.7 %); a larger k costs the kernel's top-k ~10 % at 150 query rows per list.
COARSE_K = 12
# The split needs the coarse axes to carry most of the rows' variance beyond axis 0 (95 % for
# the development nyala rows); for rows without such structure (isotropic ones, or a whitening
# projection) the coarse pass would miss neighbours, and the store keeps whole rows.
MIN_COARSE_VARIANCE = 0.85
# ... and it pays only in large stores, where each probed list gets few query rows (a kernel
# call on 19 rows of a query: 0.63 -> 0.40 ms; on 150 rows it costs as much at either width,
# and the 12 candidates and their re-scoring make it ~10 % slower). With 4,000 query rows
# (nyala, mirrored) x 6 probes over lists of ~8,000 rows, that is from ~5 M rows (~2,500
# nyala annotations) on: the split happens at the first training past this many rows
# (40,000 x 2^7 = 5.12 M with the default growth). Smaller stores keep whole rows, searched
# as before it (small catalogs were 6-15 % slower split, measured with bench_scale at 12, 100
# and 1,000 annotations). The rows are then re-coded from their 8-bit codes once; the
# rounding this adds is smaller than the query's own rounding that the re-scoring removes.
SPLIT_ROWS = 4_000_000

# Lists: below SPLIT_ROWS ``list_rows`` rows each and ``FINE_PROBES`` times the probes asked for;
# from the first training past it on, ``COARSE_LIST_GROWTH`` times as many rows and the probes
# asked for. A query row's neighbour recall follows probes / sqrt(lists), so 4x finer lists
# with 2x the probes keep it while each query row scans half the rows. That halves the
# distances the kernel writes and ranks, its cost in small and mid-sized catalogs (hundreds of
# query rows per list). Measured on a 2-core Intel AVX-512 machine, nyala, first stage alone
# (p50), recall of the exact 4 nearest over 5 queries, 8,000-row lists x 6 probes -> 2,000 x
# 12: 100 annotations 0.35 -> 0.18 s (recall 0.999 / 0.996), 1,000 0.38 -> 0.28 s (0.934 /
# 0.931), 2,400 0.50 -> 0.37 s (0.893 / 0.891). In large stores every list is read by some
# query row whatever the partition, the cost follows the bytes read, and the finer lists
# only cost training time (4x the centroids to assign every row to), hence coarse lists there.
# The whole pipeline, both partitions in one process (docs/identification.md, Scale): 100
# annotations 0.80 -> 0.59 s, 1,000 0.95 -> 0.79 s, 2,500 1.12 -> 0.85 s per identification.
# With 2,000-row lists the first training waits for 40,000 rows (``train_rows``): below that
# every list would be probed, and many calls on short lists cost more than one on a long one.
FINE_PROBES = 2
COARSE_LIST_GROWTH = 4
# Rows decoded to floats at a time where a training re-codes or assigns a split store's rows
# (128 MB as float32): never the whole store at once.
_RECODE_ROWS = 1 << 18


def _block_rows(n_centroids: int) -> int:
    """Rows per block when assigning rows to centroids: ~16 MB of distances each."""
    return max(256, (1 << 22) // max(1, n_centroids))


def _rounded(x: np.ndarray, scale: float | np.ndarray, lo: int = -127, hi: int = 127
             ) -> np.ndarray:
    """``x x scale`` rounded and clipped to lo..hi, as a new float32 array (rounded in place:
    every row of a catalog passes here while it loads)."""
    r = x * np.asarray(scale, np.float32)
    np.rint(r, out=r)
    np.clip(r, lo, hi, out=r)
    return r


def _codes_and_norms(x: np.ndarray, scale: float, lo: int = -127) -> tuple[np.ndarray, np.ndarray]:
    """8-bit codes of ``x`` at ``scale`` (lo..127) and the squared norms of what they decode to."""
    r = _rounded(x, scale, lo)
    norms = np.einsum("ij,ij->i", r, r)
    norms /= np.float32(scale) ** 2
    return r.astype(np.int8), norms


def _shifted_half(x: np.ndarray, scale: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Signed values at ``scale`` rounded to -63..63 and shifted into the kernel's unsigned
    1..127: (the rounded values, the uint8 operand). The shift adds ``64 x sum`` of the other
    operand to every dot product, which the caller's bias takes back."""
    half = _rounded(x, scale, -63, 63)
    return half, (half + 64).astype(np.uint8)


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) of every row of ``x``.

    Blocks of rows run side by side (NumPy's BLAS is kept to one thread, see
    ``wildid/__init__.py``): a training assigns every row of the store, millions, to up to a
    few thousand centroids.
    """
    cn = (centroids * centroids).sum(axis=1)
    block = _block_rows(len(centroids))
    out = np.empty(len(x), np.int64)

    def assign(start: int) -> None:
        out[start:start + block] = np.argmin(cn[None, :] - 2.0 * (x[start:start + block] @ centroids.T),
                                             axis=1)

    parallel.map_side_by_side(assign, range(0, len(x), block))
    return out


def nearest_centroid_codes(kernel: object, codes: np.ndarray, scale: float,
                           centroids: np.ndarray, signed: bool) -> np.ndarray:
    """:func:`nearest_centroid` of the rows that whole-row 8-bit ``codes`` (``code / scale``)
    stand for, by the 8-bit kernel (:mod:`._distance_kernel`) with k = 1.

    Why: with 2,000-row lists a training assigns millions of rows to up to ~1,300 centroids
    (and k-means assigns its sample ten times); the integer product does it about twice as
    fast as float32 BLAS (200,000 signed rows x 1,280 centroids on 2 cores: 0.43-0.48 s vs
    0.80-1.15 s). The centroids are rounded to the
    rows' grid, so a row within rounding of two centroids may go to either: that only moves it
    between two lists a query probes alike. Non-negative codes are the kernel's unsigned
    operand as they are; signed ones are halved and shifted into 1..127 as signed queries are
    (``IvfStore._search_lists_signed``), the shift taken back in the bias.
    """
    c_int = np.rint(centroids * np.float32(scale))
    c_int = np.clip(c_int, -127 if signed else 0, 127)
    rows_t = np.ascontiguousarray(c_int.T.astype(np.int8))
    c32 = c_int.astype(np.float32)
    if signed:
        # rows at half scale (r = code / 2): argmin |c|^2 / 2 - 2 r.c, and the kernel's
        # -2 (r + 64).c adds -128 sum(c), which the bias takes back
        bias = (c32 * c32).sum(axis=1) / np.float32(2.0) + np.float32(128.0) * c32.sum(axis=1)
    else:
        bias = (c32 * c32).sum(axis=1)
    block = _block_rows(len(centroids))
    out = np.empty(len(codes), np.int64)

    def assign(start: int) -> None:
        rows = codes[start:start + block]
        rows = (_shifted_half(rows, np.float32(0.5))[1] if signed else rows.view(np.uint8))
        _, index = _distance_kernel.nearest(kernel, rows_t, np.ascontiguousarray(rows), bias, 1)
        out[start:start + block] = index[:, 0]

    parallel.map_side_by_side(assign, range(0, len(codes), block))
    return out


def kmeans(x: np.ndarray, k: int, iterations: int = 10, seed: int = 0,
           assign: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Lloyd's k-means with a seeded random start (deterministic for a given input).

    ``assign(centroids)`` gives each row of ``x`` its nearest centroid (default:
    :func:`nearest_centroid`; the store passes the 8-bit kernel on the rows' codes).
    """
    rng = np.random.default_rng(seed)
    k = min(k, len(x))
    centroids = x[rng.choice(len(x), k, replace=False)].astype(np.float32)
    for _ in range(iterations):
        labels = assign(centroids) if assign is not None else nearest_centroid(x, centroids)
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
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
    """A growable block of rows (8-bit coarse descriptor, annotation slot, keypoint index, row
    number in the store's rest arrays).

    Descriptors are stored *transposed* (``desc[:, :n]`` is [dim, n]): the 8-bit kernel takes
    the list as the right-hand operand of its product (see :mod:`._distance_kernel`), and the
    whole buffer is passed without a copy -- columns past ``n`` are masked by an infinite bias.
    Capacity grows by a sixteenth, so that masked tail stays small: the kernel reads it too,
    and growing by a quarter left lists 14 % longer than their rows at 10,000 nyala
    annotations (copying a list on growth is cheap next to reading it at every query).
    """

    __slots__ = ("biases", "columns", "desc", "gid", "kp", "lead", "n", "norms", "pending",
                 "pending_rows", "slot", "sums")

    def __init__(self, dim: int, dtype: np.dtype, capacity: int = 64, signed: bool = False,
                 split: bool = False) -> None:
        self.desc = np.zeros((dim, capacity), dtype)
        self.norms = np.zeros(capacity, np.float32)  # |decoded coarse row|^2
        # each row's sum, which the signed stores' kernel takes back from its shifted queries
        self.sums = np.zeros(capacity if signed else 0, np.float32)
        self.columns = (("norms", "slot", "kp") + (("gid", "lead") if split else ())
                        + (("sums",) if signed else ()))
        self.slot = np.full(capacity, -1, np.int32)
        self.kp = np.full(capacity, -1, np.int32)
        # a split store's: row in IvfStore's rest array, and axis 0 (unsplit: empty)
        self.gid = np.full(capacity if split else 0, -1, np.int32)
        self.lead = np.zeros(capacity if split else 0, np.float32)
        self.n = 0  # rows in the arrays; appended ones wait in ``pending`` until settle()
        self.pending: list[tuple[np.ndarray | None, ...]] = []
        self.pending_rows = 0
        self.biases: dict[tuple[float, float], np.ndarray] = {}  # see bias()

    @property
    def capacity(self) -> int:
        return len(self.slot)

    def append(self, desc: np.ndarray, norms: np.ndarray, slot: np.ndarray, kp: np.ndarray,
               gid: np.ndarray | None = None, lead: np.ndarray | None = None) -> None:
        """Queue rows (arrays the list may keep); :meth:`settle` writes them.

        Why queued: loading a catalog appends to every list once per batch, and writing each
        time grew (copied) most lists at most appends: 13 of 113 s indexing 10,000 nyala
        annotations. The store settles its lists before it reads them.
        """
        self.pending.append((desc, norms, slot, kp, gid, lead))
        self.pending_rows += len(desc)

    def settle(self) -> None:
        """Write the queued rows into the arrays, growing them once."""
        if not self.pending:
            return
        parts = self.pending
        self.pending, self.pending_rows = [], 0
        desc, norms, slot, kp, gid, lead = (
            None if parts[0][i] is None else
            parts[0][i] if len(parts) == 1 else np.concatenate([p[i] for p in parts])
            for i in range(6))
        need = self.n + len(desc)
        if need > self.capacity:
            cap = max(need, self.capacity + self.capacity // 16, 64)
            grown = np.zeros((self.desc.shape[0], cap), self.desc.dtype)
            grown[:, : self.n] = self.desc[:, : self.n]
            self.desc = grown
            for name in self.columns:
                old = getattr(self, name)
                new = np.full(cap, -1 if name in ("slot", "kp", "gid") else 0, old.dtype)
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
        end = self.n + len(desc)
        self.desc[:, self.n:end] = desc.T
        self.norms[self.n:end] = norms
        if self.sums.size:
            self.sums[self.n:end] = desc.sum(axis=1, dtype=np.int32)
        self.slot[self.n:end] = slot
        self.kp[self.n:end] = kp
        if self.gid.size:
            self.gid[self.n:end] = gid
            self.lead[self.n:end] = lead
        self.n = end
        self.biases.clear()

    def make_signed(self) -> None:
        """Keep the row sums the signed kernel needs (a store that was non-negative until now:
        its 0..127 rows are valid signed rows at the same scale)."""
        self.settle()
        if "sums" not in self.columns:
            self.sums = self.desc.sum(axis=0, dtype=np.int32).astype(np.float32)
            self.columns = (*self.columns, "sums")
            self.biases.clear()

    def rows(self) -> np.ndarray:
        """The live coarse descriptors as [n, dim] (a copy)."""
        self.settle()
        return np.ascontiguousarray(self.desc[:, : self.n].T)

    def keep(self, mask: np.ndarray) -> None:
        """Keep the settled rows where ``mask`` (one entry per settled row) is True."""
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
    -127..127 and the same kernel with shifted queries (:meth:`_search_lists_signed`). Large
    stores keep rows on their principal axes, split into a coarse part the kernel reads and a
    rest re-scored for the coarse pass's best candidates (module docstring).

    List size: a query scans its nearest lists, one kernel call per list. ``nprobe`` is the
    number of lists of ``COARSE_LIST_GROWTH * list_rows`` rows to scan (8,000 by default);
    below ``SPLIT_ROWS`` the lists are that much finer and ``FINE_PROBES`` times as many are
    scanned, for the same neighbour recall (module constants). With ~1000-row lists and
    BLAS products the fixed cost per list dominated (worst on a busy 2-core machine, where BLAS
    threads wait for each other): 8000-row lists with 6 probes found the true 3 nearest
    neighbours as often (96 % vs 95.6 % with 1000 rows and 16 probes, lion photos) in a seventh
    of the time. The onnxruntime kernel's fixed cost is small enough for 2,000-row lists.
    """

    def __init__(self, dim: int, list_rows: int = 2000, train_rows: int = 40000,
                 max_lists: int = 4096, retrain_growth: float = 2.0, seed: int = 0) -> None:
        self.dim = dim
        self.list_rows, self.train_rows, self.max_lists = list_rows, train_rows, max_lists
        self.retrain_growth, self.seed = retrain_growth, seed
        self.centroids: np.ndarray | None = None
        self.dtype: np.dtype | None = None
        self.scale = 1.0  # of the coarse part (the whole row until a split)
        self.lists: list[_List] = []
        self.trained_at = 0
        self.nonneg = True  # set by the first rows: non-negative stores use the kernel
        self.use_kernel = True  # False: always the NumPy path (tests compare the two)
        # the lists holding each slot's rows: a query masks excluded slots only in those
        self._slot_lists: dict[int, np.ndarray] = {}
        # Once split: rows are x @ rot, columns [0, coarse) and
        # column `coarse` (axis 0, float32) in the lists, the others (8-bit, rest_scale each)
        # in _rest, row-major, store-wide.
        self.rot: np.ndarray | None = None
        self.split: bool | None = None  # decided at the first training past SPLIT_ROWS
        self.coarse_lists = False  # lists COARSE_LIST_GROWTH times larger, from then on
        self.coarse = dim
        self.row_scale = 1.0  # once split: the scale of _row_codes
        self.rest_scale = np.ones(0, np.float32)
        self._rest = np.zeros((0, 0), np.int8)
        self._gn = 0
        self._n_rows: int | None = None  # see n_rows; None whenever rows come or go

    def _quantise(self, desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """8-bit whole rows and the squared norms of what they decode to (unsplit stores)."""
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
        return _codes_and_norms(desc, self.scale, 0 if self.nonneg else -127)

    def _encode(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rotated rows -> (coarse 8-bit codes, their decoded squared norms, axis 0, the rest's
        8-bit codes)."""
        c = self.coarse
        top, norms = _codes_and_norms(y[:, :c], self.scale)
        rest = _rounded(y[:, c + 1:], self.rest_scale).astype(np.int8)
        return top, norms, np.ascontiguousarray(y[:, c]), rest

    def _fit_axes(self, codes: np.ndarray) -> None:
        """Principal axes of the rows (whole-row ``codes``; uncentred: distances do not care)
        and the 8-bit scales of the coarse part and of each rest axis, from their 99.99th
        percentiles."""
        rng = np.random.default_rng(self.seed)
        pick = (slice(None) if len(codes) <= 200_000
                else rng.choice(len(codes), 200_000, replace=False))
        sample = codes[pick].astype(np.float32) / np.float32(self.scale)
        second = (sample.T.astype(np.float64) @ sample) / max(len(sample), 1)
        val, vec = np.linalg.eigh(second)
        val, vec = val[::-1], vec[:, ::-1]  # strongest first
        c = max(1, self.dim // 2)
        if self.dim < 4 or val[1:c + 1].sum() < MIN_COARSE_VARIANCE * max(val[1:].sum(), 1e-12):
            self.split = False  # whole rows for good
            return
        # coarse: axes 1..c; then axis 0; then the rest
        self.rot = np.ascontiguousarray(np.hstack([vec[:, 1:c + 1], vec[:, :1], vec[:, c + 1:]]),
                                        dtype=np.float32)
        self.coarse = c
        self.row_scale = self.scale  # the whole rows' scale, for assigning rows (_row_codes)
        y = sample @ self.rot
        peak = float(np.percentile(np.abs(y[:, :c]), 99.99)) if len(y) else 1.0
        self.scale = 127.0 / max(peak, 1e-6)
        rest_peak = (np.percentile(np.abs(y[:, c + 1:]), 99.99, axis=0) if len(y)
                     else np.ones(self.dim - c - 1))
        self.rest_scale = (127.0 / np.maximum(rest_peak, 1e-6)).astype(np.float32)
        self.split = True
        self.nonneg = False  # rotated rows are signed
        self._rest = np.zeros((0, self.dim - c - 1), np.int8)
        self._gn = 0

    def _append_rest(self, rest: np.ndarray) -> np.ndarray:
        """Store rows' rest codes; their row numbers."""
        end = self._gn + len(rest)
        if end > len(self._rest):
            # by an eighth: at 10,000 nyala annotations this array holds 1.3 GB, and a
            # doubled spare half would be as much again (a copy on growth takes ~0.3 s)
            cap = max(end, len(self._rest) + len(self._rest) // 8, 1024)
            grown = np.zeros((cap, self._rest.shape[1]), np.int8)
            grown[: self._gn] = self._rest[: self._gn]
            self._rest = grown
        self._rest[self._gn:end] = rest
        gid = np.arange(self._gn, end, dtype=np.int32)
        self._gn = end
        return gid

    @property
    def n_rows(self) -> int:
        # cached: LocalIndex.add_many asks after every annotation (rows_before_training), and
        # summing ~1,300 lists each time cost seconds when loading a large catalog
        if self._n_rows is None:
            self._n_rows = sum(lst.n + lst.pending_rows for lst in self.lists)
        return self._n_rows

    def settle(self) -> None:
        """Write every list's queued rows (:meth:`_List.append`): before the lists are read."""
        for lst in self.lists:
            lst.settle()

    @property
    def n_lists(self) -> int:
        return len(self.lists)

    def rows_before_training(self) -> int | None:
        """How many more rows :meth:`add` takes before it (re)trains the codebook; None when it
        never trains again (``max_lists``).

        Why: a caller adding many annotations (``LocalIndex.add_many``) passes them in batches
        that end where this count is reached, so the store trains after the same annotation
        as when they come one at a time, and the lists come out the same.
        """
        if self.centroids is None:
            return max(self.train_rows - self.n_rows, 0)
        if len(self.lists) >= self.max_lists:
            return None
        return max(int(np.ceil(self.retrain_growth * self.trained_at)) - self.n_rows, 0)

    def add(self, desc: np.ndarray, slot: np.ndarray, kp: np.ndarray) -> None:
        """Append rows (of one annotation or many); train or retrain the codebook when the store
        has grown enough."""
        desc = np.ascontiguousarray(desc, np.float32)
        if len(desc) == 0:
            return
        # copies: the lists keep these arrays until they settle
        slot, kp = np.array(slot, np.int32), np.array(kp, np.int32)
        if self.rot is None:
            qdesc, norms = self._quantise(desc)
            assign = None if self.centroids is None else self._nearest(qdesc, desc)
            self._insert(qdesc, norms, slot, kp, assign)
        else:
            y = desc @ self.rot
            top, norms, lead, rest = self._encode(y)
            assign = self._nearest(self._row_codes(desc), y)
            self._insert(top, norms, slot, kp, assign, self._append_rest(rest), lead)
        if self.rows_before_training() == 0:
            self.train()

    def _insert(self, codes: np.ndarray, norms: np.ndarray, slot: np.ndarray, kp: np.ndarray,
                assign: np.ndarray | None, gid: np.ndarray | None = None,
                lead: np.ndarray | None = None) -> None:
        """Append coded rows to the lists ``assign`` names (None: untrained, the one list)."""
        self._n_rows = None
        if assign is None:
            self.lists[0].append(codes, norms, slot, kp, gid, lead)
            self._note_lists(slot, np.zeros(len(slot), np.int64))
            return
        self._note_lists(slot, assign)
        order = np.argsort(assign, kind="stable")
        bounds = np.flatnonzero(np.r_[True, assign[order][1:] != assign[order][:-1]])
        for a, b in zip(bounds, np.r_[bounds[1:], len(order)], strict=False):
            rows = order[a:b]
            self.lists[int(assign[rows[0]])].append(codes[rows], norms[rows], slot[rows],
                                                    kp[rows],
                                                    None if gid is None else gid[rows],
                                                    None if lead is None else lead[rows])

    def _row_codes(self, x: np.ndarray) -> np.ndarray:
        """A split store's rows in the original space (float ``x``) as whole-row 8-bit codes
        at the scale they had before the split, for :meth:`_nearest`."""
        return _rounded(x, self.row_scale).astype(np.int8)

    def _nearest(self, row_codes: np.ndarray | None, vec: np.ndarray | None,
                 centroids: np.ndarray | None = None) -> np.ndarray:
        """Nearest centroid (default: the codebook's) of each row: by the 8-bit kernel from
        whole-row codes where there is one (an unsplit store's own codes; a split store's
        :meth:`_row_codes`, against the centroids rotated back), else in float from ``vec``
        (rows in the store's space).

        Why the kernel for split stores too: a 10,000-annotation nyala catalog assigns ~15 M
        rows to 1,280 centroids while it loads, and float32 BLAS took 41 of its 103 s.
        """
        c = self.centroids if centroids is None else centroids
        assert c is not None
        kernel = self._assign_kernel()
        if kernel is not None and row_codes is not None:
            if self.rot is None:
                return nearest_centroid_codes(kernel, row_codes, self.scale, c, not self.nonneg)
            return nearest_centroid_codes(kernel, row_codes, self.row_scale, c @ self.rot.T,
                                          True)
        assert vec is not None  # callers decode the rows whenever there is no kernel
        return nearest_centroid(vec, c)

    def _assign_kernel(self) -> object | None:
        """The 8-bit kernel for assigning rows to centroids (None: the float path)."""
        if not self.use_kernel:
            return None
        return _distance_kernel.session()

    def _note_lists(self, slot: np.ndarray, assign: np.ndarray) -> None:
        """Record which lists now hold rows of each slot in ``slot``."""
        if not len(slot):
            return
        lo = int(slot.min())
        span = int(slot.max()) - lo + 1
        if span * max(len(self.lists), 1) <= 1 << 26:
            # marks in a [slots x lists] table: np.unique over millions of pairs took 8 of
            # 113 s indexing 10,000 nyala annotations
            mark = np.zeros((span, max(len(self.lists), 1)), bool)
            mark[slot - lo, assign] = True
            slots, lists = np.nonzero(mark)
            slots = slots + lo
        else:
            pairs = np.unique((slot.astype(np.int64) << 32) | assign.astype(np.int64))
            slots, lists = pairs >> 32, pairs & 0xFFFFFFFF
        bounds = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
        for a, b in zip(bounds, np.r_[bounds[1:], len(slots)], strict=False):
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
        """(Re)build the codebook on the current rows and regroup every row.

        The first training with ``SPLIT_ROWS`` rows or more also fits the principal axes and,
        when they qualify, re-codes every row on them (module docstring); the others regroup
        the codes as they are.
        """
        codes, norms, slot, kp, gid, lead = self._raw_rows()
        n = len(codes)
        if n == 0:
            return
        kernel = self._assign_kernel()
        # Rows to assign as whole-row codes (``row_codes``, the kernel) or floats (``vec``):
        # an unsplit store's codes as they are; at the split, the codes from before it (the
        # rows are re-coded on the axes block by block); a split store's decoded and rotated
        # back block by block below. The whole store is decoded to floats only without the
        # kernel (5 GB at 10,000 nyala annotations).
        vec: np.ndarray | None = None
        row_codes: np.ndarray | None = codes
        if self.rot is not None:
            row_codes = None
            if kernel is None:
                vec = self._decode(codes, lead, gid)
        elif self.split is None and n >= SPLIT_ROWS:
            self._fit_axes(codes)
            if self.rot is not None:  # re-coded once, from the 8-bit rows (SPLIT_ROWS)
                parts = [self._encode((codes[a:a + _RECODE_ROWS].astype(np.float32)
                                       / np.float32(self.row_scale)) @ self.rot)
                         for a in range(0, n, _RECODE_ROWS)]
                codes, norms, lead, rest = (np.concatenate([p[i] for p in parts])
                                            for i in range(4))
                del parts
                gid = self._append_rest(rest)
                if kernel is None:
                    vec = self._decode(codes, lead, gid)
                    row_codes = None
        elif kernel is None:
            vec = codes.astype(np.float32) / np.float32(self.scale)
        if n >= SPLIT_ROWS:
            self.coarse_lists = True
        list_rows = self.list_rows * (COARSE_LIST_GROWTH if self.coarse_lists else 1)
        n_lists = int(np.clip(n // list_rows, 1, self.max_lists))
        rng = np.random.default_rng(self.seed)
        pick = np.arange(n) if n <= 64 * n_lists else rng.choice(n, 64 * n_lists, replace=False)
        sample, sample_codes = self._sample(pick, codes, lead, gid, vec, row_codes)
        assign = None
        if sample_codes is not None:
            assign = lambda c: self._nearest(sample_codes, None, c)  # noqa: E731
        self.centroids = kmeans(sample, n_lists, seed=self.seed, assign=assign)
        self.dtype = np.dtype(np.int8)
        self._n_rows = None
        self.lists = [_List(self.coarse, self.dtype, signed=not self.nonneg,
                            split=self.rot is not None)
                      for _ in range(len(self.centroids))]
        self.trained_at = n
        self._slot_lists = {}
        if self.rot is None:
            gid = lead = None
        if vec is not None or row_codes is not None:
            to = self._nearest(row_codes, vec)
        else:  # a split store with the kernel: decoded and rotated back block by block,
            # two blocks side by side (decoding and NumPy's one-thread BLAS were half the time)
            def block(a: int) -> np.ndarray:
                b = a + _RECODE_ROWS
                rows = self._decode(codes[a:b], lead[a:b], gid[a:b]) @ self.rot.T
                return self._nearest(self._row_codes(rows), None)

            to = np.concatenate(parallel.map_side_by_side(block, range(0, n, _RECODE_ROWS)))
        self._insert(codes, norms, slot, kp, to, gid, lead)

    def _sample(self, pick: np.ndarray, codes: np.ndarray, lead: np.ndarray, gid: np.ndarray,
                vec: np.ndarray | None, row_codes: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """k-means's sample: float rows in the store's space, and their whole-row codes for
        the kernel (None: assigned in float, where train() decoded ``vec``)."""
        if vec is not None:
            return vec[pick], None
        if self.rot is None:
            sample = codes[pick].astype(np.float32)
            sample /= np.float32(self.scale)
            return sample, codes[pick]
        sample = self._decode(codes[pick], lead[pick], gid[pick])
        if row_codes is not None:  # at the split: the codes from before it
            return sample, row_codes[pick]
        return sample, self._row_codes(sample @ self.rot.T)

    def _decode(self, codes: np.ndarray, lead: np.ndarray, gid: np.ndarray) -> np.ndarray:
        """Rotated float rows from their coarse codes, axis 0 and rest row numbers."""
        out = np.empty((len(codes), self.dim), np.float32)
        c = self.coarse
        out[:, :c] = codes.astype(np.float32) / np.float32(self.scale)
        out[:, c] = lead
        out[:, c + 1:] = self._rest_rows(gid)
        return out

    def _rest_rows(self, gid: np.ndarray) -> np.ndarray:
        """The rest axes of rows ``gid`` (any shape), decoded to float32 [..., rest]."""
        rest = self._rest[gid].astype(np.float32)
        rest /= self.rest_scale
        return rest

    def _raw_rows(self) -> tuple[np.ndarray, ...]:
        """Every list's (codes, norms, slot, kp, gid, lead), concatenated."""
        self.settle()
        return (np.concatenate([lst.rows() for lst in self.lists]),
                *(np.concatenate([getattr(lst, name)[: lst.n] for lst in self.lists])
                  for name in ("norms", "slot", "kp", "gid", "lead")))

    @property
    def nbytes(self) -> int:
        """Memory held by the rows (capacity included) and the codebook."""
        self.settle()
        rows = sum(lst.desc.nbytes + sum(getattr(lst, c).nbytes for c in lst.columns)
                   + sum(b.nbytes for b in lst.biases.values()) for lst in self.lists)
        rest = self._rest.nbytes
        return rows + rest + (0 if self.centroids is None else self.centroids.nbytes)

    def compact(self, alive_slot: np.ndarray) -> None:
        """Physically drop the rows of removed annotations (tombstoned in ``alive_slot``)."""
        self.settle()
        self._n_rows = None
        live = np.zeros(self._gn, bool)
        for lst in self.lists:
            keep = alive_slot[lst.slot[: lst.n]]
            if self._gn:
                live[lst.gid[: lst.n][keep]] = True
            lst.keep(keep)
        if self._gn:
            renum = np.cumsum(live, dtype=np.int64).astype(np.int32) - 1
            n = int(live.sum())
            self._rest[:n] = self._rest[: self._gn][live]
            self._gn = n
            for lst in self.lists:
                lst.gid[: lst.n] = renum[lst.gid[: lst.n]]
        for s in [s for s in self._slot_lists if not alive_slot[s]]:
            del self._slot_lists[s]
        if self.centroids is not None and self.n_rows * self.retrain_growth < self.trained_at:
            self.train()  # shrunk a lot: fewer, fuller lists

    def search(self, query: np.ndarray, k: int, nprobe: int, ok_slot: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distance, slot, kp) of the ``k`` nearest ok rows in the probed lists, nearest first.

        ``nprobe`` counts coarse lists; a store with fine lists scans ``FINE_PROBES`` times as
        many (class docstring).
        """
        self.settle()
        q = np.ascontiguousarray(query, np.float32)
        nq = len(q)
        y = q if self.rot is None else q @ self.rot
        c = self.coarse
        q_top = np.ascontiguousarray(y[:, :c])
        if self.centroids is None:
            probes = np.zeros((nq, 1), np.int64)
        else:
            nprobe = min(nprobe * (1 if self.coarse_lists else FINE_PROBES), len(self.centroids))
            dc = (self.centroids * self.centroids).sum(1)[None, :] - 2.0 * (y @ self.centroids.T)
            probes = np.argpartition(dc, nprobe - 1, axis=1)[:, :nprobe]
        n_probe = probes.shape[1]
        flat = probes.ravel()
        qid = np.repeat(np.arange(nq), n_probe)
        pos = np.tile(np.arange(n_probe), nq)
        order = np.argsort(flat, kind="stable")
        flat, qid, pos = flat[order], qid[order], pos[order]
        starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]]) if len(flat) else flat
        kernel = _distance_kernel.session() if self.use_kernel else None
        path = ("signed" if kernel is not None and not self.nonneg and _unit_rows(q) else
                "8bit" if kernel is not None and self.nonneg and not bool((q < 0).any()) else
                "float")
        # the coarse pass keeps more candidates than it returns; a whole-row kernel ranks by the
        # whole distance already (its k are only re-scored), and the float path is exact
        kc = max(k, COARSE_K) if self.rot is not None and path != "float" else k
        best_d = np.full((nq, n_probe, kc), np.inf, np.float32)
        best_s = np.full((nq, n_probe, kc), -1, np.int32)
        best_k = np.full((nq, n_probe, kc), -1, np.int32)
        best_g = np.full((nq, n_probe, kc), -1, np.int32)
        out = (best_d, best_s, best_k, best_g)
        q_lead = None if self.rot is None else np.ascontiguousarray(y[:, c])
        if path == "signed":
            self._search_lists_signed(kernel, q_top, q_lead, kc, flat, qid, pos, starts, ok_slot,
                                      out)
        elif path == "8bit":
            self._search_lists_8bit(kernel, q_top, kc, flat, qid, pos, starts, ok_slot, out)
        else:
            self._search_lists_float(y, kc, flat, qid, pos, starts, ok_slot, out)
        best_d, best_s = best_d.reshape(nq, -1), best_s.reshape(nq, -1)
        best_k, best_g = best_k.reshape(nq, -1), best_g.reshape(nq, -1)
        if self.rot is not None and path != "float":
            # the coarse part's exact distance is in; add the rest's to the best kc of them
            if best_d.shape[1] > kc:
                keep = np.argpartition(best_d, kc - 1, axis=1)[:, :kc]
                best_d, best_s, best_k, best_g = (np.take_along_axis(a, keep, axis=1)
                                                  for a in (best_d, best_s, best_k, best_g))
            best_d = best_d + self._rest_dist2(y[:, c + 1:], best_g)
        pick = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        dist = np.sqrt(np.maximum(np.take_along_axis(best_d, pick, axis=1), 0.0))
        slot = np.take_along_axis(best_s, pick, axis=1)
        kp = np.take_along_axis(best_k, pick, axis=1)
        slot[~np.isfinite(dist)] = -1
        return dist.astype(np.float32), slot, kp

    def _rest_dist2(self, y_rest: np.ndarray, gid: np.ndarray) -> np.ndarray:
        """Squared distance over the rest axes between each query row (``y_rest``: its rotated
        columns past axis 0) and the rows ``gid`` [nq, m] (-1: none, +inf)."""
        rest = self._rest_rows(np.where(gid >= 0, gid, 0))
        rest -= y_rest[:, None, :]
        rest *= rest
        d = rest.sum(axis=2)
        d[gid < 0] = np.inf
        return d

    def _search_lists_8bit(self, kernel: object, q: np.ndarray, k: int, flat: np.ndarray,
                           qid: np.ndarray, pos: np.ndarray, starts: np.ndarray,
                           ok_slot: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
        """Each probed list against its queries in 8-bit integers (see _distance_kernel); for
        non-negative stores, which are never split (split rows are signed).

        The query is quantised like the rows (the error is as small as the rows' own), so the
        kernel's products are exact integers; distances come back in float32.
        """
        scale = np.float32(self.scale)
        qq = np.clip(np.rint(q * scale), 0, 127).astype(np.uint8)
        qqn = (qq.astype(np.float32) ** 2).sum(axis=1) / (scale * scale)
        self._kernel_lists(kernel, qq, qqn, q, None, scale * scale, 0.0, k, flat, qid, pos,
                           starts, ok_slot, out)

    def _search_lists_signed(self, kernel: object, q: np.ndarray, q_lead: np.ndarray | None,
                             k: int, flat: np.ndarray,
                             qid: np.ndarray, pos: np.ndarray, starts: np.ndarray,
                             ok_slot: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
        """Signed rows (projected or rotated descriptors) through the same unsigned x signed
        kernel.

        The query is quantised to -63..63 at half the rows' scale and shifted by +64 into the
        kernel's unsigned 1..127; the shift adds ``64 x row sum`` to every dot product, which
        the bias takes back (``+ 128 x row sum`` against the kernel's ``- 2 x dot``). Pair sums
        stay within 2 x 127 x 127, so nothing saturates and the products stay exact. Only for
        unit-length queries: their few components beyond the rows' peak are clipped as the
        stored rows' are (other queries take the float search). In a split store the rounding
        only chooses the candidates: they are re-scored against the float query.
        """
        s_row = np.float32(self.scale)
        s_q = s_row / np.float32(2.0)
        qs_int, qq = _shifted_half(q, s_q)
        qqn = (qs_int.astype(np.float32) ** 2).sum(axis=1) / (s_q * s_q)
        self._kernel_lists(kernel, qq, qqn, q, q_lead, s_row * s_q, 128.0, k, flat, qid, pos,
                           starts, ok_slot, out)

    def _kernel_lists(self, kernel: object, qq: np.ndarray, qq_norm2: np.ndarray,
                      q: np.ndarray, q_lead: np.ndarray | None, unit: float,
                      shift_bias: float, k: int, flat: np.ndarray, qid: np.ndarray,
                      pos: np.ndarray, starts: np.ndarray, ok_slot: np.ndarray,
                      out: tuple[np.ndarray, ...]) -> None:
        """The kernel over each probed list: ``dist2 = (bias - 2 dot) / unit + |qq|^2``, where
        ``bias = |row|^2 x unit + shift_bias x row sum`` (``unit``: the product of the two
        quantisation scales; ``qq_norm2``: the rounded query's squared norm). In a split store
        the kernel's ``k`` best are coarse candidates, and their squared distance to the float
        query ``q`` (with axis 0, ``q_lead``) is computed from the decoded rows instead, while
        the list is in cache."""
        best_d, best_s, best_k, best_g = out
        split = self.rot is not None
        unit32, shift32 = np.float32(unit), np.float32(shift_bias)
        inv_scale = np.float32(1.0 / self.scale)
        q_norm2 = (q * q).sum(axis=1)
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
                best_s[qs, ps, :kk] = lst.slot[top]
                best_k[qs, ps, :kk] = lst.kp[top]
                if not split:
                    best_d[qs, ps, :kk] = part / unit32 + qq_norm2[qs, None]
                    continue
                # exact coarse distance of the candidates: [m, kk, dim] gathered from the list
                rows = lst.desc.T[top].astype(np.float32)
                dot = np.matmul(rows, q[qs][:, :, None])[:, :, 0]
                d2 = lst.norms[top] - (2.0 * inv_scale) * dot + q_norm2[qs, None]
                if q_lead is not None:  # axis 0 (the channel), so the best of all probes
                    d2 += (lst.lead[top] - q_lead[qs, None]) ** 2  # are ranked by it too
                d2[~np.isfinite(part)] = np.inf  # masked rows (fewer than kk ok ones)
                best_d[qs, ps, :kk] = d2
                best_g[qs, ps, :kk] = lst.gid[top]

        if not side_by_side:
            run(jobs)
            return
        # small interleaved chunks balance the two threads whatever the lists' sizes
        n_chunks = min(len(jobs), 8 * n_workers)
        parallel.map_side_by_side(run, [jobs[i::n_chunks] for i in range(n_chunks)])

    def _search_lists_float(self, y: np.ndarray, k: int, flat: np.ndarray, qid: np.ndarray,
                            pos: np.ndarray, starts: np.ndarray, ok_slot: np.ndarray,
                            out: tuple[np.ndarray, ...]) -> None:
        """Each probed list against its queries with BLAS on rows converted to float32 (whole
        rows: in a split store the coarse part, axis 0 and the rest)."""
        best_d, best_s, best_k, _ = out
        c = self.coarse
        q = np.ascontiguousarray(y[:, :c])
        qn = (q * q).sum(axis=1)
        q2 = q * np.float32(-2.0 / self.scale)  # folds the 8-bit scale into the query
        for a, b in zip(starts, np.r_[starts[1:], len(flat)], strict=False):
            lst = self.lists[int(flat[a])] if self.lists else None
            if lst is None or lst.n == 0:
                continue
            qs, ps = qid[a:b], pos[a:b]
            d2 = q2[qs] @ lst.desc[:, : lst.n].astype(np.float32)
            d2 += lst.norms[None, : lst.n]
            d2 += qn[qs, None]
            if self.rot is not None:  # axis 0 and the rest, decoded for the whole list
                rest = np.empty((lst.n, self.dim - c), np.float32)
                rest[:, 0] = lst.lead[: lst.n]
                rest[:, 1:] = self._rest_rows(lst.gid[: lst.n])
                yr = y[qs, c:]
                d2 += (rest * rest).sum(axis=1)[None, :] - 2.0 * (yr @ rest.T)
                d2 += (yr * yr).sum(axis=1)[:, None]
            d2[:, ~ok_slot[lst.slot[: lst.n]]] = np.inf
            kk = min(k, lst.n)
            top = smallest_k(d2, kk)
            best_d[qs, ps, :kk] = np.take_along_axis(d2, top, axis=1)
            best_s[qs, ps, :kk] = lst.slot[top]
            best_k[qs, ps, :kk] = lst.kp[top]
