"""The lab's autograd graph (Lab.graph -> core.graph.build_tensor_graph): what one build costs
against a plain forward + backward of the same Q in the same process, and what drawing it costs
on the GUI thread (GraphScene.set_graph with the layout done in the worker).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_lab_graph.py [--repeats N]

Prints, per program (the presets, a chain of ~150 and of ~290 autograd nodes, and the longest
legal program, which is too big to draw and only counted): the median build time, its ratio to
the plain loop (the baseline), the layout time (in the worker) and the scene build (GUI thread).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import PySide6.QtWidgets  # noqa: E402,F401  (PySide6 before pyqtgraph: the binding it picks)
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.graph import compute_layout  # noqa: E402
from core.lab.expression import run_program  # noqa: E402
from core.lab.presets import get_preset  # noqa: E402
from core.lab.values import TensorSpec  # noqa: E402
from core.lab.workbench import Lab  # noqa: E402
from gui.graph_panel import MAX_DRAWN_NODES  # noqa: E402
from gui.graph_view import GraphScene  # noqa: E402


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def chain(n: int) -> Lab:
    return Lab([TensorSpec("a", "[2., 3.]"), TensorSpec("b", "[0.5, 0.25]")],
               "a" + "*b" * n + "+a" * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841  (painting text needs it)
    labs = [(name, get_preset(name).lab()) for name in ("note", "linear", "softmax", "freeze")]
    labs += [("chain ~150 nodes", chain(73)), ("chain ~290 nodes", chain(143)),
             ("longest legal (too big)", chain(249))]
    print(f"{'program':<26}{'nodes':>6}{'build ms':>10}{'plain ms':>10}{'ratio':>7}"
          f"{'layout ms':>11}{'scene ms':>10}")
    for name, lab in labs:
        v = lab.ones_gradient()

        def plain(lab: Lab = lab, v=v) -> None:  # type: ignore[no-untyped-def]
            q = run_program(lab.program, lab.leaves())[0]
            if q.requires_grad:
                q.backward(gradient=v)

        graph = lab.graph(v, max_nodes=MAX_DRAWN_NODES)
        build = median_ms(lambda lab=lab, v=v: lab.graph(v, max_nodes=MAX_DRAWN_NODES),
                          args.repeats)
        base = median_ms(plain, args.repeats)
        layout_ms = scene_ms = float("nan")
        if not graph.too_big:
            layout = compute_layout(graph)
            layout_ms = median_ms(lambda g=graph: compute_layout(g), max(3, args.repeats // 3))

            def draw(g=graph, layout=layout) -> None:  # type: ignore[no-untyped-def]
                GraphScene(orientation="vertical").set_graph(g, layout)

            scene_ms = median_ms(draw, max(3, args.repeats // 3))
        print(f"{name:<26}{graph.node_count:>6}{build:>10.2f}{base:>10.2f}{build / base:>7.1f}"
              f"{layout_ms:>11.2f}{scene_ms:>10.2f}")


if __name__ == "__main__":
    main()
