"""autograd_report(): the lab's result as the CLI prints it (`main.py autograd --json`)."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from core.lab.values import LabError, TensorSpec, format_tensor, nested, parse_assignment
from core.lab.workbench import Lab


def _strict(value: Any) -> Any:
    """Nested lists for strict JSON: non-finite numbers become "nan", "inf" or "-inf"."""
    if isinstance(value, list):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    return value


def _json_tensor(t: Tensor | None) -> Any:
    return None if t is None else _strict(nested(t))


def build_lab(tensors: list[str], expr: str, no_grad: list[str] | None = None) -> Lab:
    """The Lab that `--tensor NAME=VALUE ... --expr EXPR --no-grad NAME` describe."""
    pairs = [parse_assignment(text) for text in tensors]
    if not pairs:
        raise LabError('give at least one --tensor, e.g. --tensor "a=[2., 3.]"')
    names = [name for name, _ in pairs]
    for name in no_grad or []:
        if name not in names:
            raise LabError(f"--no-grad {name}: no tensor is named {name!r} (tensors: "
                           + ", ".join(names) + ")")
    frozen = set(no_grad or [])
    return Lab([TensorSpec(n, v, n not in frozen) for n, v in pairs], expr)


def autograd_report(tensors: list[str], expr: str, gradient: str | None,
                    no_grad: list[str]) -> dict[str, Any]:
    """Q, each input's .grad after backward, each Jacobian and vᵀJ, as plain torch gives them.

    `tensors` are "NAME=VALUE" texts, `gradient` the v of `Q.backward(gradient=v)` (None: plain
    `Q.backward()`, which needs a scalar Q), `no_grad` the names with requires_grad=False.
    Returns {"output": {"value", "shape", "grad_fn"}, "grad": {name: nested list or None},
    "jacobian": {name: nested list}, "vjp": {name: nested list}}; jacobian and vjp cover the
    inputs with requires_grad=True, each Jacobian with torch's shape Q.shape + input.shape.
    Raises LabError (one line) for bad input, and with torch's message and the fix for a vector
    Q without `gradient`.
    """
    lab = build_lab(tensors, expr, no_grad)
    output = lab.output()
    q = lab.q
    if gradient is None:
        result = lab.backward()
        if not result.ok and not output.is_scalar and output.requires_grad:
            ones = format_tensor(lab.ones_gradient())
            message = result.error.split(": ", 1)[-1] if result.error else ""
            raise LabError(f"{message}: {q} has shape {output.shape}, so backward needs v "
                           f"(it computes vᵀJ); pass --gradient with {q}'s shape, e.g. "
                           f"--gradient \"{ones}\"")
        v = lab.ones_gradient()
    else:
        v = lab.parse_gradient(gradient)
        result = lab.backward_with_gradient(v)
    if not result.ok:
        message = result.error.split(": ", 1)[-1] if result.error else ""
        raise LabError(f"{message}: {q} depends on no tensor with requires_grad=True, so "
                       f"backward has no graph to go through (drop --no-grad)")
    return {
        "output": {"value": _json_tensor(output.value), "shape": list(output.shape),
                   "grad_fn": output.grad_fn},
        "grad": {name: _json_tensor(g) for name, g in result.grads.items()},
        "jacobian": {name: _json_tensor(j) for name, j in lab.jacobians().items()},
        "vjp": {name: _json_tensor(t) for name, t in lab.vjp_from_jacobian(v).items()},
    }


def report_table(report: dict[str, Any]) -> str:
    """A short text form of autograd_report()'s result, for the terminal."""
    out = report["output"]
    lines = [f"Q = {out['value']}   shape {tuple(out['shape'])}   grad_fn {out['grad_fn']}", ""]
    width = max([len(n) for n in report["grad"]] + [4])
    lines.append(f"{'name':<{width}}  {'.grad':<28}  vᵀJ (from the Jacobian)")
    for name, grad in report["grad"].items():
        vjp = report["vjp"].get(name, "-")
        lines.append(f"{name:<{width}}  {str(grad):<28}  {vjp}")
    for name, jac in report["jacobian"].items():
        lines.append(f"dQ/d{name} = {jac}")
    return "\n".join(lines)
