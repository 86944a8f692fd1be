"""`main.py basins`, `main.py sweep` and `main.py lrfind`: argparse wiring, so main.py needs only
a few lines.

`sweep` runs on a surface (--surface / --formula) or, without either, in model mode with the
model options of `train` (core/model_cli.py's own, imported: data, model, loss, batches, split,
seed); `lrfind` is the learning-rate range test (core/lr_finder.py) on the same model options.
`basins --out film.gif|.mp4|.webp|.apng` writes the basin map filling in as a film
(core/basin_animation.py): the frames are drawn by gui/basin_animation.py, which core must not
import, so main.py passes its writer in (`run_basins_command(args, write_film=...)`).

The work runs torch on one intra-op thread (core.batch.one_torch_thread; the count is put back
after): the batches are element-wise, and on a busy 2-core machine a second thread made a
65536-start step 30-50x slower.

Importing this module loads no torch; the run_* functions do. Bad input raises a
PlaygroundError (a ValueError) with one line, which main.py prints with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.animation_cli import ANIMATION_SUFFIXES as FILM_SUFFIXES  # (loads no torch)

OUT_SUFFIXES = (".json", ".csv")
PICTURE_SUFFIXES = (".png", ".svg")
SWEEP_TABLE_ROWS = 60  # a longer sweep prints the best cell and a summary, not every row


def _add_common(parser: argparse.ArgumentParser, model_mode: bool = False) -> None:
    where = parser.add_mutually_exclusive_group(required=not model_mode)
    where.add_argument("--surface", metavar="NAME", help="a built-in surface (see 'list')")
    where.add_argument("--formula", metavar="EXPR", help="your own f(x, y), e.g. 'x**2 + 3*y**2'")
    if not model_mode:  # (else train's own options, in the model group)
        _add_run_options(parser)
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--out", metavar="FILE",
                     help="write .json or .csv" + ("" if model_mode else
                                                   ", or the map filling in as a film: .gif, "
                                                   ".mp4, .webp, .apng")
                          + " (.png / .svg are not yet available)")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--optimizer", required=True, metavar="CALL",
                        help="e.g. 'Adam(lr=0.05, betas=(0.9, 0.99))' (L-BFGS is refused: it "
                             "shares one history and line search across the batch)")
    parser.add_argument("--steps", type=int, default=200, metavar="S",
                        help="optimizer steps per cell (default 200)")
    parser.add_argument("--freeze", action="append", default=[], metavar="NAME",
                        help="freeze x or y (requires_grad=False) in every cell; in model mode "
                             "a parameter name (0.weight) or a layer index; repeatable")


def _add_dtype(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="what the batch computes in: float64 (default; every cell equals "
                             "`run` from its start) or float32 (faster, less exact; the JSON "
                             "says which)")


def add_basins_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `basins`: the surface, --optimizer, --grid, --steps, ranges, --dtype,
    output, and a film's --fps / --steps-per-frame / --frames / --size."""
    _add_common(parser)
    parser.add_argument("--grid", type=int, default=64, metavar="N",
                        help="N x N starts (2 to 512, default 64), row-major: y then x")
    parser.add_argument("--x-range", metavar="A,B",
                        help="x range of the grid (default the surface's; with --formula also "
                             "its region, default -3,3)")
    parser.add_argument("--y-range", metavar="C,D", help="y range of the grid (as --x-range)")
    _add_dtype(parser)
    film = parser.add_argument_group("a film (--out FILE.gif, .mp4, .webp or .apng): the map "
                                     "filling in as the starts are stepped")
    film.add_argument("--fps", type=int, default=None, metavar="N",
                      help="frames per second (default 10; a GIF at most 50)")
    film.add_argument("--steps-per-frame", type=int, default=None, metavar="K",
                      help="optimizer steps between frames (default: about 100 frames)")
    film.add_argument("--frames", type=int, default=None, metavar="N",
                      help="the number of frames, the start included")
    film.add_argument("--size", default=None, metavar="W,H",
                      help="the film's size in pixels, W,H or WxH (default 800,600)")


def _add_model_group(parser: argparse.ArgumentParser, title: str, steps: int) -> None:
    """train's data and model options (core/model_cli.py's, imported) in a group of their own;
    its --optimizer, --freeze and --steps serve the command in every mode."""
    from core.model_cli import _add_model_options

    _add_model_options(parser.add_argument_group(title), steps, 0.2)


MODEL_GROUP = ("model mode, without --surface / --formula: the options of train (default "
               "small-mlp on moons); --optimizer (one), --freeze and --steps serve both modes")


def _one_optimizer(args: argparse.Namespace, default: str | None = None) -> str:
    """The one --optimizer the command takes (train's option is repeatable)."""
    calls = args.optimizer or ([default] if default else [])
    if len(calls) != 1:
        raise _error(f"{args.command_name} takes one --optimizer, e.g. --optimizer "
                     f"'Adam(lr=0.01)' (got {len(calls)})")
    return calls[0]


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sweep`: a surface (or the model options of train), --optimizer, --lr,
    --param, --start, --steps, output."""
    _add_common(parser, model_mode=True)
    _add_model_group(parser, MODEL_GROUP, 200)
    parser.add_argument("--lr", required=True, metavar="LOW:HIGH:COUNT",
                        help="learning rates, spaced logarithmically, e.g. 1e-5:10:50")
    parser.add_argument("--param", metavar="NAME=LOW:HIGH:COUNT",
                        help="a second hyperparameter, spaced linearly, e.g. momentum=0:0.99:20 "
                             "(beta1 / beta2 for an element of betas): a trainability map; in "
                             "model mode lr:LAYER=LOW:HIGH:COUNT (spaced logarithmically) is "
                             "that layer's own lr, a second param group, e.g. lr:0=1e-4:1:10")
    parser.add_argument("--tolerance", type=float, metavar="LOSS",
                        help="model mode: also the first step whose training loss is at or "
                             "below LOSS (steps_to_reach)")
    parser.add_argument("--start", metavar="X,Y", help="the start of every cell (default: the "
                                                       "surface's)")
    parser.add_argument("--x-range", metavar="A,B", help="x range for --formula (default -3,3)")
    parser.add_argument("--y-range", metavar="C,D", help="y range for --formula (default -3,3)")
    _add_dtype(parser)


def _error(message: str) -> Exception:
    from core.batch import BatchError

    return BatchError(message)


def _pair(text: str, what: str) -> tuple[float, float]:
    from core.batch import BatchError
    from core.text_values import parse_pair

    return parse_pair(text, what, BatchError)


def parse_axis(text: str, what: str) -> tuple[float, float, int]:
    """"LOW:HIGH:COUNT" -> (low, high, count); raises BatchError with one line."""
    parts = text.replace(" ", "").split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        low, high, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise _error(f"{what} must be LOW:HIGH:COUNT, e.g. 1e-5:10:50 (got {text!r})") from None
    if not (math.isfinite(low) and math.isfinite(high)) or count < 1:
        raise _error(f"{what} needs finite LOW and HIGH and a COUNT of 1 or more (got {text!r})")
    return low, high, count


def _surface(args: argparse.Namespace) -> Any:
    from core.surfaces import get_surface, surface_from_formula

    if args.surface:
        return get_surface(args.surface)
    ranges = {key: _pair(value, f"--{key.replace('_', '-')}") for key, value in
              (("x_range", args.x_range), ("y_range", args.y_range)) if value}
    return surface_from_formula(args.formula, **ranges)


def _out_path(args: argparse.Namespace, films: bool = False) -> Path | None:
    if not args.out:
        return None
    out = Path(args.out)
    suffix = out.suffix.lower()
    if films and suffix in FILM_SUFFIXES:
        return out
    if suffix in PICTURE_SUFFIXES:
        raise _error(f"{suffix} pictures of {args.command_name} are not yet available; "
                     "write .json or .csv")
    if suffix not in OUT_SUFFIXES:
        also = f", or a film's {', '.join(FILM_SUFFIXES)}" if films else ""
        raise _error(f"--out must end in .json or .csv{also} (got {out.name!r})")
    return out


def _write(out: Path, result: Any) -> str:
    from core.export import write_text  # atomic; an OS failure is one line naming the file

    if out.suffix.lower() == ".json":
        write_text(out, json.dumps(result.to_json(), indent=1, allow_nan=False) + "\n")
    else:
        write_text(out, result.to_csv())
    return f"wrote {out}"


def wants_film(args: argparse.Namespace) -> bool:
    """Whether `basins` was asked for a film (--out with a film's suffix)."""
    return bool(getattr(args, "out", None)) and Path(args.out).suffix.lower() in FILM_SUFFIXES


FilmWriter = Callable[..., Any]
"""write_film(film: BasinFilm, path, *, fps, steps_per_frame, frames, size) -> Path: what draws
and encodes a basin film (gui.basin_animation.write_basin_film; main.py passes it)."""


def run_basins_command(args: argparse.Namespace, write_film: FilmWriter | None = None) -> str:
    """The text `basins` prints: JSON with --json, "wrote FILE" with --out (a film with a
    film's suffix, drawn by `write_film`), else a summary. On one torch thread."""
    from core.batch import one_torch_thread
    from core.many import basins

    args.command_name = "basins"
    out = _out_path(args, films=True)  # a wrong suffix is refused before any work
    film = out is not None and out.suffix.lower() in FILM_SUFFIXES
    if not film:
        from core.animation_cli import refuse_animation_options

        refuse_animation_options(args, _error, args.out)  # (export's and train's words)
    surface = _surface(args)
    x_range = _pair(args.x_range, "--x-range") if args.x_range and args.surface else None
    y_range = _pair(args.y_range, "--y-range") if args.y_range and args.surface else None
    dtype = getattr(args, "dtype", "float64")
    if film:
        assert out is not None
        return _basins_film(args, out, surface, x_range, y_range, dtype, write_film)
    with one_torch_thread():
        result = basins(surface, args.optimizer, args.grid, args.steps, x_range, y_range,
                        frozen=args.freeze, dtype=dtype)
    if args.json:
        return json.dumps(result.to_json(), indent=1, allow_nan=False)
    if out is not None:
        return _write(out, result)
    return _basins_table(result)


def _basins_film(args: argparse.Namespace, out: Path, surface: Any, x_range: Any, y_range: Any,
                 dtype: str, write_film: FilmWriter | None) -> str:
    """The basin film: every bound checked (core.basin_animation, core.animation) before any
    stepping, then drawn and written atomically by `write_film`."""
    from core.animation import check_writable
    from core.animation_cli import animation_request
    from core.basin_animation import BasinFilm, check_basin_plan, check_basin_work, \
        plan_basin_animation
    from core.batch import one_torch_thread
    from core.many import check_dtype, optimizer_setting

    if args.json:
        raise _error("--json prints the map's cells; a film is written with --out")
    if write_film is None:
        raise _error(f"{out.suffix} films are drawn by main.py (python main.py basins ... "
                     f"--out {out.name})")
    request = animation_request(args, _error)  # fps, steps per frame, frames, size: checked
    fps, (width, height) = request.fps, request.size
    call = optimizer_setting(args.optimizer)
    check_dtype(dtype)
    check_basin_work(args.grid, args.steps)
    plan = plan_basin_animation(args.steps, fps=fps, steps_per_frame=args.steps_per_frame,
                                frames=args.frames)
    check_basin_plan(plan, width, height, out.suffix)
    check_writable(out)
    film = BasinFilm(surface, call, args.grid, args.steps, x_range, y_range,
                     tuple(args.freeze), dtype)
    with one_torch_thread():
        write_film(film, out, fps=fps, steps_per_frame=plan.steps_per_frame,
                   frames=args.frames, size=(width, height))
    return (f"wrote {out} ({plan.frame_count} frames, {plan.steps_per_frame} steps per frame, "
            f"{args.grid} x {args.grid} starts)")


def _basins_table(result: Any) -> str:
    import numpy as np

    from core.batch import STATUSES

    cells = result.cells
    lines = [f"basins of {result.optimizer} on {result.surface.title}, {result.steps} steps, "
             f"{len(result.x)} x {len(result.y)} starts",
             f"x in [{result.x[0]:g}, {result.x[-1]:g}], y in [{result.y[0]:g}, {result.y[-1]:g}]"
             f"; a cell is at a minimum within {result.tolerance:.3g}", ""]
    for m, (mx, my) in enumerate(result.minima):
        kind = "known" if m < result.known else "found"
        count = int(np.count_nonzero(result.minimum == m))
        lines.append(f"  minimum {m} ({kind}) at ({mx:.6g}, {my:.6g}): {count} cells")
    lines.append(f"  no minimum: {int(np.count_nonzero(result.minimum < 0))} cells")
    lines.append("  " + ", ".join(f"{name} {int(np.count_nonzero(cells.status == s))}"
                                  for s, name in enumerate(STATUSES)))
    return "\n".join(lines)


# Options of the model group that mean nothing on a surface, with their defaults.
_MODEL_ONLY = {"dataset": None, "data": None, "target": None, "n": None, "noise": None,
               "model": "small-mlp", "loss": None, "batch_size": 0, "test_fraction": None,
               "seed": 0}


def _model_built(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """(BuiltModelSession, frozen names) for the model options, as `train` builds them."""
    from core.model_cli import _build, _session
    from core.model_session import DEFAULT_TEST_FRACTION

    for flag, value in (("--start", args.start), ("--x-range", args.x_range),
                        ("--y-range", args.y_range)):
        if value:
            raise _error(f"{flag} is for a surface; a model starts from its initial weights")
    session = _session(args, DEFAULT_TEST_FRACTION)
    return _build(session), list(session.runs[0].frozen)


def _log_axis(text: str, what: str) -> Any:
    from core.many import log_spaced

    low, high, count = parse_axis(text, what)
    if not (low > 0 and high > 0):
        raise _error(f"{what} is spaced logarithmically: LOW and HIGH must be above 0 "
                     f"(got {text!r})")
    return log_spaced(low, high, count)


def run_sweep_command(args: argparse.Namespace) -> str:
    """The text `sweep` prints: JSON with --json, "wrote FILE" with --out, else a table. On
    one torch thread."""
    from core.batch import one_torch_thread
    from core.many import is_log_axis, linear_spaced, lr_sweep, trainability_map

    args.command_name = "sweep"
    out = _out_path(args)
    optimizer = _one_optimizer(args)
    args.optimizer = [optimizer]
    lrs = _log_axis(args.lr, "--lr")
    model_mode = not (args.surface or args.formula)
    extra: dict[str, Any] = {}
    dtype = getattr(args, "dtype", "float64")
    if model_mode:
        if dtype != "float64":
            raise _error("--dtype float32 is for a surface; a model's runs compute in float64 "
                         "(each equals `train`)")
        problem, frozen = _model_built(args)
        start = None
        extra["loss_tolerance"] = args.tolerance
    else:
        changed = [k for k, default in _MODEL_ONLY.items() if getattr(args, k) != default]
        if changed or args.tolerance is not None:
            flag = "--" + (changed[0] if changed else "tolerance").replace("_", "-")
            raise _error(f"{flag} is a model option; it does not go with --surface / --formula")
        problem, frozen = _surface(args), args.freeze
        start = _pair(args.start, "--start") if args.start else None
    if args.param:
        name, sep, axis = args.param.partition("=")
        name = name.strip()
        if not sep or not name:
            raise _error(f"--param must be NAME=LOW:HIGH:COUNT, e.g. momentum=0:0.99:20 "
                         f"(got {args.param!r})")
        if is_log_axis(name):
            values = _log_axis(axis, f"--param {name}")
        else:
            values = linear_spaced(*parse_axis(axis, f"--param {name}"))
    else:
        name, values = None, None
    with one_torch_thread():
        if name is not None and model_mode:
            from core.many import model_trainability_map

            result = model_trainability_map(problem, optimizer, name, values, lrs, args.steps,
                                            frozen, **extra)
        elif name is not None:
            result = trainability_map(problem, optimizer, name, values, lrs, args.steps, start,
                                      frozen=frozen, dtype=dtype)
        elif model_mode:
            from core.many import model_lr_sweep

            result = model_lr_sweep(problem, optimizer, lrs, args.steps, frozen, **extra)
        else:
            result = lr_sweep(problem, optimizer, lrs, args.steps, start, frozen=frozen,
                              dtype=dtype)
    if args.json:
        return json.dumps(result.to_json(), indent=1, allow_nan=False)
    if out is not None:
        return _write(out, result)
    return _sweep_table(result)


def _sweep_table(result: Any) -> str:
    from core.batch import STATUSES
    from core.many import BEST_LR_RULE

    cells = result.cells
    best = result.best_setting()
    if hasattr(result, "surface"):
        where = (f"on {result.surface.title} from ({result.start[0]:g}, {result.start[1]:g})")
    else:
        where = f"training {result.model} on {result.data}"
    lines = [f"sweep of {result.optimizer} {where}, {result.steps} steps",
             "best: " + ("none (every setting diverged)" if best is None else
                         ", ".join(f"{k}={v:.6g}" for k, v in best.items()))
             + f"  ({BEST_LR_RULE})", ""]
    if len(cells) > SWEEP_TABLE_ROWS:
        lines.append(f"{len(cells)} cells; use --json or --out for every one")
        return "\n".join(lines)
    param = result.param
    lines.append(f"{'lr':>12} " + (f"{param:>12} " if param else "")
                 + f"{'final loss':>14}  {'status':<10} converged at")
    converged = cells.steps_to_converge()
    for k in range(len(cells)):
        j, i = divmod(k, len(result.lrs))
        value = f"{result.values[j]:>12.6g} " if param else ""
        lines.append(f"{result.lrs[i]:>12.6g} {value}{cells.final_loss[k]:>14.6g}  "
                     f"{STATUSES[cells.status[k]]:<10} "
                     f"{'-' if converged[k] is None else converged[k]}"
                     + ("   <- best" if k == result.best else ""))
    return "\n".join(lines)


# --- lrfind ------------------------------------------------------------------------------------


def add_lrfind_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `lrfind`: the model options of train, --optimizer, the ramp, output."""
    from core.lr_finder import DEFAULT_BETA, DEFAULT_HIGH, DEFAULT_LOW, DEFAULT_STEPS, \
        DEFAULT_STOP_FACTOR, RULES

    _add_model_group(parser, "the options of train (default small-mlp on moons); one "
                             "--optimizer (default SGD; its lr is the ramp's), --steps: the "
                             f"ramp's (default {DEFAULT_STEPS})", DEFAULT_STEPS)
    parser.add_argument("--low", type=float, default=DEFAULT_LOW, metavar="LR",
                        help=f"the first lr (default {DEFAULT_LOW:g})")
    parser.add_argument("--high", type=float, default=DEFAULT_HIGH, metavar="LR",
                        help=f"the last lr (default {DEFAULT_HIGH:g}); torch's ExponentialLR "
                             "ramps between them, one factor a step")
    parser.add_argument("--stop-factor", type=float, default=DEFAULT_STOP_FACTOR, metavar="K",
                        help="stop once the smoothed loss passes K times its best (default "
                             f"{DEFAULT_STOP_FACTOR:g}, as fastai)")
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA, metavar="B",
                        help=f"smoothing of the loss (default {DEFAULT_BETA:g}, bias-corrected)")
    parser.add_argument("--rule", choices=sorted(RULES), default="valley",
                        help="the suggestion the summary shows: " + "; ".join(RULES.values()))
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--out", metavar="FILE", help="write .json or .csv")


def run_lrfind_command(args: argparse.Namespace) -> str:
    """The text `lrfind` prints: JSON with --json, "wrote FILE" with --out, else a summary. On
    one torch thread."""
    from core.batch import one_torch_thread
    from core.lr_finder import RULES, range_test

    args.command_name = "lrfind"
    out = _out_path(args)
    optimizer = _one_optimizer(args, "SGD")
    args.optimizer = [optimizer]
    args.start = args.x_range = args.y_range = None
    built, frozen = _model_built(args)
    with one_torch_thread():
        result = range_test(built, optimizer, args.low, args.high, args.steps,
                            args.stop_factor, args.beta, frozen)
    if args.json:
        return json.dumps(result.to_json(), indent=1, allow_nan=False)
    if out is not None:
        return _write(out, result)
    lines = [f"lr range test of {result.optimizer}: {len(result)} points, lr "
             f"{result.low:g} to {result.high:g} over {result.steps} steps "
             f"(ExponentialLR, gamma {result.gamma:.6g}); {result.stopped}"]
    for rule, text in RULES.items():
        lr = result.suggested_lr(rule)
        mark = "  <- --rule" if rule == args.rule else ""
        lines.append(f"  {rule}: " + ("none (too few points)" if lr is None else f"{lr:.4g}")
                     + f"  ({text}){mark}")
    return "\n".join(lines)
