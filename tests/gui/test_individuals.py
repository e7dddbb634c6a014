"""The individuals gallery and an individual's page on a real catalog: search, filter, sort,
edit, merge and move with undo, and the offline map and timeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QDialogButtonBox

from tests.gui.review_data import ScriptedPrompts, build_world, make_settings
from wildid.gui.individual_chooser import IndividualChooser
from wildid.gui.individuals_page import IndividualsPage
from wildid.gui.services import Services
from wildid.gui.sighting_map import MapPoint, SightingMap, nice_step, scale_bar_metres
from wildid.review import operations, queries


@pytest.fixture
def world(tmp_path: Path):
    w = build_world(tmp_path)
    operations.confirm_match(w.catalog, w.queries["q_stripe"], w.individuals["Stripe"], "setup")
    yield w
    w.catalog.close()


@pytest.fixture
def page(qtbot, world, tmp_path):
    services = Services(world.catalog, make_settings(tmp_path))
    widget = IndividualsPage(services)
    widget.detail.prompts = ScriptedPrompts()
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    qtbot.waitUntil(lambda: not widget.is_loading(), timeout=5000)
    yield widget
    widget.prefetch.shutdown()


def names(page: IndividualsPage) -> list[str]:
    return [s.name for s in page.summaries()]


def settle(qtbot, page: IndividualsPage) -> None:
    qtbot.waitUntil(lambda: not page.is_loading(), timeout=5000)


def test_gallery_shows_individuals_with_sightings_and_lazy_thumbnails(qtbot, page):
    assert names(page) == ["Dot", "Stripe", "Ziggy"]
    stripe = page.summaries()[1]
    assert stripe.n_encounters == 2 and stripe.last_seen.date().isoformat() == "2024-05-31"
    assert page.count.text() == "3 individuals"
    # The view asked for the thumbnails of the cards it painted; they arrive in the background.
    qtbot.waitUntil(lambda: all(page.prefetch.thumbnail(s.thumb_path) is not None
                                for s in page.summaries()), timeout=5000)
    assert all(page.prefetch.thumbnail(s.thumb_path).image is not None for s in page.summaries())


def test_search_species_filter_and_sort(qtbot, page, world):
    page.search.setText("str")
    qtbot.waitUntil(lambda: names(page) == ["Stripe"], timeout=5000)
    page.search.setText("nobody")
    qtbot.waitUntil(lambda: names(page) == [], timeout=5000)
    assert page.empty.isVisible() and "No individual matches" in page.empty.text()
    page.search.clear()
    operations.update_individual(world.catalog, world.individuals["Ziggy"], "t",
                                 species="Tragelaphus scriptus")
    page.services.notify(operations.Changes(individuals=frozenset({world.individuals["Ziggy"]})))
    settle(qtbot, page)
    species = [page.species.itemText(i) for i in range(page.species.count())]
    assert species == ["All species", "Tragelaphus angasii", "Tragelaphus scriptus"]
    page.species.setCurrentIndex(2)
    qtbot.waitUntil(lambda: names(page) == ["Ziggy"], timeout=5000)
    page.species.setCurrentIndex(0)
    page.sort.setCurrentIndex(page.sort.findData("sightings"))
    qtbot.waitUntil(lambda: names(page)[:1] == ["Stripe"], timeout=5000)


def open_stripe(qtbot, page, world):
    page.open_individual(world.individuals["Stripe"])
    qtbot.waitUntil(lambda: page.detail.detail is not None and not page.is_loading(),
                    timeout=5000)
    return page.detail


def test_individual_page_shows_sightings_timeline_map_and_history(qtbot, page, world):
    detail = open_stripe(qtbot, page, world)
    assert page.stack.currentWidget() is detail
    assert detail.title.text() == "Stripe"
    assert "first seen 2024-05-01 · last seen 2024-05-31" in detail.subtitle.text()
    assert detail.encounters.rowCount() == 2
    assert detail.tabs.tabText(0) == "Sightings (2)"
    assert len(detail.timeline.times()) == 2
    assert len(detail.map.points()) == 2
    verdicts = [detail.history_table.item(r, 1).text()
                for r in range(detail.history_table.rowCount())]
    assert verdicts == ["Confirmed match", "Named as new individual"]
    # what the matcher showed for Stripe when the match was confirmed (naming shows nothing)
    assert [detail.history_table.item(r, 2).text()
            for r in range(detail.history_table.rowCount())] == ["91 %, 1st", ""]
    qtbot.waitUntil(lambda: detail.portrait.pixmap() is not None
                    and not detail.portrait.pixmap().isNull(), timeout=5000)
    detail.back_requested.emit()
    assert page.stack.currentWidget() is not detail


def test_edit_and_rename_save_and_undo(qtbot, page, world):
    detail = open_stripe(qtbot, page, world)
    detail.name.setText("Stripey")
    detail.sex.setCurrentIndex(detail.sex.findData("female"))
    detail.notes.setPlainText("Torn left ear")
    detail.save()
    settle(qtbot, page)
    info = queries.individual_detail(world.catalog, world.individuals["Stripe"])
    assert (info.name, info.sex, info.notes, info.aliases) == ("Stripey", "female",
                                                               "Torn left ear", ["Stripe"])
    assert detail.title.text() == "Stripey" and "Stripe" in detail.aliases.text()
    qtbot.waitUntil(lambda: "Stripey" in names(page), timeout=5000)

    def history() -> list[tuple[str, str, str]]:
        t = detail.history_table
        return [(t.item(r, 1).text(), t.item(r, 3).text(), t.item(r, 5).text())
                for r in range(t.rowCount())]
    # the audit trail shows the edit and the rename (they name no sighting)
    qtbot.waitUntil(lambda: [v for v, _, _ in history()][:2] == ["Details edited", "Renamed"]
                    or [v for v, _, _ in history()][:2] == ["Renamed", "Details edited"],
                    timeout=5000)
    rows = {v: (sighting, note) for v, sighting, note in history()}
    assert rows["Renamed"] == ("", "renamed Stripe to Stripey")
    assert rows["Details edited"][0] == "" and "sex" in rows["Details edited"][1]
    page.services.undo()
    page.services.undo()
    settle(qtbot, page)
    info = queries.individual_detail(world.catalog, world.individuals["Stripe"])
    assert (info.name, info.sex, info.notes) == ("Stripe", None, "")
    assert detail.title.text() == "Stripe"
    qtbot.waitUntil(lambda: [v for v, _, _ in history()][:2] == ["Undone", "Undone"], timeout=5000)


def test_merge_another_individual_and_undo(qtbot, page, world):
    detail = open_stripe(qtbot, page, world)
    detail.prompts.choices = [world.individuals["Dot"]]
    detail.merge()
    settle(qtbot, page)
    assert detail.encounters.rowCount() == 3
    assert "Dot" in detail.aliases.text()
    qtbot.waitUntil(lambda: names(page) == ["Stripe", "Ziggy"], timeout=5000)
    page.services.undo()
    settle(qtbot, page)
    assert detail.encounters.rowCount() == 2
    qtbot.waitUntil(lambda: names(page) == ["Dot", "Stripe", "Ziggy"], timeout=5000)
    assert queries.individual_detail(world.catalog, world.individuals["Dot"]).n_encounters == 1


def test_move_an_encounter_to_another_individual_and_undo(qtbot, page, world):
    detail = open_stripe(qtbot, page, world)
    detail.prompts.choices = [world.individuals["Ziggy"]]
    detail.move_selected_encounter()
    assert detail.prompts.errors == ["Select a sighting first."]
    detail.encounter_view.setCurrentIndex(detail.encounters.index(0))
    newest = detail.encounters.card(0).id
    detail.move_selected_encounter()
    settle(qtbot, page)
    assert detail.encounters.rowCount() == 1
    ziggy = queries.individual_detail(world.catalog, world.individuals["Ziggy"])
    assert newest in [e.id for e in ziggy.encounters]
    page.services.undo()
    settle(qtbot, page)
    assert detail.encounters.rowCount() == 2


def test_an_individual_left_without_sightings_is_removed_and_undone(qtbot, page, world):
    """Ziggy's one sighting was really Stripe's: moved there, Ziggy has none left. Its page
    then offers Remove (disabled while it had a sighting); removing it goes back to the
    gallery without it, and undo brings it back."""
    page.open_individual(world.individuals["Ziggy"])
    settle(qtbot, page)
    detail = page.detail
    assert not detail.remove_button.isEnabled()
    assert "Only an individual without sightings" in detail.remove_button.toolTip()
    detail.prompts.choices = [world.individuals["Stripe"]]
    detail.encounter_view.setCurrentIndex(detail.encounters.index(0))
    detail.move_selected_encounter()
    qtbot.waitUntil(lambda: detail.detail.n_encounters == 0 and not page.is_loading(),
                    timeout=5000)
    assert detail.remove_button.isEnabled()
    detail.prompts.confirms = [False]
    detail.remove()  # the user said no
    assert "Ziggy" in names(page) and page.stack.currentWidget() is detail
    detail.prompts.confirms = [True]
    detail.remove()
    qtbot.waitUntil(lambda: names(page) == ["Dot", "Stripe"] and
                    page.stack.currentWidget() is not detail, timeout=5000)
    page.services.undo()
    qtbot.waitUntil(lambda: names(page) == ["Dot", "Stripe", "Ziggy"], timeout=5000)


def test_activating_a_sighting_asks_the_window_to_open_it(qtbot, page, world):
    detail = open_stripe(qtbot, page, world)
    with qtbot.waitSignal(page.open_encounter_requested, timeout=2000) as signal:
        detail.encounter_view.activated.emit(detail.encounters.index(0))
    assert signal.args == [detail.encounters.card(0).id]


def test_chooser_filters_by_name_and_alias(qtbot, world):
    operations.rename_individual(world.catalog, world.individuals["Dot"], "Spot", "t")
    chooser = IndividualChooser(world.catalog, "Pick", "Which one?",
                                exclude={world.individuals["Stripe"]})
    qtbot.addWidget(chooser)
    assert chooser.count() == 2
    chooser.search.setText("dot")  # the old name is an alias now
    assert chooser.count() == 1 and chooser.chosen() == world.individuals["Dot"]
    chooser.search.setText("zzz")
    assert chooser.chosen() is None
    assert not chooser.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert not chooser.reference.isVisible()  # none given


def test_chooser_shows_each_individual_with_its_photo(qtbot, world):
    """Merging or moving decides two animals are the same: each choice is a card with the
    individual's picture (loaded in the background), and a double-click or Enter picks it."""
    from PySide6.QtCore import Qt

    stripe = next(i for i in queries.list_individuals(world.catalog) if i.name == "Stripe")
    chooser = IndividualChooser(world.catalog, "Pick", "Which one?",
                                exclude={stripe.id}, reference=stripe.thumb_path)
    qtbot.addWidget(chooser)
    chooser.show()
    # the animal the choice is about, beside the prompt, to compare the cards with
    assert chooser.reference.isVisible() and not chooser.reference.pixmap().isNull()
    names = [chooser.model.card(r).title for r in range(chooser.count())]
    assert names == ["Dot", "Ziggy"]
    for row in range(chooser.count()):
        index = chooser.model.index(row)
        qtbot.waitUntil(lambda index=index: index.data(Qt.ItemDataRole.DecorationRole)
                        is not None, timeout=10_000)
        picture = index.data(Qt.ItemDataRole.DecorationRole)
        assert not picture.isNull() and picture.width() > 32
    chooser.list.setCurrentIndex(chooser.model.index(1))
    with qtbot.waitSignal(chooser.accepted, timeout=2000):
        chooser.list.activated.emit(chooser.model.index(1))
    assert chooser.chosen() == world.individuals["Ziggy"]


def test_map_projection_grid_and_scale_bar(qtbot):
    assert nice_step(0.037) in (0.005, 0.01)
    assert scale_bar_metres(10.0, 150) == 1000.0  # 10 m per pixel, at most 150 px
    assert scale_bar_metres(3.0, 100) == 200.0
    view = SightingMap()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.set_points([MapPoint(-25.0, 31.5), MapPoint(-25.1, 31.6), MapPoint(0.0, 0.0)])
    assert len(view.points()) == 2  # (0, 0) is a missing position, not the Gulf of Guinea
    north, south = view.project(-25.0, 31.5), view.project(-25.1, 31.6)
    assert north.y() < south.y() and north.x() < south.x()
    assert view.point_at(QPointF(north)) == view.points()[0]
    image = view.grab()
    assert not image.isNull()
    assert view.rect().contains(north.toPoint()) and view.rect().contains(south.toPoint())



def test_card_says_when_no_sighting_has_a_date() -> None:
    """Photos without a camera time leave an individual's dates empty: the card says so in
    words instead of "last —", and with dates it names the last one."""
    from datetime import datetime

    from wildid.gui.cards import individual_card
    from wildid.review.views import IndividualSummary

    undated = IndividualSummary(id="i1", name="Amber", species="lion", sex=None,
                                life_stage=None, n_encounters=4, first_seen=None,
                                last_seen=None, thumb_path=None, aliases=[])
    card = individual_card(undated)
    assert card.lines[1] == "4 sightings · no dates"
    assert "—" not in card.tooltip and "no camera time" in card.tooltip
    dated = IndividualSummary(id="i2", name="Bibi", species="lion", sex=None, life_stage=None,
                              n_encounters=1, first_seen=datetime(2024, 5, 1),
                              last_seen=datetime(2024, 6, 2), thumb_path=None, aliases=["B"])
    card = individual_card(dated)
    assert card.lines[1] == "1 sighting · last 2024-06-02"
    assert "First seen 2024-05-01, last seen 2024-06-02" in card.tooltip


def test_individual_page_says_when_no_sighting_has_a_date(qtbot, page, world):
    """Photos without a camera time: the header says there is no dated sighting instead of
    "first seen — · last seen —"."""
    from sqlalchemy import update

    from wildid.catalog.models import Encounter

    with world.catalog.session() as s:
        s.execute(update(Encounter).where(Encounter.individual_id == world.individuals["Ziggy"])
                  .values(taken_utc=None))
    page.open_individual(world.individuals["Ziggy"])
    qtbot.waitUntil(lambda: page.detail.detail is not None and not page.is_loading(),
                    timeout=5000)
    assert page.detail.subtitle.text().endswith("1 sighting · no dated sighting")
