"""A run as a standalone PyTorch script: the same function, optimizer, scheduler, clipping,
noise and mid-run changes, written the way PyTorch's tutorial writes a training loop.

`race_script(session, run_index)` writes the race: the formula translated from its parsed tree
(core/formula.py) into torch expression text, never evaluated from text; each run's optimizer
with every hyperparameter spelled out, its scheduler (core/schedulers.py `scheduler_code`), the
clipping with torch's clip_grad_norm_ / clip_grad_value_, the noise with its own seeded
torch.Generator, the frozen parameters (requires_grad=False), and each change the user made
between steps (core/run.py RunChange) at its step:

    for step in range(STEPS + 1):
        if step == 120:                      # what the user changed after 120 steps
            for group in optimizer.param_groups:
                group["lr"] = 0.0005
        optimizer.zero_grad()
        loss = f(x, y)
        loss.backward()
        ...record, noise, clipping...
        optimizer.step()
        scheduler.step()

The script prints the trajectory as JSON in the shape of `main.py run --json` (the runs'
settings and each step's columns); tests run it in a subprocess and compare it with the engine's
bit for bit. What the engine decides at a change (whether an lr move rebuilds the scheduler or
scales it, which optimizer settings follow) is read from a replay of the run in the engine, so
the script does what the engine did, not what this module thinks it did.

A change at step k is written before the forward pass of step k: the engine makes it after
entry k is recorded and takes that entry's gradient again with the change in place, which is
the same thing.

What the scripts leave out, and why. `main.py run --json` gives each run five more keys than a
race script prints, RACE_ENGINE_ONLY: "status", "status_text", "converged_at", "diverged_at"
and "divergence_reason"; `train --json` two more than a model script, MODEL_ENGINE_ONLY:
"status" and "status_text". They are the app's reading of a run (core/status.py): tolerances
scaled to the surface's region and spread (a 33 x 33 grid's percentiles), windows of ten steps,
the far-away, wall, explosion and plunge rules, the relative rules of a model. A script that
printed them would have to carry that logic again, and a copy of it in a teaching script would
either be long and unreadable or short and wrong, so the scripts print what torch computed (the
settings and every step's columns) and the tests compare every other key bit for bit, leaving
out exactly these (tests/core/test_script_export.py, tests/test_cli_script.py,
tests/gui/test_script_export_dialog.py). A script does not judge divergence either: it takes
exactly the steps the engine recorded, so a diverged run's trajectory ends where the engine's
does.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import torch

from core.atomic import write_atomic
from core.errors import ExportError
from core.formula import FUNCTIONS, BinOp, Call, Chain, Neg, Node, Num, Var
from core.gradient_tools import GradientClipping, GradientNoise
from core.optimizers import get_spec
from core.run import Run, RunChange
from core.schedulers import SCALE_BASE_LR_SOURCE, get_scheduler_spec, scheduler_code
from core.session import Session
from core.surfaces import DTYPE

__all__ = ["MODEL_ENGINE_ONLY", "RACE_ENGINE_ONLY", "check_script_target", "formula_code",
           "model_script", "race_script", "write_script"]

# The keys of `run --json` / `train --json` runs that a script does not print (the app's status
# words, from core/status.py; see the module docstring).
RACE_ENGINE_ONLY = ("status", "status_text", "converged_at", "diverged_at", "divergence_reason")
MODEL_ENGINE_ONLY = ("status", "status_text")

# The torch function each formula function calls (core/formula.py FUNCTIONS), as code.
_TORCH_NAMES = {"softplus": "torch.nn.functional.softplus", "min": "torch.minimum",
                "max": "torch.maximum"}


# --- the formula as torch code --------------------------------------------------------------------

def _number(value: float) -> str:
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    if math.isnan(value):
        return "math.nan"
    return repr(float(value))


def _code(node: Node) -> tuple[str, int, bool]:
    """(text, precedence, is a Python float) of a formula node, evaluated as core/formula.py
    evaluates it: constants as Python floats, except that float / float and float ** float go
    through torch (Python would raise or turn complex), and a function's float argument becomes
    a float64 tensor. Precedence: 1 sum, 2 product, 3 unary minus, 4 power, 5 atom."""
    if isinstance(node, Num):
        return _number(node.value), 5, True
    if isinstance(node, Var):
        return node.name, 5, False
    if isinstance(node, Neg):
        text, prec, is_float = _code(node.operand)
        return "-" + _wrap(text, prec, 3), 3, is_float
    if isinstance(node, Chain):
        return _chain_code(node)
    if isinstance(node, BinOp):
        left, lprec, lfloat = _code(node.left)
        right, rprec, rfloat = _code(node.right)
        if lfloat and rfloat:
            return f"float(torch.pow(torch.tensor({left}, dtype=torch.float64), {right}))", 5, \
                True
        return f"{_wrap(left, lprec, 5)} ** {_wrap(right, rprec, 3)}", 4, False
    assert isinstance(node, Call)
    name = _TORCH_NAMES.get(node.function, f"torch.{node.function}")
    assert node.function in FUNCTIONS
    args = []
    for arg in node.args:
        text, _, is_float = _code(arg)
        args.append(f"torch.tensor({text}, dtype=torch.float64)" if is_float else text)
    return f"{name}({', '.join(args)})", 5, False


def _chain_code(node: Chain) -> tuple[str, int, bool]:
    """A sum or product left to right, as the engine's loop takes it."""
    text, prec, is_float = _code(node.first)
    level = 1 if node.rest[0][0] in "+-" else 2
    text = _wrap(text, prec, level)
    for op, term in node.rest:
        term_text, term_prec, term_float = _code(term)
        if op == "/" and is_float and term_float:  # as the engine: torch, not ZeroDivisionError
            text, prec = (f"float(torch.tensor({text}, dtype=torch.float64) / "
                          f"{_wrap(term_text, term_prec, 3)})"), 5
            continue
        text = f"{_wrap(text, prec, level)} {op} {_wrap(term_text, term_prec, level + 1)}"
        prec = level
        is_float = is_float and term_float
    return text, prec, is_float


def _wrap(text: str, prec: int, needed: int) -> str:
    return text if prec >= needed else f"({text})"


def formula_code(tree: Node) -> str:
    """The body of `def f(x, y): return ...` for a parsed formula (core/formula.py tree)."""
    text, _, is_float = _code(tree)
    if is_float:  # a formula without x or y: a constant surface, as core/formula.py makes it
        return f"torch.full(x.shape, {text}, dtype=torch.float64)"
    return text


# --- pieces of code ------------------------------------------------------------------------------

def _value(value: Any) -> str:
    if isinstance(value, float):
        return _number(value) if not math.isfinite(value) else repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_value(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    return repr(value)


def optimizer_code(name: str, hyperparameters: dict[str, Any], parameters: str = "parameters"
                   ) -> str:
    """`torch.optim.Adam(parameters, lr=0.05, betas=(0.9, 0.999), ...)`: every keyword."""
    spec = get_spec(name)
    values = spec.validate(hyperparameters)
    keywords = ", ".join(f"{h.name}={_value(values[h.name])}" for h in spec.hyperparameters)
    return f"torch.optim.{spec.name}({parameters}, {keywords})"


def _scheduler_lines(setting: tuple[str, dict[str, Any]] | None) -> list[str]:
    """Build the scheduler (None: `scheduler = None`)."""
    if setting is None:
        return ["scheduler = None"]
    lines = []
    if get_scheduler_spec(setting[0]).steps_on_loss:
        lines += ["for group in optimizer.param_groups:  # the lr it starts from, kept",
                  "    group.setdefault(\"initial_lr\", group[\"lr\"])"]
    return lines + [f"scheduler = {scheduler_code(*setting)}"]


def _tools_lines(clipping: GradientClipping | None, noise: tuple[float, int] | None) -> list[str]:
    lines = []
    if clipping is None:
        lines.append("clipping = None  # no gradient clipping")
    else:
        lines.append(f"clipping = ({clipping.kind!r}, {clipping.threshold!r})  "
                     f"# clip_grad_{clipping.kind}_ with this threshold")
    if noise is None:
        lines.append("noise_sigma = None  # no gradient noise")
    else:
        sigma, seed = noise
        lines.append(f"noise_sigma = {sigma!r}  # Gaussian gradient noise, its own generator")
        lines.append(f"generator = torch.Generator().manual_seed({seed})")
    return lines


# --- one run's changes, as the engine made them ----------------------------------------------

def _change_lines(run: Run, change: RunChange, names: tuple[str, ...]) -> list[str]:
    """The code for one change, from `run` (a replay at the change's step, the change not yet
    made); the change is then made on `run`, so the next one sees what the engine saw."""
    p = change.payload
    lines = [f"# {change.text}"]
    if change.kind == "hyperparameters":
        lines += _hyperparameter_lines(run, dict(p["values"]))
    elif change.kind == "freeze":
        name = p["name"]
        lines.append(f"{_variable(name, names)}.requires_grad_({not p['frozen']})")
        lines.append(f"{_variable(name, names)}.grad = None")
        if run.spec.needs_closure:
            lines.append("optimizer.state.clear()  # L-BFGS's history mixes every parameter")
        run.set_frozen(name, bool(p["frozen"]))
    elif change.kind == "scheduler":
        base = float(run.hyperparameters["lr"])
        lines += ["for group in optimizer.param_groups:  # the new schedule starts from the "
                  "run's lr", f"    group[\"lr\"] = {base!r}",
                  "    group.pop(\"initial_lr\", None)"]
        if p["scheduler"] is None:
            for key in ("momentum", "betas"):
                if key in run.hyperparameters and key in run.optimizer.param_groups[0]:
                    lines.append(f"    group[{key!r}] = {_value(run.hyperparameters[key])}")
        run.set_scheduler(p["scheduler"])
        lines += _scheduler_lines(run.scheduler_setting)
    elif change.kind == "clipping":
        clipping = GradientClipping("norm", p["clip_norm"]) if "clip_norm" in p else (
            GradientClipping("value", p["clip_value"]) if "clip_value" in p else None)
        lines += _tools_lines(clipping, _noise_of(run))[:1]
        run.set_clipping(clipping)
    else:
        noise = p["noise"]
        lines += _tools_lines(run.clipping, None if noise is None else (
            float(noise["sigma"]), int(noise.get("seed", 0))))[1:]
        run.set_noise(None if noise is None else GradientNoise(noise["sigma"],
                                                               noise.get("seed", 0)))
    return lines


def _noise_of(run: Run) -> tuple[float, int] | None:
    return None if run.noise is None else (run.noise.sigma, run.noise.seed)


def _hyperparameter_lines(run: Run, values: dict[str, Any]) -> list[str]:
    """An lr or other hyperparameter moved: in param_groups, or a fresh optimizer for one torch
    reads only when it builds it; a scheduled run's lr moves the scheduler's base lr."""
    spec = run.spec
    old = dict(run.hyperparameters)
    merged = spec.validate({**old, **values})
    rebuild = any(not h.live and merged[h.name] != old[h.name] for h in spec.hyperparameters)
    scheduler = run.scheduler
    fresh_schedule = scheduler is not None and getattr(scheduler, "last_epoch", 0) == 0 and \
        not get_scheduler_spec(run.scheduler_setting[0]).steps_on_loss  # type: ignore[index]
    setting_before = run.scheduler_setting
    lines: list[str] = []
    if rebuild:
        lines.append("# torch reads it only when the optimizer is built: build it afresh here "
                     "(its state starts again)")
        lines.append(f"optimizer = {optimizer_code(spec.name, merged)}")
    derived_new = _defaults(spec.name, merged)
    derived_old = _defaults(spec.name, old)
    keys = {k: v for k, v in derived_new.items() if derived_old.get(k) != v
            and not (scheduler is not None and k == "lr")}
    if keys and not rebuild:
        lines.append("for group in optimizer.param_groups:")
        lines += [f"    group[{k!r}] = {_value(v)}" for k, v in keys.items()]
    run.set_hyperparameters(values)
    if scheduler is not None:
        if rebuild:
            lines += ["for group in optimizer.param_groups:  # a fresh schedule on the new "
                      "optimizer", f"    group[\"lr\"] = {float(merged['lr'])!r}",
                      "    group.pop(\"initial_lr\", None)"]
            lines += _scheduler_lines(setting_before)
        elif merged["lr"] != old["lr"]:
            lr = float(merged["lr"])
            if fresh_schedule:  # before the schedule's first step: as if built with this lr
                lines += ["for group in optimizer.param_groups:  # the schedule built afresh "
                          "from the new lr", f"    group[\"lr\"] = {lr!r}",
                          "    group.pop(\"initial_lr\", None)"]
                lines += _scheduler_lines(run.scheduler_setting)
            else:
                lines.append(f"scale_base_lr(scheduler, optimizer, {lr!r})  # the schedule's "
                             "shape kept, every lr it holds scaled")
    return lines


def _defaults(name: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The group settings torch derives for these keywords (LBFGS's max_eval follows
    max_iter), as the engine reads them."""
    spec = get_spec(name)
    return dict(spec.cls([torch.zeros((), dtype=DTYPE, requires_grad=True)],
                         **hyperparameters).defaults)


def _variable(name: str, names: tuple[str, ...]) -> str:
    return name if names == ("x", "y") else f"params[{name!r}]"


def _changes_code(run: Run) -> tuple[str, bool]:
    """The `if step == k:` blocks of a run's changes, and whether any needs scale_base_lr."""
    replay = run.initial_copy()
    blocks: list[str] = []
    by_step: dict[int, list[RunChange]] = {}
    for change in run.changes:
        by_step.setdefault(change.step, []).append(change)
    for step, changes in by_step.items():
        replay.step(step - replay.steps)
        lines: list[str] = []
        for change in changes:
            lines += _change_lines(replay, change, run.parameter_names)
        blocks.append(f"if step == {step}:\n" + textwrap.indent("\n".join(lines), "    "))
    code = "\n".join(blocks)
    return code, "scale_base_lr(" in code


# --- the race ---------------------------------------------------------------------------------

# Noise and clipping as a script does them (both scripts share this text).
_TOOL_HELPERS = '''
def add_noise(parameters, sigma, generator):
    """sigma * N(0, 1) added to each gradient, drawn from the run's own generator."""
    for p in parameters:
        if p.grad is not None and sigma:
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype),
                        alpha=sigma)


def total_norm(parameters):
    grads = [p.grad for p in parameters if p.grad is not None]
    return float(torch.nn.utils.get_total_norm(grads, 2.0)) if grads else 0.0


def clip(parameters, clipping):
    """torch's own clipping; returns (clipped, norm before, norm after) for the record."""
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return 0.0, 0.0, 0.0
    kind, threshold = clipping
    if kind == "norm":
        before = [p.grad.clone() for p in with_grad]
        norm_before = float(torch.nn.utils.clip_grad_norm_(with_grad, max_norm=threshold))
        clipped = any(not torch.equal(b, p.grad) for b, p in zip(before, with_grad))
        clipped = clipped and math.isfinite(norm_before)
    else:
        norm_before = total_norm(with_grad)
        clipped = any(bool((p.grad.abs() > threshold).any()) for p in with_grad)
        torch.nn.utils.clip_grad_value_(with_grad, clip_value=threshold)
    return float(clipped), norm_before, total_norm(with_grad) if clipped else norm_before
'''

_RACE_HELPERS = '''

def grad_value(p):
    """A parameter's gradient as the app records it: NaN if frozen, 0 if f does not use it."""
    if not p.requires_grad:
        return math.nan
    return 0.0 if p.grad is None else p.grad.item()


''' + _TOOL_HELPERS.strip("\n") + '''


class Record:
    """The trajectory as columns; a column that appears later holds None before (as the
    app's JSON does), and None stands for NaN (a frozen parameter's gradient)."""

    def __init__(self):
        self.columns = {}
        self.rows = 0

    def add(self, **values):
        self.rows += 1
        for name, value in values.items():
            self.set_last(name, value)
        for column in self.columns.values():
            column.extend([None] * (self.rows - len(column)))

    def set_last(self, name, value):
        column = self.columns.setdefault(name, [])
        column.extend([None] * (self.rows - 1 - len(column)))
        value = None if value is None or math.isnan(value) else float(value)
        column[self.rows - 1:] = [value]

    def as_dict(self):
        out = {"step": [int(s) for s in self.columns.pop("step")]}
        out.update(self.columns)
        return out
'''


_SCHEDULER_STEP = """\
if scheduler is not None:  # after optimizer.step(), as torch requires
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(loss.item())  # it watches the training loss
    elif not (isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
              and scheduler.last_epoch >= scheduler.total_steps):
        scheduler.step()  # (past its cycle, OneCycleLR's lr stays final)"""

_MOMENTUM = """\
if scheduler is not None and getattr(scheduler, "cycle_momentum", False):
    # OneCycleLR and CyclicLR cycle the momentum (or Adam's beta1) too: the next step's
    group = optimizer.param_groups[0]
    if getattr(scheduler, "use_beta1", False):
        record.set_last("beta1", group["betas"][0])
    else:
        record.set_last("momentum", group["momentum"])"""

_TOOLS = """\
if noise_sigma is not None:
    add_noise(parameters, noise_sigma, generator)
    for name, p in zip(NAMES, parameters):
        record.set_last("noisy_grad_" + name, grad_value(p))
if clipping is not None:
    for name, value in zip(CLIP_COLUMNS, clip(parameters, clipping)):
        record.set_last(name, value)"""

_CLOSURE = """\
calls = 0


def closure():
    \"\"\"L-BFGS evaluates f several times a step; noise and clipping every time.\"\"\"
    nonlocal calls
    optimizer.zero_grad()
    loss = f(x, y)
    loss.backward()
    calls += 1
    if noise_sigma is not None:
        add_noise(parameters, noise_sigma, generator)
        if calls == 1:  # at the recorded point: its noise and clipping columns
            for name, p in zip(NAMES, parameters):
                record.set_last("noisy_grad_" + name, grad_value(p))
    if clipping is not None:
        figures = clip(parameters, clipping)
        if calls == 1:
            for name, value in zip(CLIP_COLUMNS, figures):
                record.set_last(name, value)
    return loss


optimizer.step(closure)  # torch's own L-BFGS step"""


def _race_run_function(number: int, run: Run, entries: int) -> tuple[str, bool]:
    """`def run_N():` one run from its start, with its changes, returning its JSON."""
    init = run.initial_settings
    start = run.start
    assert start is not None and run.surface is not None
    frozen = init["frozen"]
    changes, scales = _changes_code(run)
    uses_variables = bool(run.surface.formula.variables)
    loop = [*(changes.splitlines() if changes else []),
            "# forward and backward at the current point",
            "optimizer.zero_grad()",
            "loss = f(x, y)",
            *(["loss.backward()"] if uses_variables else
              ["if loss.requires_grad:  # a constant f has no gradient", "    loss.backward()"]),
            "record.add(step=step, x=x.item(), y=y.item(), loss=loss.item(),",
            "           grad_x=grad_value(x), grad_y=grad_value(y),",
            "           lr=optimizer.param_groups[0][\"lr\"])"]
    kinds = {c.kind for c in run.changes}
    ever_noise = init["noise"] is not None or "noise" in kinds
    ever_clipped = init["clipping"] is not None or "clipping" in kinds
    ever_scheduled = init["scheduler"] is not None or "scheduler" in kinds
    if not run.spec.needs_closure:  # (L-BFGS: in its closure)
        tools = _TOOLS.split("if clipping")
        loop += (tools[0].splitlines() if ever_noise else []) + (
            ("if clipping" + tools[1]).splitlines() if ever_clipped else [])
    if ever_scheduled:
        loop += _MOMENTUM.splitlines()
    loop += [f"if step == {entries - 1}:", "    break  # the last point is recorded"]
    if run.spec.needs_closure:
        loop += _CLOSURE.splitlines()
    else:
        loop.append("optimizer.step()  # torch's own update, from the gradients in .grad")
    if ever_scheduled:
        loop += _SCHEDULER_STEP.splitlines()
    body = [
        f"x = torch.tensor({start[0]!r}, dtype=torch.float64, requires_grad="
        f"{'x' not in frozen})",
        f"y = torch.tensor({start[1]!r}, dtype=torch.float64, requires_grad="
        f"{'y' not in frozen})",
        "parameters = [x, y]",
        f"optimizer = {optimizer_code(run.spec.name, init['hyperparameters'])}",
        *_scheduler_lines(init["scheduler"]),
        *_tools_lines(init["clipping"], init["noise"]),
        "record = Record()",
        f"for step in range({entries}):",
        *("    " + line if line else "" for line in loop),
        f"return {{**RUNS[{number - 1}], \"steps\": {entries - 1}, "
        f"\"trajectory\": record.as_dict()}}",
    ]
    title = f"Run {number}: {run.title}."
    doc = [f'"""{title}"""'] if '"""' not in title and "\\" not in title else []
    lines = [f"def run_{number}():", *("    " + line if line else "" for line in doc + body)]
    return "\n".join(lines) + "\n", scales


def race_script(session: Session, run_index: int | None = None) -> str:
    """The race (every run, or run `run_index` counted from 0) as a PyTorch script."""
    runs = list(enumerate(session.runs, 1))
    if run_index is not None:
        if not 0 <= run_index < len(runs):
            raise ExportError(f"there is no run {run_index + 1} (the race has {len(runs)})")
        runs = [runs[run_index]]
    surface = session.surface
    functions = []
    needs_scale = False
    infos = []
    for number, (_, run) in enumerate(runs, 1):
        entries = run.steps + 1 if run.enabled else 1  # every step (a long record is thinned)
        code, scales = _race_run_function(number, run, max(1, entries))
        functions.append(code)
        needs_scale |= scales
        infos.append(run.initial_config())  # as a session file: the start and the changes
    header = {k: v for k, v in session.to_dict().items() if k in ("format", "version")}
    head = {**header, "surface": {**surface.describe(), **surface.to_dict()},
            "start": list(session.start)}
    numbers = ", ".join(f"run_{n}()" for n in range(1, len(runs) + 1))
    parts = [
        f'"""The race on {surface.title}, f(x, y) = {_doc_text(surface.text)}, as a plain '
        f'PyTorch script.\n\nWritten by Optimizer Playground. It needs only torch. Each run '
        f'starts at\n({session.start[0]!r}, {session.start[1]!r}) and takes its optimizer '
        f'steps in the loop PyTorch\'s tutorial\nwrites (zero_grad, loss, backward, step, '
        f'scheduler.step), with the changes made\nbetween steps at their steps. It prints '
        f'the trajectories as JSON, as\n`python main.py run --json` does (without the app\'s '
        f'status words).\n"""',
        "import json\nimport math\n\nimport torch",
        f"\n\ndef f(x, y):\n    \"\"\"The surface, written with torch functions so autograd "
        f"can differentiate it.\"\"\"\n    return {formula_code(surface.formula.tree)}",
        '\n\nNAMES = ("x", "y")\nCLIP_COLUMNS = ("clipped", "grad_norm_before_clip", '
        '"grad_norm_after_clip")',
        _RACE_HELPERS.rstrip(),
    ]
    if needs_scale:
        parts.append("\n\n" + SCALE_BASE_LR_SOURCE.rstrip())
    parts.append("\n\n# What the app knows about the surface and the runs (printed with the "
                 "trajectories)\n" + f"HEAD = {_literal(head)}\nRUNS = {_literal(infos)}")
    parts += ["\n\n" + f.rstrip() for f in functions]
    parts.append(f'\n\nif __name__ == "__main__":\n    print(json.dumps({{**HEAD, "runs": '
                 f'[{numbers}]}}, indent=1))\n')
    return "\n".join(parts)


def _doc_text(text: str) -> str:
    return text.replace("\\", "/").replace('"""', "'''")


def _literal(value: Any) -> str:
    """A JSON value as readable code: `json.loads(r'''...''')` over indented lines (JSON's
    true/false/null are not Python's), or a one-line string when the text holds quotes that
    would end the raw block."""
    text = json.dumps(value, indent=1, allow_nan=False)
    if "'''" in text or text.endswith("\\"):
        return f"json.loads({text!r})"
    return f"json.loads(r'''\n{text}\n''')"


def check_script_target(path: str | Path) -> None:
    """Refuse (ExportError, one line) a path the script could not be written to, before the
    work of stepping the runs."""
    from core.animation import check_writable

    check_writable(Path(path), ExportError)


def write_script(what: Session | Any, path: str | Path, run_index: int | None = None, *,
                 eval_every: int = 1, built: Any = None) -> Path:
    """Write `what` (a race Session, or a ModelSession: `model_script`) as a PyTorch script at
    `path`, atomically. Raises ExportError with one line naming the file.

    For a model session the runs are built and trained first (as `main.py train` does) unless
    `built` holds them trained: long work for a large one, so run it in a worker."""
    path = Path(path)
    if isinstance(what, Session):
        text = race_script(what, run_index)
    else:
        text = model_script(what, run_index, eval_every=eval_every, built=built)
    try:
        write_atomic(path, text)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    return path


# --- model mode -------------------------------------------------------------------------------

_MODEL_HELPERS = '''
def tensor(lines, dtype, shape):
    """A tensor from the exact bytes the app trained on (base64 of its elements)."""
    data = bytearray(base64.b64decode("".join(lines)))
    return torch.frombuffer(data, dtype=dtype).reshape(shape).clone()


def grad_norm(params):
    """|gradient| over every parameter, each parameter's part summed as the app sums it."""
    total = 0.0
    for p in params.values():
        if not p.requires_grad or p.grad is None:
            continue  # frozen: no gradient
        n = p.grad.norm().item() if p.numel() > 1 else p.grad.item()
        total += n * n
    return math.sqrt(total)


''' + _TOOL_HELPERS.strip("\n") + '''


def accuracy(outputs, y):
    """Share of rows classified right (None for regression)."""
    if LOSS == "MSELoss":
        return None
    labels = y.to(torch.int64).reshape(-1)
    if LOSS == "BCEWithLogitsLoss":
        predicted = (outputs.reshape(-1) > 0).to(torch.int64)
    else:
        predicted = outputs.argmax(dim=1)
    return float((predicted == labels).to(torch.float64).mean())


def held_out(model):
    """Test loss and accuracy: under torch.no_grad(), in eval mode (Dropout off, BatchNorm's
    running statistics used, not updated)."""
    if X_test is None:
        return None, None
    model.eval()
    with torch.no_grad():
        outputs = model(X_test)
        result = float(loss_fn(outputs, y_test)), accuracy(outputs, y_test)
    model.train()
    return result


class Record:
    """The trajectory as columns; a column that appears later holds None before."""

    def __init__(self):
        self.columns = {}
        self.rows = 0

    def add(self, **values):
        self.rows += 1
        for name, value in values.items():
            self.set_last(name, value)
        for column in self.columns.values():
            column.extend([None] * (self.rows - len(column)))

    def set_last(self, name, value):
        column = self.columns.setdefault(name, [])
        column.extend([None] * (self.rows - 1 - len(column)))
        if value is not None and not math.isfinite(value):
            value = None
        column[self.rows - 1:] = [None if value is None else float(value)]

    def as_dict(self):
        out = {"step": [int(s) for s in self.columns.pop("step")]}
        out.update(self.columns)
        return out
'''

_BATCHES = '''
BATCH_SIZE = {batch_size}
BATCHES_PER_EPOCH = {per_epoch}
batch_generator = torch.Generator().manual_seed(SEED)
epoch_orders = []


def batch_rows(step):
    """Step k's minibatch: each epoch is one torch.randperm of the rows, cut in order (the last
    batch may be smaller), from a generator seeded once: the same batches for every run."""
    epoch, i = divmod(step, BATCHES_PER_EPOCH)
    while len(epoch_orders) <= epoch:
        epoch_orders.append(torch.randperm({rows}, generator=batch_generator))
    return epoch_orders[epoch][i * BATCH_SIZE:(i + 1) * BATCH_SIZE]
'''

_FULL_BATCH = '''
def batch_rows(step):
    """Every step trains on every row (full batch)."""
    return None
'''

_TRAINING_LOSS = '''
def training_loss(model, step):
    """The loss of step `step`'s minibatch."""
    rows = batch_rows(step)
    X_batch, y_batch = (X, y) if rows is None else (X[rows], y[rows])
'''

_DROPOUT = '''\
    with torch.random.fork_rng(devices=[]):  # Dropout's masks: the same for every run
        torch.manual_seed(({stride} * SEED + step) % 2 ** 63)
        return loss_fn(model(X_batch), y_batch)
'''

_BUILD_MODEL = '''
def build_model():
    """The model, its weights drawn from SEED as the app draws them (float64)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return nn.Sequential(
            {layers})
'''


def _encoded(t: Any) -> str:
    """`tensor([...base64 lines...], torch.float64, (n, d))`: a tensor's exact bytes."""
    import base64

    data = base64.b64encode(t.detach().contiguous().numpy().tobytes()).decode("ascii")
    lines = textwrap.wrap(data, 88) or [""]
    joined = "\n".join(f"    {line!r}," for line in lines)
    return f"tensor([\n{joined}\n], torch.{str(t.dtype).split('.')[-1]}, {tuple(t.shape)!r})"


def _layer_code(layer: Any) -> str:
    from core.problems.model import LAYERS

    parts = [f"{k}={_value(v)}" for k, v in layer.kwargs.items()]
    if LAYERS[layer.name].factory_kwargs:
        parts.append("dtype=torch.float64")
    return f"nn.{layer.name}({', '.join(parts)})"


def _model_run_function(number: int, run: Run, entries: int) -> tuple[str, bool]:
    """`def run_N():` one model run from its start, as `_race_run_function` writes a race's."""
    init = run.initial_settings
    changes, scales = _changes_code(run)
    kinds = {c.kind for c in run.changes}
    ever_noise = init["noise"] is not None or "noise" in kinds
    ever_clipped = init["clipping"] is not None or "clipping" in kinds
    ever_scheduled = init["scheduler"] is not None or "scheduler" in kinds
    last = entries - 1
    loop = [*(changes.splitlines() if changes else []),
            "# forward (this step's minibatch) and backward",
            "optimizer.zero_grad()",
            "loss = training_loss(model, step)",
            "loss.backward()",
            "record.add(step=step, loss=loss.item(), test_loss=None, accuracy=None,",
            "           grad_norm=grad_norm(params), lr=optimizer.param_groups[0][\"lr\"])"]
    if not run.spec.needs_closure:
        if ever_noise:
            loop += ["if noise_sigma is not None:",
                     "    add_noise(parameters, noise_sigma, generator)"]
        if ever_clipped:
            loop += ["if clipping is not None:",
                     "    for name, value in zip(CLIP_COLUMNS, clip(parameters, clipping)):",
                     "        record.set_last(name, value)"]
    if ever_scheduled:
        loop += _MOMENTUM.splitlines()
    loop += [f"if step % EVAL_EVERY == 0 or step == {last}:",
             "    test_loss, test_accuracy = held_out(model)",
             "    record.set_last(\"test_loss\", test_loss)",
             "    record.set_last(\"accuracy\", test_accuracy)",
             f"if step == {last}:", "    break  # the last point is recorded"]
    if run.spec.needs_closure:
        closure = _CLOSURE.replace("f(x, y)", "training_loss(model, step)").splitlines()
        skip = False
        for line in closure:  # the noisy gradient is the race's column only
            if "zip(NAMES" in line:
                skip = True
                continue
            if skip and "noisy_grad_" in line:
                skip = False
                continue
            if "if calls == 1:  # at the recorded point" in line:
                continue
            loop.append(line)
    else:
        loop.append("optimizer.step()  # torch's own update, from the gradients in .grad")
    if ever_scheduled:
        loop += _SCHEDULER_STEP.splitlines()
    body = [
        "model = build_model()",
        "params = dict(model.named_parameters())",
        "parameters = list(params.values())",
        *(f"params[{name!r}].requires_grad_(False)  # frozen" for name in init["frozen"]),
        "initial = {name: p.detach().tolist() for name, p in params.items()}",
        f"optimizer = {optimizer_code(run.spec.name, init['hyperparameters'])}",
        *_scheduler_lines(init["scheduler"]),
        *_tools_lines(init["clipping"], init["noise"]),
        "record = Record()",
        f"for step in range({entries}):",
        *("    " + line if line else "" for line in loop),
        f"return {{**RUNS[{number - 1}], \"steps\": {last},",
        "        \"initial_parameters\": initial,",
        "        \"final_parameters\": {name: p.detach().tolist() for name, p in "
        "params.items()},",
        "        \"trajectory\": record.as_dict()}",
    ]
    title = f"Run {number}: {run.title}."
    doc = [f'"""{title}"""'] if '"""' not in title and "\\" not in title else []
    lines = [f"def run_{number}():", *("    " + line if line else "" for line in doc + body)]
    return "\n".join(lines) + "\n", scales


def model_script(session: Any, run_index: int | None = None, *, eval_every: int = 1,
                 built: Any = None) -> str:
    """A model session (core/model_session.py) as a PyTorch script that prints what
    `main.py train --json` prints (without the app's status words): the data embedded as the
    exact tensors it trained and tested on, the nn.Sequential built with the same torch calls
    from the same seed, the seeded minibatches, and each run as `race_script` writes one.
    `built`: the session built and trained already (else it is, here)."""
    from core.model_cli import train_report
    from core.model_session import TrainingRecord, train
    from core.problems.model import parse_model
    from core.problems.training import DROPOUT_SEED_STRIDE

    if built is None:
        built = session.build()
        train(built, [r.steps for r in session.runs], eval_every)
    runs = list(enumerate(built.runs))
    if run_index is not None:
        if not 0 <= run_index < len(runs):
            raise ExportError(f"there is no run {run_index + 1} (the session has {len(runs)})")
        runs = [runs[run_index]]
    problem = built.problem
    report = train_report(session, built, [TrainingRecord() for _ in built.runs], eval_every)
    head = {k: v for k, v in report.items() if k != "runs"}
    spec = parse_model(built.model_text, built.dataset.n_features)
    functions, infos, needs_scale = [], [], False
    for number, (original, run) in enumerate(runs, 1):
        entries = run.steps + 1 if run.enabled else 1  # every step (a long record is thinned)
        code, scales = _model_run_function(number, run, max(1, entries))
        functions.append(code)
        needs_scale |= scales
        infos.append({k: v for k, v in report["runs"][original].items() if k not in (
            "status", "status_text", "steps", "initial_parameters", "final_parameters",
            "trajectory")})
    if problem.full_batch:
        batches = _FULL_BATCH
    else:
        batches = _BATCHES.format(batch_size=problem.batch_size,
                                  per_epoch=problem.batches_per_epoch, rows=problem.n)
    forward = _DROPOUT.format(stride=DROPOUT_SEED_STRIDE) if problem.has_dropout else \
        "    return loss_fn(model(X_batch), y_batch)\n"
    test = ("X_test = None\ny_test = None" if built.X_test is None else
            f"X_test = {_encoded(built.X_test)}\ny_test = {_encoded(built.y_test)}")
    numbers = ", ".join(f"run_{n}()" for n in range(1, len(runs) + 1))
    doc = (f'"""Training {_doc_text(built.model_text)} on {_doc_text(built.dataset.name)} '
           f"with {built.loss_name}, as a plain PyTorch script.\n\nWritten by Optimizer "
           "Playground. It needs only torch. Each run trains the same model\nfrom the same "
           "weights on the same minibatches, in the loop PyTorch's tutorial writes\n"
           "(zero_grad, loss, backward, step, scheduler.step), with the changes made between "
           "steps\nat their steps. It prints the trajectories as JSON, as `python main.py "
           'train --json`\ndoes (without the app\'s status words).\n"""')
    parts = [
        doc,
        "import base64\nimport json\nimport math\n\nimport torch\nfrom torch import nn",
        "\n# One thread, as the app trains: a sum split over more threads (BatchNorm's mean, a "
        "large matmul)\n# can round its last bit differently, and this script prints what the "
        "app showed, bit for bit.\ntorch.set_num_threads(1)",
        f"\nSEED = {session.seed}  # the weights, the split and the minibatches come from it",
        f"EVAL_EVERY = {eval_every}  # test loss and accuracy every K steps (and the last)",
        f"LOSS = {built.loss_name!r}",
        "CLIP_COLUMNS = (\"clipped\", \"grad_norm_before_clip\", \"grad_norm_after_clip\")",
        _MODEL_HELPERS.rstrip(),
        "\n\n# The training rows and the held-out rows, exactly as the app split them",
        f"X = {_encoded(problem.X)}\ny = {_encoded(problem.y)}\n{test}",
        f"loss_fn = nn.{built.loss_name}()",
        "\n" + _BUILD_MODEL.format(layers=",\n            ".join(
            _layer_code(layer) for layer in spec.layers)).rstrip(),
        "\n" + batches.rstrip(),
        "\n" + (_TRAINING_LOSS + forward).rstrip(),
    ]
    if needs_scale:
        parts.append("\n\n" + SCALE_BASE_LR_SOURCE.rstrip())
    parts.append("\n\n# What the app knows about the model, the data and the runs (printed "
                 "with the trajectories)\n" + f"HEAD = {_literal(head)}\nRUNS = "
                 f"{_literal(infos)}")
    parts += ["\n\n" + f.rstrip() for f in functions]
    parts.append(f'\n\nif __name__ == "__main__":\n    print(json.dumps({{**HEAD, "runs": '
                 f'[{numbers}]}}, indent=1))\n')
    return "\n".join(parts)
