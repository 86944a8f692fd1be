"""The Qt binding itself must not leak references: PySide6 6.12.0 on Python 3.11 dropped one
reference to None per void call, and the app aborted after seconds of animation."""

import sys

from PySide6.QtCore import QTimer


def test_void_qt_calls_keep_the_refcount_of_none(qtbot):
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(2000):
        timer.stop()
        timer.setInterval(16)
    assert abs(sys.getrefcount(None) - before) < 50
