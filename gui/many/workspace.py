"""ManyWorkspace: the "Many runs" tab of the main window (issue 9), one sub-tab per analysis.

Every analysis takes its problem and optimizers from the race session (the race controller's
surface and runs) and computes in a Job (gui/many/common.py). Adding an analysis is one line in
`_TABS` below (a title and a factory taking the race controller and the model controller), or a
call to `add_analysis(title, widget)` from outside.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from gui.controller import Controller
from gui.many.basins_view import BasinsView
from gui.many.range_test_view import RangeTestView
from gui.many.sweep_view import SweepView
from gui.many.trainability_view import TrainabilityView

Factory = Callable[[Controller, object | None], QWidget]

# The analyses, in tab order: (title, factory(race_controller, model_controller)).
_TABS: list[tuple[str, Factory]] = [
    ("Basins", lambda race, model: BasinsView(race)),
    ("LR sweep", lambda race, model: SweepView(race, model)),
    ("LR range test", lambda race, model: RangeTestView(model)),
    ("Trainability", lambda race, model: TrainabilityView(race, model)),
]


class ManyWorkspace(QWidget):
    """The analyses of many runs at once, as tabs. `analyses`: title -> widget."""

    def __init__(self, race_controller: Controller, model_controller: object | None = None, *,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.race_controller = race_controller
        self.model_controller = model_controller
        self.tabs = QTabWidget()
        self.tabs.setObjectName("manyTabs")
        self.tabs.setDocumentMode(True)
        self.analyses: dict[str, QWidget] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        for title, factory in _TABS:
            self.add_analysis(title, factory(race_controller, model_controller))

    @property
    def basins_view(self) -> BasinsView:
        view = self.analyses["Basins"]
        assert isinstance(view, BasinsView)
        return view

    def add_analysis(self, title: str, widget: QWidget) -> QWidget:
        """Add an analysis as a tab (after the others) and return it."""
        if title in self.analyses:
            raise ValueError(f"there is already an analysis called {title!r}")
        self.analyses[title] = widget
        self.tabs.addTab(widget, title)
        return widget

    def shutdown(self) -> None:
        """Cancel every analysis's Job and wait for it (the window is closing)."""
        for widget in self.analyses.values():
            shutdown = getattr(widget, "shutdown", None)
            if callable(shutdown):
                shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
