"""The review core: what a reviewer sees (queries) and does (undoable operations). No Qt.

::

    queries        read-only frozen views: encounter detail, ranked candidates, queue,
                   individuals, decision history, the flat encounters table
    operations     confirm / reject / name new / unsure / flag / unidentifiable / merge /
                   move / rename / update / unassign, each returning an applied Operation
    annotation_ops add / update / delete boxes, also undoable
    undo           UndoStack over applied operations
    history        what the append-only decisions and merge links mean now
    lookup         ids from what a person types (unique prefixes, names)
    burst_check    whether an encounter's photos lead to different known animals (a herd)
"""

from __future__ import annotations

from wildid.review.annotation_ops import (
    add_annotation,
    delete_annotation,
    separate_annotation,
    separate_annotations,
    set_encounter_species,
    update_annotation,
)
from wildid.review.changes import Changes
from wildid.review.history import rejected_pairs, resolve_individual_id
from wildid.review.lookup import find_encounter_id, find_individual_id
from wildid.review.operations import (
    confirm_match,
    flag_for_curator,
    mark_unidentifiable,
    mark_unsure,
    merge_individuals,
    move_encounter,
    new_individual,
    reject_candidate,
    remove_individual,
    rename_individual,
    unassign_encounter,
    update_individual,
)
from wildid.review.queries import (
    AnnotationInfo,
    CandidateView,
    DecisionRow,
    EncounterDetail,
    EncounterRow,
    IndividualDetail,
    IndividualSummary,
    candidates_for,
    decision_history,
    encounter_detail,
    encounter_rows,
    individual_detail,
    list_individuals,
    review_queue,
)
from wildid.review.undo import UndoStack
from wildid.review.undoable import Operation, OperationGroup

__all__ = [
    "AnnotationInfo",
    "CandidateView",
    "Changes",
    "DecisionRow",
    "EncounterDetail",
    "EncounterRow",
    "IndividualDetail",
    "IndividualSummary",
    "Operation",
    "OperationGroup",
    "UndoStack",
    "add_annotation",
    "candidates_for",
    "confirm_match",
    "decision_history",
    "delete_annotation",
    "encounter_detail",
    "encounter_rows",
    "find_encounter_id",
    "find_individual_id",
    "flag_for_curator",
    "individual_detail",
    "list_individuals",
    "mark_unidentifiable",
    "mark_unsure",
    "merge_individuals",
    "move_encounter",
    "new_individual",
    "reject_candidate",
    "rejected_pairs",
    "separate_annotation",
    "separate_annotations",
    "set_encounter_species",
    "remove_individual",
    "rename_individual",
    "resolve_individual_id",
    "review_queue",
    "unassign_encounter",
    "update_annotation",
    "update_individual",
]
