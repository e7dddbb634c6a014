"""Tools → Find camera data strips in older photos: ``wildid find-strips`` from the app.

Why: imports find a camera trap's printed bar of text and stop the automatic box at it, but
photos imported before wildid did that keep whole-photo boxes with the bar in them, and its
text matches between any two photos of that camera (:mod:`wildid.ingest.strip_rescan`). The
pass runs in the background; its change is one entry on the undo stack (Edit → Undo puts the
boxes back), and the moved boxes are then described and matched again.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal

from wildid.gui.jobs import Job
from wildid.gui.menu_tool import MenuTool
from wildid.ingest.strip_rescan import find_strips_in_catalog

QUESTION = (
    "Look for camera-trap data strips on the photos of this catalog?\n\n"
    "Many trail cameras print a bar of text (camera, date, time, temperature) along the top "
    "or bottom of every photo. Since this version of wildid an import finds it and keeps it "
    "out of the photo's box, because its text looks the same on every photo of that camera "
    "and made different animals match. Photos imported before are looked at now; boxes that "
    "were drawn by hand are left as they are. It takes about a second per hundred photos, "
    "and the photos whose boxes change are then matched again. Edit \u2192 Undo takes it back.")

# asked once, when the app opens a catalog upgraded from before revision 0007
OFFER = (
    "This catalog was made by an older version of wildid, which did not look for the bar of "
    "text that many trail cameras print along the top or bottom of their photos. Look for it "
    "on this catalog's photos now?\n\n"
    "Its text looks the same on every photo of one camera and can make different animals "
    "match; photos where it is found get boxes that leave it out. Boxes drawn by hand are "
    "left as they are. Later: Tools \u2192 Find camera data strips in older photos.")


def summary(report: Any, matching: bool = True) -> str:
    """What the pass found and did, for the message shown when it ends (``matching``: the
    photos whose boxes moved are being matched again now)."""
    n, found = report.scanned, report.with_strip
    lines = [f"Looked at {n} photo{'' if n == 1 else 's'}: "
             + (f"{found} {'has' if found == 1 else 'have'} a camera's data strip."
                if found else "none has a camera's data strip.")]
    if report.boxes_moved:
        k = report.boxes_moved
        again = ("those photos are being matched again." if matching else
                 "those photos are matched again at the next identification.")
        lines.append(f"{k} box{'' if k == 1 else 'es'} now leave{'s' if k == 1 else ''} the "
                     f"strip out; {again}")
    if report.drawn_boxes_kept:
        k = report.drawn_boxes_kept
        lines.append(f"{k} photo{'' if k == 1 else 's'} with a strip {'has' if k == 1 else 'have'}"
                     " boxes drawn by hand: they were left as they are (check in the box editor "
                     "that they leave the strip out).")
    if report.unreadable:
        k = len(report.unreadable)
        shown = "\n".join(f"  {photo}: {reason}" for photo, reason in report.unreadable[:10])
        more = f"\n  \u2026 and {k - 10} more" if k > 10 else ""
        lines.append(f"{k} photo{'' if k == 1 else 's'} could not be read and "
                     f"{'was' if k == 1 else 'were'} skipped:\n{shown}{more}")
    return "\n\n".join(lines)


class StripScan(MenuTool):
    """Asks, runs the pass in the background, records it for undo, reports, re-identifies."""

    finished = Signal(object)  # the StripRescanReport

    def start(self, question: str = QUESTION) -> Job | None:
        """Ask ``question``, then start the pass; None when declined or one is running."""
        if self.busy:
            return None
        if not self.prompts.confirm("Find camera data strips", question):
            return None
        catalog, reviewer = self.services.catalog, self.services.reviewer

        def work(progress: Any = None, cancel: Any = None) -> Any:
            return find_strips_in_catalog(catalog, progress, cancel, reviewer=reviewer)

        return self.run("Finding camera data strips", work, writes=True,
                        failed="Looking for camera data strips failed")

    def _done(self, report: Any) -> None:
        if report.status == "cancelled":
            self.prompts.inform("Camera data strips", "Stopped before the end: nothing was "
                                "changed.")
        else:
            if report.operation is not None:
                self.services.push(report.operation)
            # like identification after an import, it follows "identify automatically"
            matching = bool(report.boxes_moved) and self.services.settings.auto_identify
            self.prompts.inform("Camera data strips", summary(report, matching))
            if matching:
                self.services.identify_new()
        self.finished.emit(report)
