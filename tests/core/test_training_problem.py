"""A torch.nn model as a Problem: a Run equals the plain PyTorch training loop bit for bit.

The reference is the loop a PyTorch user writes on the model itself:

    for k in range(steps):
        rows = sampler.next_batch()
        opt.zero_grad(); loss_fn(model(X[rows]), y[rows]).backward(); opt.step()

with `core.problems.data.MinibatchSampler` drawing the batches, a layer frozen by
requires_grad_(False), and the lr changed mid-run through param_groups.
"""

from __future__ import annotations

import pytest
import torch

from core.problems.data import MinibatchSampler, make_dataset, make_loss, shape_targets
from core.problems.model import build_model
from core.problems.training import ModelProblem
from core.run import Run, RunStatus
from tests.core.test_run import SETTINGS

STEPS = 12
CASES = [("moons", "Linear(2, 8), Tanh(), Linear(8, 1)", "BCEWithLogitsLoss"),
         ("line", "Linear(1, 1)", "MSELoss"),
         ("blobs", "Linear(2, 6), ReLU(), Linear(6, 3)", "CrossEntropyLoss")]
# Settings that stay finite on these small models for STEPS steps (LBFGS: its lr-1 line search
# is fine on full batches only, so it gets full batches below).
OPTIMIZERS = [s for s in SETTINGS if s[0] != "Adadelta"] + [("Adadelta", {"lr": 0.1})]


def data_and_model(dataset: str, spec: str, loss: str, seed: int = 3):
    data = make_dataset(dataset, n=40, seed=seed)
    y = shape_targets(data.y, loss)
    return data.X, y, build_model(spec, data.X.shape[1], seed=seed), make_loss(loss, data.task)


def plain_loop(dataset, spec, loss, name, hps, batch_size, frozen_layer, new_lr, change_at):
    X, y, model, loss_fn = data_and_model(dataset, spec, loss)
    for p in model[frozen_layer].parameters() if frozen_layer is not None else ():
        p.requires_grad_(False)
    opt = getattr(torch.optim, name)(model.parameters(), **hps)
    sampler = MinibatchSampler(len(X), batch_size, seed=7)
    losses = []
    for k in range(STEPS):
        if k == change_at:
            for g in opt.param_groups:
                g["lr"] = new_lr
        rows = sampler.next_batch()

        def closure(rows: torch.Tensor = rows) -> torch.Tensor:
            opt.zero_grad()
            value = loss_fn(model(X[rows]), y[rows])
            value.backward()
            return value
        losses.append(closure().item())
        opt.step(closure) if name == "LBFGS" else opt.step()
    return model, losses


@pytest.mark.parametrize("dataset, spec, loss", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("name, hps", OPTIMIZERS, ids=[f"{n}{i}" for i, (n, _) in
                                                      enumerate(OPTIMIZERS)])
def test_model_training_equals_the_plain_loop(dataset, spec, loss, name, hps) -> None:
    live_lr = name not in ("Rprop", "ASGD")  # those build a fresh optimizer on a new lr
    batch_size = 0 if name == "LBFGS" else 8
    frozen_layer = 0 if "Tanh" in spec or "ReLU" in spec else None
    new_lr, change_at = hps["lr"] * 0.5, (5 if live_lr else None)
    model, losses = plain_loop(dataset, spec, loss, name, hps, batch_size, frozen_layer,
                               new_lr, change_at)
    X, y, fresh, loss_fn = data_and_model(dataset, spec, loss)
    problem = ModelProblem(fresh, X, y, loss_fn, batch_size=batch_size, seed=7)
    frozen = [n for n in problem.parameter_names if frozen_layer is not None
              and n.startswith(f"{frozen_layer}.")]
    run = Run(problem, name, hps, frozen=frozen)
    if change_at is not None:
        run.step(change_at)
        run.set_hyperparameter("lr", new_lr)
        run.step(STEPS - change_at)
    else:
        run.step(STEPS)
    assert run.status is not RunStatus.DIVERGED, run.status_text
    assert run.trajectory.loss[:STEPS].tolist() == losses
    for n, p in model.named_parameters():
        assert torch.equal(run.parameters[n].detach(), p.detach()), n
    for n in frozen:  # bitwise where build_model put it, and no gradient
        assert torch.equal(run.parameters[n].detach(), dict(fresh.named_parameters())[n])
        assert run.parameters[n].grad is None
    # the problem never touches the module's own weights
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(),
                                                 data_and_model(dataset, spec, loss)[2]
                                                 .parameters()))


def test_batches_are_the_samplers_sequence_by_step() -> None:
    X, y, model, loss_fn = data_and_model("moons", "Linear(2, 1)", "BCEWithLogitsLoss")
    problem = ModelProblem(model, X, y, loss_fn, batch_size=12, seed=5)
    sampler = MinibatchSampler(len(X), 12, seed=5)
    expected = [sampler.next_batch() for _ in range(11)]
    for k in (3, 0, 10, 3):  # any order, any number of times
        assert torch.equal(problem.batch(k), expected[k])
    assert problem.batches_per_epoch == 4 and len(problem.batch(3)) == 4
    assert ModelProblem(model, X, y, loss_fn).batch(9) is None
    assert problem.describe()["parameters"] == {"0.weight": [1, 2], "0.bias": [1]}


def _bn_dropout_problem(batch_size: int = 0) -> ModelProblem:
    data = make_dataset("moons", 40, 0.1, 0)
    model = build_model("Linear(2, 8), BatchNorm1d(8), Tanh(), Dropout(0.5), Linear(8, 1)", 2, 0)
    return ModelProblem(model, data.X, shape_targets(data.y, "BCEWithLogitsLoss"),
                        make_loss("BCEWithLogitsLoss", "binary"), batch_size, 0)


def test_each_run_keeps_its_own_batchnorm_statistics_and_sees_the_same_dropout_masks() -> None:
    problem = _bn_dropout_problem()
    initial_mean = problem.model[1].running_mean.clone()
    sgd = Run(problem, "SGD", {"lr": 0.1})
    adam = Run(problem, "Adam", {"lr": 0.01})
    # a run trained alone, on its own problem, is the reference for each
    alone = Run(_bn_dropout_problem(), "SGD", {"lr": 0.1})
    for _ in range(5):
        sgd.step(1)
        adam.step(1)
        alone.step(1)
    for name in sgd.parameter_names:  # Adam's steps did not touch SGD's statistics or masks
        assert torch.equal(sgd.parameters[name], alone.parameters[name])
    assert list(sgd.trajectory.loss) == list(alone.trajectory.loss)
    sgd_mean = problem.buffers(sgd.parameters)["1.running_mean"]
    adam_mean = problem.buffers(adam.parameters)["1.running_mean"]
    assert not torch.equal(sgd_mean, adam_mean)  # each run its own running statistics
    assert torch.equal(problem.model[1].running_mean, initial_mean)  # the module's untouched
    # the dropout mask of a step is the same for every run: at the same parameters, the losses
    # of step 3 agree, and torch's global generator is left where it was
    state = torch.random.get_rng_state()
    twin = {n: p.detach().clone() for n, p in sgd.parameters.items()}
    first = problem.loss(twin, 3)
    again = problem.loss({n: p.clone() for n, p in twin.items()}, 3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert first.item() == again.item()
    assert problem.loss(twin, 4).item() != first.item()  # another step, another mask


def test_a_reset_run_starts_again_from_the_initial_statistics() -> None:
    problem = _bn_dropout_problem()
    run = Run(problem, "SGD", {"lr": 0.1})
    first = list(run.trajectory.loss)
    for _ in range(3):
        run.step(1)
    losses = list(run.trajectory.loss)
    run.reset()
    for _ in range(3):
        run.step(1)
    assert list(run.trajectory.loss) == losses and losses[:1] == first


def test_batch_at_is_next_batchs_sequence_and_does_not_move_it() -> None:
    sampler = MinibatchSampler(10, 3, seed=5)
    fresh = MinibatchSampler(10, 3, seed=5)
    assert torch.equal(sampler.batch_at(7), [fresh.next_batch() for _ in range(8)][-1])
    again = MinibatchSampler(10, 3, seed=5)
    assert [sampler.next_batch().tolist() for _ in range(8)] == \
        [again.next_batch().tolist() for _ in range(8)]
    assert torch.equal(MinibatchSampler(10, 0).batch_at(3), torch.arange(10))
