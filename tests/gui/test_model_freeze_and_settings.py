"""Freezing by layer and tensor mid-run, every hyperparameter, the scheduler and clipping of a run,
driven through the run panel's real widgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt



def _step(qtbot, w, n: int) -> None:
    for _ in range(n):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)


def test_freezing_a_layer_mid_run_keeps_it_bitwise_and_shows_it_everywhere(
        qtbot, deep_model_workspace):
    w, c = deep_model_workspace, deep_model_workspace.controller
    run = c.add_run("Adam")
    _step(qtbot, w, 3)
    panel = w.run_panel
    assert sorted(panel.layer_checks) == [0, 2, 4, 6]  # the Linear layers, not the ReLUs
    panel.layer_checks[2].click()
    assert run.frozen == {"2.weight", "2.bias"}
    assert panel.freeze_checks["2.weight"].isChecked() and panel.freeze_checks["2.bias"].isChecked()
    held = {n: run.parameters[n].detach().clone() for n in ("2.weight", "2.bias")}
    moving = run.parameters["4.weight"].detach().clone()
    _step(qtbot, w, 5)
    for name, value in held.items():
        assert torch.equal(run.parameters[name], value) and run.parameters[name].grad is None
    assert not torch.equal(run.parameters["4.weight"], moving)
    # the table, the run list and the gradient curves say so
    w.tensor_table.refresh()
    rows = w.tensor_table.names()
    assert w.tensor_table.item(rows.index("2.weight"), 5).text() == "frozen"
    assert w.tensor_table.item(rows.index("4.weight"), 5).text() == ""
    panel._show_statuses()
    assert "2 of 8 tensors frozen" in panel.run_list.item(0).text()
    w.curves.refresh()
    _, norms = w.curves.grad_curves["2.weight"].getOriginalDataset()
    assert np.isfinite(norms[:3]).all() and np.isnan(norms[3:]).all()  # the line ends at 3
    xs, _ = w.curves.freeze_marks.getOriginalDataset()
    assert list(xs) == [3.0, 3.0]  # one mark per tensor, at the step it was frozen
    label = w.curves.grad_legend.getLabel(w.curves.grad_curves["2.weight"])
    assert label.text == "2.weight (frozen)"
    # unfreezing the layer lets it move again, and is marked too
    panel.layer_checks[2].click()
    assert not run.frozen
    _step(qtbot, w, 1)
    assert not torch.equal(run.parameters["2.weight"], held["2.weight"])
    w.curves.refresh()
    assert len(w.curves.freeze_marks.getOriginalDataset()[0]) == 4


def test_freeze_all_but_the_last_layer_is_fine_tuning(qtbot, deep_model_workspace):
    w, c = deep_model_workspace, deep_model_workspace.controller
    tuned = c.add_run("SGD")
    other = c.add_run("SGD")
    c.select(tuned)
    initial = c.problem.initial_parameters()
    qtbot.mouseClick(w.run_panel.freeze_last_button, Qt.MouseButton.LeftButton)
    assert tuned.frozen == {n for n in tuned.parameter_names if not n.startswith("6.")}
    assert not other.frozen  # only the selected run
    assert [w.run_panel.layer_checks[i].isChecked() for i in (0, 2, 4, 6)] == [True] * 3 + [False]
    _step(qtbot, w, 4)
    for name in tuned.parameter_names:
        unchanged = torch.equal(tuned.parameters[name], initial[name])
        assert unchanged == (not name.startswith("6."))
    qtbot.mouseClick(w.run_panel.unfreeze_button, Qt.MouseButton.LeftButton)
    assert not tuned.frozen and not any(ch.isChecked() for ch in w.run_panel.freeze_checks.values())


def test_every_hyperparameter_of_the_selected_run_from_its_controls(qtbot, deep_model_workspace):
    w, c = deep_model_workspace, deep_model_workspace.controller
    sgd = c.add_run("SGD")
    form = w.run_panel.hyperparameter_form
    w.run_panel.lr_spin.setValue(1e-7)  # the race's number box: any lr, exactly as typed
    assert sgd.optimizer.param_groups[0]["lr"] == 1e-7
    assert "lr" in w.run_panel.lr_spin.toolTip() and "range" in w.run_panel.lr_spin.toolTip()
    assert "momentum" in form.controls and "lr" not in form.controls
    assert "range" in form.controls["momentum"].toolTip()
    form.controls["momentum"].setValue(0.9)
    assert sgd.optimizer.param_groups[0]["momentum"] == 0.9
    form.controls["nesterov"].click()
    assert sgd.optimizer.param_groups[0]["nesterov"] is True
    # a value the catalogue refuses: one message, and the box goes back to the run's value
    form.controls["dampening"].setValue(0.5)  # torch: nesterov needs dampening 0
    assert form.message.text() and sgd.hyperparameters["dampening"] == 0
    assert form.controls["dampening"].value() == 0
    adam = c.add_run("Adam")
    assert c.selected is adam and "betas" in form.controls and "momentum" not in form.controls
    first, second = form.controls["betas"]
    second.setValue(0.95)
    assert adam.optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    form.controls["amsgrad"].click()  # not live in torch: a fresh optimizer at this point
    assert adam.optimizer.param_groups[0]["amsgrad"] is True


def test_a_scheduler_and_clipping_per_run(qtbot, deep_model_workspace):
    w, c = deep_model_workspace, deep_model_workspace.controller
    run = c.add_run("SGD", lr=0.1)
    plain = c.add_run("SGD", lr=0.1)
    c.select(run)
    picker = w.run_panel.scheduler_picker
    picker.call_edit.setText("StepLR(step_size=2, gamma=0.5)")
    picker.call_edit.editingFinished.emit()
    assert run.scheduler_setting == ("StepLR", {"step_size": 2, "gamma": 0.5})
    assert plain.scheduler_setting is None
    _step(qtbot, w, 4)
    assert run.trajectory.lr.tolist() == [0.1, 0.1, 0.05, 0.05, 0.025]
    form = w.run_panel.hyperparameter_form
    form.clip_combo.setCurrentIndex(form.clip_combo.findData("norm"))
    form.clip_combo.activated.emit(form.clip_combo.currentIndex())
    form.clip_spin.setValue(0.01)
    assert run.clipping is not None and run.clipping.threshold == 0.01
    _step(qtbot, w, 1)
    assert run.trajectory.column("clipped")[-1] == 1.0
    assert run.trajectory.column("grad_norm_after_clip")[-1] == pytest.approx(0.01, rel=1e-4)


def test_a_mid_run_freeze_is_marked_again_after_a_save_and_load(qtbot, deep_model_workspace,
                                                                 tmp_path):
    w, c = deep_model_workspace, deep_model_workspace.controller
    run = c.add_run("Adam")
    _step(qtbot, w, 4)
    w.run_panel.freeze_checks["0.weight"].click()
    _step(qtbot, w, 3)
    c.save_session(tmp_path / "frozen.json")
    c.load_session(tmp_path / "frozen.json")
    loaded = c.runs[0]
    assert loaded is not run and loaded.frozen == {"0.weight"} and loaded.steps == 7
    assert c.freeze_events(loaded) == [(4, "0.weight", True)]
    w.curves.refresh()
    xs, _ = w.curves.freeze_marks.getOriginalDataset()
    assert list(xs) == [4.0]
