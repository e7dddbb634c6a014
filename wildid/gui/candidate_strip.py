"""The horizontal strip of ranked candidate individuals under the review photos.

Each card shows the candidate's best-matching photo, its name, a rank badge and the calibrated
probability as a percentage (a coloured bar and a number). Clicking a card or moving with the
keyboard selects it; the review page listens to :attr:`CandidateStrip.candidateSelected`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from wildid.gui.cards import Card, CardDelegate, CardModel
from wildid.gui.formatting import fmt_days_apart
from wildid.gui.prefetch import Prefetcher

__all__ = ["CandidateStrip", "candidate_card"]

CARD_SIZE = QSize(168, 164)
PICTURE_HEIGHT = 96


# what each raw score is, for the card's tooltip (the names are the calibration's sources)
RAW_SCORE_LABELS = {
    "lnbnn": "keypoint votes (LNBNN)",
    "sv": "verified keypoint weight",
    "inliers": "verified keypoint pairs",
    "texture": "pattern agreement once aligned",
    "lightglue": "learned matcher's confidence (LightGlue)",
    "colour": "colour similarity",
    "global": "embedding similarity",
}


def raw_score_line(key: str, value: float) -> str:
    """One tooltip line for a raw score: what it measures, its value, and its source name."""
    label = RAW_SCORE_LABELS.get(key)
    shown = f"{value:.0f}" if key == "inliers" else f"{value:.3g}"
    return f"{label}: {shown} ({key})" if label else f"{key}: {shown}"


def candidate_card(candidate: Any, threshold: float | None = None) -> Card:
    """A card for a ``wildid.review.queries.CandidateView``; ``threshold`` is the
    new-individual cut-off its identification used (the bar is red below it)."""
    best = candidate.best_annotation
    lines = [f"{candidate.n_encounters} sighting{'s' if candidate.n_encounters != 1 else ''}"]
    tooltip = [f"{candidate.name} — {candidate.score * 100:.1f} % likely the same individual"]
    if getattr(candidate, "asked", False):
        tooltip.append(f"Compared on request: ranks {candidate.rank + 1} of the individuals "
                       "compared")
    if candidate.days_since_last_seen is not None:
        # "last" dropped: the line has ~150 px, and "2 sightings · last 28 d ago" was cut short
        lines[0] += f" · {_days(candidate.days_since_last_seen)}"
        tooltip.append(f"Last seen {fmt_days_apart(candidate.days_since_last_seen)} "
                       "this sighting")
    if threshold is not None:
        side = "below" if candidate.score < threshold else "above"
        tooltip.append(f"{side} the new-individual threshold of {threshold * 100:.0f} %")
    if candidate.species:
        tooltip.append(f"Species: {candidate.species}")
    for key, value in sorted((candidate.raw_scores or {}).items()):
        if isinstance(value, int | float):
            tooltip.append(raw_score_line(key, float(value)))
    return Card(
        id=candidate.individual_id,
        title=candidate.name,
        lines=tuple(lines),
        thumb_path=best.thumb_path if best is not None else None,
        photo_path=best.photo_path if best is not None else None,
        score=float(candidate.score),
        threshold=threshold,
        # compared on request: its place among all, marked apart from the ranked ones
        badge=(f"asked · #{candidate.rank + 1}" if getattr(candidate, "asked", False)
               else f"#{candidate.rank + 1}"),
        tooltip="\n".join(tooltip),
        payload=candidate,
    )


def _days(days: float) -> str:
    days = abs(days)
    if days < 1:
        return "same day"
    if days < 60:
        return f"{days:.0f} d ago"
    if days < 730:
        return f"{days / 30.44:.0f} mo ago"
    return f"{days / 365.25:.1f} y ago"


class CandidateStrip(QListView):
    """Ranked candidates, left to right; one is always selected while any are shown."""

    candidateSelected = Signal(int)  # row; -1 when the strip became empty

    def __init__(self, prefetcher: Prefetcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("candidateStrip")
        self._model = CardModel(prefetcher, self)
        self.setModel(self._model)
        self.setItemDelegate(CardDelegate(CARD_SIZE, PICTURE_HEIGHT, self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(CARD_SIZE.height() + 26)  # room for the horizontal scroll bar
        # Page-level shortcuts own the arrow keys; clicks still select.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.selectionModel().currentChanged.connect(
            lambda current, _prev: self.candidateSelected.emit(current.row()))

    def set_candidates(self, candidates: list[Any], select: int = 0,
                       threshold: float | None = None) -> None:
        """Show ``candidates`` (ranked CandidateView) and select row ``select``; scores are
        coloured against ``threshold``, the new-individual cut-off, when it is known."""
        self._model.set_cards([candidate_card(c, threshold) for c in candidates])
        if candidates:
            self.select(min(max(0, select), len(candidates) - 1))
        else:
            self.candidateSelected.emit(-1)

    def candidates(self) -> list[Any]:
        return [card.payload for card in self._model.cards()]

    def count(self) -> int:
        return self._model.rowCount()

    def current(self) -> int:
        index = self.currentIndex()
        return index.row() if index.isValid() else -1

    def select(self, row: int) -> None:
        if not 0 <= row < self.count():
            return
        index = self._model.index(row)
        self.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.scrollTo(index)

    def step(self, delta: int) -> bool:
        """Select the next (``delta`` > 0) or previous candidate; False at either end."""
        row = self.current() + delta
        if not 0 <= row < self.count():
            return False
        self.select(row)
        return True
