"""Launch time: from starting the process to a painted main window, against bare imports.

Each repeat starts two fresh processes, one after the other, with the same interpreter: one that
only does `import torch, PySide6.QtWidgets, pyqtgraph`, and the app (`main.py`, with a clean
settings folder) which prints when its window is painted (`shown`) and when its runs' optimizers
are built (`ready`, see gui/app.py's LAUNCH_PROBE) and quits. Both times count from just before
the process starts, interpreter start-up included. Prints the medians and their ratios, and how
long the app takes from closing its window to the end of its process. For comparison, a third
process shows the window as the app did before (every optimizer built first).

    .venv/bin/python benchmarks/bench_launch.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The window as it launched before: every run's optimizer built (torch._dynamo imported) first.
EAGER = ("import os, sys, time; sys.path.insert(0, os.getcwd()); "
         "t0 = float(os.environ['OPTIMIZER_PLAYGROUND_LAUNCH_PROBE']); "
         "from PySide6.QtWidgets import QApplication; app = QApplication([]); "
         "from gui.main_window import MainWindow; w = MainWindow(); w.show(); w.repaint(); "
         "print(f'shown {time.time() - t0}'); sys.stdout.flush(); os._exit(0)")
BARE = ("import os, time; import torch, PySide6.QtWidgets, pyqtgraph; "
        "print(f\"shown {time.time() - float(os.environ['OPTIMIZER_PLAYGROUND_LAUNCH_PROBE'])}\")")


def timed(args: list[str], env: dict[str, str]) -> dict[str, float]:
    env = {**env, "OPTIMIZER_PLAYGROUND_LAUNCH_PROBE": repr(time.time())}
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    ended = time.time()
    marks = {k: float(v) for k, v in (line.split() for line in out.stdout.splitlines()
                                      if line.split()[:1] in (["shown"], ["ready"], ["closing"]))}
    if "shown" not in marks:
        raise SystemExit(f"no launch time from {args}: {out.stderr.strip()[-300:]}")
    if "closing" in marks:  # from the window's close to the end of the process
        marks["quit"] = ended - marks.pop("closing")
    return marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # As a user's install runs: with compiled bytecode cached (some shells here set
    # PYTHONDONTWRITEBYTECODE, which recompiles every module of the app at each launch, ~0.1 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as config:  # a warm-up launch writes the bytecode
        timed([sys.executable, "main.py"], {**env, "XDG_CONFIG_HOME": config})
    bare, shown, ready, quit_, eager = [], [], [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as config:  # no saved layout or session
            env["XDG_CONFIG_HOME"] = config
            bare.append(timed([sys.executable, "-c", BARE], env)["shown"])
            app = timed([sys.executable, "main.py"], env)
            shown.append(app["shown"])
            ready.append(app.get("ready", float("nan")))
            quit_.append(app.get("quit", float("nan")))
            eager.append(timed([sys.executable, "-c", EAGER], env)["shown"])
    b, s, r = (statistics.median(v) for v in (bare, shown, ready))
    every = "; ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(bare, shown, strict=True))
    print(f"repeats: {args.repeats}, medians below (each, bare/window s: {every})")
    print(f"bare import torch, PySide6.QtWidgets, pyqtgraph: {b:.3f} s")
    print(f"launch to a painted window: {s:.3f} s  = {s / b:.2f} x the bare imports")
    print(f"launch to the runs built (optimizers ready): {r:.3f} s  = {r / b:.2f} x")
    e = statistics.median(eager)
    print(f"as before (runs built before the window shows): {e:.3f} s  = {e / b:.2f} x")
    print(f"quit: window closed to process ended: {statistics.median(quit_) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
