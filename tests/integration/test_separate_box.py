"""A herd photographed in quick succession: the burst's encounter holds two animals until the
box of the other one is given its own encounter (``annotation_ops.separate_annotation``); the
engine then stops counting that photo as the first animal's."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from tests.photofactory import make_shot
from wildid.catalog.models import Annotation, MatchCandidate, Photo
from wildid.engine import forget, identify_new
from wildid.ingest.importer import ImportOptions, run_import
from wildid.review import new_individual, separate_annotation


def _annotation_of(catalog, path) -> Annotation:
    with catalog.session() as s:
        return s.scalars(select(Annotation).join(Photo)
                         .where(Photo.original_path == str(path))).one()


def test_a_herds_burst_is_split_and_the_other_animal_no_longer_counts_as_the_first(
        catalog, tmp_path) -> None:
    when = datetime(2024, 6, 1, 7, 0)
    card = tmp_path / "card"
    first = make_shot(card / "a.jpg", 800, 600, seed=1, pattern_seed=21, taken=when).path
    other = make_shot(card / "b.jpg", 800, 600, seed=2, pattern_seed=22,
                      taken=when + timedelta(seconds=20)).path  # the next animal of the herd
    run_import(catalog, [card], ImportOptions(reference_in_place=True, workers=1))
    burst = _annotation_of(catalog, first).encounter_id
    assert _annotation_of(catalog, other).encounter_id == burst  # one encounter, two animals
    new_individual(catalog, burst, "Herd-1", "Tester")
    later = tmp_path / "later"
    query = make_shot(later / "q.jpg", 800, 600, seed=3, pattern_seed=22, warp=0.15,
                      taken=when + timedelta(days=3)).path  # the second animal, days later
    run_import(catalog, [later], ImportOptions(reference_in_place=True, workers=1))
    q_enc = _annotation_of(catalog, query).encounter_id
    other_box = _annotation_of(catalog, other).id
    try:
        identify_new(catalog)
        with catalog.session() as s:
            top = s.scalars(select(MatchCandidate).where(MatchCandidate.encounter_id == q_enc)
                            .order_by(MatchCandidate.rank)).first()
            # wrongly: Herd-1, through the other animal's photo in its burst
            assert top is not None and top.best_annotation_id == other_box

        op = separate_annotation(catalog, other_box, reviewer="Tester")
        separated = _annotation_of(catalog, other).encounter_id
        assert separated != burst and q_enc in op.changes.encounters  # its candidate showed it
        identify_new(catalog)
        with catalog.session() as s:
            shown = s.scalars(select(MatchCandidate.best_annotation_id)
                              .where(MatchCandidate.encounter_id == q_enc)).all()
            assert other_box not in shown  # Herd-1 no longer has that photo
            # the separated encounter is matched on its own, still to review
            assert s.scalars(select(MatchCandidate)
                             .where(MatchCandidate.encounter_id == separated)).first() is not None
    finally:
        forget(catalog)


def test_match_names_the_animals_a_herds_burst_leads_to(catalog, tmp_path, capsys) -> None:
    """Two named animals, then a burst of one photo of each: `wildid match` says which photo
    leads to whom (as the review screen does), and a burst of one animal says nothing."""
    import json

    from wildid.cli import main as cli_main

    when = datetime(2024, 6, 1, 7, 0)
    known = tmp_path / "known"
    for i, pattern in enumerate((21, 22)):
        make_shot(known / f"k{i}.jpg", 800, 600, seed=10 + i, pattern_seed=pattern,
                  taken=when + timedelta(days=i), serial=f"K{i}")
    run_import(catalog, [known], ImportOptions(reference_in_place=True, workers=1))
    for i, name in enumerate(("Amani", "Baraka")):
        new_individual(catalog, _annotation_of(catalog, known / f"k{i}.jpg").encounter_id,
                       name, "Tester")
    card = tmp_path / "card"
    later = when + timedelta(days=5)
    herd = [make_shot(card / f"herd{i}.jpg", 800, 600, seed=20 + i, pattern_seed=pattern,
                      warp=0.12, taken=later + timedelta(seconds=20 * i), serial="B1").path
            for i, pattern in enumerate((21, 22))]
    one = [make_shot(card / f"one{i}.jpg", 800, 600, seed=30 + i, pattern_seed=21, warp=0.12,
                     taken=later + timedelta(hours=2, seconds=20 * i), serial="B1").path
           for i in range(2)]
    run_import(catalog, [card], ImportOptions(reference_in_place=True, workers=1))
    herd_enc = _annotation_of(catalog, herd[0]).encounter_id
    one_enc = _annotation_of(catalog, one[0]).encounter_id
    assert _annotation_of(catalog, herd[1]).encounter_id == herd_enc != one_enc
    cat = str(catalog.root)
    try:
        capsys.readouterr()
        assert cli_main(["match", "--catalog", cat, herd_enc, "--json"]) == 0
        found = json.loads(capsys.readouterr().out)["different_animals"]
        assert found[0]["score"] >= found[1]["score"]
        assert sorted((d["name"], d["query_photo"]) for d in found) == [
            ("Amani", str(herd[0])), ("Baraka", str(herd[1]))]
        assert cli_main(["match", "--catalog", cat, one_enc, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["different_animals"] == []
        assert cli_main(["match", "--catalog", cat, "--all"]) == 0
        out = capsys.readouterr().out
        assert out.count("these photos match different animals:") == 1
        assert "Amani through herd0.jpg" in out and "Baraka through herd1.jpg" in out
        # the line ends with the command that splits the burst: run it as printed
        (line,) = [x for x in out.splitlines() if "wildid split" in x]
        command = line.split("wildid ", 2)[-1].split()
        # it names the photos of every animal but the best matching one (found is best first)
        stays, goes = found
        assert command[0] == "split" and command[-1] == goes["query_photo"].rsplit("/", 1)[-1]
        assert cli_main([*command, "--catalog", cat, "--reviewer", "Tester"]) == 0
        out = capsys.readouterr().out
        assert "New encounter" in out and "Identification:" in out
        assert _annotation_of(catalog, stays["query_photo"]).encounter_id == herd_enc
        apart = _annotation_of(catalog, goes["query_photo"]).encounter_id
        assert apart != herd_enc
        assert cli_main(["match", "--catalog", cat, "--all", "--json"]) == 0
        matches = {m["encounter_id"]: m for m in json.loads(capsys.readouterr().out)}
        assert all(not m["different_animals"] for m in matches.values())
        assert matches[herd_enc]["candidates"][0]["name"] == stays["name"]
        assert matches[apart]["candidates"][0]["name"] == goes["name"]
        # refused: a photo not in the encounter, or the encounter's every photo
        assert cli_main(["split", "--catalog", cat, one_enc, "herd0.jpg"]) != 0
        assert "not a photo of encounter" in capsys.readouterr().err
        assert cli_main(["split", "--catalog", cat, one_enc, "one0.jpg", "one1.jpg"]) != 0
        assert "every photo of encounter" in capsys.readouterr().err
        assert _annotation_of(catalog, one[1]).encounter_id == one_enc
    finally:
        forget(catalog)


def test_photos_of_the_same_other_animal_are_split_into_one_encounter(catalog, tmp_path,
                                                                      capsys) -> None:
    """A burst of three photos: the first of one animal, the next two of another. `wildid
    split` with both photos of the second moves them into one encounter together, so one
    decision names that animal (before, each got its own and needed its own decision);
    --each still gives every box its own."""
    import json

    from wildid.cli import main as cli_main

    later = datetime(2024, 6, 6, 7, 0)
    card = tmp_path / "card"
    herd = [make_shot(card / f"herd{i}.jpg", 800, 600, seed=40 + i, pattern_seed=pattern,
                      taken=later + timedelta(seconds=20 * i), serial="B1").path
            for i, pattern in enumerate((21, 22, 22))]
    trio = [make_shot(card / f"trio{i}.jpg", 800, 600, seed=50 + i, pattern_seed=pattern,
                      taken=later + timedelta(seconds=20 * i), serial="B2").path
            for i, pattern in enumerate((21, 22, 23))]
    run_import(catalog, [card], ImportOptions(reference_in_place=True, workers=1))
    burst = _annotation_of(catalog, herd[0]).encounter_id
    cat = str(catalog.root)
    try:
        capsys.readouterr()
        assert cli_main(["split", "--catalog", cat, burst, "herd2.jpg", "herd1.jpg",
                         "--reviewer", "Tester", "--no-identify"]) == 0
        out = capsys.readouterr().out
        assert out.count("New encounter") == 1 and "herd1.jpg, herd2.jpg" in out
        apart = _annotation_of(catalog, herd[1]).encounter_id
        assert _annotation_of(catalog, herd[2]).encounter_id == apart != burst
        assert _annotation_of(catalog, herd[0]).encounter_id == burst
        assert cli_main(["encounters", "--catalog", cat, "--json"]) == 0
        times = {e["id"]: e["taken_utc"] for e in json.loads(capsys.readouterr().out)}
        assert times[apart] == (later + timedelta(seconds=20)).isoformat() + "+00:00"

        # --each: every box an encounter of its own (three animals in one burst)
        three = _annotation_of(catalog, trio[0]).encounter_id
        assert cli_main(["split", "--catalog", cat, three, "trio1.jpg", "trio2.jpg", "--each",
                         "--no-identify"]) == 0
        assert capsys.readouterr().out.count("New encounter") == 2
        assert len({_annotation_of(catalog, path).encounter_id for path in trio}) == 3
    finally:
        forget(catalog)
