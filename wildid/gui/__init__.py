"""The desktop app (PySide6). The only package that imports Qt; it drives the core.

Start it with :func:`wildid.gui.app.run`. Pages receive a :class:`wildid.gui.services.Services`
(open catalog, undo stack, background jobs, settings) and never reach for globals.
"""

from __future__ import annotations
