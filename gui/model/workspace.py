"""ModelWorkspace: model mode in one widget: real torch.optim optimizers train one torch.nn model
on data, side by side and live.

Top: the SetupBar (data, model, loss, batch size, play / step / reset). Left: the runs (add,
remove, every hyperparameter, freeze). Middle: the data with the selected run's prediction (or
the loss landscape), and its per-tensor table. Right: the loss curves and gradient norms, and
the sharpness against 2 / lr. A ModelController holds the state; core (ModelSession,
ModelProblem, Run, curvature) computes every number.

For the window's File menu (it dispatches on the active tab): save_session / load_session
(model-mode session files), examples() / open_example(name) (File > Examples), export_data
(.json / .csv of every run's curves and parameters) and export_view(name, path) (.png / .svg of
one view; view_names() lists them).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QHideEvent
from PySide6.QtWidgets import QGroupBox, QSplitter, QTabWidget, QVBoxLayout, QWidget

from core.errors import ExportError
from gui.image_export import FORMATS, export_widget_image
from gui.model import controller as model_controller
from gui.model.controller import ModelController
from gui.model.curves_view import ModelCurves
from gui.model.data_view import DataView
from gui.model.graph_panel import ModelGraphPanel
from gui.model.landscape_view import LandscapeView
from gui.model.run_panel import RunPanel
from gui.model.setup_bar import SetupBar
from gui.model.sharpness_view import SharpnessView
from gui.model.tensor_heatmap import TensorHeatmap
from gui.model.tensor_table import TensorTable
from gui.worker import Job, JobProgress


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
            controller.mark_saved()  # the first look is nothing the user made
        self.controller = controller
        self.setup_bar = SetupBar(controller)
        self.run_panel = RunPanel(controller)
        self.data_view = DataView(controller)
        self.tensor_table = TensorTable(controller)
        self.tensor_heatmap = TensorHeatmap(controller)
        self.curves = ModelCurves(controller)
        self.sharpness_view = SharpnessView(controller)

        middle = QSplitter(Qt.Orientation.Vertical)
        self.landscape_view = LandscapeView(controller)
        self.middle_tabs = QTabWidget()  # the data and prediction, or the loss landscape
        self.middle_tabs.addTab(self.data_view, "Data")
        self.middle_tabs.addTab(self.landscape_view, "Landscape")
        middle.addWidget(_group("Data and loss landscape", self.middle_tabs))
        tensors = QSplitter(Qt.Orientation.Horizontal)  # the figures, and the picked tensor
        tensors.addWidget(self.tensor_table)
        tensors.addWidget(self.tensor_heatmap)
        tensors.setSizes([290, 290])  # the heatmap needs its two images whole (value, grad)
        middle.addWidget(_group("Tensors of the selected run", tensors))
        middle.setSizes([520, 220])
        right = QSplitter(Qt.Orientation.Vertical)
        self.graph_panel = ModelGraphPanel(controller)  # the loss's autograd graph, by module
        self.right_tabs = QTabWidget()
        self.right_tabs.addTab(self.curves, "Loss and gradients")
        self.right_tabs.addTab(self.graph_panel, "Autograd graph")
        right.addWidget(self.right_tabs)
        right.addWidget(_group("Sharpness", self.sharpness_view))
        right.setSizes([500, 240])
        # The autograd graph panel's tool row asks for ~510 px, which at 1280 px left the middle
        # too narrow for the tensor table and both heatmap images: the right pane may be narrower.
        right.setMinimumWidth(400)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(_group("Runs", self.run_panel))
        body.addWidget(middle)
        body.addWidget(right)
        body.setStretchFactor(0, 0)
        body.setStretchFactor(1, 1)
        body.setStretchFactor(2, 1)
        body.setSizes([230, 600, 450])  # the middle: the tensor table and heatmap side by side
        self.progress = JobProgress()  # a long session replay, with its Cancel
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.setup_bar)
        layout.addWidget(self.progress)
        layout.addWidget(body, 1)
        controller.sigMessage.connect(self.setup_bar.show_message)

    # --- for the window's File menu --------------------------------------------------------------

    def save_session(self, path: str | Path) -> None:
        """Write the model session (model, data or the CSV's text, seed, runs with their steps)
        atomically. SessionError, one line, if it cannot be written."""
        self.controller.save_session(path)

    def load_session(self, path: str | Path) -> Job | None:
        """Open a model session file. A broken one raises SessionError with one line and
        nothing changes; a good one replaces the runs, replayed to their saved steps: at once
        for a short session, else in a worker Job (returned) whose progress and Cancel show
        under the setup bar; the workspace changes when it ends (controller.sigSessionOpened).
        """
        job = self.controller.load_session(path)
        if job is not None:
            self.progress.attach(job, f"replaying {Path(path).name}")
        return job

    @staticmethod
    def examples() -> list[tuple[str, str, str]]:
        """File > Examples: (name, title, description) of each teaching example."""
        return model_controller.examples()

    def open_example(self, name: str) -> None:
        """Open a teaching example by name (see examples())."""
        self.controller.open_example(name)

    @property
    def modified(self) -> bool:
        """Unsaved changes (the window asks before opening another session over them)."""
        return self.controller.modified

    def export_data(self, path: str | Path) -> None:
        """Every run's training curves and parameters: .json (as `main.py train --json`) or
        .csv. ExportError, one line, otherwise."""
        self.controller.export_data(path)

    def views(self) -> dict[str, QWidget]:
        """The views a picture can be made of, by name."""
        return {"data": self.data_view, "curves": self.curves, "sharpness": self.sharpness_view,
                "tensors": self.tensor_table, "heatmap": self.tensor_heatmap,
                "landscape": self.landscape_view}

    def view_names(self) -> list[str]:
        return list(self.views())

    def export_view(self, name: str, path: str | Path, width: int | None = None,
                    height: int | None = None) -> None:
        """A .png or .svg of one view (gui/image_export.py: SVG through QSvgGenerator), as it
        is laid out in the workspace; ExportError, one line, for an unknown view or format."""
        views = self.views()
        if name not in views:
            raise ExportError(f"no view {name!r}; views: {', '.join(views)}")
        if Path(path).suffix.lower() not in FORMATS:
            raise ExportError(f"cannot export a picture to {Path(path).name!r}: use "
                              f"{' or '.join(FORMATS)}")
        view = views[name]
        if view.width() < 2 or view.height() < 2:
            view.resize(view.sizeHint().expandedTo(view.minimumSizeHint()))  # never laid out
        export_widget_image(view, path, width, height)

    def shutdown(self) -> None:
        """Stop stepping and the sharpness worker (the window calls it when it quits)."""
        self.controller.shutdown()
        self.landscape_view.shutdown()
        self.graph_panel.shutdown()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 (Qt's name)
        # Another tab took the place: a workspace nobody looks at should not take the machine.
        # A minimised window hides it too (a spontaneous event, from the window system), and
        # then training goes on: the user may be waiting for it.
        if not event.spontaneous() and not self.window().isMinimized():
            self.controller.pause()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)
