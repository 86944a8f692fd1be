"""The autograd lab workspace, driven through its real widgets (qtbot), checked against torch."""

from __future__ import annotations

import re

import pytest
import torch
from PySide6.QtCore import Qt

from core.lab.presets import get_preset
from core.lab.values import TensorSpec, format_tensor
from gui.lab.workspace import LabWorkspace

F64 = torch.float64


@pytest.fixture
def lab(qtbot):  # type: ignore[no-untyped-def]
    w = LabWorkspace()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def click(qtbot, w: LabWorkspace, kind: str) -> str:  # type: ignore[no-untyped-def]
    button = w.backward_panel.buttons[kind]
    with qtbot.waitSignal(w.controller.sigCallDone, timeout=5000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return w.backward_panel.transcript.toPlainText()


def grads_shown(w: LabWorkspace) -> dict[str, list[str]]:
    table = w.backward_panel.grads_table
    return {table.verticalHeaderItem(r).text(): [table.item(r, c).text() for c in range(3)]
            for r in range(table.rowCount())}


def pick_preset(qtbot, w: LabWorkspace, name: str) -> None:  # type: ignore[no-untyped-def]
    combo = w.preset_bar.combo
    index = combo.findData(name)
    with qtbot.waitSignal(w.controller.sigLabChanged, timeout=5000):
        combo.setCurrentIndex(index)
        combo.activated.emit(index)  # what choosing it in the open list sends


def header(model, section: int, orientation) -> str:  # type: ignore[no-untyped-def]
    return model.headerData(section, orientation, Qt.ItemDataRole.DisplayRole)


def type_into(qtbot, edit, text: str) -> None:  # type: ignore[no-untyped-def]
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def test_starts_on_the_note_and_shows_q(lab) -> None:  # type: ignore[no-untyped-def]
    assert lab.preset_bar.combo.currentData() == "note"
    assert lab.expression_box.text() == "3*a**3 - b**2"
    a, b = torch.tensor([2., 3.], dtype=F64, requires_grad=True), torch.tensor([6., 4.],
                                                                                dtype=F64)
    Q = 3 * a**3 - b**2
    assert lab.output_view.value.text() == format_tensor(Q)
    assert lab.output_view.shape.text() == "(2,)"
    assert lab.output_view.grad_fn.text() == f"<{Q.grad_fn.name()}>"
    assert "PyTorch's own example" in lab.preset_bar.explanation.text()
    code = lab.output_view.torch_code.toPlainText()
    assert code.splitlines()[-1] == "Q = 3.0 * a ** 3.0 - b ** 2.0"
    namespace: dict = {}  # type: ignore[type-arg]
    exec(code, namespace)  # test only: the code shown gives the Q shown
    assert format_tensor(namespace["Q"]) == lab.output_view.value.text()


def test_backward_on_the_vector_shows_torchs_error(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    a = torch.tensor([2., 3.], dtype=F64, requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        (3 * a**3).backward()
    text = click(qtbot, lab, "backward")
    assert text.startswith(">>> Q.backward()")
    assert f"RuntimeError: {info.value}" in text
    assert "vector-Jacobian product" in text
    assert grads_shown(lab) == {"a": ["None", "", ""], "b": ["None", "", ""]}


def test_backward_with_an_edited_v_shows_torchs_grads(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(lab.controller.sigProductsChanged, timeout=5000):
        type_into(qtbot, lab.backward_panel.v_edit, "[0.5, -2.]")
    assert lab.controller.v_text == "[0.5, -2.]"
    text = click(qtbot, lab, "backward_with_gradient")
    a = torch.tensor([2., 3.], dtype=F64, requires_grad=True)
    b = torch.tensor([6., 4.], dtype=F64, requires_grad=True)
    (3 * a**3 - b**2).backward(gradient=torch.tensor([0.5, -2.], dtype=F64))
    shown = grads_shown(lab)
    assert shown["a"][0] == format_tensor(a.grad) == shown["a"][1] == shown["a"][2]
    assert shown["b"][0] == format_tensor(b.grad) == shown["b"][1] == shown["b"][2]
    assert "Q.backward(gradient=v)" in text and "v = torch.tensor([0.5, -2.])" in text
    assert f"a.grad = {format_tensor(a.grad)}" in text
    # the VJP box agrees, for the same v
    assert f"vᵀJ for a = {format_tensor(a.grad)}" in lab.jacobian_view.vjp_label.text()


def test_the_tutorial_numbers_with_ones(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    click(qtbot, lab, "backward_with_gradient")
    shown = grads_shown(lab)
    assert shown["a"] == ["[36., 81.]"] * 3 and shown["b"] == ["[-12., -8.]"] * 3


def test_a_v_of_the_wrong_shape_is_refused(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(lab.controller.sigInputError, timeout=5000):
        type_into(qtbot, lab.backward_panel.v_edit, "[1., 2., 3.]")
    assert "shape" in lab.backward_panel.v_error.text()
    assert lab.controller.v_text == ""  # unchanged: ones


def test_jacobian_table_cells(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    model = lab.jacobian_view.table.model()
    a = torch.tensor([2., 3.], dtype=F64)
    jac = torch.autograd.functional.jacobian(lambda a: 3 * a**3 - 36., a)
    assert (model.rowCount(), model.columnCount()) == (2, 2)
    assert [header(model, i, Qt.Orientation.Vertical) for i in range(2)] == ["Q[0]", "Q[1]"]
    assert [header(model, j, Qt.Orientation.Horizontal) for j in range(2)] == ["a[0]", "a[1]"]
    for i in range(2):
        for j in range(2):
            assert float(model.cell(i, j)) == jac[i, j].item()
    combo = lab.jacobian_view.input_combo
    combo.setCurrentIndex(combo.findText("b"))
    assert header(model, 0, Qt.Orientation.Horizontal) == "b[0]"
    assert float(model.cell(1, 1)) == -8.0


def test_freezing_b_shows_no_b_grad(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=5000):
        lab.tensor_editor.set_requires_grad("b", False)
    text = click(qtbot, lab, "backward_with_gradient")
    shown = grads_shown(lab)
    assert shown["b"] == ["None", "", ""] and shown["a"][0] == "[36., 81.]"
    assert "b.grad = None" in text and "vᵀJ for b" not in text
    combo = lab.jacobian_view.input_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["a"]
    assert list(lab.jacobian_view.tangent_edits) == ["a"]  # no tangent for a frozen b


def test_an_expression_error_shows_its_column_and_changes_nothing(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    before_value = lab.output_view.value.text()
    height = lab.expression_box.error.height()
    top = lab.splitter.geometry().top()
    with qtbot.waitSignal(lab.controller.sigInputError, timeout=5000):
        type_into(qtbot, lab.expression_box.edit, "3*a**3 - c")
    assert "unknown name 'c'" in lab.expression_box.error.text()
    assert "(column 10)" in lab.expression_box.error.text()
    assert lab.expression_box.edit.cursorPosition() == 9
    assert lab.output_view.value.text() == before_value
    assert lab.controller.lab.program.text == "3*a**3 - b**2"
    qtbot.wait(10)
    assert lab.expression_box.error.height() == height and lab.splitter.geometry().top() == top
    # a good expression clears the error and shows the new Q
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=5000):
        type_into(qtbot, lab.expression_box.edit, "sum(a * b)")
    assert lab.expression_box.error.text() == ""
    assert lab.output_view.value.text() == "24." and lab.output_view.shape.text() == "()"
    assert lab.preset_bar.combo.currentData() == ""  # no longer the preset
    text = click(qtbot, lab, "backward")
    assert "a.grad = [6., 4.]" in text and "RuntimeError" not in text


def test_a_bad_tensor_value_shows_beside_the_tensors(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(lab.controller.sigInputError, timeout=5000):
        lab.tensor_editor.set_value("b", "[6., oops]")
    assert lab.tensor_error.text().startswith("b:")
    assert lab.expression_box.error.text() == ""
    assert lab.controller.lab.specs[1].text == "[6., 4.]"


def test_softmax_preset_fills_a_dense_jacobian(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    pick_preset(qtbot, lab, "softmax")
    preset = get_preset("softmax")
    assert lab.preset_bar.explanation.text() == preset.explanation
    assert lab.expression_box.text() == "softmax(a)"
    model = lab.jacobian_view.table.model()
    assert (model.rowCount(), model.columnCount()) == (3, 3)
    a = torch.tensor([1., 2., 3.], dtype=F64)
    jac = torch.autograd.functional.jacobian(lambda a: torch.softmax(a, dim=-1), a)
    for i in range(3):
        for j in range(3):
            value = float(model.cell(i, j))
            assert value != 0 and value == pytest.approx(jac[i, j].item(), rel=1e-5)


def test_retain_grad_on_the_freeze_presets_intermediate(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    pick_preset(qtbot, lab, "freeze")
    combo = lab.backward_panel.intermediate_combo
    assert combo.isEnabled() and combo.currentText() == "h"
    text = click(qtbot, lab, "retain_grad")
    assert "h.grad without retain_grad() = None" in text
    assert "h.grad with retain_grad() = [1., 1.]" in text
    assert grads_shown(lab)["b"][0] == "None"


def test_no_grad_and_backward_twice(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    text = click(qtbot, lab, "no_grad")
    assert "with torch.no_grad():" in text and "Q.grad_fn = None" in text
    assert "element 0 of tensors does not require grad" in text
    text = click(qtbot, lab, "backward_twice")
    assert "Trying to backward through the graph a second time" in text
    text = click(qtbot, lab, "backward_twice_retain")
    assert "a.grad after the 2nd backward = [72., 162.]" in text
    assert "a.grad after a.grad = None = None" in text
    text = click(qtbot, lab, "sum_backward")
    assert text.startswith(">>> Q.sum().backward()") and "equal here" in text
    text = click(qtbot, lab, "detach")
    assert "Q = Q.detach()" in text and "does not require grad" in text


def test_a_tangent_changes_the_jvp(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    edit = lab.jacobian_view.tangent_edits["a"]
    with qtbot.waitSignal(lab.controller.sigProductsChanged, timeout=5000):
        type_into(qtbot, edit, "[1., 0.]")
    a, b = torch.tensor([2., 3.], dtype=F64), torch.tensor([6., 4.], dtype=F64)
    _, want = torch.func.jvp(lambda a, b: 3 * a**3 - b**2, (a, b),
                             (torch.tensor([1., 0.], dtype=F64), torch.ones(2, dtype=F64)))
    assert f"jvp = {format_tensor(want)}" in lab.jacobian_view.jvp_label.text()
    with qtbot.waitSignal(lab.controller.sigInputError, timeout=5000):
        type_into(qtbot, edit, "[1.]")
    assert "shape" in lab.jacobian_view.tangent_error.text()
    assert lab.controller.tangent_texts["a"] == "[1., 0.]"


def test_add_and_remove_a_tensor(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=5000):
        qtbot.mouseClick(lab.tensor_editor.add_button, Qt.MouseButton.LeftButton)
    assert [s.name for s in lab.controller.lab.specs] == ["a", "b", "c"]
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=5000):
        type_into(qtbot, lab.expression_box.edit, "sum(a * c)")
    assert lab.output_view.value.text() == "5."
    lab.tensor_editor.table.selectRow(2)
    with qtbot.waitSignal(lab.controller.sigInputError, timeout=5000):
        qtbot.mouseClick(lab.tensor_editor.remove_button, Qt.MouseButton.LeftButton)
    # the expression still uses c: the error says so and the last good lab stays
    assert "unknown name 'c'" in lab.expression_box.error.text()
    assert [s.name for s in lab.controller.lab.specs] == ["a", "b", "c"]


def test_the_largest_jacobian_shows_every_cell(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    # Q with 256 elements and a 64-element input: every cell is there, with its labels.
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=10000):
        lab.controller.set_inputs(
            [TensorSpec("a", "randn(64, 1, seed=1)"), TensorSpec("b", "randn(1, 4, seed=2)")],
            "tanh(a * b) * softmax(b, -1)")
    model = lab.jacobian_view.table.model()
    assert (model.rowCount(), model.columnCount()) == (256, 64)
    assert header(model, 255, Qt.Orientation.Vertical) == "Q[63, 3]"
    jac = lab.controller.lab.jacobian_matrices()["a"][0]
    assert float(model.cell(255, 63)) == pytest.approx(jac[255, 63].item(), rel=1e-5, abs=1e-12)


def paste_into(qtbot, edit, text: str) -> None:  # type: ignore[no-untyped-def]
    """As a paste then Enter: one setText, not a key a character (a 999-character program)."""
    edit.setText(text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def test_the_longest_legal_program_shows_torchs_q_and_grads(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    text = "a" + "*b" * 249 + "+a" * 250  # 999 tokens: a chain the old tree made 500 deep
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=10000):
        paste_into(qtbot, lab.expression_box.edit, text)
    assert lab.expression_box.error.text() == ""
    a = torch.tensor([2., 3.], dtype=F64, requires_grad=True)
    b = torch.tensor([6., 4.], dtype=F64, requires_grad=True)
    Q = a
    for _ in range(249):
        Q = Q * b
    for _ in range(250):
        Q = Q + a
    assert lab.output_view.value.text() == format_tensor(Q)
    Q.backward(gradient=torch.ones_like(Q))
    text = click(qtbot, lab, "backward_with_gradient")
    assert f"a.grad = {format_tensor(a.grad)}" in text
    assert f"b.grad = {format_tensor(b.grad)}" in text


@pytest.mark.parametrize("typed, message, column", [
    ("3*a**3 \u00d7 b", "write \\* for a product", 8),
    ("3*a**\u0663 - b**2", "write digits as 0-9", 6),
])
def test_a_look_alike_character_says_what_to_type(qtbot, lab, typed, message, column) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(lab.controller.sigInputError, timeout=5000):
        paste_into(qtbot, lab.expression_box.edit, typed)
    assert re.search(message, lab.expression_box.error.text())
    assert f"(column {column})" in lab.expression_box.error.text()
    assert lab.expression_box.edit.cursorPosition() == column - 1
    assert lab.controller.lab.program.text == "3*a**3 - b**2"  # the last good lab stays


def test_a_pasted_minus_sign_is_minus(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=5000):
        paste_into(qtbot, lab.expression_box.edit, "sum(a \u2212 b)")
    assert lab.expression_box.error.text() == ""
    assert lab.output_view.value.text() == "-5."


def test_the_add_button_stops_at_the_labs_tensor_limit(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    from core.lab.workbench import MAX_TENSORS

    editor = lab.tensor_editor
    while editor.add_button.isEnabled():
        with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=5000):
            qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    assert editor.table.rowCount() == MAX_TENSORS == len(lab.controller.lab.specs)


# --- the graph tab: Q's autograd graph, step through backward ---------------------------------


def open_graph_tab(qtbot, w: LabWorkspace):  # type: ignore[no-untyped-def]
    """Click the 'Graph' tab and wait for the graph its worker builds."""
    bar = w.right_tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == "Graph")
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    tab = w.graph_tab
    qtbot.waitUntil(lambda: tab.graph is not None and not tab.busy, timeout=5000)
    return tab


def note_tensors(v: list[float]):  # type: ignore[no-untyped-def]
    """The note's Q with retain_grad on every intermediate, after Q.backward(gradient=v)."""
    a = torch.tensor([2., 3.], dtype=F64, requires_grad=True)
    b = torch.tensor([6., 4.], dtype=F64, requires_grad=True)
    a3, b2 = a ** 3, b ** 2
    m = 3 * a3
    q = m - b2
    for t in (a3, b2, m):
        t.retain_grad()
    q.backward(gradient=torch.tensor(v, dtype=F64))
    return {"a": a, "b": b, "a3": a3, "b2": b2, "m": m, "q": q}


def test_the_graph_tab_shows_the_notes_nodes(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    from core.graph import tensor_text
    pick_preset(qtbot, lab, "note")
    tab = open_graph_tab(qtbot, lab)
    scene_items = tab.view.node_items
    graph = tab.graph
    assert set(scene_items) == {n.id for n in graph.nodes}
    names = sorted(n.torch_name for n in graph.nodes if n.torch_name)
    assert names == ["AccumulateGrad", "AccumulateGrad", "MulBackward0", "PowBackward0",
                     "PowBackward0", "SubBackward0"]
    t = note_tensors([1., 1.])
    text = {item.text() for item in scene_items.values()}
    # the boxes: a leaf with its .grad, and Q with its value and v
    assert f"a (2,)\nv={tensor_text(t['a'].tolist())}\n∂={tensor_text(t['a'].grad.tolist())}" \
        in text
    assert f"sub (2,)\nv={tensor_text(t['q'].tolist())}\n∂=[1., 1.]" in text
    assert tab.stack.currentWidget() is tab.view


def test_stepping_through_backward_follows_torchs_order(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    tab = open_graph_tab(qtbot, lab)
    # torch's own order: prehooks on a plain run of the same Q
    a = torch.tensor([2., 3.], dtype=F64, requires_grad=True)
    b = torch.tensor([6., 4.], dtype=F64, requires_grad=True)
    q = 3 * a ** 3 - b ** 2
    todo, nodes, seen = [q.grad_fn], [], []
    while todo:
        f = todo.pop()
        if f not in nodes:
            nodes.append(f)
            todo.extend(n for n, _ in f.next_functions if n is not None)
    handles = [f.register_prehook(lambda g, f=f: seen.append(type(f).__name__)) for f in nodes]
    q.backward(gradient=torch.ones(2, dtype=F64))
    for h in handles:
        h.remove()

    width = tab.step_button.width()
    visited = []
    for k in range(len(seen)):
        qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
        node_id = tab.view.highlighted
        visited.append(tab.graph.node(node_id).torch_name)
        assert tab.view.node_items[node_id].state == "active"
        assert tab.step_label.text().startswith(f"{k + 1} of {len(seen)}")
        assert tab.step_button.width() == width  # fixed: nothing moves under the pointer
    assert visited == seen
    assert not tab.step_button.isEnabled()  # the last node: a's or b's AccumulateGrad
    pow_a = next(n.id for n in tab.graph.nodes if n.torch_name == "PowBackward0"
                 and tab.graph.inputs(n.id)[0].source == "a")
    tab.show_step(tab.graph.backward_order.index(pow_a))
    assert "[3., 3.] · d(pow)/d(a) diag([12., 27.]) = [36., 81.]" in tab.explanation.text()
    qtbot.mouseClick(tab.reset_button, Qt.MouseButton.LeftButton)
    assert tab.step is None and tab.view.highlighted is None
    assert all(item.state == "" for item in tab.view.node_items.values())


def test_a_new_v_changes_the_edge_gradients(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    from core.graph import tensor_text
    tab = open_graph_tab(qtbot, lab)
    first = tab.graph
    labels = [item.label for item in tab.view.edge_items]
    with qtbot.waitSignal(lab.controller.sigProductsChanged, timeout=5000):
        type_into(qtbot, lab.backward_panel.v_edit, "[0.5, -2.]")
    qtbot.waitUntil(lambda: tab.graph is not first and not tab.busy, timeout=5000)
    new_labels = [item.label for item in tab.view.edge_items]
    assert new_labels != labels
    t = note_tensors([0.5, -2.])
    # every edge's label is the gradient torch gives its source, for the new v
    by_source = {"a": t["a"].grad, "b": t["b"].grad}
    for edge in tab.graph.edges:
        src = tab.graph.node(edge.source)
        if src.torch_name == "MulBackward0":
            by_source[src.id] = t["m"].grad
        elif src.torch_name == "PowBackward0":
            by_source[src.id] = t["a3"].grad if tab.graph.inputs(src.id)[0].source == "a" \
                else t["b2"].grad
    for item, edge in zip(tab.view.edge_items, tab.graph.edges):
        if edge.source in by_source:
            assert item.label == tensor_text(by_source[edge.source].tolist(), 4)
    assert tab.graph.grads == {"a": t["a"].grad.tolist(), "b": t["b"].grad.tolist()}


def test_the_freeze_preset_draws_b_as_a_constant(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    pick_preset(qtbot, lab, "freeze")
    tab = open_graph_tab(qtbot, lab)
    qtbot.waitUntil(lambda: "b" in tab.view.node_items, timeout=5000)
    b = tab.view.node_items["b"]
    assert b.kind == "frozen" and b.text().startswith("❄ b (frozen)")
    assert "AccumulateGrad" not in {tab.graph.node(i).torch_name for i in tab.graph.backward_order
                                    if i == "b"}
    assert "b" not in tab.graph.backward_order


def test_a_graph_too_big_to_draw_says_so(qtbot, lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gui.lab.graph_tab as graph_tab
    monkeypatch.setattr(graph_tab, "MAX_DRAWN_NODES", 5)  # the note's Q has 6
    tab = open_graph_tab(qtbot, lab)
    assert tab.too_big and tab.stack.currentWidget() is tab.empty_label
    assert "6 autograd nodes" in tab.empty_label.text() and "at most 5" in tab.empty_label.text()
    assert not tab.step_button.isEnabled()


def test_a_long_tensor_shows_six_numbers_then_an_ellipsis(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    from gui.graph_view import MAX_BOX_WIDTH
    lab.tensor_editor.set_specs([TensorSpec("a", "arange(10)")])
    lab.expression_box.set_text("softmax(a * 0.5)")
    with qtbot.waitSignal(lab.controller.sigLabChanged, timeout=5000):
        lab._apply_inputs()
    tab = open_graph_tab(qtbot, lab)
    qtbot.waitUntil(lambda: "a" in tab.view.node_items, timeout=5000)
    a = torch.arange(10, dtype=F64, requires_grad=True)
    s = torch.softmax(a * 0.5, dim=-1)
    root = tab.view.node_items[tab.graph.root]
    title, value, grad = root.text().split("\n")
    assert title == "softmax (10,)"
    shown = [f"{x:.4g}" for x in s.tolist()[:6]]
    assert value == "v=[" + ", ".join(shown) + ", …]"
    assert grad == "∂=[1., 1., 1., 1., 1., 1., …]"
    assert f"{s.tolist()[9]:.6g}" in root.toolTip()  # the tooltip has all ten
    # boxes of one layer side by side, none overlapping, none wider than the limit
    items = list(tab.view.node_items.values())
    assert all(item.width <= MAX_BOX_WIDTH for item in items)
    for i, p in enumerate(items):
        for q in items[i + 1:]:
            if abs(p.pos().y() - q.pos().y()) < 1:
                assert abs(p.pos().x() - q.pos().x()) >= (p.width + q.width) / 2


def test_a_scalar_q_starts_backward_from_one(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    pick_preset(qtbot, lab, "dot")
    tab = open_graph_tab(qtbot, lab)
    qtbot.waitUntil(lambda: tab.graph.output_shape == (), timeout=5000)
    assert tab.graph.gradient is None  # Q.backward(), no gradient argument
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
    assert tab.view.highlighted == tab.graph.root
    assert "starts from 1" in tab.explanation.text()
    assert tab.graph.grads == {"a": [4., 5., 6.], "b": [1., 2., 3.]}  # a.grad = b, b.grad = a

