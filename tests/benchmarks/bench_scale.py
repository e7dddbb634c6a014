"""Speed of identification at catalog scale (not a pytest test).

    .venv/bin/python -m tests.benchmarks scale          (part of ``make bench``)

Local features: the real nyala database features (extracted with the species profile, cached
by research_eval.py), replicated with small descriptor noise up to ``--annotations`` so the
inverted file sees realistic descriptor statistics.  Reports seconds to index one annotation
(added ``SYNC_CHUNK`` at a time, as the engine loads a catalog; the replicas are made outside the clock),
memory of the descriptor store, p50/p90 seconds of ``Identifier.identify`` for real query
crops, and the size of the saved index with the seconds to save and to restore it (what a start
costs instead of the build).  Global shortlist: ``--vectors`` random unit vectors (float16,
1280-d), p50 of a masked top-100 search.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import wildid  # noqa: E402, F401  (before NumPy: its thread settings, as in the app)

# isort: split
import numpy as np  # noqa: E402
import research_eval as R  # noqa: E402

from wildid.engine.identification import SYNC_CHUNK  # noqa: E402
from wildid.matching.features import LocalFeatures, features_from_arrays  # noqa: E402
from wildid.matching.global_index import GlobalIndex  # noqa: E402
from wildid.matching.identifier import DatabaseEntry  # noqa: E402


def jittered(f: LocalFeatures, rng: np.random.Generator) -> LocalFeatures:
    desc = f.descriptors + rng.normal(0, 0.02, f.descriptors.shape).astype(np.float32)
    nonneg, nonpos = (f.descriptors >= 0).all(axis=1), (f.descriptors <= 0).all(axis=1)
    if (nonneg | nonpos).all():  # RootSIFT rows keep their sign (a ridge channel's are negated);
        desc = np.where(nonneg[:, None], np.abs(desc), -np.abs(desc))  # projected ones are mixed
    out = features_from_arrays(f.xy + rng.normal(0, 1, f.xy.shape), desc, f.image_size,
                               f.extractor, f.scores, f.sizes, f.angles)
    # photometric profiles compare the texture; re-ranking ones match the learned keypoints
    return replace(out, texture_jpeg=f.texture_jpeg, learned=f.learned)


def synthetic_features(n: int, rng: np.random.Generator) -> list[LocalFeatures]:
    """RootSIFT-like features when ../shared is absent: sparse non-negative unit rows."""
    out = []
    for _ in range(n):
        k = 800
        desc = np.maximum(rng.normal(0, 1, (k, 128)), 0).astype(np.float32) ** 2
        desc = np.sqrt(desc / np.maximum(desc.sum(1, keepdims=True), 1e-9))
        out.append(features_from_arrays(rng.uniform(0, 500, (k, 2)), desc, (512, 384), "rootsift",
                                        rng.uniform(0, 1, k), rng.uniform(2, 20, k),
                                        rng.uniform(0, 6.28, k)))
    return out


def identify_speed(prof, base, queries, colour_db, colour_q, n, n_queries, rng, matcher=None,
                   variants=None, save=False):
    """Index ``n`` annotations once, then time ``n_queries`` identifications with the profile's
    matcher and with each of ``variants`` (label -> matcher, None: no re-ranking), in
    alternating rounds so that the machine's drift falls on all of them alike."""
    ident = prof.identifier(matcher=matcher)
    spent = 0.0
    for start in range(0, n, SYNC_CHUNK):  # as the engine loads a catalog
        chunk = []
        for i in range(start, min(n, start + SYNC_CHUNK)):
            j = i % len(base)
            f = base[j] if i < len(base) else jittered(base[j], rng)
            chunk.append(DatabaseEntry(f"a{i}", f"ind{i // 5}", f,
                                       vectors={"colour": colour_db[j]}))
        t0 = time.perf_counter()  # the indexing, not the making of the replicas
        ident.add_many(chunk)
        spent += time.perf_counter() - t0
        del chunk
    per_add = spent / n
    store = ident.local._store
    mem = store.nbytes if store is not None else 0
    runs = {"": (ident.matcher, ident.rerank_calibration)}
    for label, other in (variants or {}).items():
        runs[label] = (other, prof.rerank_calibration if other is not None else None)
    times: dict[str, list[float]] = {label: [] for label in runs}
    for j in range(n_queries):
        k = (j * 13) % len(queries)
        for label, (m, cal) in runs.items():
            ident.matcher, ident.rerank_calibration = m, cal
            t = time.perf_counter()
            ident.identify(queries[k], vectors={"colour": colour_q[k]})
            times[label].append(time.perf_counter() - t)
    for label, ts in times.items():
        head = (f"  {n:>7} annotations ({ident.local.n_descriptors} descriptors, store "
                f"{mem / 2**20:.0f} MiB, {per_add * 1000:.1f} ms to index each): identify"
                if not label else f"    {label}:")
        ratio = "" if not label else f" ({np.median(ts) / np.median(times['']):.2f}x)"
        print(f"{head} p50 {np.median(ts):.3f} s, p90 {np.percentile(ts, 90):.3f} s{ratio}",
              flush=True)
    if save:
        ident.matcher, ident.rerank_calibration = runs[""]
        saved_and_restored(prof, ident, queries, colour_q, spent, matcher)


def saved_and_restored(prof, ident, queries, colour_q, build_s: float, matcher) -> None:
    """Seconds to save the index as the engine does beside a catalog, and to restore it into a
    fresh identifier (what a start costs instead of the build), checked to rank alike."""
    import tempfile

    from wildid.engine.index_cache import read_index, write_index

    with tempfile.TemporaryDirectory(prefix="wildid-bench-") as tmp:
        path = Path(tmp) / "index.npz"
        t0 = time.perf_counter()
        try:
            size = write_index(path, ident, {})
        except OSError as exc:  # a full /tmp: say so, the other figures stand
            print(f"    saved index: not measured ({exc})", flush=True)
            return
        save_s = time.perf_counter() - t0
        back = prof.identifier(matcher=matcher)
        t0 = time.perf_counter()
        read_index(path, back, {})
        restore_s = time.perf_counter() - t0
    for k in range(3):
        a = ident.identify(queries[k], vectors={"colour": colour_q[k]})
        b = back.identify(queries[k], vectors={"colour": colour_q[k]})
        assert [(c.individual_id, c.score) for c in a] == [(c.individual_id, c.score) for c in b]
    print(f"    saved index: {size / 1e6:.0f} MB, saved in {save_s:.1f} s, restored in "
          f"{restore_s:.1f} s (built in {build_s:.1f} s)", flush=True)


def shortlist_speed(n: int, rng: np.random.Generator, dim: int = 512) -> None:
    g = GlobalIndex(dim)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    g.add_many(enumerate(vecs))
    mask = np.ones(len(g), bool)
    mask[::7] = False  # another species / viewpoint
    gt = []
    for j in range(30):
        t = time.perf_counter()
        g.search(vecs[j], 100, mask)
        gt.append(time.perf_counter() - t)
    print(f"  {n:>7} annotations: global shortlist (top 100 of {dim}-d float16, masked) p50 "
          f"{np.median(gt) * 1000:.1f} ms", flush=True)


def main(argv: list[str] | None = None) -> None:
    """``make bench`` runs it with the defaults; ``python tests/benchmarks/bench_scale.py
    --species lion`` measures another profile."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--species", default="nyala")
    ap.add_argument("--sizes", default="1000,10000", help="catalog sizes for full identification")
    ap.add_argument("--shortlist-sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--also-without-photometric", action="store_true",
                    help="measure each size a second time with photometric verification off")
    ap.add_argument("--nprobe", type=int, default=0,
                    help="coarse inverted lists probed (0: the profile's); below SPLIT_ROWS "
                         "twice as many finer ones")
    ap.add_argument("--also-without-ridge", action="store_true",
                    help="measure each size a second time on features without the ridge channel")
    ap.add_argument("--also-without-rerank", action="store_true",
                    help="time each size's queries also without the learned re-ranking")
    ap.add_argument("--also-matcher", default="",
                    help="comma list of other matcher models to time each size's queries with "
                         "(e.g. lightglue_aliked, the float model the 8-bit one derives from)")
    ap.add_argument("--manifest", type=Path, default=None,
                    help="the photos of this manifest instead of the species' shared ones (a "
                         "copy at full size, say: a profile's working size follows the photos)")
    ap.add_argument("--no-save", action="store_true",
                    help="skip timing the saved index (written to a temporary folder)")
    args = ap.parse_args(argv if argv is not None else [])
    from wildid.matching.profiles import load_profiles as _load

    prof = _load()[args.species]
    if args.nprobe:
        prof = replace(prof, config=replace(prof.config, nprobe=args.nprobe))
    rng = np.random.default_rng(0)
    matcher = None
    manifest = args.manifest or R.DATASETS / args.species / "manifest.csv"
    plain: tuple[list[LocalFeatures], list[LocalFeatures]] | None = None
    if manifest.exists():
        spec = R.profile_spec(prof)  # as the profile extracts them
        items = R.load_manifest(args.species, args.manifest)
        db = [x for x in items if x[2] == "database"]
        qs = [x for x in items if x[2] == "query"]
        feats = R.features_for(args.species, spec, db + qs)
        if args.also_without_ridge and prof.ridge_keypoints:
            other = R.features_for(args.species, R.profile_spec(replace(prof, ridge_keypoints=0)),
                                   db + qs)
            plain = other[:len(db)], other[len(db):]
        colour = R.colour_for(args.species, db + qs)
        base, queries = feats[:len(db)], feats[len(db):]
        colour_db, colour_q = colour[:len(db)], colour[len(db):]
        print(f"real {args.species} features ({manifest}), replicated with noise beyond "
              f"{len(base)}; {np.median([len(f) for f in base]):.0f} keypoints per annotation "
              "(median)")
        if prof.reranks:  # the learned keypoints the profile stores, and its matcher
            from wildid.vision.registry import ModelRegistry

            n_kp, side = prof.learned_keypoints, prof.long_side
            base = [replace(f, learned=g) for f, g in
                    zip(base, R.learned_for(args.species, n_kp, side, db), strict=True)]
            queries = [replace(f, learned=g) for f, g in
                       zip(queries, R.learned_for(args.species, n_kp, side, qs), strict=True)]
            matcher = ModelRegistry().matcher(prof.matcher_model)
    else:
        base, queries = synthetic_features(300, rng), synthetic_features(20, rng)
        colour_db = rng.uniform(0, 1, (300, 1024)).astype(np.float32)
        colour_q = rng.uniform(0, 1, (20, 1024)).astype(np.float32)
        print("../shared absent: synthetic RootSIFT-like features")
    print(f"identification (profile {prof.name}: {prof.config}"
          f"{f', re-ranked by {matcher.model_id}' if matcher is not None else ''})")
    variants: dict = {}
    if matcher is not None:
        from wildid.vision.registry import ModelRegistry

        for model_id in filter(None, args.also_matcher.split(",")):
            variants[f"with {model_id}"] = ModelRegistry().matcher(model_id)
        if args.also_without_rerank:
            variants["without the learned re-ranking"] = None
    for n in map(int, args.sizes.split(",")):
        identify_speed(prof, base, queries, colour_db, colour_q, n, args.queries, rng, matcher,
                       variants, save=not args.no_save)
        if args.also_without_photometric and prof.config.photometric:
            off = replace(prof, config=replace(prof.config, photometric=False))
            print("    without photometric verification:", end="")
            identify_speed(off, base, queries, colour_db, colour_q, n, args.queries, rng)
        if plain is not None:
            print("    without the ridge channel:", end="")
            identify_speed(replace(prof, ridge_keypoints=0), *plain, colour_db, colour_q, n,
                           args.queries, rng)
    print("global shortlist")
    for n in map(int, args.shortlist_sizes.split(",")):
        shortlist_speed(n, rng)


if __name__ == "__main__":
    main(sys.argv[1:])
