"""Trajectories to CSV and JSON. (Images need Qt and live in gui/.)"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import write_atomic
from core.errors import ExportError
from core.session import Session
from core.trajectory import FIELDS

CSV_COLUMNS = ("run", "optimizer", "label", "status") + FIELDS  # the race's header


def result_dict(session: Session) -> dict[str, Any]:
    """The JSON the command line prints: the surface and each run with its whole trajectory.

    It is also a session file (format and version included), so it can be loaded again.
    """
    data = session.to_dict(include_trajectories=True)
    data["surface"] = {**session.surface.describe(), **session.surface.to_dict()}
    return data


def to_json(session: Session) -> str:
    return json.dumps(result_dict(session), indent=1, allow_nan=False)


def trajectory_fields(session: Session) -> tuple[str, ...]:
    """The trajectory columns of a CSV export: the race's FIELDS, or per parameter (values
    where small, norms) in the order of the first run's record, then any other run's extras."""
    fields: list[str] = []
    for run in session.runs:
        fields += [f for f in run.trajectory.fields if f not in fields]
    return tuple(fields) if fields else FIELDS


def to_csv(session: Session) -> str:
    """A row per run and recorded step. A frozen parameter's gradient is an empty cell, and so
    is a column a run does not record."""
    fields = trajectory_fields(session)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("run", "optimizer", "label", "status") + fields)
    for number, run in enumerate(session.runs, start=1):
        t = run.trajectory
        missing = np.full(len(t), np.nan)
        columns = [t.column(f) if f in t.fields else missing for f in fields]
        head = (number, run.optimizer_name, run.title, run.status.value)
        for values in zip(*columns):
            writer.writerow(head + tuple(_cell(f, v) for f, v in zip(fields, values)))
    return out.getvalue()


def _cell(field: str, value: float) -> str:
    if value != value:  # nan: no gradient (frozen)
        return ""
    return str(int(value)) if field == "step" else repr(float(value))


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically (core.atomic: a temporary file, then rename), so a failure keeps
    the old file intact; every OS failure becomes an ExportError that names the path."""
    path = Path(path)
    try:
        write_atomic(path, text)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None


def export_data(session: Session, path: str | Path) -> None:
    """Write trajectories by the file's extension: .json (loadable as a session) or .csv."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        write_text(path, to_json(session))
    elif suffix == ".csv":
        write_text(path, to_csv(session))
    else:
        raise ExportError(f"cannot export to {Path(path).name!r}: use .json or .csv "
                          "(or .png / .svg for a picture)")
