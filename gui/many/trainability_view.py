"""The Trainability tab: a 2-D grid over two hyperparameters, each cell one run from one start.

core.many.trainability_map runs one cell per (value, lr): the lr along x (log axis) against a
second hyperparameter along y (momentum, beta1, ...; in model mode also "lr:LAYER", that
layer's own lr in a second param group: lr x lr for two layers). Every cell starts from the same
point (the race's start, or the model's initial weights) and is coloured by its final loss on a
log colour scale (the colour bar), diverged cells in their own colour: the boundary between
training and blowing up is what the picture is for (Sohl-Dickstein, "The boundary of neural
network trainability is fractal", 2024).

Drag a rectangle over the map (or zoom with the wheel) and the region shown is computed again at
the same resolution; Back returns to the previous region (from the cache). Hover a cell: its
setting, final loss and status. On the surface, "float32 (faster, less exact)" computes the
batch in float32 (the note says so; the cache keeps it apart); a model trains in float64.

Signals
-------
sigComputed(object)   a new map is on screen: (RaceOptimizer, result)
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from core.batch import DIVERGED, STATUSES
from core.errors import PlaygroundError
from core.many import (LAYER_LR, MAX_SWEEP_CELLS, is_log_axis, linear_spaced, log_spaced,
                       trainability_map)
from core.optimizers import get_spec
from gui.controller import Controller
from gui.many.common import (DTYPE_NAME, AnalysisRunner, ExportButtons, RaceOptimizer,
                             ResultCache, analysis_key, race_optimizers)
from gui.many.sweep_view import MODEL, RACE, LogAxis, float_edit, model_optimizers, read_float

DEFAULTS = {RACE: {"low": 1e-5, "high": 1.0, "grid": 48, "steps": 200},
            MODEL: {"low": 1e-3, "high": 10.0, "grid": 10, "steps": 50}}
DIVERGED_COLOUR = (192, 57, 43, 255)  # red: the colour map (viridis) has none
COLOUR_MAP = "viridis"
ZOOM_DELAY_MS = 400  # a wheel zoom is many range changes: compute once it rests
MAX_GRID = int(math.isqrt(MAX_SWEEP_CELLS))


def parameter_choices(option: RaceOptimizer, layers: list[tuple[int, str]] | None = None
                      ) -> list[str]:
    """What the y axis can be for this optimizer: its float hyperparameters other than lr,
    beta1 / beta2 for betas, and in model mode lr:LAYER for each layer with parameters."""
    names = []
    for h in get_spec(option.name).hyperparameters:
        if h.kind == "pair" and h.name == "betas":
            names += ["beta1", "beta2"]
        elif h.kind == "float" and h.name != "lr":
            names.append(h.name)
    preferred = [n for n in ("momentum", "beta1") if n in names]
    names = preferred + [n for n in names if n not in preferred]
    names += [f"{LAYER_LR}{index}" for index, _ in (layers or [])]
    return names


def default_range(option: RaceOptimizer, param: str) -> tuple[float, float]:
    """A first range for the y axis: the hyperparameter's own bounds (open ones pulled in)."""
    if param.startswith(LAYER_LR):
        return 1e-3, 10.0
    if param in ("beta1", "beta2"):
        return 0.0, 0.999
    h = get_spec(option.name).hyperparameter(param)
    low = 0.0 if h.low is None else float(h.low)
    high = float(h.high) if h.high is not None else max(1.0, 10 * float(h.default or 0))
    if h.high_open:
        high = low + 0.99 * (high - low)
    if h.low_open:
        low = low + 0.01 * (high - low)
    return low, high


def colour_values(result: Any) -> tuple[np.ndarray, str]:
    """(rows x columns of what the colour shows, its name): log10 of the final loss (minus the
    lowest, plus a hair, if any loss is 0 or below); NaN where the cell diverged."""
    cells = result.cells
    loss = np.asarray(cells.final_loss, dtype=np.float64)
    alive = (cells.status != DIVERGED) & np.isfinite(loss)
    shown = np.full(loss.shape, np.nan)
    name = "log10 final loss"
    if alive.any():
        lowest = float(loss[alive].min())
        if lowest > 0:
            shown[alive] = np.log10(loss[alive])
        else:
            span = float(loss[alive].max()) - lowest
            shown[alive] = np.log10(loss[alive] - lowest + 1e-12 * (span or 1.0))
            name = "log10 (final loss - lowest)"
    rows = 1 if result.values is None else len(result.values)
    return shown.reshape(rows, len(result.lrs)), name


class TrainabilityView(QWidget):
    """The Trainability tab over the race controller (and the model controller, when given)."""

    sigComputed = Signal(object)

    def __init__(self, controller: Controller, model_controller: Any = None, *,
                 cache: ResultCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model_controller = model_controller
        self.shown: tuple[RaceOptimizer, Any] | None = None
        self.history: list[tuple[tuple[float, float], tuple[float, float]]] = []
        self.image_values = np.zeros((0, 0))
        self.diverged_mask = np.zeros((0, 0), dtype=bool)
        self._options: list[RaceOptimizer] = []
        self._pending: tuple = ()
        self._zoom_timer = QTimer(self)
        self._zoom_timer.setSingleShot(True)
        self._zoom_timer.setInterval(ZOOM_DELAY_MS)
        self._zoom_timer.timeout.connect(self._on_zoom_rest)
        self._build(cache)
        self._on_mode_change()
        self._connections = [(controller.sigRunsChanged, self._refresh_options),
                             (controller.sigRunChanged, self._refresh_options)]
        if model_controller is not None:
            self._connections += [(model_controller.sigRunsChanged, self._refresh_options),
                                  (model_controller.sigRunChanged, self._refresh_options)]
        for signal, slot in self._connections:
            signal.connect(slot)

    # --- building ---------------------------------------------------------------------------------

    def _build(self, cache: ResultCache | None) -> None:
        self.mode_combo = QComboBox()
        self.mode_combo.addItem(RACE)
        if self.model_controller is not None:
            self.mode_combo.addItem(MODEL)
        self.mode_combo.currentTextChanged.connect(self._on_mode_change)
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.setToolTip("The run whose optimizer the map varies")
        self.optimizer_combo.currentIndexChanged.connect(self._on_optimizer_change)
        self.param_combo = QComboBox()
        self.param_combo.setToolTip("The hyperparameter along y (lr:N: layer N's own lr, a "
                                    "second torch param group)")
        self.param_combo.currentTextChanged.connect(self._on_param_change)
        self.lr_low_edit = float_edit(1e-5, "The lowest lr (x, log axis)")
        self.lr_high_edit = float_edit(1.0, "The highest lr")
        self.value_low_edit = float_edit(0.0, "The lowest value along y")
        self.value_high_edit = float_edit(0.99, "The highest value along y")
        self.grid_spin = QSpinBox()
        self.grid_spin.setRange(2, MAX_GRID)
        self.grid_spin.setToolTip("Cells per side (each one run; a zoom keeps it)")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setToolTip("optimizer.step() calls per cell")
        self.back_button = QPushButton("Back")
        self.back_button.setToolTip("The region before the last zoom")
        self.back_button.setEnabled(False)
        self.back_button.clicked.connect(self.back)
        self.runner = AnalysisRunner(cache, run_text="Compute map")
        self.runner.run_button.clicked.connect(self.compute)
        self.runner.sigResult.connect(self._on_result)
        self.exports = ExportButtons(lambda: self.graphics if self.shown else None, self.results,
                                     name="trainability", on_message=self.runner.show_message)
        top = QHBoxLayout()
        for label, widget in (("", self.mode_combo), ("", self.optimizer_combo),
                              ("y", self.param_combo), ("from", self.value_low_edit),
                              ("to", self.value_high_edit), ("lr from", self.lr_low_edit),
                              ("to", self.lr_high_edit), ("Grid", self.grid_spin),
                              ("Steps", self.steps_spin)):
            if label:
                top.addWidget(QLabel(label))
            top.addWidget(widget)
        self.float32_box = QCheckBox("float32 (faster, less exact)")
        self.float32_box.setToolTip("On the surface: compute the batch in float32 (close to, not "
                                    "equal to, the race's runs); a model always trains in "
                                    "float64")
        top.addStretch(1)
        for widget in (self.float32_box, self.back_button, self.exports):
            self.runner.add_trailing(widget)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.x_axis = LogAxis("bottom")
        self.y_log_axis = LogAxis("left")
        self.plot = self.graphics.addPlot(axisItems={"bottom": self.x_axis})
        self.plot.setLabel("bottom", "learning rate (log)")
        self.view_box = self.plot.getViewBox()
        self.view_box.setMouseMode(pg.ViewBox.RectMode)  # drag a rectangle to zoom into it
        self.view_box.sigRangeChangedManually.connect(lambda *_: self._zoom_timer.start())
        self.image = pg.ImageItem(axisOrder="row-major")
        self.diverged_image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.plot.addItem(self.diverged_image)
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(COLOUR_MAP),
                                          interactive=False)
        self.colour_bar.setImageItem(self.image, insert_in=self.plot)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_move)
        self.note = QLabel("Drag a rectangle over the map to compute that region again at the "
                           "same resolution; Back returns. Red: diverged.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444;")
        self.hover_label = QLabel(" ")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.runner)
        layout.addWidget(self.note)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.hover_label)

    # --- settings ---------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.mode_combo.currentText()

    @property
    def dtype(self) -> str:
        """What the next map computes in: float32 only on the surface, when asked."""
        return "float32" if self.float32_box.isChecked() and self.mode != MODEL else "float64"

    def _on_mode_change(self, *_: Any) -> None:
        d = DEFAULTS[self.mode]
        self.lr_low_edit.setText(f"{d['low']:g}")
        self.lr_high_edit.setText(f"{d['high']:g}")
        self.grid_spin.setValue(d["grid"])
        self.steps_spin.setValue(d["steps"])
        self.history.clear()
        self.back_button.setEnabled(False)
        self.float32_box.setEnabled(self.mode != MODEL)
        self._refresh_options()

    def _refresh_options(self, *_: Any) -> None:
        options = model_optimizers(self.model_controller) if self.mode == MODEL else [
            o for o in race_optimizers(self.controller) if o.batchable]
        titles = [o.title() for o in options]
        if titles == [self.optimizer_combo.itemText(i)
                      for i in range(self.optimizer_combo.count())]:
            self._options = options
            return
        current = self.optimizer_combo.currentText()
        self._options = options
        self.optimizer_combo.blockSignals(True)
        self.optimizer_combo.clear()
        self.optimizer_combo.addItems(titles)
        if current in titles:
            self.optimizer_combo.setCurrentIndex(titles.index(current))
        self.optimizer_combo.blockSignals(False)
        self._on_optimizer_change()

    def option(self) -> RaceOptimizer | None:
        index = self.optimizer_combo.currentIndex()
        return self._options[index] if 0 <= index < len(self._options) else None

    def _layers(self) -> list[tuple[int, str]]:
        if self.mode != MODEL:
            return []
        return [(index, name) for index, name, params in self.model_controller.layers()
                if params]

    def _on_optimizer_change(self, *_: Any) -> None:
        option = self.option()
        current = self.param_combo.currentText()
        choices = parameter_choices(option, self._layers()) if option is not None else []
        self.param_combo.blockSignals(True)
        self.param_combo.clear()
        self.param_combo.addItems(choices)
        if current in choices:
            self.param_combo.setCurrentIndex(choices.index(current))
        self.param_combo.blockSignals(False)
        self._on_param_change()

    def _on_param_change(self, *_: Any) -> None:
        option, param = self.option(), self.param_combo.currentText()
        if option is None or not param:
            return
        low, high = default_range(option, param)
        self.value_low_edit.setText(f"{low:g}")
        self.value_high_edit.setText(f"{high:g}")
        self.history.clear()
        self.back_button.setEnabled(False)

    def ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((lr low, high), (value low, high)) typed; PlaygroundError (one line) otherwise."""
        lr = (read_float(self.lr_low_edit, "the lowest lr", positive=True),
              read_float(self.lr_high_edit, "the highest lr", positive=True))
        log_y = is_log_axis(self.param_combo.currentText())
        value = (read_float(self.value_low_edit, "the lowest value", positive=log_y),
                 read_float(self.value_high_edit, "the highest value", positive=log_y))
        for (lo, hi), what in ((lr, "the lr range"), (value, "the value range")):
            if not lo < hi:
                raise PlaygroundError(f"{what} must go from low to high (got {lo:g} to {hi:g})")
        return lr, value

    def set_ranges(self, lr: tuple[float, float], value: tuple[float, float]) -> None:
        self.lr_low_edit.setText(f"{lr[0]:.6g}")
        self.lr_high_edit.setText(f"{lr[1]:.6g}")
        self.value_low_edit.setText(f"{value[0]:.6g}")
        self.value_high_edit.setText(f"{value[1]:.6g}")

    # --- computing --------------------------------------------------------------------------------

    def compute(self) -> bool:
        """Compute the map of the settings shown; True if a Job was started."""
        option, param = self.option(), self.param_combo.currentText()
        if option is None or not param:
            self.runner.show_message("No optimizer to map: add a run (L-BFGS runs start by "
                                     "start, in the race)", error=True)
            return False
        try:
            lr_range, value_range = self.ranges()
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return False
        n, steps, mode = self.grid_spin.value(), self.steps_spin.value(), self.mode
        lrs = log_spaced(*lr_range, n)
        values = (log_spaced if is_log_axis(param) else linear_spaced)(*value_range, n)
        settings = {"param": param, "values": tuple(values.tolist()),
                    "lrs": tuple(lrs.tolist()), "steps": steps}
        hps = (option.name, option.hyperparameters)
        if mode == MODEL:
            key: tuple = ("trainability", "model", self.model_controller.settings, option.key(),
                          tuple(sorted(settings.items())), DTYPE_NAME)
            model_settings = self.model_controller.settings

            def compute_one(_key: tuple, state: Any) -> Any:
                built = model_settings.session().build()  # the workspace's problem, exactly
                return trainability_map(built, hps, param, values, lrs, steps, None, state,
                                        option.frozen)
        else:
            session = self.controller.session
            surface, start = session.surface, session.start
            dtype = self.dtype
            key = analysis_key("trainability", surface, option, start=start, dtype=dtype,
                               **settings)

            def compute_one(_key: tuple, state: Any) -> Any:
                return trainability_map(surface, hps, param, values, lrs, steps, start, state,
                                        option.frozen, dtype=dtype)
        self._pending = (option, lr_range, value_range)
        return self.runner.request([key], compute_one, f"{n} × {n} runs, {steps} steps")

    def _on_result(self, results: dict) -> None:
        option, lr_range, value_range = self._pending
        result = next(iter(results.values()))
        self.shown = (option, result)
        self._ranges_shown = (lr_range, value_range)
        self._draw(result)
        self.sigComputed.emit(self.shown)

    def results(self) -> list[Any]:
        return [] if self.shown is None else [self.shown[1]]

    def shutdown(self) -> None:
        self._zoom_timer.stop()
        self.runner.shutdown()

    # --- zoom -------------------------------------------------------------------------------------

    def _on_zoom_rest(self) -> None:
        if self.shown is None:
            return
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        (lr0, lr1), (v0, v1) = self._ranges_shown
        log_y = is_log_axis(self.shown[1].param)
        lr = (max(10 ** x0, lr0), min(10 ** x1, lr1))  # into the map, never out of it
        value = ((max(10 ** y0, v0), min(10 ** y1, v1)) if log_y else
                 (max(y0, v0), min(y1, v1)))
        if not (lr[0] < lr[1] and value[0] < value[1]):
            return
        if (lr, value) == self._ranges_shown:
            return
        self.zoom_to(lr, value)

    def zoom_to(self, lr: tuple[float, float], value: tuple[float, float]) -> bool:
        """Compute the region (lr range, value range) at the same resolution; Back returns."""
        if self.shown is not None:
            self.history.append(self._ranges_shown)
            self.back_button.setEnabled(True)
        self.set_ranges(lr, value)
        return self.compute()

    def back(self) -> bool:
        """The region before the last zoom (from the cache)."""
        if not self.history:
            return False
        lr, value = self.history.pop()
        self.back_button.setEnabled(bool(self.history))
        self.set_ranges(lr, value)
        return self.compute()

    # --- drawing ----------------------------------------------------------------------------------

    def _draw(self, result: Any) -> None:
        shown, name = colour_values(result)
        self.image_values = shown
        self.diverged_mask = (result.cells.status == DIVERGED).reshape(shown.shape)
        log_y = is_log_axis(result.param)
        xs = np.log10(result.lrs)
        ys = np.log10(result.values) if log_y else np.asarray(result.values, dtype=np.float64)
        rect = _cell_rect(xs, ys)
        finite = shown[np.isfinite(shown)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        self.image.setImage(np.nan_to_num(shown, nan=lo), levels=(lo, hi))
        self.image.setRect(rect)
        overlay = np.zeros((*shown.shape, 4), dtype=np.uint8)
        overlay[self.diverged_mask] = DIVERGED_COLOUR
        self.diverged_image.setImage(overlay, levels=(0, 255))
        self.diverged_image.setRect(rect)
        self.colour_bar.setLevels((lo, hi))
        self.colour_bar.axis.setLabel(name)
        self.plot.setAxisItems({"left": self.y_log_axis if log_y else pg.AxisItem("left")})
        if result.param and result.param.startswith(LAYER_LR):
            layer = result.param[len(LAYER_LR):]
            self.plot.setLabel("left", f"lr of layer {layer} (log)")
            self.plot.setLabel("bottom", "lr of every other parameter (log)")
        else:
            self.plot.setLabel("left", (result.param or "") + (" (log)" if log_y else ""))
            self.plot.setLabel("bottom", "learning rate (log)")
        self.view_box.setRange(rect, padding=0)
        count = int(self.diverged_mask.sum())
        option = self.shown[0] if self.shown else None
        float32 = (" Computed in float32 (faster, less exact): a cell may differ slightly from "
                   "the race's run." if getattr(result, "dtype", "float64") == "float32" else "")
        self.note.setText(
            f"{option.title() if option else ''}: {len(result.cells)} runs, {count} diverged "
            "(red). Drag a rectangle over the map to compute that region again at the same "
            "resolution; Back returns." + float32)

    def cell_at(self, x: float, y: float) -> int | None:
        """The cell (row-major index) under view coordinates (log10 lr, value or log10)."""
        if self.shown is None:
            return None
        result = self.shown[1]
        xs = np.log10(result.lrs)
        ys = np.log10(result.values) if is_log_axis(result.param) else result.values
        i = int(np.argmin(np.abs(xs - x)))
        j = int(np.argmin(np.abs(np.asarray(ys) - y)))
        rect = _cell_rect(xs, np.asarray(ys, dtype=np.float64))
        if not rect.contains(QPointF(x, y)):
            return None
        return j * len(result.lrs) + i

    def describe_cell(self, k: int) -> str:
        assert self.shown is not None
        result = self.shown[1]
        j, i = divmod(k, len(result.lrs))
        c = result.cells
        return (f"lr {result.lrs[i]:.4g}, {result.param} {result.values[j]:.4g}: final loss "
                f"{c.final_loss[k]:.6g}, {STATUSES[c.status[k]]}")

    def _on_mouse_move(self, scene_pos: QPointF) -> None:
        if not self.plot.sceneBoundingRect().contains(scene_pos):
            return
        p = self.view_box.mapSceneToView(scene_pos)
        k = self.cell_at(p.x(), p.y())
        self.hover_label.setText(" " if k is None else self.describe_cell(k))

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        for signal, slot in self._connections:
            with contextlib.suppress(RuntimeError, TypeError):  # (already gone)
                signal.disconnect(slot)
        super().closeEvent(event)


def _cell_rect(xs: np.ndarray, ys: np.ndarray) -> QRectF:
    """The rectangle the cells cover: each centred on its value, half a step beyond the ends."""
    dx = (xs[-1] - xs[0]) / (len(xs) - 1) if len(xs) > 1 else 1.0
    dy = (ys[-1] - ys[0]) / (len(ys) - 1) if len(ys) > 1 else 1.0
    return QRectF(xs[0] - dx / 2, ys[0] - dy / 2, dx * len(xs), dy * len(ys))
