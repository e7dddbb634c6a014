"""Opening the catalog a command names.

Only ``wildid import`` (and the app) create a catalog. Every other command opened its
``--catalog`` with create on, so a mistyped path (``--catalog ~/nyala-catlog info``) made an
empty catalog there and reported 0 photos, as if the real one had lost them. The default
catalog is the exception: it is where a new user's first command looks, and the app would
create it at its first start anyway.
"""

from __future__ import annotations

from pathlib import Path

from wildid.catalog import Catalog, open_catalog
from wildid.catalog.store import holds_other_files
from wildid.errors import CatalogError
from wildid.paths import default_catalog_dir


def open_existing(path: Path | str) -> Catalog:
    """The catalog at ``path``; an error naming it when there is none (the default catalog is
    created on first use)."""
    path = Path(path).expanduser()
    default = path.resolve() == default_catalog_dir().expanduser().resolve()
    return open_catalog(path, create=default)


def open_or_make(path: Path | str) -> Catalog:
    """The catalog at ``path``, made there when there is none (``wildid import``). A folder
    that holds other files is refused, as the app's *New catalog* refuses it: a mistyped
    ``--catalog ~/Pictures`` would put the catalog's database and media folder among the
    user's own files."""
    path = Path(path).expanduser()
    if holds_other_files(path):
        raise CatalogError(f"{path.resolve()} holds other files and no catalog: give a new or "
                           "empty folder for a new catalog, or the folder of an existing one")
    return open_catalog(path)
