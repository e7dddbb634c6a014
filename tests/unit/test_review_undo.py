"""UndoStack over real operations, operation groups, and the public API surface."""

from __future__ import annotations

import inspect

import pytest

import wildid.review as review
from tests.unit import test_review_support as b
from wildid.catalog.models import Encounter, Individual
from wildid.errors import ReviewError
from wildid.review import (
    OperationGroup,
    UndoStack,
    confirm_match,
    rename_individual,
    update_annotation,
)

R = "tester"


@pytest.fixture
def ids(catalog) -> dict[str, str]:
    with catalog.session() as s:
        stripe = b.individual(s, "Stripe")
        e1, e2 = b.encounter(s, b.t(1)), b.encounter(s, b.t(2))
        return {"stripe": stripe.id, "e1": e1.id, "e2": e2.id,
                "ann": b.first_annotation(s, e1).id}


def _name(catalog, ind: str) -> str:
    with catalog.session() as s:
        return s.get(Individual, ind).name


def test_undo_redo_labels_and_callback(catalog, ids) -> None:
    seen: list[tuple[str | None, str | None]] = []
    stack = UndoStack(catalog, on_change=lambda st: seen.append((st.undo_label, st.redo_label)))
    assert not stack.can_undo and not stack.can_redo and stack.undo_label is None
    stack.push(rename_individual(catalog, ids["stripe"], "A", R))
    stack.push(rename_individual(catalog, ids["stripe"], "B", R))
    assert stack.undo_label == "Rename A to B"
    changes = stack.undo()
    assert changes.individuals == {ids["stripe"]} and _name(catalog, ids["stripe"]) == "A"
    assert (stack.undo_label, stack.redo_label) == ("Rename Stripe to A", "Rename A to B")
    stack.redo()
    assert _name(catalog, ids["stripe"]) == "B" and not stack.can_redo
    assert seen == [("Rename Stripe to A", None), ("Rename A to B", None),
                    ("Rename Stripe to A", "Rename A to B"), ("Rename A to B", None)]
    with pytest.raises(ReviewError, match="nothing to redo"):
        stack.redo()


def test_push_after_undo_drops_the_redo_branch(catalog, ids) -> None:
    stack = UndoStack(catalog)
    stack.push(rename_individual(catalog, ids["stripe"], "A", R))
    stack.undo()
    stack.push(rename_individual(catalog, ids["stripe"], "C", R))
    assert not stack.can_redo and len(stack) == 1
    stack.undo()
    assert _name(catalog, ids["stripe"]) == "Stripe"
    with pytest.raises(ReviewError, match="nothing to undo"):
        stack.undo()


def test_limit_noop_and_clear(catalog, ids) -> None:
    stack = UndoStack(catalog, limit=2)
    for name in ("A", "B", "C"):
        stack.push(rename_individual(catalog, ids["stripe"], name, R))
    assert len(stack) == 2 and stack.undo_label == "Rename B to C"
    stack.push(update_annotation(catalog, ids["ann"], viewpoint="unknown"))  # changes nothing
    assert len(stack) == 2
    stack.undo()
    stack.undo()
    assert not stack.can_undo and _name(catalog, ids["stripe"]) == "A"
    stack.clear()
    assert len(stack) == 0 and not stack.can_redo
    with pytest.raises(ValueError):
        UndoStack(catalog, limit=0)


def test_failed_undo_leaves_the_stack_as_it_was(catalog, ids) -> None:
    stack = UndoStack(catalog)
    stack.push(rename_individual(catalog, ids["stripe"], "A", R))
    rename_individual(catalog, ids["stripe"], "Z", R)  # another window, not on this stack
    with pytest.raises(ReviewError, match="changed since"):
        stack.undo()
    assert stack.can_undo and not stack.can_redo and _name(catalog, ids["stripe"]) == "Z"


def test_group_undoes_a_batch_in_one_step(catalog, ids) -> None:
    group = OperationGroup("Confirm 2 encounters", [
        confirm_match(catalog, ids["e1"], ids["stripe"], R),
        confirm_match(catalog, ids["e2"], ids["stripe"], R)])
    assert group.changes.encounters == {ids["e1"], ids["e2"]}
    stack = UndoStack(catalog)
    stack.push(group)
    stack.undo()
    with catalog.session() as s:
        assert {s.get(Encounter, e).state for e in (ids["e1"], ids["e2"])} == {"unreviewed"}
    stack.redo()
    with catalog.session() as s:
        assert {s.get(Encounter, e).individual_id for e in (ids["e1"], ids["e2"])} == {ids["stripe"]}


def test_group_undo_is_all_or_nothing(catalog, ids) -> None:
    first = rename_individual(catalog, ids["stripe"], "A", R)
    second = confirm_match(catalog, ids["e1"], ids["stripe"], R)
    group = OperationGroup("Batch", [first, second])
    # The rename is changed elsewhere: undoing the batch reverts the confirm first, then fails
    # on the rename, and must roll the confirm's undo back too.
    rename_individual(catalog, ids["stripe"], "Elsewhere", R)
    decisions_before = b.decisions(catalog)
    with pytest.raises(ReviewError, match="changed since"):
        group.revert(catalog)
    with catalog.session() as s:
        enc = s.get(Encounter, ids["e1"])
        assert (enc.state, enc.individual_id) == ("confirmed", ids["stripe"])
    assert b.decisions(catalog) == decisions_before
    assert first.applied and second.applied and group.applied


def test_public_api_is_exactly_all() -> None:
    public = {n for n in dir(review) if not n.startswith("_") and n != "annotations"  # __future__
              and not inspect.ismodule(getattr(review, n))}
    assert set(review.__all__) == public
    contract = {"encounter_detail", "candidates_for", "review_queue", "list_individuals",
                "individual_detail", "decision_history", "encounter_rows", "rejected_pairs",
                "confirm_match", "reject_candidate", "new_individual", "mark_unsure",
                "flag_for_curator", "mark_unidentifiable", "merge_individuals", "move_encounter",
                "rename_individual", "update_individual", "unassign_encounter", "add_annotation",
                "update_annotation", "delete_annotation", "UndoStack", "Operation", "Changes",
                "AnnotationInfo", "EncounterDetail", "CandidateView", "IndividualSummary",
                "IndividualDetail", "DecisionRow", "EncounterRow"}
    assert contract <= set(review.__all__)
    from wildid.review import operations, queries

    # The contract names the modules too: each symbol is importable from where it says.
    for name in ("Operation", "Changes", "confirm_match", "merge_individuals"):
        assert hasattr(operations, name)
    for name in ("rejected_pairs", "encounter_rows", "EncounterRow", "CandidateView"):
        assert hasattr(queries, name)
