"""The review commands end to end through ``wildid.cli.main``, and id look-up by prefix/name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.unit import test_review_support as b
from wildid.catalog import open_catalog
from wildid.catalog.models import Decision, Encounter, Individual
from wildid.cli import main
from wildid.errors import NotFoundError, ReviewError
from wildid.ids import short_id
from wildid.review.lookup import find_encounter_id, find_individual_id


@pytest.fixture
def cat_dir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "cat"
    with open_catalog(root) as cat, cat.session() as s:
        stripe, spot = b.individual(s, "Stripe"), b.individual(s, "Spot")
        q = b.encounter(s, b.t(3))
        other = b.encounter(s, b.t(4))
        b.candidate(s, q, stripe, 0, 0.91)
        ids = {"stripe": stripe.id, "spot": spot.id, "q": q.id, "other": other.id}
    return root, ids


def _run(root: Path, *args: str) -> int:
    return main([args[0], "--catalog", str(root), *args[1:]])


def test_confirm_by_prefix_and_name_then_audit_trail(cat_dir, capsys, monkeypatch) -> None:
    root, ids = cat_dir
    monkeypatch.setenv("WILDID_REVIEWER", "Field Team")
    assert _run(root, "confirm", ids["q"][-12:], "stripe") == 0
    assert "as Stripe" in capsys.readouterr().out
    assert _run(root, "decisions", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["verdict"], row["reviewer"], row["encounter_id"], row["candidate_name"]) == (
        "match", "Field Team", ids["q"], "Stripe")
    assert row["scores"]["score"] == pytest.approx(0.91)  # the engine's score was recorded
    assert _run(root, "decisions") == 0
    table = capsys.readouterr().out
    assert "Field Team" in table and "match" in table
    assert "91 %, 1st" in table  # the score and place, as the app's History tab shows them


def test_reject_name_merge_rename(cat_dir, capsys) -> None:
    root, ids = cat_dir
    # The random tail of a UUIDv7 tells records of one batch apart: a suffix works too.
    assert _run(root, "reject", ids["q"], ids["stripe"][-10:], "--reviewer", "Ada") == 0
    assert "not stripe" in capsys.readouterr().out.lower()
    assert _run(root, "name", ids["other"], "Nova", "--species", "nyala") == 0
    said = capsys.readouterr().out
    assert "New individual Nova" in said
    # the new id is shown short, as every table and the other review commands show ids
    with open_catalog(root) as cat, cat.session() as s:
        nova_id = str(s.get(Encounter, ids["other"]).individual_id)
    assert f"({short_id(nova_id)})" in said and nova_id not in said
    assert _run(root, "merge", "Stripe", "Spot") == 0
    assert "Merge Spot into Stripe" in capsys.readouterr().out
    assert _run(root, "rename", "spot", "Stripe II") == 0  # the alias finds the survivor
    capsys.readouterr()
    with open_catalog(root) as cat, cat.session() as s:
        stripe = s.get(Individual, ids["stripe"])
        assert (stripe.name, stripe.aliases) == ("Stripe II", ["Spot", "Stripe"])
        nova = s.get(Individual, s.get(Encounter, ids["other"]).individual_id)
        assert (nova.name, nova.species) == ("Nova", "nyala")
        verdicts = [d.verdict for d in s.scalars(select(Decision).order_by(Decision.id))]
        reviewers = {d.reviewer for d in s.scalars(select(Decision))}
    # the merge and the rename are on the record too (decisions about the individual itself)
    assert verdicts == ["no_match", "new_individual", "merge", "rename"]
    assert "Ada" in reviewers
    assert _run(root, "decisions", "--encounter", ids["q"][-12:], "--json") == 0
    assert [r["verdict"] for r in json.loads(capsys.readouterr().out)] == ["no_match"]
    assert _run(root, "decisions", "--individual", "Nova", "--json") == 0
    assert [r["verdict"] for r in json.loads(capsys.readouterr().out)] == ["new_individual"]
    assert _run(root, "decisions", "--individual", "Stripe II", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["verdict"], r["encounter_id"]) for r in rows[:2]] == [("rename", None), ("merge", None)]
    assert rows[0]["scores"] == {"before": {"name": "Stripe"}, "after": {"name": "Stripe II"}}
    assert _run(root, "decisions", "--individual", "Stripe II") == 0  # the table has no encounter
    table = capsys.readouterr().out
    assert "rename" in table and "renamed Stripe to Stripe II" in table


def test_errors_exit_2_with_a_clear_message(cat_dir, capsys, tmp_path) -> None:
    root, ids = cat_dir
    assert _run(root, "confirm", ids["q"][:5], "Stripe") == 2
    assert "at least 8 characters" in capsys.readouterr().err
    with open_catalog(root) as cat, cat.session() as s:
        for n in (1, 2):  # one batch: UUIDv7 ids sharing their timestamp part
            s.add(Encounter(id=f"0000abcd-0000-7000-8000-00000000000{n}", state="unreviewed"))
    assert _run(root, "confirm", "0000abcd-00", "Stripe") == 2
    assert "ambiguous: it matches 0000abcd-0000-7000-8000-000000000001, 0000abcd" in (
        capsys.readouterr().err)
    assert _run(root, "confirm", ids["q"], "Nobody") == 2
    assert "no individual named 'Nobody'" in capsys.readouterr().err
    assert _run(root, "name", ids["q"], "stripe") == 2
    assert "already an individual named" in capsys.readouterr().err
    assert _run(tmp_path / "nowhere", "decisions") == 2
    assert not (tmp_path / "nowhere").exists()  # review commands never create a catalog


def test_lookup_prefixes_and_ambiguity(catalog) -> None:
    with catalog.session() as s:
        a = b.individual(s, "Twin")
        c = b.individual(s, "twin", species="lion")
        e, e2 = (Encounter(id=f"01234567-89ab-7000-8000-00000000{x * 4}", state="unreviewed")
                 for x in "ab")
        s.add_all([e, e2])
        ids = a.id, c.id, e.id, e2.id
    with catalog.session() as s:
        assert find_encounter_id(s, ids[2].upper()) == ids[2]
        assert find_encounter_id(s, ids[2][:33]) == ids[2]
        with pytest.raises(ReviewError, match="ambiguous"):
            find_encounter_id(s, "01234567-89ab")
        assert find_encounter_id(s, "0000aaaa") == ids[2]  # the random tail tells them apart
        with pytest.raises(NotFoundError):
            find_encounter_id(s, "ffffffff")
        with pytest.raises(ReviewError, match="ambiguous"):
            find_individual_id(s, "TWIN")  # one nyala, one lion, same name
        assert find_individual_id(s, ids[1][-12:]) == ids[1]
        assert find_encounter_id(s, ids[3][-8:]) == ids[3]
    with catalog.session() as s:
        s.get(Individual, ids[1]).merged_into_id = ids[0]
    with catalog.session() as s:
        assert find_individual_id(s, ids[1]) == ids[0]
        assert find_individual_id(s, ids[1], resolve=False) == ids[1]
        assert find_individual_id(s, "twin") == ids[0]  # merged-away names no longer compete


def test_short_ids_shown_tell_a_batch_apart_and_can_be_typed_back(cat_dir, capsys) -> None:
    root, ids = cat_dir
    assert ids["q"][:8] == ids["other"][:8]  # minted together: the timestamp is shared
    assert _run(root, "name", ids["q"], "Nova") == 0
    assert _run(root, "name", ids["other"], "Vega") == 0
    capsys.readouterr()
    assert _run(root, "decisions") == 0
    table = capsys.readouterr().out
    shown = {short_id(ids["q"]), short_id(ids["other"])}
    assert len(shown) == 2 and all(piece in table for piece in shown)
    assert _run(root, "decisions", "--encounter", short_id(ids["other"]), "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["encounter_id"] == ids["other"] and row["candidate_name"] == "Vega"


def test_a_failed_identification_names_the_change_it_followed(capsys) -> None:
    """After a split, a species change or the strip pass, the error must not say that photos
    were imported; the change itself stands either way."""
    from wildid.cli.catalog_commands import print_identification

    print_identification({"error": "no model"}, "burst split")
    err = capsys.readouterr().err
    assert err.startswith("wildid: burst split, but identification failed: no model")
    assert "wildid match --all" in err
    print_identification({"error": "no model"})
    assert capsys.readouterr().err.startswith("wildid: photos imported, but identification failed")


def test_remove_an_individual_without_sightings(cat_dir, capsys) -> None:
    """Spot (no sightings here) is removed: `individuals` no longer lists it, the trail shows
    who removed it; Stripe, with a sighting, is refused."""
    root, ids = cat_dir
    assert _run(root, "confirm", ids["q"], "Stripe") == 0
    capsys.readouterr()
    assert _run(root, "remove", "Stripe") == 2
    assert "Stripe has 1 sighting" in capsys.readouterr().err
    assert _run(root, "remove", "Spot", "--reviewer", "Ada", "--note", "typo") == 0
    assert capsys.readouterr().out.strip() == f"Remove Spot ({short_id(ids['spot'])})"
    assert _run(root, "individuals", "--json") == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["Stripe"]
    assert _run(root, "decisions", "--individual", ids["spot"], "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["verdict"], row["reviewer"], row["note"]) == (
        "remove", "Ada", "removed Spot (no sightings): typo")
    assert _run(root, "remove", "Spot") == 2  # its name no longer finds it
    assert "no individual named 'Spot'" in capsys.readouterr().err


def test_failures_sharing_a_reason_are_said_once() -> None:
    """A faulty model fails every crop with one message: one line for all of them, naming a
    few (the ids `wildid photos` shows), instead of a screenful of the same line."""
    from wildid.cli.output import NAMED_IDS, failure_lines
    from wildid.engine.extraction import failures_by_reason

    ids = [f"01a252d4-f2c5-7000-8b59-ede1{n:08x}" for n in range(NAMED_IDS + 4)]
    failed = [(ids[0], "IMG_1.jpg is truncated"), *((a, "model m is faulty") for a in ids[1:])]
    grouped = failures_by_reason(failed)
    assert grouped == [("IMG_1.jpg is truncated", ids[:1]), ("model m is faulty", ids[1:])]
    assert failure_lines(grouped) == [
        "features failed for annotation 00000000: IMG_1.jpg is truncated",
        f"features failed for {NAMED_IDS + 3} annotations (00000001, 00000002, 00000003 "
        "and 3 more): model m is faulty"]
    assert failure_lines(failures_by_reason(failed[:3]))[1] == (
        "features failed for 2 annotations (00000001, 00000002): model m is faulty")


def test_an_individual_compared_below_the_ranked_ones_is_given_apart() -> None:
    """`wildid match --with`: the individual asked for follows the ten ranked ones; the output
    gives it apart, with its own rank, and the herd check never counts it."""
    from types import SimpleNamespace

    import numpy as np

    from wildid.cli.engine_commands import _match_json

    def cand(ind: str, score: float) -> tuple[SimpleNamespace, str]:
        return (SimpleNamespace(individual_id=ind, score=score, raw={"sv": 1.0},
                                inliers=np.zeros((3, 4)), best_key=f"a-{ind}"), "q")

    ranked = [cand(f"i{n}", 0.9 - n / 20) for n in range(10)]
    m = SimpleNamespace(encounter_id="e", likely_new=False, threshold=0.3, seconds=0.1,
                        queried=1, candidates=[*ranked, cand("far", 0.01)], also_rank=36)
    photos = {"annotations": {}, "encounters": {}}
    out = _match_json(m, {"far": "Faraway"}, photos, top=5, ranked=10)
    assert [c["individual_id"] for c in out["candidates"]] == ["i0", "i1", "i2", "i3", "i4"]
    assert out["compared"]["name"] == "Faraway" and out["compared"]["rank"] == 37
    near = SimpleNamespace(**{**vars(m), "candidates": ranked, "also_rank": 3})
    assert _match_json(near, {}, photos, top=5, ranked=10)["compared"]["individual_id"] == "i3"
