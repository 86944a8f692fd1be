"""The autograd graph of the loss at a point, drawn: ops, leaves and constants as boxes laid out in
layers, arrows along the data flow labelled with the gradient backward sent the other way.

Two orientations: "horizontal" (the default: x, y and the constants on the left, the loss on the
right, arrows flowing left to right; made for wide, short places such as the bottom panel) and
"vertical" (the loss on top, x and y at the bottom, arrows flowing upwards).

`set_graph` re-lays-out only when the graph's structure changes; at a new point with the same
formula it just rewrites the texts, so the drawing stays put while the values move.
`render_graph(graph, path)` writes the same drawing to PNG or SVG, headless.
"""

from __future__ import annotations

import bisect
import functools
import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath,
                           QPainterPathStroker, QPen, QPolygonF, QWheelEvent)
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (QApplication, QGraphicsItem, QGraphicsScene,
                               QGraphicsSceneMouseEvent, QGraphicsView, QStyleOptionGraphicsItem,
                               QWidget)

from core.errors import ExportError
from core.atomic import atomic_path
from core.graph import (AutogradGraph, GraphEdge, GraphLayout, GraphNode, ModelGraph,
                        ModelGraphEdge, ModelGraphNode, TensorGraph, TensorGraphEdge,
                        TensorGraphNode, collapsed_id, compute_layout, matrix_text, module_groups,
                        shape_text, structure_key, tensor_text)

BOX = (104.0, 54.0)  # op, leaf and frozen boxes: three lines
SMALL_BOX = (64.0, 24.0)  # a plain number: one line
# Scene pixels per layout unit (compute_layout: a node is 1 unit across its layer) and per layer.
# Vertical: layers are rows, the boxes side by side in a row.
X_UNIT = 124.0
Y_UNIT = 96.0
MODEL_Y_UNIT = 84.0  # a model's graph: a little closer, to fit a pane (labels still fit between)
# Horizontal: layers are columns, the boxes stacked in a column; the gap between two columns
# leaves room for an arrow and its gradient label beside each other.
ROW_UNIT = 72.0
LAYER_UNIT = 168.0
ORIENTATIONS = ("horizontal", "vertical")
HEAD = 9.0  # arrowhead length
# The lab's graph of tensors: a box shows up to SHOWN numbers of its value and gradient, an edge
# label EDGE_SHOWN of what it carries; boxes are as wide as the widest text (up to MAX_BOX_WIDTH,
# in steps of WIDTH_STEP so a new v rarely changes the drawing), and the gap between layers as
# wide as the widest edge label.
SHOWN = 6
EDGE_SHOWN = 4
TOOLTIP_SHOWN = 36
MAX_BOX_WIDTH = 320.0
MODEL_BOX_WIDTH = 160.0  # a model's boxes: longer texts (binary_cross_entropy_with_logits) elide
WIDTH_STEP = 16.0
GAP = LAYER_UNIT - BOX[0]  # between two layers' boxes, drawn horizontally
ACROSS_GAP = X_UNIT - BOX[0]  # between two boxes of a layer, drawn vertically

# kind -> (fill, border)
STYLE = {
    "op": ("#dce9f7", "#4a78a8"),
    "leaf": ("#d9f2d9", "#2f7d32"),
    "constant": ("#f0f0f0", "#9e9e9e"),
    "frozen": ("#e3f6fd", "#3aa0c8"),
}
ACTIVE = QColor("#ef6c00")  # the node backward is at, and the gradients it sends
VISITED = QColor("#ffb74d")  # nodes backward has already been through
EDGE = QColor("#5f6b7a")
# A model's graph: each module's ops in a box with the module as its title (click: collapse or
# expand); colours cycle so that neighbouring modules differ.
GROUP_COLOURS = ("#5b8def", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#e53935")
GROUP_PAD = 6.0
GROUP_TITLE = 15.0
BAND_GAP = 32.0  # more room between two modules' layers (their frames, the labels between)
CONSTANT_EDGE = QColor("#b8b8b8")
LABEL_FILL = QColor(255, 255, 255, 225)  # an edge label's box
LABEL_TEXT = QColor("#37474f")


def _fmt(v: float | None) -> str:
    return "?" if v is None else f"{v:.4g}"


def _precise(v: float | None) -> str:
    """A number for a tooltip: 6 significant digits, enough to read, not the 17 of repr."""
    return "?" if v is None else f"{v:.6g}"


@functools.cache
def _font(bold: bool = False) -> QFont:
    """The boxes' font, made once: painting a 300-node graph asks for it thousands of times.
    Shared: never change the font returned."""
    font = QFont()
    font.setPointSizeF(8.5)
    font.setBold(bold)
    return font


@functools.cache
def _metrics(bold: bool = False) -> QFontMetricsF:
    return QFontMetricsF(_font(bold))


def node_lines(node: GraphNode) -> list[str]:
    """What a box shows: the op (or label), its value and the gradient that reached it.
    A tensor node (the lab's graph) shows its shape by its name, and up to SHOWN numbers."""
    if isinstance(node, TensorGraphNode):
        return _tensor_lines(node)
    if isinstance(node, ModelGraphNode):
        return _model_lines(node)
    if node.kind == "constant" and not node.frozen and not node.label.startswith("from ") \
            and node.label != "loss":  # a plain number (the loss itself, all frozen, is not)
        return [node.label]
    if node.kind == "constant":
        return [("\u2744 " if node.frozen else "") + node.label, f"v={_fmt(node.value)}", "no grad"]
    return [node.label, f"v={_fmt(node.value)}", f"\u2202={_fmt(node.grad)}"]


def _tensor_lines(node: TensorGraphNode) -> list[str]:
    plain = node.kind == "constant" and not node.frozen and not node.label.startswith("from ")
    number = None if node.value is None else f"{node.value:.6g}"
    if plain and node.label in (number, tensor_text(node.tensor, 4)):
        return [node.label]  # a number (the 3 of 3*a), or a constant tensor written out
    value = f"v={tensor_text(node.tensor, SHOWN)}"
    title = f"{node.label} {shape_text(node.shape)}" if node.shape else node.label
    if node.kind == "constant":
        return [("\u2744 " if node.frozen else "") + title, value, "no grad"]
    return [title, value, f"\u2202={tensor_text(node.grad_tensor, SHOWN)}"]


def _model_lines(node: ModelGraphNode) -> list[str]:
    """A model's tensors are too big to write out: the shape, and the norms of the value and of
    the gradient that reached it."""
    title = f"{node.label} {shape_text(node.shape)}" if node.shape is not None else node.label
    # (an op made inside another, as linear's weight.t(): autograd keeps no value for it)
    value = "|v| not kept" if node.value_norm is None else f"|v|={_fmt(node.value_norm)}"
    if node.kind == "constant":
        return [("\u2744 " if node.frozen else "") + title, value, "no grad"]
    if node.members:  # a collapsed module (a click expands it): the module, then its output
        return [f"\u25b8 {node.label}", f"out {shape_text(node.shape)} {value}",
                f"|\u2202|={_fmt(node.grad_norm)}"]
    return [title, value, f"|\u2202|={_fmt(node.grad_norm)}"]


def _tensor_tooltip(graph: TensorGraph, node: TensorGraphNode) -> str:
    head = [f"{node.label}  ({node.torch_name or node.kind})  shape {shape_text(node.shape)}",
            f"value = {tensor_text(node.tensor, TOOLTIP_SHOWN, 6)}"]
    if node.kind != "constant":
        head.append(f"grad d(vᵀ{graph.q})/d(this) = "
                    f"{tensor_text(node.grad_tensor, TOOLTIP_SHOWN, 6)}")
    if node.kind == "op":
        head += [f"local Jacobian d(out)/d(input {i}) = {matrix_text(j, 6)}"
                 for i, j in enumerate(node.local_jacobians)]
    return "\n".join(head) + "\n\n" + graph.explain(node.id)


def edge_text(edge: GraphEdge) -> str:
    """An edge's label: the gradient backward sent along it ("" for nothing)."""
    if isinstance(edge, TensorGraphEdge):
        return "" if edge.grad_tensor is None else tensor_text(edge.grad_tensor, EDGE_SHOWN)
    if isinstance(edge, ModelGraphEdge):
        return "" if edge.grad_norm is None else f"|{edge.grad_norm:.3g}|"
    return "" if edge.grad is None else f"{edge.grad:.3g}"


def _carries(edge: GraphEdge) -> bool:
    """Backward sent something along the edge."""
    if isinstance(edge, TensorGraphEdge):
        return edge.grad_tensor is not None
    if isinstance(edge, ModelGraphEdge):
        return edge.grad_norm is not None
    return edge.grad is not None


def node_tooltip(graph: AutogradGraph, node: GraphNode) -> str:
    if isinstance(node, TensorGraphNode) and isinstance(graph, TensorGraph):
        return _tensor_tooltip(graph, node)
    if isinstance(node, ModelGraphNode) and isinstance(graph, ModelGraph):
        head = f"{node.label}  ({node.torch_name or node.kind})"
        return head + "\n\n" + graph.explain(node.id)
    head = [f"{node.label}  ({node.torch_name or node.kind})",
            f"value = {_precise(node.value)}", f"grad d(loss)/d(this) = {_precise(node.grad)}"]
    if node.kind == "op":
        head.append("local Jacobian d(out)/d(inputs) = ["
                    + ", ".join(_precise(j) for j in node.local_jacobian) + "]")
    return "\n".join(head) + "\n\n" + graph.explain(node.id)


class NodeItem(QGraphicsItem):
    """A rounded box with a few lines of text.

    While stepping through backward its state is "active" (backward is here), "visited" (done)
    or "pending" (not reached yet: its gradient is not known yet, so it is not shown).
    """

    def __init__(self, node: GraphNode, is_root: bool, width: float | None = None) -> None:
        super().__init__()
        lines = node_lines(node)
        if isinstance(node, ModelGraphNode):  # a model's inputs X and y are boxes of 3 lines too
            self.kind = "frozen" if node.frozen else node.kind
            self.width, self.height = BOX
        else:
            self.kind = "frozen" if node.kind == "constant" and len(lines) > 1 else node.kind
            self.width, self.height = SMALL_BOX if self.kind == "constant" else BOX
        if width is not None and (self.kind != "constant" or len(lines) > 1):
            self.width = max(self.width, width)  # the lab's tensors, a model's: one width
        elif width is not None:  # a plain constant: as wide as its own label
            label = _metrics().horizontalAdvance(node_lines(node)[0])
            self.width = max(self.width, min(width, math.ceil(label / 8) * 8 + 16))
        self.is_root = is_root
        self.root_title = "loss"  # what the root is called above its box
        self.frozen = node.frozen
        self.lines: list[str] = []
        self._drawn: list[str] = []
        self._bounds: QRectF | None = None
        self.state = ""
        self.on_click: Any = None  # a collapsed module's box: called with nothing on a click
        self.setZValue(2)

    def text(self) -> str:
        return "\n".join(self.lines)

    def set_node(self, graph: AutogradGraph, node: GraphNode) -> None:
        self.lines = node_lines(node)
        # What paint draws, cut to the box once here rather than at every paint.
        self._drawn = [self._fit(line, i) for i, line in enumerate(self.lines)]
        self.setToolTip(node_tooltip(graph, node))
        self.update()

    def _fit(self, line: str, i: int) -> str:
        metrics = _metrics(bold=(i == 0 and self.kind != "constant"))
        if metrics.horizontalAdvance(line) <= self.width - 6:
            return line
        return metrics.elidedText(line, Qt.TextElideMode.ElideRight, self.width - 6)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def box(self) -> QRectF:
        return QRectF(-self.width / 2, -self.height / 2, self.width, self.height)

    def boundingRect(self) -> QRectF:
        if self._bounds is None:  # the box never changes size: worked out once
            top = 16 if self.is_root else 4
            self._bounds = self.box().adjusted(-4, -top, 4, 4)
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        fill, border = STYLE[self.kind]
        color = {"active": ACTIVE, "visited": VISITED}.get(self.state, QColor(border))
        width = {"active": 3.0, "visited": 2.0}.get(self.state, 2.0 if self.is_root else 1.2)
        pen = QPen(color, width)
        if self.frozen:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(QColor(fill))
        painter.drawRoundedRect(self.box(), 7, 7)
        painter.setPen(QColor("#1a1a1a"))
        box = self.box()
        lines = list(self._drawn)
        if self.state == "pending" and self.kind in ("op", "leaf") and lines:
            lines[-1] = lines[-1].split("=")[0] + "=\u2026"  # not known yet: \u2202=… or |\u2202|=…
        line_h = _metrics().height()
        y = -line_h * len(lines) / 2
        for i, line in enumerate(lines):  # one drawText per line: separate <text> in SVG
            painter.setFont(_font(bold=(i == 0 and self.kind != "constant")))
            painter.drawText(QRectF(box.left(), y, box.width(), line_h),
                             Qt.AlignmentFlag.AlignCenter, line)
            y += line_h
        if self.is_root:
            painter.setFont(_font(bold=True))
            painter.drawText(QRectF(box.left(), box.top() - 16, box.width(), 14),
                             Qt.AlignmentFlag.AlignCenter, self.root_title)


    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802 (Qt's name)
        if self.on_click is not None and event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            self.on_click()
        else:
            event.ignore()  # a plain box: the view pans


class EdgeItem(QGraphicsItem):
    """A polyline from the source box to the target box, an arrowhead at the target, and the
    gradient backward sent along it written on the last segment, before the target.

    `points` is the whole route; only `points[drawn_from:]` is drawn: the long edges out of one
    node run along one trunk (compute_layout shares their bend points), which the longest of
    them draws, and each other one draws only its branch, from where it leaves the trunk.
    """

    def __init__(self, points: list[QPointF], constant: bool, drawn_from: int = 0) -> None:
        super().__init__()
        self.points = points
        self.drawn_from = drawn_from
        self.constant = constant
        self.label = ""
        self.state = ""
        self.beside = False  # the label beside the line, not on it (a model's module titles)
        self.setZValue(1 if not constant else 0)
        path = QPainterPath(points[drawn_from])
        for p in points[drawn_from + 1:]:
            path.lineTo(p)
        self.path = path
        self._shape = QPainterPathStroker(QPen(Qt.PenStyle.SolidLine)).createStroke(path)
        self._bounds = path.boundingRect().adjusted(-40, -12, 40, 12)
        # label: at the middle of the last segment's stretch before the arrowhead
        back, tip = points[-2], points[-1]
        length = math.hypot(tip.x() - back.x(), tip.y() - back.y())
        head_starts = tip - (tip - back) * (min(HEAD, length / 2) / length if length else 0.0)
        self.label_at = (back + head_starts) / 2
        angle = math.atan2(tip.y() - back.y(), tip.x() - back.x())
        self._head = QPolygonF([tip] + [tip - QPointF(math.cos(angle + s), math.sin(angle + s))
                                        * HEAD for s in (0.4, -0.4)])
        self._label_rects: dict[bool, QRectF] = {}  # by bold: where the label's box goes

    def set_grad(self, grad: float | None) -> None:
        self._set_label("" if grad is None else f"{grad:.3g}")
        self.setToolTip("" if grad is None else f"backward sent {_precise(grad)} along this edge")
        self.update()

    def set_edge(self, edge: GraphEdge) -> None:
        """Label the edge with what backward sent along it (a number, or a tensor's first
        numbers; the tooltip has more of them)."""
        if isinstance(edge, ModelGraphEdge):
            self._set_label(edge_text(edge))
            self.setToolTip("" if edge.grad_norm is None else
                            f"backward sent a {shape_text(edge.shape)} gradient of norm "
                            f"{_precise(edge.grad_norm)} along this edge")
            self.update()
            return
        if not isinstance(edge, TensorGraphEdge):
            self.set_grad(edge.grad)
            return
        self._set_label(edge_text(edge))
        self.setToolTip("" if edge.grad_tensor is None else
                        f"backward sent {shape_text(edge.shape)} "
                        f"{tensor_text(edge.grad_tensor, TOOLTIP_SHOWN, 6)} along this edge "
                        "(the vector-Jacobian product)")
        self.update()

    def _set_label(self, label: str) -> None:
        if label != self.label:
            self.label = label
            self._label_rects = {}

    def _label_rect(self, bold: bool) -> QRectF:
        rect = self._label_rects.get(bold)
        if rect is None:
            w = _metrics(bold).horizontalAdvance(self.label) + 6
            left = self.label_at.x() + 3 if self.beside else self.label_at.x() - w / 2
            rect = self._label_rects[bold] = QRectF(left, self.label_at.y() - 8, w, 16)
        return rect

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def shape(self) -> QPainterPath:
        return self._shape

    def boundingRect(self) -> QRectF:
        return self._bounds  # asked for thousands of times while a big graph is drawn

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        active = self.state == "active"
        color = ACTIVE if active else CONSTANT_EDGE if self.constant else EDGE
        painter.setPen(_edge_pen(active, self.constant))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPolygon(self._head)
        if self.label and self.state != "pending":
            painter.setFont(_font(bold=active))
            rect = self._label_rect(active)
            painter.setBrush(LABEL_FILL)
            painter.drawRoundedRect(rect, 3, 3)
            painter.setPen(ACTIVE if active else LABEL_TEXT)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.label)


@functools.cache
def _edge_pen(active: bool, constant: bool) -> QPen:
    """An arrow's pen, made once per kind (a big graph paints hundreds of arrows)."""
    color = ACTIVE if active else CONSTANT_EDGE if constant else EDGE
    pen = QPen(color, 2.4 if active else 1.1)
    if constant:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _band_starts(graph: AutogradGraph, layout: GraphLayout) -> list[float]:
    """The first layer of each module's band of a model's graph but the loss's, in order (none
    for other graphs): where the view leaves BAND_GAP more room."""
    if not isinstance(graph, ModelGraph):
        return []
    first: dict[str, float] = {}
    for n in graph.nodes:
        if n.module is not None:
            layer = layout.positions[n.id][1]
            first[n.module] = min(first.get(n.module, layer), layer)
    return sorted(v for v in set(first.values()) if v > min(first.values()))


class GroupItem(QGraphicsItem):
    """A module of a model's graph: a tinted frame around its ops (or around the one node it is
    collapsed into) with the module as its title. The title is the button: a click there calls
    `on_click(key)`; anywhere else the frame lets the click through (to pan, or to a box)."""

    def __init__(self, key: str, title: str, rect: QRectF, colour: str, collapsed: bool,
                 on_click: Any) -> None:
        super().__init__()
        self.key = key
        self.collapsed = collapsed
        self.title = ("\u25b8 " if collapsed else "\u25be ") + title
        self.rect = rect
        self.colour = QColor(colour)
        self._on_click = on_click
        self.setZValue(1.5)  # over the arrows (its title stays readable), under the boxes
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"{title}: click to " + ("show its ops" if collapsed else
                                                  "collapse it into one box"))

    def title_rect(self) -> QRectF:
        """The title's line: as wide as its text, past a narrow frame (a one-op module's)."""
        text = _metrics(bold=True).horizontalAdvance(self.title) + 14
        return QRectF(self.rect.left(), self.rect.top(), max(self.rect.width(), text),
                      GROUP_TITLE)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.title_rect())  # only the title takes clicks and hovers
        return path

    def boundingRect(self) -> QRectF:
        return self.rect.united(self.title_rect()).adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        fill = QColor(self.colour)
        fill.setAlpha(18)
        painter.setPen(QPen(self.colour, 1.2))
        painter.setBrush(fill)
        painter.drawRoundedRect(self.rect, 8, 8)
        font = _font(bold=True)
        title = self.title_rect()
        tab = QRectF(title.left() + 2, title.top() + 1,
                     _metrics(bold=True).horizontalAdvance(self.title) + 8, title.height() - 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255, 230))  # over the arrows it crosses
        painter.drawRoundedRect(tab, 4, 4)
        painter.setFont(font)
        painter.setPen(self.colour.darker(150))
        painter.drawText(tab.adjusted(4, 0, 0, 0),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.title)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802 (Qt's name)
        if event.button() == Qt.MouseButton.LeftButton \
                and self.title_rect().contains(event.pos()):
            event.accept()
            self._on_click(self.key)
        else:
            event.ignore()


def _tensor_sizes(graph: AutogradGraph) -> tuple[float, float] | None:
    """(box width, gap between layers) that fit the lab graph's texts, in WIDTH_STEP steps;
    None for the race's graph of numbers, which keeps its fixed sizes."""
    if not isinstance(graph, TensorGraph | ModelGraph):
        return None
    bold, plain = _metrics(bold=True), _metrics()
    text = max((max([bold.horizontalAdvance(lines[0])]
                    + [plain.horizontalAdvance(t) for t in lines[1:]])
                for lines in map(node_lines, graph.nodes)), default=0.0)
    label = max((bold.horizontalAdvance(edge_text(e)) for e in graph.edges), default=0.0)

    def step(width: float) -> float:
        return math.ceil(width / WIDTH_STEP) * WIDTH_STEP

    widest = MODEL_BOX_WIDTH if isinstance(graph, ModelGraph) else MAX_BOX_WIDTH
    return (min(widest, max(BOX[0], step(text + 14))),
            max(GAP, step(label + 2 * HEAD + 24)))


def _check_orientation(orientation: str) -> str:
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be 'horizontal' or 'vertical', not {orientation!r}")
    return orientation


class GraphScene(QGraphicsScene):
    """The drawing of one AutogradGraph; GraphView shows it, render_graph prints it.

    `orientation` "horizontal": inputs on the left, the loss on the right; "vertical": the loss
    on top, inputs at the bottom.
    """

    sigGroupClicked = Signal(str)  # a module's title was clicked (a model's graph): its key

    def __init__(self, parent: Any = None, *, orientation: str = "horizontal") -> None:
        super().__init__(parent)
        self._band_starts: list[float] = []  # a model's graph: see _at
        # No BSP index: the items are added once per structure and never move, and a few
        # hundred are cheaper to scan than to index (the first draw of a 300-node graph).
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.orientation = _check_orientation(orientation)
        self.graph: AutogradGraph | None = None
        self.node_items: dict[str, NodeItem] = {}
        self.edge_items: list[EdgeItem] = []
        self.group_items: dict[str, GroupItem] = {}
        self.highlighted: str | None = None
        self._key: tuple[Any, ...] | None = None
        self._step: int | None = None
        self._box_width = BOX[0]  # the widest box, and the gap between layers (horizontal)
        self._gap = GAP
        self._y_unit = Y_UNIT  # between two layers' centres (vertical)

    def set_graph(self, graph: AutogradGraph, layout: GraphLayout | None = None) -> bool:
        """Show `graph`; returns True when the structure changed and the layout was redone.

        `layout`, if given, is compute_layout(graph) done elsewhere (a worker thread): it is used
        when the structure changed instead of laying the graph out here.
        """
        sizes = _tensor_sizes(graph)
        key = (structure_key(graph), sizes)
        relaid = key != self._key
        if relaid:
            self._box_width, self._gap = sizes or (BOX[0], GAP)
            self._y_unit = MODEL_Y_UNIT if isinstance(graph, ModelGraph) else Y_UNIT
            self._build(graph, layout)
            self._key = key
        self.graph = graph
        for node in graph.nodes:
            self.node_items[node.id].set_node(graph, node)
        for item, edge in zip(self.edge_items, graph.edges):
            item.set_edge(edge)
        self.highlight_step(self._step)
        return relaid

    def set_orientation(self, orientation: str) -> bool:
        """Draw left to right ("horizontal") or bottom to top ("vertical"); returns True when the
        graph shown was laid out again."""
        if _check_orientation(orientation) == self.orientation:
            return False
        self.orientation = orientation
        self._key = None
        return self.set_graph(self.graph) if self.graph is not None else False

    @property
    def horizontal(self) -> bool:
        return self.orientation == "horizontal"

    def _at(self, x: float, layer: float) -> QPointF:
        """Scene point of layout position x (across the layer) in `layer` (the loss is 0); a
        model's modules have layers of their own (core.graph), and BAND_GAP more between two
        modules' layers, for their frames and the labels of the arrows between them."""
        extra = BAND_GAP * bisect.bisect_right(self._band_starts, layer + 1e-9)
        if self.horizontal:
            return QPointF(-layer * (self._box_width + self._gap) - extra, x * ROW_UNIT)
        return QPointF(x * (self._box_width + ACROSS_GAP), layer * self._y_unit + extra)

    def _build(self, graph: AutogradGraph, layout: GraphLayout | None = None) -> None:
        self.clear()
        layout = layout if layout is not None else compute_layout(graph)
        self._band_starts = _band_starts(graph, layout)
        self.node_items = {}
        wide = self._box_width if isinstance(graph, TensorGraph | ModelGraph) else None
        for node in graph.nodes:
            item = NodeItem(node, node.id == graph.root, wide)
            if isinstance(graph, TensorGraph):
                item.root_title = graph.q
            elif isinstance(graph, ModelGraph) and node.id == graph.root:
                item.root_title = ""  # the loss module's frame says it
            item.setPos(self._at(*layout.positions[node.id]))
            self.addItem(item)
            self.node_items[node.id] = item
        self.edge_items = []
        # Per source, the edge with the most bends draws the shared trunk; the others branch
        # off it from their last bend (their bends are the first ones of the trunk).
        longest: dict[str, int] = {}
        for k, edge in enumerate(graph.edges):
            other = longest.get(edge.source)
            if other is None or len(layout.bends[k]) > len(layout.bends[other]):
                longest[edge.source] = k
        for k, (points, edge) in enumerate(zip(self._edge_points(graph, layout.bends),
                                               graph.edges)):
            bends = len(layout.bends[k])
            drawn_from = 0 if longest[edge.source] == k or not bends else 2 * bends - 1
            arrow = EdgeItem(points, graph.node(edge.source).kind == "constant", drawn_from)
            arrow.beside = isinstance(graph, ModelGraph)
            self.addItem(arrow)
            self.edge_items.append(arrow)
        self.group_items = {}
        if isinstance(graph, ModelGraph):
            self._build_groups(graph)
        self.setSceneRect(self.itemsBoundingRect().adjusted(-30, -30, 30, 30))

    def _build_groups(self, graph: ModelGraph) -> None:
        """A frame per expanded module around its ops, titled with the module; a collapsed
        module is one box, which a click expands."""
        groups = module_groups(graph)
        for k, (key, title) in enumerate(graph.modules):
            if key in graph.collapsed:
                item = self.node_items.get(collapsed_id(key))
                if item is not None:
                    item.on_click = lambda key=key: self.sigGroupClicked.emit(key)
                    item.setCursor(Qt.CursorShape.PointingHandCursor)
                continue
            ids = groups.get(key, [])
            boxes = [self.node_items[i].mapRectToScene(self.node_items[i].box())
                     for i in ids if i in self.node_items]
            if not boxes:
                continue
            rect = boxes[0]
            for box in boxes[1:]:
                rect = rect.united(box)
            rect = rect.adjusted(-GROUP_PAD, -GROUP_PAD - GROUP_TITLE, GROUP_PAD, GROUP_PAD)
            item = GroupItem(key, title, rect, GROUP_COLOURS[k % len(GROUP_COLOURS)],
                             key in graph.collapsed, self.sigGroupClicked.emit)
            self.addItem(item)
            self.group_items[key] = item

    def _edge_points(self, graph: AutogradGraph, bends: list[list[tuple[float, float]]]
                     ) -> list[list[QPointF]]:
        """Each edge: out of its source's side facing the loss (right, or top), through its
        bends, into its target's side facing the inputs (left, or bottom). Several edges at one
        box get ports spread along that side, ordered by where the edge goes, so they neither
        overlap nor cross there."""
        # A bend crosses its layer's band of boxes straight (horizontally, or vertically): slanted
        # segments then stay in the gaps between layers, where there are no boxes to cut through.
        # (A shared bend point is placed once: edges out of one node share their bends.)
        crossing: dict[tuple[float, float], tuple[QPointF, QPointF]] = {}

        def through(x: float, y: float) -> tuple[QPointF, QPointF]:
            pair = crossing.get((x, y))
            if pair is None:
                at = self._at(x, y)
                if self.horizontal:
                    half = QPointF(self._box_width / 2, 0)
                    pair = crossing[(x, y)] = (at - half, at + half)
                else:
                    half = QPointF(0, BOX[1] / 2)
                    pair = crossing[(x, y)] = (at + half, at - half)
            return pair

        # The edges out of one source run along one trunk: their bends are the first ones of
        # the longest's, so its route is made once and the others take a slice of it.
        trunks: dict[str, tuple[list[tuple[float, float]], list[QPointF]]] = {}
        for k, e in enumerate(graph.edges):
            have = trunks.get(e.source)
            if have is None or len(bends[k]) > len(have[0]):
                trunks[e.source] = (bends[k], [])
        paths: list[list[QPointF]] = []
        for k, e in enumerate(graph.edges):
            trunk, route = trunks[e.source]
            n = len(bends[k])
            if trunk[:n] != bends[k]:  # not on the trunk (never, with compute_layout's bends)
                paths.append([p for x, y in bends[k] for p in through(x, y)])
                continue
            if not route and trunk:
                route.extend(p for x, y in trunk for p in through(x, y))
            paths.append(route[:2 * n])
        ends: list[list[QPointF]] = [[QPointF(), QPointF()] for _ in graph.edges]
        for side in ("source", "target"):
            by_node: dict[str, list[int]] = {}
            for k, e in enumerate(graph.edges):
                by_node.setdefault(getattr(e, side), []).append(k)
            for node_id, ks in by_node.items():
                ks.sort(key=lambda k: (self._next_across(graph, paths, k, side), k))
                item = self.node_items[node_id]
                toward_loss = 1.0 if side == "source" else -1.0  # which side of the box
                for i, k in enumerate(ks):
                    if self.horizontal:
                        step = min(16.0, item.height * 0.8 / len(ks))
                        offset = QPointF(toward_loss * item.width / 2,
                                         (i - (len(ks) - 1) / 2) * step)
                    else:
                        step = min(16.0, item.width * 0.8 / len(ks))
                        offset = QPointF((i - (len(ks) - 1) / 2) * step,
                                         -toward_loss * item.height / 2)
                    ends[k][0 if side == "source" else 1] = item.pos() + offset
        return [[a] + path + [b] for (a, b), path in zip(ends, paths)]

    def _next_across(self, graph: AutogradGraph, paths: list[list[QPointF]], k: int, side: str
                     ) -> float:
        """Where edge k heads after leaving its `side` end, across the layers: the y of the next
        point when drawn horizontally, its x when drawn vertically."""
        if paths[k]:
            point = paths[k][0] if side == "source" else paths[k][-1]
        else:
            edge = graph.edges[k]
            point = self.node_items[edge.target if side == "source" else edge.source].pos()
        return point.y() if self.horizontal else point.x()

    def highlight_step(self, k: int | None) -> str | None:
        """Show backward as it was at its k-th node: that node and the gradients it sends are
        highlighted, earlier nodes marked visited, later ones (and what they will send) pending.
        k None or out of range clears. Returns the highlighted node's id."""
        order = self.graph.backward_order if self.graph else []
        self._step = k
        current = order[k] if k is not None and 0 <= k < len(order) else None
        done = set(order[:k]) if current is not None else set()

        def state(node_id: str) -> str:
            if current is None or node_id not in order:  # constants take no part
                return ""
            return "active" if node_id == current else "visited" if node_id in done \
                else "pending"

        for node_id, item in self.node_items.items():
            item.set_state(state(node_id))
        if self.graph is not None:  # an edge is drawn with the node that sends along it
            for arrow, edge in zip(self.edge_items, self.graph.edges):
                sender = state(edge.target)
                arrow.set_state(sender if _carries(edge) and sender != "visited" else "")
        self.highlighted = current
        return current


class GraphView(QGraphicsView):
    """An interactive view of an AutogradGraph: drag to pan, wheel to zoom, hover a box for its
    torch name, value, gradient, local Jacobian and the chain-rule step in words.
    Drawn left to right (inputs left, loss right) unless `orientation="vertical"` (loss on top).

    Signals
    -------
    sigGroupClicked(str)  the title of a module's frame was clicked (a model's graph): its key

    The owner calls `set_graph` with a new graph and `highlight_step` to step through backward.
    """

    sigGroupClicked = Signal(str)

    def __init__(self, graph: AutogradGraph | None = None, *, orientation: str = "horizontal",
                 parent: QWidget | None = None) -> None:
        self.graph_scene = GraphScene(orientation=orientation)
        super().__init__(self.graph_scene, parent)
        self.graph_scene.setParent(self)
        self.graph_scene.sigGroupClicked.connect(self.sigGroupClicked)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QBrush(QColor("white")))
        if graph is not None:
            self.set_graph(graph)

    @property
    def node_items(self) -> dict[str, NodeItem]:
        return self.graph_scene.node_items

    @property
    def edge_items(self) -> list[EdgeItem]:
        return self.graph_scene.edge_items

    @property
    def group_items(self) -> dict[str, GroupItem]:
        return self.graph_scene.group_items

    @property
    def highlighted(self) -> str | None:
        return self.graph_scene.highlighted

    @property
    def orientation(self) -> str:
        return self.graph_scene.orientation

    def set_orientation(self, orientation: str) -> None:
        """Draw left to right ("horizontal") or bottom to top ("vertical"), and refit."""
        if self.graph_scene.set_orientation(orientation):
            self.fit()

    def set_graph(self, graph: AutogradGraph, layout: GraphLayout | None = None) -> None:
        """Show `graph`: a new structure is laid out (and fitted), a new point only relabelled.
        `layout`: the graph's compute_layout, when it was done already (off the GUI thread)."""
        if self.graph_scene.set_graph(graph, layout):
            self.fit()

    def highlight_step(self, k: int | None) -> str | None:
        """Highlight the k-th node of graph.backward_order (None clears); returns its id."""
        return self.graph_scene.highlight_step(k)

    def fit(self) -> None:
        """Zoom to show the whole graph (never magnified beyond 1:1)."""
        rect = self.graph_scene.itemsBoundingRect()
        if rect.isEmpty():
            return
        self.fitInView(rect.adjusted(-20, -20, 20, 20), Qt.AspectRatioMode.KeepAspectRatio)
        if self.transform().m11() > 1.0:
            self.resetTransform()
            self.centerOn(rect.center())

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.15 ** (event.angleDelta().y() / 120)
        if 0.05 < self.transform().m11() * factor < 8:
            self.scale(factor, factor)
        event.accept()


_app: QApplication | None = None


def _ensure_app() -> None:
    """Painting text needs a QApplication; headless callers (main.py graph --out) have none."""
    global _app
    if QApplication.instance() is None:
        _app = QApplication([])


def render_graph(graph: AutogradGraph, path: str | Path, scale: float = 1.5, *,
                 orientation: str = "horizontal", layout: GraphLayout | None = None,
                 size: tuple[int, int] | None = None) -> Path:
    """Write the drawing of `graph` to a .png or .svg file; works headless (offscreen Qt).
    `orientation` as for GraphScene: "horizontal" (inputs left, loss right) or "vertical";
    `layout`: the graph's compute_layout if it is at hand (else it is laid out here);
    `size`: the picture's (width, height) in pixels, the graph fitted and centred in it
    (default: the graph's own size times `scale`).

    The file is written atomically: when writing fails, an older file at `path` stays as it was.
    Raises ExportError for another extension or a path that cannot be written, ValueError for
    another orientation.
    """
    _check_orientation(orientation)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ExportError(f"cannot write the graph as {suffix or 'a file without extension'!r}: "
                          "use a .png or .svg file name")
    _ensure_app()
    scene = GraphScene(orientation=orientation)
    scene.set_graph(graph, layout)
    source = scene.itemsBoundingRect().adjusted(-20, -20, 20, 20)
    if size is not None:
        width, height = (int(v) for v in size)
        if not (16 <= width <= 10000 and 16 <= height <= 10000):
            raise ExportError(f"the picture must be 16 to 10000 pixels each way, got {width} x "
                              f"{height}")
        picture = QSize(width, height)
    else:
        scale = min(scale, 8000 / max(source.width(), source.height()))  # keep images sane
        picture = QSize(math.ceil(source.width() * scale), math.ceil(source.height() * scale))
    try:
        with atomic_path(path) as tmp:
            _paint_to(scene, source, picture, tmp, suffix)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _paint_to(scene: GraphScene, source: QRectF, size: QSize, out: Path, suffix: str) -> None:
    """Paint `source` of the scene into a new .png or .svg file `out`; OSError when it fails."""
    if suffix == ".png":
        image = QImage(size, QImage.Format.Format_ARGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
    else:
        generator = QSvgGenerator()
        generator.setFileName(str(out))
        generator.setSize(size)
        generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
        generator.setTitle("autograd graph")
        painter = QPainter()
        if not painter.begin(generator):
            raise OSError("the SVG writer could not open it")
        painter.fillRect(QRectF(0, 0, size.width(), size.height()), QColor("white"))
    painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
    scene.render(painter, QRectF(0, 0, size.width(), size.height()), source)
    painter.end()
    if suffix == ".png" and not image.save(str(out), "PNG"):
        raise OSError("saving the PNG failed")
