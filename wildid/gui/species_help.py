"""Help for typing a species: completion and a line saying which profile will match it.

A species is free text, and only the names a species profile answers to reach that profile
("nyala", "Tragelaphus angasii"); "Nyala antelope" would be matched by the generic profile, at
about half the nyala profile's top-1 (docs/identification.md). So the field completes from the
profiles' names and the species already in the catalog, and the line under it says what a
typed name will get before any photo is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import (
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from wildid.matching.profiles import SpeciesProfile, load_profiles, profile_for, species_names


def species_hint(text: str, profiles: dict[str, SpeciesProfile]) -> str:
    """What matching a species typed as ``text`` will use (empty text: nothing to say)."""
    text = text.strip()
    if not text:
        return ""
    profile = profile_for(text, profiles)
    if profile.name != "default":
        return f"Matched with the {profile.name} profile, tuned for this species."
    own = ", ".join(sorted(n for n in profiles if n != "default"))
    return (f"No profile of its own: matched with the generic profile (species with their "
            f"own: {own}).")


class SpeciesHelp:
    """Completion for ``edit`` and a ``hint`` line kept up to date as the text changes;
    ``when_empty`` says what an empty field means (called each time it is shown)."""

    def __init__(self, edit: QLineEdit, hint: QLabel,
                 when_empty: Callable[[], str] = lambda: "") -> None:
        self.edit, self.hint, self.when_empty = edit, hint, when_empty
        self.profiles = load_profiles()
        self.model = QStringListModel(species_names(self.profiles))
        completer = QCompleter(self.model, edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        edit.setCompleter(completer)
        hint.setWordWrap(True)
        edit.textChanged.connect(self.update_hint)
        self.update_hint()

    def set_catalog_species(self, names: Sequence[str]) -> None:
        """Offer the catalog's own species too (after the profiles' names)."""
        offered = species_names(self.profiles)
        seen = {n.lower() for n in offered}
        self.model.setStringList(offered + [n for n in names if n.lower() not in seen])
        self.update_hint()

    def suggestions(self) -> list[str]:
        return list(self.model.stringList())

    def update_hint(self) -> None:
        text = self.edit.text()
        self.hint.setText(species_hint(text, self.profiles) if text.strip()
                          else self.when_empty())


class SpeciesDialog(QDialog):
    """Ask for a species, with the field's completion and the profile line under it."""

    def __init__(self, parent: QWidget | None, count: int, species: str,
                 catalog_names: Sequence[str] = ()) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set species")
        self.edit = QLineEdit(species)
        self.edit.setPlaceholderText("e.g. Tragelaphus angasii (empty: no species)")
        hint = QLabel()
        self.help = SpeciesHelp(self.edit, hint,
                                lambda: "Empty: the encounters get no species.")
        self.help.set_catalog_species(catalog_names)
        what = "this encounter" if count == 1 else f"these {count:,} encounters"
        intro = QLabel(f"Species of {what}. Boxes that had the encounter's species follow it; "
                       "the encounters are matched again under the new species.")
        intro.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.edit)
        layout.addWidget(hint)
        layout.addWidget(buttons)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("m") * 45)


def ask_species(parent: QWidget | None, count: int, species: str,
                catalog_names: Sequence[str] = ()) -> str | None:
    """The species typed (blank: none), or None when cancelled."""
    dialog = SpeciesDialog(parent, count, species, catalog_names)
    return dialog.edit.text() if dialog.exec() == QDialog.DialogCode.Accepted else None
