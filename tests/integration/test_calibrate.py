"""``wildid calibrate`` on a real catalog: the confirmed encounters refit the profile's
calibration and new-individual threshold, and a profile that re-ranks its best candidates with
the learned matcher (LightGlue on stored ALIKED keypoints) has that second stage refitted too.

The photos are generated: each "animal" has its own markings and is photographed three times,
in three scenes and poses.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.photofactory import make_shot
from wildid.catalog import open_catalog
from wildid.catalog.models import Annotation, Encounter, Photo
from wildid.cli import main as cli_main
from wildid.engine.calibrate import calibrate_catalog
from wildid.engine.identification import (
    CatalogEngine,
    active_profiles,
    catalog_profiles_path,
    user_profiles_path,
)
from wildid.ingest.importer import ImportOptions, run_import
from wildid.matching.profiles import SpeciesProfile, load_profiles, save_profiles
from wildid.review import confirm_match, new_individual

PATTERNS = (31, 32, 33, 34, 35, 36)
SHOTS = 3


@pytest.fixture(scope="module")
def animal_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Path]]:
    root = tmp_path_factory.mktemp("calibrate-animals")
    return {p: [make_shot(root / f"ind{p}_s{s}.jpg", 640, 480, seed=100 * p + s, pattern_seed=p,
                          warp=0.2).path for s in range(SHOTS)] for p in PATTERNS}


@pytest.fixture
def labelled(catalog, animal_photos: dict[int, list[Path]]):  # type: ignore[no-untyped-def]
    """Every photo imported; each animal's first encounter named, the others confirmed."""
    return _label(catalog, animal_photos)


def _label(catalog, animal_photos: dict[int, list[Path]]):  # type: ignore[no-untyped-def]
    files = [f for shots in animal_photos.values() for f in shots]
    report = run_import(catalog, files, ImportOptions(burst_gap_s=-1, reference_in_place=True,
                                                      workers=1))
    assert not report.skipped, report.skipped
    with catalog.session() as s:
        enc_of = dict(s.execute(select(Photo.original_path, Annotation.encounter_id)
                                .join(Annotation, Annotation.photo_id == Photo.id)).all())
    for p, shots in animal_photos.items():
        first = enc_of[str(shots[0])]
        new_individual(catalog, first, f"animal-{p}", "Tester")
        with catalog.session() as s:
            ind = s.scalars(select(Encounter.individual_id).where(Encounter.id == first)).one()
        for shot in shots[1:]:
            confirm_match(catalog, enc_of[str(shot)], ind, "Tester")
    return catalog


def _reranking(profiles: dict[str, SpeciesProfile]) -> dict[str, SpeciesProfile]:
    """The shipped profiles, with the default one (which the generated animals get) re-ranking
    its best three candidates, through two photos each, with the nyala profile's second
    stage."""
    nyala, default = profiles["nyala"], profiles["default"]
    assert nyala.rerank_calibration is not None
    out = dict(profiles)
    out["default"] = replace(default, learned_keypoints=64,
                             rerank_calibration=nyala.rerank_calibration,
                             config=replace(default.config, rerank_top=3,
                                            rerank_annotations=2))
    return out


def test_calibrate_on_a_catalog_with_nothing_confirmed_says_so(tmp_path: Path, capsys) -> None:
    """It printed nothing at all and exited 1 (and the app's report was empty); `match --all`
    printed nothing either."""
    root = str(tmp_path / "new")
    open_catalog(root).close()
    assert cli_main(["--catalog", root, "calibrate"]) == 1
    said = capsys.readouterr().out
    assert said.startswith("nothing to refit: no sighting in this catalog is confirmed yet")
    assert "the shipped calibration stays in use" in said
    assert cli_main(["--catalog", root, "match", "--all"]) == 0  # it said nothing either
    assert capsys.readouterr().out == "no encounter is waiting for review: nothing to match\n"


def test_calibrate_refits_from_confirmed_encounters(labelled, tmp_path: Path, capsys) -> None:
    root = str(labelled.root)
    assert cli_main(["--catalog", root, "calibrate", "--dry-run", "--json",
                     "--min-pairs", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    default = report["profiles"]["default"]
    assert default["refitted"] and report["saved"] is None
    # every confirmed encounter but the queried one's own: 2 matching pairs per query
    assert default["n_positive"] == len(PATTERNS) * SHOTS * (SHOTS - 1)
    assert 0.0 < default["threshold"] < 1.0
    assert default["loo_top1"] >= 0.9  # generated markings under a perspective change
    assert "rerank" not in default  # the shipped default profile does not re-rank
    own = catalog_profiles_path(labelled.root)
    assert not own.exists() and not user_profiles_path().exists()

    assert cli_main(["--catalog", root, "calibrate", "--min-pairs", "10"]) == 0
    printed = capsys.readouterr().out
    # saved with the catalog, for the catalog: another catalog (or `wildid eval`'s throwaway
    # one) keeps the shipped scores
    assert "default: refitted on" in printed and f"saved {own}" in printed
    assert not user_profiles_path().exists()
    assert active_profiles(tmp_path / "another")["default"].to_dict() == \
        load_profiles()["default"].to_dict() == active_profiles()["default"].to_dict()
    saved = active_profiles(labelled.root)["default"]
    assert saved.calibration is not None
    assert saved.calibration.threshold == pytest.approx(default["threshold"])
    assert saved.calibration.info["fitted_on"] == f"catalog {labelled.root}"
    # the scores the shipped profile fuses, reweighted: never the re-id embedder's cosine (that
    # model was trained on the development photos; fused, it took query top-1 down)
    assert saved.calibration.features == load_profiles()["default"].calibration.features
    assert not any(f.startswith("reid") for f in saved.calibration.features)
    # fitted at this catalog's size, each query compared with every other annotation: the
    # shown scores shift from there as the catalog changes, by the shipped profile's slope
    assert saved.size_reference == len(PATTERNS) * SHOTS - 1
    assert saved.size_slope == load_profiles()["default"].size_slope
    # marked as fitted for the shipped settings (an upgrade that changes them retires it)
    assert saved.info["settings_of"] == load_profiles()["default"].settings_digest()
    # the file holds only what was refitted: the shipped lion and nyala follow upgrades
    assert set(json.loads(own.read_text())["profiles"]) == {"default"}
    assert active_profiles(labelled.root)["nyala"].to_dict() == load_profiles()["nyala"].to_dict()
    assert CatalogEngine(labelled).profiles["default"].to_dict() == saved.to_dict()
    assert cli_main(["--catalog", root, "calibrate", "--reset"]) == 0
    assert "removed the scores refitted on" in capsys.readouterr().out
    assert not own.exists()
    assert active_profiles(labelled.root)["default"].to_dict() == \
        load_profiles()["default"].to_dict()


def test_a_catalog_with_few_individuals_seen_twice_keeps_the_shipped_scores(labelled,
                                                                             capsys) -> None:
    """On catalogs of 3 development lions refits were far worse calibrated on their later
    sightings than the shipped scores: a profile is refitted only from MIN_INDIVIDUALS
    individuals with a confirmed second sighting, and the report says how many there are."""
    from wildid.engine import calibrate
    from wildid.gui.score_refit import QUESTION

    assert f"({calibrate.MIN_INDIVIDUALS} individuals seen at least twice" in QUESTION
    assert len(PATTERNS) >= calibrate.MIN_INDIVIDUALS  # the other tests refit these animals
    root = str(labelled.root)
    # nothing refitted: exit status 1, as with too few pairs
    assert cli_main(["--catalog", root, "calibrate", "--min-pairs", "10",
                     "--min-individuals", str(len(PATTERNS) + 1)]) == 1
    out = capsys.readouterr().out
    assert f"default: kept ({len(PATTERNS)} individuals with a confirmed second sighting, " \
        f"{len(PATTERNS) + 1} needed)" in out
    assert not catalog_profiles_path(labelled.root).exists()
    # with exactly as many as it needs, the profile is refitted
    report = calibrate_catalog(labelled, min_pairs=10, save=False,
                               min_individuals=len(PATTERNS))
    assert report["profiles"]["default"]["refitted"]


def test_refits_saved_for_every_catalog_by_earlier_versions_apply_to_their_own(
        labelled, tmp_path: Path, capsys) -> None:
    """Refits used to be saved in the user's file, for every catalog: one fitted on a young
    catalog of two animals set the "likely new" threshold everywhere. Such a refit now
    applies to the catalog it was fitted on only, and --reset there removes it; a profile
    edited by hand in that file (a species of the user's own) still applies everywhere."""
    shipped = load_profiles()
    refit = replace(shipped["default"],
                    calibration=replace(shipped["default"].calibration, threshold=0.963,
                                        info={"fitted_on": f"catalog {labelled.root}"}),
                    info={"settings_of": shipped["default"].settings_digest()})
    zebra = replace(shipped["default"], name="zebra", aliases=["Equus quagga"], info={})
    save_profiles({"default": refit, "zebra": zebra}, user_profiles_path())
    assert active_profiles(labelled.root)["default"].calibration.threshold == 0.963
    for elsewhere in (active_profiles(tmp_path / "another"), active_profiles()):
        assert elsewhere["default"].to_dict() == shipped["default"].to_dict()
        assert elsewhere["zebra"].aliases == ["Equus quagga"]
    open_catalog(tmp_path / "another").close()
    assert cli_main(["--catalog", str(tmp_path / "another"), "calibrate", "--reset"]) == 0
    assert "nothing was refitted on this catalog" in capsys.readouterr().out
    assert active_profiles(labelled.root)["default"].calibration.threshold == 0.963
    assert cli_main(["--catalog", str(labelled.root), "calibrate", "--reset"]) == 0
    assert "removed" in capsys.readouterr().out
    assert set(json.loads(user_profiles_path().read_text())["profiles"]) == {"zebra"}
    assert active_profiles(labelled.root)["default"].to_dict() == shipped["default"].to_dict()
    assert active_profiles(labelled.root)["zebra"].aliases == ["Equus quagga"]


def test_calibrate_refits_the_learned_reranking(labelled) -> None:
    profiles = _reranking(load_profiles())
    shipped_stage = profiles["default"].rerank_calibration
    engine = CatalogEngine(labelled, profiles=profiles)
    engine.extract()
    ident = engine.identifier("default")
    assert ident.matcher is not None and ident.rerank_calibration is shipped_stage
    report = calibrate_catalog(labelled, min_pairs=10, save=True, engine=engine)
    entry = report["profiles"]["default"]
    rerank = entry["rerank"]
    assert entry["refitted"] and rerank["refitted"] and "model" not in rerank
    # the three best individuals of every known query, each matched again by LightGlue
    assert rerank["n_pairs"] == len(PATTERNS) * SHOTS * 3
    assert rerank["n_positive"] == len(PATTERNS) * SHOTS  # the right one is always in the top 3
    assert rerank["loo_top1"] >= 0.9
    saved = active_profiles(labelled.root)["default"]
    stage = saved.rerank_calibration
    assert stage is not None and stage is not shipped_stage and saved.reranks
    assert stage.features == ["fused", "lightglue"]
    assert stage.threshold == pytest.approx(rerank["threshold"])
    assert stage.info["fitted_on"] == f"catalog {labelled.root}"
    # the engine's own profiles are not changed behind its back
    assert engine.profiles["default"].rerank_calibration is shipped_stage


def test_calibrate_keeps_the_shipped_reranking_without_enough_pairs(labelled) -> None:
    engine = CatalogEngine(labelled, profiles=_reranking(load_profiles()))
    engine.extract()
    report = calibrate_catalog(labelled, min_pairs=len(PATTERNS) * SHOTS + 1, save=False,
                               engine=engine)
    entry = report["profiles"]["default"]
    assert entry["refitted"]  # 36 matching pairs for the first stage
    assert not entry["rerank"]["refitted"]
    assert "the shipped re-ranking is kept" in entry["rerank"]["reason"]


def test_calibrate_shows_the_matcher_a_turned_photo_turned_back(catalog, animal_photos,
                                                                tmp_path: Path) -> None:
    """A confirmed photo taken with the camera on its side: its verified pairs say so, and the
    learned matcher compares it turned back, as identification does (``matcher_view``), so the
    second stage is fitted on the evidence identification will give it."""
    import cv2
    import numpy as np

    from wildid.vision.image_io import load_image

    turned = tmp_path / "turned.jpg"
    upright = load_image(animal_photos[PATTERNS[0]][1])
    cv2.imwrite(str(turned), cv2.cvtColor(np.rot90(upright, k=-1), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 92])
    photos = {p: list(shots) for p, shots in animal_photos.items()}
    photos[PATTERNS[0]][1] = turned
    _label(catalog, photos)
    engine = CatalogEngine(catalog, profiles=_reranking(load_profiles()))
    engine.extract()
    asked: dict[str, list[float]] = {}
    views: dict[str, object] = {}
    real = engine._turned_query  # noqa: SLF001

    def spy(ann_id, species):  # type: ignore[no-untyped-def]
        turn = real(ann_id, species)

        def described(degrees: float):  # type: ignore[no-untyped-def]
            asked.setdefault(ann_id, []).append(degrees)
            views[ann_id] = turn(degrees)
            return views[ann_id]
        return described

    engine._turned_query = spy  # type: ignore[method-assign]  # noqa: SLF001
    ident = engine.identifier("default")
    given: list[object] = []
    evidence = ident.learned_evidence
    ident.learned_evidence = lambda learned, key: (given.append(learned),  # type: ignore[method-assign]
                                                   evidence(learned, key))[1]
    report = calibrate_catalog(catalog, min_pairs=10, save=False, engine=engine)
    assert report["profiles"]["default"]["rerank"]["refitted"]
    with catalog.session() as s:
        ann = s.scalars(select(Annotation.id).join(Photo)
                        .where(Photo.original_path == str(turned))).one()
        ind = s.scalars(select(Encounter.individual_id).join(Annotation)
                        .where(Annotation.id == ann)).one()
    # the turned photo's known query: described again a quarter turn back (its other photos
    # in the index then say the others are turned too, as identification would find)
    assert abs(asked[ann][0] + 90) <= 20
    view = views[ann]
    assert view is not None and any(g is view for g in given)
    # turned back, it matches its own animal's other photos far better than as stored
    stored = engine.load_features([ann])[0][ann].learned
    mates = [k for k in ident._entries if k != ann and str(ident.individual_of(k)) == ind]  # noqa: SLF001
    assert len(mates) == SHOTS - 1
    assert max(evidence(view, k) for k in mates) > 2 * max(evidence(stored, k) for k in mates)


def _install_as_user_model(model_id: str) -> None:
    """The shipped re-id model copied into the user models folder under another id and
    without its ``species`` (as a user installs a MiewID export), then made the embedder."""
    from wildid.engine.runtime import default_registry
    from wildid.paths import user_models_dir
    from wildid.vision.registry import shipped_models_dir

    shipped = shipped_models_dir()
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{model_id}.onnx").write_bytes((shipped / "reid_lite0_nyala_lion.onnx").read_bytes())
    manifest = json.loads((shipped / "reid_lite0_nyala_lion.json").read_text())
    manifest.update(id=model_id, file=f"{model_id}.onnx")
    manifest.pop("species")
    (folder / f"{model_id}.json").write_text(json.dumps(manifest))
    registry = default_registry()
    registry.refresh()
    registry.set_active("embedder", model_id)


def test_calibrate_tries_a_user_embedder_and_scores_with_it_only_while_it_is_active(
        labelled, capsys, caplog) -> None:
    """A user's embedder is tried by every refit (cross-validated over the catalog's
    individuals) and the verdict reported with its figures. A calibration that weighs its
    cosine scores every candidate with it while it is the embedder; once the user chooses
    another, the shipped calibration stands in (with a warning) instead of a stand-in value."""
    from wildid.engine.runtime import default_registry
    from wildid.matching.calibration import fit_calibration

    _install_as_user_model("user_reid")
    root = str(labelled.root)
    assert cli_main(["--catalog", root, "calibrate", "--dry-run", "--json",
                     "--min-pairs", "10"]) == 0
    trial = json.loads(capsys.readouterr().out)["profiles"]["default"]["embedder"]
    assert trial["embedder"] == "user_reid" and trial["individuals"] == len(PATTERNS)
    assert len(trial["top1"]) == 2 and len(trial["log_loss"]) == 2
    assert cli_main(["--catalog", root, "calibrate", "--dry-run", "--min-pairs", "10"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "embedder user_reid" in x)
    assert f"held-out individuals, {len(PATTERNS)} in 5 folds: top-1" in line
    # the generated animals are told apart by their markings already: not fused
    assert ("not fused (shortlist only)" in line) == (not trial["fused"])

    # a calibration that weighs the cosine (as a refit that fused it saves)
    shipped = load_profiles()["default"]
    features = [*shipped.calibration.features, "user_reid"]
    rows = [{"lnbnn": 9.0, "sv": 5.0, "inliers": 9.0, "colour": 0.9, "user_reid": c}
            for c in (0.9, 0.8, 0.7)] + \
        [{"lnbnn": 1.0, "sv": 0.0, "inliers": 2.0, "colour": 0.5, "user_reid": c}
         for c in (0.1, 0.2, 0.3, 0.0)]
    model = fit_calibration(rows, [True] * 3 + [False] * 4, features,
                            ["log1p"] * 3 + ["identity", "identity"])
    save_profiles({"default": replace(shipped, calibration=model)}, user_profiles_path())
    engine = CatalogEngine(labelled)
    engine.extract()
    with labelled.session() as s:
        enc = s.scalars(select(Encounter.id).limit(1)).one()
    best = engine.match_encounter(enc, store=False).candidates[0][0]
    assert "user_reid" in best.raw and best.raw["user_reid"] > 0.5
    assert engine.identifier("default").calibration.features == features

    default_registry().set_active("embedder", None)  # back to the shipped model
    caplog.clear()
    engine = CatalogEngine(labelled)
    assert engine.identifier("default").calibration.features == shipped.calibration.features
    assert "weighs the cosine of user_reid, which is not the active embedder" in caplog.text
