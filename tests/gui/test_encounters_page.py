"""The Encounters page: a 100,000-row table loaded in the background, sorted and filtered."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from wildid.ids import new_id

NAMES = ["Stripe", "Dot", "ziggy", None]  # lower-case on purpose: sorting ignores case
STATES = ["unreviewed", "confirmed", "flagged", "unidentifiable"]
_serial = itertools.count()


def _sql_time(when: datetime | None) -> str | None:
    """How the catalog's UTCDateTime columns store a time in SQLite (naive UTC text)."""
    return None if when is None else when.replace(tzinfo=None).isoformat(" ", "microseconds")


def fill_catalog(catalog: Any, n: int) -> dict[str, Any]:
    """``n`` encounters with one photo each, as the importer would leave them.

    Written with the driver's executemany: building 300,000 ORM rows would take ~30 s, this ~2 s.
    """
    first = next(_serial)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    now = _sql_time(datetime.now(UTC))
    individuals = {name: new_id() for name in NAMES if name}
    photos, encounters, annotations, summaries = [], [], [], []
    for i in range(n):
        # Readable ids instead of UUIDv7: minting 300,000 of those is 2 s of this test.
        pid, eid, aid = (f"{first:04x}-{kind}-{i:08d}" for kind in "pea")
        name = NAMES[i % len(NAMES)]
        photos.append((pid, f"{first:08x}{i:056x}", f"/card/IMG_{i:06d}.JPG", now))
        taken = None if i % 97 == 0 else start + timedelta(minutes=i)
        encounters.append((eid, individuals.get(name) if name else None, STATES[i % len(STATES)],
                           f"observer {i % 7}", "Tragelaphus angasii" if i % 2 else "Panthera leo",
                           _sql_time(taken), -24.9 + i * 1e-6, 31.5, now, now))
        annotations.append((aid, pid, eid, now, now))
        if i % 3:
            summaries.append((eid, (i % 100) / 100, now))
    statements = [
        ("INSERT INTO individuals (id, name, aliases, notes, created_at, updated_at) "
         "VALUES (?, ?, '[]', '', ?, ?)", [(i, n, now, now) for n, i in individuals.items()]),
        ("INSERT INTO photos (id, sha256, original_path, file_size, format, width, height, "
         "orientation, tz_known, imported_at) VALUES (?, ?, ?, 1000, 'JPEG', 400, 300, 1, 1, ?)",
         photos),
        ("INSERT INTO encounters (id, individual_id, state, observer, species, taken_utc, gps_lat, "
         "gps_lon, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", encounters),
        ("INSERT INTO annotations (id, photo_id, encounter_id, x, y, w, h, full_frame, viewpoint, "
         "created_at, updated_at) VALUES (?, ?, ?, 0, 0, 400, 300, 1, 'unknown', ?, ?)",
         annotations),
        ("INSERT INTO match_summaries (encounter_id, best_score, likely_new, engine, computed_at) "
         "VALUES (?, ?, 0, 'test', ?)", summaries),
    ]
    with catalog.session() as s:
        connection = s.connection()
        for sql, rows in statements:
            connection.exec_driver_sql(sql, rows)
    return {"individuals": individuals, "encounters": [e[0] for e in encounters]}


def _column(page: Any, column: int) -> list[str]:
    proxy = page.proxy
    return [proxy.index(r, column).data() for r in range(proxy.rowCount())]


def _load(qtbot: Any, page: Any) -> int:
    with qtbot.waitSignal(page.loaded, timeout=60_000) as blocker:
        page.show() if not page.isVisible() else page.reload()
    return int(blocker.args[0])


@pytest.fixture
def page(qtbot: Any, services: Any) -> Any:
    from wildid.gui.encounters_page import EncountersPage

    widget = EncountersPage(services)
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    return widget


@pytest.mark.slow
def test_hundred_thousand_rows_load_sort_and_filter_quickly(page: Any, services: Any,
                                                            qtbot: Any) -> None:
    fill_catalog(services.catalog, 100_000)
    started = time.perf_counter()
    assert _load(qtbot, page) == 100_000
    load_s = time.perf_counter() - started
    assert page.proxy.rowCount() == 100_000
    assert page.count.text() == "100,000 encounters"
    timings = {}
    for label, action in (
            ("sort by individual", lambda: page.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)),
            ("sort by score", lambda: page.table.sortByColumn(4, Qt.SortOrder.DescendingOrder)),
            ("filter text", lambda: (page.search.setText("stripe"), page.apply_filter())),
            ("filter state", lambda: page.state.setCurrentIndex(page.state.findData("confirmed"))),
            ("clear filters", lambda: (page.search.clear(), page.state.setCurrentIndex(0),
                                       page.apply_filter()))):
        t0 = time.perf_counter()
        action()
        timings[label] = time.perf_counter() - t0
    print(f"\n100k encounters: load {load_s:.2f} s (background), "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
    assert page.proxy.rowCount() == 100_000
    # Each interaction blocks the GUI thread briefly; measured ~0.1-0.4 s here, 2 s is a bug.
    assert max(timings.values()) < 2.0, timings


def test_sorting_puts_missing_values_last_and_ignores_case(page: Any, services: Any,
                                                           qtbot: Any) -> None:
    fill_catalog(services.catalog, 40)
    assert _load(qtbot, page) == 40
    # Default: newest first, encounters without a time at the bottom.
    when = _column(page, 0)
    dated = [w for w in when if w != "unknown"]
    assert dated == sorted(dated, reverse=True) and when[-1] == "unknown"
    page.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    names = _column(page, 2)
    assert names[:10] == ["Dot"] * 10 and names[10:20] == ["Stripe"] * 10
    assert names[20:30] == ["ziggy"] * 10 and names[30:] == [""] * 10
    page.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    names = _column(page, 2)
    assert names[0] == "ziggy" and names[-1] == ""  # unnamed stay last in both directions
    page.table.sortByColumn(4, Qt.SortOrder.DescendingOrder)
    scores = [float(s.rstrip("%")) for s in _column(page, 4) if s]
    assert scores == sorted(scores, reverse=True) and _column(page, 4)[-1] == ""


def test_text_and_state_filters_combine(page: Any, services: Any, qtbot: Any) -> None:
    fill_catalog(services.catalog, 40)
    _load(qtbot, page)
    page.search.setText("STRIPE")
    qtbot.waitUntil(lambda: page.proxy.rowCount() == 10)  # debounced
    assert set(_column(page, 2)) == {"Stripe"}
    assert page.count.text() == "10 of 40 encounters"
    page.state.setCurrentIndex(page.state.findData("unreviewed"))
    assert set(_column(page, 1)) == {"Unreviewed"} and page.proxy.rowCount() == 10
    page.state.setCurrentIndex(page.state.findData("confirmed"))
    assert page.proxy.rowCount() == 0  # Stripe rows are all unreviewed (i % 4 == 0)
    page.search.clear()
    page.apply_filter()
    assert set(_column(page, 1)) == {"Confirmed"} and page.proxy.rowCount() == 10
    page.search.setText("tragelaphus")
    page.apply_filter()
    assert set(_column(page, 6)) == {"Tragelaphus angasii"} and page.proxy.rowCount() == 10
    # a photo's file name finds its encounter; the date cell's tooltip says the whole path
    page.state.setCurrentIndex(page.state.findData(None))
    page.search.setText("img_000007.jpg")
    page.apply_filter()
    assert page.proxy.rowCount() == 1
    assert page.proxy.index(0, 0).data(Qt.ItemDataRole.ToolTipRole) == "/card/IMG_000007.JPG"
    page.search.setText("/card")  # folders are not searched: every row would match
    page.apply_filter()
    assert page.proxy.rowCount() == 0


def test_the_id_column_shows_the_short_id_the_command_line_takes(page: Any, services: Any,
                                                                 qtbot: Any) -> None:
    """The id's tail, as `wildid decisions` prints it and every command accepts it; the whole id
    is the tooltip, and typing either finds the row."""
    from wildid.gui.encounters_page import ID_COLUMN
    from wildid.ids import short_id
    from wildid.review.lookup import find_encounter_id

    fill_catalog(services.catalog, 12)
    _load(qtbot, page)
    assert page.model.headerData(ID_COLUMN, Qt.Orientation.Horizontal) == "ID"
    index = page.proxy.index(3, ID_COLUMN)
    whole = index.data(Qt.ItemDataRole.ToolTipRole)
    assert index.data() == short_id(whole) == whole[-8:] and len(whole) > 8
    with services.catalog.session() as s:
        assert find_encounter_id(s, index.data()) == whole
    for typed in (index.data(), whole):
        page.search.setText(typed)
        page.apply_filter()
        assert page.proxy.rowCount() == 1
        assert page.proxy.index(0, ID_COLUMN).data(Qt.ItemDataRole.ToolTipRole) == whole


def test_selection_survives_sorting(page: Any, services: Any, qtbot: Any) -> None:
    fill_catalog(services.catalog, 30)
    _load(qtbot, page)
    index = page.proxy.index(5, 0)
    wanted = page.proxy.encounter_id(index)
    page.table.selectionModel().select(
        index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        | QItemSelectionModel.SelectionFlag.Rows)
    page.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    page.table.sortByColumn(6, Qt.SortOrder.DescendingOrder)
    assert page.selected_encounter_ids() == [wanted]


def test_double_click_opens_the_encounter_in_review(main_window: Any, services: Any,
                                                    qtbot: Any, monkeypatch: Any) -> None:
    fill_catalog(services.catalog, 12)
    page = main_window.page("encounters")
    with qtbot.waitSignal(page.loaded, timeout=30_000):
        main_window.show_page("encounters")
    opened: list[str] = []
    monkeypatch.setattr(main_window, "review_encounters", lambda ids: opened.extend(ids))
    main_window._connect_pages()  # re-wire so the patched slot receives the signal
    index = page.proxy.index(3, 2)
    wanted = page.proxy.encounter_id(index)
    rect = page.table.visualRect(index)
    with qtbot.waitSignal(page.open_encounter_requested) as blocker:
        # A real double-click starts with a click; item views need that press to see it.
        qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [wanted]
    assert wanted in opened


def test_changes_reload_the_visible_table(page: Any, services: Any, qtbot: Any) -> None:
    from wildid.gui.services import changes

    fill_catalog(services.catalog, 8)
    assert _load(qtbot, page) == 8
    fill_catalog(services.catalog, 4)
    with qtbot.waitSignal(page.loaded, timeout=30_000) as blocker:
        services.notify(changes(["new"]))
    assert blocker.args == [12]
    page.hide()
    services.notify(changes(["again"]))  # hidden: only marked stale, loaded when shown
    assert page._stale and page._job is None
    assert _load(qtbot, page) == 12


def test_set_species_on_selected_encounters_is_undoable_and_rematches(
        page: Any, services: Any, qtbot: Any, monkeypatch: Any) -> None:
    """A card imported with a misspelled species is mended from the table: the selected
    encounters (and their boxes) get the species in one undoable step, their results are set
    aside, and identification runs for them; cancelling changes nothing."""
    from sqlalchemy import select

    from tests.gui.review_data import ScriptedPrompts
    from wildid.catalog.models import Annotation, Encounter, MatchSummary

    filled = fill_catalog(services.catalog, 6)
    assert _load(qtbot, page) == 6
    assert not page.species_button.isEnabled()
    page.table.sortByColumn(6, Qt.SortOrder.AscendingOrder)  # species: the lions first
    selection = page.table.selectionModel()
    for row in (0, 1):  # two of the three lions
        selection.select(page.proxy.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                         | QItemSelectionModel.SelectionFlag.Rows)
    chosen = page.selected_encounter_ids()
    assert len(chosen) == 2 and page.species_button.isEnabled()
    with services.catalog.session() as s:
        assert set(s.scalars(select(Encounter.species).where(Encounter.id.in_(chosen)))) == \
            {"Panthera leo"}
    identified: list[frozenset[str]] = []
    monkeypatch.setattr(services, "identify_new",
                        lambda ids=(): identified.append(frozenset(ids)))
    page.prompts = ScriptedPrompts(choices=[None, "Tragelaphus angasii"])
    page.set_species()  # cancelled
    assert identified == [] and not services.undo_stack.can_undo
    with qtbot.waitSignal(page.loaded, timeout=30_000):
        page.species_button.click()
    assert page.prompts.asked == ["Set species", "Set species"]
    assert identified == [frozenset(chosen)]
    with services.catalog.session() as s:
        assert set(s.scalars(select(Encounter.species).where(Encounter.id.in_(chosen)))) == \
            {"Tragelaphus angasii"}
        assert set(s.scalars(select(Annotation.species)
                             .where(Annotation.encounter_id.in_(chosen)))) == \
            {"Tragelaphus angasii"}
        assert s.scalars(select(MatchSummary).where(MatchSummary.encounter_id.in_(chosen))
                         ).all() == []
        others = set(filled["encounters"]) - set(chosen)
        assert "Panthera leo" in set(s.scalars(select(Encounter.species)
                                               .where(Encounter.id.in_(others))))
    assert services.undo_stack.undo_label == "Set species Tragelaphus angasii on 2 encounters"
    with qtbot.waitSignal(page.loaded, timeout=30_000):
        services.undo()
    with services.catalog.session() as s:
        assert set(s.scalars(select(Encounter.species).where(Encounter.id.in_(chosen)))) == \
            {"Panthera leo"}


def test_correct_time_moves_the_selected_encounters_photos_undoably(
        page: Any, services: Any, qtbot: Any) -> None:
    """A camera whose clock was off: its encounters are selected and moved by the error in one
    undoable step; cancelling changes nothing, and encounters without times say so."""
    from sqlalchemy import select

    from tests.gui.review_data import ScriptedPrompts
    from wildid.catalog.models import Annotation, Encounter, Photo

    fill_catalog(services.catalog, 6)
    with services.catalog.session() as s:  # the photos carry their encounters' times
        for photo, taken in s.execute(select(Photo, Encounter.taken_utc).select_from(Photo)
                                      .join(Annotation, Annotation.photo_id == Photo.id)
                                      .join(Encounter, Encounter.id == Annotation.encounter_id)):
            photo.taken_utc = taken
        dated = list(s.scalars(select(Encounter.id).where(Encounter.taken_utc.is_not(None))
                               .order_by(Encounter.taken_utc).limit(2)))
        undated = s.scalars(select(Encounter.id).where(Encounter.taken_utc.is_(None))).one()
        before = dict(s.execute(select(Encounter.id, Encounter.taken_utc)).all())
    assert _load(qtbot, page) == 6
    assert not page.time_button.isEnabled()

    def select_only(ids: list[str]) -> None:
        selection = page.table.selectionModel()
        selection.clearSelection()
        for row in range(page.proxy.rowCount()):
            index = page.proxy.index(row, 0)
            if page.proxy.encounter_id(index) in ids:
                selection.select(index, QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)

    page.prompts = ScriptedPrompts(choices=[None, timedelta(days=-2, minutes=5)])
    select_only([undated])
    assert page.time_button.isEnabled()
    page.correct_time()
    assert page.prompts.errors == [
        "None of the selected encounters' photos has a time to correct."]
    select_only(dated)
    page.correct_time()  # cancelled
    assert not services.undo_stack.can_undo
    with qtbot.waitSignal(page.loaded, timeout=30_000):
        page.time_button.click()
    assert page.prompts.asked == ["Correct time", "Correct time"]
    shift = timedelta(days=-2, minutes=5)
    with services.catalog.session() as s:
        after = dict(s.execute(select(Encounter.id, Encounter.taken_utc)).all())
        photos = dict(s.execute(select(Annotation.encounter_id, Photo.taken_utc)
                                .join(Photo)).all())
    assert after == {e: (t + shift if e in dated else t) for e, t in before.items()}
    assert all(photos[e] == after[e] for e in dated)
    assert services.undo_stack.undo_label == "Shift times -1 d 23 h 55 min on 2 encounters"
    with qtbot.waitSignal(page.loaded, timeout=30_000):
        services.undo()
    with services.catalog.session() as s:
        assert dict(s.execute(select(Encounter.id, Encounter.taken_utc)).all()) == before


def test_dates_a_cameras_clock_got_wrong_stand_out_and_say_why(qtbot: Any) -> None:
    """A date in the future or at a factory date is amber in the table, and its tooltip says
    what to do; other dates, and rows without one, look as before."""
    from wildid.gui.encounters_page import DOUBTFUL_BRUSH, EncountersModel
    from wildid.review.views import EncounterRow

    def row(eid: str, taken: datetime | None) -> EncounterRow:
        return EncounterRow(eid, taken, "unreviewed", None, None, 1, None, "nyala", None, None,
                            None, None, photo_file=f"/card/{eid}.jpg")

    model = EncountersModel()
    model.set_rows([row("reset", datetime(2000, 1, 1, tzinfo=UTC)),
                    row("future", datetime.now(UTC) + timedelta(days=400)),
                    row("right", datetime(2024, 5, 1, tzinfo=UTC)), row("none", None)], [])
    fg, tip = Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole
    cells = [model.index(i, 0) for i in range(4)]
    assert [model.data(c, fg) is DOUBTFUL_BRUSH for c in cells] == [True, True, False, False]
    assert model.data(cells[0], tip) == (
        "/card/reset.jpg\nDated at a camera's factory date: its camera's clock was wrong. "
        "Select it (and the rest of that camera's encounters) and choose Correct time\u2026")
    assert model.data(cells[1], tip).startswith("/card/future.jpg\nDated in the future:")
    assert model.data(cells[2], tip) == "/card/right.jpg"


def test_the_time_dialog_gives_the_shift_either_way(qtbot: Any) -> None:
    """The earliest photo's real time, or the clock's error by days to seconds, later or
    earlier; nothing to move keeps its button off."""
    from wildid.gui.retime_dialog import RetimeDialog

    earliest = datetime(2000, 1, 1, 0, 0, 10, tzinfo=UTC)
    dialog = RetimeDialog(None, 3, earliest)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.buttons()[0]
    assert dialog.shift() == timedelta(0) and not ok.isEnabled()
    dialog.when.setDateTime(dialog.when.dateTime().addYears(26).addSecs(-10))
    assert dialog.shift() == datetime(2026, 1, 1, tzinfo=UTC) - earliest and ok.isEnabled()
    assert dialog.preview.text() == ("The earliest photo moves from 2000-01-01 00:00:10 to "
                                     "2026-01-01 00:00:00 (+26 y 6 d 23 h 59 min 50 s); the "
                                     "others move with it.")
    dialog.by.setChecked(True)
    assert dialog.shift() == timedelta(0) and not ok.isEnabled()
    assert not dialog.when.isEnabled() and dialog.hours.isEnabled()
    dialog.direction.setCurrentText("earlier")
    dialog.hours.setValue(3)
    dialog.seconds.setValue(7)
    assert dialog.shift() == -timedelta(hours=3, seconds=7) and ok.isEnabled()


def test_the_species_dialog_completes_and_says_which_profile(qtbot: Any) -> None:
    from wildid.gui.species_help import SpeciesDialog

    dialog = SpeciesDialog(None, 3, "", ["Equus quagga"])
    qtbot.addWidget(dialog)
    assert "Equus quagga" in dialog.help.suggestions() and "lion" in dialog.help.suggestions()
    assert dialog.help.hint.text() == "Empty: the encounters get no species."
    dialog.edit.setText("Panthera leo")
    assert "lion profile" in dialog.help.hint.text()


def test_each_row_shows_its_encounters_thumbnail(page: Any, services: Any, qtbot: Any,
                                                 tmp_path: Any) -> None:
    """Beside each date the encounter's first photo, small, loaded in the background: a table
    of dates and ids alone does not say which animal a row is. A row whose thumbnail cannot
    be read shows its date alone. Portrait and landscape photos take the same width."""
    from PySide6.QtGui import QPixmap

    from tests.gui.review_data import import_folder, shoot
    from tests.photofactory import make_shot
    from wildid.gui.encounters_page import ICON_SIZE

    folder = tmp_path / "card"
    folder.mkdir()
    start = datetime(2024, 6, 1, 7, 0)
    for n in range(2):
        shoot(folder, f"a{n}", n + 1, start + timedelta(hours=n), "S1", seed=n + 5)
    make_shot(folder / "tall.jpg", 360, 640, seed=7, taken=start + timedelta(hours=2),
              serial="S1", pattern_seed=3)  # a portrait photo
    import_folder(services.catalog, folder)
    fill_catalog(services.catalog, 2)  # rows whose thumbnail files were never made
    assert _load(qtbot, page) == 5
    column = [page.proxy.index(r, 0) for r in range(page.proxy.rowCount())]
    decoration = Qt.ItemDataRole.DecorationRole

    def shown() -> list[Any]:
        return [i.data(decoration) for i in column]

    shown()  # as a paint would: the thumbnails are asked for
    qtbot.waitUntil(lambda: sum(isinstance(d, QPixmap) for d in shown()) == 3, timeout=10_000)
    for pixmap in (d for d in shown() if isinstance(d, QPixmap)):
        # every thumbnail fills the same box, so the dates beside them line up
        assert pixmap.size() == ICON_SIZE
    assert sum(d is None for d in shown()) == 2
    # sorted another way, the thumbnails follow their rows
    page.table.sortByColumn(8, Qt.SortOrder.AscendingOrder)
    column = [page.proxy.index(r, 0) for r in range(page.proxy.rowCount())]  # rows moved
    ids_with_pictures = {page.proxy.encounter_id(i) for i in column
                         if isinstance(i.data(decoration), QPixmap)}
    assert len(ids_with_pictures) == 3
    assert not any("-e-" in i for i in ids_with_pictures)  # fill_catalog's ids have no photo
