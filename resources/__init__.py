"""Files that ship with the app: the example sessions of File > Examples (presets/*.json)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path


def preset_paths() -> list[Path]:
    """The example session files, in their menu order (by file name)."""
    folder = Path(str(files(__package__).joinpath("presets")))
    return sorted(folder.glob("*.json"))


def preset_title(path: Path) -> str:
    """The example's title, read without building its session (cheap enough for a menu)."""
    try:
        extra = json.loads(path.read_text(encoding="utf-8")).get("extra", {})
        return str(extra.get("title") or path.stem)
    except (OSError, ValueError, AttributeError):
        return path.stem
