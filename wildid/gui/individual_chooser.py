"""A dialog to pick one known individual (merge target, move target), by name and by face.

Whoever merges two individuals or moves a sighting is deciding that two animals are the same:
the chooser shows each individual as the gallery does, with its photo, not as a bare name, so
the choice can be checked by eye. Thumbnails load in the background for the cards on screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from wildid.gui.cards import CardModel, IdRole, card_grid, individual_card
from wildid.gui.prefetch import Prefetcher
from wildid.review import queries

__all__ = ["IndividualChooser", "choose_individual"]

CARD_SIZE = QSize(168, 160)  # smaller than the gallery's: four across a 760 px dialog
PICTURE_HEIGHT = 100
REFERENCE_SIZE = QSize(200, 130)  # the animal the choice is compared with, beside the prompt


class IndividualChooser(QDialog):
    """Search-as-you-type cards of individuals; OK (or Enter, or a double-click) returns the
    selected id. ``prefetch``: the caller's thumbnail loader, else the dialog makes its own
    (stopped when the dialog closes). ``reference``: a thumbnail of the animal the choice is
    about (the individual merged into, the sighting moved), shown beside the prompt so the
    cards can be compared with it."""

    def __init__(self, catalog: Any, title: str, prompt: str, exclude: set[str] | None = None,
                 species: str | None = None, parent: QWidget | None = None,
                 prefetch: Prefetcher | None = None, reference: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._exclude = exclude or set()
        self._all = [i for i in queries.list_individuals(catalog) if i.id not in self._exclude]
        self._species = species
        self._own_prefetch = prefetch is None
        self.prefetch = prefetch or Prefetcher(catalog, self)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Type a name or alias")
        self.search.textChanged.connect(self._fill)
        self.model = CardModel(self.prefetch, self)
        self.list = card_grid(self.model, CARD_SIZE, PICTURE_HEIGHT, "individualChooser")
        self.list.activated.connect(lambda _index: self.accept())
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        label = QLabel(prompt)
        label.setWordWrap(True)
        self.reference = QLabel()
        self.reference.setObjectName("chooserReference")
        picture = QPixmap(str(reference)) if reference is not None else QPixmap()
        if not picture.isNull():
            self.reference.setPixmap(picture.scaled(
                REFERENCE_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
        self.reference.setVisible(not picture.isNull())
        top = QHBoxLayout()
        top.addWidget(self.reference)
        top.addWidget(label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.buttons)
        self.resize(760, 560)
        self._fill("")

    def _fill(self, text: str) -> None:
        needle = text.strip().casefold()
        # Same species first: merging across species is refused by the core anyway.
        rows = sorted(self._all, key=lambda i: (self._species is not None
                                                and i.species != self._species,
                                                i.name.casefold()))
        shown = [ind for ind in rows
                 if not needle or any(needle in n.casefold() for n in (ind.name, *ind.aliases))]
        self.model.set_cards([individual_card(ind) for ind in shown])
        if shown:
            self.list.setCurrentIndex(self.model.index(0))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(shown))

    def count(self) -> int:
        """How many individuals are shown (after the search)."""
        return self.model.rowCount()

    def chosen(self) -> str | None:
        index = self.list.currentIndex()
        return str(index.data(IdRole)) if index.isValid() else None

    def done(self, result: int) -> None:
        if self._own_prefetch:
            self.prefetch.shutdown()
        super().done(result)


def choose_individual(catalog: Any, parent: QWidget, title: str, prompt: str,
                      exclude: set[str] | None = None, species: str | None = None,
                      prefetch: Prefetcher | None = None,
                      reference: Path | None = None) -> str | None:
    """Show the chooser modally; the chosen individual's id, or None when cancelled."""
    dialog = IndividualChooser(catalog, title, prompt, exclude, species, parent, prefetch,
                               reference)
    return dialog.chosen() if dialog.exec() == QDialog.DialogCode.Accepted else None
