"""User preferences that outlive the process, kept in QSettings (DESIGN.md §9).

One typed wrapper so that keys, defaults and value types live in one place: QSettings hands
back strings for booleans and a bare string for a one-element list when the INI backend is
used, and every caller would otherwise have to remember that.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "wildid"
APPLICATION = "wildid"
MAX_RECENT = 8
REVIEW_ORDERS = ("confidence", "oldest")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return ""


class Settings:
    """Typed access to the preferences; pass ``store`` to wrap a specific QSettings (tests)."""

    def __init__(self, store: QSettings | None = None) -> None:
        # The default format (not NativeFormat) so tests can redirect it with QSettings.setPath.
        self._s = store if store is not None else QSettings(
            QSettings.defaultFormat(), QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)

    @property
    def store(self) -> QSettings:
        return self._s

    def sync(self) -> None:
        """Write pending changes to disk now (QSettings otherwise writes lazily)."""
        self._s.sync()

    # ---------------------------------------------------------------- helpers ------------
    def _str(self, key: str, default: str = "") -> str:
        value = self._s.value(key, default)
        return default if value is None else str(value)

    def _bool(self, key: str, default: bool) -> bool:
        value = self._s.value(key, default)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)

    def _float(self, key: str, default: float) -> float:
        try:
            return float(self._s.value(key, default))
        except (TypeError, ValueError):
            return default

    def _list(self, key: str) -> list[str]:
        value = self._s.value(key, [])
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in value]

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._s.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    # ---------------------------------------------------------------- review -------------
    @property
    def reviewer_name(self) -> str:
        """Who is recorded on decisions; the login name until the user sets one."""
        return self._str("review/reviewer", "") or _login_name() or "reviewer"

    @reviewer_name.setter
    def reviewer_name(self, name: str) -> None:
        self._s.setValue("review/reviewer", name.strip())

    @property
    def review_order(self) -> str:
        order = self._str("review/order", REVIEW_ORDERS[0])
        return order if order in REVIEW_ORDERS else REVIEW_ORDERS[0]

    @review_order.setter
    def review_order(self, order: str) -> None:
        if order not in REVIEW_ORDERS:
            raise ValueError(f"review order must be one of {REVIEW_ORDERS}, not {order!r}")
        self._s.setValue("review/order", order)

    # ---------------------------------------------------------------- import -------------
    @property
    def last_import_folder(self) -> str:
        return self._str("import/last_folder", str(Path.home()))

    @last_import_folder.setter
    def last_import_folder(self, folder: str) -> None:
        self._s.setValue("import/last_folder", folder)

    @property
    def import_observer(self) -> str:
        return self._str("import/observer")

    @import_observer.setter
    def import_observer(self, value: str) -> None:
        self._s.setValue("import/observer", value)

    @property
    def import_species(self) -> str:
        return self._str("import/species")

    @import_species.setter
    def import_species(self, value: str) -> None:
        self._s.setValue("import/species", value)

    @property
    def import_reference_in_place(self) -> bool:
        return self._bool("import/reference_in_place", False)

    @import_reference_in_place.setter
    def import_reference_in_place(self, value: bool) -> None:
        self._s.setValue("import/reference_in_place", bool(value))

    @property
    def import_burst_gap_s(self) -> float:
        return self._float("import/burst_gap_s", 60.0)

    @import_burst_gap_s.setter
    def import_burst_gap_s(self, value: float) -> None:
        self._s.setValue("import/burst_gap_s", float(value))

    @property
    def auto_identify(self) -> bool:
        """Start feature extraction + matching by itself after each import."""
        return self._bool("engine/auto_identify", True)

    @auto_identify.setter
    def auto_identify(self, value: bool) -> None:
        self._s.setValue("engine/auto_identify", bool(value))

    # ---------------------------------------------------------------- window -------------
    @property
    def window_geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self._s.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        return self._bytes("window/state")

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._s.setValue("window/state", value)

    @property
    def current_page(self) -> str:
        return self._str("window/page", "import")

    @current_page.setter
    def current_page(self, key: str) -> None:
        self._s.setValue("window/page", key)

    # ---------------------------------------------------------------- catalogs -----------
    @property
    def recent_catalogs(self) -> list[str]:
        """Most recent first, without duplicates."""
        return self._list("catalogs/recent")[:MAX_RECENT]

    def add_recent_catalog(self, path: Path | str) -> None:
        entry = str(Path(path).expanduser().resolve())
        recent = [entry] + [p for p in self.recent_catalogs if p != entry]
        self._s.setValue("catalogs/recent", recent[:MAX_RECENT])

    def remove_recent_catalog(self, path: Path | str) -> None:
        entry = str(Path(path).expanduser().resolve())
        self._s.setValue("catalogs/recent", [p for p in self.recent_catalogs if p != entry])
