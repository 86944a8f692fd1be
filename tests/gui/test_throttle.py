"""gui/throttle.py: at most N redraws a second, none while hidden, and no error while a view
and its throttle are collected together."""

from __future__ import annotations

import gc
import sys

from PySide6.QtWidgets import QApplication, QWidget

from gui.throttle import Throttle


class View(QWidget):
    """A view as the app writes one: its throttle calls its own bound redraw method, so the
    two form a reference cycle only the garbage collector frees."""

    def __init__(self) -> None:
        super().__init__()
        self.redraws = 0
        self._throttle = Throttle(self.redraw, 10, self)

    def redraw(self) -> None:
        self.redraws += 1


def test_a_view_collected_with_its_throttle_raises_nothing(qtbot, monkeypatch) -> None:
    # Errors in a Python override called from Qt (the event filter) go to these hooks.
    errors: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda _t, e, _tb: errors.append(e))
    monkeypatch.setattr(sys, "unraisablehook", lambda u: errors.append(u.exc_value))
    kept = View()  # two views, as with two CurvesViews; one of them is dropped
    qtbot.addWidget(kept)
    kept.show()
    dropped = View()
    dropped.show()
    QApplication.processEvents()
    del dropped
    gc.collect()  # clears the throttle's attributes, then Qt destroys the shown widget
    QApplication.processEvents()
    assert errors == []
    kept._throttle.request()
    assert kept.redraws == 1  # the other view's throttle still works


def test_requests_while_hidden_redraw_once_when_shown(qtbot) -> None:
    view = View()
    qtbot.addWidget(view)
    view._throttle.request()
    view._throttle.request()
    assert view.redraws == 0  # hidden: only remembered
    view.show()
    qtbot.waitUntil(lambda: view.redraws == 1)
    view._throttle.request()  # within the interval: waits for it
    assert view.redraws == 1
    qtbot.waitUntil(lambda: view.redraws == 2)
