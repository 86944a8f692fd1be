"""Gradient noise and clipping against a plain torch loop with the same generator seed."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import PlaygroundError
from core.gradient_tools import (
    GRADIENT_SETTINGS,
    GradientClipping,
    GradientNoise,
    GradientToolError,
    clipping_from_settings,
    process_gradients,
    total_norm,
)


def _leaves(frozen: str = "") -> list[torch.Tensor]:
    return [torch.tensor(v, dtype=torch.float64, requires_grad=name not in frozen)
            for name, v in (("x", 1.5), ("y", -0.7))]


def _loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (1 - x) ** 2 + 10 * (y - x ** 2) ** 2  # Rosenbrock-like: steep, so clipping bites


def _engine_run(steps: int, sigma: float, seed: int, clipping: GradientClipping | None,
                frozen: str = "") -> tuple[list[tuple[float, float]], list]:
    """Our pieces in a training loop: backward -> process_gradients -> step."""
    x, y = _leaves(frozen)
    params = [x, y]
    optimizer = torch.optim.SGD([p for p in params if p.requires_grad], lr=0.003, momentum=0.9)
    noise = GradientNoise(sigma, seed)
    path, reports = [], []
    for _ in range(steps):
        optimizer.zero_grad()
        _loss(x, y).backward()
        reports.append(process_gradients(params, noise, clipping))
        optimizer.step()
        path.append((x.item(), y.item()))
    return path, reports


def _plain_loop(steps: int, sigma: float, seed: int, max_norm: float | None = None,
                clip_value: float | None = None, frozen: str = "") -> list[tuple[float, float]]:
    """The same run as a PyTorch user writes it."""
    x, y = _leaves(frozen)
    params = [p for p in (x, y) if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.003, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    path = []
    for _ in range(steps):
        optimizer.zero_grad()
        _loss(x, y).backward()
        for p in params:
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype),
                        alpha=sigma)
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm)
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value=clip_value)
        optimizer.step()
        path.append((x.item(), y.item()))
    return path


def test_noise_equals_a_plain_loop_with_the_same_seed_and_ignores_the_global_rng() -> None:
    torch.manual_seed(1)
    path, reports = _engine_run(60, 0.5, seed=42, clipping=None)
    torch.manual_seed(999)  # the global RNG plays no part
    assert path == _plain_loop(60, 0.5, seed=42)
    assert all(math.isfinite(v) for point in path for v in point)
    assert path != _plain_loop(60, 0.5, seed=43)
    assert path != _plain_loop(60, 0.0, seed=42)  # the noise did move the run
    assert all(r.noise_added and r.clip is None for r in reports)


def test_clean_and_noisy_gradients_are_both_returned() -> None:
    x, y = _leaves()
    _loss(x, y).backward()
    fresh = _leaves()  # the same point
    true_grads = torch.autograd.grad(_loss(*fresh), fresh)
    noise = GradientNoise(0.25, seed=5)
    result = noise.add([x, y])
    generator = torch.Generator().manual_seed(5)
    for clean, noisy, p, true in zip(result.clean, result.noisy, (x, y), true_grads):
        assert torch.equal(clean, true)
        draw = torch.randn((), generator=generator, dtype=torch.float64)
        assert torch.equal(noisy, clean.clone().add_(draw, alpha=0.25))
        assert torch.equal(p.grad, noisy)
        assert not torch.equal(noisy, clean)
    # the returned copies do not alias .grad
    x.grad.zero_()
    assert result.noisy[0].item() != 0.0


def test_frozen_parameters_draw_no_noise_and_are_skipped() -> None:
    path, reports = _engine_run(40, 0.5, seed=3, clipping=GradientClipping("norm", 1.0),
                                frozen="y")
    assert path == _plain_loop(40, 0.5, seed=3, max_norm=1.0, frozen="y")
    assert all(p[1] == -0.7 for p in path)  # y never moved
    assert all(r.clean[1] is None and r.noisy[1] is None for r in reports)
    assert all(r.clean[0] is not None for r in reports)


def test_runs_with_their_own_generators_are_independent() -> None:
    a, b = GradientNoise(1.0, seed=7), GradientNoise(1.0, seed=7)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    draws_a = []
    for _ in range(5):  # interleaved: a's draws do not shift b's
        w.grad = torch.zeros(3, dtype=torch.float64)
        draws_a.append(a.add([w]).noisy[0])
        w.grad = torch.zeros(3, dtype=torch.float64)
        b.add([w])
    b.reset()
    for expected in draws_a:
        w.grad = torch.zeros(3, dtype=torch.float64)
        assert torch.equal(b.add([w]).noisy[0], expected)
    # a saved generator state resumes the same sequence
    state = a.get_state()
    w.grad = torch.zeros(3, dtype=torch.float64)
    next_draw = a.add([w]).noisy[0]
    a.set_state(state)
    w.grad = torch.zeros(3, dtype=torch.float64)
    assert torch.equal(a.add([w]).noisy[0], next_draw)


@pytest.mark.parametrize("kind, threshold", [("norm", 2.0), ("value", 0.5)])
def test_clipping_after_noise_equals_a_plain_loop(kind: str, threshold: float) -> None:
    clipping = GradientClipping(kind, threshold)
    path, reports = _engine_run(80, 0.3, seed=11, clipping=clipping)
    expected = _plain_loop(80, 0.3, seed=11, max_norm=threshold if kind == "norm" else None,
                           clip_value=threshold if kind == "value" else None)
    assert path == expected
    flags = [r.clip.clipped for r in reports]
    assert any(flags) and not all(flags)  # the steep start is clipped, the valley is not


def test_norm_clipping_reports_torchs_norms_and_whether_it_scaled() -> None:
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    v = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    frozen = torch.zeros(1, dtype=torch.float64)  # no gradient: skipped
    w.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    v.grad = torch.tensor([12.0], dtype=torch.float64)
    # torch's own answer, on stand-ins holding the same gradients
    stand_ins = [torch.zeros(2, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)]
    for s, g in zip(stand_ins, ([3.0, 4.0], [12.0])):
        s.grad = torch.tensor(g, dtype=torch.float64)
    torch_norm = torch.nn.utils.clip_grad_norm_(stand_ins, max_norm=1.0)
    result = GradientClipping("norm", 1.0).clip([w, frozen, v])
    assert result.norm_before == float(torch_norm) == 13.0
    assert result.clipped and result.norm_after == pytest.approx(1.0, rel=1e-5)
    assert torch.equal(w.grad, stand_ins[0].grad) and torch.equal(v.grad, stand_ins[1].grad)
    assert frozen.grad is None
    # below the threshold: nothing changes
    unchanged = GradientClipping("norm", 100.0).clip([w, v])
    assert not unchanged.clipped and unchanged.norm_before == unchanged.norm_after
    # the inf norm is torch's too
    w.grad = torch.tensor([3.0, -5.0], dtype=torch.float64)
    inf = GradientClipping("norm", 2.0, norm_type=math.inf).clip([w])
    assert inf.norm_before == 5.0 and inf.clipped
    assert inf.norm_after == pytest.approx(2.0, rel=1e-5)


def test_value_clipping_flags_only_a_clamped_element() -> None:
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    w.grad = torch.tensor([0.2, -0.5, 0.4], dtype=torch.float64)
    assert not GradientClipping("value", 0.5).clip([w]).clipped  # at the bound: not clamped
    w.grad = torch.tensor([0.2, -0.9, 0.4], dtype=torch.float64)
    result = GradientClipping("value", 0.5).clip([w])
    assert result.clipped
    assert torch.equal(w.grad, torch.tensor([0.2, -0.5, 0.4], dtype=torch.float64))
    assert result.norm_before == pytest.approx(math.sqrt(0.04 + 0.81 + 0.16))
    assert result.norm_after == pytest.approx(math.sqrt(0.04 + 0.25 + 0.16))


def test_no_gradients_at_all_is_not_an_error() -> None:
    frozen = _leaves("xy")
    step = process_gradients(frozen, GradientNoise(1.0, 0), GradientClipping("norm", 1.0))
    assert step.clean == [None, None] and step.clip is not None and not step.clip.clipped
    assert total_norm(frozen) == 0.0


def test_without_noise_clean_and_noisy_are_the_gradient() -> None:
    x, y = _leaves()
    _loss(x, y).backward()
    grads = [x.grad.clone(), y.grad.clone()]
    step = process_gradients([x, y])
    assert all(torch.equal(a, b) for a, b in zip(step.clean, grads))
    assert step.noisy is step.clean and not step.noise_added and step.clip is None


def test_the_export_snippets_are_the_same_computation() -> None:
    noise = GradientNoise(0.3, seed=9)
    clipping = GradientClipping("norm", 0.5)
    ours, theirs = _leaves(), _leaves()
    for leaves in (ours, theirs):
        _loss(*leaves).backward()
    process_gradients(ours, noise, clipping)
    namespace = {"torch": torch, "parameters": theirs,
                 "generator": torch.Generator().manual_seed(9)}
    exec(noise.call_text() + "\n" + clipping.call_text(), namespace)  # our own generated code
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours, theirs))
    assert GradientClipping("value", 0.1).call_text("model.parameters()") == (
        "torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.1)")


@pytest.mark.parametrize("make, message", [
    (lambda: GradientClipping("norm", 0.0), "clip_norm must be a number > 0, got 0.0"),
    (lambda: GradientClipping("value", -1), "clip_value must be a number > 0, got -1"),
    (lambda: GradientClipping("norm", float("nan")), "clip_norm must be a number > 0, got nan"),
    (lambda: GradientClipping("both", 1.0), "clipping is 'norm' or 'value', got 'both'"),
    (lambda: GradientClipping("norm", 1.0, norm_type=0),
     "norm_type must be a number > 0 or inf, got 0"),
    (lambda: clipping_from_settings(1.0, 0.5), "give clip_norm or clip_value, not both"),
    (lambda: GradientNoise(-0.1), "noise must be a number >= 0, got -0.1"),
    (lambda: GradientNoise(True), "noise must be a number >= 0, got True"),
    (lambda: GradientNoise(0.1, seed=-1), "seed must be a whole number >= 0, got -1"),
    (lambda: GradientNoise(0.1, seed=1.5), "seed must be a whole number >= 0, got 1.5"),
])
def test_bad_settings_get_one_line(make: object, message: str) -> None:
    with pytest.raises(GradientToolError) as info:
        make()  # type: ignore[operator]
    assert str(info.value) == message
    assert isinstance(info.value, PlaygroundError)


def test_settings_are_described_like_the_catalogue() -> None:
    assert [h.name for h in GRADIENT_SETTINGS] == ["clip_norm", "clip_value", "noise", "seed"]
    assert all(h.help for h in GRADIENT_SETTINGS)
    assert clipping_from_settings() is None
    assert clipping_from_settings(clip_value=0.2) == GradientClipping("value", 0.2)
