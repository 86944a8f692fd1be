"""`main.py graph`: the autograd graph headless, as JSON, as text, or rendered to PNG / SVG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import main

FORMULA = ["graph", "--formula", "(x + y) * x", "--at", "1,2"]


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def graph_json(capsys, *extra: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    code, out, err = run_cli(capsys, [*FORMULA, "--json", *extra])
    assert code == 0 and err == ""
    return json.loads(out)


def test_json_has_the_documented_shape_and_the_right_gradients(capsys) -> None:  # type: ignore[no-untyped-def]
    data = graph_json(capsys)
    assert {"nodes", "edges"} <= set(data)
    for node in data["nodes"]:
        assert {"id", "kind", "op", "torch_name", "value", "grad"} <= set(node)
        assert node["kind"] in ("op", "leaf", "constant")
    for edge in data["edges"]:
        assert {"source", "target", "grad"} <= set(edge)
    nodes = {n["id"]: n for n in data["nodes"]}
    leaves = {n["id"]: n for n in data["nodes"] if n["kind"] == "leaf"}
    assert set(leaves) == {"x", "y"}
    # loss = (x + y) * x at (1, 2): d/dx = 2x + y = 4, d/dy = x = 1
    assert leaves["x"]["grad"] == pytest.approx(4.0) and leaves["y"]["grad"] == pytest.approx(1.0)
    assert leaves["x"]["value"] == 1.0 and leaves["y"]["value"] == 2.0
    assert leaves["x"]["torch_name"] == "AccumulateGrad" and leaves["x"]["op"] is None
    ops = {n["op"]: n for n in data["nodes"] if n["kind"] == "op"}
    assert set(ops) == {"add", "mul"} and len(data["nodes"]) == 4
    assert ops["mul"]["torch_name"] == "MulBackward0" and ops["mul"]["value"] == 3.0
    assert ops["mul"]["grad"] == 1.0 and ops["add"]["value"] == 3.0
    # Edges follow the data flow (input -> consumer); each carries what backward sent back.
    sent = {(nodes[e["source"]]["id"] if nodes[e["source"]]["kind"] == "leaf"
             else nodes[e["source"]]["op"],
             nodes[e["target"]]["op"]): e["grad"] for e in data["edges"]}
    assert sent == pytest.approx({("add", "mul"): 1.0,  # d(mul)/d(add) = x
                                  ("x", "mul"): 3.0,  # d(mul)/dx = x + y
                                  ("x", "add"): 1.0, ("y", "add"): 1.0})
    # x's gradient is the sum of what its two consumers sent
    assert sum(e["grad"] for e in data["edges"] if e["source"] == "x") == leaves["x"]["grad"]


def test_freeze_x_removes_the_x_leaf(capsys) -> None:  # type: ignore[no-untyped-def]
    data = graph_json(capsys, "--freeze", "x")
    kinds = {n["id"]: n["kind"] for n in data["nodes"]}
    assert kinds["x"] == "constant" and [i for i, k in kinds.items() if k == "leaf"] == ["y"]
    x = next(n for n in data["nodes"] if n["id"] == "x")
    assert x["grad"] is None and x["torch_name"] is None and x["value"] == 1.0
    assert all(e["grad"] is None for e in data["edges"] if e["source"] == "x")
    y = next(n for n in data["nodes"] if n["id"] == "y")
    assert y["grad"] == pytest.approx(1.0)  # d/dy (x + y) x = x


def test_text_output(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, FORMULA)
    assert code == 0 and err == ""
    assert out.startswith("loss = 3 at (1, 2); 4 nodes, 4 edges")
    assert "AccumulateGrad" not in out and " x " in out


def test_text_output_with_an_unknown_value(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A node whose forward value autograd did not keep (value None) prints as '-'."""
    import core.graph

    real = core.graph.build_graph

    def without_a_value(*args, **kwargs):  # type: ignore[no-untyped-def]
        graph = real(*args, **kwargs)
        graph.nodes[1].value = None
        return graph

    monkeypatch.setattr(core.graph, "build_graph", without_a_value)
    code, out, err = run_cli(capsys, FORMULA)
    assert code == 0 and err == ""
    assert "value -" in out.splitlines()[2]


def test_json_tells_a_frozen_gradient_from_a_non_finite_one(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, ["graph", "--formula", "sqrt(x - x) + x * y", "--at", "1,2",
                                      "--freeze", "y", "--json"])
    assert code == 0 and err == ""
    data = json.loads(out)  # strict JSON: no NaN / Infinity tokens
    assert "NaN" not in out and "Infinity" not in out
    assert data["gradient"] == ["nan", None] and data["frozen"] == ["y"]
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["x"]["grad"] == "nan" and nodes["x"]["frozen"] is False
    assert nodes["y"]["grad"] is None and nodes["y"]["frozen"] is True


@pytest.mark.parametrize("name", ["g.png", "g.svg"])
def test_out_renders_a_file(capsys, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / name
    code, stdout, err = run_cli(capsys, [*FORMULA, "--out", str(out)])
    assert code == 0 and err == "" and stdout.strip() == f"wrote {out}"
    data = out.read_bytes()
    if name.endswith(".png"):
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    else:
        assert b"<svg" in data and b">mul<" in data and b">add<" in data


@pytest.mark.parametrize("argv", [
    ["graph", "--formula", "(x + ", "--at", "1,2", "--json"],  # a bad formula
    ["graph", "--formula", "x * y", "--at", "1", "--json"],  # a bad point
    [*FORMULA, "--out", "graph.bmp"],  # a bad image type
    ["graph", "--at", "1,2"],  # no surface
])
def test_bad_input_exits_2_with_one_line(capsys, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, argv)
    assert code == 2 and out == ""
    assert err.startswith("optimizer-playground: error: ") and err.count("\n") == 1
