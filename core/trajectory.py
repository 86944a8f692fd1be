"""The record of a run: growable numpy buffers, one entry per recorded step.

Entry i holds the step number, the parameters after that many optimizer steps, the loss and
gradient there, and the learning rate in effect for the step that leaves it. Per parameter it
holds what a user needs, in columns named after the parameter:

    small parameters (at most SMALL_NUMEL elements): every value and every gradient element,
        "x" / "grad_x" for a scalar, "w[0]" / "grad_w[0]", "M[1,0]" / "grad_M[1,0]" otherwise;
    every parameter with more than one element: "value_norm:NAME", "grad_norm:NAME" and
        "update_norm:NAME", the 2-norms torch computes (a scalar's are |x|, |grad x| and the
        change of x between entries, read from its own column, so the race's record holds
        exactly the columns `step, x, y, loss, grad_x, grad_y, lr` as it always has).

A run with gradient tools (core/gradient_tools.py, issue 11) has extra columns at the end, only
then (a run without them keeps exactly the columns above): with noise, "noisy_grad_" + each
stored gradient column and "noisy_grad_norm:NAME" for the others, the gradient the optimizer was
given (the plain "grad_" columns stay the noise-free gradient of the loss, which the status rules
read); with clipping, "clipped" (1 when torch's clip changed the gradient, else 0),
"grad_norm_before_clip" and "grad_norm_after_clip" (the whole gradient's norm as torch measured
it). They describe the gradient at the entry's point that the next step uses. `add_fields` adds
such columns mid-run (NaN for the entries before).

A frozen parameter's gradient is NaN (it has none), so are its gradient norms. Memory is bounded:
once `capacity` entries are held, every second older entry is dropped (the first and the newest
are always kept), so a long run keeps an ever sparser sample of its past and the full detail of
its recent steps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np

FIELDS = ("step", "x", "y", "loss", "grad_x", "grad_y", "lr")  # the race's columns
SMALL_NUMEL = 16  # a parameter with at most this many elements is recorded in full
RACE_SHAPES: dict[str, tuple[int, ...]] = {"x": (), "y": ()}


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """The column names of a parameter's elements: "x" for a scalar, "w[0]", "M[1,0]"."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i) for i in index)}]"
            for index in itertools.product(*(range(n) for n in shape))]


class Trajectory:
    """Columns of recorded entries (`fields`), each a numpy view: `step`, `loss`, `lr`, the
    parameters' values and gradients where small, and their norms (see the module docstring).

    `parameters` maps each name to its shape; the default is the race's scalars x and y.
    """

    def __init__(self, capacity: int = 200_000,
                 parameters: Mapping[str, tuple[int, ...]] | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        if capacity < 4:
            raise ValueError("capacity must be at least 4")
        self.capacity = capacity
        self.shapes: dict[str, tuple[int, ...]] = dict(
            RACE_SHAPES if parameters is None else parameters)
        self.stored: dict[str, list[str]] = {
            name: element_names(name, shape) for name, shape in self.shapes.items()
            if math.prod(shape) <= SMALL_NUMEL}
        values = [c for cols in self.stored.values() for c in cols]
        grads = ["grad_" + c for c in values]
        self.normed = tuple(n for n, s in self.shapes.items() if math.prod(s) > 1)
        norms = [f"{kind}:{n}" for n in self.normed
                 for kind in ("value_norm", "grad_norm", "update_norm")]
        self.fields: tuple[str, ...] = ("step", *values, "loss", *grads, "lr", *norms, *extra)
        if len(set(self.fields)) != len(self.fields):
            raise ValueError("a trajectory's fields must be distinct")
        self._index = {name: i for i, name in enumerate(self.fields)}
        self._size = 0
        self._buf = np.empty((len(self.fields), min(1024, capacity)), dtype=np.float64)
        self.thinned = 0  # how many times older entries were thinned out
        self.revision = 0  # bumps when existing entries move (thinning), so views redraw all

    def __len__(self) -> int:
        return self._size

    def append(self, *row: float) -> None:
        """Add an entry: one number per field, in `fields` order (the race: step, x, y, loss,
        grad_x, grad_y, lr)."""
        if len(row) != len(self.fields):
            raise ValueError(f"an entry has {len(self.fields)} fields, got {len(row)}")
        if self._size == self._buf.shape[1]:
            self._make_room()
        self._buf[:, self._size] = row
        self._size += 1

    def append_row(self, row: np.ndarray) -> None:
        """`append` for an entry already laid out as one float64 array in `fields` order (the
        engine's general record builds it with one numpy index)."""
        if row.shape != (len(self.fields),):
            raise ValueError(f"an entry has {len(self.fields)} fields, got {row.shape}")
        if self._size == self._buf.shape[1]:
            self._make_room()
        self._buf[:, self._size] = row
        self._size += 1

    def append_rows(self, rows: np.ndarray) -> None:
        """`append_row` for each row of a (entries, fields) float64 array, in order; one copy
        when they fit without growing or thinning."""
        n = len(rows)
        if rows.shape != (n, len(self.fields)):
            raise ValueError(f"entries have {len(self.fields)} fields, got {rows.shape}")
        if self._size + n <= self._buf.shape[1]:
            self._buf[:, self._size:self._size + n] = rows.T
            self._size += n
            return
        for row in rows:
            self.append_row(row)

    def _make_room(self) -> None:
        """The buffer is full: grow it, or once at capacity thin the older entries."""
        if self._size < self.capacity:
            grown = np.empty((len(self.fields), min(self.capacity, 2 * self._size)), np.float64)
            grown[:, : self._size] = self._buf[:, : self._size]
            self._buf = grown
        else:
            self._thin()

    def _thin(self) -> None:
        keep = np.arange(0, self._size, 2)
        if keep[-1] != self._size - 1:
            keep = np.append(keep, self._size - 1)
        n = len(keep)
        self._buf[:, :n] = self._buf[:, keep]
        self._size = n
        self.thinned += 1
        self.revision += 1

    def add_fields(self, names: tuple[str, ...] | list[str]) -> None:
        """Add columns at the end (those not there yet); earlier entries hold NaN in them."""
        new = [n for n in names if n not in self._index]
        if not new:
            return
        self.fields = (*self.fields, *new)
        self._index = {name: i for i, name in enumerate(self.fields)}
        self._buf = np.concatenate(
            [self._buf, np.full((len(new), self._buf.shape[1]), np.nan)], axis=0)
        self.revision += 1

    def set_last(self, **values: float) -> None:
        """Overwrite fields of the newest entry (e.g. its gradient after a freeze)."""
        self.set_last_fields(values)

    def set_last_fields(self, values: Mapping[str, float]) -> None:
        """`set_last` for field names that are not Python identifiers ("grad_w[0]")."""
        for name, value in values.items():
            self._buf[self._index[name], self._size - 1] = value

    def column(self, name: str) -> np.ndarray:
        return self._buf[self._index[name], : self._size]

    # --- the race's columns -------------------------------------------------------------------

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
        """|gradient| over every parameter per entry (a frozen one counts as none)."""
        if set(self.shapes) == set(RACE_SHAPES):  # the race's figure, as it always was
            return np.hypot(np.nan_to_num(self.grad_x), np.nan_to_num(self.grad_y))
        squares = sum(np.nan_to_num(self.parameter_grad_norm(n)) ** 2 for n in self.shapes)
        return np.sqrt(squares) if self.shapes else np.zeros(self._size)

    # --- per parameter ------------------------------------------------------------------------

    def values(self, name: str) -> np.ndarray:
        """A small parameter's recorded values, shape (entries, *shape)."""
        if name not in self.stored:
            raise KeyError(f"{name!r} is not recorded in full (more than {SMALL_NUMEL} "
                           "elements); its norms are")
        columns = [self.column(c) for c in self.stored[name]]
        return np.stack(columns, axis=-1).reshape((self._size, *self.shapes[name]))

    def parameter_value_norm(self, name: str) -> np.ndarray:
        """|value| of one parameter per entry (torch's 2-norm)."""
        if name in self.normed:
            return self.column(f"value_norm:{name}")
        return np.abs(self.column(self._single_column(name)))

    def parameter_grad_norm(self, name: str) -> np.ndarray:
        """|gradient| of one parameter per entry; NaN while it is frozen."""
        if name in self.normed:
            return self.column(f"grad_norm:{name}")
        return np.abs(self.column("grad_" + self._single_column(name)))

    def parameter_update_norm(self, name: str) -> np.ndarray:
        """|change| of one parameter from the step before (NaN for the first entry). For a
        scalar it is read off its values, so after thinning it spans the entries dropped."""
        if name in self.normed:
            return self.column(f"update_norm:{name}")
        values = self.column(self._single_column(name))
        return np.concatenate([[math.nan], np.abs(np.diff(values))])[: self._size]

    def _single_column(self, name: str) -> str:
        """The one value column of a one-element parameter: `x` for a scalar, `b[0]` for a
        tensor of shape (1,) (a Linear(16, 1)'s bias)."""
        columns = self.stored.get(name)
        return columns[0] if columns else name

    def last(self) -> dict[str, float]:
        return {name: float(self._buf[i, self._size - 1]) for i, name in enumerate(self.fields)}

    def to_dict(self) -> dict[str, list]:
        """Plain lists for JSON: steps as ints, a frozen parameter's gradient as None."""
        out: dict[str, list] = {"step": [int(s) for s in self.step]}
        for name in self.fields[1:]:
            out[name] = [None if np.isnan(v) else float(v) for v in self.column(name)]
        return out

    def nbytes(self) -> int:
        return int(self._buf.nbytes)
