"""Screenshots of every main view, at 1366x768 and at 2x scale: ``python -m tests.screenshots``.

1. A demo catalog is built from generated photos (``tests/photofactory.py``): five known nyala
   with two sightings each, new encounters (one a burst, one an animal never seen before), and a
   card with bad files to import live. Match results come from ``wildid.engine.process_new``
   when the engine is installed; otherwise plausible results are written directly, as the
   engine would (ranked candidates, calibrated scores, matched point pairs), and the log says so.
2. For each screen configuration the script runs itself under ``xvfb-run`` on a copy of that
   catalog, opens the real main window full-screen, imports the card through the Import page,
   and saves a PNG of each view into ``docs/screenshots/``.

``--catalog PATH --build-only`` only builds the demo catalog (to try the app by hand).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
SCREENS = (  # (suffix, Xvfb screen, QT_SCALE_FACTOR)
    ("1366x768", "1366x768x24", "1"),
    ("hidpi-2x", "2732x1536x24", "2"),
)
SITE = (-27.60, 32.21)  # Ndumo, KwaZulu-Natal
KNOWN = {"Amani": 1, "Baraka": 2, "Chui": 3, "Dalia": 4, "Eshe": 5}
SIZE = (1024, 768)
SPECIES = "Tragelaphus angasii"
REVIEWER = "Demo reviewer"

log = logging.getLogger("screenshots")


# ---------------------------------------------------------------- demo catalog ------------

def _shot(folder: Path, name: str, pattern: int | None, when: datetime, serial: str,
          seed: int, lat_offset: float) -> tuple[Path, tuple[int, int, int, int] | None]:
    from tests.photofactory import make_shot

    shot = make_shot(folder / f"{name}.jpg", *SIZE, seed=seed, taken=when, offset="+02:00",
                     gps=(SITE[0] + lat_offset, SITE[1] + lat_offset / 2, 60.0), serial=serial,
                     pattern_seed=pattern, warp=0.2, quality=88)
    return shot.path, shot.box


def _encounter_and_annotation(catalog: Any, path: Path) -> tuple[str, str]:
    from sqlalchemy import select

    from wildid.catalog.models import Annotation, Photo

    with catalog.session() as s:
        row = s.execute(select(Annotation.encounter_id, Annotation.id).join(Photo)
                        .where(Photo.original_path == str(path))).one()
        return row[0], row[1]


def _demo_results(catalog: Any, queries: dict[str, tuple[Path, Any, str | None]],
                  refs: dict[str, tuple[Path, Any]], individuals: dict[str, str]) -> None:
    """What the engine would write: ranked candidates with scores and matched point pairs."""
    import numpy as np

    from wildid.catalog.models import MatchCandidate, MatchSummary

    rng = np.random.default_rng(7)
    with catalog.session() as s:
        for path, box, truth in queries.values():
            encounter_id, annotation_id = _encounter_and_annotation(catalog, path)
            others = [n for n in KNOWN if n != truth]
            rng.shuffle(others)
            ranked = ([(truth, float(rng.uniform(0.78, 0.96)))] if truth else []) + [
                (name, float(rng.uniform(0.02, 0.3))) for name in others[:4]]
            ranked.sort(key=lambda item: -item[1])
            for rank, (name, score) in enumerate(ranked):
                ref_path, ref_box = refs[name]
                _, ref_annotation = _encounter_and_annotation(catalog, ref_path)
                n = 40 if name == truth else int(rng.integers(0, 6))
                rel = rng.uniform(0.1, 0.9, (n, 2))
                q = np.asarray(box[:2]) + rel * np.asarray(box[2:])
                c = np.asarray(ref_box[:2]) + rel * np.asarray(ref_box[2:])
                pairs = np.hstack([q, c]).astype(np.float32)
                s.add(MatchCandidate(encounter_id=encounter_id, rank=rank,
                                     individual_id=individuals[name], score=score,
                                     raw_scores={"global": round(score * 0.8, 3), "local": n},
                                     query_annotation_id=annotation_id,
                                     best_annotation_id=ref_annotation, inliers=pairs.tobytes(),
                                     engine="demo results (no engine installed)"))
            s.add(MatchSummary(encounter_id=encounter_id, best_score=ranked[0][1],
                               likely_new=truth is None, engine="demo results"))


def build_demo_catalog(root: Path, photos: Path) -> None:
    """Build the demo catalog at ``root`` from photos generated under ``photos``."""
    from tests.photofactory import make_all_bad, make_card
    from wildid.catalog import open_catalog
    from wildid.gui.services import engine_entry_point
    from wildid.ingest.importer import ImportOptions, run_import
    from wildid.review import operations

    start = datetime(2024, 3, 2, 6, 40)
    refs: dict[str, tuple[Path, Any]] = {}
    seconds: dict[str, tuple[Path, Any]] = {}
    for k, (name, pattern) in enumerate(KNOWN.items()):
        refs[name] = _shot(photos / "earlier", f"{name.lower()}_1", pattern,
                           start + timedelta(days=k, hours=k), f"R{k}", 100 + k, 0.01 * k)
        seconds[name] = _shot(photos / "earlier", f"{name.lower()}_2", pattern,
                              start + timedelta(days=12 + k, hours=2 * k), f"S{k}", 200 + k,
                              0.012 * k)
    later = start + timedelta(days=40)
    queries: dict[str, tuple[Path, Any, str | None]] = {}
    for i, (label, truth) in enumerate((("q1", "Chui"), ("q2", "Amani"), ("q3", None),
                                        ("q4", "Eshe"))):
        pattern = KNOWN[truth] if truth else 9
        path, box = _shot(photos / "latest", label, pattern, later + timedelta(hours=3 * i),
                          f"Q{i}", 300 + i, 0.02 * i)
        queries[label] = (path, box, truth)
        if i == 0:  # a burst: two more frames of the same animal two seconds apart
            for j in (1, 2):
                _shot(photos / "latest", f"{label}_{j}", pattern,
                      later + timedelta(hours=3 * i, seconds=2 * j), f"Q{i}", 300 + i, 0.02 * i)
    card = photos / "card"
    make_card(card, 14, seed=21, width=800, height=600)
    make_all_bad(card / "junk")
    shutil.copy(queries["q2"][0], card / "junk" / "copy_of_q2.jpg")
    for name in ("MVI_0015.MP4", "IMG_0001.XMP"):  # what a real card carries beside photos
        (card / "DCIM" / name).write_bytes(bytes(256))

    catalog = open_catalog(root)
    options = ImportOptions(observer="Thandi M.", species=SPECIES)
    for folder in ("earlier", "latest"):
        run_import(catalog, [photos / folder], options)
    individuals: dict[str, str] = {}
    for name in KNOWN:
        first, _ = _encounter_and_annotation(catalog, refs[name][0])
        op = operations.new_individual(catalog, first, name, REVIEWER, species=SPECIES)
        individuals[name] = next(iter(op.changes.individuals))
        second, _ = _encounter_and_annotation(catalog, seconds[name][0])
        operations.confirm_match(catalog, second, individuals[name], REVIEWER)
    process_new = engine_entry_point()
    if process_new is not None:
        log.info("identifying the new encounters with wildid.engine")
        process_new(catalog, None, None)
    else:
        log.warning("wildid.engine is not installed: writing demo match results instead")
        _demo_results(catalog, queries, refs, individuals)
    catalog.close()


# ---------------------------------------------------------------- shooting ----------------

def _settle(app: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def shoot(catalog: Path, card: Path, out: Path, suffix: str) -> list[Path]:
    """Open the main window on ``catalog`` (under the current X display) and save each view."""
    from PySide6.QtGui import QGuiApplication

    from wildid.gui.app import create_application
    from wildid.gui.errors import ErrorHandler
    from wildid.gui.main_window import MainWindow
    from wildid.gui.services import Services
    from wildid.gui.settings import Settings

    app = create_application()
    settings = Settings()
    settings.reviewer_name = REVIEWER
    settings.auto_identify = False
    settings.import_observer, settings.import_species = "Thandi M.", SPECIES
    errors = ErrorHandler()
    errors.install()
    services = Services.open(catalog, settings, errors.report)
    window = MainWindow(services, errors)
    screen = QGuiApplication.primaryScreen()
    window.setGeometry(screen.availableGeometry())
    window.show()
    _settle(app, 1.0)
    saved: list[Path] = []

    def grab(name: str) -> None:
        path = out / f"{name}-{suffix}.png"
        screen.grabWindow(0).save(str(path), "PNG", 0)  # 0: smallest file
        saved.append(path)
        log.info("saved %s", path.relative_to(REPO) if path.is_relative_to(REPO) else path)

    import_page = window.page("import")
    window.show_page("import")
    import_page.add_paths([card])
    _settle(app, 0.5)
    grab("import")
    done: list[Any] = []
    import_page.import_finished.connect(done.append)
    import_page.start_import()
    deadline = time.monotonic() + 120
    while not done and time.monotonic() < deadline:
        _settle(app, 0.1)
    _settle(app, 0.5)
    grab("import-report")
    for key in ("review", "individuals", "encounters"):
        if window.show_page(key):
            _settle(app, 2.5)
            grab(key)
    individuals = window.page("individuals")
    if individuals is not None and hasattr(individuals, "open_individual"):
        from wildid.review import list_individuals

        first = list_individuals(services.catalog, order="sightings")
        if first:
            window.open_individual(first[0].id)
            _settle(app, 2.5)
            grab("individual")
    window.close()
    errors.uninstall()
    if errors.shown:
        log.error("errors shown while taking screenshots: %s", errors.shown)
    return saved


# ---------------------------------------------------------------- main --------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--catalog", type=Path, help="build the demo catalog here")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--shoot", nargs=2, metavar=("CATALOG", "CARD"), type=Path,
                        help=argparse.SUPPRESS)  # internal: run under Xvfb by the parent
    parser.add_argument("--suffix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.shoot:
        args.out.mkdir(parents=True, exist_ok=True)
        return 0 if shoot(*args.shoot, args.out, args.suffix) else 1

    work = Path(tempfile.mkdtemp(prefix="wildid-screens-"))
    os.environ["WILDID_HOME"] = str(work / "home")  # never the user's catalog or settings
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    catalog = args.catalog or work / "demo-catalog"
    started = time.monotonic()
    build_demo_catalog(catalog, work / "photos")
    log.info("demo catalog at %s (%.1f s)", catalog, time.monotonic() - started)
    if args.build_only:
        log.info("photos to import by hand: %s", work / "photos" / "card")
        return 0
    if shutil.which("xvfb-run") is None:
        log.error("xvfb-run is missing: run `make sysdeps` (Debian: apt install xvfb xauth)")
        return 2
    failures = 0
    for suffix, screen, scale in SCREENS:
        copy = work / f"catalog-{suffix}"
        shutil.copytree(catalog, copy)
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        env.update(QT_QPA_PLATFORM="xcb", QT_SCALE_FACTOR=scale,
                   XDG_CONFIG_HOME=str(work / f"config-{suffix}"))
        command = ["xvfb-run", "-a", "-s", f"-screen 0 {screen}", sys.executable, "-m",
                   "tests.screenshots", "--shoot", str(copy), str(work / "photos" / "card"),
                   "--out", str(args.out), "--suffix", suffix]
        result = subprocess.run(command, cwd=REPO, env=env, timeout=600)
        failures += result.returncode != 0
    if args.catalog is None:
        shutil.rmtree(work, ignore_errors=True)
    log.info("screenshots in %s", args.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
