"""The in-memory Identifier: ranking, exclusions, inliers, open-set verdict, profiles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from wildid.errors import MatchingError
from wildid.matching.calibration import CalibrationModel, FirstPlaceCalibration, fit_calibration
from wildid.matching.features import RootSiftExtractor, colour_histogram
from wildid.matching.identifier import Identifier, IdentifierConfig
from wildid.matching.profiles import SpeciesProfile, load_profiles, profile_for, save_profiles

from .test_matching_features import texture
from .test_matching_geometry import warp

EXT = RootSiftExtractor(max_keypoints=300, long_side=320)


def coat(img: np.ndarray, ind: int) -> np.ndarray:
    """The grey texture in an individual's own colours (the keypoints come from the grey one:
    SIFT sees grey anyway)."""
    tint = np.random.default_rng(ind).uniform(0.35, 1.0, 3)
    return np.clip(img * tint, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def catalog() -> dict[str, object]:
    """Eight 'individuals' (textures), two photos each: the original and a warped view."""
    feats = {}
    for ind in range(8):
        img = texture(100 + ind)
        feats[(f"ind{ind}", "a")] = (EXT.extract(img), colour_histogram(coat(img, ind)))
        other = warp(img, seed=ind)[0]
        feats[(f"ind{ind}", "b")] = (EXT.extract(other), colour_histogram(coat(other, ind)))
    query_img = warp(texture(103), seed=42)[0]
    return {"feats": feats, "query": EXT.extract(query_img),
            "query_colour": colour_histogram(coat(query_img, 3)),
            "query_grey": colour_histogram(query_img), "new": EXT.extract(texture(999))}


def build(catalog: dict[str, object], config: IdentifierConfig | None = None) -> Identifier:
    ident = Identifier(config or IdentifierConfig(k=2))
    for (ind, view), (f, col) in catalog["feats"].items():  # type: ignore[attr-defined]
        ident.add(f"{ind}/{view}", ind, f, vectors={"colour": col})
    return ident


def test_identify_ranks_the_right_individual_with_inliers(catalog: dict[str, object]) -> None:
    ident = build(catalog)
    res = ident.identify(catalog["query"], top_k=5,  # type: ignore[arg-type]
                         vectors={"colour": catalog["query_colour"]})
    assert res[0].individual_id == "ind3"
    assert len(res) == 5 and len({c.individual_id for c in res}) == 5
    assert res[0].best_key in ("ind3/a", "ind3/b")
    assert res[0].inliers.shape[1] == 4 and len(res[0].inliers) >= 8
    assert {"lnbnn", "sv", "inliers", "colour"} <= set(res[0].raw)
    assert all(0.0 <= c.score <= 1.0 for c in res)
    assert res[0].score >= res[1].score


def test_a_colourless_photo_is_compared_without_its_colour(catalog: dict[str, object]) -> None:
    """A night shot (or any greyscale photo) has no colour to compare: its colour score is
    left missing, against colour photos and grey ones alike, and the calibration fills in
    what different individuals typically have; the markings still find the individual."""
    ident = build(catalog)
    q = catalog["query"]
    res = ident.identify(q, top_k=8, vectors={"colour": catalog["query_grey"]})  # type: ignore[arg-type]
    assert res[0].individual_id == "ind3"
    assert all("colour" not in c.raw for c in res)
    # a grey photo in the catalog: that one pair goes without colour, the others keep it
    grey_key = "ind3/a"
    features = catalog["feats"][("ind3", "a")][0]  # type: ignore[index]
    ident.add(grey_key, "ind3", features, vectors={"colour": colour_histogram(texture(103))})
    raw, _ = ident._raw_scores(q, {"colour": catalog["query_colour"]},  # type: ignore[arg-type]
                               set())
    assert "colour" not in raw[grey_key]
    assert all("colour" in r for key, r in raw.items() if key != grey_key)


def test_a_vector_that_is_not_a_number_is_compared_without(catalog: dict[str, object]) -> None:
    """Embeddings a faulty model stored before extraction refused them (NaN, all zero): one
    such vector failed the whole index ("embedding is zero or not finite"), so nothing in the
    catalog could be matched. Now that source is missing for those annotations alone."""
    ident = build(catalog)
    good = np.array([1.0, 0.0, 0.0], np.float32)
    for n, (key, ind) in enumerate((("ind3/a", "ind3"), ("ind5/a", "ind5"))):
        features = catalog["feats"][(ind, "a")][0]  # type: ignore[index]
        ident.add(key, ind, features, global_vec=np.full(3, np.nan) if n else np.zeros(3))
    ident.add("ind6/a", "ind6", catalog["feats"][("ind6", "a")][0],  # type: ignore[index]
              global_vec=good)
    assert ident.vectors["global"].keys == ["ind6/a"]
    q = catalog["query"]
    for query_vec in (good, np.full(3, np.inf)):
        res = ident.identify(q, top_k=3, global_vec=query_vec)  # type: ignore[arg-type]
        assert res[0].individual_id == "ind3"
        assert all(np.isfinite(c.score) for c in res)
        assert "global" not in res[0].raw


def test_an_individual_asked_for_is_compared_whatever_its_rank(catalog: dict[str, object]
                                                                ) -> None:
    """A reviewer believes the right animal is not among the candidates: asked for, it is
    verified like a shortlisted one and returned after the top ones, with where it ranks,
    even when it was rejected for this query before."""
    ident = build(catalog)
    q = catalog["query"]
    plain = ident.identify(q, top_k=8)  # type: ignore[arg-type]
    order = [c.individual_id for c in plain]
    low = order[-1]
    asked = ident.identify(q, top_k=2, also=low)  # type: ignore[arg-type]
    assert [c.individual_id for c in asked] == [*order[:2], low]
    assert asked.also_rank == 7
    assert "sv" in asked.candidates[-1].raw  # verified, not LNBNN alone
    assert asked.candidates[-1].score == pytest.approx(plain.candidates[-1].score)
    again = ident.identify(q, top_k=2, also=low, query_key="q",  # type: ignore[arg-type]
                           exclude_pairs=[("q", low)])
    assert again.candidates[-1].individual_id == low
    first = ident.identify(q, top_k=2, also=order[0])  # type: ignore[arg-type]
    assert [c.individual_id for c in first] == order[:2] and first.also_rank == 0
    assert ident.identify(q, top_k=2, also="nobody").also_rank is None  # type: ignore[arg-type]


def test_exclusions_and_rejected_pairs(catalog: dict[str, object]) -> None:
    ident = build(catalog)
    q = catalog["query"]
    res = ident.identify(q, exclude_keys={"ind3/a", "ind3/b"})  # type: ignore[arg-type]
    assert "ind3" not in [c.individual_id for c in res]
    res = ident.identify(q, query_key="q1", exclude_pairs=[("q1", "ind3"), ("q2", "ind5")])  # type: ignore[arg-type]
    ids = [c.individual_id for c in res]
    assert "ind3" not in ids and "ind5" in ids
    ident.remove("ind3/a")
    ident.remove("ind3/b")
    assert "ind3" not in [c.individual_id for c in ident.identify(q)]  # type: ignore[arg-type]
    assert len(ident) == 14


def test_viewpoint_and_species_filters(catalog: dict[str, object]) -> None:
    ident = Identifier(IdentifierConfig(k=2))
    for (ind, view), (f, _) in catalog["feats"].items():  # type: ignore[attr-defined]
        ident.add(f"{ind}/{view}", ind, f, species="zebra" if ind == "ind3" else "nyala",
                  viewpoint="left" if view == "a" else "right")
    q = catalog["query"]
    assert ident.identify(q, species="nyala")[0].individual_id != "ind3"  # type: ignore[arg-type]
    res = ident.identify(q, viewpoint="left")  # type: ignore[arg-type]
    assert all(c.best_key.endswith("/a") for c in res)


def calibrated(catalog: dict[str, object]) -> Identifier:
    """The catalog's identifier with a calibration fitted on its own leave-one-out pairs
    (threshold 0.5)."""
    ident = build(catalog, IdentifierConfig(k=2, global_shortlist=0))
    rows, labels = [], []
    for (ind, view), (f, _) in catalog["feats"].items():  # type: ignore[attr-defined]
        key = f"{ind}/{view}"
        for cand, raw in ident.raw_scores(f, exclude_keys={key}).items():
            rows.append(raw)
            labels.append(ident.individual_of(cand) == ind)
    ident.calibration = fit_calibration(rows, labels, ["lnbnn", "sv", "inliers"],
                                        ["log1p"] * 3, threshold=0.5)
    return ident


def test_open_set_verdict_uses_calibrated_threshold(catalog: dict[str, object]) -> None:
    ident = calibrated(catalog)
    known = ident.identify(catalog["query"])  # type: ignore[arg-type]
    new = ident.identify(catalog["new"])  # type: ignore[arg-type]
    assert not known.likely_new and known[0].individual_id == "ind3"
    assert new.likely_new
    assert known[0].score > (new[0].score if len(new) else 0.0)


def test_a_catalog_smaller_than_the_calibrations_shifts_the_shown_level_not_the_order(
        catalog: dict[str, object]) -> None:
    plain = calibrated(catalog)
    base = plain.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    # 16 annotations compared, the calibration fitted at 64: the logit drops by 1.5 * log(4)
    small = replace_identifier(plain, size_slope=1.5, size_reference=64)
    res = small.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    assert [c.individual_id for c in res] == [c.individual_id for c in base]
    assert [logit(c.score) - logit(b.score) for c, b in zip(res, base, strict=True)] == \
        pytest.approx([-1.5 * np.log(4)] * 5, abs=1e-6)
    assert small.size_shift(16) == pytest.approx(-1.5 * np.log(4))
    # the annotations a query is not compared with (its own encounter's) do not count
    own = {"ind0/a", "ind0/b"}
    res = small.identify(catalog["query"], top_k=5, exclude_keys=own)  # type: ignore[arg-type]
    base = plain.identify(catalog["query"], top_k=5, exclude_keys=own)  # type: ignore[arg-type]
    assert logit(res[0].score) - logit(base[0].score) == pytest.approx(-1.5 * np.log(64 / 14),
                                                                       abs=1e-6)
    # the verdict follows the shown score; at or above the reference nothing moves
    assert small.size_shift(64) == small.size_shift(100) == 0.0
    at_reference = replace_identifier(plain, size_slope=1.5, size_reference=16)
    assert at_reference.identify(catalog["query"])[0].score == \
        plain.identify(catalog["query"])[0].score  # type: ignore[arg-type]
    # below the smallest catalogs the slope was fitted on, the shift stays as there
    floored = replace_identifier(plain, size_slope=1.5, size_reference=64, size_floor=32)
    assert floored.size_shift(16) == floored.size_shift(32) == pytest.approx(-1.5 * np.log(2))
    assert floored.size_shift(48) == pytest.approx(-1.5 * np.log(64 / 48))
    # a catalog of a handful of individuals, below the floor, has a slope of its own on top
    tiny = replace_identifier(plain, size_slope=1.5, size_reference=64, size_floor=32,
                              size_slope_small=2.0)
    assert tiny.size_shift(8) == pytest.approx(-1.5 * np.log(2) - 2.0 * np.log(4))
    assert tiny.size_shift(32) == floored.size_shift(32) and tiny.size_shift(48) == \
        floored.size_shift(48)
    res = tiny.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    base = plain.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    assert [c.individual_id for c in res] == [c.individual_id for c in base]
    assert logit(res[0].score) - logit(base[0].score) == pytest.approx(tiny.size_shift(16),
                                                                       abs=1e-6)
    # it eases off with the first candidate's verified score and is gone at
    # size_small_verified; the catalog-size part stays whatever the evidence
    eased = replace_identifier(plain, size_slope=1.5, size_reference=64, size_floor=32,
                               size_slope_small=2.0, size_small_verified=20.0)
    assert eased.size_shift(8, 0.0) == tiny.size_shift(8)
    assert eased.size_shift(8, 5.0) == pytest.approx(-1.5 * np.log(2) - 0.75 * 2.0 * np.log(4))
    assert eased.size_shift(8, 20.0) == eased.size_shift(8, 80.0) == floored.size_shift(8)
    res = eased.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    assert [c.individual_id for c in res] == [c.individual_id for c in base]
    assert logit(res[0].score) - logit(base[0].score) == pytest.approx(
        eased.size_shift(16, base[0].raw["sv"]), abs=1e-6)
    assert base[0].raw["sv"] > 0 and eased.size_shift(16, base[0].raw["sv"]) > \
        tiny.size_shift(16)
    # it applies without the catalog-size slope too (the default profile has none)
    only_small = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=32,
                                    size_slope_small=2.0)
    assert only_small.size_shift(16) == pytest.approx(-2.0 * np.log(2))
    assert only_small.size_shift(32) == only_small.size_shift(500) == 0.0
    # a calibration refitted on a catalog below the floor holds down to its own size
    young = replace_identifier(plain, size_slope=1.5, size_reference=20, size_floor=32,
                               size_slope_small=2.0)
    assert young.size_shift(20) == 0.0
    assert young.size_shift(10) == pytest.approx(-2.0 * np.log(2))
    # uncalibrated, the LNBNN baseline or no slope: nothing to shift
    assert replace_identifier(plain, size_slope=0.0, size_reference=64).size_shift(16) == 0.0
    lnbnn = build(catalog, IdentifierConfig(k=2, method="lnbnn"))
    lnbnn.size_slope, lnbnn.size_reference = 1.5, 64
    assert lnbnn.size_shift(16) == 0.0


def test_a_candidate_with_a_single_photo_has_its_own_small_catalog_slope(
        catalog: dict[str, object]) -> None:
    """Below the small-catalog start, a candidate the query was compared with through one
    photo takes ``size_slope_single``, the others ``size_slope_small``; the candidates are
    then shown best first, and the first of them is the one the verdict reads."""
    plain = calibrated(catalog)
    one_photo = {"ind3/b"}  # ind3, the query's animal, keeps one photo; the others two
    base = plain.identify(catalog["query"], top_k=5,  # type: ignore[arg-type]
                          exclude_keys=one_photo)
    assert base[0].individual_id == "ind3"
    both = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=64,
                              size_slope_small=2.0, size_slope_single=0.5)
    assert both.size_shift(15, 0.0, 1) == pytest.approx(0.5 * np.log(15 / 64))
    assert both.size_shift(15, 0.0, 2) == both.size_shift(15, 0.0, 7) == \
        pytest.approx(2.0 * np.log(15 / 64))
    res = both.identify(catalog["query"], top_k=5,  # type: ignore[arg-type]
                        exclude_keys=one_photo)
    by_id = {c.individual_id: c.score for c in base}
    moved = {c.individual_id: logit(c.score) - logit(by_id[c.individual_id]) for c in res}
    assert moved.pop("ind3") == pytest.approx(0.5 * np.log(15 / 64), abs=1e-6)
    assert list(moved.values()) == pytest.approx([2.0 * np.log(15 / 64)] * 4, abs=1e-6)
    # a steeper slope for single photos puts the one-photo candidate behind the others:
    # shown best first, and the verdict is the new first candidate's
    steep = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=64,
                               size_slope_small=0.0, size_slope_single=30.0)
    res = steep.identify(catalog["query"], top_k=5,  # type: ignore[arg-type]
                         exclude_keys=one_photo)
    scores = [c.score for c in res]
    assert scores == sorted(scores, reverse=True) and res[0].individual_id != "ind3"
    assert [c.individual_id for c in res][-1] == "ind3"
    assert res.likely_new == (res[0].score < res.threshold)
    # None: one slope for every candidate, as before the single-photo slope existed; and at
    # or above the start nothing moves whatever the photos
    same = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=64,
                              size_slope_small=2.0)
    assert same.size_shift(15, 0.0, 1) == same.size_shift(15, 0.0, 2)
    res = same.identify(catalog["query"], top_k=5,  # type: ignore[arg-type]
                        exclude_keys=one_photo)
    assert [c.individual_id for c in res] == [c.individual_id for c in base]
    assert both.size_shift(64, 0.0, 1) == both.size_shift(64, 0.0, 2) == 0.0
    big = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=8,
                             size_slope_small=2.0, size_slope_single=30.0)
    res = big.identify(catalog["query"], top_k=5,  # type: ignore[arg-type]
                       exclude_keys=one_photo)
    assert [(c.individual_id, c.score) for c in res] == \
        [(c.individual_id, c.score) for c in base]


def test_a_catalog_of_a_handful_raises_the_verdicts_threshold_not_the_scores(
        catalog: dict[str, object]) -> None:
    """Below the floor the "likely new" threshold's logit rises by verdict_slope_small x
    log(floor / n), eased off by the first candidate's verified score; the candidates' scores
    and order stay, and the raised threshold is the one reported with them."""
    plain = calibrated(catalog)
    base = plain.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    sv = base[0].raw["sv"]
    assert sv > 0
    raised = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=64,
                                verdict_slope_small=2.0)
    assert raised.verdict_shift(16) == pytest.approx(2.0 * np.log(4))
    assert raised.verdict_shift(64) == raised.verdict_shift(500) == 0.0
    assert raised.size_shift(16) == 0.0
    res = raised.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    assert [(c.individual_id, c.score) for c in res] == [(c.individual_id, c.score) for c in base]
    assert logit(res.threshold) - logit(base.threshold) == pytest.approx(2.0 * np.log(4),
                                                                         abs=1e-6)
    assert res.likely_new == (res[0].score < res.threshold)
    # steep enough, the same first candidate is called new; a verified score at the easing's
    # end keeps the full catalog's threshold
    steep = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=64,
                               verdict_slope_small=20.0)
    assert not base.likely_new and steep.identify(catalog["query"]).likely_new
    eased = replace_identifier(plain, size_slope=0.0, size_reference=0, size_floor=64,
                               verdict_slope_small=20.0, verdict_small_verified=sv)
    assert eased.verdict_shift(16, sv / 2) == pytest.approx(10.0 * np.log(4))
    assert eased.verdict_shift(16, sv) == eased.verdict_shift(16, 2 * sv) == 0.0
    kept = eased.identify(catalog["query"])  # type: ignore[arg-type]
    assert not kept.likely_new and kept.threshold == pytest.approx(base.threshold)
    # it counts from a young calibration's own size, like the small-catalog shift
    young = replace_identifier(plain, size_slope=0.0, size_reference=32, size_floor=64,
                               verdict_slope_small=2.0)
    assert young.verdict_shift(32) == 0.0 and young.verdict_shift(16) == pytest.approx(
        2.0 * np.log(2))
    # uncalibrated or the LNBNN baseline: no calibrated threshold to raise
    lnbnn = build(catalog, IdentifierConfig(k=2, method="lnbnn"))
    lnbnn.size_floor, lnbnn.verdict_slope_small = 64, 2.0
    assert lnbnn.verdict_shift(16) == 0.0


def test_the_first_candidate_is_read_as_first_and_the_verdict_stays(
        catalog: dict[str, object]) -> None:
    plain = calibrated(catalog)
    first = FirstPlaceCalibration(scale=0.8, first=1.7, intercept=-1.0)
    read = replace_identifier(plain, 0.0, 0, first_place=first)
    for query in (catalog["query"], catalog["new"]):
        base = plain.identify(query, top_k=5)  # type: ignore[arg-type]
        res = read.identify(query, top_k=5)  # type: ignore[arg-type]
        assert [c.individual_id for c in res] == [c.individual_id for c in base]
        want = [0.8 * logit(b.score) - 1.0 + (1.7 if i == 0 else 0.0)
                for i, b in enumerate(base)]
        assert [logit(c.score) for c in res] == pytest.approx(want, abs=1e-6)
        # the threshold is read as a first candidate's score: the same verdict, in shown terms
        assert logit(res.threshold) == pytest.approx(0.8 * logit(0.5) - 1.0 + 1.7)
        assert res.likely_new == base.likely_new
        assert all(a.score >= b.score for a, b in zip(res, res.candidates[1:], strict=False))
    # an empty catalog reports its threshold in the same terms
    empty = Identifier(plain.config, plain.calibration, first_place=first).identify(
        catalog["query"])  # type: ignore[arg-type]
    assert empty.likely_new and logit(empty.threshold) == pytest.approx(0.8 * logit(0.5) + 0.7)
    # with a size shift the verdict follows the corrected level: the threshold does not move
    shifted = replace_identifier(plain, 3.0, 10_000, first_place=first)
    known = shifted.identify(catalog["query"], top_k=5)  # type: ignore[arg-type]
    assert logit(known.threshold) == pytest.approx(0.8 * logit(0.5) - 1.0 + 1.7)
    assert logit(known[0].score) == pytest.approx(
        0.8 * (logit(plain.identify(catalog["query"])[0].score)  # type: ignore[arg-type]
               + 3.0 * np.log(16 / 10_000)) - 1.0 + 1.7, abs=1e-6)
    assert known.likely_new  # 16 annotations against a calibration fitted on 10,000
    # a map that would reorder the candidates is refused
    for bad in ({"scale": 0.0, "first": 1.0, "intercept": 0.0},
                {"scale": 1.0, "first": -0.5, "intercept": 0.0}, {"scale": 1.0}):
        with pytest.raises(MatchingError):
            FirstPlaceCalibration.from_dict(bad)


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def replace_identifier(ident: Identifier, size_slope: float, size_reference: int,
                       size_floor: int = 0,
                       first_place: FirstPlaceCalibration | None = None,
                       size_slope_small: float = 0.0,
                       size_small_verified: float = 0.0, verdict_slope_small: float = 0.0,
                       verdict_small_verified: float = 0.0,
                       size_slope_single: float | None = None) -> Identifier:
    """``ident`` with another size shift, verdict rise and first-place calibration (the same
    index and calibration)."""
    other = Identifier(ident.config, ident.calibration, size_slope=size_slope,
                       size_reference=size_reference, size_floor=size_floor,
                       size_slope_small=size_slope_small,
                       size_small_verified=size_small_verified, first_place=first_place,
                       verdict_slope_small=verdict_slope_small,
                       verdict_small_verified=verdict_small_verified,
                       size_slope_single=size_slope_single)
    other.local, other.vectors, other._entries = ident.local, ident.vectors, ident._entries
    return other


def test_baseline_method_is_plain_lnbnn(catalog: dict[str, object]) -> None:
    ident = build(catalog, IdentifierConfig(k=2, method="lnbnn"))
    res = ident.identify(catalog["query"])  # type: ignore[arg-type]
    assert res[0].individual_id == "ind3"
    assert set(res[0].raw) == {"lnbnn"} and len(res[0].inliers) == 0
    assert Identifier().identify(catalog["query"]).likely_new  # type: ignore[arg-type]


def test_profiles_round_trip_and_shipped_defaults(tmp_path) -> None:
    prof = SpeciesProfile("zebra", aliases=["Equus quagga"], long_side=400,
                          config=IdentifierConfig(k=3))
    save_profiles({"default": SpeciesProfile("default"), "zebra": prof}, tmp_path / "p.json")
    loaded = load_profiles(tmp_path / "p.json")
    assert profile_for("equus QUAGGA", loaded).config.k == 3
    assert profile_for("okapi", loaded).name == "default"
    assert loaded["zebra"].extractor().long_side == 400
    shipped = load_profiles()
    assert {"default", "nyala", "lion"} <= set(shipped)
    for p in shipped.values():
        assert p.calibration is not None and 0.0 < p.calibration.threshold < 1.0
    # the default profile detects plain keypoints: its calibration must come from that pipeline
    # on more than one species, not be a copy of a species profile's (nyala's, until 2026-12-02)
    default = shipped["default"]
    assert default.attention_power == 0.0 and default.descriptor_projection is None
    assert default.calibration is not None
    assert default.calibration.to_dict() != shipped["nyala"].calibration.to_dict()
    assert {"nyala", "lion"} <= set(default.calibration.info["species_held_out"])
    # the size shift round-trips, and stays out of the settings' digest (it moves no index)
    sized = replace(prof, size_slope=0.4, size_reference=457, size_floor=46, size_slope_small=0.7,
                    calibration=shipped["lion"].calibration,
                    first_place=FirstPlaceCalibration(0.85, 1.7, -0.95))
    save_profiles({"default": SpeciesProfile("default"), "zebra": sized}, tmp_path / "s.json")
    again = load_profiles(tmp_path / "s.json")["zebra"]
    assert (again.size_slope, again.size_reference, again.size_floor, again.size_slope_small) \
        == (0.4, 457, 46, 0.7)
    assert again.first_place == FirstPlaceCalibration(0.85, 1.7, -0.95)
    assert again.identifier().first_place == again.first_place
    # every shipped species profile reads its first candidate as first (fitted, see docs)
    assert all(p.first_place is not None and p.first_place.first > 0 for p in shipped.values())
    assert again.identifier().size_shift(100) == pytest.approx(0.4 * np.log(100 / 457))
    assert again.identifier().size_shift(10) == pytest.approx(0.4 * np.log(46 / 457)
                                                              + 0.7 * np.log(10 / 46))
    assert again.settings_digest() == prof.settings_digest()


def test_a_profile_copy_edited_in_notepad_is_read_or_named(tmp_path) -> None:
    """The user's profile copy (calibration.json) is edited by hand: saved with a byte order
    mark it is read as it is; saved as UTF-16 it is named as unreadable, not a traceback."""
    path = tmp_path / "calibration.json"
    save_profiles({"default": SpeciesProfile("default")}, path)
    text = path.read_text(encoding="utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert set(load_profiles(path)) == {"default"}
    path.write_text(text, encoding="utf-16")
    with pytest.raises(MatchingError, match="cannot read species profiles"):
        load_profiles(path)


def test_mirrored_votes_find_a_flipped_photo_with_profile_named_features(
        catalog: dict[str, object]) -> None:
    """The app stores features as ``rootsift/<profile>``; the mirror must still apply to them."""
    from dataclasses import replace

    ident = Identifier(IdentifierConfig(k=2, mirror=True))
    for (ind, view), (f, col) in catalog["feats"].items():  # type: ignore[attr-defined]
        ident.add(f"{ind}/{view}", ind, replace(f, extractor="rootsift/lion"),
                  vectors={"colour": col})
    flipped = texture(103)[:, ::-1].copy()
    query = replace(EXT.extract(flipped), extractor="rootsift/lion")
    assert query.is_rootsift
    res = ident.identify(query, vectors={"colour": colour_histogram(flipped)})
    assert res.candidates[0].individual_id == "ind3"
    with_mirror = ident.raw_scores(query)["ind3/a"]["lnbnn"]
    ident.config = IdentifierConfig(k=2, mirror=False)
    without = ident.raw_scores(query).get("ind3/a", {"lnbnn": 0.0})["lnbnn"]
    assert with_mirror > 3 * without


@pytest.fixture(scope="module")
def learned_models() -> tuple[object, object]:
    """The shipped ALIKED extractor and LightGlue matcher (real ONNX models)."""
    from wildid.vision.registry import ModelRegistry

    registry = ModelRegistry()
    return registry.keypoint_extractor("aliked_n16"), registry.matcher("lightglue_aliked")


def _second_stage(threshold: float = 0.3) -> CalibrationModel:
    """A second stage that listens to the learned matcher only (first-stage weight 0), so the
    test sees the re-ranking decide."""
    return CalibrationModel(["fused", "lightglue"], ["identity", "log1p"], np.zeros(2),
                            np.ones(2), np.array([0.0, 2.0]), -4.0, np.zeros(2),
                            threshold=threshold)


def test_learned_rerank_rescores_the_best_candidates_with_the_matcher(
        catalog: dict[str, object], learned_models: tuple[object, object]) -> None:
    """The best ``rerank_top`` individuals are matched again by LightGlue on stored ALIKED
    keypoints and rescored by the second stage, whose threshold then gives the verdict."""
    from wildid.engine.sources import learned_keypoints

    aliked, matcher = learned_models
    ident = Identifier(IdentifierConfig(k=2, rerank_top=8), matcher=matcher,
                       rerank_calibration=_second_stage())
    for ind in range(8):
        for view, img in (("a", texture(100 + ind)), ("b", warp(texture(100 + ind), seed=ind)[0])):
            f = replace(EXT.extract(img), learned=learned_keypoints(aliked, img, None, 128, 320))
            ident.add(f"ind{ind}/{view}", f"ind{ind}", f)
    # SIFT says individual 3, the learned keypoints come from a view of individual 5: with the
    # first stage's weight at 0 the matcher decides, over all eight candidates
    sift_of_3 = EXT.extract(warp(texture(103), seed=42)[0])
    view_of_5 = warp(texture(105), seed=43)[0]
    query = replace(sift_of_3, learned=learned_keypoints(aliked, view_of_5, None, 128, 320))
    plain = ident.identify(sift_of_3, top_k=8)
    assert plain[0].individual_id == "ind3" and "lightglue" not in plain[0].raw
    res = ident.identify(query, top_k=3)
    assert len(res) == 3 and res[0].individual_id == "ind5"
    assert res[0].raw["lightglue"] > 5 * max(c.raw["lightglue"] for c in res[1:])
    assert res[0].score > res[1].score >= res[2].score
    assert res.threshold == 0.3 and not res.likely_new
    assert plain.threshold == 0.5  # no learned keypoints on the query: the first stage's verdict
    # re-ranking only the first stage's best two: the others, which the matcher never saw,
    # follow them and are shown at most at the lowest re-ranked probability
    ident.config = IdentifierConfig(k=2, rerank_top=2)
    first = [c.individual_id for c in plain]
    res = ident.identify(query, top_k=8)
    assert {c.individual_id for c in res[:2]} == set(first[:2])
    assert all("lightglue" in c.raw for c in res[:2])
    assert [c.individual_id for c in res[2:]] == first[2:]
    assert all("lightglue" not in c.raw for c in res[2:])
    floor = res[1].score
    assert all(c.score <= floor for c in res[2:])
    assert any(p.score > floor for p in plain[2:])  # the cap did something here
    # through each individual's two most probable annotations, the better match counts (the
    # shown annotation stays the first stage's best)
    ident.config = IdentifierConfig(k=2, rerank_top=8)
    one = {c.individual_id: c for c in ident.identify(query, top_k=8)}
    ident.config = IdentifierConfig(k=2, rerank_top=8, rerank_annotations=2)
    two = {c.individual_id: c for c in ident.identify(query, top_k=8)}
    assert set(one) == set(two)
    differs = 0
    for ind, c in two.items():
        views = [ident.learned_evidence(query.learned, f"{ind}/{v}") for v in "ab"]
        assert c.raw["lightglue"] == pytest.approx(max(views))
        assert one[ind].raw["lightglue"] == pytest.approx(
            ident.learned_evidence(query.learned, one[ind].best_key))
        assert c.best_key == one[ind].best_key
        differs += one[ind].raw["lightglue"] != pytest.approx(c.raw["lightglue"])
    assert differs  # the second annotation mattered for some individual


def test_a_turned_query_is_matched_turned_back(
        catalog: dict[str, object], learned_models: tuple[object, object]) -> None:
    """SIFT and the verification turn with the photo, ALIKED and LightGlue do not: the
    matcher is given the query described once more, turned back by the verified rotation."""
    from wildid.engine.sources import learned_keypoints, turn_image

    aliked, matcher = learned_models
    ident = Identifier(IdentifierConfig(k=2, rerank_top=8), matcher=matcher,
                       rerank_calibration=_second_stage())
    for ind in range(8):
        img = texture(100 + ind)
        ident.add(f"ind{ind}", f"ind{ind}",
                  replace(EXT.extract(img), learned=learned_keypoints(aliked, img, None, 128, 320)))
    asked: list[float] = []

    def describe(photo: np.ndarray) -> object:
        return replace(EXT.extract(photo), learned=learned_keypoints(aliked, photo, None, 128, 320))

    def turned_of(photo: np.ndarray):  # noqa: ANN202
        def turned(degrees: float) -> object:
            asked.append(degrees)
            canvas, weight = turn_image(photo, np.ones(photo.shape[:2], np.float32), degrees)
            side = round(320 * max(canvas.shape[:2]) / max(photo.shape[:2]))
            return learned_keypoints(aliked, canvas, weight, 128, side)
        return turned

    photo = np.ascontiguousarray(np.rot90(texture(103), k=-1))  # a quarter turn clockwise
    query = describe(photo)
    upright = ident.identify(query, top_k=8)
    back = ident.identify(query, top_k=8, turned=turned_of(photo))
    assert len(asked) == 1 and asked[0] == pytest.approx(-90, abs=2)  # once, turned back
    # the second stage here listens to the matcher alone: blind to the turn it loses ind3
    assert back[0].individual_id == "ind3" != upright[0].individual_id
    before = next(c for c in upright if c.individual_id == "ind3")
    assert back[0].raw["lightglue"] > 3 * before.raw["lightglue"]
    assert back[0].score > before.score
    # a photo that stands as the catalog's do is not described again
    asked.clear()
    still = texture(103)
    ident.identify(describe(still), top_k=8, turned=turned_of(still))
    assert asked == []


def test_the_query_tilt_is_the_rotation_most_verified_pairs_agree_on() -> None:
    from wildid.matching.geometry import Verification
    from wildid.matching.identifier import query_tilt

    def pair(degrees: float, score: float = 1.0, mirrored: bool = False,
             scale: float = 1.7) -> Verification:
        a = np.radians(degrees)
        t = np.array([[np.cos(a), -np.sin(a), 5], [np.sin(a), np.cos(a), 3], [0, 0, 1]]) * [
            [scale], [scale], [1]]
        return Verification(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), score, t,
                            mirrored)

    assert pair(30).rotation_degrees() == pytest.approx(30)
    assert pair(-120).rotation_degrees() == pytest.approx(-120)
    assert pair(30, mirrored=True).rotation_degrees() is None
    nothing = Verification(np.zeros(0, np.int64), np.zeros((0, 4)), 0.0, None)
    assert nothing.rotation_degrees() is None
    assert query_tilt([]) == 0.0 and query_tilt([nothing, pair(90, mirrored=True)]) == 0.0
    # the weighted mean of the best-supported group; chance rotations of weak pairs are outvoted
    tilt = query_tilt([pair(88, 3.0), pair(96, 1.0), pair(-40, 2.0), pair(170, 0.5),
                       pair(5, 1.5)])
    assert tilt == pytest.approx(90, abs=0.5)
    # across +-180 (circular), and nothing under the smallest turn worth describing again
    assert abs(query_tilt([pair(178, 2.0), pair(-176, 2.0)])) == pytest.approx(179, abs=0.5)
    assert query_tilt([pair(12, 5.0), pair(-3, 1.0)]) == 0.0
    assert query_tilt([pair(60, 0.0), pair(2, 1.0)]) == 0.0  # no weight, no vote
    # a group under a third of the weight is chance, however it ranks
    scattered = [pair(a, 1.0) for a in (-150, -100, -50, 0, 50, 100, 150)]
    assert query_tilt([*scattered, pair(60, 1.0)]) == 0.0
    assert query_tilt([*scattered, pair(60, 3.0)]) == pytest.approx(57.5, abs=0.5)  # with 50


def test_turning_an_image_clockwise_on_a_canvas_that_holds_it() -> None:
    from wildid.engine.sources import turn_image

    # clockwise on screen (y down): a mark right of the centre goes below it
    img = np.zeros((41, 61, 3), np.uint8)
    img[20, 50] = 255
    canvas, weight = turn_image(img, np.ones((41, 61), np.float32), 90.0)
    assert canvas.shape[:2] == (61, 41)
    y, x = np.unravel_index(np.argmax(canvas[..., 0]), canvas.shape[:2])
    assert (y, x) == (50, 20)
    # a half-quarter turn: the corners it adds carry no weight, the middle keeps it
    canvas, weight = turn_image(img, np.ones((41, 61), np.float32), 45.0)
    assert canvas.shape[0] > 61 and weight[0, 0] == 0 and weight[-1, -1] == 0
    assert weight[canvas.shape[0] // 2, canvas.shape[1] // 2] == pytest.approx(1.0)


def test_best_annotations_per_individual() -> None:
    from wildid.matching.identifier import best_annotations

    scores = {"a1": 0.2, "a2": 0.7, "a3": 0.5, "b1": 0.9, "c1": 0.1}
    owner = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "c1": "C"}.__getitem__
    assert best_annotations(scores, owner, ["A", "B"], 2) == {"A": ["a2", "a3"], "B": ["b1"]}
    assert best_annotations(scores, owner, ["A"], 1) == {"A": ["a2"]}
    assert best_annotations(scores, owner, ["A"], 0) == {"A": ["a2"]}  # at least the best
    assert best_annotations(scores, owner, ["Z"], 3) == {}


def test_learned_rerank_needs_its_matcher_and_second_stage(catalog: dict[str, object]) -> None:
    ident = Identifier(IdentifierConfig(k=2), matcher=None, rerank_calibration=_second_stage())
    assert ident.rerank_calibration is None  # a second stage without its model is not applied
    ident = Identifier(IdentifierConfig(k=2), matcher=object(), rerank_calibration=None)
    assert ident.matcher is None
    prof = load_profiles()["nyala"]
    assert prof.reranks and prof.rerank_calibration is not None
    back = SpeciesProfile.from_dict("nyala", prof.to_dict())
    assert back.to_dict() == prof.to_dict() and back.learned_keypoints == prof.learned_keypoints
    assert back.identifier(matcher=None).matcher is None
    assert not load_profiles()["lion"].reranks


def test_rerank_rows_match_each_annotation_once_and_keep_the_order(monkeypatch) -> None:
    """The matcher's pairs run two at a time; each candidate still gets the best of its own
    annotations, in the head's order, and no pair is matched twice."""
    from types import SimpleNamespace

    from wildid.matching import parallel
    from wildid.matching.identifier import rerank_rows

    scores = {"a1": 0.9, "a2": 0.8, "a3": 0.1, "b1": 0.7, "c1": 0.6, "c2": 0.5}
    owner = {k: k[0].upper() for k in scores}.__getitem__
    evidence = {"a1": 3.0, "a2": 9.0, "a3": 50.0, "b1": 1.0, "c1": 0.0, "c2": 4.0}
    head = [SimpleNamespace(score=s, individual_id=i, best_key=k)
            for s, i, k in ((0.9, "A", "a1"), (0.7, "B", "b1"), (0.6, "C", "c1"))]
    for n in (1, 2):
        calls: list[str] = []

        def seen(key: str, calls: list[str] = calls) -> float:
            calls.append(key)
            return evidence[key]

        monkeypatch.setattr(parallel, "workers", lambda n=n: n)
        rows = rerank_rows(head, scores, owner, 2, seen)
        assert [r["lightglue"] for r in rows] == [9.0, 1.0, 4.0]  # a3 is not among A's best two
        assert sorted(calls) == ["a1", "a2", "b1", "c1", "c2"]
        assert rows[0]["fused"] == pytest.approx(np.log(0.9 / 0.1))


def test_map_side_by_side_keeps_order_and_nests() -> None:
    from wildid.matching import parallel

    out = parallel.map_side_by_side(lambda x: [x, parallel.map_side_by_side(abs, [-x, x])],
                                    range(-3, 4))
    assert out == [[x, [abs(x), abs(x)]] for x in range(-3, 4)]


def test_drop_static_keeps_only_correspondences_that_moved() -> None:
    """Positions compare as shares of each crop's size: a keypoint at the same place of two
    frames of different sizes is the scene; one that moved is kept."""
    from wildid.matching.features import LocalFeatures
    from wildid.matching.identifier import drop_static
    from wildid.matching.local_index import AnnotationMatches

    def feats(xy: list[tuple[float, float]], size: tuple[int, int]) -> LocalFeatures:
        n = len(xy)
        return LocalFeatures(np.asarray(xy, np.float32), np.zeros((n, 128), np.float32),
                             np.ones(n, np.float32), np.ones(n, np.float32),
                             np.zeros(n, np.float32), size)

    query = feats([(100, 100), (400, 300), (50, 200)], (800, 600))
    db = feats([(50.5, 50.2), (300, 150), (25, 140)], (400, 300))  # the same photo at half size
    m = AnnotationMatches(np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int32),
                          np.array([1.0, 2.0, 3.0], np.float32))
    kept = drop_static(query, db, m)
    # keypoint 0 sits at the same place (12.5 %, 16.7 %); 1 and 2 moved by 25 % and 13 %
    assert kept.query_idx.tolist() == [1, 2] and kept.weight.tolist() == [2.0, 3.0]
    assert drop_static(query, db, m, tolerance=0.2).query_idx.tolist() == [1]
    moved = feats([(150, 100), (400, 250), (90, 140)], (400, 300))
    assert drop_static(query, moved, m) is m  # nothing in place: untouched
