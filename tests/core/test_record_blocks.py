"""A model run's entries recorded in blocks (core/run.py `_PendingEntries`) equal the record
taken at every step, bit for bit: every trajectory column, the status, converged_at,
diverged_at and its reason, the update norms, whatever the moments the record is read at."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import core.run as run_module
from core.model_session import DataSpec, ModelSession
from core.run import Run, RunStatus

torch.set_num_threads(1)

CASES = [
    ("Linear(2, 16), Tanh(), Linear(16, 1)", "moons", 0),
    ("Linear(2, 16), Tanh(), Linear(16, 1)", "moons", 16),
    ("Linear(2, 8), BatchNorm1d(8), ReLU(), Dropout(0.3), Linear(8, 3)", "blobs", 16),
]
OPTIMIZERS = [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01}),
              ("AdamW", {"lr": 0.01, "weight_decay": 0.1}), ("Rprop", {}),
              ("SGD", {"lr": 0.05, "weight_decay": 0.01})]  # L2 in the gradient: at once


def problem(model: str, dataset: str, batch_size: int):
    return ModelSession(model=model, data=DataSpec(dataset=dataset, n=120),
                        batch_size=batch_size).build().problem


def train(prob, optimizer: str, hps: dict, reads: tuple[int, ...] = ()) -> Run:
    """600 steps (past a full block), capacity 100 (thinned), a layer frozen and unfrozen and
    the lr halved mid-run; `reads` are the steps after which the status is looked at."""
    run = Run(prob, optimizer, dict(hps), capacity=100)
    first = prob.parameter_names[0]
    for step in range(1, 601):
        run.step(1)
        if step in reads:
            assert run.status in (RunStatus.RUNNING, RunStatus.CONVERGED)
        if step == 300:
            run.set_frozen(first, True)
        if step == 350:
            run.set_hyperparameter("lr", run.hyperparameters.get("lr", 0.01) / 2)
        if step == 400:
            run.set_frozen(first, False)
    return run


def at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module._PendingEntries, "fits", classmethod(lambda cls, run: False))


def assert_same_record(a: Run, b: Run) -> None:
    ta, tb = a.trajectory, b.trajectory
    assert ta.fields == tb.fields and len(ta) == len(tb) and ta.thinned == tb.thinned
    for name in ta.fields:
        np.testing.assert_array_equal(ta.column(name), tb.column(name), err_msg=name)
    assert (a.status, a.steps, a.converged_at, a.diverged_at, a.divergence_reason) == (
        b.status, b.steps, b.converged_at, b.diverged_at, b.divergence_reason)
    np.testing.assert_array_equal(list(a.last_update_norms.values()),
                                  list(b.last_update_norms.values()))
    for name, p in a.parameters.items():
        assert torch.equal(p.detach(), b.parameters[name].detach()), name


@pytest.mark.parametrize("model, dataset, batch_size", CASES)
@pytest.mark.parametrize("optimizer, hps", OPTIMIZERS, ids=lambda v: str(v))
def test_blocks_equal_the_record_at_every_step(monkeypatch, model, dataset, batch_size,
                                               optimizer, hps) -> None:
    prob = problem(model, dataset, batch_size)
    blocks = train(prob, optimizer, hps, reads=(7, 8, 255, 256, 299, 512))
    with monkeypatch.context() as m:
        at_every_step(m)
        every = train(problem(model, dataset, batch_size), optimizer, hps)
        assert every._pending is None
    assert_same_record(blocks, every)


def test_blocks_are_used_for_a_model_and_flushed_when_read() -> None:
    run = Run(problem(*CASES[0]), "Adam", {"lr": 0.01})
    assert run._pending is not None
    run.step(10)
    assert run._pending.n == 10  # nothing computed yet beyond the checks
    assert len(run.trajectory) == 11 and run._pending.n == 0
    run.step(300)  # a full block is recorded by itself
    assert run._pending.n == 300 - 256 and len(run._trajectory) == 11 + 256
    assert run.trajectory.step[-1] == 310 and run._pending.n == 0


REGRESSION = ("Linear(1, 16), Tanh(), Linear(16, 1)", "line", 0)


@pytest.mark.parametrize("case, lr", [(REGRESSION, 3.0), (REGRESSION, 1e200),  # the loss
                                      (CASES[0], 1e300)])  # rule after 10 steps; inf at once
def test_a_diverging_run_stops_at_the_same_step_with_the_same_record(monkeypatch, case,
                                                                     lr) -> None:
    blocks = Run(problem(*case), "SGD", {"lr": lr})
    blocks.step(400)
    with monkeypatch.context() as m:
        at_every_step(m)
        every = Run(problem(*case), "SGD", {"lr": lr})
        every.step(400)
    assert every.status is RunStatus.DIVERGED  # the case is what it says
    assert blocks.diverged
    assert_same_record(blocks, every)


def test_a_converging_run_converges_at_the_same_step(monkeypatch) -> None:
    def converge() -> Run:
        run = Run(problem("Linear(1, 1)", "line", 0), "Adam", {"lr": 0.05})
        run.step(3000)
        return run

    blocks = converge()
    with monkeypatch.context() as m:
        at_every_step(m)
        every = converge()
    assert every.status is RunStatus.CONVERGED and every.converged_at is not None
    assert_same_record(blocks, every)


def test_what_is_stored_in_full_is_read_without_recording_the_block() -> None:
    prob = problem("Linear(2, 16), Tanh(), Linear(16, 1)", "moons", 0)
    run = Run(prob, "SGD", {"lr": 0.1})
    run.step(5)
    assert run._pending is not None and run._pending.n == 5
    stored = run.stored_in_full
    assert run._pending.n == 5  # still pending: nothing was flushed to answer
    assert stored == set(run.trajectory.stored) and "2.bias" in stored
    assert run._pending.n == 0  # reading the trajectory records them
