"""SetupBar: the controls at the top of model mode: data, model, loss, batch size, transport.

Row 1: the data (a built-in with n and noise, or "CSV file..." for the user's own, with its
target column), the test fraction, the loss, the batch size, the one seed (data, split,
weights and batches, as `main.py train --seed`); play / pause, step, reset. Row 2: the model
preset and the model as text (Enter applies it). Then one line for errors, which names the line
or column and never grows the layout.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSizePolicy, QSpinBox, QWidget)

from core.errors import PlaygroundError
from core.problems.data import GENERATED, LOSSES
from core.problems.model import PRESETS
from gui.model.controller import ModelController

CUSTOM = "Custom"
CSV_ITEM = "CSV file..."  # the dataset entry that opens a file dialog
ERROR_STYLE = "color: #b00020;"


class SetupBar(QWidget):
    """Edits the controller's ModelSettings; shows a bad input's one-line message."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.dataset_combo = QComboBox()
        for key, info in GENERATED.items():
            self.dataset_combo.addItem(info.title, key)
        self.dataset_combo.addItem(CSV_ITEM, None)
        self.dataset_combo.setToolTip("a built-in dataset, or your own CSV file (a header, "
                                      "feature columns, a target column)")
        self.target_combo = QComboBox()
        self.target_combo.setToolTip("the CSV's target column (the last, unless you pick "
                                     "another); the others are the features")
        self.n_spin = QSpinBox()
        self.n_spin.setRange(10, 5000)
        self.n_spin.setPrefix("n ")
        self.noise_spin = QDoubleSpinBox()
        self.noise_spin.setRange(0.0, 10.0)
        self.noise_spin.setDecimals(2)
        self.noise_spin.setSingleStep(0.05)
        self.noise_spin.setPrefix("noise ")
        self.test_spin = QDoubleSpinBox()
        self.test_spin.setRange(0.0, 0.9)
        self.test_spin.setDecimals(2)
        self.test_spin.setSingleStep(0.05)
        self.test_spin.setPrefix("test ")
        self.test_spin.setToolTip("the share of rows held out for the test loss and accuracy; "
                                  "0 trains on every row")
        self.loss_combo = QComboBox()
        self.loss_combo.addItems(list(LOSSES))
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(0, 100_000)
        self.batch_spin.setSpecialValueText("full batch")
        self.batch_spin.setPrefix("batch ")
        self.batch_spin.setToolTip("rows per step; 'full batch' (0) is gradient descent")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 999_999)
        self.seed_spin.setPrefix("seed ")
        self.seed_spin.setToolTip("one seed for the generated data, the train/test split, the "
                                  "initial weights (every run starts from them) and the "
                                  "minibatch order, as main.py train --seed")
        self.play_button = QPushButton("Play")
        self.step_button = QPushButton("Step")
        self.reset_button = QPushButton("Reset")
        self.preset_combo = QComboBox()
        for key, preset in PRESETS.items():
            self.preset_combo.addItem(preset.title, key)
        self.preset_combo.addItem(CUSTOM, None)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("Linear(2, 16), Tanh(), Linear(16, 1)")
        self.model_edit.setToolTip("torch.nn layers as in PyTorch; Enter applies")
        self.error_label = QLabel()
        self.error_label.setObjectName("modelError")
        self.error_label.setStyleSheet(ERROR_STYLE)
        # one line, fixed: a message must not push the views down
        self.error_label.setFixedHeight(self.error_label.fontMetrics().lineSpacing() + 4)
        self.error_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 0)
        row1 = QHBoxLayout()
        for w in (QLabel("Data"), self.dataset_combo, self.target_combo, self.n_spin,
                  self.noise_spin, self.test_spin, QLabel("Loss"), self.loss_combo,
                  self.batch_spin, self.seed_spin):
            row1.addWidget(w)
        row1.addStretch(1)
        for w in (self.play_button, self.step_button, self.reset_button):
            row1.addWidget(w)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Model"))
        row2.addWidget(self.preset_combo)
        row2.addWidget(self.model_edit, 1)
        grid.addLayout(row1, 0, 0)
        grid.addLayout(row2, 1, 0)
        grid.addWidget(self.error_label, 2, 0)

        self._on_problem_change()
        self.dataset_combo.activated.connect(self._on_dataset_pick)
        self.n_spin.editingFinished.connect(lambda: self._apply(n=self.n_spin.value()))
        self.noise_spin.editingFinished.connect(
            lambda: self._apply(noise=self.noise_spin.value()))
        self.test_spin.editingFinished.connect(
            lambda: self._apply(test_fraction=round(self.test_spin.value(), 2)))
        self.target_combo.activated.connect(
            lambda _i: self._apply(target=self.target_combo.currentText()))
        self.seed_spin.editingFinished.connect(lambda: self._apply(seed=self.seed_spin.value()))
        self.batch_spin.editingFinished.connect(
            lambda: self._apply(batch_size=self.batch_spin.value()))
        self.loss_combo.activated.connect(
            lambda _i: self._apply(loss=self.loss_combo.currentText()))
        self.preset_combo.activated.connect(self._on_preset_pick)
        self.model_edit.returnPressed.connect(
            lambda: self._apply(model_text=self.model_edit.text()))
        self.play_button.clicked.connect(controller.toggle_play)
        self.step_button.clicked.connect(controller.step_once)
        self.reset_button.clicked.connect(controller.reset)
        controller.sigProblemChanged.connect(self._on_problem_change)
        controller.sigPlayingChanged.connect(self._on_playing_change)

    def _apply(self, **changes: object) -> bool:
        """Hand the change to the controller; a bad one shows its message and changes nothing
        (the controls go back to what the problem is)."""
        try:
            note = self.controller.configure(**changes)
        except PlaygroundError as e:
            self._show_message(str(e))
            self._on_problem_change(keep_error=True, keep_model_text=True)
            return False
        if not note and "loss" in changes:
            note = self._reading_note()
        self._show_message(note or "")
        return True

    def _reading_note(self) -> str:
        """Under MSELoss, a CSV target of whole numbers that would be classes under another
        loss is trained on as numbers (core ModelSession.load_data): say so, once."""
        c = self.controller
        s = c.settings
        if s.csv is None or s.loss != "MSELoss":
            return ""
        as_read = s.data_spec().load(s.seed)  # (the parsed file is cached)
        if as_read.task == "regression":
            return ""
        return (f"MSELoss reads {as_read.target_name!r} as numbers "
                f"({', '.join(as_read.class_names[:4])}{', ...' if as_read.n_classes > 4 else ''}"
                f"); CrossEntropyLoss would read it as {as_read.n_classes} classes")

    def show_message(self, text: str) -> None:
        """One line for the user (an error names the line or column), in the error row."""
        self._show_message(text)

    def _show_message(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setToolTip(text)  # the whole line, when the label is too narrow

    def _on_dataset_pick(self, index: int) -> None:
        key = self.dataset_combo.itemData(index)
        if key is None:
            self._pick_csv()
            return
        self._apply(dataset=key, noise=GENERATED[key].default_noise)

    def _pick_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a CSV file", "",
                                              "CSV files (*.csv *.tsv *.txt);;All files (*)")
        if path:
            self.load_csv(path)
        else:
            self._on_problem_change(keep_error=True)  # the combo goes back to the data shown

    def load_csv(self, path: str | Path) -> bool:
        """Train on the CSV at `path` (its last column the target); a bad file shows its
        message, naming the line, and changes nothing."""
        try:
            note = self.controller.load_csv(path)
        except PlaygroundError as e:
            self._show_message(str(e))
            self._on_problem_change(keep_error=True, keep_model_text=True)
            return False
        self._show_message(note or "")
        return True

    def _on_preset_pick(self, index: int) -> None:
        key = self.preset_combo.itemData(index)
        if key is None:  # Custom: the text as it is, now the user's own
            self._apply(preset=None, model_text=self.controller.settings.model_text)
        else:
            self._apply(preset=key)

    def _on_problem_change(self, keep_error: bool = False, keep_model_text: bool = False) -> None:
        s = self.controller.settings
        widgets = (self.dataset_combo, self.target_combo, self.n_spin, self.noise_spin,
                   self.test_spin, self.loss_combo, self.batch_spin, self.seed_spin,
                   self.preset_combo, self.model_edit)
        for w in widgets:  # a view update must not echo back as an edit
            w.blockSignals(True)
        try:
            from_file = s.csv is not None
            if from_file:
                self.dataset_combo.setItemText(self.dataset_combo.count() - 1, s.csv_name)
                self.dataset_combo.setCurrentIndex(self.dataset_combo.count() - 1)
            else:
                self.dataset_combo.setItemText(self.dataset_combo.count() - 1, CSV_ITEM)
                self.dataset_combo.setCurrentIndex(
                    max(0, self.dataset_combo.findData(s.dataset)))
            self.target_combo.clear()
            self.target_combo.addItems(self.controller.csv_columns())
            self.target_combo.setCurrentText(self.controller.dataset.target_name)
            self.target_combo.setVisible(from_file)
            self.n_spin.setVisible(not from_file)
            self.noise_spin.setVisible(not from_file)
            self.n_spin.setValue(s.n)
            self.noise_spin.setValue(s.noise)
            self.test_spin.setValue(s.test_fraction)
            self.loss_combo.setCurrentText(s.loss)
            self.batch_spin.setValue(s.batch_size)
            self.seed_spin.setValue(s.seed)
            self.preset_combo.setCurrentIndex(self.preset_combo.findData(s.preset)
                                              if s.preset else self.preset_combo.count() - 1)
            if not keep_model_text:  # the user's mistyped text stays for them to fix
                self.model_edit.setText(s.model_text)
        finally:
            for w in widgets:
                w.blockSignals(False)
        if not keep_error:
            self.error_label.clear()

    def _on_playing_change(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        self.step_button.setEnabled(not playing)

