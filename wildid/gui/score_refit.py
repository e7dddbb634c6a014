"""Tools → Refit match scores: ``wildid calibrate`` from the app.

Why here too: the scores shown on the review screen are calibrated on the development photos
(and the threshold of "likely new" with them). After a few hundred confirmed decisions a
catalog's own photos say better what a score means for them, and a biologist who never opens
a terminal should be able to use that. The refit runs as a background job on the engine
already loaded; its report (per species: refitted or kept and why, the new threshold, whether
the chosen embedder joined the score) is shown when it ends, and the unreviewed encounters
are then matched again with the new scores.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal

from wildid.gui.jobs import Job
from wildid.gui.menu_tool import MenuTool
from wildid.gui.services import engine_function

QUESTION = (
    "Refit how match scores are computed from the matches confirmed in this catalog?\n\n"
    "Each species with enough confirmed sightings (6 individuals seen at least twice, 20 "
    "matching pairs) gets scores and a \u201clikely new\u201d threshold fitted on this "
    "catalog's photos, for this catalog; the others, and your other catalogs, keep theirs. "
    "For nyala and lion the shipped scores were fitted on hundreds of photos, and a refit on "
    "a few dozen individuals can be less reliable. "
    "It takes a few seconds to a few minutes, and the encounters still to review are then "
    "matched again. Tools \u2192 Use the shipped match scores goes back.")


RESET_QUESTION = ("Forget the match scores refitted on this catalog's decisions and use the "
                  "shipped ones again? (They are refitted whenever you ask again.)")


class ScoreRefit(MenuTool):
    """Asks, runs the refit in the background, reports, and has identification run again."""

    finished = Signal(object)  # the calibration report

    def start(self) -> Job | None:
        """Ask, then start the refit; None when the user declined, one is running already
        (its report will come), or there is no engine."""
        if self.busy:
            return None
        entry = engine_function("refit_scores")
        if entry is None:
            self.prompts.error("Match scores cannot be refitted: the identification engine is "
                               "not installed.")
            return None
        if not self.prompts.confirm("Refit match scores", QUESTION):
            return None
        catalog = self.services.catalog

        def work(progress: Any = None, cancel: Any = None) -> Any:
            return entry(catalog, progress, cancel)

        return self.run("Refitting match scores", work, writes=True,
                        failed="Refitting match scores failed")

    def reset(self) -> bool:
        """Go back to the shipped scores (after asking); True when a refit was removed."""
        entry = engine_function("reset_scores")
        if entry is None or self.busy:
            return False
        if not self.prompts.confirm("Use the shipped match scores", RESET_QUESTION):
            return False
        removed = bool(entry(self.services.catalog))
        self.prompts.inform("Match scores", "The shipped match scores are used again; the "
                            "encounters still to review are being matched again." if removed
                            else "The shipped match scores are already in use.")
        if removed:
            self.services.identify_new()
        return removed

    def _done(self, report: dict[str, Any]) -> None:
        from wildid.engine.calibrate import report_lines

        refitted = any(r.get("refitted") for r in report.get("profiles", {}).values())
        lines = report_lines(report) or ["No species has confirmed sightings yet."]
        after = ("The encounters still to review are being matched again with the new scores."
                 if refitted else "Nothing was changed: the shipped scores are still used.")
        self.prompts.inform("Match scores", "\n".join(lines) + "\n\n" + after)
        if refitted:
            self.services.identify_new()
        self.finished.emit(report)
