"""Teaching presets for the autograd lab, each with one line of explanation."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.lab.values import TensorSpec
from core.lab.workbench import Lab


@dataclass(frozen=True)
class LabPreset:
    """Tensors, a program and what it teaches; `closed_forms` are .grad by hand, for comparison."""

    name: str
    title: str
    explanation: str
    tensors: tuple[TensorSpec, ...]
    expression: str
    closed_forms: dict[str, str] = field(default_factory=dict)

    def lab(self) -> Lab:
        return Lab(list(self.tensors), self.expression, self.closed_forms)


PRESETS: tuple[LabPreset, ...] = (
    LabPreset(
        "note", "The note: Q = 3a³ - b²",
        "PyTorch's own example: Q is a vector, so Q.backward() needs gradient=v; with v = ones, "
        "a.grad = 9a² and b.grad = -2b.",
        (TensorSpec("a", "[2., 3.]"), TensorSpec("b", "[6., 4.]")),
        "3*a**3 - b**2",
        {"a": "9*a**2 * v", "b": "-2*b * v"}),
    LabPreset(
        "linear", "A linear map: W @ a + b",
        "The Jacobian of W @ a + b with respect to a is W itself, and with respect to b the "
        "identity.",
        (TensorSpec("W", "[[1., 2.], [3., 4.], [5., 6.]]"), TensorSpec("a", "[1., -1.]"),
         TensorSpec("b", "[0.5, 0., -0.5]")),
        "W @ a + b",
        {"a": "W.T @ v", "b": "v"}),
    LabPreset(
        "softmax", "softmax(a): a dense Jacobian",
        "Every output of softmax depends on every input: the Jacobian diag(s) - s sᵀ has no "
        "zeros.",
        (TensorSpec("a", "[1., 2., 3.]"),),
        "softmax(a)"),
    LabPreset(
        "dot", "(a * b).sum(): a scalar",
        "A scalar Q needs no gradient argument: backward starts from 1, and a.grad = b, "
        "b.grad = a.",
        (TensorSpec("a", "[1., 2., 3.]"), TensorSpec("b", "[4., 5., 6.]")),
        "sum(a * b)",
        {"a": "b * v", "b": "a * v"}),
    LabPreset(
        "norm", "norm(a): the length of a vector",
        "The gradient of the Euclidean norm is the unit vector a / |a|: (3, 4) gives (0.6, 0.8).",
        (TensorSpec("a", "[3., 4.]"),),
        "norm(a)",
        {"a": "a / norm(a) * v"}),
    LabPreset(
        "freeze", "Freezing: requires_grad=False on b",
        "b is frozen: autograd does not track it, so after backward b.grad is None and only a "
        "gets a gradient.",
        (TensorSpec("a", "[2., 3.]"), TensorSpec("b", "[6., 4.]", requires_grad=False)),
        "h = a * b; Q = sum(h)",
        {"a": "b * v"}),
)


def get_preset(name: str) -> LabPreset:
    """The preset called `name` (KeyError lists the names)."""
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise KeyError(f"no lab preset {name!r}; presets: " + ", ".join(p.name for p in PRESETS))
