"""Loss surfaces: a named, differentiable f(x, y) with its bounds, start point and known minima.

Every built-in surface is written as a formula in the same grammar users type (core.formula), so
the text shown to the user is exactly the function that runs, and a user can edit a copy of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from core.errors import FormulaError, SurfaceError
from core.formula import Formula, compile_formula

Point = tuple[float, float]
Range = tuple[float, float]
DTYPE = torch.float64


@dataclass(frozen=True)
class Surface:
    """A differentiable f(x, y) in torch, the region to show, a default start and its known minima.

    `minima` lists the known global minima (for "wells in a bowl": the local one too, see
    `local_minima`). `smooth_at_minima` is False where the gradient is undefined at a minimum
    (Ackley's cone at the origin).
    """

    name: str
    title: str
    formula: Formula
    x_range: Range
    y_range: Range
    start: Point
    minima: tuple[Point, ...] = ()
    min_value: float | None = None
    local_minima: tuple[Point, ...] = ()
    smooth_at_minima: bool = True
    description: str = ""
    builtin: bool = field(default=False, compare=False)

    @property
    def text(self) -> str:
        return self.formula.text

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return self.formula(x, y)

    def value(self, x: float, y: float) -> float:
        with torch.no_grad():
            return float(self(torch.tensor(x, dtype=DTYPE), torch.tensor(y, dtype=DTYPE)))

    def value_and_grad(self, x: float, y: float) -> tuple[float, float, float]:
        """f and its gradient at one point, by autograd (whatever this thread's grad mode)."""
        xt = torch.tensor(x, dtype=DTYPE, requires_grad=True)
        yt = torch.tensor(y, dtype=DTYPE, requires_grad=True)
        with torch.enable_grad():  # under no_grad the gradient would silently read as 0
            f = self(xt, yt)
        if not f.requires_grad:
            return f.item(), 0.0, 0.0
        gx, gy = torch.autograd.grad(f, (xt, yt), allow_unused=True, materialize_grads=True)
        return f.item(), gx.item(), gy.item()

    def grid(self, x_range: Range | None = None, y_range: Range | None = None,
             nx: int = 200, ny: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate on an nx-by-ny grid: (xs, ys, z) with z[j, i] = f(xs[i], ys[j]) (row-major).

        Runs under torch.no_grad(): the picture needs values only, so autograd records nothing.
        """
        x0, x1 = x_range or self.x_range
        y0, y1 = y_range or self.y_range
        xs = torch.linspace(x0, x1, nx, dtype=DTYPE)
        ys = torch.linspace(y0, y1, ny, dtype=DTYPE)
        with torch.no_grad():
            z = self(xs.unsqueeze(0), ys.unsqueeze(1))
        return xs.numpy(), ys.numpy(), z.expand(ny, nx).numpy()

    def to_dict(self) -> dict:
        """What a session file stores: the name of a built-in, or the formula and its region."""
        if self.builtin:
            return {"name": self.name}
        return {"name": self.name, "formula": self.text, "x_range": list(self.x_range),
                "y_range": list(self.y_range), "start": list(self.start)}

    def describe(self) -> dict:
        """Everything known about the surface, for `main.py list` and JSON output."""
        return {"name": self.name, "title": self.title, "formula": self.text,
                "x_range": list(self.x_range), "y_range": list(self.y_range),
                "start": list(self.start), "minima": [list(m) for m in self.minima],
                "min_value": self.min_value,
                "local_minima": [list(m) for m in self.local_minima]}


def _check_range(label: str, r: object) -> Range:
    try:
        lo, hi = (float(v) for v in r)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise SurfaceError(f"{label} must be two numbers, got {r!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise SurfaceError(f"{label} must be two finite numbers with low < high, got {r!r}")
    return lo, hi


def _check_point(label: str, p: object) -> Point:
    try:
        px, py = (float(v) for v in p)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise SurfaceError(f"{label} must be two numbers x, y, got {p!r}") from None
    if not (math.isfinite(px) and math.isfinite(py)):
        raise SurfaceError(f"{label} must be finite, got {p!r}")
    return px, py


START_SEARCH_POINTS = 25  # the default start is looked for on this many points per axis


def surface_from_formula(text: str, x_range: Range = (-3.0, 3.0), y_range: Range = (-3.0, 3.0),
                         start: Point | None = None, name: str = "custom") -> Surface:
    """A Surface from the user's formula. Raises FormulaError or SurfaceError; changes nothing.

    Without a `start`, the start is 80 % of the way across the region, or if f or its gradient is
    not finite there (log(x) at x <= 0, say), the nearest point of a 25 x 25 grid where both
    are; with no such point anywhere (`sqrt(x - x)`: a NaN gradient everywhere) there is no start
    to offer, and a SurfaceError says so. A `start` given is kept as it is.
    """
    formula = compile_formula(text)
    xr = _check_range("x range", x_range)
    yr = _check_range("y range", y_range)
    chosen = start is not None
    if start is None:
        start = (xr[0] + 0.8 * (xr[1] - xr[0]), yr[0] + 0.8 * (yr[1] - yr[0]))
    st = _check_point("start", start)
    surface = Surface(name=name, title=formula.text, formula=formula, x_range=xr, y_range=yr,
                      start=st)  # the text as read: a pasted U+2212 minus shows as '-'
    region = f"x in [{xr[0]:g}, {xr[1]:g}], y in [{yr[0]:g}, {yr[1]:g}]"
    no_finite_value = f"the formula has no finite value anywhere in the region {region}"
    if chosen:
        # A start the caller chose is kept as it is (a session's, the point `graph --at`
        # inspects): if f or its gradient is not finite there, the runs will say so.
        _, _, z = surface.grid(nx=START_SEARCH_POINTS, ny=START_SEARCH_POINTS)
        if not np.isfinite(z).any():
            raise FormulaError(no_finite_value)
        return surface
    if _differentiable_at(surface, st):
        return surface  # the common case: one scalar forward and backward, no grid
    xs, ys, finite_value, usable = finite_grid(formula, xr, yr)
    if not finite_value.any():
        raise FormulaError(no_finite_value)
    if not usable.any():
        raise SurfaceError(f"no point in the region {region} has a finite value and gradient: "
                           "an optimizer could not take a single step")
    # The nearest usable grid point, in units of the region's width and height (the first in
    # row-major order on a tie).
    dx = (xs[np.newaxis, :] - st[0]) / (xr[1] - xr[0])
    dy = (ys[:, np.newaxis] - st[1]) / (yr[1] - yr[0])
    distance = np.where(usable, dx**2 + dy**2, np.inf)
    j, i = np.unravel_index(int(np.argmin(distance)), distance.shape)
    return replace(surface, start=(float(xs[i]), float(ys[j])))


def finite_grid(formula: Formula, x_range: Range, y_range: Range, n: int = START_SEARCH_POINTS
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where f, and f with its gradient, are finite on an n-by-n grid of the region.

    Returns (xs, ys, finite_value, finite_value_and_gradient), the masks indexed [j, i] for
    (xs[i], ys[j]). One batched forward and one backward for all n*n points: every operation of
    the grammar is elementwise, so the gradient of the sum is each point's own gradient, and the
    cost is bounded by n*n whatever the formula (625 scalar backward passes of a long formula
    took over a second).
    """
    xs = torch.linspace(x_range[0], x_range[1], n, dtype=DTYPE)
    ys = torch.linspace(y_range[0], y_range[1], n, dtype=DTYPE)
    # Point k is (xs[k % n], ys[k // n]): row-major, as Surface.grid.
    x = xs.repeat(n).requires_grad_(True)
    y = ys.repeat_interleave(n).requires_grad_(True)
    with torch.enable_grad():  # explicit: the caller may be in no_grad, or on another thread
        f = formula(x, y)
        if f.requires_grad:
            gx, gy = torch.autograd.grad(f.sum(), (x, y), allow_unused=True,
                                         materialize_grads=True)
        else:  # a constant surface
            gx = gy = torch.zeros_like(x)
    finite_value = torch.isfinite(f.detach())
    usable = finite_value & torch.isfinite(gx) & torch.isfinite(gy)
    return (xs.numpy(), ys.numpy(), finite_value.reshape(n, n).numpy(),
            usable.reshape(n, n).numpy())


def _differentiable_at(surface: Surface, point: Point) -> bool:
    return all(math.isfinite(v) for v in surface.value_and_grad(*point))


def _builtin(name: str, title: str, text: str, x_range: Range, y_range: Range, start: Point,
             minima: tuple[Point, ...], min_value: float | None, description: str,
             **extra: object) -> Surface:
    return Surface(name=name, title=title, formula=compile_formula(text), x_range=x_range,
                   y_range=y_range, start=start, minima=minima, min_value=min_value,
                   description=description, builtin=True, **extra)  # type: ignore[arg-type]


_COS30 = "0.8660254037844386"  # cos(pi/6); sin(pi/6) = 0.5

BUILTIN_SURFACES: tuple[Surface, ...] = (
    _builtin("rosenbrock", "Rosenbrock", "(1 - x)**2 + 100*(y - x**2)**2",
             (-2.0, 2.0), (-1.0, 3.0), (-1.2, 1.0), ((1.0, 1.0),), 0.0,
             "A long curved valley: easy to find, hard to follow to its end at (1, 1)."),
    _builtin("beale", "Beale",
             "(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2",
             (-4.5, 4.5), (-4.5, 4.5), (1.0, 1.5), ((3.0, 0.5),), 0.0,
             "Flat plateaus and sharp ridges; the minimum sits in a narrow arm at (3, 0.5)."),
    _builtin("booth", "Booth", "(x + 2*y - 7)**2 + (2*x + y - 5)**2",
             (-10.0, 10.0), (-10.0, 10.0), (-7.0, 8.0), ((1.0, 3.0),), 0.0,
             "A tilted quadratic bowl."),
    _builtin("himmelblau", "Himmelblau", "(x**2 + y - 11)**2 + (x + y**2 - 7)**2",
             (-5.0, 5.0), (-5.0, 5.0), (0.0, 0.0),
             ((3.0, 2.0), (-2.805118086952745, 3.131312518250573),
              (-3.779310253377747, -3.283185991286170), (3.584428340330492, -1.848126526964404)),
             0.0, "Four equal minima: which one an optimizer finds depends on where it starts."),
    _builtin("rastrigin", "Rastrigin",
             "20 + x**2 - 10*cos(2*pi*x) + y**2 - 10*cos(2*pi*y)",
             (-5.12, 5.12), (-5.12, 5.12), (2.2, 2.8), ((0.0, 0.0),), 0.0,
             "An egg crate of local minima on a bowl; the global one is at the origin."),
    _builtin("ackley", "Ackley",
             "-20*exp(-0.2*sqrt(0.5*(x**2 + y**2))) - exp(0.5*(cos(2*pi*x) + cos(2*pi*y)))"
             " + e + 20",
             (-5.0, 5.0), (-5.0, 5.0), (2.5, 3.0), ((0.0, 0.0),), 0.0,
             "A nearly flat, bumpy plain around a deep cone at the origin.",
             smooth_at_minima=False),
    _builtin("goldstein_price", "Goldstein-Price",
             "(1 + (x + y + 1)**2*(19 - 14*x + 3*x**2 - 14*y + 6*x*y + 3*y**2))"
             "*(30 + (2*x - 3*y)**2*(18 - 32*x + 12*x**2 + 48*y - 36*x*y + 27*y**2))",
             (-2.0, 2.0), (-2.0, 2.0), (-1.2, 1.2), ((0.0, -1.0),), 3.0,
             "Values over many orders of magnitude; the minimum is 3 at (0, -1)."),
    _builtin("six_hump_camel", "Six-hump camel",
             "(4 - 2.1*x**2 + x**4/3)*x**2 + x*y + (-4 + 4*y**2)*y**2",
             (-3.0, 3.0), (-2.0, 2.0), (-1.5, 1.0),
             ((0.08984201310031806, -0.7126564030207396),
              (-0.08984201310031806, 0.7126564030207396)),
             -1.031628453489877, "Six local minima, two of them global."),
    _builtin("matyas", "Matyas", "0.26*(x**2 + y**2) - 0.48*x*y",
             (-10.0, 10.0), (-10.0, 10.0), (7.0, -5.0), ((0.0, 0.0),), 0.0,
             "A shallow valley along the diagonal y = x."),
    _builtin("rotated_quadratic", "Ill-conditioned quadratic",
             f"5*({_COS30}*x + 0.5*y)**2 + 0.05*({_COS30}*y - 0.5*x)**2",
             (-3.0, 3.0), (-3.0, 3.0), (-2.5, 2.0), ((0.0, 0.0),), 0.0,
             "A narrow bowl rotated by 30 degrees; Hessian eigenvalues 10 and 0.1 "
             "(condition 100)."),
    _builtin("saddle", "Saddle", "x**2 - y**2",
             (-2.0, 2.0), (-2.0, 2.0), (-1.8, 0.05), (), None,
             "A saddle point at the origin, no minimum: y runs away however small its start."),
    _builtin("wells", "Wells in a bowl",
             "0.1*(x**2 + y**2) - 3*exp(-((x - 2)**2 + (y - 1)**2))"
             " - 2*exp(-((x + 2)**2 + (y + 1.5)**2))",
             (-4.0, 4.0), (-4.0, 4.0), (-3.5, -3.5), ((1.9351548968644146, 0.9675774482937832),),
             -2.5161699812616454,
             "A bowl with two wells: a shallow local one at lower left, a deeper global one at "
             "upper right.",
             local_minima=((-1.9034315179525456, -1.4275736389466915),)),
    _builtin("bowl", "Quadratic bowl", "x**2 + y**2",
             (-3.0, 3.0), (-3.0, 3.0), (-2.5, 2.0), ((0.0, 0.0),), 0.0,
             "The simplest loss: plain SGD with lr = 0.5 lands on the minimum in one step."),
)

SURFACES: dict[str, Surface] = {s.name: s for s in BUILTIN_SURFACES}


def get_surface(name: str) -> Surface:
    """The built-in surface called `name` (case and '-' / ' ' insensitive)."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in SURFACES:
        raise SurfaceError(f"unknown surface {name!r}; built-in surfaces are: "
                           + ", ".join(SURFACES))
    return SURFACES[key]
