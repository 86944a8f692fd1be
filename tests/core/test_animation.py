"""core.animation: the plan (which steps each frame shows), the stepped copy, the encoders (GIF
with one palette, MP4 H.264 yuv420p, WebP, APNG), the bounds, cancel and failure."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image, ImageSequence

from core.animation import (
    MAX_PIXEL_FRAMES,
    AnimationCancelled,
    AnimationError,
    AnimationPlan,
    AnimationWriter,
    RaceStepper,
    check_plan,
    frame_delay_ms,
    plan_animation,
    race_copy,
    shared_palette,
    write_animation,
)
from core.session import Session


def _moving_frames(n: int, w: int = 48, h: int = 32) -> list[np.ndarray]:
    """A smooth gradient (like the surface) with a red square moving across it."""
    xs = np.linspace(0, 255, w, dtype=np.float64)
    base = np.zeros((h, w, 3), np.uint8)
    base[..., 0] = xs.astype(np.uint8)
    base[..., 1] = np.linspace(40, 200, h, dtype=np.float64)[:, None].astype(np.uint8)
    base[..., 2] = 120
    frames = []
    for k in range(n):
        f = base.copy()
        x = 2 + k * (w - 8) // max(1, n - 1)
        f[10:16, x:x + 5] = (213, 94, 0)  # a run's colour (#D55E00)
        frames.append(f)
    return frames


def _gif_colour_tables(data: bytes) -> tuple[bool, list[bool]]:
    """(has a global colour table, for each image: has a local one), read from the GIF's
    blocks (GIF89a: header, screen descriptor, then extensions and images)."""
    assert data[:6] in (b"GIF87a", b"GIF89a")
    packed = data[10]
    has_global = bool(packed & 0x80)
    i = 13 + (3 * 2 ** ((packed & 7) + 1) if has_global else 0)
    local = []

    def skip_sub_blocks(i: int) -> int:
        while data[i]:
            i += data[i] + 1
        return i + 1

    while data[i] != 0x3B:  # the trailer
        if data[i] == 0x21:  # an extension: label, then sub-blocks
            i = skip_sub_blocks(i + 2)
        else:
            assert data[i] == 0x2C, f"unexpected block {data[i]:#x} at {i}"
            flags = data[i + 9]
            local.append(bool(flags & 0x80))
            i += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
            i = skip_sub_blocks(i + 1)  # past the LZW code size
    return has_global, local


class Progress:
    """A stand-in for gui.worker.JobState: records progress, cancels after `cancel_at` calls."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.values: list[float] = []
        self.cancel_at = cancel_at

    def set_progress(self, fraction: float) -> None:
        self.values.append(fraction)

    def is_interruption_requested(self) -> bool:
        return self.cancel_at is not None and len(self.values) >= self.cancel_at


# --- the plan -------------------------------------------------------------------------------------


def test_plan_has_the_start_then_a_frame_every_k_steps_ending_at_the_last():
    plan = AnimationPlan(fps=10, steps_per_frame=30, lengths=(100, 40, 0))
    assert plan.frame_count == 1 + 4  # 0, 30, 60, 90, then 100
    assert [plan.step_at(k) for k in range(plan.frame_count)] == [0, 30, 60, 90, 100]
    assert [plan.steps_for(1, k) for k in range(plan.frame_count)] == [0, 30, 40, 40, 40]
    assert plan.steps_for(2, 3) == 0


def test_plan_from_a_session_uses_steps_frames_or_steps_per_frame():
    session = Session.default()
    session.runs[1].enabled = False
    plan = plan_animation(session, fps=12, steps=90, steps_per_frame=10)
    assert plan.lengths == (90, 0, 90, 90) and plan.frame_count == 10
    by_frames = plan_animation(session, fps=12, steps=90, frames=31)
    assert by_frames.steps_per_frame == 3 and by_frames.frame_count == 31
    both = plan_animation(session, fps=12, steps_per_frame=5, frames=7)
    assert both.last_step == 30 and both.frame_count == 7


@pytest.mark.parametrize("kwargs, words", [
    ({"fps": 0}, "frames per second"),
    ({"fps": 10, "steps_per_frame": 0}, "steps per frame"),
    ({"fps": 10, "frames": 1}, "number of frames"),
    ({"fps": 10, "steps": -1}, "steps must be"),
])
def test_bad_plan_values_are_one_line_errors(kwargs, words):
    with pytest.raises(AnimationError, match=words) as info:
        plan_animation(Session.default(), **kwargs)
    assert "\n" not in str(info.value)


def test_check_plan_refuses_formats_sizes_fps_and_too_much_work():
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=100, steps_per_frame=10)
    check_plan(session, plan, 320, 240, ".gif")  # fine
    with pytest.raises(AnimationError, match="use .gif"):
        check_plan(session, plan, 320, 240, ".avi")
    with pytest.raises(AnimationError, match="size"):
        check_plan(session, plan, 8, 240, ".mp4")
    with pytest.raises(AnimationError, match="at most 50"):
        check_plan(session, plan_animation(session, fps=60, steps=10), 320, 240, ".gif")
    check_plan(session, plan_animation(session, fps=60, steps=10), 320, 240, ".mp4")
    long_plan = plan_animation(session, fps=10, steps=3000, steps_per_frame=1)
    with pytest.raises(AnimationError, match="too much to draw") as info:
        check_plan(session, long_plan, 1000, 1000, ".gif")
    assert MAX_PIXEL_FRAMES < 3001 * 1000 * 1000 and "\n" not in str(info.value)
    with pytest.raises(AnimationError, match="evaluate f"):
        check_plan(session, plan_animation(session, fps=10, steps=100_000, steps_per_frame=1000),
                   64, 64, ".gif")


def test_frame_delays_are_whole_centiseconds_and_at_least_20_ms():
    assert frame_delay_ms(10) == 100 and frame_delay_ms(50) == 20
    assert frame_delay_ms(60) == 20 and frame_delay_ms(30) == 30


# --- the stepped copy -----------------------------------------------------------------------------


def test_stepper_matches_a_plain_play_and_leaves_the_original_alone():
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=50, steps_per_frame=7)
    stepper = RaceStepper(session, plan)
    stepper.go_to(3)
    reference = race_copy(session)
    reference.play(21)
    for ours, theirs in zip(stepper.session.runs, reference.runs):
        assert ours.steps == 21
        np.testing.assert_array_equal(ours.trajectory.x, theirs.trajectory.x)
        np.testing.assert_array_equal(ours.trajectory.y, theirs.trajectory.y)
    assert all(run.steps == 0 for run in session.runs)  # the window's race is not touched
    last = [run.trajectory.x.copy() for run in stepper.session.runs]
    stepper.go_to(1)  # back: restarted from the start
    assert all(run.steps == 7 for run in stepper.session.runs)
    stepper.go_to(3)
    for run, xs in zip(stepper.session.runs, last):
        np.testing.assert_array_equal(run.trajectory.x, xs)  # the same race again


def test_disabled_and_diverged_runs_stop_where_they_are():
    session = Session.default()
    session.add_run("SGD", {"lr": 1.0})  # diverges on Rosenbrock in a few steps
    session.runs[0].enabled = False
    plan = plan_animation(session, fps=10, steps=60, steps_per_frame=20)
    stepper = RaceStepper(session, plan)
    stepper.go_to(plan.frame_count - 1)
    runs = stepper.session.runs
    assert runs[0].steps == 0 and runs[1].steps == 60
    assert runs[-1].status.value == "diverged" and runs[-1].steps < 60


# --- encoders -------------------------------------------------------------------------------------


def test_gif_decodes_with_one_palette_delays_loop_and_moving_frames(tmp_path):
    frames = _moving_frames(9)
    out = tmp_path / "race.gif"
    progress = Progress()
    write_animation(out, iter(frames), count=9, width=48, height=32, fps=25,
                    palette_frames=[frames[0], frames[-1]], exact_colours=[(213, 94, 0)],
                    state=progress)
    assert progress.values[-1] == 1.0 and progress.values == sorted(progress.values)
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.size == (48, 32) and gif.n_frames == 9
        assert gif.info["loop"] == 0
        durations, decoded = [], []
        for frame in ImageSequence.Iterator(gif):
            durations.append(frame.info["duration"])
            decoded.append(np.asarray(frame.convert("RGB")))
    assert all(d >= 20 for d in durations) and durations[0] == 40  # 25 fps
    has_global, local = _gif_colour_tables(out.read_bytes())
    assert has_global and local == [False] * 9  # one shared palette: nothing flickers
    assert all(not np.array_equal(a, b) for a, b in zip(decoded, decoded[1:]))
    # the run's colour is kept exactly; the gradient stays close
    assert (np.abs(decoded[4].astype(int) - frames[4]).max(axis=2) == 0)[10:16].any()
    assert np.abs(decoded[4].astype(int) - frames[4]).mean() < 4


def test_gif_keeps_white_and_rare_run_colours_exact(tmp_path):
    frames = _moving_frames(2, 200, 200)
    rare = (0, 114, 178)
    for f in frames:
        f[150:, :] = 255  # a white margin, as around the plot
        f[0, 0] = rare  # one pixel: median cut alone would merge it into the gradient
    out = tmp_path / "race.gif"
    write_animation(out, frames, count=2, width=200, height=200, fps=10,
                    exact_colours=[(255, 255, 255), rare])
    decoded = _gif_frames(out)
    for d in decoded:
        assert tuple(d[0, 0]) == rare
        assert (d[150:] == 255).all()  # Pillow's own mapping gave (251, 251, 251)
    # and the palette alone keeps an entry for it
    palette = shared_palette(frames, [rare])
    assert rare in {tuple(palette.getpalette()[i:i + 3]) for i in range(0, 768, 3)}


def _gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


def test_mp4_is_h264_yuv420p_with_odd_sides_padded_to_even(tmp_path):
    import imageio_ffmpeg

    frames = _moving_frames(12, 47, 33)
    out = tmp_path / "race.mp4"
    write_animation(out, frames, count=12, width=47, height=33, fps=12)
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = reader.__next__()
    decoded = [np.frombuffer(f, np.uint8).reshape(34, 48, 3) for f in reader]
    assert meta["size"] == (48, 34)  # padded by one pixel each way, not resampled
    assert meta["codec"].startswith("h264") and meta["pix_fmt"].startswith("yuv420p")
    assert len(decoded) == 12
    # the square moves: the frames differ where it is, and match the source closely
    assert np.abs(decoded[0].astype(int) - decoded[-1].astype(int)).max() > 100
    assert np.abs(decoded[5][:33, :47].astype(int) - frames[5]).mean() < 8


@pytest.mark.parametrize("suffix, fmt", [(".webp", "WEBP"), (".apng", "PNG")])
def test_webp_and_apng_decode_with_every_frame(tmp_path, suffix, fmt):
    frames = _moving_frames(5)
    out = tmp_path / f"race{suffix}"
    write_animation(out, frames, count=5, width=48, height=32, fps=10)
    with Image.open(out) as image:
        assert image.format == fmt and image.size == (48, 32) and image.n_frames == 5
        image.seek(4)
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), frames[4])  # lossless


# --- failures leave nothing -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_a_cancelled_export_leaves_the_old_file_and_no_temporary(tmp_path, suffix):
    out = tmp_path / f"race{suffix}"
    out.write_bytes(b"the old file")
    with pytest.raises(AnimationCancelled):
        write_animation(out, _moving_frames(8), count=8, width=48, height=32, fps=10,
                        state=Progress(cancel_at=3))
    assert out.read_bytes() == b"the old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_a_failing_frame_source_leaves_nothing(tmp_path):
    out = tmp_path / "race.gif"

    def frames():
        yield _moving_frames(1)[0]
        raise RuntimeError("the drawing failed")

    with pytest.raises(RuntimeError):
        write_animation(out, frames(), count=3, width=48, height=32, fps=10)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_places_and_wrong_frames_are_one_line_errors(tmp_path):
    with pytest.raises(AnimationError, match="does not exist"):
        AnimationWriter(tmp_path / "missing" / "race.gif", 48, 32, 10)
    with pytest.raises(AnimationError, match="use .gif"):
        AnimationWriter(tmp_path / "race.avi", 48, 32, 10)
    writer = AnimationWriter(tmp_path / "race.gif", 48, 32, 10)
    with pytest.raises(AnimationError, match="48 x 32"):
        writer.add(np.zeros((10, 10, 3), np.uint8))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_mp4_without_imageio_ffmpeg_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import raises ImportError
    with pytest.raises(AnimationError, match=r"imageio-ffmpeg.*\[video\]") as info:
        AnimationWriter(tmp_path / "race.mp4", 48, 32, 10)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
