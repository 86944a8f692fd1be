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


def test_redraws_due_inside_a_tick_run_one_per_pass_of_the_event_loop(qtbot) -> None:
    from PySide6.QtCore import QEventLoop

    from gui.throttle import redraws_spread

    views = [View() for _ in range(3)]
    for v in views:
        qtbot.addWidget(v)
        v.show()
    QApplication.processEvents()
    views[0]._throttle.request()  # outside a tick: at once, as before
    assert views[0].redraws == 1
    fresh = [View() for _ in range(3)]
    for v in fresh:
        qtbot.addWidget(v)
        v.show()
    QApplication.processEvents()
    with redraws_spread():
        for v in fresh:
            v._throttle.request()
            v._throttle.request()  # a second request while queued: still one redraw
    assert [v.redraws for v in fresh] == [0, 0, 0]  # none inside the tick
    seen = []
    for _ in range(10):  # one pass at a time: the queue moves on by one redraw a pass
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents)
        seen.append(sum(v.redraws for v in fresh))
        if seen[-1] == 3:
            break
    assert seen[-1] == 3 and [v.redraws for v in fresh] == [1, 1, 1]
    assert len(seen) >= 3 and all(b - a <= 1 for a, b in zip([0] + seen, seen)), seen
    # a view hidden while it waits is not redrawn then, but when it is shown again
    late = View()
    qtbot.addWidget(late)
    late.show()
    QApplication.processEvents()
    with redraws_spread():
        late._throttle.request()
    late.hide()
    QApplication.processEvents()
    assert late.redraws == 0
    late.show()
    qtbot.waitUntil(lambda: late.redraws == 1, timeout=2000)
