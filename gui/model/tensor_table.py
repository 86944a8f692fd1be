"""TensorTable: the selected run's parameter tensors, one row each, updated a few times a second.

Columns: name, shape, |value|, |grad|, |update| (the last step's change), frozen, and the norms
of the optimizer's state for that tensor (momentum_buffer, exp_avg, ...). The headers are short
(|w|, |g|, |Δ|, ...) with the long name in their tooltip, the numbers compact (3 significant
digits, 1.23e-4 below 0.01) and the state column takes what width is left (its full text in the
tooltip), so the table fits its pane at 1280 px wide without scrolling sideways (its minimum
width is that of the other columns). Clicking a row
picks that tensor (the controller's selected_tensor) for the heatmap of its values and gradient.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from core.run import Run
from gui.model.controller import ModelController
from gui.throttle import Throttle

COLUMNS = ("name", "shape", "|w|", "|g|", "|Δ|", "❄", "state")
HEADER_TIPS = ("the parameter's name in the model", "the tensor's shape",
               "|value|: the 2-norm of the tensor", "|grad|: the 2-norm of its last gradient",
               "|update|: the 2-norm of the last step's change to it",
               "frozen: requires_grad is off, the optimizer leaves it alone",
               "optimizer state: the 2-norm of each tensor the optimizer keeps for it "
               "(momentum_buffer, exp_avg, ...)")
REDRAW_HZ = 4


def _number(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.4g}"


def compact(value: float | None) -> str:
    """A figure in a few characters: 3 significant digits, in e-notation (1.23e-4) below 0.01
    or from 1e4 up; "–" for none."""
    if value is None or math.isnan(value):
        return "–"
    if value != 0 and not 0.01 <= abs(value) < 1e4:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.3g}"


class TensorTable(QTableWidget):
    """Per-tensor figures of the controller's selected run."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.controller = controller
        self.setHorizontalHeaderLabels(list(COLUMNS))
        for column, tip in enumerate(HEADER_TIPS):
            self.horizontalHeaderItem(column).setToolTip(tip)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.setToolTip("click a row to see the tensor and its gradient as heatmaps")
        self.cellClicked.connect(self._on_row_click)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(24)
        self.setWordWrap(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._throttle = Throttle(self.refresh, REDRAW_HZ, self)
        controller.sigStepped.connect(self._throttle.request)
        controller.sigRunChanged.connect(lambda _run: self.refresh())
        controller.sigSelectionChanged.connect(lambda _run: self.refresh())
        controller.sigProblemChanged.connect(self.refresh)
        self.refresh()

    def minimumSizeHint(self) -> QSize:
        """Wide enough for every column but the state's, which gets what is left (elided, its
        text in the tooltip): a splitter gives the table this much before its neighbour."""
        hint = super().minimumSizeHint()
        header = self.horizontalHeader()
        width = (sum(header.sectionSize(c) for c in range(len(COLUMNS) - 1))
                 + header.minimumSectionSize()  # the state column's least
                 + 2 * self.frameWidth() + self.verticalScrollBar().sizeHint().width())
        return QSize(max(hint.width(), width), hint.height())

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
            cells = (name, "×".join(str(d) for d in p.shape) or "scalar",
                     compact(float(p.detach().norm())), compact(grad),
                     compact(updates.get(name, math.nan)),
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
        self.updateGeometry()  # the columns' widths may have changed: so has minimumSizeHint
        self._throttle.drawn()
