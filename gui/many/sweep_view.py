"""The LR sweep tab: final loss (or steps to converge) against the learning rate, per optimizer.

For every optimizer of the session (the race's, or with "Model" chosen the model workspace's),
core.many.lr_sweep runs one start per learning rate: on the surface one param group per lr in
one batch, in model mode a copy of the model per lr, each from the initial weights (each cell
equals `main.py sweep`, and `main.py run` / `train` with that lr). The curves share one log lr
axis (default 1e-5 to 10, 50 values); a diverged lr is a red cross along the top of the plot,
the best lr (BEST_LR_RULE) a star. Click a point: that optimizer's run takes that lr (the
controller's set_hyperparameter / set_lr), and the message says so. On the surface,
"float32 (faster, less exact)" computes the batch in float32 (the note says so; the cache keeps
it apart); model mode is float64 only (each cell equals `train`).

The helpers at the top (`model_optimizers`, `run_for`, `set_run_lr`, `LogAxis`, `float_edit`)
are shared with the range test and trainability tabs.

Signals
-------
sigComputed(object)   new curves are on screen: a list of (RaceOptimizer, result)
sigLrApplied(object, float)  a click set a run's lr: (the Run, the lr)
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QSpinBox,
                               QVBoxLayout, QWidget)

from core.batch import CONVERGED, DIVERGED, STATUSES
from core.errors import PlaygroundError
from core.many import BEST_LR_RULE, MAX_SWEEP_CELLS, log_spaced, lr_sweep
from core.run import Run
from gui.controller import Controller
from gui.many.common import (DTYPE_NAME, AnalysisRunner, ExportButtons, RaceOptimizer,
                             ResultCache, analysis_key, race_optimizers, run_key)

RACE, MODEL = "Race surface", "Model"
DEFAULTS = {RACE: {"low": 1e-5, "high": 10.0, "count": 50, "steps": 200},
            MODEL: {"low": 1e-4, "high": 10.0, "count": 25, "steps": 100}}
MEASURES = ("final loss", "steps to converge")
BEST_COLOUR = "#000000"
MAX_STEPS = 100_000


# --- shared by the three tabs --------------------------------------------------------------------


def model_optimizers(model_controller: Any) -> list[RaceOptimizer]:
    """The model workspace's runs as optimizer settings (race_optimizers over its runs)."""
    return race_optimizers(SimpleNamespace(session=SimpleNamespace(runs=model_controller.runs)))


def run_for(runs: Sequence[Run], option: RaceOptimizer) -> Run | None:
    """The first run whose optimizer setting is `option`'s (None if there is none now)."""
    return next((run for run in runs if run_key(run) == option.key()), None)


def set_run_lr(race: Controller, model: Any, mode: str, run: Run, lr: float) -> str:
    """Give `run` the lr through its workspace's controller; the message to show."""
    if mode == MODEL:
        model.set_lr(run, lr)
        model.select(run)
        where = "in the model workspace"
    else:
        race.set_hyperparameter(run, "lr", lr)
        race.select(run)
        where = "in the race"
    return f"Set the lr of {run.title} to {lr:.4g} {where}"


def float_edit(value: float, tip: str, width: int = 80) -> QLineEdit:
    edit = QLineEdit(f"{value:g}")
    edit.setMaximumWidth(width)
    edit.setToolTip(tip)
    return edit


def read_float(edit: QLineEdit, what: str, positive: bool = False) -> float:
    """The number typed; PlaygroundError (one line) otherwise."""
    try:
        value = float(edit.text())
    except ValueError:
        raise PlaygroundError(f"{what} must be a number (got {edit.text()!r})") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise PlaygroundError(f"{what} must be a {'positive' if positive else 'finite'} number "
                              f"(got {edit.text()!r})")
    return value


class LogAxis(pg.AxisItem):
    """An axis whose coordinates are log10 of the values it names (an image's lr axis)."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [f"{10 ** v:.3g}" for v in values]


# --- the tab -----------------------------------------------------------------------------------


class SweepView(QWidget):
    """The LR sweep tab over the race controller (and the model controller, when given)."""

    sigComputed = Signal(object)
    sigLrApplied = Signal(object, float)

    def __init__(self, controller: Controller, model_controller: Any = None, *,
                 cache: ResultCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model_controller = model_controller
        self.shown: list[tuple[RaceOptimizer, Any]] = []
        self._runs: dict[tuple, Run] = {}  # option key -> the run it was computed for
        self._mode_shown = RACE
        self._pending: tuple = ()
        self._build(cache)
        self._on_mode_change()

    def _build(self, cache: ResultCache | None) -> None:
        self.mode_combo = QComboBox()
        self.mode_combo.addItem(RACE)
        if self.model_controller is not None:
            self.mode_combo.addItem(MODEL)
        self.mode_combo.setToolTip("Sweep the race's optimizers on its surface, or the model "
                                   "workspace's (each lr trains a copy of the model)")
        self.mode_combo.currentTextChanged.connect(self._on_mode_change)
        self.low_edit = float_edit(1e-5, "The lowest learning rate")
        self.high_edit = float_edit(10.0, "The highest learning rate")
        self.count_spin = QSpinBox()
        self.count_spin.setRange(2, 1000)
        self.count_spin.setToolTip("How many learning rates, evenly spaced on a log axis")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.steps_spin.setToolTip("optimizer.step() calls per learning rate")
        self.measure_combo = QComboBox()
        self.measure_combo.addItems(MEASURES)
        self.measure_combo.setToolTip("What the curve shows against the lr")
        self.measure_combo.currentTextChanged.connect(lambda _: self._draw())
        self.float32_box = QCheckBox("float32 (faster, less exact)")
        self.float32_box.setToolTip("On the surface: compute the batch in float32 (close to, not "
                                    "equal to, the race's runs); a model always trains in "
                                    "float64")
        self.runner = AnalysisRunner(cache, run_text="Compute sweep")
        self.runner.run_button.clicked.connect(self.compute)
        self.runner.sigResult.connect(self._on_result)
        self.exports = ExportButtons(lambda: self.picture if self.shown else None, self.results,
                                     name="lr-sweep", on_message=self.runner.show_message)
        controls = QHBoxLayout()
        for label, widget in (("", self.mode_combo), ("lr from", self.low_edit),
                              ("to", self.high_edit), ("values", self.count_spin),
                              ("Steps", self.steps_spin), ("Show", self.measure_combo)):
            if label:
                controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addWidget(self.float32_box)
        controls.addStretch(1)
        self.runner.add_trailing(self.exports)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLogMode(x=True, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "learning rate (log)")
        # The legend is a line under the plot, not an item on it: on the plot it would hide
        # (and take the clicks of) the points under it. Plot and legend are the picture.
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("background: white; color: black; padding: 4px;")
        self.picture = QWidget()
        self.picture.setStyleSheet("background: white;")
        picture = QVBoxLayout(self.picture)
        picture.setContentsMargins(0, 0, 0, 0)
        picture.setSpacing(0)
        picture.addWidget(self.plot, 1)
        picture.addWidget(self.legend)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(controls)
        layout.addWidget(self.runner)
        layout.addWidget(self.note)
        layout.addWidget(self.picture, 1)

    # --- settings --------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.mode_combo.currentText()

    def _on_mode_change(self, *_: Any) -> None:
        d = DEFAULTS[self.mode]
        self.low_edit.setText(f"{d['low']:g}")
        self.high_edit.setText(f"{d['high']:g}")
        self.count_spin.setValue(d["count"])
        self.steps_spin.setValue(d["steps"])
        self.float32_box.setEnabled(self.mode != MODEL)

    @property
    def dtype(self) -> str:
        """What the next sweep computes in: float32 only on the surface, when asked."""
        return "float32" if self.float32_box.isChecked() and self.mode != MODEL else "float64"

    def lrs(self) -> np.ndarray:
        """The learning rates typed (log-spaced); PlaygroundError (one line) for bad input."""
        low = read_float(self.low_edit, "the lowest lr", positive=True)
        high = read_float(self.high_edit, "the highest lr", positive=True)
        if not low < high:
            raise PlaygroundError(f"the lr range must go from low to high (got {low:g} to "
                                  f"{high:g})")
        count = self.count_spin.value()
        if count > MAX_SWEEP_CELLS:
            raise PlaygroundError(f"at most {MAX_SWEEP_CELLS} learning rates")
        return log_spaced(low, high, count)

    def options(self) -> list[RaceOptimizer]:
        if self.mode == MODEL:
            return model_optimizers(self.model_controller)
        return race_optimizers(self.controller)

    def _runs_now(self) -> list[Run]:
        return list(self.model_controller.runs if self.mode == MODEL else
                    self.controller.session.runs)

    # --- computing --------------------------------------------------------------------------------

    def compute(self) -> bool:
        """Sweep every optimizer of the chosen session; True if a Job was started (False: all
        cached, nothing to sweep, or bad input, which the message says)."""
        try:
            lrs = self.lrs()
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return False
        steps, mode = self.steps_spin.value(), self.mode
        options = self.options()
        swept = [o for o in options if mode == MODEL or o.batchable]
        if not swept:
            self.runner.show_message("No optimizer to sweep: add a run (L-BFGS runs start by "
                                     "start, in the race)", error=True)
            return False
        runs = self._runs_now()
        self._runs = {o.key(): r for o in swept if (r := run_for(runs, o)) is not None}
        by_key = {self._key(mode, o, lrs, steps): o for o in swept}
        compute_one = self._model_job(by_key, lrs, steps) if mode == MODEL else \
            self._race_job(by_key, lrs, steps)
        self._pending = (mode, options, swept)
        return self.runner.request(list(by_key), compute_one,
                                   f"{len(swept)} × {len(lrs)} learning rates, {steps} steps")

    def _key(self, mode: str, option: RaceOptimizer, lrs: np.ndarray, steps: int) -> tuple:
        settings = {"lrs": tuple(lrs.tolist()), "steps": steps}
        if mode == MODEL:
            return ("lr_sweep", "model", self.model_controller.settings, option.key(),
                    tuple(sorted(settings.items())), DTYPE_NAME)
        session = self.controller.session
        return analysis_key("lr_sweep", session.surface, option, start=session.start,
                            dtype=self.dtype, **settings)

    def _race_job(self, by_key: dict, lrs: np.ndarray, steps: int) -> Any:
        surface, start = self.controller.session.surface, self.controller.session.start
        dtype = self.dtype

        def compute_one(key: tuple, state: Any) -> Any:
            o = by_key[key]
            return lr_sweep(surface, (o.name, o.hyperparameters), lrs, steps, start, state,
                            o.frozen, dtype=dtype)
        return compute_one

    def _model_job(self, by_key: dict, lrs: np.ndarray, steps: int) -> Any:
        settings = self.model_controller.settings  # frozen: the Job builds its own copy

        def compute_one(key: tuple, state: Any) -> Any:
            o = by_key[key]
            built = settings.session().build()  # the workspace's problem, bit for bit
            return lr_sweep(built, (o.name, o.hyperparameters), lrs, steps, None, state,
                            o.frozen)
        return compute_one

    def _on_result(self, results: dict) -> None:
        mode, options, swept = self._pending
        values = iter(results.values())
        self._mode_shown = mode
        self.shown = [(o, next(values)) for o in swept]
        left_out = [o for o in options if o not in swept]
        notes = [f"Best lr: {BEST_LR_RULE}. Click a point to give its run that lr."]
        notes += [f"{o.title()}: {o.refusal}" for o in left_out]
        notes += [f"{o.title()}: the sweep leaves out {', '.join(o.left_out)}"
                  for o, _ in self.shown if o.left_out]
        if any(getattr(r, "dtype", "float64") == "float32" for _, r in self.shown):
            notes.append("Computed in float32 (faster, less exact): a point may differ slightly "
                         "from the race's run with that lr.")
        self.note.setText(" ".join(notes))
        self._draw()
        self.sigComputed.emit(list(self.shown))

    def results(self) -> list[Any]:
        return [r for _, r in self.shown]

    def shutdown(self) -> None:
        self.runner.shutdown()

    # --- drawing ----------------------------------------------------------------------------------

    def curve_values(self, result: Any) -> np.ndarray:
        """What the curve draws per lr: final loss or converged_at; NaN where not drawn
        (diverged; not converged for steps)."""
        cells = result.cells
        if self.measure_combo.currentText() == MEASURES[0]:
            values = cells.final_loss.astype(np.float64).copy()
        else:
            values = np.where(cells.status == CONVERGED, cells.converged_at, np.nan)
        values[cells.status == DIVERGED] = np.nan
        return values

    def _draw(self) -> None:
        self.plot.clear()
        measure = self.measure_combo.currentText()
        self.plot.setLabel("left", measure)
        drawn = [(o, r, self.curve_values(r)) for o, r in self.shown]
        finite = np.concatenate([v[np.isfinite(v)] for _, _, v in drawn] or [np.zeros(0)])
        log_y = measure == MEASURES[0] and finite.size > 0 and bool((finite > 0).all())
        self.plot.setLogMode(x=True, y=log_y)
        top = float(finite.max()) if finite.size else 1.0
        top = top * 3 if log_y else top + 0.1 * (abs(top) or 1.0)
        self.points: list[pg.PlotDataItem] = []
        for row, (o, r, values) in enumerate(drawn):
            lrs = r.lrs
            ok = np.isfinite(values)
            item = pg.PlotDataItem(lrs[ok], values[ok], pen=pg.mkPen(o.color, width=1),
                                   symbol="o", symbolSize=6, symbolBrush=o.color,
                                   symbolPen=None, name=o.title(),
                                   data=np.flatnonzero(ok).tolist())
            item.sigPointsClicked.connect(
                lambda _item, points, _ev, o=o, r=r: self._on_points_clicked(o, r, points))
            self.plot.addItem(item)
            self.points.append(item)
            diverged = r.cells.status == DIVERGED
            if diverged.any():  # a row of crosses per optimizer along the top, in its colour
                y = top * 1.6 ** row if log_y else top + 0.04 * row * (abs(top) or 1.0)
                marks = pg.PlotDataItem(lrs[diverged], np.full(int(diverged.sum()), y),
                                        pen=None, symbol="x", symbolSize=9,
                                        symbolBrush=o.color, symbolPen=pg.mkPen(o.color))
                marks.scatter.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # not an lr
                self.plot.addItem(marks)
            if r.best is not None and ok[r.best]:
                star = pg.PlotDataItem([lrs[r.best]], [values[r.best]], pen=None, symbol="star",
                                       symbolSize=16, symbolBrush=o.color,
                                       symbolPen=pg.mkPen(BEST_COLOUR, width=1))
                star.scatter.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # the point's
                self.plot.addItem(star)
        entries = [f'<span style="color:{o.color}">&#9679;&#8212;</span> {html.escape(o.title())}'
                   for o, _ in self.shown]
        entries.append("&#9733; best lr")
        if any((r.cells.status == DIVERGED).any() for _, r in self.shown):
            entries.append("&#10005; diverged (along the top, in the run's colour)")
        self.legend.setText(" &nbsp;&nbsp; ".join(entries))

    def _on_points_clicked(self, option: RaceOptimizer, result: Any, points: Any) -> None:
        if len(points):
            self.apply_lr(option, float(result.lrs[int(points[0].data())]))

    def apply_lr(self, option: RaceOptimizer, lr: float) -> bool:
        """Give `option`'s run (the one swept) the lr; False (and a message) if it is gone."""
        run = self._runs.get(option.key())
        runs = self.model_controller.runs if self._mode_shown == MODEL else \
            self.controller.session.runs
        if run is None or run not in runs:
            where = "model workspace" if self._mode_shown == MODEL else "race"
            self.runner.show_message(f"{option.title()} is no longer a run of the {where}",
                                     error=True)
            return False
        try:
            text = set_run_lr(self.controller, self.model_controller, self._mode_shown, run, lr)
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return False
        self.runner.show_message(text)
        self.sigLrApplied.emit(run, lr)
        return True

    def describe(self, option: RaceOptimizer, result: Any, k: int) -> str:
        """One cell in words (tests, tooltips)."""
        c = result.cells
        return (f"{option.title()}: lr {result.lrs[k]:.4g}, final loss {c.final_loss[k]:.6g}, "
                f"{STATUSES[c.status[k]]}")

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)
