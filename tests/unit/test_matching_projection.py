"""The learned RootSIFT projection: shipped file, integrity checks, mirroring, and its use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_matching_features import texture
from wildid.engine.sources import SiftSource
from wildid.errors import MatchingError
from wildid.matching.features import RootSiftExtractor, mirror_sift_descriptors
from wildid.matching.identifier import Identifier, IdentifierConfig
from wildid.matching.profiles import load_profiles
from wildid.matching.projection import DescriptorProjection


@pytest.fixture(scope="module")
def lion_projection() -> DescriptorProjection:
    proj = load_profiles()["lion"].projection()
    assert proj is not None, "the lion profile ships a descriptor projection"
    return proj


def test_shipped_projection_loads_verified_and_mirrors_by_sign_flips(lion_projection) -> None:
    ext = RootSiftExtractor(max_keypoints=300, long_side=320)
    raw = ext.extract(texture(3)).descriptors
    projected = lion_projection.apply(raw)
    np.testing.assert_allclose(np.linalg.norm(projected, axis=1), 1.0, atol=1e-5)
    assert (projected < 0).any()  # signed: the index takes its signed kernel path
    # projecting the mirrored descriptors = flipping the signs of the projected ones
    np.testing.assert_allclose(lion_projection.mirror(projected),
                               lion_projection.apply(mirror_sift_descriptors(raw)), atol=1e-4)
    # ...which the SIFT bin permutation would get wrong on projected rows
    wrong = mirror_sift_descriptors(np.abs(projected))
    assert np.abs(wrong - np.abs(lion_projection.apply(mirror_sift_descriptors(raw)))).max() > 0.1


def test_missing_damaged_or_foreign_projection_files_are_clear_errors(tmp_path: Path,
                                                                      lion_projection) -> None:
    path = tmp_path / "p.npz"
    digest = lion_projection.save(path, {"note": "test"})
    again = DescriptorProjection.load(path, digest)
    np.testing.assert_array_equal(again.matrix, lion_projection.matrix)
    assert again.id == lion_projection.id
    with pytest.raises(MatchingError, match="is missing"):
        DescriptorProjection.load(tmp_path / "nope.npz")
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(MatchingError, match="damaged or was replaced"):
        DescriptorProjection.load(path, digest)
    with pytest.raises(MatchingError, match="takes 128-d"):
        lion_projection.apply(np.ones((2, 64), np.float32))


def test_lion_features_are_named_by_their_projection(lion_projection) -> None:
    """Stored names carry the projection id, so a new projection re-extracts old features."""
    profiles = load_profiles()
    source = SiftSource(profiles)
    assert source.extractor_name("lion") == f"rootsift/lion+proj:{lion_projection.id}+max512+tex"
    assert "+proj" not in source.extractor_name("nyala")
    blob = source.compute([texture(4)], ["Panthera leo"])[0]
    from wildid.matching.features import LocalFeatures

    feats = LocalFeatures.from_bytes(blob)
    assert feats.extractor == source.extractor_name("lion") and (feats.descriptors < 0).any()


def test_projected_mirror_search_finds_the_flipped_photo(lion_projection) -> None:
    """A flipped photo of a database animal ranks it first only when mirroring is done by the
    projection's sign flips (the SIFT permutation scrambles projected descriptors)."""
    ext = RootSiftExtractor(max_keypoints=400, long_side=320, projection=lion_projection)
    db = {f"a{i}": ext.extract(texture(10 + i)) for i in range(6)}
    query = ext.extract(np.ascontiguousarray(texture(12)[:, ::-1]))  # a2, flipped
    config = IdentifierConfig(k=2, mirror=True, method="fused")

    def inliers(mirror: object) -> dict[str, float]:
        ident = Identifier(config, mirror_descriptors=mirror)  # type: ignore[arg-type]
        for key, f in db.items():
            ident.add(key, key, f)
        return {k: r.get("inliers", 0.0) for k, r in ident.raw_scores(query).items()}

    right = inliers(lion_projection.mirror)
    assert max(right, key=right.get) == "a2" and right["a2"] >= 30
    assert inliers(None).get("a2", 0.0) < right["a2"] / 3


def test_a_saved_user_profile_keeps_the_shipped_projection(tmp_path: Path, lion_projection) -> None:
    """`wildid calibrate` saves profiles to the user folder: the projection still resolves to
    the shipped file and verifies."""
    from wildid.matching.profiles import save_profiles

    save_profiles(load_profiles(), tmp_path / "calibration.json")
    again = load_profiles(tmp_path / "calibration.json")["lion"]
    assert again.descriptor_projection == load_profiles()["lion"].descriptor_projection
    proj = again.projection()
    assert proj is not None and proj.id == lion_projection.id
    broken = again.descriptor_projection | {"sha256": "0" * 64}
    from dataclasses import replace

    with pytest.raises(MatchingError, match="damaged or was replaced"):
        replace(again, descriptor_projection=broken).projection()


def test_wildid_models_lists_the_projection_and_fails_when_it_is_damaged(capsys) -> None:
    import json

    from wildid.cli import main as cli_main
    from wildid.engine.identification import user_profiles_path
    from wildid.matching.profiles import save_profiles

    assert cli_main(["models", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["lion-v1"]["task"] == "projection (lion)" and rows["lion-v1"]["status"] == "ok"
    # a user profile copy (as `wildid calibrate` writes) whose projection no longer verifies
    profiles = load_profiles()
    profiles["lion"].descriptor_projection = {**profiles["lion"].descriptor_projection,
                                              "sha256": "0" * 64}
    save_profiles(profiles, user_profiles_path())
    assert cli_main(["models"]) == 1
    out = capsys.readouterr().out
    assert "projection (lion)" in out and "damaged or was replaced" in out


def test_a_profile_naming_another_projection_id_is_refused_every_time(lion_projection) -> None:
    from dataclasses import replace

    lion = load_profiles()["lion"]
    assert lion.projection() is lion.projection()  # loaded once
    wrong = replace(lion, descriptor_projection={**lion.descriptor_projection, "id": "other"})
    for _ in range(2):  # the cached file must not skip the check
        with pytest.raises(MatchingError, match="expects 'other'"):
            wrong.projection()
