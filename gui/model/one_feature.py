"""One feature: what the data view and the model film draw along x, in one place.

Regression: the points at (x, y) and the fitted curve model(x). Classification with one feature:
each point at its class index (its class's name on the left axis) and the curve is P(class 1)
from one logit (BCEWithLogitsLoss), else the predicted class index (argmax), so the curve passes
through the points it classifies right. No Qt widgets here beyond pyqtgraph axis ticks' data.
"""

from __future__ import annotations

import numpy as np
import torch

from core.problems.base import DTYPE

MARGIN = 0.1  # the y range shows the values' range and this share more on each side


def curve_values(out: torch.Tensor, classification: bool) -> np.ndarray:
    """The curve's heights from the model's output rows `out` (n x outputs)."""
    if classification:
        out = torch.sigmoid(out) if out.shape[1] == 1 else \
            out.argmax(dim=1, keepdim=True).to(DTYPE)
    return out.reshape(-1).detach().numpy().copy()


def point_heights(X: torch.Tensor, y: torch.Tensor, classification: bool) -> np.ndarray:
    """The points' y: their target (regression) or their class index (classification)."""
    return y.numpy().astype(float) if classification else y.numpy()


def class_ticks(class_names, classification: bool) -> list | None:
    """The left axis's ticks: each class index named (None: the axis's own numbers)."""
    return [list(enumerate(class_names))] if classification else None


def y_range(y: torch.Tensor, classification: bool, classes: int) -> tuple[float, float]:
    """The data plot's y range: the targets' (regression) or every class index's."""
    if classification:
        top = max(classes - 1, 1)
        return -MARGIN * top, top + MARGIN * top
    v = y.numpy()
    margin = MARGIN * max(float(v.max() - v.min()), 1e-9)
    return float(v.min()) - margin, float(v.max()) + margin


def title(classification: bool, one_logit: bool, label: str) -> str:
    """The data plot's title; `label` names the run ("the selected run" in the window)."""
    if not classification:
        return f"the fit of {label}"
    return (f"P(class 1) of {label} along x" if one_logit
            else f"the predicted class of {label} along x")
