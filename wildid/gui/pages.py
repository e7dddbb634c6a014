"""The app's pages and the left navigation that switches between them.

Pages are found by module and class name and imported only when the window is built, so a page
that is not part of this build (not written yet, or left out of a package) shows as a disabled
navigation entry instead of breaking the window. There are no placeholder pages.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QStackedWidget, QWidget

from wildid.gui.style import set_role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageSpec:
    """A page: its key (settings, ``show_page``), title, and where its class lives."""

    key: str
    title: str
    module: str
    class_name: str
    tooltip: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec("import", "Import", "wildid.gui.import_page", "ImportPage",
             "Bring photos from cards and folders into the catalog"),
    PageSpec("review", "Review", "wildid.gui.review_page", "ReviewPage",
             "Confirm or reject the proposed individual for each new encounter"),
    PageSpec("individuals", "Individuals", "wildid.gui.individuals_page", "IndividualsPage",
             "Every known animal with its sightings"),
    PageSpec("encounters", "Encounters", "wildid.gui.encounters_page", "EncountersPage",
             "All encounters in one table"),
)


def page_class(spec: PageSpec) -> tuple[type[QWidget] | None, Exception | None]:
    """The page's class, or None with the reason when it cannot be used.

    A module that is simply absent is not an error (the page is not part of this build). A
    module that exists but fails to import is one: the caller reports it, and the rest of the
    app still starts with that page disabled.
    """
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name == spec.module:
            log.info("page %s is not available (%s missing)", spec.key, spec.module)
            return None, None
        log.exception("page %s cannot be loaded", spec.key)
        return None, exc
    except ImportError as exc:
        log.exception("page %s cannot be loaded", spec.key)
        return None, exc
    cls = getattr(module, spec.class_name, None)
    if cls is None:
        log.warning("%s has no class %s", spec.module, spec.class_name)
    return cls, None


class Navigation(QWidget):
    """A list of page names on the left and the page stack on the right."""

    page_changed = Signal(str)

    def __init__(self, specs: tuple[PageSpec, ...] = PAGES, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = specs
        self.list = set_role(QListWidget(), "nav")
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setIconSize(QSize(0, 0))
        self.stack = QStackedWidget()
        self._pages: dict[str, QWidget] = {}
        for spec in specs:
            item = QListWidgetItem(spec.title)
            item.setData(Qt.ItemDataRole.UserRole, spec.key)
            item.setToolTip(spec.tooltip)
            self.list.addItem(item)
        width = max(self.list.fontMetrics().horizontalAdvance(s.title) for s in specs)
        self.list.setFixedWidth(width + 64)
        self.list.currentRowChanged.connect(self._row_changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.list)
        layout.addWidget(self.stack, 1)

    def _item(self, key: str) -> QListWidgetItem:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == key:
                return item
        raise KeyError(key)

    def set_page(self, key: str, page: QWidget | None) -> None:
        """Install (or, with None, disable) the page for ``key``, replacing an older one."""
        old = self._pages.pop(key, None)
        if old is not None:
            self.stack.removeWidget(old)
            old.deleteLater()
        item = self._item(key)
        spec = next(s for s in self.specs if s.key == key)
        if page is None:
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
            item.setToolTip(f"{spec.title} is not available in this version of wildid")
            return
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        item.setToolTip(spec.tooltip)
        self._pages[key] = page
        self.stack.addWidget(page)
        if self.current_key() == key:
            self.stack.setCurrentWidget(page)

    def page(self, key: str) -> QWidget | None:
        return self._pages.get(key)

    def available(self, key: str) -> bool:
        return key in self._pages

    def current_key(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    def show_page(self, key: str) -> bool:
        """Switch to ``key``; False (and nothing changes) when that page is not available."""
        page = self._pages.get(key)
        if page is None:
            return False
        self.list.setCurrentItem(self._item(key))
        self.stack.setCurrentWidget(page)
        return True

    def _row_changed(self, row: int) -> None:
        if row < 0:
            return
        key = str(self.list.item(row).data(Qt.ItemDataRole.UserRole))
        page = self._pages.get(key)
        if page is not None:
            self.stack.setCurrentWidget(page)
            self.page_changed.emit(key)
