"""core.graph: the autograd graph read from torch's own objects, checked against torch itself."""

from __future__ import annotations

import gc
import itertools
import json
import math
from collections import Counter

import pytest
import torch
from torch.overrides import TorchFunctionMode

from core.formula import compile_formula
from core.graph import (AutogradGraph, build_graph, compute_layout, graph_size, layered_layout,
                        op_name, structure_key)
from core.surfaces import BUILTIN_SURFACES, get_surface

CAMEL = get_surface("six_hump_camel")


def leaf_tensors(x: float, y: float, frozen: tuple[str, ...] = ()) -> tuple[torch.Tensor, ...]:
    return (torch.tensor(x, dtype=torch.float64, requires_grad="x" not in frozen),
            torch.tensor(y, dtype=torch.float64, requires_grad="y" not in frozen))


def ops(graph: AutogradGraph) -> Counter[str]:
    return Counter(n.op for n in graph.nodes if n.kind == "op")


def edge_set(graph: AutogradGraph) -> set[tuple[str, str]]:
    """Edges as (source label, target label): ids aside, what feeds what."""
    return {(graph.node(e.source).label, graph.node(e.target).label) for e in graph.edges}


# --- structure ---------------------------------------------------------------------------------


def test_sum_times_x_has_exactly_the_nodes_and_edges_autograd_records() -> None:
    g = build_graph(compile_formula("(x + y) * x"), 1.5, -0.5)
    assert sorted((n.kind, n.label) for n in g.nodes) == [
        ("leaf", "x"), ("leaf", "y"), ("op", "add"), ("op", "mul")]
    assert edge_set(g) == {("add", "mul"), ("x", "mul"), ("x", "add"), ("y", "add")}
    assert len(g.edges) == 4
    assert g.node(g.root).op == "mul"
    x = next(n for n in g.nodes if n.label == "x")
    assert {g.node(e.target).op for e in g.outputs(x.id)} == {"add", "mul"}
    assert x.torch_name == "AccumulateGrad" and g.node(g.root).torch_name == "MulBackward0"
    add = next(n for n in g.nodes if n.op == "add")
    assert add.value == pytest.approx(1.0) and g.node(g.root).value == pytest.approx(1.5)
    # d/dx (x + y) x = 2x + y, d/dy = x
    assert g.gradient == pytest.approx((2 * 1.5 - 0.5, 1.5))
    assert g.loss == pytest.approx(1.5)


def test_six_hump_camel_has_the_ops_its_formula_text_implies() -> None:
    # (4 - 2.1*x**2 + x**4/3)*x**2 + x*y + (-4 + 4*y**2)*y**2
    # pow: x**2, x**4, x**2, y**2, y**2;  mul: 2.1*_, (..)*x**2, x*y, 4*_, (..)*y**2
    # add: three '+' between terms and -4 + _ ;  4 - _ is Tensor.__rsub__;  x**4/3 is a div
    g = build_graph(CAMEL, -1.5, 1.0)
    assert ops(g) == Counter(pow=5, mul=5, add=4, rsub=1, div=1)
    assert {n.label for n in g.nodes if n.kind == "leaf"} == {"x", "y"}
    numbers = sorted(n.value for n in g.nodes if n.kind == "constant")
    assert numbers == pytest.approx(sorted([4, 2.1, 2, 4, 3, 2, -4, 4, 2, 2]))
    assert len({n.id for n in g.nodes}) == len(g.nodes)
    # Every edge joins existing nodes; only the loss has no consumer.
    ids = {n.id for n in g.nodes}
    assert all(e.source in ids and e.target in ids for e in g.edges)
    assert {n.id for n in g.nodes if not g.outputs(n.id)} == {g.root}


def test_a_node_reached_twice_is_one_node_with_two_out_edges() -> None:
    g = build_graph(compile_formula("x * x"), 3.0, 0.0)
    assert [n.label for n in g.nodes] == ["mul", "x"]
    assert sorted(e.input_index for e in g.outputs("x")) == [0, 1]
    assert g.gradient[0] == pytest.approx(6.0)


@pytest.mark.parametrize("text, op, constant", [
    ("2.0 - x", "rsub", 2.0), ("x * 2.5", "mul", 2.5), ("x ** 3", "pow", 3.0),
    ("x / 4", "div", 4.0), ("7 + y", "add", 7.0)])
def test_numbers_become_constant_inputs_of_their_op(text: str, op: str, constant: float) -> None:
    g = build_graph(compile_formula(text), 0.5, 0.25)
    (c,) = [n for n in g.nodes if n.kind == "constant"]
    assert c.value == constant and c.grad is None
    (e,) = g.outputs(c.id)
    assert g.node(e.target).op == op and e.grad is None


def test_constant_subexpressions_show_as_one_constant_with_their_value() -> None:
    g = build_graph(compile_formula("cos(pi/6) * x"), 1.0, 0.0)
    assert ops(g) == Counter(mul=1)
    (c,) = [n for n in g.nodes if n.kind == "constant"]
    assert c.value == pytest.approx(math.sqrt(3) / 2)


def test_op_names_are_readable() -> None:
    assert op_name("MulBackward0") == "mul"
    assert op_name("RsubBackward1") == "rsub"
    assert op_name("LogSigmoidBackward0") == "log_sigmoid"
    g = build_graph(compile_formula("sin(x) + exp(y) + tanh(x*y) + sqrt(abs(x))"), 0.3, 0.7)
    assert set(ops(g)) == {"sin", "exp", "tanh", "sqrt", "abs", "add", "mul"}


# --- gradients, checked against torch ----------------------------------------------------------


class _KeepOutputs(TorchFunctionMode):
    """The test's own record of the forward pass: each tensor that got a grad_fn, and its call."""

    def __init__(self) -> None:
        super().__init__()
        self.by_fn: dict[object, torch.Tensor] = {}
        self.calls: dict[int, tuple] = {}  # id(output) -> (func, args, kwargs)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.grad_fn is not None:
            self.by_fn.setdefault(out.grad_fn, out)
            self.calls.setdefault(id(out), (func, args, kwargs or {}))
        return out

    def partial(self, out: torch.Tensor, wrt: torch.Tensor, upstream: torch.Tensor) -> float:
        """upstream x d(out)/d(wrt) through this one call only: redo the call with `wrt` swapped
        for a fresh leaf, so paths that reach `out` some other way do not count."""
        func, args, kwargs = self.calls[id(out)]
        leaf = wrt.detach().clone().requires_grad_(True)
        redone = func(*[leaf if a is wrt else a for a in args], **kwargs)
        (vjp,) = torch.autograd.grad(redone, leaf, grad_outputs=upstream)
        return float(vjp)


def reference_tensors(fn, x: float, y: float, g: AutogradGraph):  # type: ignore[no-untyped-def]
    """Evaluate fn again and pair each node of `g` with the tensor it stands for, by following
    the real next_functions slot by slot alongside g's edges (so the structure is checked too)."""
    xt, yt = leaf_tensors(x, y)
    with _KeepOutputs() as keep:
        loss = fn(xt, yt)
    tensors = {g.root: loss}
    stack = [(g.root, loss.grad_fn)]
    while stack:
        node_id, fn_node = stack.pop()
        slots = {e.input_index: e.source for e in g.inputs(node_id)
                 if g.node(e.source).kind != "constant"}
        assert set(slots) == {i for i, (n, _) in enumerate(fn_node.next_functions) if n}
        for i, source in slots.items():
            nxt = fn_node.next_functions[i][0]
            if hasattr(nxt, "variable"):
                assert source == ("x" if nxt.variable is xt else "y")
                tensors[source] = nxt.variable
            else:
                assert g.node(source).torch_name == type(nxt).__name__
                tensors[source] = keep.by_fn[nxt]
                stack.append((source, nxt))
    return loss, tensors, keep


@pytest.mark.parametrize("text", [
    CAMEL.text, "(x + y) * x", "x * x + sin(x * y)", get_surface("rosenbrock").text,
    get_surface("ackley").text, get_surface("beale").text])
def test_node_and_edge_gradients_are_what_autograd_computes(text: str) -> None:
    fn, (x, y) = compile_formula(text), (0.37, -1.21)
    g = build_graph(fn, x, y)
    loss, tensors, keep = reference_tensors(fn, x, y, g)
    names = list(tensors)
    d_loss = dict(zip(names, torch.autograd.grad(loss, [tensors[n] for n in names],
                                                 retain_graph=True)))
    assert g.node(g.root).grad == 1.0
    for name in names:
        node = g.node(name)
        assert node.grad == pytest.approx(float(d_loss[name]), rel=1e-12, abs=1e-12), node
        if node.kind == "op":
            assert node.value == pytest.approx(float(tensors[name].detach()), rel=1e-12)
    # What flowed along source -> target: the target's upstream grad pulled back, by autograd,
    # through the target's own call only (x*x sends along two edges: compare their sum).
    pairs: dict[tuple[str, str], float] = {}
    for e in g.edges:
        if e.grad is not None:
            pairs[e.source, e.target] = pairs.get((e.source, e.target), 0.0) + e.grad
    assert len(pairs) >= 3
    for (source, target), sent in pairs.items():
        vjp = keep.partial(tensors[target], tensors[source], d_loss[target])
        assert sent == pytest.approx(vjp, rel=1e-12, abs=1e-12)


def test_leaf_grads_equal_a_plain_backward() -> None:
    for surface in BUILTIN_SURFACES:
        x, y = surface.start
        g = build_graph(surface, x, y)
        xt, yt = leaf_tensors(x, y)
        surface(xt, yt).backward()
        assert g.node("x").grad == pytest.approx(float(xt.grad), rel=1e-12, abs=1e-12)
        assert g.node("y").grad == pytest.approx(float(yt.grad), rel=1e-12, abs=1e-12)
        assert g.gradient == pytest.approx((float(xt.grad), float(yt.grad)), rel=1e-12)


def test_upstream_grad_times_local_derivative_is_what_each_edge_carries() -> None:
    g = build_graph(CAMEL, 0.8, -0.3)
    checked = 0
    for e in g.edges:
        if e.grad is None:  # a constant input
            continue
        target = g.node(e.target)
        assert e.grad == pytest.approx(target.grad * target.local_jacobian[e.input_index])
        checked += 1
    assert checked == sum(1 for e in g.edges if e.grad is not None) > 10


def test_local_jacobian_is_the_derivative_of_the_op() -> None:
    x, y = 0.7, -0.4
    g = build_graph(compile_formula("sin(x) * exp(y)"), x, y)
    by_op = {n.op: n for n in g.nodes}
    assert by_op["sin"].local_jacobian == pytest.approx([math.cos(x)])
    assert by_op["exp"].local_jacobian == pytest.approx([math.exp(y)])
    mul = by_op["mul"]  # d(a*b)/da = b, d/db = a, in next_functions order
    inputs = {e.input_index: g.node(e.source).op for e in g.inputs(mul.id)}
    other = {"sin": math.exp(y), "exp": math.sin(x)}
    assert mul.local_jacobian == pytest.approx([other[inputs[0]], other[inputs[1]]])


def test_explain_spells_out_the_chain_rule() -> None:
    g = build_graph(compile_formula("(x + y) * x"), 2.0, 1.0)
    text = g.explain(g.root)
    assert "MulBackward0" in text and "upstream" in text
    add = next(n for n in g.nodes if n.op == "add")
    assert f"{add.grad:.4g}" in g.explain(add.id) and "x" in g.explain("x")


def test_backward_order_visits_each_node_after_everything_that_sends_to_it() -> None:
    g = build_graph(CAMEL, 0.5, 0.5)
    order = g.backward_order
    assert order[0] == g.root
    assert sorted(order) == sorted(n.id for n in g.nodes if n.kind != "constant")
    position = {node_id: i for i, node_id in enumerate(order)}
    for e in g.edges:
        if e.grad is not None:
            assert position[e.target] < position[e.source]


# --- freezing, moving, edge cases --------------------------------------------------------------


def test_a_frozen_leaf_is_a_constant_without_gradient() -> None:
    x, y = 0.9, -0.6
    g = build_graph(CAMEL, x, y, frozen=["x"])
    assert all(not (n.kind == "leaf" and n.label == "x") for n in g.nodes)
    assert [n.label for n in g.nodes if n.kind == "leaf"] == ["y"]
    frozen = g.node("x")
    assert frozen.kind == "constant" and frozen.frozen and "frozen" in frozen.label
    assert frozen.value == x and frozen.grad is None and frozen.torch_name is None
    assert g.outputs("x") and all(e.grad is None for e in g.outputs("x"))  # x*y uses it
    assert "x" not in g.backward_order
    xt, yt = leaf_tensors(x, y, frozen=("x",))
    CAMEL(xt, yt).backward()
    assert xt.grad is None
    assert g.gradient[0] is None and g.gradient[1] == pytest.approx(float(yt.grad))
    # The terms in x alone are computed without autograd: they show as constants only.
    assert ops(g)["pow"] == 2  # the two y**2


def test_everything_frozen_is_a_single_constant() -> None:
    g = build_graph(CAMEL, 0.1, 0.2, frozen=("x", "y"))
    assert [n.kind for n in g.nodes] == ["constant"] and g.edges == []
    assert g.gradient == (None, None) and g.loss == pytest.approx(CAMEL.value(0.1, 0.2))
    with pytest.raises(ValueError):
        build_graph(CAMEL, 0, 0, frozen=["z"])


def test_a_loss_that_is_a_leaf_and_an_unused_variable() -> None:
    g = build_graph(compile_formula("x"), 2.0, 3.0)
    assert [(n.kind, n.grad) for n in g.nodes] == [("leaf", 1.0)]
    assert g.gradient == (1.0, 0.0) and g.backward_order == ["x"]


def test_values_follow_the_point_and_the_structure_stays() -> None:
    a, b = build_graph(CAMEL, -1.5, 1.0), build_graph(CAMEL, 0.3, 0.2)
    assert structure_key(a) == structure_key(b)
    assert a.loss == pytest.approx(CAMEL.value(-1.5, 1.0))
    assert b.loss == pytest.approx(CAMEL.value(0.3, 0.2))
    assert a.node("x").value == -1.5 and b.node("x").value == 0.3
    changed = [n.id for n in a.nodes if n.kind == "op" and n.value != b.node(n.id).value]
    assert len(changed) == sum(1 for n in a.nodes if n.kind == "op")
    assert structure_key(build_graph(CAMEL, 0.3, 0.2, frozen=["y"])) != structure_key(b)


def test_to_json_has_the_agreed_shape_and_is_strict_json() -> None:
    g = build_graph(compile_formula("log(x) + y"), 0.0, 1.0)  # log(0) = -inf
    data = json.loads(json.dumps(g.to_json(), allow_nan=False))
    assert {"nodes", "edges"} <= set(data)
    for n in data["nodes"]:
        assert {"id", "kind", "op", "torch_name", "value", "grad"} <= set(n)
        assert n["kind"] in {"op", "leaf", "constant"}
    assert all({"source", "target", "grad"} <= set(e) for e in data["edges"])
    assert data["loss"] == "-inf"  # JSON has no -inf: a string, never a missing number
    log = next(n for n in data["nodes"] if n["op"] == "log")
    assert log["value"] == "-inf"
    assert data["frozen"] == []


def test_to_json_tells_a_frozen_gradient_from_a_non_finite_one() -> None:
    """sqrt(x - x) has the gradient inf * 0 = nan in x; y is frozen: before, both were null."""
    fn = compile_formula("sqrt(x - x) + x * y")
    g = build_graph(fn, 1.0, 2.0, frozen=["y"])
    assert math.isnan(g.gradient[0]) and g.gradient[1] is None  # what torch says
    data = json.loads(json.dumps(g.to_json(), allow_nan=False))
    assert data["gradient"] == ["nan", None]
    assert data["frozen"] == ["y"]
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["x"]["kind"] == "leaf" and nodes["x"]["grad"] == "nan"
    assert nodes["x"]["frozen"] is False
    assert nodes["y"]["frozen"] is True and nodes["y"]["grad"] is None
    sqrt = next(n for n in data["nodes"] if n["op"] == "sqrt")
    assert sqrt["local_jacobian"] == ["inf"]  # d sqrt(u)/du at u = 0
    # x - x received inf and sent inf and -inf to x, which add up to nan; y's edge carries nothing
    sub = next(n["id"] for n in data["nodes"] if n["op"] == "sub")
    assert sorted(e["grad"] for e in data["edges"] if e["target"] == sub) == ["-inf", "inf"]
    assert all(e["grad"] is None for e in data["edges"] if e["source"] == "y")
    # the finite ones stay numbers
    assert nodes["y"]["value"] == 2.0 and data["point"] == [1.0, 2.0]


# --- layout --------------------------------------------------------------------------------------


def big_formula(terms: int = 24) -> str:
    return " + ".join(f"{k / 10:.1f}*sin({1 + k / 10:.1f}*x - y**2)" if k % 2 else
                      f"{k / 10:.1f}*exp(-(x - {k / 10:.1f})**2*y)" for k in range(terms))


@pytest.mark.parametrize("fn", [CAMEL, get_surface("goldstein_price"),
                                compile_formula(big_formula())])
def test_layout_is_layered_deterministic_and_without_overlaps(fn) -> None:  # type: ignore[no-untyped-def]
    g = build_graph(fn, 0.3, -0.2)
    pos = layered_layout(g)
    assert set(pos) == {n.id for n in g.nodes}
    assert pos[g.root][1] == 0.0
    for e in g.edges:  # data flows upwards, towards the loss
        assert pos[e.source][1] > pos[e.target][1]
    rows: dict[float, list[float]] = {}
    for px, py in pos.values():
        rows.setdefault(py, []).append(px)
    for xs in rows.values():
        xs.sort()
        assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(xs))
    assert layered_layout(build_graph(fn, 1.1, 0.9)) == pos  # values aside, the same drawing
    layout = compute_layout(g)
    assert len(layout.bends) == len(g.edges)
    for e, bend in zip(g.edges, layout.bends):  # one bend per layer crossed
        assert len(bend) == max(0, int(pos[e.source][1] - pos[e.target][1]) - 1)


def test_layout_of_a_tree_has_no_crossings() -> None:
    # Every input used once: the drawing must come out as an uncrossed tree.
    g = build_graph(compile_formula("sin(x + 1) * cos(2 - y) + exp(3 * 4)"), 0.2, 0.4)
    pos = layered_layout(g)
    segments = [(pos[e.target], pos[e.source]) for e in g.edges]
    for (t1, s1) in segments:
        for (t2, s2) in segments:
            if t1[1] == t2[1] and s1[1] == s2[1] and t1 != t2 and s1 != s2:
                assert (t1[0] - t2[0]) * (s1[0] - s2[0]) > 0


# --- no leak -------------------------------------------------------------------------------------


def _live_autograd_nodes() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.autograd.graph.Node))


def test_building_the_graph_again_and_again_keeps_nothing_alive() -> None:
    """The panel rebuilds the graph 4 times a second: a build must leave no hook on torch's
    nodes and no reference cycle behind (before, each build kept ~70 objects for good)."""
    surface = get_surface("rosenbrock")
    for _ in range(3):  # warm-up: caches (op names, torch's own) fill once
        build_graph(surface, 0.3, 0.2, frozen=["y"])
        build_graph(surface, 0.3, 0.2)
    nodes = _live_autograd_nodes()  # (first, as the scan itself may create objects once)
    gc.collect()
    objects = len(gc.get_objects())
    for k in range(30):
        build_graph(surface, 0.3 + k / 100, 0.2, frozen=["y"] if k % 2 else [])
    gc.collect()
    assert len(gc.get_objects()) - objects < 30  # less than one object per build
    assert _live_autograd_nodes() == nodes



def test_long_edges_from_one_input_share_their_bend_points() -> None:
    """x and y are used at every depth of a long sum: their long edges run as one trunk each
    (one bend point per layer), so the layout grows with the formula, not with its square."""
    g = build_graph(compile_formula(" + ".join(["x*y"] * 100)), 0.3, -0.2)
    layers = max(y for _, y in layered_layout(g).values())
    layout = compute_layout(g)
    spans = sum(len(b) for b in layout.bends)
    distinct = {p for bend in layout.bends for p in bend}
    assert spans > 50 * layers  # edge by edge, the bends cross thousands of layers in all
    assert len(distinct) <= 2 * layers  # two trunks, x's and y's, one point per layer each
    pos = layout.positions
    for e, bend in zip(g.edges, layout.bends):  # each edge still runs layer by layer
        ys = [pos[e.target][1], *[y for _, y in reversed(bend)], pos[e.source][1]]
        assert ys == sorted(ys) and len(set(ys)) == len(ys)


@pytest.mark.parametrize("text, frozen", [("(x + y) * x", ()), ("sin(x) * y**2 + 3", ("y",)),
                                          (" + ".join(["x*y"] * 50), ()), ("x + y", ("x", "y"))])
def test_graph_size_counts_what_build_graph_extracts(text: str, frozen: tuple[str, ...]) -> None:
    fn = compile_formula(text)
    size = graph_size(fn, 0.7, -1.3, frozen)
    graph = build_graph(fn, 0.7, -1.3, frozen)
    autograd_nodes = [n for n in graph.nodes if n.kind != "constant"]
    assert size.nodes == len(autograd_nodes)
    assert size.loss == graph.loss and size.gradient == graph.gradient
    assert size.point == graph.point and size.frozen == graph.frozen


def test_the_races_graph_is_untouched_by_the_labs_tensor_graph() -> None:
    """build_graph still makes plain GraphNode/GraphEdge with numbers (the tensor graph's
    subclasses and fields stay out of the race's JSON)."""
    from core.graph import TensorGraphEdge, TensorGraphNode
    g = build_graph(compile_formula("x**2 * y + 3"), 1.5, -2.0)
    assert all(type(n) is not TensorGraphNode for n in g.nodes)
    assert all(type(e) is not TensorGraphEdge for e in g.edges)
    assert set(g.to_json()["nodes"][0]) == {"id", "kind", "label", "op", "torch_name", "value",
                                             "grad", "local_jacobian", "frozen"}
    assert all(isinstance(n.value, float) for n in g.nodes)
