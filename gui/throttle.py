"""Redraw at most a few times a second, and never for a widget nobody can see.

A view and its Throttle form a reference cycle (the throttle holds the view's bound redraw
method). When Python's garbage collector frees such a view, it first clears the throttle's
attributes and only then lets Qt destroy the widget, whose last events (its Hide) still reach
the throttle's event filter. So the filter and the timer slots read the throttle's attributes
with `self.__dict__.get` and do nothing once they are gone (it raised AttributeError '_widget'
when a test dropped one of two CurvesViews).

Inside `redraws_spread()` (the model workspace's tick, while it announces its steps) a redraw
that is due does not run at once: it joins a queue that the event loop works through one
redraw per pass, so the tick and every view's redraw (5-15 ms each for the data view, the
curves, the tensor table) do not all land in one frame, and the frames in between get painted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import shiboken6
from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

_spreading = 0  # how deep inside redraws_spread() we are
_queue: list[Throttle] = []  # redraws due, oldest first, one per event-loop pass


@contextmanager
def redraws_spread() -> Iterator[None]:
    """Within it, a due redraw waits for its turn in the event loop (module docstring)."""
    global _spreading
    _spreading += 1
    try:
        yield
    finally:
        _spreading -= 1


def _redraw_next() -> None:
    """The oldest queued redraw; the next pass of the event loop takes the one after it."""
    while _queue:
        throttle = _queue.pop(0)
        if not shiboken6.isValid(throttle) or not throttle.__dict__.get("_queued"):
            continue  # destroyed, or redrawn meanwhile (drawn() dequeues)
        throttle._queued = False
        widget = throttle.__dict__.get("_widget")
        if widget is not None and not widget.isVisible():
            throttle._stale = True  # hidden meanwhile: it redraws when shown
            continue
        throttle._fire()
        break
    if _queue:
        QTimer.singleShot(0, _redraw_next)


class Throttle(QObject):
    """Calls `redraw` at most `hz` times a second.

    `request()` redraws at once when the last redraw is old enough, otherwise once the interval
    is up, so the last request always lands. While `widget` is hidden (an inactive tab) requests
    are only remembered, and the redraw happens when it is shown again.
    """

    def __init__(self, redraw: Callable[[], None], hz: float, widget: QWidget) -> None:
        super().__init__(widget)
        self._redraw = redraw
        self._widget = widget
        self.interval_ms = max(1, int(1000 / hz))
        self._since = QElapsedTimer()
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.timeout.connect(self._fire)
        self._stale = False
        self._queued = False  # waiting in the module's queue (redraws_spread)
        widget.installEventFilter(self)

    def request(self) -> None:
        if not self._widget.isVisible():
            self._stale = True
            return
        if not self._since.isValid() or self._since.elapsed() >= self.interval_ms:
            if not _spreading:
                self._fire()
            elif not self._queued:
                self._queued = True
                _queue.append(self)
                if len(_queue) == 1:
                    QTimer.singleShot(0, _redraw_next)
        elif not self._pending.isActive() and not self._queued:
            self._pending.start(max(1, self.interval_ms - self._since.elapsed()))

    def drawn(self) -> None:
        """Tell the throttle the widget just redrew (also when it did so by itself)."""
        self._pending.stop()
        self._since.start()
        self._stale = False
        self._queued = False

    def cancel(self) -> None:
        self._pending.stop()

    def _fire(self) -> None:
        redraw = self.__dict__.get("_redraw")
        if redraw is None:  # being torn down (see the module docstring)
            return
        redraw()
        self.drawn()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        # (the widget's last events can arrive after Python has cleared this object's
        # attributes, see the module docstring: then there is nothing to do)
        state = self.__dict__
        if (event.type() == QEvent.Type.Show and state.get("_stale")
                and watched is state.get("_widget")):
            QTimer.singleShot(0, self._fire_if_stale)  # the widget may redraw by itself first
        return False

    def _fire_if_stale(self) -> None:
        if self.__dict__.get("_stale"):
            self._fire()
