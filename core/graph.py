"""The autograd graph of the loss at one point, read from torch's own autograd objects.

`build_graph(fn, x, y)` evaluates the loss once and walks `loss.grad_fn -> next_functions`: the
DAG autograd really recorded, one node per autograd Node. Autograd keeps no forward values on its
nodes, so a TorchFunctionMode watches the forward pass and notes, for every result that has a
grad_fn, its value and the call's arguments (numbers and tensors without grad become constant
nodes). Then one real backward pass runs with hooks on every node, which capture the gradient that
reached each node, what it sent along each edge (the vector-Jacobian products) and the order in
which backward visited the nodes.

Edges point along the data flow: input -> the op that consumes it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.autograd.graph import Node, get_gradient_edge
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


@dataclass
class AutogradGraph:
    """The loss's autograd graph at one point, with forward values and backward gradients."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    root: str
    loss: float
    gradient: tuple[float | None, float | None]  # (d loss/dx, d loss/dy); None when frozen
    backward_order: list[str]
    point: tuple[float, float] = (0.0, 0.0)

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
        return [e for e in self.edges if e.target == node_id]

    def outputs(self, node_id: str) -> list[GraphEdge]:
        """The edges out of `node_id` (the ops that consume it)."""
        return [e for e in self.edges if e.source == node_id]

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
        """A JSON-safe dict: {"nodes": [...], "edges": [...], ...}; non-finite numbers -> None."""
        return {
            "nodes": [_json_safe(asdict(n)) for n in self.nodes],
            "edges": [_json_safe(asdict(e)) for e in self.edges],
            "root": self.root,
            "loss": _finite(self.loss),
            "gradient": [_finite(g) for g in self.gradient],
            "backward_order": list(self.backward_order),
            "point": list(self.point),
        }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, float):
            v = _finite(v)
        elif isinstance(v, list):
            v = [_finite(a) if isinstance(a, float) else a for a in v]
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
        self.calls: dict[Node, tuple[float, tuple[Any, ...]]] = {}
        self.frozen = frozen
        self.from_frozen: dict[int, tuple[Tensor, str]] = {}  # id -> (tensor kept alive, name)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if not isinstance(out, Tensor):
            return out
        if out.grad_fn is not None and out.grad_fn not in self.calls and out.numel() == 1:
            self.calls[out.grad_fn] = (float(out.detach()), tuple(args))
        elif out.grad_fn is None and self.frozen:
            names = {self.frozen_name(a) for a in args} - {None}
            if names:
                self.from_frozen[id(out)] = (out, " and ".join(sorted(names)))  # type: ignore
        return out

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
                             (float(x), float(y)))

    # Walk the real DAG from the loss, breadth first: ids follow discovery order, so the same
    # formula always gets the same ids.
    root_fn = loss.grad_fn or get_gradient_edge(loss).node
    ids: dict[Node, str] = {}
    order: list[Node] = []
    edges: list[GraphEdge] = []
    edge_of: list[tuple[Node, int]] = []  # for each edge: (consumer autograd node, slot)

    def visit(fn_node: Node) -> str:
        if fn_node not in ids:
            variable = getattr(fn_node, "variable", None)
            ids[fn_node] = _leaf_name(variable, leaves) if variable is not None \
                else f"n{len(order)}"
            order.append(fn_node)
        return ids[fn_node]

    visit(root_fn)
    for fn_node in order:  # grows while we walk
        for slot, (nxt, _) in enumerate(fn_node.next_functions):
            if nxt is not None:
                edges.append(GraphEdge(visit(nxt), ids[fn_node], input_index=slot))
                edge_of.append((fn_node, slot))

    nodes = [_make_node(f, ids[f], recorder) for f in order]
    constants, constant_edges = _constant_inputs(order, ids, recorder)

    # Backward, with hooks that capture what really flowed.
    reached: dict[Node, float] = {}
    sent: dict[Node, tuple[Tensor | None, ...]] = {}
    visited: list[str] = []

    def on_op(f: Node) -> Callable[..., None]:
        def hook(grad_inputs: tuple[Tensor | None, ...], grad_outputs: tuple[Tensor, ...]) -> None:
            visited.append(ids[f])
            reached[f] = float(grad_outputs[0])
            sent[f] = grad_inputs
        return hook

    def on_leaf(f: Node) -> Callable[..., None]:
        def hook(grad_outputs: tuple[Tensor, ...]) -> None:
            visited.append(ids[f])
            reached[f] = float(grad_outputs[0])
        return hook

    for f in order:
        if hasattr(f, "variable"):
            f.register_prehook(on_leaf(f))
        else:
            f.register_hook(on_op(f))
    loss.backward()

    for f, node in zip(order, nodes):
        node.grad = reached.get(f)
    for edge, (f, slot) in zip(edges, edge_of):
        g = sent.get(f, ())
        edge.grad = float(g[slot]) if slot < len(g) and g[slot] is not None else None
    return AutogradGraph(nodes + constants, edges + constant_edges, ids[root_fn], loss_value, _leaf_grads(leaves, frozen), visited,
                         (float(x), float(y)))


def _leaf_name(variable: Tensor, leaves: dict[str, Tensor]) -> str:
    return next(name for name, t in leaves.items() if t is variable)


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
            out = f(torch.ones((), dtype=DTYPE))
    except RuntimeError:  # a node that cannot be called on its own: leave the entries unknown
        return [None] * len(f.next_functions)
    out = out if isinstance(out, tuple) else (out,)
    return [float(g) if isinstance(g, Tensor) and g.numel() == 1 else None for g in out]


def _constant_inputs(order: list[Node], ids: dict[Node, str], recorder: _ForwardRecorder
                     ) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Constant nodes for each op's arguments that need no gradient: numbers, no-grad tensors
    (e.g. cos(pi/6) already computed) and frozen leaves (one shared node per frozen leaf).

    When the call has as many arguments as the node has next_functions, argument i is slot i
    (x*2.0: MulBackward0 has (AccumulateGrad, None)); otherwise the constant has no slot
    (x**2: PowBackward0 has a single next_function, for x).
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
            if isinstance(a, Tensor) and (a.requires_grad or a.numel() != 1):
                continue
            value = float(a.detach()) if isinstance(a, Tensor) else float(a)
            name = recorder.frozen_name(a)
            if name is not None and a is recorder.frozen[name]:
                node_id = name
                node = GraphNode(name, "constant", f"{name} (frozen)", value=value, frozen=True)
            else:
                node_id = f"c{len(nodes)}"
                label = f"from {name} (frozen)" if name else f"{value:.6g}"
                node = GraphNode(node_id, "constant", label, value=value)
            nodes.setdefault(node_id, node)
            slot = pos if aligned and slots[pos][0] is None else None
            edges.append(GraphEdge(node_id, ids[f], None, slot))
    return list(nodes.values()), edges
