"""GUI figures: launch time, and six runs racing at "max" in the real window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py [--seconds 4]

Prints:
(a) the time from process start to a shown main window, split into imports and the window;
(b) six runs at "max" in the real main window, for several caps of the stepping slice at "max"
    (6 ms was the old fixed slice; the controller now adapts up to MAX_SLICE_S): steps/s per run,
    its ratio to a plain torch loop stepping the same six optimizers round-robin in the same
    process (zero_grad, forward, backward, step, on fresh float64 leaves), and the gaps between
    two ticks (median, 99th percentile, longest; a frame is ~16.7 ms, "responsive" is a longest
    gap within about two frames);
(c) the alternative measured before choosing: a Python thread stepping six runs while the
    window animates its own six at 60 steps/s, against the same thread with no window work.
    The GIL lets only one thread run Python at a time and this work is almost all Python
    (torch.optim's update and autograd's bookkeeping for scalars), so a worker adds no
    throughput; it only moves the stalls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

SIX_RUNS = (("SGD", {"lr": 1e-3}), ("SGD", {"lr": 1e-3, "momentum": 0.9}),
            ("RMSprop", {"lr": 1e-2}), ("Adam", {"lr": 5e-2}), ("Adagrad", {"lr": 0.5}),
            ("NAdam", {"lr": 0.02}))


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[int(q * (len(sorted_values) - 1))]


def plain_loop_per_run(seconds: float) -> float:
    """Steps/s per optimizer: the six optimizers stepped round-robin by the tutorial loop."""
    import torch

    from core.surfaces import get_surface

    f = get_surface("rosenbrock")
    loops = []
    for name, hps in SIX_RUNS:
        x = torch.tensor(f.start[0], dtype=torch.float64, requires_grad=True)
        y = torch.tensor(f.start[1], dtype=torch.float64, requires_grad=True)
        loops.append((x, y, getattr(torch.optim, name)([x, y], **hps)))
    rounds, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        for x, y, opt in loops:
            opt.zero_grad()
            f(x, y).backward()
            opt.step()
        rounds += 1
    return rounds / (time.perf_counter() - t)


def animate(app, controller, seconds: float) -> tuple[float, list[float]]:
    """Play for `seconds`; return steps/s per run and the tick gaps in ms."""
    runs = controller.session.active_runs
    gaps: list[float] = []
    last = [0.0]

    def on_stepped() -> None:
        now = time.perf_counter()
        if last[0]:
            gaps.append((now - last[0]) * 1000)
        last[0] = now

    controller.sigStepped.connect(on_stepped)
    controller.reset()
    before = sum(r.steps for r in runs)
    controller.play()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        app.processEvents()
    controller.pause()
    elapsed = time.perf_counter() - start
    controller.sigStepped.disconnect(on_stepped)
    return (sum(r.steps for r in runs) - before) / elapsed / len(runs), sorted(gaps)


def worker_thread_rate(app, controller, seconds: float, with_window: bool) -> tuple[float, list]:
    """Steps/s per run of a plain Python thread stepping six runs; the window's tick gaps."""
    from core.run import Run
    from core.surfaces import get_surface

    f = get_surface("rosenbrock")
    runs = [Run(f, name, hps) for name, hps in SIX_RUNS]
    stop = threading.Event()
    rounds = [0]

    def work() -> None:
        while not stop.is_set():
            for run in runs:
                run.step(1)
            rounds[0] += 1

    gaps: list[float] = []
    last = [0.0]

    def on_stepped() -> None:
        now = time.perf_counter()
        if last[0]:
            gaps.append((now - last[0]) * 1000)
        last[0] = now

    thread = threading.Thread(target=work)
    if with_window:
        controller.set_speed(60)
        controller.reset()
        controller.sigStepped.connect(on_stepped)
        controller.play()
    start = time.perf_counter()
    thread.start()
    while time.perf_counter() - start < seconds:
        app.processEvents() if with_window else time.sleep(0.01)
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - start
    if with_window:
        controller.pause()
        controller.sigStepped.disconnect(on_stepped)
    return rounds[0] / elapsed, sorted(gaps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    from gui import controller as controller_module
    from gui.main_window import MainWindow

    imported = time.perf_counter() - T0
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, restore=False)
    window.show()
    while not window.isVisible():
        app.processEvents()
    app.processEvents()
    launch = time.perf_counter() - T0
    print(f"(a) launch to shown window: {launch * 1000:.0f} ms (imports of torch, Qt and "
          f"pyqtgraph: {imported * 1000:.0f} ms; building and showing the window: "
          f"{(launch - imported) * 1000:.0f} ms)")

    c = window.controller
    for name, hps in SIX_RUNS[len(c.session.runs):]:
        c.add_run(name, hps)
    print(f"\n(b) six runs at max speed in the real window, {args.seconds:g} s each "
          f"({', '.join(r.title for r in c.session.runs)})")
    print(f"    {'slice cap':>10}{'steps/s/run':>13}{'plain loop':>12}{'ratio':>8}"
          f"{'gap p50':>9}{'p99':>7}{'max':>7} ms")
    plain_loop_per_run(0.5)  # warm up torch.optim
    configured = controller_module.MAX_SLICE_S
    for cap in sorted({0.006, 0.010, configured, 0.014}):
        controller_module.MAX_SLICE_S = cap
        c.set_speed(controller_module.MAX_SPEED)
        c.max_slice = controller_module.SLICE_S
        rates, plains, all_gaps = [], [], []
        for _ in range(2):  # interleaved with the plain loop, so other load hits both alike
            rate, gaps = animate(app, c, args.seconds / 2)
            rates.append(rate)
            all_gaps += gaps
            plains.append(plain_loop_per_run(args.seconds / 4))
        all_gaps.sort()
        rate, plain = statistics.mean(rates), statistics.mean(plains)
        mark = "  <- the controller's MAX_SLICE_S" if cap == configured else ""
        print(f"    {cap * 1000:>8.0f} ms{rate:>13.0f}{plain:>12.0f}{rate / plain:>8.2f}"
              f"{percentile(all_gaps, 0.5):>9.1f}{percentile(all_gaps, 0.99):>7.1f}"
              f"{all_gaps[-1]:>7.1f}{mark}")
    controller_module.MAX_SLICE_S = configured

    print("\n(c) the alternative: a worker thread stepping six runs (the GIL is shared)")
    alone, _ = worker_thread_rate(app, c, args.seconds / 2, with_window=False)
    shared, gaps = worker_thread_rate(app, c, args.seconds / 2, with_window=True)
    plain = plain_loop_per_run(args.seconds / 4)
    print(f"    worker thread alone: {alone:.0f} steps/s per run ({alone / plain:.2f} of the "
          f"plain loop's {plain:.0f})")
    print(f"    worker thread while the window animates its own six runs at 60/s: {shared:.0f} "
          f"steps/s per run ({shared / plain:.2f}); the window's tick gaps p50 "
          f"{percentile(gaps, 0.5):.1f}, p99 {percentile(gaps, 0.99):.1f}, max {gaps[-1]:.1f} ms")
    window.close()


if __name__ == "__main__":
    main()
