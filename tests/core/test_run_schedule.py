"""Schedulers, clipping and noise in a Run equal the plain torch loop that uses them.

The reference is the loop a PyTorch user writes, with torch's classes built directly here (not
through core/schedulers.py):

    opt.zero_grad(); loss = f(x, y); loss.backward()
    record(...)                                   # the noise-free gradient
    p.grad.add_(torch.randn(..., generator=g), alpha=sigma)   # noise, then clipping
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step(); scheduler.step()                  # scheduler.step(loss) for ReduceLROnPlateau
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler

from core.gradient_tools import GradientClipping, GradientNoise
from core.run import Run
from core.schedulers import CATALOGUE as SCHEDULERS
from core.schedulers import SchedulerError
from core.surfaces import get_surface
from core.trajectory import FIELDS
from tests.core.test_problems import ToyProblem

F64 = torch.float64
STEPS = 60

# Every catalogue scheduler, with arguments whose effect shows within STEPS steps:
# (call text for the run, the same scheduler built with torch directly).
CASES = {
    "StepLR": ("StepLR(step_size=7, gamma=0.5)",
               lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    "MultiStepLR": ("MultiStepLR(milestones=[5, 20], gamma=0.3)",
                    lambda o: lr_scheduler.MultiStepLR(o, milestones=[5, 20], gamma=0.3)),
    "ExponentialLR": ("ExponentialLR(gamma=0.95)",
                      lambda o: lr_scheduler.ExponentialLR(o, gamma=0.95)),
    "CosineAnnealingLR": ("CosineAnnealingLR(T_max=30, eta_min=1e-5)",
                          lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=1e-5)),
    "CosineAnnealingWarmRestarts": (
        "CosineAnnealingWarmRestarts(T_0=10, T_mult=2)",
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2)),
    "CyclicLR": ("CyclicLR(base_lr=0.0005, max_lr=0.002, step_size_up=8)",
                 lambda o: lr_scheduler.CyclicLR(o, base_lr=0.0005, max_lr=0.002,
                                                 step_size_up=8)),
    "OneCycleLR": ("OneCycleLR(max_lr=0.002, total_steps=60)",
                   lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.002, total_steps=60)),
    "LinearLR": ("LinearLR(start_factor=0.2, total_iters=15)",
                 lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=15)),
    "ConstantLR": ("ConstantLR(factor=0.5, total_iters=10)",
                   lambda o: lr_scheduler.ConstantLR(o, factor=0.5, total_iters=10)),
    "PolynomialLR": ("PolynomialLR(total_iters=40, power=2.0)",
                     lambda o: lr_scheduler.PolynomialLR(o, total_iters=40, power=2.0)),
    "ReduceLROnPlateau": ("ReduceLROnPlateau(patience=2, factor=0.5, threshold=0.2)",
                          lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=2, factor=0.5,
                                                                   threshold=0.2)),
    "SequentialLR": (
        "SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=10), "
        "CosineAnnealingLR(T_max=50)], milestones=[10])",
        lambda o: lr_scheduler.SequentialLR(o, schedulers=[
            lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
            lr_scheduler.CosineAnnealingLR(o, T_max=50)], milestones=[10])),
}


def plain_race(surface_name: str, optimizer: str, hps: dict, steps: int, make_scheduler=None,
               clip=None, noise=None) -> dict[str, list[float]]:
    """The plain loop on x and y; `clip` = ("norm" | "value", threshold), noise = (sigma, seed)."""
    surface = get_surface(surface_name)
    x = torch.tensor(surface.start[0], dtype=F64, requires_grad=True)
    y = torch.tensor(surface.start[1], dtype=F64, requires_grad=True)
    opt = getattr(torch.optim, optimizer)([x, y], **hps)
    sched = make_scheduler(opt) if make_scheduler else None
    g = torch.Generator().manual_seed(noise[1]) if noise else None
    out: dict[str, list[float]] = {k: [] for k in (*FIELDS, "noisy_grad_x", "noisy_grad_y",
                                                   "norm_before", "norm_after", "clipped")}

    def gradient() -> torch.Tensor:
        opt.zero_grad()
        loss = surface(x, y)
        loss.backward()
        if noise:
            for p in (x, y):
                p.grad.add_(torch.randn(p.grad.shape, generator=g, dtype=p.grad.dtype),
                            alpha=noise[0])
        if clip:
            before = [x.grad.clone(), y.grad.clone()]
            if clip[0] == "norm":
                norm = float(torch.nn.utils.clip_grad_norm_([x, y], max_norm=clip[1]))
            else:
                norm = float(torch.nn.utils.get_total_norm([x.grad, y.grad]))
                torch.nn.utils.clip_grad_value_([x, y], clip_value=clip[1])
            return loss, before, norm
        return loss, None, None

    for k in range(steps + 1):
        opt.zero_grad()
        clean = surface(x, y)
        clean.backward()
        gx, gy = x.grad.item(), y.grad.item()
        if optimizer != "LBFGS":
            loss, before, norm = gradient()  # the same point: the same loss, drawn noise
        for name, v in (("step", k), ("x", x.item()), ("y", y.item()), ("loss", clean.item()),
                        ("grad_x", gx), ("grad_y", gy), ("lr", opt.param_groups[0]["lr"])):
            out[name].append(float(v))
        if optimizer != "LBFGS":
            if noise:
                out["noisy_grad_x"].append((before[0] if clip else x.grad).item())
                out["noisy_grad_y"].append((before[1] if clip else y.grad).item())
            if clip:
                changed = not (torch.equal(before[0], x.grad) and torch.equal(before[1], y.grad))
                out["clipped"].append(float(changed))
                out["norm_before"].append(norm)
                out["norm_after"].append(
                    float(torch.nn.utils.get_total_norm([x.grad, y.grad])) if changed else norm)
        if k == steps:
            break
        if optimizer == "LBFGS":
            opt.step(lambda: gradient()[0])
        else:
            opt.step()
        if sched is not None:
            if isinstance(sched, lr_scheduler.ReduceLROnPlateau):
                sched.step(clean.item())
            else:
                sched.step()
    return out


def assert_race_equal(run: Run, ref: dict[str, list[float]]) -> None:
    t = run.trajectory
    assert len(t) == len(ref["step"])
    for name in FIELDS:
        np.testing.assert_array_equal(t.column(name), np.array(ref[name]), err_msg=name)


def test_cases_cover_the_scheduler_catalogue() -> None:
    assert set(CASES) == set(SCHEDULERS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_scheduled_race_equals_the_plain_loop(name: str) -> None:
    text, make = CASES[name]
    hps = {"lr": 1e-3, "momentum": 0.9}
    run = Run(get_surface("rosenbrock"), "SGD", hps, scheduler=text)
    run.step(STEPS)
    ref = plain_race("rosenbrock", "SGD", hps, STEPS, make)
    assert_race_equal(run, ref)
    # a scheduler adds no column, except the momentum (or beta1) it cycles
    cycled = ("momentum",) if name in ("CyclicLR", "OneCycleLR") else ()
    assert run.trajectory.fields == (*FIELDS, *cycled)
    assert len(set(ref["lr"])) > 1  # the schedule really moved the lr
    run.reset()  # a fresh scheduler: the same run again
    run.step(STEPS)
    assert_race_equal(run, ref)


@pytest.mark.parametrize("optimizer,hps,name", [
    ("Adam", {"lr": 0.01}, "OneCycleLR"),  # cycles beta1
    ("RMSprop", {"lr": 0.01, "momentum": 0.5}, "CyclicLR"),
    ("LBFGS", {"lr": 0.5}, "StepLR"),
    ("Adam", {"lr": 0.05}, "ReduceLROnPlateau"),
])
def test_scheduled_race_with_other_optimizers(optimizer: str, hps: dict, name: str) -> None:
    text, make = CASES[name]
    run = Run(get_surface("rosenbrock"), optimizer, hps, scheduler=text)
    run.step(30)
    assert_race_equal(run, plain_race("rosenbrock", optimizer, hps, 30, make))


@pytest.mark.parametrize("kind,threshold", [("norm", 5.0), ("value", 2.0)])
def test_clipped_race_equals_the_plain_loop(kind: str, threshold: float) -> None:
    hps = {"lr": 1e-3, "momentum": 0.9}
    run = Run(get_surface("rosenbrock"), "SGD", hps, clipping=GradientClipping(kind, threshold))
    run.step(STEPS)
    ref = plain_race("rosenbrock", "SGD", hps, STEPS, clip=(kind, threshold))
    assert_race_equal(run, ref)
    t = run.trajectory
    np.testing.assert_array_equal(t.column("clipped"), ref["clipped"])
    np.testing.assert_array_equal(t.column("grad_norm_before_clip"), ref["norm_before"])
    np.testing.assert_array_equal(t.column("grad_norm_after_clip"), ref["norm_after"])
    assert 0 < t.column("clipped").sum() < len(t)  # some steps clipped, some not


def test_noisy_race_equals_the_plain_loop_and_keeps_the_clean_gradient() -> None:
    hps = {"lr": 1e-3}
    run = Run(get_surface("rosenbrock"), "SGD", hps, noise=GradientNoise(20.0, seed=7),
              clipping=GradientClipping("norm", 50.0))
    run.step(STEPS)
    ref = plain_race("rosenbrock", "SGD", hps, STEPS, clip=("norm", 50.0), noise=(20.0, 7))
    assert_race_equal(run, ref)
    t = run.trajectory
    np.testing.assert_array_equal(t.column("noisy_grad_x"), ref["noisy_grad_x"])
    np.testing.assert_array_equal(t.column("noisy_grad_y"), ref["noisy_grad_y"])
    assert not np.array_equal(t.column("noisy_grad_x"), t.grad_x)
    # a reset starts the noise again from its seed: the same run twice
    first = t.column("noisy_grad_x").copy()
    run.reset()
    run.step(STEPS)
    np.testing.assert_array_equal(run.trajectory.column("noisy_grad_x"), first)


def test_noisy_lbfgs_adds_noise_in_its_closure() -> None:
    hps = {"lr": 0.5, "max_iter": 3}
    run = Run(get_surface("rosenbrock"), "LBFGS", hps, noise=GradientNoise(0.5, seed=3))
    run.step(10)
    assert_race_equal(run, plain_race("rosenbrock", "LBFGS", hps, 10, noise=(0.5, 3)))
    noisy = run.trajectory.column("noisy_grad_x")
    assert np.isfinite(noisy[:-1]).all() and np.isnan(noisy[-1])  # the next step fills it


def test_runs_without_tools_keep_the_race_columns() -> None:
    run = Run(get_surface("rosenbrock"), "Adam", {"lr": 0.05})
    run.step(5)
    assert run.trajectory.fields == FIELDS
    assert set(run.config()) == {"optimizer", "hyperparameters", "frozen", "label", "color",
                                 "enabled"}


def test_lr_slider_on_a_scheduled_run_moves_the_base_lr() -> None:
    surface = get_surface("rosenbrock")
    text = "CosineAnnealingLR(T_max=80)"
    # before the first step: exactly the run built with the new lr
    moved = Run(surface, "SGD", {"lr": 1e-3}, scheduler=text)
    moved.set_hyperparameter("lr", 2e-3)
    moved.step(30)
    built = Run(surface, "SGD", {"lr": 2e-3}, scheduler=text)
    built.step(30)
    assert_race_equal(moved, {f: list(built.trajectory.column(f)) for f in FIELDS})
    # mid-run: the schedule keeps its position, from the new base lr
    run = Run(surface, "SGD", {"lr": 1e-3}, scheduler=text)
    run.step(20)
    run.set_hyperparameter("lr", 2e-3)
    assert run.hyperparameters["lr"] == 2e-3
    lrs = Run(surface, "SGD", {"lr": 2e-3}, scheduler=text)
    lrs.step(40)
    assert run.trajectory.lr[-1] == pytest.approx(lrs.trajectory.lr[20], rel=1e-12)
    run.step(20)
    np.testing.assert_allclose(run.trajectory.lr[20:], lrs.trajectory.lr[20:], rtol=1e-12)
    assert run.trajectory.lr[21] != pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 21 / 80)))


def test_lr_slider_on_one_cycle_moves_max_lr_and_a_reset_keeps_it() -> None:
    run = Run(get_surface("rosenbrock"), "SGD", {"lr": 1e-3, "momentum": 0.9},
              scheduler="OneCycleLR(max_lr=0.002, total_steps=60)")
    assert run.hyperparameters["lr"] == 0.002  # the slider shows the peak
    run.step(10)
    run.set_hyperparameter("lr", 0.004)
    assert run.hyperparameters["lr"] == 0.004
    assert run.scheduler_setting[1]["max_lr"] == 0.004
    run.reset()
    assert run.optimizer.param_groups[0]["max_lr"] == 0.004


def test_set_scheduler_clipping_and_noise_mid_run() -> None:
    hps = {"lr": 1e-3}
    run = Run(get_surface("rosenbrock"), "SGD", hps)
    run.step(5)
    run.set_scheduler("ExponentialLR(gamma=0.9)")
    run.step(3)
    assert run.trajectory.lr[-1] == pytest.approx(1e-3 * 0.9 ** 3, rel=1e-12)
    run.set_clipping(GradientClipping("value", 1.0))
    run.set_noise(GradientNoise(1.0, seed=1))
    # columns in the order the tools came; earlier entries have no figures
    assert run.trajectory.fields[len(FIELDS):] == (
        "clipped", "grad_norm_before_clip", "grad_norm_after_clip", "noisy_grad_x",
        "noisy_grad_y")
    assert np.isnan(run.trajectory.column("clipped")[0])  # not clipped then: no figure
    assert run.trajectory.column("clipped")[-1] == 1.0  # the current gradient is clipped
    run.step(2)
    assert np.isfinite(run.trajectory.column("noisy_grad_x")[-3:]).all()
    run.set_scheduler(None)
    assert run.optimizer.param_groups[0]["lr"] == 1e-3
    assert "initial_lr" not in run.optimizer.param_groups[0]
    run.set_clipping(None)
    run.step(1)  # the column of a tool the run no longer has: NaN from then on
    assert np.isnan(run.trajectory.column("clipped")[-1])
    assert np.isfinite(run.trajectory.column("noisy_grad_x")[-1])


def test_freezing_a_noisy_run_draws_the_entry_noise_again() -> None:
    """The freeze acts as in the plain loop where y is frozen before the gradient at that point:
    the same draws, x getting the first one (y, frozen, draws nothing)."""
    surface = get_surface("rosenbrock")
    run = Run(surface, "SGD", {"lr": 1e-3}, noise=GradientNoise(5.0, seed=2))
    run.step(3)
    run.set_frozen("y", True)
    run.step(2)
    x = torch.tensor(surface.start[0], dtype=F64, requires_grad=True)
    y = torch.tensor(surface.start[1], dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([x, y], lr=1e-3)
    g = torch.Generator().manual_seed(2)
    xs = []
    for k in range(6):
        if k == 3:
            y.requires_grad_(False)
            y.grad = None
        opt.zero_grad()
        surface(x, y).backward()
        xs.append(x.item())
        for p in (x, y):
            if p.grad is not None:
                p.grad.add_(torch.randn(p.grad.shape, generator=g, dtype=F64), alpha=5.0)
        if k < 5:
            opt.step()
    np.testing.assert_array_equal(run.trajectory.x, xs)
    assert np.isnan(run.trajectory.column("noisy_grad_y")[-1])


def test_general_problem_with_schedule_clipping_and_noise_equals_the_plain_loop() -> None:
    problem = ToyProblem()
    run = Run(problem, "Adam", {"lr": 0.05}, scheduler="StepLR(step_size=4, gamma=0.5)",
              clipping=GradientClipping("norm", 1.0), noise=GradientNoise(0.3, seed=5))
    run.step(12)
    params = {n: t.clone().requires_grad_(True) for n, t in problem.initial_parameters().items()}
    leaves = [params[n] for n in problem.parameter_names]
    opt = torch.optim.Adam(leaves, lr=0.05)
    sched = lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    g = torch.Generator().manual_seed(5)
    losses, norms, lrs = [], [], []
    for k in range(13):
        opt.zero_grad()
        loss = problem.loss(params, k)
        loss.backward()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
        for p in leaves:
            p.grad.add_(torch.randn(p.grad.shape, generator=g, dtype=F64), alpha=0.3)
        norms.append(float(torch.nn.utils.clip_grad_norm_(leaves, max_norm=1.0)))
        if k < 12:
            opt.step()
            sched.step()
    t = run.trajectory
    np.testing.assert_array_equal(t.loss, losses)
    np.testing.assert_array_equal(t.lr, lrs)
    np.testing.assert_array_equal(t.column("grad_norm_before_clip"), norms)
    assert "noisy_grad_norm:W" in t.fields and "noisy_grad_w[0]" in t.fields
    for name in problem.parameter_names:
        assert torch.equal(run.parameters[name].detach(), params[name].detach())


def test_a_bad_scheduler_is_one_line_naming_it_and_builds_nothing() -> None:
    with pytest.raises(SchedulerError) as e:
        Run(get_surface("rosenbrock"), "SGD", {"lr": 1e-3}, scheduler="StepLR(step_size=0)")
    assert "StepLR" in str(e.value) and "step_size" in str(e.value) and "0" in str(e.value)
    run = Run(get_surface("rosenbrock"), "SGD", {"lr": 1e-3})
    with pytest.raises(SchedulerError):
        run.set_scheduler("CosineAnnealingLR(T_max=-1)")
    assert run.scheduler is None and run.scheduler_setting is None


@pytest.mark.parametrize("optimizer,hps,name,column,read", [
    ("Adam", {"lr": 0.01}, "OneCycleLR", "beta1", lambda g: g["betas"][0]),
    ("SGD", {"lr": 1e-3, "momentum": 0.9}, "CyclicLR", "momentum", lambda g: g["momentum"]),
])
def test_a_cycled_momentum_has_its_own_column(optimizer, hps, name, column, read) -> None:
    text, make = CASES[name]
    run = Run(get_surface("rosenbrock"), optimizer, hps, scheduler=text)
    run.step(20)
    surface = get_surface("rosenbrock")
    x = torch.tensor(surface.start[0], dtype=F64, requires_grad=True)
    y = torch.tensor(surface.start[1], dtype=F64, requires_grad=True)
    opt = getattr(torch.optim, optimizer)([x, y], **hps)
    sched = make(opt)
    expected = []
    for k in range(21):
        opt.zero_grad()
        surface(x, y).backward()
        expected.append(float(read(opt.param_groups[0])))
        if k < 20:
            opt.step()
            sched.step()
    assert run.trajectory.fields == (*FIELDS, column)
    np.testing.assert_array_equal(run.trajectory.column(column), expected)
    assert len(set(expected)) > 1
    run.set_scheduler(None)  # the column stays, the momentum is the run's own again
    run.step(1)
    assert np.isnan(run.trajectory.column(column)[-1])
