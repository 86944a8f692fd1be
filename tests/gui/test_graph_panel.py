"""GraphPanel: the selected run's autograd graph, live and throttled; backward step by step; the
Hessian readout; the no_grad timing; export."""

from __future__ import annotations

import html
import math
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.graph import build_graph, graph_size
from core.run import RunStatus
import gui.graph_panel
from gui.graph_panel import PAUSED, GraphPanel, _readable
from gui.worker import wait_for_jobs


@pytest.fixture
def small_grid(monkeypatch):  # type: ignore[no-untyped-def]
    """A coarser grid for the timing: the same code path, less work on a shared machine."""
    monkeypatch.setattr(gui.graph_panel, "GRID_N", 60)
    return 60


@pytest.fixture
def panel(qtbot, controller, small_grid):  # type: ignore[no-untyped-def]
    widget = GraphPanel(controller)
    qtbot.addWidget(widget)
    widget.resize(1100, 420)  # a bottom dock tab
    widget.show()
    qtbot.waitExposed(widget)
    settle(qtbot, widget)
    yield widget
    widget.shutdown()
    assert wait_for_jobs(10), "a background job of the panel did not end"


def settle(qtbot, panel, timeout: int = 5000) -> None:  # type: ignore[no-untyped-def]
    """Wait for the graph being built in the background to arrive (and anything it asked)."""
    qtbot.waitUntil(lambda: not panel.busy and not panel._dirty, timeout=timeout)


def step(controller, n: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(n):
        controller.step_once()


def expected_graph(run):  # type: ignore[no-untyped-def]
    return build_graph(run.surface, *run.last_point, frozen=run.frozen)


def test_shows_the_selected_runs_graph_at_its_point(panel, controller) -> None:  # type: ignore[no-untyped-def]
    run = controller.selected
    graph = expected_graph(run)
    assert panel.graph is not None and panel.graph.point == run.last_point
    assert len(panel.view.node_items) == len(graph.nodes) == len(panel.graph.nodes)
    assert len(panel.view.edge_items) == len(graph.edges)
    assert panel.graph_stack.currentWidget() is panel.view
    header = panel.header.text()
    assert f'<b style="color:{_readable(run.color)}">{run.title}</b>' in header
    assert f"{graph.loss:.6g}" in header
    assert f"{run.last_point[0]:.5g}" in header and f"{run.last_point[1]:.5g}" in header
    assert panel.view.node_items["x"].lines[0] == "x"


def test_steps_update_the_values_throttled_and_the_layout_stays(qtbot, panel, controller
                                                                ) -> None:  # type: ignore[no-untyped-def]
    run = controller.selected
    positions = {k: item.pos() for k, item in panel.view.node_items.items()}
    items = dict(panel.view.node_items)
    header, x_text = panel.header.text(), panel.view.node_items["x"].text()
    panel.refresh()  # just refreshed: the next steps must wait for the throttle
    step(controller, 3)
    assert panel.graph.point != run.last_point  # not yet: at most REFRESH_HZ rebuilds a second
    qtbot.waitUntil(lambda: panel.graph.point == run.last_point, timeout=2000)
    assert panel.header.text() != header
    assert f"{expected_graph(run).loss:.6g}" in panel.header.text()
    assert panel.view.node_items["x"].text() != x_text
    assert f"{run.last_point[0]:.4g}" in panel.view.node_items["x"].text()
    assert panel.view.node_items == items  # the same boxes, not rebuilt
    assert {k: item.pos() for k, item in panel.view.node_items.items()} == positions


def test_a_hidden_panel_does_no_work_and_catches_up_when_shown(qtbot, panel, controller
                                                               ) -> None:  # type: ignore[no-untyped-def]
    run = controller.selected
    panel.hide()
    before = panel.graph
    step(controller, 5)
    # The steps were heard and remembered for later, and nothing is scheduled or running:
    # (a fixed wait and "nothing changed" would pass on a panel that never listened at all).
    qtbot.waitUntil(lambda: panel._dirty and panel._throttle._stale, timeout=2000)
    assert not panel._throttle._pending.isActive() and not panel.busy
    assert panel.graph is before and before.point != run.last_point
    panel.show()
    settle(qtbot, panel)
    assert panel.graph.point == run.last_point


def test_selecting_another_run_rebuilds(qtbot, panel, controller) -> None:  # type: ignore[no-untyped-def]
    step(controller, 10)
    adam = controller.session.runs[3]
    assert adam.last_point != controller.selected.last_point
    controller.select(adam)
    settle(qtbot, panel)
    assert panel.graph.point == adam.last_point
    assert adam.title in panel.header.text()
    assert f"{expected_graph(adam).loss:.6g}" in panel.header.text()


def test_freezing_x_turns_the_x_leaf_into_a_constant(qtbot, panel, controller) -> None:  # type: ignore[no-untyped-def]
    run = controller.selected
    assert panel.graph.node("x").kind == "leaf"
    controller.set_frozen(run, "x", True)
    settle(qtbot, panel)
    graph = panel.graph
    assert len(panel.view.node_items) == len(expected_graph(run).nodes) == len(graph.nodes)
    assert "x" not in {n.id for n in graph.nodes if n.kind == "leaf"}
    assert "x" not in graph.backward_order
    # Rosenbrock uses x only in (1 - x)**2 and x**2: autograd records neither, their results
    # enter the graph as constants computed from the frozen x.
    frozen = [n for n in graph.nodes if "x (frozen)" in n.label]
    assert frozen and all(n.kind == "constant" and n.grad is None for n in frozen)
    assert any("x (frozen)" in panel.view.node_items[n.id].text() for n in frozen)
    assert "∂loss/∂x = frozen: no gradient" in panel.gradient_label.text()
    assert f"∂loss/∂y = {graph.gradient[1]:.6g}" in panel.gradient_label.text()
    assert "x frozen" in panel.header.text()
    assert "x is frozen" in panel.shape_label.text()


def test_a_frozen_x_used_directly_is_the_constant_x_frozen(qtbot, panel, controller
                                                           ) -> None:  # type: ignore[no-untyped-def]
    controller.set_surface_name("six_hump_camel")  # has x*y: the frozen x itself is an input
    controller.set_frozen(controller.selected, "x", True)
    settle(qtbot, panel)
    node = panel.graph.node("x")
    assert node.kind == "constant" and node.label == "x (frozen)" and node.frozen
    assert node.value == pytest.approx(controller.selected.last_point[0])
    assert "x (frozen)" in panel.view.node_items["x"].text()
    controller.set_frozen(controller.selected, "x", False)  # and back: a leaf again
    settle(qtbot, panel)
    assert panel.graph.node("x").kind == "leaf"


def test_step_through_backward_in_order_with_the_explanation(qtbot, panel, controller
                                                             ) -> None:  # type: ignore[no-untyped-def]
    order = panel.graph.backward_order
    assert len(order) == len([n for n in panel.graph.nodes if n.kind != "constant"])
    assert panel.next_button.isEnabled() and not panel.reset_button.isEnabled()
    for k, node_id in enumerate(order):
        qtbot.mouseClick(panel.next_button, Qt.MouseButton.LeftButton)
        assert panel.step == k and panel.view.highlighted == node_id
        assert panel.view.node_items[node_id].state == "active"
        assert panel.explanation.text() == panel.graph.explain(node_id)
        assert f"{k + 1} of {len(order)}" in panel.step_label.text()
        assert PAUSED in panel.step_label.text()
    assert not panel.next_button.isEnabled()  # the leaves have their .grad: the end
    root_text = panel.graph.explain(panel.graph.root)
    assert "upstream" in root_text and " = " in root_text
    panel.previous_step()
    assert panel.view.highlighted == order[-2]

    # Live updates pause while stepping, and resume (catching up) on Reset.
    run = controller.selected
    point = panel.graph.point
    step(controller, 2)
    # heard (the graph is out of date), and no rebuild asked for while stepping
    qtbot.waitUntil(lambda: panel._dirty, timeout=2000)
    assert not panel._throttle._pending.isActive() and not panel.busy
    assert panel.graph.point == point and panel.view.highlighted == order[-2]
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert panel.step is None and panel.view.highlighted is None
    settle(qtbot, panel)
    assert panel.graph.point == run.last_point
    assert all(item.state == "" for item in panel.view.node_items.values())


def test_autoplay_walks_to_the_end_and_stops(qtbot, panel) -> None:  # type: ignore[no-untyped-def]
    panel._autoplay.setInterval(5)
    order = panel.graph.backward_order
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert panel.view.highlighted == order[0]
    qtbot.waitUntil(lambda: panel.view.highlighted == order[-1], timeout=3000)
    qtbot.waitUntil(lambda: not panel._autoplay.isActive(), timeout=1000)
    assert not panel.play_button.isChecked() and panel.play_button.text() == "Play"


def test_a_new_selection_ends_the_walk(qtbot, panel, controller) -> None:  # type: ignore[no-untyped-def]
    panel.next_step()
    panel.next_step()
    controller.select(controller.session.runs[2])
    assert panel.step is None and panel.view.highlighted is None
    settle(qtbot, panel)
    assert panel.graph.point == controller.session.runs[2].last_point


def independent_hessian(surface, x: float, y: float, h: float = 1e-3) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Central differences of the surface's values (no autograd): exact for a quadratic."""
    f = surface.value
    fxx = (f(x + h, y) - 2 * f(x, y) + f(x - h, y)) / h**2
    fyy = (f(x, y + h) - 2 * f(x, y) + f(x, y - h)) / h**2
    fxy = (f(x + h, y + h) - f(x + h, y - h) - f(x - h, y + h) + f(x - h, y - h)) / (4 * h**2)
    return np.array([[fxx, fxy], [fxy, fyy]])


def test_hessian_readout_for_the_rotated_quadratic(qtbot, panel, controller) -> None:  # type: ignore[no-untyped-def]
    controller.set_surface_name("rotated_quadratic")
    step(controller, 7)
    qtbot.waitUntil(lambda: panel.graph.point == controller.selected.last_point, timeout=2000)
    x, y = controller.selected.last_point
    lo, hi = np.linalg.eigvalsh(independent_hessian(controller.session.surface, x, y))
    assert lo == pytest.approx(0.1, rel=1e-4) and hi == pytest.approx(10.0, rel=1e-4)
    text = panel.hessian_label.text()
    assert f"eigenvalues {lo:.4g}, {hi:.4g}" in text
    assert "eigenvalues 0.1, 10" in text
    condition = float(text.split("condition")[1].split()[0])
    assert condition == pytest.approx(hi / lo, rel=1e-3) == pytest.approx(100, rel=1e-3)
    assert panel.analysis is not None and panel.analysis.kind == "valley"
    assert "<b>valley</b>" in panel.shape_label.text()
    h = independent_hessian(controller.session.surface, x, y)
    assert f"{panel.analysis.hessian[0][0]:.5g}" in text
    assert panel.analysis.hessian[0][0] == pytest.approx(h[0, 0], rel=1e-4)


def test_no_grad_timing_is_measured_on_demand_in_the_background(qtbot, controller, small_grid
                                                                 ) -> None:  # type: ignore[no-untyped-def]
    hidden = GraphPanel(controller)
    qtbot.addWidget(hidden)
    assert hidden.timing is None  # nothing measured at start-up
    assert "torch.no_grad()" in hidden.no_grad_note.text()
    assert "Measure" in hidden.timing_label.text()
    step(controller, 3)
    assert hidden.timing is None  # nor on a step
    qtbot.mouseClick(hidden.measure_button, Qt.MouseButton.LeftButton)
    # The click returns at once (before: the GUI thread was blocked until the figures came):
    # the timing runs in a worker, with a progress bar and Cancel, and the button waits.
    assert hidden.measuring and hidden.timing is None
    assert not hidden.measure_button.isEnabled()
    assert not hidden.measure_progress.isHidden()
    assert hidden.measure_progress.cancel_button.isEnabled()
    assert "timing" in hidden.timing_label.text()
    qtbot.waitUntil(lambda: not hidden.measuring, timeout=30000)
    t = hidden.timing
    assert t is not None and t["n"] == small_grid
    text = hidden.timing_label.text()
    assert f"{t['no_grad_ms']:.3g} ms" in text and f"{t['grad_ms']:.3g} ms" in text
    assert "MB" in text or "kB" in text
    assert t["grad_bytes"] > t["no_grad_bytes"]  # autograd keeps tensors for backward
    assert controller.session.surface.title in text
    # worded from the memory, which is exact; the time only as reliable as the machine is quiet
    conclusion = hidden.timing_conclusion.text()
    assert conclusion.lower().startswith("no_grad keeps no graph") or "memory" in conclusion
    assert hidden.measure_button.isEnabled() and hidden.measure_progress.isHidden()
    hidden.shutdown()


def test_a_timing_can_be_cancelled_and_its_figures_never_arrive(qtbot, controller, small_grid
                                                                ) -> None:  # type: ignore[no-untyped-def]
    hidden = GraphPanel(controller)
    qtbot.addWidget(hidden)
    hidden.measure()
    assert hidden.measuring
    job = hidden._measure_job
    qtbot.mouseClick(hidden.measure_progress.cancel_button, Qt.MouseButton.LeftButton)
    assert not hidden.measuring and hidden.measure_button.isEnabled()
    assert "cancelled" in hidden.timing_label.text()
    assert hidden.measure_progress.isHidden()
    assert wait_for_jobs(10)
    qtbot.waitUntil(lambda: not job.running, timeout=2000)  # its outcome was delivered
    assert hidden.timing is None and "cancelled" in hidden.timing_label.text()


def test_a_timing_for_a_surface_no_longer_shown_is_dropped(qtbot, controller, small_grid
                                                           ) -> None:  # type: ignore[no-untyped-def]
    hidden = GraphPanel(controller)
    qtbot.addWidget(hidden)
    hidden.measure()
    job = hidden._measure_job
    controller.set_surface_name("bowl")
    assert not hidden.measuring  # the old one was stopped
    assert wait_for_jobs(10)
    qtbot.waitUntil(lambda: not job.running, timeout=2000)  # its outcome was delivered
    assert hidden.timing is None and "press Measure" in hidden.timing_label.text()
    assert controller.session.surface.title in hidden.timing_label.text()


def test_no_grad_timing_is_measured_once_when_first_shown(qtbot, small_grid, panel, controller
                                                          ) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: panel.timing is not None, timeout=30000)
    first = panel.timing
    run = controller.selected
    step(controller, 3)
    qtbot.waitUntil(lambda: panel.graph.point == run.last_point, timeout=5000)  # caught up
    assert panel.timing is first and not panel.measuring  # steps never re-measure
    controller.set_surface_name("bowl")  # a new surface: measured again, once, lazily
    qtbot.waitUntil(lambda: panel.timing is not first, timeout=30000)
    assert controller.session.surface.title in panel.timing_label.text()


def test_the_graph_is_drawn_left_to_right_to_fill_the_wide_panel(panel) -> None:  # type: ignore[no-untyped-def]
    graph, view = panel.graph, panel.view
    assert view.orientation == "horizontal"
    items = view.node_items
    root = items[graph.root]
    assert all(root.pos().x() > item.pos().x() for k, item in items.items() if k != graph.root)
    for edge in graph.edges:
        assert items[edge.target].pos().x() > items[edge.source].pos().x()
    # the whole graph is in view, drawn larger than top to bottom would allow
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert shown.contains(view.scene().itemsBoundingRect())
    wide = view.transform().m11()
    view.set_orientation("vertical")
    assert view.transform().m11() < wide
    view.set_orientation("horizontal")
    assert view.transform().m11() == pytest.approx(wide)


def test_the_graph_stays_fitted_as_the_panel_narrows(qtbot, panel) -> None:  # type: ignore[no-untyped-def]
    view = panel.view
    for width in (1000, 900):
        panel.resize(width, 370)
        qtbot.waitUntil(lambda w=width: view.viewport().width() < w - 300, timeout=1000)
        qtbot.wait(20)
        shown = view.mapToScene(view.viewport().rect()).boundingRect()
        assert shown.contains(view.scene().itemsBoundingRect())


def test_export_png_and_svg(qtbot, panel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    png, svg = tmp_path / "graph.png", tmp_path / "graph.svg"
    assert panel.export_graph(png) is True
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert panel.export_graph(str(svg)) is True
    text = svg.read_text()
    assert "<svg" in text and ">x<" in text and f"v={panel.graph.loss:.4g}" in text
    assert panel.message.isVisible() and "graph.svg" in panel.message.text()


def test_export_from_a_hidden_panel_writes_the_current_graph(qtbot, controller, tmp_path: Path
                                                             ) -> None:  # type: ignore[no-untyped-def]
    hidden = GraphPanel(controller)  # e.g. File > Export > Graph while another tab is shown
    qtbot.addWidget(hidden)
    step(controller, 4)
    assert hidden.graph is None
    assert hidden.export_graph(tmp_path / "graph.svg") is True
    assert hidden.graph.point == controller.selected.last_point
    assert f"v={hidden.graph.loss:.4g}" in (tmp_path / "graph.svg").read_text()


def test_a_bad_export_path_shows_an_error_and_changes_nothing(qtbot, panel, tmp_path: Path
                                                              ) -> None:  # type: ignore[no-untyped-def]
    graph = panel.graph
    assert panel.export_graph(tmp_path / "no" / "such" / "dir" / "graph.png") is False
    assert panel.message.isVisible() and "cannot write" in panel.message.text()
    assert panel.export_graph(tmp_path / "graph.bmp") is False
    assert ".png or .svg" in panel.message.text()
    assert not (tmp_path / "graph.bmp").exists()
    assert panel.graph is graph and panel.graph_stack.currentWidget() is panel.view


def test_no_selected_run(qtbot, panel, controller, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    controller.select(None)
    settle(qtbot, panel)
    assert panel.graph is None and panel.graph_stack.currentWidget() is panel.empty_label
    assert "No run selected" in panel.empty_label.text()
    assert not panel.next_button.isEnabled() and not panel.png_button.isEnabled()
    step(controller, 2)  # nothing to show, nothing breaks
    qtbot.waitUntil(lambda: not panel._dirty and not panel.busy, timeout=2000)  # refreshed
    assert panel.graph is None and "No run selected" in panel.empty_label.text()
    assert panel.export_graph(tmp_path / "g.png") is False and "select a run" in \
        panel.message.text()
    controller.select(controller.session.runs[0])
    settle(qtbot, panel)
    assert panel.graph is not None and panel.graph_stack.currentWidget() is panel.view


def test_a_diverged_run_shows_its_last_finite_point(qtbot, panel, controller) -> None:  # type: ignore[no-untyped-def]
    run = controller.add_run("SGD", {"lr": 0.5})  # far too large for Rosenbrock: it blows up
    for _ in range(50):
        controller.step_once()
        if run.status is RunStatus.DIVERGED:
            break
    assert run.status is RunStatus.DIVERGED
    panel.refresh()
    settle(qtbot, panel)
    assert panel.graph is not None and panel.graph.point == run.last_point
    assert all(math.isfinite(v) for v in panel.graph.point) and math.isfinite(panel.graph.loss)
    assert "diverged" in panel.header.text() and "last finite point" in panel.header.text()


def test_everything_frozen_shows_the_loss_and_nothing_to_step(qtbot, panel, controller
                                                              ) -> None:  # type: ignore[no-untyped-def]
    run = controller.selected
    controller.set_frozen(run, "x", True)
    controller.set_frozen(run, "y", True)
    settle(qtbot, panel)
    graph = panel.graph
    assert len(graph.nodes) == 1 and graph.backward_order == []
    assert f"v={graph.loss:.4g}" in panel.view.node_items[graph.root].text()
    assert not panel.next_button.isEnabled() and not panel.play_button.isEnabled()
    assert "no gradient" in panel.explanation.text()
    assert panel.gradient_label.text().count("frozen: no gradient") == 2
    assert "nothing moves" in panel.shape_label.text()


# --- a window that never blocks: the graph is built off the GUI thread, and bounded ------------


LONG_SUM = " + ".join(["x*y"] * 200)  # a legal formula with 401 autograd nodes


def test_a_graph_too_big_to_draw_is_not_drawn_and_the_panel_says_so(qtbot, panel, controller
                                                                    ) -> None:  # type: ignore[no-untyped-def]
    assert controller.set_formula(LONG_SUM) is None
    settle(qtbot, panel, timeout=20000)
    run = controller.selected
    nodes = graph_size(run.surface, *run.last_point, run.frozen).nodes
    assert nodes > gui.graph_panel.MAX_DRAWN_NODES
    assert panel.too_big and panel.graph is None and panel.graph_size.nodes == nodes
    assert panel.graph_stack.currentWidget() is panel.empty_label
    text = panel.empty_label.text()
    assert f"this graph has {nodes} nodes" in text.lower()
    assert f"draws at most {gui.graph_panel.MAX_DRAWN_NODES}" in text
    assert len(panel.view.node_items) < nodes  # nothing laid out
    # what does not need the drawing is still there: the gradient as backward gives it
    grad_x = panel.graph_size.gradient[0]
    assert grad_x == pytest.approx(sum(run.last_point[1] for _ in range(200)))  # d/dx = 200 y
    assert f"∂loss/∂x = {grad_x:.6g}" in panel.gradient_label.text()
    assert panel.hessian_label.text() and f"{panel.graph_size.loss:.6g}" in panel.header.text()
    assert not panel.next_button.isEnabled() and not panel.png_button.isEnabled()
    assert "too big" in panel.step_label.text()
    assert panel.export_graph("never.png") is False and "at most" in panel.message.text()
    # a smaller formula is drawn again
    assert controller.set_formula("x*y + sin(x)") is None
    settle(qtbot, panel)
    assert not panel.too_big and panel.graph_stack.currentWidget() is panel.view
    assert len(panel.view.node_items) == len(panel.graph.nodes)


@pytest.fixture
def slow_layout(monkeypatch):  # type: ignore[no-untyped-def]
    """compute_layout that waits for the test to let it go: a layout that takes long."""
    gate = threading.Event()
    real = gui.graph_panel.compute_layout

    def layout(graph):  # type: ignore[no-untyped-def]
        assert threading.current_thread() is not threading.main_thread()  # never the GUI's
        gate.wait(10)
        return real(graph)

    monkeypatch.setattr(gui.graph_panel, "compute_layout", layout)
    yield gate
    gate.set()


def test_a_slow_layout_runs_in_the_background_and_says_it_is_working(qtbot, panel, controller,
                                                                     slow_layout
                                                                     ) -> None:  # type: ignore[no-untyped-def]
    old = panel.graph
    assert controller.set_formula("x*y + sin(x)") is None  # a new structure: a new layout
    # The GUI thread is free (this test runs its event loop) while the layout waits...
    assert panel.busy and panel.graph is old
    qtbot.waitUntil(lambda: panel.busy_label.text() == gui.graph_panel.BUSY_TEXT, timeout=2000)
    assert panel.busy_label.isVisible()
    slow_layout.set()
    settle(qtbot, panel)
    assert panel.busy_label.text() == ""
    assert panel.graph is not old and {n.op for n in panel.graph.nodes} >= {"mul", "sin"}
    assert len(panel.view.node_items) == len(panel.graph.nodes)


def test_a_result_for_an_out_of_date_surface_is_dropped(qtbot, panel, controller, slow_layout
                                                        ) -> None:  # type: ignore[no-untyped-def]
    assert controller.set_formula("x*y + sin(x)") is None  # laid out slowly...
    assert panel.busy
    assert controller.set_formula("exp(x) - y") is None  # ...and out of date meanwhile
    slow_layout.set()
    settle(qtbot, panel)
    ops = {n.op for n in panel.graph.nodes if n.kind == "op"}
    assert ops == {"exp", "sub"}  # the newest formula's, never the one in between
    assert {n.op for n in panel.view.graph_scene.graph.nodes if n.kind == "op"} == ops
    assert panel.graph.point == controller.selected.last_point


def test_the_buttons_stay_put_while_stepping_through_backward(qtbot, panel) -> None:  # type: ignore[no-untyped-def]
    """'Step through backward' becomes 'Next ▶' and 'Play' becomes 'Pause': before, the first
    click shrank the button and moved 'Play' under the pointer."""
    buttons = (panel.previous_button, panel.next_button, panel.play_button, panel.reset_button)

    def places() -> list[tuple[int, int, int, int]]:
        return [b.geometry().getRect() for b in buttons]

    before = places()
    assert panel.next_button.text() == "Step through backward"
    qtbot.mouseClick(panel.next_button, Qt.MouseButton.LeftButton)
    assert panel.next_button.text() != "Step through backward"
    qtbot.waitUntil(lambda: places() == before, timeout=500)  # (give a layout the chance)
    qtbot.mouseClick(panel.next_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert panel.play_button.text() == "Pause"
    qtbot.wait(20)
    assert places() == before
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    qtbot.wait(20)
    assert panel.next_button.text() == "Step through backward" and places() == before


def test_the_header_of_a_diverged_run_gives_the_step_its_status_gives(qtbot, panel, controller
                                                                      ) -> None:  # type: ignore[no-untyped-def]
    run = controller.add_run("SGD", {"lr": 0.5})  # far too large for Rosenbrock: it blows up
    controller.select(run)
    for _ in range(50):
        controller.step_once()
        if run.diverged_at is not None:
            break
    assert run.diverged_at is not None
    panel.refresh()
    settle(qtbot, panel)
    header = panel.header.text()
    assert html.escape(run.status_text) in header
    steps = {int(k) for k in re.findall(r"step (\d+)", header)}
    assert steps == {run.diverged_at}  # before: "step 3 ... diverged at step 4"
    controller.set_enabled(run, False)  # disabled: its status reads "disabled"...
    settle(qtbot, panel)
    header = panel.header.text()
    assert {int(k) for k in re.findall(r"step (\d+)", header)} == {run.diverged_at}
    assert "diverged at step" in header  # ...and the header still says why it stopped


def test_a_big_drawn_graph_is_updated_when_the_race_pauses_not_while_it_plays(
        qtbot, panel, controller) -> None:  # type: ignore[no-untyped-def]
    assert controller.set_formula(" + ".join(["x*y"] * 60)) is None  # 121 nodes: drawn
    settle(qtbot, panel)
    nodes = panel.graph_size.nodes
    assert gui.graph_panel.LIVE_MAX_NODES < nodes <= gui.graph_panel.MAX_DRAWN_NODES
    shown = panel.graph
    run = controller.selected
    controller.play()
    try:
        qtbot.waitUntil(lambda: run.steps >= 3, timeout=5000)
        # heard: out of date, and it says it waits for the pause...
        qtbot.waitUntil(lambda: panel._dirty and gui.graph_panel.BIG_WHILE_PLAYING in
                        panel.header.text(), timeout=5000)
        assert panel._waits_for_pause()
        # ...with no extraction running or scheduled while it plays
        assert panel.graph is shown and not panel.busy
        assert not panel._throttle._pending.isActive()
    finally:
        controller.pause()
    settle(qtbot, panel)
    assert panel.graph is not shown and panel.graph.point == run.last_point
    assert gui.graph_panel.BIG_WHILE_PLAYING not in panel.header.text()


def test_a_small_graph_stays_live_while_the_race_plays(qtbot, panel, controller
                                                       ) -> None:  # type: ignore[no-untyped-def]
    shown = panel.graph
    controller.play()
    try:
        qtbot.waitUntil(lambda: panel.graph is not shown, timeout=5000)
        assert gui.graph_panel.BIG_WHILE_PLAYING not in panel.header.text()
    finally:
        controller.pause()
    settle(qtbot, panel)
