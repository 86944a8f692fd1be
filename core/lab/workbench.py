"""Lab: named tensors + one program -> Q, and every way PyTorch lets a learner call backward.

Each call builds fresh leaf tensors and runs the program again, so one call never leaks
gradients into the next (as a notebook cell run from the top would). What a call returns is a
CallResult: the PyTorch lines it ran, torch's own error if there was one, a line on why, and the
values a learner would print. Jacobians come from `torch.autograd.functional.jacobian`, JVPs from
`torch.func.jvp` (forward mode); nothing here differentiates by hand.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from core.graph import TensorGraph, build_tensor_graph
from core.lab.expression import RESERVED, Program, parse_program, run_program
from core.lab.values import LabError, TensorSpec, check_name, format_tensor, parse_value, shape_text

MAX_TENSORS = 8
MAX_OUTPUT_ELEMENTS = 256  # Q: one backward pass per element for the Jacobian; a readable table

Mode = Literal["grad", "no_grad", "detach"]


@dataclass(frozen=True)
class Output:
    """Q as torch made it: a copy of its value, its shape and `grad_fn` (None: no graph)."""

    value: Tensor
    grad_fn: str | None
    requires_grad: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def is_scalar(self) -> bool:
        return self.value.dim() == 0


@dataclass
class CallResult:
    """One PyTorch call as the lab ran it.

    `code` is the Python a user would type; `error` torch's exception as it prints
    ("RuntimeError: ..."), None when the call ran; `values` the things worth printing, in order,
    label -> tensor (None prints as None); `grads` each input's `.grad` at the end. `steps` keeps
    code, values and the error in the order they happened, for the transcript.
    """

    code: str = ""
    error: str | None = None
    explanation: str = ""
    values: dict[str, Tensor | None] = field(default_factory=dict)
    grads: dict[str, Tensor | None] = field(default_factory=dict)
    steps: list[tuple[str, str]] = field(default_factory=list)  # ("code" | "value" | "error", _)

    @property
    def ok(self) -> bool:
        return self.error is None

    def typed(self, code: str) -> None:
        """Record lines of code, as the user would type them next."""
        self.code = f"{self.code}\n{code}" if self.code else code
        self.steps.append(("code", code))

    def printed(self, label: str, value: Tensor | None) -> None:
        """Record a value the user would print at this point."""
        self.values[label] = None if value is None else value.detach().clone()
        self.steps.append(("value", label))

    def raised(self, e: BaseException) -> None:
        """Record torch's exception at this point."""
        self.error = _error_text(e)
        self.steps.append(("error", self.error))

    def text(self) -> str:
        """A transcript: each piece of code as typed at a prompt, what it printed, then why."""
        lines: list[str] = []
        for kind, item in self.steps:
            if kind == "code":
                lines += [("... " if ln.startswith(" ") else ">>> ") + ln
                          for ln in item.splitlines()]
            elif kind == "value":
                value = self.values[item]
                lines.append(f"{item} = {'None' if value is None else format_tensor(value)}")
            else:
                lines.append(item)
        if self.explanation:
            lines += ["", self.explanation]
        return "\n".join(lines)


def _error_text(e: BaseException) -> str:
    message = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {message}"


class Lab:
    """The tensors and the program of one lab; every method recomputes from fresh leaves.

    Raises LabError on construction for a bad tensor, a bad program (with its column) or a
    program torch cannot run on these tensors (shapes that do not broadcast, ...).
    """

    def __init__(self, tensors: list[TensorSpec], expression: str,
                 closed_forms: Mapping[str, str] | None = None) -> None:
        if len(tensors) > MAX_TENSORS:
            raise LabError(f"at most {MAX_TENSORS} tensors (got {len(tensors)}); remove "
                           f"{len(tensors) - MAX_TENSORS}")
        names: list[str] = []
        for spec in tensors:
            name = check_name(spec.name, RESERVED)
            if name == "v":  # the closed forms and the calls shown use v for backward's gradient
                raise LabError("'v' is the gradient of Q.backward(gradient=v) here; pick "
                               "another tensor name")
            if name in names:
                raise LabError(f"two tensors are named {name!r}")
            names.append(name)
            parse_value(spec.text, what=name)  # each tensor's own error first
        self.specs = [TensorSpec(n, s.text, s.requires_grad) for n, s in zip(names, tensors)]
        self._jacobians: dict[str, Tensor] | None = None
        self._outputs: dict[Mode, Output] = {}
        self.program: Program = parse_program(expression, names)
        self.closed_forms = {k: parse_program(text, [*names, "v"])
                             for k, text in (closed_forms or {}).items()}
        output = self.output()
        if output.value.numel() > MAX_OUTPUT_ELEMENTS:
            raise LabError(f"{self.q} has {output.value.numel()} elements (shape "
                           f"{output.shape}); the lab shows at most {MAX_OUTPUT_ELEMENTS}")

    def program_lines(self) -> list[str]:
        """The program as Python lines, the output assigned to its name: ['Q = 3*a**3 - b**2']."""
        # ';' only ever separates statements (the grammar has no strings), so splitting is exact.
        lines = [part.strip() for part in self.program.text.split(";") if part.strip()]
        if self.program.statements[-1].target is None:
            lines[-1] = f"{self.q} = {lines[-1]}"
        return lines

    def torch_code(self) -> str:
        """The whole lab as PyTorch code a user can run: the tensors, then Q."""
        from core.lab.expression import torch_lines
        from core.lab.values import torch_code

        lines = ["import torch"] + [torch_code(s) for s in self.specs]
        return "\n".join(lines + torch_lines(self.program, self.leaves(), self.q))

    # --- names -------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    @property
    def q(self) -> str:
        """The output's name in the code shown (Q unless the last statement names it)."""
        return self.program.output_name

    @property
    def trainable(self) -> list[str]:
        """Inputs with requires_grad=True: the ones autograd differentiates."""
        return [s.name for s in self.specs if s.requires_grad]

    @property
    def intermediates(self) -> list[str]:
        return self.program.intermediates

    # --- the forward pass ---------------------------------------------------------------------

    def leaves(self) -> dict[str, Tensor]:
        """Fresh leaf tensors, one per spec."""
        return {s.name: s.make() for s in self.specs}

    def forward(self, mode: Mode = "grad") -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor]]:
        """(leaves, Q, intermediates) from fresh leaves; no_grad or detach drops the graph."""
        leaves = self.leaves()
        if mode == "no_grad":
            with torch.no_grad():
                q, inter = run_program(self.program, leaves)
        else:
            q, inter = run_program(self.program, leaves)
            if mode == "detach":
                q = q.detach()
        return leaves, q, inter

    def output(self, mode: Mode = "grad") -> Output:
        """Q's value, shape and grad_fn (computed once per mode; the value is a fresh copy)."""
        # A redraw asks for Q's value and shape a dozen times; a Lab never changes, so one
        # forward pass per mode answers them all (a 1000-token program is ~4 ms a pass).
        if mode not in self._outputs:
            _, q, _ = self.forward(mode)
            self._outputs[mode] = Output(q.detach().clone(),
                                         q.grad_fn.name() if q.grad_fn else None,
                                         q.requires_grad)
        out = self._outputs[mode]
        return Output(out.value.clone(), out.grad_fn, out.requires_grad)

    def _function(self) -> Callable[..., Tensor]:
        """Q as a function of the trainable inputs (the others are constants), for jacobian/jvp."""
        constants = {s.name: s.make().detach() for s in self.specs if not s.requires_grad}
        names = self.trainable

        def q_of(*xs: Tensor) -> Tensor:
            return run_program(self.program, {**constants, **dict(zip(names, xs))})[0]

        return q_of

    # --- v and tangents -------------------------------------------------------------------------

    def ones_gradient(self) -> Tensor:
        """torch.ones_like(Q): the default v."""
        return torch.ones_like(self.output().value)

    def parse_gradient(self, text: str | None) -> Tensor:
        """v from text (None or blank: ones), checked to have Q's shape."""
        if text is None or not text.strip():
            return self.ones_gradient()
        v = parse_value(text, what="v")
        shape = self.output().shape
        if tuple(v.shape) != shape:
            raise LabError(f"v has shape {tuple(v.shape)} but {self.q} has shape {shape}: "
                           f"gradient=v must have {self.q}'s shape")
        return v

    def parse_tangents(self, texts: Mapping[str, str]) -> dict[str, Tensor]:
        """A tangent per trainable input (blank: ones), each with its input's shape."""
        leaves = self.leaves()
        tangents = {}
        for name in self.trainable:
            text = texts.get(name, "")
            if not text.strip():
                tangents[name] = torch.ones_like(leaves[name]).detach()
                continue
            t = parse_value(text, what=f"tangent of {name}")
            if t.shape != leaves[name].shape:
                raise LabError(f"the tangent of {name} has shape {tuple(t.shape)}; {name} has "
                               f"shape {tuple(leaves[name].shape)}")
            tangents[name] = t
        return tangents

    # --- the calls -------------------------------------------------------------------------------

    def _grads(self, leaves: Mapping[str, Tensor]) -> dict[str, Tensor | None]:
        return {n: (t.grad.clone() if t.grad is not None else None) for n, t in leaves.items()}

    def _frozen_note(self) -> str:
        frozen = [s.name for s in self.specs if not s.requires_grad]
        if not frozen:
            return ""
        names = ", ".join(frozen)
        return (f" {names} {'has' if len(frozen) == 1 else 'have'} requires_grad=False: "
                f"autograd does not track {'it' if len(frozen) == 1 else 'them'}, so its .grad "
                f"stays None.")

    def _grad_values(self, grads: Mapping[str, Tensor | None]) -> dict[str, Tensor | None]:
        return {f"{n}.grad": g for n, g in grads.items()}

    def backward(self) -> CallResult:
        """`Q.backward()`: the gradients for a scalar Q; torch's error for a vector Q."""
        q = self.q
        result = CallResult()
        leaves, out, _ = self.forward()
        result.typed(f"{q}.backward()")
        try:
            out.backward()
        except RuntimeError as e:
            result.raised(e)
            if out.dim() > 0 and out.requires_grad:
                result.explanation = (
                    f"{q} has shape {shape_text(out)}, not a scalar. backward() computes a "
                    f"vector-Jacobian product vᵀJ, never J itself, so for a vector {q} it needs "
                    f"v: call {q}.backward(gradient=v) with v of {q}'s shape "
                    f"(torch.ones_like({q}) gives the gradient of {q}.sum()).")
            else:
                result.explanation = _no_graph_note(q)
            result.grads = self._grads(leaves)
            return result
        result.grads = self._grads(leaves)
        self._print_grads(result)
        result.explanation = (f"{q} is a scalar, so backward starts from d{q}/d{q} = 1 and each "
                              f"input's .grad is d{q}/d(input)." + self._frozen_note())
        return result

    def _print_grads(self, result: CallResult, suffix: str = "") -> None:
        for name, grad in result.grads.items():
            result.typed(f"{name}.grad")
            result.printed(f"{name}.grad{suffix}", grad)

    def backward_with_gradient(self, v: Tensor | None = None) -> CallResult:
        """`Q.backward(gradient=v)`: the grads next to vᵀJ from the full Jacobian (equal)."""
        q = self.q
        v = self.ones_gradient() if v is None else v
        result = CallResult()
        result.typed(f"v = torch.tensor({format_tensor(v)})\n{q}.backward(gradient=v)")
        leaves, out, _ = self.forward()
        try:
            out.backward(gradient=v)
        except RuntimeError as e:
            result.raised(e)
            result.explanation = _no_graph_note(q) if not out.requires_grad else ""
            result.grads = self._grads(leaves)
            return result
        result.grads = self._grads(leaves)
        vjps = self.vjp_from_jacobian(v)
        closed = self.closed_form_values(v)
        agree = []
        for name, grad in result.grads.items():
            result.typed(f"{name}.grad")
            result.printed(f"{name}.grad", grad)
            if name in vjps:
                result.printed(f"vᵀJ for {name}", vjps[name])
                # .grad stays None for an input Q does not use: its vᵀJ is zeros, which agrees
                agree.append(bool(torch.allclose(grad, vjps[name])) if grad is not None
                             else not bool(vjps[name].any()))
            if name in closed:
                result.printed(self.closed_form_label(name), closed[name])
        verdict = "equal" if all(agree) else "NOT equal"
        result.explanation = (f"backward sends v back through the graph: each .grad is vᵀJ, "
                              f"the row vector v times the Jacobian of {q} for that input "
                              f"({verdict} to vᵀJ computed from the full Jacobian)."
                              + self._frozen_note())
        return result

    def sum_backward(self) -> CallResult:
        """`Q.sum().backward()`, beside `Q.backward(gradient=torch.ones_like(Q))`: equal."""
        q = self.q
        result = CallResult()
        result.typed(f"{q}.sum().backward()")
        leaves, out, _ = self.forward()
        try:
            out.sum().backward()
        except RuntimeError as e:
            result.raised(e)
            result.explanation = _no_graph_note(q)
            result.grads = self._grads(leaves)
            return result
        result.grads = self._grads(leaves)
        ones = self.backward_with_gradient(self.ones_gradient()).grads
        same = all((g is None and ones[n] is None) or (g is not None and ones[n] is not None
                                                         and torch.allclose(g, ones[n]))
                   for n, g in result.grads.items())
        for name, grad in result.grads.items():
            result.typed(f"{name}.grad")
            result.printed(f"{name}.grad", grad)
            result.printed(f"{name}.grad with gradient=torch.ones_like({q})", ones[name])
        result.explanation = (f"{q}.sum() = 1ᵀ{q}, so its gradient is 1ᵀJ: the same as "
                              f"{q}.backward(gradient=torch.ones_like({q}))"
                              + (" (equal here)." if same else " (but NOT equal here).")
                              + self._frozen_note())
        return result

    def _backward_call(self, out: Tensor, retain_graph: bool = False) -> str:
        args = [] if out.dim() == 0 else ["gradient=v"]
        if retain_graph:
            args.append("retain_graph=True")
        return f"{self.q}.backward({', '.join(args)})"

    def backward_twice(self, retain_graph: bool, v: Tensor | None = None) -> CallResult:
        """Backward twice: torch's error without retain_graph; with it, .grad accumulates."""
        q = self.q
        v = self.ones_gradient() if v is None else v
        leaves, out, _ = self.forward()
        gradient = None if out.dim() == 0 else v
        result = CallResult()
        setup = "" if out.dim() == 0 else f"v = torch.tensor({format_tensor(v)})\n"
        result.typed(setup + self._backward_call(out, retain_graph))
        try:
            out.backward(gradient=gradient, retain_graph=retain_graph)
        except RuntimeError as e:
            result.raised(e)
            result.explanation = _no_graph_note(q)
            result.grads = self._grads(leaves)
            return result
        result.grads = self._grads(leaves)
        self._print_grads(result, " after the 1st backward")
        result.typed(self._backward_call(out))
        try:
            out.backward(gradient=gradient)
        except RuntimeError as e:
            result.raised(e)
            result.grads = self._grads(leaves)
            result.explanation = (
                "The first backward freed the tensors the graph saved for it (a**3 keeps a, "
                f"for example); pass retain_graph=True to the first call to backward through "
                f"{q}'s graph again.")
            return result
        result.grads = self._grads(leaves)
        self._print_grads(result, " after the 2nd backward")
        if not retain_graph:
            result.explanation = (
                f"No error: no operation in {q}'s graph saved a tensor for backward (+, - and "
                "sum need none), so nothing was freed. .grad accumulated: it doubled.")
            return result
        for name in self.trainable:
            grad = leaves[name].grad
            if grad is not None:
                grad.zero_()
            result.typed(f"{name}.grad.zero_()\n{name}.grad")
            result.printed(f"{name}.grad after {name}.grad.zero_()", grad)
        for name in self.trainable:
            leaves[name].grad = None
            result.typed(f"{name}.grad = None\n{name}.grad")
            result.printed(f"{name}.grad after {name}.grad = None", leaves[name].grad)
        result.grads = self._grads(leaves)
        result.explanation = (
            "With retain_graph=True the graph survives the first backward, and the second one "
            "adds into .grad: gradients accumulate (twice the first). That is why training loops "
            "call optimizer.zero_grad(), which sets .grad to None by default (or zero_()).")
        return result

    def retain_grad(self, name: str, v: Tensor | None = None) -> CallResult:
        """`.grad` of a named intermediate: None without retain_grad(), its gradient with it."""
        if name not in self.intermediates:
            known = ", ".join(self.intermediates) or "none: name one with h = ...; Q = ..."
            raise LabError(f"{name!r} is not an intermediate; intermediates: {known}")
        q = self.q
        v = self.ones_gradient() if v is None else v
        leaves, out, inter = self.forward()
        call = self._backward_call(out)
        gradient = None if out.dim() == 0 else v
        setup = "" if out.dim() == 0 else f"v = torch.tensor({format_tensor(v)})\n"
        result = CallResult()
        result.typed(f"{setup}{call}\n{name}.grad")
        try:
            out.backward(gradient=gradient)
        except RuntimeError as e:
            result.raised(e)
            result.explanation = _no_graph_note(q)
            return result
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            without = inter[name].grad
        result.printed(f"{name}.grad without retain_grad()", without)
        leaves, out, inter = self.forward()
        result.typed(f"# again, from fresh tensors:\n{name}.retain_grad()\n{call}\n{name}.grad")
        try:
            inter[name].retain_grad()
            out.backward(gradient=gradient)
        except RuntimeError as e:
            result.raised(e)
            result.explanation = (f"{name} does not require grad (it depends on no tensor with "
                                  f"requires_grad=True), so there is nothing to retain.")
            return result
        result.printed(f"{name}.grad with retain_grad()", inter[name].grad)
        result.grads = self._grads(leaves)
        torch_warning = str(caught[0].message).split(". ")[0] + "." if caught else ""
        grad_fn = inter[name].grad_fn.name() if inter[name].grad_fn else None
        result.explanation = (
            f"{name} is not a leaf (grad_fn {grad_fn}): "
            f"backward passes its gradient on to the leaves and does not keep it unless "
            f"{name}.retain_grad() was called. torch warns: {torch_warning}").strip()
        return result

    def no_grad(self) -> CallResult:
        """`with torch.no_grad()`: Q has no grad_fn, and backward fails with torch's error."""
        return self._without_graph("no_grad")

    def detach(self) -> CallResult:
        """`Q.detach()`: the same value, no grad_fn, and backward fails with torch's error."""
        return self._without_graph("detach")

    def _without_graph(self, mode: Mode) -> CallResult:
        q = self.q
        leaves, out, _ = self.forward(mode)
        lines = self.program_lines()
        if mode == "no_grad":
            code = "with torch.no_grad():\n" + "\n".join("    " + ln for ln in lines)
        else:
            code = "\n".join(lines) + f"\n{q} = {q}.detach()"
        result = CallResult()
        result.typed(f"{code}\n{q}")
        result.printed(q, out)
        result.typed(f"{q}.grad_fn")
        result.printed(f"{q}.grad_fn", None)
        result.typed(f"{q}.backward()" if out.dim() == 0 else
                     f"{q}.backward(gradient=torch.ones_like({q}))")
        try:
            out.backward(gradient=None if out.dim() == 0 else torch.ones_like(out))
        except RuntimeError as e:
            result.raised(e)
        result.grads = self._grads(leaves)
        how = "inside torch.no_grad() autograd records nothing" if mode == "no_grad" else \
            "detach() returns the same numbers cut off from the graph"
        result.explanation = (f"{q}.grad_fn is {out.grad_fn}: {how}, so {q} has no graph to "
                              f"go back through and backward fails. Use this for evaluation, "
                              f"not for training.")
        return result

    # --- the autograd graph ---------------------------------------------------------------------

    def graph(self, v: Tensor | None = None, max_nodes: int | None = None) -> TensorGraph:
        """Q's autograd graph for Q.backward(gradient=v) (v None: ones for a vector Q, nothing
        for a scalar one): each node's value, what backward sent along each edge, its order.
        More than `max_nodes` autograd nodes: only counted (TensorGraph.too_big)."""
        if v is None and not self.output().is_scalar:
            v = self.ones_gradient()
        return build_tensor_graph(lambda env: run_program(self.program, env)[0], self.leaves(),
                                  v, q=self.q, max_nodes=max_nodes)

    # --- Jacobian, VJP, JVP --------------------------------------------------------------------

    def jacobians(self) -> dict[str, Tensor]:
        """dQ/d(input) for each trainable input, with torch's shape Q.shape + input.shape."""
        # A Lab never changes after construction, so its Jacobians are computed once: one
        # backward pass per element of Q, and a redraw reads them three times.
        if self._jacobians is None:
            names = self.trainable
            leaves = self.leaves()
            xs = tuple(leaves[n].detach() for n in names)
            jac = torch.autograd.functional.jacobian(self._function(), xs) if names else ()
            self._jacobians = {n: j.detach() for n, j in zip(names, jac)}
        return {n: j.clone() for n, j in self._jacobians.items()}

    def jacobian_matrices(self) -> dict[str, tuple[Tensor, list[str], list[str]]]:
        """Each Jacobian as a 2-D matrix with row labels Q[i] and column labels a[j]."""
        out_shape = self.output().shape
        leaves = self.leaves()
        result = {}
        for name, jac in self.jacobians().items():
            in_shape = tuple(leaves[name].shape)
            matrix = jac.reshape(_numel(out_shape), _numel(in_shape))
            result[name] = (matrix, _labels(self.q, out_shape), _labels(name, in_shape))
        return result

    def vjp_from_jacobian(self, v: Tensor | None = None) -> dict[str, Tensor]:
        """vᵀJ for each trainable input, from the full Jacobian (a check on backward)."""
        v = self.ones_gradient() if v is None else v
        leaves = self.leaves()
        result = {}
        for name, (matrix, _, _) in self.jacobian_matrices().items():
            result[name] = (v.reshape(1, -1) @ matrix).reshape(leaves[name].shape)
        return result

    def jvp(self, tangents: Mapping[str, Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(Q, J·t by torch.func.jvp in forward mode, J·t from the full Jacobian)."""
        names = self.trainable
        leaves = self.leaves()
        out_shape = self.output().shape
        if not names:
            zero = torch.zeros(out_shape, dtype=torch.float64)
            return self.output().value, zero, zero
        tangents = dict(tangents or {})
        ts = tuple(tangents.get(n, torch.ones_like(leaves[n].detach())) for n in names)
        primals = tuple(leaves[n].detach() for n in names)
        with warnings.catch_warnings():
            # torch.func's first jvp scripts a helper of torch's own and warns that
            # torch.jit.script is deprecated: torch's internals, nothing the user did.
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                                    category=DeprecationWarning)
            value, forward = torch.func.jvp(self._function(), primals, ts)
        from_jacobian = torch.zeros(_numel(out_shape), dtype=torch.float64)
        for t, (matrix, _, _) in zip(ts, self.jacobian_matrices().values()):
            from_jacobian = from_jacobian + matrix @ t.reshape(-1)
        return value.detach(), forward.detach(), from_jacobian.reshape(out_shape)

    # --- the note's closed forms and the shapes -----------------------------------------------

    def closed_form_text(self, name: str) -> str:
        return self.closed_forms[name].text

    def closed_form_label(self, name: str) -> str:
        """The label of `name`'s closed form in backward_with_gradient()'s values."""
        return f"closed form {self.closed_form_text(name)}"

    def closed_form_values(self, v: Tensor | None = None) -> dict[str, Tensor]:
        """The preset's closed forms for .grad (e.g. 9*a**2 * v), evaluated on the inputs."""
        if not self.closed_forms:
            return {}
        v = self.ones_gradient() if v is None else v
        env = {n: t.detach() for n, t in self.leaves().items()} | {"v": v}
        return {n: run_program(p, env)[0] for n, p in self.closed_forms.items()
                if n in self.trainable}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every tensor in play: inputs, intermediates, Q, v, each Jacobian."""
        leaves, out, inter = self.forward()
        shapes = {n: tuple(t.shape) for n, t in leaves.items()}
        shapes |= {n: tuple(t.shape) for n, t in inter.items()}
        shapes[self.q] = tuple(out.shape)
        shapes["v"] = tuple(out.shape)
        for name in self.trainable:
            shapes[f"d{self.q}/d{name}"] = tuple(out.shape) + tuple(leaves[name].shape)
        return shapes


def _no_graph_note(q: str) -> str:
    return (f"{q} has no grad_fn: nothing it depends on has requires_grad=True (or the graph was "
            f"dropped), so there is nothing for backward to go through.")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """Q[0], Q[1], ... or W[0, 1], ...; a scalar is just its name."""
    if not shape:
        return [name]
    labels = [""]
    for size in shape:
        labels = [f"{prefix}{', ' if prefix else ''}{i}" for prefix in labels for i in range(size)]
    return [f"{name}[{label}]" for label in labels]
