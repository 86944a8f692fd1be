"""Sessions: a faithful JSON round trip, and a clear SessionError for every kind of bad file."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from core.errors import SessionError
from core.optimizers import CATALOGUE
from core.run import Run, RunStatus
from core.session import (
    DEFAULT_STEPS,
    FORMAT,
    MAX_EVALUATIONS,
    MAX_LABEL,
    MAX_RUNS,
    PALETTE,
    VERSION,
    Session,
    evaluations_per_step,
    validate_label,
)
from core.surfaces import SURFACES, get_surface, surface_from_formula


def make_session() -> Session:
    session = Session(get_surface("himmelblau"), start=(1.0, 2.0))
    session.add_run("Adam", {"lr": 0.05, "betas": (0.8, 0.99)})
    session.add_run("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}, frozen=["y"],
                    label="heavy ball", color="#123456")
    session.add_run("LBFGS", {"line_search_fn": "strong_wolfe"}, frozen=["x"], enabled=False)
    session.extra = {"view": {"zoom": 2}}
    return session


def configs(session: Session) -> list[dict]:
    return [r.config() for r in session.runs]


def test_round_trip_with_a_builtin_surface(tmp_path: Path) -> None:
    s = make_session()
    s.step(5)
    path = tmp_path / "s.json"
    s.save(path)
    loaded = Session.load(path)
    assert loaded.surface is get_surface("himmelblau")
    assert loaded.start == (1.0, 2.0)
    assert configs(loaded) == configs(s)
    assert [r.hyperparameters for r in loaded.runs] == [r.hyperparameters for r in s.runs]
    assert loaded.runs[0].hyperparameters["betas"] == (0.8, 0.99)
    assert loaded.runs[1].frozen == {"y"} and loaded.runs[2].frozen == {"x"}
    assert loaded.runs[1].label == "heavy ball" and loaded.runs[1].color == "#123456"
    assert loaded.runs[2].enabled is False
    assert loaded.extra == {"view": {"zoom": 2}}
    # the loaded runs start afresh at the session's start
    for r in loaded.runs:
        assert r.steps == 0 and (r.trajectory.x[0], r.trajectory.y[0]) == (1.0, 2.0)
    # and behave like the originals would from the start
    loaded.runs[1].step(3)
    assert set(loaded.runs[1].trajectory.y) == {2.0}


def test_round_trip_with_a_formula_surface(tmp_path: Path) -> None:
    surface = surface_from_formula("sin(x)*cos(y) + 0.1*(x**2 + y**2)", (-4.0, 4.0), (-2.0, 5.0),
                                   (1.5, -1.0), name="ripples")
    s = Session(surface, start=(0.5, 0.5))
    s.add_run("RMSprop", {"lr": 0.02, "centered": True})
    path = tmp_path / "f.json"
    s.save(path)
    loaded = Session.load(path)
    ls = loaded.surface
    assert ls.text == surface.text and ls.name == "ripples" and not ls.builtin
    assert ls.x_range == (-4.0, 4.0) and ls.y_range == (-2.0, 5.0) and ls.start == (1.5, -1.0)
    for p in [(0.3, 0.7), (-3.0, 4.0)]:
        assert ls.value(*p) == surface.value(*p)
    assert loaded.start == (0.5, 0.5)
    assert configs(loaded) == configs(s)


def test_save_with_trajectories_loads_as_a_session(tmp_path: Path) -> None:
    s = make_session()
    s.step(4)
    path = tmp_path / "t.json"
    s.save(path, include_trajectories=True)
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["version"] == VERSION
    assert data["runs"][0]["trajectory"]["step"] == [0, 1, 2, 3, 4]
    assert configs(Session.load(path)) == configs(s)


def test_from_dict_of_to_dict_is_identity() -> None:
    s = make_session()
    again = Session.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again.to_dict() == s.to_dict()


def test_default_session_and_colours() -> None:
    s = Session.default()
    assert s.surface is get_surface("rosenbrock")
    assert [r.optimizer_name for r in s.runs] == ["SGD", "SGD", "RMSprop", "Adam"]
    colours = [r.color for r in s.runs]
    assert len(set(colours)) == 4 and all(c in PALETTE for c in colours)


def test_set_surface_and_start_restart_every_run() -> None:
    s = make_session()
    s.step(3)
    s.set_start((0.0, 0.0))
    assert all(r.steps == 0 and r.start == (0.0, 0.0) for r in s.runs)
    s.step(2)
    s.set_surface(get_surface("booth"))
    assert s.start == get_surface("booth").start
    assert all(r.surface is s.surface and r.steps == 0 for r in s.runs)


def test_session_step_skips_disabled_and_diverged_runs() -> None:
    s = Session(get_surface("rosenbrock"))
    a = s.add_run("SGD", {"lr": 1e-3})
    b = s.add_run("SGD", {"lr": 1.0})  # diverges
    c = s.add_run("Adam", enabled=False)
    s.step(10)
    assert a.steps == 10 and b.status is RunStatus.DIVERGED and c.steps == 0
    assert b not in s.active_runs and c not in s.active_runs


def test_at_most_max_runs() -> None:
    s = Session(get_surface("bowl"))
    for _ in range(MAX_RUNS):
        s.add_run("SGD")
    with pytest.raises(SessionError):
        s.add_run("SGD")
    assert len(s.runs) == MAX_RUNS


def test_duplicate_and_remove_run() -> None:
    s = make_session()
    copy_ = s.duplicate_run(s.runs[1])
    assert copy_.config() | {"color": None} == s.runs[1].config() | {"color": None}
    assert copy_.color != s.runs[1].color
    s.remove_run(copy_)
    assert copy_ not in s.runs


# --- bad files ------------------------------------------------------------------------------------


def good_data() -> dict:
    return {"format": FORMAT, "version": VERSION, "surface": {"name": "booth"}, "start": [1, 2],
            "runs": [{"optimizer": "Adam", "hyperparameters": {"lr": 0.1}},
                     {"optimizer": "SGD", "frozen": ["x"]}]}


def with_(path: list, value=None, delete: bool = False) -> dict:
    data = good_data()
    target = data
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


BAD_DATA = [
    ("not an object", [1, 2], "JSON object"),
    ("a string", "session", "JSON object"),
    ("wrong format", with_(["format"], "something-else"), "format"),
    ("no format", with_(["format"], delete=True), "format"),
    ("no version", with_(["version"], delete=True), "version"),
    ("version text", with_(["version"], "1"), "version"),
    ("version bool", with_(["version"], True), "version"),
    ("newer version", with_(["version"], VERSION + 1), "newer"),
    ("no surface", with_(["surface"], delete=True), "surface"),
    ("no runs", with_(["runs"], delete=True), "runs"),
    ("runs not a list", with_(["runs"], {"optimizer": "Adam"}), "runs"),
    ("too many runs", with_(["runs"], [{"optimizer": "SGD"}] * (MAX_RUNS + 1)), "too many"),
    ("unknown surface", with_(["surface", "name"], "nowhere"), "nowhere"),
    ("surface not an object", with_(["surface"], "booth"), "surface"),
    ("surface without a name", with_(["surface"], {}), "surface"),
    ("bad formula", with_(["surface"], {"formula": "x +* y"}), "surface"),
    ("formula not text", with_(["surface"], {"formula": 3}), "formula"),
    ("formula never finite", with_(["surface"], {"formula": "log(-1 - x**2)"}), "finite"),
    ("bad x range", with_(["surface"], {"formula": "x", "x_range": [2, 1]}), "x range"),
    ("x range not a pair", with_(["surface"], {"formula": "x", "x_range": [1]}), "x_range"),
    ("bad start", with_(["start"], [1]), "start"),
    ("start text", with_(["start"], ["a", 1]), "start"),
    ("start NaN", with_(["start"], [math.nan, 1]), "start"),
    ("start bool", with_(["start"], [True, 1]), "start"),
    ("run not an object", with_(["runs", 0], "Adam"), "run 1"),
    ("run without optimizer", with_(["runs", 1, "optimizer"], delete=True), "optimizer"),
    ("unknown optimizer", with_(["runs", 1, "optimizer"], "Adamm"), "Adamm"),
    ("optimizer not text", with_(["runs", 0, "optimizer"], 3), "optimizer"),
    ("bad hyperparameter", with_(["runs", 0, "hyperparameters", "lr"], -1), "lr"),
    ("bad betas", with_(["runs", 0, "hyperparameters", "betas"], [1.0, 0.9]), "betas"),
    ("unknown hyperparameter", with_(["runs", 0, "hyperparameters", "lrr"], 1), "lrr"),
    ("hyperparameters not an object", with_(["runs", 0, "hyperparameters"], [0.1]),
     "hyperparameters"),
    ("huge integer lr", with_(["runs", 0, "hyperparameters", "lr"], 10**400), "lr"),
    ("bad frozen", with_(["runs", 1, "frozen"], ["z"]), "frozen"),
    ("frozen not a list", with_(["runs", 1, "frozen"], "x"), "frozen"),
    ("bad colour", with_(["runs", 1, "color"], "red"), "color"),
    ("label not text", with_(["runs", 1, "label"], 5), "label"),
    ("enabled not bool", with_(["runs", 1, "enabled"], "yes"), "enabled"),
]


@pytest.mark.parametrize("data, words", [(d, w) for _, d, w in BAD_DATA],
                         ids=[i for i, _, _ in BAD_DATA])
def test_bad_session_data_gives_a_clear_session_error(tmp_path: Path, data, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SessionError) as info:
        Session.load(path)
    msg = str(info.value)
    assert words.lower() in msg.lower(), msg
    assert "bad.json" in msg  # it says which file
    assert "\n" not in msg


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ('{"format": ', "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "JSON"),
    ("NaN", "JSON object"),
])
def test_not_json(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SessionError, match=words):
        Session.load(path)


def test_not_text(tmp_path: Path) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(SessionError, match="not"):
        Session.load(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="cannot read"):
        Session.load(tmp_path / "missing.json")
    with pytest.raises(SessionError, match="cannot read"):
        Session.load(tmp_path)


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("w") as f:
        f.write('{"pad": "')
        f.write("a" * 11_000_000)
        f.write('"}')
    with pytest.raises(SessionError, match="too large"):
        Session.load(path)


def test_a_failed_load_leaves_the_callers_session_and_the_catalogues_unchanged(
        tmp_path: Path) -> None:
    session = make_session()
    session.step(3)
    before = session.to_dict(include_trajectories=True)
    runs_before = list(session.runs)
    surfaces_before = dict(SURFACES)
    catalogue_before = {n: s.defaults for n, s in CATALOGUE.items()}
    # valid up to the last run: a partial build must not leak anywhere
    data = good_data()
    data["runs"].append({"optimizer": "Adam", "hyperparameters": {"lr": 0}})
    path = tmp_path / "half.json"
    path.write_text(json.dumps(data))
    original = copy.deepcopy(data)
    try:
        session = Session.load(path)
    except SessionError:
        pass
    else:
        pytest.fail("the file should not load")
    assert session.to_dict(include_trajectories=True) == before
    assert session.runs == runs_before
    assert all(r.surface is session.surface for r in session.runs)
    assert dict(SURFACES) == surfaces_before
    assert {n: s.defaults for n, s in CATALOGUE.items()} == catalogue_before
    assert json.loads(path.read_text()) == original  # the file is not rewritten


def test_from_dict_does_not_modify_its_input() -> None:
    data = good_data()
    original = copy.deepcopy(data)
    Session.from_dict(data)
    assert data == original


# --- saving ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["missing-dir/s.json", "file.txt/s.json", "."])
def test_save_to_an_unwritable_path_is_a_session_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "file.txt").write_text("a file, not a directory")
    with pytest.raises(SessionError) as info:
        make_session().save(tmp_path / where)
    assert "cannot write" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # no stray temp file


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_save_keeps_the_existing_file(tmp_path: Path, monkeypatch, failing: str) -> None:
    # The disk fills up after half the text (fsync fails), or the final rename fails: either
    # way the old file is intact and no temporary file is left behind (core/atomic.py).
    import core.atomic

    path = tmp_path / "keep.json"
    old = make_session()
    old.save(path)
    old_text = path.read_text()

    def disk_full(*args, **kwargs) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.atomic.os, failing, disk_full)
    new = Session(get_surface("booth"))
    new.add_run("SGD")
    with pytest.raises(SessionError, match="No space left"):
        new.save(path)
    monkeypatch.undo()
    assert path.read_text() == old_text
    assert configs(Session.load(path)) == configs(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    make_session().save(path)
    s = Session(get_surface("booth"))
    s.add_run("Adagrad")
    s.save(path)
    assert Session.load(path).surface is get_surface("booth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_loaded_run_equals_a_directly_built_run(tmp_path: Path) -> None:
    s = make_session()
    path = tmp_path / "s.json"
    s.save(path)
    loaded = Session.load(path)
    direct = Run(get_surface("himmelblau"), "Adam", {"lr": 0.05, "betas": (0.8, 0.99)},
                 start=(1.0, 2.0))
    loaded.runs[0].step(10)
    direct.step(10)
    assert list(loaded.runs[0].trajectory.x) == list(direct.trajectory.x)


def test_a_builtin_described_in_full_loads_as_the_builtin_but_a_changed_copy_stays_custom() -> None:
    rosen = get_surface("rosenbrock")
    full = {"name": "rosenbrock", "formula": rosen.text, "x_range": list(rosen.x_range),
            "y_range": list(rosen.y_range), "start": list(rosen.start)}
    data = good_data() | {"surface": full}
    assert Session.from_dict(data).surface is rosen
    changed = good_data() | {"surface": full | {"x_range": [-5, 5]}}
    custom = Session.from_dict(changed).surface
    assert custom is not rosen and not custom.builtin and custom.x_range == (-5.0, 5.0)
    edited = good_data() | {"surface": full | {"formula": rosen.text + " + x"}}
    assert not Session.from_dict(edited).surface.builtin


def test_a_start_that_is_not_finite_is_refused_and_changes_nothing():
    from core.errors import SurfaceError
    from core.surfaces import get_surface

    session = Session(get_surface("booth"))
    session.add_run("SGD", {"lr": 0.01})
    session.step(3)
    with pytest.raises(SurfaceError, match="finite"):
        session.set_start((float("nan"), 1.0))
    assert session.start == get_surface("booth").start
    assert session.runs[0].steps == 3


# --- issue 7: step counts, the work bound, the schema ---------------------------------------------


def test_a_saved_session_records_each_runs_steps_and_play_reproduces_them(tmp_path: Path) -> None:
    s = Session(get_surface("booth"), start=(1.0, 1.0))
    a = s.add_run("Adam", {"lr": 0.05})
    b = s.add_run("SGD", {"lr": 0.01})
    a.step(7)
    b.step(3)
    path = tmp_path / "s.json"
    s.save(path)
    assert [r["steps"] for r in json.loads(path.read_text())["runs"]] == [7, 3]
    loaded = Session.load(path)
    assert [loaded.steps_for(r) for r in loaded.runs] == [7, 3]
    loaded.play()
    assert [r.steps for r in loaded.runs] == [7, 3]
    assert list(loaded.runs[0].trajectory.x) == list(a.trajectory.x)
    assert list(loaded.runs[1].trajectory.y) == list(b.trajectory.y)
    # an explicit count overrides the file's
    again = Session.load(path)
    again.play(5)
    assert [r.steps for r in again.runs] == [5, 5]


def test_opening_and_saving_again_keeps_the_step_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    data = good_data()
    data["runs"][0]["steps"] = 40
    path.write_text(json.dumps(data))
    Session.load(path).save(path)  # not stepped in between
    assert [r.get("steps") for r in json.loads(path.read_text())["runs"]] == [40, 0]


def test_a_file_without_steps_plays_the_default() -> None:
    s = Session.from_dict(good_data())
    assert [s.steps_for(r) for r in s.runs] == [DEFAULT_STEPS, DEFAULT_STEPS]


def test_play_does_not_step_disabled_runs() -> None:
    data = good_data()
    data["runs"][1]["enabled"] = False
    s = Session.from_dict(data)
    assert s.play(4) == 4
    assert [r.steps for r in s.runs] == [4, 0]


def test_the_work_a_session_asks_for_is_bounded() -> None:
    data = good_data()
    data["runs"] = [{"optimizer": "LBFGS", "steps": 200, "hyperparameters": {
        "max_iter": 1000, "tolerance_grad": 0.0, "tolerance_change": 0.0}}]
    s = Session.from_dict(data)  # loading is fine: the app can step it, a frame at a time
    with pytest.raises(SessionError) as info:
        s.play()
    msg = str(info.value)
    assert "run 1" in msg and "max_iter" in msg and "steps" in msg and "\n" not in msg
    assert s.runs[0].steps == 0  # refused before any work
    s.play(10)  # a shorter race is fine
    assert s.runs[0].steps == 10 or s.runs[0].status.value != "running"
    plain = Session.from_dict(good_data())
    with pytest.raises(SessionError, match="run 1.*'steps'"):
        plain.play(MAX_EVALUATIONS)  # two runs of that many steps
    plain.play(MAX_EVALUATIONS // 2 // 100)
    with pytest.raises(SessionError, match="steps"):
        plain.play(-1)


def test_evaluations_per_step_follows_torchs_max_eval() -> None:
    s = Session(get_surface("booth"))
    assert evaluations_per_step(s.add_run("Adam")) == 1
    assert evaluations_per_step(s.add_run("LBFGS")) == 20 * 5 // 4 + 1
    assert evaluations_per_step(s.add_run("LBFGS", {"max_iter": 1000})) == 1251


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "f.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_a_400_digit_integer_is_a_clear_refusal(tmp_path: Path) -> None:
    text = json.dumps(good_data()).replace('"start": [1, 2]', '"start": [1' + "0" * 400 + ", 2]")
    with pytest.raises(SessionError) as info:
        Session.load(write(tmp_path, text))
    msg = str(info.value)
    assert "'start[0]'" in msg and "401-digit" in msg and len(msg) < 200


def test_a_huge_integer_deep_in_a_run_names_the_field(tmp_path: Path) -> None:
    text = json.dumps(good_data()).replace('"lr": 0.1', '"lr": ' + "9" * 5000)
    with pytest.raises(SessionError, match=r"run 1: 'hyperparameters.lr'"):
        Session.load(write(tmp_path, text))


def test_dev_zero_is_too_large_not_read_to_the_end() -> None:
    with pytest.raises(SessionError, match="too large"):
        Session.load("/dev/zero")


@pytest.mark.parametrize("constant, where", [
    ("NaN", "run 1: 'hyperparameters.lr'"),
    ("Infinity", "run 1: 'hyperparameters.lr'"),
    ("-Infinity", "run 1: 'hyperparameters.lr'"),
    ("1e400", "run 1: 'hyperparameters.lr'"),
])
def test_nan_and_infinity_are_refused_naming_the_field(tmp_path: Path, constant: str,
                                                       where: str) -> None:
    text = json.dumps(good_data()).replace('"lr": 0.1', f'"lr": {constant}')
    with pytest.raises(SessionError) as info:
        Session.load(write(tmp_path, text))
    assert where in str(info.value) and "finite" in str(info.value)


def test_nan_in_extra_or_a_trajectory_is_refused_too(tmp_path: Path) -> None:
    data = good_data() | {"extra": {"view": {"zoom": [1, "NAN_HERE"]}}}
    text = json.dumps(data).replace('"NAN_HERE"', "NaN")
    with pytest.raises(SessionError, match=r"'extra.view.zoom\[1\]'"):
        Session.load(write(tmp_path, text))
    with pytest.raises(SessionError, match="finite"):
        Session.from_dict(good_data() | {"start": [1.0, math.inf]})


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + json.dumps(good_data()).encode())
    assert Session.load(path).surface is get_surface("booth")


def test_a_builtin_name_with_a_region_is_refused_not_ignored() -> None:
    for key, value in (("x_range", [-5, 5]), ("y_range", [0, 1]), ("start", [0, 0])):
        data = good_data() | {"surface": {"name": "booth", key: value}}
        with pytest.raises(SessionError) as info:
            Session.from_dict(data)
        assert key in str(info.value) and "formula" in str(info.value)


SCHEMA_ERRORS = [
    ("version 0", with_(["version"], 0), "'version' must be from 1 to 1, got 0"),
    ("version -7", with_(["version"], -7), "'version' must be from 1 to 1, got -7"),
    ("colour not hex", with_(["runs", 1, "color"], "#zzzzzz"),
     "run 2: 'color' must be #rrggbb, got '#zzzzzz'"),
    ("colour with alpha", with_(["runs", 1, "color"], "#11223344"), "run 2: 'color'"),
    ("label too long", with_(["runs", 0, "label"], "a" * (MAX_LABEL + 1)),
     f"run 1: 'label' must be one line of at most {MAX_LABEL} characters"),
    ("label with a newline", with_(["runs", 0, "label"], "two\nlines"), "run 1: 'label'"),
    ("unknown top-level key", with_(["colour_scheme"], "dark"),
     "unknown field 'colour_scheme'"),
    ("unknown run key", with_(["runs", 1, "lerning_rate"], 0.1),
     "run 2: unknown field 'lerning_rate'"),
    ("unknown surface key", with_(["surface", "zoom"], 2), "surface: unknown field 'zoom'"),
    ("surface name with a newline", with_(["surface"], {"name": "a\nb", "formula": "x"}),
     "surface: 'name'"),
    ("steps negative", with_(["runs", 0, "steps"], -1), "run 1: 'steps'"),
    ("steps text", with_(["runs", 0, "steps"], "10"), "run 1: 'steps'"),
    ("steps bool", with_(["runs", 0, "steps"], True), "run 1: 'steps'"),
    ("extra not an object", with_(["extra"], [1]), "'extra' must be an object"),
    ("extra title not text", with_(["extra"], {"title": 3}), "extra: 'title'"),
]


@pytest.mark.parametrize("data, message", [(d, m) for _, d, m in SCHEMA_ERRORS],
                         ids=[i for i, _, _ in SCHEMA_ERRORS])
def test_the_schema_refuses_with_a_message_naming_the_field(data, message: str) -> None:
    with pytest.raises(SessionError) as info:
        Session.from_dict(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_extra_is_free_form_and_exports_load() -> None:
    free = good_data() | {"extra": {"title": "t", "view": {"zoom": [1, 2], "anything": None}}}
    assert Session.from_dict(free).extra["view"]["anything"] is None
    # what an export writes beyond the session fields (status, trajectory, minima) loads
    from core.export import result_dict

    s = make_session()
    s.step(2)
    assert configs(Session.from_dict(result_dict(s))) == configs(s)


def test_the_app_never_writes_a_file_it_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("the old file")
    s = make_session()
    s.runs[0].label = "a label typed far too long " * 10
    with pytest.raises(SessionError, match="cannot save the session: run 1: 'label'"):
        s.save(path)
    assert path.read_text() == "the old file"
    assert validate_label("fine") == "fine" and validate_label(None) is None
    with pytest.raises(SessionError, match="one line"):
        validate_label("two\nlines")


def test_output_only_fields_are_what_an_export_adds_to_the_loadable_ones():
    # The session schema spells these out; they must follow what Run.to_dict and
    # Surface.describe really write, or an export would not load again.
    from core.session import OUTPUT_ONLY_FIELDS, RUN_FIELDS, SURFACE_FIELDS
    from core.surfaces import BUILTIN_SURFACES

    surface = BUILTIN_SURFACES[0]
    run_keys = set(Run(surface, "SGD").to_dict())
    assert OUTPUT_ONLY_FIELDS["run"] == run_keys - {f.name for f in RUN_FIELDS}
    assert OUTPUT_ONLY_FIELDS["surface"] == set(surface.describe()) - {
        f.name for f in SURFACE_FIELDS}


# --- issue 11: a run's scheduler, clipping and noise --------------------------------------------


def test_scheduler_clipping_and_noise_round_trip(tmp_path: Path) -> None:
    from core.gradient_tools import GradientClipping, GradientNoise

    session = Session(get_surface("rosenbrock"))
    session.add_run("SGD", {"lr": 1e-3, "momentum": 0.9},
                    scheduler="SequentialLR(schedulers=[LinearLR(start_factor=0.1, "
                              "total_iters=10), CosineAnnealingLR(T_max=50)], milestones=[10])",
                    clipping=GradientClipping("norm", 5.0), noise=GradientNoise(2.0, seed=9))
    session.add_run("Adam", {"lr": 0.05}, scheduler="ReduceLROnPlateau(patience=3)",
                    clipping=GradientClipping("value", 0.5))
    session.add_run("SGD", {"lr": 1e-3})  # nothing: written exactly as before
    session.play(40)
    path = tmp_path / "s.json"
    session.save(path)
    data = json.loads(path.read_text())
    assert data["runs"][0]["noise"] == {"sigma": 2.0, "seed": 9}
    assert data["runs"][0]["clip_norm"] == 5.0 and data["runs"][1]["clip_value"] == 0.5
    assert data["runs"][1]["scheduler"] == "ReduceLROnPlateau(patience=3)"
    assert not {"scheduler", "clip_norm", "clip_value", "noise"} & set(data["runs"][2])
    loaded = Session.load(path)
    assert configs(loaded) == configs(session)
    loaded.play()
    for a, b in zip(session.runs, loaded.runs):  # the same runs again, bit for bit
        assert a.trajectory.fields == b.trajectory.fields
        for f in a.trajectory.fields:
            assert a.trajectory.column(f).tobytes() == b.trajectory.column(f).tobytes(), f
    # a run's duplicate has its own noise generator, from the same seed
    twin = session.duplicate_run(session.runs[0])
    assert twin.noise is not session.runs[0].noise
    assert twin.config() | {"color": None} == session.runs[0].config() | {"color": None}


@pytest.mark.parametrize("field,value,words", [
    ("scheduler", "StepLR(step_size=0)", "run 1: 'scheduler': StepLR: step_size must be"),
    ("scheduler", "Cosine(T_max=3)", "run 1: 'scheduler': unknown scheduler 'Cosine'"),
    ("scheduler", 5, "run 1: 'scheduler' must be a scheduler call as text"),
    ("clip_norm", -1, "run 1: clip_norm must be a number > 0, got -1"),
    ("clip_value", True, "run 1: clip_value must be a number > 0, got True"),
    ("noise", 0.5, "run 1: 'noise' must be {\"sigma\""),
    ("noise", {"sigma": 0.5, "seeds": 1}, "run 1: 'noise' must be"),
    ("noise", {"sigma": -0.5}, "run 1: 'noise': noise must be a number >= 0"),
    ("noise", {"sigma": 0.5, "seed": 1.5}, "run 1: 'noise': seed must be a whole number"),
])
def test_bad_scheduler_clipping_or_noise_names_the_field(field: str, value, words: str) -> None:
    data = good_data()
    data["runs"][0][field] = value
    with pytest.raises(SessionError) as e:
        Session.from_dict(data)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_both_clippings_are_refused() -> None:
    data = good_data()
    data["runs"][0].update(clip_norm=1.0, clip_value=1.0)
    with pytest.raises(SessionError, match="run 1: give clip_norm or clip_value, not both"):
        Session.from_dict(data)
