"""Model mode's workspace driven through its real widgets (pytest-qt)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from core.problems.model import preset_text
from gui.controller import MAX_SLICE_S, SLICE_S
from gui.model.controller import SHARPNESS_REST, ModelController, ModelSettings
from gui.model.workspace import ModelWorkspace


@pytest.fixture
def workspace(make_model_workspace):
    """An empty workspace (no runs yet): linear regression on a line, measuring sharpness."""
    w = make_model_workspace(ModelSettings(dataset="line", n=60, noise=0.1,
                                           model_text="Linear(1, 1)", preset=None,
                                           loss="MSELoss"), size=(1200, 800), sharpness=True)
    yield w
    assert not w.controller.playing, "the test left the controller's timer running"


def _pick(qtbot, combo, data) -> None:
    """Choose an entry of a combo box as the user does (activated, not just currentIndex)."""
    index = combo.findData(data) if data is not None else combo.findText(data)
    assert index >= 0
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _pick_text(combo, text) -> None:
    index = combo.findText(text)
    assert index >= 0
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _moons_small_mlp_sgd_adam(qtbot, w: ModelWorkspace) -> None:
    bar, panel = w.setup_bar, w.run_panel
    _pick(qtbot, bar.dataset_combo, "moons")
    _pick(qtbot, bar.preset_combo, "small-mlp")
    for name in ("SGD", "Adam"):
        _pick_text(panel.optimizer_combo, name)
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)


def test_two_moons_small_mlp_sgd_and_adam_step_n_times(qtbot, workspace):
    w, c = workspace, workspace.controller
    _moons_small_mlp_sgd_adam(qtbot, w)
    assert c.settings.dataset == "moons" and c.settings.loss == "BCEWithLogitsLoss"
    assert c.settings.model_text == preset_text("small-mlp", 2, 1)
    assert [r.optimizer_name for r in c.runs] == ["SGD", "Adam"]
    steps = 7
    for _ in range(steps):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    assert [r.steps for r in c.runs] == [steps, steps]
    assert all(len(r.trajectory) == steps + 1 for r in c.runs)
    # the table shows the selected run's tensors (Adam, the last added), in model order
    assert c.selected is c.runs[1]
    w.tensor_table.refresh()
    assert w.tensor_table.names() == list(c.problem.parameter_names) == [
        "0.weight", "0.bias", "2.weight", "2.bias"]
    # both runs start from the same weights, and SGD and Adam really went different ways
    a, b = c.runs
    first_a = a.trajectory.parameter_value_norm("0.weight")[0]
    assert first_a == b.trajectory.parameter_value_norm("0.weight")[0]
    assert not torch.equal(a.parameters["0.weight"], b.parameters["0.weight"])
    # the loss curve has N+1 points, the same as the engine's record
    w.curves.refresh()
    for run in c.runs:
        xs, ys = w.curves.train_curves[run].getOriginalDataset()
        assert len(xs) == steps + 1
        np.testing.assert_array_equal(ys, run.trajectory.loss)
        assert len(c.extras[run].test_loss) == steps + 1
    # selecting SGD in the list switches the table's run
    w.run_panel.run_list.setCurrentRow(0)
    assert c.selected is a


def test_freezing_a_tensor_keeps_it_bitwise(qtbot, workspace):
    w, c = workspace, workspace.controller
    _moons_small_mlp_sgd_adam(qtbot, w)
    adam = c.selected
    qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    w.run_panel.freeze_checks["0.weight"].click()
    assert "0.weight" in adam.frozen and not adam.parameters["0.weight"].requires_grad
    before = adam.parameters["0.weight"].detach().clone()
    other_before = adam.parameters["2.weight"].detach().clone()
    for _ in range(5):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    assert torch.equal(adam.parameters["0.weight"], before)
    assert adam.parameters["0.weight"].grad is None
    assert not torch.equal(adam.parameters["2.weight"], other_before)
    assert "0.weight" not in c.runs[0].frozen  # only the selected run's tensor
    w.tensor_table.refresh()
    row = w.tensor_table.names().index("0.weight")
    assert w.tensor_table.item(row, 5).text() == "frozen"


def test_a_model_typo_shows_an_error_and_changes_nothing(qtbot, workspace):
    w, c = workspace, workspace.controller
    _moons_small_mlp_sgd_adam(qtbot, w)
    for _ in range(3):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    problem, runs, settings = c.problem, list(c.runs), c.settings
    height = w.setup_bar.height()
    edit = w.setup_bar.model_edit
    edit.setText("Linear(2, 16), Tahn(), Linear(16, 1)")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    message = w.setup_bar.error_label.text()
    assert "Tahn" in message and "column 16" in message
    assert c.problem is problem and c.runs == runs and c.settings == settings
    assert [r.steps for r in c.runs] == [3, 3]
    assert edit.text() == "Linear(2, 16), Tahn(), Linear(16, 1)"  # left for the user to fix
    assert w.setup_bar.height() == height
    # a model that does not fit the data is refused too, naming why
    edit.setText("Linear(2, 16), Tanh(), Linear(16, 2)")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert "BCEWithLogitsLoss" in w.setup_bar.error_label.text()
    assert c.problem is problem
    # a good model is taken, the runs restart on it, and the message goes
    edit.setText("Linear(2, 8), ReLU(), Linear(8, 1)")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert w.setup_bar.error_label.text() == ""
    assert c.problem is not problem and c.settings.preset is None
    assert [r.steps for r in c.runs] == [0, 0]
    assert c.runs[0].problem is c.problem
    assert w.setup_bar.preset_combo.currentText() == "Custom"


def test_decision_regions_change_after_training(qtbot, workspace):
    w, c = workspace, workspace.controller
    _moons_small_mlp_sgd_adam(qtbot, w)
    assert w.data_view.image.isVisible()
    w.data_view.refresh_prediction()
    before = w.data_view.region_image.copy()
    assert before.shape[2] == 3
    c.step_once()  # the run list's lr box keeps Adam at its model default
    for _ in range(30):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    w.data_view.refresh_prediction()
    after = w.data_view.region_image
    assert np.abs(after.astype(int) - before.astype(int)).max() > 10
    np.testing.assert_array_equal(w.data_view.image.image, after)


def test_regression_draws_the_fitted_curve(qtbot, workspace):
    w, c = workspace, workspace.controller
    c.add_run("SGD")
    assert w.data_view.curve.isVisible() and not w.data_view.image.isVisible()
    w.data_view.refresh_prediction()
    xs, ys = w.data_view.curve.getData()
    run = c.runs[0]
    weight, bias = run.parameters["0.weight"].item(), run.parameters["0.bias"].item()
    np.testing.assert_allclose(ys, weight * xs + bias, rtol=1e-12, atol=1e-12)


def test_play_steps_on_the_timer_and_pause_stops(qtbot, workspace):
    w, c = workspace, workspace.controller
    c.add_run("SGD")
    qtbot.mouseClick(w.setup_bar.play_button, Qt.MouseButton.LeftButton)
    assert c.playing and w.setup_bar.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: c.runs[0].steps >= 20, timeout=5000)
    qtbot.mouseClick(w.setup_bar.play_button, Qt.MouseButton.LeftButton)
    assert not c.playing
    steps = c.runs[0].steps
    qtbot.mouseClick(w.setup_bar.reset_button, Qt.MouseButton.LeftButton)
    assert c.runs[0].steps == 0 and steps >= 20
    assert len(c.extras[c.runs[0]].test_loss) == 1


def test_sharpness_is_measured_and_drawn_against_two_over_lr(qtbot, workspace):
    w, c = workspace, workspace.controller
    run = c.add_run("SGD", lr=0.05)
    c.sharpness_every = 2
    with qtbot.waitSignal(c.sigSharpness, timeout=5000):
        c.step_once()
    extras = c.extras[run]
    assert extras.sharpness_steps == [1] and extras.sharpness_lr == [0.05]
    # linear regression with MSE: the Hessian is 2 X^T X / n over (w, b), so the top
    # eigenvalue is known in closed form
    X = torch.cat([c.problem.X, torch.ones(len(c.problem.X), 1, dtype=c.problem.X.dtype)], 1)
    exact = torch.linalg.eigvalsh(2 * X.T @ X / len(X)).max().item()
    assert extras.sharpness[0] == pytest.approx(exact, rel=1e-6)
    _, edge = w.sharpness_view.edge_curves[run].getOriginalDataset()
    assert edge[0] == pytest.approx(2 / 0.05)


def test_other_data_that_the_own_model_does_not_fit_takes_the_preset_and_says_so(qtbot,
                                                                                 workspace):
    w, c = workspace, workspace.controller
    run = c.add_run("Adam")
    _pick(qtbot, w.setup_bar.dataset_combo, "blobs")
    assert c.settings.dataset == "blobs" and c.settings.loss == "CrossEntropyLoss"
    assert c.settings.preset == "small-mlp"
    assert c.settings.model_text == preset_text("small-mlp", 2, 3)
    assert "Linear(1, 1) does not fit" in w.setup_bar.error_label.text()
    assert w.setup_bar.preset_combo.currentData() == "small-mlp"
    assert run.problem is c.problem and run.parameters["2.bias"].shape == (3,)
    assert w.setup_bar.noise_spin.value() == pytest.approx(0.5)  # the blobs' usual noise


def test_sharpness_rests_after_a_measurement_so_the_worker_cannot_hog_the_gil(qtbot):
    now = [100.0]
    c = ModelController(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                      preset=None, loss="MSELoss"), clock=lambda: now[0])
    try:
        run = c.add_run("SGD")
        c.sharpness_every = 1
        with qtbot.waitSignal(c.sigSharpness, timeout=5000):
            c.step_once()  # starts at clock 100.0 ...
            now[0] = 100.5  # ... and (on this clock) takes half a second
        assert len(c.extras[run].sharpness) == 1
        for _ in range(3):
            c.step_once()
        assert c._sharpness_job is None  # resting: SHARPNESS_REST x 0.5 s after the end
        now[0] = 100.5 + SHARPNESS_REST * 0.5 + 0.01
        with qtbot.waitSignal(c.sigSharpness, timeout=5000):
            c.step_once()
        assert c.extras[run].sharpness_steps == [1, 5]
    finally:
        assert c.shutdown(2.0)


def test_the_run_list_says_when_a_run_diverges_or_is_all_frozen(qtbot, workspace):
    w, c = workspace, workspace.controller
    calm = c.add_run("SGD", lr=0.01)
    wild = c.add_run("SGD", lr=1000.0)
    for _ in range(50):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
        if wild.status.value == "diverged":
            break
    assert wild.status.value == "diverged" and calm.status.value == "running"
    qtbot.waitUntil(lambda: "diverged" in w.run_panel.run_list.item(1).text(), timeout=2000)
    assert "running" in w.run_panel.run_list.item(0).text()
    c.select(calm)
    for name in c.problem.parameter_names:
        w.run_panel.freeze_checks[name].click()
    assert "frozen" in w.run_panel.run_list.item(0).text()


def test_the_tensor_table_shows_the_optimizer_state_norms_but_not_its_step_counter(qtbot,
                                                                                    workspace):
    w, c = workspace, workspace.controller
    run = c.add_run("Adam")
    c.step_once()
    w.tensor_table.refresh()
    row = w.tensor_table.names().index("0.weight")
    text = w.tensor_table.item(row, 6).text()
    exp_avg = run.optimizer.state[run.parameters["0.weight"]]["exp_avg"].norm().item()
    assert f"|exp_avg| {exp_avg:.4g}" in text and "step" not in text


def test_the_other_runs_draw_their_boundaries_as_lines(qtbot, workspace):
    w, c = workspace, workspace.controller
    _moons_small_mlp_sgd_adam(qtbot, w)
    sgd, adam = c.runs
    for _ in range(5):
        c.step_once()
    w.data_view.refresh_prediction()
    sgd_lines, adam_lines = w.data_view.other_items[sgd], w.data_view.other_items[adam]
    assert len(sgd_lines) == 1  # one logit: one boundary, where it is 0
    assert sgd_lines[0].isVisible() and not adam_lines[0].isVisible()  # Adam fills regions
    # segments in data units along SGD's boundary: where its logit is zero (traced on every
    # other sample of the grid, so to within the interpolation's error)
    xs, ys = sgd_lines[0].getData()
    assert len(xs) >= 10 and len(xs) % 2 == 0
    points = torch.tensor(np.stack([xs, ys], 1), dtype=torch.float64)
    at_line = c.predict(sgd, points).abs().max().item()
    spread = c.predict(sgd, w.data_view._grid).abs().max().item()
    assert at_line < 0.05 * spread, (at_line, spread)
    low, high = w.data_view._low, w.data_view._high
    assert low[0] <= xs.min() and xs.max() <= high[0] and low[1] <= ys.min() <= high[1]
    w.run_panel.run_list.setCurrentRow(0)
    assert adam_lines[0].isVisible() and not sgd_lines[0].isVisible()


def test_batch_size_loss_and_lr_from_the_controls(qtbot, workspace):
    w, c = workspace, workspace.controller
    _moons_small_mlp_sgd_adam(qtbot, w)
    sgd, adam = c.runs
    bar = w.setup_bar
    bar.batch_spin.setValue(16)
    bar.batch_spin.editingFinished.emit()
    assert c.problem.batch_size == 16 and not c.problem.full_batch
    assert sgd.problem is c.problem and adam.problem is c.problem
    # the loss of step k is on batch k of the seeded sequence, the same for every run
    rows = c.problem.batch(0)
    assert len(rows) == 16
    with torch.no_grad():
        first = c.loss_fn(c.predict(sgd, c.problem.X[rows]), c.problem.y[rows]).item()
    assert sgd.trajectory.loss[0] == pytest.approx(first, rel=1e-12)
    assert adam.trajectory.loss[0] == sgd.trajectory.loss[0]
    # CrossEntropyLoss on two classes: the preset grows a second output
    _pick_text(bar.loss_combo, "CrossEntropyLoss")
    assert c.settings.loss == "CrossEntropyLoss"
    assert sgd.parameters["2.bias"].shape == (2,)
    assert len(w.data_view.other_items[sgd]) == 2  # an outline per class
    # the lr box sets the selected run's learning rate, in torch's param group
    w.run_panel.run_list.setCurrentRow(0)
    w.run_panel.lr_spin.setValue(0.25)
    w.run_panel.lr_spin.editingFinished.emit()
    assert sgd.optimizer.param_groups[0]["lr"] == 0.25 and adam.hyperparameters["lr"] == 0.01


def test_the_stepping_slice_grows_while_frames_keep_time_and_shrinks_when_they_do_not(qtbot):
    now = [0.0]

    def clock() -> float:  # every reading takes half a millisecond of this clock's time
        now[0] += 0.0005
        return now[0]

    c = ModelController(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                      preset=None, loss="MSELoss"), clock=clock)
    try:
        c.sharpness_every = 10 ** 9
        run = c.add_run("SGD", lr=0.01)
        for _ in range(40):  # ticks that end well within a frame of each other
            now[0] += 0.002
            c.tick()
        assert c.slice_s == MAX_SLICE_S
        steps = run.steps
        c.tick()
        assert run.steps - steps > 1  # several rounds in one slice
        for _ in range(10):  # each tick comes late: the slice gives the frame back
            now[0] += 0.05
            c.tick()
        assert c.slice_s == SLICE_S
    finally:
        assert c.shutdown(2.0)


def test_a_long_runs_test_loss_record_is_thinned_keeping_the_first_and_newest(qtbot):
    c = ModelController(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                      preset=None, loss="MSELoss"))
    try:
        c.sharpness_every = 10 ** 9
        c.test_capacity = 8
        run = c.add_run("SGD", lr=0.01)
        for _ in range(30):
            c.step_once()
        extras = c.extras[run]
        assert len(extras.test_steps) <= 8 and len(extras.test_steps) == len(extras.test_loss)
        assert extras.test_steps[0] == 0 and extras.test_steps[-1] == 30
        assert extras.test_steps == sorted(set(extras.test_steps))
        with torch.no_grad():
            newest = c.loss_fn(c.predict(run, c.test_X), c.test_y).item()
        assert extras.test_loss[-1] == newest
    finally:
        assert c.shutdown(2.0)


def test_log_axes_label_decades_only_so_short_axes_stay_readable(qtbot, workspace):
    axis = workspace.curves.loss_plot.getAxis("left")
    levels = axis.tickValues(math.log10(0.007), math.log10(0.7), 200)
    assert levels[0] == (1.0, [-2.0, -1.0])  # 0.01 and 0.1 get labels ...
    assert axis.style["maxTextLevel"] == 0  # ... and the minor ticks (2..9 x) get none
    assert math.log10(0.02) in levels[1][1]
    assert not axis.autoSIPrefix
    short = axis.tickValues(math.log10(0.02), math.log10(0.09), 200)  # under one decade
    assert any(math.log10(0.05) == pytest.approx(v) for v in short[0][1])


def test_removing_a_run_drops_it_from_every_view(qtbot):
    w = ModelWorkspace()  # its own controller: SGD and Adam on two moons, the small MLP
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    c = w.controller
    try:
        assert [r.optimizer_name for r in c.runs] == ["SGD", "Adam"]
        assert c.settings.dataset == "moons" and c.settings.preset == "small-mlp"
        sgd, adam = c.runs
        c.select(adam)
        qtbot.mouseClick(w.run_panel.remove_button, Qt.MouseButton.LeftButton)
        assert c.runs == [sgd] and c.selected is sgd
        assert w.run_panel.run_list.count() == 1
        for store in (w.curves.train_curves, w.curves.test_curves, w.data_view.other_items,
                      w.sharpness_view.sharpness_curves):
            assert adam not in store and sgd in store
        qtbot.mouseClick(w.run_panel.remove_button, Qt.MouseButton.LeftButton)
        assert c.runs == [] and c.selected is None
        assert w.tensor_table.rowCount() == 0 and w.data_view.region_image is None
        qtbot.mouseClick(w.setup_bar.play_button, Qt.MouseButton.LeftButton)
        assert not c.playing  # nothing to play
    finally:
        assert c.shutdown(2.0)


def test_a_slow_run_costs_a_tick_one_step_and_every_run_keeps_its_turn(qtbot):
    now = [0.0]

    def clock() -> float:
        now[0] += 0.0001
        return now[0]

    c = ModelController(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                      preset=None, loss="MSELoss"), clock=clock)
    try:
        c.sharpness_every = 10 ** 9
        fast = c.add_run("SGD", lr=0.01)
        slow = c.add_run("Adam", lr=0.01)
        real_step = slow.step

        def slow_step(n: int = 1) -> int:  # as an L-BFGS step with many evaluations would be
            now[0] += 0.02
            return real_step(n)

        slow.step = slow_step
        spans = []
        for _ in range(6):
            now[0] += 0.016
            start = now[0]
            c.tick()
            spans.append(now[0] - start)
        # never a second slow step in one tick: at most one 20 ms step past the slice
        assert max(spans) < MAX_SLICE_S + 0.02 + 0.002
        assert 2 <= slow.steps <= 6  # it kept its turn ...
        assert fast.steps > 3 * slow.steps  # ... and the fast run used the rest of the slices
    finally:
        assert c.shutdown(2.0)
