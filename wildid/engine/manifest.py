"""Evaluation manifests: ``path,identity,split`` CSV files with split ``database`` or ``query``.

Paths are relative to the manifest's folder (absolute paths are used as they are). Problems
are collected per row and raised together, so a user fixing a manifest sees every bad line at
once instead of one per run. A photo that is not there is not such a problem: it is left out
and named (:attr:`Manifest.missing`), as an unreadable photo is, so one file lost from a copied
data set does not cost the whole evaluation. The published splits' names ``train`` / ``test``
(and ``gallery`` / ``probe``) are read as ``database`` / ``query``.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from pathlib import Path

from wildid.errors import WildIdError

SPLITS = ("database", "query")
#: other names data sets give the two splits (WildlifeDatasets' ``train`` / ``test``)
SPLIT_ALIASES = {"train": "database", "gallery": "database", "db": "database",
                 "test": "query", "probe": "query", "queries": "query"}


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    identity: str
    split: str


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: the usable rows, and the rows whose photo does not exist."""

    rows: list[ManifestRow]
    missing: list[tuple[int, Path]]  # (line, path)

    def describe_missing(self, shown: int = 5) -> str:
        """One line naming the missing photos (the first ``shown`` of them)."""
        names = "; ".join(f"line {line}: {path}" for line, path in self.missing[:shown])
        more = f"; … and {len(self.missing) - shown} more" if len(self.missing) > shown else ""
        return f"{len(self.missing)} photo(s) of the manifest do not exist and are left out ({names}{more})"


def read_manifest(manifest: Path) -> Manifest:
    """Parse and validate ``manifest``; raise WildIdError listing every bad row.

    Rows whose photo does not exist are returned apart (``missing``), not raised: the rest can
    still be evaluated, and the caller says what was left out.
    """
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise WildIdError(f"cannot read the manifest {manifest}: {exc.strerror or exc}") from exc
    lines = text.splitlines()
    reader = csv.DictReader(lines, delimiter=_delimiter(lines[0] if lines else ""))
    # "Path, Identity, Split" (a spreadsheet's capitals, spaces after the commas) is the header
    reader.fieldnames = [(f or "").strip().lower() for f in reader.fieldnames or []]
    missing_cols = {"path", "identity", "split"} - set(reader.fieldnames or [])
    if missing_cols:
        raise WildIdError(f"{manifest} lacks the column(s) {', '.join(sorted(missing_cols))}; "
                          "expected a header path,identity,split")
    rows: list[ManifestRow] = []
    missing: list[tuple[int, Path]] = []
    problems: list[str] = []
    base = manifest.resolve().parent
    for line, rec in enumerate(reader, start=2):
        path_text = (rec.get("path") or "").strip()
        identity = (rec.get("identity") or "").strip()
        split = (rec.get("split") or "").strip().lower()
        split = SPLIT_ALIASES.get(split, split)
        if not path_text or not identity:
            problems.append(f"line {line}: empty path or identity")
            continue
        if split not in SPLITS:
            problems.append(f"line {line}: split {split!r} is not 'database' or 'query' "
                            "(nor train / test)")
            continue
        path = _resolve(base, path_text)
        if not path.is_file():
            missing.append((line, path))
            continue
        rows.append(ManifestRow(path, identity, split))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise WildIdError(f"{manifest} has {len(problems)} bad row(s):\n  {shown}{more}")
    if not any(r.split == "database" for r in rows) or not any(r.split == "query" for r in rows):
        lost = f" whose photos exist ({len(missing)} do not)" if missing else ""
        raise WildIdError(f"{manifest} needs both database and query rows{lost}")
    return Manifest(rows, missing)


def _delimiter(header: str) -> str:
    """Comma, or what the header uses instead: a spreadsheet set to a European locale saves
    "CSV" with semicolons, and a tab-separated export is common too."""
    for candidate in (",", ";", "\t"):
        if candidate in header:
            return candidate
    return ","


def _resolve(base: Path, text: str) -> Path:
    """A manifest path: absolute, or relative to the manifest's folder. A manifest written on
    Windows (``images\\Amber\\Amber_Portrait.png``) names the same files with backslashes,
    which are ordinary characters in a POSIX file name, so those are tried as separators when
    the path as written names no file."""
    path = Path(text)
    path = path if path.is_absolute() else base / path
    if "\\" in text and not path.is_file() and os.sep == "/":
        alt = Path(text.replace("\\", "/"))
        alt = alt if alt.is_absolute() else base / alt
        if alt.is_file():
            return alt
    return path


def open_set_split(rows: list[ManifestRow], fraction: float = 0.25,
                   seed: int = 0) -> tuple[list[ManifestRow], set[str]]:
    """Hold out ``fraction`` of the query identities from the database (seeded, reproducible).

    Returns the rows to use and the held-out ("unknown") identities: their database photos are
    dropped, so their queries should be answered "new individual".
    """
    query_ids = sorted({r.identity for r in rows if r.split == "query"})
    rng = random.Random(seed)
    # at least one identity held out, and at least one left known (each side is measured)
    n = min(max(1, round(len(query_ids) * fraction)), max(1, len(query_ids) - 1))
    unknown = set(rng.sample(query_ids, n))
    kept = [r for r in rows if not (r.split == "database" and r.identity in unknown)]
    return kept, unknown
