"""File > Examples of model mode: each opens, and does what its description promises."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.curvature import sharpness
from core.model_session import ModelSession
from gui.model.controller import EXAMPLES_DIR, ModelController, examples


@pytest.fixture
def controller(make_model_controller):
    return make_model_controller()  # two moons, the small MLP; no sharpness worker


def _steps(c: ModelController, n: int) -> None:
    for _ in range(n):
        c.step_once()


def test_every_example_is_a_valid_session_with_a_title_and_a_description() -> None:
    found = examples()
    assert {name for name, _, _ in found} == {
        "sgd-vs-adam-moons", "minibatch-noise", "past-the-edge-of-stability",
        "fine-tune-last-layer"}
    for name, title, description in found:
        session = ModelSession.load(EXAMPLES_DIR / f"{name}.json")  # validated and built once
        assert title and len(description) > 100
        assert all(r.steps == 0 for r in session.runs)  # the user presses Play
        assert json.loads((EXAMPLES_DIR / f"{name}.json").read_text())["extra"]["title"] == title


def test_sgd_vs_adam_on_two_moons(controller):
    controller.open_example("sgd-vs-adam-moons")
    assert controller.title == "SGD vs Adam on two moons"
    sgd, adam = controller.runs
    _steps(controller, 300)
    assert adam.trajectory.loss[-1] < 0.5 * sgd.trajectory.loss[-1]
    assert controller.held_out(adam)[1] > controller.held_out(sgd)[1]


def test_minibatch_noise_then_full_batch(controller):
    controller.open_example("minibatch-noise")
    run = controller.runs[0]
    assert controller.problem.batch_size == 8
    _steps(controller, 100)
    noisy = np.diff(run.trajectory.loss)
    assert (noisy > 0).sum() > 20  # "goes up on many steps"
    tests = np.asarray(controller.extras[run].test_loss)
    assert tests[-1] < tests[0]  # the held-out loss falls
    controller.configure(batch_size=0)  # "set the batch to 'full batch' and press Reset"
    controller.reset()
    _steps(controller, 100)
    assert (np.diff(run.trajectory.loss) < 0).all()  # "falls on every step"


def test_a_learning_rate_past_two_over_sharpness(controller):
    controller.open_example("past-the-edge-of-stability")
    calm, wild = controller.runs
    model = controller.model
    top = sharpness(model, controller.loss_fn, controller.problem.X, controller.problem.y,
                    tol=1e-12)
    assert top == pytest.approx(2.0, abs=0.05)  # "about 2.0 here"
    assert calm.hyperparameters["lr"] < 2 / top < wild.hyperparameters["lr"]
    _steps(controller, 60)
    # "falls on every step" (until it is at the minimum, to the last bit)
    assert (np.diff(calm.trajectory.loss[:20]) < 0).all()
    assert calm.status.value == "converged"
    losses = wild.trajectory.loss
    assert (np.diff(losses[1:]) > 0).all()  # "grows step after step"
    weights = wild.trajectory.values("0.bias")[:, 0]
    minimum = calm.parameters["0.bias"].item()
    flips = np.sign(weights[1:12] - minimum)
    assert (flips[1:] != flips[:-1]).all()  # "flip from side to side"
    assert wild.status.value == "diverged"


def test_fine_tuning_only_the_last_layer(controller):
    controller.open_example("fine-tune-last-layer")
    full, tuned = controller.runs
    assert tuned.frozen == {"0.weight", "0.bias"} and not full.frozen
    initial = controller.problem.initial_parameters()
    _steps(controller, 300)
    for name in ("0.weight", "0.bias"):
        assert torch.equal(tuned.parameters[name], initial[name])
        assert tuned.parameters[name].grad is None
        assert np.isnan(tuned.trajectory.parameter_grad_norm(name)).all()
    assert not torch.equal(tuned.parameters["2.weight"], initial["2.weight"])
    assert tuned.trajectory.loss[-1] > full.trajectory.loss[-1]


def test_the_edge_of_stability_example_draws_sharpness_against_two_over_lr(qtbot):
    # a clock that stands still: no rest between two measurements (SHARPNESS_REST x 0 s)
    controller = ModelController(clock=lambda: 0.0)
    try:
        controller.open_example("past-the-edge-of-stability")
        calm, wild = controller.runs
        controller.sharpness_every = 1
        for _ in range(2):  # one measurement at a time, each run in its turn
            with qtbot.waitSignal(controller.sigSharpness, timeout=20_000):
                controller.step_once()
        for run, above in ((calm, False), (wild, True)):
            extras = controller.extras[run]
            assert extras.sharpness, run.label
            assert (extras.sharpness[0] > 2 / extras.sharpness_lr[0]) is above  # dots vs dotted
    finally:
        assert controller.shutdown(2.0)
