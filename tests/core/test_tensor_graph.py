"""core.graph.build_tensor_graph and Lab.graph: the lab's Q as torch's autograd graph, checked
against plain torch (retain_grad on the intermediates, torch.autograd.grad, .grad)."""

from __future__ import annotations

import gc
from collections import Counter

import pytest
import torch

from core.graph import (TensorGraph, TensorGraphEdge, build_tensor_graph, compute_layout,
                        matrix_text, structure_key, tensor_text)
from core.lab.presets import get_preset
from core.lab.values import TensorSpec
from core.lab.workbench import Lab

F64 = torch.float64


def note_leaves(b_requires_grad: bool = True) -> dict[str, torch.Tensor]:
    return {"a": torch.tensor([2., 3.], dtype=F64, requires_grad=True),
            "b": torch.tensor([6., 4.], dtype=F64, requires_grad=b_requires_grad)}


def note_q(env: dict[str, torch.Tensor]) -> torch.Tensor:
    return 3 * env["a"] ** 3 - env["b"] ** 2


def autograd_names(g: TensorGraph) -> Counter[str]:
    return Counter(n.torch_name for n in g.nodes if n.torch_name)


def test_the_notes_q_has_the_nodes_torch_records() -> None:
    g = build_tensor_graph(note_q, note_leaves(), torch.ones(2, dtype=F64))
    assert autograd_names(g) == Counter({"AccumulateGrad": 2, "PowBackward0": 2,
                                         "MulBackward0": 1, "SubBackward0": 1})
    assert g.node(g.root).torch_name == "SubBackward0" == g.grad_fn
    assert {n.id for n in g.nodes if n.kind == "leaf"} == {"a", "b"}
    assert g.node_count == 6 and not g.too_big
    assert g.output == [-12.0, 65.0] and g.output_shape == (2,)


@pytest.mark.parametrize("v", [[1., 1.], [0.5, -2.], [3., 0.]])
def test_every_edge_carries_what_torch_autograd_grad_gives(v: list[float]) -> None:
    """Each edge's gradient is d(vᵀQ)/d(its source), for intermediates and leaves alike."""
    vt = torch.tensor(v, dtype=F64)
    g = build_tensor_graph(note_q, note_leaves(), vt)

    leaves = note_leaves()
    a3 = leaves["a"] ** 3
    m = 3 * a3
    b2 = leaves["b"] ** 2
    q = m - b2
    for t in (a3, m, b2):
        t.retain_grad()
    wanted = dict(zip(("m", "b2", "a3", "a", "b"),
                      torch.autograd.grad(q, (m, b2, a3, leaves["a"], leaves["b"]), vt,
                                          retain_graph=True)))
    by_torch = {"MulBackward0": "m", "AccumulateGrad": None}
    sent = {}
    for e in g.edges:
        if not isinstance(e, TensorGraphEdge) or e.grad_tensor is None:
            continue
        src = g.node(e.source)
        key = src.id if src.kind == "leaf" else by_torch.get(src.torch_name)
        if key is None:  # one of the two pows: told apart by what they consume
            (inp,) = [x.source for x in g.inputs(src.id) if x.input_index is not None]
            key = "a3" if inp == "a" else "b2"
        sent[key] = e.grad_tensor
    assert set(sent) == set(wanted)
    for key, grad in wanted.items():
        assert torch.allclose(torch.tensor(sent[key], dtype=F64), grad), key
    # the nodes' own gradients: the same, and the root gets v
    assert g.node(g.root).grad_tensor == v
    q.backward(vt)
    assert g.grads == {"a": leaves["a"].grad.tolist(), "b": leaves["b"].grad.tolist()}
    assert g.node("a").grad_tensor == leaves["a"].grad.tolist()
    assert g.node("b").grad_tensor == leaves["b"].grad.tolist()


def test_values_are_the_forward_outputs() -> None:
    g = build_tensor_graph(note_q, note_leaves(), torch.ones(2, dtype=F64))
    values = sorted((n.torch_name, n.tensor) for n in g.nodes if n.kind == "op")
    a, b = torch.tensor([2., 3.], dtype=F64), torch.tensor([6., 4.], dtype=F64)
    assert values == sorted([("SubBackward0", (3 * a ** 3 - b ** 2).tolist()),
                             ("MulBackward0", (3 * a ** 3).tolist()),
                             ("PowBackward0", (a ** 3).tolist()),
                             ("PowBackward0", (b ** 2).tolist())])
    assert g.node("a").tensor == [2., 3.] and g.node("a").shape == (2,)


def test_local_jacobian_times_upstream_is_what_each_edge_carries() -> None:
    """The chain rule as explain() words it: sent = upstream · (local Jacobian)."""
    g = build_tensor_graph(note_q, note_leaves(), torch.tensor([0.5, -2.], dtype=F64))
    checked = 0
    for e in g.edges:
        if e.input_index is None or e.grad_tensor is None:
            continue
        consumer = g.node(e.target)
        local = torch.tensor(consumer.local_jacobians[e.input_index], dtype=F64)
        upstream = torch.tensor(consumer.grad_tensor, dtype=F64).reshape(1, -1)
        assert torch.allclose((upstream @ local).reshape(-1),
                              torch.tensor(e.grad_tensor, dtype=F64).reshape(-1))
        checked += 1
    assert checked == 5
    pow_a = next(n for n in g.nodes if n.torch_name == "PowBackward0"
                 and g.inputs(n.id)[0].source == "a")
    assert matrix_text(pow_a.local_jacobians[0]) == "diag([12., 27.])"  # 3a²
    text = g.explain(pow_a.id)
    # upstream 3v = [1.5, -6.], times 3a² = [12., 27.]: a.grad = 9a² v
    assert "[1.5, -6.] · d(pow)/d(a) diag([12., 27.]) = [18., -162.]" in text


def test_backward_order_is_torchs_and_each_node_comes_after_its_senders() -> None:
    g = build_tensor_graph(note_q, note_leaves(), torch.ones(2, dtype=F64))
    order = g.backward_order
    assert order[0] == g.root and len(order) == len(set(order)) == 6
    for e in g.edges:
        if e.grad_tensor is not None:  # the consumer ran before its input received anything
            assert order.index(e.target) < order.index(e.source)
    # torch's own order, seen by prehooks on a separate plain run
    leaves = note_leaves()
    q = note_q(leaves)
    seen: list[str] = []
    todo, nodes = [q.grad_fn], []
    while todo:
        f = todo.pop()
        if f not in nodes:
            nodes.append(f)
            todo.extend(n for n, _ in f.next_functions if n is not None)
    handles = [f.register_prehook(lambda go, f=f: seen.append(type(f).__name__)) for f in nodes]
    q.backward(torch.ones(2, dtype=F64))
    for h in handles:
        h.remove()
    assert [g.node(i).torch_name for i in order] == seen


def test_a_frozen_b_is_a_constant_without_accumulate_grad() -> None:
    g = build_tensor_graph(note_q, note_leaves(b_requires_grad=False), torch.ones(2, dtype=F64))
    assert autograd_names(g)["AccumulateGrad"] == 1
    assert all(n.id != "b" or n.kind == "constant" for n in g.nodes)
    frozen = [n for n in g.nodes if n.kind == "constant" and "b" in n.label]
    assert len(frozen) == 1 and frozen[0].tensor == [36., 16.]  # b**2, computed without grad
    assert g.grads == {"a": [36., 81.], "b": None} and g.frozen == ("b",)
    assert "requires_grad=False" in g.explain(frozen[0].id)


def test_the_freeze_preset_shows_b_itself_as_frozen() -> None:
    g = get_preset("freeze").lab().graph()
    b = g.node("b")
    assert b.kind == "constant" and b.frozen and b.tensor == [6., 4.]
    assert "AccumulateGrad" not in {n.torch_name for n in g.nodes if n.id == "b"}
    assert g.grads["b"] is None and g.grads["a"] == [6., 4.]


def test_lab_graph_agrees_with_the_labs_own_backward() -> None:
    """Lab.graph(v) and Lab.backward_with_gradient(v): the same .grad, for every preset."""
    for name in ("note", "linear", "softmax", "dot", "norm", "freeze"):
        lab = get_preset(name).lab()
        v = torch.linspace(-1, 2, lab.output().value.numel(), dtype=F64).reshape(
            lab.output().shape)
        g = lab.graph(v)
        grads = lab.backward_with_gradient(v).grads
        for leaf, grad in grads.items():
            assert (g.grads[leaf] is None) == (grad is None), (name, leaf)
            if grad is not None:
                assert torch.allclose(torch.tensor(g.grads[leaf], dtype=F64), grad)
                assert g.node(leaf).grad_tensor == g.grads[leaf]
        compute_layout(g)  # and the race's layout lays it out


def test_a_scalar_q_needs_no_v_and_a_vector_q_does() -> None:
    lab = Lab([TensorSpec("a", "[1., 2.]")], "sum(a * a)")
    g = lab.graph()
    assert g.gradient is None and g.grads == {"a": [2., 4.]}
    assert "starts from 1" in g.explain(g.root)
    with pytest.raises(ValueError, match="not a scalar"):
        build_tensor_graph(note_q, note_leaves(), None)
    with pytest.raises(ValueError, match="shape"):
        build_tensor_graph(note_q, note_leaves(), torch.ones(3, dtype=F64))


def test_everything_frozen_is_one_constant() -> None:
    leaves = {"a": torch.tensor([2., 3.], dtype=F64)}
    g = build_tensor_graph(lambda env: env["a"] * 2, leaves, torch.ones(2, dtype=F64))
    assert [n.kind for n in g.nodes] == ["constant"] and g.backward_order == []
    assert g.grads == {"a": None} and "no graph" in g.explain(g.root)


def test_a_graph_over_max_nodes_is_only_counted() -> None:
    lab = get_preset("note").lab()
    g = lab.graph(max_nodes=5)
    assert g.too_big and g.node_count == 6 and g.nodes == [] and g.backward_order == []
    assert g.grads == {"a": [36., 81.], "b": [-12., -8.]}  # torch's gradients, still
    assert not lab.graph(max_nodes=6).too_big


def test_tensor_text_shows_a_few_numbers_rounded() -> None:
    assert tensor_text([36.0, 81.0]) == "[36., 81.]"
    assert tensor_text(2.0 / 3) == "0.6667"
    assert tensor_text([[1., 2.], [3., 4.]]) == "[[1., 2.], [3., 4.]]"
    assert tensor_text(list(range(10))) == "[0., 1., 2., 3., 4., 5., …]"
    assert tensor_text([[0.123456] * 4] * 2) == "[" + "0.1235, " * 6 + "…]"
    assert tensor_text(None) == "-"


def test_same_program_same_structure_new_v_new_gradients() -> None:
    lab = get_preset("note").lab()
    g1, g2 = lab.graph(torch.ones(2, dtype=F64)), lab.graph(torch.tensor([2., -1.], dtype=F64))
    assert structure_key(g1) == structure_key(g2)
    assert g1.grads != g2.grads and g2.grads == {"a": [72., -81.], "b": [-24., 8.]}


def test_to_json_is_strict_json() -> None:
    import json
    data = get_preset("note").lab().graph().to_json()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["grads"] == {"a": [36., 81.], "b": [-12., -8.]}


def _live_autograd_nodes() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.autograd.graph.Node))


def test_building_again_and_again_keeps_nothing_alive() -> None:
    """Hooks are removed after backward and hold no node: nothing survives a build."""
    lab = get_preset("note").lab()
    for _ in range(3):
        lab.graph()
    nodes = _live_autograd_nodes()
    gc.collect()
    objects = len(gc.get_objects())
    for _ in range(30):
        lab.graph()
    gc.collect()
    assert len(gc.get_objects()) - objects < 30
    assert _live_autograd_nodes() == nodes


@pytest.mark.parametrize("expression", ["a * a", "W @ a + b", "softmax(W @ a)[1] * b",
                                        "norm(a) * sum(b)", "h = relu(W @ a); Q = dot(h, b)",
                                        "mean(W.T @ b) + prod(a)"])
def test_each_leaf_gets_the_sum_of_what_its_consumers_sent(expression: str) -> None:
    """AccumulateGrad adds up its in-edges: the edges' VJPs sum to torch's .grad, and each
    op's local Jacobian times its upstream gradient is what it sent."""
    lab = Lab([TensorSpec("W", "[[1., 2.], [-3., 0.5], [0.2, 4.]]"), TensorSpec("a", "[0.5, -1.]"),
               TensorSpec("b", "[2., -0.5, 1.5]")], expression)
    v = torch.linspace(0.5, 2, lab.output().value.numel(), dtype=F64).reshape(lab.output().shape)
    g = lab.graph(v)
    grads = lab.backward_with_gradient(v).grads
    for leaf in ("W", "a", "b"):
        edges = [e for e in g.outputs(leaf)] if leaf in {n.id for n in g.nodes} else []
        if grads[leaf] is None:
            assert g.grads[leaf] is None and not edges
            continue
        total = sum(torch.tensor(e.grad_tensor, dtype=F64) for e in edges)
        assert torch.allclose(total, grads[leaf]), leaf
        assert torch.allclose(torch.tensor(g.grads[leaf], dtype=F64), grads[leaf])
    for n in g.nodes:
        for e in g.inputs(n.id):
            if e.grad_tensor is None or n.local_jacobians[e.input_index] is None:
                continue
            local = torch.tensor(n.local_jacobians[e.input_index], dtype=F64)
            upstream = torch.tensor(n.grad_tensor, dtype=F64).reshape(1, -1)
            assert torch.allclose((upstream @ local).reshape(-1),
                                  torch.tensor(e.grad_tensor, dtype=F64).reshape(-1))
    assert sorted(g.backward_order) == sorted(n.id for n in g.nodes if n.kind != "constant")
