"""The LR range test tab (model mode): the loss against an exponentially ramped lr, and a
suggested lr with the rule that chose it.

core.lr_finder.range_test runs one short training run of the chosen model run's optimizer from
the model's initial weights on the workspace's own minibatches, its lr ramped from LOW to HIGH by
torch's ExponentialLR, and stops once the smoothed loss passes K times its best (fastai's
lr_find, pytorch-lr-finder). The raw loss is drawn thin and grey, the smoothed loss in the run's
colour, both against the lr on a log axis; the suggestion (fastai's "valley", or the steepest
fall) is a vertical line with its rule written beside it. "Use this lr" gives the selected run
that lr through the model controller.

Signals
-------
sigComputed(object)   a new test is on screen: (RaceOptimizer, RangeTest)
sigLrApplied(object, float)  "Use this lr" set a run's lr: (the Run, the lr)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from core.errors import PlaygroundError
from core.lr_finder import (DEFAULT_HIGH, DEFAULT_STEPS, DEFAULT_STOP_FACTOR, MAX_STEPS,
                            MIN_STEPS, RULES, RangeTest, range_test)
from gui.many.common import DTYPE_NAME, AnalysisRunner, ExportButtons, RaceOptimizer, ResultCache
from gui.many.sweep_view import float_edit, model_optimizers, read_float, run_for

DEFAULT_LOW = 1e-5  # lr_finder's 1e-7 spends the first fifth of a short test where nothing moves
RAW_COLOUR = "#b0b0b0"
SUGGESTION_COLOUR = "#d62728"


class RangeTestView(QWidget):
    """The LR range test over the model controller (its runs, problem and selection)."""

    sigComputed = Signal(object)
    sigLrApplied = Signal(object, float)

    def __init__(self, model_controller: Any | None, *, cache: ResultCache | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_controller = model_controller
        self.shown: tuple[RaceOptimizer, RangeTest] | None = None
        self._options: list[RaceOptimizer] = []
        self._run: Any = None  # the run the shown test was computed for
        self._build(cache)
        self._connections = []
        if model_controller is None:  # a window without model mode: say what it needs
            self.runner.run_button.setEnabled(False)
            self.note.setText("The range test trains a model: it needs the Model workspace.")
            return
        self._refresh_options()
        self._connections = [(model_controller.sigRunsChanged, self._refresh_options),
                             (model_controller.sigRunChanged, self._refresh_options),
                             (model_controller.sigSelectionChanged, self._on_selection_change)]
        for signal, slot in self._connections:
            signal.connect(slot)

    def _build(self, cache: ResultCache | None) -> None:
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("The model run whose optimizer the test ramps (its own lr is "
                                  "replaced by the ramp)")
        self.low_edit = float_edit(DEFAULT_LOW, "The first lr of the ramp")
        self.high_edit = float_edit(DEFAULT_HIGH, "The last lr of the ramp")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(MIN_STEPS, MAX_STEPS)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.steps_spin.setToolTip("Steps of the ramp: one lr each, multiplied by a constant "
                                   "gamma (torch's ExponentialLR)")
        self.stop_edit = float_edit(DEFAULT_STOP_FACTOR, "Stop once the smoothed loss passes "
                                    "this many times its best (fastai: 4)", 50)
        self.rule_combo = QComboBox()
        for rule, text in RULES.items():
            self.rule_combo.addItem(rule)
            self.rule_combo.setItemData(self.rule_combo.count() - 1, text,
                                        pg.QtCore.Qt.ItemDataRole.ToolTipRole)
        self.rule_combo.setCurrentText("valley")
        self.rule_combo.currentTextChanged.connect(lambda _: self._draw())
        self.use_button = QPushButton("Use this lr")
        self.use_button.setToolTip("Give the run the suggested lr (from its next step)")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.use_suggestion)
        self.runner = AnalysisRunner(cache, run_text="Run range test")
        self.runner.run_button.clicked.connect(self.compute)
        self.runner.sigResult.connect(self._on_result)
        self.exports = ExportButtons(lambda: self.plot if self.shown else None, self.results,
                                     name="lr-range-test", on_message=self.runner.show_message)
        top = QHBoxLayout()
        for label, widget in (("Run", self.run_combo), ("lr from", self.low_edit),
                              ("to", self.high_edit), ("Steps", self.steps_spin),
                              ("Stop at", self.stop_edit), ("× best; rule", self.rule_combo)):
            top.addWidget(QLabel(label))
            top.addWidget(widget)
        top.addWidget(self.use_button)
        top.addStretch(1)
        top.addWidget(self.exports)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLogMode(x=True, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "learning rate (log)")
        self.plot.setLabel("left", "training loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-10, 10))
        self.raw_curve = self.plot.plot([], [], pen=pg.mkPen(RAW_COLOUR, width=1),
                                        name="loss (each step)")
        self.smooth_curve = self.plot.plot([], [], pen=pg.mkPen("#0072B2", width=2),
                                           name="smoothed loss")
        self.suggestion_line = pg.InfiniteLine(angle=90, movable=False,
                                               pen=pg.mkPen(SUGGESTION_COLOUR, width=1))
        self.suggestion_label = pg.TextItem(color=SUGGESTION_COLOUR, anchor=(0, 0))
        self.plot.addItem(self.suggestion_line)
        self.plot.addItem(self.suggestion_label)
        self.suggestion_line.hide()
        self.note = QLabel("A short run from the initial weights with the lr ramped "
                           "exponentially (fastai's lr_find); the suggestion's rule is written "
                           "beside it.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.runner)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)

    # --- the runs ---------------------------------------------------------------------------------

    def _refresh_options(self, *_: Any) -> None:
        options = model_optimizers(self.model_controller)
        titles = [o.title() for o in options]
        self._options = options
        if titles == [self.run_combo.itemText(i) for i in range(self.run_combo.count())]:
            return
        current = self.run_combo.currentText()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        self.run_combo.addItems(titles)
        if current in titles:
            self.run_combo.setCurrentIndex(titles.index(current))
        self.run_combo.blockSignals(False)
        self._on_selection_change(self.model_controller.selected)

    def _on_selection_change(self, run: Any) -> None:
        """The workspace's selected run is the one tested (when it is in the list)."""
        if run is None:
            return
        for index, option in enumerate(self._options):
            if run_for([run], option) is not None:
                self.run_combo.setCurrentIndex(index)
                return

    def option(self) -> RaceOptimizer | None:
        index = self.run_combo.currentIndex()
        return self._options[index] if 0 <= index < len(self._options) else None

    # --- computing --------------------------------------------------------------------------------

    def compute(self) -> bool:
        """Run the test for the chosen run; True if a Job was started."""
        option = self.option()
        if option is None:
            self.runner.show_message("Add a run to the model workspace first", error=True)
            return False
        try:
            low = read_float(self.low_edit, "the first lr", positive=True)
            high = read_float(self.high_edit, "the last lr", positive=True)
            stop = read_float(self.stop_edit, "the stop factor", positive=True)
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return False
        steps = self.steps_spin.value()
        settings = self.model_controller.settings  # frozen: the Job builds its own problem
        key = ("lr_range_test", settings, option.key(), low, high, steps, stop, DTYPE_NAME)
        self._run = run_for(self.model_controller.runs, option)

        def compute_one(_key: tuple, state: Any) -> RangeTest:
            built = settings.session().build()  # the workspace's problem, bit for bit
            return range_test(built, (option.name, option.hyperparameters), low, high, steps,
                              stop, frozen=option.frozen, state=state)

        self._pending = option
        return self.runner.request([key], compute_one, f"{steps} steps, lr {low:g} to {high:g}")

    def _on_result(self, results: dict) -> None:
        self.shown = (self._pending, next(iter(results.values())))
        self._draw()
        self.sigComputed.emit(self.shown)

    def results(self) -> list[RangeTest]:
        return [] if self.shown is None else [self.shown[1]]

    def shutdown(self) -> None:
        self.runner.shutdown()

    # --- drawing ----------------------------------------------------------------------------------

    @property
    def rule(self) -> str:
        return self.rule_combo.currentText()

    def suggested_lr(self) -> float | None:
        return None if self.shown is None else self.shown[1].suggested_lr(self.rule)

    def _draw(self) -> None:
        if self.shown is None:
            return
        option, test = self.shown
        finite = np.isfinite(test.losses)
        self.raw_curve.setData(test.lrs[finite], test.losses[finite])
        self.smooth_curve.setData(test.lrs, test.smoothed)
        self.smooth_curve.setPen(pg.mkPen(option.color, width=2))
        if len(test):  # the smoothed curve's range: a raw spike at the end would flatten it
            lo = float(min(test.smoothed.min(), test.losses[finite].min(initial=np.inf)))
            hi = float(max(test.smoothed.max(), test.start_loss if np.isfinite(
                test.start_loss) else -np.inf))
            pad = 0.08 * ((hi - lo) or abs(hi) or 1.0)
            self.plot.setYRange(lo - pad, hi + pad, padding=0)
            self.plot.setXRange(np.log10(test.lrs[0]), np.log10(test.lrs[-1]))
        lr = self.suggested_lr()
        self.use_button.setEnabled(lr is not None)
        if lr is None:
            self.suggestion_line.hide()
            self.suggestion_label.setText("")
        else:
            k = test.suggestions[self.rule]
            x = float(np.log10(lr))  # the plot's log mode draws log10(lr)
            self.suggestion_line.setPos(x)
            self.suggestion_line.show()
            self.suggestion_label.setText(f"suggested lr {lr:.3g}\n{RULES[self.rule]}")
            self.suggestion_label.setPos(x, float(test.smoothed[k]))
        self.note.setText(f"{option.title()} with its lr ramped from {test.low:g} to "
                          f"{test.high:g} (ExponentialLR, gamma {test.gamma:.5g}): {test.stopped}."
                          " Smoothed: fastai's bias-corrected moving average, beta "
                          f"{test.beta:g}.")

    def use_suggestion(self) -> bool:
        """Give the tested run the suggested lr; False (and a message) if it cannot."""
        lr = self.suggested_lr()
        run = self._run
        if lr is None or run is None or run not in self.model_controller.runs:
            self.runner.show_message("The run tested is no longer in the model workspace"
                                     if lr is not None else "No suggestion yet", error=True)
            return False
        try:
            self.model_controller.set_lr(run, lr)
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return False
        self.model_controller.select(run)
        self.runner.show_message(f"Set the lr of {run.title} to {lr:.4g} ({self.rule})")
        self.sigLrApplied.emit(run, lr)
        return True

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)
