"""A torch.nn model on labelled data as a Problem: prediction = model(data), loss over a batch.

The parameters are `model.named_parameters()` ("0.weight", "0.bias", ...); the loss of step k
is `loss_fn(functional_call(model, params, (X[batch_k],)), y[batch_k])`, so a Run on it is the
textbook loop (zero_grad, loss_fn(model(X), y), backward, step) on the run's own leaves, and
several runs can share one model object without touching its weights.

Batches are `core.problems.data.MinibatchSampler`'s sequence (one torch.randperm per epoch from
`Generator().manual_seed(seed)`, cut in order; full batch when batch_size is 0 or >= n), indexed
by step as `Problem.loss` requires (`MinibatchSampler.batch_at`), so batch k is the same
whenever and however often it is asked for, and the same for every run.

Runs sharing a problem share nothing else either:
- buffers (BatchNorm's running statistics) are each run's own: a copy of the model's initial
  buffers is made for a run the first time its parameters are seen (they are keyed by the
  run's first leaf tensor, which a Run keeps until it is reset) and passed to functional_call
  with the parameters, so BatchNorm updates that run's copy in place;
- Dropout draws its masks from torch's generator seeded for the step (`seed` and the step
  number, inside `torch.random.fork_rng`, so the global generator is left as it was): every run
  sees the same mask at step k, as it sees the same batch, and the comparison stays fair.
"""

from __future__ import annotations

import copy
import functools
import weakref
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from core.problems.base import DTYPE, Problem
from core.problems.data import DataError, MinibatchSampler

# Dropout's seed for step k is DROPOUT_SEED_STRIDE * seed + k: distinct per (seed, step).
DROPOUT_SEED_STRIDE = 1_000_003


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
        self.sampler = MinibatchSampler(self.n, batch_size, seed)
        self.batch_size = self.sampler.batch_size
        self.seed = seed
        self.parameter_names = tuple(name for name, _ in model.named_parameters())
        self._initial = {name: p.detach().to(DTYPE).clone()
                         for name, p in model.named_parameters()}
        self._initial_buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        # id(first leaf) -> (a weak reference to it, that run's buffers)
        self._run_buffers: dict[int, tuple[weakref.ref[Tensor], dict[str, Tensor]]] = {}
        self.has_dropout = any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
                               for m in model.modules())

    @functools.cached_property
    def every_parameter_used(self) -> bool:
        """The loss reaches every parameter, at any step: the model is made of torch.nn's own
        layers (no data-dependent paths; any Python of ours could have one) and a backward of
        the first batch's loss gives every parameter a gradient. A Run then keeps each .grad
        in place between steps (core/run.py `Run._flat_leaves`)."""
        if any(not type(m).__module__.startswith("torch.nn.") for m in self.model.modules()):
            return False
        params = {name: t.clone().requires_grad_() for name, t in self._initial.items()}
        if not params:
            return False
        try:
            grads = torch.autograd.grad(self.loss(params, 0), list(params.values()),
                                        allow_unused=True)
        except Exception:  # a loss that fails here fails the runs too, with their message
            return False
        return all(g is not None for g in grads)

    @property
    def full_batch(self) -> bool:
        return self.sampler.full_batch

    @property
    def batches_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch

    def batch(self, step: int) -> Tensor | None:
        """The row indices of step `step`'s minibatch (None: every row)."""
        return None if self.full_batch else self.sampler.batch_at(step)

    def initial_parameters(self) -> dict[str, Tensor]:
        return {name: t.clone() for name, t in self._initial.items()}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(t.shape) for name, t in self._initial.items()}

    def buffers(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """The buffers (BatchNorm's running statistics) of the run whose parameters these are:
        its own copy, made from the model's initial buffers the first time. Empty for a model
        without buffers."""
        if not self._initial_buffers or not params:
            return {}
        leaf = next(iter(params.values()))
        entry = self._run_buffers.get(id(leaf))
        if entry is not None and entry[0]() is leaf:
            return entry[1]
        for key in [k for k, (ref, _) in self._run_buffers.items() if ref() is None]:
            del self._run_buffers[key]  # runs that were reset or removed
        own = {name: b.clone() for name, b in self._initial_buffers.items()}
        self._run_buffers[id(leaf)] = (weakref.ref(leaf), own)
        return own

    def dropout_masks(self, step: int) -> Any:
        """A context in which Dropout draws step `step`'s masks (the same for every run), leaving
        torch's global generator as it was; nothing for a model without Dropout."""
        if not self.has_dropout:
            return nullcontext()
        return _SeededRandom(DROPOUT_SEED_STRIDE * self.seed + step)

    def forward(self, params: dict[str, Tensor], X: Tensor) -> Tensor:
        """model(X) at `params`, with that run's own buffers."""
        buffers = self.buffers(params)
        return functional_call(self.model, {**params, **buffers} if buffers else params, (X,))

    def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
        rows = self.batch(step)
        X, y = (self.X, self.y) if rows is None else (self.X[rows], self.y[rows])
        with self.dropout_masks(step):
            return self.loss_fn(self.forward(params, X), y)

    def loss_of(self, params: dict[str, Tensor]) -> Callable[[int], Tensor]:
        """`loss(params, step)` as a function of the step, for a Run's own leaves: a copy of
        the module whose parameter slots hold those very tensors and whose buffers are that
        run's own (`buffers`), so each forward is a plain `module(X)`. functional_call puts
        the same tensors into the same slots and takes them out again at every call (about
        25 us a step on the small MLP, a fifth of the textbook loop's step): the ops, and so
        every bit of the loss and gradients, are the same. The copy follows the model's train
        / eval modes at each call."""
        if set(params) != set(self.parameter_names):
            return super().loss_of(params)
        own = self.buffers(params)
        # deepcopy with these tensors already "copied": the slots get the tensors themselves
        memo: dict[int, Any] = {id(p): params[name] for name, p in self.model.named_parameters()}
        memo.update({id(b): own[name] for name, b in self.model.named_buffers() if name in own})
        module = copy.deepcopy(self.model, memo)
        modes = list(zip(self.model.modules(), module.modules()))

        def loss_at(step: int) -> Tensor:
            for shared, copied in modes:
                if copied.training is not shared.training:
                    copied.training = shared.training
            rows = None if self.sampler.full_batch else self.sampler.batch_at(step)
            if self.has_dropout:
                with self.dropout_masks(step):
                    if rows is None:
                        return self.loss_fn(module(self.X), self.y)
                    return self.loss_fn(module(self.X[rows]), self.y[rows])
            # without Dropout there is no generator to seed (dropout_masks is a nullcontext)
            if rows is None:
                return self.loss_fn(module(self.X), self.y)
            return self.loss_fn(module(self.X[rows]), self.y[rows])

        return loss_at

    def describe(self) -> dict[str, Any]:
        return {"kind": "model", "model": str(self.model), "rows": self.n,
                "batch_size": 0 if self.full_batch else self.batch_size, "seed": self.seed,
                "loss": type(self.loss_fn).__name__,
                "parameters": {name: list(shape) for name, shape in self.shapes().items()}}


class _SeededRandom:
    """torch's CPU generator seeded with `seed` inside, restored on the way out."""

    def __init__(self, seed: int) -> None:
        self.seed = seed % (2 ** 63)
        self._fork: Any = None

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        self._fork.__exit__(*exc)
