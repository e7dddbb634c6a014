"""One exception tree for everything wildid raises on purpose.

::

    WildIdError
    ├── CatalogError            the catalog folder or database cannot be used
    │   ├── CatalogVersionError a catalog written by a newer wildid (refuse, never downgrade)
    │   ├── DiskFullError       the disk holding the catalog has no room left
    │   └── NotFoundError       an id that names nothing in the catalog
    ├── ImageError              a photo cannot be read or decoded (corrupt, bomb, unsupported)
    ├── ModelError              a model file or manifest is missing, corrupt or does not match
    ├── MatchingError           identification cannot run (no features, no active model...)
    ├── ReviewError             a review action that makes no sense in the current state
    ├── SyncError               talking to a community catalog failed
    └── Cancelled               the user pressed Cancel; callers ignore it silently

Foreign exceptions (cv2, onnxruntime, SQLAlchemy, HTTP) are translated where they enter our code,
with ``raise OurError(msg) from exc`` so the cause stays in the log.
"""

from __future__ import annotations


class WildIdError(Exception):
    """Base of every error wildid raises deliberately; its message is meant for the user."""


class CatalogError(WildIdError):
    """The catalog folder or its database cannot be opened or used."""


class CatalogVersionError(CatalogError):
    """The catalog was written by a newer wildid; opening it could damage it."""


class DiskFullError(CatalogError):
    """The disk holding the catalog is full: nothing more can be saved until space is freed.

    What was committed before stays (SQLite rolls back only the transaction that failed); the
    message says where the catalog is and how much room is left, which a raw "database or disk
    is full" did not.
    """


class NotFoundError(CatalogError):
    """An id or name that matches nothing in the catalog."""


class ImageError(WildIdError):
    """A photo cannot be read or decoded."""


class ModelError(WildIdError):
    """A model file or its manifest is missing, truncated, or does not match its checksum."""


class MatchingError(WildIdError):
    """Identification cannot run (for example no features were extracted yet)."""


class ReviewError(WildIdError):
    """A review action that does not apply to the current state."""


class SyncError(WildIdError):
    """Talking to a community catalog failed."""


class Cancelled(WildIdError):
    """Raised inside long jobs when the user cancelled; front ends ignore it silently."""
