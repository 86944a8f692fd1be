"""The autograd graph of a model's loss (core.graph.build_model_graph) against plain PyTorch.

The reference is what a PyTorch user writes to see the same numbers: the model's layers called
one by one, `retain_grad()` on each layer's output, `loss.backward()`, then each output's
`.grad` (what backward sent out of that layer) and each parameter's `.grad`.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.graph import (LOSS_MODULE, ModelGraphEdge, build_model_graph, collapse_modules,
                        collapsed_id, compute_layout, model_graph_inputs, module_groups,
                        module_text)
from core.problems.data import make_dataset, make_loss, shape_targets
from core.problems.model import build_model, preset_text
from core.problems.training import ModelProblem
from core.run import Run

LOSS = "BCEWithLogitsLoss"


def moons_problem(spec: str, batch_size: int = 0, n: int = 60) -> ModelProblem:
    data = make_dataset("moons", n=n, seed=1)
    model = build_model(spec, data.X.shape[1], seed=2)
    return ModelProblem(model, data.X, shape_targets(data.y, LOSS), make_loss(LOSS, data.task),
                        batch_size, seed=4)


def graph_of(problem: ModelProblem, params: dict[str, torch.Tensor], step: int = 0, **kw):
    return build_model_graph(model_graph_inputs(problem, params, step), **kw)


def leaves(problem: ModelProblem, frozen: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    return {name: t.requires_grad_(name not in frozen)
            for name, t in problem.initial_parameters().items()}


def module_output(graph, key: str):
    """The op of module `key` whose output leaves the module (the one an outside op consumes)."""
    members = set(module_groups(graph)[key])
    out = [e for e in graph.edges if e.source in members and e.target not in members]
    assert len(out) == 1
    return graph.node(out[0].source), out[0]


def test_gradient_norms_are_those_of_retained_intermediates_and_leaves():
    problem = moons_problem("Linear(2, 16), Tanh(), Linear(16, 1)")
    graph = graph_of(problem, leaves(problem))

    # The reference: the same model and data, layer by layer, with retain_grad.
    model = build_model("Linear(2, 16), Tanh(), Linear(16, 1)", 2, seed=2)
    outputs = []
    h = problem.X
    for layer in model:
        h = layer(h)
        h.retain_grad()
        outputs.append(h)
    loss = problem.loss_fn(h, problem.y)
    loss.backward()

    assert graph.loss == pytest.approx(loss.item(), rel=1e-12)
    for key, reference in zip(("0", "1", "2"), outputs):
        node, edge = module_output(graph, key)
        assert node.shape == tuple(reference.shape)
        assert node.value_norm == pytest.approx(reference.detach().norm().item(), rel=1e-10)
        assert edge.grad_norm == pytest.approx(reference.grad.norm().item(), rel=1e-10)
        assert node.grad_norm == pytest.approx(reference.grad.norm().item(), rel=1e-10)
    for name, p in model.named_parameters():
        leaf = graph.node(name)
        assert leaf.kind == "leaf" and leaf.torch_name == "AccumulateGrad"
        assert leaf.shape == tuple(p.shape)
        assert leaf.grad_norm == pytest.approx(p.grad.norm().item(), rel=1e-10)
        assert graph.grad_norms[name] == pytest.approx(p.grad.norm().item(), rel=1e-10)


def test_edge_gradients_equal_autograd_grad_of_the_intermediates():
    """Every op-to-op edge carries d loss / d (its source's output): torch.autograd.grad."""
    problem = moons_problem(preset_text("deep-mlp", 2, 1))
    graph = graph_of(problem, leaves(problem))
    model = build_model(preset_text("deep-mlp", 2, 1), 2, seed=2)
    hs, h = [], problem.X
    for layer in model:
        h = layer(h)
        hs.append(h)
    grads = torch.autograd.grad(problem.loss_fn(h, problem.y), hs)
    for k, g in enumerate(grads):
        _, edge = module_output(graph, str(k))
        assert isinstance(edge, ModelGraphEdge)
        assert edge.shape == tuple(g.shape)
        assert edge.grad_norm == pytest.approx(g.norm().item(), rel=1e-10)


def test_a_run_mid_training_matches_its_own_grad_on_its_minibatch():
    problem = moons_problem("Linear(2, 8), Tanh(), Linear(8, 1)", batch_size=8)
    run = Run(problem, "Adam", {"lr": 0.05})
    run.step(7)
    graph = graph_of(problem, run.parameters, run.steps)
    assert graph.step == 7
    [x] = [n for n in graph.nodes if n.label == "X"]
    assert x.shape == (len(problem.batch(7)), 2)  # that step's minibatch
    assert graph.loss == pytest.approx(float(run.trajectory.loss[-1]), rel=1e-12)
    for name, p in run.parameters.items():
        assert graph.node(name).grad_norm == pytest.approx(p.grad.norm().item(), rel=1e-12)
    # the run's leaves are copied, never touched
    assert all(p.grad is not None for p in run.parameters.values())


def test_modules_are_the_models_modules_in_order_with_their_text():
    problem = moons_problem(preset_text("deep-mlp", 2, 1))
    graph = graph_of(problem, leaves(problem))
    names = [name for name, _ in problem.model.named_children()]
    assert [key for key, _ in graph.modules] == names + [LOSS_MODULE]
    assert graph.modules[0] == ("0", "0: Linear(2, 32)")
    assert graph.modules[1] == ("1", "1: ReLU()")
    assert graph.modules[-1] == (LOSS_MODULE, "loss: BCEWithLogitsLoss()")
    groups = module_groups(graph)
    # linear's weight.t() is made inside the Linear's forward: it is that module's too
    assert sorted(graph.node(i).op for i in groups["0"]) == ["addmm", "t"]
    assert [graph.node(i).op for i in groups["3"]] == ["relu"]
    assert graph.node(graph.root).module == LOSS_MODULE
    # leaves and inputs belong to no group: they stay visible when a module collapses
    assert all(n.module is None for n in graph.nodes if n.kind != "op")
    # hooks are on a copy and removed: the model the runs share has none
    assert not any(m._forward_hooks for m in problem.model.modules())


def test_nested_modules_are_tagged_with_the_innermost_one():
    data = make_dataset("moons", n=20, seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 4), nn.Tanh()), nn.Linear(4, 1)).double()
    problem = ModelProblem(model, data.X, shape_targets(data.y, LOSS), nn.BCEWithLogitsLoss())
    graph = graph_of(problem, leaves(problem))
    assert [key for key, _ in graph.modules] == ["0.0", "0.1", "1", LOSS_MODULE]
    assert module_text(model[0][0]) == "Linear(2, 4)"
    assert graph.node("0.0.weight").kind == "leaf"


def test_a_frozen_parameter_is_a_constant_without_accumulate_grad():
    problem = moons_problem("Linear(2, 16), Tanh(), Linear(16, 1)")
    graph = graph_of(problem, leaves(problem, frozen=("0.weight",)))
    node = graph.node("0.weight")
    assert node.kind == "constant" and node.frozen and node.grad_norm is None
    assert node.shape == (16, 2)
    assert graph.grad_norms["0.weight"] is None and graph.grad_norms["0.bias"] is not None
    assert "0.weight" not in graph.backward_order
    assert [e.grad_norm for e in graph.outputs("0.weight")] == [None]
    accumulators = [n.label for n in graph.nodes if n.torch_name == "AccumulateGrad"]
    assert sorted(accumulators) == ["0.bias", "2.bias", "2.weight"]
    assert graph.frozen == ("0.weight",)
    assert "no AccumulateGrad" in graph.explain("0.weight")


def test_a_frozen_layer_is_a_constant_named_by_its_module():
    """Fine-tuning: the first layer frozen; autograd's graph starts after it."""
    problem = moons_problem("Linear(2, 16), Tanh(), Linear(16, 1)")
    graph = graph_of(problem, leaves(problem, frozen=("0.weight", "0.bias")))
    accumulators = [n.label for n in graph.nodes if n.torch_name == "AccumulateGrad"]
    assert sorted(accumulators) == ["2.bias", "2.weight"]
    # Tanh of a tensor that needs no gradient needs none either: layer 2 starts the graph
    [addmm] = [n for n in graph.nodes if n.op == "addmm"]
    [source] = [graph.node(e.source) for e in graph.inputs(addmm.id)
                if graph.node(e.source).kind == "constant"]
    assert source.label == "1: Tanh() (from frozen)" and source.shape == (60, 16)
    assert [key for key, _ in graph.modules] == ["2", LOSS_MODULE]


def test_everything_frozen_is_one_constant():
    problem = moons_problem("Linear(2, 1)")
    graph = graph_of(problem, leaves(problem, frozen=("0.weight", "0.bias")))
    assert [n.kind for n in graph.nodes] == ["constant"]
    assert graph.backward_order == []


def test_a_too_big_graph_is_counted_not_extracted():
    problem = moons_problem(preset_text("deep-mlp", 2, 1))
    full = graph_of(problem, leaves(problem))
    small = graph_of(problem, leaves(problem), max_nodes=5)
    assert small.too_big and small.nodes == [] and small.edges == []
    assert small.node_count == full.node_count > 5
    assert small.grad_norms == pytest.approx(full.grad_norms)


def test_collapsing_a_module_keeps_what_crosses_its_border():
    problem = moons_problem(preset_text("deep-mlp", 2, 1))
    graph = graph_of(problem, leaves(problem))
    folded = collapse_modules(graph, ["2"])
    members = module_groups(graph)["2"]
    ids = {n.id for n in folded.nodes}
    assert collapsed_id("2") in ids and not ids & set(members)
    node = folded.node(collapsed_id("2"))
    inner, out_edge = module_output(graph, "2")
    assert node.label == "2: Linear(32, 32)" and node.members == len(members) == 2
    assert (node.shape, node.value_norm, node.grad_norm) == \
        (inner.shape, inner.value_norm, inner.grad_norm)
    # the edges in: from 1's relu, 2.weight (through the t inside) and 2.bias; out: to 3's relu
    sources = sorted(folded.node(e.source).label for e in folded.inputs(collapsed_id("2")))
    assert sources == ["2.bias", "2.weight", "relu"]
    [out] = folded.outputs(collapsed_id("2"))
    assert out.grad_norm == out_edge.grad_norm
    assert folded.backward_order.count(collapsed_id("2")) == 1
    assert len(folded.backward_order) == len(graph.backward_order) - 1
    compute_layout(folded)  # lays out as any graph


def test_collapsing_every_module_leaves_one_node_per_module():
    problem = moons_problem(preset_text("deep-mlp", 2, 1))
    graph = graph_of(problem, leaves(problem))
    keys = [key for key, _ in graph.modules]
    folded = collapse_modules(graph, keys)
    ops = [n for n in folded.nodes if n.kind == "op"]
    assert [n.id for n in ops] == [collapsed_id(k) for k in reversed(keys)]
    assert folded.root == collapsed_id(LOSS_MODULE)
    assert folded.collapsed == tuple(keys)
    assert collapse_modules(graph, []) is graph


def test_dropout_uses_the_steps_mask():
    problem = moons_problem("Linear(2, 16), Dropout(0.5), Linear(16, 1)")
    params = leaves(problem)
    graph = graph_of(problem, params, step=3)
    assert graph.loss == problem.loss(problem.initial_parameters(), 3).item()
    assert graph.loss != problem.loss(problem.initial_parameters(), 4).item()
