"""The Trainability tab: the drawn cells are core.many.trainability_map's, a zoom computes the
region shown again at the same resolution (Back returns from the cache), model mode's lr x lr."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF

from core.batch import DIVERGED
from core.many import linear_spaced, log_spaced, trainability_map
from gui.many.sweep_view import MODEL
from gui.many.trainability_view import TrainabilityView, default_range, parameter_choices
from tests.gui.many_fixtures import compute as _compute
from tests.gui.many_fixtures import make_model, make_race, one_torch_thread  # noqa: F401

N, STEPS = 8, 80


@pytest.fixture
def race(make_race):  # noqa: F811 (the imported fixture, by name)
    return make_race("rosenbrock", ("SGD", {"lr": 0.001, "momentum": 0.9}),
                     ("Adam", {"lr": 0.05}))


@pytest.fixture
def model(make_model):  # noqa: F811 (the imported fixture, by name)
    return make_model(("Adam", 0.01))


@pytest.fixture
def view(qtbot, race, model):
    v = TrainabilityView(race, model)
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    v.grid_spin.setValue(N)
    v.steps_spin.setValue(STEPS)
    v.lr_low_edit.setText("1e-4")
    v.lr_high_edit.setText("0.1")
    yield v
    v.shutdown()


def compute(qtbot, view) -> None:
    _compute(qtbot, view)


def expected_map(race, lrs, values, param="momentum", call=("SGD", {"lr": 0.001,
                                                                   "momentum": 0.9})):
    s = race.session
    return trainability_map(s.surface, call, param, values, lrs, STEPS, s.start)


def test_the_drawn_cells_are_core_runs_and_diverged_ones_are_their_own_colour(qtbot, view, race):
    assert view.param_combo.currentText() == "momentum"
    assert (view.value_low_edit.text(), view.value_high_edit.text()) == ("0", "0.99")
    compute(qtbot, view)
    lrs, values = log_spaced(1e-4, 0.1, N), linear_spaced(0.0, 0.99, N)
    expected = expected_map(race, lrs, values)
    option, result = view.shown
    assert np.array_equal(result.cells.final_loss, expected.cells.final_loss)
    diverged = (expected.cells.status == DIVERGED).reshape(N, N)
    assert diverged.any() and (~diverged).any()
    assert np.array_equal(view.diverged_mask, diverged)
    loss = expected.cells.final_loss.reshape(N, N)
    assert np.array_equal(view.image_values[~diverged], np.log10(loss[~diverged]))
    assert np.isnan(view.image_values[diverged]).all()
    overlay = view.diverged_image.image
    assert (overlay[diverged][:, 3] == 255).all() and (overlay[~diverged][:, 3] == 0).all()
    k = int(np.flatnonzero(~diverged.ravel())[0])
    text = view.describe_cell(k)
    assert "final loss" in text and ("running" in text or "converged" in text)


def test_a_zoom_recomputes_the_region_at_the_same_resolution_and_back_returns(qtbot, view, race):
    compute(qtbot, view)
    started = view.runner.jobs_started
    # what a dragged rectangle does: the view box shows it (x is log10 lr)
    with qtbot.waitSignal(view.sigComputed, timeout=60_000):
        view.view_box.showAxRect(QRectF(-3.5, 0.3, 1.5, 0.5), padding=0)
    option, result = view.shown
    assert len(result.lrs) == N and len(result.values) == N
    assert result.lrs[0] == pytest.approx(10 ** -3.5) and result.lrs[-1] == pytest.approx(0.01)
    assert result.values[0] == pytest.approx(0.3) and result.values[-1] == pytest.approx(0.8)
    expected = expected_map(race, result.lrs, result.values)
    assert np.array_equal(result.cells.final_loss, expected.cells.final_loss)
    assert view.runner.jobs_started == started + 1 and view.back_button.isEnabled()
    with qtbot.waitSignal(view.sigComputed, timeout=5000):
        assert not view.back()  # False: no Job, the first region is cached
    assert view.shown[1].lrs[0] == pytest.approx(1e-4) and not view.back_button.isEnabled()
    assert view.runner.jobs_started == started + 1  # the first region came from the cache


def test_adam_offers_beta1_and_a_model_offers_each_layers_own_lr(qtbot, view, model):
    adam = view._options[1]
    assert parameter_choices(adam)[0] == "beta1" and default_range(adam, "beta1") == (0, 0.999)
    view.mode_combo.setCurrentText(MODEL)
    choices = [view.param_combo.itemText(i) for i in range(view.param_combo.count())]
    assert "lr:0" in choices and "lr:2" in choices
    view.param_combo.setCurrentText("lr:0")
    view.grid_spin.setValue(3)
    view.steps_spin.setValue(5)
    compute(qtbot, view)
    option, result = view.shown
    built = model.settings.session().build()
    expected = trainability_map(built, ("Adam", {"lr": 0.01}), "lr:0", log_spaced(1e-3, 10, 3),
                                log_spaced(1e-3, 10, 3), 5)
    assert np.array_equal(result.cells.final_loss, expected.cells.final_loss)
    assert result.row_names == ("0.weight", "0.bias")


def test_bad_ranges_are_one_message_and_run_nothing(qtbot, view):
    view.value_low_edit.setText("1")
    view.value_high_edit.setText("0.5")
    assert not view.compute()
    assert "low to high" in view.runner.message.text() and view.runner.jobs_started == 0
    view.value_low_edit.setText("0")
    view.value_high_edit.setText("2")  # momentum 2: torch refuses it, before any work
    with qtbot.waitSignal(view.runner.sigFailed, timeout=30_000):
        view.compute()
    assert "momentum" in view.runner.message.text()


def test_float32_on_the_surface_says_so_and_is_cached_apart(qtbot, view):
    compute(qtbot, view)
    exact = view.shown[1]
    view.float32_box.setChecked(True)
    compute(qtbot, view)  # a Job runs: not the float64 map from the cache
    fast = view.shown[1]
    assert exact.dtype == "float64" and fast.dtype == "float32"
    assert "float32 (faster, less exact)" in view.note.text()
    assert np.mean(exact.cells.status == fast.cells.status) >= 0.9
    view.mode_combo.setCurrentText(MODEL)
    assert not view.float32_box.isEnabled() and view.dtype == "float64"
