"""`main.py train` and `main.py landscape`: model mode headless, as argparse wiring.

main.py needs only a few lines: `add_train_arguments(sub.add_parser("train"))`,
`add_landscape_arguments(sub.add_parser("landscape"))`, and `run_train_command(args)` /
`run_landscape_command(args)` as the handlers, which return the text to print. Importing this
module loads no torch; the run_* functions do. Bad input raises a PlaygroundError (a ValueError)
with one line, which main.py prints with exit status 2.

Pictures and films are drawn by the app's code (core never imports Qt), so main.py sends
`landscape --out FILE.png|.svg` to gui.model.landscape_image.run_landscape_picture_command and
`train --out FILE.gif|.mp4|.webp|.apng` to `train_animation_request` (every check, here) and
then gui.model.animation_frames.write_model_animation.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_TRAIN_STEPS = 100_000   # per run; the trajectory keeps every step up to 200,000 entries
DEFAULT_TRAIN_STEPS = 200
DIRECTIONS = ("random", "pca", "hessian", "exact")
LANDSCAPE_SUFFIXES = (".json", ".csv")
PICTURE_SUFFIXES = (".png", ".svg")
# The trajectory columns `train --json` adds when a run has them (core/run.py)
TOOL_COLUMNS = ("clipped", "grad_norm_before_clip", "grad_norm_after_clip", "momentum", "beta1")


def _add_model_options(parser: argparse.ArgumentParser, default_steps: int,
                       default_fraction: float, steps_help: str | None = None) -> None:
    # (core/many_cli.py uses these too, with the plain --steps help)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dataset", metavar="NAME",
                       help="a generated dataset: line, sine, moons, circles, spirals, xor, "
                            "blobs (default moons)")
    where.add_argument("--data", metavar="FILE.csv",
                       help="your CSV: a header, feature columns and a target column")
    parser.add_argument("--target", metavar="COLUMN",
                        help="the CSV's target column (default: the last)")
    parser.add_argument("--n", type=int, default=None, metavar="N",
                        help="points of the generated dataset (default 200)")
    parser.add_argument("--noise", type=float, default=None, metavar="X",
                        help="noise of the generated dataset (default: the dataset's own)")
    parser.add_argument("--model", default="small-mlp", metavar="LAYERS",
                        help='layers as in PyTorch, e.g. "Linear(2, 16), Tanh(), Linear(16, 1)", '
                             "or a preset: linear-regression, logistic-regression, small-mlp "
                             "(default), deep-mlp (adapted to the data's features and classes)")
    parser.add_argument("--loss", metavar="NAME",
                        help="MSELoss, BCEWithLogitsLoss or CrossEntropyLoss (default: the one "
                             "that fits the target)")
    parser.add_argument("--batch-size", type=int, default=0, metavar="N",
                        help="rows per minibatch, drawn from --seed (0, the default: full batch)")
    parser.add_argument("--test-fraction", type=float, default=None, metavar="F",
                        help=f"the held-out share of rows (default {default_fraction:g}; 0 "
                             "trains on every row, in file order)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="the seed of the generated data, the split, the initial weights and "
                             "the minibatches (default 0)")
    from core.run_options import InOrder  # loads no torch

    parser.add_argument("--optimizer", action=InOrder, default=[], metavar="CALL",
                        help='e.g. "Adam(lr=0.01)"; repeatable (default: SGD(lr=0.1) and '
                             "Adam(lr=0.01))")
    parser.add_argument("--freeze", action="append", default=[], metavar="NAME",
                        help="freeze a parameter (a name from model.named_parameters(), e.g. "
                             "0.weight) or a layer index (all its parameters) in every run; "
                             "repeatable")
    parser.add_argument("--steps", type=int, default=default_steps, metavar="N",
                        help=steps_help or f"optimizer steps per run (default "
                                                        f"{default_steps})")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `train`: data, model, loss, batches, split, seed, runs (each with its
    --scheduler / --clip-norm / --clip-value), steps, --session, --json, --out run.py, and
    --out anim.gif|.mp4|.webp|.apng with --fps, --steps-per-frame, --frames, --size."""
    from core.run_options import add_tool_arguments  # loads no torch

    _add_model_options(parser, DEFAULT_TRAIN_STEPS, 0.2,
                       f"optimizer steps per run (default {DEFAULT_TRAIN_STEPS}; with "
                       "--session, each run's own count)")
    parser.set_defaults(steps=None)  # None: each run's own count in --session, else 200
    add_tool_arguments(parser, noise=False)  # --noise and --seed are the data's here
    parser.add_argument("--session", metavar="FILE.json",
                        help="a saved model session (its runs replay their mid-run changes); "
                             "--optimizer, --freeze and the run options apply on top")
    parser.add_argument("--eval-every", type=int, default=1, metavar="K",
                        help="test loss and accuracy every K steps (default 1: every step), "
                             "under torch.no_grad(); null in between")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--out", metavar="FILE",
                     help="FILE.py: the training as a standalone PyTorch script that prints "
                          "what --json prints; FILE.gif, .mp4, .webp or .apng: the training "
                          "as an animation from the start (the data with a run's prediction, "
                          "the loss curves, the step), as the window's File > Export > "
                          "Animation makes it")
    from core.animation_cli import add_animation_arguments  # loads no torch

    add_animation_arguments(parser.add_argument_group(
        "animations", "with --out FILE.gif, .mp4, .webp or .apng (MP4 needs imageio-ffmpeg: "
        "pip install 'optimizer-playground[video]')"), what="the longest run", prefix="")


def add_landscape_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `landscape`: the same model and data, --directions, --grid, --span,
    --steps (train first: PCA's paths), --out (.json, .csv, or a .png/.svg picture)."""
    _add_model_options(parser, 0, 0.0,  # the landscape is over every row unless asked
                       "train each run N steps first, from the centre: their paths are "
                       "drawn on the plane, and pca's directions come from them (default 0)")
    parser.add_argument("--directions", choices=DIRECTIONS, default="random",
                        help="random: filter-normalised (Li et al., 2018); pca: the top two of "
                             "the runs' paths (needs --steps); hessian: the top two "
                             "eigenvectors at the centre; exact: the loss over the model's two "
                             "trainable scalars (freeze the rest)")
    parser.add_argument("--grid", type=int, default=51, metavar="N",
                        help="N x N points (default 51), rows along y")
    parser.add_argument("--span", type=float, default=1.0, metavar="S",
                        help="each axis from -S to S around the centre (default 1)")
    parser.add_argument("--cover-paths", action="store_true",
                        help="widen each axis beyond the span until the runs' paths fit")
    parser.add_argument("--size", metavar="W,H", default=None,
                        help="the picture's size in pixels, W,H or WxH, with --out "
                             ".png/.svg (default 1000,800)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object (the default)")
    fmt.add_argument("--out", metavar="FILE",
                     help="write .json or .csv, or draw the landscape and the runs' paths as "
                          ".png or .svg")


# --- shared ------------------------------------------------------------------------------------


def _error(message: str) -> Exception:
    from core.errors import PlaygroundError

    return PlaygroundError(message)


def _session(args: argparse.Namespace, default_fraction: float) -> Any:
    """The ModelSession the options describe (runs included, freezes resolved to names)."""
    from core.model_session import DEFAULT_RUNS, DataSpec, ModelSession
    from core.optimizers import parse_optimizer_call
    from core.problems.data import MAX_CSV_BYTES, DataError

    if args.steps < 0 or args.steps > MAX_TRAIN_STEPS:
        raise _error(f"--steps must be from 0 to {MAX_TRAIN_STEPS:,} (got {args.steps})")
    if args.data is not None:
        if args.n is not None or args.noise is not None:
            raise _error("--n and --noise go with --dataset, not with --data")
        path = Path(args.data)
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CSV_BYTES + 1)
        except OSError as e:
            raise DataError(f"cannot read {args.data!r}: {e.strerror or e}") from None
        if len(raw) > MAX_CSV_BYTES:
            raise DataError(f"{path.name}: the file is larger than {MAX_CSV_BYTES:,} bytes")
        from core.problems.data import _decode
        try:
            text = _decode(raw)
        except DataError as e:
            raise DataError(f"{path.name}: {e}") from None
        data = DataSpec(dataset=None, csv=text, name=path.name, target=args.target)
    else:
        if args.target is not None:
            raise _error("--target goes with --data FILE.csv")
        data = DataSpec(dataset=args.dataset or "moons", n=args.n, noise=args.noise)
    fraction = default_fraction if args.test_fraction is None else args.test_fraction
    session = ModelSession(args.model, data, args.loss, args.batch_size, fraction, args.seed)
    try:
        frozen = session.freeze_names(args.freeze) if args.freeze else []
    except DataError as e:
        if data.csv is not None:
            raise DataError(f"{data.name}: {e}") from None
        raise
    calls = [parse_optimizer_call(text) for text in args.optimizer] or list(DEFAULT_RUNS)
    for name, hps in calls:
        session.add_run(name, hps, frozen=list(frozen), steps=args.steps)
    return session


def _build(session: Any) -> Any:
    from core.problems.data import DataError

    try:
        return session.build()
    except DataError as e:  # a CSV's message names the line; say which file too
        if session.data.csv is not None and not str(e).startswith(session.data.name):
            raise DataError(f"{session.data.name}: {e}") from None
        raise


def _finite(value: Any) -> Any:
    """Nested lists with non-finite numbers as None (strict JSON)."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _column(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def grad_norm(trajectory: Any) -> Any:
    """|gradient| over every parameter per entry (a frozen one counts as none).

    Computed here from the columns because Trajectory.grad_norm looks for 'grad_NAME' for a
    one-element tensor of shape (1,), whose column is 'grad_NAME[0]' (a Linear(16, 1)'s bias).
    """
    import numpy as np

    squares = np.zeros(len(trajectory))
    for name in trajectory.shapes:
        if name in trajectory.normed:
            squares += np.nan_to_num(trajectory.column(f"grad_norm:{name}")) ** 2
        else:
            for column in trajectory.stored[name]:
                squares += np.nan_to_num(trajectory.column("grad_" + column)) ** 2
    return np.sqrt(squares)


# --- train -------------------------------------------------------------------------------------


def train_report(session: Any, built: Any, records: list[Any], eval_every: int
                 ) -> dict[str, Any]:
    """The JSON object of `train --json` (see run_train_command)."""
    frozen_everywhere = set.intersection(*(set(r.frozen) for r in built.runs)) if built.runs \
        else set()
    shapes = built.problem.shapes()
    split = built.split
    test_rows = 0 if split.test is None else split.test.n
    if test_rows:
        metrics = (f"test_loss and accuracy: on the {test_rows} held-out rows, under "
                   f"torch.no_grad() in eval mode, at step 0, every {eval_every} step"
                   f"{'s' if eval_every != 1 else ''} and the last; null elsewhere")
    else:
        metrics = "test_loss and accuracy: null (test fraction 0: no held-out rows)"
    if built.loss_name == "MSELoss" and test_rows:
        metrics += " (accuracy is null for regression)"
    dataset = built.dataset
    data = {"name": dataset.name, "task": dataset.task, "rows": dataset.n,
            "features": list(dataset.feature_names), "target": dataset.target_name,
            "classes": list(dataset.class_names), "settings": dict(dataset.settings),
            "train_rows": split.train.n, "test_rows": test_rows,
            "test_fraction": session.test_fraction, "loss": built.loss_name,
            "batch_size": 0 if built.problem.full_batch else built.problem.batch_size,
            "seed": session.seed, "metrics": metrics}
    runs = []
    initial = built.problem.initial_parameters()
    for run, record in zip(built.runs, records):
        t = run.trajectory
        steps = [int(s) for s in t.step]
        config = run.config()
        runs.append({
            "optimizer": run.optimizer_name, "call": run.title,
            "hyperparameters": config["hyperparameters"], "frozen": config["frozen"],
            "label": run.label, "color": run.color, "enabled": run.enabled,
            "status": run.status.value, "status_text": run.status_text, "steps": run.steps,
            "initial_parameters": {n: _finite(initial[n].tolist()) for n in run.parameter_names},
            "final_parameters": {n: _finite(run.parameters[n].detach().tolist())
                                 for n in run.parameter_names},
            **run.tool_config(),  # scheduler, clip_norm / clip_value, if the run has them
            **({"changes": [c.to_dict() for c in run.changes]} if run.changes else {}),
            "trajectory": {"step": steps, "loss": _column(t.loss),
                           "test_loss": [record.test_loss.get(s) for s in steps],
                           "accuracy": [record.accuracy.get(s) for s in steps],
                           "grad_norm": _column(grad_norm(t)), "lr": _column(t.lr),
                           # the lr is what each step used; clipping and a cycled momentum:
                           **{f: _column(t.column(f)) for f in TOOL_COLUMNS
                              if f in t.fields}}})
    return {"model": {"spec": built.model_text,
                      "parameters": [{"name": n, "shape": list(shapes[n]),
                                      "trainable": n not in frozen_everywhere}
                                     for n in built.problem.parameter_names]},
            "data": data, "runs": runs}


def run_train_command(args: argparse.Namespace) -> str:
    """The text `train` prints: with --json one object {"model": {"spec", "parameters"},
    "data": {...}, "runs": [{..., "initial_parameters", "final_parameters", "trajectory":
    {"step", "loss", "test_loss", "accuracy", "grad_norm", "lr"}}]}; else a short table.

    Raises a PlaygroundError (a ValueError) with one line for bad input.
    """
    from core.animation_cli import is_animation, refuse_animation_options
    from core.model_session import train

    _check_eval_every(args)
    if is_animation(args.out):
        raise _error(f"{Path(args.out).suffix.lower()} animations of the training are drawn "
                     "by the app's drawing code (main.py train, gui/model/animation_frames.py; "
                     "see train_animation_request); this prints JSON or a table, or writes a "
                     ".py script")
    refuse_animation_options(args, _error, args.out)
    out = _script_out(args)
    session = _train_session(args)
    built = _build(session)
    records = train(built, [r.steps for r in session.runs], args.eval_every)
    if out is not None:
        from core.script_export import write_script

        write_script(session, out, eval_every=args.eval_every, built=built)
        return f"wrote {out}"
    report = train_report(session, built, records, args.eval_every)
    if args.json:
        return json.dumps(report, indent=1, allow_nan=False)
    return _train_table(report)


def _check_eval_every(args: argparse.Namespace) -> None:
    if isinstance(args.eval_every, bool) or args.eval_every < 1:
        raise _error(f"--eval-every must be 1 or more (got {args.eval_every})")


def _train_session(args: argparse.Namespace) -> Any:
    """The ModelSession `train` runs: --session's file with the options on top, or a new one
    from the options (every run --steps long, default 200); each run's tool options applied."""
    from core.model_session import DEFAULT_TEST_FRACTION

    if args.session:
        session = _loaded_session(args)
    else:
        if args.steps is None:
            args.steps = DEFAULT_TRAIN_STEPS
        session = _session(args, DEFAULT_TEST_FRACTION)
    _apply_run_options(args, session)
    return session


@dataclass
class TrainAnimation:
    """What `train --out anim.gif` makes: the session (not trained: the film steps a fresh
    build from its start), the file, the film's options and its plan's frame count and steps
    per frame."""

    session: Any  # core.model_session.ModelSession
    out: Path
    options: Any  # core.model_animation.ModelAnimationOptions
    frame_count: int
    steps_per_frame: int


def train_animation_request(args: argparse.Namespace) -> TrainAnimation:
    """`train --out FILE.gif|.mp4|.webp|.apng [--fps N] [--steps-per-frame K] [--frames N]
    [--size WxH]`, checked before anything is stepped or drawn (and before main.py loads Qt):
    the options (core/animation_cli.py, export's parsing), the target's folder, the model and
    the data, the plan's bounds (frames, pixels, work, memory) and, for MP4, the encoder.
    gui.model.animation_frames.write_model_animation(request.session, request.out,
    request.options) then writes the film. Raises a PlaygroundError (one line)."""
    from core.animation import check_writable
    from core.animation_cli import animation_request, is_animation
    from core.errors import ExportError
    from core.model_animation import ModelAnimationOptions, check_model_plan, \
        plan_model_animation

    _check_eval_every(args)
    out = Path(args.out or "")
    if not is_animation(out):
        raise _error(f"an animation of the training needs --out FILE.gif, .mp4, .webp or "
                     f".apng (got {out.name!r})")
    if args.eval_every != 1:
        raise _error("--eval-every goes with --json or the table: an animation shows the "
                     "held-out loss at every frame")
    request = animation_request(args, _error)
    check_writable(out, ExportError)  # before the build, not after the film
    given_steps = args.steps  # None: each run's own length (--frames x --steps-per-frame)
    session = _train_session(args)
    built = _build(session)  # a bad model or CSV is said here, naming the file
    options = ModelAnimationOptions(fps=request.fps, steps_per_frame=request.steps_per_frame,
                                    steps=given_steps, frames=request.frames,
                                    size=request.size)
    plan = plan_model_animation(session, options)
    if plan.frame_count < 2:  # (check_plan words it for the race)
        raise _error("nothing moves: every run takes 0 steps; train at least 1 step "
                     "(--steps N)")
    check_model_plan(built, plan, request.size[0], request.size[1], out.suffix)
    if out.suffix.lower() == ".mp4":  # a missing encoder is said now, not after the steps
        from core.animation import _import_ffmpeg

        _import_ffmpeg()
    return TrainAnimation(session, out, options, plan.frame_count, plan.steps_per_frame)


def _script_out(args: argparse.Namespace) -> Path | None:
    if not args.out:
        return None
    out = Path(args.out)
    if out.suffix.lower() != ".py":
        raise _error(f"--out must end in .py (a PyTorch script) or .gif, .mp4, .webp, .apng "
                     f"(an animation) (got {out.name!r})")
    from core.script_export import check_script_target

    check_script_target(out)  # before the training, not after it
    return out


# The options that describe a new session's model and data, with their defaults: with
# --session the file says these, so giving one is a mistake worth a line.
_NEW_SESSION_OPTIONS = (("dataset", None), ("data", None), ("target", None), ("n", None),
                        ("noise", None), ("model", "small-mlp"), ("loss", None),
                        ("batch_size", 0), ("test_fraction", None), ("seed", 0))


def _loaded_session(args: argparse.Namespace) -> Any:
    """`train --session FILE`: the saved model session; --optimizer replaces its runs,
    --steps their lengths, --freeze adds to each run's frozen parameters."""
    from core.model_session import ModelSession
    from core.optimizers import parse_optimizer_call

    for name, default in _NEW_SESSION_OPTIONS:
        if getattr(args, name) != default:
            option = "--" + name.replace("_", "-")
            raise _error(f"{option} describes a new session; the model and data of --session "
                         f"come from its file")
    session = ModelSession.load(args.session)
    if args.steps is not None and not 0 <= args.steps <= MAX_TRAIN_STEPS:
        raise _error(f"--steps must be from 0 to {MAX_TRAIN_STEPS:,} (got {args.steps})")
    frozen = session.freeze_names(args.freeze) if args.freeze else []
    if args.optimizer:
        session.runs.clear()
        for text in args.optimizer:
            name, hps = parse_optimizer_call(text)
            session.add_run(name, hps, frozen=list(frozen),
                            steps=DEFAULT_TRAIN_STEPS if args.steps is None else args.steps)
        return session
    for spec in session.runs:
        if args.steps is not None:
            if spec.changes and any(c.get("step", 0) > args.steps for c in spec.changes):
                spec.changes = [c for c in spec.changes if c.get("step", 0) <= args.steps]
            spec.steps = args.steps
        spec.frozen += [n for n in frozen if n not in spec.frozen]
    return session


def _apply_run_options(args: argparse.Namespace, session: Any) -> None:
    """Each run's --scheduler / --clip-norm / --clip-value / --grad-noise (those given before
    any --optimizer: every run's), validated with main.py's parsing (core/run_options.py)."""
    from core.run_options import gradient_tools, run_settings, settings_for_run
    from core.schedulers import scheduler_call_text

    shared, per_run = run_settings(args, _error)
    for number, spec in enumerate(session.runs):
        own = per_run[number] if number < len(per_run) else {}
        settings = settings_for_run(shared, own)
        if not settings:
            continue
        tools = gradient_tools(settings, _error, noise_option="--grad-noise")
        if "scheduler" in tools:
            spec.scheduler = scheduler_call_text(*tools["scheduler"])
        if "clipping" in tools:
            clipping = tools["clipping"]
            spec.clip_norm = clipping.threshold if clipping.kind == "norm" else None
            spec.clip_value = clipping.threshold if clipping.kind == "value" else None
        if "noise" in tools:
            spec.noise = {"sigma": tools["noise"].sigma, "seed": tools["noise"].seed}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _train_table(report: dict[str, Any]) -> str:
    model, data = report["model"], report["data"]
    count = sum(math.prod(p["shape"]) for p in model["parameters"])
    frozen = [p["name"] for p in model["parameters"] if not p["trainable"]]
    batch = "full batch" if data["batch_size"] == 0 else f"batches of {data['batch_size']}"
    lines = [f"model: {model['spec']} ({count} parameters"
             + (f"; frozen: {', '.join(frozen)})" if frozen else ")"),
             f"data: {data['name']}, {data['rows']} rows ({data['train_rows']} train, "
             f"{data['test_rows']} test), {data['task']}, {data['loss']}, {batch}", "",
             f"{'optimizer':<34} {'status':<10} {'steps':>6} {'loss':>12} {'test loss':>12} "
             f"{'accuracy':>9}"]
    for run in report["runs"]:
        t = run["trajectory"]
        tests = [v for v in t["test_loss"] if v is not None]
        accuracies = [v for v in t["accuracy"] if v is not None]
        lines.append(f"{run['call'][:34]:<34} {run['status']:<10} {run['steps']:>6} "
                     f"{_fmt(t['loss'][-1] if t['loss'] else None):>12} "
                     f"{_fmt(tests[-1] if tests else None):>12} "
                     f"{_fmt(accuracies[-1] if accuracies else None):>9}")
    return "\n".join(lines)


# --- landscape ---------------------------------------------------------------------------------


def landscape_out(args: argparse.Namespace, pictures: bool = False) -> Path | None:
    """The checked --out of `landscape` (None: print JSON). Pictures (.png/.svg) are drawn by
    gui/model/landscape_image.py (core does not import Qt): only it passes `pictures=True`."""
    is_picture = bool(args.out) and Path(args.out).suffix.lower() in PICTURE_SUFFIXES
    if args.size is not None and not is_picture:
        raise _error("--size goes with a picture (--out FILE.png or FILE.svg)")
    if not args.out:
        return None
    out = Path(args.out)
    suffix = out.suffix.lower()
    if is_picture and not pictures:
        raise _error(f"{suffix} pictures of the landscape are made by the app's drawing code "
                     "(main.py landscape, gui/model/landscape_image.py); this writes .json or "
                     ".csv")
    if suffix not in LANDSCAPE_SUFFIXES + PICTURE_SUFFIXES:
        raise _error(f"--out must end in .json or .csv, or .png or .svg for a picture (got "
                     f"{out.name!r})")
    return out


def picture_size(text: str | None) -> tuple[int, int]:
    """--size as W,H or WxH (default 1000 x 800)."""
    if text is None:
        return 1000, 800
    from core.animation_cli import parse_size

    width, height = parse_size(text, _error)
    if not (16 <= width <= 10000 and 16 <= height <= 10000):
        raise _error("--size must be between 16 and 10000 pixels each way")
    return width, height


@dataclass
class LandscapeResult:
    """What `landscape` computed: the grid with its plane, and the runs' paths (flat)."""

    landscape: Any
    built: Any
    titles: list[str]
    colors: list[str | None]
    paths: list[Any]


def compute_landscape(args: argparse.Namespace) -> LandscapeResult:
    """Build the session the options describe, train its runs --steps steps (keeping their
    paths), and compute the landscape around the initial weights."""
    import torch

    from core.landscape import landscape_around
    from core.model_session import train

    kind = args.directions
    if kind == "pca" and args.steps < 1:
        raise _error("pca directions come from the runs' paths: train first with --steps N "
                     "(N >= 1)")
    if not (math.isfinite(args.span) and args.span > 0):
        raise _error(f"--span must be a positive number (got {args.span})")
    session = _session(args, 0.0)
    built = _build(session)
    model = built.model  # at the initial weights, where every run starts: the centre
    frozen = set(session.runs[0].frozen) if session.runs else set()
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    X, y, loss_fn = built.problem.X, built.problem.y, built.loss_fn
    records = train(built, [r.steps for r in session.runs], 10 ** 9, keep_paths=args.steps > 0)
    kept = [(run, torch.stack(rec.path).numpy()) for run, rec in zip(built.runs, records)
            if len(rec.path) > 0]
    paths = [p for _, p in kept]
    landscape = landscape_around(model, loss_fn, X, y, kind, paths=paths, grid=args.grid,
                                 span=args.span, cover_paths=args.cover_paths,
                                 seed=session.seed)
    return LandscapeResult(landscape, built, [r.title for r, _ in kept],
                           [r.color for r, _ in kept], paths)


def landscape_report(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON object of `landscape`: {"kind", "x": {"name", "values"}, "y": {...}, "loss":
    [[...]] (rows along y), "centre_loss", "directions": {...}, "paths": [...]}."""
    return _report(compute_landscape(args))


def _report(result: LandscapeResult) -> dict[str, Any]:
    landscape, built = result.landscape, result.built
    d = landscape.directions
    directions: dict[str, Any] = {"kind": landscape.kind, "centre": "the initial weights"}
    if d is not None and d.eigenvalues is not None:
        directions["eigenvalues"] = list(d.eigenvalues)
    if d is not None and d.explained_variance_ratio is not None:
        directions["explained_variance_ratio"] = list(d.explained_variance_ratio)
    report = landscape.grid.to_json()
    report["directions"] = directions
    report["rows"] = f"{len(built.problem.X)} training rows, {built.loss_name}, under " \
        "torch.no_grad()"
    if result.paths:
        if d is None:
            captured = [1.0] * len(result.paths)
        else:
            from core.landscape import project_paths

            captured = [p.captured for p in project_paths(result.paths, d)]
        report["paths"] = [{"run": title, "x": _column(x), "y": _column(y), "captured": c}
                           for title, (x, y), c in zip(result.titles,
                                                       landscape.project(result.paths),
                                                       captured)]
    return report


def landscape_caption(result: LandscapeResult) -> str:
    """What the picture says under the plot: the directions, how much of the paths the plane
    holds, the centre and the loss there, and that the grid was evaluated under no_grad."""
    landscape, built = result.landscape, result.built
    g = landscape.grid
    what = {"exact": f"the exact loss over {g.x_name} and {g.y_name}",
            "random": "a slice along two filter-normalised random directions (Li et al., 2018)",
            "pca": "a slice along the top two PCA directions of all runs' paths",
            "hessian": "a slice along the top two Hessian eigenvectors at the centre"}
    lines = [f"{built.model_text}: {what[landscape.kind]}, around the initial weights "
             f"(loss {g.centre_loss:.6g} there)"]
    if result.paths:
        plane = landscape.plane_text(result.paths)
        lines.append(plane[:1].upper() + plane[1:])
    lines.append(f"{len(g.x_values)} x {len(g.y_values)} grid on {len(built.problem.X)} "
                 f"training rows ({built.loss_name}), evaluated under torch.no_grad()")
    return "\n".join(lines)


def _landscape_csv(report: dict[str, Any]) -> str:
    x, y = report["x"], report["y"]
    lines = [f"{x['name']},{y['name']},loss"]
    for i, b in enumerate(y["values"]):
        for j, a in enumerate(x["values"]):
            value = report["loss"][i][j]
            lines.append(f"{a!r},{b!r},{'' if value is None else repr(value)}")
    return "\n".join(lines) + "\n"


def run_landscape_command(args: argparse.Namespace) -> str:
    """The text `landscape` prints: the grid as JSON, or "wrote FILE" with --out .json/.csv.
    (--out .png/.svg: gui.model.landscape_image.run_landscape_picture_command.)

    Raises a PlaygroundError (a ValueError) with one line for bad input.
    """
    from core.export import write_text  # atomic; an OS failure is one line naming the file

    out = landscape_out(args)  # a wrong suffix is refused before any work
    if out is not None:
        from core.animation import check_writable
        from core.errors import ExportError

        check_writable(out, ExportError)  # and a missing folder (not after the grid)
    report = _report(compute_landscape(args))
    if out is None:
        return json.dumps(report, indent=1, allow_nan=False)
    if out.suffix.lower() == ".json":
        write_text(out, json.dumps(report, indent=1, allow_nan=False) + "\n")
    else:
        write_text(out, _landscape_csv(report))
    return f"wrote {out}"
