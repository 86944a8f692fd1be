"""Built-in surfaces: the literature's formulas and minima, exact gradients, fast no-grad grids."""

from __future__ import annotations

import contextlib
import math
import zlib

import numpy as np
import pytest
import torch

from core.errors import FormulaError, SurfaceError
from core.formula import Formula, compile_formula
from core.surfaces import (
    BUILTIN_SURFACES,
    SURFACES,
    Surface,
    finite_grid,
    get_surface,
    surface_from_formula,
)

F64 = torch.float64
ALL = [s.name for s in BUILTIN_SURFACES]
REQUIRED = ["rosenbrock", "beale", "booth", "himmelblau", "rastrigin", "ackley", "goldstein_price",
            "six_hump_camel", "matyas", "rotated_quadratic", "saddle", "wells"]

# Global minima and minimum values as the optimization test-function literature gives them
# (Surjanovic & Bingham's Virtual Library of Simulation Experiments; Himmelblau 1972).
LITERATURE_MINIMA: dict[str, tuple[list[tuple[float, float]], float]] = {
    "rosenbrock": ([(1.0, 1.0)], 0.0),
    "beale": ([(3.0, 0.5)], 0.0),
    "booth": ([(1.0, 3.0)], 0.0),
    "himmelblau": ([(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
                    (3.584428, -1.848126)], 0.0),
    "rastrigin": ([(0.0, 0.0)], 0.0),
    "ackley": ([(0.0, 0.0)], 0.0),
    "goldstein_price": ([(0.0, -1.0)], 3.0),
    "six_hump_camel": ([(0.0898, -0.7126), (-0.0898, 0.7126)], -1.0316),
    "matyas": ([(0.0, 0.0)], 0.0),
    "rotated_quadratic": ([(0.0, 0.0)], 0.0),
}

PI = math.pi
C30, S30 = math.cos(PI / 6), math.sin(PI / 6)

# The same functions written independently, straight from the literature, in plain torch.
REFERENCE = {
    "rosenbrock": lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2,
    "beale": lambda x, y: ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2
                           + (2.625 - x + x * y**3) ** 2),
    "booth": lambda x, y: (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2,
    "himmelblau": lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
    "rastrigin": lambda x, y: (20 + x**2 - 10 * torch.cos(2 * PI * x)
                               + y**2 - 10 * torch.cos(2 * PI * y)),
    "ackley": lambda x, y: (-20 * torch.exp(-0.2 * torch.sqrt(0.5 * (x**2 + y**2)))
                            - torch.exp(0.5 * (torch.cos(2 * PI * x) + torch.cos(2 * PI * y)))
                            + math.e + 20),
    "goldstein_price": lambda x, y: (
        (1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2))
        * (30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y
                                        + 27 * y**2))),
    "six_hump_camel": lambda x, y: ((4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y
                                    + (-4 + 4 * y**2) * y**2),
    "matyas": lambda x, y: 0.26 * (x**2 + y**2) - 0.48 * x * y,
    # eigenvalues 10 and 0.1 along directions rotated by 30 degrees
    "rotated_quadratic": lambda x, y: (0.5 * 10 * (C30 * x + S30 * y) ** 2
                                       + 0.5 * 0.1 * (-S30 * x + C30 * y) ** 2),
    "saddle": lambda x, y: x**2 - y**2,
    "bowl": lambda x, y: x**2 + y**2,
}


def rng_points(surface: Surface, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = surface.x_range, surface.y_range
    return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])


def grad_at(surface: Surface, x: float, y: float) -> tuple[float, float]:
    _, gx, gy = surface.value_and_grad(x, y)
    return gx, gy


def hessian_at(surface: Surface, x: float, y: float) -> np.ndarray:
    def f(p: torch.Tensor) -> torch.Tensor:
        return surface(p[0], p[1])

    return torch.autograd.functional.hessian(f, torch.tensor([x, y], dtype=F64)).numpy()


# --- the catalogue --------------------------------------------------------------------------------


def test_at_least_twelve_builtins_including_the_required_ones() -> None:
    assert len(BUILTIN_SURFACES) >= 12
    assert len(set(ALL)) == len(ALL)
    for name in REQUIRED:
        assert name in SURFACES, name
    assert {s.name: s for s in BUILTIN_SURFACES} == SURFACES


@pytest.mark.parametrize("name", ALL)
def test_surface_is_well_formed(name: str) -> None:
    s = get_surface(name)
    assert s.builtin and s.name == name and s.title and s.text
    (x0, x1), (y0, y1) = s.x_range, s.y_range
    assert x0 < x1 and y0 < y1
    assert x0 <= s.start[0] <= x1 and y0 <= s.start[1] <= y1
    for mx, my in s.minima + s.local_minima:
        assert x0 <= mx <= x1 and y0 <= my <= y1
    assert (s.min_value is None) == (len(s.minima) == 0)
    assert math.isfinite(s.value(*s.start))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_builtin_formula_matches_the_literature(name: str) -> None:
    s = get_surface(name)
    pts = torch.tensor(rng_points(s, 50, seed=1), dtype=F64)
    got = s(pts[:, 0], pts[:, 1])
    want = REFERENCE[name](pts[:, 0], pts[:, 1])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(LITERATURE_MINIMA))
def test_listed_minima_are_the_literature_minima(name: str) -> None:
    s = get_surface(name)
    points, value = LITERATURE_MINIMA[name]
    assert s.min_value == pytest.approx(value, abs=1e-4)
    assert len(s.minima) == len(points)
    for px, py in points:
        assert any(abs(px - mx) < 1e-4 and abs(py - my) < 1e-4 for mx, my in s.minima), (px, py)


@pytest.mark.parametrize("name", [n for n in ALL if SURFACES[n].minima])
def test_each_minimum_has_the_min_value_and_zero_gradient(name: str) -> None:
    s = get_surface(name)
    for mx, my in s.minima:
        f, gx, gy = s.value_and_grad(mx, my)
        assert f == pytest.approx(s.min_value, abs=1e-9)
        if s.smooth_at_minima:
            scale = max(1.0, abs(s.value(*s.start)))
            assert math.hypot(gx, gy) < 1e-6 * scale, (mx, my, gx, gy)
            eig = np.linalg.eigvalsh(hessian_at(s, mx, my))
            assert eig.min() > 0, f"{(mx, my)} is not a strict minimum: Hessian {eig}"


@pytest.mark.parametrize("name", [n for n in ALL if SURFACES[n].minima])
def test_no_point_of_a_fine_grid_is_below_the_global_minimum(name: str) -> None:
    s = get_surface(name)
    _, _, z = s.grid(nx=401, ny=401)
    assert z.min() >= s.min_value - 1e-9


def test_ackley_is_not_smooth_at_its_minimum_and_says_so() -> None:
    s = get_surface("ackley")
    assert not s.smooth_at_minima
    assert s.value(0.0, 0.0) == pytest.approx(0.0, abs=1e-12)


def test_local_minima_are_stationary_and_above_the_global_one() -> None:
    with_local = [s for s in BUILTIN_SURFACES if s.local_minima]
    assert any(s.name == "wells" for s in with_local)
    for s in with_local:
        for mx, my in s.local_minima:
            f, gx, gy = s.value_and_grad(mx, my)
            assert math.hypot(gx, gy) < 1e-6
            assert np.linalg.eigvalsh(hessian_at(s, mx, my)).min() > 0
            assert f > s.min_value + 1e-3  # local, not global


def test_wells_has_one_local_and_one_global_minimum() -> None:
    s = get_surface("wells")
    assert len(s.minima) == 1 and len(s.local_minima) == 1
    (gx, gy), (lx, ly) = s.minima[0], s.local_minima[0]
    assert s.value(gx, gy) < s.value(lx, ly)


def test_himmelblau_has_four_distinct_minima() -> None:
    s = get_surface("himmelblau")
    assert len(s.minima) == 4
    pts = np.array(s.minima)
    dists = [np.hypot(*(pts[i] - pts[j])) for i in range(4) for j in range(i + 1, 4)]
    assert min(dists) > 1.0
    for mx, my in s.minima:
        f, gx, gy = s.value_and_grad(mx, my)
        assert f == pytest.approx(0.0, abs=1e-12)
        assert math.hypot(gx, gy) < 1e-9


@pytest.mark.parametrize("point", [(0.0, 0.0), (1.3, -2.1), (-2.5, 2.0)])
def test_rotated_quadratic_has_condition_number_100(point: tuple[float, float]) -> None:
    h = hessian_at(get_surface("rotated_quadratic"), *point)
    eig = np.linalg.eigvalsh(h)
    assert eig == pytest.approx([0.1, 10.0], rel=1e-9)
    assert eig.max() / eig.min() == pytest.approx(100.0, rel=1e-9)
    # rotated: the axes are not the eigenvectors
    assert abs(h[0, 1]) > 1.0


def test_saddle_has_no_minimum_and_a_saddle_at_the_origin() -> None:
    s = get_surface("saddle")
    assert s.minima == () and s.min_value is None
    f, gx, gy = s.value_and_grad(0.0, 0.0)
    assert (f, gx, gy) == (0.0, 0.0, 0.0)
    eig = np.linalg.eigvalsh(hessian_at(s, 0.0, 0.0))
    assert eig.min() < 0 < eig.max()


# --- gradients ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_autograd_gradient_equals_central_differences(name: str) -> None:
    s = get_surface(name)
    for px, py in rng_points(s, 8, seed=zlib.crc32(name.encode())):
        if name == "ackley" and math.hypot(px, py) < 1e-2:
            continue  # the cone's tip has no gradient
        f, gx, gy = s.value_and_grad(px, py)
        h = 1e-5
        fd_x = (s.value(px + h, py) - s.value(px - h, py)) / (2 * h)
        fd_y = (s.value(px, py + h) - s.value(px, py - h)) / (2 * h)
        # rounding in the difference is about eps*|f|/h; truncation is about h**2 * f'''
        tol = 1e-5 * max(1.0, abs(gx), abs(gy)) + 1e-9 * max(1.0, abs(f))
        assert abs(gx - fd_x) <= tol, (px, py, gx, fd_x)
        assert abs(gy - fd_y) <= tol, (px, py, gy, fd_y)


def test_value_and_grad_of_a_surface_without_y() -> None:
    s = surface_from_formula("x**2")
    assert s.value_and_grad(3.0, 7.0) == (9.0, 6.0, 0.0)
    c = surface_from_formula("4")
    assert c.value_and_grad(1.0, 1.0) == (4.0, 0.0, 0.0)


# --- grids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_grid_shape_and_pointwise_values(name: str) -> None:
    s = get_surface(name)
    xs, ys, z = s.grid(nx=31, ny=17)
    assert xs.shape == (31,) and ys.shape == (17,) and z.shape == (17, 31)
    assert xs[0] == s.x_range[0] and xs[-1] == s.x_range[1]
    assert ys[0] == s.y_range[0] and ys[-1] == s.y_range[1]
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)
    for j, i in [(0, 0), (16, 30), (3, 7), (11, 22), (8, 15)]:
        assert z[j, i] == pytest.approx(s.value(float(xs[i]), float(ys[j])), rel=1e-12, abs=1e-12)


def test_grid_with_explicit_ranges() -> None:
    s = get_surface("bowl")
    xs, ys, z = s.grid((0.0, 1.0), (-2.0, 2.0), nx=3, ny=5)
    assert list(xs) == [0.0, 0.5, 1.0]
    assert list(ys) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    np.testing.assert_allclose(z, ys[:, None] ** 2 + xs[None, :] ** 2, rtol=0, atol=0)


def test_grid_of_a_constant_formula_has_the_full_shape() -> None:
    _, _, z = surface_from_formula("2 + pi").grid(nx=4, ny=3)
    assert z.shape == (3, 4)
    assert np.all(z == 2 + math.pi)


def test_grid_runs_under_no_grad() -> None:
    seen: list[bool] = []

    def probe(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(torch.is_grad_enabled())
        return x**2 + y**2

    s = Surface(name="probe", title="probe", formula=probe,  # type: ignore[arg-type]
                x_range=(-1.0, 1.0), y_range=(-1.0, 1.0), start=(0.5, 0.5))
    assert torch.is_grad_enabled()
    xs, ys, z = s.grid(nx=5, ny=4)
    assert seen == [False]
    assert torch.is_grad_enabled()  # restored afterwards
    assert isinstance(z, np.ndarray) and z.shape == (4, 5)


def test_grid_result_does_not_require_grad_and_records_no_graph() -> None:
    s = get_surface("rosenbrock")
    xs = torch.linspace(-2, 2, 9, dtype=F64, requires_grad=True)
    with torch.no_grad():
        z = s(xs.unsqueeze(0), xs.unsqueeze(1))
    assert not z.requires_grad and z.grad_fn is None
    _, _, znp = s.grid(nx=9, ny=9)
    assert znp.shape == (9, 9)


# --- user formulas and lookup ---------------------------------------------------------------------


def test_surface_from_formula() -> None:
    s = surface_from_formula("sin(x)*cos(y) + 0.1*(x**2 + y**2)", (-4, 4), (-2, 5), (1, 1), "mine")
    assert s.name == "mine" and not s.builtin
    assert s.x_range == (-4.0, 4.0) and s.y_range == (-2.0, 5.0) and s.start == (1.0, 1.0)
    assert s.value(0.5, 0.25) == pytest.approx(math.sin(0.5) * math.cos(0.25) + 0.1 * 0.3125)
    default = surface_from_formula("x + y", (0, 10), (-10, 0))
    assert 0 <= default.start[0] <= 10 and -10 <= default.start[1] <= 0


def test_a_formula_finite_somewhere_is_accepted() -> None:
    s = surface_from_formula("log(x)")  # finite for x > 0 only
    assert s.value(1.0, 0.0) == 0.0


@pytest.mark.parametrize("text, x_range", [
    ("log(x)", (-3.0, -1.0)),
    ("sqrt(-1 - x**2 - y**2)", (-3.0, 3.0)),
    ("1/0", (-3.0, 3.0)),
    ("9**9**9", (-3.0, 3.0)),
    ("log(-1) + x", (-3.0, 3.0)),
])
def test_formula_with_no_finite_value_in_the_region_is_rejected(text, x_range) -> None:
    with pytest.raises(FormulaError, match="no finite value"):
        surface_from_formula(text, x_range=x_range)


@pytest.mark.parametrize("bad", [(1.0, 1.0), (2.0, 1.0), (math.nan, 1.0), (0.0, math.inf),
                                 (-math.inf, 0.0), "ab", (1.0, 2.0, 3.0), (1.0,), None, 5,
                                 ("a", "b")])
def test_bad_ranges_are_rejected(bad) -> None:
    with pytest.raises(SurfaceError, match="x range"):
        surface_from_formula("x + y", x_range=bad)
    with pytest.raises(SurfaceError, match="y range"):
        surface_from_formula("x + y", y_range=bad)


@pytest.mark.parametrize("bad", [(math.nan, 0.0), (0.0, math.inf), (1.0,), "xy", 3])
def test_bad_start_is_rejected(bad) -> None:
    with pytest.raises(SurfaceError, match="start"):
        surface_from_formula("x + y", start=bad)


def test_bad_formula_is_a_formula_error() -> None:
    with pytest.raises(FormulaError):
        surface_from_formula("x +* y")


@pytest.mark.parametrize("name, expected", [("Rosenbrock", "rosenbrock"),
                                            ("six-hump camel", "six_hump_camel"),
                                            ("  GOLDSTEIN-PRICE ", "goldstein_price")])
def test_get_surface_is_forgiving_about_spelling(name: str, expected: str) -> None:
    assert get_surface(name) is SURFACES[expected]


def test_unknown_surface() -> None:
    with pytest.raises(SurfaceError) as info:
        get_surface("nope")
    assert "nope" in str(info.value) and "rosenbrock" in str(info.value)


def test_to_dict_and_describe() -> None:
    assert get_surface("booth").to_dict() == {"name": "booth"}
    s = surface_from_formula("x**2 + y", (-1, 2), (-3, 4), (0.5, 0.5), "c")
    assert s.to_dict() == {"name": "c", "formula": "x**2 + y", "x_range": [-1.0, 2.0],
                           "y_range": [-3.0, 4.0], "start": [0.5, 0.5]}
    d = get_surface("himmelblau").describe()
    assert d["name"] == "himmelblau" and len(d["minima"]) == 4 and d["min_value"] == 0.0


def test_default_start_of_a_formula_is_where_f_and_its_gradient_are_finite():
    surface = surface_from_formula("log(x) + (y - 1)**2 + sqrt(1 - y)")
    f, gx, gy = surface.value_and_grad(*surface.start)
    assert all(math.isfinite(v) for v in (f, gx, gy))
    assert surface.start[0] > 0 and surface.start[1] < 1
    # a start the user chose is kept as it is
    chosen = surface_from_formula("log(x)", start=(-1.0, 0.0))
    assert chosen.start == (-1.0, 0.0)


# --- the default start: one batched search, and a clear refusal --------------------------------

NAN_GRADIENT_EVERYWHERE = [
    "sqrt(x - x) + x**2",
    "sqrt(x - x)" + " + x" * 240,  # long: 625 scalar backward passes of it took over a second
    "abs(y - y)**0.5 * 0 + x",
]


@pytest.mark.parametrize("text", NAN_GRADIENT_EVERYWHERE)
def test_a_nan_gradient_everywhere_is_refused_plainly(text: str) -> None:
    with pytest.raises(SurfaceError) as info:
        surface_from_formula(text)
    message = str(info.value)
    assert "no point in the region" in message and "finite value and gradient" in message
    assert "\n" not in message
    # A start of one's own is kept (a session's, or the point the graph command looks at).
    assert surface_from_formula(text, start=(1.0, 1.0)).start == (1.0, 1.0)


class CountingCalls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = Formula.__call__

        def counted(formula: Formula, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return original(formula, x, y)
        monkeypatch.setattr(Formula, "__call__", counted)


@pytest.mark.parametrize("text", NAN_GRADIENT_EVERYWHERE + ["log(x) + (y - 1)**2 + sqrt(1 - y)",
                                                            "x**2 + y**2"])
def test_the_start_search_evaluates_the_formula_a_bounded_number_of_times(monkeypatch, text):
    counter = CountingCalls(monkeypatch)
    with contextlib.suppress(SurfaceError):
        surface_from_formula(text)
    assert counter.calls <= 3  # one batched grid, one look at the start (not one per point)


def _scalar_search(text: str, x_range=(-3.0, 3.0), y_range=(-3.0, 3.0)):
    """The old search, point by point: the reference for the batched one."""
    s = Surface("ref", "ref", compile_formula(text), x_range, y_range, (0.0, 0.0))
    start = (x_range[0] + 0.8 * (x_range[1] - x_range[0]),
             y_range[0] + 0.8 * (y_range[1] - y_range[0]))
    if all(math.isfinite(v) for v in s.value_and_grad(*start)):
        return start
    xs = np.linspace(*x_range, 25)
    ys = np.linspace(*y_range, 25)
    scale = (x_range[1] - x_range[0], y_range[1] - y_range[0])
    points = sorted(((float(x), float(y)) for y in ys for x in xs),
                    key=lambda p: ((p[0] - start[0]) / scale[0]) ** 2
                    + ((p[1] - start[1]) / scale[1]) ** 2)
    for p in points:
        if all(math.isfinite(v) for v in s.value_and_grad(*p)):
            return p
    return None


@pytest.mark.parametrize("text, x_range, y_range", [
    ("log(x) + (y - 1)**2 + sqrt(1 - y)", (-3.0, 3.0), (-3.0, 3.0)),
    ("log(-x) + log(-y)", (-3.0, 3.0), (-3.0, 3.0)),
    ("sqrt(4 - x**2 - y**2) + sqrt(x)", (-3.0, 3.0), (-3.0, 3.0)),
    ("log(x - 1.7) * y", (0.0, 2.0), (-1.0, 5.0)),
    ("x**2 + y**2", (-3.0, 3.0), (-3.0, 3.0)),
])
def test_the_default_start_is_the_one_the_point_by_point_search_finds(text, x_range, y_range):
    expected = _scalar_search(text, x_range, y_range)
    got = surface_from_formula(text, x_range, y_range).start
    assert got == pytest.approx(expected, abs=1e-12)


def test_finite_grid_agrees_with_value_and_grad_at_every_point() -> None:
    text = "log(x) + sqrt(1 - y) + abs(x*y) + 1/(x - 0.5)"
    s = surface_from_formula(text, start=(1.0, 0.0))
    xs, ys, finite_value, usable = finite_grid(s.formula, s.x_range, s.y_range, n=9)
    assert finite_value.shape == usable.shape == (9, 9)
    assert usable.any() and not usable.all() and (finite_value >= usable).all()
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            f, gx, gy = s.value_and_grad(float(x), float(y))
            assert finite_value[j, i] == math.isfinite(f)
            assert usable[j, i] == all(math.isfinite(v) for v in (f, gx, gy))


def test_the_start_search_works_inside_no_grad() -> None:
    # Grad mode is per thread and may be off where the surface is built (a worker, a picture).
    with torch.no_grad():
        inside = surface_from_formula("log(x) + (y - 1)**2 + sqrt(1 - y)")
        with pytest.raises(SurfaceError, match="finite value and gradient"):
            surface_from_formula("sqrt(x - x) + x**2")
    assert inside.start == surface_from_formula("log(x) + (y - 1)**2 + sqrt(1 - y)").start


def test_a_surface_of_the_longest_formula_compares_hashes_and_prints() -> None:
    text = "x" + "+y" * 499
    a, b = surface_from_formula(text), surface_from_formula(text)
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a != surface_from_formula(text, x_range=(-2.0, 2.0))  # the region counts
    assert "Formula(" in repr(a)


def test_a_pasted_minus_sign_gives_a_plain_ascii_surface() -> None:
    s = surface_from_formula("x**2 \u2212 y", start=(1.0, 1.0))
    assert s.text == s.title == "x**2 - y" and s.to_dict()["formula"] == "x**2 - y"
    assert s.value(2.0, 1.0) == 3.0
