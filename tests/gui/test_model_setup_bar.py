"""The setup bar: the user's CSV file (through the file dialog), its target column, the test
fraction and the one seed, driven through the real widgets."""

from __future__ import annotations

import torch
from PySide6.QtWidgets import QFileDialog

from gui.model.setup_bar import CSV_ITEM


def _choose_file(monkeypatch, path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "CSV files (*.csv)")))


def _activate(combo, index: int) -> None:
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def test_a_csv_from_the_file_dialog_with_its_target_column(qtbot, model_workspace, monkeypatch,
                                                           tmp_path):
    w, c = model_workspace, model_workspace.controller
    run = c.add_run("Adam")
    path = tmp_path / "flowers.csv"
    path.write_text("length,width,kind\n" + "\n".join(
        f"{1 + i % 5}.5,{2 + i % 3}.25,{['iris', 'rose', 'tulip'][i % 3]}" for i in range(45))
        + "\n")
    _choose_file(monkeypatch, path)
    bar = w.setup_bar
    _activate(bar.dataset_combo, bar.dataset_combo.findData(None))
    assert c.settings.csv_name == "flowers.csv" and c.dataset.task == "multiclass"
    assert c.settings.loss == "CrossEntropyLoss"  # the loss follows the new kind of target
    assert bar.dataset_combo.currentText() == "flowers.csv"
    assert bar.target_combo.isVisible() and not bar.n_spin.isVisible()
    assert [bar.target_combo.itemText(i) for i in range(bar.target_combo.count())] == [
        "length", "width", "kind"]
    assert bar.target_combo.currentText() == "kind"  # the last column by default
    assert run.problem is c.problem and run.parameters["2.bias"].shape == (3,)
    # another target: the features follow, and so does the loss (numbers: regression)
    _activate(bar.target_combo, 1)
    assert "'iris' is not a number" in bar.error_label.text()  # words cannot be a feature
    assert c.dataset.target_name == "kind"  # ... and nothing changed
    path.write_text("length,width,kind\n" + "\n".join(
        f"{1 + i % 5}.5,{2 + i % 3}.25,{i % 3}" for i in range(45)) + "\n")
    c.load_csv(path)
    _activate(bar.target_combo, 0)
    assert c.dataset.target_name == "length" and c.dataset.feature_names == ("width", "kind")
    assert c.settings.loss == "MSELoss" and c.dataset.task == "regression"
    assert bar.target_combo.currentText() == "length"


def test_a_bad_csv_names_its_line_and_changes_nothing(qtbot, model_workspace, monkeypatch,
                                                      tmp_path):
    w, c = model_workspace, model_workspace.controller
    c.add_run("SGD")
    c.step_once()
    before = (c.settings, c.problem, c.runs[0].steps)
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,y\n1,2,0\n3,4\n")
    _choose_file(monkeypatch, path)
    bar = w.setup_bar
    _activate(bar.dataset_combo, bar.dataset_combo.findData(None))
    assert "ragged.csv" in bar.error_label.text() and "line 3" in bar.error_label.text()
    assert (c.settings, c.problem, c.runs[0].steps) == before
    assert bar.dataset_combo.currentData() == "moons"  # the combo shows the data in use
    assert bar.dataset_combo.itemText(bar.dataset_combo.count() - 1) == CSV_ITEM


def test_the_test_fraction_and_the_seed(qtbot, model_workspace):
    w, c = model_workspace, model_workspace.controller
    c.add_run("SGD")
    bar = w.setup_bar
    bar.test_spin.setValue(0.5)
    bar.test_spin.editingFinished.emit()
    assert c.settings.test_fraction == 0.5 and c.train.n == 40 and c.test.n == 40
    bar.test_spin.setValue(0.0)
    bar.test_spin.editingFinished.emit()
    assert c.test is None and c.train.n == 80  # every row trains; no held-out curve
    c.step_once()
    assert c.extras[c.runs[0]].test_steps == []
    first = c.dataset.X.clone()
    bar.seed_spin.setValue(3)
    bar.seed_spin.editingFinished.emit()
    # one seed for everything: other generated rows, as `main.py train --seed 3` makes them
    assert c.settings.seed == 3 and not torch.equal(c.dataset.X, first)
    assert c.problem.seed == 3


def test_a_refused_change_leaves_the_runs_playing(qtbot, model_workspace):
    w, c = model_workspace, model_workspace.controller
    c.add_run("SGD")
    c.play()
    try:
        edit = w.setup_bar.model_edit
        edit.setText("Linear(2, 16), Tahn(), Linear(16, 1)")
        edit.returnPressed.emit()
        assert "Tahn" in w.setup_bar.error_label.text()
        assert c.playing  # nothing changed, not even play
    finally:
        c.pause()


def test_mse_picked_for_a_csv_with_whole_number_targets_trains_on_the_numbers(
        qtbot, model_workspace, tmp_path):
    w, c = model_workspace, model_workspace.controller
    run = c.add_run("SGD")
    path = tmp_path / "ratings.csv"
    path.write_text("x,rating\n" + "".join(f"{i * 0.25:.2f},{1 + i % 5}\n" for i in range(30)))
    bar = w.setup_bar
    assert bar.load_csv(path)
    assert c.dataset.task == "multiclass" and bar.loss_combo.currentText() == "CrossEntropyLoss"
    _activate(bar.loss_combo, bar.loss_combo.findText("MSELoss"))
    assert bar.error_label.text() == ("MSELoss reads 'rating' as numbers (1, 2, 3, 4, ...); "
                                      "CrossEntropyLoss would read it as 5 classes")
    assert c.settings.loss == "MSELoss" and c.dataset.task == "regression"
    assert bar.loss_combo.currentText() == "MSELoss"
    assert run.problem is c.problem and run.parameters["2.bias"].shape == (1,)
    expected = torch.tensor([[1.0 + i % 5] for i in range(30)], dtype=torch.float64)
    assert torch.equal(c.problem.y, expected[c.built.split.train_indices])
    # and back: CrossEntropyLoss reads the same column as five classes again
    _activate(bar.loss_combo, bar.loss_combo.findText("CrossEntropyLoss"))
    assert c.dataset.task == "multiclass" and c.problem.y.dtype == torch.int64
    assert bar.error_label.text() == ""
