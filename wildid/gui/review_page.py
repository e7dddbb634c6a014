"""Review of suggested matches: one encounter at a time, its photos beside each candidate's.

The page shows the review queue (most confident first, or oldest first: a setting), the query
photo(s) on the left and the selected candidate's best-matching photo on the right, both
zoomable, with the matcher's keypoint pairs drawn across. Each decision is written at once by
``wildid.review.operations`` (append-only decision rows) and pushed on the app's undo stack.

Nothing slow runs on the GUI thread: encounter details, candidates and photos come from the
:class:`~wildid.gui.prefetch.Prefetcher`, which also loads the next encounters ahead of time.
While something is not loaded yet the page shows "Loading…" and fills in when it arrives.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wildid.gui.action_bar import ActionBar
from wildid.gui.candidate_strip import CandidateStrip
from wildid.gui.image_view import ImageView, PairView
from wildid.gui.prefetch import Prefetcher, ReviewBundle
from wildid.gui.prompts import Prompts
from wildid.gui.review_actions import ACTIONS, MENU_SECTIONS, make_actions
from wildid.gui.review_decisions import ReviewDecisions
from wildid.gui.review_panels import (
    CHECKED_STYLE,
    CandidateHeader,
    DoneView,
    MixedBurstBanner,
    NewIndividualBanner,
    QueryHeader,
)
from wildid.gui.style import set_role
from wildid.review import queries
from wildid.review.burst_check import different_animals

log = logging.getLogger(__name__)

__all__ = ["ReviewPage"]

_ORDERS = (("confidence", "Most confident first"), ("oldest", "Oldest first"))
_PREFETCH_AHEAD = 2


def steady_queue(shown: list[str], fresh: list[str]) -> list[str]:
    """The queue read again (``fresh``, in the chosen order) without reordering what the
    reviewer already has in front of them (``shown``).

    Scores change under the reviewer: a "not this one" or a name given matches encounters
    again in the background, and ordered by confidence the encounter on screen jumped from
    1st to 18th of 19 while the reviewer was looking at it, with the next ones now behind
    it. Encounters still in both keep their order on screen; those no longer to review
    drop out; new ones (another import, an undo) take the places the fresh order gives them
    among the others. Choosing another order reads the whole queue afresh.
    """
    fresh_set = set(fresh)
    shown_set = set(shown)
    kept = iter([e for e in shown if e in fresh_set])
    return [next(kept) if e in shown_set else e for e in fresh]


_REFRESH_AHEAD = 5  # the encounter shown and the next four: ~2.5 s of nyala matching at most
_REFRESH_DELAY_MS = 400


class ReviewPage(ReviewDecisions, QWidget):
    """Queue of unreviewed encounters with match / no-match / new-individual decisions."""

    open_individual_requested = Signal(str)  # double-click on a candidate

    def __init__(self, services: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewPage")
        self.services = services
        self.prompts: Prompts = Prompts(self)
        self.prefetch = Prefetcher(services.catalog, self)
        self.queue: list[str] = []
        self.index = 0
        self.tally: Counter[str] = Counter()
        self._touched: set[str] = set()  # encounters this page decided on (undo may return them)
        self._resort = False  # the next queue read replaces the order (the order was changed)
        self._pinned: str | None = None  # opened from elsewhere: kept even if not in the queue
        self._bundle: ReviewBundle | None = None
        self._photo_index = 0
        self._waiting: dict[ImageView, str] = {}
        self._queue_dirty = True
        self._queue_token = 0
        self._waiting_counts: dict[str, int] = {}
        # the encounters shown next are matched again when a decision or a box edit made their
        # candidates out of date; a short pause first, so stepping through the queue asks once
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(_REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self._refresh_upcoming)
        # the candidate individual's photos, stepped through beside the query (, and .): read
        # in the background the first time a candidate is shown, the best matching one first
        self._candidate_photos: dict[str, list[Any]] = {}  # individual id -> AnnotationInfo
        self._candidate_photo_index = 0
        self._candidate_shown: tuple[str, str] | None = None  # (encounter, individual) shown
        self._candidate_token: tuple[int, str] | None = None  # (token, individual) asked
        self.compare_job: Any = None  # the last *Compare with…* (tests wait on it)
        self._build()
        self.prefetch.resultReady.connect(self._on_candidate_photos)
        self.prefetch.bundleReady.connect(self._on_bundle)
        self.prefetch.imageReady.connect(self._on_image)
        self.prefetch.queueReady.connect(self._on_queue)
        services.data_changed.connect(self._on_data_changed)
        services.undo_changed.connect(self._update_undo_actions)
        services.undone.connect(self._on_undone)
        self._update_undo_actions()
        self._show_state("loading")

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setStyleSheet(CHECKED_STYLE)
        self.position = QLabel()
        self.position.setObjectName("queuePosition")
        self.order_box = QComboBox()
        for key, label in _ORDERS:
            self.order_box.addItem(label, key)
        self.order_box.setToolTip("Order of the review queue")
        self.order_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.order_box.currentIndexChanged.connect(self._order_chosen)
        top = QHBoxLayout()
        top.addWidget(self.position, 1)
        top.addWidget(QLabel("Order:"))
        top.addWidget(self.order_box)

        self.banner = NewIndividualBanner()
        self.burst_banner = MixedBurstBanner()
        self.burst_banner.split_requested.connect(self.split_burst)
        self.query_header = QueryHeader()
        self.query_header.photoStep.connect(self.step_photo)
        self.candidate_header = CandidateHeader()
        self.candidate_header.photoStep.connect(self.step_candidate_photo)
        headers = QHBoxLayout()
        headers.setSpacing(8)
        headers.addWidget(self.query_header, 1)
        headers.addWidget(self.candidate_header, 1)
        self.pair = PairView()
        self.strip = CandidateStrip(self.prefetch)
        self.strip.candidateSelected.connect(self._on_candidate)
        self.strip.doubleClicked.connect(self._candidate_double_clicked)

        self.actions_by_key = make_actions(self, {spec.key: getattr(self, spec.key)
                                                  for spec in ACTIONS})
        self._window_actions: set[str] = set()  # keys whose action the window lent us
        # The bar never clips: at 1280 px or less, the buttons that do not fit go into "More".
        self.action_bar = ActionBar()
        for spec in ACTIONS:
            if spec.button:
                button = self.action_bar.add(spec.key, spec.button_text,
                                             self.actions_by_key[spec.key],
                                             overflow=spec.overflow, right=spec.right)
                if spec.key == "confirm":
                    set_role(button, "primary")

        review = QWidget()
        layout = QVBoxLayout(review)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.banner)
        layout.addWidget(self.burst_banner)
        layout.addLayout(headers)
        layout.addWidget(self.pair, 1)
        layout.addWidget(self.strip)
        layout.addWidget(self.action_bar)
        self.loading = QLabel("Loading the review queue…")
        self.loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.done_view = DoneView()
        self.done_view.reloadRequested.connect(self.reload_queue)
        self.done_view.undo_button.clicked.connect(self.undo)
        self.stack = QStackedWidget()
        for widget in (review, self.loading, self.done_view):
            self.stack.addWidget(widget)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.addLayout(top)
        outer.addWidget(self.stack, 1)
        self._review_widget = review
        settings_store = self.services.settings.store
        matches_on = str(settings_store.value("review/show_matches", "true")).lower() == "true"
        self.actions_by_key["toggle_matches"].setChecked(matches_on)
        self.pair.set_matches_visible(matches_on)

    def _show_state(self, state: str) -> None:
        widget = {"review": self._review_widget, "loading": self.loading,
                  "done": self.done_view}[state]
        self.stack.setCurrentWidget(widget)
        deciding = state == "review"
        for key in ("confirm", "reject", "new_individual", "unsure", "flag", "unidentifiable",
                    "compare",
                    "next_candidate", "previous_candidate", "next_photo", "previous_photo",
                    "next_candidate_photo", "previous_candidate_photo", "edit_boxes"):
            self.actions_by_key[key].setEnabled(deciding)

    def use_window_actions(self, actions: dict[str, QAction]) -> None:
        """Use the window's actions (Edit > Undo / Redo) instead of the page's own.

        The page's own ones are dropped, so one action serves Ctrl+Z on every page; the bar's
        buttons trigger the window's action from now on.
        """
        for spec in ACTIONS:
            shared = actions.get(spec.key)
            if shared is None or not spec.window_action:
                continue
            own = self.actions_by_key[spec.key]
            if own is shared:
                continue
            if spec.button:
                self.action_bar.button(spec.key).bind(shared)
            if spec.key not in self._window_actions:
                self.removeAction(own)
                own.setParent(None)
                own.deleteLater()
            self.actions_by_key[spec.key] = shared
            self._window_actions.add(spec.key)
        self._update_undo_actions()

    def menu_sections(self) -> list[list[QAction]]:
        """The page's actions for the window's Review menu, in sections (undo/redo are in Edit)."""
        return [[self.actions_by_key[spec.key] for spec in ACTIONS
                 if spec.menu == section and spec.key not in self._window_actions]
                for section in MENU_SECTIONS]

    def state(self) -> str:
        """'review', 'loading' or 'done' (tests and the shell's status bar read it)."""
        current = self.stack.currentWidget()
        return "review" if current is self._review_widget else \
            "loading" if current is self.loading else "done"

    # ------------------------------------------------------------------ queue
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        order = self.services.settings.review_order
        self.order_box.blockSignals(True)
        self.order_box.setCurrentIndex(max(0, self.order_box.findData(order)))
        self.order_box.blockSignals(False)
        if self._queue_dirty:
            self.reload_queue()
        self.setFocus()

    def reload_queue(self) -> None:
        """Read the queue again in the background (keeps the current encounter if still there)."""
        self._queue_dirty = False
        self._queue_token = self.prefetch.request_queue(self.services.settings.review_order)

    def _order_chosen(self, _row: int) -> None:
        self.services.settings.review_order = self.order_box.currentData()
        self._resort = True
        self.reload_queue()

    def is_loading(self) -> bool:
        """True while the queue or the shown encounter is still being read (tests wait)."""
        current = self.current_encounter_id()
        return (not self.prefetch.is_idle() or self._queue_dirty
                or (current is not None and self.prefetch.bundle(current) is None))

    def _on_queue(self, token: int, ids: list[str], waiting: dict[str, int], error: str) -> None:
        if token != self._queue_token:
            return  # an older request; a newer answer (after later decisions) is coming
        if error:
            self.prompts.error(error)
        current = self.current_encounter_id()
        self._waiting_counts = waiting
        returned = [e for e in ids if e in self._touched and e not in self.queue]
        self.queue = list(ids) if self._resort else steady_queue(self.queue, ids)
        self._resort = False
        if self._pinned is not None and self._pinned == current and current not in self.queue:
            self.queue.insert(min(self.index, len(self.queue)), current)
        if returned:  # undo brought back encounters decided here: show the first of them
            self.index = self.queue.index(returned[0])
        elif current in self.queue:
            self.index = self.queue.index(current)
        self.index = min(self.index, max(0, len(self.queue) - 1))
        self._show_current()

    def current_encounter_id(self) -> str | None:
        return self.queue[self.index] if 0 <= self.index < len(self.queue) else None

    def open_encounter(self, encounter_id: str) -> None:
        """Show ``encounter_id`` (from another page), even if it is not in the queue."""
        if encounter_id not in self.queue:
            self.queue.insert(min(self.index, len(self.queue)), encounter_id)
        self.index = self.queue.index(encounter_id)
        self._pinned = encounter_id
        self._show_current()

    def _show_current(self) -> None:
        encounter_id = self.current_encounter_id()
        self._update_position()
        if encounter_id is None:
            self._bundle = None
            self.done_view.show_counts(self.tally, self._waiting_counts)
            self._show_state("done")
            return
        bundle = self.prefetch.bundle(encounter_id)
        if bundle is None:
            self.prefetch.request_bundle(encounter_id, urgent=True)
            if self._bundle is None or self._bundle.encounter_id != encounter_id:
                self._clear_display("Loading…")
        else:
            self._display(bundle)
        for ahead in self.queue[self.index + 1:self.index + 1 + _PREFETCH_AHEAD]:
            self.prefetch.request_bundle(ahead)
        self._refresh_timer.start()

    def _refresh_upcoming(self) -> None:
        """Ask for fresh candidates for the encounter shown and the next few (Services decides
        whether any are out of date)."""
        if self.isVisible() and self.queue:
            self.services.refresh_matches(self.queue[self.index:self.index + _REFRESH_AHEAD])

    def _update_position(self) -> None:
        n = len(self.queue)
        self.position.setText(f"<b>Encounter {self.index + 1} of {n}</b> to review" if n
                              else "<b>Nothing to review</b>")

    def _on_bundle(self, encounter_id: str) -> None:
        bundle = self.prefetch.bundle(encounter_id)
        if bundle is None:
            return
        if encounter_id == self.current_encounter_id():
            self._display(bundle)
        elif encounter_id in self.queue and bundle.detail is not None:
            if bundle.detail.annotations:  # warm the photo cache for the next encounters
                self.prefetch.request_image(bundle.detail.annotations[0].photo_path)
            if bundle.candidates and bundle.candidates[0].best_annotation is not None:
                self.prefetch.request_image(bundle.candidates[0].best_annotation.photo_path)

    # ------------------------------------------------------------------ display
    def _clear_display(self, message: str) -> None:
        self._show_state("review")
        self._bundle = None
        self.query_header.clear(message)
        self.candidate_header.clear("")
        self.banner.hide()
        self.burst_banner.hide()
        self.strip.set_candidates([])
        for view in (self.pair.left, self.pair.right):
            view.set_placeholder(message)
            view.set_box(None)
            view.setProperty("shown", None)
        self.pair.set_matches(None)
        self._waiting.clear()
        for key in ("confirm", "reject", "new_individual", "unsure", "flag", "unidentifiable",
                    "compare"):
            self.actions_by_key[key].setEnabled(False)

    def _display(self, bundle: ReviewBundle) -> None:
        self._show_state("review")
        if bundle.detail is None:
            self._clear_display(bundle.error or "This encounter cannot be shown")
            self.actions_by_key["unsure"].setEnabled(True)
            return
        previous = self._bundle
        same = previous is not None and previous.encounter_id == bundle.encounter_id
        # the candidate the reviewer moved to stays selected when the encounter is read again;
        # on the first one (not a choice) the new first is shown: matched again after a
        # decision, the animal just named may have come first
        keep = self.current_candidate().individual_id if same and self.current_candidate() \
            and self.strip.current() > 0 else None
        self._bundle = bundle
        if not same:
            self._photo_index = 0
        detail = bundle.detail
        rows = [c.individual_id for c in bundle.candidates]
        row = rows.index(keep) if keep in rows else (min(self.strip.current(), len(rows) - 1)
                                                      if same and self.strip.current() >= 0 else 0)
        if not same and bundle.candidates:  # start on the photo the best candidate matched
            wanted = bundle.candidates[0].query_annotation_id
            ids = [a.id for a in detail.annotations]
            self._photo_index = ids.index(wanted) if wanted in ids else 0
        self._photo_index = min(self._photo_index, max(0, len(detail.annotations) - 1))
        self.banner.show_for(detail.likely_new, len(bundle.candidates), detail.best_score,
                             bool(detail.species) or any(a.species for a in detail.annotations),
                             detail.threshold, bundle.knows_individuals)
        self.burst_banner.show_for(different_animals(bundle.candidates, detail.threshold),
                                   [a.id for a in detail.annotations])
        self._show_query_photo()
        self.strip.set_candidates(bundle.candidates, max(0, row), detail.threshold)
        if not bundle.candidates:
            self._on_candidate(-1)

    def _show_query_photo(self) -> None:
        detail = self._bundle.detail if self._bundle else None
        if detail is None:
            return
        self.query_header.show_encounter(detail, self._photo_index)
        info = detail.annotations[self._photo_index] if detail.annotations else None
        self._show_photo(self.pair.left, info)
        self._update_matches()

    def _show_photo(self, view: ImageView, info: Any) -> None:
        """Put ``info``'s photo in ``view`` from the cache, or 'Loading…' and ask for it."""
        if info is None:
            self._waiting.pop(view, None)
            view.set_placeholder("No photo")
            view.set_box(None)
            view.setProperty("shown", None)
            return
        path = str(info.photo_path)
        size = (info.photo_width, info.photo_height)
        loaded = self.prefetch.image(path)
        shown = view.property("shown")
        if loaded is None:
            self._waiting[view] = path
            if shown != ("loading", path):
                view.set_placeholder("Loading…", size)
                view.setProperty("shown", ("loading", path))
            self.prefetch.request_image(path, urgent=True)
        else:
            self._waiting.pop(view, None)
            if shown != ("done", path):
                if loaded.image is None:
                    view.set_placeholder(f"This photo cannot be shown.\n{loaded.error}", size)
                else:
                    view.set_image(loaded.image, size)
                view.setProperty("shown", ("done", path))
        view.set_box(None if info.full_frame else info.box)

    def _on_image(self, path: str, _max_side: int) -> None:
        for view, wanted in list(self._waiting.items()):
            if wanted == path:
                if view is self.pair.left:
                    self._show_query_photo()
                else:
                    self._on_candidate(self.strip.current())

    def current_candidate(self) -> Any:
        """The selected CandidateView, or None."""
        row = self.strip.current()
        candidates = self._bundle.candidates if self._bundle else []
        return candidates[row] if 0 <= row < len(candidates) else None

    def _on_candidate(self, row: int) -> None:
        candidate = self.current_candidate() if row >= 0 else None
        if candidate is None:
            self.candidate_header.clear(
                ("No candidate: this animal matches no known individual."
                 if self._bundle.knows_individuals else "No candidate: no animal is named yet.")
                if self._bundle else "")
            self._show_photo(self.pair.right, None)
            self.pair.right.set_placeholder("No candidate")
        else:
            shown = self._candidate_photo(candidate)
            query_photo = next((a for a in self._bundle.detail.annotations
                                if a.id == candidate.query_annotation_id), None)
            self.candidate_header.show_candidate(candidate, len(self._bundle.candidates), shown,
                                                 query_photo)
            self._show_photo(self.pair.right, shown)
            following = self._bundle.candidates[row + 1:row + 2]
            for other in following:
                if other.best_annotation is not None:
                    self.prefetch.request_image(other.best_annotation.photo_path)
        has = candidate is not None
        self.actions_by_key["confirm"].setEnabled(has)
        self.actions_by_key["reject"].setEnabled(has)
        for key in ("new_individual", "unsure", "flag", "unidentifiable", "compare"):
            self.actions_by_key[key].setEnabled(self._bundle is not None)
        self._update_matches()

    def _candidate_photo(self, candidate: Any) -> Any:
        """The candidate individual's photo to show: its best matching one unless the reviewer
        stepped to another; asks for the individual's photos the first time it is shown."""
        shown = (self._bundle.encounter_id, candidate.individual_id)
        if shown != self._candidate_shown:  # another candidate or encounter: back to the best
            self._candidate_shown, self._candidate_photo_index = shown, 0
        photos = self._stepped_photos(candidate)
        if photos is None and (self._candidate_token is None
                               or self._candidate_token[1] != candidate.individual_id):
            catalog, individual = self.services.catalog, candidate.individual_id
            token = self.prefetch.request_result(
                "candidate_photos", lambda: queries.individual_photos(catalog, individual))
            self._candidate_token = (token, individual)
        self.candidate_header.show_photo_position(self._candidate_photo_index,
                                                  len(photos) if photos else None)
        if photos and 0 < self._candidate_photo_index < len(photos):
            return photos[self._candidate_photo_index]
        return candidate.best_annotation

    def _stepped_photos(self, candidate: Any) -> list[Any] | None:
        """The photos ``,`` and ``.`` step through for ``candidate``: its individual's, read
        once per individual, put in order for this encounter's best match
        (:func:`~wildid.review.queries.matched_first`); ordered when read, another encounter's
        best match kept the front and this one's came round twice."""
        photos = self._candidate_photos.get(candidate.individual_id)
        best = candidate.best_annotation
        return photos if photos is None or best is None else queries.matched_first(photos, best)

    def _on_candidate_photos(self, name: str, token: int, value: Any, error: str) -> None:
        if name != "candidate_photos" or self._candidate_token is None \
                or token != self._candidate_token[0]:
            return
        individual = self._candidate_token[1]
        self._candidate_token = None
        if error:
            log.warning("reading the photos of candidate %s failed: %s", individual, error)
            return
        self._candidate_photos[individual] = value
        candidate = self.current_candidate()
        if candidate is not None and candidate.individual_id == individual:
            self._on_candidate(self.strip.current())

    def step_candidate_photo(self, delta: int) -> None:
        """Show the candidate individual's next (+1) or previous (-1) photo."""
        candidate = self.current_candidate()
        photos = self._stepped_photos(candidate) if candidate else None
        new = self._candidate_photo_index + delta
        if photos and 0 <= new < len(photos):
            self._candidate_photo_index = new
            self._on_candidate(self.strip.current())

    def next_candidate_photo(self) -> None:
        self.step_candidate_photo(1)

    def previous_candidate_photo(self) -> None:
        self.step_candidate_photo(-1)

    def _candidate_double_clicked(self, index: Any) -> None:
        candidates = self.strip.candidates()
        if 0 <= index.row() < len(candidates):
            self.open_individual_requested.emit(candidates[index.row()].individual_id)

    def _update_matches(self) -> None:
        candidate = self.current_candidate()
        detail = self._bundle.detail if self._bundle else None
        shown = detail.annotations[self._photo_index] if detail and detail.annotations else None
        if (candidate is None or shown is None or candidate.query_annotation_id != shown.id
                or self._candidate_photo_index != 0  # another of its photos: not matched
                or not self.pair.left.has_image() or not self.pair.right.has_image()):
            self.pair.set_matches(None)
        else:
            self.pair.set_matches(candidate.inliers)

    # ------------------------------------------------------------------ catalog changes
    def _on_data_changed(self, changes: Any) -> None:
        """Something changed the catalog (this page, undo, another page, a job)."""
        for encounter_id in getattr(changes, "encounters", ()):
            self.prefetch.invalidate(encounter_id)
        if getattr(changes, "individuals", ()):  # names, sightings and photos of candidates
            self._candidate_photos.clear()
            near = self.queue[max(0, self.index - 1):self.index + 1 + _PREFETCH_AHEAD]
            self.prefetch.refresh_bundles(set(near))
        current = self.current_encounter_id()
        if current is not None and self.prefetch.bundle(current) is None:
            self.prefetch.request_bundle(current, urgent=True)
        if self.isVisible():
            self.reload_queue()
        else:
            self._queue_dirty = True

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.prefetch.shutdown()
        super().closeEvent(event)
