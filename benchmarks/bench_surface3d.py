"""Frames per second of the 3-D view with six runs animating, under Xvfb with Mesa's software
OpenGL (llvmpipe), against the 2-D surface view and a bare GL baseline in the same process.

    .venv/bin/python benchmarks/bench_surface3d.py [--points 200] [--frames 80] [--size 1000x750]

Without a display of its own it starts Xvfb (tests/gl_display.py) and runs itself there. Each
frame steps every run once, then the view takes the new tails (`update_runs`: setData on what
changed) and draws it (grabFramebuffer: paintGL now, and read back). Printed per frame (median
and worst, stepping excluded): the 3-D view; a bare GLViewWidget with the same surface mesh
and six plain GLLinePlotItems given the same points (the least pyqtgraph.opengl can do); and the 2-D
SurfaceView's update and repaint. Run once with short trajectories and once with long ones
(--points: points per run before timing starts; long lines are thinned in the view).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIX_RUNS = (("SGD", {"lr": 1e-3}), ("SGD", {"lr": 1e-3, "momentum": 0.9}),
            ("RMSprop", {"lr": 1e-2}), ("Adam", {"lr": 5e-2}), ("Adagrad", {"lr": 0.5}),
            ("NAdam", {"lr": 0.02}))


def timed(work, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        work()
        out.append(time.perf_counter() - t)
    return out


def measure(points: int, frames: int, width: int, height: int) -> None:
    import gui.surface3d_view as s3  # before the QApplication: GL contexts are shared

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    problem = s3.opengl_problem()
    if problem is not None:
        sys.exit(f"bench_surface3d: no OpenGL here: {problem}")
    import numpy as np
    import pyqtgraph.opengl as gl
    from OpenGL import GL

    from core.session import Session
    from gui.controller import Controller
    from gui.surface_view import SurfaceView

    session = Session.default()
    for run in list(session.runs):
        session.remove_run(run)
    for name, hps in SIX_RUNS:
        session.add_run(name, hps)
    session.step(points)
    controller = Controller(session)

    view3d = s3.Surface3DView(controller)
    view3d.resize(width, height)
    view3d.show()
    app.processEvents()
    glw = view3d.gl_widget
    glw.makeCurrent()
    renderer = (GL.glGetString(GL.GL_RENDERER) or b"?").decode()
    glw.doneCurrent()

    def finish(widget) -> None:
        # paintGL now and wait for it: repaint() may leave the GL work queued, and a queued
        # frame costs nothing to time. The read-back (~1 ms at this size) is counted too.
        widget.grabFramebuffer()

    def frame_3d() -> None:
        for run in session.runs:
            run.step(1)
        view3d.scene.update_runs()
        finish(glw)

    bare = gl.GLViewWidget()
    bare.resize(glw.width(), glw.height())
    bare.show()
    mesh = view3d.scene.surface_item
    bare.addItem(gl.GLSurfacePlotItem(x=mesh._x, y=mesh._y, z=mesh._z, colors=mesh._colors,
                                      shader=s3._lit_shader(), computeNormals=True))
    bare.setCameraPosition(**s3.CAMERA)
    lines = [gl.GLLinePlotItem(pos=np.zeros((0, 3)), mode="line_strip") for _ in session.runs]
    for line in lines:
        bare.addItem(line)
    scale = view3d.scene.scale
    app.processEvents()

    def frame_bare() -> None:
        for run in session.runs:
            run.step(1)
        for run, line in zip(session.runs, lines):
            t = run.trajectory
            pos = np.column_stack([scale.box_x(t.x), scale.box_y(t.y), scale.box_z(t.loss)])
            line.setData(pos=pos.astype(np.float32), color=(0, 0, 0, 1), width=2)
        finish(bare)

    view2d = SurfaceView(controller)
    view2d.resize(width, height)
    view2d.show()
    app.processEvents()
    view2d.grab()  # first paint: caches

    def frame_2d() -> None:
        for run in session.runs:
            run.step(1)
        view2d.picture.update_runs()
        view2d.viewport().repaint()

    for work in (frame_3d, frame_bare, frame_2d):
        timed(work, 5)  # warm up: first uploads, shader compiles
    step_only = statistics.median(timed(lambda: [run.step(1) for run in session.runs], frames))
    results = {name: timed(work, frames) for name, work in
               (("3-D view", frame_3d), ("bare pyqtgraph.opengl", frame_bare),
                ("2-D SurfaceView", frame_2d))}
    n = len(session.runs[0].trajectory)
    print(f"6 runs, ~{n} points each, {glw.width()}x{glw.height()} px, "
          f"{renderer}, platform {app.platformName()}")
    medians = {}
    for name, values in results.items():
        med = statistics.median(values) - step_only
        medians[name] = med
        print(f"  {name:22s} median {1e3 * med:7.2f} ms/frame ({1 / max(med, 1e-9):6.1f} fps)   "
              f"worst {1e3 * (max(values) - step_only):7.2f} ms   (stepping excluded)")
    print(f"  ratio 3-D view / bare pyqtgraph.opengl: "
          f"{medians['3-D view'] / medians['bare pyqtgraph.opengl']:.2f}")
    print(f"  ratio 3-D view / 2-D SurfaceView:       "
          f"{medians['3-D view'] / medians['2-D SurfaceView']:.2f}")
    view3d.close()
    view2d.close()
    bare.close()
    controller.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, nargs="*", default=[200, 20_000])
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--size", default="1000x750")
    parser.add_argument("--grid", type=int, default=None, help="surface samples each way")
    parser.add_argument("--here", action="store_true", help="measure in this process's display")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if not args.here:
        from tests.gl_display import xvfb_display

        with xvfb_display() as env:
            for points in args.points:
                subprocess.run([sys.executable, __file__, "--here", "--points", str(points),
                                "--frames", str(args.frames), "--size", args.size]
                               + (["--grid", str(args.grid)] if args.grid else []),
                               env=env, check=True)
        return
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        sys.exit("bench_surface3d: --here needs an X display with OpenGL, not offscreen")
    if args.grid:
        import gui.surface3d_view as s3

        s3.GRID_3D = args.grid
    for points in args.points:
        measure(points, args.frames, width, height)


if __name__ == "__main__":
    main()
