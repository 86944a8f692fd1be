"""The controller: owns the Session, steps it on a timer in small time slices, emits signals.

Widgets call its methods; it changes the core objects and emits a signal; views redraw from the
core data (they never keep a second copy of the truth).

Signals
-------
sigSurfaceChanged()        the surface (or the start point) changed: the runs restarted
sigRunsChanged()           runs were added, removed or reordered (rebuild per-run items)
sigRunChanged(object)      one run's settings changed (colour, label, hyperparameters, freeze, ...)
sigStepped()               runs have new trajectory entries (after a tick or a single step)
sigPlayingChanged(bool)    play / pause
sigSelectionChanged(object) the selected run (or None)
sigError(str)              a message for the user
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from core.errors import PlaygroundError
from core.run import Run
from core.session import Session
from core.surfaces import Point, Surface, get_surface, surface_from_formula

# speed: steps per second per run; MAX_SPEED means "as fast as the machine goes"
MAX_SPEED = 0
TICK_MS = 16  # one frame at ~60 Hz
SLICE_S = 0.006  # stepping time allowed per tick, leaving the rest of the frame for drawing


class Controller(QObject):
    sigSurfaceChanged = Signal()
    sigRunsChanged = Signal()
    sigRunChanged = Signal(object)
    sigStepped = Signal()
    sigPlayingChanged = Signal(bool)
    sigSelectionChanged = Signal(object)
    sigError = Signal(str)

    def __init__(self, session: Session | None = None, *, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session or Session.default()
        self.speed = 60  # steps per second
        self.selected: Run | None = self.session.runs[0] if self.session.runs else None
        self.formulas: list[str] = []  # the formulas the user typed, newest first
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.tick)
        self._debt = 0.0  # fractional steps owed at slow speeds
        self._last_tick = time.perf_counter()
        self.max_tick_gap = 0.0  # longest time between two ticks while playing (benchmark)

    # --- play / pause / step ----------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def play(self) -> None:
        if not self.playing:
            self._last_tick = time.perf_counter()
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

    def step_once(self) -> None:
        if self.session.step(1):
            self.sigStepped.emit()

    def tick(self) -> None:
        """One timer tick: step every active run for at most SLICE_S seconds in total."""
        now = time.perf_counter()
        self.max_tick_gap = max(self.max_tick_gap, now - self._last_tick)
        elapsed = now - self._last_tick
        self._last_tick = now
        runs = self.session.active_runs
        if not runs:
            self.pause()
            return
        if self.speed == MAX_SPEED:
            budget = None
        else:
            self._debt += self.speed * min(elapsed, 0.1)
            budget = int(self._debt)
            self._debt -= budget
            if budget == 0:
                return
        deadline = now + SLICE_S
        taken = 0
        round_time = 0.0
        # Round-robin one step at a time so no run gets ahead of the others within a slice; a
        # round is not begun when it would end past the deadline (at least one always runs).
        while budget is None or taken < budget:
            started = time.perf_counter()
            if taken and started + round_time > deadline:
                break
            if not sum(run.step(1) for run in runs):
                break
            taken += 1
            round_time = time.perf_counter() - started
            runs = [r for r in runs if r.status.value != "diverged"]
            if not runs:
                break
        self.sigStepped.emit()

    def reset(self) -> None:
        self.session.reset()
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
        self.session.set_surface(surface)
        self.sigSurfaceChanged.emit()

    def set_start(self, point: Point) -> None:
        self.session.set_start(point)
        self.sigSurfaceChanged.emit()

    # --- runs -------------------------------------------------------------------------------------

    def add_run(self, optimizer: str, hyperparameters: dict[str, Any] | None = None) -> Run:
        run = self.session.add_run(optimizer, hyperparameters)
        self.sigRunsChanged.emit()
        self.select(run)
        return run

    def duplicate_run(self, run: Run) -> Run:
        copy = self.session.duplicate_run(run)
        self.sigRunsChanged.emit()
        self.select(copy)
        return copy

    def remove_run(self, run: Run) -> None:
        self.session.remove_run(run)
        if self.selected is run:
            self.selected = self.session.runs[0] if self.session.runs else None
            self.sigSelectionChanged.emit(self.selected)
        self.sigRunsChanged.emit()

    def replace_optimizer(self, run: Run, optimizer: str) -> Run:
        """Swap a run's optimizer (keeping its colour, label and freezes); it restarts."""
        index = self.session.runs.index(run)
        new = Run(self.session.surface, optimizer, {"lr": run.hyperparameters["lr"]}
                  if _accepts_lr(optimizer, run.hyperparameters["lr"]) else None,
                  self.session.start, tuple(run.frozen), run.label, run.color, run.enabled)
        self.session.runs[index] = new
        if self.selected is run:
            self.selected = new
        self.sigRunsChanged.emit()
        self.sigSelectionChanged.emit(self.selected)
        return new

    def select(self, run: Run | None) -> None:
        if run is not self.selected:
            self.selected = run
            self.sigSelectionChanged.emit(run)

    def set_hyperparameter(self, run: Run, name: str, value: Any) -> None:
        """Raises OptimizerError (and changes nothing) for a bad value."""
        run.set_hyperparameter(name, value)
        self.sigRunChanged.emit(run)

    def set_frozen(self, run: Run, coordinate: str, frozen: bool) -> None:
        run.set_frozen(coordinate, frozen)
        self.sigRunChanged.emit(run)

    def set_enabled(self, run: Run, enabled: bool) -> None:
        run.enabled = enabled
        self.sigRunChanged.emit(run)

    def set_color(self, run: Run, color: str) -> None:
        run.color = color
        self.sigRunChanged.emit(run)

    def set_label(self, run: Run, label: str | None) -> None:
        run.label = label or None
        self.sigRunChanged.emit(run)

    # --- sessions ---------------------------------------------------------------------------------

    def load_session(self, path: str | Path) -> None:
        """Replace the session with the file's. Raises SessionError and changes nothing."""
        session = Session.load(path)
        self.set_session(session)

    def set_session(self, session: Session) -> None:
        self.pause()
        self.session = session
        self.selected = session.runs[0] if session.runs else None
        self.sigSurfaceChanged.emit()
        self.sigRunsChanged.emit()
        self.sigSelectionChanged.emit(self.selected)

    def save_session(self, path: str | Path) -> None:
        """Raises SessionError for an unwritable path."""
        self.session.save(path)

    def shutdown(self) -> None:
        self._timer.stop()


def _accepts_lr(optimizer: str, lr: float) -> bool:
    from core.optimizers import get_spec

    try:
        get_spec(optimizer).validate({"lr": lr})
        return True
    except PlaygroundError:
        return False
