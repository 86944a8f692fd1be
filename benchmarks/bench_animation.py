"""What an animation export costs, against plain baselines in the same process.

    .venv/bin/python benchmarks/bench_animation.py [--size 800x600] [--frames 60]

Printed (median per frame, and ratios):
- drawing one frame (RaceAnimation.frame: step the copy, update the paths, paint the scene into
  a QImage, read it back) against one still picture of the same session at the same size
  (gui.image_export.render_session_image to PNG, which builds the picture every time): the
  film reuses one picture, so a frame should cost a fraction of a still;
- the longest single piece the window's timer runs (AnimationExport.work): what the GUI thread
  blocks for at most;
- GIF encoding with the shared palette (AnimationWriter: quantize to one palette, Pillow's
  writer) against Pillow's own GIF writer on the same RGB frames (a palette per frame);
- MP4 encoding (AnimationWriter) against imageio-ffmpeg's write_frames fed the same frames;
- the stepping alone (RaceStepper) against a plain torch loop of the same optimizers.

Model mode (`--mode model`, or both by default), SGD and Adam training the small MLP on moons:
- the replay's stepping (ModelReplay.advance: the steps, a copy of the parameters and the
  held-out loss per frame) against a plain torch loop (nn.Sequential, the same optimizers and
  steps, full batch);
- drawing one frame (ModelFramePicture.frame: regions, boundaries, curves, paint, read back)
  against the plain loop's cost of one frame's steps, and the longest GUI-thread piece.

Basins (`--mode basins`): a 64 x 64 grid of Adam on Himmelblau, 200 steps, a frame every 10:
the film's stepping (BasinReplay: two passes and a map per frame) against core.many.basins (one
pass, one map), and a frame's drawing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="800x600")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--mode", choices=("race", "model", "basins", "both"), default="both")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    n = args.frames
    if args.mode in ("race", "both"):
        race(width, height, n)
    if args.mode in ("model", "both"):
        model_mode(width, height, n)
    if args.mode in ("basins", "both"):
        basin_mode(width, height)


def race(width: int, height: int, n: int) -> None:

    import numpy as np
    import torch
    from PIL import Image

    from core.animation import AnimationWriter, RaceStepper, plan_animation
    from core.session import Session
    from gui.animation_export import AnimationExport, RaceAnimation
    from gui.image_export import ensure_app, render_session_image

    ensure_app()
    torch.set_num_threads(1)
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=4 * (n - 1), steps_per_frame=4)
    folder = Path(tempfile.mkdtemp(prefix="bench_animation_"))

    # --- drawing ---------------------------------------------------------------------------
    animation = RaceAnimation(session, plan, width, height)
    animation.frame(0)  # warm: legend placed, fonts loaded
    frames, times = [], []
    for k in range(plan.frame_count):
        t = time.perf_counter()
        frames.append(animation.frame(k))
        times.append(time.perf_counter() - t)
    animation.close()
    still_session = Session.default()
    still_session.play(4 * (n - 1))
    stills = []
    for _ in range(5):
        t = time.perf_counter()
        render_session_image(still_session, folder / "still.png", width, height)
        stills.append(time.perf_counter() - t)
    frame_ms, still_ms = 1e3 * statistics.median(times), 1e3 * statistics.median(stills)
    print(f"{width}x{height}, {plan.frame_count} frames")
    print(f"draw a frame      {frame_ms:7.1f} ms (worst {1e3 * max(times):.1f}); a still PNG "
          f"{still_ms:.1f} ms; frame/still = {frame_ms / still_ms:.2f}")
    # What the window's timer runs: AnimationExport.work(), one bounded piece at a time.
    export = AnimationExport(session, folder / "pieces.gif", width, height, plan)
    pieces, done = [], False
    while not done:
        t = time.perf_counter()
        done = export.work()
        pieces.append(time.perf_counter() - t)
    t = time.perf_counter()
    export.finish()  # in the window: a gui.worker Job, off the GUI thread
    encode = time.perf_counter() - t
    print(f"GUI thread pieces  longest {1e3 * max(pieces):.1f} ms, median "
          f"{1e3 * statistics.median(pieces):.1f} ms over {len(pieces)}; GIF encode off the "
          f"GUI thread {1e3 * encode:.0f} ms")

    # --- GIF ---------------------------------------------------------------------------------
    t = time.perf_counter()
    with AnimationWriter(folder / "ours.gif", width, height, 10,
                         palette_frames=[frames[0], frames[-1]]) as writer:
        for f in frames:
            writer.add(f)
        writer.finish()
    ours = time.perf_counter() - t
    t = time.perf_counter()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(folder / "plain.gif", save_all=True, append_images=images[1:], duration=100,
                   loop=0)
    plain = time.perf_counter() - t
    size_ours = (folder / "ours.gif").stat().st_size
    size_plain = (folder / "plain.gif").stat().st_size
    print(f"GIF encode        {1e3 * ours / len(frames):7.1f} ms/frame (shared palette); "
          f"Pillow alone {1e3 * plain / len(frames):.1f}; ours/plain = {ours / plain:.2f}; "
          f"file {size_ours / 1e6:.2f} MB vs {size_plain / 1e6:.2f} MB")

    # --- MP4 ---------------------------------------------------------------------------------
    try:
        import imageio_ffmpeg
    except ImportError:
        print("MP4: imageio-ffmpeg is not installed (pip install imageio-ffmpeg)")
    else:
        t = time.perf_counter()
        with AnimationWriter(folder / "ours.mp4", width, height, 10) as writer:
            for f in frames:
                writer.add(f)
            writer.finish()
        ours = time.perf_counter() - t
        t = time.perf_counter()
        gen = imageio_ffmpeg.write_frames(str(folder / "plain.mp4"), (width, height), fps=10,
                                          codec="libx264", quality=8, macro_block_size=1,
                                          ffmpeg_log_level="error")
        gen.send(None)
        for f in frames:
            gen.send(np.ascontiguousarray(f).tobytes())
        gen.close()
        plain = time.perf_counter() - t
        print(f"MP4 encode        {1e3 * ours / len(frames):7.1f} ms/frame; imageio-ffmpeg "
              f"alone {1e3 * plain / len(frames):.1f}; ours/plain = {ours / plain:.2f}")

    # --- stepping ------------------------------------------------------------------------------
    stepper = RaceStepper(session, plan)
    t = time.perf_counter()
    for k in range(plan.frame_count):
        stepper.go_to(k)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    for run in session.runs:
        x = torch.tensor(session.start[0], dtype=torch.float64, requires_grad=True)
        y = torch.tensor(session.start[1], dtype=torch.float64, requires_grad=True)
        opt = run.spec.cls([x, y], **run.hyperparameters)
        for _ in range(plan.last_step):
            opt.zero_grad()
            loss = (1 - x) ** 2 + 100 * (y - x ** 2) ** 2
            loss.backward()
            opt.step()
    plain = time.perf_counter() - t
    print(f"stepping          {1e3 * ours / plan.frame_count:7.2f} ms/frame; a plain torch loop "
          f"{1e3 * plain / plan.frame_count:.2f}; ours/plain = {ours / plain:.2f}")


def model_mode(width: int, height: int, n: int, steps_per_frame: int = 5) -> None:
    import copy

    import torch
    from torch import nn

    from core.model_animation import ModelAnimationOptions, ModelReplay, plan_model_animation
    from core.model_session import ModelSession
    from gui.image_export import ensure_app
    from gui.model.animation_frames import ModelAnimationExport, ModelFramePicture

    ensure_app()
    torch.set_num_threads(1)
    session = ModelSession.default()  # SGD(lr=0.1) and Adam(lr=0.01), small MLP, moons
    steps = steps_per_frame * (n - 1)
    options = ModelAnimationOptions(steps=steps, steps_per_frame=steps_per_frame,
                                    size=(width, height))
    plan = plan_model_animation(session, options)
    print(f"model mode: {width}x{height}, {plan.frame_count} frames of {steps_per_frame} steps, "
          f"{len(session.runs)} runs")

    replay = ModelReplay(session, plan)
    t = time.perf_counter()
    replay.run_to_end()
    ours = time.perf_counter() - t
    built = session.build()
    t = time.perf_counter()
    for spec in session.runs:  # what a PyTorch user writes, on the same rows and weights
        model = copy.deepcopy(built.model)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(built.problem.initial_parameters()[name])
        optimizer = getattr(torch.optim, spec.optimizer)(model.parameters(),
                                                         **spec.hyperparameters)
        loss_fn = nn.BCEWithLogitsLoss()
        X, y = built.problem.X, built.problem.y
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(model(X), y).backward()
            optimizer.step()
    plain = time.perf_counter() - t
    per_frame_plain = plain / (plan.frame_count - 1)
    print(f"replay stepping   {1e3 * ours / (plan.frame_count - 1):7.2f} ms/frame; a plain "
          f"torch loop {1e3 * per_frame_plain:.2f}; ours/plain = {ours / plain:.2f}")

    picture = ModelFramePicture(replay, width, height, 0)
    picture.fix_axes()
    picture.frame(0)  # warm
    times = []
    for k in range(plan.frame_count):
        t = time.perf_counter()
        picture.frame(k)
        times.append(time.perf_counter() - t)
    picture.close()
    frame_ms = 1e3 * statistics.median(times)
    print(f"draw a frame      {frame_ms:7.1f} ms (worst {1e3 * max(times):.1f}); "
          f"frame/plain steps of a frame = {frame_ms / (1e3 * per_frame_plain):.1f}")
    folder = Path(tempfile.mkdtemp(prefix="bench_model_animation_"))
    export = ModelAnimationExport(session, folder / "pieces.gif", width, height, plan)
    pieces, done = [], False
    while not done:
        t = time.perf_counter()
        done = export.work()
        pieces.append(time.perf_counter() - t)
    t = time.perf_counter()
    export.finish()
    encode = time.perf_counter() - t
    print(f"GUI thread pieces  longest {1e3 * max(pieces):.1f} ms, median "
          f"{1e3 * statistics.median(pieces):.1f} ms over {len(pieces)}; GIF encode off the "
          f"GUI thread {1e3 * encode:.0f} ms")


def basin_mode(width: int, height: int, grid: int = 64, steps: int = 200, every: int = 10) -> None:
    import torch

    from core.basin_animation import BasinReplay, plan_basin_animation
    from core.many import basins
    from core.surfaces import get_surface
    from gui.basin_animation import BasinFramePicture
    from gui.image_export import ensure_app

    ensure_app()
    torch.set_num_threads(1)
    surface = get_surface("himmelblau")
    plan = plan_basin_animation(steps, fps=10, steps_per_frame=every)
    print(f"basins: {grid}x{grid} starts, {steps} steps, {plan.frame_count} frames, "
          f"{width}x{height}")
    basins(surface, "Adam(lr=0.1)", 2, 1)  # warm: torch.optim's first optimizer imports a lot
    t = time.perf_counter()
    replay = BasinReplay(surface, "Adam(lr=0.1)", grid, plan)
    while not replay.prepare():
        pass
    while not replay.advance():
        pass
    ours = time.perf_counter() - t
    t = time.perf_counter()
    basins(surface, "Adam(lr=0.1)", grid, steps)
    plain = time.perf_counter() - t
    print(f"film stepping     {1e3 * ours:7.0f} ms; core.many.basins {1e3 * plain:.0f} ms; "
          f"ours/plain = {ours / plain:.2f}")
    picture = BasinFramePicture(replay, width, height)
    picture.frame(0)  # warm
    times = []
    for k in range(plan.frame_count):
        t = time.perf_counter()
        picture.frame(k)
        times.append(time.perf_counter() - t)
    picture.close()
    print(f"draw a frame      {1e3 * statistics.median(times):7.1f} ms (worst "
          f"{1e3 * max(times):.1f})")


if __name__ == "__main__":
    main()
