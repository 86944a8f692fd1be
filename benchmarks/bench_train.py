"""`main.py train`'s path (ModelSession.build + model_session.train) against a plain loop.

Per model preset, on 200 rows of two moons (regression presets: a noisy line), full batch:

  engine   ModelSession(...).build(), then train(): Run.step on ModelProblem (functional_call,
           the trajectory's per-parameter norms, the status rules), plus the held-out
           metrics under no_grad every K steps (K = 1 and 10; "none" = test fraction 0)
  plain    for k: opt.zero_grad(); loss_fn(model(X), y).backward(); opt.step()   on the same
           training rows (and, for K, the same no_grad test loss every K steps)

Steps per second of CPU time (time.process_time, one torch thread), best of REPEATS,
interleaved, in the same process; ratio = engine / plain (1.0: as fast; issue 8 asks >= 0.85).
Then the landscape command's grid: 101 x 101 random-direction slice of the small MLP on 200
rows, against a plain loop over grid points (model loss per point, functional_call, no_grad),
timed on 5 of the 101 rows and scaled up (so the plain figure is an estimate).

Run: .venv/bin/python benchmarks/bench_train.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.func import functional_call  # noqa: E402

from core.model_cli import add_landscape_arguments, landscape_report  # noqa: E402
from core.model_session import DataSpec, ModelSession, train  # noqa: E402
from core.problems.model import PRESETS  # noqa: E402

torch.set_num_threads(1)
STEPS = 300
REPEATS = 3
OPTIMIZERS = (("SGD", {"lr": 1e-2}), ("Adam", {"lr": 1e-2}))


def session_for(preset: str, name: str, hps: dict, fraction: float) -> ModelSession:
    data = DataSpec("line" if preset == "linear-regression" else "moons", n=200)
    session = ModelSession(preset, data, test_fraction=fraction, seed=0)
    session.add_run(name, hps, steps=STEPS)
    return session


def engine(preset: str, name: str, hps: dict, fraction: float, every: int) -> float:
    built = session_for(preset, name, hps, fraction).build()
    t = time.process_time()
    train(built, [STEPS], every)
    return STEPS / (time.process_time() - t)


def plain(preset: str, name: str, hps: dict, fraction: float, every: int) -> float:
    built = session_for(preset, name, hps, fraction).build()  # the same rows and weights
    model, loss_fn = built.model, built.loss_fn
    X, y = built.problem.X, built.problem.y
    opt = getattr(torch.optim, name)(model.parameters(), **hps)
    t = time.process_time()
    for k in range(STEPS):
        if built.X_test is not None and k % every == 0:
            with torch.no_grad():
                float(loss_fn(model(built.X_test), built.y_test))
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()
    return STEPS / (time.process_time() - t)


def landscape_seconds() -> float:
    parser = argparse.ArgumentParser()
    add_landscape_arguments(parser)
    args = parser.parse_args(["--dataset", "moons", "--n", "200", "--model", "small-mlp",
                              "--directions", "random", "--grid", "101"])
    t = time.perf_counter()
    report = landscape_report(args)
    assert len(report["loss"]) == 101
    return time.perf_counter() - t


def plain_landscape_seconds(rows: int = 5) -> float:
    built = ModelSession("small-mlp", DataSpec("moons", n=200), test_fraction=0).build()
    model, loss_fn, X, y = built.model, built.loss_fn, built.problem.X, built.problem.y
    g = torch.Generator().manual_seed(0)
    centre = {n: p.detach() for n, p in model.named_parameters()}
    d1 = {n: torch.randn(p.shape, generator=g, dtype=p.dtype) for n, p in centre.items()}
    d2 = {n: torch.randn(p.shape, generator=g, dtype=p.dtype) for n, p in centre.items()}
    values = torch.linspace(-1, 1, 101, dtype=torch.float64).tolist()
    t = time.perf_counter()
    with torch.no_grad():
        for b in values[:rows]:
            for a in values:
                params = {n: centre[n] + a * d1[n] + b * d2[n] for n in centre}
                float(loss_fn(functional_call(model, params, (X,)), y))
    return (time.perf_counter() - t) * 101 / rows


def main() -> None:
    print(f"torch {torch.__version__}, 1 thread; {STEPS} steps, best of {REPEATS} interleaved, "
          "steps/s of CPU time")
    print(f"  {'preset':<20} {'optimizer':<6} {'held out':<10} {'engine':>8} {'plain':>8} "
          f"{'ratio':>7}")
    for preset in PRESETS:
        for name, hps in OPTIMIZERS:
            for fraction, every, what in ((0.0, 1, "none"), (0.2, 10, "every 10"),
                                          (0.2, 1, "every 1")):
                e = p = 0.0
                for _ in range(REPEATS):
                    e = max(e, engine(preset, name, hps, fraction, every))
                    p = max(p, plain(preset, name, hps, fraction, every))
                verdict = "ok" if e / p >= 0.85 else "misses 0.85"
                print(f"  {preset:<20} {name:<6} {what:<10} {e:>8.0f} {p:>8.0f} {e / p:>7.2f}"
                      f"  {verdict}")
    landscape = min(landscape_seconds() for _ in range(REPEATS))
    plain_grid = plain_landscape_seconds()
    print(f"  landscape 101 x 101, small MLP, 200 rows (random directions, whole command): "
          f"{landscape:.3f} s; a plain per-point loop: ~{plain_grid:.2f} s (from 5 rows); "
          f"ratio {plain_grid / landscape:.1f}x faster")


if __name__ == "__main__":
    main()
