"""Autograd graph panel: what one refresh costs, and the longest GUI stall when a long formula is
set with the panel open.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_graph.py [--repeats N]
        [--before REV] [--skip-table]

Prints:
(a) per surface (every built-in, a ~200-node formula and the 999-character x*y sum): graph
    extraction (forward + walk + hooked backward) and the layered layout, median over repeats,
    and extraction's ratio to a plain forward + backward in the same process (the baseline);
(b) the longest GUI stall: a 1 ms QTimer in the real panel's event loop records the gaps
    between its timeouts (a frame is ~16.7 ms) while the 999-character formula is set
    (i) with the race paused and (ii) while it plays for 2 s (the panel refreshes 4 times a
    second). With --before REV (e.g. 7080fc3, the commit before the worker), the same
    measurement also runs on a copy of this checkout with REV's core/graph.py,
    gui/graph_panel.py and gui/graph_view.py, in a child process, and the ratio is printed.
(c) the first draw of the biggest graph the panel draws (DRAWN_FORMULA, 281 nodes) on the GUI
    thread, its layout done already (the panel's worker does it): GraphView.set_graph (the
    items) and the first paint, medians, as a ratio to a plain forward + backward of the same
    formula measured in the same process; with --before REV, the same at REV (child process).
    `--draw-only` runs only (c).
(d) `--model`: the model workspace's graph (core.graph.build_model_graph, then the layout of
    the graph as drawn) for each model preset on 200 rows of two moons, against the plain
    `loss_fn(model(X), y).backward()` a PyTorch user writes, in the same process.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GRAPH_FILES = ("core/graph.py", "gui/graph_panel.py", "gui/graph_view.py")
LONG_FORMULA = "+".join(["x*y"] * 250)  # 999 characters, 999 tokens: legal, 501 nodes
DRAWN_FORMULA = "+".join(["x*y"] * 140)  # 281 nodes: the biggest kind the panel still draws


def big_formula(terms: int = 24) -> str:
    """About 200 nodes: alternating sin and exp terms in x and y."""
    return " + ".join(f"{k / 10:.1f}*sin({1 + k / 10:.1f}*x - y**2)" if k % 2 else
                      f"{k / 10:.1f}*exp(-(x - {k / 10:.1f})**2*y)" for k in range(terms))


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def cost_table(repeats: int) -> None:
    """(a): extraction and layout per surface against a plain forward + backward."""
    import torch

    from core.formula import compile_formula
    from core.graph import build_graph, compute_layout
    from core.surfaces import BUILTIN_SURFACES

    def plain_backward_ms(fn: Callable, x: float, y: float) -> float:
        def step() -> None:
            xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
            fn(xt, yt).backward()
        return median_ms(step, repeats)

    torch.set_num_threads(1)
    cases = [(s.name, s, s.start) for s in BUILTIN_SURFACES]
    cases.append(("formula_200", compile_formula(big_formula()), (0.3, -0.2)))
    cases.append(("x*y sum, 999 ch", compile_formula(LONG_FORMULA), (0.3, -0.2)))
    print("(a) one refresh, median of", repeats)
    print(f"{'surface':<18} {'nodes':>5} {'edges':>5} {'extract ms':>10} {'layout ms':>10} "
          f"{'plain fwd+bwd ms':>16} {'ratio':>6}")
    for name, fn, (x, y) in cases:
        graph = build_graph(fn, x, y)
        few = max(3, repeats // 10) if len(graph.nodes) > 300 else repeats
        extract = median_ms(lambda fn=fn, x=x, y=y: build_graph(fn, x, y), few)
        layout = median_ms(lambda graph=graph: compute_layout(graph), few)
        plain = plain_backward_ms(fn, x, y)
        print(f"{name:<18} {len(graph.nodes):>5} {len(graph.edges):>5} {extract:>10.2f} "
              f"{layout:>10.2f} {plain:>16.3f} {extract / plain:>6.1f}")


def stall_probe(play_s: float, with_panel: bool = True, formula: str = LONG_FORMULA
                ) -> dict[str, float]:
    """(b), in this process: the longest gap between 1 ms timer ticks while LONG_FORMULA is set
    in a shown GraphPanel (then, if play_s, while the race plays), until the panel is idle.
    Without the panel: the same for the controller alone (the part that is not the panel's)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from core.session import Session
    from gui.controller import Controller
    from gui.graph_panel import GraphPanel

    app = QApplication.instance() or QApplication([])
    controller = Controller(Session.default())
    panel = GraphPanel(controller)
    panel._lazy_measure.setInterval(10**8)  # the no_grad timing is another figure: not here
    panel.resize(1100, 420)
    if with_panel:
        panel.show()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    def idle() -> bool:
        return not with_panel or (not getattr(panel, "busy", False) and not panel._dirty)

    def run_until(done: Callable[[], bool], limit_s: float) -> None:
        end = time.perf_counter() + limit_s
        while time.perf_counter() < end and not done():
            app.processEvents()
            time.sleep(0.0005)

    # Warm-up: torch and PySide import modules on first use (the first optimizer step, the
    # first Hessian), seconds on the GUI thread the first time: another figure, not this one.
    for text in ("x*y + sin(x)", "x**2 + y**2"):
        controller.set_formula(text)
        controller.play()
        run_until(lambda: False, 0.5)
        controller.pause()
        run_until(idle, 10)
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(tick)
    timer.start()
    run_until(lambda: False, 0.2)
    gaps.clear()
    last[0] = time.perf_counter()
    start = time.perf_counter()
    QTimer.singleShot(0, lambda: controller.set_formula(formula))
    if play_s:
        QTimer.singleShot(0, controller.play)
        run_until(lambda: False, play_s)
        controller.pause()
    run_until(lambda: time.perf_counter() - start > 0.3 and idle(), 60)
    run_until(lambda: False, 0.3)
    timer.stop()
    drawn = getattr(panel, "too_big", False) is False and panel.graph is not None
    result = {"longest_ms": max(gaps) * 1000, "median_ms": statistics.median(gaps) * 1000,
              "until_idle_s": time.perf_counter() - start, "drawn": float(drawn),
              "nodes": float(len(panel.graph.nodes)) if panel.graph is not None else 0.0}
    if hasattr(panel, "shutdown"):
        panel.shutdown()
    controller.shutdown()
    return result


def draw_probe(repeats: int, before: str | None = None) -> dict[str, dict[str, float]]:
    """(c), in this process: set_graph and the first paint of DRAWN_FORMULA's graph in a shown
    GraphView, medians over `repeats` fresh views, with a plain forward + backward timed right
    after each. With `before` (a revision), that revision's gui/graph_view.py is loaded as a
    second module and drawn in turn with this one, so that both see the same machine load."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import importlib.util

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import torch

    import gui.graph_view
    from core.formula import compile_formula
    from core.graph import build_graph, compute_layout

    torch.set_num_threads(1)
    fn = compile_formula(DRAWN_FORMULA)
    graph = build_graph(fn, 0.3, -0.2)
    layout = compute_layout(graph)
    views = {"now": gui.graph_view.GraphView}
    if before is not None:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{before}:gui/graph_view.py"],
                                capture_output=True, text=True, check=True).stdout
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "graph_view_before.py"
            path.write_text(source)
            spec = importlib.util.spec_from_file_location("graph_view_before", path)
            assert spec is not None and spec.loader is not None
            old = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(old)
        views[before] = old.GraphView

    def plain() -> None:
        x = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        y = torch.tensor(-0.2, dtype=torch.float64, requires_grad=True)
        fn(x, y).backward()

    times: dict[str, dict[str, list[float]]] = {
        name: {"set_graph_ms": [], "paint_ms": [], "plain_ms": []} for name in views}
    names = list(views)
    for k in range(repeats + 1):
        # Interleaved, in turns, each from a collected heap with the collector off while timed:
        # a collection falling in one of them (or the load of a busy machine) hits all alike.
        for name in names if k % 2 else names[::-1]:
            view = views[name]()
            view.resize(1100, 420)
            view.show()
            app.processEvents()
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            view.set_graph(graph, layout)
            built = time.perf_counter()
            view.viewport().repaint()
            painted = time.perf_counter()
            plain()
            plain_end = time.perf_counter()
            gc.enable()
            view.close()
            view.deleteLater()
            app.processEvents()
            if k:  # the first round is a warm-up
                times[name]["set_graph_ms"].append((built - start) * 1000)
                times[name]["paint_ms"].append((painted - built) * 1000)
                times[name]["plain_ms"].append((plain_end - painted) * 1000)
    return {name: {key: statistics.median(v) for key, v in t.items()}
            for name, t in times.items()}


def model_table(repeats: int) -> None:
    """(d): the model graph's build and layout per preset, against a plain forward+backward."""
    import torch

    from core.problems.data import make_dataset, shape_targets
    from core.problems.model import PRESETS

    torch.set_num_threads(1)
    data = make_dataset("moons", n=200, seed=0)
    y = shape_targets(data.y, "BCEWithLogitsLoss")
    print(f"(d) the model graph, 200 rows of moons, full batch, median of {repeats}")
    print(f"{'preset':<20} {'nodes':>5} {'build ms':>9} {'layout ms':>9} {'plain ms':>9} "
          f"{'ratio':>6}")
    for name in PRESETS:
        nodes, build_ms, layout_ms, plain_ms = _model_case(name, data, y, repeats)
        print(f"{name:<20} {nodes:>5} {build_ms:>9.2f} {layout_ms:>9.2f} {plain_ms:>9.3f} "
              f"{(build_ms + layout_ms) / plain_ms:>6.1f}")


def _model_case(name: str, data: Any, y: Any, repeats: int) -> tuple[int, float, float, float]:
    import copy

    from core.graph import (build_model_graph, collapse_modules, compute_layout,
                            model_graph_inputs)
    from core.problems.data import make_loss
    from core.problems.model import build_model, preset_text
    from core.problems.training import ModelProblem
    from gui.model.graph_panel import default_collapsed

    model = build_model(preset_text(name, 2, 1), 2, seed=0)
    loss_fn = make_loss("BCEWithLogitsLoss", data.task)
    problem = ModelProblem(model, data.X, y, loss_fn)
    params = {n: t.requires_grad_() for n, t in problem.initial_parameters().items()}
    model_copy = copy.deepcopy(model)

    def build() -> Any:
        return build_model_graph(model_graph_inputs(problem, params, 0, model=model_copy))

    graph = build()
    shown = collapse_modules(graph, default_collapsed(graph))

    def plain() -> None:  # the user's loop: the same model on the same rows
        for p in model.parameters():
            p.grad = None
        loss_fn(model(data.X), y).backward()

    return (len(graph.nodes), median_ms(build, repeats),
            median_ms(lambda: compute_layout(shown), repeats),  # type: ignore[arg-type]
            median_ms(plain, repeats))


def print_draw(label: str, d: dict[str, float]) -> None:
    total = d["set_graph_ms"] + d["paint_ms"]
    print(f"  {label:<10} items {d['set_graph_ms']:6.1f} ms + first paint {d['paint_ms']:6.1f} "
          f"ms = {total:6.1f} ms; plain fwd+bwd {d['plain_ms']:.2f} ms; draw / plain = "
          f"{total / d['plain_ms']:.0f}x")


def probe_in(root: Path, play_s: float, with_panel: bool = True, formula: str = LONG_FORMULA
             ) -> dict[str, float]:
    """stall_probe in a child process importing the app from `root`."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
            "import bench_graph; print(json.dumps(bench_graph.stall_probe(float(sys.argv[3]), "
            "sys.argv[4] == '1', sys.argv[5])))")
    child = subprocess.run([sys.executable, "-c", code, str(root), str(ROOT / "benchmarks"),
                            str(play_s), "1" if with_panel else "0", formula], capture_output=True,
                           text=True, timeout=600,
                           env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, cwd=root)
    if child.returncode != 0:
        raise SystemExit(f"the probe failed in {root}:\n{child.stderr[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def tree_at(rev: str, into: Path) -> Path:
    """This checkout (as it is on disk), with REV's versions of the graph files."""
    with tempfile.TemporaryFile() as buffer:
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for folder in ("core", "gui"):
                tar.add(ROOT / folder, arcname=folder,
                        filter=lambda t: None if "__pycache__" in t.name else t)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            tar.extractall(into, filter="data")
    for name in GRAPH_FILES:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{name}"],
                              capture_output=True, text=True, check=True).stdout
        (into / name).write_text(text)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--before", metavar="REV", help="also measure the stall at this commit")
    parser.add_argument("--skip-table", action="store_true", help="only the stall figures")
    parser.add_argument("--draw-only", action="store_true", help="only (c), the first draw")
    parser.add_argument("--model", action="store_true", help="only (d), the model graph")
    args = parser.parse_args()
    if args.model:
        model_table(args.repeats)
        return
    if args.draw_only:
        print(f"(c) first draw of a {len(DRAWN_FORMULA)}-character formula's graph on the GUI "
              f"thread (layout done), median of {args.repeats}")
        result = draw_probe(args.repeats, args.before)
        for name, d in result.items():
            print_draw(name, d)
        if args.before:
            def total(d: dict[str, float]) -> float:
                return d["set_graph_ms"] + d["paint_ms"]
            print(f"  before / now = {total(result[args.before]) / total(result['now']):.2f}x")
        return
    if not args.skip_table:
        cost_table(args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        before_root = tree_at(args.before, Path(tmp)) if args.before else None
        for formula, what in ((LONG_FORMULA, "too big to draw: counted, not drawn"),
                              (DRAWN_FORMULA, "drawn")):
            print(f"\n(b) longest GUI stall while setting a {len(formula)}-character formula "
                  f"({what}); 1 ms timer, a frame is 16.7 ms")
            for label, play_s in (("race paused", 0.0), ("race playing 2 s", 2.0)):
                alone = probe_in(ROOT, play_s, with_panel=False, formula=formula)
                now = probe_in(ROOT, play_s, formula=formula)
                print(f"  {label:<17} controller alone (no panel): longest "
                      f"{alone['longest_ms']:6.1f} ms | with the panel: longest "
                      f"{now['longest_ms']:6.1f} ms, idle after {now['until_idle_s']:.2f} s")
                if before_root is not None:
                    old = probe_in(before_root, play_s, formula=formula)
                    print(f"  {'':<17} at {args.before}: longest {old['longest_ms']:7.1f} ms, "
                          f"idle after {old['until_idle_s']:.2f} s; "
                          f"before / now = {old['longest_ms'] / now['longest_ms']:.0f}x")


if __name__ == "__main__":
    main()
