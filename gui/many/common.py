"""What every analysis tab of the "Many runs" workspace shares.

- `race_optimizers(controller)`: the optimizers of the race session, as the batch needs them
  (name, hyperparameters, frozen coordinates), with what a batch leaves out of each run said.
- `analysis_key(...)` and `ResultCache`: a result is kept under everything it depends on (the
  surface's formula, region and minima, the optimizer and its hyperparameters, the frozen
  coordinates, the grid, steps, ranges, dtype), so asking again returns it at once and any
  change computes afresh.
- `AnalysisRunner`: the Compute button, a progress bar with Cancel and a one-line message; it
  runs a core function (core/many.py) in a gui/worker.py Job unless every result is cached. A
  cancel, or a newer request, drops the Job's result: the tab keeps the picture it had. The
  Job runs torch on one intra-op thread (core.batch.one_torch_thread: with torch's OpenMP build
  the count is the worker thread's own, and the process-wide value is put back once the last
  Job inside is done).
- `ExportButtons`, `export_picture`, `export_results`: PNG / SVG of the tab's picture
  (gui/image_export.py, SVG through QSvgGenerator) and CSV / JSON of its results (their
  to_csv / to_json, written atomically by core/export.write_text); a failure is one line.

Signals (AnalysisRunner)
------------------------
sigStarted()           a Job began (nothing was cached for at least one key)
sigResult(object)      {key: result} for every key asked for, in the order asked
sigFailed(str)         the computation raised: one line for the user
sigCancelled()         Cancel was pressed (or cancel() called) before the Job ended
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QFileDialog, QGraphicsScene, QHBoxLayout, QLabel, QPushButton,
                               QWidget)

from core.batch import ELEMENTWISE, LBFGS_REFUSED, ProgressState, one_torch_thread
from core.errors import ExportError, PlaygroundError
from core.export import write_text
from core.optimizers import format_optimizer_call, get_spec
from core.run import Run
from core.surfaces import Surface
from gui.controller import Controller
from gui.worker import Job, JobProgress, JobState

CACHE_ENTRIES = 16  # results kept; a 512 x 512 basin map is ~20 MB of arrays
DTYPE_NAME = "float64"  # what the batches compute in unless a tab says otherwise (exact)
PICTURE_FORMATS = (".png", ".svg")
DATA_FORMATS = (".csv", ".json")


# --- the race's optimizers, as a batch takes them ----------------------------------------------


@dataclass(frozen=True)
class RaceOptimizer:
    """One optimizer setting of the race session. `call`: the PyTorch call text (the panel's
    title); `left_out`: the run's extras a batch does not step (scheduler, clipping, noise)."""

    name: str
    hyperparameters: dict[str, Any] = field(hash=False, compare=False)
    frozen: tuple[str, ...] = ()
    call: str = ""
    color: str = "#808080"
    left_out: tuple[str, ...] = ()

    @property
    def batchable(self) -> bool:
        return self.name in ELEMENTWISE and not get_spec(self.name).needs_closure

    @property
    def refusal(self) -> str:
        """Why a batch cannot run it ("" when it can): core.batch's own words."""
        if self.batchable:
            return ""
        if get_spec(self.name).needs_closure:
            return LBFGS_REFUSED
        return f"{self.name} is not known to update each element on its own"

    def key(self) -> tuple:
        return (self.name, _frozen_repr(self.hyperparameters), self.frozen)

    def title(self) -> str:
        frozen = "".join(f", {c} frozen" for c in self.frozen)
        return self.call + frozen


def race_optimizers(controller: Controller) -> list[RaceOptimizer]:
    """The session's runs as optimizer settings, in the race's order; equal settings once."""
    seen: set[tuple] = set()
    found = []
    for run in controller.session.runs:
        left_out = tuple(what for what, has in (
            ("its scheduler", run.scheduler_setting is not None),
            ("its clipping", run.clipping is not None),
            ("its gradient noise", run.noise is not None)) if has)
        option = RaceOptimizer(run.spec.name, dict(run.hyperparameters),
                               tuple(sorted(run.frozen)),
                               format_optimizer_call(run.spec.name, run.hyperparameters),
                               run.color or "#808080", left_out)
        if option.key() not in seen:
            seen.add(option.key())
            found.append(option)
    return found


def run_key(run: Run) -> tuple:
    """The key of a run's optimizer setting, equal to its RaceOptimizer's key()."""
    return (run.spec.name, _frozen_repr(dict(run.hyperparameters)), tuple(sorted(run.frozen)))


def _frozen_repr(value: Any) -> Any:
    """A hashable, order-free copy of hyperparameters (dicts sorted, lists as tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen_repr(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen_repr(v) for v in value)
    return value


# --- the cache ------------------------------------------------------------------------------------


def surface_key(surface: Surface) -> tuple:
    """Everything of a surface a result depends on: its formula, region and known minima."""
    return (surface.text, tuple(surface.x_range), tuple(surface.y_range),
            tuple(surface.minima), tuple(surface.local_minima))


def analysis_key(kind: str, surface: Surface, optimizer: RaceOptimizer | None, *,
                 dtype: str = DTYPE_NAME, **settings: Any) -> tuple:
    """The cache key of one result: the analysis, the surface, the optimizer setting, every
    other setting by name (grid, steps, ranges, ...) and the dtype computed in."""
    return (kind, surface_key(surface), None if optimizer is None else optimizer.key(),
            _frozen_repr(settings), dtype)


class ResultCache:
    """The last CACHE_ENTRIES results by key, least recently used dropped first."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._results: OrderedDict[Hashable, Any] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._results

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: Hashable) -> Any | None:
        if key not in self._results:
            return None
        self._results.move_to_end(key)
        return self._results[key]

    def put(self, key: Hashable, result: Any) -> None:
        self._results[key] = result
        self._results.move_to_end(key)
        while len(self._results) > self.entries:
            self._results.popitem(last=False)

    def clear(self) -> None:
        self._results.clear()


class PartState:
    """A Job's state seen from one part of its work: progress scaled into the part's share."""

    def __init__(self, state: ProgressState, start: float, share: float) -> None:
        self.state, self.start, self.share = state, start, share

    def set_progress(self, fraction: float) -> None:
        self.state.set_progress(self.start + self.share * fraction)

    def is_interruption_requested(self) -> bool:
        return self.state.is_interruption_requested()


# --- running an analysis --------------------------------------------------------------------------


class AnalysisRunner(QWidget):
    """The Compute button, a progress bar with Cancel, and one line of message.

    `request(keys, compute)` answers from the cache when it holds every key (sigResult at once,
    no Job); otherwise one Job computes the missing keys one by one with `compute(key, state)`
    (a core function: it reports progress, checks for a cancel) and caches them when all are
    done. A cancel or a newer request drops the running Job's result; a cancelled Job caches
    nothing. The tab connects `run_button.clicked` to whatever builds its request.
    """

    sigStarted = Signal()
    sigResult = Signal(object)
    sigFailed = Signal(str)
    sigCancelled = Signal()

    def __init__(self, cache: ResultCache | None = None, *, run_text: str = "Compute",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = cache if cache is not None else ResultCache()
        self.job: Job | None = None
        self.jobs_started = 0  # how many Jobs were started (tests: a cache hit starts none)
        self.run_button = QPushButton(run_text)
        self.run_button.setDefault(True)
        self.progress = JobProgress()
        self.progress.cancel_button.clicked.connect(self._on_cancel_click)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.run_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.message, 1)
        self._layout = layout

    def add_trailing(self, widget: QWidget) -> None:
        """A widget at the right of the Compute row (exports, films): the settings row above
        keeps to a width a 1280-pixel window shows whole."""
        self._layout.addWidget(widget)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def request(self, keys: Sequence[Hashable],
                compute: Callable[[Hashable, ProgressState], Any], text: str = "Computing…"
                ) -> bool:
        """Deliver {key: result} through sigResult; True if a Job was started for it."""
        self.cancel(quiet=True)
        missing = [k for k in keys if k not in self.cache]
        if not missing:
            self.show_message("")
            self.sigResult.emit({k: self.cache.get(k) for k in keys})
            return False
        wanted = list(keys)

        def work(state: JobState) -> dict[Hashable, Any]:
            done = {}
            with one_torch_thread():
                for number, key in enumerate(missing):
                    done[key] = compute(key, PartState(state, number / len(missing),
                                                       1 / len(missing)))
            return done

        job = Job(work, parent=self)
        job.sigFinished.connect(lambda done: self._on_job_done(job, wanted, done))
        job.sigFailed.connect(lambda message: self._on_job_failed(job, message))
        job.sigCancelled.connect(lambda: self._on_job_cancelled(job))
        self.job = job
        self.jobs_started += 1
        self.show_message("")
        self.progress.attach(job, text)
        job.start()
        self.sigStarted.emit()
        return True

    def cancel(self, quiet: bool = False) -> None:
        """Stop the running Job (if any); its result will be dropped."""
        job, self.job = self.job, None
        if job is not None and job.running:
            job.cancel()
            self.progress._detach()
            if not quiet:
                self.show_message("Cancelled: the picture shown is the last one computed")
                self.sigCancelled.emit()

    def shutdown(self, timeout_s: float = 2.0) -> None:
        """Cancel and wait for the Job's function to return (closing the window)."""
        job = self.job
        self.cancel(quiet=True)
        if job is not None:
            job.wait(timeout_s)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #b00020;" if error else "")

    def _on_cancel_click(self) -> None:
        if self.job is not None:
            self.cancel()

    def _on_job_done(self, job: Job, keys: list[Hashable], done: dict[Hashable, Any]) -> None:
        if job is not self.job:
            return  # an older request's result
        self.job = None
        for key, result in done.items():
            self.cache.put(key, result)
        results = {k: done[k] if k in done else self.cache.get(k) for k in keys}
        self.sigResult.emit(results)

    def _on_job_failed(self, job: Job, message: str) -> None:
        if job is not self.job:
            return
        self.job = None
        self.show_message(message, error=True)
        self.sigFailed.emit(message)

    def _on_job_cancelled(self, job: Job) -> None:
        if job is self.job:  # cancelled from elsewhere (the JobProgress's own button)
            self.job = None
            self.show_message("Cancelled: the picture shown is the last one computed")
            self.sigCancelled.emit()


# --- exports --------------------------------------------------------------------------------------


def export_picture(target: QWidget | QGraphicsScene, path: str | Path) -> None:
    """PNG or SVG of what `target` shows, at its size (gui/image_export: atomic, one-line
    ExportError)."""
    from gui.image_export import export_widget_image  # (imports the surface view: on first use)

    export_widget_image(target, path)


def results_json(results: Sequence[Any], name: str = "results") -> str:
    """One result's to_json() as `main.py` prints it; several as {name: [each]}."""
    data: Any = results[0].to_json() if len(results) == 1 else {
        name: [r.to_json() for r in results]}
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def results_csv(results: Sequence[Any]) -> str:
    """One result's to_csv(); several as one table with an `optimizer` column first."""
    if len(results) == 1:
        return results[0].to_csv()
    lines: list[str] = []
    for result in results:
        head, *rows = result.to_csv().splitlines()
        if not lines:
            lines.append("optimizer," + head)
        call = '"' + result.optimizer.replace('"', '""') + '"'  # the call has commas
        lines.extend(f"{call},{row}" for row in rows)
    return "\n".join(lines) + "\n"


def export_results(results: Sequence[Any], path: str | Path, name: str = "results") -> None:
    """CSV or JSON of the results by the file's extension, atomically; ExportError on failure."""
    if not results:
        raise ExportError("there is nothing to export yet: compute first")
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        write_text(path, results_json(results, name))
    elif suffix == ".csv":
        write_text(path, results_csv(results))
    else:
        raise ExportError(f"cannot export to {Path(path).name!r}: use .csv or .json "
                          "(or .png / .svg for the picture)")


class ExportButtons(QWidget):
    """"Picture…" (PNG / SVG) and "Data…" (CSV / JSON) buttons; errors go to `on_message`.

    picture(): the widget or scene to draw (None: nothing yet); results(): what to write.
    `export_to(path)` does the work without a dialog (tests, scripts); True on success.
    """

    def __init__(self, picture: Callable[[], QWidget | QGraphicsScene | None],
                 results: Callable[[], Sequence[Any]], *, name: str = "results",
                 on_message: Callable[[str, bool], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._picture, self._results, self._name = picture, results, name
        self._on_message = on_message or (lambda text, error: None)
        self.picture_button = QPushButton("Picture…")
        self.picture_button.setToolTip("Save the picture as PNG or SVG")
        self.picture_button.clicked.connect(lambda: self._ask("picture"))
        self.data_button = QPushButton("Data…")
        self.data_button.setToolTip("Save every cell as CSV or JSON (as main.py writes them)")
        self.data_button.clicked.connect(lambda: self._ask("data"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.picture_button)
        layout.addWidget(self.data_button)

    def export_to(self, path: str | Path) -> bool:
        try:
            if Path(path).suffix.lower() in PICTURE_FORMATS:
                target = self._picture()
                if target is None or not self._results():
                    raise ExportError("there is nothing to export yet: compute first")
                export_picture(target, path)
            else:
                export_results(list(self._results()), path, self._name)
        except PlaygroundError as e:
            self._on_message(str(e), True)
            return False
        self._on_message(f"Saved {Path(path).name}", False)
        return True

    def _ask(self, what: str) -> None:
        if what == "picture":
            filters, default = "PNG (*.png);;SVG (*.svg)", f"{self._name}.png"
        else:
            filters, default = "CSV (*.csv);;JSON (*.json)", f"{self._name}.csv"
        path, chosen = QFileDialog.getSaveFileName(self, f"Export the {what}", default, filters)
        if not path:
            return
        if Path(path).suffix.lower() not in PICTURE_FORMATS + DATA_FORMATS:
            path += "." + chosen.split("*.")[-1].rstrip(")")  # the filter picked
        self.export_to(path)
