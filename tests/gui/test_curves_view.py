"""CurvesView: one loss curve and one gradient-norm curve per run, on log y axes."""

import numpy as np
import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from core.run import RunStatus
from core.session import Session
from core.surfaces import surface_from_formula
from gui.curves_view import DROPPED_NOTE, CurvesView, log_y_range
from gui.worker import wait_for_jobs


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


def settle():
    """Let a background step (a run the controller found slow on a busy machine) land, so each
    step_once gives every run exactly one step."""
    wait_for_jobs()
    QApplication.processEvents()


def step(controller, n, view, qtbot):
    """Step, then wait for the throttled redraw to show every entry."""
    for _ in range(n):
        controller.step_once()
        settle()
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


# --- readable at the dock's default size ----------------------------------------------------------


@pytest.fixture
def docked(qtbot, controller):
    """The curves at the size of the main window's bottom dock (~1000 x 250)."""
    widget = CurvesView(controller)
    qtbot.addWidget(widget)
    widget.resize(1000, 250)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_log_axes_label_plain_powers_of_ten(docked, controller, qtbot):
    controller.add_run("SGD", {"lr": 1.0})  # losses from 1e-1 to 1e10: pyqtgraph's SI range
    step(controller, 50, docked, qtbot)
    for plot in (docked.loss_plot, docked.grad_plot):
        axis = plot.getAxis("left")
        assert "x1e" not in axis.labelString() and "×1e" not in axis.labelString()
        assert axis.autoSIPrefixScale == 1.0
        # A loss of 1 (log10 = 0) is labelled 1, not 1e-15.
        assert axis.tickStrings([0.0, -15.0], axis.scale, 1.0)[0] == "1"


def test_both_plots_are_tall_enough_to_read_in_the_dock(docked):
    heights = [plot.vb.height() for plot in (docked.loss_plot, docked.grad_plot)]
    assert min(heights) >= 120, heights


def test_legend_is_inside_the_widget_and_over_no_plot(docked, controller, qtbot):
    controller.add_run("Adagrad")
    controller.add_run("SGD", {"lr": 0.02, "momentum": 0.95, "nesterov": True})
    seen = docked.graphics.mapToScene(docked.graphics.viewport().rect()).boundingRect()
    # The layout makes room for the wider legend at the next event-loop turn.
    qtbot.waitUntil(lambda: seen.contains(docked.legend.sceneBoundingRect()), timeout=2000)
    legend = docked.legend.sceneBoundingRect()
    for plot in (docked.loss_plot, docked.grad_plot):
        assert not legend.intersects(plot.vb.sceneBoundingRect())
    assert len(docked.legend.items) == len(controller.session.runs)


def test_a_diverged_run_does_not_flatten_the_others(docked, controller, qtbot):
    runs = list(controller.session.runs)
    wild = controller.add_run("SGD", {"lr": 1.0})  # flung to x ~ -4e9 in two steps
    step(controller, 40, docked, qtbot)
    assert wild.status is RunStatus.DIVERGED
    for plot, column in ((docked.loss_plot, "loss"), (docked.grad_plot, "grad_norm")):
        low, high = plot.vb.viewRange()[1]
        others = np.concatenate([getattr(r.trajectory, column) for r in runs])
        others = others[others > 0]
        wild_peak = float(np.nanmax(getattr(wild.trajectory, column)))
        assert np.log10(wild_peak) > high + 2  # the wild run's peak is far off the top...
        assert low <= np.log10(others.min()) and np.log10(others.max()) <= high  # ...the rest fit
        assert high - low < 8  # a few decades, not the wild run's
        marker = docked.picture.exit_markers[wild][0 if column == "loss" else 1]
        (mx,), (my,) = marker.getData()
        assert marker.isVisible() and my == pytest.approx(high)  # the exit, on the top edge
        assert wild.trajectory.step[0] <= mx <= wild.trajectory.step[-1]
        assert not any(docked.picture.exit_markers[r][0].isVisible() for r in runs)
    names = [label.text for _, label in docked.legend.items]
    assert f"diverged at step {wild.diverged_at}" in names[-1]


def test_log_y_range_ignores_what_it_is_not_given():
    calm = np.array([10.0, 1.0, 1e-3, 0.0, np.nan])
    low, high = log_y_range([calm])
    assert low < -3 < 1 < high and high - low < 5
    assert log_y_range([np.array([0.0, -1.0, np.nan])]) is None
    assert log_y_range([calm, np.array([1e300])])[1] > 299  # a series given counts


def test_user_zoom_keeps_its_y_range_until_auto(docked, controller, qtbot):
    step(controller, 20, docked, qtbot)
    vb = docked.loss_plot.vb
    vb.setYRange(-1.0, 0.0, padding=0)
    vb.sigRangeChangedManually.emit(vb.state["mouseEnabled"])  # as a wheel or drag does
    step(controller, 20, docked, qtbot)
    assert vb.viewRange()[1] == pytest.approx([-1.0, 0.0])
    docked.loss_plot.autoBtn.clicked.emit(docked.loss_plot.autoBtn)
    assert vb.viewRange()[1] != pytest.approx([-1.0, 0.0])


def test_many_runs_fit_the_legend_beside_short_plots(docked, controller, qtbot):
    for lr in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        controller.add_run("Adam", {"lr": lr})
    seen = docked.graphics.mapToScene(docked.graphics.viewport().rect()).boundingRect()
    qtbot.waitUntil(lambda: seen.contains(docked.legend.sceneBoundingRect()), timeout=2000)
    assert docked.legend.columnCount >= 2  # 12 runs in ~220 px: more than one column
    for plot in (docked.loss_plot, docked.grad_plot):
        assert not docked.legend.sceneBoundingRect().intersects(plot.vb.sceneBoundingRect())
        assert plot.vb.width() > 150  # the plots still get room


def test_the_view_does_not_shrink_below_a_readable_height(qtbot, controller):
    widget = CurvesView(controller)
    qtbot.addWidget(widget)
    widget.resize(1000, 60)
    widget.show()
    qtbot.waitExposed(widget)
    assert widget.height() >= 190
    assert min(p.vb.height() for p in (widget.loss_plot, widget.grad_plot)) >= 80


# --- the lr panel and clipped steps ---------------------------------------------------------------


def test_the_lr_panel_appears_with_a_scheduler_and_shows_the_lr_each_step_used(qtbot, view,
                                                                               controller):
    picture = view.picture
    assert not picture.lr_shown and not picture.lr_plot.isVisible()
    run = controller.session.runs[0]
    controller.set_scheduler(run, "StepLR(step_size=4, gamma=0.5)")
    assert picture.lr_shown and picture.lr_plot.isVisible()
    view.resize(1100, 300)  # the bottom dock's width in the window
    qtbot.waitUntil(lambda: picture.lr_plot.width() > 150, timeout=2000)  # it has room now
    step(controller, 10, view, qtbot)
    xs, ys = picture.lr_curves[run].getOriginalDataset()
    # entry k's lr is what step k + 1 used: steps 1-4 at 1e-3, 5-8 halved, ...
    assert list(xs) == list(run.trajectory.step + 1)
    assert list(ys) == list(run.trajectory.lr)
    assert ys[0] == ys[3] == 1e-3 and ys[4] == 5e-4 and ys[8] == 2.5e-4
    assert picture.lr_plot.getViewBox().state["logMode"][1]
    controller.set_scheduler(run, None)
    qtbot.waitUntil(lambda: not picture.lr_shown, timeout=2000)
    assert not picture.lr_plot.isVisible()


def test_clipped_steps_are_marked_on_the_gradient_norm_curve(qtbot, view, controller):
    run = controller.session.runs[1]
    controller.set_clipping(run, "norm", 5.0)
    step(controller, 60, view, qtbot)
    markers = view.picture.clip_markers[run]
    flags = run.trajectory.column("clipped")
    clipped = np.nonzero(flags == 1)[0]
    assert 0 < len(clipped) < len(flags)
    xs, ys = markers.getData()
    assert markers.isVisible() and len(xs) == len(clipped)
    assert list(xs) == list(run.trajectory.step[clipped])
    assert np.allclose(10.0 ** ys, run.trajectory.grad_norm[clipped])  # on the curve
    assert f"{len(clipped)} clipped steps" in markers.toolTip()
    assert markers.opts["brush"].color() == QColor(run.color)
    others = [m for r, m in view.picture.clip_markers.items() if r is not run]
    assert not any(m.isVisible() for m in others)


def test_log_ticks_fit_the_axis_height():
    from gui.curves_view import log_ticks

    major, minor = log_ticks(-3.2, -1.9, 100)  # lr from ~6e-4 to ~1.3e-2 on 100 px
    labels = [text for _, text in major + minor]
    assert labels[:2] == ["0.001", "0.01"] and "0.005" in labels and "0.002" in labels
    positions = sorted(t for t, _ in major + minor)
    pixels = np.diff(positions) * 100 / 1.3
    assert pixels.min() >= 14  # no two labels closer than a line of text
    major, minor = log_ticks(-12, 3, 120)  # 15 decades on 120 px: not every decade
    assert not minor and 4 <= len(major) <= 8
    assert [text for _, text in major][:2] == ["10⁻¹²", "10⁻⁹"]  # every third decade


def test_the_log_axes_are_labelled_without_crowding(qtbot, view, controller):
    step(controller, 30, view, qtbot)
    for plot in (view.loss_plot, view.grad_plot):
        axis = plot.getAxis("left")
        low, high = plot.vb.viewRange()[1]
        ticks = [t for level in axis._tickLevels for t, _ in level]
        assert ticks and all(low <= t <= high for t in ticks)
        gaps = np.diff(sorted(ticks)) * plot.vb.height() / (high - low)
        assert len(ticks) == 1 or gaps.min() >= 14
