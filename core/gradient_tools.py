"""What happens to the gradient between backward() and optimizer.step(): noise, then clipping.

    loss.backward()                       # .grad = the true gradient of the loss
    noise.add(parameters)                 # .grad += sigma * N(0, 1), from the run's own generator
    clipping.clip(parameters)             # torch.nn.utils.clip_grad_norm_ / clip_grad_value_
    optimizer.step()

Why this order: the noise stands in for the error of a minibatch gradient, so it belongs to the
gradient that backward produced, as a minibatch's would; clipping is a guard on the step the
optimizer takes, so it acts last, on the gradient the optimizer actually sees, as it does in a
training loop (where it clips the noisy minibatch gradient). The other order would let noise
undo the guard: a clipped gradient plus noise is not bounded.

`process_gradients` does both in that order and returns what the trajectory should show: the
noise-free gradient, the noisy one, and the norm before and after clipping with a clipped flag.
Parameters without a gradient (frozen: requires_grad=False, so .grad is None) are skipped by
both: they draw no noise, so freezing y changes the noise x gets only in which draws it uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from core.errors import PlaygroundError
from core.optimizers import Hyperparameter


class GradientToolError(PlaygroundError):
    """A bad clipping threshold, noise scale or seed (one line, naming the value)."""


CLIP_NORM = Hyperparameter("clip_norm", None, "float", 0.0, None, low_open=True, log=True,
                           help="clip_grad_norm_: scale the gradient down so its norm is at "
                                "most this (None: no clipping)")
CLIP_VALUE = Hyperparameter("clip_value", None, "float", 0.0, None, low_open=True, log=True,
                            help="clip_grad_value_: clamp each gradient element to "
                                 "[-this, this] (None: no clipping)")
NOISE_SIGMA = Hyperparameter("noise", 0.0, "float", 0.0, None,
                             help="standard deviation of the Gaussian noise added to each "
                                  "gradient element (0: none)")
NOISE_SEED = Hyperparameter("seed", 0, "int", 0, 2**63 - 1,
                            help="seed of the run's own noise generator (the same seed gives "
                                 "the same noise)")
# The settings a run (card, command line, session) exposes, in the catalogue's form.
GRADIENT_SETTINGS = (CLIP_NORM, CLIP_VALUE, NOISE_SIGMA, NOISE_SEED)


def _positive_number(what: str, value: Any, allow_zero: bool = False) -> float:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
    if not ok:
        raise GradientToolError(f"{what} must be a number {'>=' if allow_zero else '>'} 0, "
                                f"got {value!r}")
    return float(value)


def _with_grad(parameters: Iterable[Tensor]) -> list[Tensor]:
    return [p for p in parameters if p.grad is not None]


def total_norm(parameters: Iterable[Tensor], norm_type: float = 2.0) -> float:
    """The norm of all gradients together, as clip_grad_norm_ measures it (torch's own)."""
    grads = [p.grad for p in _with_grad(parameters)]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads, norm_type))


@dataclass(frozen=True)
class ClipResult:
    """What one clipping did: norms of the whole gradient before and after, and whether any
    gradient changed (norm clipping: it was scaled down; value clipping: an element was
    clamped)."""

    norm_before: float
    norm_after: float
    clipped: bool


@dataclass(frozen=True)
class GradientClipping:
    """Clip with torch's own clip_grad_norm_ (kind "norm") or clip_grad_value_ ("value").

    threshold: max_norm or clip_value. norm_type: the norm clip_grad_norm_ uses, and the one the
    result reports (2 for value clipping unless given).
    """

    kind: str
    threshold: float
    norm_type: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in ("norm", "value"):
            raise GradientToolError(f"clipping is 'norm' or 'value', got {self.kind!r}")
        name = "clip_norm" if self.kind == "norm" else "clip_value"
        _positive_number(name, self.threshold)
        if not (self.norm_type == math.inf or (isinstance(self.norm_type, (int, float))
                                               and self.norm_type > 0)):
            raise GradientToolError(f"norm_type must be a number > 0 or inf, "
                                    f"got {self.norm_type!r}")

    def clip(self, parameters: Iterable[Tensor]) -> ClipResult:
        """Clip the gradients in place; parameters with no gradient are left alone."""
        params = _with_grad(parameters)
        if not params:
            return ClipResult(0.0, 0.0, False)
        grads = [p.grad for p in params]
        if self.kind == "norm":
            before = [g.clone() for g in grads]  # type: ignore[union-attr]
            # torch's own total norm, as it measured it to decide the scale
            norm_before = float(torch.nn.utils.clip_grad_norm_(
                params, max_norm=self.threshold, norm_type=self.norm_type))
            # torch always scales, by min(1, max_norm / (norm + 1e-6)): whether that changed
            # the gradient is read from the gradient, not re-derived from torch's formula
            clipped = any(not torch.equal(b, p.grad) for b, p in zip(before, params))
            clipped = clipped and math.isfinite(norm_before)  # NaN != NaN: diverged, not clipped
        else:
            norm_before = total_norm(params, self.norm_type)
            clipped = any(bool((g.abs() > self.threshold).any()) for g in grads)  # type: ignore
            torch.nn.utils.clip_grad_value_(params, clip_value=self.threshold)
        return ClipResult(norm_before, total_norm(params, self.norm_type) if clipped
                          else norm_before, clipped)

    def call_text(self, parameters: str = "parameters") -> str:
        """As PyTorch code, for exports."""
        if self.kind == "norm":
            extra = "" if self.norm_type == 2.0 else f", norm_type={self.norm_type!r}"
            return (f"torch.nn.utils.clip_grad_norm_({parameters}, "
                    f"max_norm={self.threshold!r}{extra})")
        return f"torch.nn.utils.clip_grad_value_({parameters}, clip_value={self.threshold!r})"


def clipping_from_settings(clip_norm: float | None = None, clip_value: float | None = None
                           ) -> GradientClipping | None:
    """The clipping a run's settings ask for, None for none; both at once is refused."""
    if clip_norm is not None and clip_value is not None:
        raise GradientToolError("give clip_norm or clip_value, not both")
    if clip_norm is not None:
        return GradientClipping("norm", clip_norm)
    if clip_value is not None:
        return GradientClipping("value", clip_value)
    return None


@dataclass
class NoiseResult:
    """Per parameter (None where it has no gradient): the gradient before and after noise."""

    clean: list[Tensor | None]
    noisy: list[Tensor | None]


class GradientNoise:
    """Gaussian gradient noise with its own seeded torch.Generator, one per run.

    Each step adds sigma * torch.randn(grad.shape, generator=...) to every gradient, in the
    order of the parameters, so a run is reproducible from (sigma, seed) and independent of the
    global RNG and of other runs. `reset()` starts the sequence again (a run's reset).
    """

    def __init__(self, sigma: float, seed: int = 0) -> None:
        self.sigma = _positive_number("noise", sigma, allow_zero=True)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise GradientToolError(f"seed must be a whole number >= 0, got {seed!r}")
        self.seed = seed
        self.generator = torch.Generator()
        self.reset()

    def reset(self) -> None:
        """Back to the first draw of the seed."""
        self.generator.manual_seed(self.seed)

    def get_state(self) -> Tensor:
        """The generator's state (for sessions that resume mid-run)."""
        return self.generator.get_state()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state)

    def add(self, parameters: Iterable[Tensor]) -> NoiseResult:
        """Add noise to each .grad in place; parameters with no gradient draw nothing."""
        clean: list[Tensor | None] = []
        noisy: list[Tensor | None] = []
        for p in parameters:
            if p.grad is None:
                clean.append(None)
                noisy.append(None)
                continue
            clean.append(p.grad.detach().clone())
            if self.sigma:
                draw = torch.randn(p.grad.shape, generator=self.generator, dtype=p.grad.dtype,
                                   device=p.grad.device)
                p.grad.add_(draw, alpha=self.sigma)
            noisy.append(p.grad.detach().clone())
        return NoiseResult(clean, noisy)

    def call_text(self, parameters: str = "parameters", generator: str = "generator") -> str:
        """The per-step noise as PyTorch code, for exports (the generator is seeded once)."""
        return (f"for p in {parameters}:\n    if p.grad is not None:\n"
                f"        p.grad.add_(torch.randn(p.grad.shape, generator={generator}, "
                f"dtype=p.grad.dtype), alpha={self.sigma!r})")


@dataclass
class GradientStep:
    """What happened to the gradient in one step (see the module docstring for the order).

    clean: each parameter's gradient from backward (None if frozen); noisy: after the noise
    (the same as clean without noise); clip: the clipping's result, None without clipping.
    The gradient left in .grad (what optimizer.step() uses) is noisy, then clipped.
    """

    clean: list[Tensor | None]
    noisy: list[Tensor | None]
    clip: ClipResult | None = None
    noise_added: bool = False


def process_gradients(parameters: Iterable[Tensor], noise: GradientNoise | None = None,
                      clipping: GradientClipping | None = None) -> GradientStep:
    """Noise, then clipping, on the gradients backward() left in .grad."""
    params = list(parameters)
    if noise is not None:
        result = noise.add(params)
        clean, noisy = result.clean, result.noisy
    else:
        clean = [None if p.grad is None else p.grad.detach().clone() for p in params]
        noisy = clean
    clip = clipping.clip(params) if clipping is not None else None
    return GradientStep(clean, noisy, clip, noise_added=bool(noise is not None and noise.sigma))
