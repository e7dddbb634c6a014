"""The catalog: a folder holding the database, the media store and caches."""

from __future__ import annotations

from wildid.catalog.store import Catalog, open_catalog

__all__ = ["Catalog", "open_catalog"]
