"""The model workspace's autograd-graph panel, driven through its real widgets (pytest-qt)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from core.graph import collapsed_id
from gui.model.graph_panel import ModelGraphPanel
from gui.worker import wait_for_jobs


@pytest.fixture
def controller(make_model_controller):
    c = make_model_controller(sharpness=True)  # two moons, the small MLP
    c.add_run("SGD")
    c.select(c.runs[0])
    return c


@pytest.fixture
def panel(qtbot, controller):
    p = ModelGraphPanel(controller)
    qtbot.addWidget(p)
    p.resize(560, 640)
    p.show()
    qtbot.waitExposed(p)
    qtbot.waitUntil(lambda: p.shown is not None and not p.busy, timeout=5000)
    yield p
    p.shutdown()


def _norm_text(value: float) -> str:
    return f"{value:.4g}"


def _click_title(qtbot, panel, key: str) -> None:
    item = panel.view.group_items[key]
    point = panel.view.mapFromScene(item.title_rect().center())
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_the_small_mlp_shows_its_modules_and_parameters(panel, controller):
    titles = {key: item.title for key, item in panel.view.group_items.items()}
    assert list(titles) == ["0", "1", "2", "loss"]
    assert titles["0"].endswith("0: Linear(2, 16)") and titles["1"].endswith("1: Tanh()")
    assert titles["loss"].endswith("loss: BCEWithLogitsLoss()")
    items = panel.view.node_items
    for name, p in controller.runs[0].parameters.items():
        assert items[name].lines[0] == f"{name} {tuple(p.shape)}"
    # the frame of module 0 surrounds its ops (addmm and t), and not the loss
    frame = panel.view.group_items["0"].rect
    ops = [n.id for n in panel.shown.nodes if n.module == "0"]
    assert sorted(panel.shown.node(i).op for i in ops) == ["addmm", "t"]
    for i in ops:
        assert frame.contains(items[i].mapRectToScene(items[i].box()))
    assert not frame.contains(items[panel.shown.root].pos())


def test_clicking_a_title_collapses_the_module_and_clicking_its_box_expands_it(
        qtbot, panel):
    members = [n.id for n in panel.shown.nodes if n.module == "0"]
    assert len(members) == 2
    _click_title(qtbot, panel, "0")
    qtbot.waitUntil(lambda: collapsed_id("0") in panel.view.node_items, timeout=5000)
    items = panel.view.node_items
    assert not set(members) & set(items)
    assert items[collapsed_id("0")].lines[0] == "\u25b8 0: Linear(2, 16)"
    assert panel.collapsed == {"0"} and "0" not in panel.view.group_items
    # the parameters stay, now feeding the module's one box
    assert {e.source for e in panel.shown.inputs(collapsed_id("0"))} >= {"0.weight", "0.bias"}

    box = items[collapsed_id("0")]
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.view.mapFromScene(box.pos()))
    qtbot.waitUntil(lambda: collapsed_id("0") not in panel.view.node_items, timeout=5000)
    assert set(members) <= set(panel.view.node_items)


def test_the_deeper_preset_starts_with_one_box_per_module(qtbot, panel, controller):
    controller.configure(preset="deep-mlp")
    qtbot.waitUntil(lambda: panel.shown is not None and len(panel.shown.modules) == 8,
                    timeout=5000)
    ops = [n for n in panel.shown.nodes if n.kind == "op"]
    assert [n.id for n in ops] == [collapsed_id(k) for k in
                                   ["loss", "6", "5", "4", "3", "2", "1", "0"]]
    assert [panel.view.node_items[n.id].lines[0] for n in ops][1:3] == \
        ["\u25b8 6: Linear(32, 1)", "\u25b8 5: ReLU()"]
    panel.expand_button.click()
    qtbot.waitUntil(lambda: panel.collapsed == set() and
                    any(n.op == "relu" for n in panel.shown.nodes), timeout=5000)
    assert len(panel.view.group_items) == 8


def test_stepping_the_run_changes_the_norms_shown(qtbot, panel, controller):
    run = controller.runs[0]
    before = panel.view.node_items["0.weight"].text()
    for _ in range(3):
        controller.step_once()
    qtbot.waitUntil(lambda: panel.graph is not None and panel.graph.step == run.steps,
                    timeout=5000)
    shown = panel.view.node_items["0.weight"]
    assert shown.text() != before
    grad = run.parameters["0.weight"].grad.norm().item()
    value = run.parameters["0.weight"].detach().norm().item()
    assert shown.lines[1:] == [f"|v|={_norm_text(value)}", f"|\u2202|={_norm_text(grad)}"]
    assert f"step {run.steps}" in panel.header.text()


def test_while_hidden_it_waits_and_catches_up_when_shown(qtbot, panel, controller):
    run = controller.runs[0]
    shown_step = panel.graph.step
    panel.hide()
    controller.step_once()
    controller.step_once()
    qtbot.wait(10)  # events flushed: a hidden panel starts no build
    assert not panel.busy and panel.graph.step == shown_step
    panel.show()
    qtbot.waitUntil(lambda: panel.graph.step == run.steps, timeout=5000)


def test_a_frozen_layer_shows_no_accumulate_grad(qtbot, panel, controller):
    run = controller.runs[0]
    controller.set_frozen(run, "0.weight", True)
    qtbot.waitUntil(lambda: panel.shown is not None and "0.weight" in panel.shown.frozen,
                    timeout=5000)
    node = panel.shown.node("0.weight")
    assert node.kind == "constant" and node.torch_name is None
    assert panel.view.node_items["0.weight"].kind == "frozen"
    assert panel.view.node_items["0.weight"].lines[0].startswith("\u2744 0.weight (frozen)")
    accumulators = sorted(n.label for n in panel.shown.nodes
                          if n.torch_name == "AccumulateGrad")
    assert accumulators == ["0.bias", "2.bias", "2.weight"]
    assert "0.weight frozen" in panel.header.text()


def test_step_through_backward_highlights_in_backwards_order(qtbot, panel, controller):
    order = panel.shown.backward_order
    panel.step_button.click()
    assert panel.view.highlighted == order[0] == panel.shown.root
    panel.step_button.click()
    assert panel.view.highlighted == order[1]
    assert panel.step_label.text().startswith(f"2 of {len(order)}")
    assert "sends" in panel.explanation.text()
    controller.step_once()  # live updates wait while stepping
    qtbot.wait(300)
    assert panel.view.highlighted == order[1]
    panel.reset_button.click()
    qtbot.waitUntil(lambda: panel.graph.step == controller.runs[0].steps, timeout=5000)
    assert panel.view.highlighted is None


def test_png_and_svg_export(qtbot, panel, tmp_path):
    png = tmp_path / "graph.png"
    assert panel.export_graph(png, size=(640, 480))
    image = QImage(str(png))
    assert not image.isNull() and (image.width(), image.height()) == (640, 480)
    colours = {image.pixelColor(x, y).name() for x in range(0, 640, 8) for y in range(0, 480, 8)}
    assert len(colours) > 5  # boxes, frames and text, not a blank picture
    svg = tmp_path / "graph.svg"
    assert panel.export_graph(svg)
    text = svg.read_text()
    assert "0: Linear(2, 16)" in text and "0.weight (16, 2)" in text
    assert panel.message.text() == f"Wrote {svg}"
    assert not panel.export_graph(tmp_path / "graph.gif")
    assert "png or .svg" in panel.message.text()


def test_no_run_selected_says_so(qtbot, panel, controller):
    controller.select(None)
    qtbot.waitUntil(lambda: panel.shown is None, timeout=5000)
    assert panel.stack.currentWidget() is panel.empty_label
    assert "No run selected" in panel.empty_label.text()
    assert not panel.png_button.isEnabled()


def test_the_workspace_has_the_graph_as_a_tab_that_follows_the_selected_run(qtbot):
    from gui.model.workspace import ModelWorkspace
    w = ModelWorkspace()  # SGD and Adam on two moons, the small MLP
    qtbot.addWidget(w)
    w.resize(1280, 760)
    w.show()
    qtbot.waitExposed(w)
    panel = w.graph_panel
    assert not panel.isVisible() and panel.graph is None  # behind the curves: nothing built
    w.right_tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.shown is not None, timeout=5000)
    assert list(panel.view.group_items) == ["0", "1", "2", "loss"]
    assert w.controller.runs[0].title in panel.header.text()
    w.controller.select(w.controller.runs[1])
    qtbot.waitUntil(lambda: w.controller.runs[1].title in panel.header.text(), timeout=5000)
    w.shutdown()
    assert wait_for_jobs(2.0)


def test_it_follows_training_live_at_most_refresh_hz(qtbot, panel, controller):
    import gui.model.graph_panel as graph_panel
    assert panel._throttle.interval_ms == 1000 // graph_panel.REFRESH_HZ == 250
    run = controller.runs[0]
    first = panel.graph.step
    controller.play()
    try:
        qtbot.waitUntil(lambda: panel.graph.step > first + 1, timeout=10000)  # live
    finally:
        controller.pause()
    qtbot.waitUntil(lambda: panel.graph.step == run.steps and not panel.busy, timeout=5000)


def test_a_graph_too_big_to_draw_says_so(qtbot, panel, controller, monkeypatch):
    import gui.model.graph_panel as graph_panel
    monkeypatch.setattr(graph_panel, "MAX_DRAWN_NODES", 5)
    controller.configure(preset="deep-mlp")
    qtbot.waitUntil(lambda: panel.too_big, timeout=5000)
    assert panel.stack.currentWidget() is panel.empty_label
    assert f"has {panel.graph.node_count} autograd nodes" in panel.empty_label.text()
    assert panel.graph.node_count > 5 and panel.graph.nodes == []
    assert not panel.png_button.isEnabled() and not panel.step_button.isEnabled()
    assert not panel.export_graph("/tmp/never.png")


def test_a_deep_model_in_a_short_pane_is_shown_readable_from_the_loss_down(
        qtbot, panel, controller):
    from gui.model.graph_panel import PARTIAL_NOTE, READABLE_SCALE
    panel.resize(520, 400)
    controller.configure(preset="deep-mlp")
    qtbot.waitUntil(lambda: panel.shown is not None and len(panel.shown.modules) == 8
                    and not panel.busy, timeout=5000)
    view = panel.view
    qtbot.waitUntil(lambda: panel.partial, timeout=2000)
    assert view.transform().m11() >= READABLE_SCALE
    assert panel.busy_label.text() == PARTIAL_NOTE
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(view.node_items[panel.shown.root].pos())  # the loss, at the top
    assert not seen.contains(view.node_items["0.weight"].pos())  # the first layer: drag down
    panel.fit_button.click()  # all of it, however small
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(view.graph_scene.itemsBoundingRect())
    assert not panel.partial and panel.busy_label.text() == ""


@pytest.mark.parametrize("preset", ["small-mlp", "deep-mlp"])
def test_module_frames_never_overlap(qtbot, make_model_controller, preset):
    from gui.model.controller import ModelSettings
    c = make_model_controller(ModelSettings(dataset="moons", n=80, preset=preset))
    c.add_run("SGD")
    c.select(c.runs[0])
    p = ModelGraphPanel(c)
    qtbot.addWidget(p)
    p.resize(560, 640)
    p.show()
    qtbot.waitUntil(lambda: p.shown is not None and not p.busy, timeout=5000)
    try:
        qtbot.mouseClick(p.expand_button, Qt.MouseButton.LeftButton)  # the deep one starts folded
        qtbot.waitUntil(lambda: not p.busy and len(p.view.group_items) == len(p.shown.modules),
                        timeout=5000)
        for orientation in ("vertical", "horizontal"):
            p.view.graph_scene.set_orientation(orientation)
            frames = list(p.view.group_items.values())
            assert len(frames) >= 4
            for k, a in enumerate(frames):
                for b in frames[k + 1:]:
                    assert not a.boundingRect().intersects(b.boundingRect()), (a.title, b.title)
                    assert not a.rect.intersects(b.rect), (orientation, a.title, b.title)
    finally:
        p.shutdown()
