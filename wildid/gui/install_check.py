"""Help → Check installation…: ``wildid self-test`` from the app.

Why here too: a citizen scientist whose imports find nobody, or whose identification fails
after an update, has no terminal at hand; this runs the same offline test in the background
(generated photos in a throwaway catalog: the open one is not touched) and shows which step
failed and why, to fix or to send with a bug report.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal

from wildid.gui.jobs import Job
from wildid.gui.menu_tool import MenuTool

TITLE = "Installation check"


class InstallCheck(MenuTool):
    """Runs the self-test in the background and reports each step."""

    finished = Signal(object)  # the SelfTestReport

    def start(self) -> Job | None:
        """Start the check; None while one runs already (its report will come)."""
        if self.busy:
            return None

        def work(progress: Any = None, cancel: Any = None) -> Any:
            from wildid.selftest import run_self_test

            return run_self_test()

        # writes=False: its catalog is a throwaway one, so it runs beside an import
        return self.run("Checking the installation", work, writes=False,
                        failed="The installation check could not run")

    def _done(self, report: Any) -> None:
        verdict = ("wildid identifies animals on this computer." if report.ok else
                   "wildid cannot identify animals on this computer: see the step that failed "
                   "(Help \u2192 Open log folder has the details).")
        self.prompts.inform(TITLE, verdict + "\n\n" + "\n".join(report.lines()))
        self.finished.emit(report)
