"""Cost of a ReduceLROnPlateau preview fed a run's losses (gui/run_card.py, gui/model/run_panel.py)
against the plain torch loop it stands for, in the same process.

    .venv/bin/python benchmarks/bench_plateau_preview.py [--quick]

(a) preview_lr for a 60-step-old run (61 losses, a 200-step preview whose flat tail is filled,
    not stepped) and for a 1000-step-old one (1000 losses, the longest preview), against a plain
    loop that steps a throwaway SGD and ReduceLROnPlateau on the same losses and reads the lr
    each step, as a PyTorch user would. Repeats are interleaved and the median is reported.
    Ratio = plain time / ours (1.0: no overhead).
(b) what that means on screen: the preview is redrawn at most PLATEAU_PREVIEW_HZ times a second
    while the card's section is open, so its share of the GUI thread is that rate times the
    median cost.
(c) following a playing run, as the card does: the losses grow by 30 a redraw (60 steps/s at
    2 Hz) up to 1000; the picker's LossFedPreview steps torch only on the new ones, against
    the plain loop done again from the start at each redraw (what preview_lr alone costs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.schedulers import LossFedPreview, preview_lr  # noqa: E402
from gui.run_card import PLATEAU_PREVIEW_HZ  # noqa: E402
from gui.scheduler_picker import preview_length  # noqa: E402

torch.set_num_threads(1)
KWARGS = {"factor": 0.5, "patience": 3}


def plain(losses: list[float], steps: int) -> float:
    t0 = time.perf_counter()
    parameter = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **KWARGS)
    lrs = []
    for k in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if k < len(losses):
            scheduler.step(losses[k])
    return time.perf_counter() - t0


def ours(losses: list[float], steps: int) -> float:
    t0 = time.perf_counter()
    preview_lr("SGD", {"lr": 0.1}, "ReduceLROnPlateau", KWARGS, steps, losses=losses)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    repeats = 5 if parser.parse_args().quick else 21
    print(f"load average {os.getloadavg()[0]:.2f}, torch threads {torch.get_num_threads()}")
    for known in (61, 1000):
        losses = [1.0 / (1 + k) if k < known // 2 else 0.5 for k in range(known)]
        steps = preview_length("ReduceLROnPlateau", KWARGS, known)
        plain_times, our_times = [], []
        for _ in range(repeats):  # interleaved, so a busy moment hits both
            plain_times.append(plain(losses, steps))
            our_times.append(ours(losses, steps))
        p, o = statistics.median(plain_times), statistics.median(our_times)
        print(f"(a) {known} losses, {steps}-step preview: plain loop {p * 1e3:.2f} ms, "
              f"preview_lr {o * 1e3:.2f} ms, ratio plain/ours {p / o:.2f}")
        print(f"(b)   at {PLATEAU_PREVIEW_HZ} Hz: {100 * PLATEAU_PREVIEW_HZ * o:.1f}% of the GUI "
              f"thread while the section is open and the run plays")

    losses = [1.0 / (1 + k) if k < 500 else 0.002 for k in range(1000)]
    lengths = list(range(30, 1001, 30))
    plain_total = our_total = 0.0
    kept = LossFedPreview("SGD", {"lr": 0.1}, "ReduceLROnPlateau", KWARGS)
    for n in lengths:  # interleaved, redraw by redraw
        steps = preview_length("ReduceLROnPlateau", KWARGS, n)
        plain_total += plain(losses[:n], steps)
        t0 = time.perf_counter()
        kept.preview(losses[:n], steps)
        our_total += time.perf_counter() - t0
    p, o = plain_total / len(lengths), our_total / len(lengths)
    print(f"(c) a playing run, {len(lengths)} redraws to 1000 losses: plain loop from the start "
          f"{p * 1e3:.2f} ms a redraw, LossFedPreview {o * 1e3:.2f} ms, ratio plain/ours "
          f"{p / o:.2f}; {100 * PLATEAU_PREVIEW_HZ * o:.2f}% of the GUI thread at "
          f"{PLATEAU_PREVIEW_HZ} Hz")


if __name__ == "__main__":
    main()
