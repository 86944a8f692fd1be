"""TensorTable: the selected run's parameter tensors, one row each, updated a few times a second.

Columns: name, shape, |value|, |grad|, |update| (the last step's change), frozen, and the norms
of the optimizer's state for that tensor (momentum_buffer, exp_avg, ...). Clicking a row picks
that tensor (the controller's selected_tensor) for the heatmap of its values and gradient.
"""

from __future__ import annotations

import math

from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from core.run import Run
from gui.model.controller import ModelController
from gui.throttle import Throttle

COLUMNS = ("name", "shape", "|value|", "|grad|", "|update|", "frozen", "optimizer state")
REDRAW_HZ = 4


def _number(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.4g}"


class TensorTable(QTableWidget):
    """Per-tensor figures of the controller's selected run."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.controller = controller
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.setToolTip("click a row to see the tensor and its gradient as heatmaps")
        self.cellClicked.connect(self._on_row_click)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self._throttle = Throttle(self.refresh, REDRAW_HZ, self)
        controller.sigStepped.connect(self._throttle.request)
        controller.sigRunChanged.connect(lambda _run: self.refresh())
        controller.sigSelectionChanged.connect(lambda _run: self.refresh())
        controller.sigProblemChanged.connect(self.refresh)
        self.refresh()

    def _on_row_click(self, row: int, _column: int) -> None:
        names = self.names()
        if 0 <= row < len(names):
            self.controller.select_tensor(names[row])

    def names(self) -> list[str]:
        """The tensor names the table shows, top to bottom."""
        return [self.item(r, 0).text() for r in range(self.rowCount())]

    def refresh(self) -> None:
        run: Run | None = self.controller.selected
        names = list(run.parameter_names) if run is not None else []
        if self.rowCount() != len(names):
            self.setRowCount(len(names))
        if run is None:
            return
        trajectory = run.trajectory
        updates = run.last_update_norms
        states = run.optimizer_state_norms()
        for row, name in enumerate(names):
            p = run.parameters[name]
            grad = (float(trajectory.parameter_grad_norm(name)[-1]) if len(trajectory)
                    else math.nan)
            # "step" is a counter torch keeps as a tensor, not a state to take the norm of
            state = ", ".join(f"|{k}| {_number(v)}" for k, v in states.get(name, {}).items()
                              if k != "step")
            cells = (name, " × ".join(str(d) for d in p.shape) or "scalar",
                     _number(float(p.detach().norm())), _number(grad),
                     _number(updates.get(name, math.nan)),
                     "frozen" if name in run.frozen else "", state)
            for column, text in enumerate(cells):
                item = self.item(row, column)
                if item is None:
                    item = QTableWidgetItem(text)
                    self.setItem(row, column, item)
                elif item.text() != text:
                    item.setText(text)
                if column == len(cells) - 1:
                    item.setToolTip(text)  # the state column is often wider than the table
        self._throttle.drawn()
