"""Many runs stepped as one batch: N starts (or N settings) of one torch.optim optimizer at once.

x and y are float64 tensors of shape (n,) per param group, and the loss is the sum over the
batch. Every operation of the formula grammar is element-wise, so the gradient of the sum is each
element's own gradient, and the element-wise optimizers (ELEMENTWISE: SGD, Adam, AdamW, RMSprop,
Adagrad, Adadelta, Adamax, NAdam, RAdam, Rprop, ASGD) update each element exactly as they update
the scalar leaves of a single `core.run.Run`: their per-tensor state (Adam's `step`, ASGD's `eta`
and `mu`, NAdam's `mu_product`) depends only on the step count, which all elements share. Tests
check it bit for bit against single Runs (point, loss, status, converged_at, diverged_at).

The optimizers are built exactly as `Run` builds its own (no `foreach` argument: on CPU torch then
picks its single-tensor implementation for both), unless the caller asks for `foreach`; a batch
of many param groups holds several optimizers of the same class (GROUPS_PER_OPTIMIZER groups
each), which step exactly as one would, since groups share nothing.

Different hyperparameters in one batch are separate param groups, each with its own x and y
leaves (one group per setting; a group holds one or many starts). The leaves of all groups are
views into one buffer, so the whole batch is read and written in one operation. Many small
groups (a sweep) are packed: one (n, 2) leaf of x and y per group (PACK_MAX_GROUP), which halves
the tensors torch loops over, wherever that cannot change a number (tested for every optimizer).

L-BFGS shares one curvature history and one line search across all its parameters: batched, the
elements would steer each other. It is refused (LBFGS_REFUSED); run it start by start.

Status per element follows `core.status`'s rules (its constants and `surface_scale`), evaluated
on arrays after every step, in the same order as `Run._evaluate_and_record`. A diverged element
is masked: after every optimizer step its x and y are written back to its last recorded point
(torch's update for it is computed and discarded; element-wise optimizers never mix elements,
so the others are unaffected, which a test checks bit for bit) and its record stops.

Memory is bounded: per element only the last point, loss, gradient and the status counters are
kept, not trajectories; `paths` asks for the trajectories of a few chosen elements.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from core.errors import PlaygroundError
from core.optimizers import OptimizerSpec, get_spec
from core.status import (CONVERGENCE_WINDOW, DIVERGENCE_WINDOW, HOPELESS_K, LOSS_K, REGION_K,
                         SurfaceScale, surface_scale)
from core.surfaces import DTYPE, Surface

ELEMENTWISE = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
               "RAdam", "Rprop", "ASGD")
LBFGS_REFUSED = ("L-BFGS shares one history and line search across the batch; run it start by "
                 "start")

PACK_MAX_GROUP = 16  # groups of at most this many starts share one (n, 2) leaf of x and y
# Param groups per torch optimizer: Optimizer.add_param_group checks a new group against every
# parameter already held, so one optimizer of n groups takes O(n^2) to build (8.5 s of a 64 x 64
# map's 24 s). Groups never share state, so chunks of this many, each its own optimizer of the
# same class, step exactly as one would (tested).
GROUPS_PER_OPTIMIZER = 128

# What a status code means (the `status` array holds these indices).
STATUSES = ("running", "converged", "frozen", "diverged")
RUNNING, CONVERGED, FROZEN, DIVERGED = range(4)

# Why an element diverged (the `reason` array holds these indices; 0: it did not).
REASONS = ("", "the point became non-finite",
           f"the point went more than {HOPELESS_K:g} times the region's size outside it",
           "the loss became non-finite", "the gradient became non-finite",
           "it stayed far outside the region without a lower loss: not coming back",
           "the loss exploded", "the surface falls away without bound out there",
           "optimizer.step() failed", "evaluating the surface failed")
(NOT_DIVERGED, NONFINITE_POINT, PAST_WALL, NONFINITE_LOSS, NONFINITE_GRAD, FAR_AWAY, EXPLODED,
 FELL_AWAY, STEP_FAILED, EVALUATION_FAILED) = range(len(REASONS))


_threads_lock = threading.Lock()
_threads_users = 0  # callers inside one_torch_thread() now, over all threads
_threads_outer = 0  # the count the first of them found, restored by the last


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside, and put the count back after.

    On this 2-core machine a 65536-start batch step took 30-50x longer on two threads than on
    one whenever another process held a core: an element-wise op waits for its slowest thread.
    The results are the same on one thread (every op of the batch is element-wise).

    torch's OpenMP build (its CPU wheels) keeps the count per calling thread, and also in one
    process-wide value that a thread reads when it first uses torch; other backends keep it
    process-wide. So the callers are counted under a lock: the last one out restores the count
    the first one in found (so overlapping Jobs on worker threads never leave the process on one
    thread), and with OpenMP each caller that leaves earlier restores its own thread's count
    (which cannot change another thread's), while with a process-wide count it leaves it at one
    for the callers still inside.
    """
    global _threads_users, _threads_outer
    with _threads_lock:
        before = torch.get_num_threads()
        if _threads_users == 0:
            _threads_outer = before
        _threads_users += 1
        torch.set_num_threads(1)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_outer)
            elif _per_thread_count():
                torch.set_num_threads(before)


def _per_thread_count() -> bool:
    """Whether torch keeps the intra-op thread count per thread (its OpenMP backend)."""
    global _PER_THREAD
    if _PER_THREAD is None:
        _PER_THREAD = "parallel backend: OpenMP" in torch.__config__.parallel_info()
    return _PER_THREAD


_PER_THREAD: bool | None = None


class BatchError(PlaygroundError):
    """A batch that cannot be built: an optimizer that couples elements, bad starts or settings."""


class BatchCancelled(Exception):
    """The caller's state asked to stop."""


class ProgressState(Protocol):
    """What a long batch reports to and asks of its caller (gui/worker.JobState fits)."""

    def set_progress(self, fraction: float) -> None: ...

    def is_interruption_requested(self) -> bool: ...


@dataclass
class BatchResult:
    """Per element, copied numpy arrays (n,): where each run ended and how.

    final_x, final_y, final_loss: the last recorded point and its loss (the start and NaN if
    even the start could not be evaluated); grad_norm: |grad f| there over the free coordinates;
    status: an index into STATUSES; steps: optimizer steps taken (the step count of a diverged
    element is its diverged_at, as for a Run); converged_at, diverged_at: -1 for None; reason: an
    index into REASONS. paths: for the elements asked for, arrays (k, 4) of step, x, y, loss.
    """

    final_x: np.ndarray
    final_y: np.ndarray
    final_loss: np.ndarray
    grad_norm: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    converged_at: np.ndarray
    diverged_at: np.ndarray
    reason: np.ndarray
    paths: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.final_x.shape[0])

    def status_names(self) -> list[str]:
        return [STATUSES[s] for s in self.status]

    def steps_to_converge(self) -> list[int | None]:
        """converged_at per element, None where it has not converged (the JSON's value)."""
        return [None if c < 0 else int(c) for c in self.converged_at]


def check_batchable(spec: OptimizerSpec) -> None:
    """Raise BatchError unless the optimizer updates each element on its own."""
    if spec.needs_closure:
        raise BatchError(LBFGS_REFUSED)
    if spec.name not in ELEMENTWISE:
        raise BatchError(f"{spec.name} is not known to update each element on its own; "
                         "run it start by start")


def far_boxes(scale: SurfaceScale, sx: np.ndarray, sy: np.ndarray, k: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SurfaceScale.far_box for many starts at once (the same min/max, as arrays)."""
    margin = k * scale.span
    return (np.minimum(scale.x_range[0], sx) - margin, np.maximum(scale.x_range[1], sx) + margin,
            np.minimum(scale.y_range[0], sy) - margin, np.maximum(scale.y_range[1], sy) + margin)


def _inside(box: tuple[np.ndarray, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (box[0] <= x) & (x <= box[1]) & (box[2] <= y) & (y <= box[3])


class BatchRun:
    """One optimizer class stepping many runs at once; each element as its own `Run` would.

    groups: a sequence of (hyperparameters, starts), starts an array (n, 2) of x, y; each group
    is one torch param group. Elements are numbered in group order. frozen: coordinates frozen
    in every element. paths: element indices whose trajectories are kept. foreach: passed to the
    optimizer when not None (None: torch's default, as `Run`). dtype: float64 (exact, as `Run`)
    or float32 when the caller allows it.
    """

    def __init__(self, surface: Surface, optimizer: str,
                 groups: Sequence[tuple[dict[str, Any] | None, Any]],
                 frozen: Sequence[str] = (), paths: Sequence[int] = (),
                 grad_tolerance: float | None = None, move_tolerance: float | None = None,
                 window: int = CONVERGENCE_WINDOW, foreach: bool | None = None,
                 dtype: torch.dtype = DTYPE) -> None:
        self.spec = get_spec(optimizer)
        check_batchable(self.spec)
        for c in frozen:
            if c not in ("x", "y"):
                raise BatchError(f"cannot freeze {c!r}: the parameters are x and y")
        if not groups:
            raise BatchError("a batch needs at least one group of starts")
        self.surface = surface
        self.frozen = frozenset(frozen)
        self.dtype = dtype
        validated: dict[str, dict[str, Any]] = {}  # equal settings are checked once
        settings, starts = [], []
        for hyperparameters, group_starts in groups:
            key = repr(sorted((hyperparameters or {}).items()))
            if key not in validated:
                validated[key] = self.spec.validate(hyperparameters)
            settings.append(validated[key])
            array = np.asarray(group_starts, dtype=np.float64).reshape(-1, 2)
            if array.shape[0] == 0:
                raise BatchError("a group of the batch has no starts")
            if not np.isfinite(array).all():
                raise BatchError("every start must be finite")
            starts.append(array)
        self.hyperparameters: list[dict[str, Any]] = settings
        self.sizes = [a.shape[0] for a in starts]
        all_starts = np.concatenate(starts)
        self.n = int(all_starts.shape[0])
        for i in paths:
            if not 0 <= i < self.n:
                raise BatchError(f"path index {i} is outside the batch of {self.n}")
        self.start_x = all_starts[:, 0].copy()
        self.start_y = all_starts[:, 1].copy()
        scale = surface_scale(surface)
        self._scale = scale
        self.grad_tolerance = scale.grad_tolerance if grad_tolerance is None else grad_tolerance
        self.move_tolerance = scale.move_tolerance if move_tolerance is None else move_tolerance
        self.window = window
        self._far = far_boxes(scale, self.start_x, self.start_y, REGION_K)
        self._wall = far_boxes(scale, self.start_x, self.start_y, HOPELESS_K)
        self._weight_decay = np.concatenate([
            np.full(size, self.spec.weight_decay_in_gradient(hp))
            for size, hp in zip(self.sizes, settings, strict=True)])
        self._any_weight_decay = bool(self._weight_decay.any())
        # Each group's leaves are views into one buffer, so torch's in-place updates land in it
        # and the whole batch is read (and masked) at once. Many small groups (a sweep: one
        # start each) are packed: one (n, 2) leaf of x and y per group, which halves the
        # tensors torch's optimizer loops over one by one (measured 1.6-3x per step at 1024
        # groups). Only where it cannot change a number: nothing frozen, and f depends on both
        # x and y (a Run skips a leaf whose grad is None; a packed column would get a zero grad
        # and still move under weight decay).
        self.packed = (not frozen and len(self.sizes) > 1 and max(self.sizes) <= PACK_MAX_GROUP
                       and _uses_both(surface, self.start_x[0], self.start_y[0]))
        self._leaves: list[torch.Tensor] = []
        param_groups = []
        offset = 0
        if self.packed:
            self._xy_all = torch.tensor(all_starts, dtype=dtype)  # (n, 2), row-major
            self._x_all, self._y_all = self._xy_all[:, 0], self._xy_all[:, 1]
        else:
            self._x_all = torch.tensor(self.start_x, dtype=dtype)
            self._y_all = torch.tensor(self.start_y, dtype=dtype)
        self._xs: list[torch.Tensor] = []
        self._ys: list[torch.Tensor] = []
        for size, hp in zip(self.sizes, settings, strict=True):
            if self.packed:
                xy = self._xy_all.narrow(0, offset, size).detach().requires_grad_(True)
                self._leaves.append(xy)
                params = [xy]
            else:
                x = self._x_all.narrow(0, offset, size).detach().requires_grad_("x" not in frozen)
                y = self._y_all.narrow(0, offset, size).detach().requires_grad_("y" not in frozen)
                self._xs.append(x)
                self._ys.append(y)
                params = [x, y]
            group = dict(hp)
            if foreach is not None:
                group["foreach"] = foreach
            param_groups.append({"params": params, **group})
            offset += size
        self.optimizers: list[torch.optim.Optimizer] = []
        for lo in range(0, len(param_groups), GROUPS_PER_OPTIMIZER):
            chunk = param_groups[lo:lo + GROUPS_PER_OPTIMIZER]
            defaults = {k: v for k, v in chunk[0].items() if k != "params"}
            self.optimizers.append(self.spec.cls(chunk, **defaults))
        self._path_indices = tuple(dict.fromkeys(int(i) for i in paths))
        self._paths: dict[int, list[tuple[float, float, float, float]]] = {
            i: [] for i in self._path_indices}
        self._init_status()
        self._record_paths()

    # --- the record per element -----------------------------------------------------------------

    def _init_status(self) -> None:
        n = self.n
        self.steps = 0
        self.last_x = self.start_x.copy()
        self.last_y = self.start_y.copy()
        self.last_loss = np.full(n, math.nan)
        self._last_fx = np.full(n, math.nan)  # the last gradient over the free coordinates
        self._last_fy = np.full(n, math.nan)
        self.recorded = np.zeros(n, dtype=bool)  # has at least one entry (the start's)
        self.done = np.zeros(n, dtype=bool)  # diverged: masked from now on
        self.diverged_at = np.full(n, -1, dtype=np.int64)
        self.reason = np.zeros(n, dtype=np.int8)
        self.settled_since = np.full(n, -1, dtype=np.int64)
        self._far_since = np.full(n, -1, dtype=np.int64)
        self._far_best = np.full(n, math.inf)
        self._high_since = np.full(n, -1, dtype=np.int64)
        self._high_best = np.full(n, math.inf)
        self._low_since = np.full(n, -1, dtype=np.int64)
        # As in Run.reset: the loss thresholds are set from the start's loss after it is seen.
        self._explosion = np.full(n, math.inf)
        self._plunge = np.full(n, -math.inf)
        self._evaluate_and_record()
        start_loss = np.where(self.recorded, self.last_loss, 0.0)
        scale = self._scale  # SurfaceScale.explosion_threshold / plunge_threshold, as arrays
        self._explosion = np.where(self.recorded, np.maximum(scale.top, start_loss)
                                   + LOSS_K * scale.spread, math.inf)
        self._plunge = np.where(self.recorded, np.minimum(scale.bottom, start_loss)
                                - LOSS_K * scale.spread, -math.inf)

    def _diverge(self, mask: np.ndarray, reason: int) -> None:
        if mask.any():  # (most steps nothing diverges: one cheap test instead of three writes)
            self.done |= mask
            self.diverged_at[mask] = self.steps
            self.reason[mask] = reason

    def _forward_backward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Loss and gradient of every element at the current points, as float64 arrays (views of
        this step's tensors when the batch is float64; read them before the next step).

        Under enable_grad: grad mode is per thread, and a caller (or a worker) may be in no_grad.
        """
        with torch.enable_grad():
            return self._forward_backward_with_grad()

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """Every torch param group of the batch, in element order (over its optimizers)."""
        return [g for optimizer in self.optimizers for g in optimizer.param_groups]

    def _forward_backward_with_grad(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for optimizer in self.optimizers:
            optimizer.zero_grad()
        if self.packed:
            xy = torch.cat(self._leaves)
            loss = torch.broadcast_to(self.surface(xy[:, 0], xy[:, 1]), (self.n,))
            loss.sum().backward()  # f uses x and y (checked), so every leaf gets a grad
            grad = _float64(torch.cat([leaf.grad for leaf in self._leaves]))  # type: ignore
            return _float64(loss.detach()), grad[:, 0], grad[:, 1]
        single = len(self._xs) == 1
        x = self._xs[0] if single else torch.cat(self._xs)
        y = self._ys[0] if single else torch.cat(self._ys)
        loss = torch.broadcast_to(self.surface(x, y), (self.n,))
        if loss.requires_grad:
            loss.sum().backward()
        return (_float64(loss.detach()), self._grads(self._xs, "x"), self._grads(self._ys, "y"))

    def _grads(self, leaves: list[torch.Tensor], coordinate: str) -> np.ndarray:
        if coordinate in self.frozen:
            return np.full(self.n, math.nan)  # frozen: there is no gradient (as Run)
        parts = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
                 for leaf in leaves]  # unused by the formula: zero (as Run)
        return _float64(parts[0] if len(parts) == 1 else torch.cat(parts))

    def _evaluate_and_record(self) -> None:
        """Run._evaluate_and_record for every element still running, on arrays."""
        k = self.steps
        xv = _float64(self._x_all)  # (views; a masked element's entry is rewritten below)
        yv = _float64(self._y_all)
        active = ~self.done
        # Inside the wall implies finite (NaN compares False): one test for the common case.
        left = active & ~_inside(self._wall, xv, yv)
        if left.any():
            finite_point = np.isfinite(xv) & np.isfinite(yv)
            self._diverge(left & ~finite_point, NONFINITE_POINT)
            self._diverge(left & finite_point, PAST_WALL)
        self._mask_diverged()
        try:
            loss, gx, gy = self._forward_backward()
        except Exception:  # one forward for the whole batch: its failure fails every element
            self._diverge(~self.done, EVALUATION_FAILED)
            return
        active = ~self.done
        finite_loss = np.isfinite(loss)
        self._diverge(active & ~finite_loss, NONFINITE_LOSS)
        x_free, y_free = "x" not in self.frozen, "y" not in self.frozen
        # Run: an infinite gradient, or NaN for a free coordinate (a frozen one's is NaN)
        bad_grad = (~np.isfinite(gx) if x_free else np.isinf(gx)) | (
            ~np.isfinite(gy) if y_free else np.isinf(gy))
        self._diverge(active & finite_loss & bad_grad, NONFINITE_GRAD)
        rec = ~self.done  # recorded at this step
        # Run: moved = math.hypot(step), for every entry but the first; moved > tolerance
        moved_far = _norm_above(xv - self.last_x, yv - self.last_y, self.move_tolerance)
        if not self.recorded.all():
            moved_far &= self.recorded  # the first entry has no move (Run's None)
        skip = np.flatnonzero(~rec)
        for target, source in ((self.last_x, xv), (self.last_y, yv), (self.last_loss, loss)):
            _copy_except(target, source, skip)
        # |grad| over the free coordinates (a frozen one's NaN counts as 0), and the same
        # with weight_decay * w where torch adds it to the gradient (Run._stationarity)
        fx = gx if x_free else np.zeros(self.n)
        fy = gy if y_free else np.zeros(self.n)
        _copy_except(self._last_fx, fx, skip)
        _copy_except(self._last_fy, fy, skip)
        if self._any_weight_decay:
            wd = self._weight_decay
            fx, fy = (fx + wd * xv if x_free else fx), (fy + wd * yv if y_free else fy)
        not_small = _norm_above(fx, fy, self.grad_tolerance)
        self.recorded |= rec
        # core.status.StatusTracker.observe_divergence, element by element: far, high, low.
        window = DIVERGENCE_WINDOW
        out = np.zeros(self.n, dtype=bool)
        for holds, since, best, lowest, reason in (
                (~_inside(self._far, xv, yv) & (loss >= self._scale.high), self._far_since,
                 self._far_best, True, FAR_AWAY),
                (loss > self._explosion, self._high_since, self._high_best, True, EXPLODED),
                (loss < self._plunge, self._low_since, None, False, FELL_AWAY)):
            holds &= rec
            if not holds.any():
                since.fill(-1)  # no streak anywhere (the common case: one fill)
                continue
            count = _streak(holds, k, loss if lowest else None, since, best)
            newly = rec & ~out & (count >= window)
            self._diverge(newly, reason)
            out |= newly
        # StatusTracker.observe_convergence for those still running.
        going = rec & ~out
        self.settled_since[going & not_small] = -1
        restart = going & ~not_small & ((self.settled_since < 0) | moved_far)
        self.settled_since[restart] = k

    def _mask_diverged(self) -> None:
        """Write every diverged element's last recorded point back into x and y."""
        if self.done.any():
            with torch.no_grad():
                idx = torch.from_numpy(np.flatnonzero(self.done))
                self._x_all[idx] = torch.from_numpy(self.last_x[self.done]).to(self.dtype)
                self._y_all[idx] = torch.from_numpy(self.last_y[self.done]).to(self.dtype)

    def _record_paths(self) -> None:
        for i in self._path_indices:
            if self.recorded[i] and (not self.done[i] or self.diverged_at[i] == self.steps
                                     and self.reason[i] in (FAR_AWAY, EXPLODED, FELL_AWAY)):
                path = self._paths[i]
                if not path or path[-1][0] != self.steps:
                    path.append((float(self.steps), float(self.last_x[i]), float(self.last_y[i]),
                                 float(self.last_loss[i])))

    # --- stepping -------------------------------------------------------------------------------

    def step(self, n: int = 1, state: ProgressState | None = None) -> int:
        """Take n optimizer steps (fewer if every element diverged); return how many.

        `state` gets set_progress(fraction of n) and is asked is_interruption_requested() every
        few steps; a cancel raises BatchCancelled (the batch stays usable where it stopped).
        """
        done = 0
        report_every = max(1, n // 100)
        while done < n and not self.done.all():
            if state is not None and done % report_every == 0:
                if state.is_interruption_requested():
                    raise BatchCancelled("the batch was cancelled")
                state.set_progress(done / n)
            self.steps += 1
            done += 1
            try:
                for optimizer in self.optimizers:
                    optimizer.step()
            except Exception:  # a torch error mid-step fails every element still running
                self._diverge(~self.done, STEP_FAILED)
                break
            self._evaluate_and_record()
            if self._path_indices:
                self._record_paths()
        if state is not None:
            state.set_progress(1.0)
        return done

    # --- reading --------------------------------------------------------------------------------

    @property
    def converged_at(self) -> np.ndarray:
        """Per element, StatusTracker.converged_at (-1 for None)."""
        since = self.settled_since
        ok = (since >= 0) & (self.steps - np.maximum(since, 0) >= self.window) & ~self.done
        return np.where(ok, since, -1)

    @property
    def status(self) -> np.ndarray:
        if self.frozen >= {"x", "y"}:
            status = np.full(self.n, FROZEN, dtype=np.int8)
        else:
            status = np.where(self.converged_at >= 0, CONVERGED, RUNNING).astype(np.int8)
        status[self.done] = DIVERGED
        return status

    def result(self) -> BatchResult:
        """The summary per element, as copied arrays (the batch can go on stepping)."""
        status = self.status
        converged_at = np.where(status == CONVERGED, self.converged_at, -1)
        steps = np.where(self.done, self.diverged_at, self.steps)
        return BatchResult(
            final_x=self.last_x.copy(), final_y=self.last_y.copy(),
            final_loss=self.last_loss.copy(),
            grad_norm=np.hypot(self._last_fx, self._last_fy),
            status=status, steps=steps.astype(np.int64), converged_at=converged_at,
            diverged_at=self.diverged_at.copy(), reason=self.reason.copy(),
            paths={i: np.array(p, dtype=np.float64).reshape(-1, 4)
                   for i, p in self._paths.items()})


def _uses_both(surface: Surface, x: float, y: float) -> bool:
    """Whether autograd reaches both x and y from f (the formula's graph does not depend on the
    point: the grammar has no branches). False if f cannot be evaluated there."""
    xt = torch.tensor(float(x), dtype=DTYPE, requires_grad=True)
    yt = torch.tensor(float(y), dtype=DTYPE, requires_grad=True)
    try:
        with torch.enable_grad():
            f = surface(xt, yt)
            if not f.requires_grad:
                return False
            gx, gy = torch.autograd.grad(f, (xt, yt), allow_unused=True)
    except Exception:
        return False
    return gx is not None and gy is not None


def _norm_above(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    """math.hypot(a, b) > tolerance per element, as Run decides it, without a hypot for each.

    hypot lies between max(|a|, |b|) and |a| + |b|, so most elements are decided by those two
    cheap bounds (np.hypot on 65536 elements took ~1 ms, as long as the rest of the step); the
    few near the tolerance get math.hypot itself. A NaN is above (as Run: NaN is not small).
    """
    abs_a, abs_b = np.abs(a), np.abs(b)
    above = np.maximum(abs_a, abs_b) > tolerance * (1 + 1e-9)
    near = ~above & ~(abs_a + abs_b <= 0.5 * tolerance)  # (NaN lands here)
    index = np.flatnonzero(near)
    if index.size:
        above[index] = [not math.hypot(p, q) <= tolerance
                        for p, q in zip(a[index].tolist(), b[index].tolist(), strict=True)]
    return above


def _copy_except(target: np.ndarray, source: np.ndarray, skip: np.ndarray) -> None:
    """target[i] = source[i] for every i not in `skip` (indices; usually none)."""
    if skip.size == 0:
        np.copyto(target, source)
        return
    kept = target[skip]
    np.copyto(target, source)
    target[skip] = kept


def _float64(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float64 numpy array: a view when it already is float64, else a copy."""
    array = t.detach().numpy()
    return array if array.dtype == np.float64 else array.astype(np.float64)


def _streak(holds: np.ndarray, step: int, loss: np.ndarray | None, since: np.ndarray,
            best: np.ndarray | None) -> np.ndarray:
    """core.status._Streak.update for every element: how many entries in a row `holds`.

    Updates `since` (and `best`) in place; with `loss`, a lower loss restarts the count.
    """
    since[~holds] = -1
    restart = holds & (since < 0)
    if loss is not None and best is not None:
        restart |= holds & (loss < best)
        best[restart] = loss[restart]
    since[restart] = step
    return np.where(holds, step - since + 1, 0)
