"""core/ is the engine: it never imports Qt, pyqtgraph or gui/ (checked by parsing, not grep)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
FORBIDDEN = {"PySide6", "PySide2", "PyQt5", "PyQt6", "pyqtgraph", "qtpy", "gui", "shiboken6"}


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every import of a forbidden top-level package in `source`, as 'line: module'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level >= 2:  # from ..gui import x  (relative, out of core/)
                modules = [node.module or ""] + [a.name for a in node.names]
            elif node.level == 0 and node.module:
                modules = [node.module]
        elif isinstance(node, ast.Call):
            # importlib.import_module("gui.x") / __import__("PySide6")
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                modules = [node.args[0].value]
        for m in modules:
            if m.split(".")[0] in FORBIDDEN:
                found.append(f"{node.lineno}: {m}")
    return found


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_has_files() -> None:
    names = {p.name for p in CORE_FILES}
    assert {"formula.py", "surfaces.py", "optimizers.py", "run.py", "session.py", "export.py",
            "trajectory.py", "errors.py"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=[str(p.relative_to(ROOT)) for p in CORE_FILES])
def test_core_file_does_not_import_qt_pyqtgraph_or_gui(path: Path) -> None:
    found = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    assert not found, f"{path.relative_to(ROOT)} imports " + ", ".join(found)


@pytest.mark.parametrize("source", [
    "import PySide6",
    "from PySide6.QtCore import QTimer",
    "import pyqtgraph as pg",
    "from PyQt5 import QtWidgets",
    "import PyQt6.QtGui",
    "import gui.controller",
    "from gui import app",
    "from ..gui import app",
    "def f():\n    import pyqtgraph\n",
    "if False:\n    from gui.surface_view import SurfaceView\n",
    "import importlib\nimportlib.import_module('PySide6.QtWidgets')",
    "__import__('gui')",
    "import os, sys, PySide6",
])
def test_the_checker_catches_every_form_of_import(source: str) -> None:
    assert forbidden_imports(source)


@pytest.mark.parametrize("source", ["import torch", "from core.run import Run", "import numpy",
                                    "from . import errors", "import guitar", "import pyqtgraphx",
                                    "s = 'import PySide6'"])
def test_the_checker_allows_the_rest(source: str) -> None:
    assert not forbidden_imports(source)


def test_importing_the_engine_loads_no_qt() -> None:
    code = (
        "import json, sys\n"
        "import core.run, core.session, core.export, core.formula, core.surfaces, "
        "core.optimizers, core.trajectory, core.errors\n"
        f"bad = {sorted(FORBIDDEN)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in bad)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
