"""A Session: the surface, the start point and several runs side by side; to and from JSON.

The file format (version 1):

    {"format": "optimizer-playground-session", "version": 1,
     "surface": {"name": "rosenbrock"}                      # a built-in, or
                | {"name": ..., "formula": "...", "x_range": [a, b], "y_range": [c, d]},
     "start": [x, y],
     "runs": [{"optimizer": "Adam", "hyperparameters": {...}, "frozen": ["y"],
               "label": null, "color": "#1f77b4", "enabled": true,
               "trajectory": {...}}],                        # optional; ignored on load
     "extra": {...}}                                         # optional, for the app's own state

Loading validates everything before building anything: a bad file raises SessionError with a
message that says what is wrong, and the session in memory is left as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.errors import PlaygroundError, SessionError, SurfaceError
from core.run import COORDINATES, Run
from core.surfaces import SURFACES, Point, Surface, get_surface, surface_from_formula

FORMAT = "optimizer-playground-session"
VERSION = 1
MAX_RUNS = 32
MAX_FILE_BYTES = 10_000_000

# A colour-blind-friendly palette (Okabe-Ito), given out in turn to new runs; the colours that
# stand out best on the light heatmap come first, the yellow last.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")

DEFAULT_RUNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("SGD", {"lr": 1e-3}),
    ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    ("RMSprop", {"lr": 1e-2}),
    ("Adam", {"lr": 5e-2}),
)


class Session:
    """The surface, the start point and the runs. Every run starts at `start`."""

    def __init__(self, surface: Surface, start: Point | None = None,
                 runs: Iterable[Run] = ()) -> None:
        self.surface = surface
        self.start: Point = start if start is not None else surface.start
        self.runs: list[Run] = []
        self.extra: dict[str, Any] = {}
        for run in runs:
            self._adopt(run)

    @classmethod
    def default(cls, surface_name: str = "rosenbrock") -> Session:
        """The session the app opens with: SGD, SGD with momentum, RMSprop and Adam racing."""
        session = cls(get_surface(surface_name))
        for name, hps in DEFAULT_RUNS:
            session.add_run(name, hps)
        return session

    def _adopt(self, run: Run) -> Run:
        if len(self.runs) >= MAX_RUNS:
            raise SessionError(f"a session holds at most {MAX_RUNS} runs")
        if run.color is None:
            run.color = self.next_color()
        if run.surface is not self.surface or run.start != self.start:
            run.set_surface(self.surface, self.start)
        self.runs.append(run)
        return run

    def next_color(self) -> str:
        used = {r.color for r in self.runs}
        for c in PALETTE:
            if c not in used:
                return c
        return PALETTE[len(self.runs) % len(PALETTE)]

    def add_run(self, optimizer: str, hyperparameters: dict[str, Any] | None = None,
                frozen: Iterable[str] = (), label: str | None = None, color: str | None = None,
                enabled: bool = True) -> Run:
        return self._adopt(Run(self.surface, optimizer, hyperparameters, self.start,
                               tuple(frozen), label, color, enabled))

    def duplicate_run(self, run: Run) -> Run:
        c = run.config()
        return self.add_run(c["optimizer"], c["hyperparameters"], c["frozen"], run.label,
                            None, run.enabled)

    def remove_run(self, run: Run) -> None:
        self.runs.remove(run)

    def set_surface(self, surface: Surface, start: Point | None = None) -> None:
        """Replace the surface; every run restarts (at `start`, or the surface's own start)."""
        self.surface = surface
        self.start = start if start is not None else surface.start
        for run in self.runs:
            run.set_surface(surface, self.start)

    def set_start(self, start: Point) -> None:
        """Move the start point; every run restarts there. Raises SurfaceError if not finite."""
        x, y = float(start[0]), float(start[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise SurfaceError(f"the start point must be finite, got ({x}, {y})")
        self.start = (x, y)
        for run in self.runs:
            run.reset(self.start)

    def reset(self) -> None:
        for run in self.runs:
            run.reset(self.start)

    @property
    def active_runs(self) -> list[Run]:
        return [r for r in self.runs if r.enabled and r.status.value != "diverged"]

    def step(self, n: int = 1) -> int:
        """Step every enabled run that has not diverged n times; return total steps taken."""
        return sum(run.step(n) for run in self.active_runs)

    # --- JSON -----------------------------------------------------------------------------------

    def to_dict(self, include_trajectories: bool = False) -> dict[str, Any]:
        runs = [run.to_dict() if include_trajectories else run.config() for run in self.runs]
        data: dict[str, Any] = {"format": FORMAT, "version": VERSION,
                                "surface": self.surface.to_dict(), "start": list(self.start),
                                "runs": runs}
        if self.extra:
            data["extra"] = self.extra
        return data

    def save(self, path: str | Path, include_trajectories: bool = False) -> None:
        """Write the session as JSON; written to a temporary file first, so a failure keeps the
        old file intact."""
        path = Path(path)
        text = json.dumps(self.to_dict(include_trajectories), indent=1, allow_nan=False)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # e.g. the parent is a file: there is no temporary file to remove
                pass
            raise SessionError(f"cannot write session to {path}: {e.strerror or e}") from None

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        """Build a session from parsed JSON, validating all of it. Raises SessionError."""
        if not isinstance(data, dict):
            raise SessionError("not a session: the file must hold a JSON object")
        if data.get("format") != FORMAT:
            raise SessionError(f"not a session file: 'format' must be {FORMAT!r}")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise SessionError("missing or bad field 'version' (a whole number)")
        if version > VERSION:
            raise SessionError(f"the file was written by a newer version of the app (format "
                               f"version {version}; this one reads up to {VERSION})")
        for key in ("surface", "runs"):
            if key not in data:
                raise SessionError(f"missing field {key!r}")
        surface = _surface_from_dict(data["surface"])
        start = _point(data.get("start", list(surface.start)), "start")
        runs_data = data["runs"]
        if not isinstance(runs_data, list):
            raise SessionError("field 'runs' must be a list")
        if len(runs_data) > MAX_RUNS:
            raise SessionError(f"too many runs ({len(runs_data)}; at most {MAX_RUNS})")
        runs = [_run_from_dict(surface, start, i + 1, r) for i, r in enumerate(runs_data)]
        session = cls(surface, start, runs)
        extra = data.get("extra", {})
        session.extra = extra if isinstance(extra, dict) else {}
        return session

    @classmethod
    def load(cls, path: str | Path) -> Session:
        """Read and validate a session file. Raises SessionError with a clear message."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise SessionError(f"{path.name} is too large to be a session file")
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SessionError(f"cannot read {path}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise SessionError(f"{path.name} is not a session file (not text)") from None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            where = f" (line {e.lineno}, column {e.colno})" if isinstance(
                e, json.JSONDecodeError) else ""
            raise SessionError(f"{path.name} is not valid JSON{where}") from None
        try:
            return cls.from_dict(data)
        except SessionError as e:
            raise SessionError(f"{path.name}: {e}") from None


def _point(value: Any, what: str) -> Point:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value)):
        raise SessionError(f"field {what!r} must be two finite numbers [x, y], got {value!r}")
    return float(value[0]), float(value[1])


def _surface_from_dict(data: Any) -> Surface:
    if not isinstance(data, dict):
        raise SessionError("field 'surface' must be an object")
    try:
        if "formula" in data:
            if not isinstance(data["formula"], str):
                raise SessionError("surface 'formula' must be text")
            ranges = {k: _point(data[k], f"surface {k}") for k in ("x_range", "y_range")
                      if k in data}
            start = _point(data["start"], "surface start") if "start" in data else None
            surface = surface_from_formula(data["formula"], start=start,
                                           name=str(data.get("name", "custom")), **ranges)
            # Exported JSON (core.export.result_dict) describes a built-in in full: when it is
            # exactly the built-in, load the built-in itself (with its title and minima).
            builtin = SURFACES.get(surface.name)
            if builtin is not None and (surface.text, surface.x_range, surface.y_range,
                                        surface.start) == (builtin.text, builtin.x_range,
                                                           builtin.y_range, builtin.start):
                return builtin
            return surface
        if "name" not in data or not isinstance(data["name"], str):
            raise SessionError("surface needs a 'name' (a built-in) or a 'formula'")
        return get_surface(data["name"])
    except SessionError:
        raise
    except PlaygroundError as e:
        raise SessionError(f"surface: {e}") from None


def _run_from_dict(surface: Surface, start: Point, number: int, data: Any) -> Run:
    where = f"run {number}"
    if not isinstance(data, dict):
        raise SessionError(f"{where} must be an object")
    if "optimizer" not in data:
        raise SessionError(f"{where}: missing field 'optimizer'")
    hps = data.get("hyperparameters", {})
    frozen = data.get("frozen", [])
    label, color, enabled = data.get("label"), data.get("color"), data.get("enabled", True)
    if not isinstance(data["optimizer"], str):
        raise SessionError(f"{where}: 'optimizer' must be a torch.optim class name")
    if not isinstance(hps, dict):
        raise SessionError(f"{where}: 'hyperparameters' must be an object")
    if not isinstance(frozen, list) or not all(c in COORDINATES for c in frozen):
        raise SessionError(f"{where}: 'frozen' must be a list of 'x' and/or 'y'")
    if label is not None and not isinstance(label, str):
        raise SessionError(f"{where}: 'label' must be text")
    if color is not None and not (isinstance(color, str) and color.startswith("#")
                                  and len(color) in (7, 9)):
        raise SessionError(f"{where}: 'color' must look like #rrggbb")
    if not isinstance(enabled, bool):
        raise SessionError(f"{where}: 'enabled' must be true or false")
    try:
        return Run(surface, data["optimizer"], hps, start, tuple(frozen), label, color, enabled)
    except PlaygroundError as e:
        raise SessionError(f"{where}: {e}") from None
