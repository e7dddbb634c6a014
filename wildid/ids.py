"""Client-minted identifiers.

Records are created offline on many laptops and later synced, so ids are minted here, never by a
database sequence. UUIDv7 (RFC 9562) puts a millisecond timestamp first, so ids sort roughly by
creation time and B-tree inserts stay local.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """Return a new UUIDv7 as its canonical 36-character string, monotonic within this process."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or earlier, clock stepped back) millisecond: bump a 12-bit counter so ids
            # minted in a tight loop still sort in creation order.
            _counter += 1
            if _counter >= 1 << 12:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = 0
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def is_id(text: str) -> bool:
    """True when ``text`` parses as a UUID (any version)."""
    try:
        uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


SHORT_ID_LENGTH = 8


def short_id(record_id: str) -> str:
    """The piece of an id to show people: its last :data:`SHORT_ID_LENGTH` characters.

    The first characters of a UUIDv7 are its timestamp: everything made within about a minute
    (one import, one review session) shares its first eight, so they told the records of a
    batch apart no better than a date would. The random tail does, and the id lookups
    (``wildid.review.lookup``) accept it as a suffix, so what is shown can be typed back.
    """
    return record_id[-SHORT_ID_LENGTH:]
