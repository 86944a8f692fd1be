"""Engine figures: steps per second against a plain torch loop, grid time, memory on long runs.

    .venv/bin/python benchmarks/bench_engine.py            # everything (about 1-3 minutes)
    .venv/bin/python benchmarks/bench_engine.py --quick    # fewer repeats, 100k-step memory run
    .venv/bin/python benchmarks/bench_engine.py --profile  # also cProfile the engine's step

(a) The engine's Run.step (optimizer.step, zero_grad, forward, backward, and recording the point,
    loss, gradient and lr into the trajectory) against the loop every PyTorch tutorial writes
    (zero_grad, forward, backward, step) on fresh float64 leaves, in the same process. Repeats
    are interleaved (engine, plain, engine, plain, ...) so that load from other processes hits
    both alike; the best and the median of each are reported. Target: ratio >= 0.85.
(b) Surface.grid on 500 x 500 points (median of repeats). Target: well under 50 ms.
(c) Trajectory bytes and the process's resident memory (from /proc/self/status) before and
    after a million steps of one run.
(d) Batching, for the GUI's "max" speed: six runs stepped round-robin one step at a time (what
    the controller does, so no run gets ahead within a frame) against each run taking 8 steps
    in a row, against the plain loop stepping the same six optimizers round-robin.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.run import Run  # noqa: E402
from core.surfaces import SURFACES, get_surface  # noqa: E402

torch.set_num_threads(1)  # scalar work: threads only add noise


def rss_mib() -> float:
    """Resident set size of this process, from /proc (no psutil needed)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def plain_loop_rate(surface_name: str, optimizer: str, hps: dict, steps: int) -> float:
    surface = get_surface(surface_name)
    x = torch.tensor(surface.start[0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(surface.start[1], dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, optimizer)([x, y], **hps)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = surface(x, y)
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def engine_rate(surface_name: str, optimizer: str, hps: dict, steps: int) -> float:
    run = Run(get_surface(surface_name), optimizer, hps)
    t0 = time.perf_counter()
    run.step(steps)
    elapsed = time.perf_counter() - t0
    assert run.steps == steps, run.status_text
    return steps / elapsed


def bench_ratio(optimizer: str, hps: dict, steps: int, repeats: int) -> dict:
    surface = "rosenbrock"
    engine_rate(surface, optimizer, hps, 200)  # warm up (torch.optim's first step imports)
    plain_loop_rate(surface, optimizer, hps, 200)
    engine, plain = [], []
    for _ in range(repeats):
        gc.collect()
        engine.append(engine_rate(surface, optimizer, hps, steps))
        gc.collect()
        plain.append(plain_loop_rate(surface, optimizer, hps, steps))
    return {"engine_best": max(engine), "plain_best": max(plain),
            "engine_median": statistics.median(engine), "plain_median": statistics.median(plain),
            "ratio_best": max(engine) / max(plain),
            "ratio_median": statistics.median(e / p for e, p in zip(engine, plain, strict=True))}


def bench_grid(repeats: int) -> dict[str, float]:
    times: dict[str, float] = {}
    for name in ("rosenbrock", "ackley", "goldstein_price", "wells"):
        s = SURFACES[name]
        s.grid(nx=500, ny=500)
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            s.grid(nx=500, ny=500)
            runs.append(time.perf_counter() - t0)
        times[name] = statistics.median(runs) * 1000
    return times


def bench_memory(steps: int) -> dict:
    run = Run(get_surface("bowl"), "SGD", {"lr": 1e-6})  # crawls: never converges, never diverges
    gc.collect()
    before = {"rss": rss_mib(), "traj": run.trajectory.nbytes(), "len": len(run.trajectory)}
    checkpoints = sorted({steps // 10, steps // 4, steps // 2, steps} - {0})
    t0 = time.perf_counter()
    along = []
    for target in checkpoints:
        while run.steps < target:
            run.step(min(50_000, target - run.steps))
        along.append((run.steps, rss_mib(), run.trajectory.nbytes()))
    elapsed = time.perf_counter() - t0
    gc.collect()
    after = {"rss": rss_mib(), "traj": run.trajectory.nbytes(), "len": len(run.trajectory)}
    return {"before": before, "after": after, "seconds": elapsed, "steps": run.steps,
            "along": along, "capacity": run.trajectory.capacity,
            "thinned": run.trajectory.thinned, "first_step": int(run.trajectory.step[0]),
            "last_step": int(run.trajectory.step[-1])}


SIX_RUNS = (("SGD", {"lr": 1e-3}), ("SGD", {"lr": 1e-3, "momentum": 0.9}),
            ("RMSprop", {"lr": 1e-2}), ("Adam", {"lr": 5e-2}), ("Adagrad", {"lr": 0.5}),
            ("NAdam", {"lr": 0.02}))


def bench_batching(rounds: int, repeats: int) -> dict[str, float]:
    """Steps/s per run: round-robin single steps, batches of 8, and the plain loop."""
    surface = get_surface("rosenbrock")

    def engine(batch: int) -> float:
        runs = [Run(surface, name, hps) for name, hps in SIX_RUNS]
        t0 = time.perf_counter()
        for _ in range(rounds // batch):
            for run in runs:
                run.step(batch)
        return rounds // batch * batch / (time.perf_counter() - t0)

    def plain() -> float:
        loops = []
        for name, hps in SIX_RUNS:
            x = torch.tensor(surface.start[0], dtype=torch.float64, requires_grad=True)
            y = torch.tensor(surface.start[1], dtype=torch.float64, requires_grad=True)
            loops.append((x, y, getattr(torch.optim, name)([x, y], **hps)))
        t0 = time.perf_counter()
        for _ in range(rounds):
            for x, y, opt in loops:
                opt.zero_grad()
                surface(x, y).backward()
                opt.step()
        return rounds / (time.perf_counter() - t0)

    engine(1), plain()  # warm up
    single, batched, plains = [], [], []
    for _ in range(repeats):  # interleaved, so other load hits all three alike
        single.append(engine(1))
        batched.append(engine(8))
        plains.append(plain())
    return {"single": statistics.median(single), "batched": statistics.median(batched),
            "plain": statistics.median(plains)}


def profile_engine(optimizer: str, hps: dict, steps: int) -> str:
    run = Run(get_surface("rosenbrock"), optimizer, hps)
    run.step(200)
    prof = cProfile.Profile()
    prof.enable()
    run.step(steps)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    # The engine's own work (what the plain loop does not do): its Python in core/run.py and
    # core/trajectory.py, and the .item() calls that read values out for the record.
    total = own = items = 0.0
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore
        total += tottime
        if filename.endswith(("core/run.py", "core/trajectory.py")):
            own += tottime
        elif "method 'item'" in function:
            items += tottime
    out.write(f"    engine-only Python (core/run.py, core/trajectory.py): {own / total:.1%} of the "
              f"profiled time; .item() reads: {items / total:.1%}\n")
    stats.sort_stats("tottime").print_stats(18)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats; 100k-step memory")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine's step")
    parser.add_argument("--memory-steps", type=int, default=None)
    args = parser.parse_args()
    repeats, steps = (9, 1000) if args.quick else (25, 1500)
    memory_steps = args.memory_steps or (100_000 if args.quick else 1_000_000)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, python "
          f"{sys.version.split()[0]}")
    print(f"\n(a) steps/second on rosenbrock, {repeats} interleaved repeats of {steps} steps")
    print(f"    {'optimizer':<16}{'engine best':>12}{'plain best':>12}{'ratio best':>12}"
          f"{'engine med':>12}{'plain med':>12}{'ratio med':>12}")
    for name, hps in (("SGD", {"lr": 1e-4}), ("Adam", {"lr": 1e-3})):
        r = bench_ratio(name, hps, steps, repeats)
        verdict = "ok" if r["ratio_median"] >= 0.85 else "MISSES the 15% target"
        print(f"    {name:<16}{r['engine_best']:>12.0f}{r['plain_best']:>12.0f}"
              f"{r['ratio_best']:>12.3f}{r['engine_median']:>12.0f}{r['plain_median']:>12.0f}"
              f"{r['ratio_median']:>12.3f}  {verdict}")

    print("\n(b) Surface.grid(500 x 500), median ms")
    for name, ms in bench_grid(repeats=7 if args.quick else 15).items():
        print(f"    {name:<16}{ms:>8.1f} ms")

    print(f"\n(c) memory: one run (SGD on bowl), {memory_steps:,} steps (minutes on a busy "
          "machine; --quick does 100k)")
    m = bench_memory(memory_steps)
    b, a = m["before"], m["after"]
    print(f"    trajectory: {b['len']:,} entries, {b['traj'] / 2**20:.3f} MiB -> {a['len']:,} "
          f"entries, {a['traj'] / 2**20:.3f} MiB (capacity {m['capacity']:,}, bound "
          f"{7 * 8 * m['capacity'] / 2**20:.1f} MiB; thinned {m['thinned']} times; "
          f"keeps steps {m['first_step']} .. {m['last_step']})")
    print(f"    process RSS: {b['rss']:.1f} MiB -> {a['rss']:.1f} MiB "
          f"({a['rss'] - b['rss']:+.1f} MiB) in {m['seconds']:.1f} s "
          f"({m['steps'] / m['seconds']:.0f} steps/s)")
    for step, rss, nbytes in m["along"]:
        print(f"      after {step:>9,} steps: RSS {rss:7.1f} MiB, trajectory "
              f"{nbytes / 2**20:6.2f} MiB")

    print("\n(d) six runs round-robin (steps/s per run, median)")
    b = bench_batching(rounds=200 if args.quick else 400, repeats=5 if args.quick else 9)
    print(f"    one step per run per round: {b['single']:.0f}; 8 steps per run per round: "
          f"{b['batched']:.0f} ({b['batched'] / b['single']:.3f}x); plain loop: "
          f"{b['plain']:.0f} (engine/plain {b['single'] / b['plain']:.3f})")

    if args.profile:
        for name, hps in (("SGD", {"lr": 1e-4}), ("Adam", {"lr": 1e-3})):
            print(f"\nprofile of Run.step on rosenbrock with {name} (tottime)")
            print(profile_engine(name, hps, 20_000))


if __name__ == "__main__":
    main()
