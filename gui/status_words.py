"""A run's status in the few words every view shows: the run's own `status_text` is the one
source of truth (the card, the table, the surface's badges, the graph header and the CLI say the
same thing), cut before the reason, which goes in a tooltip."""

from __future__ import annotations

from core.run import Run, RunStatus

DISABLED = "disabled"
COLOURS = {RunStatus.DIVERGED: "#c0392b", RunStatus.CONVERGED: "#1e8449"}
DISABLED_COLOUR = "#7f8c8d"
OTHER_COLOUR = "#333333"  # running, frozen
# A running run that has taken no step yet: "running" before Play or Step was ever pressed
# misleads. The card's badge says the first word, its tooltip and the model's run list all of it.
NOT_STARTED = "ready, not started"


def not_started(run: Run) -> bool:
    """True for an enabled run that is running but has not stepped yet."""
    return run.enabled and run.status is RunStatus.RUNNING and run.steps == 0


def short_status(run: Run) -> str:
    """"diverged at step 12", "converged at step 40", "running", "frozen"... as `status_text`
    says it without the reason after the colon; "disabled" for a run that is switched off."""
    if not run.enabled:
        return DISABLED
    return run.status_text.split(":", 1)[0].strip()


def status_colour(run: Run) -> str:
    """The colour the status is written in (red diverged, green converged, grey disabled)."""
    if not run.enabled:
        return DISABLED_COLOUR
    return COLOURS.get(run.status, OTHER_COLOUR)
