"""ModelWorkspace: model mode in one widget: real torch.optim optimizers train one torch.nn model
on data, side by side and live.

Top: the SetupBar (data, model, loss, batch size, play / step / reset). Left: the runs (add,
remove, lr, freeze). Middle: the data with the selected run's prediction, and its per-tensor
table. Right: the loss curves and gradient norms, and the sharpness against 2 / lr. A
ModelController holds the state; core (ModelProblem, Run, curvature) computes every number.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QGroupBox, QSplitter, QTabWidget, QVBoxLayout, QWidget

from gui.model.controller import ModelController
from gui.model.curves_view import ModelCurves
from gui.model.data_view import DataView
from gui.model.landscape_view import LandscapeView
from gui.model.run_panel import RunPanel
from gui.model.setup_bar import SetupBar
from gui.model.sharpness_view import SharpnessView
from gui.model.tensor_table import TensorTable


def _group(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(widget)
    return box


class ModelWorkspace(QWidget):
    """The model workspace. `controller` may be given (tests); else it makes its own, with SGD
    and Adam on two moons and the small MLP, so the first look has something to train."""

    def __init__(self, parent: QWidget | None = None, *,
                 controller: ModelController | None = None) -> None:
        super().__init__(parent)
        if controller is None:
            controller = ModelController(parent=self)
            controller.add_run("SGD")
            controller.add_run("Adam")
            controller.select(controller.runs[0])
        self.controller = controller
        self.setup_bar = SetupBar(controller)
        self.run_panel = RunPanel(controller)
        self.data_view = DataView(controller)
        self.tensor_table = TensorTable(controller)
        self.curves = ModelCurves(controller)
        self.sharpness_view = SharpnessView(controller)

        middle = QSplitter(Qt.Orientation.Vertical)
        self.landscape_view = LandscapeView(controller)
        self.middle_tabs = QTabWidget()  # the data and prediction, or the loss landscape
        self.middle_tabs.addTab(self.data_view, "Data")
        self.middle_tabs.addTab(self.landscape_view, "Landscape")
        middle.addWidget(_group("Data and loss landscape", self.middle_tabs))
        middle.addWidget(_group("Tensors of the selected run", self.tensor_table))
        middle.setSizes([520, 220])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(_group("Loss and gradients", self.curves))
        right.addWidget(_group("Sharpness", self.sharpness_view))
        right.setSizes([500, 240])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(_group("Runs", self.run_panel))
        body.addWidget(middle)
        body.addWidget(right)
        body.setStretchFactor(0, 0)
        body.setStretchFactor(1, 1)
        body.setStretchFactor(2, 1)
        body.setSizes([230, 520, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.setup_bar)
        layout.addWidget(body, 1)

    def shutdown(self) -> None:
        """Stop stepping and the sharpness worker (the window calls it when it quits)."""
        self.controller.shutdown()
        self.landscape_view.shutdown()

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.controller.pause()  # a workspace nobody sees should not take the machine
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)
