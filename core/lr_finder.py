"""The learning-rate range test (Smith, 2017), as fastai's `lr_find` and pytorch-lr-finder run it.

One short run from the model's initial weights, the lr ramped exponentially from LOW to HIGH
over N steps by torch's own `torch.optim.lr_scheduler.ExponentialLR` (gamma =
(HIGH / LOW) ** (1 / (N - 1)), stepped after every optimizer step, as torch requires), on the
session's own minibatches: the run is a `core.run.Run` with that scheduler, so it is what
`main.py train` would do with it. Point k pairs the lr of step k+1 with the training loss right
after that step (on the next step's batch, the loss the Run records).

The loss is smoothed as fastai does it: an exponential moving average with `beta` (0.98),
bias-corrected (divided by 1 - beta**(k+1)) so the first points are not pulled towards 0. The
test stops early when the smoothed loss exceeds `stop_factor` (fastai 4, pytorch-lr-finder 5)
times the best smoothed loss so far, or when the run diverges.

Two rules suggest an lr, on the smoothed loss without the first tenth and the last 5 points
(fastai's cut; the whole curve when that leaves too little):
- "steepest": where the smoothed loss falls fastest against log(lr) (np.gradient over log10 lr,
  its minimum; pytorch-lr-finder's rule, fastai's "steep");
- "valley": fastai's rule: the longest decreasing subsequence of the smoothed loss (in lr
  order) is the valley, and the suggestion is the point start + int(L / 3) + int(L / 6) of it
  (L its length in points): about half way down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import PlaygroundError

if TYPE_CHECKING:  # core.batch loads torch: `main.py --help` builds lrfind's options from here
    from core.batch import ProgressState

DEFAULT_LOW = 1e-7
DEFAULT_HIGH = 10.0
DEFAULT_STEPS = 100
DEFAULT_STOP_FACTOR = 4.0
DEFAULT_BETA = 0.98
MIN_STEPS = 5
MAX_STEPS = 10_000
SKIP_END = 5  # points left off the end before a rule looks (fastai)
RULES = {
    "steepest": "steepest: the lr where the smoothed loss falls fastest against log(lr)",
    "valley": "valley (fastai): half way down the longest descending stretch of the smoothed "
              "loss",
}


class RangeTestError(PlaygroundError):
    """A range test that cannot run as asked (bad range, steps, rule)."""


@dataclass
class RangeTest:
    """The test's points (lr, raw loss, smoothed loss), why it stopped, and both suggestions
    (index into the points, or None when the curve is too short to judge)."""

    optimizer: str
    low: float
    high: float
    steps: int
    gamma: float
    beta: float
    stop_factor: float
    start_loss: float
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stopped: str
    suggestions: dict[str, int | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.lrs.shape[0])

    def suggested_lr(self, rule: str = "valley") -> float | None:
        index = self.suggestions.get(rule)
        return None if index is None else float(self.lrs[index])

    def to_json(self) -> dict[str, Any]:
        """The points and suggestions as one object (non-finite losses as null)."""
        return {"optimizer": self.optimizer, "low": self.low, "high": self.high,
                "steps": self.steps, "schedule": f"ExponentialLR(gamma={self.gamma!r})",
                "beta": self.beta, "stop_factor": self.stop_factor,
                "start_loss": _finite(self.start_loss), "stopped": self.stopped,
                "lr": self.lrs.tolist(), "loss": [_finite(v) for v in self.losses],
                "smoothed_loss": [_finite(v) for v in self.smoothed],
                "suggestions": {rule: {"lr": self.suggested_lr(rule), "index": index,
                                       "rule": RULES[rule]}
                                for rule, index in self.suggestions.items()}}

    def to_csv(self) -> str:
        lines = ["step,lr,loss,smoothed_loss,suggested"]
        marks = {}
        for rule, index in self.suggestions.items():
            if index is not None:
                marks[index] = (marks.get(index, "") + " " + rule).strip()
        for k in range(len(self)):
            lines.append(f"{k + 1},{float(self.lrs[k])!r},{float(self.losses[k])!r},"
                         f"{float(self.smoothed[k])!r},{marks.get(k, '')}")
        return "\n".join(lines) + "\n"


def _finite(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def smooth(losses: Sequence[float], beta: float = DEFAULT_BETA) -> np.ndarray:
    """The bias-corrected exponential moving average of the losses (fastai's SmoothenValue)."""
    out = np.empty(len(losses))
    average = 0.0
    for k, loss in enumerate(losses):
        average = beta * average + (1 - beta) * float(loss)
        out[k] = average / (1 - beta ** (k + 1))
    return out


def _window(n: int) -> tuple[int, int]:
    """[start, end) of the points a rule looks at: fastai's [n // 10, n - 5] when that leaves
    at least 3 points, else all of them."""
    start, end = n // 10, n - SKIP_END
    return (start, end) if end - start >= 3 else (0, n)


def steepest(lrs: np.ndarray, smoothed: np.ndarray) -> int | None:
    """Index of the steepest fall of the smoothed loss against log10(lr) (None: < 3 points)."""
    start, end = _window(len(lrs))
    if end - start < 3:
        return None
    slope = np.gradient(smoothed[start:end], np.log10(lrs[start:end]))
    return start + int(np.argmin(slope))


def valley(lrs: np.ndarray, smoothed: np.ndarray) -> int | None:
    """fastai's "valley": in the longest decreasing subsequence of the smoothed loss (in lr
    order), the point start + int(length / 3) + int(length / 6) (None: < 3 points)."""
    start, end = _window(len(lrs))
    losses = smoothed[start:end]
    n = len(losses)
    if n < 3:
        return None
    longest = [1] * n  # longest decreasing subsequence ending at i
    best_start = best_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[best_end] < longest[i]:
                best_end = i
                best_start = best_end - longest[best_end]
    sections = (best_end - best_start) / 3
    return start + best_start + int(sections) + int(sections / 2)


def range_test(model: Any, optimizer_call: str | tuple[str, dict[str, Any]],
               low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH, steps: int = DEFAULT_STEPS,
               stop_factor: float = DEFAULT_STOP_FACTOR, beta: float = DEFAULT_BETA,
               frozen: Sequence[str] = (), state: ProgressState | None = None) -> RangeTest:
    """Run the range test on a model (a BuiltModelSession or a ModelProblem) with the optimizer
    (its own lr is replaced by the ramp). Raises RangeTestError / OptimizerError (one line)
    for bad input; BatchCancelled when `state` asks to stop."""
    from core.batch import BatchCancelled
    from core.many import _model_problem, optimizer_setting
    from core.optimizers import format_optimizer_call
    from core.run import Run, RunStatus

    _check(low, high, steps, stop_factor, beta)
    problem, _, _ = _model_problem(model)
    name, hyperparameters = optimizer_setting(optimizer_call)
    gamma = (high / low) ** (1 / (steps - 1))
    run = Run(problem, name, {**hyperparameters, "lr": low}, frozen=tuple(frozen),
              scheduler=("ExponentialLR", {"gamma": gamma}))
    start_loss = float(run.trajectory.loss[0]) if len(run.trajectory) else math.nan
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    smoothed: list[float] = []
    stopped = f"ran all {steps} steps"
    for k in range(steps):
        if state is not None and k % 5 == 0:
            if state.is_interruption_requested():
                raise BatchCancelled("the range test was cancelled")
            state.set_progress(k / steps)
        lr = float(run.optimizer.param_groups[0]["lr"])  # the lr this step uses
        run.step(1)
        if run.status is RunStatus.DIVERGED:
            stopped = f"the run diverged at step {k + 1} (lr {lr:.3g}): {run.divergence_reason}"
            break
        loss = float(run.trajectory.loss[-1])
        average = beta * average + (1 - beta) * loss
        value = average / (1 - beta ** (k + 1))
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if k > 0 and value > stop_factor * best:
            stopped = (f"stopped at step {k + 1} (lr {lr:.3g}): the smoothed loss passed "
                       f"{stop_factor:g} x its best")
            break
    if state is not None:
        state.set_progress(1.0)
    lr_array, smooth_array = np.array(lrs), np.array(smoothed)
    ramped = {**hyperparameters, "lr": low}  # the ramp's first lr
    return RangeTest(format_optimizer_call(name, ramped), low, high, steps, gamma,
                     beta, stop_factor, start_loss, lr_array, np.array(losses), smooth_array,
                     stopped, {"steepest": steepest(lr_array, smooth_array),
                               "valley": valley(lr_array, smooth_array)})


def _check(low: float, high: float, steps: int, stop_factor: float, beta: float) -> None:
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float))
            and math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise RangeTestError(f"the lr range must be two numbers with 0 < LOW < HIGH "
                             f"(got {low!r}, {high!r})")
    if isinstance(steps, bool) or not isinstance(steps, int) or not (
            MIN_STEPS <= steps <= MAX_STEPS):
        raise RangeTestError(f"the range test takes {MIN_STEPS} to {MAX_STEPS} steps "
                             f"(got {steps!r})")
    if not (math.isfinite(stop_factor) and stop_factor > 1):
        raise RangeTestError(f"the stop factor must be above 1 (got {stop_factor!r})")
    if not (math.isfinite(beta) and 0 <= beta < 1):
        raise RangeTestError(f"the smoothing beta must be in [0, 1) (got {beta!r})")
