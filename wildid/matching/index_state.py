"""A loaded identifier's index as JSON and plain arrays, to save it and restore it later.

Why: the engine builds its index from the catalog at the first match after every start, and
for a large catalog that is most of the wait (10,000 nyala annotations: ~85 s on a 2-core
laptop, most of it assigning rows to inverted lists). Restoring the arrays that build produced
takes seconds (``wildid.engine.index_cache`` keeps them beside the catalog).

What is kept: every list of the descriptor store as it is (codes, norms, slots, keypoint
numbers, the split store's axes and rest), the keypoint geometry of each annotation (the
descriptors live only in the store), the cosine indexes' rows and the annotations' labels.
Nothing is pickled: a damaged or foreign file cannot run code, and every array is checked
against the others as it is read (:class:`~wildid.errors.MatchingError` when they disagree).
A restored identifier searches and grows exactly as the one that was saved.

``STATE_FORMAT`` names this layout: bump it whenever ``IvfStore``, ``LocalIndex``,
``GlobalIndex`` or ``Identifier`` change what they hold or how rows are placed, so older files
are rebuilt instead of restored.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from wildid.errors import MatchingError
from wildid.matching._ivf import IvfStore, _List
from wildid.matching.features import LearnedKeypoints, LocalFeatures
from wildid.matching.global_index import GlobalIndex
from wildid.matching.identifier import Identifier, _Entry
from wildid.matching.local_index import LocalIndex

__all__ = ["STATE_FORMAT", "Arrays", "clear_identifier", "identifier_state", "restore_identifier"]

STATE_FORMAT = 1

Arrays = dict[str, np.ndarray]
# what restoring reads arrays through: a file's arrays read on demand (index_cache) or a dict
ArraySource = Mapping[str, np.ndarray]


# -- the descriptor store --------------------------------------------------------------------
_STORE_SCALARS = ("dim", "list_rows", "train_rows", "max_lists", "retrain_growth", "seed",
                  "scale", "trained_at", "nonneg", "split", "coarse_lists", "coarse",
                  "row_scale")


def _store_state(store: IvfStore) -> tuple[dict[str, Any], Arrays]:
    store.settle()
    meta: dict[str, Any] = {name: getattr(store, name) for name in _STORE_SCALARS}
    meta["coded"] = store.dtype is not None
    meta["trained"] = store.centroids is not None
    meta["rest_rows"] = store._gn
    columns = [lst.columns for lst in store.lists]
    if any(c != columns[0] for c in columns):  # every list is made alike; say so if not
        raise MatchingError("the index's lists hold different columns; cannot save it")
    meta["columns"] = list(columns[0]) if columns else []
    meta["list_sizes"] = [lst.n for lst in store.lists]
    arrays: Arrays = {"rest_scale": store.rest_scale, "rest": store._rest[: store._gn]}
    if store.centroids is not None:
        arrays["centroids"] = store.centroids
    if store.rot is not None:
        arrays["rot"] = store.rot
    for i, lst in enumerate(store.lists):
        arrays[f"l{i}"] = lst.desc[:, : lst.n]
        for name in lst.columns:
            arrays[f"l{i}.{name}"] = getattr(lst, name)[: lst.n]
    return meta, arrays


def _restore_store(meta: Mapping[str, Any], get: Callable[[str], np.ndarray]) -> IvfStore:
    store = IvfStore(int(meta["dim"]), list_rows=int(meta["list_rows"]),
                     train_rows=int(meta["train_rows"]), max_lists=int(meta["max_lists"]),
                     retrain_growth=float(meta["retrain_growth"]), seed=int(meta["seed"]))
    for name in _STORE_SCALARS[6:]:
        setattr(store, name, meta[name])
    store.dtype = np.dtype(np.int8) if meta["coded"] else None
    store.scale, store.row_scale = float(store.scale), float(store.row_scale)
    store.rest_scale = _array(get("rest_scale"), np.float32, (None,))
    rest_rows = int(meta["rest_rows"])
    store._rest = _array(get("rest"), np.int8, (rest_rows, None))
    store._gn = rest_rows
    store.centroids = (_array(get("centroids"), np.float32, (None, store.dim))
                       if meta["trained"] else None)
    store.rot = _array(get("rot"), np.float32, (store.dim, store.dim)) if meta["split"] else None
    columns = tuple(meta["columns"])
    signed, split = "sums" in columns, "gid" in columns
    if split != (store.rot is not None) or (store.rot is None and store._gn):
        raise MatchingError("saved index: rest rows without the split axes")
    dtypes = {"norms": np.float32, "slot": np.int32, "kp": np.int32, "gid": np.int32,
              "lead": np.float32, "sums": np.float32}
    slots, list_ids = [], []
    for i, n in enumerate(meta["list_sizes"]):
        lst = _List(store.coarse, np.dtype(np.int8), capacity=0, signed=signed, split=split)
        if lst.columns != columns:
            raise MatchingError("saved index: unknown list columns")
        lst.desc = _padded(_array(get(f"l{i}"), np.int8, (store.coarse, n)), 0)
        for name in columns:
            fill = -1 if name in ("slot", "kp", "gid") else 0
            setattr(lst, name, _padded(_array(get(f"l{i}.{name}"), dtypes[name], (n,)), fill))
        lst.n = n
        if n and (lst.gid.size and (lst.gid[:n].min() < 0 or lst.gid[:n].max() >= store._gn)):
            raise MatchingError("saved index: a row points past the rest rows")
        store.lists.append(lst)
        slots.append(lst.slot[:n])
        list_ids.append(np.full(n, i, np.int64))
    if store.centroids is not None and len(store.centroids) != len(store.lists):
        raise MatchingError("saved index: as many centroids as lists expected")
    if slots:
        slot = np.concatenate(slots)
        if len(slot) and slot.min() < 0:
            raise MatchingError("saved index: a row without an annotation")
        store._note_lists(slot, np.concatenate(list_ids))
    return store


def _padded(a: np.ndarray, fill: int) -> np.ndarray:
    """Lists keep room for 64 rows at least (what a new one starts with), along the last axis."""
    short = 64 - a.shape[-1]
    if short <= 0:
        return a
    pad = [(0, 0)] * (a.ndim - 1) + [(0, short)]
    return np.pad(a, pad, constant_values=fill)


def _array(a: np.ndarray, dtype: type, shape: tuple[int | None, ...]) -> np.ndarray:
    """``a`` checked for its dtype and shape (None: any size), C-contiguous."""
    a = np.asarray(a)
    if a.dtype != np.dtype(dtype) or a.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(a.shape, shape, strict=True)):
        raise MatchingError(f"saved index: an array is {a.dtype} {a.shape}, expected "
                            f"{np.dtype(dtype)} {shape}")
    return np.ascontiguousarray(a)


# -- the local index --------------------------------------------------------------------------
def _local_state(index: LocalIndex) -> tuple[dict[str, Any], Arrays]:
    slots = sorted(index._features)
    keys: list[str | None] = [None] * len(index._alive)
    for slot, key in index._key_of.items():
        keys[slot] = _str_key(key)
    feats = [index._features[s] for s in slots]
    counts = np.array([len(f) for f in feats], np.int64)
    meta_blobs = {"texture": [f.texture_jpeg for f in feats],
                  "learned": [None if f.learned is None else f.learned.to_bytes() for f in feats]}
    meta: dict[str, Any] = {
        "k": index.k, "knorm": index.knorm, "nprobe": index.nprobe,
        "compact_dead": index.compact_dead, "store_args": index._store_args,
        "dead_rows": index._dead_rows, "keys": keys, "slots": slots,
        "extractors": [f.extractor for f in feats],
        "image_sizes": [list(f.image_size) for f in feats]}
    arrays: Arrays = {"alive": index._alive, "rows_of_slot": index._rows_of_slot,
                      "counts": counts, "geom": _geometry(feats, counts)}
    for name, parts in meta_blobs.items():
        arrays[f"{name}_sizes"] = np.array([-1 if p is None else len(p) for p in parts],
                                           np.int64)
        arrays[name] = np.frombuffer(b"".join(p for p in parts if p), np.uint8)
    store = index._store
    meta["store"] = None
    if store is not None:
        meta["store"], store_arrays = _store_state(store)
        arrays.update({f"store/{k}": v for k, v in store_arrays.items()})
    return meta, arrays


def _geometry(feats: list[LocalFeatures], counts: np.ndarray) -> np.ndarray:
    """Keypoints (x, y, score, size, angle) of every annotation, one after the other: float16
    when that loses nothing (features read from the catalog are stored so), else float32.
    Filled annotation by annotation: 10,000 nyala annotations hold 20 M keypoints."""
    ends = np.cumsum(counts)
    out = np.empty((int(ends[-1]) if len(ends) else 0, 5), np.float16)
    for f, end, n in zip(feats, ends.tolist(), counts.tolist(), strict=True):
        g = np.stack([f.xy[:, 0], f.xy[:, 1], f.scores, f.sizes, f.angles], axis=1)
        out[end - n:end] = g
        if not np.array_equal(out[end - n:end].astype(np.float32), g.astype(np.float32)):
            return np.concatenate([np.stack([f.xy[:, 0], f.xy[:, 1], f.scores, f.sizes,
                                             f.angles], axis=1) for f in feats]
                                  ).astype(np.float32)
    return out


def _blobs(get: Callable[[str], np.ndarray], name: str, n: int) -> list[np.ndarray | None]:
    """The ``n`` byte blocks saved as ``name`` (views of one array; None where there was none)."""
    sizes = _array(get(f"{name}_sizes"), np.int64, (n,))
    data = _array(get(name), np.uint8, (int(sizes[sizes > 0].sum()),))
    ends = np.cumsum(np.maximum(sizes, 0)).tolist()
    return [None if size < 0 else data[end - size:end]
            for size, end in zip(sizes.tolist(), ends, strict=True)]


def _restore_local(index: LocalIndex, meta: Mapping[str, Any],
                   get: Callable[[str], np.ndarray]) -> None:
    if len(index):
        raise MatchingError("an index is restored into an empty one only")
    if dict(meta["store_args"]) != index._store_args:
        raise MatchingError("saved index: made with other store settings")
    keys, slots = meta["keys"], [int(s) for s in meta["slots"]]
    alive = _array(get("alive"), np.bool_, (len(keys),))
    rows_of_slot = _array(get("rows_of_slot"), np.int64, (len(keys),))
    counts = _array(get("counts"), np.int64, (len(slots),))
    geom = np.asarray(get("geom"))
    if geom.dtype not in (np.float16, np.float32) or geom.shape != (int(counts.sum()), 5):
        raise MatchingError("saved index: keypoint geometry does not fit the annotations")
    geom = geom.astype(np.float32)
    if any(not alive[s] or keys[s] is None for s in slots) or sum(
            1 for k in keys if k is not None) != len(slots):
        raise MatchingError("saved index: annotations and their slots disagree")
    textures, learned_blocks = (_blobs(get, name, len(slots)) for name in ("texture", "learned"))
    starts = np.r_[0, np.cumsum(counts)]
    for i, slot in enumerate(slots):
        g = geom[starts[i]:starts[i + 1]]
        block = learned_blocks[i]
        texture = None if textures[i] is None else textures[i].tobytes()
        learned = None
        if block is not None:
            learned, end = LearnedKeypoints.from_buffer(block, 0)
            if end != len(block):
                raise MatchingError("saved index: learned keypoints of the wrong size")
        index._features[slot] = LocalFeatures(
            np.ascontiguousarray(g[:, :2]), np.zeros((len(g), 0), np.float32),
            g[:, 2].copy(), g[:, 3].copy(), g[:, 4].copy(),
            (int(meta["image_sizes"][i][0]), int(meta["image_sizes"][i][1])),
            str(meta["extractors"][i]), texture, learned)
        if len(g) != rows_of_slot[slot]:
            raise MatchingError("saved index: an annotation's keypoints and rows disagree")
    for slot, key in enumerate(keys):
        if key is not None:
            index._slot_of[key], index._key_of[slot] = slot, key
    index._alive, index._rows_of_slot = alive, rows_of_slot
    index._dead_rows = int(meta["dead_rows"])
    if meta["store"] is not None:
        store = _restore_store(meta["store"], lambda name: get(f"store/{name}"))
        if store.n_rows and int(max(lst.slot[: lst.n].max(initial=-1)
                                    for lst in store.lists)) >= len(keys):
            raise MatchingError("saved index: a row names an unknown annotation")
        index._store = store


# -- the identifier ---------------------------------------------------------------------------
def identifier_state(ident: Identifier) -> tuple[dict[str, Any], Arrays]:
    """The identifier's index as JSON-able ``meta`` and named arrays (keys must be strings).

    The arrays are views of the live index where they can be: write them out before the
    identifier changes again.
    """
    local_meta, local_arrays = _local_state(ident.local)
    vectors, arrays = [], {f"local/{k}": v for k, v in local_arrays.items()}
    for i, (name, index) in enumerate(ident.vectors.items()):
        vectors.append({"name": name, "dim": index.dim, "dtype": index.dtype.str,
                        "keys": [_str_key(k) for k in index.keys]})
        arrays[f"vec{i}"] = index.matrix()
    meta = {"format": STATE_FORMAT, "local": local_meta, "vectors": vectors,
            "entries": {_str_key(k): [_str_key(e.individual_id), e.species, e.viewpoint]
                        for k, e in ident._entries.items()}}
    return meta, arrays


def restore_identifier(ident: Identifier, meta: Mapping[str, Any], arrays: ArraySource) -> None:
    """Fill an empty identifier (made with the same profile) from :func:`identifier_state`.

    The identifier takes the arrays over, as they are wherever it can: give it arrays of its
    own (a file's reader reads each into fresh memory), not a live index's.

    Raises :class:`~wildid.errors.MatchingError` when the state is of another format or its
    parts disagree; the identifier is left empty then.
    """
    if len(ident):
        raise MatchingError("an identifier is restored into an empty one only")
    if meta.get("format") != STATE_FORMAT:
        raise MatchingError("saved index of another format")

    def get(name: str) -> np.ndarray:
        try:
            return arrays[name]
        except KeyError as exc:
            raise MatchingError(f"saved index: {name} is missing") from exc

    try:
        _restore_local(ident.local, meta["local"], lambda name: get(f"local/{name}"))
        vectors: dict[str, GlobalIndex] = {}
        for i, v in enumerate(meta["vectors"]):
            index = GlobalIndex(int(v["dim"]), dtype=np.dtype(v["dtype"]).type, capacity=0)
            rows = _array(get(f"vec{i}"), np.dtype(v["dtype"]).type, (len(v["keys"]), index.dim))
            index._rows = rows
            index._keys = list(v["keys"])
            index._row_of = {k: r for r, k in enumerate(index._keys)}
            vectors[str(v["name"])] = index
        entries = {k: _Entry(ind, species, viewpoint)
                   for k, (ind, species, viewpoint) in dict(meta["entries"]).items()}
        if set(ident.local.keys()) - set(entries) or any(
                set(index.keys) - set(entries) for index in vectors.values()):
            raise MatchingError("saved index: rows of annotations it does not list")
    except (MatchingError, KeyError, TypeError, ValueError, IndexError, OSError,
            EOFError) as exc:  # the last two: reading a damaged file
        clear_identifier(ident)
        if isinstance(exc, MatchingError):
            raise
        raise MatchingError(f"saved index is damaged: {exc!r}") from exc
    ident.vectors, ident._entries = vectors, entries


def clear_identifier(ident: Identifier) -> None:
    """Empty ``ident`` (a restore that failed part-way), keeping its settings."""
    fresh = LocalIndex(k=ident.local.k, knorm=ident.local.knorm, nprobe=ident.local.nprobe,
                       compact_dead=ident.local.compact_dead, **ident.local._store_args)
    ident.local, ident.vectors, ident._entries = fresh, {}, {}


def _str_key(key: Hashable) -> str:
    if not isinstance(key, str):
        raise MatchingError(f"only string keys can be saved, not {key!r}")
    return key
