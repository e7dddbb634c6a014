"""The ONNX models at work: shipped embedder, keypoint extractor and matcher, and a user model
built here with onnx.helper.  Images are synthetic and small so this file runs in seconds."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.modelfactory import write_user_embedder
from wildid.errors import ModelError
from wildid.vision.embedder import GlobalEmbedder
from wildid.vision.keypoints import KeypointExtractor, LightGlueMatcher, LocalFeatures
from wildid.vision.manifest import load_manifest
from wildid.vision.registry import ModelRegistry, shipped_models_dir

SHIFT = (21, 13)  # (dx, dy) between the two crops used for keypoint tests


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """Deterministic RGB uint8 texture: smooth multi-scale noise plus hard-edged spots."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for cell, weight in ((48, 0.45), (12, 0.35), (3, 0.2)):
        small = rng.random((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        img += weight * cv2.resize(small, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(30):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(3, 20)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.random(3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry()


@pytest.fixture(scope="module")
def embedder(registry: ModelRegistry) -> GlobalEmbedder:
    return registry.embedder("efficientnet_lite0_embed")


@pytest.fixture(scope="module")
def extractor(registry: ModelRegistry) -> KeypointExtractor:
    return registry.keypoint_extractor()


@pytest.fixture(scope="module")
def crops() -> tuple[np.ndarray, np.ndarray]:
    big = textured(260, 340, 3)
    dx, dy = SHIFT
    return big[0:240, 0:300].copy(), big[dy : dy + 240, dx : dx + 300].copy()


# --------------------------------------------------------------------------- embedder
def test_shipped_embedder_gives_unit_vectors_that_respect_similarity(embedder: GlobalEmbedder) -> None:
    a = textured(240, 320, 1)
    other = textured(240, 320, 2)
    noisy = np.clip(a.astype(np.int16) + np.random.default_rng(5).integers(-12, 13, a.shape) + 15, 0, 255)
    crops = [a, a.copy(), a[:, ::-1], noisy.astype(np.uint8), other, a[:50, :90]]
    v = embedder.embed(crops)
    assert v.shape == (6, 1280) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(v[0], v[1], atol=1e-6)  # deterministic
    cos = v @ v[0]
    assert cos[2] > 0.94 and cos[3] > 0.9  # flipped, noisy + brighter (ReLU6 features: measured 0.964, 0.930)
    assert cos[2] > cos[4] and cos[3] > cos[4]  # both closer than a different texture
    assert embedder.dim == 1280 and embedder.model_id == "efficientnet_lite0_embed"


def test_embedder_batches_agree_and_accept_gray_rgba_and_empty(embedder: GlobalEmbedder) -> None:
    imgs = [textured(60 + 7 * i, 90, i) for i in range(20)]  # more than one batch of 16
    all_at_once = embedder.embed(imgs)
    one_by_one = np.concatenate([embedder.embed([i]) for i in imgs[:3]])
    assert np.allclose(all_at_once[:3], one_by_one, atol=1e-5)
    gray = imgs[0][:, :, 1]
    rgba = np.dstack([imgs[0], np.full(imgs[0].shape[:2], 255, np.uint8)])
    assert embedder.embed([gray, rgba]).shape == (2, 1280)
    assert np.allclose(embedder.embed([rgba])[0], all_at_once[0], atol=1e-6)
    assert embedder.embed([]).shape == (0, 1280)
    with pytest.raises(TypeError):
        embedder.embed([imgs[0].astype(np.float32)])


@pytest.mark.parametrize("colour", ["RGB", "BGR"])
def test_user_onnx_embedder_is_listed_and_usable(tmp_path: Path, colour: str) -> None:
    user = tmp_path / "models"
    write_user_embedder(user, colour=colour)
    reg = ModelRegistry(user_dir=user, settings_path=tmp_path / "models.json")
    entry = reg.get("tiny_user_embedder")
    assert entry.source == "user" and entry.ok and entry.task == "embedder"
    reg.set_active("embedder", "tiny_user_embedder")
    emb = reg.embedder()
    image = np.zeros((30, 50, 3), np.uint8)
    image[:] = (255, 0, 128)
    v = emb.embed([image])
    # (x/255 - 0.5) / 0.25 per channel, then L2-normalised; BGR reverses the channels.
    raw = (np.array([255.0, 0.0, 128.0]) / 255 - 0.5) / 0.25
    raw = raw[::-1] if colour == "BGR" else raw
    assert v.shape == (1, 3)
    assert np.allclose(v[0], raw / np.linalg.norm(raw), atol=1e-4)


def test_an_embedding_that_is_not_a_number_is_refused_naming_the_model(tmp_path: Path) -> None:
    """A faulty export gives NaN for some photos. Stored, such a vector failed the catalog's
    whole index ("embedding is zero or not finite") and no encounter could be matched; now
    the embedder refuses it, naming the model and the way back to the shipped one."""
    reg = ModelRegistry(user_dir=tmp_path, settings_path=tmp_path / "models.json")
    write_user_embedder(tmp_path, faulty=True)
    emb = reg.embedder("tiny_user_embedder")
    bright, dark = np.full((20, 20, 3), 230, np.uint8), np.full((20, 20, 3), 20, np.uint8)
    assert np.isfinite(emb.embed([bright])).all()
    with pytest.raises(ModelError) as err:
        emb.embed([bright, dark, dark])
    message = str(err.value)
    assert "model tiny_user_embedder gave an embedding that is not a number for 2 of 3 crops" \
        in message and "wildid models --reset embedder" in message
    with pytest.raises(ModelError, match="not a number for this crop"):
        emb.embed([dark])


def test_manifest_that_does_not_match_the_graph_is_a_model_error(tmp_path: Path) -> None:
    path = write_user_embedder(tmp_path, output="embedding")
    with pytest.raises(ModelError, match="no output named 'embedding'") as err:
        GlobalEmbedder(load_manifest(path))
    assert "tiny.onnx" in str(err.value)


def test_unloadable_onnx_file_is_a_model_error_naming_the_file(tmp_path: Path) -> None:
    path = write_user_embedder(tmp_path)
    garbage = b"\x00this is not a protobuf" * 10
    (tmp_path / "tiny.onnx").write_bytes(garbage)
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(sha256=hashlib.sha256(garbage).hexdigest(), size_bytes=len(garbage))
    path.write_text(json.dumps(data), encoding="utf-8")
    reg = ModelRegistry(user_dir=tmp_path, shipped_dir=tmp_path / "none")
    with pytest.raises(ModelError, match="cannot load model file") as err:
        reg.embedder("tiny_user_embedder")
    assert str(tmp_path / "tiny.onnx") in str(err.value)


# --------------------------------------------------------------------------- keypoints
def _shift_agreement(f0: LocalFeatures, f1: LocalFeatures) -> tuple[np.ndarray, float]:
    """Median displacement of mutual nearest-descriptor pairs, and share within 2 px of SHIFT."""
    sim = f0.descriptors @ f1.descriptors.T
    a = sim.argmax(1)
    b = sim.argmax(0)
    i0 = np.nonzero(b[a] == np.arange(len(a)))[0]
    d = f1.xy[a[i0]] - f0.xy[i0]
    expected = -np.array(SHIFT, np.float32)
    close = np.linalg.norm(d - expected, axis=1) < 2.0
    return np.median(d, axis=0), float(close.mean())


def test_keypoints_lie_in_the_image_and_follow_a_translation(
    extractor: KeypointExtractor, crops: tuple[np.ndarray, np.ndarray]
) -> None:
    a, b = crops
    fa = extractor.extract(a, max_keypoints=400)
    fb = extractor.extract(b, max_keypoints=400)
    for f in (fa, fb):
        assert 100 <= len(f) <= 400
        assert f.xy.dtype == np.float32 and f.descriptors.shape == (len(f), 128)
        assert (f.xy >= 0).all() and (f.xy[:, 0] <= 299).all() and (f.xy[:, 1] <= 239).all()
        assert np.allclose(np.linalg.norm(f.descriptors, axis=1), 1.0, atol=1e-4)
        assert (np.diff(f.scores) <= 0).all() and (f.scores > 0).all()
        assert f.image_size == (300, 240)
    median, share = _shift_agreement(fa, fb)
    assert np.allclose(median, -np.array(SHIFT), atol=0.5)
    assert share > 0.5


def test_downscaled_extraction_reports_coordinates_in_the_input_image(
    extractor: KeypointExtractor, crops: tuple[np.ndarray, np.ndarray]
) -> None:
    a, b = crops
    big_a = cv2.resize(a, (600, 480), interpolation=cv2.INTER_CUBIC)
    big_b = cv2.resize(b, (600, 480), interpolation=cv2.INTER_CUBIC)
    fa = extractor.extract(big_a, max_keypoints=300, max_side=300)
    fb = extractor.extract(big_b, max_keypoints=300, max_side=300)
    assert fa.image_size == (600, 480)
    assert fa.xy[:, 0].max() > 400 and fa.xy[:, 1].max() > 300  # full-size coordinates
    sim = fa.descriptors @ fb.descriptors.T
    a_idx = sim.argmax(1)
    mutual = sim.argmax(0)[a_idx] == np.arange(len(a_idx))
    d = fb.xy[a_idx[mutual]] - fa.xy[mutual]
    assert np.allclose(np.median(d, axis=0), -2 * np.array(SHIFT), atol=1.5)


def test_tiny_and_gray_images_work_and_max_keypoints_is_respected(extractor: KeypointExtractor) -> None:
    tiny = textured(20, 45, 9)
    f = extractor.extract(tiny, max_keypoints=50)
    assert len(f) <= 50 and ((f.xy >= 0) & (f.xy <= [44, 19])).all()
    g = extractor.extract(textured(128, 128, 4)[:, :, 0], max_keypoints=7)
    assert len(g) == 7


@pytest.fixture(scope="module")
def one_go(registry: ModelRegistry) -> KeypointExtractor:
    """The shipped ALIKED as one graph: its manifest without ``stages``."""
    return KeypointExtractor(replace(registry.verified("aliked_n16"), stages={}), threads=1)


def test_shipped_keypoints_run_in_stages_as_the_one_go_graph(
    extractor: KeypointExtractor, one_go: KeypointExtractor
) -> None:
    assert extractor.model is None and one_go.model is not None  # stages used where shipped
    for img, side in ((textured(240, 300, 5), 640), (textured(410, 290, 6), 256)):
        a, b = extractor.extract(img, max_keypoints=400, max_side=side), one_go.extract(
            img, max_keypoints=400, max_side=side)
        assert len(a) == len(b) > 100
        assert np.array_equal(a.xy, b.xy) and np.array_equal(a.scores, b.scores)
        assert np.allclose(a.descriptors, b.descriptors, atol=1e-5)
        assert np.allclose(np.linalg.norm(a.descriptors, axis=1), 1, atol=1e-5)


def test_stages_without_the_names_they_need_are_a_model_error(registry: ModelRegistry) -> None:
    manifest = registry.verified("aliked_n16")
    swapped = {"detect": manifest.stages["describe"], "describe": manifest.stages["detect"]}
    with pytest.raises(ModelError, match=r"aliked_n16_describe\.onnx has no input named 'image'"):
        KeypointExtractor(replace(manifest, stages=swapped))


def test_only_the_keypoints_chosen_are_described(
    extractor: KeypointExtractor, one_go: KeypointExtractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = textured(240, 300, 7)
    seen: list[int] = []

    def choose(xy: np.ndarray, scores: np.ndarray) -> np.ndarray:
        assert len(xy) == len(scores) == 300 and np.all(np.diff(scores) <= 0)  # strongest first
        return np.argsort(xy[:, 0], kind="stable")[:25][::-1]  # the 25 leftmost, right to left

    run = extractor.describe.run

    def counted(names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        seen.append(len(feed["keypoints_normalised"]))
        return run(names, feed)

    monkeypatch.setattr(extractor.describe, "run", counted)
    staged = extractor.extract(img, max_keypoints=300, choose=choose)
    whole = one_go.extract(img, max_keypoints=300)
    assert seen == [25]
    pick = np.argsort(whole.xy[:, 0], kind="stable")[:25][::-1]
    assert np.array_equal(staged.xy, whole.xy[pick]) and np.array_equal(staged.scores, whole.scores[pick])
    assert np.allclose(staged.descriptors, whole.descriptors[pick], atol=1e-5)
    chosen = one_go.extract(img, max_keypoints=300, choose=choose)  # one graph: same result
    assert np.array_equal(chosen.xy, staged.xy)
    assert np.allclose(chosen.descriptors, staged.descriptors, atol=1e-5)
    none = extractor.extract(img, max_keypoints=300, choose=lambda xy, s: np.zeros(0, np.int64))
    assert len(none) == 0 and none.descriptors.shape == (0, 128)
    with pytest.raises(ValueError, match="outside"):
        extractor.extract(img, max_keypoints=300, choose=lambda xy, s: np.array([300]))


# --------------------------------------------------------------------------- matcher
@pytest.mark.parametrize("model_id", ["lightglue_aliked", "lightglue_aliked_int8"])
def test_lightglue_matches_follow_the_translation(
    registry: ModelRegistry, extractor: KeypointExtractor, crops: tuple[np.ndarray, np.ndarray],
    model_id: str,
) -> None:
    """The float LightGlue and its 8-bit derivative (what the nyala profile re-ranks with)."""
    if not (shipped_models_dir() / f"{model_id}.json").is_file():
        pytest.skip(f"{model_id} is not shipped in this checkout")
    matcher: LightGlueMatcher = registry.matcher(model_id)
    a, b = crops
    fa = extractor.extract(a, max_keypoints=256)
    fb = extractor.extract(b, max_keypoints=256)
    i0, i1, conf = matcher.match(fa, fb)
    assert len(i0) >= 60 and len(set(i0.tolist())) == len(i0) and len(set(i1.tolist())) == len(i1)
    assert ((conf > 0.1) & (conf <= 1.0)).all()
    d = fb.xy[i1] - fa.xy[i0]
    assert np.allclose(np.median(d, axis=0), -np.array(SHIFT), atol=0.5)
    assert (np.linalg.norm(d + np.array(SHIFT), axis=1) < 3).mean() > 0.9
    empty = LocalFeatures(np.zeros((0, 2), np.float32), np.zeros(0, np.float32),
                          np.zeros((0, 128), np.float32), (10, 10))
    assert [len(x) for x in matcher.match(fa, empty)] == [0, 0, 0]


def test_8bit_lightglue_scores_like_the_float_one(
    registry: ModelRegistry, extractor: KeypointExtractor, crops: tuple[np.ndarray, np.ndarray]
) -> None:
    """The quantised matcher is a faster copy, not another matcher: on the same pair, and on a
    pair of unrelated textures, its summed confidence stays within a few percent of the float
    model's (the second-stage calibration reads that sum)."""
    if not (shipped_models_dir() / "lightglue_aliked_int8.json").is_file():
        pytest.skip("the 8-bit LightGlue is not shipped in this checkout")
    plain, quick = registry.matcher("lightglue_aliked"), registry.matcher("lightglue_aliked_int8")
    a, b = crops
    fa, fb = extractor.extract(a, max_keypoints=256), extractor.extract(b, max_keypoints=256)
    other = extractor.extract(textured(200, 240, 11), max_keypoints=256)
    same = [float(m.match(fa, fb)[2].sum()) for m in (plain, quick)]
    unrelated = [float(m.match(fa, other)[2].sum()) for m in (plain, quick)]
    assert same[0] > 60 and abs(same[1] / same[0] - 1) < 0.05
    assert abs(unrelated[1] - unrelated[0]) < 0.05 * same[0]


def test_reid_embedder_says_where_it_looks(registry: ModelRegistry) -> None:
    """The shipped re-id model's ``attention`` output: one non-negative 8x8 map per crop that
    follows the animal, not the photo frame; its embedding is the model's usual output."""
    reid = registry.embedder("reid_lite0_nyala_lion")
    plain = registry.embedder("efficientnet_lite0_embed")
    assert reid.has_attention and not plain.has_attention
    with pytest.raises(ModelError, match="attention"):
        plain.attention([textured(64, 64, 1)])
    flat = np.full((256, 256, 3), 120, np.uint8)
    spot = flat.copy()
    spot[:, 128:] = textured(256, 128, 2)  # structure only on the right half
    maps = reid.attention([flat, spot, textured(100, 300, 4)])
    assert [m.shape for m in maps] == [(8, 8)] * 3
    assert all(np.isfinite(m).all() and m.min() >= 0 for m in maps)
    assert maps[1][:, 4:].mean() > maps[1][:, :4].mean()
    v = reid.embed([spot])
    assert v.shape == (1, 512) and abs(float(np.linalg.norm(v)) - 1) < 1e-5


def test_embedding_and_attention_of_the_same_crops_take_one_run(
        registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Extraction asks for both of the same crops; the graph runs once per batch for them."""
    reid = registry.embedder("reid_lite0_nyala_lion")
    crops = [textured(120, 200, s) for s in (5, 6, 7)]
    runs: list[list[str]] = []
    real = reid.model.run
    monkeypatch.setattr(reid.model, "run", lambda names, feed: runs.append(list(names))
                        or real(names, feed))
    maps = reid.attention(crops)
    vecs = reid.embed(crops)
    assert runs == [["embedding", "attention"]]
    fresh = registry.embedder("reid_lite0_nyala_lion")
    assert np.allclose(vecs, fresh.embed([c.copy() for c in crops]), atol=1e-6)
    assert all(np.allclose(a, b) for a, b in zip(maps, fresh.attention(crops), strict=True))
    reid.embed([c.copy() for c in crops])  # other images: a new run
    assert len(runs) == 2
