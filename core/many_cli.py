"""`main.py basins` and `main.py sweep`: argparse wiring, so main.py needs only a few lines.

Importing this module loads no torch; the run_* functions do. Bad input raises a
PlaygroundError (a ValueError) with one line, which main.py prints with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

OUT_SUFFIXES = (".json", ".csv")
PICTURE_SUFFIXES = (".png", ".svg")
SWEEP_TABLE_ROWS = 60  # a longer sweep prints the best cell and a summary, not every row


def _add_common(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--surface", metavar="NAME", help="a built-in surface (see 'list')")
    where.add_argument("--formula", metavar="EXPR", help="your own f(x, y), e.g. 'x**2 + 3*y**2'")
    parser.add_argument("--optimizer", required=True, metavar="CALL",
                        help="e.g. 'Adam(lr=0.05, betas=(0.9, 0.99))' (L-BFGS is refused: it "
                             "shares one history and line search across the batch)")
    parser.add_argument("--steps", type=int, default=200, metavar="S",
                        help="optimizer steps per cell (default 200)")
    parser.add_argument("--freeze", action="append", default=[], choices=["x", "y"],
                        help="freeze x or y (requires_grad=False) in every cell; repeatable")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--out", metavar="FILE",
                     help="write .json or .csv (.png / .svg are not yet available)")


def add_basins_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `basins`: the surface, --optimizer, --grid, --steps, ranges, output."""
    _add_common(parser)
    parser.add_argument("--grid", type=int, default=64, metavar="N",
                        help="N x N starts (2 to 512, default 64), row-major: y then x")
    parser.add_argument("--x-range", metavar="A,B",
                        help="x range of the grid (default the surface's; with --formula also "
                             "its region, default -3,3)")
    parser.add_argument("--y-range", metavar="C,D", help="y range of the grid (as --x-range)")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sweep`: the surface, --optimizer, --lr, --param, --start, --steps, output."""
    _add_common(parser)
    parser.add_argument("--lr", required=True, metavar="LOW:HIGH:COUNT",
                        help="learning rates, spaced logarithmically, e.g. 1e-5:10:50")
    parser.add_argument("--param", metavar="NAME=LOW:HIGH:COUNT",
                        help="a second hyperparameter, spaced linearly, e.g. momentum=0:0.99:20 "
                             "(beta1 / beta2 for an element of betas): a trainability map")
    parser.add_argument("--start", metavar="X,Y", help="the start of every cell (default: the "
                                                       "surface's)")
    parser.add_argument("--x-range", metavar="A,B", help="x range for --formula (default -3,3)")
    parser.add_argument("--y-range", metavar="C,D", help="y range for --formula (default -3,3)")


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


def _out_path(args: argparse.Namespace) -> Path | None:
    if not args.out:
        return None
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix in PICTURE_SUFFIXES:
        raise _error(f"{suffix} pictures of {args.command_name} are not yet available; "
                     "write .json or .csv")
    if suffix not in OUT_SUFFIXES:
        raise _error(f"--out must end in .json or .csv (got {out.name!r})")
    return out


def _write(out: Path, result: Any) -> str:
    from core.export import write_text  # atomic; an OS failure is one line naming the file

    if out.suffix.lower() == ".json":
        write_text(out, json.dumps(result.to_json(), indent=1, allow_nan=False) + "\n")
    else:
        write_text(out, result.to_csv())
    return f"wrote {out}"


def run_basins_command(args: argparse.Namespace) -> str:
    """The text `basins` prints: JSON with --json, "wrote FILE" with --out, else a summary."""
    from core.many import basins

    args.command_name = "basins"
    out = _out_path(args)  # a wrong suffix is refused before any work
    surface = _surface(args)
    x_range = _pair(args.x_range, "--x-range") if args.x_range and args.surface else None
    y_range = _pair(args.y_range, "--y-range") if args.y_range and args.surface else None
    result = basins(surface, args.optimizer, args.grid, args.steps, x_range, y_range,
                    frozen=args.freeze)
    if args.json:
        return json.dumps(result.to_json(), indent=1, allow_nan=False)
    if out is not None:
        return _write(out, result)
    return _basins_table(result)


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


def run_sweep_command(args: argparse.Namespace) -> str:
    """The text `sweep` prints: JSON with --json, "wrote FILE" with --out, else a table."""
    from core.many import linear_spaced, log_spaced, lr_sweep, trainability_map

    args.command_name = "sweep"
    out = _out_path(args)
    low, high, count = parse_axis(args.lr, "--lr")
    if not (low > 0 and high > 0):
        raise _error(f"--lr is spaced logarithmically: LOW and HIGH must be above 0 "
                     f"(got {args.lr!r})")
    lrs = log_spaced(low, high, count)
    surface = _surface(args)
    start = _pair(args.start, "--start") if args.start else None
    if args.param:
        name, sep, axis = args.param.partition("=")
        if not sep or not name.strip():
            raise _error(f"--param must be NAME=LOW:HIGH:COUNT, e.g. momentum=0:0.99:20 "
                         f"(got {args.param!r})")
        values = linear_spaced(*parse_axis(axis, f"--param {name.strip()}"))
        result = trainability_map(surface, args.optimizer, name.strip(), values, lrs,
                                  args.steps, start, frozen=args.freeze)
    else:
        result = lr_sweep(surface, args.optimizer, lrs, args.steps, start, frozen=args.freeze)
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
    lines = [f"sweep of {result.optimizer} on {result.surface.title} from "
             f"({result.start[0]:g}, {result.start[1]:g}), {result.steps} steps",
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
