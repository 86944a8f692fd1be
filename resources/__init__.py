"""Files that ship with the app: the example sessions of File > Examples (presets/*.json for the
race, model_examples/*.json for the Model tab)."""

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


MODEL_EXAMPLES_DIR = Path(str(files(__package__).joinpath("model_examples")))


def model_examples() -> list[tuple[str, str, str]]:
    """The model examples as (name, title, description), by name, read without building them
    (nothing of torch.nn is imported: the File menu lists them at start-up)."""
    found = []
    for path in sorted(MODEL_EXAMPLES_DIR.glob("*.json")):
        try:
            extra = json.loads(path.read_text(encoding="utf-8")).get("extra", {})
        except (OSError, ValueError, AttributeError):
            continue
        found.append((path.stem, str(extra.get("title", path.stem)),
                      str(extra.get("description", ""))))
    return found
