"""wildid: photo-identification of individual animals, offline first."""

from __future__ import annotations

__version__ = "0.1.0"
