"""The model curves' log axes stay readable between one and two decades."""

from __future__ import annotations

import math

import pyqtgraph as pg

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
