"""gui/worker.py: a plain function off the GUI thread, with progress, cancel and clean shutdown."""

import threading

import pytest
from PySide6.QtCore import QThread, QTimer

from gui.worker import (Job, JobProgress, JobState, active_job_threads, cancel_all_jobs,
                        wait_for_jobs)


@pytest.fixture(autouse=True)
def no_thread_left():
    yield
    cancel_all_jobs()
    assert wait_for_jobs(5.0), "a job was still running 5 s after its test"
    assert active_job_threads() == 0


def test_the_result_is_delivered_on_the_gui_thread(qtbot):
    seen = {}

    def work(state):
        seen["thread"] = threading.current_thread()
        return sum(range(1000))

    job = Job(work)
    delivered_on = []
    job.sigFinished.connect(lambda _: delivered_on.append(QThread.currentThread()))
    with qtbot.waitSignal(job.sigFinished, timeout=5000) as blocker:
        job.start()
    assert blocker.args == [sum(range(1000))]
    assert seen["thread"] is not threading.main_thread()  # it ran elsewhere
    assert delivered_on == [job.thread()]  # and was reported where the Job lives
    assert not job.running


def test_progress_reaches_the_gui_and_ends_at_one(qtbot):
    release = threading.Event()

    def work(state):
        state.set_progress(0.25)
        release.wait(5)
        state.set_progress(1.0)
        return "done"

    job = Job(work)
    fractions = []
    job.sigProgress.connect(fractions.append)
    with qtbot.waitSignal(job.sigProgress, timeout=5000):
        job.start()
    assert fractions == [0.25]
    assert job.running  # still waiting for release
    with qtbot.waitSignal(job.sigFinished, timeout=5000):
        release.set()
    assert fractions == [0.25, 1.0]


def test_progress_is_throttled_so_a_tight_loop_cannot_flood_the_gui(qtbot):
    job = Job(lambda state: [state.set_progress(i / 20000) for i in range(20001)] and None)
    fractions = []
    job.sigProgress.connect(fractions.append)
    with qtbot.waitSignal(job.sigFinished, timeout=10000):
        job.start()
    assert fractions and fractions[-1] == 1.0
    assert len(fractions) < 2000  # far fewer than the 20001 reports


def test_cancel_stops_the_work_and_drops_its_result(qtbot):
    started = threading.Event()
    iterations = []

    def work(state):
        started.set()
        while not state.is_interruption_requested():
            iterations.append(1)
            threading.Event().wait(0.001)
        return "a result nobody asked for"

    job = Job(work)
    finished = []
    job.sigFinished.connect(finished.append)
    job.start()
    assert started.wait(5)
    with qtbot.waitSignal(job.sigCancelled, timeout=5000):
        job.cancel()
    assert job.wait(1.0)
    assert finished == []
    assert job.cancelled and not job.running


def test_a_result_that_arrives_after_cancel_is_dropped(qtbot):
    # The work ignores the request and returns anyway: the GUI must still get only sigCancelled.
    release = threading.Event()
    job = Job(lambda state: release.wait(5) and "late")
    finished, cancelled = [], []
    job.sigFinished.connect(finished.append)
    job.sigCancelled.connect(lambda: cancelled.append(True))
    job.start()
    job.cancel()
    release.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=5000)
    assert finished == [] and cancelled == [True]


def test_an_exception_is_reported_as_one_line(qtbot):
    def work(state):
        raise ValueError("the graph has 12000 nodes\nand a second line nobody needs")

    job = Job(work)
    with qtbot.waitSignal(job.sigFailed, timeout=5000) as blocker:
        job.start()
    assert blocker.args == ["the graph has 12000 nodes"]


def test_an_exception_without_a_message_names_its_type(qtbot):
    def work(state):
        raise KeyError

    job = Job(work)
    with qtbot.waitSignal(job.sigFailed, timeout=5000) as blocker:
        job.start()
    assert blocker.args == ["KeyError"]


def test_the_event_loop_keeps_turning_while_a_job_works(qtbot):
    release = threading.Event()
    job = Job(lambda state: release.wait(5))
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    try:
        job.start()
        qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=5000)
        assert job.running
    finally:
        timer.stop()
        release.set()
    with qtbot.waitSignal(job.sigFinished, timeout=5000):
        pass


def test_a_job_runs_once(qtbot):
    job = Job(lambda state: 1)
    with qtbot.waitSignal(job.sigFinished, timeout=5000):
        job.start()
    with pytest.raises(RuntimeError):
        job.start()


def test_a_job_cancelled_before_it_runs_never_calls_the_function(qtbot):
    called = []
    job = Job(lambda state: called.append(1))
    job.cancel()
    with qtbot.waitSignal(job.sigCancelled, timeout=5000):
        job.start()
    assert called == []


def test_a_job_whose_parent_is_deleted_mid_work_does_not_crash(qtbot):
    from PySide6.QtCore import QObject

    parent = QObject()
    release = threading.Event()
    job = Job(lambda state: release.wait(5), parent=parent)
    job.start()
    parent.deleteLater()
    qtbot.waitUntil(lambda: not _alive(parent), timeout=5000)
    release.set()
    assert wait_for_jobs(5.0)


def _alive(obj) -> bool:
    from shiboken6 import isValid

    return isValid(obj)


def test_the_state_works_headless_without_qt():
    reported = []
    state = JobState(on_progress=reported.append)
    state.set_progress(2.0)  # clamped
    assert state.progress == 1.0 and reported == [1.0]
    assert not state.is_interruption_requested()
    state.request_interruption()
    assert state.is_interruption_requested()


def test_the_progress_widget_shows_the_job_and_cancels_it(qtbot):
    release = threading.Event()

    def work(state):
        state.set_progress(0.5)
        while not state.is_interruption_requested() and not release.is_set():
            threading.Event().wait(0.002)

    widget = JobProgress()
    qtbot.addWidget(widget)
    widget.show()
    job = Job(work)
    widget.attach(job, "Laying out the graph…")
    assert widget.isVisible() and widget.label.text() == "Laying out the graph…"
    assert widget.bar.maximum() == 0  # busy until the first figure
    job.start()
    qtbot.waitUntil(lambda: widget.bar.value() == 500, timeout=5000)
    with qtbot.waitSignal(job.sigCancelled, timeout=5000):
        widget.cancel_button.click()
    assert not widget.isVisible() and widget.job is None


def test_the_progress_widget_hides_when_the_job_finishes(qtbot):
    widget = JobProgress()
    qtbot.addWidget(widget)
    widget.show()
    job = Job(lambda state: 3)
    widget.attach(job, "Measuring…")
    with qtbot.waitSignal(job.sigFinished, timeout=5000):
        job.start()
    assert not widget.isVisible()


def test_a_job_lets_go_of_its_listeners_once_it_has_reported(qtbot):
    # Qt keeps connected callables alive; a lambda that captures the Job (or a run) would
    # otherwise keep both alive for good, one leak per job.
    import gc
    import weakref

    class Payload:
        pass

    refs = []
    for _ in range(5):
        payload = Payload()
        job = Job(lambda state: 1)
        job.sigFinished.connect(lambda result, job=job, payload=payload: None)
        with qtbot.waitSignal(job.sigFinished, timeout=5000):
            job.start()
        refs.append(weakref.ref(payload))
        del job, payload
    gc.collect()
    assert [r() for r in refs] == [None] * 5


def test_a_finished_job_is_no_longer_a_child_of_its_parent(qtbot):
    # A panel that starts a job per refresh (with parent=self) must not gather them forever.
    from PySide6.QtCore import QObject

    parent = QObject()
    jobs = [Job(lambda state: 1, parent=parent) for _ in range(3)]
    assert len(parent.findChildren(Job)) == 3
    for job in jobs:
        with qtbot.waitSignal(job.sigFinished, timeout=5000):
            job.start()
    assert parent.findChildren(Job) == []
