"""Species profiles: how to extract features and identify, per species, with fitted calibration.

A profile bundles what was tuned for one kind of animal (never for particular files): the
working size and keypoint budget of the local features, the pipeline parameters, the vector
sources fused, and the calibration that turns raw scores into P(same individual) with its
new-individual threshold.  The shipped profiles live in ``defaults/calibration.json``; they were
fitted by ``tests/benchmarks/fit_calibration.py`` on the *database* split of the development
photos only (leave-one-out within it), never on the queries used to report accuracy.
``wildid calibrate`` refits a profile's calibration from a catalog's confirmed and rejected
decisions with :func:`wildid.matching.calibration.fit_calibration` and saves a user copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wildid.errors import MatchingError
from wildid.matching.calibration import CalibrationModel, FirstPlaceCalibration
from wildid.matching.features import RootSiftExtractor
from wildid.matching.identifier import Identifier, IdentifierConfig
from wildid.matching.projection import DescriptorProjection

__all__ = ["DEFAULTS_PATH", "SpeciesProfile", "load_profiles", "profile_for", "save_profiles"]

DEFAULTS_PATH = Path(__file__).resolve().parent / "defaults" / "calibration.json"
# identifier settings added since profiles' digests were first saved, with the value that
# behaves as before (see SpeciesProfile.settings_digest)
_NEUTRAL_SINCE: dict[str, object] = {"aggregation_odds": 1.0}


@dataclass
class SpeciesProfile:
    """Everything species-specific about identification."""

    name: str
    aliases: list[str] = field(default_factory=list)  # e.g. scientific names
    long_side: int = 512  # working size of a crop for local features
    max_keypoints: int = 1000
    contrast_threshold: float = 0.02
    # keypoints placed where this model looks (its ``attention`` output), response x att^power;
    # 0 = strongest responses only.  See RootSiftExtractor.extract.
    attention_power: float = 0.0
    attention_model: str = "reid_lite0_nyala_lion"
    # learned RootSIFT projection: {"file": name in defaults/, "id": ..., "sha256": ...} or None
    descriptor_projection: dict[str, str] | None = None
    config: IdentifierConfig = field(default_factory=IdentifierConfig)
    vectors: list[str] = field(default_factory=lambda: ["colour"])  # fused vector sources
    calibration: CalibrationModel | None = None
    info: dict[str, Any] = field(default_factory=dict)
    # SIFT on the white top-hat of the crop (disc diameter in working pixels; 0 = plain grey):
    # thin bright markings (nyala stripes).  See features.stripe_map.
    tophat: int = 0
    # a second keypoint channel: this many SIFT keypoints on the crop's bright-ridge map, kept
    # apart in the one index by negated descriptors (0 = none).  See features.ridge_map.
    ridge_keypoints: int = 0
    # learned re-ranking: this many keypoints of ``keypoint_model`` (ALIKED) stored per
    # annotation, matched by ``matcher_model`` (LightGlue) against the best
    # ``config.rerank_top`` candidates; ``rerank_calibration`` maps the first stage's logit and
    # the matches' summed confidence to P(same individual).  0 = off.
    learned_keypoints: int = 0
    keypoint_model: str = "aliked_n16"
    matcher_model: str = "lightglue_aliked"
    rerank_calibration: CalibrationModel | None = None
    # the shown scores' logit moves by size_slope * log(n / size_reference) when a query is
    # compared with n < size_reference annotations (the number its calibration was fitted at):
    # in a small catalog LNBNN's normaliser lies farther and every score runs high (see
    # Identifier.size_shift and tests/benchmarks/fit_shown_scores.py).  0 = no shift.  Below
    # size_floor (the smallest catalogs the slope was fitted on) the shift stays as there,
    # and size_slope_small * log(n / size_floor) is added: catalogs of a handful of
    # individuals, where nothing competes with their few photos
    # (tests/benchmarks/fit_tiny_catalogs.py).  That small-catalog part eases off with the
    # first candidate's spatially verified score (raw "sv") and is gone at size_small_verified
    # (0 = it never eases): a strong verified match is not the pile-up it corrects.
    size_slope: float = 0.0
    size_reference: int = 0
    size_floor: int = 0
    size_slope_small: float = 0.0
    size_small_verified: float = 0.0
    # the shown scores re-read knowing which candidate came first (FirstPlaceCalibration,
    # fitted by tests/benchmarks/fit_shown_scores.py); None = shown as calibrated
    first_place: FirstPlaceCalibration | None = None
    # crops with more pixels than ``long_side`` are described at up to this long side (twice
    # their own size, at most this); 0 = always at ``long_side``.  ``long_side`` was chosen on
    # the development photos; a photo with more detail than they have is not brought down to
    # theirs (see RootSiftExtractor.working_side and docs/identification.md, "Photos larger
    # than the development ones").
    long_side_max: int = 0
    # in a catalog smaller than the size floor (the one size_slope_small counts from), the
    # "likely new" threshold's logit rises by verdict_slope_small * log(size_floor / n),
    # eased off by the first candidate's verified score and gone at verdict_small_verified
    # (Identifier.verdict_shift, tests/benchmarks/fit_tiny_catalogs.py).  0 = no rise.
    verdict_slope_small: float = 0.0
    verdict_small_verified: float = 0.0
    # the small-catalog slope for a candidate with a single photo compared, where it differs
    # from size_slope_small (which then holds for candidates with several): how many photos
    # an individual has changes how far its score runs high in a tiny catalog (nyala combines
    # its photos' odds).  None = the same slope for every candidate.
    size_slope_single: float | None = None

    @property
    def reranks(self) -> bool:
        """Whether this profile re-ranks its best candidates with a learned matcher."""
        return (self.learned_keypoints > 0 and self.config.rerank_top > 0
                and self.rerank_calibration is not None)

    def models(self) -> dict[str, str]:
        """The model each of this profile's model-run steps loads, by step: ``attention``
        (places the keypoints), ``keypoints`` (learned keypoints stored for re-ranking) and
        ``matcher`` (re-ranks), each only where the profile switches that step on. The engine
        loads models by this and ``wildid models`` reports it, so the two cannot disagree."""
        steps = {"attention": self.attention_model if self.attention_power > 0 else None,
                 "keypoints": self.keypoint_model if self.learned_keypoints > 0 else None,
                 "matcher": self.matcher_model if self.reranks else None}
        return {step: model_id for step, model_id in steps.items() if model_id is not None}

    def projection_path(self) -> Path | None:
        """Where the profile's projection file is (names are relative to ``defaults/``)."""
        if not self.descriptor_projection:
            return None
        path = Path(self.descriptor_projection["file"])
        return path if path.is_absolute() else DEFAULTS_PATH.parent / path

    def projection(self) -> DescriptorProjection | None:
        """The profile's learned descriptor projection (loaded once, sha256 checked)."""
        path = self.projection_path()
        if path is None:
            return None
        spec = self.descriptor_projection or {}
        key = (str(path), spec.get("sha256"))
        if key not in _PROJECTIONS:
            _PROJECTIONS[key] = DescriptorProjection.load(path, spec.get("sha256"))
        loaded = _PROJECTIONS[key]
        if spec.get("id") and loaded.id != spec["id"]:
            raise MatchingError(f"{path} holds projection {loaded.id!r}, the {self.name} "
                                f"profile expects {spec['id']!r}")
        return loaded

    def extractor(self) -> RootSiftExtractor:
        """The local feature extractor this profile's index expects."""
        return RootSiftExtractor(self.max_keypoints, self.long_side, self.contrast_threshold,
                                 long_side_max=self.long_side_max,
                                 attention_power=self.attention_power,
                                 projection=self.projection(),
                                 texture=self.config.photometric, tophat=self.tophat,
                                 ridge_keypoints=self.ridge_keypoints)

    def identifier(self, matcher: object | None = None) -> Identifier:
        """An empty identifier with this profile's parameters and calibration; ``matcher`` (the
        profile's ``matcher_model``) re-ranks the best candidates when the profile does."""
        proj = self.projection()
        return Identifier(self.config, self.calibration,
                          mirror_descriptors=None if proj is None else proj.mirror,
                          matcher=matcher if self.reranks else None,
                          rerank_calibration=self.rerank_calibration if self.reranks else None,
                          size_slope=self.size_slope, size_reference=self.size_reference,
                          size_floor=self.size_floor, size_slope_small=self.size_slope_small,
                          size_small_verified=self.size_small_verified,
                          first_place=self.first_place,
                          verdict_slope_small=self.verdict_slope_small,
                          verdict_small_verified=self.verdict_small_verified,
                          size_slope_single=self.size_slope_single)

    def settings_digest(self) -> str:
        """A digest of the pipeline settings alone (not the calibrations, not ``info``): a
        calibration fitted for one set of settings is only valid for the same settings.

        Settings added to the identifier after digests were first saved are left out while
        they hold the value that behaves as before (``_NEUTRAL_SINCE``), so an upgrade that
        adds one keeps every saved index and user calibration it does not change."""
        d = self.to_dict()
        for key in ("calibration", "rerank_calibration", "info", "aliases", "size_slope",
                    "size_reference", "size_floor", "size_slope_small", "size_small_verified",
                    "first_place", "verdict_slope_small", "verdict_small_verified",
                    "size_slope_single"):
            d.pop(key, None)
        config = d.get("config") or {}
        for key, neutral in _NEUTRAL_SINCE.items():
            if key in config and config[key] == neutral:
                del config[key]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "aliases": self.aliases, "long_side": self.long_side,
            "max_keypoints": self.max_keypoints, "contrast_threshold": self.contrast_threshold,
            "attention_power": self.attention_power, "attention_model": self.attention_model,
            "descriptor_projection": self.descriptor_projection, "tophat": self.tophat,
            "ridge_keypoints": self.ridge_keypoints,
            "learned_keypoints": self.learned_keypoints, "keypoint_model": self.keypoint_model,
            "matcher_model": self.matcher_model,
            "rerank_calibration": (None if self.rerank_calibration is None
                                   else self.rerank_calibration.to_dict()),
            "config": dict(self.config.__dict__), "vectors": self.vectors,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "size_slope": self.size_slope, "size_reference": self.size_reference,
            "size_floor": self.size_floor, "size_slope_small": self.size_slope_small,
            "size_small_verified": self.size_small_verified,
            "first_place": None if self.first_place is None else self.first_place.to_dict(),
            "verdict_slope_small": self.verdict_slope_small,
            "verdict_small_verified": self.verdict_small_verified,
            "info": self.info,
            # written only where set: profiles without it keep their settings digest
            **({"long_side_max": self.long_side_max} if self.long_side_max else {}),
            **({"size_slope_single": self.size_slope_single}
               if self.size_slope_single is not None else {}),
        }

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> SpeciesProfile:
        try:
            cal = d.get("calibration")
            return cls(name, list(d.get("aliases", [])), int(d.get("long_side", 512)),
                       int(d.get("max_keypoints", 1000)),
                       float(d.get("contrast_threshold", 0.02)),
                       float(d.get("attention_power", 0.0)),
                       str(d.get("attention_model", "reid_lite0_nyala_lion")),
                       _projection_spec(d.get("descriptor_projection")),
                       IdentifierConfig.from_dict(d.get("config", {})),
                       list(d.get("vectors", ["colour"])),
                       CalibrationModel.from_dict(cal) if cal else None, dict(d.get("info", {})),
                       int(d.get("tophat", 0)), int(d.get("ridge_keypoints", 0)),
                       int(d.get("learned_keypoints", 0)),
                       str(d.get("keypoint_model", "aliked_n16")),
                       str(d.get("matcher_model", "lightglue_aliked")),
                       CalibrationModel.from_dict(rerank) if (rerank := d.get("rerank_calibration"))
                       else None, float(d.get("size_slope", 0.0)),
                       int(d.get("size_reference", 0)), int(d.get("size_floor", 0)),
                       float(d.get("size_slope_small", 0.0)),
                       float(d.get("size_small_verified", 0.0)),
                       FirstPlaceCalibration.from_dict(first) if (first := d.get("first_place"))
                       else None, int(d.get("long_side_max", 0)),
                       float(d.get("verdict_slope_small", 0.0)),
                       float(d.get("verdict_small_verified", 0.0)),
                       None if (single := d.get("size_slope_single")) is None else float(single))
        except (TypeError, ValueError) as exc:
            raise MatchingError(f"species profile {name!r} is malformed: {exc}") from exc


_PROJECTIONS: dict[tuple[Any, Any], DescriptorProjection] = {}


def _projection_spec(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("file"), str):
        raise ValueError("descriptor_projection needs a 'file' name")
    return {str(k): str(v) for k, v in value.items()}


def load_profiles(path: Path | None = None, overrides: bool = False
                  ) -> dict[str, SpeciesProfile]:
    """Profiles by name from a JSON file (the shipped defaults when ``path`` is None).

    ``overrides``: the file only overrides some shipped profiles (the user's, see
    ``wildid.engine.identification.active_profiles``), so it need not hold ``default``.
    """
    file = Path(path) if path is not None else DEFAULTS_PATH
    try:
        # a byte order mark is what Notepad writes into a profile copy edited there; a file
        # saved as UTF-16 is named as unreadable like any other, not a traceback
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise MatchingError(f"cannot read species profiles {file}: {exc}") from exc
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or ("default" not in profiles and not overrides):
        raise MatchingError(f"{file}: needs a 'profiles' object with a 'default' profile")
    return {name: SpeciesProfile.from_dict(name, p) for name, p in profiles.items()}


def save_profiles(profiles: Mapping[str, SpeciesProfile], path: Path, note: str = "") -> None:
    data = {"format": 1, "note": note,
            "profiles": {name: p.to_dict() for name, p in profiles.items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def profile_for(species: str | None, profiles: Mapping[str, SpeciesProfile] | None = None
                ) -> SpeciesProfile:
    """The profile whose name or alias matches ``species`` (case-insensitive), else default."""
    profiles = load_profiles() if profiles is None else profiles
    if species:
        wanted = species.strip().lower()
        for name, prof in profiles.items():
            if wanted == name.lower() or wanted in (a.lower() for a in prof.aliases):
                return prof
    return profiles["default"]


def species_names(profiles: Mapping[str, SpeciesProfile] | None = None) -> list[str]:
    """Every name a species profile of its own answers to (names and aliases, the generic
    profile left out): what a species field offers, so that a typed species gets its profile
    rather than the generic one by a spelling the profiles do not know."""
    profiles = load_profiles() if profiles is None else profiles
    names = [n for name, prof in sorted(profiles.items()) if name != "default"
             for n in (name, *prof.aliases)]
    return list(dict.fromkeys(names))
