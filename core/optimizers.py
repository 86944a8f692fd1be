"""The catalogue of torch.optim optimizers the playground offers, with each hyperparameter's spec.

The GUI builds its controls from it and the command line validates against it; the product
always steps torch's own classes. `parse_optimizer_call` reads text like
`Adam(lr=0.05, betas=(0.9, 0.99))` without executing anything.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

import torch

from core.errors import OptimizerError


@dataclass(frozen=True)
class Hyperparameter:
    """One constructor keyword of a torch.optim class.

    kind: "float", "int", "bool", "pair" (two floats, like betas) or "choice".
    low / high bound the value (or each element of a pair); `low_open` / `high_open` say whether
    the bound itself is excluded. `log` says a slider for it should be logarithmic.
    """

    name: str
    default: Any
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    log: bool = False
    help: str = ""
    choices: tuple[Any, ...] = ()
    # False where torch sets up per-parameter state from the value at the first step (amsgrad's
    # max_exp_avg_sq, RMSprop's momentum_buffer, Rprop's step sizes from lr, ...) or where a
    # change would only reach the update after next (ASGD's eta): a change then needs a fresh
    # optimizer. `not_live_reason` says why, and is part of `help`.
    live: bool = True
    not_live_reason: str = ""

    def range_text(self) -> str:
        if self.kind == "bool":
            return "True or False"
        if self.kind == "choice":
            return " or ".join(repr(c) for c in self.choices)
        text = self._bounds_text()
        return f"pair, each in {text}" if self.kind == "pair" else text

    def _bounds_text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return ("(" if self.low_open else "[") + f"{lo}, {hi}" + (
            ")" if self.high_open or self.high is None else "]")

    def validate(self, optimizer: str, value: Any) -> Any:
        """Return the value in canonical form, or raise OptimizerError naming everything."""

        def bad(why: str) -> OptimizerError:
            return OptimizerError(f"{optimizer}: {self.name}={value!r} is invalid: {why}")

        if self.kind == "bool":
            if not isinstance(value, bool):
                raise bad("expected True or False")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise bad("expected " + self.range_text())
            return value
        if self.kind == "pair":
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise bad("expected a pair of numbers such as (0.9, 0.999)")
            return tuple(self._number(v, bad) for v in value)
        return self._number(value, bad)

    def _number(self, value: Any, bad: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("expected a number")
        if self.kind == "int" and isinstance(value, float):
            if not value.is_integer():
                raise bad("expected a whole number")
            value = int(value)
        try:
            if self.kind != "int":
                value = float(value)
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float (10**400)
            raise bad("the number is too large") from None
        if not finite:
            raise bad("expected a finite number")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad("must be in " + self._bounds_text())
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise bad("must be in " + self._bounds_text())
        return value


@dataclass(frozen=True)
class OptimizerSpec:
    """A torch.optim class and the hyperparameters the playground exposes for it."""

    name: str
    cls: type[torch.optim.Optimizer]
    hyperparameters: tuple[Hyperparameter, ...]
    help: str
    needs_closure: bool = False
    # AdamW applies weight decay to the weights, not through the gradient (decoupled)
    decoupled_weight_decay: bool = False

    @property
    def defaults(self) -> dict[str, Any]:
        return {h.name: h.default for h in self.hyperparameters}

    def weight_decay_in_gradient(self, hyperparameters: dict[str, Any]) -> float:
        """The L2 factor torch adds to the gradient (grad + weight_decay * w), 0 if none.

        The optimizer then minimises f + weight_decay / 2 * |w|^2, and settles where that
        objective's gradient vanishes, not f's. Decoupled weight decay (AdamW, or
        decoupled_weight_decay=True) does not go through the gradient: 0.
        """
        if self.decoupled_weight_decay or hyperparameters.get("decoupled_weight_decay"):
            return 0.0
        return float(hyperparameters.get("weight_decay", 0.0) or 0.0)

    def hyperparameter(self, name: str) -> Hyperparameter:
        for h in self.hyperparameters:
            if h.name == name:
                return h
        raise OptimizerError(f"{self.name} has no hyperparameter {name!r}; it has: "
                             + ", ".join(h.name for h in self.hyperparameters))

    def validate(self, values: dict[str, Any] | None) -> dict[str, Any]:
        """The defaults overridden by `values`, each checked. Raises OptimizerError."""
        result = self.defaults
        for key, value in (values or {}).items():
            result[key] = self.hyperparameter(key).validate(self.name, value)
        # Constraints between hyperparameters (SGD's nesterov needs momentum) are torch's own:
        # ask the class itself, on a throwaway parameter.
        try:
            self.cls([torch.zeros(1, requires_grad=True)], **result)
        except (ValueError, TypeError) as e:
            raise OptimizerError(f"{self.name}: {e}") from None
        return result


RESTART = " Changing it mid-run starts the optimizer afresh at the current point."
BUILT_AT_FIRST_STEP = "PyTorch builds its state for this setting at the first step."


def _not_live(name: str, default: Any, kind: str, *args: Any, help: str, why: str,
              **kwargs: Any) -> Hyperparameter:
    """A hyperparameter a running optimizer does not follow: `why` and RESTART join its help."""
    return Hyperparameter(name, default, kind, *args, live=False, not_live_reason=why,
                          help=f"{help}. {why[0].upper()}{why[1:]}{RESTART}", **kwargs)


_LR_HELP = "learning rate: how far each step goes (w <- w - lr * update)"


def _lr(default: float, why_not_live: str = "") -> Hyperparameter:
    if why_not_live:
        return _not_live("lr", default, "float", 0.0, None, low_open=True, log=True,
                         help=_LR_HELP, why=why_not_live)
    return Hyperparameter("lr", default, "float", 0.0, None, low_open=True, log=True,
                          help=_LR_HELP)


def _wd(default: float = 0.0) -> Hyperparameter:
    return Hyperparameter("weight_decay", default, "float", 0.0, None,
                          help="L2 penalty: pulls the parameters towards zero every step")


def _eps(default: float) -> Hyperparameter:
    return Hyperparameter("eps", default, "float", 0.0, None, log=True,
                          help="added to the denominator so it never divides by zero")


def _betas() -> Hyperparameter:
    return Hyperparameter("betas", (0.9, 0.999), "pair", 0.0, 1.0, high_open=True,
                          help="decay rates of the running averages of the gradient (beta1) and "
                               "of its square (beta2)")


_AMSGRAD = _not_live("amsgrad", False, "bool",
                     help="keep the maximum of past squared-gradient averages (AMSGrad)",
                     why=BUILT_AT_FIRST_STEP)
# ASGD steps by eta from its state, which it computes from lr, lambd and alpha at the end of each
# step: a change in param_groups would reach the update after next, not the next one.
_ASGD_ETA = ("ASGD steps by a rate eta that it computes from lr, lambd and alpha after each step,"
             " so a change would only reach the update after next.")
_DECOUPLED = Hyperparameter("decoupled_weight_decay", False, "bool",
                            help="apply weight decay directly to the weights, as AdamW does")

CATALOGUE: dict[str, OptimizerSpec] = {spec.name: spec for spec in (
    OptimizerSpec("SGD", torch.optim.SGD, (
        _lr(1e-3),
        Hyperparameter("momentum", 0.0, "float", 0.0, 1.0, high_open=True,
                       help="fraction of the previous step kept in the next (heavy ball)"),
        Hyperparameter("dampening", 0.0, "float", 0.0, 1.0,
                       help="scales down the new gradient's share of the momentum buffer"),
        _wd(),
        Hyperparameter("nesterov", False, "bool",
                       help="look ahead along the momentum before taking the gradient "
                            "(needs momentum > 0 and dampening 0)"),
    ), "Stochastic gradient descent: w <- w - lr * grad, optionally with momentum."),
    OptimizerSpec("Adam", torch.optim.Adam, (_lr(1e-3), _betas(), _eps(1e-8), _wd(), _AMSGRAD),
                  "Adaptive moments: steps by the running mean of the gradient over the root "
                  "of the running mean of its square."),
    OptimizerSpec("AdamW", torch.optim.AdamW, (_lr(1e-3), _betas(), _eps(1e-8), _wd(1e-2),
                                               _AMSGRAD),
                  "Adam with weight decay applied to the weights directly (decoupled).",
                  decoupled_weight_decay=True),
    OptimizerSpec("RMSprop", torch.optim.RMSprop, (
        _lr(1e-2),
        Hyperparameter("alpha", 0.99, "float", 0.0, 1.0, high_open=True,
                       help="decay rate of the running average of the squared gradient"),
        _eps(1e-8), _wd(),
        _not_live("momentum", 0.0, "float", 0.0, 1.0, high_open=True,
                  help="momentum on the scaled step", why=BUILT_AT_FIRST_STEP),
        _not_live("centered", False, "bool",
                  help="divide by the gradient's estimated variance rather than its second "
                       "moment", why=BUILT_AT_FIRST_STEP),
    ), "Divides each step by a running root-mean-square of recent gradients."),
    OptimizerSpec("Adagrad", torch.optim.Adagrad, (
        _lr(1e-2),
        Hyperparameter("lr_decay", 0.0, "float", 0.0, None, help="learning-rate decay per step"),
        _wd(),
        _not_live("initial_accumulator_value", 0.0, "float", 0.0, None,
                  help="starting value of the sum of squared gradients",
                  why="PyTorch fills the sum with it when it builds the optimizer."),
        _eps(1e-10),
    ), "Divides each step by the root of the sum of all past squared gradients."),
    OptimizerSpec("Adadelta", torch.optim.Adadelta, (
        _lr(1.0),
        Hyperparameter("rho", 0.9, "float", 0.0, 1.0,
                       help="decay rate of the running averages of squared gradients and steps"),
        _eps(1e-6), _wd(),
    ), "Adagrad with running averages, scaled by the size of recent steps."),
    OptimizerSpec("Adamax", torch.optim.Adamax, (_lr(2e-3), _betas(), _eps(1e-8), _wd()),
                  "Adam with the infinity norm in place of the root mean square."),
    OptimizerSpec("NAdam", torch.optim.NAdam, (
        _lr(2e-3), _betas(), _eps(1e-8), _wd(),
        Hyperparameter("momentum_decay", 4e-3, "float", 0.0, None, log=True,
                       help="how fast the Nesterov momentum schedule warms up"),
        _DECOUPLED,
    ), "Adam with Nesterov momentum."),
    OptimizerSpec("RAdam", torch.optim.RAdam, (_lr(1e-3), _betas(), _eps(1e-8), _wd(),
                                               _DECOUPLED),
                  "Adam that rectifies the variance of its adaptive rate in early steps."),
    OptimizerSpec("Rprop", torch.optim.Rprop, (
        _lr(1e-2, "Rprop reads lr only once, as the starting size of each step; from then on it"
                  " grows and shrinks the step sizes itself."),
        Hyperparameter("etas", (0.5, 1.2), "pair", 0.0, None, low_open=True,
                       help="(shrink, grow) factors of each step size when the gradient's sign "
                            "flips or stays"),
        Hyperparameter("step_sizes", (1e-6, 50.0), "pair", 0.0, None,
                       help="(minimum, maximum) allowed step size"),
    ), "Uses only the sign of the gradient, growing or shrinking each step size."),
    OptimizerSpec("ASGD", torch.optim.ASGD, (
        _lr(1e-2, _ASGD_ETA),
        _not_live("lambd", 1e-4, "float", 0.0, None, log=True, help="decay term", why=_ASGD_ETA),
        _not_live("alpha", 0.75, "float", 0.0, None, help="power for the eta update",
                  why=_ASGD_ETA),
        Hyperparameter("t0", 1e6, "float", 0.0, None, log=True,
                       help="step at which averaging starts"),
        _wd(),
    ), "SGD that also keeps a running average of the iterates."),
    OptimizerSpec("LBFGS", torch.optim.LBFGS, (
        _lr(1.0),
        Hyperparameter("max_iter", 20, "int", 1, 1000,
                       help="inner iterations per optimizer.step()"),
        _not_live("history_size", 100, "int", 1, 1000,
                  help="number of past updates kept to estimate the curvature",
                  why=BUILT_AT_FIRST_STEP),
        Hyperparameter("tolerance_grad", 1e-7, "float", 0.0, None, log=True,
                       help="stop the inner loop when the gradient is this small"),
        Hyperparameter("tolerance_change", 1e-9, "float", 0.0, None, log=True,
                       help="stop the inner loop when the loss or step changes this little"),
        Hyperparameter("line_search_fn", None, "choice", choices=(None, "strong_wolfe"),
                       help="None for fixed steps, or 'strong_wolfe' for a line search"),
    ), "Quasi-Newton: estimates curvature from past gradients; each step runs a closure "
       "several times.", needs_closure=True),
)}


def get_spec(name: str) -> OptimizerSpec:
    """The catalogue entry for a torch.optim class name (case-insensitive)."""
    spec = CATALOGUE.get(name) or {k.lower(): v for k, v in CATALOGUE.items()}.get(name.lower())
    if spec is None:
        raise OptimizerError(f"unknown optimizer {name!r}; available: " + ", ".join(CATALOGUE))
    return spec


MAX_CALL_LENGTH = 500


def parse_optimizer_call(text: str) -> tuple[str, dict[str, Any]]:
    """`Adam(lr=0.05, betas=(0.9, 0.99))` -> ("Adam", {"lr": 0.05, "betas": (0.9, 0.99)}).

    A bare name (`Adam`) means the defaults. The text is parsed into a syntax tree and only
    literal values are read from it; nothing is executed. The result is validated against the
    catalogue. Raises OptimizerError with a message that says what is wrong.
    """
    text = text.strip()
    if len(text) > MAX_CALL_LENGTH:
        raise OptimizerError(f"optimizer text is too long ({len(text)} characters)")
    if not text:
        raise OptimizerError("optimizer is empty; write e.g. Adam(lr=0.01)")
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise OptimizerError(f"cannot read optimizer {text!r}; write it as in PyTorch, "
                             "e.g. SGD(lr=0.01, momentum=0.9)") from None
    if isinstance(tree, ast.Name):
        spec = get_spec(tree.id)
        return spec.name, spec.validate({})
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, (ast.Name, ast.Attribute))):
        raise OptimizerError(f"cannot read optimizer {text!r}; expected a class name with "
                             "keyword arguments, e.g. Adam(lr=0.01)")
    func = tree.func
    name = func.id if isinstance(func, ast.Name) else func.attr
    if isinstance(func, ast.Attribute) and ast.unparse(func.value) not in ("torch.optim", "optim"):
        raise OptimizerError(f"unknown optimizer {ast.unparse(func)!r}")
    spec = get_spec(name)
    if tree.args:
        raise OptimizerError(f"{spec.name}: give hyperparameters by name, e.g. "
                             f"{spec.name}(lr=0.01)")
    values: dict[str, Any] = {}
    for kw in tree.keywords:
        if kw.arg is None:
            raise OptimizerError(f"{spec.name}: **kwargs are not supported")
        if kw.arg in values:  # Python's compiler rejects this too; ast.parse does not
            raise OptimizerError(f"{spec.name}: {kw.arg} is given twice")
        try:
            values[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise OptimizerError(f"{spec.name}: {kw.arg}={ast.unparse(kw.value)} is not a plain "
                                 "value (numbers, True/False, None, strings or pairs)") from None
    return spec.name, spec.validate(values)


def format_optimizer_call(name: str, hyperparameters: dict[str, Any], only_changed: bool = True
                          ) -> str:
    """The inverse of parse_optimizer_call: ("SGD", {"lr": 0.1, ...}) -> "SGD(lr=0.1, ...)"."""
    spec = get_spec(name)
    parts = []
    for h in spec.hyperparameters:
        value = hyperparameters.get(h.name, h.default)
        if only_changed and value == h.default and h.name != "lr":
            continue
        parts.append(f"{h.name}={value!r}")
    return f"{spec.name}({', '.join(parts)})"
