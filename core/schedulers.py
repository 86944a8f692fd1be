"""The catalogue of torch.optim.lr_scheduler classes a run can use, with each argument's spec.

Like core/optimizers.py: the GUI builds its controls from CATALOGUE, the command line validates
against it, and the product always steps torch's own classes. `parse_scheduler_call` reads text
such as `CosineAnnealingLR(T_max=200)` or
`SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=20),
CosineAnnealingLR(T_max=180)], milestones=[20])` from a syntax tree, never executing it.

Where a scheduler goes in a step, as torch requires (after the optimizer):

    optimizer.step()
    step_scheduler(scheduler, loss)   # scheduler.step(loss) for ReduceLROnPlateau, else step()

The lr slider of a scheduled run (`set_base_lr`): the slider shows the run's *base lr*
(`base_lr_of`): the lr the optimizer was built with (group["initial_lr"]), except OneCycleLR,
whose slider is its peak `max_lr` (torch ignores the optimizer's lr there), and CyclicLR, whose
slider is its `base_lr` (likewise). Moving it from `old` to `new`:
  - before the first scheduler step (step 0) the scheduler is built afresh on the optimizer with
    the new lr (OneCycleLR: max_lr=new; CyclicLR: base_lr=new and max_lr scaled by new/old), so
    the run is exactly the one built with that lr;
  - later, every lr the scheduler holds is multiplied by new/old: `base_lrs`, each group's
    `initial_lr` and current `lr`, the sub-schedulers' `base_lrs` (SequentialLR), `max_lrs`
    (CyclicLR), `initial_lr`/`max_lr`/`min_lr` (OneCycleLR). Absolute floors the user typed
    stay: a cosine's eta_min (the current lr's height above it is scaled by
    (new - eta_min) / (old - eta_min) instead) and ReduceLROnPlateau's min_lr. So the schedule
    keeps its position, and from there on gives the lrs the run would have had with the new
    base lr from the start (equal up to rounding). ReduceLROnPlateau has no base: its current
    lr is scaled, keeping the reductions made so far. `scale_base_lr` is self-contained so an
    exported script can paste it (SCALE_BASE_LR_SOURCE) and replay the move bit for bit.

A changed scheduler argument, or another scheduler, mid-run: `rebuild_scheduler` starts the new
schedule at step 0 from the run's base lr (every argument is `live=False` for that reason).
"""

from __future__ import annotations

import ast
import inspect
import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.optim import lr_scheduler

from core.errors import OptimizerError
from core.optimizers import MAX_CALL_LENGTH, Hyperparameter, get_spec


class SchedulerError(OptimizerError):
    """An unknown scheduler, a bad argument or an unreadable scheduler call (one line).

    A subclass of OptimizerError, so code that reports bad optimizer input reports these too.
    """


@dataclass(frozen=True)
class SchedulerArgument(Hyperparameter):
    """One constructor keyword of a torch.optim.lr_scheduler class.

    On top of Hyperparameter's kinds: "int_list" (milestones) and "schedulers" (SequentialLR's
    list of nested calls, each kept as a (name, kwargs) pair). `required`: torch's constructor
    has no default for it (`default` is then None) and `suggested` is a value a control can
    start from. `optional`: None is allowed as well as a value of `kind`.
    """

    required: bool = False
    optional: bool = False
    suggested: Any = None

    def expected_text(self) -> str:
        """What a valid value looks like, for messages: 'a whole number >= 1'."""
        if self.kind == "bool":
            text = "True or False"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "int_list":
            text = "a list of whole numbers >= 1 in increasing order, e.g. [30, 80]"
        elif self.kind == "schedulers":
            text = "a list of scheduler calls, e.g. [LinearLR(total_iters=20), " \
                   "CosineAnnealingLR(T_max=180)]"
        else:
            text = ("a whole number" if self.kind == "int" else "a number") + self._limits_text()
        return text + (" or None" if self.optional else "")

    def _limits_text(self) -> str:
        lo, hi = self.low, self.high
        fmt = "{:d}" if self.kind == "int" else "{:g}"
        if lo is not None and hi is not None:
            return f" in {self.range_text()}"
        if lo is not None:
            return (" > " if self.low_open else " >= ") + fmt.format(int(lo) if self.kind ==
                                                                     "int" else lo)
        if hi is not None:
            return (" < " if self.high_open else " <= ") + fmt.format(hi)
        return ""

    def validate(self, optimizer: str, value: Any) -> Any:
        """The value in canonical form, or SchedulerError naming scheduler, argument, value.

        `optimizer` is the scheduler's name here (the parameter keeps Hyperparameter's name).
        """
        scheduler = optimizer

        def bad() -> SchedulerError:
            shown = value if isinstance(value, str) and self.kind == "schedulers" else repr(value)
            return SchedulerError(f"{scheduler}: {self.name} must be {self.expected_text()}, "
                                  f"got {shown}")

        if value is None:
            if self.optional:
                return None
            raise bad()
        if self.kind == "int_list":
            if not isinstance(value, (list, tuple)):
                raise bad()
            items = [self._number(v, bad) for v in value]
            if any(b <= a for a, b in zip(items, items[1:])):
                raise bad()
            return items
        if self.kind == "schedulers":
            return _validate_nested(scheduler, self.name, value, bad)
        if self.kind in ("bool", "choice"):
            if (self.kind == "bool" and not isinstance(value, bool)) or (
                    self.kind == "choice" and value not in self.choices):
                raise bad()
            return value
        return self._number(value, bad)

    def _number(self, value: Any, bad: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        if self.kind in ("int", "int_list"):
            if isinstance(value, float):
                if not value.is_integer():
                    raise bad()
                value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:  # an int too large for a float (10**400)
                raise bad() from None
            if not math.isfinite(value):
                raise bad()
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad()
        if self.high is not None and (value > self.high or
                                      (self.high_open and value == self.high)):
            raise bad()
        return value


def _validate_nested(scheduler: str, argument: str, value: Any, bad: Any
                     ) -> list[tuple[str, dict[str, Any]]]:
    """SequentialLR's schedulers: each a call text or a (name, kwargs) pair (JSON: a list)."""
    if not isinstance(value, (list, tuple)) or not value:
        raise bad()
    result = []
    for item in value:
        if isinstance(item, str):
            name, kwargs = parse_scheduler_call(item)
        elif (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], dict)):
            name, kwargs = get_scheduler_spec(item[0]).name, item[1]
            kwargs = get_scheduler_spec(name).validate(kwargs)
        else:
            raise bad()
        if name in NOT_NESTABLE:
            raise SchedulerError(f"{scheduler}: {argument} cannot contain {name} "
                                 f"({NOT_NESTABLE[name]})")
        result.append((name, kwargs))
    return result


NOT_NESTABLE = {
    "ReduceLROnPlateau": "it steps on the loss, which SequentialLR does not pass on",
    "SequentialLR": "nest the phases in one SequentialLR instead",
}


@dataclass(frozen=True)
class SchedulerSpec:
    """A torch.optim.lr_scheduler class and the arguments the playground exposes for it.

    steps_on_loss: step(loss) rather than step() (ReduceLROnPlateau). cycles_momentum: it can
    cycle the optimizer's momentum, or beta1 for Adam-like optimizers (CyclicLR, OneCycleLR).
    """

    name: str
    cls: type
    arguments: tuple[SchedulerArgument, ...]
    help: str
    steps_on_loss: bool = False
    cycles_momentum: bool = False

    @property
    def defaults(self) -> dict[str, Any]:
        """torch's defaults; a required argument maps to None."""
        return {a.name: a.default for a in self.arguments}

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments if a.required)

    def argument(self, name: str) -> SchedulerArgument:
        for a in self.arguments:
            if a.name == name:
                return a
        raise SchedulerError(f"{self.name} has no argument {name!r}; it has: "
                             + ", ".join(a.name for a in self.arguments))

    def validate(self, values: dict[str, Any] | None) -> dict[str, Any]:
        """Every argument: the defaults overridden by `values`, each checked.

        Raises SchedulerError for a bad or missing value, and for constraints between
        arguments, which are torch's own (asked of the class on a throwaway optimizer).
        """
        result = self.defaults
        for key, value in (values or {}).items():
            result[key] = self.argument(key).validate(self.name, value)
        missing = [a.name for a in self.arguments if a.required and result[a.name] is None]
        if self.name == "OneCycleLR" and result["total_steps"] is None and (
                result["epochs"] is None or result["steps_per_epoch"] is None):
            missing.append("total_steps (or epochs and steps_per_epoch)")
        if missing:
            example = ", ".join(f"{m.split()[0]}={self.argument(m.split()[0]).suggested!r}"
                                for m in missing)
            raise SchedulerError(f"{self.name}: missing {', '.join(missing)}; "
                                 f"write e.g. {self.name}({example})")
        if self.name == "SequentialLR" and len(result["milestones"]) != len(
                result["schedulers"]) - 1:
            raise SchedulerError(
                f"SequentialLR: milestones must have one entry fewer than schedulers "
                f"({len(result['schedulers'])} schedulers), got {result['milestones']}")
        # the rest (OneCycleLR's pct_start with three_phase, LinearLR's factors, ...) is torch's
        probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
        build_scheduler(probe, self.name, result, validated=True)
        return result


def _signature_default(cls: type, name: str) -> tuple[Any, bool]:
    """(default, required) of a constructor keyword, read from torch so it cannot drift."""
    parameter = inspect.signature(cls).parameters[name]
    if parameter.default is inspect.Parameter.empty:
        return None, True
    return parameter.default, False


# torch reads some arguments only when it builds the scheduler (CyclicLR's total_size,
# OneCycleLR's phases): a change goes through rebuild_scheduler, which starts the schedule again
# at step 0 from the run's base lr, the same for every scheduler.
NOT_LIVE_REASON = ("a change builds the scheduler afresh, starting its schedule again from the "
                   "base lr")


def _spec(name: str, help: str, *arguments: tuple[Any, ...], **flags: Any) -> SchedulerSpec:
    """A SchedulerSpec whose defaults and required flags come from the torch class itself.

    Each argument: (name, kind, low, high, help, extra keywords for SchedulerArgument).
    """
    cls = getattr(lr_scheduler, name)
    built = []
    for arg_name, kind, low, high, arg_help, extra in arguments:
        default, required = _signature_default(cls, arg_name)
        built.append(SchedulerArgument(arg_name, default, kind, low, high, help=arg_help,
                                       required=required, live=False,
                                       not_live_reason=NOT_LIVE_REASON, **extra))
    return SchedulerSpec(name, cls, tuple(built), help, **flags)


_OPEN_LOW = {"low_open": True}
_GAMMA = ("gamma", "float", 0.0, None, "factor the lr is multiplied by at each decay", _OPEN_LOW)
_ETA_MIN = ("eta_min", "float", 0.0, None, "the lowest lr the cosine reaches", {})
_MOMENTUM = [
    ("cycle_momentum", "bool", None, None,
     "cycle the momentum (beta1 for Adam-like optimizers) opposite to the lr", {}),
    ("base_momentum", "float", 0.0, 1.0, "momentum (or beta1) when the lr is highest",
     {"high_open": True}),
    ("max_momentum", "float", 0.0, 1.0, "momentum (or beta1) when the lr is lowest",
     {"high_open": True}),
]

CATALOGUE: dict[str, SchedulerSpec] = {spec.name: spec for spec in (
    _spec("StepLR", "Multiplies the lr by gamma every step_size steps.",
          ("step_size", "int", 1, None, "steps between decays", {"suggested": 50}),
          _GAMMA),
    _spec("MultiStepLR", "Multiplies the lr by gamma at each milestone step.",
          ("milestones", "int_list", 1, None, "the steps at which the lr decays",
           {"suggested": [100, 150]}),
          _GAMMA),
    _spec("ExponentialLR", "Multiplies the lr by gamma every step.",
          ("gamma", "float", 0.0, None, "factor the lr is multiplied by each step",
           {"low_open": True, "suggested": 0.99})),
    _spec("CosineAnnealingLR", "Lowers the lr along a half cosine from the base lr to eta_min "
                               "over T_max steps.",
          ("T_max", "int", 1, None, "steps from the base lr down to eta_min",
           {"suggested": 200}),
          _ETA_MIN),
    _spec("CosineAnnealingWarmRestarts", "Cosine decay that restarts at the base lr; each "
                                         "period is T_mult times the one before.",
          ("T_0", "int", 1, None, "steps of the first period", {"suggested": 50}),
          ("T_mult", "int", 1, None, "growth factor of the period after each restart", {}),
          _ETA_MIN),
    _spec("CyclicLR", "Sweeps the lr between base_lr and max_lr and back, cycle after cycle "
                      "(and the momentum the other way).",
          ("base_lr", "float", 0.0, None, "the lowest lr of the cycle (replaces the "
                                          "optimizer's lr)", {"suggested": 0.001, "log": True}),
          ("max_lr", "float", 0.0, None, "the highest lr of the cycle",
           {"suggested": 0.01, "log": True}),
          ("step_size_up", "int", 1, None, "steps from base_lr up to max_lr", {}),
          ("step_size_down", "int", 1, None, "steps back down (None: as step_size_up)",
           {"optional": True}),
          ("mode", "choice", None, None, "triangular: same cycles; triangular2: each half as "
                                         "high; exp_range: scaled by gamma**step",
           {"choices": ("triangular", "triangular2", "exp_range")}),
          ("gamma", "float", 0.0, None, "decay per step in exp_range mode", _OPEN_LOW),
          ("scale_mode", "choice", None, None, "scale per cycle or per step (set by mode)",
           {"choices": ("cycle", "iterations")}),
          *_MOMENTUM,
          cycles_momentum=True),
    _spec("OneCycleLR", "Warms the lr up from max_lr/div_factor to max_lr, then anneals it far "
                        "below; the momentum goes the other way.",
          ("max_lr", "float", 0.0, None, "the peak lr (replaces the optimizer's lr)",
           {"low_open": True, "log": True, "suggested": 0.1}),
          ("total_steps", "int", 1, None, "length of the cycle in steps",
           {"optional": True, "suggested": 200}),
          ("epochs", "int", 1, None, "with steps_per_epoch, another way to give total_steps",
           {"optional": True}),
          ("steps_per_epoch", "int", 1, None, "steps in one epoch", {"optional": True}),
          ("pct_start", "float", 0.0, 1.0, "fraction of the cycle spent warming up",
           {"low_open": True, "high_open": True}),
          ("anneal_strategy", "choice", None, None, "shape of the warm-up and the decay",
           {"choices": ("cos", "linear")}),
          *_MOMENTUM,
          ("div_factor", "float", 0.0, None, "the starting lr is max_lr / div_factor",
           _OPEN_LOW),
          ("final_div_factor", "float", 0.0, None, "the final lr is the starting lr / this",
           _OPEN_LOW),
          ("three_phase", "bool", None, None, "come back down symmetrically before the final "
                                              "annealing", {}),
          cycles_momentum=True),
    _spec("LinearLR", "Scales the lr linearly from start_factor to end_factor over total_iters "
                      "steps (a warm-up).",
          ("start_factor", "float", 0.0, 1.0, "fraction of the base lr at step 0", _OPEN_LOW),
          ("end_factor", "float", 0.0, 1.0, "fraction of the base lr after total_iters", {}),
          ("total_iters", "int", 1, None, "steps the ramp takes", {})),
    _spec("ConstantLR", "Uses factor times the base lr for total_iters steps, then the base lr.",
          ("factor", "float", 0.0, 1.0, "fraction of the base lr at first", {}),
          ("total_iters", "int", 1, None, "steps before the full base lr", {})),
    _spec("PolynomialLR", "Lowers the lr to zero over total_iters steps along "
                          "(1 - t/total_iters)**power.",
          ("total_iters", "int", 1, None, "steps to reach zero", {}),
          ("power", "float", 0.0, None, "power of the polynomial (1: linear)", {})),
    _spec("ReduceLROnPlateau", "Multiplies the lr by factor when the training loss has stopped "
                               "improving for patience steps.",
          ("mode", "choice", None, None, "min: the loss should go down",
           {"choices": ("min", "max")}),
          ("factor", "float", 0.0, 1.0, "factor the lr is multiplied by on a plateau",
           {"high_open": True}),
          ("patience", "int", 0, None, "steps without improvement before reducing", {}),
          ("threshold", "float", 0.0, None, "smallest change that counts as improvement", {}),
          ("threshold_mode", "choice", None, None, "rel: threshold relative to the best loss; "
                                                   "abs: absolute", {"choices": ("rel", "abs")}),
          ("cooldown", "int", 0, None, "steps to wait after a reduction", {}),
          ("min_lr", "float", 0.0, None, "the lr is never reduced below this", {}),
          ("eps", "float", 0.0, None, "changes of lr smaller than this are skipped", {}),
          steps_on_loss=True),
    _spec("SequentialLR", "Runs schedulers one after another, switching at the milestones "
                          "(warm-up, then decay).",
          ("schedulers", "schedulers", None, None, "the phases, as scheduler calls",
           {"suggested": ["LinearLR(start_factor=0.1, total_iters=20)",
                          "CosineAnnealingLR(T_max=180)"]}),
          ("milestones", "int_list", 1, None, "the steps at which the next phase starts",
           {"suggested": [20]})),
)}


def get_scheduler_spec(name: str) -> SchedulerSpec:
    """The catalogue entry for a torch.optim.lr_scheduler class name (case-insensitive)."""
    spec = CATALOGUE.get(name) or {k.lower(): v for k, v in CATALOGUE.items()}.get(name.lower())
    if spec is None:
        raise SchedulerError(f"unknown scheduler {name!r}; available: " + ", ".join(CATALOGUE))
    return spec


_SCHEDULER_MODULES = ("torch.optim.lr_scheduler", "optim.lr_scheduler", "lr_scheduler")


def parse_scheduler_call(text: str) -> tuple[str, dict[str, Any]]:
    """`CosineAnnealingLR(T_max=200)` -> ("CosineAnnealingLR", {every argument, validated}).

    A bare name means the defaults (if it has no required argument). Like
    parse_optimizer_call: the text becomes a syntax tree, only literal values (and, for
    SequentialLR's `schedulers`, nested calls) are read, nothing is executed. `optimizer=` is
    not written: the scheduler belongs to the run's optimizer. Raises SchedulerError.
    """
    text = text.strip()
    if len(text) > MAX_CALL_LENGTH:
        raise SchedulerError(f"scheduler text is too long ({len(text)} characters)")
    if not text:
        raise SchedulerError("scheduler is empty; write e.g. CosineAnnealingLR(T_max=200)")
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise SchedulerError(f"cannot read scheduler {text!r}; write it as in PyTorch, "
                             "e.g. StepLR(step_size=50, gamma=0.5)") from None
    name, values = _read_call(tree, text)
    spec = get_scheduler_spec(name)
    return spec.name, spec.validate(values)


def _read_call(tree: ast.expr, text: str) -> tuple[str, dict[str, Any]]:
    """A call's class name and its keyword values (nested calls stay call text)."""
    if isinstance(tree, ast.Name):
        return get_scheduler_spec(tree.id).name, {}
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, (ast.Name, ast.Attribute))):
        raise SchedulerError(f"cannot read scheduler {text!r}; expected a class name with "
                             "keyword arguments, e.g. CosineAnnealingLR(T_max=200)")
    func = tree.func
    name = func.id if isinstance(func, ast.Name) else func.attr
    if isinstance(func, ast.Attribute) and ast.unparse(func.value) not in _SCHEDULER_MODULES:
        raise SchedulerError(f"unknown scheduler {ast.unparse(func)!r}")
    spec = get_scheduler_spec(name)
    if tree.args:
        raise SchedulerError(f"{spec.name}: give arguments by name (the optimizer is the "
                             f"run's), e.g. {_example(spec)}")
    values: dict[str, Any] = {}
    for kw in tree.keywords:
        if kw.arg is None:
            raise SchedulerError(f"{spec.name}: **kwargs are not supported")
        if kw.arg in values:
            raise SchedulerError(f"{spec.name}: {kw.arg} is given twice")
        if kw.arg == "optimizer":
            raise SchedulerError(f"{spec.name}: leave out optimizer=; the scheduler belongs to "
                                 "the optimizer it follows")
        spec.argument(kw.arg)  # an unknown argument is named before its value is read
        if spec.argument(kw.arg).kind == "schedulers" and isinstance(kw.value,
                                                                      (ast.List, ast.Tuple)):
            values[kw.arg] = [ast.unparse(e) for e in kw.value.elts]
            continue
        try:
            values[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise SchedulerError(f"{spec.name}: {kw.arg} must be "
                                 f"{spec.argument(kw.arg).expected_text()}, got "
                                 f"{ast.unparse(kw.value)}") from None
    return spec.name, values


def _example(spec: SchedulerSpec) -> str:
    required = [a for a in spec.arguments if a.required]
    return f"{spec.name}(" + ", ".join(f"{a.name}={a.suggested!r}" for a in required) + ")"


def scheduler_call_text(name: str, kwargs: dict[str, Any], only_changed: bool = True) -> str:
    """The inverse of parse_scheduler_call, as PyTorch code without the optimizer argument:
    ("CosineAnnealingLR", {"T_max": 200, "eta_min": 0.0}) -> "CosineAnnealingLR(T_max=200)"."""
    spec = get_scheduler_spec(name)
    parts = []
    for a in spec.arguments:
        value = kwargs.get(a.name, a.default)
        if only_changed and not a.required and value == a.default:
            continue
        if a.kind == "schedulers":
            text = "[" + ", ".join(scheduler_call_text(n, k, only_changed) for n, k in
                                   _validate_nested(spec.name, a.name, value,
                                                    lambda: SchedulerError("bad")))
            parts.append(f"{a.name}={text}]")
        else:
            parts.append(f"{a.name}={value!r}")
    return f"{spec.name}({', '.join(parts)})"


def scheduler_code(name: str, kwargs: dict[str, Any], optimizer: str = "optimizer",
                   module: str = "torch.optim.lr_scheduler") -> str:
    """The constructor call a PyTorch script writes, every argument spelled out:
    `torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.1)`; SequentialLR's
    phases are built on the same optimizer inside it. For exports."""
    spec = get_scheduler_spec(name)
    parts = [optimizer]
    for a in spec.arguments:
        value = kwargs.get(a.name, a.default)
        if a.kind == "schedulers":
            nested = _validate_nested(spec.name, a.name, value, lambda: SchedulerError("bad"))
            value_text = "[" + ", ".join(scheduler_code(n, k, optimizer, module)
                                         for n, k in nested) + "]"
        else:
            value_text = repr(value)
        parts.append(f"{a.name}={value_text}")
    return f"{module}.{spec.name}({', '.join(parts)})"


# The (name, kwargs) each scheduler was built from, for set_base_lr's rebuild at step 0.
_BUILT_FROM: weakref.WeakKeyDictionary[Any, tuple[str, dict[str, Any]]] = (
    weakref.WeakKeyDictionary())


def build_scheduler(optimizer: torch.optim.Optimizer, name: str,
                    kwargs: dict[str, Any] | None = None, *, validated: bool = False) -> Any:
    """torch's own scheduler `name` on `optimizer`, from (validated) keyword arguments.

    The nested schedulers of SequentialLR are built on the same optimizer first, as PyTorch
    users write it. Raises SchedulerError for values torch itself rejects.
    """
    spec = get_scheduler_spec(name)
    values = dict(kwargs or {}) if validated else spec.validate(kwargs)
    try:
        if spec.name == "SequentialLR":
            values["schedulers"] = [build_scheduler(optimizer, n, k, validated=True)
                                    for n, k in values["schedulers"]]
        if spec.steps_on_loss:
            # torch's ReduceLROnPlateau keeps no initial lr; the slider's base is kept here
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        scheduler = spec.cls(optimizer, **values)
    except (ValueError, TypeError, ZeroDivisionError) as e:
        raise SchedulerError(f"{spec.name}: {e}".splitlines()[0]) from None
    _BUILT_FROM[scheduler] = (spec.name, dict(kwargs or {}))
    return scheduler


def step_scheduler(scheduler: Any, loss: float | torch.Tensor | None = None) -> None:
    """Step a scheduler after optimizer.step(): with the training loss for ReduceLROnPlateau.

    OneCycleLR is not stepped past its total_steps (torch would raise): its lr stays final.
    """
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        if loss is None:
            raise SchedulerError("ReduceLROnPlateau steps on the training loss; none was given")
        scheduler.step(loss.item() if isinstance(loss, torch.Tensor) else float(loss))
    elif isinstance(scheduler, lr_scheduler.OneCycleLR) and (
            scheduler.last_epoch >= scheduler.total_steps):
        # torch raises on a step past the end of the cycle; a run longer than the cycle keeps
        # its final lr (an exported script writes the same guard)
        return
    else:
        scheduler.step()


def momentum_name(scheduler: Any) -> str | None:
    """"momentum" or "beta1" when the scheduler cycles it (CyclicLR, OneCycleLR), else None."""
    if not getattr(scheduler, "cycle_momentum", False):
        return None
    return "beta1" if getattr(scheduler, "use_beta1", False) else "momentum"


def current_momentum(optimizer: torch.optim.Optimizer, name: str | None) -> float | None:
    """The first group's momentum or beta1 (what a cycling scheduler moves), or None."""
    if name is None:
        return None
    group = optimizer.param_groups[0]
    return float(group["betas"][0] if name == "beta1" else group["momentum"])


@dataclass
class LrPreview:
    """The lr (and a cycled momentum or beta1) that each of the next steps uses.

    lr[k] is the lr optimizer.step() number k uses; momentum[k] likewise (None when the
    scheduler does not cycle it; `momentum_name` says which). `note` explains a curve that
    cannot be known in advance (ReduceLROnPlateau without losses), else "".
    """

    lr: list[float]
    momentum: list[float] | None = None
    momentum_name: str | None = None
    note: str = ""

    def as_dict(self) -> dict[str, list[float]]:
        result = {"lr": self.lr}
        if self.momentum is not None and self.momentum_name:
            result[self.momentum_name] = self.momentum
        return result


def preview_lr(optimizer_name: str, optimizer_kwargs: dict[str, Any] | None,
               scheduler_name: str, scheduler_kwargs: dict[str, Any] | None, steps: int,
               losses: list[float] | None = None) -> LrPreview:
    """The lr each of `steps` steps uses, from torch's real optimizer and scheduler.

    A throwaway optimizer on a dummy parameter (with no gradient: it does not move) is stepped,
    then the scheduler, as a training loop does. ReduceLROnPlateau reacts to the loss:
    losses[k] is the loss it is given after step k; without them (or past their end) the lr is
    held flat and `note` says why.
    """
    spec = get_scheduler_spec(scheduler_name)
    optimizer_spec = get_spec(optimizer_name)
    parameter = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_spec.cls([parameter], **optimizer_spec.validate(optimizer_kwargs))
    scheduler = build_scheduler(optimizer, spec.name, scheduler_kwargs)
    which = momentum_name(scheduler)
    lrs: list[float] = []
    momenta: list[float] = []
    note = ""
    for k in range(steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        if which is not None:
            momenta.append(float(current_momentum(optimizer, which) or 0.0))
        if optimizer_spec.needs_closure:
            optimizer.step(lambda: torch.zeros((), dtype=torch.float64))
        else:
            optimizer.step()
        if spec.steps_on_loss:
            if losses is None or k >= len(losses):
                # Unstepped, ReduceLROnPlateau holds its lr: the rest of the curve is flat
                # (filled in, not stepped, so a preview fed a run's losses stays cheap).
                lrs.extend([lrs[-1]] * (steps - k - 1))
                note = ("ReduceLROnPlateau lowers the lr only when the training loss stops "
                        "improving; without the losses the lr is shown flat"
                        if losses is None else
                        f"ReduceLROnPlateau reacts to the {len(losses)} losses given, flat past "
                        f"step {len(losses)}; it lowers the lr only when the training loss "
                        "stops improving, which no preview knows ahead")
                break
            step_scheduler(scheduler, losses[k])
        else:
            step_scheduler(scheduler)
    return LrPreview(lrs, momenta if which is not None else None, which, note)


class LossFedPreview:
    """`preview_lr` for a scheduler that steps on the loss (ReduceLROnPlateau), kept between
    calls: fed the losses of a run that goes on (each list starting with the last one), it steps
    torch only on the new losses, so a preview that follows a playing run costs a few steps per
    redraw instead of one per loss. Its curves equal preview_lr's for the same losses, bit for
    bit (the same torch steps in the same order)."""

    def __init__(self, optimizer_name: str, optimizer_kwargs: dict[str, Any] | None,
                 scheduler_name: str, scheduler_kwargs: dict[str, Any] | None) -> None:
        self._args = (optimizer_name, optimizer_kwargs, scheduler_name, scheduler_kwargs)
        self._start()

    def _start(self) -> None:
        optimizer_name, optimizer_kwargs, scheduler_name, scheduler_kwargs = self._args
        self._spec = get_scheduler_spec(scheduler_name)
        if not self._spec.steps_on_loss:
            raise SchedulerError(f"{self._spec.name} does not step on the loss")
        optimizer_spec = get_spec(optimizer_name)
        self._closure = optimizer_spec.needs_closure
        parameter = torch.zeros((), dtype=torch.float64, requires_grad=True)
        self._optimizer = optimizer_spec.cls([parameter],
                                             **optimizer_spec.validate(optimizer_kwargs))
        self._scheduler = build_scheduler(self._optimizer, self._spec.name, scheduler_kwargs)
        self._fed: list[float] = []
        self._lrs = [float(self._optimizer.param_groups[0]["lr"])]  # lr[k] before step k + 1

    def preview(self, losses: list[float], steps: int) -> LrPreview:
        """What preview_lr(..., steps, losses=losses) gives."""
        losses = [float(v) for v in losses]
        if losses[:len(self._fed)] != self._fed:
            self._start()  # not the same run going on: from the start
        for k in range(len(self._fed), min(len(losses), steps)):
            if self._closure:
                self._optimizer.step(lambda: torch.zeros((), dtype=torch.float64))
            else:
                self._optimizer.step()
            step_scheduler(self._scheduler, losses[k])
            self._fed.append(losses[k])
            self._lrs.append(float(self._optimizer.param_groups[0]["lr"]))
        n = min(len(losses), steps)
        lrs = self._lrs[:min(n + 1, steps)]
        lrs += [lrs[-1]] * (steps - len(lrs)) if lrs else []
        note = "" if len(losses) >= steps else (
            f"ReduceLROnPlateau reacts to the {len(losses)} losses given, flat past step "
            f"{len(losses)}; it lowers the lr only when the training loss stops improving, "
            "which no preview knows ahead")
        return LrPreview(lrs, None, None, note)


def losses_given_so_far(run: Any, limit: int) -> list[float] | None:
    """The training losses a run's ReduceLROnPlateau has been given, in order (at most `limit`),
    for `preview_lr(..., losses=)`: None when the run's scheduler does not step on the loss.

    The engine gives the scheduler's step k the loss of the entry its optimizer step started
    from, entry `first + k`, where `first` is the step at which this scheduler was set (the run's
    steps minus the scheduler's `last_epoch`). The newest entry's loss is the one its next step
    gets, so the preview is exact up to that next step. A thinned record (core/trajectory.py)
    keeps whole runs of recent steps: only the consecutive entries from `first` on are used.
    """
    setting = getattr(run, "scheduler_setting", None)
    scheduler = getattr(run, "scheduler", None)
    if setting is None or scheduler is None or not get_scheduler_spec(setting[0]).steps_on_loss:
        return None
    first = int(run.steps) - int(getattr(scheduler, "last_epoch", 0))
    steps = run.trajectory.step
    begin = int(np.searchsorted(steps, first))
    window = steps[begin:begin + max(0, int(limit))]
    expected = np.arange(first, first + len(window))
    consecutive = len(window) if np.array_equal(window, expected) else int(
        np.argmin(window == expected))
    return [float(v) for v in run.trajectory.loss[begin:begin + consecutive]]


def base_lr_of(scheduler: Any, optimizer: torch.optim.Optimizer) -> float:
    """What a scheduled run's lr slider shows (see the module docstring for the rule)."""
    group = optimizer.param_groups[0]
    if isinstance(scheduler, lr_scheduler.OneCycleLR):
        return float(group["max_lr"])
    if isinstance(scheduler, lr_scheduler.CyclicLR):
        return float(scheduler.base_lrs[0])
    return float(group.get("initial_lr", group["lr"]))


def set_base_lr(scheduler: Any, optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Move a scheduled run's base lr to `lr` (the lr slider), by the module docstring's rule.

    Before the scheduler's first step this equals building it afresh with that lr (a scheduler
    made by build_scheduler is rebuilt); later it is `scale_base_lr`: every lr the scheduler
    holds is scaled by lr / base_lr_of(scheduler), keeping its shape. Raises SchedulerError for
    an lr that is not a number > 0, changing nothing.
    """
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr)
                                    and lr > 0):
        raise SchedulerError(f"the base lr must be a number > 0, got {lr!r}")
    built = _BUILT_FROM.get(scheduler)
    if built is not None and getattr(scheduler, "last_epoch", 0) == 0 and not isinstance(
            scheduler, lr_scheduler.ReduceLROnPlateau):
        _rebuild_at_step_zero(scheduler, optimizer, built, base_lr_of(scheduler, optimizer),
                              float(lr))
        return
    scale_base_lr(scheduler, optimizer, float(lr))


def scale_base_lr(scheduler, optimizer, lr):  # type: ignore[no-untyped-def]
    """Scale every lr a running scheduler holds so that its base lr becomes `lr`.

    Self-contained on purpose (torch only, no annotations): an exported script pastes this very
    function (`SCALE_BASE_LR_SOURCE`), so it replays an lr move mid-run bit for bit.
    """
    import bisect

    from torch.optim import lr_scheduler

    first = optimizer.param_groups[0]
    if isinstance(scheduler, lr_scheduler.OneCycleLR):
        old = first["max_lr"]  # OneCycleLR's own lr limits replace the optimizer's lr
    elif isinstance(scheduler, lr_scheduler.CyclicLR):
        old = scheduler.base_lrs[0]
    else:
        old = first.get("initial_lr", first["lr"])
    ratio = lr / old

    def scaled(value):  # the slider's own value exactly, every other lr by the ratio
        return lr if value == old else value * ratio

    def scale_lists(s):
        for name in ("base_lrs", "max_lrs", "_last_lr"):
            if hasattr(s, name):
                setattr(s, name, [scaled(v) for v in getattr(s, name)])
        for inner in getattr(s, "_schedulers", ()):
            scale_lists(inner)

    active = scheduler  # the phase that sets the lr now (SequentialLR's current one)
    while getattr(active, "_schedulers", None):
        active = active._schedulers[bisect.bisect_right(active._milestones, active.last_epoch)]
    # a cosine's floor eta_min is the user's absolute number: the height above it scales, so
    # the rest of the curve is the one the run would have had with the new base lr
    floor = getattr(active, "eta_min", 0.0)
    above = (lr - floor) / (old - floor) if floor and old != floor else ratio
    scale_lists(scheduler)
    for group in optimizer.param_groups:
        group["lr"] = floor + (group["lr"] - floor) * above if floor else scaled(group["lr"])
        for key in ("initial_lr", "max_lr", "min_lr"):
            if key in group:
                group[key] = scaled(group[key])
    if hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


SCALE_BASE_LR_SOURCE: str = inspect.getsource(scale_base_lr).replace(
    "  # type: ignore[no-untyped-def]", "")


def _rebuild_at_step_zero(scheduler: Any, optimizer: torch.optim.Optimizer,
                          built: tuple[str, dict[str, Any]], old: float, lr: float) -> None:
    """Build the scheduler afresh with the new lr and take its state into the old object."""
    name, kwargs = built
    kwargs = dict(kwargs)
    if name == "OneCycleLR":
        kwargs["max_lr"] = lr
    elif name == "CyclicLR":
        kwargs["base_lr"] = lr
        kwargs["max_lr"] = kwargs.get("max_lr", scheduler.max_lrs[0]) * (lr / old)
    fresh = rebuild_scheduler(optimizer, name, kwargs, lr)
    scheduler.load_state_dict(fresh.state_dict())
    _BUILT_FROM[scheduler] = (name, kwargs)


def rebuild_scheduler(optimizer: torch.optim.Optimizer, name: str, kwargs: dict[str, Any],
                      base_lr: float) -> Any:
    """A new scheduler on a running optimizer whose schedule starts again at step 0 from
    `base_lr` (the run's own lr, e.g. its hyperparameters["lr"]).

    For a changed argument or a different scheduler mid-run. Each group's lr is set to base_lr
    and its initial_lr dropped first: torch keeps an existing initial_lr, and chainable
    schedulers would start from the current, already scheduled lr. A script writes the same:
    `for g in optimizer.param_groups: g["lr"] = base_lr; g.pop("initial_lr", None)`.
    """
    for group in optimizer.param_groups:
        group["lr"] = base_lr
        group.pop("initial_lr", None)
    return build_scheduler(optimizer, name, kwargs)
