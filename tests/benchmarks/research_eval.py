"""Research harness: identification accuracy and speed on a manifest (not a pytest test).

    nice -n 10 .venv/bin/python tests/benchmarks/research_eval.py --species nyala \
        --methods lnbnn,ours

Database = split ``database``, queries = split ``query``.  Features are extracted once per
configuration and cached under /tmp/wildid_research (as the compact bytes the app stores), and
so are the raw kNN lists, so trying scoring variants is cheap.  Prints top-1/top-5/mAP and
timings for every method in the same run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from wildid.matching import metrics  # noqa: E402
from wildid.matching.calibration import fit_calibration  # noqa: E402
from wildid.matching.features import LocalFeatures, RootSiftExtractor  # noqa: E402
from wildid.matching.identifier import (  # noqa: E402
    Identifier,
    IdentifierConfig,
    local_score_names,
    score_transform,
)
from wildid.matching.local_index import KnnResult, LocalIndex  # noqa: E402
from wildid.matching.profiles import DEFAULTS_PATH, SpeciesProfile  # noqa: E402
from wildid.matching.projection import DescriptorProjection  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
CACHE = Path("/tmp/wildid_research")


def load_manifest(species: str, manifest: Path | None = None) -> list[tuple[Path, str, str]]:
    """(photo, identity, split) rows of the species' shared manifest, or of ``manifest`` (a
    copy of the photos at another size, say), paths resolved against its folder."""
    path = manifest or DATASETS / species / "manifest.csv"
    with open(path, newline="") as fh:
        return [(path.parent / r["path"], r["identity"], r["split"].strip())
                for r in csv.DictReader(fh)]


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def projection_of(spec: str) -> DescriptorProjection | None:
    """The descriptor projection a spec names with ``J=file`` (in ``wildid/matching/defaults``)."""
    kv = dict(o.split("=") for o in spec.split(":")[1:] if "=" in o)
    return DescriptorProjection.load(DEFAULTS_PATH.parent / kv["J"]) if "J" in kv else None


def profile_spec(p: SpeciesProfile) -> str:
    """The extractor spec (see :func:`make_extractor`) that makes a profile's features."""
    spec = f"sift:L={p.long_side}:N={p.max_keypoints}:C={p.contrast_threshold}"
    spec += f":M={p.long_side_max}" if p.long_side_max else ""
    spec += f":A={p.attention_power:g}" if p.attention_power > 0 else ""
    spec += f":J={p.descriptor_projection['file']}" if p.descriptor_projection else ""
    spec += f":H={p.tophat}" if p.tophat else ""
    spec += f":R={p.ridge_keypoints}" if p.ridge_keypoints else ""
    return spec + (":T=1" if p.config.photometric else "")


def make_extractor(spec: str) -> tuple[str, Callable[[np.ndarray], LocalFeatures]]:
    """``sift:L=512:N=1000:C=0.02[:M=long side max][:D=detail][:A=attention power][:P=pool]
    [:J=projection][:T=1]`` or ``aliked:...``.

    ``M``: crops larger than ``L`` described at up to twice their size, at most ``M`` (the
    profile's ``long_side_max``).

    ``A``: keypoints placed by the shipped re-id model's attention (as the app's profiles do).
    ``J``: a descriptor projection file in ``wildid/matching/defaults`` (as a profile names it).
    ``T=1``: keep the grey working-size crop with the features (photometric verification).
    ``H``: SIFT on the white top-hat of that diameter (the profile's ``tophat``).
    ``R``: that many more keypoints on the ridge map, negated (the profile's ``ridge_keypoints``).
    """
    kind, *opts = spec.split(":")
    kv = dict(o.split("=") for o in opts)
    if kind == "sift":
        power = float(kv.get("A", 0.0))
        ext = RootSiftExtractor(max_keypoints=int(kv.get("N", 1000)),
                                long_side=int(kv.get("L", 512)),
                                long_side_max=int(kv.get("M", 0)),
                                contrast_threshold=float(kv.get("C", 0.02)),
                                detail_side=int(kv["D"]) if "D" in kv else None,
                                attention_power=power, attention_pool=int(kv.get("P", 3)),
                                projection=projection_of(spec), texture=kv.get("T") == "1",
                                tophat=int(kv.get("H", 0)), ridge_keypoints=int(kv.get("R", 0)))
        if power <= 0:
            return spec, ext.extract
        from wildid.vision.registry import ModelRegistry

        reid = ModelRegistry().embedder("reid_lite0_nyala_lion")
        return spec, lambda img: ext.extract(img, attention=reid.attention([img])[0])
    if kind == "aliked":
        from wildid.matching.features import features_from_arrays, resize_to_working
        from wildid.vision.registry import ModelRegistry

        model = ModelRegistry().keypoint_extractor("aliked_n16")
        n, side = int(kv.get("N", 1000)), int(kv.get("L", 512))

        def run(img: np.ndarray) -> LocalFeatures:
            h, w = img.shape[:2]
            work, scale = resize_to_working(img, side)
            out = model.extract(work, max_keypoints=n, max_side=side)
            xy = (np.asarray(out.xy, np.float32) + 0.5) / np.float32(scale) - 0.5
            return features_from_arrays(xy, out.descriptors, (w, h), "aliked_n16", out.scores)
        return spec, run
    raise SystemExit(f"unknown extractor {spec}")


def learned_for(species: str, n: int, side: int, items: list[tuple[Path, str, str]]) -> list:
    """ALIKED keypoints per photo placed by the re-id attention, as the app's profiles with
    ``learned_keypoints`` store them (wildid.engine.sources.learned_keypoints); cached."""
    from wildid.engine.sources import LEARNED_POOL, learned_keypoints
    from wildid.matching.features import LearnedKeypoints
    from wildid.vision.registry import ModelRegistry

    photos = photos_tag(items)
    path = CACHE / f"learned_{species}_{n}of{LEARNED_POOL * n}_{side}_{photos}.pkl"
    if path.exists():
        blobs = pickle.loads(path.read_bytes())
    else:
        registry = ModelRegistry()
        aliked = registry.keypoint_extractor("aliked_n16")
        reid = registry.embedder("reid_lite0_nyala_lion")
        t0, blobs = time.perf_counter(), []
        for i, (p, _, _) in enumerate(items):
            img = read_rgb(p)
            blobs.append(learned_keypoints(aliked, img, reid.attention([img])[0], n,
                                           side).to_bytes())
            if i % 200 == 0:
                print(f"  learned keypoints {i}/{len(items)}", file=sys.stderr, flush=True)
        print(f"  learned keypoints: {(time.perf_counter() - t0) / len(items) * 1000:.0f} "
              f"ms/image", file=sys.stderr)
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(blobs))
    return [LearnedKeypoints.from_buffer(b, 0)[0] for b in blobs]


def photos_tag(items: list[tuple[Path, str, str]]) -> str:
    """A short digest of which photos a cache holds."""
    return hashlib.sha1("\n".join(str(p) for p, _, _ in items).encode()).hexdigest()[:8]


def features_for(species: str, spec: str, items: list[tuple[Path, str, str]]) -> list[LocalFeatures]:
    # keyed by the photos too: the calibration fit extracts the database split alone
    photos = photos_tag(items)
    tag = hashlib.sha1(f"{species}|{spec}|{photos}".encode()).hexdigest()[:10]
    path = CACHE / f"feat_{species}_{tag}.pkl"
    if path.exists():
        blobs = pickle.loads(path.read_bytes())
    else:
        _, fn = make_extractor(spec)
        t0 = time.perf_counter()
        blobs = []
        for i, (p, _, _) in enumerate(items):
            blobs.append(fn(read_rgb(p)).to_bytes())
            if i % 200 == 0:
                print(f"  extract {spec} {i}/{len(items)}", file=sys.stderr, flush=True)
        dt = (time.perf_counter() - t0) / len(items)
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(blobs))
        (CACHE / f"feat_{species}_{tag}.time").write_text(f"{dt:.4f}")
        print(f"  extracted {spec}: {dt * 1000:.0f} ms/image", file=sys.stderr)
    timing = CACHE / f"feat_{species}_{tag}.time"
    sec = float(timing.read_text()) if timing.exists() else float("nan")
    feats = [LocalFeatures.from_bytes(b) for b in blobs]
    print(f"  {spec}: {np.mean([len(b) for b in blobs]) / 1024:.1f} KiB/annotation, "
          f"{np.mean([len(f) for f in feats]):.0f} kp, {sec * 1000:.0f} ms/image extract",
          file=sys.stderr)
    return feats


def embeddings_for(species: str, items: list[tuple[Path, str, str]],
                   model_id: str = "efficientnet_lite0_embed") -> np.ndarray:
    """Global embeddings (N, D) of every crop, cached."""
    path = CACHE / f"emb_{species}_{model_id}.npy"
    if path.exists():
        return np.load(path)
    from wildid.vision.registry import ModelRegistry

    emb = ModelRegistry().embedder(model_id)
    t0 = time.perf_counter()
    out = np.concatenate([emb.embed([read_rgb(p) for p, _, _ in items[i:i + 16]])
                          for i in range(0, len(items), 16)])
    print(f"  embedded {model_id}: {(time.perf_counter() - t0) / len(items) * 1000:.0f} ms/image",
          file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out.astype(np.float32))
    return out


def colour_for(species: str, items: list[tuple[Path, str, str]]) -> np.ndarray:
    """Colour histograms (N, 512) of every crop, cached."""
    from wildid.matching.features import colour_histogram

    path = CACHE / f"colour_{species}_{photos_tag(items)}.npy"  # keyed by the photos too
    if not path.exists():
        np.save(path, np.stack([colour_histogram(read_rgb(p)) for p, _, _ in items]))
    return np.load(path)


def knn_for(species: str, spec: str, db_feats: list[LocalFeatures], q_feats: list[LocalFeatures],
            k_total: int, nprobe: int, mirror: bool = False) -> tuple[list[KnnResult], LocalIndex, float]:
    """Raw kNN lists of every query against one index over all database descriptors (cached)."""
    from wildid.matching.features import mirror_sift_descriptors

    index = LocalIndex(nprobe=nprobe)
    t0 = time.perf_counter()
    index.add_many((i, f) for i, f in enumerate(db_feats))
    build = time.perf_counter() - t0
    tag = hashlib.sha1(f"{species}|{spec}|{k_total}|ivf{nprobe}|{mirror}".encode()).hexdigest()[:10]
    path = CACHE / f"knn_{species}_{tag}.pkl"
    if path.exists():
        knns, per_q = pickle.loads(path.read_bytes())
    else:
        knns, t0 = [], time.perf_counter()
        for f in q_feats:
            desc = mirror_sift_descriptors(f.descriptors) if mirror else f.descriptors
            knns.append(index.knn(desc, k_total))
        per_q = (time.perf_counter() - t0) / len(q_feats)
        path.write_bytes(pickle.dumps((knns, per_q)))
    print(f"  index {index.n_descriptors} rows built in {build:.1f}s; kNN {per_q * 1000:.0f} ms/query",
          file=sys.stderr)
    return knns, index, per_q


def build(species: str, spec: str, config: IdentifierConfig, db: list, db_feats: list,
          db_vecs: dict[str, np.ndarray]) -> tuple[Identifier, float]:
    """An Identifier over the database split; returns it and seconds per added annotation."""
    projection = projection_of(spec)  # projected descriptors mirror by sign flips
    ident = Identifier(config, mirror_descriptors=projection.mirror if projection else None)
    t0 = time.perf_counter()
    for i, ((_, identity, _), f) in enumerate(zip(db, db_feats, strict=False)):
        ident.add(i, identity, f, vectors={n: v[i] for n, v in db_vecs.items()})
    return ident, (time.perf_counter() - t0) / max(len(db), 1)


def calibration_pairs(species: str, tag: str, ident: Identifier, db_feats: list,
                      db_vecs: dict[str, np.ndarray], every: int) -> tuple[list[dict], np.ndarray]:
    """Leave-one-out on the database split: each ``every``-th annotation queries the rest."""
    path = CACHE / f"calpairs_{species}_{hashlib.sha1(tag.encode()).hexdigest()[:10]}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    rows, labels = [], []
    for i in range(0, len(db_feats), every):
        raw = ident.raw_scores(db_feats[i], None, {i}, {n: v[i] for n, v in db_vecs.items()})
        own = ident.individual_of(i)
        for key, r in raw.items():
            rows.append(r)
            labels.append(ident.individual_of(key) == own)
    out = (rows, np.array(labels))
    path.write_bytes(pickle.dumps(out))
    return out


def run_method(name: str, ident: Identifier, q_feats: list, q_vecs: dict[str, np.ndarray],
               db_ids: list[str], q_ids: list[str]) -> dict[str, float]:
    rankings, ann_rankings, times = [], [], []
    for i, f in enumerate(q_feats):
        res = ident.identify(f, top_k=50, vectors={n: v[i] for n, v in q_vecs.items()})
        times.append(res.seconds)
        rankings.append([c.individual_id for c in res])
        sc = res.annotation_scores
        ann_rankings.append([db_ids[k] for k in sorted(sc, key=lambda x: -sc[x])])
    n_rel = [sum(1 for d in db_ids if d == q) for q in q_ids]
    out = dict(top1=metrics.top_k_accuracy(rankings, q_ids, 1),
               top5=metrics.top_k_accuracy(rankings, q_ids, 5),
               mAP=metrics.mean_average_precision(ann_rankings, q_ids, n_rel),
               s_per_query=float(np.median(times)))
    print(f"{name:<44} top1 {out['top1'] * 100:5.1f}  top5 {out['top5'] * 100:5.1f}  "
          f"mAP {out['mAP'] * 100:5.1f}  {out['s_per_query'] * 1000:6.0f} ms/query (p50)",
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--species", default="nyala")
    ap.add_argument("--feat", default="sift:L=512:N=1000:C=0.02")
    ap.add_argument("--methods", default="lnbnn,ours")
    ap.add_argument("--config", default="{}", help="JSON overrides of IdentifierConfig")
    ap.add_argument("--vectors", default="",
                    help="comma list of vector sources: colour, or an embedder model id")
    ap.add_argument("--cal-every", type=int, default=4, help="database leave-one-out stride")
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args()
    items = load_manifest(args.species)
    db = [x for x in items if x[2] == "database"]
    qs = [x for x in items if x[2] == "query"]
    feats = features_for(args.species, args.feat, db + qs)
    db_feats, q_feats = feats[:len(db)], feats[len(db):]
    vecs = {}
    for name in filter(None, args.vectors.split(",")):
        vecs[name] = (colour_for(args.species, db + qs) if name == "colour"
                      else embeddings_for(args.species, db + qs, name))
    db_vecs = {n: v[:len(db)] for n, v in vecs.items()}
    q_vecs = {n: v[len(db):] for n, v in vecs.items()}
    db_ids, q_ids = [x[1] for x in db], [x[1] for x in qs]
    config = IdentifierConfig.from_dict(json.loads(args.config))
    ident, per_add = build(args.species, args.feat, config, db, db_feats, db_vecs)
    print(f"  database: {len(db)} annotations, {ident.local.n_descriptors} descriptors, "
          f"{per_add * 1000:.1f} ms/annotation to index", file=sys.stderr)
    results = {}
    for method in args.methods.split(","):
        if method == "lnbnn":
            ident.config = replace(config, method="lnbnn", mirror=False)
            ident.calibration = None
            results[method] = run_method("lnbnn (HotSpotter baseline)", ident, q_feats, {},
                                         db_ids, q_ids)
        elif method == "ours":
            ident.config = config
            ident.calibration = None
            tag = f"{args.species}|{args.feat}|{config}|{args.vectors}|{args.cal_every}"
            rows, labels = calibration_pairs(args.species, tag, ident, db_feats, db_vecs,
                                             args.cal_every)
            feats_names = [*local_score_names(config), *vecs]
            transforms = [score_transform(f) for f in feats_names]
            ident.calibration = fit_calibration(rows, labels, feats_names, transforms)
            print(f"  calibration on {len(labels)} database pairs: coef "
                  f"{np.round(ident.calibration.coef, 2).tolist()}", file=sys.stderr)
            results[method] = run_method(f"ours +{args.vectors}", ident, q_feats, q_vecs, db_ids,
                                         q_ids)
        else:
            raise SystemExit(f"unknown method {method}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
