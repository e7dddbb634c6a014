"""Engine pieces: feature sources per species profile, evaluation manifests, threshold choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.photofactory import animal_patch
from wildid.engine.calibrate import choose_threshold
from wildid.engine.evaluation import guess_species
from wildid.engine.identification import active_profiles, user_profiles_path
from wildid.engine.manifest import open_set_split, read_manifest
from wildid.engine.sources import ColourSource, SiftSource, decode_vector, encode_vector
from wildid.errors import WildIdError
from wildid.matching.features import LocalFeatures
from wildid.matching.profiles import SpeciesProfile, load_profiles, save_profiles


def test_sift_source_uses_each_annotations_profile() -> None:
    profiles = load_profiles()
    src = SiftSource(profiles)
    crop = np.ascontiguousarray(animal_patch(3)[:, :, :3])
    lion, nyala, other = src.compute([crop, crop, crop], species=["Panthera leo", "nyala", None])
    # lion descriptors go through the lion profile's learned projection, named in the features,
    # and carry the grey crop its photometric verification compares (+tex)
    assert LocalFeatures.extractor_of(lion) == "rootsift/lion+proj:lion-v1+max512+tex"
    # nyala keypoints are detected on the stripe map (white top-hat) and on the bright-ridge
    # map, both named in the features
    assert LocalFeatures.extractor_of(nyala) == "rootsift/nyala+th9+ridge1000"
    assert LocalFeatures.extractor_of(other) == "rootsift/default"
    assert LocalFeatures.from_bytes(lion).texture_jpeg
    assert LocalFeatures.from_bytes(nyala).texture_jpeg is None
    f = LocalFeatures.from_bytes(lion)
    assert f.image_size == (640, 400)  # coordinates in the crop's own pixels
    assert len(f) > 50 and f.xy[:, 0].max() < 640 and f.xy[:, 1].max() < 400
    assert src.working_side() == max(p.long_side for p in profiles.values())


def test_sift_source_places_keypoints_with_the_profiles_attention_model() -> None:
    """nyala keypoints follow the re-id model's attention, named with its version; lion's do
    not; without the model (missing or broken) nyala falls back to the plain profile name."""
    from wildid.vision.registry import ModelRegistry

    profiles = load_profiles()
    assert profiles["nyala"].attention_power > 0 and profiles["lion"].attention_power == 0
    registry = ModelRegistry()
    asked: list[str] = []

    def attention(model_id: str) -> object:
        asked.append(model_id)
        return registry.embedder(model_id)

    src = SiftSource(profiles, attention=attention)
    crop = np.ascontiguousarray(animal_patch(3)[:, :, :3])
    nyala, lion, nyala2 = src.compute([crop, crop, crop], species=["nyala", "lion", "nyala"])
    model = registry.embedder(profiles["nyala"].attention_model)
    name = f"rootsift/nyala+att:{model.model_id}@{model.model_version}+th9+ridge1000"
    assert LocalFeatures.extractor_of(nyala) == name == src.extractor_name("Tragelaphus angasii")
    assert LocalFeatures.extractor_of(lion) == "rootsift/lion+proj:lion-v1+max512+tex"  # no attention
    assert nyala == nyala2 and asked == ["reid_lite0_nyala_lion"]  # loaded once
    feats = LocalFeatures.from_bytes(nyala)
    first = profiles["nyala"].max_keypoints
    assert 50 < len(feats) <= first + profiles["nyala"].ridge_keypoints
    # the ridge channel follows the stripe-map channel, negated (kept apart in the one index)
    n_first = int((feats.descriptors >= 0).all(axis=1).sum())
    assert 0 < n_first <= first and (feats.descriptors[n_first:] <= 0).all()
    assert len(feats) > n_first
    fallback = SiftSource(profiles, attention=lambda _id: None)
    assert LocalFeatures.extractor_of(fallback.compute([crop], species=["nyala"])[0]) == \
        "rootsift/nyala+th9+ridge1000" == fallback.extractor_name("nyala")


def test_sift_source_stores_learned_keypoints_for_profiles_that_rerank() -> None:
    """nyala features carry the profile's ALIKED keypoints (named with the model's version) for
    LightGlue's re-ranking; without the model they are left out and the name says so; lion's
    profile does not re-rank, so its features never carry them."""
    from wildid.vision.registry import ModelRegistry

    profiles = load_profiles()
    nyala = profiles["nyala"]
    assert nyala.reranks and not profiles["lion"].reranks
    registry = ModelRegistry()
    crop = np.ascontiguousarray(animal_patch(3)[:, :, :3])
    src = SiftSource(profiles, keypoints=registry.keypoint_extractor)
    ny, lion = (LocalFeatures.from_bytes(b) for b in src.compute([crop, crop],
                                                                  species=["nyala", "lion"]))
    assert ny.extractor == "rootsift/nyala+th9+ridge1000+lg:aliked_n16@1.0.0x256"
    assert ny.learned is not None and 0 < len(ny.learned) <= nyala.learned_keypoints
    assert ny.learned.descriptors.shape[1] == 128
    assert ny.learned.image_size == (crop.shape[1], crop.shape[0])  # the crop's own pixels
    assert lion.learned is None and "+lg" not in lion.extractor
    missing = SiftSource(profiles, keypoints=lambda _id: None)
    (blob,) = missing.compute([crop], species=["nyala"])
    assert LocalFeatures.extractor_of(blob) == "rootsift/nyala+th9+ridge1000"
    assert LocalFeatures.from_bytes(blob).learned is None


def test_colour_source_round_trips_unit_vectors() -> None:
    crop = np.ascontiguousarray(animal_patch(5)[:, :, :3])
    (blob,) = ColourSource().compute([crop])
    vec = decode_vector(blob)
    assert vec.shape == (1024,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-2
    assert decode_vector(encode_vector(vec)).dtype == np.float32


def test_extractor_of_reads_only_the_header() -> None:
    assert LocalFeatures.extractor_of(b"nonsense") == ""
    assert LocalFeatures.extractor_of(b"") == ""


def test_choose_threshold_hand_computed() -> None:
    # known queries: (best score, right?) ; new queries: best score
    known = [(0.9, True), (0.8, True), (0.3, False), (0.7, True)]
    new = [0.2, 0.4, 0.75]
    t = choose_threshold(known, new)
    # balanced accuracy of the verdict: t = 0.3: (4/4 + 1/3) / 2 = 0.667; t = 0.5 or 0.7:
    # (3/4 + 2/3) / 2 = 0.708; t = 0.8: (2/4 + 3/3) / 2 = 0.75 (best); t = 0.9: (1/4 + 1) / 2
    assert t == pytest.approx(0.8)
    # the verdict counts known queries above the threshold even when their top-1 is wrong
    assert 0.2 < choose_threshold([(0.6, False)] * 3, [0.1, 0.2]) <= 0.6


def test_user_calibration_overrides_the_shipped_one(tmp_path: Path) -> None:
    shipped = active_profiles()
    assert "lion" in shipped and "default" in shipped
    changed = dict(shipped)
    changed["lion"].long_side = 333
    assert shipped["nyala"].tophat == 9 and shipped["lion"].tophat == 0
    assert shipped["nyala"].ridge_keypoints == 1000 and shipped["lion"].ridge_keypoints == 0
    changed["nyala"].tophat = 7
    changed["nyala"].ridge_keypoints = 300
    save_profiles(changed, user_profiles_path())
    assert active_profiles()["lion"].long_side == 333
    assert active_profiles()["nyala"].tophat == 7  # the stripe map's disc is saved and read back
    assert active_profiles()["nyala"].ridge_keypoints == 300  # and the ridge channel's budget
    user_profiles_path().write_text("{broken")
    assert active_profiles()["lion"].long_side != 333  # unreadable: back to shipped


def test_a_calibration_for_earlier_settings_gives_way_to_the_shipped_profile(caplog) -> None:
    """After an upgrade changes a profile's settings, a calibration the user fitted for the old
    ones is set aside (with a warning); one fitted for the current settings is kept, and
    profiles the user never calibrated come as shipped."""
    from dataclasses import replace

    shipped = active_profiles()
    lion, nyala = shipped["lion"], shipped["nyala"]
    assert lion.calibration is not None and nyala.calibration is not None
    own = replace(lion.calibration, threshold=0.123)
    current = replace(lion, calibration=own, info={"settings_of": lion.settings_digest()})
    stale = replace(nyala, calibration=replace(nyala.calibration, threshold=0.456),
                    info={"settings_of": "0123456789abcdef"})
    save_profiles({"default": shipped["default"], "lion": current, "nyala": stale},
                  user_profiles_path())
    with caplog.at_level("WARNING"):
        active = active_profiles()
    assert active["lion"].calibration.threshold == pytest.approx(0.123)
    assert active["nyala"].calibration.threshold == pytest.approx(nyala.calibration.threshold)
    assert "nyala calibration" in caplog.text and "earlier version" in caplog.text
    assert set(active) == set(shipped)
    # the digest follows the pipeline settings, not the calibration
    assert replace(lion, calibration=own).settings_digest() == lion.settings_digest()
    assert replace(lion, long_side=300).settings_digest() != lion.settings_digest()
    user_profiles_path().unlink()
    save_profiles({"default": shipped["default"]}, user_profiles_path())
    assert set(active_profiles()) == set(shipped)  # profiles shipped later are there too


def test_a_saved_calibration_takes_the_shown_score_corrections_as_shipped() -> None:
    """`wildid calibrate` fits the calibrations and the size they hold at, not how shown scores
    move with catalog size or the first-place map: a copy it saved before an upgrade brought
    or refitted those gets the shipped ones (it kept the old ones, even when recalibrated). A
    copy edited by hand (no settings_of mark) keeps its own."""
    from dataclasses import replace

    from wildid.engine.identification import SHIPPED_CORRECTIONS

    shipped = load_profiles()
    nyala = shipped["nyala"]
    assert nyala.size_slope_small > 0 and nyala.size_small_verified > 0
    assert nyala.first_place is not None
    old = replace(nyala, calibration=replace(nyala.calibration, threshold=0.321),
                  size_reference=40, size_slope=0.0, size_floor=0, size_slope_small=0.0,
                  size_small_verified=0.0, first_place=None,
                  info={"settings_of": nyala.settings_digest()})
    by_hand = replace(old, name="lion", aliases=shipped["lion"].aliases, info={})
    save_profiles({"nyala": old, "lion": by_hand}, user_profiles_path())
    active = active_profiles()
    got = active["nyala"]
    assert got.calibration.threshold == pytest.approx(0.321) and got.size_reference == 40
    for key in SHIPPED_CORRECTIONS:
        assert getattr(got, key) == getattr(nyala, key), key
    assert active["lion"].size_slope_small == 0.0 and active["lion"].first_place is None
    # the identifier it makes shifts a first catalog's scores from the user's own size
    ident = got.identifier()
    assert ident.size_shift(40) == 0.0 and ident.size_shift(3) < ident.size_shift(20) < 0.0


def test_a_setting_added_later_leaves_digests_alone_at_its_neutral_value() -> None:
    """aggregation_odds came after digests were saved: at 1.0 (plain noisy-or, as before) a
    profile's digest is what it was without the setting, so an upgrade keeps the user's saved
    index and calibration; any other value is another pipeline."""
    import hashlib
    import json
    from dataclasses import replace

    lion = load_profiles()["lion"]
    assert lion.config.aggregation_odds == 1.0
    before = lion.to_dict()
    # the size shift and the verdict's rise came later still and are no pipeline settings
    # (they move no index)
    for key in ("calibration", "rerank_calibration", "info", "aliases", "size_slope",
                "size_reference", "size_floor", "size_slope_small", "size_small_verified",
                "first_place", "verdict_slope_small", "verdict_small_verified",
                "size_slope_single"):
        before.pop(key, None)
    del before["config"]["aggregation_odds"]
    digest = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert lion.settings_digest() == digest
    # so is the small-catalog slope for single photos, written only where it is set
    for single in (None, 0.0, 0.25):
        other = replace(lion, size_slope_single=single)
        assert other.settings_digest() == digest
        assert SpeciesProfile.from_dict("lion", other.to_dict()).size_slope_single == single
    assert "size_slope_single" not in replace(lion, size_slope_single=None).to_dict()
    odds = replace(lion, config=replace(lion.config, aggregation_odds=50.0))
    assert odds.settings_digest() != digest
    assert load_profiles()["nyala"].config.aggregation_odds == 50.0


def test_manifest_rows_and_open_set_split(tmp_path: Path) -> None:
    for name in ("a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2"):
        (tmp_path / f"{name}.jpg").write_bytes(b"x")
    lines = ["path,identity,split"] + [f"{n}1.jpg,{n},database" for n in "abcd"] + \
            [f"{n}2.jpg,{n},query" for n in "abcd"]
    (tmp_path / "lion").mkdir()
    manifest = tmp_path / "lion" / "manifest.csv"
    # paths resolve against the manifest's folder: only ../a1.jpg exists from there
    manifest.write_text("\n".join(lines).replace("a1.jpg", "../a1.jpg"))
    with pytest.raises(WildIdError, match=r"needs both database and query rows whose photos "
                                          r"exist \(7 do not\)"):
        read_manifest(manifest)
    # a photo that is not there is left out and named; the rest is read, train/test too
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines).replace("b1.jpg", "gone.jpg")
                        .replace("database", "train").replace("query", "Test"))
    sheet = read_manifest(manifest)
    assert [r.identity for r in sheet.rows] == list("acdabcd")
    assert {r.split for r in sheet.rows} == {"database", "query"}
    assert sheet.missing == [(3, tmp_path / "gone.jpg")]
    assert sheet.describe_missing() == ("1 photo(s) of the manifest do not exist and are left "
                                        f"out (line 3: {tmp_path / 'gone.jpg'})")
    manifest.write_text("\n".join(lines).replace("database", "training"))
    with pytest.raises(WildIdError, match="'training' is not 'database' or 'query'"):
        read_manifest(manifest)
    manifest.write_text("\n".join(lines))
    sheet = read_manifest(manifest)
    rows = sheet.rows
    assert len(rows) == 8 and rows[0].path == tmp_path / "a1.jpg" and sheet.missing == []
    kept, unknown = open_set_split(rows, 0.25, seed=1)
    assert len(unknown) == 1
    assert not any(r.split == "database" and r.identity in unknown for r in kept)
    assert sum(r.split == "query" for r in kept) == 4  # every query stays
    assert open_set_split(rows, 0.25, seed=1)[1] == unknown  # reproducible
    # a share that would hold out every query identity leaves one known: both sides measured
    assert len(open_set_split(rows, 0.99, seed=1)[1]) == 3
    assert len(open_set_split(rows, 0.01, seed=1)[1]) == 1


@pytest.mark.parametrize("bad", ["1.5", "1", "0", "-0.2", "a quarter"])
def test_eval_refuses_a_holdout_that_is_not_a_share(bad: str, capsys) -> None:
    """--holdout 1.5 ended in a traceback from random.sample; 0 still held one out."""
    from wildid.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["eval", "manifest.csv", "--open-set", "--holdout", bad])
    assert exited.value.code == 2
    assert "argument --holdout: " in capsys.readouterr().err


def test_species_guessed_from_the_manifest_folder(tmp_path: Path) -> None:
    profiles = load_profiles()
    assert guess_species(tmp_path / "lion" / "manifest.csv", profiles) == "lion"
    assert guess_species(tmp_path / "nyala" / "set" / "manifest.csv", profiles) == "nyala"
    assert guess_species(tmp_path / "zebra" / "manifest.csv", profiles) is None
    # a manifest outside a species folder: its file name, else where most of its photos are
    assert guess_species(tmp_path / "heldout" / "nyala_heldout.csv", profiles) == "nyala"
    assert guess_species(tmp_path / "heldout" / "Panthera-leo.csv", profiles) == "lion"
    from wildid.engine.manifest import ManifestRow

    def rows(*folders: str) -> list[ManifestRow]:
        return [ManifestRow(tmp_path / f / "1" / f"{i}.jpg", "1", "query")
                for i, f in enumerate(folders)]

    sheet = tmp_path / "eval" / "manifest.csv"
    assert guess_species(sheet, profiles, rows("Panthera_leo", "Panthera_leo", "x")) == "lion"
    assert guess_species(sheet, profiles, rows("nyala", "x", "y")) is None  # not most of them
    assert guess_species(sheet, profiles, rows("x", "y")) is None
    # the manifest's own folder comes first
    assert guess_species(tmp_path / "lion" / "m.csv", profiles, rows("nyala", "nyala")) == "lion"


def test_the_baseline_runs_plain_lnbnn_whatever_the_profile_does() -> None:
    """The LNBNN baseline of `wildid eval --baseline` keeps none of wildid's own steps, its way
    of combining an individual's photos included (the nyala profile's odds moved it from 18.0
    to 20.1 % top-1 before this was pinned)."""
    from wildid.engine.evaluation import baseline_profile

    nyala = load_profiles()["nyala"]
    assert nyala.config.aggregation_odds == 50.0 and nyala.reranks
    base = baseline_profile(nyala)
    cfg = base.config
    assert cfg.method == "lnbnn" and not cfg.mirror
    assert (cfg.aggregation, cfg.aggregation_top, cfg.aggregation_odds) == ("noisy_or", 2, 1.0)
    assert (base.attention_power, base.tophat, base.ridge_keypoints, base.learned_keypoints) \
        == (0.0, 0, 0, 0)
    assert base.vectors == [] and base.descriptor_projection is None and not base.reranks
    assert cfg.k == nyala.config.k and base.long_side == nyala.long_side  # the rest as is


def test_a_manifest_written_on_windows_names_its_photos_with_backslashes(tmp_path: Path) -> None:
    """``images\\a\\a1.jpg`` is one odd file name on Linux; the manifest means the photo in
    images/a/. A file really named with a backslash is still taken as written."""
    for who in "ab":
        folder = tmp_path / "images" / who
        folder.mkdir(parents=True)
        for n in (1, 2):
            (folder / f"{who}{n}.jpg").write_bytes(b"x")
    (tmp_path / "odd\\name.jpg").write_bytes(b"x")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,identity,split\n"
                        "images\\a\\a1.jpg,a,database\nimages\\b\\b1.jpg,b,database\n"
                        "images\\a\\a2.jpg,a,query\nodd\\name.jpg,b,query\n"
                        "images\\c\\c1.jpg,c,query\n")
    sheet = read_manifest(manifest)
    assert [r.path for r in sheet.rows] == [tmp_path / "images" / "a" / "a1.jpg",
                                            tmp_path / "images" / "b" / "b1.jpg",
                                            tmp_path / "images" / "a" / "a2.jpg",
                                            tmp_path / "odd\\name.jpg"]
    assert sheet.missing == [(6, tmp_path / "images\\c\\c1.jpg")]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_a_spreadsheets_manifest_is_read_too(tmp_path: Path, sep: str) -> None:
    """Capitals and spaces in the header, and the semicolons or tabs a spreadsheet saves
    in some locales, name the same columns."""
    for name in ("a1", "a2"):
        (tmp_path / f"{name}.jpg").write_bytes(b"x")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(sep.join(["Path", " Identity", " Split "]) + "\n"
                        + sep.join(["a1.jpg", "a", "database"]) + "\n"
                        + sep.join(["a2.jpg", "a", "query"]) + "\n")
    sheet = read_manifest(manifest)
    assert [(r.path.name, r.identity, r.split) for r in sheet.rows] == [
        ("a1.jpg", "a", "database"), ("a2.jpg", "a", "query")]
