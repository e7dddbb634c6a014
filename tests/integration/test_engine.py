"""The identification engine end to end on a real catalog: import → extract → match → review.

The photos are generated: each "animal" has unique markings and is photographed twice, in two
scenes, under a perspective change. The second photo must find the first one's individual.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.integration.animals import PATTERNS, encounter_of, import_photos
from tests.photofactory import make_animal_pair
from wildid.catalog.models import Annotation, Encounter, MatchCandidate, MatchSummary, Photo
from wildid.cli import main as cli_main
from wildid.engine import engine_for, forget, process_new
from wildid.engine.identification import CatalogEngine
from wildid.ids import short_id
from wildid.ingest.importer import ImportOptions, run_import
from wildid.review import confirm_match, new_individual, reject_candidate


def test_second_photo_ranks_its_individual_first(catalog, photos, known) -> None:
    import_photos(catalog, photos["query"])
    changes = process_new(catalog)
    queries = [encounter_of(catalog, q) for q in photos["query"]]
    assert set(queries) <= changes.encounters
    with catalog.session() as s:
        for p, enc in zip(PATTERNS, queries, strict=True):
            cands = s.scalars(select(MatchCandidate).where(MatchCandidate.encounter_id == enc)
                              .order_by(MatchCandidate.rank)).all()
            assert cands, f"no candidates for animal {p}"
            assert cands[0].individual_id == known[p], f"animal {p} not ranked first"
            assert all(a.score >= b.score for a, b in zip(cands, cands[1:], strict=False))
            assert 0.0 <= cands[0].score <= 1.0
            assert {"lnbnn", "sv", "inliers", "colour"} <= set(cands[0].raw_scores)
            # inliers in original-photo pixels, inside both photos
            inl = np.frombuffer(cands[0].inliers, np.float32).reshape(-1, 4)
            assert len(inl) >= 8
            assert (inl >= -1).all() and (inl[:, [0, 2]] <= 800).all() and (inl[:, [1, 3]] <= 600).all()
            summary = s.get(MatchSummary, enc)
            assert summary is not None and summary.best_score == pytest.approx(cands[0].score)
            assert summary.likely_new is False
    # nothing left to do: a second run extracts and matches nothing
    assert not process_new(catalog).encounters


def test_results_of_another_calibration_are_matched_again(catalog, photos, known) -> None:
    """A refitted calibration (``wildid calibrate``, an upgrade) makes cached scores stale."""
    import copy

    import_photos(catalog, photos["query"][:2])
    process_new(catalog)
    assert not engine_for(catalog).pending_encounters()
    profiles = copy.deepcopy(engine_for(catalog).profiles)
    assert CatalogEngine(catalog, profiles=profiles).pending_encounters() == []
    for prof in profiles.values():
        if prof.calibration is not None:
            prof.calibration.threshold = min(0.99, prof.calibration.threshold + 0.1)
    queries = {encounter_of(catalog, q) for q in photos["query"][:2]}
    assert set(CatalogEngine(catalog, profiles=profiles).pending_encounters()) == queries


def test_rejected_individual_is_not_proposed_again(catalog, photos, known) -> None:
    import_photos(catalog, photos["query"][:1])
    enc = encounter_of(catalog, photos["query"][0])
    engine = engine_for(catalog)
    engine.extract()
    first = engine.match_encounter(enc)
    top = str(first.candidates[0][0].individual_id)
    assert top == known[PATTERNS[0]]
    reject_candidate(catalog, enc, top, "Tester")
    again = engine.match_encounter(enc)
    assert top not in {str(c.individual_id) for c, _ in again.candidates}



def test_index_updates_incrementally_on_confirmation(catalog, photos, known) -> None:
    import_photos(catalog, photos["query"][:2])
    engine = CatalogEngine(catalog)
    engine.extract()
    assert engine.sync() == len(PATTERNS)
    assert engine.sync() == 0  # nothing changed, nothing redone
    enc = encounter_of(catalog, photos["query"][0])
    confirm_match(catalog, enc, known[PATTERNS[0]], "Tester")
    assert engine.sync() == 1  # just the confirmed encounter's annotation
    assert engine.indexed == len(PATTERNS) + 1
    # the confirmed encounter now helps: its own photo is excluded from its own query
    other = encounter_of(catalog, photos["query"][1])
    assert str(engine.match_encounter(other).candidates[0][0].individual_id) == known[PATTERNS[1]]


def test_index_loading_reports_progress_and_stops_when_cancelled(catalog, photos, known,
                                                                   monkeypatch) -> None:
    """The first sync loads every labelled annotation: it says so chunk by chunk, and a cancel
    between chunks keeps what is loaded for the next sync to go on from."""
    from wildid.engine import identification
    from wildid.errors import Cancelled
    from wildid.progress import CancelToken

    monkeypatch.setattr(identification, "SYNC_CHUNK", 1)
    engine = CatalogEngine(catalog)
    engine.extract()
    token, seen = CancelToken(), []

    def progress(p) -> None:
        seen.append((p.stage, p.done, p.total))
        if p.done == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        engine.sync(progress, token)
    assert seen == [("Loading the index", 0, len(PATTERNS)), ("Loading the index", 1, len(PATTERNS))]
    assert engine.indexed == 1
    assert engine.match_many([], cancel=token).cancelled  # a match job stops there too
    assert engine.sync() == len(PATTERNS) - 1 and engine.indexed == len(PATTERNS)


def test_unknown_animal_scores_below_known_ones_and_verdict_follows_threshold(
        catalog, photos, known, tmp_path) -> None:
    stranger = make_animal_pair(tmp_path / "stranger", 99, seeds=(500, 501), width=800,
                                height=600)[0]
    import_photos(catalog, [stranger.path, photos["query"][0]])
    process_new(catalog)
    engine = engine_for(catalog)
    with catalog.session() as s:
        new = s.get(MatchSummary, encounter_of(catalog, stranger.path))
        old = s.get(MatchSummary, encounter_of(catalog, photos["query"][0]))
        assert new is not None and old is not None
        # a stranger's best candidate is less likely than a real match's
        assert new.best_score < old.best_score
        # in the terms the scores are shown in (the first-place map reads it as a first
        # candidate's score; identifier.Identifier.shown_threshold)
        threshold = engine.identifier("default").shown_threshold()
        assert threshold != engine.profiles["default"].calibration.threshold
        for summary in (new, old):
            # kept for the review colours: the threshold this query was judged by
            assert summary.likely_new == (summary.best_score < summary.threshold)
        # a catalog of a handful of individuals: the stranger's unverified best candidate is
        # shown lower (Identifier.size_shift) and meets a raised threshold
        # (Identifier.verdict_shift), so it is called new; the real match's verified score
        # keeps the full catalog's threshold, and it is called known
        assert new.threshold > threshold and new.likely_new
        assert old.threshold == pytest.approx(threshold) and not old.likely_new


def test_verdict_uses_the_threshold_of_the_annotation_that_scored(catalog, photos, known) -> None:
    """An encounter with a box of another species: its best candidate comes from the default
    profile's annotation, so that profile's threshold decides "likely new", not the threshold
    of whichever annotation happened to be queried last (here a lion box, set very strict)."""
    import copy

    from wildid.review.annotation_ops import add_annotation

    import_photos(catalog, photos["query"][:1])
    enc = encounter_of(catalog, photos["query"][0])
    with catalog.session() as s:
        photo_id = s.scalars(select(Annotation.photo_id).where(Annotation.encounter_id == enc)).one()
    add_annotation(catalog, photo_id, (0, 0, 300, 200), species="Panthera leo", encounter_id=enc)
    profiles = copy.deepcopy(engine_for(catalog).profiles)
    profiles["lion"].calibration.threshold = 0.999
    engine = CatalogEngine(catalog, profiles=profiles)
    engine.extract()
    match = engine.match_encounter(enc)
    assert match.queried == 2
    assert str(match.candidates[0][0].individual_id) == known[PATTERNS[0]]
    assert match.threshold == pytest.approx(engine.identifier("default").shown_threshold())
    assert match.threshold != pytest.approx(engine.identifier("lion").shown_threshold())
    assert match.likely_new is (match.candidates[0][0].score < match.threshold)
    assert match.likely_new is False


def test_cli_extract_match_models(tmp_path, photos, capsys) -> None:
    cat = tmp_path / "cat"
    assert cli_main(["import", "--catalog", str(cat), "--burst-gap", "-1",
                     *map(str, photos["db"][:3])]) == 0
    capsys.readouterr()
    assert cli_main(["extract", "--catalog", str(cat), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["processed"] == 0  # import already extracted
    assert cli_main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert {m["task"] for m in models if m["active"]} >= {"embedder", "keypoints"}
    # the matcher in use is the one the nyala profile re-ranks with, not the task's default
    assert [m["id"] for m in models if m["task"] == "matcher" and m["active"]] == [
        "lightglue_aliked_int8"]
    assert cli_main(["models", "--use", "lightglue_aliked"]) == 2  # profiles choose matchers
    assert "chosen by each species profile" in capsys.readouterr().err
    assert cli_main(["match", "--catalog", str(cat), "--all", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 3 and all(r["likely_new"] and not r["candidates"] for r in res)
    assert cli_main(["match", "--catalog", str(cat)]) == 2  # neither an id nor --all


def test_cli_match_top_shows_fewer_but_stores_what_the_review_keeps(catalog, photos, known,
                                                                   capsys) -> None:
    """`--top K` printed K candidates and also stored only K for the review screen (10
    otherwise): `--top 0` left every unreviewed encounter with none. Now it prints K, stores
    as many as identification keeps, and 0 or a negative count is refused before anything
    runs."""
    import_photos(catalog, photos["query"][:1])
    enc = encounter_of(catalog, photos["query"][0])
    args = ["match", "--catalog", str(catalog.root)]
    assert cli_main([*args, "--all", "--top", "1", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert [c["individual_id"] for c in result["candidates"]] == [known[PATTERNS[0]]]
    with catalog.session() as s:
        stored = s.scalars(select(MatchCandidate.individual_id)
                           .where(MatchCandidate.encounter_id == enc)).all()
    assert len(stored) == len(known)  # all five known animals, as the app's own run keeps
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exited:
            cli_main([*args, "--all", "--top", bad])
        assert exited.value.code == 2
        assert "--top: " in capsys.readouterr().err
    with catalog.session() as s:
        assert s.scalars(select(func.count()).select_from(MatchCandidate)
                         .where(MatchCandidate.encounter_id == enc)).one() == len(known)


def test_cli_import_says_what_identification_made_of_it(tmp_path, photos, capsys) -> None:
    """After the import itself, the report says how many encounters were matched and how many
    look known or new; --json carries the same under ``identification``."""
    cat = str(tmp_path / "cat")
    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1", "--json",
                     str(photos["db"][0])]) == 0
    first = json.loads(capsys.readouterr().out)["identification"]
    # nobody is known yet: the one encounter is matched and has no candidate
    assert (first["matched"], first["likely_known"], first["likely_new"]) == (1, 0, 1)
    assert first["failed_annotations"] == [] and first["not_matched"] == []
    assert cli_main(["encounters", "--catalog", cat, "--json"]) == 0
    (enc,) = json.loads(capsys.readouterr().out)
    assert cli_main(["name", "--catalog", cat, enc["id"], "Ada"]) == 0
    capsys.readouterr()

    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1",
                     str(photos["query"][0])]) == 0
    out = capsys.readouterr().out
    assert "Identification: 1 encounter matched in" in out
    assert "1 likely known, 0 likely new" in out

    # an import with nothing new runs no identification and says none
    assert cli_main(["import", "--catalog", cat, "--json", str(photos["query"][0])]) == 0
    assert "identification" not in json.loads(capsys.readouterr().out)
    assert cli_main(["import", "--catalog", cat, "--no-identify", str(photos["query"][1])]) == 0
    assert "Identification" not in capsys.readouterr().out


def test_cli_lists_say_which_photo_each_encounter_is(tmp_path, photos, capsys) -> None:
    """Naming and confirming on the command line goes by encounter id: `wildid encounters` and
    `wildid match` say which photo each encounter is, and which photo of a candidate matched."""
    cat = str(tmp_path / "cat")
    known, query = photos["db"][0], photos["query"][0]
    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1", str(known)]) == 0
    capsys.readouterr()
    assert cli_main(["encounters", "--catalog", cat, "--json"]) == 0
    (enc,) = json.loads(capsys.readouterr().out)
    assert enc["photo_files"] == [str(known.resolve())]
    assert cli_main(["name", "--catalog", cat, enc["id"], "Ada"]) == 0
    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1", str(query)]) == 0
    capsys.readouterr()

    assert cli_main(["encounters", "--catalog", cat, "--state", "unreviewed"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-1] == "photo" and table[2].endswith(query.name)
    # the id as tables and messages show it (its last 8 characters), which can be typed back
    shown = table[2].split()[0]
    assert cli_main(["encounters", "--catalog", cat, "--json"]) == 0
    whole = {e["id"] for e in json.loads(capsys.readouterr().out)}
    (pending,) = [e for e in whole if e != enc["id"]]
    assert shown == short_id(pending) != pending
    assert cli_main(["individuals", "--catalog", cat, "--json"]) == 0
    (ada,) = json.loads(capsys.readouterr().out)
    assert cli_main(["individuals", "--catalog", cat]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:2] == [short_id(ada["id"]), "Ada"]
    assert cli_main(["match", "--catalog", cat, "--all", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["photo_files"] == [str(query.resolve())]
    assert result["candidates"][0]["name"] == "Ada"
    assert result["candidates"][0]["best_photo"] == str(known.resolve())
    assert cli_main(["match", "--catalog", cat, "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"encounter {shown} ({query.name}): likely known")
    assert "best photo" in out[1] and known.name in out[3]
    assert cli_main(["match", "--catalog", cat, shown, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["encounter_id"] == pending


def test_cli_match_names_photos_whose_features_failed(tmp_path, photos, capsys) -> None:
    """A photo referenced in place and damaged after the import: `wildid match` still matches
    its encounter (without features) and says on stderr which annotation failed and why."""
    cat = str(tmp_path / "cat")
    photo = tmp_path / "card" / "IMG_0001.jpg"
    photo.parent.mkdir()
    photo.write_bytes(photos["db"][0].read_bytes())
    assert cli_main(["import", "--catalog", cat, "--reference-in-place", "--no-identify",
                     str(photo)]) == 0
    photo.write_bytes(photo.read_bytes()[:4000])
    capsys.readouterr()
    assert cli_main(["match", "--catalog", cat, "--all", "--json"]) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)
    assert result["queried"] == 0 and result["candidates"] == []
    assert "features failed for annotation" in captured.err
    assert "IMG_0001.jpg is truncated" in captured.err


def test_a_photo_no_features_can_be_made_of_fails_alone(catalog, photos, known,
                                                       tmp_path) -> None:
    """A 1x1 px image on the card (a web bug, a spacer saved by a browser) shares an
    extraction chunk with the real photos. Its failure failed the whole chunk: every photo in
    it went unmatched ("image too small for features: 1x1" for each). Now it fails alone."""
    import cv2

    dot = tmp_path / "card" / "dot.png"
    dot.parent.mkdir()
    cv2.imwrite(str(dot), np.full((1, 1, 3), 128, np.uint8))
    import_photos(catalog, [dot, *photos["query"]])
    report = engine_for(catalog).extract()
    with catalog.session() as s:
        dot_ann = s.scalars(select(Annotation.id).join(Annotation.photo)
                            .where(Photo.original_path == str(dot))).one()
    assert [a for a, _ in report.failed] == [dot_ann]  # it alone, and named once
    assert "too small for features: 1x1" in report.failed[0][1]
    process_new(catalog)
    with catalog.session() as s:
        for p, path in zip(PATTERNS, photos["query"], strict=True):
            first = s.scalars(select(MatchCandidate.individual_id)
                              .where(MatchCandidate.encounter_id == encounter_of(catalog, path))
                              .order_by(MatchCandidate.rank)).first()
            assert first == known[p]


def named_nyala_catalog(tmp_path, photos, capsys) -> str:
    """A catalog (by the CLI) of the first two database photos as nyala, named N0 and N1."""
    cat = str(tmp_path / "cat")
    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1", "--no-identify",
                     "--species", "nyala", *map(str, photos["db"][:2])]) == 0
    capsys.readouterr()
    assert cli_main(["encounters", "--catalog", cat, "--json"]) == 0
    for n, enc in enumerate(json.loads(capsys.readouterr().out)):
        assert cli_main(["name", "--catalog", cat, enc["id"], f"N{n}"]) == 0
    capsys.readouterr()
    return cat


def test_an_import_without_species_takes_the_one_every_individual_has(tmp_path, photos,
                                                                      capsys) -> None:
    """A nyala catalog, then a card imported with no species: before, its encounters went to
    the generic profile and were compared with nobody. Now they are nyala, the report says
    so, and the animal is found."""
    cat = named_nyala_catalog(tmp_path, photos, capsys)
    assert cli_main(["import", "--catalog", cat, "--json", str(photos["query"][0])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["species"], report["species_inferred"]) == ("nyala", True)
    assert report["identification"]["likely_known"] == 1
    assert cli_main(["match", "--catalog", cat, "--all", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["candidates"][0]["name"] == "N0" and not result["likely_new"]

    # a species given is kept; one without a profile of its own is said to have none
    assert cli_main(["import", "--catalog", cat, "--species", "Equus quagga", "--no-identify",
                     str(photos["query"][1])]) == 0
    out = capsys.readouterr().out
    assert "Species: Equus quagga has no profile of its own" in out
    assert cli_main(["import", "--catalog", cat, "--species", "Panthera leo", "--no-identify",
                     str(photos["query"][2])]) == 0
    assert "Species:" not in capsys.readouterr().out


def test_catalog_species_only_when_every_individual_shares_one(catalog) -> None:
    from wildid.catalog.models import Individual
    from wildid.ingest.importer import catalog_species

    def with_individuals(*species: tuple[str | None, str | None]) -> str | None:
        with catalog.session() as s:
            for own, seen in species:
                ind = Individual(name="x", species=own)
                s.add(ind)
                s.flush()
                s.add(Encounter(individual_id=ind.id, species=seen, state="confirmed"))
            s.flush()
            found = catalog_species(s)
            s.rollback()
        return found

    assert with_individuals() is None  # nobody known yet
    assert with_individuals(("Nyala", None), (None, "nyala"), ("nyala", "x")) == "nyala"
    assert with_individuals(("nyala", None), ("lion", None)) is None
    assert with_individuals(("nyala", None), (None, None)) is None  # one without: ask
    assert with_individuals((" lion ", None)) == "lion"
    # the names of one species profile are one species; the most used name is given
    assert with_individuals(("Tragelaphus angasii", None), ("nyala", None),
                            (None, "Tragelaphus angasii")) == "Tragelaphus angasii"
    assert with_individuals(("Panthera leo", None), ("nyala", None)) is None
    # names no profile claims are only merged when spelled alike
    assert with_individuals(("zebra", None), ("Equus quagga", None)) is None


def test_candidates_go_stale_with_decisions_that_change_who_is_known(catalog, photos) -> None:
    """An animal named from one encounter is not among the candidates stored for its other
    sightings: those are out of date, and refresh_matches brings them up to date."""
    from wildid.engine import refresh_matches
    from wildid.review import update_annotation
    from wildid.review.queries import stale_results

    import_photos(catalog, photos["db"][:2] + photos["query"][:2])
    process_new(catalog)
    first, other = (encounter_of(catalog, p) for p in photos["db"][:2])
    later, third = (encounter_of(catalog, p) for p in photos["query"][:2])
    everyone = [first, other, later, third]
    assert stale_results(catalog, everyone) == []  # all matched, nobody known: no candidates
    with catalog.session() as s:
        assert s.scalar(select(MatchCandidate).where(MatchCandidate.encounter_id == later)) is None

    new_individual(catalog, first, "Zuri", "Tester")
    assert stale_results(catalog, everyone) == [other, later, third]  # in the order asked
    report = refresh_matches(catalog, [later, third])
    assert report.matched == [later, third] and report.extraction.processed == 0
    assert stale_results(catalog, everyone) == [other]  # only what was asked is matched
    with catalog.session() as s:
        zuri = s.scalars(select(Encounter.individual_id).where(Encounter.id == first)).one()
        stored = s.scalars(select(MatchCandidate.individual_id)
                           .where(MatchCandidate.encounter_id == later)
                           .order_by(MatchCandidate.rank)).all()
    assert stored[0] == zuri  # her second sighting now has her first
    assert refresh_matches(catalog, [later]).matched == []  # up to date: nothing to do
    refresh_matches(catalog, [other])
    # saying "not this one" teaches nothing about the other encounters, but its own are
    # matched again without the rejected individual: the verdict and the scores shown were
    # taken with her first
    reject_candidate(catalog, later, zuri, "Tester")
    assert stale_results(catalog, everyone) == [later]
    assert refresh_matches(catalog, everyone).matched == [later]
    with catalog.session() as s:
        assert zuri not in s.scalars(select(MatchCandidate.individual_id)
                                     .where(MatchCandidate.encounter_id == later)).all()
    assert stale_results(catalog, everyone) == []

    # a box drawn on a photo sets its results aside: stale, and its features are made first
    with catalog.session() as s:
        ann = s.scalars(select(Annotation.id).where(Annotation.encounter_id == third)).one()
    update_annotation(catalog, ann, box=(10, 10, 600, 400))
    assert stale_results(catalog, [later, third]) == [third]
    report = refresh_matches(catalog, [later, third])
    assert report.matched == [third] and report.extraction.processed == 1
    forget(catalog)


def test_eval_on_generated_manifest(tmp_path, photos, capsys) -> None:
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "identity", "split"])
        for split, key in (("database", "db"), ("query", "query")):
            for p, path in zip(PATTERNS, photos[key], strict=True):
                w.writerow([str(path), f"animal-{p}", split])
    out = tmp_path / "eval.json"
    assert cli_main(["eval", str(manifest), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {"top1", "top5", "mAP", "n_queries", "seconds_per_query"} <= set(res)
    assert res["n_queries"] == len(PATTERNS)
    assert res["top1"] == 1.0 and res["mAP"] == 1.0
    # every query photo is listed with where its own animal ranked
    assert sorted(q["path"] for q in res["queries"]) == sorted(str(p) for p in photos["query"])
    assert all(q["rank"] == 1 and q["top5"][0] == q["identity"] for q in res["queries"])
    # the reliability table covers every candidate shown, each band's figures within it
    rel = res["reliability"]
    shown = sum(len(q["scores"]) for q in res["queries"])
    assert sum(b["n"] for b in rel["bands"]) == shown
    assert all(b["low"] <= b["mean_score"] <= b["high"] and 0 <= b["right"] <= 1
               for b in rel["bands"])
    right = [s for q in res["queries"] for s, name in zip(q["scores"], q["top5"], strict=True)
             if name == q["identity"]]
    assert sum(b["n"] * b["right"] for b in rel["bands"]) == pytest.approx(len(right))
    captured = capsys.readouterr()
    printed = captured.out
    assert "top-1 100.0 %" in printed
    assert "vs how often right" in printed and "calibration error" in printed
    assert res["queries_without_database_identity"] == 0 and "no database photo" not in printed
    # nothing names the species and the patterned animals are no nyala or lion: it says so
    assert "nor clearly shown by them" in captured.err and res["species_profile"] == "default"
    assert res["species_from"] == "none" and set(res["species_cosines"]) == {"nyala", "lion"}

    # a query of an animal with no database photo can never be right: it counts as a miss
    # (as in the published protocols) and the user is told so
    stranger = make_animal_pair(tmp_path / "stranger", 99, seeds=(500, 501), width=800,
                                height=600)[0]
    with manifest.open("a", newline="") as fh:
        csv.writer(fh).writerow([str(stranger.path), "stranger", "query"])
    assert cli_main(["eval", str(manifest), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["n_queries"] == len(PATTERNS) + 1 and res["queries_without_database_identity"] == 1
    assert res["top1"] == pytest.approx(len(PATTERNS) / (len(PATTERNS) + 1))
    assert f"1 of {len(PATTERNS) + 1} queries (1 identity) have no database photo" in \
        capsys.readouterr().err
    assert res["missing_photos"] == 0 and res["photos_not_imported"] == 0

    # a photo lost from the copy and an unreadable one cost only themselves: both are named
    # and left out, and the rest is evaluated as before
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with manifest.open("a", newline="") as fh:
        csv.writer(fh).writerows([[str(tmp_path / "gone.jpg"), "animal-0", "query"],
                                  [str(broken), "animal-1", "query"]])
    assert cli_main(["eval", str(manifest), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["missing_photos"] == 1 and res["photos_not_imported"] == 1
    assert res["rows_sharing_a_photo"] == 0
    assert res["n_queries"] == len(PATTERNS) + 1
    assert res["top1"] == pytest.approx(len(PATTERNS) / (len(PATTERNS) + 1))
    err = capsys.readouterr().err
    assert "1 photo(s) of the manifest do not exist and are left out (line" in err
    assert f"1 photo(s) could not be imported and are left out (1 of them queries; first: {broken})" in err

    # a database photo listed as a query too, under another name: said, and as a query it is
    # matched against the rest of the database only (here its animal's only photo: a miss)
    copy = tmp_path / "copy_of_db0.jpg"
    copy.write_bytes(photos["db"][0].read_bytes())
    with manifest.open("a", newline="") as fh:
        csv.writer(fh).writerow([str(copy), f"animal-{PATTERNS[0]}", "query"])
    assert cli_main(["eval", str(manifest), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["rows_sharing_a_photo"] == 2 and res["n_queries"] == len(PATTERNS) + 2
    copied = next(q for q in res["queries"] if q["path"] == str(copy))
    assert copied["rank"] is None  # not found through itself
    assert ("2 manifest rows show a photo another row shows too (the same file, or the same "
            f"bytes under another name; first: {photos['db'][0]}") in capsys.readouterr().err


def test_eval_rejects_a_bad_manifest(tmp_path, capsys) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,identity,split\nx.jpg,a,database\nx.jpg,b,sideways\n,c,query\n")
    (tmp_path / "x.jpg").write_bytes(b"x")
    assert cli_main(["eval", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "2 bad row(s)" in err and "line 3: split 'sideways'" in err
    assert "line 4: empty path or identity" in err
    # nothing left to evaluate once the missing photos are left out
    manifest.write_text("path,identity,split\nx.jpg,a,database\ngone.jpg,a,query\n")
    assert cli_main(["eval", str(manifest)]) == 2
    assert "needs both database and query rows whose photos exist (1 do not)" in \
        capsys.readouterr().err


def test_nyala_keypoints_follow_the_attention_model_and_are_redone_when_it_returns(
        catalog, photos) -> None:
    """Without the re-id model nyala features are plain; once it is available they are
    re-extracted with its attention (named in the stored features) and matching still works."""
    from wildid.catalog.models import Feature
    from wildid.matching.features import LocalFeatures

    files = photos["db"][:3] + photos["query"][:1]
    report = run_import(catalog, files, ImportOptions(burst_gap_s=-1, reference_in_place=True,
                                                      workers=1, species="Tragelaphus angasii"))
    assert not report.skipped

    def local_names() -> set[str]:
        with catalog.session() as s:
            return {LocalFeatures.extractor_of(d) for d in s.scalars(
                select(Feature.data).where(Feature.kind == "local"))}

    assert CatalogEngine(catalog, use_embedder=False).extract().processed == 4
    assert local_names() == {"rootsift/nyala+th9+ridge1000"}
    engine = CatalogEngine(catalog)
    assert engine.extract().processed == 4  # stale plain features redone with attention
    (name,) = local_names()
    assert name.startswith("rootsift/nyala+att:reid_lite0_nyala_lion@")
    # with the ALIKED keypoints LightGlue re-ranks the best candidates with, named too
    assert name.endswith("+th9+ridge1000+lg:aliked_n16@1.0.0x256")
    with catalog.session() as s:
        stored = [LocalFeatures.from_bytes(d) for d in s.scalars(
            select(Feature.data).where(Feature.kind == "local"))]
    assert all(f.learned is not None and 0 < len(f.learned) <= 256 for f in stored)
    assert engine.extract().processed == 0  # and only once
    for p, path in zip(PATTERNS[:3], photos["db"][:3], strict=True):
        new_individual(catalog, encounter_of(catalog, path), f"nyala-{p}", "Tester")
    match = engine.match_encounter(encounter_of(catalog, photos["query"][0]))
    top = match.candidates[0][0]
    assert "lightglue" in top.raw and top.raw["lightglue"] > 0
    # the second stage's threshold (the learned re-ranking ran), in shown terms
    assert match.threshold == pytest.approx(engine.identifier("nyala").shown_threshold(True))
    assert match.threshold != pytest.approx(engine.identifier("nyala").shown_threshold(False))
    with catalog.session() as s:
        enc = encounter_of(catalog, photos["db"][0])
        assert str(top.individual_id) == s.scalars(
            select(Encounter.individual_id).where(Encounter.id == enc)).one()
    forget(catalog)


def test_a_turned_nyala_photo_is_matched_turned_back(catalog, photos, tmp_path) -> None:
    """A photo taken with the camera on its side: the verification finds the quarter turn,
    the engine reads the query's crop once and LightGlue compares it turned back. When the
    photo cannot be read any more the matcher sees it as stored (a warning, no error)."""
    import cv2

    from wildid.vision.image_io import load_image

    turned = tmp_path / "turned.jpg"
    upright = load_image(photos["query"][0])
    cv2.imwrite(str(turned), cv2.cvtColor(np.rot90(upright, k=-1), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 92])
    files = photos["db"][:3] + [turned]
    run_import(catalog, files, ImportOptions(burst_gap_s=-1, reference_in_place=True, workers=1,
                                             species="Tragelaphus angasii"))
    engine = CatalogEngine(catalog)
    assert engine.extract().processed == 4
    for p, path in zip(PATTERNS[:3], photos["db"][:3], strict=True):
        new_individual(catalog, encounter_of(catalog, path), f"nyala-{p}", "Tester")
    right = str(catalog_individual(catalog, photos["db"][0]))
    asked: list[float] = []
    sift = next(s for s in engine.sources() if hasattr(s, "turned_learned"))
    real = sift.turned_learned
    sift.turned_learned = lambda crop, species, degrees: (asked.append(degrees),  # type: ignore[method-assign]
                                                          real(crop, species, degrees))[1]
    back = engine.match_encounter(encounter_of(catalog, turned), store=False)
    # once, a quarter turn back, give or take the pairs' own perspective change
    assert len(asked) == 1 and abs(asked[0] + 90) <= 20
    top = back.candidates[0][0]
    assert str(top.individual_id) == right and not back.likely_new
    assert list(engine._query_keypoint_models) == ["aliked_n16"]  # its own two-thread session
    turned.unlink()  # the photo is gone: the matcher compares the query as it was stored
    asked.clear()
    gone = engine.match_encounter(encounter_of(catalog, turned), store=False)
    assert asked == []
    was = next(c for c, _ in gone.candidates if str(c.individual_id) == right)
    assert top.raw["lightglue"] > 2 * was.raw["lightglue"] and top.score > was.score
    forget(catalog)


def catalog_individual(catalog, path) -> str:
    with catalog.session() as s:
        return s.scalars(select(Encounter.individual_id)
                         .where(Encounter.id == encounter_of(catalog, path))).one()


def test_results_follow_whether_the_learned_matcher_loads(catalog) -> None:
    """Without its LightGlue model the nyala profile ranks by the first stage alone (a warning,
    no error), and the results' tag says which, so they are matched again once it is back."""
    from wildid.errors import ModelError
    from wildid.vision.registry import ModelRegistry

    real = ModelRegistry()

    class WithoutMatcher:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def matcher(self, model_id: str) -> object:
            raise ModelError(f"model file {model_id}.onnx is missing")

    full, degraded = CatalogEngine(catalog, registry=real), CatalogEngine(catalog,
                                                                          registry=WithoutMatcher())
    assert full.identifier("nyala").matcher is not None
    assert degraded.identifier("nyala").matcher is None
    assert degraded.identifier("nyala").rerank_calibration is None
    assert "nyala+lightglue_aliked_int8@" in full.tag() and "lightglue" not in degraded.tag()
    assert full.identifier("lion").matcher is None  # the lion profile does not re-rank


def test_the_embedder_that_places_keypoints_runs_once_and_is_timed_as_itself(
        catalog, photos, monkeypatch) -> None:
    """The re-id model gives both the embedding and the nyala keypoints' attention map: one run
    per batch of crops, and the extraction report counts that run's time as the embedder's
    (it was counted as the local features' and the embedder reported ~0 s)."""
    import time

    files = photos["db"][:3]
    report = run_import(catalog, files, ImportOptions(burst_gap_s=-1, reference_in_place=True,
                                                      workers=1, species="Tragelaphus angasii"))
    assert not report.skipped
    engine = CatalogEngine(catalog)
    (embedder,) = [s.embedder for s in engine.sources() if hasattr(s, "embedder")]
    runs: list[float] = []
    run = embedder.model.run

    def timed(names, feed):
        t0 = time.perf_counter()
        out = run(names, feed)
        runs.append(time.perf_counter() - t0)
        return out

    monkeypatch.setattr(embedder.model, "run", timed)
    report = engine.extract()
    assert report.processed == 3 and len(runs) == 1
    assert report.seconds_per_source[f"global:{embedder.model_id}"] >= runs[0]


def test_a_species_changed_on_a_box_is_matched_again_under_its_profile(catalog, photos,
                                                                       known) -> None:
    """The species picks the profile and the individuals compared with: after it changes,
    the candidates found under the old one are set aside (undo brings them back) and the
    encounter is matched again. Before, the old candidates stayed until `match --all`."""
    from wildid.review import annotation_ops

    import_photos(catalog, [photos["query"][0]])
    enc = encounter_of(catalog, photos["query"][0])
    assert enc in process_new(catalog).encounters
    with catalog.session() as s:
        ann = s.scalars(select(Annotation.id).where(Annotation.encounter_id == enc)).one()
        before = s.scalars(select(MatchCandidate.individual_id)
                           .where(MatchCandidate.encounter_id == enc)).all()
    assert known[PATTERNS[0]] in before  # species-less, compared with the species-less animals
    op = annotation_ops.update_annotation(catalog, ann, species="nyala", reviewer="Tester")
    assert enc in op.changes.encounters
    with catalog.session() as s:
        assert s.get(MatchSummary, enc) is None  # set aside
    assert enc in process_new(catalog).encounters  # matched again, now as a nyala
    with catalog.session() as s:
        assert s.scalars(select(MatchCandidate).where(MatchCandidate.encounter_id == enc)
                         ).all() == []  # no nyala is known
        assert s.get(MatchSummary, enc).likely_new
    op.revert(catalog)  # undo: the species and the candidates found under it come back
    with catalog.session() as s:
        assert s.scalars(select(Annotation.species).where(Annotation.id == ann)).one() is None
        assert known[PATTERNS[0]] in s.scalars(select(MatchCandidate.individual_id)
                                               .where(MatchCandidate.encounter_id == enc)).all()


def test_a_box_changed_under_other_encounters_candidates_has_them_matched_again(
        catalog, photos, known) -> None:
    """A box shown as another encounter's candidate: moving it, or changing its viewpoint or
    species, set aside only its own encounter's results. The others kept a list ranked with
    the box as it was, whose keypoint pairs the review screen then drew on the box as it is.
    Now encounters still to review are matched again; a reviewed one's list (history) only
    loses the rows that showed the box; undo brings back exactly what was there."""
    from wildid.review import annotation_ops
    from wildid.review.queries import stale_results

    import_photos(catalog, photos["query"][:2])
    process_new(catalog)
    todo, reviewed = (encounter_of(catalog, p) for p in photos["query"][:2])

    def rows(enc: str) -> list[tuple[str, int, str]]:
        with catalog.session() as s:
            return [(str(c.individual_id), c.rank, str(c.best_annotation_id)) for c in s.scalars(
                select(MatchCandidate).where(MatchCandidate.encounter_id == enc)
                .order_by(MatchCandidate.rank))]

    first = rows(todo)[0]
    assert first[0] == known[PATTERNS[0]]
    shown = first[2]  # the database box its animal was found through
    confirm_match(catalog, reviewed, known[PATTERNS[1]], "Tester")
    assert shown in [b for _, _, b in rows(reviewed)]  # also listed, lower, for the other
    before = {enc: rows(enc) for enc in (todo, reviewed)}

    for change in ({"viewpoint": "left"}, {"box": (5, 5, 700, 500)}, {"species": "lion"}):
        op = annotation_ops.update_annotation(catalog, shown, reviewer="Tester", **change)
        assert todo in op.changes.encounters, change
        with catalog.session() as s:
            assert s.get(MatchSummary, todo) is None
            assert s.get(MatchSummary, reviewed) is not None
        assert rows(todo) == [] and stale_results(catalog, [todo, reviewed]) == [todo]
        assert rows(reviewed) == [r for r in before[reviewed] if r[2] != shown]
        assert todo in process_new(catalog).encounters  # matched again
        if "species" in change:  # a lion now: the species-less query cannot be shown it
            assert shown not in [b for _, _, b in rows(todo)]
        op.revert(catalog)  # after that match, undo swaps back exactly the rows set aside
        assert {enc: rows(enc) for enc in (todo, reviewed)} == before, change


def test_species_command_mends_an_import_whose_species_was_misspelled(tmp_path, photos,
                                                                       capsys) -> None:
    """A card imported as "Nyala antelope" is matched by the generic profile against nobody
    (the catalog's nyala have their own profile), and importing it again skips every photo.
    `wildid species nyala --from "Nyala antelope"` mends it: matched again, its animal found."""
    cat = named_nyala_catalog(tmp_path, photos, capsys)
    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1",
                     "--species", "Nyala antelope", str(photos["query"][0])]) == 0
    # the import says the name has no profile of its own, and how to mend a misspelling
    assert 'has no profile of its own' in capsys.readouterr().out
    assert cli_main(["match", "--catalog", cat, "--all", "--json"]) == 0
    (before,) = json.loads(capsys.readouterr().out)
    assert before["candidates"] == [] and before["likely_new"]

    assert cli_main(["species", "--catalog", cat, "nyala", "--from", "NYALA antelope"]) == 0
    out = capsys.readouterr().out
    assert "Species nyala set on 1 of 1 encounter " in out and "the nyala profile" in out
    assert "1 likely known" in out
    assert cli_main(["match", "--catalog", cat, "--all", "--json"]) == 0
    (after,) = json.loads(capsys.readouterr().out)
    assert after["candidates"][0]["name"] == "N0" and not after["likely_new"]

    # nothing to change, or nothing named: said, and nothing happens
    assert cli_main(["species", "--catalog", cat, "nyala", "--from", "zebra"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert cli_main(["species", "--catalog", cat, "nyala"]) == 2
    assert "--from" in capsys.readouterr().err


def test_a_faulty_user_embedder_fails_its_crops_once_and_matching_goes_on(tmp_path, photos,
                                                                          capsys) -> None:
    """A user embedder whose export gives NaN. Before, extraction stored the NaN vectors and
    every later `wildid match` failed with "embedding is zero or not finite", whatever the
    encounter. Now each crop's embedding is refused with one message naming the model, said
    once for all the crops it cost, and the encounters are matched by their markings."""
    from tests.modelfactory import write_user_embedder
    from wildid.paths import user_models_dir

    write_user_embedder(user_models_dir(), faulty=True)  # before the registry is first read
    cat = str(tmp_path / "cat")
    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1",
                     *map(str, photos["db"])]) == 0
    capsys.readouterr()
    assert cli_main(["encounters", "--catalog", cat, "--json"]) == 0
    named = {}
    for n, enc in enumerate(json.loads(capsys.readouterr().out)):
        assert cli_main(["name", "--catalog", cat, enc["id"], f"A{n}"]) == 0
        named[enc["photo_files"][0].rsplit("/", 1)[-1]] = f"A{n}"
    assert cli_main(["import", "--catalog", cat, "--burst-gap", "-1", "--no-identify",
                     *map(str, photos["query"])]) == 0
    assert cli_main(["models", "--use", "tiny_user_embedder"]) == 0
    capsys.readouterr()

    assert cli_main(["match", "--catalog", cat, "--all", "--json"]) == 0
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if "features failed" in line]
    assert len(failures) == 1, captured.err  # one reason, said once
    # the dark crops (a channel's mean below the middle: most of these photos)
    failed = re.search(r"features failed for (\d+) annotations \(", failures[0])
    assert failed and 5 <= int(failed[1]) <= len(photos["db"]) + len(photos["query"])
    assert "model tiny_user_embedder gave an embedding that is not a number" in failures[0]
    results = json.loads(captured.out)
    firsts = {r["photo_files"][0].rsplit("/", 1)[-1]: r["candidates"][0]["name"]
              for r in results if r["candidates"]}
    for db, query in zip(photos["db"], photos["query"], strict=True):
        assert firsts[query.name] == named[db.name]


def test_an_individual_asked_for_is_compared_wherever_it_ranks(catalog, photos, known,
                                                               capsys) -> None:
    """`wildid match ENC --with NAME`: a reviewer believes the right animal is not among the
    candidates. The engine verifies that individual's photos, returns it after the ones ranked
    with where it ranks (a rejected one too), and the command prints its score and matched
    points without touching the candidates stored for review."""
    import_photos(catalog, photos["query"])
    process_new(catalog)
    enc = encounter_of(catalog, photos["query"][0])
    engine = engine_for(catalog)
    plain = engine.match_encounter(enc, top_k=len(PATTERNS), store=False)
    order = [str(c.individual_id) for c, _q in plain.candidates]
    assert order[0] == known[PATTERNS[0]]
    last = order[-1]
    asked = engine.match_encounter(enc, top_k=2, store=False, also=last)
    assert [str(c.individual_id) for c, _q in asked.candidates] == [*order[:2], last]
    assert asked.also_rank == len(order) - 1
    assert asked.candidates[-1][0].score == pytest.approx(plain.candidates[-1][0].score)
    reject_candidate(catalog, enc, last, "Tester")
    again = engine.match_encounter(enc, top_k=2, store=False, also=last)
    assert str(again.candidates[-1][0].individual_id) == last  # asked for, so compared
    with catalog.session() as s:
        stored = s.scalars(select(MatchCandidate.individual_id)
                           .where(MatchCandidate.encounter_id == enc)
                           .order_by(MatchCandidate.rank)).all()
    name = {v: f"animal-{k}" for k, v in known.items()}[order[1]]
    capsys.readouterr()
    assert cli_main(["match", "--catalog", str(catalog.root), enc, "--top", "1",
                     "--with", name, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in result["candidates"]] == [f"animal-{PATTERNS[0]}"]
    assert result["compared"]["name"] == name and result["compared"]["rank"] == 2
    assert result["compared"]["n_inliers"] >= 0 and "sv" in result["compared"]["raw"]
    assert cli_main(["match", "--catalog", str(catalog.root), enc, "--top", "1",
                     "--with", name]) == 0
    assert f"compared on request: {name} ranks 2 of those compared, score " \
        in capsys.readouterr().out
    with catalog.session() as s:  # the review's candidates stay as they were
        assert s.scalars(select(MatchCandidate.individual_id)
                         .where(MatchCandidate.encounter_id == enc)
                         .order_by(MatchCandidate.rank)).all() == stored
    assert cli_main(["match", "--catalog", str(catalog.root), "--all", "--with", name]) == 2
    assert "--with compares one encounter" in capsys.readouterr().err
