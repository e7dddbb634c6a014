"""Evaluation manifests: ``path,identity,split`` CSV files with split ``database`` or ``query``.

Paths are relative to the manifest's folder (absolute paths are used as they are). Problems
are collected per row and raised together, so a user fixing a manifest sees every bad line at
once instead of one per run.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from wildid.errors import WildIdError

SPLITS = ("database", "query")


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    identity: str
    split: str


def read_manifest(manifest: Path) -> list[ManifestRow]:
    """Parse and validate ``manifest``; raise WildIdError listing every bad row."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise WildIdError(f"cannot read the manifest {manifest}: {exc.strerror or exc}") from exc
    reader = csv.DictReader(text.splitlines())
    missing_cols = {"path", "identity", "split"} - set(reader.fieldnames or [])
    if missing_cols:
        raise WildIdError(f"{manifest} lacks the column(s) {', '.join(sorted(missing_cols))}; "
                          "expected a header path,identity,split")
    rows: list[ManifestRow] = []
    problems: list[str] = []
    base = manifest.resolve().parent
    for line, rec in enumerate(reader, start=2):
        path_text = (rec.get("path") or "").strip()
        identity = (rec.get("identity") or "").strip()
        split = (rec.get("split") or "").strip().lower()
        if not path_text or not identity:
            problems.append(f"line {line}: empty path or identity")
            continue
        if split not in SPLITS:
            problems.append(f"line {line}: split {split!r} is not 'database' or 'query'")
            continue
        path = Path(path_text)
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            problems.append(f"line {line}: {path} does not exist")
            continue
        rows.append(ManifestRow(path, identity, split))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise WildIdError(f"{manifest} has {len(problems)} bad row(s):\n  {shown}{more}")
    if not any(r.split == "database" for r in rows) or not any(r.split == "query" for r in rows):
        raise WildIdError(f"{manifest} needs both database and query rows")
    return rows


def open_set_split(rows: list[ManifestRow], fraction: float = 0.25,
                   seed: int = 0) -> tuple[list[ManifestRow], set[str]]:
    """Hold out ``fraction`` of the query identities from the database (seeded, reproducible).

    Returns the rows to use and the held-out ("unknown") identities: their database photos are
    dropped, so their queries should be answered "new individual".
    """
    query_ids = sorted({r.identity for r in rows if r.split == "query"})
    rng = random.Random(seed)
    n = max(1, round(len(query_ids) * fraction))
    unknown = set(rng.sample(query_ids, n))
    kept = [r for r in rows if not (r.split == "database" and r.identity in unknown)]
    return kept, unknown
