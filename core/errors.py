"""The engine's errors. Each one carries a message meant for the user, in one line."""

from __future__ import annotations


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error's text: torch's and ffmpeg's messages can run to
    pages (ffmpeg's carry its command and its whole output), and ours are one line."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""


class PlaygroundError(ValueError):
    """Base class of every user-facing error the engine raises."""


class FormulaError(PlaygroundError):
    """A formula outside the grammar. `column` is 1-based (None: the whole text)."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        self.reason = message
        super().__init__(f"{message} (column {column})" if column is not None else message)


class SurfaceError(PlaygroundError):
    """An unknown surface name or bad surface settings."""


class OptimizerError(PlaygroundError):
    """An unknown optimizer, a bad hyperparameter or an unreadable optimizer call."""


class SessionError(PlaygroundError):
    """A session file that cannot be loaded."""


class ExportError(PlaygroundError):
    """An export that cannot be written."""
