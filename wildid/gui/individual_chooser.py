"""A small dialog to pick one known individual by name (merge target, move target)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wildid.gui.formatting import fmt_date, plural
from wildid.review import queries

__all__ = ["IndividualChooser", "choose_individual"]


class IndividualChooser(QDialog):
    """Search-as-you-type list of individuals; OK returns the selected id."""

    def __init__(self, catalog: Any, title: str, prompt: str, exclude: set[str] | None = None,
                 species: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._exclude = exclude or set()
        self._all = [i for i in queries.list_individuals(catalog) if i.id not in self._exclude]
        self._species = species
        self.search = QLineEdit()
        self.search.setPlaceholderText("Type a name or alias")
        self.search.textChanged.connect(self._fill)
        self.list = QListWidget()
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        label = QLabel(prompt)
        label.setWordWrap(True)
        layout = QVBoxLayout(self)
        for widget in (label, self.search, self.list, self.buttons):
            layout.addWidget(widget)
        self.resize(420, 460)
        self._fill("")

    def _fill(self, text: str) -> None:
        needle = text.strip().casefold()
        self.list.clear()
        # Same species first: merging across species is refused by the core anyway.
        rows = sorted(self._all, key=lambda i: (self._species is not None
                                                and i.species != self._species,
                                                i.name.casefold()))
        for ind in rows:
            names = [ind.name, *ind.aliases]
            if needle and not any(needle in n.casefold() for n in names):
                continue
            facts = [ind.species or "species unknown", plural(ind.n_encounters, "sighting"),
                     f"last seen {fmt_date(ind.last_seen)}"]
            item = QListWidgetItem(f"{ind.name}  —  {' · '.join(facts)}")
            item.setData(Qt.ItemDataRole.UserRole, ind.id)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.list.count() > 0)

    def chosen(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))


def choose_individual(catalog: Any, parent: QWidget, title: str, prompt: str,
                      exclude: set[str] | None = None, species: str | None = None) -> str | None:
    """Show the chooser modally; the chosen individual's id, or None when cancelled."""
    dialog = IndividualChooser(catalog, title, prompt, exclude, species, parent)
    return dialog.chosen() if dialog.exec() == QDialog.DialogCode.Accepted else None
