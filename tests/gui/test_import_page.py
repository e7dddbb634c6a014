"""The Import page end to end, on a real catalog and generated photos (bad files included)."""

from __future__ import annotations

import shutil
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from sqlalchemy import func, select

from tests.photofactory import make_all_bad, make_card
from wildid.catalog.models import Encounter, ImportBatch, Photo
from wildid.ingest import importer

JOB_TIMEOUT_MS = 60_000


def _drop(widget: Any, paths: list[Path]) -> tuple[bool, bool]:
    """Drag ``paths`` onto ``widget`` as a file manager would; returns (enter, drop) accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    # Qt's own signatures: a drag enters at a QPoint, a drop lands at a QPointF
    centre = widget.rect().center()
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), drop.isAccepted()


def _run(qtbot: Any, page: Any) -> Any:
    with qtbot.waitSignal(page.import_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(page.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.running, timeout=JOB_TIMEOUT_MS)
    return blocker.args[0]


@pytest.fixture
def messy_card(small_card: Path) -> Path:
    """The small card plus every kind of bad file and one copy of a photo (a duplicate)."""
    make_all_bad(small_card / "junk")
    first = sorted((small_card / "DCIM").rglob("*.JPG"))[0]
    shutil.copy(first, small_card / "junk" / "copy_of_first.jpg")
    return small_card


def test_drop_import_report_and_review(main_window: Any, services: Any, messy_card: Path,
                                       qtbot: Any) -> None:
    page = main_window.page("import")
    main_window.show_page("encounters")
    assert _drop(main_window, [messy_card]) == (True, True)
    assert main_window.nav.current_key() == "import"
    assert page.source_paths == [messy_card]
    assert page.import_button.isEnabled()

    progress: list[Any] = []
    job_seen: list[Any] = []
    services.jobs.job_added.connect(lambda job: (job_seen.append(job),
                                                 job.progressed.connect(progress.append)))
    report = _run(qtbot, page)

    assert report.status == "completed"
    assert report.imported == 13  # 12 card photos + the decodable one with garbage EXIF
    assert report.duplicates == 1
    skipped = dict(page.report_view.skipped_rows())
    names = {Path(p).name for p in skipped}
    assert {"truncated.jpg", "empty.jpg", "notes.jpg", "bomb.png", "gone.jpg"} <= names
    assert all(reason.strip() for reason in skipped.values())
    assert page.report_box.isVisible()
    summary = page.report_view.summary.text()
    assert "13 photos imported" in summary and "1 duplicate" in summary
    assert f"{len(report.skipped)} files skipped" in summary
    # Progress went through the GUI: the job reported several steps, ending at the total.
    assert job_seen and job_seen[0].title == "Import"
    stages = [p.stage for p in progress]
    assert "Importing" in stages and progress[-1].done == progress[-1].total
    # The sources that were imported are cleared; the catalog has the encounters.
    assert page.source_paths == []
    with services.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Photo)) == 13
        encounter_ids = set(s.scalars(select(Encounter.id)))
        assert s.scalar(select(ImportBatch.status)) == "completed"
    assert set(report.new_encounter_ids) == encounter_ids and encounter_ids

    button = page.report_view.review_button
    assert button.isEnabled()
    with qtbot.waitSignal(page.review_requested) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert set(blocker.args[0]) == encounter_ids
    if main_window.nav.available("review"):
        assert main_window.nav.current_key() == "review"


def test_second_import_reports_everything_as_duplicates(services: Any, small_card: Path,
                                                        qtbot: Any, settings: Any) -> None:
    from wildid.gui.import_page import ImportPage

    page = ImportPage(services)
    qtbot.addWidget(page)
    page.add_paths([small_card])
    first = _run(qtbot, page)
    page.add_paths([small_card, small_card])  # listed once
    assert page.sources.count() == 1
    second = _run(qtbot, page)
    assert (first.imported, second.imported, second.duplicates) == (12, 0, 12)
    assert not page.report_view.review_button.isEnabled()  # nothing new to review
    assert "0 photos imported" in page.report_view.summary.text()
    assert page.report_view.ignored.isHidden()  # the small card holds photos only


def test_report_names_the_files_it_passed_over(services: Any, small_card: Path, qtbot: Any,
                                               settings: Any) -> None:
    from wildid.gui.import_page import ImportPage

    raw_only = small_card.parent / "raw_only"
    raw_only.mkdir()
    for i in range(2):
        (raw_only / f"DSC_{i}.NEF").write_bytes(bytes(64))
    page = ImportPage(services)
    qtbot.addWidget(page)
    page.show()
    page.add_paths([raw_only])
    report = _run(qtbot, page)
    assert report.imported == 0 and report.ignored == {".nef": 2}
    view = page.report_view
    assert "No photos were found" in view.summary.text()
    assert view.ignored.isVisible()
    assert view.ignored.text().startswith("Not photos, left alone: 2 .nef (camera RAW)")
    assert "import the camera's JPEGs" in view.ignored.text()

    # the folder that holds the open catalog: the catalog is left out, and said
    page.clear_sources()
    page.add_paths([services.catalog.root])
    report = _run(qtbot, page)
    assert report.imported == 0 and report.catalogs == [str(services.catalog.root)]
    assert view.ignored.isVisible()
    assert view.ignored.text().startswith(
        f"Left alone: the wildid catalog in {services.catalog.root} (")


def test_options_are_used_and_remembered(services: Any, small_card: Path, qtbot: Any,
                                         settings: Any) -> None:
    from wildid.gui.import_page import ImportPage

    page = ImportPage(services)
    qtbot.addWidget(page)
    page.add_paths([small_card])
    page.observer.setText("Thandi")
    page.species.setText("Tragelaphus angasii")
    page.reference.setChecked(True)
    page.burst_gap.setValue(5)
    _run(qtbot, page)
    with services.catalog.session() as s:
        assert set(s.scalars(select(Encounter.observer))) == {"Thandi"}
        assert set(s.scalars(select(Encounter.species))) == {"Tragelaphus angasii"}
        assert set(s.scalars(select(Photo.stored_path))) == {None}  # referenced in place
    assert (settings.import_observer, settings.import_species) == ("Thandi", "Tragelaphus angasii")
    assert settings.import_reference_in_place is True and settings.import_burst_gap_s == 5
    again = ImportPage(services)
    qtbot.addWidget(again)
    assert again.observer.text() == "Thandi" and again.reference.isChecked()


def test_cancel_keeps_what_was_imported(services: Any, tmp_path: Path, qtbot: Any,
                                        monkeypatch: Any) -> None:
    from wildid.gui.import_page import ImportPage

    folder = tmp_path / "big"
    make_card(folder, 60, seed=5, width=160, height=120)
    real_prepare = importer._prepare

    def slow_prepare(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.03)  # a slow card reader, so Cancel lands mid-import
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(importer, "_prepare", slow_prepare)
    page = ImportPage(services)
    qtbot.addWidget(page)
    page.show()
    page.add_paths([folder])
    cancelled = False

    def cancel_early(progress: Any) -> None:
        nonlocal cancelled
        if progress.stage == "Importing" and progress.done >= 3 and not cancelled:
            cancelled = True
            qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)

    job = page.start_import()
    assert job is not None and page.cancel_button.isVisible()
    assert not page.import_button.isEnabled() and not page.observer.isEnabled()
    job.progressed.connect(cancel_early)
    with qtbot.waitSignal(page.import_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        pass
    report = blocker.args[0]
    assert cancelled and report.status == "cancelled"
    assert 0 < report.imported < 60
    assert "Import cancelled" in page.report_view.summary.text()
    assert page.source_paths == [folder]  # not imported fully: still listed to run again
    qtbot.waitUntil(lambda: page.import_button.isEnabled())
    with services.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Photo)) == report.imported
        assert s.scalar(select(func.count()).select_from(Encounter)) == len(report.new_encounter_ids)
        assert s.scalar(select(ImportBatch.status)) == "cancelled"


def test_identification_starts_after_import_when_the_engine_exists(
        services: Any, small_card: Path, qtbot: Any, settings: Any, monkeypatch: Any) -> None:
    from wildid.gui.import_page import ImportPage

    calls: list[tuple[Any, bool, bool]] = []
    engine = types.ModuleType("wildid.engine")

    def process_new(catalog: Any, progress: Any, cancel: Any) -> int:
        calls.append((catalog, callable(progress), cancel is not None))
        return 0

    engine.process_new = process_new  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wildid.engine", engine)
    settings.auto_identify = True
    page = ImportPage(services)
    qtbot.addWidget(page)
    page.add_paths([small_card])
    changed: list[Any] = []
    services.data_changed.connect(changed.append)
    report = _run(qtbot, page)
    qtbot.waitUntil(lambda: len(changed) == 2, timeout=JOB_TIMEOUT_MS)
    assert calls == [(services.catalog, True, True)]
    assert all(c.encounters == set(report.new_encounter_ids) for c in changed)


def test_the_report_says_what_identification_made_of_the_import(
        services: Any, small_card: Path, qtbot: Any, settings: Any) -> None:
    """With the real engine: once the background identification ends, the report of the import
    adds how many encounters were matched and how many look known or new."""
    from wildid.engine import forget
    from wildid.gui.import_page import ImportPage

    settings.auto_identify = True
    page = ImportPage(services)
    qtbot.addWidget(page)
    page.show()
    page.add_paths([small_card])
    shown: list[str] = []  # what the report says the moment the import ends
    page.import_finished.connect(lambda _r: shown.append(page.report_view.identified.text()))
    with qtbot.waitSignal(services.identification_finished, timeout=JOB_TIMEOUT_MS) as done:
        report = _run(qtbot, page)
    assert shown == ["Identifying the new encounters in the background…"]
    forget(services.catalog)
    n = len(report.new_encounter_ids)
    assert n > 0 and len(done.args[0].matched) == n
    assert page.report_view.identified.isVisible()
    # an empty catalog knows nobody: every encounter is likely new
    assert page.report_view.identified.text() == (
        f"Identification: {n} encounters matched, 0 likely known, {n} likely new.")


def test_identification_text_names_the_photos_that_failed() -> None:
    from wildid.engine.extraction import ExtractionReport
    from wildid.engine.identification import MatchReport
    from wildid.gui.import_report import MAX_REASONS, identification_text

    failed = [(f"ann{i}", f"IMG_{i}.jpg is truncated") for i in range(MAX_REASONS + 2)]
    report = MatchReport(extraction=ExtractionReport(processed=3, failed=failed[:1]),
                         matched=["a", "b", "c"], likely_new=["c"])
    assert identification_text(report) == (
        "Identification: 3 encounters matched, 2 likely known, 1 likely new. 1 photo could not "
        "be processed (matched without it):\n• IMG_0.jpg is truncated")
    report.extraction.failed = failed
    report.cancelled = True
    text = identification_text(report)
    assert "Stopped before the end" in text
    assert f"{MAX_REASONS + 2} photos could not be processed" in text
    assert text.count("\n• IMG_") == MAX_REASONS and text.endswith("• and 2 more (see the log)")
    # a faulty model fails every crop with one message: said once, with the photos it cost
    model = "model m gave an embedding that is not a number for this crop: …"
    report.extraction.failed = [*failed[:2], *((f"bad{i}", model) for i in range(40))]
    text = identification_text(report)
    assert "42 photos could not be processed" in text
    assert text.count(model) == 1 and f"\n• {model} (40 photos)" in text
    assert "\n• IMG_1.jpg is truncated" in text and "more (see the log)" not in text


def test_the_summary_says_when_the_species_came_from_the_catalog() -> None:
    from wildid.gui.import_report import summary_text
    from wildid.ingest.importer import ImportReport

    report = ImportReport("b", "completed", n_found=2, imported=2, new_encounter_ids=["e"],
                          seconds=1.0, species="nyala", species_inferred=True)
    assert summary_text(report).endswith(
        "; 1 new encounter. Species: nyala, the species of every individual in this catalog "
        "(none was given).")
    report.species_inferred = False  # asked for: nothing to point out
    assert "Species" not in summary_text(report)
    assert "strip" not in summary_text(report)
    report.with_data_strip = 2
    assert summary_text(report).endswith(
        "; 1 new encounter. A camera's data strip (its printed text) is left out of the boxes "
        "of 2 photos.")
    report.with_data_strip = 0
    report.doubtful_times = [("IMG_1.jpg", datetime(2000, 1, 1, tzinfo=UTC), "reset")]
    assert summary_text(report).endswith(
        "; 1 new encounter. 1 photo is dated 2000-01-01, a camera's factory date (IMG_1.jpg): "
        "the camera's clock was reset. Their times are kept as the camera wrote them; Correct "
        "time… on the Encounters page moves the selected encounters' times.")


def test_identification_is_skipped_quietly_without_the_engine(
        services: Any, small_card: Path, qtbot: Any, settings: Any, monkeypatch: Any,
        caplog: Any, dialogs: Any) -> None:
    from wildid.gui.import_page import ImportPage

    monkeypatch.setitem(sys.modules, "wildid.engine", None)  # import fails: module absent
    settings.auto_identify = True
    page = ImportPage(services)
    qtbot.addWidget(page)
    page.add_paths([small_card])
    with caplog.at_level("INFO", logger="wildid.gui.services"):
        _run(qtbot, page)
    assert services.identify_new(["x"]) is None
    assert "not identified automatically" in caplog.text
    assert services.jobs.active_jobs == [] and dialogs.shown == []


def test_add_folder_dialog_and_ctrl_i(main_window: Any, small_card: Path, dialogs: Any,
                                      settings: Any, qtbot: Any) -> None:
    page = main_window.page("import")
    main_window.show_page("encounters")
    dialogs.folders.append(str(small_card))
    main_window.activateWindow()
    qtbot.keyClick(main_window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert main_window.nav.current_key() == "import"
    assert page.source_paths == [small_card]
    assert settings.last_import_folder == str(small_card)
    photo = sorted(small_card.rglob("*.JPG"))[0]
    dialogs.files.append([str(photo)])
    qtbot.mouseClick(page.add_files_button, Qt.MouseButton.LeftButton)
    assert page.source_paths == [small_card, photo]
    page.sources.item(0).setSelected(True)
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert page.source_paths == [photo]


def test_drag_without_local_files_is_refused(main_window: Any) -> None:
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    QApplication.sendEvent(main_window, enter)
    assert not enter.isAccepted()


def test_the_species_field_offers_the_profiles_names_and_says_what_a_name_gets(
        services: Any, qtbot: Any) -> None:
    """Only names a species profile answers to reach it ("Nyala antelope" would get the generic
    profile): the field completes from them and the catalog's own species, and the line under
    it says, before importing, which profile a name gets and what an empty field means."""
    from wildid.catalog.models import Individual
    from wildid.gui.import_page import ImportPage

    with services.catalog.session() as s:
        for name in ("Ama", "Bo"):
            ind = Individual(name=name, species="Tragelaphus angasii")
            s.add(ind)
            s.flush()
            s.add(Encounter(individual_id=ind.id, species="nyala", state="confirmed"))
        s.add(Encounter(species="Equus quagga", state="unreviewed"))
    page = ImportPage(services)
    qtbot.addWidget(page)
    page.species.setText("")
    page.show()
    qtbot.waitExposed(page)
    offered = page.species_help.suggestions()
    assert {"nyala", "Tragelaphus angasii", "lion", "Panthera leo", "Equus quagga"} <= set(offered)
    assert offered.index("Panthera leo") < offered.index("Equus quagga")  # profiles first
    assert len([n for n in offered if n.lower() == "nyala"]) == 1  # each spelling once
    assert page.species_hint.text().startswith("Left empty: Tragelaphus angasii")

    completer = page.species.completer()
    completer.setCompletionPrefix("angas")
    assert completer.currentCompletion() == "Tragelaphus angasii"

    page.species.setText("panthera LEO")
    assert "lion profile" in page.species_hint.text()
    page.species.setText("Nyala antelope")
    assert "generic profile" in page.species_hint.text()
    page.species.setText("")
    assert page.species_hint.text().startswith("Left empty:")


def test_an_import_without_species_offers_the_one_its_photos_show(
        services: Any, qtbot: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """Lion photos imported with no species and no catalog species: the report says what
    they look like and offers to give them that species; pressed, the new encounters get it
    in one undoable step and are matched again. Nothing is set before it is pressed."""
    from tests.conftest import shared_dataset
    from wildid.gui.import_page import ImportPage

    manifest = shared_dataset("lion")
    card = tmp_path / "card"
    card.mkdir()
    for line in manifest.read_text(encoding="utf-8").splitlines()[1:]:
        path, _identity, split = line.split(",")
        if split.strip() == "query" and len(list(card.iterdir())) < 6:
            shutil.copy(manifest.parent / path, card / Path(path).name)
    page = ImportPage(services)
    qtbot.addWidget(page)
    page.species.setText("")
    assert page.species_hint.text() == ("Left empty: no species (no individual is known yet); "
                                        "the report suggests one when the photos clearly show "
                                        "lion or nyala.")
    page.add_paths([card])
    identified: list[frozenset[str]] = []
    monkeypatch.setattr(services, "identify_new",
                        lambda ids=(): identified.append(frozenset(ids)))
    report = _run(qtbot, page)
    assert report.species is None and report.species_suggested == "lion"
    view = page.report_view
    assert "look like lion" in view.summary.text()
    assert view.species_button.isVisibleTo(page) and "lion" in view.species_button.text()
    with services.catalog.session() as s:
        assert set(s.scalars(select(Encounter.species))) == {None}
    view.species_button.click()
    with services.catalog.session() as s:
        assert set(s.scalars(select(Encounter.species))) == {"lion"}
    assert identified[-1] == frozenset(report.new_encounter_ids)
    assert not view.species_button.isVisibleTo(page) and "Species lion given" in \
        view.summary.text()
    services.undo()
    with services.catalog.session() as s:
        assert set(s.scalars(select(Encounter.species))) == {None}
