"""Redraw at most a few times a second, and never for a widget nobody can see.

A view and its Throttle form a reference cycle (the throttle holds the view's bound redraw
method). When Python's garbage collector frees such a view, it first clears the throttle's
attributes and only then lets Qt destroy the widget, whose last events (its Hide) still reach
the throttle's event filter. So the filter and the timer slots read the throttle's attributes
with `self.__dict__.get` and do nothing once they are gone (it raised AttributeError '_widget'
when a test dropped one of two CurvesViews).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget


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
        widget.installEventFilter(self)

    def request(self) -> None:
        if not self._widget.isVisible():
            self._stale = True
            return
        if not self._since.isValid() or self._since.elapsed() >= self.interval_ms:
            self._fire()
        elif not self._pending.isActive():
            self._pending.start(max(1, self.interval_ms - self._since.elapsed()))

    def drawn(self) -> None:
        """Tell the throttle the widget just redrew (also when it did so by itself)."""
        self._pending.stop()
        self._since.start()
        self._stale = False

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
