"""RunPanel: the runs of model mode: add (optimizer), remove, the selected run's lr and freezes.

The list shows each run in its colour; the learning-rate box and the per-tensor freeze
checkboxes act on the selected run (Run.set_hyperparameter / Run.set_frozen, mid-run).
"""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout,
                               QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout,
                               QWidget)

from core.errors import PlaygroundError
from core.run import Run
from gui.model.controller import ModelController, optimizer_names
from gui.throttle import Throttle

STATUS_HZ = 4


class RunPanel(QWidget):
    """Add / remove runs, pick the selected one, set its lr, freeze its tensors."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.addItems(optimizer_names())
        self.add_button = QPushButton("Add run")
        self.remove_button = QPushButton("Remove")
        self.run_list = QListWidget()
        self.run_list.setMaximumHeight(140)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 100.0)
        # steps of about a tenth of the value: a log scale under the arrows
        self.lr_spin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.lr_spin.setPrefix("lr ")
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        self.freeze_box = QWidget()
        self.freeze_layout = QVBoxLayout(self.freeze_box)
        self.freeze_layout.setContentsMargins(0, 0, 0, 0)
        self.freeze_checks: dict[str, QCheckBox] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        add_row = QHBoxLayout()
        add_row.addWidget(self.optimizer_combo, 1)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.remove_button)
        layout.addLayout(add_row)
        layout.addWidget(self.run_list)
        layout.addWidget(self.lr_spin)
        layout.addWidget(QLabel("Freeze (requires_grad_(False)):"))
        layout.addWidget(self.freeze_box)
        layout.addWidget(self.message)
        layout.addStretch(1)

        self.add_button.clicked.connect(self._on_add_click)
        self.remove_button.clicked.connect(self._on_remove_click)
        self.run_list.currentRowChanged.connect(self._on_row_change)
        self.lr_spin.editingFinished.connect(self._on_lr_edit)
        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigProblemChanged.connect(self._on_problem_change)
        controller.sigSelectionChanged.connect(self._on_selection_change)
        controller.sigRunChanged.connect(self._on_run_change)
        self._status_throttle = Throttle(self._show_statuses, STATUS_HZ, self)
        controller.sigStepped.connect(self._status_throttle.request)
        self._on_problem_change()
        self._on_runs_change()

    # --- user actions ---------------------------------------------------------------------------

    def _on_add_click(self) -> None:
        try:
            self.controller.add_run(self.optimizer_combo.currentText())
            self.message.clear()
        except PlaygroundError as e:
            self.message.setText(str(e))

    def _on_remove_click(self) -> None:
        if self.controller.selected is not None:
            self.controller.remove_run(self.controller.selected)

    def _on_row_change(self, row: int) -> None:
        runs = self.controller.runs
        self.controller.select(runs[row] if 0 <= row < len(runs) else None)

    def _on_lr_edit(self) -> None:
        run = self.controller.selected
        if run is not None and self.lr_spin.value() != run.hyperparameters["lr"]:
            try:
                self.controller.set_lr(run, self.lr_spin.value())
                self.message.clear()
            except PlaygroundError as e:
                self.message.setText(str(e))

    def _on_freeze_toggle(self, name: str, frozen: bool) -> None:
        run = self.controller.selected
        if run is not None:
            self.controller.set_frozen(run, name, frozen)

    # --- from the controller --------------------------------------------------------------------

    def _on_problem_change(self) -> None:
        for check in self.freeze_checks.values():
            check.setParent(None)
            check.deleteLater()
        self.freeze_checks = {}
        for name in self.controller.problem.parameter_names:
            shape = self.controller.problem.shapes()[name]
            check = QCheckBox(f"{name}  {tuple(shape)}")
            check.toggled.connect(lambda on, n=name: self._on_freeze_toggle(n, on))
            self.freeze_layout.addWidget(check)
            self.freeze_checks[name] = check
        self._on_selection_change(self.controller.selected)

    def _on_runs_change(self) -> None:
        self.run_list.blockSignals(True)
        self.run_list.clear()
        for run in self.controller.runs:
            item = QListWidgetItem(self._run_text(run))
            item.setForeground(QColor(run.color or "black"))
            self.run_list.addItem(item)
        self.run_list.blockSignals(False)
        self._on_selection_change(self.controller.selected)

    @staticmethod
    def _run_text(run: Run) -> str:
        return f"{run.label or run.optimizer_name}: {run.status_text}"

    def _show_statuses(self) -> None:
        for row, run in enumerate(self.controller.runs):
            item = self.run_list.item(row)
            if item is not None:
                text = self._run_text(run)
                if item.text() != text:
                    item.setText(text)
                    item.setToolTip(text)
        self._status_throttle.drawn()

    def _on_selection_change(self, run: Run | None) -> None:
        runs = self.controller.runs
        self.run_list.blockSignals(True)
        self.run_list.setCurrentRow(runs.index(run) if run in runs else -1)
        self.run_list.blockSignals(False)
        self.remove_button.setEnabled(run is not None)
        self.lr_spin.setEnabled(run is not None)
        self._show_run_settings(run)

    def _on_run_change(self, run: Run) -> None:
        self._show_statuses()  # a freeze can change the status ("frozen")
        if run is self.controller.selected:
            self._show_run_settings(run)

    def _show_run_settings(self, run: Run | None) -> None:
        widgets = [self.lr_spin, *self.freeze_checks.values()]
        for w in widgets:
            w.blockSignals(True)
        try:
            if run is not None:
                self.lr_spin.setValue(float(run.hyperparameters["lr"]))
            for name, check in self.freeze_checks.items():
                check.setEnabled(run is not None)
                check.setChecked(run is not None and name in run.frozen)
        finally:
            for w in widgets:
                w.blockSignals(False)
