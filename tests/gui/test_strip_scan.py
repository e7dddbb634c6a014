"""Tools → Find camera data strips in older photos: asks, runs in the background, reports, and
is one step on the undo stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gui.review_data import ScriptedPrompts
from tests.integration.animals import import_photos
from tests.integration.test_data_strips import HEIGHT, _trap_shot
from tests.integration.test_strip_rescan import (
    STRIP,
    _as_imported_before,
    _boxes,
    older_catalog,
)

JOB_TIMEOUT_MS = 60_000


def test_tools_menu_finds_the_strips_and_undo_takes_it_back(main_window: Any, services: Any,
                                                              qtbot: Any, tmp_path: Path) -> None:
    catalog = services.catalog
    import_photos(catalog, [_trap_shot(tmp_path, f"trap{i}", 11 + i, seed=i, minute=i)
                            for i in range(2)])
    _as_imported_before(catalog)
    whole = _boxes(catalog)
    assert all((y, h) == (0, HEIGHT + STRIP) for y, h, _ in whole.values())
    action = main_window.menu_actions.find_strips
    assert action.text().startswith("Find camera &data strips")

    main_window.prompts = ScriptedPrompts(confirms=[False, True])
    action.trigger()  # declined: nothing runs
    assert main_window.prompts.asked == ["Find camera data strips"]
    assert not services.jobs.active_jobs and _boxes(catalog) == whole

    with qtbot.waitSignal(main_window.strip_scan.finished, timeout=JOB_TIMEOUT_MS) as done:
        action.trigger()
    assert done.args[0].boxes_moved == 2
    title, text = main_window.prompts.informed[-1]
    assert title == "Camera data strips"
    assert text.startswith("Looked at 2 photos: 2 have a camera's data strip.")
    # identification is off in these tests, so the message says when they are matched again
    assert "matched again at the next identification" in text
    moved = _boxes(catalog)
    assert all(h < HEIGHT + STRIP * 0.1 and full for _y, h, full in moved.values())
    assert not main_window.prompts.errors

    undo = main_window.menu_actions.undo
    assert undo.isEnabled() and undo.text() == "&Undo Find data strips"
    undo.trigger()
    assert _boxes(catalog) == whole
    main_window.menu_actions.redo.trigger()
    assert _boxes(catalog) == moved


def test_opening_a_catalog_an_older_wildid_made_offers_the_scan_once(
        main_window: Any, qtbot: Any, tmp_path: Path) -> None:
    from wildid.catalog import open_catalog

    root = tmp_path / "older"
    older_catalog(root, [_trap_shot(tmp_path, "trap", 11, seed=1, minute=1)])
    open_catalog(root).close()  # upgraded first by a command-line command: the app still asks

    main_window.prompts = ScriptedPrompts(confirms=[True])
    assert main_window.open_catalog(root)
    qtbot.waitUntil(lambda: main_window.prompts.asked == ["Find camera data strips"],
                    timeout=5_000)
    qtbot.waitUntil(lambda: bool(main_window.prompts.informed), timeout=JOB_TIMEOUT_MS)
    assert main_window.prompts.informed[-1][1].startswith("Looked at 1 photo: 1 has")
    ((_y, h, full),) = _boxes(main_window.services.catalog).values()
    assert full and h < HEIGHT + STRIP * 0.1

    # asked once: opening it again asks nothing
    main_window.prompts = ScriptedPrompts()
    assert main_window.open_catalog(tmp_path / "other", create=True)
    assert main_window.open_catalog(root)
    qtbot.wait(50)
    assert main_window.prompts.asked == []


def test_a_declined_offer_is_not_made_again(main_window: Any, qtbot: Any,
                                            tmp_path: Path) -> None:
    root = tmp_path / "older"
    older_catalog(root, [_trap_shot(tmp_path, "trap", 11, seed=1, minute=1)])
    main_window.prompts = ScriptedPrompts(confirms=[False])
    assert main_window.open_catalog(root)
    qtbot.waitUntil(lambda: main_window.prompts.asked == ["Find camera data strips"],
                    timeout=5_000)
    assert not main_window.services.jobs.active_jobs
    assert main_window.open_catalog(tmp_path / "other", create=True)
    assert main_window.open_catalog(root)
    qtbot.wait(50)
    assert main_window.prompts.asked == ["Find camera data strips"]
