"""The LR sweep tab: its curves are core.many.lr_sweep's, a click on a point sets that run's lr
in the race (or the model workspace), the cache, bad input and the exports."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from core.batch import DIVERGED
from core.many import log_spaced, lr_sweep
from gui.many.sweep_view import MODEL, SweepView
from tests.gui.many_fixtures import compute as _compute
from tests.gui.many_fixtures import make_model, make_race, one_torch_thread  # noqa: F401


@pytest.fixture
def race(make_race):  # noqa: F811 (the imported fixture, by name)
    return make_race("rosenbrock", ("SGD", {"lr": 0.001}), ("Adam", {"lr": 0.05}))


@pytest.fixture
def model(make_model):  # noqa: F811 (the imported fixture, by name)
    return make_model(("SGD", 0.1))


@pytest.fixture
def view(qtbot, race, model):
    v = SweepView(race, model)
    qtbot.addWidget(v)
    v.resize(1100, 600)
    v.show()
    v.low_edit.setText("1e-4")
    v.high_edit.setText("1")
    v.count_spin.setValue(9)
    v.steps_spin.setValue(60)
    yield v
    v.shutdown()


def compute(qtbot, view: SweepView) -> None:
    _compute(qtbot, view)


def click_point(qtbot, view: SweepView, curve: int, index: int) -> None:
    """A real left click on a point of a curve (its index among the lrs)."""
    qtbot.wait(50)  # laid out and drawn: the view box maps its coordinates
    item = view.points[curve]
    drawn = item.scatter.points()
    spot = next(p for p in drawn if p.data() == index)
    scene = view.plot.getViewBox().mapViewToScene(spot.pos())
    at = view.plot.mapFromScene(scene)
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(at.x(), at.y()))


def test_the_curves_are_core_sweeps_and_diverged_lrs_are_marked(qtbot, view, race):
    compute(qtbot, view)
    lrs = log_spaced(1e-4, 1.0, 9)
    assert len(view.shown) == 2
    for (option, result), item in zip(view.shown, view.points):
        expected = lr_sweep(race.session.surface, (option.name, option.hyperparameters), lrs, 60,
                            race.session.start)
        assert np.array_equal(result.cells.final_loss, expected.cells.final_loss)
        x, y = item.getData()  # what the curve draws: the non-diverged lrs and their losses
        ok = expected.cells.status != DIVERGED
        assert np.allclose(10 ** np.asarray(x), lrs[ok], rtol=1e-12)
        assert np.allclose(10 ** np.asarray(y), expected.cells.final_loss[ok], rtol=1e-9)
        assert result.best == expected.best
    sgd = view.shown[0][1]
    assert (sgd.cells.status == DIVERGED).any()  # lr 1 on Rosenbrock: a cross, not a point
    assert len(view.points[0].scatter.points()) == int((sgd.cells.status != DIVERGED).sum())


def test_clicking_a_point_sets_that_runs_lr_in_the_race(qtbot, view, race):
    compute(qtbot, view)
    adam = race.session.runs[1]
    lrs = view.shown[1][1].lrs
    with qtbot.waitSignal(view.sigLrApplied, timeout=5000) as signal:
        click_point(qtbot, view, 1, 3)
    assert signal.args == [adam, float(lrs[3])]
    assert adam.hyperparameters["lr"] == float(lrs[3])
    assert race.selected is adam
    assert "Adam" in view.runner.message.text() and "in the race" in view.runner.message.text()
    race.remove_run(adam)  # gone since: one message, nothing changes
    assert not view.apply_lr(view.shown[1][0], 0.5)
    assert "no longer" in view.runner.message.text()


def test_model_mode_trains_copies_and_a_click_sets_the_model_runs_lr(qtbot, view, model):
    view.mode_combo.setCurrentText(MODEL)
    view.low_edit.setText("1e-3")
    view.high_edit.setText("10")
    view.count_spin.setValue(3)
    view.steps_spin.setValue(15)
    compute(qtbot, view)
    option, result = view.shown[0]
    expected = lr_sweep(model.settings.session().build(), "SGD", log_spaced(1e-3, 10, 3), 15)
    assert np.array_equal(result.cells.final_loss, expected.cells.final_loss)
    run = model.runs[0]
    click_point(qtbot, view, 0, 2)
    assert run.hyperparameters["lr"] == 10.0 and model.selected is run
    assert "model workspace" in view.runner.message.text()


def test_a_repeated_request_is_a_cache_hit_and_bad_input_runs_nothing(qtbot, view):
    compute(qtbot, view)
    started = view.runner.jobs_started
    with qtbot.waitSignal(view.sigComputed, timeout=5000):
        assert not view.compute()  # every curve cached: no Job
    assert view.runner.jobs_started == started
    view.low_edit.setText("abc")
    assert not view.compute()
    assert "number" in view.runner.message.text() and view.runner.jobs_started == started
    view.low_edit.setText("2")
    assert not view.compute() and "low to high" in view.runner.message.text()


def test_the_steps_measure_draws_converged_lrs_only(qtbot, view):
    compute(qtbot, view)
    view.measure_combo.setCurrentText("steps to converge")
    option, result = view.shown[1]
    values = view.curve_values(result)
    converged = result.cells.status == 1
    assert np.array_equal(values[converged], result.cells.converged_at[converged])
    assert np.isnan(values[~converged]).all()


def test_data_export_has_every_lr_of_every_optimizer(qtbot, view, tmp_path):
    compute(qtbot, view)
    out = tmp_path / "sweep.csv"
    assert view.exports.export_to(out)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 18 and {r["optimizer"] for r in rows} == {o.call for o, _ in view.shown}
    png = tmp_path / "sweep.png"
    assert view.exports.export_to(png) and png.stat().st_size > 1000


def test_float32_on_the_surface_says_so_and_is_cached_apart(qtbot, view, race):
    compute(qtbot, view)
    exact = [r for _, r in view.shown]
    view.float32_box.setChecked(True)
    compute(qtbot, view)  # a Job runs: not the float64 curves from the cache
    fast = [r for _, r in view.shown]
    assert all(r.dtype == "float32" for r in fast) and "float32" in view.note.text()
    for a, b in zip(exact, fast, strict=True):
        assert a.dtype == "float64"
        assert np.mean(a.cells.status == b.cells.status) >= 0.75  # close, not equal
        ok = (a.cells.status != DIVERGED) & (b.cells.status != DIVERGED)
        assert ok.any()
        np.testing.assert_allclose(a.cells.final_loss[ok], b.cells.final_loss[ok], rtol=1e-3,
                                   atol=1e-6)
    view.mode_combo.setCurrentText(MODEL)
    assert not view.float32_box.isEnabled() and view.dtype == "float64"
