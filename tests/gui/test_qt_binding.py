"""The Qt binding itself: what the app relies on from PySide6, whatever version the lock
installs."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsScene


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_calls_returning_nothing_leave_none_its_references(qapp) -> None:
    """PySide6 6.12.0 on Python 3.11 took one reference from None at every call of a method
    returning nothing; None started with ~46,000, showing an encounter made ~2,000 such calls
    (a keypoint circle's setPos, setPen, setBrush...), and after some twenty encounters the app
    aborted with "Fatal Python error: none_dealloc"."""
    scene = QGraphicsScene()
    item = QGraphicsEllipseItem(-4, -4, 8, 8)
    scene.addItem(item)
    before = sys.getrefcount(None)
    for i in range(5000):
        item.setPos(float(i), 1.0)
        item.setZValue(10)
    assert sys.getrefcount(None) - before > -100
