"""gui.graph_view: the autograd graph drawn, updated in place, stepped through, exported."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage

from core.errors import ExportError
from core.formula import compile_formula
from core.graph import build_graph, compute_layout
from core.surfaces import get_surface
from gui.graph_view import EdgeItem, GraphScene, GraphView, NodeItem, render_graph

CAMEL = get_surface("six_hump_camel")


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = GraphView()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    return v


def test_one_box_per_node_and_one_arrow_per_edge(view: GraphView) -> None:
    graph = build_graph(CAMEL, -1.5, 1.0)
    view.set_graph(graph)
    items = view.scene().items()
    assert sum(isinstance(i, NodeItem) for i in items) == len(graph.nodes)
    assert sum(isinstance(i, EdgeItem) for i in items) == len(graph.edges)
    assert set(view.node_items) == {n.id for n in graph.nodes}
    x = view.node_items["x"]
    assert x.lines[0] == "x" and "-1.5" in x.text()
    assert "AccumulateGrad" in x.toolTip() and "x.grad" in x.toolTip()
    root = view.node_items[graph.root]
    assert "local Jacobian" in root.toolTip() and "upstream" in root.toolTip()


def test_tooltips_round_their_numbers_to_six_significant_digits(view: GraphView) -> None:
    # at (1/3, 2/7) every value and gradient has a long expansion; repr would show 16-17 digits
    graph = build_graph(compile_formula("sin(x) * y + x / 3"), 1 / 3, 2 / 7)
    view.set_graph(graph)
    x = view.node_items["x"].toolTip()
    assert "value = 0.333333\n" in x and "0.3333333" not in x
    assert f"grad d(loss)/d(this) = {graph.node('x').grad:.6g}\n" in x
    for node in graph.nodes:
        head = view.node_items[node.id].toolTip().split("\n\n")[0]
        digits = [len(t.strip("-").replace(".", "").lstrip("0")) for t in
                  head.replace(",", " ").replace("[", " ").replace("]", " ").split()
                  if t.strip("-").replace(".", "", 1).isdigit()]
        assert all(d <= 6 for d in digits), head
    for arrow, edge in zip(view.edge_items, graph.edges):
        if edge.grad is not None:
            assert arrow.toolTip() == f"backward sent {edge.grad:.6g} along this edge"


def test_a_new_point_updates_texts_without_moving_anything(view: GraphView) -> None:
    view.set_graph(build_graph(CAMEL, -1.5, 1.0))
    positions = {k: item.pos() for k, item in view.node_items.items()}
    texts = {k: item.text() for k, item in view.node_items.items()}
    items = dict(view.node_items)
    edge_labels = [e.label for e in view.edge_items]
    view.set_graph(build_graph(CAMEL, 0.4, -0.3))
    assert view.node_items == items  # the same items, not rebuilt
    assert {k: item.pos() for k, item in view.node_items.items()} == positions
    assert view.node_items["x"].text() != texts["x"] and "0.4" in view.node_items["x"].text()
    changed = sum(item.text() != texts[k] for k, item in view.node_items.items())
    assert changed >= len([n for n in texts if not n.startswith("c")])  # all but the numbers
    assert [e.label for e in view.edge_items] != edge_labels


def test_a_new_structure_is_laid_out_again(view: GraphView) -> None:
    view.set_graph(build_graph(CAMEL, -1.5, 1.0))
    view.set_graph(build_graph(CAMEL, -1.5, 1.0, frozen=["x"]))
    frozen = view.node_items["x"]
    assert frozen.frozen and "frozen" in frozen.text() and "no grad" in frozen.text()
    view.set_graph(build_graph(compile_formula("x * y"), 2.0, 3.0))
    assert len(view.node_items) == 3 and len(view.scene().items()) == 3 + 2


def _box(item: NodeItem):  # type: ignore[no-untyped-def]
    return item.mapRectToScene(item.box())


def test_horizontal_by_default_inputs_left_loss_right_arrows_left_to_right(view: GraphView
                                                                            ) -> None:
    graph = build_graph(CAMEL, -1.5, 1.0)
    view.set_graph(graph)
    assert view.orientation == "horizontal"
    items = view.node_items
    root = items[graph.root]
    assert all(root.pos().x() > item.pos().x() for k, item in items.items() if k != graph.root)
    assert all(_box(root).left() > _box(item).right()
               for k, item in items.items() if k != graph.root)
    long_edges = 0
    for arrow, edge in zip(view.edge_items, graph.edges):
        source, target = _box(items[edge.source]), _box(items[edge.target])
        assert target.left() > source.right()  # the target box lies wholly to the right
        first, last = arrow.points[0], arrow.points[-1]
        # out of the right side of the source, into the left side of the target
        assert first.x() == pytest.approx(source.right())
        assert source.top() < first.y() < source.bottom()
        assert last.x() == pytest.approx(target.left())
        assert target.top() < last.y() < target.bottom()
        xs = [p.x() for p in arrow.points]
        assert all(b > a for a, b in itertools.pairwise(xs))  # always onwards, never back
        bends = arrow.points[1:-1]  # in pairs, each crossing a layer's band horizontally
        long_edges += bool(bends)
        assert len(bends) % 2 == 0
        for a, b in zip(bends[::2], bends[1::2]):
            assert a.y() == b.y() and b.x() - a.x() == pytest.approx(items["x"].width)
    assert long_edges > 0
    # several edges leaving one box get ports spread along its right side
    x_ports = [arrow.points[0].y() for arrow, e in zip(view.edge_items, graph.edges)
               if e.source == "x"]
    assert len(x_ports) > 1 and len(set(x_ports)) == len(x_ports)


def test_vertical_orientation_puts_the_loss_on_top(qtbot) -> None:  # type: ignore[no-untyped-def]
    graph = build_graph(CAMEL, -1.5, 1.0)
    view = GraphView(graph, orientation="vertical")
    qtbot.addWidget(view)
    items = view.node_items
    root = items[graph.root]
    assert all(_box(root).bottom() < _box(item).top()
               for k, item in items.items() if k != graph.root)
    for arrow, edge in zip(view.edge_items, graph.edges):
        source, target = _box(items[edge.source]), _box(items[edge.target])
        assert target.bottom() < source.top()
        assert arrow.points[0].y() == pytest.approx(source.top())
        assert arrow.points[-1].y() == pytest.approx(target.bottom())
    with pytest.raises(ValueError, match="horizontal"):
        GraphScene(orientation="diagonal")


def test_changing_the_orientation_lays_out_again_and_keeps_the_rest(view: GraphView) -> None:
    graph = build_graph(compile_formula("(x + y) * x"), 1.5, -0.5)
    view.set_graph(graph)
    view.highlight_step(1)
    texts = {k: item.text() for k, item in view.node_items.items()}
    view.set_orientation("vertical")
    assert view.orientation == "vertical"
    root = view.node_items[graph.root]
    assert all(root.pos().y() < item.pos().y()
               for k, item in view.node_items.items() if k != graph.root)
    assert {k: item.text() for k, item in view.node_items.items()} == texts
    assert view.highlighted == graph.backward_order[1]
    assert view.node_items[view.highlighted].state == "active"
    assert len(view.scene().items()) == len(graph.nodes) + len(graph.edges)
    items = dict(view.node_items)
    view.set_orientation("vertical")  # no change: nothing rebuilt
    assert view.node_items == items


def test_highlight_step_walks_the_backward_order(view: GraphView) -> None:
    graph = build_graph(compile_formula("(x + y) * x"), 1.5, -0.5)
    view.set_graph(graph)
    first = view.highlight_step(0)
    assert first == graph.root and view.highlighted == graph.root
    assert view.node_items[graph.root].state == "active"
    second = view.highlight_step(1)
    assert second == graph.backward_order[1] != first
    assert view.node_items[second].state == "active"
    assert view.node_items[first].state == "visited"
    assert view.node_items[graph.backward_order[-1]].state == "pending"  # not reached yet
    active_edges = [e for item, e in zip(view.edge_items, graph.edges) if item.state == "active"]
    assert active_edges and all(e.target == second for e in active_edges)
    # the highlight survives a new point of the same graph
    view.set_graph(build_graph(compile_formula("(x + y) * x"), 0.2, 0.1))
    assert view.highlighted == second
    assert view.highlight_step(None) is None
    assert all(item.state == "" for item in view.node_items.values())


def test_zoom_and_fit(view: GraphView, qtbot) -> None:  # type: ignore[no-untyped-def]
    view.set_graph(build_graph(get_surface("goldstein_price"), 0.3, -0.2))
    view.fit()
    fitted = view.transform().m11()
    assert 0 < fitted <= 1.0
    rect = view.mapToScene(view.viewport().rect()).boundingRect()
    assert rect.contains(view.scene().itemsBoundingRect().center())
    view.scale(2, 2)
    assert view.transform().m11() == pytest.approx(2 * fitted)


def _non_white_fraction(image: QImage) -> float:
    step = 4
    samples = [(x, y) for x in range(0, image.width(), step)
               for y in range(0, image.height(), step)]
    white = QColor("white").rgb()
    return sum(image.pixel(x, y) != white for x, y in samples) / len(samples)


def test_render_png(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = render_graph(build_graph(CAMEL, -1.5, 1.0), tmp_path / "camel.png")
    assert out.stat().st_size > 20_000
    image = QImage(str(out))
    assert image.width() > 800 and image.height() > 500
    assert 0.03 < _non_white_fraction(image) < 0.8  # drawn on, but not a solid block


def test_render_orientation(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graph = build_graph(CAMEL, -1.5, 1.0)
    wide = QImage(str(render_graph(graph, tmp_path / "h.png")))
    tall = QImage(str(render_graph(graph, tmp_path / "v.png", orientation="vertical")))
    assert wide.width() / wide.height() > 1.8  # left to right: made for a wide, short place
    assert tall.width() / tall.height() < wide.width() / wide.height() * 0.75
    with pytest.raises(ValueError, match="orientation"):
        render_graph(graph, tmp_path / "d.png", orientation="diagonal")


def test_render_svg_contains_the_labels(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graph = build_graph(CAMEL, -1.5, 1.0, frozen=["y"])
    out = render_graph(graph, str(tmp_path / "camel.svg"))
    text = out.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    for label in (">mul<", ">pow<", ">rsub<", ">x<", "y (frozen)", f"v={graph.loss:.4g}"):
        assert label in text


def test_render_errors(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graph = build_graph(compile_formula("x * y"), 1.0, 2.0)
    with pytest.raises(ExportError, match="png or .svg"):
        render_graph(graph, tmp_path / "graph.bmp")
    with pytest.raises(ExportError, match="cannot write"):
        render_graph(graph, tmp_path / "no" / "such" / "dir" / "graph.png")
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(ExportError, match="cannot write .*taken.png"):
        render_graph(graph, tmp_path / "taken.png")


def test_a_failed_render_leaves_the_old_file_as_it_was(qtbot, tmp_path: Path, monkeypatch
                                                       ) -> None:  # type: ignore[no-untyped-def]
    graph = build_graph(compile_formula("x * y"), 1.0, 2.0)
    out = render_graph(graph, tmp_path / "graph.png")
    old = out.read_bytes()
    monkeypatch.setattr(QImage, "save", lambda *args: False)  # the disk is full, say
    with pytest.raises(ExportError, match="cannot write .*graph.png: saving the PNG failed"):
        render_graph(build_graph(compile_formula("x + y"), 1.0, 2.0), out)
    assert out.read_bytes() == old  # before: a 0-byte file where the old picture was
    assert [p.name for p in tmp_path.iterdir()] == ["graph.png"]  # no temporary file left


def test_render_with_a_layout_done_elsewhere(qtbot, tmp_path: Path, monkeypatch
                                             ) -> None:  # type: ignore[no-untyped-def]
    import gui.graph_view

    graph = build_graph(CAMEL, 0.1, 0.2)
    layout = compute_layout(graph)
    monkeypatch.setattr(gui.graph_view, "compute_layout", None)  # must not be called
    assert render_graph(graph, tmp_path / "g.svg", layout=layout).stat().st_size > 500
    view = GraphView()
    qtbot.addWidget(view)
    view.set_graph(graph, layout)
    assert view.node_items["x"].pos().x() == pytest.approx(
        -layout.positions["x"][1] * gui.graph_view.LAYER_UNIT)


def test_everything_frozen_renders_one_box(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graph = build_graph(CAMEL, 0.1, 0.2, frozen=["x", "y"])
    assert render_graph(graph, tmp_path / "one.png").stat().st_size > 500


def test_long_edges_out_of_one_node_draw_their_trunk_once(view: GraphView) -> None:
    graph = build_graph(compile_formula(" + ".join(["x*y"] * 30)), 0.3, -0.2)
    view.set_graph(graph)
    for source in ("x", "y"):
        arrows = [a for a, e in zip(view.edge_items, graph.edges) if e.source == source]
        full = [a for a in arrows if a.drawn_from == 0 and len(a.points) > 2]
        assert len(full) == 1  # the longest one draws the trunk...
        trunk = {(p.x(), p.y()) for p in full[0].points}
        for arrow in arrows:
            drawn = arrow.points[arrow.drawn_from:]
            assert drawn[-1] == arrow.points[-1]  # ...every one its arrow into its target...
            if arrow is not full[0] and len(arrow.points) > 2:
                assert len(drawn) == 3  # ...from where it leaves the trunk
                assert (drawn[0].x(), drawn[0].y()) in trunk
                assert {(p.x(), p.y()) for p in arrow.points[1:-1]} <= trunk
        drawn_points = sum(len(a.points) - a.drawn_from for a in arrows)
        assert drawn_points < sum(len(a.points) for a in arrows) / 4


# --- the lab's graph tab: its export, and a pane that keeps its width -------------------------


@pytest.fixture
def lab(qtbot):  # type: ignore[no-untyped-def]
    from gui.lab.workspace import LabWorkspace
    w = LabWorkspace()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.graph_tab.shutdown()


def _open_lab_graph(qtbot, lab):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt
    bar = lab.right_tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == "Graph")
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    tab = lab.graph_tab
    qtbot.waitUntil(lambda: tab.graph is not None and not tab.busy, timeout=5000)
    return tab


def test_opening_the_lab_graph_tab_moves_no_pane(qtbot, lab) -> None:  # type: ignore[no-untyped-def]
    """The first graph drawn used to widen the right pane (its texts' width), moving the middle
    pane's buttons under the pointer once."""
    sizes = lab.splitter.sizes()
    buttons = {kind: b.mapTo(lab, b.rect().topLeft()) for kind, b in
               lab.backward_panel.buttons.items()}
    tab = _open_lab_graph(qtbot, lab)
    tab.next_step()  # the longest texts: a node's chain rule written out
    qtbot.wait(50)  # the layout settles (posted events)
    assert tab.explanation.text()
    assert lab.splitter.sizes() == sizes
    assert {kind: b.mapTo(lab, b.rect().topLeft()) for kind, b in
            lab.backward_panel.buttons.items()} == buttons


def test_the_lab_graph_tab_exports_png_and_svg(qtbot, lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tab = _open_lab_graph(qtbot, lab)
    assert tab.png_button.isEnabled() and tab.svg_button.isEnabled()
    png = tmp_path / "q.png"
    assert tab.export_graph(png, size=(500, 400))
    image = QImage(str(png))
    assert not image.isNull() and (image.width(), image.height()) == (500, 400)
    assert tab.message.text() == f"Wrote {png}"
    svg = tmp_path / "q.svg"
    assert tab.export_graph(svg)
    text = svg.read_text()
    for node in tab.graph.nodes:  # every box's first line is in the drawing
        first = node.label.split(" ")[0]
        assert first in text
    assert not tab.export_graph(tmp_path / "q.jpg")
    assert "png or .svg" in tab.message.text()
    assert not (tmp_path / "q.jpg").exists()
