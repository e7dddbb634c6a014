"""What the review page does: move around the queue and decide, as a mixin of
:class:`~wildid.gui.review_page.ReviewPage` (which only deals with showing things).

Each decision applies one ``wildid.review.operations`` function to the current encounter (the
catalog is written at once, with the reviewer's name and the scores that were shown), pushes
the applied operation on the app's undo stack through ``services.push``, and moves the queue
on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from wildid.errors import WildIdError
from wildid.review import operations
from wildid.review.changes import Changes
from wildid.review.details import individual_names

if TYPE_CHECKING:
    from wildid.gui.review_page import ReviewPage

__all__ = ["ReviewDecisions"]


class ReviewDecisions:
    """Navigation, view toggles, and the decisions: confirm, reject, new individual, unsure,
    flag, unidentifiable, undo, redo, edit boxes; compare with an individual not among the
    candidates, and split a mixed burst by animal."""

    # ------------------------------------------------------------------ navigation
    def next_candidate(self: ReviewPage) -> None:
        self.strip.step(1)

    def previous_candidate(self: ReviewPage) -> None:
        self.strip.step(-1)

    def next_encounter(self: ReviewPage) -> None:
        if self.index < len(self.queue) - 1:
            self.index += 1
            self._show_current()

    def previous_encounter(self: ReviewPage) -> None:
        if self.index > 0:
            self.index -= 1
            self._show_current()

    def step_photo(self: ReviewPage, delta: int) -> None:
        detail = self._bundle.detail if self._bundle else None
        if detail is None:
            return
        new = self._photo_index + delta
        if 0 <= new < len(detail.annotations):
            self._photo_index = new
            self._show_query_photo()

    def next_photo(self: ReviewPage) -> None:
        self.step_photo(1)

    def previous_photo(self: ReviewPage) -> None:
        self.step_photo(-1)

    def toggle_matches(self: ReviewPage) -> None:
        on = self.actions_by_key["toggle_matches"].isChecked()
        self.pair.set_matches_visible(on)
        self.services.settings.store.setValue("review/show_matches", on)

    def sync_zoom(self: ReviewPage) -> None:
        self.pair.set_sync_zoom(self.actions_by_key["sync_zoom"].isChecked())

    # ------------------------------------------------------------------ decisions
    def _scores(self: ReviewPage, candidate: Any) -> dict[str, Any]:
        return {"score": candidate.score, "rank": candidate.rank, **candidate.raw_scores}

    def _decide(self: ReviewPage, verdict: str, run: Callable[[str], Any], advance: bool = True) -> bool:
        """Apply one operation on the current encounter, push it for undo, then move on."""
        encounter_id = self.current_encounter_id()
        if encounter_id is None or self._bundle is None:
            return False
        try:
            op = run(encounter_id)
        except WildIdError as exc:
            self.prompts.error(str(exc))
            return False
        self.tally[verdict] += 1
        self._touched.add(encounter_id)
        self._pinned = None
        if advance:  # the encounter left the unreviewed queue (or goes to its end)
            self.queue.remove(encounter_id)
            if verdict == "unsure":
                self.queue.append(encounter_id)
                if self.index >= len(self.queue) - 1:
                    self.index = 0
            self.index = min(self.index, max(0, len(self.queue) - 1))
        self.services.push(op)
        self._show_current()
        return True

    def confirm(self: ReviewPage) -> None:
        candidate = self.current_candidate()
        if candidate is None:
            return
        self._decide("match", lambda e: operations.confirm_match(
            self.services.catalog, e, candidate.individual_id, self.services.reviewer,
            scores=self._scores(candidate)))

    def reject(self: ReviewPage) -> None:
        candidate = self.current_candidate()
        bundle = self._bundle
        if candidate is None or bundle is None:
            return
        row = self.strip.current()
        remaining = [replace(c, rank=i) for i, c in enumerate(
            c for c in bundle.candidates if c.individual_id != candidate.individual_id)]
        if self._decide("no_match", lambda e: operations.reject_candidate(
                self.services.catalog, e, candidate.individual_id, self.services.reviewer,
                scores=self._scores(candidate)), advance=False):
            # Show the next candidate at once; the reload from the catalog confirms it.
            local = replace(bundle, candidates=remaining)
            self._bundle = None
            self._display(local)
            self.strip.select(min(row, len(remaining) - 1))

    def new_individual(self: ReviewPage) -> None:
        bundle = self._bundle
        if bundle is None or bundle.detail is None:
            return
        name = self.prompts.ask_text("New individual", "Name of the new individual:")
        if name is None or not name.strip():
            return
        self._decide("new_individual", lambda e: operations.new_individual(
            self.services.catalog, e, name.strip(), self.services.reviewer,
            species=bundle.detail.species))

    def unsure(self: ReviewPage) -> None:
        self._decide("unsure", lambda e: operations.mark_unsure(
            self.services.catalog, e, self.services.reviewer))

    def flag(self: ReviewPage) -> None:
        note = self.prompts.ask_text("Flag for curator", "What should the curator look at?")
        if note is None:
            return
        self._decide("flag", lambda e: operations.flag_for_curator(
            self.services.catalog, e, self.services.reviewer, note))

    def unidentifiable(self: ReviewPage) -> None:
        self._decide("unidentifiable", lambda e: operations.mark_unidentifiable(
            self.services.catalog, e, self.services.reviewer))

    def undo(self: ReviewPage) -> None:
        self._run_undo(self.services.undo)

    def _on_undone(self: ReviewPage, changes: Changes) -> None:
        """An undone decision returns its encounter to the reviewer, who is shown it where the
        queue's order puts it. One that never left the queue ("not sure" only sent it to the
        end) is taken out of the order on screen here, so the queue read after the undo places
        and shows it as it does an encounter an undone confirm brings back (before, it stayed
        last and another encounter stayed on screen)."""
        for encounter_id in changes.encounters:
            if encounter_id in self._touched and encounter_id in self.queue:
                position = self.queue.index(encounter_id)
                self.queue.remove(encounter_id)
                if position < self.index:
                    self.index -= 1

    def redo(self: ReviewPage) -> None:
        self._run_undo(self.services.redo)

    def _run_undo(self: ReviewPage, step: Callable[[], Changes | None]) -> None:
        try:
            step()
        except WildIdError as exc:
            self.prompts.error(str(exc))

    def _update_undo_actions(self: ReviewPage) -> None:
        stack = self.services.undo_stack
        self.done_view.undo_button.setEnabled(stack.can_undo)
        if "undo" not in self._window_actions:  # else the window keeps Edit > Undo in step
            undo = self.actions_by_key["undo"]
            undo.setEnabled(stack.can_undo)
            undo.setText(f"&Undo {stack.undo_label}" if stack.can_undo else "&Undo")
        if "redo" not in self._window_actions:
            redo = self.actions_by_key["redo"]
            redo.setEnabled(stack.can_redo)
            redo.setText(f"&Redo {stack.redo_label}" if stack.can_redo else "&Redo")

    def compare(self: ReviewPage) -> None:
        """*Compare with…* (C): the reviewer believes the animal is one the candidates do not
        show. The chosen individual's photos are compared with this sighting in the
        background (``wildid.engine.compare_with``), and it joins the strip as a card marked
        "asked", with its score, its rank among all and its matched points, selected so that
        Y confirms it. Not stored: reading the encounter again shows the ranked ones only."""
        from wildid.gui.individual_chooser import choose_individual
        from wildid.gui.services import engine_function

        bundle, encounter_id = self._bundle, self.current_encounter_id()
        if bundle is None or bundle.detail is None or encounter_id is None:
            return
        entry = engine_function("compare_with")
        if entry is None:
            self.prompts.error("Comparing needs the identification engine, which is not "
                               "installed.")
            return
        detail = bundle.detail
        species = detail.species or next((a.species for a in detail.annotations if a.species),
                                         None)
        chosen = self.prompts.choose("Compare with", lambda parent: choose_individual(
            self.services.catalog, parent, "Compare with",
            "Which individual do you believe this sighting is? Its photos are compared with "
            "this sighting's.", species=species, prefetch=self.prefetch))
        if not chosen:
            return
        shown = [c.individual_id for c in bundle.candidates]
        if chosen in shown:  # ranked already: show it
            self.strip.select(shown.index(chosen))
            return
        catalog = self.services.catalog

        def work(progress: Any = None, cancel: Any = None) -> Any:
            return entry(catalog, encounter_id, chosen)

        job = self.services.jobs.submit("Comparing", work, writes=True, report_errors=False)
        job.succeeded.connect(lambda view: self._compared(encounter_id, chosen, view))
        job.failed.connect(lambda exc: self.prompts.error(f"Comparing failed: {exc}"))
        self.compare_job = job

    def _compared(self: ReviewPage, encounter_id: str, individual_id: str, view: Any) -> None:
        if view is None:
            with self.services.catalog.session() as session:
                name = individual_names(session, [individual_id]).get(individual_id, "It")
            self.prompts.inform("Compare with", f"{name} has no photo this sighting can be "
                                "compared with (another species or flank, or none with "
                                "features yet).")
            return
        bundle = self._bundle
        if bundle is None or self.current_encounter_id() != encounter_id:
            return  # the reviewer moved on
        candidates = [c for c in bundle.candidates if c.individual_id != view.individual_id]
        self._display(replace(bundle, candidates=[*candidates, view]))
        self.strip.select(len(candidates))

    def split_burst(self: ReviewPage, groups: list[list[str]]) -> None:
        """The mixed-burst strip's *Split by animal*: each group of boxes (the photos that
        lead to one other animal) becomes an encounter of its own, as one undoable step; the
        burst and the new encounters are matched again at once. What the box editor's Own
        encounter does box by box, in one click."""
        from wildid.review.annotation_ops import separate_annotations
        from wildid.review.undoable import OperationGroup

        if not groups:
            return
        done = []
        try:
            for group in groups:
                done.append(separate_annotations(self.services.catalog, group,
                                                 self.services.reviewer))
        except WildIdError as exc:
            for op in reversed(done):  # all or nothing, as one step
                op.revert(self.services.catalog)
            self.prompts.error(str(exc))
            return
        photos = sum(len(g) for g in groups)
        step = OperationGroup(f"Split the burst by animal ({photos} photo"
                              f"{'' if photos == 1 else 's'} apart)", done)
        self.services.push(step)
        self.services.refresh_matches(list(step.changes.encounters), extract=True)

    def edit_boxes(self: ReviewPage) -> None:
        """Open the box editor on this encounter; boxes changed there reload the encounter."""
        from wildid.gui.annotation_editor import AnnotationDialog

        encounter_id = self.current_encounter_id()
        if encounter_id is None:
            return
        dialog = AnnotationDialog(self.services, encounter_id, self.prefetch, self)
        dialog.open()
        self.editor_dialog = dialog
