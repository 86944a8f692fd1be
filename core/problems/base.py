"""What the engine optimises: a Problem is named float64 parameter tensors and a loss over them.

A Run (core/run.py) makes a leaf tensor of each initial parameter, hands them all, in
`parameter_names` order, to one torch.optim optimizer, and calls `loss(params, step)` for every
forward pass. Nothing in the engine assumes a parameter is a scalar: the surface race is the
problem with the scalars "x" and "y" (core/problems/surface.py), a model's parameters are
`model.named_parameters()`, and a batch of runs puts a leading batch dimension on the same
tensors.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from core.errors import OptimizerError

DTYPE = torch.float64


class Problem(ABC):
    """Named parameter tensors and a differentiable loss over them.

    Subclasses give `parameter_names`, `initial_parameters()` and `loss()`; `scale()` is the
    size information the status rules use (None: judge by the run's own start, core/status.py
    `RelativeScale`), and `describe()` what a session or an export says about the problem.
    """

    #: the parameters' names, in the order the optimizer receives them
    parameter_names: tuple[str, ...] = ()

    @abstractmethod
    def initial_parameters(self) -> dict[str, Tensor]:
        """Fresh float64 tensors (any shape), one per name, where every run starts."""

    @abstractmethod
    def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
        """The scalar loss at `params`. `step` is the number of optimizer steps taken so far:
        a problem that draws minibatches uses it to pick the batch, so every run sees the same
        sequence (and L-BFGS's closure sees the same batch within one step). It must be a
        function of (params, step) alone: the engine may evaluate the same step more than once
        (at a reset it measures the start; after a freeze it takes the gradient again)."""

    def loss_of(self, params: dict[str, Tensor]) -> Callable[[int], Tensor]:
        """The loss at these very tensors as a function of the step, `loss(params, step)`:
        what a Run calls for every forward pass. A problem may prepare something once per set
        of parameters here (ModelProblem: a copy of its module that holds them)."""
        return functools.partial(self.loss, params)

    def scale(self) -> Any | None:
        """What the status rules scale their tolerances by; None for the relative rules."""
        return None

    def describe(self) -> dict[str, Any]:
        """What a session records about the problem (its kind and its parameters' shapes)."""
        return {"kind": type(self).__name__,
                "parameters": {name: list(shape) for name, shape in self.shapes().items()}}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape, by name."""
        return {name: tuple(t.shape) for name, t in self.initial_parameters().items()}

    def check_names(self, names: Any, what: str = "freeze") -> None:
        """Raise OptimizerError (one line) unless every name is one of `parameter_names`."""
        for name in names:
            if name not in self.parameter_names:
                raise OptimizerError(f"cannot {what} {name!r}: the parameters are "
                                     f"{_names_in_words(self.parameter_names)}")


def _names_in_words(names: tuple[str, ...]) -> str:
    if len(names) <= 1:
        return "".join(names) or "none"
    if len(names) <= 8:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:8]) + f", ... ({len(names)} in all)"


def numel(shape: tuple[int, ...]) -> int:
    """The number of elements of a tensor of `shape` (1 for a scalar)."""
    return math.prod(shape)
