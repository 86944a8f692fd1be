"""core.analysis: local gradient / Hessian / curvature shape, and the cost of gradient tracking."""

from __future__ import annotations

import math

import pytest

from core.analysis import MEANINGS, classify, condition_number, grid_timing, local_analysis
from core.formula import compile_formula
from core.surfaces import get_surface


def test_rotated_quadratic_has_curvatures_10_and_0_1() -> None:
    a = local_analysis(get_surface("rotated_quadratic"), 0.4, -1.3)  # a quadratic: same anywhere
    assert a.eigenvalues == pytest.approx((0.1, 10.0))
    assert a.condition == pytest.approx(100.0)
    assert a.kind == "valley" and a.meaning == MEANINGS["valley"]
    # The steep direction is the 30-degree axis (cos 30, sin 30), up to sign.
    steep = a.eigenvectors[1]
    assert abs(steep[0] * math.cos(math.pi / 6) + steep[1] * 0.5) == pytest.approx(1.0)


def test_hessian_and_gradient_of_a_known_quadratic() -> None:
    # f = 3x^2 + 2xy + y^2 - x: gradient (6x + 2y - 1, 2x + 2y), Hessian [[6, 2], [2, 2]]
    a = local_analysis(compile_formula("3*x**2 + 2*x*y + y**2 - x"), 1.0, -2.0)
    assert a.gradient == pytest.approx((6 - 4 - 1, 2 - 4))
    assert a.hessian == ((pytest.approx(6.0), pytest.approx(2.0)),
                         (pytest.approx(2.0), pytest.approx(2.0)))
    assert a.eigenvalues == pytest.approx((4 - math.sqrt(8), 4 + math.sqrt(8)))
    assert a.value == pytest.approx(3 - 4 + 4 - 1)
    assert a.kind == "bowl"


@pytest.mark.parametrize("text, kind", [
    ("x**2 - y**2", "saddle"), ("x**2 + y**2", "bowl"), ("-x**2 - 3*y**2", "cap"),
    ("x**2", "valley"), ("-(y**2)", "ridge"), ("2*x - y", "flat"), ("5", "flat"),
    ("x**2 + 0.01*y**2", "valley")])
def test_shapes(text: str, kind: str) -> None:
    assert local_analysis(compile_formula(text), 0.3, -0.2).kind == kind


def test_condition_number() -> None:
    assert condition_number(-2.0, 0.5) == 4.0
    assert condition_number(0.0, 3.0) == math.inf
    assert math.isnan(condition_number(math.nan, 1.0))
    assert local_analysis(compile_formula("x**2"), 1.0, 1.0).condition == math.inf


def test_a_kink_is_undefined_not_a_crash() -> None:
    a = local_analysis(get_surface("ackley"), 0.0, 0.0)  # sqrt(0): the cone's tip
    assert a.kind == "undefined" and classify(math.nan, 1.0) == "undefined"


def test_grid_timing_reports_time_and_the_memory_autograd_would_keep() -> None:
    t = grid_timing(get_surface("rotated_quadratic"), n=120, repeats=3)
    assert t["n"] == 120
    assert t["no_grad_ms"] > 0 and t["grad_ms"] > 0
    assert t["no_grad_saved_bytes"] == 0
    assert t["no_grad_bytes"] == 120 * 120 * 8  # just the float64 picture
    # (c x + 0.5 y)**2 saves its n-by-n base for backward, at least one more picture's worth
    assert t["grad_saved_bytes"] >= 120 * 120 * 8
    assert t["grad_bytes"] > t["no_grad_bytes"] and t["memory_ratio"] > 1
