"""core.analysis: local gradient / Hessian / curvature shape, and the cost of gradient tracking."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from core import analysis
from core.analysis import (
    MEANINGS,
    MeasurementCancelled,
    classify,
    condition_number,
    format_bytes,
    grid_timing,
    local_analysis,
)
from core.formula import compile_formula
from core.surfaces import get_surface


def test_rotated_quadratic_has_curvatures_10_and_0_1() -> None:
    a = local_analysis(get_surface("rotated_quadratic"), 0.4, -1.3)  # a quadratic: same anywhere
    assert a.eigenvalues == pytest.approx((0.1, 10.0))
    assert a.condition == pytest.approx(100.0)
    assert a.kind == "valley" and a.meaning == MEANINGS["valley"]
    # The steep direction is the 30-degree axis (cos 30, sin 30), up to sign.
    steep = a.eigenvectors[1]
    assert abs(steep[0] * math.cos(math.pi / 6) + steep[1] * 0.5) == pytest.approx(1.0)


def test_hessian_and_gradient_of_a_known_quadratic() -> None:
    # f = 3x^2 + 2xy + y^2 - x: gradient (6x + 2y - 1, 2x + 2y), Hessian [[6, 2], [2, 2]]
    a = local_analysis(compile_formula("3*x**2 + 2*x*y + y**2 - x"), 1.0, -2.0)
    assert a.gradient == pytest.approx((6 - 4 - 1, 2 - 4))
    assert a.hessian == ((pytest.approx(6.0), pytest.approx(2.0)),
                         (pytest.approx(2.0), pytest.approx(2.0)))
    assert a.eigenvalues == pytest.approx((4 - math.sqrt(8), 4 + math.sqrt(8)))
    assert a.value == pytest.approx(3 - 4 + 4 - 1)
    assert a.kind == "bowl"


@pytest.mark.parametrize("text, kind", [
    ("x**2 - y**2", "saddle"), ("x**2 + y**2", "bowl"), ("-x**2 - 3*y**2", "cap"),
    ("x**2", "valley"), ("-(y**2)", "ridge"), ("2*x - y", "flat"), ("5", "flat"),
    ("x**2 + 0.01*y**2", "valley")])
def test_shapes(text: str, kind: str) -> None:
    assert local_analysis(compile_formula(text), 0.3, -0.2).kind == kind


def test_condition_number() -> None:
    assert condition_number(-2.0, 0.5) == 4.0
    assert condition_number(0.0, 3.0) == math.inf
    assert math.isnan(condition_number(math.nan, 1.0))
    assert local_analysis(compile_formula("x**2"), 1.0, 1.0).condition == math.inf


def test_a_kink_is_undefined_not_a_crash() -> None:
    a = local_analysis(get_surface("ackley"), 0.0, 0.0)  # sqrt(0): the cone's tip
    assert a.kind == "undefined" and classify(math.nan, 1.0) == "undefined"


def test_grid_timing_reports_time_and_the_memory_autograd_would_keep() -> None:
    t = grid_timing(get_surface("rotated_quadratic"), n=120, repeats=3)
    assert t["n"] == 120
    assert t["no_grad_ms"] > 0 and t["grad_ms"] > 0
    assert t["no_grad_saved_bytes"] == 0
    assert t["no_grad_bytes"] == 120 * 120 * 8  # just the float64 picture
    # (c x + 0.5 y)**2 saves its n-by-n base for backward, at least one more picture's worth
    assert t["grad_saved_bytes"] >= 120 * 120 * 8
    assert t["grad_bytes"] > t["no_grad_bytes"] and t["memory_ratio"] > 1


class BusyMachine:
    """A fake clock and a surface whose evaluations cost fake time: `cost_ms` per evaluation
    without tracking, `ratio` times that with it, and everything `busy_factor` times slower while
    the fake clock is before `busy_until_ms` (another program had the CPU: the issue's 285x)."""

    def __init__(self, ratio: float, busy_until_ms: float, busy_factor: float = 300.0,
                 cost_ms: float = 0.5) -> None:
        self.now_ms = 0.0
        self.ratio, self.busy_until_ms, self.busy_factor = ratio, busy_until_ms, busy_factor
        self.cost_ms = cost_ms
        self.real = get_surface("rotated_quadratic")
        self.x_range, self.y_range = self.real.x_range, self.real.y_range
        self.evaluations = 0

    def clock(self) -> float:
        return self.now_ms / 1000

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        cost = self.cost_ms * (self.ratio if torch.is_grad_enabled() else 1.0)
        self.now_ms += cost * (self.busy_factor if self.now_ms < self.busy_until_ms else 1.0)
        return self.real(x, y)


def _timed_on(machine: BusyMachine, monkeypatch: pytest.MonkeyPatch, **kwargs) -> dict:
    monkeypatch.setattr(analysis.time, "perf_counter", machine.clock)
    return grid_timing(machine, n=16, **kwargs)


@pytest.mark.parametrize("busy_until_ms", [0.0, 50.0, 400.0, 1000.0, 2000.0])
def test_a_burst_of_other_work_does_not_make_no_grad_look_slower(monkeypatch, busy_until_ms):
    # The same cost either way: whenever the burst comes, the read-out says "same within noise".
    # (Ending at 1000 ms, it covered all of the old code's no_grad samples and none of its
    # tracking ones: that code reported no_grad 300x slower, the 285x.)
    t = _timed_on(BusyMachine(ratio=1.0, busy_until_ms=busy_until_ms), monkeypatch)
    assert t["time_ratio"] == pytest.approx(1.0, abs=0.05)
    assert t["time_within_noise"] == 1.0
    assert "same within noise" in t["conclusion"]
    assert t["samples"] >= 3 and t["evaluations_per_sample"] > 1  # enough work per sample


@pytest.mark.parametrize("busy_until_ms", [0.0, 50.0, 400.0])
def test_a_real_difference_is_reported_with_its_ratio_and_spread(monkeypatch, busy_until_ms):
    t = _timed_on(BusyMachine(ratio=3.0, busy_until_ms=busy_until_ms), monkeypatch)
    assert t["time_ratio"] == pytest.approx(3.0, rel=0.05)
    assert t["time_ratio_low"] <= t["time_ratio"] <= t["time_ratio_high"]
    assert t["grad_ms"] == pytest.approx(3 * t["no_grad_ms"], rel=0.05)
    assert t["no_grad_ms_spread"] >= 0 and t["grad_ms_spread"] >= 0
    assert t["time_within_noise"] == 0.0 and "3x as long" in t["conclusion"]


def test_the_conclusion_is_worded_from_the_memory(monkeypatch) -> None:
    t = _timed_on(BusyMachine(ratio=1.0, busy_until_ms=0.0), monkeypatch)
    assert t["conclusion"].startswith("no_grad keeps no graph: ")
    assert f"{format_bytes(t['grad_saved_bytes'])} saved for backward" in t["conclusion"]
    assert t["grad_saved_bytes"] >= 16 * 16 * 8 and t["no_grad_saved_bytes"] == 0
    assert "\n" not in t["conclusion"]


def test_the_time_spent_is_bounded_for_a_slow_formula(monkeypatch) -> None:
    machine = BusyMachine(ratio=2.0, busy_until_ms=0.0, cost_ms=400.0)  # 0.4 s an evaluation
    t = _timed_on(machine, monkeypatch, repeats=50)
    assert t["samples"] == analysis.MIN_REPEATS and t["evaluations_per_sample"] == 1
    # memory, warm-up and calibration (6 evaluations), then the fewest pairs allowed
    assert machine.evaluations <= 6 + 2 * analysis.MIN_REPEATS


def test_progress_is_reported_and_returning_false_cancels(monkeypatch) -> None:
    seen: list[float] = []
    machine = BusyMachine(ratio=1.0, busy_until_ms=0.0)
    t = _timed_on(machine, monkeypatch, progress=lambda f: seen.append(f) or None)
    assert t["n"] == 16 and seen[0] == 0.0 and seen[-1] == pytest.approx(1.0)
    assert seen == sorted(seen)

    def stop_at_a_third(fraction: float) -> bool:
        return fraction < 1 / 3
    machine = BusyMachine(ratio=1.0, busy_until_ms=0.0)
    with pytest.raises(MeasurementCancelled):
        _timed_on(machine, monkeypatch, progress=stop_at_a_third)
    assert machine.evaluations < t["samples"] * t["evaluations_per_sample"]


class FakeJobState:
    """gui/worker.py's JobState, as far as the measurement sees it."""

    def __init__(self, cancel_after: int) -> None:
        self.progress: list[float] = []
        self.cancel_after = cancel_after

    def set_progress(self, fraction: float) -> None:
        self.progress.append(fraction)

    def is_interruption_requested(self) -> bool:
        return len(self.progress) > self.cancel_after


def test_a_worker_state_can_cancel(monkeypatch) -> None:
    state = FakeJobState(cancel_after=4)
    with pytest.raises(MeasurementCancelled):
        _timed_on(BusyMachine(ratio=1.0, busy_until_ms=0.0), monkeypatch, state=state)
    assert len(state.progress) == 5


def test_it_measures_the_same_on_a_worker_thread_in_no_grad_mode() -> None:
    # Grad mode is per thread: a worker thread that has it off must still measure tracking.
    results: dict[str, dict] = {}

    def work() -> None:
        torch.set_grad_enabled(False)
        results["t"] = grid_timing(get_surface("rotated_quadratic"), n=40, repeats=3)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    t = results["t"]
    assert t["grad_saved_bytes"] >= 40 * 40 * 8 and t["no_grad_saved_bytes"] == 0
    assert t["samples"] >= 3 and isinstance(t["conclusion"], str)
    assert torch.is_grad_enabled()  # this thread's mode is untouched


def test_format_bytes() -> None:
    assert format_bytes(0) == "0 B" and format_bytes(999) == "999 B"
    assert format_bytes(1440000) == "1.44 MB" and format_bytes(4800) == "4.8 kB"


def test_it_times_on_one_thread_and_restores_the_thread_count(monkeypatch) -> None:
    # A parallel op waits for its slowest thread: on a shared machine that was most of the noise.
    seen: set[int] = set()
    real = get_surface("rotated_quadratic")

    def surface(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.add(torch.get_num_threads())
        return real(x, y)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grid_timing(surface, n=16, repeats=3)
        assert seen == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
