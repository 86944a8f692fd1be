"""The model curves' log axes stay readable between one and two decades."""

from __future__ import annotations

import math

import pyqtgraph as pg
import pytest

from gui.model.curves_view import log_axis_style


def test_an_axis_under_two_decades_labels_one_two_and_five_only(qtbot):
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.setLogMode(y=True)
    axis = plot.getAxis("left")
    log_axis_style(axis)
    labelled, ticks = axis.tickValues(math.log10(0.03), math.log10(0.8), 200)
    shown = sorted(round(10 ** v, 6) for v in labelled[1])
    assert shown == [0.05, 0.1, 0.2, 0.5]  # 0.03 .. 0.8: no crowd of 0.06, 0.07, 0.08, 0.09
    minor = sorted(round(10 ** v, 6) for v in ticks[1])
    assert 0.07 in minor and 0.3 in minor  # still ticked, without a label


def _legend_clear_of_the_data(curves) -> None:
    vb = curves.grad_plot.getPlotItem().getViewBox()
    data_area = vb.sceneBoundingRect()
    legend = curves.grad_legend.sceneBoundingRect()
    title = curves.grad_title.sceneBoundingRect()
    assert legend.height() > 0 and legend.width() > 0
    assert legend.bottom() <= data_area.top() and title.bottom() <= data_area.top() + 1
    assert not legend.intersects(title)
    # inside the plot widget, over the data area's columns, with every entry
    assert legend.left() >= data_area.left() - 1 and legend.right() <= data_area.right() + 1
    assert legend.top() >= 0


@pytest.mark.parametrize("preset", ["small-mlp", "deep-mlp"])
def test_the_tensor_legend_sits_above_the_gradient_curves_never_over_them(qtbot, preset):
    from gui.model.controller import ModelController, ModelSettings
    from gui.model.curves_view import ModelCurves

    c = ModelController(ModelSettings(preset=preset, n=60))
    c.sharpness_every = 10 ** 9
    run = c.add_run("SGD")
    curves = ModelCurves(c)
    qtbot.addWidget(curves)
    curves.resize(520, 430)
    curves.show()
    qtbot.waitExposed(curves)
    try:
        for _ in range(3):
            c.step_once()
        curves.refresh()
        qtbot.wait(10)
        names = [label.text for _, label in curves.grad_legend.items]
        assert names == list(c.problem.parameter_names)
        _legend_clear_of_the_data(curves)
        # a longer entry ("(frozen)") and a narrower plot re-flow it, still clear of the data
        c.set_frozen(run, "0.weight", True)
        curves.refresh()
        curves.resize(340, 430)
        qtbot.waitUntil(lambda: curves.grad_plot.width() <= 340, timeout=2000)
        qtbot.wait(10)
        assert "0.weight (frozen)" in [label.text for _, label in curves.grad_legend.items]
        _legend_clear_of_the_data(curves)
    finally:
        assert c.shutdown(2.0)


def test_a_short_run_shows_steps_0_to_10_then_the_axis_follows_the_steps(qtbot,
                                                                        make_model_controller):
    from gui.model.curves_view import MIN_STEPS_SHOWN, ModelCurves
    from gui.model.sharpness_view import SharpnessView

    c = make_model_controller()
    c.add_run("SGD")
    curves, sharpness = ModelCurves(c), SharpnessView(c)
    for view in (curves, sharpness):
        qtbot.addWidget(view)
        view.resize(500, 400)
        view.show()
    curves.refresh()
    plots = (curves.loss_plot, curves.grad_plot, sharpness.plot)
    for plot in plots:  # one point at step 0: steps 0 .. 10, not -0.5 .. 0.5 "(x0.001)"
        low, high = plot.getViewBox().viewRange()[0]
        assert low < 0 < MIN_STEPS_SHOWN < high < MIN_STEPS_SHOWN + 1
        assert not plot.getAxis("bottom").autoSIPrefix
    for _ in range(25):
        c.step_once()
    curves.refresh()
    for plot in (curves.loss_plot, curves.grad_plot):  # auto range again: every step shows
        def follows(plot=plot) -> bool:
            low, high = plot.getViewBox().viewRange()[0]
            return low <= 0 and 25 <= high < 30

        qtbot.waitUntil(follows, timeout=3000)  # (pyqtgraph ranges before the next paint)
