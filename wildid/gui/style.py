"""The look of the app: Fusion style, a light palette, ``resources/wildid.qss`` and the icon.

The palette is set explicitly so the app looks the same on a dark desktop theme as on a light
one: the stylesheet only colours some widgets, and a dark system palette would leave light
text on our light backgrounds.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

log = logging.getLogger(__name__)

ACCENT = "#2f7d5b"


def resource_dir() -> Path:
    """``resources/`` beside the package (source checkout) or inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def app_icon() -> QIcon:
    """The app icon: the SVG (sharp at any scale) with the PNG as a fallback size."""
    icons = resource_dir() / "icons"
    icon = QIcon()
    for name in ("wildid.svg", "wildid.png"):
        if (icons / name).exists():
            icon.addFile(str(icons / name))
    if icon.isNull():
        log.warning("app icon not found under %s", icons)
    return icon


def stylesheet() -> str:
    path = resource_dir() / "wildid.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        log.warning("stylesheet %s not found; using the plain style", path)
        return ""


def light_palette() -> QPalette:
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#f6f7f5",
        QPalette.ColorRole.WindowText: "#1f2a24",
        QPalette.ColorRole.Base: "#ffffff",
        QPalette.ColorRole.AlternateBase: "#f4f7f3",
        QPalette.ColorRole.ToolTipBase: "#ffffff",
        QPalette.ColorRole.ToolTipText: "#1f2a24",
        QPalette.ColorRole.PlaceholderText: "#7c8a80",
        QPalette.ColorRole.Text: "#1f2a24",
        QPalette.ColorRole.Button: "#f1f3f0",
        QPalette.ColorRole.ButtonText: "#1f2a24",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#9aa59d"))
    return palette


def apply(app: QApplication) -> None:
    """Give ``app`` the wildid look (style, palette, stylesheet, window icon)."""
    fusion = QStyleFactory.create("Fusion")
    if fusion is not None:
        app.setStyle(fusion)
    app.setPalette(light_palette())
    app.setStyleSheet(stylesheet())
    app.setWindowIcon(app_icon())


def set_role(widget: QWidget, role: str) -> QWidget:
    """Tag ``widget`` for a stylesheet variant (``QPushButton[role="primary"]``...)."""
    widget.setProperty("role", role)
    return widget
