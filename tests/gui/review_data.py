"""A small real catalog for the review GUI tests: photos on disk, imported, with match results.

Built through the real importer and review operations; only the matching engine's output
(``MatchCandidate`` / ``MatchSummary`` rows with inliers) is written directly, as the review
contract allows. Photos are small (640x480) so building a catalog takes well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings
from sqlalchemy import select

from tests.photofactory import make_shot
from wildid.catalog import Catalog, open_catalog
from wildid.catalog.models import Annotation, Encounter, MatchCandidate, MatchSummary, Photo
from wildid.gui.prompts import Prompts
from wildid.ingest.importer import ImportOptions, run_import
from wildid.review import operations

SIZE = (640, 480)
START = datetime(2024, 5, 1, 6, 0)
SITE = (-24.99, 31.59)


@dataclass
class World:
    """The catalog and the ids a test needs to name things."""

    catalog: Catalog
    folder: Path
    individuals: dict[str, str] = field(default_factory=dict)  # name -> id
    reference: dict[str, str] = field(default_factory=dict)  # name -> its encounter id
    queries: dict[str, str] = field(default_factory=dict)  # label -> encounter id
    boxes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # photo id -> box


class ScriptedPrompts(Prompts):
    """Answers from lists instead of dialogs; records what was asked and each error shown."""

    def __init__(self, texts: Iterable[str | None] = (), confirms: Iterable[bool] = (),
                 choices: Iterable[object] = ()) -> None:
        self.texts = list(texts)
        self.confirms = list(confirms)
        self.choices = list(choices)
        self.asked: list[str] = []
        self.errors: list[str] = []
        self.informed: list[tuple[str, str]] = []

    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        self.asked.append(title)
        return self.texts.pop(0) if self.texts else None

    def confirm(self, title: str, question: str) -> bool:
        self.asked.append(title)
        return self.confirms.pop(0) if self.confirms else False

    def choose(self, title: str, chooser: object) -> object:
        self.asked.append(title)
        return self.choices.pop(0) if self.choices else None

    def error(self, message: str) -> None:
        self.errors.append(message)

    def inform(self, title: str, message: str) -> None:
        self.informed.append((title, message))


def make_settings(tmp_path: Path, reviewer: str = "Tester"):
    """Real wildid Settings on an INI file in ``tmp_path`` (never the developer's)."""
    from wildid.gui.settings import Settings

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    result = Settings(store)
    result.reviewer_name = reviewer
    return result


def shoot(folder: Path, name: str, pattern: int | None, when: datetime, serial: str,
          gps: tuple[float, float] | None = SITE, seed: int = 0) -> tuple[Path, tuple | None]:
    shot = make_shot(folder / f"{name}.jpg", *SIZE, seed=seed or abs(hash(name)) % 10_000,
                     taken=when, offset="+02:00", pattern_seed=pattern, serial=serial,
                     gps=None if gps is None else (gps[0], gps[1], None), quality=85)
    return shot.path, shot.box


def import_folder(catalog: Catalog, folder: Path) -> list[str]:
    report = run_import(catalog, [folder], ImportOptions(observer="Ann Observer",
                                                         species="Tragelaphus angasii",
                                                         workers=1))
    assert not report.skipped, report.skipped
    return report.new_encounter_ids


def encounter_of(catalog: Catalog, file_name: str) -> str:
    with catalog.session() as s:
        return s.scalars(select(Annotation.encounter_id).join(Photo)
                         .where(Photo.original_path.like(f"%{file_name}"))).one()


def query_annotation(catalog: Catalog, encounter_id: str) -> tuple[str, str]:
    """(annotation id, photo id) of the encounter's first box."""
    with catalog.session() as s:
        ann = s.scalars(select(Annotation).where(Annotation.encounter_id == encounter_id)
                        .order_by(Annotation.created_at)).first()
        return ann.id, ann.photo_id


def fake_inliers(qbox: tuple, cbox: tuple, n: int = 24, seed: int = 0) -> np.ndarray:
    """Point pairs at the same relative place inside both animal boxes (what a matcher finds)."""
    rng = np.random.default_rng(seed)
    rel = rng.uniform(0.1, 0.9, (n, 2))
    q = np.asarray(qbox[:2]) + rel * np.asarray(qbox[2:])
    c = np.asarray(cbox[:2]) + rel * np.asarray(cbox[2:])
    return np.hstack([q, c]).astype(np.float32)


def add_results(world: World, query: str, ranked: list[tuple[str, float]],
                likely_new: bool = False, threshold: float | None = 0.15) -> None:
    """Write the engine's output for the query encounter: ranked candidates and a summary."""
    catalog = world.catalog
    encounter_id = world.queries[query]
    q_ann, q_photo = query_annotation(catalog, encounter_id)
    with catalog.session() as s:
        for rank, (name, score) in enumerate(ranked):
            c_ann, c_photo = query_annotation(catalog, world.reference[name])
            inliers = fake_inliers(world.boxes[q_photo], world.boxes[c_photo], seed=rank) \
                if rank == 0 else np.zeros((0, 4), np.float32)
            s.add(MatchCandidate(encounter_id=encounter_id, rank=rank,
                                 individual_id=world.individuals[name], score=score,
                                 raw_scores={"local": score * 50, "global": score / 2},
                                 query_annotation_id=q_ann, best_annotation_id=c_ann,
                                 inliers=inliers.tobytes(), engine="test-engine 1"))
        best = ranked[0][1] if ranked else None
        s.add(MatchSummary(encounter_id=encounter_id, best_score=best, likely_new=likely_new,
                           threshold=threshold, engine="test-engine 1"))


def build_world(tmp_path: Path, catalog: Catalog | None = None) -> World:
    """Three known individuals and three new encounters with candidates.

    * ``q_stripe``: a 2-photo burst of Stripe; candidates Stripe 91 %, Dot 20 %, Ziggy 5 %
    * ``q_dot``: Dot; candidates Dot 75 %, Stripe 30 %
    * ``q_new``: an animal not in the catalog; Ziggy 12 %, summary says likely new

    Queue order: by confidence q_stripe, q_dot, q_new; by time q_new, q_stripe, q_dot.
    """
    folder = tmp_path / "photos"
    folder.mkdir()
    catalog = catalog or open_catalog(tmp_path / "catalog")
    world = World(catalog, folder)
    photos: dict[str, tuple] = {}
    known = {"Stripe": 1, "Dot": 2, "Ziggy": 3}
    for i, (name, pattern) in enumerate(known.items()):
        when = START + timedelta(days=i)
        gps = (SITE[0] + 0.01 * i, SITE[1] + 0.012 * i)
        photos[f"ref_{name}"] = shoot(folder, f"ref_{name}", pattern, when, f"R{i}", gps, seed=i + 1)
    later = START + timedelta(days=30)
    photos["q_stripe_a"] = shoot(folder, "q_stripe_a", 1, later, "Q1", seed=11)
    photos["q_stripe_b"] = shoot(folder, "q_stripe_b", 1, later + timedelta(seconds=2), "Q1",
                                 seed=11)
    photos["q_dot"] = shoot(folder, "q_dot", 2, later + timedelta(hours=3), "Q2", seed=12)
    photos["q_new"] = shoot(folder, "q_new", 7, later - timedelta(days=1), "Q3", seed=13)
    import_folder(catalog, folder)
    with catalog.session() as s:
        for path, box in photos.values():
            photo_id = s.scalars(select(Photo.id).where(Photo.original_path == str(path))).one()
            world.boxes[photo_id] = box or (0, 0, *SIZE)
    for name in known:
        encounter_id = encounter_of(catalog, f"ref_{name}.jpg")
        op = operations.new_individual(catalog, encounter_id, name, "setup")
        world.reference[name] = encounter_id
        world.individuals[name] = next(iter(op.changes.individuals))
    for label in ("q_stripe", "q_dot", "q_new"):
        world.queries[label] = encounter_of(catalog, f"{label}.jpg" if label != "q_stripe"
                                            else "q_stripe_a.jpg")
    add_results(world, "q_stripe", [("Stripe", 0.91), ("Dot", 0.20), ("Ziggy", 0.05)])
    add_results(world, "q_dot", [("Dot", 0.75), ("Stripe", 0.30)])
    add_results(world, "q_new", [("Ziggy", 0.12)], likely_new=True)
    return world


def state_of(catalog: Catalog, encounter_id: str) -> tuple[str, str | None]:
    with catalog.session() as s:
        enc = s.get(Encounter, encounter_id)
        return enc.state, enc.individual_id


def utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC)
