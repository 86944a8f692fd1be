"""core/lr_finder.py: the learning-rate range test against a plain PyTorch loop."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from core.batch import BatchCancelled
from core.lr_finder import RULES, RangeTestError, range_test, smooth, steepest, valley
from core.model_session import DataSpec, ModelSession


def moons(batch_size: int = 0):
    return ModelSession("Linear(2, 8), Tanh(), Linear(8, 1)", DataSpec("moons", n=60),
                        batch_size=batch_size).build()


def test_the_lr_of_every_step_is_torchs_exponential_schedule() -> None:
    result = range_test(moons(), "SGD(momentum=0.9)", 1e-5, 1.0, 40, stop_factor=1e9)
    assert len(result) == 40 and result.stopped == "ran all 40 steps"
    # torch's ExponentialLR on any optimizer, stepped 39 times, as a PyTorch user would
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-5)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=(1.0 / 1e-5) ** (1 / 39))
    expected = []
    for _ in range(40):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert result.lrs.tolist() == expected
    ramp = 1e-5 * (1.0 / 1e-5) ** (np.arange(40) / 39)
    assert np.allclose(result.lrs, ramp, rtol=1e-12, atol=0)


def test_the_range_test_is_a_plain_loop_with_that_scheduler_bit_for_bit() -> None:
    built = moons(batch_size=16)
    problem = built.problem
    assert problem.n == 48  # three batches of 16 an epoch
    result = range_test(built, "Adam", 1e-4, 3.0, 30, stop_factor=1e9)
    model = copy.deepcopy(built.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=(3.0 / 1e-4) ** (1 / 29))
    generator = torch.Generator().manual_seed(0)  # the session's seed draws the batches
    batches = []
    for _ in range(11):
        order = torch.randperm(48, generator=generator)
        batches += [order[i:i + 16] for i in range(0, 48, 16)]
    losses = []
    for k in range(31):
        rows = batches[k]
        optimizer.zero_grad()
        loss = problem.loss_fn(model(problem.X[rows]), problem.y[rows])
        losses.append(loss.item())
        if k == 30:
            break
        loss.backward()
        optimizer.step()
        scheduler.step()
    assert result.start_loss == losses[0]
    assert result.losses.tolist() == losses[1:]  # the loss right after each lr's step
    average, smoothed = 0.0, []
    for k, value in enumerate(losses[1:]):  # fastai's bias-corrected moving average
        average = 0.98 * average + (1 - 0.98) * value
        smoothed.append(average / (1 - 0.98 ** (k + 1)))
    assert result.smoothed.tolist() == smoothed


def test_it_stops_when_the_smoothed_loss_passes_k_times_its_best() -> None:
    built = ModelSession("linear-regression", DataSpec("line", n=80)).build()
    result = range_test(built, "SGD", 1e-3, 100.0, 100, stop_factor=3.0)
    assert len(result) < 100 and "3 x its best" in result.stopped
    s = result.smoothed
    assert s[-1] > 3.0 * s[:-1].min()
    assert all(s[k] <= 3.0 * s[:k].min() for k in range(1, len(s) - 1))


def test_the_suggestions_lie_where_the_smoothed_loss_descends() -> None:
    built = ModelSession("linear-regression", DataSpec("line", n=80)).build()
    result = range_test(built, "SGD", 1e-4, 10.0, 100)
    X = built.problem.X.numpy()[:, 0]
    # MSE of a line: the Hessian is 2/n [[sum x^2, sum x], [sum x, n]]; SGD diverges past 2/L
    hessian = 2 / len(X) * np.array([[np.sum(X * X), np.sum(X)], [np.sum(X), len(X)]])
    stable = 2 / np.linalg.eigvalsh(hessian).max()
    lowest = int(np.argmin(result.smoothed))
    s = result.smoothed
    for rule in ("steepest", "valley"):
        k = result.suggestions[rule]
        assert k is not None and 0 < k < lowest
        assert s[k + 1] < s[k - 1] < result.smoothed[0]  # descending there
        assert result.suggested_lr(rule) < stable
    data = result.to_json()
    assert data["suggestions"]["valley"]["rule"] == RULES["valley"]
    steep = result.suggestions["steepest"]
    assert data["suggestions"]["steepest"]["lr"] == float(result.lrs[steep])
    assert "steepest" in result.to_csv()


def test_the_rules_on_a_v_shaped_curve_pick_the_falling_side() -> None:
    lrs = np.geomspace(1e-4, 1.0, 60)
    curve = np.concatenate([np.linspace(2.0, 0.5, 40) ** 2, np.linspace(0.3, 3.0, 20)])
    for rule in (steepest, valley):
        k = rule(lrs, curve)
        assert k is not None and 6 <= k < 40
    assert valley(lrs[:2], curve[:2]) is None
    s = smooth([1.0, 1.0, 1.0])
    assert np.allclose(s, 1.0)  # bias-corrected: a constant stays itself


@pytest.mark.parametrize("kwargs, match", [
    ({"low": 1.0, "high": 0.1}, "0 < LOW < HIGH"),
    ({"low": 0.0}, "0 < LOW < HIGH"),
    ({"steps": 2}, "5 to"),
    ({"stop_factor": 0.5}, "stop factor"),
    ({"beta": 1.0}, "beta")])
def test_bad_input_is_one_line(kwargs: dict, match: str) -> None:
    with pytest.raises(RangeTestError, match=match) as info:
        range_test(moons(), "SGD", **kwargs)
    assert "\n" not in str(info.value)


def test_a_cancel_stops_the_range_test() -> None:
    class Cancel:
        def set_progress(self, fraction: float) -> None:
            assert 0 <= fraction <= 1

        def is_interruption_requested(self) -> bool:
            return True

    with pytest.raises(BatchCancelled):
        range_test(moons(), "SGD", state=Cancel())
    assert math.isfinite(range_test(moons(), "SGD", steps=5).start_loss)
