"""`main.py autograd`, through the functions main.py wires in (core/lab/cli.py, core/lab/report.py).

main.py turns a ValueError (LabError is a PlaygroundError, so a ValueError) into one line on
stderr and exit status 2; these tests check the text and the error the functions give it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import PlaygroundError
from core.lab.cli import add_autograd_arguments, run_autograd_command
from core.lab.report import autograd_report

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
NOTE = ["--tensor", "a=[2., 3.]", "--tensor", "b=[6., 4.]", "--expr", "3*a**3 - b**2"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autograd")
    add_autograd_arguments(p)
    return p


def cli(*argv: str) -> str:
    return run_autograd_command(parser().parse_args(list(argv)))


def test_the_tutorial_example_as_json_exactly() -> None:
    data = json.loads(cli(*NOTE, "--gradient", "[1., 1.]", "--json"))
    assert set(data) == {"output", "grad", "jacobian", "vjp"}
    assert data["output"] == {"value": [-12.0, 65.0], "shape": [2], "grad_fn": "SubBackward0"}
    assert data["grad"] == {"a": [36.0, 81.0], "b": [-12.0, -8.0]}  # 9*a**2 and -2*b
    assert data["jacobian"] == {"a": [[36.0, 0.0], [0.0, 81.0]], "b": [[-12.0, 0.0], [0.0, -8.0]]}
    assert data["vjp"] == data["grad"]


def test_a_vector_output_without_gradient_is_torchs_message_and_the_fix() -> None:
    a = torch.tensor([2., 3.], dtype=F64, requires_grad=True)
    with pytest.raises(RuntimeError) as torch_info:
        (3 * a**3).backward()
    with pytest.raises(PlaygroundError) as info:
        cli(*NOTE, "--json")
    message = str(info.value)
    assert message.startswith(str(torch_info.value))
    assert '--gradient "[1., 1.]"' in message and "\n" not in message
    assert isinstance(info.value, ValueError)  # main.py: exit 2, one line


def test_no_grad_gives_null_and_no_jacobian() -> None:
    data = json.loads(cli(*NOTE, "--gradient", "[1., 1.]", "--no-grad", "b", "--json"))
    assert data["grad"] == {"a": [36.0, 81.0], "b": None}
    assert set(data["jacobian"]) == set(data["vjp"]) == {"a"}


def test_a_scalar_output_needs_no_gradient() -> None:
    data = json.loads(cli("--tensor", "a=[1., 2., 3.]", "--tensor", "b=[4., 5., 6.]",
                          "--expr", "sum(a * b)", "--json"))
    assert data["output"] == {"value": 32.0, "shape": [], "grad_fn": "SumBackward0"}
    assert data["grad"] == {"a": [4.0, 5.0, 6.0], "b": [1.0, 2.0, 3.0]}
    assert data["jacobian"] == {"a": [4.0, 5.0, 6.0], "b": [1.0, 2.0, 3.0]}


@pytest.mark.parametrize("expr, tensors, gradient", [
    ("W @ a + b", {"W": [[1., 2.], [3., 4.], [5., 6.]], "a": [1., -1.], "b": [0.5, 0., -0.5]},
     [1., 2., 3.]),
    ("softmax(a)", {"a": [1., 2., 3.]}, [0.2, -1., 0.5]),
    ("norm(a)", {"a": [3., 4.]}, None),
    ("h = a * b; Q = sum(h**2)", {"a": [2., 3.], "b": [6., 4.]}, None),
])
def test_each_field_equals_plain_torch(expr: str, tensors: dict[str, list], gradient) -> None:  # type: ignore[no-untyped-def, type-arg]
    argv = [x for n, v in tensors.items() for x in ("--tensor", f"{n}={v}")]
    argv += ["--expr", expr, "--json"] + (["--gradient", str(gradient)] if gradient else [])
    data = json.loads(cli(*argv))
    leaves = {n: torch.tensor(v, dtype=F64, requires_grad=True) for n, v in tensors.items()}
    plain = {
        "W @ a + b": lambda W, a, b: W @ a + b,
        "softmax(a)": lambda a: torch.softmax(a, dim=-1),
        "norm(a)": lambda a: a.norm(),
        "h = a * b; Q = sum(h**2)": lambda a, b: ((a * b)**2).sum(),
    }[expr]
    Q = plain(**leaves)
    assert data["output"] == {"value": Q.tolist(), "shape": list(Q.shape),
                              "grad_fn": Q.grad_fn.name()}
    v = torch.ones_like(Q) if gradient is None else torch.tensor(gradient, dtype=F64)
    Q.backward(gradient=v)
    assert data["grad"] == {n: x.grad.tolist() for n, x in leaves.items()}
    jac = torch.autograd.functional.jacobian(plain, tuple(x.detach() for x in leaves.values()))
    assert data["jacobian"] == {n: j.tolist() for n, j in zip(leaves, jac)}
    for n, x in leaves.items():
        assert torch.allclose(torch.tensor(data["vjp"][n], dtype=F64), x.grad)


@pytest.mark.parametrize("argv, message", [
    (["--tensor", "a[2., 3.]", "--expr", "a"], "NAME=VALUE"),
    (["--tensor", "a=[2., 3.]", "--expr", "a + c"], "unknown name 'c'"),
    (["--tensor", "a=[2., 3.]", "--expr", "sum(a)", "--no-grad", "z"], "no tensor is named"),
    (["--tensor", "a=[2., 3.]", "--expr", "a", "--gradient", "[1.]"], "shape"),
    (["--tensor", "a=[2., 3.]", "--expr", "sum(a)", "--no-grad", "a"], "does not require grad"),
    (["--tensor", "a=open('x')", "--expr", "a"], "unknown maker"),
    (["--tensor", "a=[2., 3.]", "--expr", "a \u00d7 2"], "write \\* for a product"),
    (["--tensor", "a=[2., 3.]", "--expr", "a * \u0662"], "write digits as 0-9"),
    ([*(x for i in range(9) for x in ("--tensor", f"t{i}=1.")), "--expr", "t0"],
     "at most 8 tensors \\(got 9\\)"),
])
def test_bad_input_is_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(PlaygroundError, match=message) as info:
        cli(*argv)
    assert "\n" not in str(info.value)


def test_the_table_shows_q_grads_and_vjp() -> None:
    text = cli(*NOTE, "--gradient", "[1., 1.]")
    assert "SubBackward0" in text and "[36.0, 81.0]" in text and "dQ/da" in text


def test_non_finite_values_are_strict_json() -> None:
    report = autograd_report(["a=[0., 1.]"], "log(a)", "[1., 1.]", [])
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["output"]["value"] == ["-inf", 0.0]
    assert json.loads(text)["grad"]["a"] == ["inf", 1.0]


def test_building_the_parser_does_not_import_torch() -> None:
    code = ("import argparse, sys\nfrom core.lab.cli import add_autograd_arguments\n"
            "add_autograd_arguments(argparse.ArgumentParser())\nprint('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# --- through main.main, as a user types it ------------------------------------------------------

def test_main_autograd_prints_the_tutorial_json(capsys) -> None:
    import main

    assert main.main(["autograd", *NOTE, "--gradient", "[1., 1.]", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    a = torch.tensor([2.0, 3.0], dtype=F64, requires_grad=True)
    b = torch.tensor([6.0, 4.0], dtype=F64, requires_grad=True)
    Q = 3 * a**3 - b**2
    Q.backward(gradient=torch.ones(2, dtype=F64))
    assert data["grad"] == {"a": a.grad.tolist(), "b": b.grad.tolist()}
    assert data["output"]["value"] == Q.tolist()


def test_main_autograd_vector_without_gradient_exits_2_with_torchs_message(capsys) -> None:
    import main

    assert main.main(["autograd", *NOTE, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "grad can be implicitly created only for scalar outputs" in lines[0]
    assert "--gradient" in lines[0]


def test_main_autograd_typo_in_expression_exits_2_with_the_column(capsys) -> None:
    import main

    assert main.main(["autograd", "--tensor", "a=[2., 3.]", "--expr", "3*a**3 - b**2"]) == 2
    err = capsys.readouterr().err
    assert "b" in err and "column" in err


def test_the_longest_legal_chain_and_a_pasted_minus_sign_work() -> None:
    expr = "a" + "\u2212b" * 499  # 999 tokens; U+2212 as a web page or a PDF gives it
    data = json.loads(cli("--tensor", "a=[2., 3.]", "--tensor", "b=[0.5, 0.25]", "--expr", expr,
                          "--gradient", "[1., 1.]", "--json"))
    a = torch.tensor([2., 3.], dtype=F64, requires_grad=True)
    b = torch.tensor([0.5, 0.25], dtype=F64, requires_grad=True)
    Q = a
    for _ in range(499):
        Q = Q - b
    Q.backward(gradient=torch.ones_like(Q))
    assert data["output"]["value"] == Q.tolist()
    assert data["grad"] == {"a": a.grad.tolist(), "b": b.grad.tolist()}
