"""The cross-validated decision whether ``wildid calibrate`` fuses the embedder's cosine:
synthetic candidates whose local score is weak, with a cosine that tells the animals apart
or one that is noise, fitted and ranked by the real calibration and aggregation code."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from wildid.engine.embedder_fusion import MIN_INDIVIDUALS, not_tried_because, trial
from wildid.matching.identifier import IdentifierConfig

INDIVIDUALS = 12
PHOTOS = 3  # per individual


def _queries(informative: bool, seed: int = 0):  # type: ignore[no-untyped-def]
    """Each photo queried against every other: ``lnbnn`` only weakly higher for its own
    individual, ``user_embed`` clearly higher (``informative``) or drawn alike (noise)."""
    rng = np.random.default_rng(seed)
    individual_of = {(i, p): i for i in range(INDIVIDUALS) for p in range(PHOTOS)}
    queries = []
    for key, ind in individual_of.items():
        raw = {}
        for other, oind in individual_of.items():
            if other == key:
                continue
            same = oind == ind
            cos = rng.normal(0.6 if same and informative else 0.1, 0.1)
            raw[other] = {"lnbnn": float(rng.gamma(2.0, 1.4 if same else 1.0)), "user_embed": cos}
        queries.append((ind, raw))
    return queries, individual_of.__getitem__


def _trial(queries, individual_of, **kw):  # type: ignore[no-untyped-def]
    return trial("user_embed", queries, individual_of, IdentifierConfig().aggregate, ["lnbnn"],
                 ["log1p"], "identity", **kw)


def test_an_informative_cosine_is_fused_and_noise_is_not() -> None:
    queries, individual_of = _queries(informative=True)
    found = _trial(queries, individual_of)
    assert found.fused and found.individuals == INDIVIDUALS
    assert found.top1 is not None and found.log_loss is not None
    assert found.top1[1] > found.top1[0] + 0.3  # the held-out animals are ranked far better
    assert found.log_loss[1] < found.log_loss[0]

    queries, individual_of = _queries(informative=False)
    noise = _trial(queries, individual_of)
    assert not noise.fused and "did not predict" in noise.reason
    assert noise.top1 is not None and noise.top1[1] <= noise.top1[0] + 0.05


def test_too_few_individuals_or_no_cosine_decide_nothing() -> None:
    queries, individual_of = _queries(informative=True)
    few = [q for q in queries if q[0] < MIN_INDIVIDUALS - 1]
    result = _trial(few, individual_of)
    assert not result.fused and result.top1 is None
    assert result.reason.startswith(f"{MIN_INDIVIDUALS - 1} individuals")
    bare = [(ind, {k: {"lnbnn": r["lnbnn"]} for k, r in raw.items()}) for ind, raw in queries]
    assert "no candidate has its cosine" in _trial(bare, individual_of).reason


def test_the_trial_is_reproducible_and_its_verdict_holds_for_another_split() -> None:
    queries, individual_of = _queries(informative=True, seed=3)
    assert _trial(queries, individual_of) == _trial(queries, individual_of)
    assert _trial(queries, individual_of, seed=1).fused


@pytest.mark.parametrize(("source", "species", "names", "tried"), [
    ("shipped", ["nyala", "lion"], ["nyala", "Tragelaphus angasii"], False),
    ("shipped", ["nyala", "lion"], ["default"], True),
    ("user", ["nyala"], ["nyala"], True),  # a user's model is judged by the trial
    ("shipped", [], ["lion"], True),
])
def test_a_shipped_model_is_not_tried_on_the_species_it_was_fine_tuned_on(
        source: str, species: list[str], names: list[str], tried: bool) -> None:
    manifest = SimpleNamespace(extra={"species": species})
    why = not_tried_because(manifest, source, names)
    assert (why is None) == tried
    if not tried:
        assert why is not None and "nyala reference photos" in why
