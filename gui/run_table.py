"""A live table of the runs: where each one is, its loss and gradient there, its last update, the
lr its scheduler gives (and the momentum or beta1 a cycling one moves), the gradient's norm
before and after clipping with the count of clipped steps, the noisy gradient beside the
noise-free one, its status, and the optimizer's own state for x and for y (momentum_buffer,
exp_avg, exp_avg_sq, ...). The clipping, noise and cycled-momentum columns are shown only while
some run has that setting.

Stepping can run at thousands of steps per second; the table redraws at most REFRESH_HZ times a
second, and a pending single-shot timer makes sure the last step is always shown.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QScrollArea, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.run import Run
from core.schedulers import scheduler_call_text
from gui.controller import Controller
from gui.status_words import short_status, status_colour
from gui.throttle import Throttle

REFRESH_HZ = 10
COLUMNS = ("run", "step", "x", "y", "loss", "∂loss/∂x", "∂loss/∂y", "|grad|", "Δx", "Δy", "lr",
           "momentum/β1", "|g| before clip", "|g| after clip", "clipped", "noisy ∂x",
           "noisy ∂y", "status", "state x", "state y")
# Columns shown only while some run has the setting that fills them (else every cell is "–").
CYCLED_COLUMNS = ("momentum/β1",)
CLIP_COLUMNS = ("|g| before clip", "|g| after clip", "clipped")
NOISE_COLUMNS = ("noisy ∂x", "noisy ∂y")
COLUMN_TIPS = {
    "step": "optimizer steps taken",
    "x": "the current point", "y": "the current point",
    "loss": "the loss at the current point",
    "∂loss/∂x": "the gradient at the current point (x.grad after loss.backward())",
    "∂loss/∂y": "the gradient at the current point (y.grad after loss.backward())",
    "|grad|": "length of the gradient",
    "Δx": "how far the last optimizer.step() moved x", "Δy": "how far the last step moved y",
    "lr": "the lr the next optimizer.step() uses (after scheduler.step(), if the run has a "
          "scheduler), together with this row's gradient",
    "momentum/β1": "the momentum (or Adam's beta1) a CyclicLR / OneCycleLR scheduler cycles, "
                   "for the next step",
    "|g| before clip": "the gradient's norm before clipping (as torch's clip measured it; with "
                       "noise, of the noisy gradient)",
    "|g| after clip": "the norm of the gradient the next optimizer.step() uses, after "
                      "clip_grad_norm_ / clip_grad_value_",
    "clipped": "how many steps' gradients were clipped so far (✂: this one is)",
    "noisy ∂x": "∂loss/∂x plus the run's seeded Gaussian noise: what the optimizer uses "
                "(∂loss/∂x is the noise-free gradient)",
    "noisy ∂y": "∂loss/∂y plus the run's seeded Gaussian noise: what the optimizer uses",
    "state x": "optimizer.state[x]: what the optimizer keeps for x between steps",
    "state y": "optimizer.state[y]: what the optimizer keeps for y between steps",
}
FROZEN = "frozen"
NO_VALUE = "–"


def format_value(value: Any) -> str:
    """A number in 5 significant digits; a vector as [a, b, ...]; anything else as text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return NO_VALUE if isinstance(value, float) and math.isnan(value) else f"{value:.5g}"
    if isinstance(value, list):
        shown = ", ".join(format_value(v) for v in value[:4])
        return f"[{shown}{', …' if len(value) > 4 else ''}]"
    return str(value)


def format_state(state: dict[str, Any]) -> str:
    """One parameter's optimizer state on one line: `exp_avg=0.1, exp_avg_sq=0.02, step=12`."""
    return ", ".join(f"{key}={format_value(value)}" for key, value in state.items()) or NO_VALUE


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(10, 10)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


def _tool_lines(run: Run) -> list[str]:
    """The selected run's scheduler (and where it is in its schedule), clipping and noise, as
    PyTorch writes them, for the details beside the table."""
    lines: list[str] = []
    if run.scheduler_setting is not None:
        lines += ["scheduler:", f"  {scheduler_call_text(*run.scheduler_setting)}"]
        scheduler = run.scheduler
        if scheduler is not None:
            lr = run.optimizer.param_groups[0]["lr"]
            lines.append(f"  at step {getattr(scheduler, 'last_epoch', 0)} of its schedule, "
                         f"lr = {format_value(lr)}")
    if run.clipping is not None:
        flags = run.trajectory.column("clipped") if "clipped" in run.trajectory.fields else []
        lines += ["clipping:", f"  {run.clipping.call_text('params')}",
                  f"  {int(np.nansum(flags))} of {len(run.trajectory)} gradients clipped"]
    if run.noise is not None:
        lines += ["gradient noise:", f"  grad += {format_value(run.noise.sigma)} * "
                                     f"randn(generator seeded {run.noise.seed})"]
    return lines


class RunTable(QWidget):
    """One row per run, redrawn from the runs (never from a copy) at most REFRESH_HZ times a second.

    `table` is the QTableWidget (columns in COLUMNS); `details` is a label beside it listing every
    state entry of the selected run's optimizer, for x and for y, one per line.
    """

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        for i, name in enumerate(COLUMNS):
            header_item = self.table.horizontalHeaderItem(i)
            header_item.setToolTip(COLUMN_TIPS.get(name, ""))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.itemSelectionChanged.connect(self._on_row_selected)

        self.details = QLabel()
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setStyleSheet("font-family: monospace; font-size: 11px; color: #333;")
        self.details.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.details.setContentsMargins(4, 2, 4, 2)
        # In a scroll area of its own: L-BFGS keeps a dozen entries, and the scroll position
        # survives the text changing on every redraw.
        details_area = QScrollArea()
        details_area.setWidgetResizable(True)
        details_area.setWidget(self.details)
        details_area.setMinimumWidth(160)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(details_area)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([720, 280])  # scaled to the real width once shown
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self._throttle = Throttle(self.refresh, REFRESH_HZ, self)
        self._runs: list[Run] = []

        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigRunChanged.connect(self._on_run_change)
        controller.sigStepped.connect(self._on_stepped_change)
        controller.sigSurfaceChanged.connect(self._on_surface_change)
        controller.sigSelectionChanged.connect(self._on_selection_change)
        self._on_runs_change()

    # --- controller -> view -----------------------------------------------------------------------

    def _on_runs_change(self) -> None:
        self._runs = list(self.controller.session.runs)
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._runs))
        for row in range(len(self._runs)):
            for col in range(len(COLUMNS)):
                if self.table.item(row, col) is None:
                    item = QTableWidgetItem()
                    if col not in (0, COLUMNS.index("status"), COLUMNS.index("state x"),
                                   COLUMNS.index("state y")):
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                              | Qt.AlignmentFlag.AlignVCenter)
                    self.table.setItem(row, col, item)
        self.table.blockSignals(False)
        self.refresh()
        self._on_selection_change(self.controller.selected)
        self.table.resizeColumnsToContents()
        # Values grow longer as runs step: give number columns room for a full one up front.
        metrics = self.table.fontMetrics()
        number = metrics.horizontalAdvance("-1.23457e-05") + 14
        state = metrics.horizontalAdvance("step=1234, exp_avg=-0.123457, exp_avg_sq=12.3457") + 14
        for col, name in enumerate(COLUMNS):
            if name in ("run", "status"):
                continue
            wanted = state if name.startswith("state") else number
            if name == "step":
                wanted = metrics.horizontalAdvance("1234567") + 14
            self.table.setColumnWidth(col, max(self.table.columnWidth(col), wanted))

    def _on_run_change(self, run: Run) -> None:
        self.refresh()  # a new colour, label, lr or freeze: cheap, and the user is waiting for it

    def _on_surface_change(self) -> None:
        self.refresh()

    def _on_stepped_change(self) -> None:
        self._throttle.request()

    def _on_selection_change(self, run: Run | None) -> None:
        row = self._runs.index(run) if run in self._runs else -1
        self.table.blockSignals(True)
        if row >= 0:
            self.table.selectRow(row)
        else:
            self.table.clearSelection()
        self.table.blockSignals(False)
        self._refresh_details()

    def _on_row_selected(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if len(rows) == 1:
            row = rows.pop()
            if row < len(self._runs):
                self.controller.select(self._runs[row])

    # --- drawing ----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw every row from its run now."""
        self._throttle.drawn()
        if self._runs != self.controller.session.runs:
            self._on_runs_change()  # the session was replaced under us
            return
        self._show_tool_columns()
        for row, run in enumerate(self._runs):
            self._draw_row(row, run)
        self._refresh_details()

    def _draw_row(self, row: int, run: Run) -> None:
        item = self.table.item
        name = item(row, 0)
        color = QColor(run.color or "#000000")
        name.setText(run.title)
        name.setIcon(_swatch(color.name()))
        # The run's colour, darkened when it would be unreadable on white (the palette's yellow).
        name.setForeground(QBrush(color.darker(170) if color.lightnessF() > 0.6 else color))
        font = name.font()
        font.setBold(True)
        font.setStrikeOut(not run.enabled)
        name.setFont(font)
        name.setToolTip(f"{run.title}\n{'enabled' if run.enabled else 'disabled'}")

        traj = run.trajectory
        last = traj.last() if len(traj) else None
        texts = [str(run.steps)]
        if last is None:
            texts += [NO_VALUE] * 6
        else:
            grads = [FROZEN if c in run.frozen else format_value(last[f"grad_{c}"])
                     for c in ("x", "y")]
            norm = math.hypot(*(0.0 if math.isnan(last[f"grad_{c}"]) else last[f"grad_{c}"]
                                for c in ("x", "y")))
            texts += [format_value(last["x"]), format_value(last["y"]),
                      format_value(last["loss"]), *grads, format_value(norm)]
        texts += [format_value(run.last_update[0]), format_value(run.last_update[1])]
        texts += self._tool_texts(run, last)
        for col, text in enumerate(texts, start=1):
            cell = item(row, col)
            if cell.text() != text:
                cell.setText(text)

        # The run's own status words (as the card, the graph header and the CLI say them): the
        # step of a divergence is run.diverged_at everywhere.
        status = item(row, COLUMNS.index("status"))
        status_text = short_status(run)
        if status.text() != status_text:
            status.setText(status_text)
            status.setForeground(QBrush(QColor(status_colour(run))))
        # A disabled run's status_text is "disabled": the tip adds where it stood when switched off.
        state = getattr(run, "state_text", run.status_text)
        tip = run.status_text if run.enabled or state == run.status_text else (
            f"{run.status_text} ({state} when switched off)")
        if status.toolTip() != tip:
            status.setToolTip(tip)

        state = run.optimizer_state()
        for coordinate in ("x", "y"):
            cell = item(row, COLUMNS.index(f"state {coordinate}"))
            text = format_state(state[coordinate])
            if cell.text() != text:
                cell.setText(text)
                cell.setToolTip("\n".join(f"{k} = {v}" for k, v in state[coordinate].items()))

    @staticmethod
    def _tool_texts(run: Run, last: dict[str, float] | None) -> list[str]:
        """lr, the cycled momentum, the clipping's norms and count, the noisy gradient."""
        if last is None:
            return [NO_VALUE] * 7

        def field(name: str) -> str:
            value = last.get(name)
            return NO_VALUE if value is None else format_value(value)

        cycled = next((field(n) for n in ("momentum", "beta1") if n in last), NO_VALUE)
        if run.clipping is not None and "clipped" in last:
            flags = run.trajectory.column("clipped")
            count = int(np.nansum(flags))
            clipped = f"{count}{' ✂' if last['clipped'] == 1 else ''}"
            clip = [field("grad_norm_before_clip"), field("grad_norm_after_clip"), clipped]
        else:
            clip = [NO_VALUE] * 3
        noisy = [FROZEN if c in run.frozen else field(f"noisy_grad_{c}")
                 for c in ("x", "y")] if run.noise is not None else [NO_VALUE] * 2
        return [field("lr"), cycled, *clip, *noisy]

    def _show_tool_columns(self) -> None:
        """Show the cycled-momentum, clipping and noise columns only while a run has them."""
        runs = self._runs
        wanted = {CYCLED_COLUMNS: any(r.scheduler is not None and
                                      getattr(r.scheduler, "cycle_momentum", False)
                                      for r in runs),
                  CLIP_COLUMNS: any(r.clipping is not None for r in runs),
                  NOISE_COLUMNS: any(r.noise is not None for r in runs)}
        for names, shown in wanted.items():
            for name in names:
                col = COLUMNS.index(name)
                if self.table.isColumnHidden(col) == shown:
                    self.table.setColumnHidden(col, not shown)

    def _refresh_details(self) -> None:
        run = self.controller.selected
        if run is None or run not in self._runs:
            self.details.setText("")
            return
        state = run.optimizer_state()
        lines = [f"{run.title}", "optimizer.state:"]
        if run.spec.needs_closure:
            lines.append("  (L-BFGS keeps it all under its first parameter, x)")
        for coordinate in ("x", "y"):
            entries = state[coordinate]
            frozen = " (frozen)" if coordinate in run.frozen else ""
            if not entries:
                lines.append(f"  {coordinate}{frozen}: (empty)")
            for key, value in entries.items():
                lines.append(f"  {coordinate}{frozen}: {key} = {format_value(value)}")
        lines += _tool_lines(run)
        text = "\n".join(lines)
        if self.details.text() != text:
            self.details.setText(text)

    def close(self) -> bool:
        self._throttle.cancel()
        c = self.controller
        for signal, slot in ((c.sigRunsChanged, self._on_runs_change),
                             (c.sigRunChanged, self._on_run_change),
                             (c.sigStepped, self._on_stepped_change),
                             (c.sigSurfaceChanged, self._on_surface_change),
                             (c.sigSelectionChanged, self._on_selection_change)):
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                signal.disconnect(slot)
        return super().close()
