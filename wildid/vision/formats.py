"""Which photo files wildid reads, as plain constants.

Kept apart from :mod:`wildid.vision.image_io` (which loads OpenCV and Pillow) so that the
command line can name them in its help without paying for the decoders at every start.
"""

from __future__ import annotations

__all__ = ["RAW_SUFFIXES", "SUPPORTED_FORMATS", "SUPPORTED_TYPES"]

SUPPORTED_FORMATS = ("JPEG", "PNG", "TIFF", "HEIF", "WEBP")
SUPPORTED_TYPES = "JPEG, PNG, TIFF, HEIC and WebP"
"""The same, as a person reads it (messages, help texts)."""
RAW_SUFFIXES = frozenset({".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2",
                          ".dng", ".raf", ".orf", ".rw2", ".pef", ".srw", ".x3f", ".3fr",
                          ".iiq", ".rwl", ".erf", ".kdc", ".mrw"})
"""Camera RAW file extensions: refused by name, since their magic bytes look like TIFF."""
