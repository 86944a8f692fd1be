"""The scheduler catalogue: torch's own classes and defaults, parsing, and lr sequences that equal
a plain PyTorch loop bit for bit."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import torch
from torch.optim import lr_scheduler as ls

from core.errors import OptimizerError
from core.schedulers import (
    CATALOGUE,
    SCALE_BASE_LR_SOURCE,
    SchedulerError,
    base_lr_of,
    build_scheduler,
    parse_scheduler_call,
    preview_lr,
    scheduler_call_text,
    scheduler_code,
    rebuild_scheduler,
    set_base_lr,
    step_scheduler,
)

REQUIRED = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
            "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "LinearLR", "ConstantLR",
            "PolynomialLR", "ReduceLROnPlateau", "SequentialLR"]

# (call text as a user types it, the same scheduler as a PyTorch user constructs it,
#  optimizer, its keywords)
CASES: list[tuple[str, Callable, str, dict]] = [
    ("StepLR(step_size=7, gamma=0.5)", lambda o: ls.StepLR(o, step_size=7, gamma=0.5),
     "SGD", {"lr": 0.1}),
    ("MultiStepLR(milestones=[5, 12, 30], gamma=0.3)",
     lambda o: ls.MultiStepLR(o, milestones=[5, 12, 30], gamma=0.3), "SGD", {"lr": 0.1}),
    ("ExponentialLR(gamma=0.97)", lambda o: ls.ExponentialLR(o, gamma=0.97), "Adam",
     {"lr": 0.05}),
    ("CosineAnnealingLR(T_max=20, eta_min=0.001)",
     lambda o: ls.CosineAnnealingLR(o, T_max=20, eta_min=0.001), "SGD", {"lr": 0.1}),
    ("CosineAnnealingWarmRestarts(T_0=6, T_mult=2, eta_min=1e-4)",
     lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2, eta_min=1e-4), "RMSprop",
     {"lr": 0.01}),
    ("CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=5, mode='triangular2')",
     lambda o: ls.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, mode="triangular2"),
     "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("CyclicLR(base_lr=0.001, max_lr=0.01, step_size_up=4, step_size_down=6)",
     lambda o: ls.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=4, step_size_down=6),
     "Adam", {"lr": 0.01}),
    ("OneCycleLR(max_lr=0.2, total_steps=40)",
     lambda o: ls.OneCycleLR(o, max_lr=0.2, total_steps=40), "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("OneCycleLR(max_lr=0.02, epochs=4, steps_per_epoch=10, three_phase=True, "
     "anneal_strategy='linear')",
     lambda o: ls.OneCycleLR(o, max_lr=0.02, epochs=4, steps_per_epoch=10, three_phase=True,
                             anneal_strategy="linear"), "AdamW", {"lr": 0.01}),
    ("LinearLR(start_factor=0.1, total_iters=10)",
     lambda o: ls.LinearLR(o, start_factor=0.1, total_iters=10), "SGD", {"lr": 0.3}),
    ("ConstantLR(factor=0.5, total_iters=8)",
     lambda o: ls.ConstantLR(o, factor=0.5, total_iters=8), "Adagrad", {"lr": 0.1}),
    ("PolynomialLR(total_iters=30, power=2.0)",
     lambda o: ls.PolynomialLR(o, total_iters=30, power=2.0), "SGD", {"lr": 0.1}),
    ("ReduceLROnPlateau(factor=0.5, patience=2)",
     lambda o: ls.ReduceLROnPlateau(o, factor=0.5, patience=2), "SGD", {"lr": 0.4}),
    ("SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=10), "
     "CosineAnnealingLR(T_max=30)], milestones=[10])",
     lambda o: ls.SequentialLR(o, schedulers=[ls.LinearLR(o, start_factor=0.1, total_iters=10),
                                              ls.CosineAnnealingLR(o, T_max=30)],
                               milestones=[10]), "SGD", {"lr": 0.1}),
]
STEPS = 45
IDS = [f"{c[0].split('(')[0]}-{i}" for i, c in enumerate(CASES)]


def _plain_loop(optimizer_name: str, optimizer_kwargs: dict, make: Callable, steps: int
                ) -> tuple[list[float], list[float], list[float]]:
    """A PyTorch user's loop on a tiny problem: (lr used each step, losses, momentum or beta1)."""
    torch.manual_seed(0)
    w = torch.tensor([2.0, -1.5], dtype=torch.float64, requires_grad=True)
    optimizer = getattr(torch.optim, optimizer_name)([w], **optimizer_kwargs)
    scheduler = make(optimizer)
    lrs, losses, momenta = [], [], []
    for _ in range(steps):
        group = optimizer.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group["betas"][0] if "betas" in group else group.get("momentum", 0.0))

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = (w[0] ** 2 + 3 * w[1] ** 2 + torch.sin(w[0] * w[1])).sum()
            loss.backward()
            return loss
        if optimizer_name == "LBFGS":
            loss = optimizer.step(closure)
        else:
            loss = closure()
            optimizer.step()
        losses.append(loss.item())
        if isinstance(scheduler, ls.ReduceLROnPlateau):
            scheduler.step(loss.item())
        elif isinstance(scheduler, ls.OneCycleLR) and scheduler.last_epoch >= scheduler.total_steps:
            pass  # a run longer than the cycle keeps the final lr (torch raises past the end)
        else:
            scheduler.step()
    return lrs, losses, momenta


def test_catalogue_has_every_required_scheduler_as_torchs_own_class() -> None:
    assert set(REQUIRED) <= set(CATALOGUE)
    for name, spec in CATALOGUE.items():
        assert spec.cls is getattr(ls, name)
        assert spec.help and all(a.help for a in spec.arguments)
    assert CATALOGUE["ReduceLROnPlateau"].steps_on_loss
    assert {n for n, s in CATALOGUE.items() if s.cycles_momentum} == {"CyclicLR", "OneCycleLR"}


@pytest.mark.parametrize("name", REQUIRED)
def test_defaults_and_required_arguments_are_torchs_own(name: str) -> None:
    spec = CATALOGUE[name]
    parameters = inspect.signature(spec.cls).parameters
    for a in spec.arguments:
        p = parameters[a.name]  # every argument is a real keyword of the class
        if p.default is inspect.Parameter.empty:
            assert a.required and a.default is None and a.suggested is not None
        else:
            assert not a.required and a.default == p.default, a.name
    # a spec's suggested values for its required arguments make a valid scheduler
    example = {a.name: a.suggested for a in spec.arguments if a.required}
    if name == "OneCycleLR":
        example["total_steps"] = 100
    spec.validate(example)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_preview_equals_a_plain_torch_loop_bit_for_bit(case: tuple) -> None:
    text, make, optimizer_name, optimizer_kwargs = case
    name, kwargs = parse_scheduler_call(text)
    lrs, losses, momenta = _plain_loop(optimizer_name, optimizer_kwargs, make, STEPS)
    preview = preview_lr(optimizer_name, optimizer_kwargs, name, kwargs, STEPS,
                         losses=losses if name == "ReduceLROnPlateau" else None)
    assert preview.lr == lrs
    assert len(set(lrs)) > 1  # the schedule did change the lr
    if name in ("CyclicLR", "OneCycleLR"):
        assert preview.momentum == momenta and len(set(momenta)) > 1
        assert preview.momentum_name == ("beta1" if "betas" in
                                         getattr(torch.optim, optimizer_name).__init__
                                         .__code__.co_varnames else "momentum")
        assert set(preview.as_dict()) == {"lr", preview.momentum_name}
    else:
        assert preview.momentum is None and set(preview.as_dict()) == {"lr"}
    assert preview.note == ""


def test_lbfgs_runs_are_scheduled_too() -> None:
    make = lambda o: ls.StepLR(o, step_size=3, gamma=0.5)  # noqa: E731
    lrs, _, _ = _plain_loop("LBFGS", {"lr": 1.0}, make, 10)
    assert preview_lr("LBFGS", {"lr": 1.0}, "StepLR", {"step_size": 3, "gamma": 0.5}, 10).lr == lrs


def test_plateau_without_losses_is_flat_and_says_why() -> None:
    preview = preview_lr("SGD", {"lr": 0.4}, "ReduceLROnPlateau", {"patience": 0}, 12)
    assert preview.lr == [0.4] * 12
    assert "loss" in preview.note
    # with a loss that never improves after the first, it does go down
    lowered = preview_lr("SGD", {"lr": 0.4}, "ReduceLROnPlateau", {"patience": 0}, 5,
                         losses=[1.0] * 5)
    assert lowered.lr[0] == 0.4 and lowered.lr[-1] < 0.4 and lowered.note == ""


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_call_text_round_trips(case: tuple) -> None:
    name, kwargs = parse_scheduler_call(case[0])
    text = scheduler_call_text(name, kwargs)
    assert parse_scheduler_call(text) == (name, kwargs)
    assert "optimizer" not in text and "last_epoch" not in text
    # the full form writes every argument out and reads back the same
    assert parse_scheduler_call(scheduler_call_text(name, kwargs, only_changed=False)) == (
        name, kwargs)


def test_nested_schedulers_are_also_accepted_as_name_and_kwargs_pairs() -> None:
    name, kwargs = parse_scheduler_call(CASES[13][0])
    # as a session's JSON stores them: lists, not tuples
    again = CATALOGUE["SequentialLR"].validate(
        {"schedulers": [list(p) for p in kwargs["schedulers"]], "milestones": [10]})
    assert again == kwargs


@pytest.mark.parametrize("text, expected", [
    ("CosineAnnealingLR(T_max=-3)", "CosineAnnealingLR: T_max must be a whole number >= 1, "
                                    "got -3"),
    ("CosineAnnealingLR(T_max=2.5)", "CosineAnnealingLR: T_max must be a whole number >= 1, "
                                     "got 2.5"),
    ("StepLR(step_size=10, gamma=0)", "StepLR: gamma must be a number > 0, got 0"),
    ("StepLR()", "StepLR: missing step_size"),
    ("CosineAnnealingLR", "CosineAnnealingLR: missing T_max"),
    ("CyclicLR(base_lr=0.01)", "CyclicLR: missing max_lr"),
    ("OneCycleLR(max_lr=0.1)", "OneCycleLR: missing total_steps (or epochs and "
                               "steps_per_epoch)"),
    ("MultiStepLR(milestones=[50, 20])", "MultiStepLR: milestones must be a list of whole "
                                         "numbers >= 1 in increasing order"),
    ("LinearLR(start_factor=1.5)", "LinearLR: start_factor must be a number in (0, 1], got 1.5"),
    ("CyclicLR(base_lr=0.01, max_lr=0.1, mode='up')", "CyclicLR: mode must be one of"),
    ("OneCycleLR(max_lr=0.1, total_steps=100, three_phase=1)",
     "OneCycleLR: three_phase must be True or False, got 1"),
    ("StepLR(step_size=__import__('os'))", "StepLR: step_size must be a whole number >= 1, got "
                                           "__import__('os')"),
    ("StepLR(step_size=5, gama=0.5)", "StepLR has no argument 'gama'"),
    ("StepLR(5)", "StepLR: give arguments by name"),
    ("StepLR(optimizer=opt, step_size=5)", "StepLR: leave out optimizer="),
    ("StepLR(step_size=5, step_size=6)", "StepLR: step_size is given twice"),
    ("CosineLR(T_max=5)", "unknown scheduler 'CosineLR'"),
    ("os.system('x')", "unknown scheduler 'os.system'"),
    ("StepLR(step_size=5", "cannot read scheduler"),
    ("", "scheduler is empty"),
    ("SequentialLR(schedulers=[LinearLR(total_iters=10), CosineAnnealingLR(T_max=30)], "
     "milestones=[10, 20])", "SequentialLR: milestones must have one entry fewer than "
                             "schedulers"),
    ("SequentialLR(schedulers=[LinearLR(), CosineAnnealingLR(T_max=-1)], milestones=[5])",
     "CosineAnnealingLR: T_max must be a whole number >= 1, got -1"),
    ("SequentialLR(schedulers=[LinearLR(), ReduceLROnPlateau()], milestones=[5])",
     "SequentialLR: schedulers cannot contain ReduceLROnPlateau"),
    ("SequentialLR(schedulers=LinearLR(), milestones=[5])",
     "SequentialLR: schedulers must be a list of scheduler calls"),
])
def test_bad_calls_get_one_line_naming_scheduler_argument_and_value(text: str, expected: str
                                                                    ) -> None:
    with pytest.raises(SchedulerError) as info:
        parse_scheduler_call(text)
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message
    assert isinstance(info.value, OptimizerError)  # reported wherever optimizer errors are


def test_too_long_text_is_refused_before_parsing() -> None:
    with pytest.raises(SchedulerError, match="too long"):
        parse_scheduler_call("StepLR(step_size=" + "1" * 600 + ")")


def test_cycling_momentum_needs_an_optimizer_with_momentum() -> None:
    w = torch.zeros(1, requires_grad=True)
    with pytest.raises(SchedulerError, match="^CyclicLR: .*momentum"):
        build_scheduler(torch.optim.Adagrad([w]), "CyclicLR", {"base_lr": 0.01, "max_lr": 0.1})
    # without cycling it works on Adagrad
    build_scheduler(torch.optim.Adagrad([w]), "CyclicLR",
                    {"base_lr": 0.01, "max_lr": 0.1, "cycle_momentum": False})


def test_step_scheduler_steps_plateau_on_the_loss() -> None:
    w = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=1.0)
    plateau = build_scheduler(optimizer, "ReduceLROnPlateau", {"patience": 0, "factor": 0.5})
    for loss in (3.0, 3.0, 3.0):
        optimizer.step()
        step_scheduler(plateau, torch.tensor(loss))
    assert optimizer.param_groups[0]["lr"] == 0.25
    with pytest.raises(SchedulerError, match="training loss"):
        step_scheduler(plateau)


# --- the lr slider of a scheduled run ------------------------------------------------------------

def _lrs(optimizer: torch.optim.Optimizer, scheduler: object, steps: int) -> list[float]:
    out = []
    for k in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        step_scheduler(scheduler, 1.0 / (k + 1) if k < 5 else 1.0)
    return out


def _fresh(case: tuple, lr: float) -> tuple[torch.optim.Optimizer, object]:
    """A run built directly with base lr `lr`, by the slider rule (the optimizer's lr, or
    OneCycleLR's max_lr, or CyclicLR's base_lr with max_lr scaled alike)."""
    text, _, optimizer_name, optimizer_kwargs = case
    name, kwargs = parse_scheduler_call(text)
    optimizer_kwargs = dict(optimizer_kwargs, lr=lr)
    if name == "OneCycleLR":
        kwargs["max_lr"] = lr
    if name == "CyclicLR":
        kwargs["max_lr"] = kwargs["max_lr"] * lr / kwargs["base_lr"]
        kwargs["base_lr"] = lr
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = getattr(torch.optim, optimizer_name)([w], **optimizer_kwargs)
    return optimizer, build_scheduler(optimizer, name, kwargs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_moving_the_base_lr_at_step_zero_equals_a_fresh_build(case: tuple) -> None:
    optimizer, scheduler = _fresh(case, 0.01)
    assert base_lr_of(scheduler, optimizer) == 0.01
    set_base_lr(scheduler, optimizer, 0.037)
    assert base_lr_of(scheduler, optimizer) == 0.037
    fresh_optimizer, fresh_scheduler = _fresh(case, 0.037)
    assert _lrs(optimizer, scheduler, STEPS) == _lrs(fresh_optimizer, fresh_scheduler, STEPS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_moving_the_base_lr_mid_run_scales_the_rest_of_the_schedule(case: tuple) -> None:
    optimizer, scheduler = _fresh(case, 0.01)
    _lrs(optimizer, scheduler, 13)
    set_base_lr(scheduler, optimizer, 0.03)
    assert base_lr_of(scheduler, optimizer) == pytest.approx(0.03, rel=1e-15)
    after = _lrs(optimizer, scheduler, STEPS - 13)
    # the run continues as if it had been built with the new base lr from the start
    reference_optimizer, reference = _fresh(case, 0.03)
    expected = _lrs(reference_optimizer, reference, STEPS)[13:]
    assert after == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert after != pytest.approx(_lrs(*_fresh(case, 0.01), STEPS)[13:], rel=1e-3)


def test_bad_base_lr_changes_nothing() -> None:
    optimizer, scheduler = _fresh(CASES[0], 0.01)
    for bad in (0.0, -1.0, float("nan"), "0.1", True):
        with pytest.raises(SchedulerError, match="base lr must be a number > 0"):
            set_base_lr(scheduler, optimizer, bad)  # type: ignore[arg-type]
    assert optimizer.param_groups[0]["lr"] == 0.01 and scheduler.base_lrs == [0.01]


def test_attribute_spelling_is_read_and_others_refused() -> None:
    assert parse_scheduler_call("torch.optim.lr_scheduler.StepLR(step_size=5)")[0] == "StepLR"
    assert parse_scheduler_call("lr_scheduler.StepLR(step_size=5)")[0] == "StepLR"
    with pytest.raises(SchedulerError, match="unknown scheduler 'torch.nn.StepLR'"):
        parse_scheduler_call("torch.nn.StepLR(step_size=5)")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scheduler_code_for_scripts_builds_the_same_schedule(case: tuple) -> None:
    text, _, optimizer_name, optimizer_kwargs = case
    name, kwargs = parse_scheduler_call(text)
    code = scheduler_code(name, kwargs)
    assert code.startswith(f"torch.optim.lr_scheduler.{name}(optimizer, ")
    lrs, losses, _ = _plain_loop(optimizer_name, optimizer_kwargs,
                                 lambda o: eval(code, {"torch": torch, "optimizer": o}), STEPS)
    preview = preview_lr(optimizer_name, optimizer_kwargs, name, kwargs, STEPS,
                         losses=losses if name == "ReduceLROnPlateau" else None)
    assert preview.lr == lrs


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_pasted_scaling_source_replays_a_mid_run_move_bit_for_bit(case: tuple) -> None:
    namespace: dict = {}
    exec(SCALE_BASE_LR_SOURCE, namespace)  # the text an exported script contains; torch only
    ours, theirs = _fresh(case, 0.01), _fresh(case, 0.01)
    _lrs(*ours, 9)
    _lrs(*theirs, 9)
    set_base_lr(ours[1], ours[0], 0.004)
    namespace["scale_base_lr"](theirs[1], theirs[0], 0.004)
    assert _lrs(*ours, STEPS - 9) == _lrs(*theirs, STEPS - 9)


def test_a_scheduler_built_again_mid_run_starts_its_schedule_from_the_base_lr() -> None:
    """What NOT_LIVE_REASON promises for a changed argument, or another scheduler."""
    assert all(not a.live and a.not_live_reason for s in CATALOGUE.values() for a in s.arguments)
    w = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.2, momentum=0.5)
    scheduler = build_scheduler(optimizer, "OneCycleLR", {"max_lr": 1.0, "total_steps": 10})
    _lrs(optimizer, scheduler, 5)
    again = rebuild_scheduler(optimizer, "StepLR", {"step_size": 3, "gamma": 0.5}, 0.2)
    assert _lrs(optimizer, again, 4) == [0.2, 0.2, 0.2, 0.1]
    # the same as a PyTorch user's fresh optimizer and scheduler
    fresh = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    third = rebuild_scheduler(optimizer, "CosineAnnealingLR", {"T_max": 7}, 0.2)
    assert _lrs(optimizer, third, 9) == _lrs(fresh, ls.CosineAnnealingLR(fresh, T_max=7), 9)
