"""A torch.nn model on labelled data as a Problem: prediction = model(data), loss over a batch.

The parameters are `model.named_parameters()` ("0.weight", "0.bias", ...); the loss of step k
is `loss_fn(functional_call(model, params, (X[batch_k],)), y[batch_k])`, so a Run on it is the
textbook loop (zero_grad, loss_fn(model(X), y), backward, step) on the run's own leaves, and
several runs can share one model object without touching its weights.

Batches follow `core.problems.data.MinibatchSampler`'s sequence exactly (one torch.randperm per
epoch from `Generator().manual_seed(seed)`, cut in order; full batch when batch_size is 0 or
>= n), but indexed by step, as `Problem.loss` requires: the permutations drawn so far are kept
(n int64 per epoch), so batch k is the same whenever and however often it is asked for.

Limits (for model mode to settle): buffers (BatchNorm's running statistics) are the module's
own, so runs sharing a problem share them; Dropout draws from torch's global generator.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from core.problems.base import DTYPE, Problem
from core.problems.data import DataError


class ModelProblem(Problem):
    """`model` trained on features X (n, d) and targets y with `loss_fn`, in minibatches of
    `batch_size` rows (0: full batch) drawn from `seed`."""

    def __init__(self, model: nn.Module, X: Tensor, y: Tensor, loss_fn: nn.Module,
                 batch_size: int = 0, seed: int = 0) -> None:
        if len(X) != len(y) or len(X) == 0:
            raise DataError(f"features and targets must have the same, non-zero number of rows "
                            f"(got {len(X)} and {len(y)})")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise DataError(f"the batch size must be a whole number >= 0 (0: full batch), got "
                            f"{batch_size!r}")
        self.model, self.X, self.y, self.loss_fn = model, X, y, loss_fn
        self.n = len(X)
        self.batch_size = self.n if batch_size == 0 or batch_size >= self.n else batch_size
        self.seed = seed
        self.parameter_names = tuple(name for name, _ in model.named_parameters())
        self._initial = {name: p.detach().to(DTYPE).clone()
                         for name, p in model.named_parameters()}
        self._generator = torch.Generator().manual_seed(seed)
        self._orders: list[Tensor] = []

    @property
    def full_batch(self) -> bool:
        return self.batch_size >= self.n

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    def batch(self, step: int) -> Tensor | None:
        """The row indices of step `step`'s minibatch (None: every row)."""
        if self.full_batch:
            return None
        epoch, i = divmod(step, self.batches_per_epoch)
        while len(self._orders) <= epoch:
            self._orders.append(torch.randperm(self.n, generator=self._generator))
        return self._orders[epoch][i * self.batch_size:(i + 1) * self.batch_size]

    def initial_parameters(self) -> dict[str, Tensor]:
        return {name: t.clone() for name, t in self._initial.items()}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self._initial.items()}

    def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
        rows = self.batch(step)
        X, y = (self.X, self.y) if rows is None else (self.X[rows], self.y[rows])
        return self.loss_fn(functional_call(self.model, params, (X,)), y)

    def describe(self) -> dict[str, Any]:
        return {"kind": "model", "model": str(self.model), "rows": self.n,
                "batch_size": 0 if self.full_batch else self.batch_size, "seed": self.seed,
                "loss": type(self.loss_fn).__name__,
                "parameters": {name: list(shape) for name, shape in self.shapes().items()}}
