"""What identification uses each installed model for, as ``wildid models`` reports it.

Why a list of uses rather than "the active model of each task": the engine takes only its
global embedder from the user's choice (``wildid models --use``). The keypoint model, the
matcher and the model whose attention places the keypoints come from each species profile,
because a profile's re-ranking is calibrated on the evidence of one keypoint model matched by
one matcher. Marking the registry's default model of each task as active said that the float
LightGlue was in use while the nyala profile re-ranks with the 8-bit one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from wildid.errors import ModelError
from wildid.matching.profiles import SpeciesProfile
from wildid.vision.registry import ModelRegistry

__all__ = ["model_uses"]

# how ``wildid models`` names each step of ``SpeciesProfile.models``
_STEPS = {"attention": "keypoint placement", "keypoints": "learned keypoints",
          "matcher": "re-ranking"}


def model_uses(registry: ModelRegistry, profiles: Mapping[str, SpeciesProfile]
               ) -> dict[str, list[str]]:
    """Model id -> what it is used for: the active embedder's global embedding, and per
    profile (by name) the models of its steps, as the engine loads them
    (:meth:`SpeciesProfile.models`). Ids that no profile or choice uses are absent."""
    uses: dict[str, list[str]] = defaultdict(list)
    try:
        uses[registry.active("embedder").id].append("global embedding")
    except ModelError:
        pass  # no embedder installed: identification runs on local features alone
    for name, prof in sorted(profiles.items()):
        for step, model_id in prof.models().items():
            uses[model_id].append(f"{name}: {_STEPS[step]}")
    return dict(uses)
