"""Model mode in the GUI: six runs training the small MLP on two moons, live.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_model_workspace.py [--seconds 4]

Prints, all in this process:
(0) the textbook PyTorch loop (zero_grad, loss_fn(model(X), y), backward, step) on six copies
    of the model, against the engine's Run.step loop on the same problem;
(a) steps/s per run when the ModelController steps six runs, by its tick (the timer's path:
    Run.step, and the held-out loss under no_grad every TEST_EVERY steps) and by step_once (a
    manual step, which measures the held-out loss every time), against a plain loop calling
    Run.step on six runs of the same problem round-robin: the workspace's own cost per step;
(b) the real ModelWorkspace, shown, playing six runs: steps/s per run (ratio to the plain loop
    of (a)), and the gaps between two frames of a 16 ms probe timer (median, 99th percentile,
    longest; a frame is ~16.7 ms), against the same probe with the workspace idle.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

# Tiny tensors: intra-op threads only add contention (measured on this 2-core machine under
# load: an Adam step of the small MLP took 0.4-0.7 ms with 1 thread, 6-23 ms with 2), and the
# other benchmarks use one thread too.
torch.set_num_threads(1)

from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.run import Run  # noqa: E402
from gui.model.controller import ModelController  # noqa: E402
from gui.model.workspace import ModelWorkspace  # noqa: E402

SIX = ("SGD", "Adam", "RMSprop", "AdamW", "NAdam", "Adagrad")


def torch_steps_per_second(controller: ModelController, seconds: float) -> float:
    """The textbook loop, as a PyTorch user writes it: six copies of the model, six
    optimizers, zero_grad / loss_fn(model(X), y) / backward / step, round-robin."""
    import copy

    X, y, loss_fn = controller.problem.X, controller.problem.y, controller.loss_fn
    models = [copy.deepcopy(controller.model) for _ in SIX]
    optimizers = [getattr(torch.optim, name)(m.parameters(), lr=0.01)
                  for name, m in zip(SIX, models)]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for model, optimizer in zip(models, optimizers):
            optimizer.zero_grad()
            loss = loss_fn(model(X), y)
            loss.backward()
            optimizer.step()
            done += 1
    return done / len(models) / (time.perf_counter() - start)


def plain_steps_per_second(controller: ModelController, seconds: float) -> float:
    runs = [Run(controller.problem, name, {"lr": 0.01}) for name in SIX]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for run in runs:
            done += run.step(1)
    return done / len(runs) / (time.perf_counter() - start)


def controller_steps_per_second(controller: ModelController, seconds: float) -> float:
    controller.sharpness_every = 10 ** 9  # (a) is about stepping; sharpness runs elsewhere
    before, start = sum(r.steps for r in controller.runs), time.perf_counter()
    while time.perf_counter() - start < seconds:
        controller.step_once()
    steps = sum(r.steps for r in controller.runs) - before
    return steps / len(controller.runs) / (time.perf_counter() - start)


def tick_steps_per_second(controller: ModelController, seconds: float) -> float:
    controller.sharpness_every = 10 ** 9
    before, start = sum(r.steps for r in controller.runs), time.perf_counter()
    while time.perf_counter() - start < seconds:
        controller.tick()
    steps = sum(r.steps for r in controller.runs) - before
    return steps / len(controller.runs) / (time.perf_counter() - start)


def frame_gaps(app: QApplication, seconds: float) -> list[float]:
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    probe = QTimer()
    probe.setInterval(16)

    def on_probe() -> None:
        gaps.append(clock.nsecsElapsed() / 1e6)
        clock.restart()

    probe.timeout.connect(on_probe)
    probe.start()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    probe.stop()
    return sorted(gaps[1:])


def describe(gaps: list[float]) -> str:
    p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))]
    return (f"median {statistics.median(gaps):5.1f} ms, p99 {p99:5.1f} ms, "
            f"longest {gaps[-1]:5.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)

    controller = ModelController()
    for name in SIX:
        controller.add_run(name)
    plain_torch = torch_steps_per_second(controller, args.seconds)
    plain = plain_steps_per_second(controller, args.seconds)
    print(f"(0) plain PyTorch loop: {plain_torch:7.0f} steps/s per run; the engine's Run.step "
          f"loop: {plain:7.0f} (ratio {plain / plain_torch:.2f})")
    ticked = tick_steps_per_second(controller, args.seconds)
    stepped = controller_steps_per_second(controller, args.seconds)
    print(f"(a) plain Run.step loop: {plain:7.0f} steps/s per run; ModelController.tick "
          f"(test loss every {controller.test_every}): {ticked:7.0f} (ratio "
          f"{ticked / plain:.2f}); step_once (test loss every step): {stepped:7.0f} (ratio "
          f"{stepped / plain:.2f}); tick against plain PyTorch {ticked / plain_torch:.2f}")
    controller.shutdown()

    for sharpness in (True, False):
        workspace = ModelWorkspace()
        workspace.resize(1280, 800)
        c = workspace.controller
        for name in SIX[2:]:
            c.add_run(name)
        if not sharpness:
            c.sharpness_every = 10 ** 9
        workspace.show()
        app.processEvents()
        idle = frame_gaps(app, args.seconds / 2)
        before = sum(r.steps for r in c.runs)
        start = time.perf_counter()
        c.play()
        live = frame_gaps(app, args.seconds)
        c.pause()
        rate = (sum(r.steps for r in c.runs) - before) / len(c.runs) / (
            time.perf_counter() - start)
        c.wait_for_sharpness()
        measured = sum(len(c.extras[r].sharpness) for r in c.runs)
        print(f"(b) live workspace, 6 runs, sharpness {'on' if sharpness else 'off'}: "
              f"{rate:5.0f} steps/s per run (ratio to the plain loop {rate / plain:.2f}); "
              f"{measured} sharpness measurements")
        print(f"    frame gaps idle:    {describe(idle)}")
        print(f"    frame gaps playing: {describe(live)}")
        workspace.shutdown()
        workspace.close()


if __name__ == "__main__":
    main()
