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
(d) a slow step: one LBFGS(max_iter=1000, zero tolerances) step on rastrigin, stepped directly,
    against the window's longest tick gap while the controller steps that run on a worker at
    60 steps/s beside the six others;
(e) quitting: the real window plays, closes, and the process's time from the end of
    `app.exec()` to its exit, as the app does it today (interpreter teardown: torch, then every
    Qt wrapper) and with `os._exit` right after `exec()` (settings are already synced by then).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
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


def run_event_loop(seconds: float) -> None:
    """Run Qt's event loop as the app does (it sleeps between events and lets go of the GIL),
    not a busy processEvents() loop, which would starve any other thread."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


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
    run_event_loop(seconds)
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
    if with_window:
        run_event_loop(seconds)
    else:
        time.sleep(seconds)
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - start
    if with_window:
        controller.pause()
        controller.sigStepped.disconnect(on_stepped)
    return rounds[0] / elapsed, sorted(gaps)


SLOW_LBFGS = {"lr": 1.0, "max_iter": 1000, "tolerance_grad": 0.0, "tolerance_change": 0.0}


def slow_step(app, controller, seconds: float) -> None:
    from core.run import Run
    from core.surfaces import get_surface

    rastrigin = get_surface("rastrigin")
    direct = []
    run = Run(rastrigin, "LBFGS", SLOW_LBFGS)
    for _ in range(3):
        t = time.perf_counter()
        run.step(1)
        direct.append((time.perf_counter() - t) * 1000)
    controller.set_surface_name("rastrigin")
    lbfgs = controller.add_run("LBFGS", SLOW_LBFGS)
    controller.set_speed(60)
    controller.max_tick_gap = 0.0
    _, gaps = animate(app, controller, seconds)
    print(f"    one step stepped directly: median {statistics.median(direct):.0f} ms "
          f"(what the GUI thread froze for, per step, before)")
    print(f"    stepped on a worker beside six runs at 60/s: {lbfgs.steps} steps in "
          f"{seconds:g} s; the window's tick gaps p50 {percentile(gaps, 0.5):.1f}, p99 "
          f"{percentile(gaps, 0.99):.1f}, max {gaps[-1]:.1f} ms")
    controller.remove_run(lbfgs)
    controller.set_surface_name("rosenbrock")


def quit_probe(fast: bool) -> None:
    """In a child process: the real window plays a second, closes; print when exec() ended."""
    from PySide6.QtCore import QTimer

    app = QApplication.instance() or QApplication([])
    from gui.main_window import MainWindow

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "q.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, restore=False)
    window.show()
    QTimer.singleShot(100, window.controller.play)
    QTimer.singleShot(1100, window.close)
    QTimer.singleShot(1100, app.quit)
    code = app.exec()
    print(f"EXEC_END {time.time():.6f}", flush=True)
    if fast:
        sys.stderr.flush()
        os._exit(code)


def quit_times(repeats: int = 3) -> dict[str, float]:
    out = {}
    for mode in ("teardown", "os._exit"):
        times = []
        for _ in range(repeats):
            child = subprocess.run([sys.executable, __file__, "--quit-probe", mode],
                                   capture_output=True, text=True, timeout=120)
            ended = time.time()
            line = [x for x in child.stdout.splitlines() if x.startswith("EXEC_END")][0]
            times.append((ended - float(line.split()[1])) * 1000)
        out[mode] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--quit-probe", choices=("teardown", "os._exit"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quit_probe:
        quit_probe(args.quit_probe == "os._exit")
        return

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

    print("\n(d) a slow step: LBFGS(max_iter=1000, tolerance_grad=0, tolerance_change=0)")
    slow_step(app, c, args.seconds / 2)
    window.close()

    print("\n(e) quitting: from the end of app.exec() to the end of the process (median of 3)")
    q = quit_times()
    print(f"    interpreter teardown, as today: {q['teardown']:.0f} ms; os._exit after exec(): "
          f"{q['os._exit']:.0f} ms")
    sys.stdout.flush()
    os._exit(0)  # the teardown measured in (e) is not worth waiting for here either


if __name__ == "__main__":
    main()
