"""The Encounters page: every encounter in one sortable, filterable table (100,000 rows).

Measured with 100k rows (PySide6 6.12, offscreen): QSortFilterProxyModel's own sort calls
``data()`` in Python for every comparison (27 s), and its regular-expression filter over a
``data()`` role takes 2 s. So the Python side does what Python is fast at and Qt does the rest:

* rows are loaded by ``wildid.review.encounter_rows`` in a read-only background job, which also
  builds one lower-case search string per row;
* the source model sorts its list with ``list.sort`` and a key (0.25 s) when the proxy is asked
  to sort, keeping persistent indexes (the selection) valid; a load arrives already sorted;
* the proxy filters on a boolean mask the source model computes in one pass per filter change,
  so ``filterAcceptsRow`` is a list look-up;
* cells are formatted on demand in ``data()``: only the visible screenful ever is, and so
  are the thumbnails beside each date (loaded in the background by the page's prefetcher,
  scaled once and kept; a row repaints when its thumbnail arrives).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from wildid.catalog.models import ENCOUNTER_STATES
from wildid.catalog.types import utcnow
from wildid.errors import WildIdError
from wildid.gui.jobs import Job
from wildid.gui.prefetch import LRU, Prefetcher
from wildid.gui.prompts import Prompts
from wildid.gui.retime_dialog import ask_shift
from wildid.gui.services import Services
from wildid.gui.species_help import ask_species
from wildid.gui.style import set_role
from wildid.ids import short_id
from wildid.ingest.clock import FUTURE, doubtful
from wildid.review import EncounterRow, encounter_rows, queries, set_encounter_species
from wildid.review.retime import earliest_time, shift_times
from wildid.review.views import file_name

Index = QModelIndex | QPersistentModelIndex
_LAST = (1,)  # sort key for missing values: after every present value, in both directions


def _when(row: EncounterRow) -> str:
    return row.taken_utc.strftime("%Y-%m-%d %H:%M") if row.taken_utc else "unknown"


def _where(row: EncounterRow) -> str:
    return "" if row.lat is None or row.lon is None else f"{row.lat:.4f}, {row.lon:.4f}"


def _score(row: EncounterRow) -> str:
    return "" if row.best_score is None else f"{row.best_score:.0%}"


def _key(value: Any) -> tuple[Any, ...]:
    return _LAST if value is None or value == "" else (0, value)


def _text_key(value: str | None) -> tuple[Any, ...]:
    return _key(value.casefold() if value else None)


# (header, cell text, sort key, right-aligned)
# a date a camera's clock got wrong (``wildid.ingest.clock``): amber, its tooltip says why
DOUBTFUL_BRUSH = QBrush(QColor("#a15c00"))

COLUMNS: list[tuple[str, Callable[[EncounterRow], str], Callable[[EncounterRow], Any], bool]] = [
    ("When (UTC)", _when, lambda r: _key(r.taken_utc), False),
    ("State", lambda r: r.state.capitalize(), lambda r: (0, r.state), False),
    ("Individual", lambda r: r.individual_name or "", lambda r: _text_key(r.individual_name), False),
    ("Photos", lambda r: str(r.n_photos), lambda r: (0, r.n_photos), True),
    ("Best score", _score, lambda r: _key(r.best_score), True),
    ("Observer", lambda r: r.observer or "", lambda r: _text_key(r.observer), False),
    ("Species", lambda r: r.species or "", lambda r: _text_key(r.species), False),
    ("Location", _where, lambda r: _key(None if r.lat is None else (r.lat, r.lon)), False),
    # The id's random tail, as `wildid decisions` prints it and every command accepts it (UUIDv7 ids
    # minted together share their first characters, a timestamp); the whole id is its tooltip
    # and the filter searches all of it.
    ("ID", lambda r: short_id(r.id), lambda r: (0, r.id), False),
]

ID_COLUMN = len(COLUMNS) - 1


def search_text(row: EncounterRow) -> str:
    """What the text filter searches: names, observer, species, state, the first photo's file
    name (``IMG_0423`` finds the encounter of that photo) and the id."""
    photo = file_name(row.photo_file) if row.photo_file else None  # 100k rows: no Path
    parts = (row.individual_name, row.observer, row.species, row.state, photo, row.id)
    return " ".join(p for p in parts if p).casefold()


SortSpec = tuple[int, Qt.SortOrder]


def sorted_order(rows: list[EncounterRow], column: int, order: Qt.SortOrder) -> list[int]:
    """Row positions in display order; rows without a value stay last in both directions."""
    key_of = COLUMNS[column][2]
    keys = [key_of(r) for r in rows]
    present = [i for i, k in enumerate(keys) if k is not _LAST]
    missing = [i for i, k in enumerate(keys) if k is _LAST]
    present.sort(key=keys.__getitem__, reverse=order == Qt.SortOrder.DescendingOrder)
    return present + missing


def load_rows(catalog: Any, sort: SortSpec | None = None) -> tuple[list[EncounterRow], list[str]]:
    """Runs in a worker: every encounter row, already in ``sort`` order, and its search text."""
    rows = encounter_rows(catalog)
    if sort is not None:
        rows = [rows[i] for i in sorted_order(rows, *sort)]
    return rows, [search_text(r) for r in rows]


ICON_SIZE = QSize(48, 36)  # the thumbnail beside each row's date
_ICONS_KEPT = 2000  # scaled thumbnails kept (~14 MB): many screenfuls of scrolling back


def framed_icon(image: QImage) -> QPixmap:
    """The photo scaled into ``ICON_SIZE`` and centred on a transparent canvas of exactly that
    size. Why: a view lays its text out after the decoration's own width, so portrait and
    landscape thumbnails left the dates beside them at ragged positions."""
    scaled = image.scaled(ICON_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                          Qt.TransformationMode.SmoothTransformation)
    canvas = QPixmap(ICON_SIZE)
    canvas.fill(Qt.GlobalColor.transparent)
    painter = QPainter(canvas)
    painter.drawImage((ICON_SIZE.width() - scaled.width()) // 2,
                      (ICON_SIZE.height() - scaled.height()) // 2, scaled)
    painter.end()
    return canvas


class EncountersModel(QAbstractTableModel):
    """Flat rows from ``encounter_rows``; sorts itself and keeps the filter mask.

    With a ``prefetch``, the first column shows each encounter's thumbnail: a table of ids and
    dates alone did not say which animal a row was.
    """

    EncounterIdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QObject | None = None, prefetch: Prefetcher | None = None) -> None:
        super().__init__(parent)
        self._rows: list[EncounterRow] = []
        self._search: list[str] = []
        self._mask: list[bool] | None = None
        self._sort: SortSpec | None = None
        self._prefetch = prefetch
        self._icons = LRU(_ICONS_KEPT)  # thumbnail path -> QPixmap at ICON_SIZE
        self._waiting: dict[str, set[int]] = {}  # thumbnail asked for -> rows showing it
        self._now = utcnow()  # what "in the future" is measured from, as of the last load
        if prefetch is not None:
            prefetch.thumbnailReady.connect(self._on_thumbnail)

    # ------------------------------------------------------------ Qt model API -----------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[index.column()][1](row)
        if role == self.EncounterIdRole:
            return row.id
        if role == Qt.ItemDataRole.TextAlignmentRole and COLUMNS[index.column()][3]:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return self._icon(index.row(), row)
        if index.column() == 0 and role in (Qt.ItemDataRole.ToolTipRole,
                                            Qt.ItemDataRole.ForegroundRole):
            doubt = doubtful(row.taken_utc, self._now)
            if role == Qt.ItemDataRole.ForegroundRole:
                return DOUBTFUL_BRUSH if doubt else None
            if doubt is None:
                return row.photo_file
            said = ("dated in the future" if doubt == FUTURE
                    else "dated at a camera's factory date")
            return (f"{row.photo_file}\n{said.capitalize()}: its camera's clock was wrong. "
                    "Select it (and the rest of that camera's encounters) and choose Correct "
                    "time…")
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == ID_COLUMN:
            return row.id
        return None

    def _icon(self, position: int, row: EncounterRow) -> QPixmap | None:
        """The row's thumbnail scaled to ``ICON_SIZE``; asked for in the background if not
        loaded yet (the row repaints when it arrives)."""
        path = row.thumb_path
        if path is None or self._prefetch is None:
            return None
        key = str(path)
        icon = self._icons.get(key)
        if icon is not None:
            return icon
        loaded = self._prefetch.thumbnail(key)
        if loaded is None:
            self._waiting.setdefault(key, set()).add(position)
            self._prefetch.request_thumbnail(key)
            return None
        if loaded.image is None:  # unreadable: the row shows its date alone
            return None
        icon = framed_icon(loaded.image)
        self._icons.put(key, icon)
        return icon

    def _on_thumbnail(self, key: str) -> None:
        for position in self._waiting.pop(key, ()):
            if position < len(self._rows):
                index = self.index(position, 0)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS) or (column, order) == self._sort:
            return  # the rows are kept in the current order already
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        old_rows = [p.row() for p in persistent]
        order_idx = sorted_order(self._rows, column, order)
        new_pos = [0] * len(order_idx)
        for new, old in enumerate(order_idx):
            new_pos[old] = new
        self._rows = [self._rows[i] for i in order_idx]
        self._waiting.clear()  # rows moved: a repaint asks again where they are now
        self._search = [self._search[i] for i in order_idx]
        if self._mask is not None:
            self._mask = [self._mask[i] for i in order_idx]
        self.changePersistentIndexList(
            persistent,
            [self.index(new_pos[r], p.column()) for r, p in zip(old_rows, persistent, strict=True)])
        self.layoutChanged.emit()

    # ------------------------------------------------------------ data and filter --------
    @property
    def sort_spec(self) -> SortSpec | None:
        return self._sort

    def set_rows(self, rows: list[EncounterRow], search: list[str],
                 sorted_by: SortSpec | None = None) -> None:
        """Replace every row (a finished load), sorting them unless already in the current order."""
        self.beginResetModel()
        self._rows, self._search, self._mask = rows, search, None
        self._now = utcnow()
        self._waiting.clear()
        self.endResetModel()
        if self._sort is not None and self._sort != sorted_by:
            self.sort(*self._sort)

    def set_filter(self, text: str, state: str | None) -> None:
        """Compute which rows pass; use :meth:`EncountersProxy.set_filter`, which tells views."""
        needle = text.strip().casefold()
        if not needle and state is None:
            self._mask = None
        elif state is None:
            self._mask = [needle in s for s in self._search]
        else:
            pairs = zip(self._rows, self._search, strict=True)
            self._mask = [r.state == state and needle in s for r, s in pairs]

    def accepts(self, row: int) -> bool:
        return self._mask is None or self._mask[row]

    def row_at(self, row: int) -> EncounterRow:
        return self._rows[row]


class EncountersProxy(QSortFilterProxyModel):
    """Filters by the source model's mask and hands sorting to the source model."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model: EncountersModel | None = None

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        self._model = model if isinstance(model, EncountersModel) else None
        super().setSourceModel(model)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        # Called for every row after each sort or filter change: kept to one look-up.
        model = self._model
        return model is None or model.accepts(source_row)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if self._model is not None:
            self._model.sort(column, order)

    def set_filter(self, text: str, state: str | None) -> None:
        """Show only rows matching ``text`` (and ``state`` unless None)."""
        if self._model is not None:
            self.beginFilterChange()
            self._model.set_filter(text, state)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def encounter_id(self, index: QModelIndex) -> str | None:
        if not index.isValid():
            return None
        value = self.data(index, EncountersModel.EncounterIdRole)
        return str(value) if value is not None else None

    def row_species(self, index: QModelIndex) -> str:
        """The species shown on ``index``'s row ("" when it has none)."""
        if not index.isValid() or self._model is None:
            return ""
        return self._model.row_at(self.mapToSource(index).row()).species or ""


STATE_CHOICES = [("All states", None)] + [(s.capitalize(), s) for s in ENCOUNTER_STATES]


class EncountersPage(QWidget):
    """Table of all encounters; double-click opens one in Review."""

    open_encounter_requested = Signal(str)
    loaded = Signal(int)  # rows loaded (tests and the status bar)

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.prefetch = Prefetcher(services.catalog, self)
        self.model = EncountersModel(self, self.prefetch)
        self.proxy = EncountersProxy(self)
        self.proxy.setSourceModel(self.model)
        self._job: Job | None = None
        self._stale = True
        self._reload_after = False
        self.prompts = Prompts(self)
        self._build()
        services.data_changed.connect(self._data_changed)

    def _build(self) -> None:
        heading = set_role(QLabel("Encounters"), "heading")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by individual, observer, species, photo file or id…")
        self.search.setClearButtonEnabled(True)
        self.state = QComboBox()
        for label, value in STATE_CHOICES:
            self.state.addItem(label, value)
        self.count = set_role(QLabel(), "subtle")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.reload)
        # mend a species forgotten or misspelled at import (importing again skips every
        # photo as a duplicate); undoable, and the encounters are matched again
        self.species_button = QPushButton("Set species…")
        self.species_button.setToolTip("Give the selected encounters a species; they are "
                                       "matched again under its profile")
        self.species_button.clicked.connect(self.set_species)
        self.species_button.setEnabled(False)
        # a camera's clock that was wrong (a trap restarted at its factory date): the import
        # report names such photos; undoable, and nothing is matched again
        self.time_button = QPushButton("Correct time…")
        self.time_button.setToolTip("Move the photo times of the selected encounters by what "
                                    "their camera's clock was off")
        self.time_button.clicked.connect(self.correct_time)
        self.time_button.setEnabled(False)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(200)
        self._debounce.timeout.connect(self.apply_filter)
        self.search.textChanged.connect(self._debounce.start)
        self.state.currentIndexChanged.connect(self.apply_filter)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.setIconSize(ICON_SIZE)
        self.table.verticalHeader().setDefaultSectionSize(
            max(self.fontMetrics().height() + 10, ICON_SIZE.height() + 4))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setSortIndicator(0, Qt.SortOrder.DescendingOrder)
        self._size_columns()
        self.table.doubleClicked.connect(self._open)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for text, slot in (("Set species…", self.set_species), ("Correct time…", self.correct_time)):
            action = QAction(text, self.table)
            action.triggered.connect(slot)
            self.table.addAction(action)

        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.state)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.species_button)
        bar.addWidget(self.time_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 12)
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addStretch(1)
        top.addWidget(self.count)
        layout.addLayout(top)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

    def _size_columns(self) -> None:
        """Widths from the font (not the contents: measuring 100k rows would be slow)."""
        cell = self.table.fontMetrics()
        head = self.table.horizontalHeader().fontMetrics()
        samples = ("2024-05-01 06:30", "Unidentifiable", "Long individual", "999", "100%",
                   "Observer name", "Tragelaphus angasii", "-24.9900, 31.5900",
                   "8dc2f3a9")  # the short id
        for column, sample in enumerate(samples):
            title = COLUMNS[column][0]
            width = max(cell.horizontalAdvance(sample) + 20,
                        round(head.horizontalAdvance(title) * 1.15) + 40)
            if column == 0:  # the thumbnail beside the date
                width += ICON_SIZE.width() + 8
            self.table.setColumnWidth(column, width)

    # ------------------------------------------------------------ loading ----------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload()

    def _data_changed(self, _changes: Any) -> None:
        self._stale = True
        if self.isVisible():
            self.reload()

    def reload(self) -> Job | None:
        """Load every row again in the background (a running load is followed by another)."""
        if self._job is not None:
            self._reload_after = True
            return self._job
        self._stale = False
        catalog, order = self.services.catalog, self.model.sort_spec
        self._job = self.services.jobs.submit(
            "Loading encounters", lambda progress=None, cancel=None: load_rows(catalog, order),
            writes=False, disposable=True)
        self._job.succeeded.connect(lambda result: self._loaded(result, order))
        self._job.finished.connect(self._load_ended)
        self.count.setText("Loading…")
        return self._job

    def _loaded(self, result: tuple[list[EncounterRow], list[str]], order: SortSpec | None) -> None:
        rows, search = result
        self.model.set_rows(rows, search, sorted_by=order)
        self.apply_filter()
        self.loaded.emit(len(rows))

    def _load_ended(self) -> None:
        self._job = None
        if self._reload_after:
            self._reload_after = False
            self.reload()

    # ------------------------------------------------------------ filter and open --------
    def apply_filter(self) -> None:
        self._debounce.stop()
        self.proxy.set_filter(self.search.text(), self.state.currentData())
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        noun = "encounter" if total == 1 else "encounters"
        self.count.setText(f"{total:,} {noun}" if shown == total else f"{shown:,} of {total:,} {noun}")

    def selected_encounter_ids(self) -> list[str]:
        rows = self.table.selectionModel().selectedRows()
        return [eid for eid in (self.proxy.encounter_id(i) for i in rows) if eid]

    def set_species(self) -> None:
        """Ask for a species and give it to the selected encounters (one undoable step); the
        changed ones are matched again in the background."""
        ids = self.selected_encounter_ids()
        if not ids:
            return
        shown = {self.proxy.row_species(i) for i in self.table.selectionModel().selectedRows()}
        current = shown.pop() if len(shown) == 1 else ""
        try:
            names = queries.catalog_species_names(self.services.catalog)
        except WildIdError:
            names = []
        answer = self.prompts.choose("Set species", lambda parent: ask_species(
            parent, len(ids), current or "", names))
        if answer is None:
            return
        try:
            op = set_encounter_species(self.services.catalog, ids, str(answer),
                                       self.services.reviewer)
        except WildIdError as exc:
            self.prompts.error(str(exc))
            return
        if op.is_noop:
            return
        self.services.push(op)
        self.services.identify_new(op.changes.encounters)

    def correct_time(self) -> None:
        """Ask how far the camera's clock was off and move the selected encounters' photo
        times by that (one undoable step)."""
        ids = self.selected_encounter_ids()
        if not ids:
            return
        try:
            earliest = earliest_time(self.services.catalog, ids)
        except WildIdError as exc:
            self.prompts.error(str(exc))
            return
        if earliest is None:
            self.prompts.error("None of the selected encounters' photos has a time to correct.")
            return
        delta = self.prompts.choose("Correct time",
                                    lambda parent: ask_shift(parent, len(ids), earliest))
        if not delta:
            return
        try:
            op = shift_times(self.services.catalog, ids, delta, self.services.reviewer)
        except WildIdError as exc:
            self.prompts.error(str(exc))
            return
        if not op.is_noop:
            self.services.push(op)

    def _selection_changed(self, *_: object) -> None:
        chosen = bool(self.selected_encounter_ids())
        self.species_button.setEnabled(chosen)
        self.time_button.setEnabled(chosen)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.prefetch.shutdown()
        super().closeEvent(event)

    def _open(self, index: QModelIndex) -> None:
        encounter_id = self.proxy.encounter_id(index)
        if encounter_id:
            self.open_encounter_requested.emit(encounter_id)
