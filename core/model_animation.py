"""Model mode as an animation: which steps each frame shows, and a fresh build of the session
stepped from its start that keeps what every frame needs (no Qt here).

The plan is core.animation's (`AnimationPlan`: frame k shows run i after
min(k x steps_per_frame, its length) steps), so the race and model mode share one meaning of fps,
steps per frame, length and frame count, and one set of bounds (`check_model_plan`). The runs are
a new `ModelSession.build()` (the same data, split, initial weights and minibatches from the
session's seed), never the window's live runs: an animation made headless (`main.py train ...
--out anim.gif`) equals one made in the window, and is the same every time.

`ModelReplay` steps every run to the end of the film once, a frame's steps at a time (each call
of `advance()` is one bounded piece, for a caller that must stay responsive), and keeps for every
frame each run's parameters (a copy), its status and its held-out loss; the training loss comes
from the run's own Trajectory (entry k is step k). A frame is then drawn from that record in any
order, and the loss axes can be fixed to the whole film before the first frame is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call

from core.animation import AnimationError, AnimationPlan, check_plan, plan_animation
from core.model_session import DEFAULT_STEPS, BuiltModelSession, ModelSession, RunSpec
from core.run import RunStatus

# What the replay keeps: every frame's copy of every run's parameters (float64). 256 MB is
# e.g. 6 runs of a 10 000-parameter model over 530 frames.
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024
DEFAULT_SIZE = (800, 600)
DEFAULT_FPS = 10
# The app's own part of a model session's "extra" (gui/model/controller.py writes it): which
# run is selected.
WORKSPACE_KEY = "workspace"


@dataclass(frozen=True)
class ModelAnimationOptions:
    """What a model-mode animation is asked for: the plan's fps, steps per frame, length
    (`steps`: every run's count; None: each run's own `RunSpec.steps`) and frame count, the
    picture's size, and which run fills the data plot with its prediction (`selected`: an index
    into the session's runs; None: the first enabled run)."""

    fps: int = DEFAULT_FPS
    steps_per_frame: int | None = None
    steps: int | None = None
    frames: int | None = None
    size: tuple[int, int] = DEFAULT_SIZE
    selected: int | None = None


class _Lengths:
    """The two things core.animation.plan_animation asks of a session, for a ModelSession:
    its runs (with `enabled`) and each run's step count."""

    def __init__(self, session: ModelSession) -> None:
        self.runs = session.runs

    @staticmethod
    def steps_for(run: RunSpec, steps: int | None) -> int:
        return run.steps if steps is None else steps


def plan_model_animation(session: ModelSession, options: ModelAnimationOptions) -> AnimationPlan:
    """The plan for a model session (core.animation.plan_animation's rules: give steps per
    frame, or frames, or both). Raises AnimationError (one line) for a bad value."""
    return plan_animation(_Lengths(session), fps=options.fps,  # type: ignore[arg-type]
                          steps_per_frame=options.steps_per_frame, steps=options.steps,
                          frames=options.frames)


def _workspace(session: ModelSession) -> dict[str, Any]:
    own = session.extra.get(WORKSPACE_KEY, {})
    return own if isinstance(own, dict) else {}


def default_model_length(session: ModelSession) -> int:
    """The length the window offers: the longest enabled run's steps, else DEFAULT_STEPS."""
    return max((run.steps for run in session.runs if run.enabled), default=0) or DEFAULT_STEPS


def selected_index(session: ModelSession, selected: int | None) -> int | None:
    """The run whose prediction fills the data plot: `selected` if it names a run, else the one
    the workspace had selected when the session was made, else the first enabled one (None for
    a session without runs)."""
    if selected is not None:
        if not 0 <= selected < len(session.runs):
            raise AnimationError(f"there is no run {selected + 1} to show (the session has "
                                 f"{len(session.runs)})")
        return selected
    saved = _workspace(session).get("selected")
    if isinstance(saved, int) and not isinstance(saved, bool) and 0 <= saved < len(session.runs):
        return saved
    return next((i for i, r in enumerate(session.runs) if r.enabled), 0 if session.runs else None)


def check_model_plan(built: BuiltModelSession, plan: AnimationPlan, width: int, height: int,
                     suffix: str) -> None:
    """Refuse (AnimationError, one line) what cannot or should not be made: core.animation's
    bounds (format, size, fps, frames, pixels, the work of the steps), and the memory the
    replay would keep."""
    check_plan(built, plan, width, height, suffix)  # type: ignore[arg-type]  (reads .runs only)
    size = sum(p.numel() for p in built.problem.initial_parameters().values())
    kept = plan.frame_count * len(built.runs) * size * 8
    if kept > MAX_SNAPSHOT_BYTES:
        raise AnimationError(f"too much to keep: {plan.frame_count} frames of {len(built.runs)} "
                             f"runs of a {size:,}-parameter model is {kept / 2 ** 20:.0f} MB, at "
                             f"most {MAX_SNAPSHOT_BYTES // 2 ** 20} MB; take more steps per "
                             f"frame or fewer steps")


@dataclass(frozen=True)
class RunAtFrame:
    """One run as a frame shows it: its steps so far, its parameters then, its status then and
    its held-out loss then (None without held-out rows, or after a divergence)."""

    steps: int
    parameters: dict[str, Tensor]
    status: str
    test_loss: float | None


class ModelReplay:
    """A fresh build of `session`, stepped along `plan`, keeping what every frame shows.

    `advance()` steps every run to the next frame and records it (one bounded piece of work);
    `done` says whether every frame is recorded; `record(k)` gives frame k's runs;
    `loss_curve(i, k)` run i's training loss (steps, values) up to frame k.
    """

    def __init__(self, session: ModelSession, plan: AnimationPlan) -> None:
        if len(plan.lengths) != len(session.runs):
            raise AnimationError("the plan does not match the session's runs")
        self.plan = plan
        self.built = session.build()
        self.runs = self.built.runs  # each with its scheduler, clipping, noise and changes
        self.frames: list[list[RunAtFrame]] = []
        self._record()

    @property
    def done(self) -> bool:
        return len(self.frames) >= self.plan.frame_count

    @property
    def recorded(self) -> int:
        return len(self.frames)

    def advance(self) -> bool:
        """Step every run to what the next frame shows and record it; True once all are."""
        if self.done:
            return True
        frame = len(self.frames)
        for i, run in enumerate(self.runs):
            todo = self.plan.steps_for(i, frame) - run.steps
            if todo > 0 and run.enabled and run.status is not RunStatus.DIVERGED:
                run.step(todo)
        self._record()
        return self.done

    def run_to_end(self) -> None:
        while not self.advance():
            pass

    def _record(self) -> None:
        shown = []
        for run in self.runs:
            diverged = run.status is RunStatus.DIVERGED
            test_loss = None if diverged else self.built.held_out(run)[0]
            shown.append(RunAtFrame(run.steps,
                                    {n: p.detach().clone() for n, p in run.parameters.items()},
                                    run.status.value, test_loss))
        self.frames.append(shown)

    def record(self, frame: int) -> list[RunAtFrame]:
        """Every run as frame `frame` shows it (the frame must be recorded)."""
        if not 0 <= frame < len(self.frames):
            raise AnimationError(f"frame {frame} is not recorded yet ({len(self.frames)} are)")
        return self.frames[frame]

    def loss_curve(self, run_index: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Run `run_index`'s training loss from step 0 to what frame `frame` shows: (steps,
        losses), copies. The trajectory of the whole film is there once it is stepped; a frame
        shows its prefix."""
        t = self.runs[run_index].trajectory
        steps = t.step
        end = int(np.searchsorted(steps, self.record(frame)[run_index].steps, side="right"))
        return steps[:end].astype(float), np.asarray(t.loss[:end], dtype=float).copy()

    def test_curve(self, run_index: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Run `run_index`'s held-out loss at frames 0..`frame` (NaN where there is none)."""
        shown = [self.frames[k][run_index] for k in range(frame + 1)]
        return (np.array([s.steps for s in shown], dtype=float),
                np.array([np.nan if s.test_loss is None else s.test_loss for s in shown]))

    def loss_range(self) -> tuple[float, float]:
        """The smallest and largest positive finite loss (training and held-out) of the whole
        film so far: the loss axis a film keeps from its first frame to its last."""
        values: list[np.ndarray] = []
        last = len(self.frames) - 1
        for i in range(len(self.runs)):
            values.append(self.loss_curve(i, last)[1])
            values.append(self.test_curve(i, last)[1])
        joined = np.concatenate(values) if values else np.array([])
        good = joined[np.isfinite(joined) & (joined > 0)]
        if good.size == 0:
            return 1e-3, 1.0
        return float(good.min()), float(good.max())

    def predict(self, parameters: dict[str, Tensor], X: Tensor) -> Tensor:
        """The model's outputs at `parameters` on rows X, under torch.no_grad() in eval mode
        (dropout off, BatchNorm statistics untouched), as the workspace's view draws them."""
        model = self.built.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return functional_call(model, parameters, (X,))
        finally:
            model.train(was_training)
