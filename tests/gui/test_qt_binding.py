"""The Qt binding itself must not leak references: PySide6 6.12.0 on Python 3.11 dropped one
reference to None per void call and one to True per signal emit, and the app aborted after
seconds of animation ("deallocating None")."""

import sys

from PySide6.QtCore import QObject, QTimer, Signal


class _Emitter(QObject):
    sigTick = Signal()


def test_void_qt_calls_keep_the_refcount_of_none(qtbot):
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(2000):
        timer.stop()
        timer.setInterval(16)
    assert abs(sys.getrefcount(None) - before) < 50


def test_signal_emits_keep_the_refcounts_of_true_and_none(qtbot):
    emitter = _Emitter()
    received = []
    emitter.sigTick.connect(lambda: received.append(1))
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(2000):
        emitter.sigTick.emit()
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert len(received) == 2000
    assert abs(after[0] - before[0]) < 50 and abs(after[1] - before[1]) < 50
