"""Model mode's engine against the textbook PyTorch loop, per preset, in one process (issue 8).

    .venv/bin/python benchmarks/bench_model_engine.py            # every preset, SGD and Adam
    .venv/bin/python benchmarks/bench_model_engine.py --quick    # fewer steps and repeats
    .venv/bin/python benchmarks/bench_model_engine.py --profile small-mlp   # cProfile of Run.step

For each model preset on its usual data (200 rows of two moons; the regression preset: a noisy
line), as the workspace builds it (ModelSession: the default train/test split, seed 0), full
batch and minibatches of 32, with SGD and Adam, three loops over the same training rows:

  plain    the loop every PyTorch tutorial writes: opt.zero_grad(); loss = loss_fn(model(X), y);
           loss.backward(); opt.step()  (minibatches: X[idx], y[idx] with idx from the same
           seeded MinibatchSampler, drawn by next_batch() as a user's loop draws them)
  run      core.run.Run.step(1) on the ModelProblem (functional_call on the run's own leaves,
           the trajectory's per-parameter norms, the status rules)
  tick     gui.model.controller.ModelController.tick() with that one run (Run.step, the
           held-out loss under no_grad every TEST_EVERY steps, the slice bookkeeping)

Steps per second of CPU time (time.process_time, one torch thread), median of REPEATS,
interleaved (plain, run, tick, plain, ...), and the ratios run/plain and tick/plain (issue 8
asks >= 0.85). The load average is printed with the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

torch.set_num_threads(1)

from PySide6.QtCore import QCoreApplication  # noqa: E402

from core.problems.data import MinibatchSampler  # noqa: E402
from core.problems.model import PRESETS  # noqa: E402
from core.run import Run  # noqa: E402
from gui.model.controller import ModelController, ModelSettings  # noqa: E402

PRESET_DATA = {"linear-regression": ("line", "MSELoss"),
               "logistic-regression": ("moons", "BCEWithLogitsLoss"),
               "small-mlp": ("moons", "BCEWithLogitsLoss"),
               "deep-mlp": ("moons", "BCEWithLogitsLoss")}
OPTIMIZERS = (("SGD", {"lr": 0.1}), ("Adam", {"lr": 0.01}))
BATCHES = (0, 32)


def controller_for(preset: str, batch_size: int) -> ModelController:
    dataset, loss = PRESET_DATA[preset]
    settings = ModelSettings(dataset=dataset, n=200, preset=preset, loss=loss,
                             batch_size=batch_size)
    # the model text follows the preset (configure does what the workspace's picker does)
    controller = ModelController(settings)
    message = controller.configure(preset=preset, model_text=PRESETS[preset].text)
    if message:
        raise SystemExit(message)
    return controller


def plain_rate(controller: ModelController, optimizer: str, hps: dict, steps: int) -> float:
    """The textbook loop on a copy of the model, the same rows and batches."""
    problem = controller.problem
    model = copy.deepcopy(controller.model)
    X, y, loss_fn = problem.X, problem.y, problem.loss_fn
    opt = getattr(torch.optim, optimizer)(model.parameters(), **hps)
    sampler = MinibatchSampler(problem.n, problem.batch_size, problem.seed)
    full = problem.full_batch

    def one_step() -> None:
        opt.zero_grad()
        if full:
            loss = loss_fn(model(X), y)
        else:
            idx = sampler.next_batch()
            loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()

    for _ in range(10):  # warm up the allocator and the optimizer's state
        one_step()
    start = time.process_time()
    for _ in range(steps):
        one_step()
    return steps / (time.process_time() - start)


def run_rate(controller: ModelController, optimizer: str, hps: dict, steps: int) -> float:
    run = Run(controller.problem, optimizer, dict(hps))
    run.step(10)
    start = time.process_time()
    for _ in range(steps):
        run.step(1)
    return steps / (time.process_time() - start)


def tick_rate(controller: ModelController, optimizer: str, hps: dict, steps: int) -> float:
    for run in list(controller.runs):
        controller.remove_run(run)
    controller.add_run(optimizer, lr=hps["lr"])
    controller.sharpness_every = 10 ** 9  # stepping only; sharpness is measured elsewhere
    run = controller.runs[0]
    controller.tick()
    before, start = run.steps, time.process_time()
    while run.steps - before < steps:
        controller.tick()
    return (run.steps - before) / (time.process_time() - start)


def bench(presets: list[str], steps: int, repeats: int) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"steps/s (CPU time, median of {repeats}, interleaved); ratios against plain")
    print(f"  {'preset':20s} {'batch':>5s} {'opt':4s} {'plain':>7s} {'run':>7s} {'tick':>7s}"
          f"  {'run/plain':>9s} {'tick/plain':>10s} {'tick/run':>8s}")
    worst = 10.0
    for preset in presets:
        for batch_size in BATCHES:
            controller = controller_for(preset, batch_size)
            for name, hps in OPTIMIZERS:
                rates: dict[str, list[float]] = {"plain": [], "run": [], "tick": []}
                for _ in range(repeats):
                    rates["plain"].append(plain_rate(controller, name, hps, steps))
                    rates["run"].append(run_rate(controller, name, hps, steps))
                    rates["tick"].append(tick_rate(controller, name, hps, steps))
                m = {k: statistics.median(v) for k, v in rates.items()}
                worst = min(worst, m["run"] / m["plain"], m["tick"] / m["plain"])
                print(f"  {preset:20s} {batch_size or 'full':>5} {name:4s} {m['plain']:7.0f} "
                      f"{m['run']:7.0f} {m['tick']:7.0f}  {m['run'] / m['plain']:9.2f} "
                      f"{m['tick'] / m['plain']:10.2f} {m['tick'] / m['run']:8.2f}")
            controller.shutdown()
    print(f"lowest ratio {worst:.2f}; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def profile(preset: str, optimizer: str, steps: int) -> None:
    controller = controller_for(preset, 0)
    hps = dict(OPTIMIZERS)[optimizer]
    run = Run(controller.problem, optimizer, dict(hps))
    run.step(10)
    profiler = cProfile.Profile()
    profiler.enable()
    run.step(steps)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    controller.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--preset", action="append", choices=list(PRESETS),
                        help="only these presets (repeatable)")
    parser.add_argument("--profile", choices=list(PRESETS),
                        help="cProfile Run.step on this preset (full batch) instead")
    parser.add_argument("--optimizer", default="Adam", choices=[n for n, _ in OPTIMIZERS])
    args = parser.parse_args()
    app = QCoreApplication.instance() or QCoreApplication(sys.argv)  # noqa: F841 (QTimer)
    if args.profile:
        profile(args.profile, args.optimizer, 2000)
        return
    steps, repeats = (300, 3) if args.quick else (1000, 5)
    bench(args.preset or list(PRESETS), steps, repeats)


if __name__ == "__main__":
    main()
