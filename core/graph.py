"""The autograd graph of the loss at one point, read from torch's own autograd objects.

`build_graph(fn, x, y)` evaluates the loss once and walks `loss.grad_fn -> next_functions`: the
DAG autograd really recorded, one node per autograd Node. Autograd keeps no forward values on its
nodes, so a TorchFunctionMode watches the forward pass and notes, for every result that has a
grad_fn, its value and the call's arguments (numbers and tensors without grad become constant
nodes). Then one real backward pass runs with hooks on every node, which capture the gradient that
reached each node, what it sent along each edge (the vector-Jacobian products) and the order in
which backward visited the nodes.

Edges point along the data flow: input -> the op that consumes it.

The same walk serves the lab (build_tensor_graph: small tensors, every number) and model mode
(build_model_graph: a model's loss, tensors shown by shape and norm, each op tagged with the
module that made it, collapse_modules to fold a module into one node).
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.graph import Node, get_gradient_edge
from torch.func import functional_call
from torch.overrides import TorchFunctionMode

LossFn = Callable[[Tensor, Tensor], Tensor]
DTYPE = torch.float64


@dataclass
class GraphNode:
    """One node: an autograd op, a leaf (x or y, its AccumulateGrad) or a constant input.

    `value` is the forward value, `grad` = d(loss)/d(value) as backward delivered it (None for
    constants). `local_jacobian[i]` = d(value)/d(input i), one per autograd input (next_function),
    None where that input is a constant autograd does not differentiate.
    """

    id: str
    kind: str  # "op" | "leaf" | "constant"
    label: str
    op: str | None = None  # readable op name ("mul"); None for leaves and constants
    torch_name: str | None = None  # the autograd class ("MulBackward0", "AccumulateGrad")
    value: float | None = None
    grad: float | None = None
    local_jacobian: list[float | None] = field(default_factory=list)
    frozen: bool = False


@dataclass
class GraphEdge:
    """Data flows source -> target; backward sent `grad` the other way (None for constants).

    `input_index` is the slot in the target's next_functions (None for a constant input that
    autograd gave no slot, e.g. the 2 in x**2).
    """

    source: str
    target: str
    grad: float | None = None
    input_index: int | None = None


class GraphIndex:
    """Look-ups shared by the graphs: a node by id, the edges into and out of a node.

    Indexes are built on first use and kept in the instance's __dict__ (a graph never changes
    once built), so explain() for every node of a big graph does not scan all edges each time.
    """

    nodes: list[GraphNode]
    edges: list[GraphEdge]

    def node(self, node_id: str) -> GraphNode:
        return self._by_id[node_id]

    @property
    def _by_id(self) -> dict[str, GraphNode]:
        index = self.__dict__.get("_index")
        if index is None:
            index = self.__dict__["_index"] = {n.id: n for n in self.nodes}
        return index

    def inputs(self, node_id: str) -> list[GraphEdge]:
        """The edges into `node_id` (what it consumes)."""
        return list(self._edges_at("target").get(node_id, ()))

    def outputs(self, node_id: str) -> list[GraphEdge]:
        """The edges out of `node_id` (the ops that consume it)."""
        return list(self._edges_at("source").get(node_id, ()))

    def _edges_at(self, end: str) -> dict[str, list[GraphEdge]]:
        """Edges by their source or target, indexed once: explain() for every node of a big
        graph would otherwise scan all edges for each."""
        index = self.__dict__.get(f"_{end}s")
        if index is None:
            index = self.__dict__[f"_{end}s"] = {}
            for e in self.edges:
                index.setdefault(getattr(e, end), []).append(e)
        return index


@dataclass
class AutogradGraph(GraphIndex):
    """The loss's autograd graph at one point, with forward values and backward gradients."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    root: str
    loss: float
    gradient: tuple[float | None, float | None]  # (d loss/dx, d loss/dy); None when frozen
    backward_order: list[str]
    point: tuple[float, float] = (0.0, 0.0)
    frozen: tuple[str, ...] = ()  # the coordinates built with requires_grad=False, sorted

    def explain(self, node_id: str) -> str:
        """In words: upstream grad x local derivative = what this node sends to each input."""
        n = self.node(node_id)
        if n.kind == "constant":
            if node_id == self.root:
                return (f"loss = {_fmt(n.value)} needs no gradient: nothing it depends on "
                        "requires grad, so autograd recorded no graph.")
            if n.frozen or n.label.startswith("from "):
                return (f"{n.label} = {_fmt(n.value)}: frozen (requires_grad=False), so autograd "
                        "records no AccumulateGrad for it and it gets no gradient; the optimizer "
                        "leaves it where it is.")
            return f"constant {n.label}: needs no gradient, so backward sends nothing to it."
        if n.kind == "leaf":
            parts = [_fmt(e.grad) for e in self.outputs(node_id)]
            how = " + ".join(parts) if len(parts) > 1 else "what its one consumer sent"
            return (f"leaf {n.label} = {_fmt(n.value)}: AccumulateGrad stores {n.label}.grad = "
                    f"{how} = {_fmt(n.grad)}.")
        upstream = "1 (the loss itself)" if node_id == self.root else _fmt(n.grad)
        lines = [f"{n.op} ({n.torch_name}) = {_fmt(n.value)}",
                 f"upstream grad d(loss)/d({n.op}) = {upstream}"]
        for e in sorted(self.inputs(node_id), key=lambda e: (e.input_index is None,
                                                             e.input_index or 0)):
            src = self.node(e.source)
            if e.input_index is None or e.grad is None:
                lines.append(f"  -> {src.label}: constant, nothing sent")
                continue
            local = n.local_jacobian[e.input_index]
            lines.append(f"  -> {src.label}: {_fmt(n.grad)} x d({n.op})/d({src.label}) "
                         f"{_fmt(local)} = {_fmt(e.grad)}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A strict-JSON dict: {"nodes", "edges", "root", "loss", "gradient", "frozen",
        "backward_order", "point"}.

        Numbers that are not finite are the strings "nan", "inf" and "-inf" (JSON has no such
        numbers), so they never read as missing. `null` means there is no number: a frozen
        coordinate's gradient (its node has "frozen": true, and it is listed in "frozen"), a
        constant's gradient and what backward sent along a constant's edge (nothing), or a
        forward value autograd did not keep. "gradient" is [d loss/dx, d loss/dy].
        """
        return {
            "nodes": [_json_safe(asdict(n)) for n in self.nodes],
            "edges": [_json_safe(asdict(e)) for e in self.edges],
            "root": self.root,
            "loss": json_number(self.loss),
            "gradient": [json_number(g) for g in self.gradient],
            "frozen": sorted(self.frozen),
            "backward_order": list(self.backward_order),
            "point": [json_number(v) for v in self.point],
        }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def json_number(v: float | None) -> float | str | None:
    """A float for strict JSON: finite as is, otherwise "nan", "inf" or "-inf"; None stays."""
    if v is None or math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else "inf" if v > 0 else "-inf"


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, float):
            v = json_number(v)
        elif isinstance(v, list):
            v = [json_number(a) if isinstance(a, float) else a for a in v]
        out[k] = v
    return out


@functools.lru_cache(maxsize=256)
def op_name(torch_name: str) -> str:
    """Readable op name from an autograd class name: MulBackward0 -> mul, RsubBackward1 -> rsub."""
    base = re.sub(r"Backward\d*$", "", torch_name)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower() or torch_name


# --- forward: remember what each autograd node computed, and from what -------------------------


class _ForwardRecorder(TorchFunctionMode):
    """Notes output.grad_fn -> (output value, call arguments) for every call that built a node.

    Also tracks which no-grad tensors were computed from a frozen leaf, to label them.
    """

    def __init__(self, frozen: dict[str, Tensor]) -> None:
        super().__init__()
        self.calls: dict[Node, tuple[Any, tuple[Any, ...]]] = {}
        self.frozen = frozen
        self.from_frozen: dict[int, tuple[Tensor, str]] = {}  # id -> (tensor kept alive, name)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if not isinstance(out, Tensor):
            return out
        if out.grad_fn is not None:
            if out.grad_fn not in self.calls:
                value = self.value_of(out)
                if value is not None:
                    self.calls[out.grad_fn] = (value, tuple(args))
        elif self.frozen:
            names = {self.frozen_name(a) for a in args} - {None}
            if names:
                self.from_frozen[id(out)] = (out, " and ".join(sorted(names)))  # type: ignore
        return out

    def value_of(self, out: Tensor) -> Any:
        """What is kept of a node's output: the number of a scalar (None: nothing kept)."""
        return float(out.detach()) if out.numel() == 1 else None

    def frozen_name(self, a: Any) -> str | None:
        if not isinstance(a, Tensor):
            return None
        for name, t in self.frozen.items():
            if a is t:
                return name
        entry = self.from_frozen.get(id(a))
        return entry[1] if entry is not None and entry[0] is a else None


# --- build --------------------------------------------------------------------------------------


def build_graph(fn: LossFn, x: float, y: float, frozen: Iterable[str] = ()) -> AutogradGraph:
    """Evaluate fn at (x, y), run backward, and return the autograd graph with values and grads.

    `frozen` names the coordinates ("x", "y") created with requires_grad=False: autograd then
    records nothing for them, so they appear as constant inputs with no gradient.
    """
    frozen = set(frozen)
    if frozen - {"x", "y"}:
        raise ValueError(f"frozen must name 'x' or 'y', got {sorted(frozen - {'x', 'y'})}")
    xt = torch.tensor(float(x), dtype=DTYPE, requires_grad="x" not in frozen)
    yt = torch.tensor(float(y), dtype=DTYPE, requires_grad="y" not in frozen)
    leaves = {"x": xt, "y": yt}
    recorder = _ForwardRecorder({n: leaves[n] for n in sorted(frozen)})
    with torch.enable_grad(), recorder:
        loss = fn(xt, yt)
    loss_value = float(loss.detach())

    if not loss.requires_grad:  # everything frozen, or a formula without x and y
        root = GraphNode("c0", "constant", "loss", value=loss_value)
        return AutogradGraph([root], [], "c0", loss_value, _leaf_grads(leaves, frozen), [],
                             (float(x), float(y)), tuple(sorted(frozen)))

    # Walk the real DAG from the loss, breadth first: ids follow discovery order, so the same
    # formula always gets the same ids.
    root_fn = loss.grad_fn or get_gradient_edge(loss).node
    ids, order, edge_of = _walk(root_fn, leaves)
    edges = [GraphEdge(ids[nxt], ids[f], input_index=slot) for f, slot, nxt in edge_of]

    nodes = [_make_node(f, ids[f], recorder) for f in order]
    constants, constant_edges = _constant_inputs(order, ids, recorder)

    # Backward, with hooks that capture what really flowed (as numbers: every tensor is 0-d).
    flow = _backward_with_hooks(order, edge_of, loss.backward, float)
    for i, node in enumerate(nodes):
        node.grad = flow.reached.get(i)
    for edge, grad in zip(edges, flow.sent):
        edge.grad = grad
    return AutogradGraph(nodes + constants, edges + constant_edges, ids[root_fn], loss_value,
                         _leaf_grads(leaves, frozen), [nodes[i].id for i in flow.visited],
                         (float(x), float(y)), tuple(sorted(frozen)))


def _walk(root_fn: Node, leaves: dict[str, Tensor]
          ) -> tuple[dict[Node, str], list[Node], list[tuple[Node, int, Node]]]:
    """The real DAG from the root, breadth first: ids follow discovery order, so the same
    formula always gets the same ids (a leaf's id is its name). Returns (ids, the nodes in
    discovery order, the edges as (consumer, slot in its next_functions, input))."""
    ids: dict[Node, str] = {}
    order: list[Node] = []
    edge_of: list[tuple[Node, int, Node]] = []

    def visit(fn_node: Node) -> None:
        if fn_node not in ids:
            variable = getattr(fn_node, "variable", None)
            ids[fn_node] = _leaf_name(variable, leaves) if variable is not None \
                else f"n{len(order)}"
            order.append(fn_node)

    visit(root_fn)
    for fn_node in order:  # grows while we walk
        for slot, (nxt, _) in enumerate(fn_node.next_functions):
            if nxt is not None:
                visit(nxt)
                edge_of.append((fn_node, slot, nxt))
    return ids, order, edge_of


@dataclass
class _Flow:
    """What one backward pass sent, as _backward_with_hooks captured it (positions in `order`)."""

    reached: dict[int, Any]  # the gradient that reached each node
    sent: list[Any]  # per edge of edge_of: what its consumer sent along it (None: nothing)
    visited: list[int]  # the nodes in the order backward ran them


def _backward_with_hooks(order: list[Node], edge_of: list[tuple[Node, int, Node]],
                         backward: Callable[[], None], keep: Callable[[Tensor], Any]) -> _Flow:
    """Call `backward` with a hook on every node of `order` (a pre-hook on a leaf's
    AccumulateGrad), removed afterwards, and return what flowed: each gradient passed through
    `keep` (float for the race's numbers, a detached copy for tensors) while backward runs.

    The hooks know their node by position, not by reference: a hook that held its node would
    make a reference cycle through torch's C++ node, which Python's gc cannot see into.
    """
    reached: dict[int, Any] = {}
    sent: dict[int, tuple[Any, ...]] = {}
    visited: list[int] = []

    def on_op(i: int) -> Callable[..., None]:
        def hook(grad_inputs: tuple[Tensor | None, ...], grad_outputs: tuple[Tensor, ...]) -> None:
            visited.append(i)
            reached[i] = keep(grad_outputs[0])
            sent[i] = tuple(None if g is None else keep(g) for g in grad_inputs)
        return hook

    def on_leaf(i: int) -> Callable[..., None]:
        def hook(grad_outputs: tuple[Tensor, ...]) -> None:
            visited.append(i)
            reached[i] = keep(grad_outputs[0])
        return hook

    handles = [f.register_prehook(on_leaf(i)) if hasattr(f, "variable")
               else f.register_hook(on_op(i)) for i, f in enumerate(order)]
    try:
        backward()
    finally:
        for handle in handles:  # never leave hooks on torch's nodes: every build would stay
            handle.remove()
    position = {f: i for i, f in enumerate(order)}
    along = []
    for f, slot, _ in edge_of:
        g = sent.get(position[f], ())
        along.append(g[slot] if slot < len(g) else None)
    return _Flow(reached, along, visited)


def _copy(t: Tensor) -> Tensor:
    return t.detach().clone()


@dataclass
class GraphSize:
    """How big the loss's autograd graph is at a point, with the loss and gradient (as in
    AutogradGraph), found without recording anything: for deciding whether to extract it."""

    nodes: int  # autograd nodes: ops and leaves (AccumulateGrad), constants not counted
    loss: float
    gradient: tuple[float | None, float | None]  # None for a frozen coordinate
    point: tuple[float, float]
    frozen: tuple[str, ...]


def graph_size(fn: LossFn, x: float, y: float, frozen: Iterable[str] = ()) -> GraphSize:
    """One plain forward and backward at (x, y), and a walk of grad_fn -> next_functions that
    only counts: a few milliseconds where build_graph, recording values and hooking every
    node, takes a hundred times longer on a big graph."""
    frozen = set(frozen)
    if frozen - {"x", "y"}:
        raise ValueError(f"frozen must name 'x' or 'y', got {sorted(frozen - {'x', 'y'})}")
    leaves = {name: torch.tensor(float(v), dtype=DTYPE, requires_grad=name not in frozen)
              for name, v in (("x", x), ("y", y))}
    with torch.enable_grad():
        loss = fn(leaves["x"], leaves["y"])
    count = 0
    if loss.requires_grad:
        seen = {loss.grad_fn or get_gradient_edge(loss).node}
        todo = list(seen)
        while todo:
            for nxt, _ in todo.pop().next_functions:
                if nxt is not None and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        count = len(seen)
        loss.backward()
    return GraphSize(count, float(loss.detach()), _leaf_grads(leaves, frozen),
                     (float(x), float(y)), tuple(sorted(frozen)))


def _leaf_name(variable: Tensor, leaves: dict[str, Tensor]) -> str:
    # (a leaf made inside the function, not one of `leaves`: named by its place)
    return next((name for name, t in leaves.items() if t is variable), f"leaf@{id(variable)}")


def _leaf_grads(leaves: dict[str, Tensor], frozen: set[str]) -> tuple[float | None, float | None]:
    def grad(name: str) -> float | None:
        if name in frozen:
            return None
        g = leaves[name].grad
        return 0.0 if g is None else float(g)  # unused by the formula: zero slope
    return grad("x"), grad("y")


def _make_node(f: Node, node_id: str, recorder: _ForwardRecorder) -> GraphNode:
    torch_name = type(f).__name__
    variable = getattr(f, "variable", None)
    if variable is not None:
        return GraphNode(node_id, "leaf", node_id, torch_name=torch_name,
                         value=float(variable.detach()))
    call = recorder.calls.get(f)
    if call is not None:
        value: float | None = call[0]
    else:  # made inside another op (3/x is reciprocal then mul): use what autograd saved
        saved = getattr(f, "_saved_result", None)
        value = float(saved.detach()) if isinstance(saved, Tensor) and saved.numel() == 1 else None
    return GraphNode(node_id, "op", op_name(torch_name), op=op_name(torch_name),
                     torch_name=torch_name, value=value, local_jacobian=_local_jacobian(f))


def _local_jacobian(f: Node) -> list[float | None]:
    """d(output)/d(input_i) for a scalar op: call the autograd node itself on a gradient of 1."""
    try:
        with torch.no_grad():
            out = f(torch.ones((), dtype=DTYPE))  # type: ignore[operator]  # Nodes are callable
    except RuntimeError:  # a node that cannot be called on its own: leave the entries unknown
        return [None] * len(f.next_functions)
    out = out if isinstance(out, tuple) else (out,)
    return [float(g) if isinstance(g, Tensor) and g.numel() == 1 else None for g in out]


def _constant_inputs(order: list[Node], ids: dict[Node, str], recorder: _ForwardRecorder,
                     tensors: bool = False) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Constant nodes for each op's arguments that need no gradient: numbers, no-grad tensors
    (e.g. cos(pi/6) already computed) and frozen leaves (one shared node per frozen leaf).

    When the call has as many arguments as the node has next_functions, argument i is slot i
    (x*2.0: MulBackward0 has (AccumulateGrad, None)); otherwise the constant has no slot
    (x**2: PowBackward0 has a single next_function, for x).

    `tensors`: constants of any size, as TensorGraphNode/TensorGraphEdge (the lab's graph);
    otherwise only one-element ones (the race's graph of numbers).
    """
    nodes: dict[str, GraphNode] = {}
    edges: list[GraphEdge] = []
    for f in order:
        call = recorder.calls.get(f)
        if call is None:
            continue
        args, slots = call[1], f.next_functions
        aligned = len(args) == len(slots)
        for pos, a in enumerate(args):
            if isinstance(a, bool) or not isinstance(a, Tensor | int | float):
                continue
            if isinstance(a, Tensor) and (a.requires_grad or (a.numel() != 1 and not tensors)):
                continue
            one = not isinstance(a, Tensor) or a.numel() == 1
            value = (float(a.detach()) if isinstance(a, Tensor) else float(a)) if one else None
            name = recorder.frozen_name(a)
            if name is not None and a is recorder.frozen[name]:
                node_id, label, frozen = name, f"{name} (frozen)", True
            else:
                node_id, frozen = f"c{len(nodes)}", False
                label = f"from {name} (frozen)" if name else \
                    f"{value:.6g}" if value is not None else tensor_text(_nested(a), 4)
            if node_id not in nodes:
                if tensors:
                    t = a.detach() if isinstance(a, Tensor) else torch.tensor(float(a))
                    nodes[node_id] = TensorGraphNode(node_id, "constant", label, value=value,
                                                     frozen=frozen, shape=tuple(t.shape),
                                                     tensor=_nested(t))
                else:
                    nodes[node_id] = GraphNode(node_id, "constant", label, value=value,
                                               frozen=frozen)
            slot = pos if aligned and slots[pos][0] is None else None
            edge_class = TensorGraphEdge if tensors else GraphEdge
            edges.append(edge_class(node_id, ids[f], None, slot))
    return list(nodes.values()), edges


# --- the lab's graph: tensors -------------------------------------------------------------------

Nested = Any  # a tensor as nested lists of floats (a float for a 0-d tensor)
LOCAL_JACOBIAN_MAX = 36  # an op's local Jacobian is kept up to this many outputs and inputs
SHOWN_NUMBERS = 6  # tensor_text's default: a box shows this many numbers, then "…"


def _nested(t: Tensor) -> Nested:
    return t.detach().cpu().tolist()


def _flat(values: Nested) -> list[float]:
    if not isinstance(values, list):
        return [float(values)]
    out: list[float] = []
    todo = [values]
    while todo:  # an explicit stack: no recursion on nesting depth
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(reversed(item))
        else:
            out.append(float(item))
    return out


def _number_text(v: float, digits: int) -> str:
    text = f"{v:.{digits}g}"
    return text + "." if re.fullmatch(r"-?\d+", text) else text  # as torch prints 36.


def tensor_text(values: Nested | None, limit: int = SHOWN_NUMBERS, digits: int = 4) -> str:
    """A tensor (nested lists) in a few characters: [36., 81.], [[1., 2.], [3., 4.]]; past
    `limit` numbers only the first ones, flat, then "…": [1., 2., 3., …]. None: "-"."""
    if values is None:
        return "-"
    if not isinstance(values, list):
        return _number_text(float(values), digits)
    flat = _flat(values)
    if len(flat) > limit:
        return "[" + ", ".join(_number_text(v, digits) for v in flat[:limit]) + ", …]"

    def fmt(v: Nested) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return _number_text(float(v), digits)

    return fmt(values)


def shape_text(shape: tuple[int, ...] | None) -> str:
    """(2,) / (2, 3) / () as Python writes a tuple."""
    return "?" if shape is None else str(tuple(shape))


def matrix_text(matrix: list[list[float]] | None, digits: int = 4) -> str:
    """A local Jacobian in a line: diag([12., 27.]) when it is diagonal, else its rows."""
    if matrix is None:
        return "J (not shown: too big, or unknown)"
    square = len(matrix) == len(matrix[0]) if matrix else False
    if square and len(matrix) > 1 and all(v == 0 for i, row in enumerate(matrix)
                                         for j, v in enumerate(row) if i != j):
        return f"diag({tensor_text([row[i] for i, row in enumerate(matrix)], 99, digits)})"
    return tensor_text(matrix, 99, digits)


@dataclass
class TensorGraphNode(GraphNode):
    """A node of the lab's graph: a GraphNode whose value and gradient are tensors.

    `tensor` is the forward value as nested lists (None: autograd kept nothing), `shape` its
    shape; `grad_tensor` the gradient backward delivered to it, d(vᵀQ)/d(this). For a one-element
    tensor `value` and `grad` hold the same numbers as floats. `local_jacobians[i]` is
    d(output)/d(input i) as a matrix (output elements x input i's elements), None where it is
    unknown or bigger than LOCAL_JACOBIAN_MAX either way.
    """

    shape: tuple[int, ...] | None = None
    tensor: Nested | None = None
    grad_tensor: Nested | None = None
    local_jacobians: list[list[list[float]] | None] = field(default_factory=list)


@dataclass
class TensorGraphEdge(GraphEdge):
    """An edge of the lab's graph: `grad_tensor` is what backward sent along it (the VJP:
    grad_inputs[input_index] of the consumer's autograd node), `shape` its shape."""

    grad_tensor: Nested | None = None
    shape: tuple[int, ...] | None = None


@dataclass
class TensorGraph(GraphIndex):
    """The autograd graph of the lab's Q, with every node's value and the gradients of
    Q.backward(gradient=v) (v None for a scalar Q: backward starts from 1).

    `grads[name]` is each input's .grad after that backward (None: frozen, or not used);
    `node_count` counts the autograd nodes (ops and AccumulateGrad). A graph with more nodes
    than build_tensor_graph's `max_nodes` is `too_big`: then it is only counted, and `nodes`,
    `edges` and `backward_order` are empty.
    """

    nodes: list[TensorGraphNode]  # type: ignore[assignment]
    edges: list[TensorGraphEdge]  # type: ignore[assignment]
    root: str
    backward_order: list[str]
    output: Nested
    output_shape: tuple[int, ...]
    gradient: Nested | None
    grads: dict[str, Nested | None]
    frozen: tuple[str, ...] = ()
    grad_fn: str | None = None
    node_count: int = 0
    too_big: bool = False
    q: str = "Q"

    def explain(self, node_id: str) -> str:
        """In words: the gradient that reached the node, times its local Jacobian, is what it
        sends to each input (a vector-Jacobian product); a leaf adds up what it received."""
        n = self.node(node_id)
        q = self.q
        if n.kind == "constant":
            if node_id == self.root:
                return (f"{q} = {tensor_text(n.tensor)} needs no gradient: nothing it depends "
                        "on requires grad, so autograd recorded no graph.")
            if n.frozen or n.label.startswith("from "):
                return (f"{n.label} = {tensor_text(n.tensor)}: requires_grad=False, so autograd "
                        "records no AccumulateGrad for it and its .grad stays None.")
            return f"constant {n.label}: needs no gradient, so backward sends nothing to it."
        if n.kind == "leaf":
            parts = [tensor_text(e.grad_tensor) for e in self.outputs(node_id)
                     if isinstance(e, TensorGraphEdge)]
            how = " + ".join(parts) if len(parts) > 1 else "what its one consumer sent"
            return (f"leaf {n.label} {shape_text(n.shape)} = {tensor_text(n.tensor)}: "
                    f"AccumulateGrad stores {n.label}.grad = {how} = {tensor_text(n.grad_tensor)}.")
        if node_id == self.root:
            upstream = (f"1 ({q} itself: backward of a scalar starts from 1)"
                        if self.gradient is None
                        else f"v = {tensor_text(self.gradient)} (the gradient argument)")
        else:
            upstream = tensor_text(n.grad_tensor)
        lines = [f"{n.op} ({n.torch_name}) {shape_text(n.shape)} = {tensor_text(n.tensor)}",
                 f"upstream grad d(vᵀ{q})/d({n.op}) = {upstream}"]
        for e in sorted(self.inputs(node_id), key=lambda e: (e.input_index is None,
                                                             e.input_index or 0)):
            src = self.node(e.source)
            if e.input_index is None or not isinstance(e, TensorGraphEdge) \
                    or e.grad_tensor is None:
                lines.append(f"  -> {src.label}: constant, nothing sent")
                continue
            local = n.local_jacobians[e.input_index] if e.input_index < len(n.local_jacobians) \
                else None
            lines.append(f"  -> {src.label}: {tensor_text(n.grad_tensor)} · "
                         f"d({n.op})/d({src.label}) {matrix_text(local)} = "
                         f"{tensor_text(e.grad_tensor)}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A strict-JSON dict; tensors as nested lists, non-finite numbers as "nan"/"inf"."""
        def safe(v: Any) -> Any:
            if isinstance(v, float):
                return json_number(v)
            if isinstance(v, list):
                return [safe(x) for x in v]
            if isinstance(v, tuple):
                return [safe(x) for x in v]
            if isinstance(v, dict):
                return {k: safe(x) for k, x in v.items()}
            return v

        return safe({"nodes": [asdict(n) for n in self.nodes],
                     "edges": [asdict(e) for e in self.edges], "root": self.root,
                     "backward_order": list(self.backward_order), "output": self.output,
                     "output_shape": list(self.output_shape), "gradient": self.gradient,
                     "grads": dict(self.grads), "frozen": list(self.frozen),
                     "grad_fn": self.grad_fn, "node_count": self.node_count,
                     "too_big": self.too_big})


class _TensorRecorder(_ForwardRecorder):
    """_ForwardRecorder keeping each node's whole output (a detached copy), not only numbers."""

    def value_of(self, out: Tensor) -> Any:
        return out.detach().clone()


def build_tensor_graph(fn: Callable[[dict[str, Tensor]], Tensor], leaves: dict[str, Tensor],
                       v: Tensor | None = None, *, q: str = "Q",
                       max_nodes: int | None = None) -> TensorGraph:
    """Run Q = fn(leaves), then Q.backward(gradient=v), and return Q's autograd graph: every
    node's output (recorded under a TorchFunctionMode), what backward sent along each edge
    (hooks on torch's nodes: grad_inputs[i] goes to next_functions[i]; removed afterwards) and
    the order backward visited the nodes in.

    `leaves` are fresh tensors: an input with requires_grad=False is a constant (no
    AccumulateGrad). `v` must have Q's shape; it may be None only for a scalar Q. A graph with
    more than `max_nodes` autograd nodes is only counted (TensorGraph.too_big). Raises ValueError
    for a missing or misshapen v.
    """
    frozen = {n: t for n, t in leaves.items() if not t.requires_grad}
    recorder = _TensorRecorder({n: frozen[n] for n in sorted(frozen)})
    with torch.enable_grad(), recorder:
        out = fn(leaves)
    output, shape = _nested(out), tuple(out.shape)
    if v is not None:
        if tuple(v.shape) != shape:
            raise ValueError(f"v has shape {tuple(v.shape)} but {q} has shape {shape}: "
                             f"gradient=v must have {q}'s shape")
        v = v.detach().to(out.dtype)
    elif out.dim() > 0 and out.requires_grad:
        raise ValueError(f"{q} has shape {shape}, not a scalar: backward needs "
                         f"gradient=v of {q}'s shape")
    gradient = None if v is None else _nested(v)
    no_grads: dict[str, Nested | None] = dict.fromkeys(leaves)
    common = dict(output=output, output_shape=shape, gradient=gradient,
                  frozen=tuple(sorted(frozen)), q=q)
    if not out.requires_grad:  # everything frozen, or no input used
        root = TensorGraphNode("c0", "constant", q, value=_one(out), shape=shape,
                               tensor=output)
        return TensorGraph([root], [], "c0", [], grads=no_grads, **common)  # type: ignore[arg-type]

    root_fn = out.grad_fn or get_gradient_edge(out).node
    ids, order, edge_of = _walk(root_fn, leaves)
    grad_fn = type(root_fn).__name__
    if max_nodes is not None and len(order) > max_nodes:
        out.backward(gradient=v)  # the gradients are still torch's, for the caller to show
        grads = {n: None if t.grad is None else _nested(t.grad) for n, t in leaves.items()}
        return TensorGraph([], [], ids[root_fn], [], grads=grads, grad_fn=grad_fn,  # type: ignore[arg-type]
                           node_count=len(order), too_big=True, **common)

    nodes = [_make_tensor_node(f, ids[f], recorder) for f in order]
    edges = [TensorGraphEdge(ids[nxt], ids[f], input_index=slot) for f, slot, nxt in edge_of]
    constants, constant_edges = _constant_inputs(order, ids, recorder, tensors=True)

    flow = _backward_with_hooks(order, edge_of, lambda: out.backward(gradient=v), _copy)
    for i, node in enumerate(nodes):
        if i in flow.reached:
            reached = flow.reached[i]
            node.grad_tensor, node.grad = _nested(reached), _one(reached)
    for edge, t in zip(edges, flow.sent):
        if t is not None:
            edge.grad_tensor, edge.grad, edge.shape = _nested(t), _one(t), tuple(t.shape)
    grads = {n: None if t.grad is None else _nested(t.grad) for n, t in leaves.items()}
    return TensorGraph(nodes + constants, edges + constant_edges,  # type: ignore[arg-type]
                       ids[root_fn], [nodes[i].id for i in flow.visited], grads=grads,
                       grad_fn=grad_fn, node_count=len(order), **common)  # type: ignore[arg-type]


def _one(t: Tensor) -> float | None:
    """The number in a one-element tensor (None for any other)."""
    return float(t.detach()) if t.numel() == 1 else None


def _make_tensor_node(f: Node, node_id: str, recorder: _ForwardRecorder) -> TensorGraphNode:
    torch_name = type(f).__name__
    variable = getattr(f, "variable", None)
    if variable is not None:
        value = variable.detach()
        return TensorGraphNode(node_id, "leaf", node_id, torch_name=torch_name,
                               value=_one(value), shape=tuple(value.shape),
                               tensor=_nested(value))
    call = recorder.calls.get(f)
    out: Tensor | None = call[0] if call is not None else None
    if out is None:  # made inside another op: what autograd saved, if it saved the result
        saved = getattr(f, "_saved_result", None)
        out = saved.detach() if isinstance(saved, Tensor) else None
    name = op_name(torch_name)
    return TensorGraphNode(node_id, "op", name, op=name, torch_name=torch_name,
                           value=None if out is None else _one(out),
                           shape=None if out is None else tuple(out.shape),
                           tensor=None if out is None else _nested(out),
                           local_jacobians=_local_jacobians(f, out, recorder))


def _shape_of(f: Node | None, recorder: _ForwardRecorder) -> tuple[int, ...] | None:
    """The shape of the tensor autograd node `f` made (a leaf's, for AccumulateGrad)."""
    variable = getattr(f, "variable", None)
    if variable is not None:
        return tuple(variable.shape)
    call = recorder.calls.get(f) if f is not None else None
    return tuple(call[0].shape) if call is not None and isinstance(call[0], Tensor) else None


def _local_jacobians(f: Node, out: Tensor | None, recorder: _ForwardRecorder
                     ) -> list[list[list[float]] | None]:
    """d(output)/d(input i) of one op, row by row: the autograd node itself called on each
    basis vector of its output (a node is its own VJP), before backward frees what it saved.

    A node called directly returns broadcast gradients unreduced (the engine sums them to the
    input's shape afterwards, as for a scalar times a vector): they are summed here the same way.
    """
    unknown: list[list[list[float]] | None] = [None] * len(f.next_functions)
    if out is None or out.numel() > LOCAL_JACOBIAN_MAX:
        return unknown
    rows: list[tuple[Any, ...]] = []
    try:
        with torch.no_grad():
            for k in range(max(out.numel(), 1)):
                basis = torch.zeros(out.numel(), dtype=out.dtype)
                basis[k] = 1.0
                got = f(basis.reshape(out.shape))  # type: ignore[operator]  # Nodes are callable
                rows.append(got if isinstance(got, tuple) else (got,))
    except (RuntimeError, TypeError):  # a node that cannot be called on its own
        return unknown
    result = list(unknown)
    for i, (nxt, _) in enumerate(f.next_functions):
        shape = _shape_of(nxt, recorder)
        column = [r[i] if i < len(r) else None for r in rows]
        if shape is None or not all(isinstance(g, Tensor) for g in column):
            continue
        try:
            column = [g if tuple(g.shape) == shape else g.sum_to_size(shape)  # type: ignore
                      for g in column]
        except RuntimeError:  # not a broadcast: leave it unknown rather than guess
            continue
        if all(g.numel() <= LOCAL_JACOBIAN_MAX for g in column):  # type: ignore[union-attr]
            result[i] = [g.reshape(-1).tolist() for g in column]  # type: ignore[union-attr]
    return result


# --- model mode: the graph of loss_fn(model(X), y) ----------------------------------------------

MODEL_MAX_NODES = 300  # the model graph's default bound, as the panels draw at most 300 nodes
LOSS_MODULE = "loss"  # the group key of the loss module's ops


def module_text(module: nn.Module) -> str:
    """A module as it is written in the model text: Linear(2, 16), Tanh(), BCEWithLogitsLoss()."""
    if isinstance(module, nn.Linear):
        bias = "" if module.bias is not None else ", bias=False"
        return f"Linear({module.in_features}, {module.out_features}{bias})"
    return f"{type(module).__name__}({module.extra_repr()})"


@dataclass
class ModelGraphNode(GraphNode):
    """A node of a model's loss graph: tensors shown by shape and norm, not by their values.

    `value_norm` is the norm of the node's output (None: autograd kept nothing to read it from),
    `grad_norm` that of the gradient backward delivered to it; `module` the group key of the
    module whose forward made the op ("0", "2.1", LOSS_MODULE), None for leaves, inputs and ops
    made outside every module. `members` counts the ops a collapsed module node stands for (0
    for an ordinary node).
    """

    shape: tuple[int, ...] | None = None
    value_norm: float | None = None
    grad_norm: float | None = None
    module: str | None = None
    members: int = 0


@dataclass
class ModelGraphEdge(GraphEdge):
    """What backward sent along the edge (grad_inputs[input_index] of the consumer): its shape
    and norm (None for a constant input)."""

    shape: tuple[int, ...] | None = None
    grad_norm: float | None = None


@dataclass
class ModelGraph(GraphIndex):
    """The autograd graph of loss_fn(model(X_batch), y_batch) for one run at one step.

    `modules` are the group keys and their texts ("0", "0: Linear(2, 16)") in the order their
    forwards ran, the loss last; `collapsed` the groups drawn as one node each (collapse_modules).
    `node_count` counts autograd nodes (ops and AccumulateGrad); past build_model_graph's
    `max_nodes` the graph is `too_big`: only counted, with no nodes or edges.
    `grad_norms[name]` is the norm of each parameter's .grad after backward (None: frozen).
    """

    nodes: list[ModelGraphNode]  # type: ignore[assignment]
    edges: list[ModelGraphEdge]  # type: ignore[assignment]
    root: str
    backward_order: list[str]
    loss: float
    step: int
    modules: list[tuple[str, str]]
    grad_norms: dict[str, float | None]
    frozen: tuple[str, ...] = ()
    node_count: int = 0
    too_big: bool = False
    collapsed: tuple[str, ...] = ()

    def module_label(self, key: str | None) -> str:
        return dict(self.modules).get(key, "") if key is not None else ""

    def explain(self, node_id: str) -> str:
        """In words: which module made the node, what it holds, what backward sent from it."""
        n = self.node(node_id)
        head = f"{n.label} {shape_text(n.shape)}"
        if n.kind == "constant":
            if n.frozen:
                return (f"{head}, |value| = {_fmt(n.value_norm)}: frozen (requires_grad=False), "
                        "so autograd records no AccumulateGrad for it and its .grad stays None; "
                        "the optimizer leaves it where it is.")
            return f"{head}, |value| = {_fmt(n.value_norm)}: needs no gradient, nothing is sent."
        if n.kind == "leaf":
            parts = [_fmt(e.grad_norm) for e in self.outputs(node_id)
                     if isinstance(e, ModelGraphEdge)]
            how = (" (the sum of " + " and ".join(f"|{p}|" for p in parts) + ")"
                   if len(parts) > 1 else "")
            return (f"parameter {head}, |value| = {_fmt(n.value_norm)}: AccumulateGrad stores "
                    f"{n.label}.grad, of norm {_fmt(n.grad_norm)}{how}.")
        where = f" in {self.module_label(n.module)}" if n.module else ""
        if n.members:
            ops = "1 autograd op" if n.members == 1 else f"{n.members} autograd ops"
            what = f"{ops} collapsed into one box; its title expands it"
            lines = [f"{n.label}: {what}",
                     f"output {shape_text(n.shape)}, |value| = {_fmt(n.value_norm)}, "
                     f"|grad reaching it| = {_fmt(n.grad_norm)}"]
        else:
            upstream = "1 (the loss itself)" if node_id == self.root else _fmt(n.grad_norm)
            value = ("its value was not seen (made inside another torch call, as linear "
                     "makes weight.t())" if n.value_norm is None
                     else f"|value| = {_fmt(n.value_norm)}")
            lines = [f"{n.op} ({n.torch_name}){where}: output {shape_text(n.shape)}, {value}",
                     f"|upstream grad d(loss)/d(output)| = {upstream}"]
        for e in self.inputs(node_id):
            src = self.node(e.source)
            if not isinstance(e, ModelGraphEdge) or e.grad_norm is None:
                lines.append(f"  -> {src.label}: constant, nothing sent")
            else:
                lines.append(f"  -> {src.label}: sends {shape_text(e.shape)} of norm "
                             f"{_fmt(e.grad_norm)} (a vector-Jacobian product)")
        return "\n".join(lines)


@dataclass
class ModelGraphInputs:
    """What build_model_graph needs, snapshotted from a run on the thread that steps it, so a
    worker can build the graph while the run moves on: copies of the run's parameters (frozen
    ones with requires_grad=False) and buffers, a copy of the model (hooks go on the copy, never
    on the module the runs share), the step's batch and the loss."""

    model: nn.Module
    loss_fn: nn.Module
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    X: Tensor
    y: Tensor
    step: int
    dropout: Any  # a context manager: the step's Dropout masks (nullcontext without Dropout)


def model_graph_inputs(problem: Any, parameters: dict[str, Tensor], step: int,
                       model: nn.Module | None = None) -> ModelGraphInputs:
    """Snapshot a ModelProblem run at `step` (its batch) with its current `parameters` (the
    run's leaves; a leaf with requires_grad=False is frozen). `model`: a copy of problem.model
    made earlier (one per problem will do); by default one is made here."""
    params = {name: t.detach().clone().requires_grad_(t.requires_grad)
              for name, t in parameters.items()}
    buffers = {name: b.clone() for name, b in problem.buffers(parameters).items()}
    rows = problem.batch(step)
    X, y = (problem.X, problem.y) if rows is None else (problem.X[rows], problem.y[rows])
    model = copy.deepcopy(problem.model) if model is None else model
    return ModelGraphInputs(model, copy.deepcopy(problem.loss_fn), params, buffers, X, y, step,
                            problem.dropout_masks(step))


class _ModelRecorder(_ForwardRecorder):
    """Keeps (shape, norm) of each node's output, not the tensor."""

    def value_of(self, out: Tensor) -> Any:
        return tuple(out.shape), _norm(out)


def _norm(t: Tensor) -> float:
    return float(torch.linalg.vector_norm(t.detach().to(DTYPE)))


def build_model_graph(inputs: ModelGraphInputs, max_nodes: int | None = MODEL_MAX_NODES
                      ) -> ModelGraph:
    """loss = loss_fn(functional_call(model, params, (X,)), y), then loss.backward(), and the
    graph autograd recorded: every node's output shape and norm (a TorchFunctionMode), the norm
    of the gradient reaching it and of what it sent along each edge (hooks on torch's nodes,
    removed after backward), and the module whose forward made it.

    Modules are found with forward hooks on the model's copy: when a module's forward returns,
    every node reachable from its output that no module claimed yet was made inside it (inner
    modules return first, so an op belongs to the innermost module that ran it); the loss
    module claims what is left of the loss. Leaves are named as in named_parameters(); a frozen
    parameter is a constant with no AccumulateGrad. A graph with more than `max_nodes` autograd
    nodes is only counted (too_big).
    """
    named = [(name, m) for name, m in inputs.model.named_modules() if name]
    order_seen: list[str] = []  # module keys, in the order their forwards returned
    claimed: dict[Node, str] = {}

    def claim(key: str, out: Any) -> None:
        roots = [t.grad_fn for t in _tensors(out) if t.grad_fn is not None]
        todo = [f for f in roots if f not in claimed]
        while todo:
            f = todo.pop()
            if f in claimed or hasattr(f, "variable"):
                continue
            claimed[f] = key
            todo.extend(nxt for nxt, _ in f.next_functions if nxt is not None)
            if key not in order_seen:  # a module made of modules claims nothing of its own
                order_seen.append(key)

    made_by: dict[int, tuple[Tensor, str]] = {}  # id -> (a no-grad output, kept alive; module)

    def on_forward(key: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            claim(key, out)
            for t in _tensors(out):  # e.g. a frozen layer's output: a constant further on
                if not t.requires_grad and id(t) not in made_by:
                    made_by[id(t)] = (t, key)
        return hook

    handles = [m.register_forward_hook(on_forward(name)) for name, m in named]
    handles.append(inputs.loss_fn.register_forward_hook(on_forward(LOSS_MODULE)))
    frozen = {n: t for n, t in inputs.params.items() if not t.requires_grad}
    recorder = _ModelRecorder({n: frozen[n] for n in sorted(frozen)})
    try:
        state = {**inputs.params, **inputs.buffers}
        with torch.enable_grad(), inputs.dropout, recorder:
            loss = inputs.loss_fn(functional_call(inputs.model, state, (inputs.X,)), inputs.y)
    finally:
        for handle in handles:
            handle.remove()
    texts = dict(named)
    modules = [(key, f"{key}: {module_text(texts[key])}" if key != LOSS_MODULE
                else f"loss: {module_text(inputs.loss_fn)}") for key in order_seen]
    loss_value = float(loss.detach())
    common = dict(loss=loss_value, step=inputs.step, modules=modules,
                  frozen=tuple(sorted(frozen)))
    if not loss.requires_grad:  # every parameter frozen
        root = ModelGraphNode("c0", "constant", "loss", shape=tuple(loss.shape),
                              value_norm=abs(loss_value), value=loss_value)
        return ModelGraph([root], [], "c0", [], grad_norms=dict.fromkeys(inputs.params),
                          **common)  # type: ignore[arg-type]

    root_fn = loss.grad_fn or get_gradient_edge(loss).node
    ids, order, edge_of = _walk(root_fn, inputs.params)
    if max_nodes is not None and len(order) > max_nodes:
        loss.backward()
        return ModelGraph([], [], ids[root_fn], [], grad_norms=_grad_norms(inputs.params),
                          node_count=len(order), too_big=True, **common)  # type: ignore[arg-type]

    flow = _backward_with_hooks(order, edge_of, loss.backward, _copy)
    nodes = [_make_model_node(f, ids[f], recorder, claimed.get(f), flow.reached.get(i))
             for i, f in enumerate(order)]
    edges = [ModelGraphEdge(ids[nxt], ids[f], input_index=slot) for f, slot, nxt in edge_of]
    for edge, t in zip(edges, flow.sent):
        if t is not None:
            edge.grad_norm, edge.shape = _norm(t), tuple(t.shape)
    made = {i: (t, f"{key}: {module_text(texts[key])}") for i, (t, key) in made_by.items()
            if key in texts}
    constants, constant_edges = _model_constants(order, ids, recorder, inputs, made)
    return ModelGraph(nodes + constants, edges + constant_edges, ids[root_fn],  # type: ignore[arg-type]
                      [nodes[i].id for i in flow.visited],
                      grad_norms=_grad_norms(inputs.params),
                      node_count=len(order), **common)  # type: ignore[arg-type]


def _tensors(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, tuple | list):
        return [t for t in out if isinstance(t, Tensor)]
    return []


def _grad_norms(params: dict[str, Tensor]) -> dict[str, float | None]:
    return {name: None if t.grad is None else _norm(t.grad) for name, t in params.items()}


def _make_model_node(f: Node, node_id: str, recorder: _ForwardRecorder, module: str | None,
                     reached: Tensor | None) -> ModelGraphNode:
    torch_name = type(f).__name__
    grad_norm = None if reached is None else _norm(reached)
    variable = getattr(f, "variable", None)
    if variable is not None:
        return ModelGraphNode(node_id, "leaf", node_id, torch_name=torch_name,
                              shape=tuple(variable.shape), value_norm=_norm(variable),
                              grad_norm=grad_norm)
    call = recorder.calls.get(f)
    shape, norm = call[0] if call is not None else (None, None)
    if call is None:  # made inside another op (linear's t): what autograd saved, or the grad
        saved = getattr(f, "_saved_result", None)
        if isinstance(saved, Tensor):
            shape, norm = tuple(saved.shape), _norm(saved)
        elif reached is not None:
            shape = tuple(reached.shape)  # a gradient has its output's shape
    name = op_name(torch_name)
    return ModelGraphNode(node_id, "op", name, op=name, torch_name=torch_name, shape=shape,
                          value_norm=norm, grad_norm=grad_norm, module=module)


def _model_constants(order: list[Node], ids: dict[Node, str], recorder: _ForwardRecorder,
                     inputs: ModelGraphInputs, made: dict[int, tuple[Tensor, str]]
                     ) -> tuple[list[ModelGraphNode], list[ModelGraphEdge]]:
    """One constant node per tensor argument that needs no gradient: the batch's X and y, a
    frozen parameter (named, one node however often it is used), the output of a module that
    computed from frozen parameters only (`made`: id -> (tensor, module text)), and other
    no-grad tensors. Numbers (the 0.01 of LeakyReLU) are left out: a model's graph is about
    tensors."""
    nodes: dict[int, ModelGraphNode] = {}
    edges: list[ModelGraphEdge] = []
    for f in order:
        call = recorder.calls.get(f)
        if call is None:
            continue
        for a in call[1]:
            if not isinstance(a, Tensor) or a.requires_grad:
                continue
            key = id(a)
            if key not in nodes:
                name = recorder.frozen_name(a)
                frozen = name is not None and a is recorder.frozen.get(name)
                if frozen:
                    node_id, label = str(name), f"{name} (frozen)"
                elif name is not None:
                    entry = made.get(key)
                    source = entry[1] if entry is not None and entry[0] is a else None
                    node_id = f"c{len(nodes)}"
                    label = f"{source} (from frozen)" if source else f"from {name} (frozen)"
                else:
                    node_id = f"c{len(nodes)}"
                    label = "X" if a is inputs.X else "y" if a is inputs.y else "constant"
                nodes[key] = ModelGraphNode(node_id, "constant", label, frozen=frozen,
                                            shape=tuple(a.shape), value_norm=_norm(a))
            edges.append(ModelGraphEdge(nodes[key].id, ids[f]))
    return list(nodes.values()), edges


def module_groups(graph: ModelGraph) -> dict[str, list[str]]:
    """Group key -> the ids of its op nodes, in the graph's order (modules with no op left out)."""
    groups: dict[str, list[str]] = {key: [] for key, _ in graph.modules}
    for n in graph.nodes:
        if n.module is not None and n.module in groups:
            groups[n.module].append(n.id)
    return {key: ids for key, ids in groups.items() if ids}


def collapsed_id(key: str) -> str:
    """The id of the one node a collapsed module is drawn as."""
    return f"[{key}]"


def collapse_modules(graph: ModelGraph, collapsed: Iterable[str]) -> ModelGraph:
    """The same graph with each module in `collapsed` drawn as one node: its ops merged, the
    edges between them dropped, the edges in and out kept (with what backward sent along them).
    The merged node shows the module's output: the shape, value and gradient of its op nearest
    the loss. Leaves, X and y stay as they are. Backward's order visits a merged node once, when
    backward first reaches one of its ops."""
    groups = module_groups(graph)
    wanted = tuple(key for key, _ in graph.modules if key in set(collapsed) and key in groups)
    if not wanted or graph.too_big:
        return graph
    merged: dict[str, str] = {}  # op id -> its collapsed node's id
    new_nodes: list[ModelGraphNode] = []
    for n in graph.nodes:
        key = n.module
        if key in wanted and key is not None:
            cid = collapsed_id(key)
            merged[n.id] = cid
            if n.id == groups[key][0]:  # discovered first from the loss: the module's output
                new_nodes.append(ModelGraphNode(
                    cid, "op", graph.module_label(key), op=graph.module_label(key),
                    torch_name="module", shape=n.shape, value_norm=n.value_norm,
                    grad_norm=n.grad_norm, module=key, members=len(groups[key])))
        else:
            new_nodes.append(n)
    new_edges: list[ModelGraphEdge] = []
    for e in graph.edges:
        source, target = merged.get(e.source, e.source), merged.get(e.target, e.target)
        if source == target:
            continue
        new_edges.append(ModelGraphEdge(source, target, e.grad, e.input_index,
                                        getattr(e, "shape", None), getattr(e, "grad_norm", None)))
    order = list(dict.fromkeys(merged.get(v, v) for v in graph.backward_order))
    return ModelGraph(new_nodes, new_edges, merged.get(graph.root, graph.root), order,
                      graph.loss, graph.step, list(graph.modules), dict(graph.grad_norms),
                      graph.frozen, graph.node_count, graph.too_big, wanted)


# --- layout -------------------------------------------------------------------------------------

Point = tuple[float, float]
DUMMY_WIDTH = 0.25  # a bend point of a long edge needs less room than a node (width 1)


@dataclass
class GraphLayout:
    """Node centres in layout units (1 = a node's width; y = layer, the loss at 0) and, for each
    edge of graph.edges that spans several layers, its bend points from source to target."""

    positions: dict[str, Point]
    bends: list[list[Point]]


def structure_key(graph: AutogradGraph) -> tuple[Any, ...]:
    """Equal for graphs with the same nodes and edges (values aside): same key -> same layout."""
    return (tuple((n.id, n.kind, n.label) for n in graph.nodes),
            tuple((e.source, e.target, e.input_index) for e in graph.edges))


def layered_layout(graph: AutogradGraph) -> dict[str, Point]:
    """Node centres of a layered (Sugiyama-style) drawing, loss on top, leaves at the bottom."""
    return compute_layout(graph).positions


def compute_layout(graph: AutogradGraph, sweeps: int = 4) -> GraphLayout:
    """Layered layout: longest-path layers, bend points for long edges, barycenter ordering
    (the order with the fewest crossings wins), then x positions pulled towards neighbours.

    The long edges out of one node share their bend points, one per layer, as a trunk that each
    edge leaves at its consumer's layer: x used at every depth of a deep formula costs one bend
    per layer, not one per layer and per use (which made the layout grow with the square of the
    formula's length).

    Pure Python and deterministic: it only looks at the structure, in the graph's own order.
    """
    layer = _longest_path_layers(graph)
    if isinstance(graph, ModelGraph):
        _band_modules(graph, layer)
    # Long edges become chains through one bend point per layer they cross.
    up: dict[str, list[str]] = {v: [] for v in layer}  # neighbours one layer up (consumers)
    down: dict[str, list[str]] = {v: [] for v in layer}  # one layer down (inputs)
    chains: list[list[str]] = []
    linked: set[tuple[str, str]] = set()  # links through a shared bend point, made once
    for e in graph.edges:
        base = layer[e.target]
        chain = [e.target] + [f"~{e.source}@{base + j}"
                              for j in range(1, layer[e.source] - base)]
        chain.append(e.source)
        for j, v in enumerate(chain[1:-1], 1):
            if v not in layer:
                layer[v] = base + j
                up[v], down[v] = [], []
        for upper, lower in itertools.pairwise(chain):
            if upper.startswith("~") or lower.startswith("~"):
                if (upper, lower) in linked:
                    continue
                linked.add((upper, lower))
            down[upper].append(lower)
            up[lower].append(upper)
        chains.append(chain)

    layers = _initial_order(graph.root, layer, down)
    best, fewest = [list(r) for r in layers], _crossings(layers, down)
    for _ in range(sweeps):
        for rows, neighbours in ((range(1, len(layers)), up),
                                 (range(len(layers) - 2, -1, -1), down)):
            for i in rows:
                near = layers[i - 1] if neighbours is up else layers[i + 1]
                _sort_by_barycenter(layers[i], near, neighbours)
            crossings = _crossings(layers, down)
            if crossings < fewest:
                best, fewest = [list(r) for r in layers], crossings

    x = _place(best, up, down, sweeps)
    left = min(x.values())
    positions = {n.id: (x[n.id] - left, float(layer[n.id])) for n in graph.nodes}
    bends = [[(x[v] - left, float(layer[v])) for v in reversed(chain[1:-1])] for chain in chains]
    return GraphLayout(positions, bends)


def _longest_path_layers(graph: AutogradGraph) -> dict[str, int]:
    """Layer of a node = the longest path from it to the loss (the loss is layer 0)."""
    inputs: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    waiting = dict.fromkeys(inputs, 0)  # out-edges not yet placed
    for e in graph.edges:
        inputs[e.target].append(e.source)
        waiting[e.source] += 1
    layer = dict.fromkeys(inputs, 0)
    ready = [graph.root]
    while ready:
        v = ready.pop()
        for u in inputs[v]:
            layer[u] = max(layer[u], layer[v] + 1)
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    return layer


def _band_modules(graph: ModelGraph, layer: dict[str, int]) -> None:
    """Give each module of a model's graph layers of its own, in place: every layer of a module
    lies below (further from the loss than) every layer of the modules that ran after it, so
    their frames are blocks one above the other and never overlap. Inputs stay below their
    consumers (longest-path); ops of no module are only pushed by their consumers."""
    order = [key for key, _ in graph.modules]
    members = {key: [n.id for n in graph.nodes if n.module == key] for key in order}
    for _ in range(4 * len(graph.nodes) + 4):  # a cap, in case modules feed back (tied weights)
        changed = False
        floor = 0
        for key in reversed(order):  # the loss first
            ids = members[key]
            if not ids:
                continue
            for v in ids:
                if layer[v] < floor:
                    layer[v], changed = floor, True
            floor = max(layer[v] for v in ids) + 1
        for e in graph.edges:
            if layer[e.source] < layer[e.target] + 1:
                layer[e.source], changed = layer[e.target] + 1, True
        if not changed:
            return


def _initial_order(root: str, layer: dict[str, int], down: dict[str, list[str]]
                   ) -> list[list[str]]:
    """Each layer in depth-first discovery order from the loss: a tree comes out uncrossed."""
    seen: dict[str, int] = {}
    stack = [root]
    while stack:
        v = stack.pop()
        if v not in seen:
            seen[v] = len(seen)
            stack.extend(reversed(down[v]))
    for v in layer:  # unreachable (should not happen): after the rest
        seen.setdefault(v, len(seen))
    layers: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for v in sorted(layer, key=seen.__getitem__):
        layers[layer[v]].append(v)
    return layers


def _sort_by_barycenter(row: list[str], near: list[str], neighbours: dict[str, list[str]]) -> None:
    pos = {v: i for i, v in enumerate(near)}
    own = {v: i for i, v in enumerate(row)}

    def key(v: str) -> tuple[float, int]:
        ps = [pos[u] for u in neighbours[v] if u in pos]
        return (sum(ps) / len(ps) if ps else own[v] * len(near) / max(len(row), 1), own[v])

    row.sort(key=key)


def _crossings(layers: list[list[str]], down: dict[str, list[str]]) -> int:
    total = 0
    for upper, lower in itertools.pairwise(layers):
        pos = {v: i for i, v in enumerate(lower)}
        segments = sorted((i, pos[w]) for i, v in enumerate(upper) for w in down[v] if w in pos)
        seen: list[int] = []  # lower ends of the segments that start further left
        for _, b in segments:
            total += len(seen) - bisect.bisect_right(seen, b)
            bisect.insort(seen, b)
    return total


def _width(v: str) -> float:
    return DUMMY_WIDTH if v.startswith("~") else 1.0


def _place(layers: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]],
           rounds: int) -> dict[str, float]:
    """x of every vertex: alternately pulled to the mean x of the layer above and below, then
    spread so that neighbours in a layer keep their order and never overlap."""
    x: dict[str, float] = {}
    for row in layers:
        x.update(zip(row, _spread(row, [0.0] * len(row))))
    for _ in range(rounds):
        for rows, neighbours in ((layers[1:], up), (layers[-2::-1], down)):
            for row in rows:
                want = [sum(x[u] for u in neighbours[v]) / len(neighbours[v])
                        if neighbours[v] else x[v] for v in row]
                x.update(zip(row, _spread(row, want)))
    return x


def _spread(row: list[str], want: list[float]) -> list[float]:
    """Positions as close to `want` as a simple two-sided packing allows, in order, no overlap:
    the mean of packing from the left and packing from the right."""
    gaps = [(_width(a) + _width(b)) / 2 for a, b in itertools.pairwise(row)]
    left = list(want)
    for i, g in enumerate(gaps):
        left[i + 1] = max(left[i + 1], left[i] + g)
    right = list(want)
    for i in range(len(gaps) - 1, -1, -1):
        right[i] = min(right[i], right[i + 1] - gaps[i])
    return [(a + b) / 2 for a, b in zip(left, right)]
