"""RunPanel: the runs of model mode: add (optimizer), remove, and the selected run's settings.

The list shows each run in its colour, its status ("ready, not started" until its first step,
then the run's own status_text: "running", "diverged at step 12", ...) and how many tensors it
has frozen. Below it, for the selected run, three tabs: "Optimizer" (the lr box, every other
hyperparameter of the catalogue and gradient clipping), "Scheduler" (gui/scheduler_picker.py,
the race's picker: any torch.optim.lr_scheduler with its arguments) and "Freeze" (a checkbox
per layer, one per tensor, and "freeze all but the last layer", mid-run: Run.set_frozen,
requires_grad_(False)). A ReduceLROnPlateau preview is fed the selected run's training losses
so far (core.schedulers.losses_given_so_far), at most PLATEAU_PREVIEW_HZ times a second while
the tab is on screen.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout,
                               QLabel, QListWidget, QListWidgetItem, QPushButton, QScrollArea,
                               QTabWidget, QVBoxLayout, QWidget)

from core.errors import PlaygroundError
from core.run import Run
from core.schedulers import get_scheduler_spec, losses_given_so_far
from gui.model.controller import ModelController, optimizer_names
from gui.model.hyperparameter_form import HyperparameterForm, hyperparameter_tooltip
from gui.number_box import FloatSpinBox
from gui.run_card import LR_BOX_RANGE
from gui.scheduler_picker import PREVIEW_MAX_STEPS, SchedulerPicker
from gui.status_words import NOT_STARTED, not_started
from gui.throttle import Throttle


STATUS_HZ = 4
PLATEAU_PREVIEW_HZ = 2  # as the race's cards (gui/run_card.py)


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
        # the race's number box: keeps exactly the lr typed (1e-7 too), arrows x / ÷ 10^0.1
        self.lr_spin = FloatSpinBox(log=True)
        self.lr_spin.setRange(*LR_BOX_RANGE)
        # steps of about a tenth of the value: a log scale under the arrows
        self.lr_spin.setPrefix("lr ")
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        self.hyperparameter_form = HyperparameterForm(controller)
        self.scheduler_picker = SchedulerPicker(None)
        self.scheduler_picker.setToolTip("the run's torch.optim.lr_scheduler (none: the lr as "
                                         "set); it steps after every optimizer.step()")
        self.freeze_box = QWidget()
        self.freeze_layout = QVBoxLayout(self.freeze_box)
        self.freeze_layout.setContentsMargins(0, 0, 0, 0)
        self.freeze_layout.setSpacing(1)
        self.freeze_checks: dict[str, QCheckBox] = {}
        self.layer_checks: dict[int, QCheckBox] = {}
        self.freeze_last_button = QPushButton("Freeze all but the last layer")
        self.freeze_last_button.setToolTip("fine-tuning: requires_grad_(False) on every layer "
                                           "but the last one with parameters")
        self.unfreeze_button = QPushButton("Unfreeze all")

        optimizer_tab = QWidget()
        optimizer_layout = QVBoxLayout(optimizer_tab)
        optimizer_layout.setContentsMargins(2, 2, 2, 2)
        optimizer_layout.addWidget(self.lr_spin)
        optimizer_layout.addWidget(self.hyperparameter_form)
        optimizer_layout.addStretch(1)
        freeze_tab = QWidget()
        freeze_layout = QVBoxLayout(freeze_tab)
        freeze_layout.setContentsMargins(2, 2, 2, 2)
        freeze_layout.addWidget(self.freeze_last_button)
        freeze_layout.addWidget(self.unfreeze_button)
        freeze_layout.addWidget(QLabel("requires_grad_(False), by layer or tensor:"))
        freeze_layout.addWidget(self.freeze_box)
        freeze_layout.addStretch(1)
        self.settings_tabs = QTabWidget()
        for title, page in (("Optimizer", optimizer_tab), ("Scheduler", self.scheduler_picker),
                            ("Freeze", freeze_tab)):
            scroll = QScrollArea()  # a long form scrolls instead of squeezing the list
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            scroll.setWidget(page)
            self.settings_tabs.addTab(scroll, title)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        add_row = QHBoxLayout()
        add_row.addWidget(self.optimizer_combo, 1)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.remove_button)
        layout.addLayout(add_row)
        layout.addWidget(self.run_list)
        layout.addWidget(self.settings_tabs, 1)
        layout.addWidget(self.message)

        self.add_button.clicked.connect(self._on_add_click)
        self.remove_button.clicked.connect(self._on_remove_click)
        self.run_list.currentRowChanged.connect(self._on_row_change)
        self.lr_spin.valueChanged.connect(lambda _v: self._on_lr_edit())
        self.scheduler_picker.sigEdited.connect(self._on_scheduler_edit)
        self.freeze_last_button.clicked.connect(self._on_freeze_last_click)
        self.unfreeze_button.clicked.connect(self._on_unfreeze_click)
        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigProblemChanged.connect(self._on_problem_change)
        controller.sigSelectionChanged.connect(self._on_selection_change)
        controller.sigRunChanged.connect(self._on_run_change)
        self._status_throttle = Throttle(self._show_statuses, STATUS_HZ, self)
        controller.sigStepped.connect(self._status_throttle.request)
        # nothing while the Scheduler tab is not on screen: it redraws once shown
        self._plateau_throttle = Throttle(self._show_scheduler_losses, PLATEAU_PREVIEW_HZ,
                                          self.scheduler_picker)
        controller.sigStepped.connect(self._on_stepped_change)
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

    def _on_layer_toggle(self, index: int, frozen: bool) -> None:
        run = self.controller.selected
        if run is not None:
            self.controller.set_layer_frozen(run, index, frozen)

    def _on_freeze_last_click(self) -> None:
        run = self.controller.selected
        if run is not None:
            self.controller.freeze_all_but_last_layer(run)

    def _on_unfreeze_click(self) -> None:
        run = self.controller.selected
        if run is not None:
            self.controller.set_frozen_many(run, {n: False for n in run.parameter_names})

    def _on_scheduler_edit(self, setting: object) -> None:
        run = self.controller.selected
        if run is None:
            return
        try:
            self.controller.set_scheduler(run, setting)
            self.message.clear()
        except PlaygroundError as e:
            self.scheduler_picker.show_error(str(e))
            self.scheduler_picker.set_setting(run.scheduler_setting)

    # --- from the controller --------------------------------------------------------------------

    def _on_problem_change(self) -> None:
        for check in [*self.freeze_checks.values(), *self.layer_checks.values()]:
            check.setParent(None)
            check.deleteLater()
        self.freeze_checks, self.layer_checks = {}, {}
        self._layer_names: dict[int, tuple[str, ...]] = {}
        shapes = self.controller.problem.shapes()
        for index, kind, names in self.controller.layers():
            layer = QCheckBox(f"layer {index}: {kind}")
            layer.setToolTip(f"every parameter of layer {index} ({', '.join(names)}), as "
                             f"main.py train --freeze {index}")
            layer.clicked.connect(lambda on, i=index: self._on_layer_toggle(i, on))
            self.freeze_layout.addWidget(layer)
            self.layer_checks[index] = layer
            self._layer_names[index] = names
            for name in names:
                check = QCheckBox(f"{name}  {tuple(shapes[name])}")
                check.setStyleSheet("margin-left: 18px;")
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
        status = NOT_STARTED if not_started(run) else run.status_text
        text = f"{run.label or run.optimizer_name}: {status}"
        frozen, total = len(run.frozen), len(run.parameter_names)
        if 0 < frozen < total:  # all of them: the status already says "frozen"
            text += f" · {frozen} of {total} tensors frozen"
        return text

    def _show_statuses(self) -> None:
        for row, run in enumerate(self.controller.runs):
            item = self.run_list.item(row)
            if item is not None:
                text = self._run_text(run)
                if item.text() != text:
                    item.setText(text)
                    item.setToolTip(text)
        self._status_throttle.drawn()

    def _on_stepped_change(self) -> None:
        run = self.controller.selected
        setting = None if run is None else run.scheduler_setting
        if setting is not None and get_scheduler_spec(setting[0]).steps_on_loss:
            self._plateau_throttle.request()

    def _show_scheduler_losses(self) -> None:
        """ReduceLROnPlateau's preview from the losses the selected run gave it so far."""
        run = self.controller.selected
        self.scheduler_picker.set_losses(
            None if run is None else losses_given_so_far(run, PREVIEW_MAX_STEPS))

    def _on_selection_change(self, run: Run | None) -> None:
        runs = self.controller.runs
        self.run_list.blockSignals(True)
        self.run_list.setCurrentRow(runs.index(run) if run in runs else -1)
        self.run_list.blockSignals(False)
        self.remove_button.setEnabled(run is not None)
        self.lr_spin.setEnabled(run is not None)
        self.settings_tabs.setEnabled(run is not None)
        self._show_run_settings(run)

    def _on_run_change(self, run: Run) -> None:
        self._show_statuses()  # a freeze can change the status ("frozen")
        if run is self.controller.selected:
            self._show_run_settings(run)

    def _show_run_settings(self, run: Run | None) -> None:
        widgets = [self.lr_spin, *self.freeze_checks.values(), *self.layer_checks.values()]
        blockers = [QSignalBlocker(w) for w in widgets]
        try:
            if run is not None:
                self.lr_spin.setValue(float(run.hyperparameters["lr"]))
                self.lr_spin.setToolTip(hyperparameter_tooltip(run.spec.hyperparameter("lr"))
                                        + "<br>type an exact value and press Enter")
                self.scheduler_picker.set_losses(losses_given_so_far(run, PREVIEW_MAX_STEPS))
                self.scheduler_picker.set_optimizer(run.optimizer_name, dict(run.hyperparameters))
                self.scheduler_picker.set_setting(run.scheduler_setting)
            for name, check in self.freeze_checks.items():
                check.setEnabled(run is not None)
                check.setChecked(run is not None and name in run.frozen)
            for index, layer in self.layer_checks.items():
                frozen = run is not None and all(n in run.frozen
                                                 for n in self._layer_names[index])
                layer.setEnabled(run is not None)
                layer.setChecked(frozen)
        finally:
            del blockers
