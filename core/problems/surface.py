"""The surface race as a Problem: two scalar parameters, "x" and "y", and the loss f(x, y)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from core.problems.base import DTYPE, Problem
from core.status import SurfaceScale, surface_scale
from core.surfaces import Point, Surface

COORDINATES = ("x", "y")


class SurfaceProblem(Problem):
    """f(x, y) on a Surface, from `start` (the surface's own start if None).

    Its scale is the surface's (region, value spread; core/status.py), so a Run on it keeps the
    race's status rules exactly.
    """

    parameter_names = COORDINATES

    def __init__(self, surface: Surface, start: Point | None = None) -> None:
        self.surface = surface
        self.start: Point = start if start is not None else surface.start

    def initial_parameters(self) -> dict[str, Tensor]:
        return {"x": torch.tensor(float(self.start[0]), dtype=DTYPE),
                "y": torch.tensor(float(self.start[1]), dtype=DTYPE)}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {"x": (), "y": ()}

    def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
        return self.surface(params["x"], params["y"])

    def scale(self) -> SurfaceScale:
        return surface_scale(self.surface)

    def describe(self) -> dict[str, Any]:
        return {"kind": "surface", **self.surface.to_dict(), "start": list(self.start)}
