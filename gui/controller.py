"""The controller: owns the Session, steps it on a timer in small time slices, emits signals.

Widgets call its methods; it changes the core objects and emits a signal; views redraw from the
core data (they never keep a second copy of the truth).

Signals
-------
sigSurfaceChanged()        the surface (or the start point) changed: the runs restarted
sigRunsChanged()           runs were added, removed or reordered (rebuild per-run items)
sigRunChanged(object)      one run's settings changed (colour, label, hyperparameters, freeze,
                           scheduler, clipping, noise, ...), also when a loaded session's
                           change (Run.pending_changes) was replayed at its step
sigStepped()               runs have new trajectory entries (after a tick or a single step)
sigPlayingChanged(bool)    play / pause
sigSelectionChanged(object) the selected run (or None)
sigError(str)              a message for the user
sigModified(bool)          the session changed (True) or was just opened / saved (False)
sigWorkingChanged()        a worker thread started or stopped stepping a slow run

Scheduling: a tick steps the active runs round-robin for one time slice (SLICE_S at a set speed;
at "max" between SLICE_S and MAX_SLICE_S, adapted to what the frame leaves), and never begins a
round that would end past the slice. A run whose single step takes longer than a frame is
stepped by a gui.worker Job instead; a change to it waits for that step to end first, so a run
is only ever touched by one thread at a time.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from core.errors import PlaygroundError, SessionError
from core.gradient_tools import GradientClipping, GradientNoise
from core.run import Run, SchedulerSetting, scheduler_setting
from core.session import MAX_RUNS, Session
from core.surfaces import Point, Surface, get_surface, surface_from_formula
from gui.worker import Job

# speed: steps per second per run; MAX_SPEED means "as fast as the machine goes"
MAX_SPEED = 0
TICK_MS = 16  # one frame at ~60 Hz
FRAME_S = 1 / 60
SLICE_S = 0.006  # stepping time allowed per tick at a set speed, leaving the rest for drawing
# At "max" the slice grows while ticks keep to about a frame apart and shrinks when they do not,
# so stepping takes what the frame leaves after drawing (measured: benchmarks/bench_gui.py).
MAX_SLICE_S = 0.012
CATCH_UP_CAP_S = 0.1  # at a set speed, a stall longer than this is not made up in a burst
# A run whose single step takes longer than a frame (L-BFGS with a large max_iter) is stepped
# on a worker thread instead, so the window keeps turning; back once its steps are cheap again.
SLOW_STEP_S = FRAME_S
WORKER_SLICE_S = 0.05  # one background job steps a slow run for about this long, then reports
# L-BFGS may evaluate the loss up to max_eval times in one step: above this it is predicted
# slow and never stepped on the GUI thread, not even once to measure it.
SLOW_MAX_EVAL = 50
MAX_JOB_STEPS = 10_000  # a background job reports back after at most this many steps
BUSY_CURSOR_AFTER_S = 0.05  # a change waiting longer than this for a background step shows it
SHUTDOWN_WAIT_S = 0.5  # quitting waits at most this for a background step
# A loaded session's changes replayed while playing are announced (sigRunChanged, which redraws
# the card, the table and the views: ~10 ms in the window) at most this often, so a stretch of
# changes on consecutive steps (an lr slider dragged while the race played) does not stall it;
# the last one always lands. A single step announces at once.
REPLAY_ANNOUNCE_S = 0.1


def adapt_slice(slice_s: float, elapsed: float) -> float:
    """The stepping slice for the next tick: it grows while ticks keep to about a frame apart
    (the frame has room for more stepping) and shrinks when they do not, within SLICE_S and
    MAX_SLICE_S. Shared by the race's controller (at "max") and the model workspace's."""
    if elapsed <= FRAME_S * 1.25:
        return min(MAX_SLICE_S, slice_s + 0.0005)
    if elapsed > FRAME_S * 1.6:
        return max(SLICE_S, slice_s * 0.75)
    return slice_s


class Controller(QObject):
    """The race's controller. `clock` (seconds, monotonic) is injectable for tests.

    Runs are changed on the GUI thread only, except a slow run while a worker steps it
    (`working_runs`): every change to such a run first waits for that step to end.
    """

    sigSurfaceChanged = Signal()
    sigRunsChanged = Signal()
    sigRunChanged = Signal(object)
    sigStepped = Signal()
    sigPlayingChanged = Signal(bool)
    sigSelectionChanged = Signal(object)
    sigError = Signal(str)
    sigModified = Signal(bool)
    sigWorkingChanged = Signal()

    def __init__(self, session: Session | None = None, *, parent: QObject | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(parent)
        self.session = session or Session.default()
        self.speed = 60  # steps per second
        self.selected: Run | None = self.session.runs[0] if self.session.runs else None
        self.formulas: list[str] = []  # the formulas the user typed, newest first
        self.modified = False  # the session changed since it was opened or saved
        self._clock = clock
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.tick)
        self._debt = 0.0  # fractional steps owed at slow speeds
        self._last_tick = clock()
        self.max_slice = SLICE_S  # the current slice at "max" (adapts, see MAX_SLICE_S)
        self.max_tick_gap = 0.0  # longest time between two ticks while playing (benchmark)
        self._step_cost: weakref.WeakKeyDictionary[Run, float] = weakref.WeakKeyDictionary()
        self._slow: weakref.WeakSet[Run] = weakref.WeakSet()
        self._jobs: dict[Run, Job] = {}
        self._worker_steps = 0  # steps background jobs took since the last tick
        self._replayed: dict[Run, None] = {}  # runs whose replayed changes wait to be announced
        self._last_replay_announce = -float("inf")
        self._replay_timer = QTimer(self)
        self._replay_timer.setSingleShot(True)
        self._replay_timer.timeout.connect(self._flush_replayed)
        self._rate_log: deque[tuple[float, float]] = deque(maxlen=600)

    # --- play / pause / step ----------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def working_runs(self) -> list[Run]:
        """Runs a worker thread is stepping right now."""
        return list(self._jobs)

    def is_slow(self, run: Run) -> bool:
        """True if the run's steps go to a worker thread (one takes longer than a frame)."""
        return run in self._slow or _predicted_slow(run)

    def play(self) -> None:
        if not self.playing:
            self._last_tick = self._clock()
            self._rate_log.clear()
            self._timer.start()
            self.sigPlayingChanged.emit(True)

    def pause(self) -> None:
        if self.playing:
            self._timer.stop()
            self.sigPlayingChanged.emit(False)

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def set_speed(self, steps_per_second: int) -> None:
        """Steps per second for each run; MAX_SPEED (0) for as fast as the machine goes."""
        self.speed = max(0, int(steps_per_second))
        self._debt = 0.0
        self._rate_log.clear()

    def step_once(self) -> None:
        """One step for every active run (a slow run's goes to a worker and lands later)."""
        stepped = 0
        waiting = _waiting_changes(self.session.active_runs)
        for run in self.session.active_runs:
            if run in self._jobs:
                continue
            if self.is_slow(run):
                self._step_in_background(run, 1)
            else:
                stepped += self._timed_step(run)
        self._announce_replayed(waiting, at_once=True)
        if stepped:
            self.sigStepped.emit()

    def tick(self) -> None:
        """One timer tick: step every active run, round-robin, for about one slice in total.

        At a set speed the steps owed grow with the time since the last tick (capped at
        CATCH_UP_CAP_S, so a stall is not followed by a burst) and the slice is SLICE_S; at
        MAX_SPEED the slice adapts between SLICE_S and MAX_SLICE_S to what the frame leaves. A
        round is not begun when it would end past the slice (at least one always runs).
        """
        now = self._clock()
        elapsed = now - self._last_tick
        self._last_tick = now
        if self.playing:
            self.max_tick_gap = max(self.max_tick_gap, elapsed)
        worker_steps, self._worker_steps = self._worker_steps, 0
        active = self.session.active_runs
        if not active:
            self.pause()
            return
        if self.speed == MAX_SPEED:
            budget = None
            self.max_slice = adapt_slice(self.max_slice, elapsed)
            slice_s = self.max_slice
        else:
            self._debt += self.speed * min(elapsed, CATCH_UP_CAP_S)
            budget = int(self._debt)
            self._debt -= budget
            slice_s = SLICE_S
        if budget == 0:
            self._log_rate(now, worker_steps, len(active))
            if worker_steps:
                self.sigStepped.emit()
            return
        for run in active:
            if run not in self._jobs and self.is_slow(run):
                self._step_in_background(run, budget)
        runs = [r for r in active if r not in self._jobs]
        stepping = list(runs)  # the runs this thread steps (a worker's change on their own)
        waiting = _waiting_changes(stepping)
        steps_before = sum(r.steps for r in stepping)
        deadline = now + slice_s
        taken = 0
        round_time = 0.0
        while runs and (budget is None or taken < budget):
            started = self._clock()
            if taken and started + round_time > deadline:
                break
            if not sum(self._timed_step(run) for run in runs):
                break
            taken += 1
            round_time = self._clock() - started
            runs = [r for r in runs if r.status.value != "diverged" and r not in self._slow]
        stepped_here = sum(r.steps for r in stepping) - steps_before
        self._announce_replayed(waiting)
        self._log_rate(now, worker_steps + stepped_here, len(active))
        if stepped_here or worker_steps:
            self.sigStepped.emit()

    def _timed_step(self, run: Run) -> int:
        started = self._clock()
        done = run.step(1)
        cost = self._clock() - started
        if done:
            self._step_cost[run] = cost
            if cost > SLOW_STEP_S:
                self._slow.add(run)  # the next steps go to a worker
        return done

    def _step_in_background(self, run: Run, budget: int | None) -> None:
        clock = self._clock

        def work(state: Any) -> tuple[int, float]:
            started = clock()
            done = 0
            while done < (MAX_JOB_STEPS if budget is None else budget):
                if state.is_interruption_requested() or not run.step(1):
                    break
                done += 1
                if clock() - started > WORKER_SLICE_S:
                    break
            return done, clock() - started

        job = Job(work)  # no parent: dropped (and collected) once it has reported
        steps_before = run.steps
        waiting = _waiting_changes([run])
        job.sigFinished.connect(lambda result: self._on_background_step_end(
            run, job, result, waiting=waiting))
        job.sigFailed.connect(lambda message: self._on_background_step_end(
            run, job, None, message, waiting=waiting))
        job.sigCancelled.connect(lambda: self._on_background_step_end(
            run, job, (run.steps - steps_before, None), waiting=waiting))
        self._jobs[run] = job
        job.start()
        self.sigWorkingChanged.emit()

    def _on_background_step_end(self, run: Run, job: Job, result: tuple[int, float | None] | None,
                                message: str = "", *,
                                waiting: list[tuple[Run, int]] | None = None) -> None:
        if self._jobs.get(run) is not job:
            return
        del self._jobs[run]
        self._announce_replayed(waiting or [])

        if message:
            self.sigError.emit(f"stepping {run.title} failed: {message}")
        if result is not None:
            done, seconds = result
            self._worker_steps += done
            if done and seconds is not None:
                self._step_cost[run] = seconds / done
                # Back to the GUI thread once its steps are well within a frame (L-BFGS near a
                # minimum ends its inner loop early), unless its settings predict slow steps.
                if seconds / done < SLOW_STEP_S / 4:
                    self._slow.discard(run)
        self.sigWorkingChanged.emit()
        if not self.playing:
            self.sigStepped.emit()  # while playing, the next tick emits it

    def _settle(self, runs: list[Run] | None = None) -> None:
        """Wait until no worker steps `runs` (all runs if None): then they are safe to change.

        The background stepping stops after its current step (the steps taken so far are kept).
        This blocks for at most one slow step, and only when the user changes a run a worker is
        stepping; it must not give up, or two threads would touch one run. A wait longer than
        a blink shows the busy cursor.
        """
        for run, job in list(self._jobs.items()):
            if runs is None or run in runs:
                job.cancel()
                if not job.finish(BUSY_CURSOR_AFTER_S):
                    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                    try:
                        job.finish(None)
                    finally:
                        QGuiApplication.restoreOverrideCursor()

    def _announce_replayed(self, waiting: list[tuple[Run, int]], at_once: bool = False) -> None:
        """sigRunChanged for each run whose saved changes (a loaded session's lr move, freeze,
        ...) were applied by the steps just taken, so its card and the table show them: at
        once, or, within REPLAY_ANNOUNCE_S of the last announcement, when that time is up."""
        for run, count in waiting:
            if len(run.pending_changes) < count:
                self._replayed[run] = None
        if not self._replayed:
            return
        wait = self._last_replay_announce + REPLAY_ANNOUNCE_S - self._clock()
        if at_once or wait <= 0:
            self._flush_replayed()
        elif not self._replay_timer.isActive():
            self._replay_timer.start(max(1, int(wait * 1000)))

    def _flush_replayed(self) -> None:
        self._replay_timer.stop()
        runs, self._replayed = list(self._replayed), {}
        self._last_replay_announce = self._clock()
        for run in runs:
            if run in self.session.runs:  # (not one removed meanwhile)
                self.sigRunChanged.emit(run)

    def _log_rate(self, now: float, steps: int, runs: int) -> None:
        self._rate_log.append((now, steps / max(1, runs)))

    def achieved_speed(self, window_s: float = 1.0) -> float | None:
        """The steps per second per run actually taken over the last `window_s` of playing.

        None until there is a quarter of a second of record (just after play or a change).
        """
        if not self._rate_log:
            return None
        last = self._rate_log[-1][0]
        recent = [(t, n) for t, n in self._rate_log if t >= last - window_s]
        span = recent[-1][0] - recent[0][0]
        if span < 0.25:
            return None
        return sum(n for _, n in recent[1:]) / span

    def reset(self) -> None:
        self._settle()
        self.session.reset()
        self._rate_log.clear()
        self.sigSurfaceChanged.emit()

    # --- the surface and the start ----------------------------------------------------------------

    def set_surface_name(self, name: str) -> None:
        self._set_surface(get_surface(name))

    def set_formula(self, text: str, x_range: tuple[float, float] | None = None,
                    y_range: tuple[float, float] | None = None) -> str | None:
        """Use the user's formula. Returns an error message (and changes nothing) or None."""
        current = self.session.surface
        try:
            surface = surface_from_formula(text, x_range or current.x_range,
                                           y_range or current.y_range)
        except PlaygroundError as e:
            return str(e)
        text = surface.text
        if text in self.formulas:
            self.formulas.remove(text)
        self.formulas.insert(0, text)
        del self.formulas[20:]
        self._set_surface(surface)
        return None

    def _set_surface(self, surface: Surface) -> None:
        self._settle()
        self.session.set_surface(surface)
        self._rate_log.clear()
        self.sigSurfaceChanged.emit()
        self._set_modified()

    def set_start(self, point: Point) -> None:
        self._settle()
        self.session.set_start(point)
        self._rate_log.clear()
        self.sigSurfaceChanged.emit()
        self._set_modified()

    # --- runs -------------------------------------------------------------------------------------

    def add_run(self, optimizer: str, hyperparameters: dict[str, Any] | None = None) -> Run:
        run = self.session.add_run(optimizer, hyperparameters)
        self.sigRunsChanged.emit()
        self.select(run)
        self._set_modified()
        return run

    def duplicate_run(self, run: Run) -> Run:
        copy = self.session.duplicate_run(run)
        self.sigRunsChanged.emit()
        self.select(copy)
        self._set_modified()
        return copy

    def insert_run(self, index: int, run: Run) -> Run:
        """Put a run (e.g. one just removed, for undo) back at `index` in the list.

        It keeps its settings, colour and record when the surface and start are still the
        session's, and restarts on the session's surface otherwise. Raises SessionError when the
        session is full.
        """
        if run in self.session.runs:
            raise SessionError("that run is already in the session")
        if len(self.session.runs) >= MAX_RUNS:
            raise SessionError(f"a session holds at most {MAX_RUNS} runs")
        if run.surface is not self.session.surface or run.start != self.session.start:
            run.set_surface(self.session.surface, self.session.start)
        index = max(0, min(int(index), len(self.session.runs)))
        self.session.runs.insert(index, run)
        self.sigRunsChanged.emit()
        self.select(run)
        self._set_modified()
        return run

    def remove_run(self, run: Run) -> None:
        self._settle([run])
        self.session.remove_run(run)
        if self.selected is run:
            self.selected = self.session.runs[0] if self.session.runs else None
            self.sigSelectionChanged.emit(self.selected)
        self.sigRunsChanged.emit()
        self._set_modified()

    def replace_optimizer(self, run: Run, optimizer: str) -> Run:
        """Swap a run's optimizer (keeping its colour, label and freezes); it restarts."""
        self._settle([run])
        index = self.session.runs.index(run)
        hyperparameters = ({"lr": run.hyperparameters["lr"]}
                           if _accepts_lr(optimizer, run.hyperparameters["lr"]) else None)
        args = (self.session.surface, optimizer, hyperparameters, self.session.start,
                tuple(run.frozen), run.label, run.color, run.enabled)
        # The scheduler, clipping and noise stay with the run; a scheduler the new optimizer
        # cannot take (OneCycleLR cycling a momentum Adagrad does not have) is dropped, saying so.
        noise = GradientNoise(run.noise.sigma, run.noise.seed) if run.noise else None
        try:
            new = Run(*args, scheduler=run.scheduler_setting, clipping=run.clipping,
                      noise=noise)
        except PlaygroundError as e:
            new = Run(*args, clipping=run.clipping, noise=noise)
            self.sigError.emit(f"{optimizer} cannot keep the scheduler: {e}")
        self.session.runs[index] = new
        if self.selected is run:
            self.selected = new
        self.sigRunsChanged.emit()
        self.sigSelectionChanged.emit(self.selected)
        self._set_modified()
        return new

    def select(self, run: Run | None) -> None:
        if run is not self.selected:
            self.selected = run
            self.sigSelectionChanged.emit(run)

    def set_hyperparameter(self, run: Run, name: str, value: Any) -> None:
        """Raises OptimizerError (and changes nothing) for a bad value."""
        run.spec.validate({**run.hyperparameters, name: value})  # a bad value waits for nothing
        self._settle([run])
        run.set_hyperparameter(name, value)
        self.sigRunChanged.emit(run)
        self._set_modified()

    def set_scheduler(self, run: Run, scheduler: SchedulerSetting | str | None) -> None:
        """Another torch.optim.lr_scheduler (call text or (name, kwargs)), or None, from the
        run's next step; its schedule starts at step 0 from the run's base lr. Raises
        PlaygroundError (SchedulerError) for a bad setting, and changes nothing."""
        setting = scheduler_setting(scheduler)  # a bad value waits for nothing
        if setting is not None:
            _probe_scheduler(run, setting)
        self._settle([run])
        run.set_scheduler(setting)
        self.sigRunChanged.emit(run)
        self._set_modified()

    def set_clipping(self, run: Run, kind: str | None, threshold: float | None = None) -> None:
        """Clip the run's gradient with torch's clip_grad_norm_ (kind "norm") or
        clip_grad_value_ ("value") at `threshold`, or not at all (None). Raises PlaygroundError
        (GradientToolError) for a bad threshold, and changes nothing."""
        clipping = None if kind is None else GradientClipping(kind, threshold)  # type: ignore
        if clipping == run.clipping:
            return
        self._settle([run])
        run.set_clipping(clipping)
        self.sigRunChanged.emit(run)
        self._set_modified()

    def set_noise(self, run: Run, sigma: float | None, seed: int = 0) -> None:
        """Seeded Gaussian gradient noise of scale `sigma` (None or 0: none). The noise starts
        at the seed's first draw. Raises PlaygroundError (GradientToolError) and changes
        nothing for a bad sigma or seed."""
        noise = GradientNoise(sigma, seed) if sigma else None
        if sigma is not None and not sigma:
            GradientNoise(sigma, seed)  # 0 is "none", but a bad seed is still refused
        current = run.noise
        if (noise is None and current is None) or (
                noise is not None and current is not None
                and (noise.sigma, noise.seed) == (current.sigma, current.seed)):
            return
        self._settle([run])
        run.set_noise(noise)
        self.sigRunChanged.emit(run)
        self._set_modified()

    def set_frozen(self, run: Run, coordinate: str, frozen: bool) -> None:
        self._settle([run])
        run.set_frozen(coordinate, frozen)
        self.sigRunChanged.emit(run)
        self._set_modified()

    def set_enabled(self, run: Run, enabled: bool) -> None:
        run.enabled = enabled
        self.sigRunChanged.emit(run)
        self._set_modified()

    def set_color(self, run: Run, color: str) -> None:
        run.color = color
        self.sigRunChanged.emit(run)
        self._set_modified()

    def set_label(self, run: Run, label: str | None) -> None:
        run.label = label or None
        self.sigRunChanged.emit(run)
        self._set_modified()

    # --- sessions ---------------------------------------------------------------------------------

    def _set_modified(self, modified: bool = True) -> None:
        """Every change to what a session file holds sets it; opening or saving clears it."""
        self.modified = modified
        self.sigModified.emit(modified)

    def load_session(self, path: str | Path) -> None:
        """Replace the session with the file's. Raises SessionError and changes nothing."""
        session = Session.load(path)
        self.set_session(session)

    def set_session(self, session: Session) -> None:
        """Replace the session (opened, or new): it counts as unmodified."""
        self.pause()
        self._settle()
        self._replay_timer.stop()
        self._replayed = {}
        self.session = session
        self.selected = session.runs[0] if session.runs else None
        self._rate_log.clear()
        self.sigSurfaceChanged.emit()
        self.sigRunsChanged.emit()
        self.sigSelectionChanged.emit(self.selected)
        self._set_modified(False)

    def save_session(self, path: str | Path) -> None:
        """Raises SessionError for an unwritable path (and the session stays modified)."""
        self.session.save(path)
        self._set_modified(False)

    def shutdown(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop the timer and any background step, waiting at most `timeout_s` in all.

        Returns True if no background step is left. One still running after the wait (a single
        L-BFGS step cannot be interrupted) ends on its own pool thread, which is never destroyed
        while running; its result is dropped.
        """
        self.pause()  # through pause(), so views showing "playing" (and their timers) stop too
        self._replay_timer.stop()
        for job in self._jobs.values():
            job.cancel()
        deadline = time.perf_counter() + timeout_s
        for job in list(self._jobs.values()):
            job.finish(max(0.0, deadline - time.perf_counter()))
        return not self._jobs


def _waiting_changes(runs: list[Run]) -> list[tuple[Run, int]]:
    """The runs with saved changes still to replay, and how many: a step that applies one
    shortens the count. Most runs have none, so a tick pays one length check per run."""
    return [(run, len(run.pending_changes)) for run in runs
            if run.pending_changes]


def _predicted_slow(run: Run) -> bool:
    """A closure optimizer (L-BFGS) that may evaluate the loss many times in one step."""
    if not run.spec.needs_closure:
        return False
    max_iter = int(run.hyperparameters.get("max_iter", 20))
    max_eval = run.hyperparameters.get("max_eval") or max_iter * 5 // 4
    return int(max_eval) > SLOW_MAX_EVAL


def _probe_scheduler(run: Run, setting: SchedulerSetting) -> None:
    """Build the scheduler on a throwaway copy of the run's optimizer, so what torch refuses
    for this optimizer (OneCycleLR cycling a momentum Adagrad lacks) is refused before the run
    is touched."""
    import torch

    from core.schedulers import build_scheduler

    probe = torch.zeros((), dtype=torch.float64, requires_grad=True)
    build_scheduler(run.spec.cls([probe], **run.hyperparameters), *setting, validated=True)


def _accepts_lr(optimizer: str, lr: float) -> bool:
    from core.optimizers import get_spec

    try:
        get_spec(optimizer).validate({"lr": lr})
        return True
    except PlaygroundError:
        return False
