"""Values typed on a command line, read the same way by every subcommand."""

from __future__ import annotations

import math

from core.errors import PlaygroundError


def parse_pair(text: str, what: str,
               error: type[Exception] = PlaygroundError) -> tuple[float, float]:
    """"1.5,-2" -> (1.5, -2.0); `error` (one line naming `what`) for anything else or a value
    that is not finite."""
    try:
        a, b = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise error(f"{what} must be two numbers like 1.5,-2 (got {text!r})") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise error(f"{what} must be finite (got {text!r})")
    return a, b
