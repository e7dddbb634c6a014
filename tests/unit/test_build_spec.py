"""build.spec, read as PyInstaller reads it, with its build steps recorded instead of run.

Why: the app imports its pages, CLI command modules and the engine by name, which PyInstaller's
analysis cannot see. A build from the spec as it was opened with the Import page alone. Building
takes a minute and ~500 MB (``make package`` does it and runs the result); this checks in
milliseconds that the spec names every module the app imports by name.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class _Recorded:
    def __init__(self, kind: str, *args: Any, **kwargs: Any) -> None:
        self.kind, self.args, self.kwargs = kind, args, kwargs
        self.pure, self.scripts, self.binaries, self.datas = [], [], [], []


def _run_spec() -> dict[str, Any]:
    made: list[_Recorded] = []

    def step(kind: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> _Recorded:
            made.append(_Recorded(kind, *args, **kwargs))
            return made[-1]
        return record

    scope: dict[str, Any] = {"SPECPATH": str(REPO), "__file__": str(REPO / "build.spec"),
                             **{k: step(k) for k in ("Analysis", "PYZ", "EXE", "COLLECT")}}
    exec(compile((REPO / "build.spec").read_text(), "build.spec", "exec"), scope)
    scope["made"] = made
    return scope


def _of(made: list[_Recorded], kind: str) -> list[_Recorded]:
    return [m for m in made if m.kind == kind]


def _modules_imported_by_name() -> set[str]:
    """Module names the app passes to ``importlib.import_module`` as string constants, plus
    the page table's modules and the CLI's command modules."""
    from wildid.cli import COMMAND_MODULES
    from wildid.gui.pages import PAGES
    from wildid.gui.services import ENGINE_MODULE

    names = {p.module for p in PAGES} | set(COMMAND_MODULES) | {ENGINE_MODULE, "wildid.gui.app"}
    for path in (REPO / "wildid").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                names.add(node.args[0].value)
    return names


def test_every_module_the_app_imports_by_name_is_a_hidden_import() -> None:
    scope = _run_spec()
    (analysis,) = _of(scope["made"], "Analysis")
    hidden = set(analysis.kwargs["hiddenimports"])
    wanted = _modules_imported_by_name()
    assert {"wildid.gui.review_page", "wildid.gui.individuals_page",
            "wildid.gui.encounters_page", "wildid.engine"} <= wanted
    assert wanted <= hidden, sorted(wanted - hidden)
    # every module of the package, and no migration script (Alembic reads those as files)
    assert "wildid.matching.identifier" in hidden and "wildid" in hidden
    assert not any("migrations" in h for h in hidden)


def test_the_data_folders_exist_and_the_two_programs_share_one_folder() -> None:
    scope = _run_spec()
    made = scope["made"]
    (analysis,) = _of(made, "Analysis")
    sources = {Path(src).name for src, _ in analysis.kwargs["datas"]}
    assert {"models", "resources", "migrations", "defaults"} <= sources
    programs = {e.kwargs["name"]: e.kwargs["console"] for e in _of(made, "EXE")}
    # the CLI prints to a console; the windowed one is for shortcuts (no console window)
    assert programs == {"wildid": True, "wildid-gui": False}
    (collect,) = _of(made, "COLLECT")
    assert sum(isinstance(a, _Recorded) and a.kind == "EXE" for a in collect.args) == 2
