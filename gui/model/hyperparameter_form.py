"""HyperparameterForm: every constructor keyword of the selected run's torch.optim optimizer, and
its gradient clipping, as controls with the catalogue's names, ranges and help.

The controls are built from core/optimizers.py's CATALOGUE (the race's run cards use the same
specs, number box and tooltip wording); an edit goes to the controller
(`set_hyperparameter`, `set_clipping`), which hands it to the run: a live keyword goes into
torch's param_groups from the next step, another rebuilds the optimizer at the current point.
A value the catalogue refuses shows its one-line message and the controls go back to the run's
values. Updates from the run to the controls run with signals blocked, so they never echo back
as edits. The learning rate has its own box in the run panel, so it is not repeated here.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox,
                               QVBoxLayout, QWidget)

from core.errors import PlaygroundError
from core.gradient_tools import CLIP_NORM, CLIP_VALUE, GradientClipping
from core.optimizers import Hyperparameter
from core.run import Run
from gui.model.controller import ModelController
from gui.number_box import FloatSpinBox
from gui.run_card import _tooltip as hyperparameter_tooltip

UNBOUNDED = 1e9  # a spin box's limit for a keyword without one (validation refuses in words)
CLIP_KINDS = (("no clipping", None), ("clip norm", "norm"), ("clip value", "value"))


class HyperparameterForm(QWidget):
    """The selected run's hyperparameters (lr aside) and clipping."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.controls: dict[str, Any] = {}  # keyword -> widget (a pair: two spin boxes)
        self._shown: tuple[int, str] | None = None  # (id of the run, optimizer) built for
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setVerticalSpacing(2)
        self.clip_combo = QComboBox()
        for text, kind in CLIP_KINDS:
            self.clip_combo.addItem(text, kind)
        self.clip_combo.setToolTip("gradient clipping after backward, before optimizer.step(), "
                                   "with torch.nn.utils.clip_grad_norm_ / clip_grad_value_")
        self.clip_spin = FloatSpinBox(log=True)
        self.clip_spin.setRange(-UNBOUNDED, UNBOUNDED)
        self.clip_spin.setValue(1.0)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        clip_row = QHBoxLayout()
        clip_row.addWidget(self.clip_combo, 1)
        clip_row.addWidget(self.clip_spin, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.form)
        layout.addLayout(clip_row)
        layout.addWidget(self.message)
        self.clip_combo.activated.connect(lambda _i: self._on_clip_edit())
        self.clip_spin.valueChanged.connect(lambda _v: self._on_clip_edit())
        controller.sigSelectionChanged.connect(self._on_run_change)
        controller.sigRunChanged.connect(self._on_run_change)
        controller.sigRunsChanged.connect(lambda: self._on_run_change(controller.selected))
        self._on_run_change(controller.selected)

    # --- building -------------------------------------------------------------------------------

    def _build(self, run: Run | None) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.controls = {}
        if run is None:
            return
        for h in run.spec.hyperparameters:
            if h.name != "lr":
                widget = self._make_control(h)
                label = QLabel(h.name)
                label.setToolTip(widget.toolTip())
                self.form.addRow(label, widget)

    def _make_control(self, h: Hyperparameter) -> QWidget:
        tip = hyperparameter_tooltip(h)
        widget: QWidget
        if h.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda on, name=h.name: self._edit(name, bool(on)))
            self.controls[h.name] = widget = box
        elif h.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(h.low) if h.low is not None else -2**31 + 1,
                          int(h.high) if h.high is not None else 2**31 - 1)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, name=h.name: self._edit(name, int(v)))
            self.controls[h.name] = widget = spin
        elif h.kind == "choice":
            combo = QComboBox()
            for choice in h.choices:
                combo.addItem(str(choice))
            combo.activated.connect(lambda i, h=h: self._edit(h.name, h.choices[i]))
            self.controls[h.name] = widget = combo
        elif h.kind == "pair":
            first, second = _float_spin(h), _float_spin(h)
            for spin in (first, second):
                spin.valueChanged.connect(
                    lambda _v, name=h.name, a=first, b=second: self._edit(
                        name, (a.value(), b.value())))
                spin.setToolTip(tip)
            widget = QWidget()
            row = QHBoxLayout(widget)
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(first)
            row.addWidget(second)
            self.controls[h.name] = (first, second)
        else:
            spin = _float_spin(h)
            spin.valueChanged.connect(lambda v, name=h.name: self._edit(name, float(v)))
            self.controls[h.name] = widget = spin
        widget.setToolTip(tip)
        return widget

    # --- edits ----------------------------------------------------------------------------------

    def _edit(self, name: str, value: Any) -> None:
        run = self.controller.selected
        if run is None:
            return
        try:
            self.controller.set_hyperparameter(run, name, value)
            self.message.clear()
        except PlaygroundError as e:
            self.message.setText(str(e))
            self._show_values(run)  # back to what the run has

    def _on_clip_edit(self) -> None:
        run = self.controller.selected
        if run is None:
            return
        kind = self.clip_combo.currentData()
        try:
            clipping = None if kind is None else GradientClipping(kind, self.clip_spin.value())
            self.controller.set_clipping(run, clipping)
            self.message.clear()
        except PlaygroundError as e:
            self.message.setText(str(e))
            self._show_values(run)

    # --- from the controller --------------------------------------------------------------------

    def _on_run_change(self, run: Run | None) -> None:
        if run is not None and run is not self.controller.selected:
            return
        run = self.controller.selected
        key = None if run is None else (id(run), run.optimizer_name)
        if key != self._shown:
            self._build(run)
            self._shown = key
        if run is not None:
            self._show_values(run)
        self.setEnabled(run is not None)

    def _show_values(self, run: Run) -> None:
        widgets = [w for c in self.controls.values() for w in (c if isinstance(c, tuple) else
                                                                (c,))]
        blockers = [QSignalBlocker(w) for w in (*widgets, self.clip_combo, self.clip_spin)]
        try:
            for name, control in self.controls.items():
                value = run.hyperparameters.get(name)
                if value is None:
                    continue
                if isinstance(control, tuple):
                    control[0].setValue(float(value[0]))
                    control[1].setValue(float(value[1]))
                elif isinstance(control, QCheckBox):
                    control.setChecked(bool(value))
                elif isinstance(control, QComboBox):
                    control.setCurrentText(str(value))
                else:
                    control.setValue(value)
            clipping = run.clipping
            self.clip_combo.setCurrentIndex(self.clip_combo.findData(
                None if clipping is None else clipping.kind))
            if clipping is not None:
                self.clip_spin.setValue(clipping.threshold)
            spec = CLIP_NORM if clipping is None or clipping.kind == "norm" else CLIP_VALUE
            self.clip_spin.setToolTip(hyperparameter_tooltip(spec))
            self.clip_spin.setEnabled(clipping is not None)
        finally:
            del blockers


def _float_spin(h: Hyperparameter) -> FloatSpinBox:
    spin = FloatSpinBox(log=h.log)
    spin.setRange(h.low if h.low is not None else -UNBOUNDED,
                  h.high if h.high is not None else UNBOUNDED)
    return spin
