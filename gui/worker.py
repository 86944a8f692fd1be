"""Long work off the GUI thread, with progress and cancel (Orange3's pattern).

The work is a plain function `fn(state)`; it may call `state.set_progress(fraction)`,
`state.set_partial_result(value)` and should check `state.is_interruption_requested()` now and
then to stop early. It knows nothing about Qt, so it can be tested headless with `JobState()`.

    job = Job(lambda state: layout_graph(graph, state), parent=self)
    job.sigFinished.connect(self._on_layout_done)
    job.sigFailed.connect(self.show_error)
    job.start()
    ...
    job.cancel()          # the result, if it still comes, is dropped; sigCancelled follows

Jobs run on one QThreadPool owned by this module (`job_pool()`), not on QThreads the caller
creates: a pool's threads belong to the pool, so no QThread can be destroyed while running, and
`wait_for_jobs()` is one place where a window (or a test) can wait for everything to end.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

PROGRESS_INTERVAL_S = 0.03  # progress reaches the GUI at most ~30 times a second


class JobState:
    """What the work function sees: report progress, check for a cancel.

    Thread-safe for one writer (the work) and one reader (the GUI); usable without Qt in tests.
    """

    def __init__(self, on_progress: Callable[[float], None] | None = None,
                 on_partial_result: Callable[[Any], None] | None = None) -> None:
        self._cancel = threading.Event()
        self._on_progress = on_progress
        self._on_partial_result = on_partial_result
        self.progress = 0.0
        self._last_report = 0.0

    def set_progress(self, fraction: float) -> None:
        """Report how far the work is, from 0 to 1 (clamped); throttled on the way to the GUI."""
        self.progress = min(1.0, max(0.0, float(fraction)))
        now = time.perf_counter()
        # Throttled so a tight loop reporting every iteration cannot flood the event queue.
        if self._on_progress and (now - self._last_report >= PROGRESS_INTERVAL_S
                                  or self.progress >= 1.0):
            self._last_report = now
            self._on_progress(self.progress)

    def set_partial_result(self, value: Any) -> None:
        """Hand the GUI something to show before the work is done (pass a copy, not live data)."""
        if self._on_partial_result:
            self._on_partial_result(value)

    def is_interruption_requested(self) -> bool:
        """True once cancel was asked for: the work should return soon."""
        return self._cancel.is_set()

    def request_interruption(self) -> None:
        self._cancel.set()


class Job(QObject):
    """Runs `fn(state)` on the job pool; reports back on the thread the Job lives in.

    Exactly one of sigFinished, sigFailed or sigCancelled is emitted, once, after the function
    has returned (so when it arrives the work no longer touches anything). After `cancel()` the
    function's result or error is dropped and sigCancelled is emitted instead.

    Signals
    -------
    sigProgress(float)        a fraction from 0 to 1
    sigPartialResult(object)  whatever the function passed to state.set_partial_result
    sigFinished(object)       the function's return value
    sigFailed(str)            the function raised: a one-line message
    sigCancelled()            cancel() was called; the function has stopped
    """

    sigProgress = Signal(float)
    sigPartialResult = Signal(object)
    sigFinished = Signal(object)
    sigFailed = Signal(str)
    sigCancelled = Signal()
    # From the pool thread to this object's thread (a queued connection, as the threads differ).
    _sigDone = Signal(str, object)

    def __init__(self, fn: Callable[[JobState], Any], *, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self.state = JobState(self._emit_progress, self._emit_partial)
        self._started = False
        self._returned = threading.Event()  # the function has returned (or will never run)
        self._reported = False
        self._outcome: tuple[str, Any] | None = None  # set on the pool thread when fn returns
        self._sigDone.connect(self._on_done)

    @property
    def running(self) -> bool:
        """Started and its outcome not yet delivered."""
        return self._started and not self._reported

    @property
    def cancelled(self) -> bool:
        return self.state.is_interruption_requested()

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a Job runs once; make a new one")
        self._started = True
        _live_jobs.add(self)  # keep the Python object alive while its work can still emit
        job_pool().start(self._work)

    def cancel(self) -> None:
        """Ask the work to stop; its result will be dropped. Safe to call at any time."""
        self.state.request_interruption()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the function has returned; True if it has. For shutdown, not for the GUI."""
        if not self._started:
            return True
        return self._returned.wait(timeout_s)

    def finish(self, timeout_s: float | None = None) -> bool:
        """Wait for the function, then deliver its outcome now instead of from the event loop.

        For a caller that must know the work is over before it goes on (changing what the work
        touched, quitting). True if the function returned within the timeout.
        """
        if not self.wait(timeout_s):
            return False
        if self._outcome is not None:
            self._on_done(*self._outcome)
        return True

    def _work(self) -> None:
        # On a pool thread.
        outcome: str
        value: Any = None
        if self.state.is_interruption_requested():
            outcome = "cancelled"
        else:
            try:
                value = self._fn(self.state)
                outcome = "finished"
            except Exception as e:  # reported as a message, never raised into Qt's thread
                outcome, value = "failed", one_line_error(e)
        self._outcome = (outcome, value)
        self._returned.set()
        try:
            self._sigDone.emit(outcome, value)
        except RuntimeError:
            _live_jobs.discard(self)  # the C++ object went with its parent: nobody to tell

    def _on_done(self, outcome: str, value: Any) -> None:
        # On the Job's own thread (the GUI thread).
        _live_jobs.discard(self)
        if self._reported:
            return
        self._reported = True
        if self.cancelled:
            self.sigCancelled.emit()
        elif outcome == "finished":
            self.sigFinished.emit(value)
        elif outcome == "failed":
            self.sigFailed.emit(value)
        else:
            self.sigCancelled.emit()
        self._drop_listeners()
        if self.parent() is not None:
            # Done: no longer a child, or a panel that starts a job per refresh would gather
            # thousands of them; Python frees it once the owner drops its reference.
            self.setParent(None)

    def _drop_listeners(self) -> None:
        # A Job reports once. Qt holds each connected callable, and a lambda that captures the
        # Job (or a run) would keep both alive for good: a cycle through C++ that Python's
        # garbage collector cannot see. Let them go.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for signal in (self.sigProgress, self.sigPartialResult, self.sigFinished,
                           self.sigFailed, self.sigCancelled):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect()

    def _emit_progress(self, fraction: float) -> None:
        if not self.cancelled:
            with contextlib.suppress(RuntimeError):  # the C++ object went with its parent
                self.sigProgress.emit(fraction)

    def _emit_partial(self, value: Any) -> None:
        if not self.cancelled:
            with contextlib.suppress(RuntimeError):
                self.sigPartialResult.emit(value)


def one_line_error(error: BaseException) -> str:
    """The exception as one line a user can read: its message, or its type when it has none."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


_live_jobs: set[Job] = set()
_pool: QThreadPool | None = None


def job_pool() -> QThreadPool:
    """The pool every Job runs on (created on first use)."""
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(max(2, QThreadPool.globalInstance().maxThreadCount()))
    return _pool


def active_job_threads() -> int:
    """How many pool threads are running work now (0 when everything has ended)."""
    return 0 if _pool is None else _pool.activeThreadCount()


def wait_for_jobs(timeout_s: float = 2.0) -> bool:
    """Cancel nothing, wait up to timeout_s for every job's function to return; True if all did."""
    return True if _pool is None else _pool.waitForDone(int(timeout_s * 1000))


def cancel_all_jobs() -> None:
    """Ask every running job to stop (quitting)."""
    for job in list(_live_jobs):
        job.cancel()


class JobProgress(QWidget):
    """A label, a progress bar and a Cancel button for one job at a time; hidden when idle.

    The bar is "busy" (moving, no figure) until the job reports progress.
    """

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(160)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_click)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.job: Job | None = None
        self.hide()

    def attach(self, job: Job, text: str) -> None:
        """Show `text` and the job's progress until it ends (replacing any earlier job)."""
        self._detach()
        self.job = job
        self.label.setText(text)
        self.bar.setRange(0, 0)  # busy until the first figure
        job.sigProgress.connect(self._on_progress_change)
        for signal in (job.sigFinished, job.sigFailed, job.sigCancelled):
            signal.connect(self._on_job_end)
        self.show()

    def _on_progress_change(self, fraction: float) -> None:
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1000)
        self.bar.setValue(int(fraction * 1000))

    def _on_cancel_click(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self._detach()

    def _on_job_end(self, *_: Any) -> None:
        self._detach()

    def _detach(self) -> None:
        if self.job is not None and not self.job._reported:
            for signal, slot in ((self.job.sigProgress, self._on_progress_change),
                                 (self.job.sigFinished, self._on_job_end),
                                 (self.job.sigFailed, self._on_job_end),
                                 (self.job.sigCancelled, self._on_job_end)):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect(slot)
        self.job = None
        self.hide()
