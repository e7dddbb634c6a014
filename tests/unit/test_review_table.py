"""The flat encounters table: correct rows and filters, read in one query however many rows."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.unit import test_review_support as b
from wildid.errors import NotFoundError
from wildid.review import encounter_rows, merge_individuals

R = "tester"


def test_rows_carry_aggregates_names_and_scores(catalog) -> None:
    with catalog.session() as s:
        stripe = b.individual(s, "Stripe")
        e1 = b.encounter(s, b.t(1), -25.1, 31.2, individual=stripe, n_photos=3, observer="Bo")
        e2 = b.encounter(s, b.t(5), species="lion")
        e3 = b.encounter(s, None)
        b.encounter(s, b.t(9), n_photos=0)  # no boxes: hidden
        b.summary(s, e2, 0.75)
        # A second box on one of e1's photos does not count as another photo.
        ann = b.first_annotation(s, e1)
        s.add(type(ann)(photo_id=ann.photo_id, encounter_id=e1.id, x=1.0, y=1.0, w=5.0, h=5.0,
                        full_frame=False))
        ids = e1.id, e2.id, e3.id, stripe.id, ann.photo_id
        sha = s.get(type(ann.photo), ann.photo_id).sha256
        first_file = s.get(type(ann.photo), ann.photo_id).original_path
    rows = encounter_rows(catalog)
    assert [r.id for r in rows] == [ids[1], ids[0], ids[2]]  # newest first, no time last
    r2, r1, r3 = rows
    assert (r1.individual_id, r1.individual_name, r1.n_photos, r1.state) == (ids[3], "Stripe", 3, "confirmed")
    assert (r1.observer, r1.species, r1.lat, r1.lon, r1.taken_utc) == ("Bo", "nyala", -25.1, 31.2, b.t(1))
    assert r1.best_score is None and r2.best_score == pytest.approx(0.75)
    assert (r2.individual_id, r2.species) == (None, "lion")
    assert r3.taken_utc is None
    # The thumbnail is the encounter's first photo (ids are minted in creation order).
    assert r1.thumb_path == catalog.thumb_dir / sha[:2] / sha[2:4] / f"{sha}_256.jpg"
    # and its file as imported, which the Encounters page shows and filters on
    assert r1.photo_file == first_file and r1.photo_file.startswith("/card/IMG_")


def test_filters(catalog) -> None:
    with catalog.session() as s:
        stripe, spot = b.individual(s, "Stripe"), b.individual(s, "Spot")
        a = b.encounter(s, b.t(1), individual=stripe)
        c = b.encounter(s, b.t(2), individual=spot, observer="Zoë")
        d = b.encounter(s, b.t(3), species="lion", observer="100%_sure")
        ids = a.id, c.id, d.id, stripe.id, spot.id
    assert [r.id for r in encounter_rows(catalog, state="unreviewed")] == [ids[2]]
    assert [r.id for r in encounter_rows(catalog, individual_id=ids[3])] == [ids[0]]
    assert [r.id for r in encounter_rows(catalog, search="STRI")] == [ids[0]]
    assert [r.id for r in encounter_rows(catalog, search="lion")] == [ids[2]]
    assert [r.id for r in encounter_rows(catalog, search="0%_")] == [ids[2]]  # literal % and _
    assert [r.id for r in encounter_rows(catalog, search="Zo")] == [ids[1]]
    assert [r.id for r in encounter_rows(catalog, search=ids[1][:-4].upper())] == [ids[1]]
    assert [r.id for r in encounter_rows(catalog, limit=1)] == [ids[2]]
    merge_individuals(catalog, ids[3], ids[4], R)
    merged = encounter_rows(catalog, individual_id=ids[4])  # a merged-away id covers the survivor
    assert [(r.id, r.individual_name) for r in merged] == [(ids[1], "Stripe"), (ids[0], "Stripe")]
    with pytest.raises(NotFoundError):
        encounter_rows(catalog, individual_id="missing")


def test_rows_pointing_at_a_merged_away_individual_show_the_survivor(catalog) -> None:
    # Synced data can leave an encounter on a merged-away id; the table shows the survivor.
    with catalog.session() as s:
        keep, gone = b.individual(s, "Keep"), b.individual(s, "Gone")
        b.encounter(s, b.t(1), individual=gone)
        gone.merged_into_id = keep.id
        keep_id = keep.id
    (row,) = encounter_rows(catalog)
    assert (row.individual_id, row.individual_name) == (keep_id, "Keep")


def test_twenty_thousand_rows_in_one_query(catalog) -> None:
    """One SELECT for the whole table is what keeps it linear in the rows; the time that
    SELECT takes is measured by ``make bench`` (bench_review_table), not asserted here, where
    the suite shares two cores with whatever else runs."""
    b.bulk_encounters(catalog, 20_000)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    encounter_rows(catalog, limit=10)  # warm the connection pool and statement cache
    event.listen(catalog.engine, "before_cursor_execute", count)
    try:
        rows = encounter_rows(catalog)
    finally:
        event.remove(catalog.engine, "before_cursor_execute", count)
    assert len(rows) == 20_000
    assert sum(1 for r in rows if r.individual_name) == 4_000
    assert sum(1 for r in rows if r.best_score is not None) == 10_000
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
