"""CurvesView: one loss curve and one gradient-norm curve per run, on log y axes."""

import numpy as np
import pytest
from PySide6.QtGui import QColor

from core.session import Session
from core.surfaces import surface_from_formula
from gui.curves_view import DROPPED_NOTE, CurvesView


@pytest.fixture
def view(qtbot, controller):
    widget = CurvesView(controller)
    qtbot.addWidget(widget)
    widget.resize(600, 500)
    widget.show()
    return widget


def _shown(item):
    xs = item.getOriginalDataset()[0]
    return 0 if xs is None else len(xs)


def step(controller, n, view, qtbot):
    """Step, then wait for the throttled redraw to show every entry."""
    for _ in range(n):
        controller.step_once()
    qtbot.waitUntil(lambda: all(_shown(loss_item) == len(run.trajectory)
                                for run, (loss_item, _) in view.curves.items()), timeout=2000)


def test_hidden_view_does_not_redraw_until_shown(qtbot, controller):
    view = CurvesView(controller)
    qtbot.addWidget(view)
    controller.step_once()
    run = controller.session.runs[0]
    assert _shown(view.curves[run][0]) == 1  # hidden: stepping did not redraw
    view.show()
    qtbot.waitUntil(lambda: _shown(view.curves[run][0]) == 2, timeout=2000)


def test_log_scales_and_one_pair_of_curves_per_run(view, controller):
    assert view.loss_plot.ctrl.logYCheck.isChecked() and view.grad_plot.ctrl.logYCheck.isChecked()
    assert list(view.curves) == controller.session.runs
    for run, (loss_item, grad_item) in view.curves.items():
        assert loss_item in view.loss_plot.listDataItems()
        assert grad_item in view.grad_plot.listDataItems()
        assert loss_item.opts["pen"].color() == QColor(run.color)
        assert grad_item.opts["pen"].color() == QColor(run.color)
    legend_names = [label.text for _, label in view.legend.items]
    assert legend_names == [run.title for run in controller.session.runs]


def test_curves_equal_the_trajectories(view, controller, qtbot):
    step(controller, 30, view, qtbot)
    for run, (loss_item, grad_item) in view.curves.items():
        xs, ys = loss_item.getOriginalDataset()
        assert len(xs) == 31
        np.testing.assert_array_equal(xs, run.trajectory.step)
        np.testing.assert_array_equal(ys, run.trajectory.loss)
        xs, ys = grad_item.getOriginalDataset()
        np.testing.assert_array_equal(ys, run.trajectory.grad_norm)


def test_items_are_created_once_and_updated(view, controller, qtbot):
    items = dict(view.curves)
    step(controller, 3, view, qtbot)
    assert view.curves == items
    assert len(view.loss_plot.listDataItems()) == 4
    controller.add_run("Adam")
    assert len(view.loss_plot.listDataItems()) == 5
    assert all(view.curves[run] == pair for run, pair in items.items())
    removed = controller.session.runs[0]
    controller.remove_run(removed)
    assert removed not in view.curves
    assert len(view.loss_plot.listDataItems()) == len(view.grad_plot.listDataItems()) == 4
    assert len(view.legend.items) == 4


def test_non_positive_values_are_left_out_not_plotted(qtbot, controller):
    # f = x^2 + y^2 - 1 goes below zero; at the origin the gradient is exactly 0.
    surface = surface_from_formula("x^2 + y^2 - 1", (-2, 2), (-2, 2))
    session = Session(surface, start=(0.0, 0.0))
    session.add_run("SGD", {"lr": 0.1})
    session.add_run("SGD", {"lr": 0.1})
    session.set_start((1.5, 0.0))
    controller.set_session(session)
    view = CurvesView(controller)
    qtbot.addWidget(view)
    view.show()
    step(controller, 10, view, qtbot)
    run = session.runs[0]
    loss = run.trajectory.loss
    assert (loss > 0).any() and (loss <= 0).any()
    loss_item, grad_item = view.curves[run]
    _, shown = loss_item.getOriginalDataset()
    positive = loss > 0
    np.testing.assert_array_equal(shown[positive], loss[positive])
    assert np.isnan(shown[~positive]).all()
    _, display_y = loss_item.getData()  # what the log axis draws: finite or NaN, never -inf
    assert not np.isinf(display_y).any()
    assert DROPPED_NOTE in view.loss_plot.titleLabel.text
    view.grab()  # draws without raising


def test_colour_and_label_changes_restyle(view, controller):
    run = controller.session.runs[1]
    controller.set_color(run, "#112233")
    controller.set_label(run, "heavy ball")
    loss_item, grad_item = view.curves[run]
    assert loss_item.opts["pen"].color() == QColor("#112233")
    assert grad_item.opts["pen"].color() == QColor("#112233")
    assert "heavy ball" in [label.text for _, label in view.legend.items]


def test_surface_change_redraws_restarted_runs(view, controller, qtbot):
    step(controller, 10, view, qtbot)
    controller.set_surface_name(controller.session.surface.name)  # every run restarts
    for run, (loss_item, _) in view.curves.items():
        xs, ys = loss_item.getOriginalDataset()
        assert len(xs) == 1
        np.testing.assert_array_equal(ys, run.trajectory.loss)
