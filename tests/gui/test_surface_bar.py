"""The surface bar: formula errors that keep the toolbar's height, and a start box that leaves
the start alone unless it was really edited."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar

from gui.surface_bar import SurfaceBar


@pytest.fixture
def bar(qtbot, controller):
    toolbar = QToolBar()
    widget = SurfaceBar(controller)
    toolbar.addWidget(widget)
    qtbot.addWidget(toolbar)
    toolbar.resize(1280, toolbar.sizeHint().height())
    toolbar.show()
    qtbot.waitExposed(toolbar)
    widget.toolbar = toolbar
    return widget


def test_a_long_formula_error_does_not_make_the_toolbar_taller(bar, qtbot):
    before = bar.toolbar.sizeHint().height()
    long_bad = "x**2 + " * 30 + "3*y z"
    bar.formula_box.setEditText(long_bad)
    qtbot.keyClick(bar.formula_box.lineEdit(), Qt.Key.Key_Return)
    message = bar.formula_error.text()
    assert message and bar.formula_error.toolTip() == message
    assert len(message) > 60  # long enough that a wrapping label would take several lines
    assert bar.toolbar.sizeHint().height() == before
    assert bar.formula_error.height() <= bar.formula_error.fontMetrics().height() + 2
    assert "c0392b" in bar.formula_box.styleSheet()  # the red border says where the mistake is
    bar.formula_box.setEditText("x**2 + y**2")
    qtbot.keyClick(bar.formula_box.lineEdit(), Qt.Key.Key_Return)
    assert bar.formula_error.text() == "" and bar.formula_box.styleSheet() == ""


def test_leaving_the_start_box_unedited_keeps_the_exact_start_and_the_runs(bar, controller):
    controller.set_start((0.123456789, -1.987654321))
    controller.step_once()
    bar.start_x.editingFinished.emit()  # focus left the box, nothing typed
    bar.start_y.editingFinished.emit()
    assert controller.session.start == (0.123456789, -1.987654321)
    assert all(r.steps == 1 for r in controller.session.runs)
    bar.start_x.setValue(0.5)  # a real edit moves that coordinate only
    bar.start_x.editingFinished.emit()
    assert controller.session.start == (0.5, -1.987654321)
    assert all(r.steps == 0 for r in controller.session.runs)


def test_enter_on_a_good_formula_or_a_start_box_says_done(bar, qtbot):
    with qtbot.waitSignal(bar.sigDone, timeout=1000):
        bar.formula_box.setEditText("x**2 + 2*y**2")
        qtbot.keyClick(bar.formula_box.lineEdit(), Qt.Key.Key_Return)
    with qtbot.waitSignal(bar.sigDone, timeout=1000):
        qtbot.keyClick(bar.start_x.lineEdit(), Qt.Key.Key_Return)
    done = []
    bar.sigDone.connect(lambda: done.append(1))
    bar.formula_box.setEditText("x**")  # an error keeps the focus there to fix it
    qtbot.keyClick(bar.formula_box.lineEdit(), Qt.Key.Key_Return)
    assert done == []
