"""The gallery of known individuals, and the page of one individual behind it.

The list is read in the background (``wildid.review.queries.list_individuals``), filtered by a
search box (name and aliases) and a species menu, and sorted by name, last sighting or number
of sightings. Thumbnails load lazily, only for the cards on screen. Double-click (or Enter)
opens the individual's page; the page's Back button returns to the gallery.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wildid.errors import WildIdError
from wildid.gui.cards import CardModel, IdRole, card_grid, individual_card
from wildid.gui.formatting import plural
from wildid.gui.individual_page import IndividualPage
from wildid.gui.prefetch import Prefetcher
from wildid.review import queries

__all__ = ["IndividualsPage", "individual_card"]

_SORTS = (("name", "Name"), ("last_seen", "Last seen"), ("sightings", "Most sightings"))
_ALL_SPECIES = "All species"


class IndividualsPage(QWidget):
    """Gallery of individuals with search, species filter and sort; opens individual pages."""

    open_encounter_requested = Signal(str)

    def __init__(self, services: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("individualsPage")
        self.services = services
        self.prefetch = Prefetcher(services.catalog, self)
        self._token = 0
        self._dirty = True
        self._build()
        self.prefetch.resultReady.connect(self._on_result)
        services.data_changed.connect(self._on_data_changed)

    def _build(self) -> None:
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search names and aliases")
        self.search.setClearButtonEnabled(True)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(200)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.species = QComboBox()
        self.species.addItem(_ALL_SPECIES, None)
        self.species.setMinimumContentsLength(18)
        self.species.currentIndexChanged.connect(lambda _i: self.refresh())
        self.sort = QComboBox()
        for key, label in _SORTS:
            self.sort.addItem(label, key)
        self.sort.currentIndexChanged.connect(lambda _i: self.refresh())
        self.count = QLabel()
        bar = QHBoxLayout()
        bar.addWidget(self.search, 2)
        bar.addWidget(QLabel("Species:"))
        bar.addWidget(self.species, 1)
        bar.addWidget(QLabel("Sort:"))
        bar.addWidget(self.sort)
        bar.addWidget(self.count)

        self.model = CardModel(self.prefetch, self)
        self.gallery = card_grid(self.model, QSize(200, 186), 124, "individualsGallery")
        self.gallery.activated.connect(lambda index: self.open_individual(index.data(IdRole)))
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.hide()

        gallery_page = QWidget()
        layout = QVBoxLayout(gallery_page)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(bar)
        layout.addWidget(self.gallery, 1)
        layout.addWidget(self.empty, 1)
        self.detail = IndividualPage(self.services, self.prefetch)
        self.detail.back_requested.connect(self.show_gallery)
        self.detail.open_encounter_requested.connect(self.open_encounter_requested)
        self.stack = QStackedWidget()
        self.stack.addWidget(gallery_page)
        self.stack.addWidget(self.detail)
        self._gallery_page = gallery_page
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

    # ------------------------------------------------------------------ data
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._dirty:
            self.refresh()

    def refresh(self) -> None:
        """Read the individuals again in the background with the current filters."""
        self._dirty = False
        catalog = self.services.catalog
        search, order = self.search.text(), self.sort.currentData()
        species = self.species.currentData()

        def work() -> tuple[list[Any], list[str]]:
            everyone = queries.list_individuals(catalog)
            shown = queries.list_individuals(catalog, search, species, order)
            return shown, sorted({i.species for i in everyone if i.species})

        self._token = self.prefetch.request_result("individuals", work)

    def is_loading(self) -> bool:
        return self._dirty or not self.prefetch.is_idle()

    def _on_result(self, name: str, token: int, value: Any, error: str) -> None:
        if name != "individuals" or token != self._token:
            return
        if error:
            self.services.report_error(WildIdError(error))
            return
        shown, species = value
        self._set_species(species)
        self.model.set_cards([individual_card(s) for s in shown])
        self.count.setText(plural(len(shown), "individual"))
        filtering = bool(self.search.text().strip()) or self.species.currentData() is not None
        self.empty.setText("No individual matches the search." if filtering else
                           "No individuals yet. Name one on the Review page "
                           "(“New individual”), and it appears here.")
        self.empty.setVisible(not shown)
        self.gallery.setVisible(bool(shown))

    def _set_species(self, species: list[str]) -> None:
        current = self.species.currentData()
        wanted = [None, *species]
        if [self.species.itemData(i) for i in range(self.species.count())] == wanted:
            return
        self.species.blockSignals(True)
        self.species.clear()
        self.species.addItem(_ALL_SPECIES, None)
        for name in species:
            self.species.addItem(name, name)
        self.species.setCurrentIndex(max(0, self.species.findData(current)))
        self.species.blockSignals(False)

    def summaries(self) -> list[Any]:
        """The IndividualSummary values on show, in order (tests read them)."""
        return [card.payload for card in self.model.cards()]

    def _on_data_changed(self, changes: Any) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._dirty = True
        self.detail.on_data_changed(changes)

    # ------------------------------------------------------------------ navigation
    def open_individual(self, individual_id: str) -> None:
        """Show the page of ``individual_id`` (merged-away ids show the survivor)."""
        if not individual_id:
            return
        self.detail.show_individual(individual_id)
        self.stack.setCurrentWidget(self.detail)

    def show_gallery(self) -> None:
        self.stack.setCurrentWidget(self._gallery_page)
        if self._dirty:
            self.refresh()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.prefetch.shutdown()
        super().closeEvent(event)
