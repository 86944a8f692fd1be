"""Cost of the scheduler, noise and clipping pieces against the plain torch code they stand for.

    .venv/bin/python benchmarks/bench_schedulers_gradients.py [--quick]

(a) A training step on the Rosenbrock surface (x and y as float64 leaves) with a cosine
    scheduler, Gaussian gradient noise and norm clipping: written inline as a PyTorch user
    would (randn with a generator, clip_grad_norm_, scheduler.step()) against the same step
    through core/ (process_gradients, step_scheduler). Repeats are interleaved and the median
    is reported. Ratio = plain time / ours (1.0: no overhead; target >= 0.8: our pieces also
    copy the clean and noisy gradients and measure the norm after clipping for the table).
(b) preview_lr for 1000 steps against a plain loop stepping the same optimizer and scheduler
    1000 times (what the card's preview costs when a scheduler is picked).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.gradient_tools import GradientClipping, GradientNoise, process_gradients  # noqa: E402
from core.schedulers import build_scheduler, preview_lr, step_scheduler  # noqa: E402

torch.set_num_threads(1)


def _leaves() -> list[torch.Tensor]:
    return [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (-1.5, 2.0)]


def _loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def plain_steps(steps: int) -> float:
    params = _leaves()
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        _loss(*params).backward()
        for p in params:
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype),
                        alpha=0.1)
        torch.nn.utils.clip_grad_norm_(params, max_norm=10.0)
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - t0


def our_steps(steps: int) -> float:
    params = _leaves()
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    scheduler = build_scheduler(optimizer, "CosineAnnealingLR", {"T_max": steps})
    noise, clipping = GradientNoise(0.1, seed=0), GradientClipping("norm", 10.0)
    t0 = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = _loss(*params)
        loss.backward()
        process_gradients(params, noise, clipping)
        optimizer.step()
        step_scheduler(scheduler, loss)
    return time.perf_counter() - t0


def plain_preview(steps: int) -> float:
    t0 = time.perf_counter()
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=steps)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - t0


def our_preview(steps: int) -> float:
    t0 = time.perf_counter()
    preview_lr("Adam", {"lr": 0.01}, "OneCycleLR", {"max_lr": 0.1, "total_steps": steps}, steps)
    return time.perf_counter() - t0


def compare(name: str, plain, ours, steps: int, repeats: int) -> None:  # noqa: ANN001
    plain(steps // 10)  # warm-up
    ours(steps // 10)
    plain_times, our_times = [], []
    for _ in range(repeats):
        plain_times.append(plain(steps))
        our_times.append(ours(steps))
    p, o = statistics.median(plain_times), statistics.median(our_times)
    print(f"{name}: plain {p / steps * 1e6:.1f} us/step, ours {o / steps * 1e6:.1f} us/step, "
          f"ratio plain/ours {p / o:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    compare("(a) step with scheduler + noise + clip", plain_steps, our_steps,
            2000 if args.quick else 5000, repeats)
    compare("(b) lr preview, 1000 steps", plain_preview, our_preview, 1000, repeats)


if __name__ == "__main__":
    main()
