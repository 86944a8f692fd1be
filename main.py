"""Optimizer Playground: the desktop app, and headless subcommands.

    python main.py                      open the app
    python main.py list                 surfaces and optimizers
    python main.py run [options]        step optimizers headless and print the result
    python main.py export [options] --out FILE   write .json, .csv, .png or .svg, or the race as
                            .gif, .mp4, .webp or .apng [--fps N] [--steps-per-frame K] [--frames N],
                            or as a standalone PyTorch script: --out run.py [--run N]
    python main.py graph [options] --at X,Y      the autograd graph of the loss at a point
    python main.py autograd --tensor "a=[2., 3.]" --tensor "b=[6., 4.]" --expr "3*a**3 - b**2"
                            --gradient "[1., 1.]" --json      the autograd lab: grads, Jacobian, VJP
    python main.py train [options]      train torch.nn models on data (model mode, headless);
                            --out run.py: as a standalone PyTorch script; --out anim.gif, .mp4,
                            .webp or .apng: as an animation [--fps N] [--steps-per-frame K]
                            [--frames N] [--size WxH]
    python main.py landscape [options]  a model's loss landscape as JSON or CSV, or drawn with
                            the runs' paths: --out FILE.png|.svg [--size WxH]
    python main.py basins [options]     basins of attraction of a grid of starts (one batch);
                            --out film.gif|.mp4 [--fps N] [--steps-per-frame K]: the map filling in
    python main.py sweep [options]      final loss against the learning rate
    python main.py lrfind [options]     the learning-rate range test of a model (fastai's lr_find)

Exit status: 0 on success, 2 for bad usage or bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

USAGE_ERROR = 2


class UsageError(Exception):
    """A mistake in the command line or its input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def _parse_optional(self, arg_string: str) -> Any:
        # argparse takes any "-..." for an option, so "--start -1.5,2", "--x-range -2,2" and
        # "--formula -exp(-(x**2+y**2))" failed with "expected one argument". Every option here
        # is long ("--name") except -h: anything else starting with a single '-' is a value.
        if (arg_string.startswith("-") and not arg_string.startswith("--")
                and arg_string not in self._option_string_actions):
            return None
        return super()._parse_optional(arg_string)

    def error(self, message: str) -> NoReturn:  # one clear line instead of usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _pair(text: str, what: str) -> tuple[float, float]:
    from core.text_values import parse_pair  # loads no torch

    return parse_pair(text, what, UsageError)


def _add_problem_options(p: argparse.ArgumentParser, with_runs: bool = True) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--surface", metavar="NAME", help="a built-in surface (see 'list')")
    where.add_argument("--formula", metavar="EXPR", help="your own f(x, y), e.g. 'x**2 + 3*y**2'")
    p.add_argument("--x-range", metavar="LO,HI", help="x range for --formula (default -3,3)")
    p.add_argument("--y-range", metavar="LO,HI", help="y range for --formula (default -3,3)")
    p.add_argument("--freeze", action="append", default=[], choices=["x", "y"],
                   help="freeze x or y (requires_grad=False) in every run; repeatable")
    if not with_runs:
        return
    p.add_argument("--start", metavar="X,Y", help="start point (default: the surface's)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="steps for every run (default: each run's own count in --session, "
                        "else 200)")
    from core.run_options import InOrder, add_tool_arguments  # loads no torch

    p.add_argument("--optimizer", action=InOrder, default=[], metavar="CALL",
                   help="e.g. 'Adam(lr=0.05, betas=(0.9, 0.99))'; repeatable "
                        "(default: SGD, SGD with momentum, RMSprop, Adam)")
    # Each of these belongs to the --optimizer before it, or to every run when given before
    # any (core/run_options.py): `--optimizer SGD(lr=0.001) --scheduler "StepLR(...)"`
    add_tool_arguments(p)
    p.add_argument("--session", metavar="FILE.json", help="load a saved session first")


def _run_settings(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The settings for every run and for each --optimizer's run (core/run_options.py)."""
    from core.run_options import run_settings

    return run_settings(args, UsageError)


def _gradient_tools(settings: dict[str, Any]) -> dict[str, Any]:
    """Run keyword arguments (scheduler, clipping, noise) from one run's options; a bad one is
    a UsageError of one line naming the option, the scheduler, the argument and the value."""
    from core.run_options import gradient_tools

    return gradient_tools(settings, UsageError)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optimizer-playground", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="the built-in surfaces and the optimizers")
    run = sub.add_parser("run", help="step optimizers headless and print the result")
    _add_problem_options(run)
    fmt = run.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true", help="print CSV, a row per run and step")
    export = sub.add_parser("export", help="run, then write .json, .csv, .png or .svg, a "
                                           "PyTorch script (.py) or an animation (.gif, .mp4, "
                                           ".webp, .apng)")
    _add_problem_options(export)
    export.add_argument("--out", required=True, metavar="FILE",
                        help="the file to write: .json, .csv, .png or .svg; .py: the race as a "
                             "standalone PyTorch script that prints the same trajectories; "
                             ".gif, .mp4, .webp or .apng: the race as an animation from its "
                             "start")
    export.add_argument("--run", type=int, default=None, metavar="N",
                        help="with --out FILE.py: only run N (from 1)")
    export.add_argument("--view", choices=("2d", "3d"), default="2d",
                        help="the picture: the 2-D heatmap (default) or the surface in 3-D (.png; "
                             "needs an OpenGL display, e.g. under xvfb-run)")
    export.add_argument("--size", default=None, metavar="W,H",
                        help="image size in pixels (W,H or WxH) for .png/.svg (default 1200,900) "
                             "and animations (default 800,600)")
    from core.animation_cli import add_animation_arguments  # loads no torch

    # --fps, --steps-per-frame, --frames: one parsing with train's and basins' films
    add_animation_arguments(export, what="the race", size=False)
    export.add_argument("--curves", action="store_true",
                        help="animations: the loss and gradient-norm curves under the surface")
    graph = sub.add_parser("graph", help="the autograd graph of the loss at a point")
    _add_problem_options(graph, with_runs=False)
    graph.add_argument("--at", metavar="X,Y", help="the point (default: the surface's start)")
    gfmt = graph.add_mutually_exclusive_group()
    gfmt.add_argument("--json", action="store_true", help="print nodes and edges as JSON")
    gfmt.add_argument("--out", metavar="FILE", help="render the graph to .png or .svg")
    from core.lab.cli import add_autograd_arguments  # loads no torch

    add_autograd_arguments(sub.add_parser(
        "autograd", help="tensors and an expression: Q, its grads, the Jacobian and the VJP"))
    from core.model_cli import add_landscape_arguments, add_train_arguments  # loads no torch

    add_train_arguments(sub.add_parser(
        "train", help="train torch.nn models on data with several optimizers, headless: a "
                      "table, JSON, a PyTorch script or an animation (.gif, .mp4, ...)"))
    add_landscape_arguments(sub.add_parser(
        "landscape", help="the loss landscape of a model, exact over two scalars or a 2-D "
                          "slice: JSON, CSV, or a .png/.svg picture with the runs' paths"))
    from core.many_cli import (add_basins_arguments, add_lrfind_arguments,  # loads no torch
                               add_sweep_arguments)

    add_basins_arguments(sub.add_parser(
        "basins", help="a grid of starts: which minimum each reaches, stepped as one batch"))
    add_sweep_arguments(sub.add_parser(
        "sweep", help="final loss against the learning rate (and another hyperparameter)"))
    add_lrfind_arguments(sub.add_parser(
        "lrfind", help="a model's learning-rate range test: the loss over an exponential lr ramp"))
    return parser


def _surface(args: argparse.Namespace, start: tuple[float, float] | None = None):
    """The surface the options name (None: none named). `start`: a point the caller chose, so
    a formula's own start need not be searched for (graph --at a point of your choice)."""
    from core.surfaces import get_surface, surface_from_formula

    if args.surface:
        return get_surface(args.surface)
    if args.formula is not None:
        ranges = {k: _pair(v, f"--{k.replace('_', '-')}") for k, v in
                  (("x_range", args.x_range), ("y_range", args.y_range)) if v}
        return surface_from_formula(args.formula, start=start, **ranges)
    if args.x_range or args.y_range:
        raise UsageError("--x-range and --y-range go with --formula")
    return None


def build_session(args: argparse.Namespace):  # -> Session
    """The session the options describe: a loaded file, overridden by the options given."""
    from core.optimizers import parse_optimizer_call
    from core.session import DEFAULT_RUNS, Session
    from core.surfaces import get_surface

    surface = _surface(args)
    if args.steps is not None and args.steps < 0:
        raise UsageError(f"--steps must be 0 or more (got {args.steps})")
    if args.session:
        session = Session.load(args.session)
        if surface is not None:
            session.set_surface(surface)
    else:
        session = Session(surface or get_surface("rosenbrock"))
    if args.start:
        session.set_start(_pair(args.start, "--start"))
    calls = [parse_optimizer_call(text) for text in args.optimizer]
    shared, per_run = _run_settings(args)
    if calls or not args.session:
        session.runs.clear()
        from core.run_options import settings_for_run

        for number, (name, hps) in enumerate(calls or DEFAULT_RUNS):
            own = per_run[number] if number < len(per_run) else {}
            session.add_run(name, hps, **_gradient_tools(settings_for_run(shared, own)))
    elif shared:  # a loaded session's runs take the options given (noise, clipping, schedule)
        from core.gradient_tools import GradientNoise

        tools = _gradient_tools(shared)
        for run in session.runs:
            if "noise" in tools:  # each run its own generator
                run.set_noise(GradientNoise(tools["noise"].sigma, tools["noise"].seed))
            if "clipping" in tools:
                run.set_clipping(tools["clipping"])
            if "scheduler" in tools:
                run.set_scheduler(tools["scheduler"])
    for run in session.runs:
        for c in args.freeze:
            run.set_frozen(c, True)
    return session


def _fmt(v: float) -> str:
    return "-" if v != v else f"{v:.6g}"


def result_table(session) -> str:
    s = session.surface
    lines = [f"surface: {s.title}   f(x, y) = {s.text}",
             f"start: ({session.start[0]:g}, {session.start[1]:g})"]
    if s.minima:
        lines.append("known minima: " + ", ".join(f"({a:.6g}, {b:.6g})" for a, b in s.minima)
                     + (f"  value {s.min_value:g}" if s.min_value is not None else ""))
    header = f"{'#':>2}  {'optimizer':<34} {'steps':>6} {'x':>12} {'y':>12} {'loss':>12} " \
             f"{'|grad|':>10}  status"
    lines += ["", header, "-" * len(header)]
    for i, run in enumerate(session.runs, 1):
        t = run.trajectory
        if len(t):
            last = t.last()
            values = (last["x"], last["y"], last["loss"], float(t.grad_norm[-1]))
        else:
            values = (math.nan,) * 4
        name = run.title if len(run.title) <= 34 else run.title[:31] + "..."
        frozen = f" [frozen {','.join(sorted(run.frozen))}]" if run.frozen else ""
        lines.append(f"{i:>2}  {name:<34} {run.steps:>6} " + " ".join(
            f"{_fmt(v):>12}" for v in values[:3]) + f" {_fmt(values[3]):>10}  "
            f"{run.status_text if run.enabled else 'disabled'}{frozen}")
    return "\n".join(lines)


def cmd_list() -> str:
    from core.optimizers import CATALOGUE
    from core.surfaces import BUILTIN_SURFACES

    out = ["Surfaces (use --surface NAME):"]
    for s in BUILTIN_SURFACES:
        minima = ", ".join(f"({a:.4g}, {b:.4g})" for a, b in s.minima) or "none"
        value = f" = {s.min_value:.6g}" if s.min_value is not None else ""
        out.append(f"  {s.name:<18} {s.title}: {s.text}")
        out.append(f"  {'':<18} x in [{s.x_range[0]:g}, {s.x_range[1]:g}], y in "
                   f"[{s.y_range[0]:g}, {s.y_range[1]:g}], start ({s.start[0]:g}, "
                   f"{s.start[1]:g}), minima {minima}{value}")
    out += ["", "Optimizers (use --optimizer 'Name(key=value, ...)'):"]
    for spec in CATALOGUE.values():
        out.append(f"  {spec.name}: {spec.help}")
        for h in spec.hyperparameters:
            out.append(f"      {h.name:<26} default {h.default!r:<14} {h.range_text():<22} "
                       f"{h.help}")
    return "\n".join(out)


def cmd_run(args: argparse.Namespace) -> str:
    from core.export import to_csv, to_json

    session = build_session(args)
    session.play(args.steps)  # each run its own count; disabled runs stay at the start
    if args.json:
        return to_json(session)
    if args.csv:
        return to_csv(session).rstrip("\n")
    return result_table(session)


def cmd_export(args: argparse.Namespace) -> str:
    from core.export import export_data

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix == ".py":
        return _export_script(args, out)
    if args.run is not None:
        raise UsageError(f"--run goes with a script (--out FILE.py), not {suffix or out.name!r}")
    if suffix in _ANIMATION_SUFFIXES:
        return _export_animation(args, out)
    from core.animation_cli import refuse_animation_options

    refuse_animation_options(args, UsageError, args.out,
                             ("fps", "steps_per_frame", "frames", "curves"))
    if suffix not in (".json", ".csv", ".png", ".svg"):
        raise UsageError(f"--out must end in .json, .csv, .png, .svg, .py, "
                         f"{', '.join(_ANIMATION_SUFFIXES)} (got {out.name!r})")
    if args.view == "3d" and suffix != ".png":
        raise UsageError(f"--view 3d writes a .png (got {out.name!r})")
    session = build_session(args)
    session.play(args.steps)  # each run its own count; disabled runs stay at the start
    if suffix in (".png", ".svg"):
        from gui.image_export import render_session_image

        width, height = _size(args.size or "1200,900")
        if not (16 <= width <= 10000 and 16 <= height <= 10000):
            raise UsageError("--size must be between 16 and 10000 pixels each way")
        if args.view == "3d":
            from gui.surface3d_view import render_surface3d_image

            render_surface3d_image(session, out, int(width), int(height))
        else:
            render_session_image(session, out, int(width), int(height))
    else:
        export_data(session, out)
    return f"wrote {out}"


_ANIMATION_SUFFIXES = (".gif", ".mp4", ".webp", ".apng")  # core.animation_cli's, too


def _export_script(args: argparse.Namespace, out: Path) -> str:
    """The race, stepped as `run` steps it, as a standalone PyTorch script
    (core/script_export.py); it prints the same trajectories as `run --json`."""
    for option in ("fps", "steps_per_frame", "frames", "curves", "size"):
        if getattr(args, option) not in (None, False):
            raise UsageError(f"--{option.replace('_', '-')} goes with a picture or an "
                             f"animation, not a script ({out.name!r})")
    if args.view != "2d":
        raise UsageError(f"--view goes with a picture, not a script ({out.name!r})")
    from core.script_export import check_script_target, write_script

    check_script_target(out)  # before the steps, not after them
    session = build_session(args)
    if args.run is not None and not 1 <= args.run <= len(session.runs):
        raise UsageError(f"--run must be from 1 to {len(session.runs)} (got {args.run})")
    session.play(args.steps)
    write_script(session, out, None if args.run is None else args.run - 1)
    return f"wrote {out}"


def _size(text: str) -> tuple[int, int]:
    """--size as W,H or WxH, in whole pixels (core/animation_cli.py's parsing)."""
    from core.animation_cli import parse_size

    return parse_size(text, UsageError)


def _export_animation(args: argparse.Namespace, out: Path) -> str:
    """The race from its start, stepped and drawn frame by frame (gui/animation_export.py)."""
    from core.animation import check_plan, plan_animation

    if args.view == "3d":
        raise UsageError(f"--view 3d writes a .png (got {out.name!r})")
    from core.animation_cli import animation_request

    request = animation_request(args, UsageError)  # train's and basins' checks and words
    width, height = request.size
    fps = request.fps
    session = build_session(args)  # not played: the animation steps a copy from the start
    plan = plan_animation(session, fps=fps, steps_per_frame=args.steps_per_frame,
                          steps=args.steps, frames=args.frames)
    check_plan(session, plan, width, height, out.suffix)  # before any drawing
    from gui.animation_export import export_race_animation

    export_race_animation(session, out, width, height, fps=fps,
                          steps_per_frame=plan.steps_per_frame, steps=args.steps,
                          frames=args.frames, curves=args.curves)
    return f"wrote {out} ({plan.frame_count} frames, {plan.steps_per_frame} steps per frame)"


def cmd_graph(args: argparse.Namespace) -> str:
    from core.graph import build_graph

    at = _pair(args.at, "--at") if args.at else None
    surface = _surface(args, start=at)  # the graph at a given point needs no start search
    if surface is None:
        raise UsageError("graph needs --surface NAME or --formula EXPR")
    at = at or surface.start
    graph = build_graph(surface, at[0], at[1], frozen=args.freeze)
    if args.out:
        from gui.graph_view import render_graph

        out = Path(args.out)
        if out.suffix.lower() not in (".png", ".svg"):
            raise UsageError(f"--out must end in .png or .svg (got {out.name!r})")
        render_graph(graph, out)
        return f"wrote {out}"
    if args.json:
        return json.dumps(graph.to_json(), indent=1)
    lines = [f"loss = {graph.loss:.6g} at ({at[0]:g}, {at[1]:g}); "
             + f"{len(graph.nodes)} nodes, {len(graph.edges)} edges"]
    for node in graph.nodes:  # value is None for an op whose result autograd did not keep
        value = "-" if node.value is None else f"{node.value:.6g}"
        grad = "-" if node.grad is None else f"{node.grad:.6g}"
        lines.append(f"  {node.id:>4} {node.kind:<8} {node.label:<16} value {value:<14}"
                     f" d(loss)/d(out) {grad}")
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> str:
    """`train`: JSON, a table or --out run.py (core/model_cli.py); --out anim.gif|.mp4|.webp|
    .apng: the training from its start as a film, drawn headless as the window draws it."""
    from core.animation_cli import is_animation
    from core.model_cli import run_train_command, train_animation_request

    if not is_animation(args.out):
        return run_train_command(args)
    film = train_animation_request(args)  # every check before Qt is loaded or a step taken
    write_model_animation = _drawing("gui.model.animation_frames", "write_model_animation",
                                     "animations")
    write_model_animation(film.session, film.out, film.options)
    return (f"wrote {film.out} ({film.frame_count} frames, {film.steps_per_frame} steps per "
            f"frame)")


def cmd_landscape(args: argparse.Namespace) -> str:
    """`landscape`: the grid as JSON, .json or .csv (core/model_cli.py); --out .png/.svg: the
    landscape and the runs' paths drawn headless (gui/model/landscape_image.py)."""
    from core.model_cli import PICTURE_SUFFIXES, run_landscape_command

    if not (args.out and Path(args.out).suffix.lower() in PICTURE_SUFFIXES):
        return run_landscape_command(args)
    picture = _drawing("gui.model.landscape_image", "run_landscape_picture_command", "pictures")
    return picture(args)


def _drawing(module: str, name: str, what: str) -> Callable[..., Any]:
    """`name` from the app's drawing code `module`, headless; a clear UsageError when PySide6 or
    pyqtgraph is not installed (the command line itself needs neither)."""
    import importlib

    _ensure_headless_qt()
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("PySide6", "pyqtgraph", "shiboken6"):
            raise
        raise UsageError(f"{what} are drawn with the app's packages (PySide6, pyqtgraph), "
                         f"which are not installed here: {e}") from None


def cmd_basins(args: argparse.Namespace) -> str:
    from core.many_cli import run_basins_command, wants_film

    if wants_film(args):  # drawn offscreen by gui/basin_animation.py (core imports no Qt)
        return run_basins_command(args, write_film=_drawing("gui.basin_animation",
                                                            "write_basin_film", "films"))
    return run_basins_command(args)


def cmd_sweep(args: argparse.Namespace) -> str:
    from core.many_cli import run_sweep_command

    return run_sweep_command(args)


def cmd_lrfind(args: argparse.Namespace) -> str:
    from core.many_cli import run_lrfind_command

    return run_lrfind_command(args)


def cmd_autograd(args: argparse.Namespace) -> str:
    from core.lab.cli import run_autograd_command

    return run_autograd_command(args)


def _ensure_headless_qt() -> None:
    import os

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# Qt platform plugins that draw without a window system (QT_QPA_PLATFORM=offscreen in tests).
_NO_WINDOW_SYSTEM = {"offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb",
                     "vkkhrdisplay"}


def no_display_reason(environ: Mapping[str, str], platform: str) -> str | None:
    """Why the app cannot open a window here ("DISPLAY is not set"), or None if it can.

    Without it, Qt aborts ("could not connect to display", then a core dump) with no hint
    that the headless subcommands would work. macOS and Windows always have a display.
    """
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    # QT_QPA_PLATFORM may list fallbacks ("wayland;xcb") and options ("xcb:foo=bar").
    plugins = [p.split(":")[0].strip().lower() for p in requested.split(";") if p.strip()]
    has_x, has_wayland = bool(environ.get("DISPLAY")), bool(environ.get("WAYLAND_DISPLAY"))
    if not plugins:
        return None if has_x or has_wayland else "DISPLAY is not set"
    for plugin in plugins:
        if plugin in _NO_WINDOW_SYSTEM or (plugin == "xcb" and has_x) \
                or (plugin.startswith("wayland") and has_wayland):
            return None
        if plugin not in ("xcb",) and not plugin.startswith("wayland"):
            return None  # a plugin we do not know about: let Qt decide
    needed = "DISPLAY" if plugins[0] == "xcb" else "WAYLAND_DISPLAY"
    return f"QT_QPA_PLATFORM is {requested!r} but {needed} is not set"


def _open_app() -> int:
    import os

    reason = no_display_reason(os.environ, sys.platform)
    if reason is not None:
        print(f"optimizer-playground: no display ({reason}); run it on a desktop, or use the "
              "headless subcommands: see --help", file=sys.stderr)
        return 1
    try:
        from gui.app import run_app
    except ImportError as e:
        print(f"optimizer-playground: the desktop app cannot start: {e}", file=sys.stderr)
        return 1
    return run_app()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            return _open_app()
        if args.command in ("export", "graph"):
            _ensure_headless_qt()
        handler: dict[str, Any] = {"list": lambda a: cmd_list(), "run": cmd_run,
                                   "export": cmd_export, "graph": cmd_graph,
                                   "autograd": cmd_autograd, "train": cmd_train,
                                   "landscape": cmd_landscape, "basins": cmd_basins,
                                   "sweep": cmd_sweep, "lrfind": cmd_lrfind}
        if args.command == "list":
            print(cmd_list())
            return 0
        # One torch thread, as the window runs (gui/app.py): the same sums in the same order,
        # so what a command prints equals what the window shows, bit for bit.
        from core.batch import one_torch_thread

        with one_torch_thread():
            print(handler[args.command](args))
        return 0
    except UsageError as e:
        print(f"optimizer-playground: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except ValueError as e:  # the engine's PlaygroundError and friends: a user's mistake
        print(f"optimizer-playground: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
