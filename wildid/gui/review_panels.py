"""Display-only parts of the review page: the two metadata headers, the banner, the done view.

They hold no state beyond what they were last given, so the page can redraw them from a
``ReviewBundle`` at any time.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from wildid.catalog.types import utcnow
from wildid.gui.formatting import (
    fmt_coords,
    fmt_date,
    fmt_datetime,
    fmt_days_apart,
    fmt_km,
    fmt_percent,
    plural,
)
from wildid.ingest.clock import FUTURE, doubtful
from wildid.review.burst_check import PhotoMatch
from wildid.review.details import haversine_km

__all__ = ["CHECKED_STYLE", "CandidateHeader", "DoneView", "MixedBurstBanner",
           "NewIndividualBanner", "QueryHeader"]

# The app stylesheet gives push buttons a flat background, which hides the checked state of
# toggle buttons (Matches, Link zoom, viewpoints); pages that have some add this.
CHECKED_STYLE = ("QPushButton:checked { background: #d3e9dc; border: 1px solid #2f7d5b; "
                 "color: #1d5840; }")


def _label() -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


class _SteppingHeader(QWidget):
    """Facts about one side's photo, and ◀ counter ▶ to step through that side's photos."""

    photoStep = Signal(int)  # -1 previous photo, +1 next

    def __init__(self, name: str, tips: tuple[str, str], button_width: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info = _label()
        self.info.setObjectName(name)
        self.prev_button = QPushButton("◀")
        self.next_button = QPushButton("▶")
        for button, tip in zip((self.prev_button, self.next_button), tips, strict=True):
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setFixedWidth(button_width)
        self.counter = QLabel()
        self.prev_button.clicked.connect(lambda: self.photoStep.emit(-1))
        self.next_button.clicked.connect(lambda: self.photoStep.emit(1))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.info, 1)
        for widget in (self.prev_button, self.counter, self.next_button):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignTop)

    def clear(self, message: str = "") -> None:
        self.info.setText(escape(message))
        self.info.setToolTip("")
        self.counter.setText("")
        self.prev_button.setEnabled(False)
        self.next_button.setEnabled(False)


class QueryHeader(_SteppingHeader):
    """Above the query photo: when, where, who, and which photo of the burst is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("queryInfo", ("Previous photo of this encounter ([)",
                                       "Next photo of this encounter (])"), 40, parent)

    def show_encounter(self, detail: Any, photo_index: int) -> None:
        n = len(detail.annotations)
        where = fmt_coords(detail.gps_lat, detail.gps_lon)
        when = escape(fmt_datetime(detail.taken_utc))
        doubt = doubtful(detail.taken_utc, utcnow())
        if doubt is not None:  # a camera's clock that was wrong: Encounters → Correct time…
            when = (f'<span style="color:#a15c00">{when} (camera clock wrong? '
                    f'{"in the future" if doubt == FUTURE else "a factory date"})</span>')
        parts = [f"<b>New sighting</b> · {when}", escape(where)]
        who = [escape(detail.observer)] if detail.observer else []
        if detail.species:
            who.append(f"<i>{escape(detail.species)}</i>")
        if who:
            parts.append(" · ".join(who))
        shown = detail.annotations[photo_index] if 0 <= photo_index < n else None
        if shown is not None:  # the file the reviewer's notes and the card name
            parts.append(escape(shown.file_name))
        self.info.setText("<br>".join([parts[0], " · ".join(parts[1:])]))
        self.info.setToolTip(escape(shown.original_path or str(shown.photo_path))
                             if shown is not None else "")
        self.counter.setText(f"Photo {photo_index + 1} of {n}" if n else "No photo")
        self.prev_button.setEnabled(photo_index > 0)
        self.next_button.setEnabled(photo_index < n - 1)


class CandidateHeader(_SteppingHeader):
    """Above the candidate photo: who it is, how likely, when and how far it was last seen,
    and which of the individual's photos is shown (the best matching one first)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        # narrow buttons and a "2 / 7" counter: the facts need most of this half of the page
        super().__init__("candidateInfo", ("Previous photo of this individual (,)",
                                           "Next photo of this individual (.)"), 32, parent)
        for button in (self.prev_button, self.next_button):
            button.setStyleSheet("padding-left: 0; padding-right: 0;")  # the app's is wider
            button.setEnabled(False)

    def show_photo_position(self, index: int, n: int | None) -> None:
        """Photo ``index`` of the individual's ``n`` (None while they are still being read)."""
        self.counter.setText(f"{index + 1} / {n}" if n else "1 / …")
        self.counter.setToolTip(f"Photo {index + 1} of this individual's {n}" if n else "")
        self.prev_button.setEnabled(bool(n) and index > 0)
        self.next_button.setEnabled(bool(n) and index < (n or 0) - 1)

    def show_candidate(self, candidate: Any, total: int, shown: Any = None,
                       query_photo: Any = None) -> None:
        """``shown``: the individual's photo on screen when it is not the best matching one
        (the header then names it, and the matched points, which belong to the best one, are
        not counted). ``query_photo``: the sighting's photo it is compared with; when the two
        were taken minutes apart the header says that their background can match too."""
        name = escape(candidate.name)
        species = f" · <i>{escape(candidate.species)}</i>" if candidate.species else ""
        # how many keypoint pairs agree on one transform: the evidence drawn between the photos
        best = candidate.best_annotation
        on_best = shown is None or best is None or shown.id == best.id
        matched = len(candidate.inliers) if candidate.inliers is not None and on_best else 0
        points = f" · {plural(matched, 'matched point')}" if matched else ""
        place = (f"compared on request, ranks {candidate.rank + 1} of all"
                 if getattr(candidate, "asked", False)
                 else f"candidate {candidate.rank + 1} of {total}")
        first = (f"<b>{name}</b>{species} · <b>{fmt_percent(candidate.score)}</b> likely"
                 f"{points} · {place}")
        seen = [plural(candidate.n_encounters, "sighting")]
        if candidate.last_seen is not None:
            seen.append(f"last seen {fmt_date(candidate.last_seen)}")
            if candidate.days_since_last_seen is not None:
                seen.append(fmt_days_apart(candidate.days_since_last_seen))
        if candidate.distance_km is not None:
            seen.append(f"{fmt_km(candidate.distance_km)} away")
        shown = best if shown is None else shown
        if shown is not None:  # which of the individual's photos is compared
            seen.append(shown.file_name)
        text = f"{first}<br>{escape(' · '.join(seen))}"
        apart = minutes_apart(query_photo, shown)
        if apart is not None:
            text += (f"<br><span style='color:#8a5a00'><b>Taken {fmt_minutes(apart)} "
                     "apart:</b> the same place's background can match as well as the "
                     "animal. Check where the matched points are.</span>")
        self.info.setText(text)
        self.info.setToolTip(escape(shown.original_path or str(shown.photo_path))
                             if shown is not None else "")


# photos of one place taken this close in time share their background (a herd photographed
# animal after animal): matched points on it are no evidence that the animal is the same. In the
# nyala database leave-one-out, a wrong candidate out-verified every right one for 197 of 283
# queries, and for 66 of them its photo's number was within ten of the query's (one outing)
SAME_SCENE_MINUTES = 30.0


def minutes_apart(a: Any, b: Any) -> float | None:
    """Minutes between two photos (AnnotationInfo) taken close enough to share a scene: within
    :data:`SAME_SCENE_MINUTES` of each other and, when both have a position, 1 km; else None."""
    if a is None or b is None or a.taken_utc is None or b.taken_utc is None:
        return None
    minutes = abs((a.taken_utc - b.taken_utc).total_seconds()) / 60.0
    if minutes > SAME_SCENE_MINUTES:
        return None
    if a.gps is not None and b.gps is not None and haversine_km(a.gps, b.gps) > 1.0:
        return None
    return minutes


def fmt_minutes(minutes: float) -> str:
    return "under a minute" if minutes < 1 else plural(round(minutes), "minute")


class NewIndividualBanner(QLabel):
    """A clear amber strip saying the animal is probably not in the catalog yet."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("likelyNewBanner")
        self.setWordWrap(True)
        self.setStyleSheet("QLabel#likelyNewBanner { background: #fff3cd; color: #664d03;"
                           " border: 1px solid #e0b400; border-radius: 4px; padding: 4px 8px;"
                           " font-weight: bold; }")
        self.hide()

    def show_for(self, likely_new: bool, n_candidates: int, best: float | None,
                 has_species: bool = True, threshold: float | None = None,
                 knows_individuals: bool = True) -> None:
        """``has_species``: whether the animal has a species; without one it is compared only
        with the individuals that have none, so an empty list says nothing about the others.
        ``threshold``: the one this encounter was judged by. It is named because it is not
        always the same: in a catalog of a handful of individuals it is raised for matches
        without verified markings (``Identifier.verdict_shift``), so a 50 % match can be
        "likely new" there and "likely known" in a larger catalog.
        ``knows_individuals``: whether the catalog has named any animal yet; on a first card
        there is nobody to resemble, which the strip says instead of "no known individual
        resembles this animal"."""
        if n_candidates == 0 and not knows_individuals:
            self.setText("New individual: no animal is named in this catalog yet, so there is "
                         "nobody to compare with. Press I to name this one; its later sightings "
                         "are then matched against it. S skips.")
        elif n_candidates == 0 and not has_species:
            self.setText("No candidate: this animal has no species, so it is compared only with "
                         "individuals that have none. If yours have a species, press E and give "
                         "its box that species; else press I to name it, or S to skip.")
        elif n_candidates == 0:
            self.setText("Likely a new individual: no known individual resembles this animal. "
                         "Press I to name it, or S to skip.")
        elif likely_new:
            under = ("" if threshold is None or best is None or best >= threshold
                     else f", under the {fmt_percent(threshold)} a match needs here")
            self.setText(f"Likely a new individual: the best match is only "
                         f"{fmt_percent(best)}{under}. Check the candidates, then press I "
                         "to name a new individual.")
        else:
            self.hide()
            return
        self.show()


class MixedBurstBanner(QFrame):
    """An amber strip saying the encounter's photos lead to different known animals
    (``review.burst_check.different_animals``): a herd photographed in one burst, which one
    confirmation would name as a single individual. Its button splits the burst by animal:
    ``split_requested`` carries, for each animal but the best matching one, the boxes of the
    photos that lead to it (each group becomes one encounter)."""

    split_requested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mixedBurstBanner")
        self.setStyleSheet("QFrame#mixedBurstBanner { background: #fff3cd; color: #664d03;"
                           " border: 1px solid #e0b400; border-radius: 4px; }"
                           " QFrame#mixedBurstBanner QLabel { color: #664d03; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.button = QPushButton("Split by animal")
        self.button.setToolTip("Give the photos of each other animal an encounter of their own "
                               "(undoable); they are matched again")
        self.button.clicked.connect(lambda: self.split_requested.emit(self.groups))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.groups: list[list[str]] = []
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def show_for(self, matches: list[PhotoMatch], photo_ids: list[str]) -> None:
        """``matches``: each photo's strongest likely candidate, best first (empty hides the
        strip); ``photo_ids``: the encounter's annotations in the order the query header
        counts them."""
        named = [(photo_ids.index(m.query_annotation_id) + 1, m) for m in matches
                 if m.query_annotation_id in photo_ids]
        if len({m.candidate.individual_id for _, m in named}) < 2:
            self.groups = []
            self.hide()
            return
        which = ", ".join(f"<b>{escape(m.candidate.name)}</b> through photo {i} "
                          f"({fmt_percent(m.candidate.score)})" for i, m in named)
        stays = named[0][1].candidate.individual_id
        groups: dict[str, list[str]] = {}
        for _, m in named:
            if m.candidate.individual_id != stays:
                groups.setdefault(m.candidate.individual_id, []).append(m.query_annotation_id)
        self.groups = list(groups.values())
        moved = [str(photo_ids.index(a) + 1) for g in self.groups for a in g]
        gives = (f"photo {moved[0]} an encounter of its own" if len(moved) == 1 else
                 f"photos {', '.join(moved[:-1])} and {moved[-1]} "
                 + ("an encounter of their own" if len(self.groups) == 1
                    else "encounters of their own, one per animal"))
        self.label.setText(
            f"<b>These photos match different animals:</b> {which}. If the burst shows more than "
            "one animal, split it before confirming (a confirmation names every photo as one "
            f"individual): <i>Split by animal</i> gives {gives}; or press E, select another "
            "animal's box and press O.")
        self.show()


class DoneView(QWidget):
    """Shown when nothing is left to review: what was done and what waits elsewhere."""

    reloadRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewDone")
        self.title = QLabel("All caught up!")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        self.title.setFont(font)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.reload_button = QPushButton("Check for new encounters")
        self.reload_button.clicked.connect(self.reloadRequested)
        self.undo_button = QPushButton("Undo the last decision")
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for widget in (self.title, self.summary):
            widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(widget)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.reload_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(2)

    def show_counts(self, session: Mapping[str, int], waiting: Mapping[str, int]) -> None:
        """``session``: decisions this session by verdict; ``waiting``: encounters by state."""
        done = sum(session.values())
        lines = ["No encounter is waiting for review."]
        if done:
            labels = {"match": "confirmed", "new_individual": "new individuals",
                      "no_match": "candidates rejected", "unsure": "skipped",
                      "flag": "flagged for a curator", "unidentifiable": "unidentifiable"}
            parts = [f"{n} {labels.get(verdict, verdict)}" for verdict, n in session.items() if n]
            lines.append(f"This session: {', '.join(parts)}.")
        extra = [f"{n} {state}" for state, n in waiting.items() if n]
        if extra:
            lines.append(f"In the catalog: {', '.join(extra)}.")
        self.summary.setText("<br>".join(escape(line) for line in lines))
