"""CSV and JSON export of trajectories."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from core.errors import ExportError
from core.export import export_data, result_dict, to_csv, to_json
from core.session import Session
from core.surfaces import get_surface

HEADER = ["run", "optimizer", "label", "status", "step", "x", "y", "loss", "grad_x", "grad_y", "lr"]


def stepped_session() -> Session:
    s = Session(get_surface("rosenbrock"))
    s.add_run("Adam", {"lr": 0.05})
    s.add_run("SGD", {"lr": 1e-3}, frozen=["y"], label="frozen y")
    s.add_run("SGD", {"lr": 1.0})  # diverges after a couple of steps
    for run in s.runs:
        run.step(12)
    return s


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_a_header_and_a_row_per_run_per_recorded_step() -> None:
    s = stepped_session()
    text = to_csv(s)
    lines = text.splitlines()
    assert lines[0].split(",") == HEADER
    rows = read_csv(text)
    assert len(rows) == sum(len(r.trajectory) for r in s.runs)
    assert len(rows) == 13 + 13 + len(s.runs[2].trajectory)
    for number, run in enumerate(s.runs, start=1):
        mine = [r for r in rows if r["run"] == str(number)]
        assert len(mine) == len(run.trajectory)
        assert {r["optimizer"] for r in mine} == {run.optimizer_name}
        assert {r["label"] for r in mine} == {run.title}
        assert {r["status"] for r in mine} == {run.status.value}
        assert [int(r["step"]) for r in mine] == list(range(len(run.trajectory)))
        # numbers survive exactly
        for field in ("x", "y", "loss", "lr"):
            assert [float(r[field]) for r in mine] == list(run.trajectory.column(field))
    assert s.runs[2].status.value == "diverged"


def test_csv_frozen_gradient_is_an_empty_cell() -> None:
    rows = [r for r in read_csv(to_csv(stepped_session())) if r["run"] == "2"]
    assert rows and all(r["grad_y"] == "" for r in rows)
    assert all(r["grad_x"] != "" and math.isfinite(float(r["grad_x"])) for r in rows)
    assert {r["label"] for r in rows} == {"frozen y"}


def test_csv_of_a_session_without_runs_is_just_the_header() -> None:
    assert to_csv(Session(get_surface("bowl"))).splitlines() == [",".join(HEADER)]


def test_json_parses_and_loads_again_as_a_session(tmp_path: Path) -> None:
    s = stepped_session()
    data = json.loads(to_json(s))
    assert data["surface"]["name"] == "rosenbrock"
    assert data["surface"]["formula"] == get_surface("rosenbrock").text
    assert len(data["runs"]) == 3
    run = data["runs"][1]
    assert run["optimizer"] == "SGD" and run["frozen"] == ["y"] and run["status"] == "running"
    traj = run["trajectory"]
    assert traj["step"] == list(range(13))
    assert traj["grad_y"] == [None] * 13
    assert traj["x"] == list(s.runs[1].trajectory.x)
    assert data["runs"][2]["status"] == "diverged"
    again = Session.from_dict(data)
    assert [r.config() for r in again.runs] == [r.config() for r in s.runs]
    assert result_dict(s) == data

    path = tmp_path / "out.json"
    export_data(s, path)
    loaded = Session.load(path)
    assert [r.config() for r in loaded.runs] == [r.config() for r in s.runs]
    assert loaded.surface is s.surface


def test_json_of_a_formula_session_loads_again(tmp_path: Path) -> None:
    from core.surfaces import surface_from_formula

    s = Session(surface_from_formula("x**2 + 3*y**2", (-2, 2), (-1, 1), (1, 0.5)))
    s.add_run("SGD", {"lr": 0.1})
    s.runs[0].step(3)
    path = tmp_path / "f.json"
    export_data(s, path)
    loaded = Session.load(path)
    assert loaded.surface.text == "x**2 + 3*y**2" and loaded.surface.y_range == (-1.0, 1.0)


def test_export_csv_file(tmp_path: Path) -> None:
    s = stepped_session()
    path = tmp_path / "OUT.CSV"
    export_data(s, path)
    assert path.read_text() == to_csv(s)


@pytest.mark.parametrize("where", ["missing-dir/out.json", "file.txt/out.csv"])
def test_export_to_a_bad_path_is_an_export_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ExportError) as info:
        export_data(stepped_session(), tmp_path / where)
    assert "cannot write" in str(info.value) and "out." in str(info.value)


def test_export_to_a_directory_is_an_export_error(tmp_path: Path) -> None:
    d = tmp_path / "dir.json"
    d.mkdir()
    with pytest.raises(ExportError):
        export_data(stepped_session(), d)


@pytest.mark.parametrize("name", ["out.txt", "out", "out.json.bak", "out.xlsx"])
def test_unknown_extension_is_an_export_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ExportError, match=".json or .csv"):
        export_data(stepped_session(), tmp_path / name)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("suffix", [".json", ".csv"])
@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_export_keeps_the_old_file_and_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch, suffix: str, failing: str) -> None:
    # the disk fills up mid-write (fsync fails) or the rename fails: the old export stays whole
    import core.atomic

    path = tmp_path / f"out{suffix}"
    path.write_text("the old export")

    def disk_full(*args, **kwargs) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.atomic.os, failing, disk_full)
    with pytest.raises(ExportError, match="No space left"):
        export_data(stepped_session(), path)
    monkeypatch.undo()
    assert path.read_text() == "the old export"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
