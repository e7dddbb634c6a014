"""An import killed at any point (SIGKILL, or the user's Cancel) and run again loses nothing
and duplicates nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from tests import photofactory as pf
from wildid.catalog import open_catalog
from wildid.catalog.models import Annotation, Encounter, ImportBatch, Photo
from wildid.ingest.importer import ImportOptions, run_import
from wildid.progress import CancelToken

REPO = Path(__file__).resolve().parents[2]


def _check_consistent(cat_dir: Path, shots: list[pf.CardShot]) -> None:
    with open_catalog(cat_dir) as cat, cat.session() as s:
        photos = list(s.scalars(select(Photo)))
        assert len(photos) == len(shots)
        assert len({p.sha256 for p in photos}) == len(photos)
        for p in photos:
            data = cat.media.path(p.stored_path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == p.sha256
        # Every photo is annotated exactly once and every annotation belongs to an encounter.
        assert s.scalar(select(func.count()).select_from(Annotation)) == len(shots)
        assert s.scalar(select(func.count()).select_from(Annotation)
                        .where(Annotation.encounter_id.is_(None))) == 0
        # Bursts split by the kill are whole again.
        assert s.scalar(select(func.count()).select_from(Encounter)) == len({x.burst for x in shots})


def test_kill_and_resume(tmp_path: Path) -> None:
    shots = pf.make_card(tmp_path / "card", 90, seed=11, width=2000, height=1500)
    cat_dir = tmp_path / "catalog"
    cmd = [sys.executable, "-m", "wildid", "import", str(tmp_path / "card"), "--catalog",
           str(cat_dir), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = cat_dir / "catalog.sqlite"
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
                committed = con.execute("SELECT count(*) FROM photos").fetchone()[0]
                con.close()
            except sqlite3.Error:
                committed = 0
            if committed:
                break
        time.sleep(0.01)
    assert proc.poll() is None, "the import finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < committed < len(shots)

    # The killed batch is found 'running' with a dead pid and marked interrupted on next open.
    result = subprocess.run(cmd[:-2], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Import completed" in result.stdout
    _check_consistent(cat_dir, shots)
    with open_catalog(cat_dir) as cat, cat.session() as s:
        statuses = sorted(s.scalars(select(ImportBatch.status)))
    assert statuses == ["completed", "interrupted"]


def test_cancel_keeps_finished_work_and_resumes(tmp_path: Path) -> None:
    shots = pf.make_card(tmp_path / "card", 40, seed=5, width=640, height=480)
    token = CancelToken()
    seen: list[int] = []

    def progress(p) -> None:  # noqa: ANN001
        if p.stage == "Importing":
            seen.append(p.done)
            if p.done >= 12:
                token.cancel()

    with open_catalog(tmp_path / "catalog") as cat:
        report = run_import(cat, [tmp_path / "card"], ImportOptions(commit_every=5), progress, token)
        assert report.status == "cancelled"
        assert 12 <= report.imported < len(shots)
        with cat.session() as s:
            assert s.scalar(select(func.count()).select_from(Photo)) == report.imported
        # no original without its row: the photos the workers were on are kept too
        assert sum(1 for p in (tmp_path / "catalog" / "media").rglob("*") if p.is_file()) \
            == report.imported
        again = run_import(cat, [tmp_path / "card"])
        assert again.status == "completed"
        assert again.imported + again.duplicates == len(shots)
        assert again.duplicates == report.imported
    _check_consistent(tmp_path / "catalog", shots)
