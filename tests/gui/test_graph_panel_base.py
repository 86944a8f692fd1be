"""gui.graph_panel_base: what the race's graph panel, the model's and the lab's graph tab share,
checked through each of the three real widgets (pytest-qt)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QPushButton, QToolButton

from core.lab.presets import get_preset
from core.session import Session
from gui.controller import Controller
from gui.graph_panel import GraphPanel
from gui.graph_panel_base import GraphPane, fix_width, step_title
from gui.lab.graph_tab import LabGraphTab
from gui.model.controller import ModelController
from gui.model.graph_panel import ModelGraphPanel
from gui.worker import wait_for_jobs


def test_fix_width_keeps_a_button_as_wide_as_its_widest_text(qtbot) -> None:  # type: ignore[no-untyped-def]
    button = QToolButton()
    qtbot.addWidget(button)
    button.setText("Go")
    fix_width(button, ("Go", "Go on to the next node"), extra=18)
    wide = button.fontMetrics().horizontalAdvance("Go on to the next node") + 18
    assert button.width() == button.minimumWidth() == button.maximumWidth() == wide
    button.setText("Go on to the next node")
    assert button.width() == wide  # it does not move as its text changes
    plain = QPushButton("Reset")
    qtbot.addWidget(plain)
    fix_width(plain, extra=28)  # no texts: the one it has
    assert plain.maximumWidth() == plain.fontMetrics().horizontalAdvance("Reset") + 28


def test_step_title_counts_from_one_and_names_the_autograd_class() -> None:
    class Node:
        label, torch_name, kind = "mul", "MulBackward0", "op"

    class Leaf:
        label, torch_name, kind = "x", None, "leaf"

    assert step_title(0, ["n0", "n1", "x"], Node()) == "1 of 3: mul (MulBackward0)"
    assert step_title(2, ["n0", "n1", "x"], Leaf()) == "3 of 3: x (leaf)"


# --- the three panes ----------------------------------------------------------------------------


@pytest.fixture(params=["race", "model", "lab"])
def pane(request, qtbot):  # type: ignore[no-untyped-def]
    """Each pane with its graph drawn and nothing being built."""
    controllers: list = []
    if request.param == "race":
        controller = Controller(Session.default())
        controllers.append(controller)
        widget: GraphPane = GraphPanel(controller)
        controller.select(controller.session.runs[0])
    elif request.param == "model":
        controller = ModelController()
        controllers.append(controller)
        controller.add_run("SGD")
        controller.select(controller.runs[0])
        widget = ModelGraphPanel(controller)
    else:
        widget = LabGraphTab()
        widget.show_lab(get_preset("note").lab(), "[1., 1.]")  # Q = 3a³ - b², v = ones
    qtbot.addWidget(widget)
    widget.resize(700, 600)
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.waitUntil(lambda: widget.drawn_graph is not None and not widget.busy, timeout=10000)
    yield widget
    widget.shutdown()
    for controller in controllers:
        controller.shutdown()
    assert wait_for_jobs(10), "a background job of the pane did not end"


def test_stepping_walks_backward_order_to_its_end_and_reset_stops(pane) -> None:  # type: ignore[no-untyped-def]
    order = pane.backward_order
    assert order == pane.drawn_graph.backward_order and len(order) > 2
    visited = [pane.next_step() for _ in order]
    assert visited == order and pane.step == len(order) - 1
    assert pane.view.highlighted == order[-1]
    assert pane.next_step() == order[-1]  # past the end: it stays on the last node
    assert pane.reset_button.isEnabled()
    pane.reset_steps()
    assert pane.step is None and pane.view.highlighted is None
    assert not pane.reset_button.isEnabled()


def test_export_writes_the_graph_drawn_and_says_so(pane, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "graph.svg"
    assert pane.export_graph(path) is True
    assert path.exists() and path.read_text().lstrip().startswith("<?xml")
    assert pane.message.text() == f"Wrote {path}"
    assert pane.export_graph(tmp_path / "graph.bmp") is False  # one clear line, nothing written
    assert pane.message.text().startswith("Export failed:")
    assert not (tmp_path / "graph.bmp").exists()


def test_a_wheel_over_the_graph_stops_it_refitting_as_the_pane_resizes(pane, qtbot) -> None:  # type: ignore[no-untyped-def]
    viewport = pane.view.viewport()

    def grow(by: int) -> None:
        width = viewport.width()
        # (its width only: a shorter pane may fit a tall graph only at the model pane's
        # readable floor, by its width, which is not the fit this test follows)
        pane.resize(pane.width() + by, pane.height())
        qtbot.waitUntil(lambda: viewport.width() != width, timeout=2000)

    fitted = pane.view.transform().m11()
    grow(-250)  # not zoomed yet: refitted to the smaller pane
    assert pane.view.transform().m11() < fitted
    grow(250)
    assert pane.view.transform().m11() == pytest.approx(fitted)
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    wheel = QWheelEvent(centre, pane.view.mapToGlobal(centre.toPoint()).toPointF(), QPoint(0, 0),
                        QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, wheel)
    zoom = pane.view.transform().m11()
    grow(200)
    assert pane.view.transform().m11() == zoom  # the user's zoom is kept


def test_nothing_drawn_nothing_exported(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tab = LabGraphTab()  # no lab yet
    qtbot.addWidget(tab)
    assert tab.drawn_graph is None and tab.backward_order == []
    assert tab.export_graph(tmp_path / "graph.png") is False
    assert tab.message.text() == "Nothing to export: no graph is drawn."
    assert not (tmp_path / "graph.png").exists()
    assert tab.show_step(0) is None and tab.step is None
