"""The record of a run: growable numpy buffers, one entry per recorded step.

Entry i holds the step number, the point after that many optimizer steps, the loss and gradient
there, and the learning rate in effect for the step that leaves it. A frozen coordinate's gradient
is NaN (it has none). Memory is bounded: once `capacity` entries are held, every second older
entry is dropped (the first and the newest are always kept), so a long run keeps an ever sparser
sample of its past and the full detail of its recent steps.
"""

from __future__ import annotations

import numpy as np

FIELDS = ("step", "x", "y", "loss", "grad_x", "grad_y", "lr")


class Trajectory:
    """Columns `step, x, y, loss, grad_x, grad_y, lr`, each a numpy view of the recorded entries."""

    def __init__(self, capacity: int = 200_000) -> None:
        if capacity < 4:
            raise ValueError("capacity must be at least 4")
        self.capacity = capacity
        self._size = 0
        self._buf = np.empty((len(FIELDS), min(1024, capacity)), dtype=np.float64)
        self.thinned = 0  # how many times older entries were thinned out
        self.revision = 0  # bumps when existing entries move (thinning), so views redraw all

    def __len__(self) -> int:
        return self._size

    def append(self, step: int, x: float, y: float, loss: float, grad_x: float, grad_y: float,
               lr: float) -> None:
        if self._size == self._buf.shape[1]:
            if self._size < self.capacity:
                grown = np.empty((len(FIELDS), min(self.capacity, 2 * self._size)), np.float64)
                grown[:, : self._size] = self._buf[:, : self._size]
                self._buf = grown
            else:
                self._thin()
        self._buf[:, self._size] = (step, x, y, loss, grad_x, grad_y, lr)
        self._size += 1

    def _thin(self) -> None:
        keep = np.arange(0, self._size, 2)
        if keep[-1] != self._size - 1:
            keep = np.append(keep, self._size - 1)
        n = len(keep)
        self._buf[:, :n] = self._buf[:, keep]
        self._size = n
        self.thinned += 1
        self.revision += 1

    def set_last(self, **values: float) -> None:
        """Overwrite fields of the newest entry (e.g. its gradient after a freeze)."""
        for name, value in values.items():
            self._buf[FIELDS.index(name), self._size - 1] = value

    def column(self, name: str) -> np.ndarray:
        return self._buf[FIELDS.index(name), : self._size]

    @property
    def step(self) -> np.ndarray:
        return self.column("step")

    @property
    def x(self) -> np.ndarray:
        return self.column("x")

    @property
    def y(self) -> np.ndarray:
        return self.column("y")

    @property
    def loss(self) -> np.ndarray:
        return self.column("loss")

    @property
    def grad_x(self) -> np.ndarray:
        return self.column("grad_x")

    @property
    def grad_y(self) -> np.ndarray:
        return self.column("grad_y")

    @property
    def lr(self) -> np.ndarray:
        return self.column("lr")

    @property
    def grad_norm(self) -> np.ndarray:
        return np.hypot(np.nan_to_num(self.grad_x), np.nan_to_num(self.grad_y))

    def last(self) -> dict[str, float]:
        return {name: float(self._buf[i, self._size - 1]) for i, name in enumerate(FIELDS)}

    def to_dict(self) -> dict[str, list]:
        """Plain lists for JSON: steps as ints, a frozen coordinate's gradient as None."""
        out: dict[str, list] = {"step": [int(s) for s in self.step]}
        for name in FIELDS[1:]:
            out[name] = [None if np.isnan(v) else float(v) for v in self.column(name)]
        return out

    def nbytes(self) -> int:
        return int(self._buf.nbytes)
