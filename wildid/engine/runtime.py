"""Building the engine's parts from the installed models, once per process.

The registry and the ONNX sessions are expensive to create, so front ends share them through
these functions instead of constructing their own.
"""

from __future__ import annotations

from wildid.paths import cache_dir, data_dir, user_models_dir
from wildid.vision.registry import ModelRegistry

_registry: ModelRegistry | None = None


def default_registry() -> ModelRegistry:
    """Shipped models plus the user's models folder; choices and the hash cache persisted.

    Built on first use and then shared; WILDID_HOME (tests, portable installs) is read then.
    """
    global _registry
    if _registry is None or _registry.user_dir != user_models_dir():
        _registry = ModelRegistry(
            user_dir=user_models_dir(),
            settings_path=data_dir() / "models.json",
            hash_cache_path=cache_dir() / "model_hashes.json",
        )
    return _registry
