"""The README's examples work as written and in order; `make lint` and CI run ruff."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import main
from core.session import Session

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON = ".venv/bin/python"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def command_line_examples() -> list[list[str]]:
    """Every `main.py` command of the README's "Command line" section, as argv lists."""
    section = README[README.index("## Command line"):README.index("## Formulas")]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block is not None
    text = block.group(1).replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def test_every_example_says_which_python_to_use() -> None:
    commands = command_line_examples()
    assert len(commands) >= 8
    for words in commands:
        assert words[:2] == [PYTHON, "main.py"], words
    # nowhere else does the README tell people to type a bare `python main.py`
    assert not re.search(r"(?<![/\w])python3? main\.py", README)


def test_no_example_uses_a_file_before_the_example_that_makes_it() -> None:
    made: set[str] = set()
    for words in command_line_examples():
        for option in ("--session",):
            if option in words:
                name = words[words.index(option) + 1]
                assert name in made or (ROOT / name).is_file(), f"{name} is used before it is made"
        if "--out" in words:
            made.add(words[words.index("--out") + 1])


def test_the_command_line_examples_run_in_order(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resources").symlink_to(ROOT / "resources")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    for words in command_line_examples():
        argv = words[2:]
        if not argv:
            continue  # the app itself
        code = main.main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (argv, err)
        if "--out" in argv:
            assert (tmp_path / argv[argv.index("--out") + 1]).stat().st_size > 0
        if "--json" in argv:
            json.loads(out)
    # "replays its 300 steps": the session made by export runs 300 steps again without --steps
    assert all(r.steps == 0 for r in Session.load(tmp_path / "race.json").runs)
    session = Session.load(tmp_path / "race.json")
    assert {session.steps_for(r) for r in session.runs} == {300}


def test_the_session_file_example_loads() -> None:
    examples = [json.loads(b) for b in code_blocks("json")]
    assert examples
    for data in examples:
        Session.from_dict(data)


def test_make_lint_runs_ruff_and_ci_runs_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe is not None, "make lint has no recipe"
    assert "ruff check" in recipe.group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, flags=re.M) and re.search(r"^make lint\b", ci, flags=re.M)
    # a fresh clone gets ruff from the extra that `make` installs
    extra = re.search(r"install .*'\.\[(\w+)\]'", makefile)
    assert extra is not None
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("ruff") for d in project["optional-dependencies"][extra.group(1)])


@pytest.mark.parametrize("path", ["core/session.py", "core/export.py", "core/errors.py",
                                  "main.py", "tests/test_cli.py", "tests/core/test_session.py",
                                  "tests/core/test_export.py", "tests/test_readme_and_tooling.py"])
def test_these_files_are_ruff_clean(path: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", path], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
