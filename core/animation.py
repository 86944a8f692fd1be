"""The race as an animation: which steps each frame shows, and the frames encoded to a file.

No Qt here: the frames arrive as RGB arrays (height x width x 3, uint8) from whoever draws them
(gui/animation_export.py draws them offscreen from the data). This module decides

- the plan: frame k shows every run after min(k * steps_per_frame, its length) steps, from the
  session's start, stepped in a fresh copy of the session (`race_copy`), so an animation made
  headless equals one made in the window and is the same every time;
- the encoding: GIF (Pillow, one palette shared by every frame, no dithering, so nothing
  flickers; delays in whole centiseconds, at least 2; looping), MP4 (H.264, yuv420p, odd sides
  padded by one pixel, through imageio-ffmpeg, which ships its own ffmpeg), WebP and APNG
  (Pillow, looping);
- the bounds: frames x width x height, fps, frame count, with one-line messages.

Files are written through core.atomic: a failed or cancelled export leaves no partial file and
the old file untouched. `write_animation(path, frames, ..., state)` is the plain long-running
function (progress and cancel through `state`, as gui/worker.py's JobState offers);
`AnimationWriter` is the same work in pieces, for a caller that feeds frames one at a time.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.atomic import atomic_path
from core.errors import ExportError, first_line
from core.run import RunStatus
from core.session import DEFAULT_STEPS, MAX_EVALUATIONS, Session, evaluations_per_step

# suffix -> what the user calls it
FORMATS: dict[str, str] = {".gif": "GIF", ".mp4": "MP4", ".webp": "WebP", ".apng": "APNG"}
MAX_FPS = 60
# GIF stores delays in centiseconds and viewers slow down anything under 2 (20 ms).
MIN_GIF_DELAY_CS = 2
MAX_GIF_FPS = 100 // MIN_GIF_DELAY_CS
MAX_FRAMES = 5000
DEFAULT_FRAMES = 101  # without steps per frame or frames: about this many (10 s at 10 fps)
MIN_SIDE, MAX_SIDE = 16, 4000
# frames x width x height: GIF keeps one byte per pixel of every frame until it is written,
# WebP and APNG three; 100 M is e.g. 800 x 600 for 208 frames (21 s at 10 fps).
MAX_PIXEL_FRAMES = 100_000_000
PALETTE_COLOURS = 256
VIDEO_EXTRA_HINT = "pip install 'optimizer-playground[video]' (or: pip install imageio-ffmpeg)"


class AnimationError(ExportError):
    """An animation that cannot be made or written (the message is one line for the user)."""


class AnimationCancelled(AnimationError):
    """The user cancelled the export; nothing was written."""

    def __init__(self) -> None:
        super().__init__("the animation export was cancelled; nothing was written")


class ProgressState(Protocol):
    """What a long function reports to and asks of its caller (gui.worker.JobState has it)."""

    def set_progress(self, fraction: float) -> None: ...

    def is_interruption_requested(self) -> bool: ...


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnimationPlan:
    """Which steps each frame shows. `lengths[i]`: how many steps run i takes in all; frame k
    shows run i after min(k * steps_per_frame, lengths[i]) steps (0: the start)."""

    fps: int
    steps_per_frame: int
    lengths: tuple[int, ...]

    @property
    def last_step(self) -> int:
        return max(self.lengths, default=0)

    @property
    def frame_count(self) -> int:
        """The start, then a frame every `steps_per_frame` steps, the last one at the end."""
        return 1 + math.ceil(self.last_step / self.steps_per_frame)

    def step_at(self, frame: int) -> int:
        """The step counter frame `frame` shows (the longest run's steps by then)."""
        return min(frame * self.steps_per_frame, self.last_step)

    def steps_for(self, run_index: int, frame: int) -> int:
        return min(frame * self.steps_per_frame, self.lengths[run_index])

    @property
    def seconds(self) -> float:
        return self.frame_count * frame_delay_ms(self.fps) / 1000.0


def frame_delay_ms(fps: int) -> int:
    """The delay between frames in ms as the file stores it: whole centiseconds (GIF's unit, and
    the same for the others so every format plays at one speed), at least 20 ms."""
    return 10 * max(MIN_GIF_DELAY_CS, round(100 / fps))


def plan_animation(session: Session, *, fps: int, steps_per_frame: int | None = None,
                   steps: int | None = None, frames: int | None = None) -> AnimationPlan:
    """The plan for a session's race. Each run's length: `steps` if given, else its own count
    (`Session.steps_for`: the count its file gave, else DEFAULT_STEPS); disabled runs stay at
    the start. Give `steps_per_frame`, or `frames` (the steps per frame then follow from the
    longest run), or both (then `steps`, if not given, is (frames - 1) x steps_per_frame).
    Raises AnimationError for a bad value; the work is checked by `check_plan`."""
    if not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= MAX_FPS:
        raise AnimationError(f"frames per second must be a whole number from 1 to {MAX_FPS}, "
                             f"got {fps!r}")
    if steps_per_frame is not None and steps_per_frame < 1:
        raise AnimationError(f"steps per frame must be 1 or more, got {steps_per_frame}")
    if frames is not None and not 2 <= frames <= MAX_FRAMES:
        raise AnimationError(f"the number of frames must be from 2 to {MAX_FRAMES}, got {frames}")
    if steps is not None and steps < 0:
        raise AnimationError(f"steps must be 0 or more, got {steps}")
    if steps is None and frames is not None and steps_per_frame is not None:
        steps = (frames - 1) * steps_per_frame
    lengths = tuple(session.steps_for(run, steps) if run.enabled else 0 for run in session.runs)
    longest = max(lengths, default=0)
    if steps_per_frame is None:
        wanted = frames if frames is not None else min(DEFAULT_FRAMES, longest + 1)
        steps_per_frame = max(1, math.ceil(longest / max(1, wanted - 1)))
    return AnimationPlan(fps, steps_per_frame, lengths)


def check_plan(session: Session, plan: AnimationPlan, width: int, height: int,
               suffix: str) -> None:
    """Refuse (AnimationError, one line) what this export cannot or should not do: an unknown
    format, a size or fps out of range, too many frames or pixels, too much stepping."""
    suffix = suffix.lower()
    if suffix not in FORMATS:
        what = f"'{suffix}'" if suffix else "a name without an extension"
        raise AnimationError(f"cannot write an animation as {what}: use "
                             + ", ".join(FORMATS))
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise AnimationError(f"the animation size must be from {MIN_SIDE} to {MAX_SIDE} pixels "
                             f"each way, got {width} x {height}")
    if suffix == ".gif" and plan.fps > MAX_GIF_FPS:
        raise AnimationError(f"a GIF plays at most {MAX_GIF_FPS} frames per second (a delay of "
                             f"{10 * MIN_GIF_DELAY_CS} ms), got {plan.fps}")
    n = plan.frame_count
    if n < 2:
        raise AnimationError("nothing moves: every run takes 0 steps; make the race at least "
                             "1 step long")
    if n > MAX_FRAMES:
        raise AnimationError(f"too many frames: {n} (at most {MAX_FRAMES}); take more steps per "
                             f"frame (now {plan.steps_per_frame}) or fewer steps")
    if n * width * height > MAX_PIXEL_FRAMES:
        raise AnimationError(f"too much to draw: {n} frames of {width} x {height} pixels is "
                             f"{n * width * height / 1e6:.0f} M pixels, at most "
                             f"{MAX_PIXEL_FRAMES // 1_000_000} M; make it smaller, shorter or "
                             f"take more steps per frame")
    # The session's own bound on stepping (MAX_EVALUATIONS of f), for these lengths.
    work = sum(evaluations_per_step(run) * n for run, n in zip(session.runs, plan.lengths))
    if work > MAX_EVALUATIONS:
        raise AnimationError(f"too much work: the runs would evaluate f up to {work} times, at "
                             f"most {MAX_EVALUATIONS} in all: take fewer steps")


def race_copy(session: Session) -> Session:
    """A fresh copy of the session at its start: each run's `replay_copy()` (the settings it
    started with: optimizer, hyperparameters, freezes, scheduler, clipping, noise; label,
    colour, on/off; and the changes the user made mid-run, applied at their steps as the copy
    is stepped), none stepped. The original is untouched (the window's race keeps playing)."""
    copy = Session(session.surface, session.start)
    for run in session.runs:
        copy.runs.append(run.replay_copy())
    return copy


class RaceStepper:
    """Steps a copy of the session frame by frame along a plan; any frame can be asked for
    (an earlier one restarts the copy from its start, which gives the same runs again)."""

    def __init__(self, session: Session, plan: AnimationPlan) -> None:
        if len(plan.lengths) != len(session.runs):
            raise AnimationError("the plan does not match the session's runs")
        self.plan = plan
        self.session = race_copy(session)
        self.frame = 0

    def go_to(self, frame: int) -> None:
        """Step every run to what frame `frame` shows."""
        if frame < self.frame:  # rewind(), not reset(): a reset would drop the changes
            for run in self.session.runs:
                run.rewind()
        for i, run in enumerate(self.session.runs):
            todo = self.plan.steps_for(i, frame) - run.steps
            if todo > 0 and run.enabled and run.status is not RunStatus.DIVERGED:
                run.step(todo)
        self.frame = frame


# --- encoding -------------------------------------------------------------------------------------


def _check_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise AnimationError(f"a frame must be height x width x 3 uint8, got {frame.dtype} "
                             f"{frame.shape}")
    if (frame.shape[1], frame.shape[0]) != size:
        raise AnimationError(f"every frame must be {size[0]} x {size[1]}, got "
                             f"{frame.shape[1]} x {frame.shape[0]}")
    return np.ascontiguousarray(frame)


def shared_palette(frames: Sequence[np.ndarray],
                   exact_colours: Sequence[tuple[int, int, int]] = ()) -> Any:
    """One palette (a Pillow 'P' image) for every frame of a GIF, from a sample of frames.

    `exact_colours` (the runs' colours, black, white) get entries of their own: median cut
    weighs colours by how many pixels have them, so a thin trajectory or a legend swatch would
    otherwise be mapped to a surface colour. The rest of the 256 entries follow the sample."""
    from PIL import Image

    if not frames:
        raise AnimationError("a GIF palette needs at least one frame")
    exact = list(dict.fromkeys(tuple(int(v) for v in c) for c in exact_colours))[:64]
    # At most ~0.4 M pixels to choose from (every 2nd row and column of a big sample): median
    # cut takes ~60 ms on 1 M, a pause the window would show.
    sample = np.concatenate([np.asarray(f) for f in frames], axis=0)
    while sample.shape[0] * sample.shape[1] > 400_000:
        sample = sample[::2, ::2]
    image = Image.fromarray(np.ascontiguousarray(sample), "RGB")
    fitted = image.quantize(PALETTE_COLOURS - len(exact), method=Image.Quantize.MEDIANCUT,
                            dither=Image.Dither.NONE)
    used = (fitted.getpalette() or [])[:3 * (PALETTE_COLOURS - len(exact))]
    entries = [v for c in exact for v in c] + used
    entries += entries[:3] * (PALETTE_COLOURS - len(entries) // 3)  # pad with a used colour
    palette = Image.new("P", (1, 1))
    palette.putpalette(entries[:3 * PALETTE_COLOURS])
    return palette


def _exact_lookup(palette: Any) -> np.ndarray:
    """A table from a colour (r << 16 | g << 8 | b) to its palette entry, -1 for none (16 MB,
    made once per GIF)."""
    entries = np.array(palette.getpalette()[:3 * PALETTE_COLOURS], np.uint32).reshape(-1, 3)
    lookup = np.full(1 << 24, -1, np.int16)
    codes = (entries[:, 0] << 16) | (entries[:, 1] << 8) | entries[:, 2]
    lookup[codes[::-1]] = np.arange(len(codes) - 1, -1, -1, dtype=np.int16)  # first entry wins
    return lookup


def _quantize(frame: np.ndarray, image: Any, palette: Any, lookup: np.ndarray) -> Any:
    """The frame in the palette's colours, without dithering. Pillow maps each colour through a
    cache of coarse colour boxes, which is close but not exact (white came out as 251, 251,
    251); pixels whose colour is in the palette get exactly that entry (`_exact_lookup`)."""
    from PIL import Image

    mapped = image.quantize(palette=palette, dither=Image.Dither.NONE)
    codes = ((frame[..., 0].astype(np.uint32) << 16) | (frame[..., 1].astype(np.uint32) << 8)
             | frame[..., 2])
    exact = lookup[codes]
    hit = exact >= 0
    indices = np.asarray(mapped).copy()
    indices[hit] = exact[hit]
    out = Image.fromarray(indices, "P")
    out.putpalette(palette.getpalette())
    return out


def _import_ffmpeg() -> Any:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise AnimationError(f"MP4 export needs imageio-ffmpeg, which is not installed: "
                             f"{VIDEO_EXTRA_HINT}") from None
    try:
        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise AnimationError("MP4 export: imageio-ffmpeg has no ffmpeg here "
                             f"({first_line(e)})") from None
    return imageio_ffmpeg


class AnimationWriter:
    """Frames into an animation file, one at a time: `add(frame)` for each, then `finish()`
    (which encodes what is left and renames the file into place) or `abort()` (which removes
    it; the old file, if any, stays as it was). Also a context manager: leaving it with an
    exception aborts.

    GIF: give `palette_frames` (a sample; else the first frame is the sample) and the colours
    that must stay exact (`exact_colours`, see shared_palette). MP4 frames stream
    to ffmpeg as they come; the other formats are encoded in `finish()`.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: int, *,
                 palette_frames: Sequence[np.ndarray] = (),
                 exact_colours: Sequence[tuple[int, int, int]] = ()) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in FORMATS:
            what = f"'{self.suffix}'" if self.suffix else "a name without an extension"
            raise AnimationError(f"cannot write an animation as {what}: use "
                                 + ", ".join(FORMATS))
        self.size = (int(width), int(height))
        self.fps = int(fps)
        self.delay_ms = frame_delay_ms(self.fps)
        self.frames_added = 0
        self._images: list[Any] = []  # Pillow images, for the formats written at the end
        self._palette = None
        self._lookup: np.ndarray | None = None
        self._video: Any = None
        self._done = False
        self._encoded = False
        self._exact = list(exact_colours)
        if self.suffix == ".mp4":
            ffmpeg = _import_ffmpeg()
        else:
            import PIL  # noqa: F401  (a missing Pillow is said now, not after the drawing)
        check_writable(self.path)
        self._stack = ExitStack()
        try:
            self.tmp = self._stack.enter_context(atomic_path(self.path))
        except OSError as e:
            raise AnimationError(f"cannot write {self.path}: {e.strerror or e}") from None
        if palette_frames and self.suffix == ".gif":
            self._palette = shared_palette([_check_frame(f, self.size) for f in palette_frames],
                                           self._exact)
        if self.suffix == ".mp4":
            w, h = self.size
            # H.264 in yuv420p needs even sides: pad with the edge's colour, never resample.
            self._padded = (w + w % 2, h + h % 2)
            self._video = ffmpeg.write_frames(
                str(self.tmp), self._padded, fps=self.fps, codec="libx264",
                pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=8, macro_block_size=1,
                ffmpeg_log_level="error",
                # -f: the temporary name does not end in .mp4; faststart: plays while loading
                output_params=["-f", "mp4", "-movflags", "+faststart"])
            try:
                self._video.send(None)  # starts ffmpeg
            except Exception as e:
                self.abort()
                raise AnimationError(f"cannot start ffmpeg for {self.path.name}: "
                                     f"{first_line(e)}") from None

    def add(self, frame: np.ndarray) -> None:
        """Append one frame (height x width x 3 uint8)."""
        frame = _check_frame(frame, self.size)
        if self.suffix == ".mp4":
            w, h = self.size
            if self._padded != (w, h):
                frame = np.pad(frame, ((0, self._padded[1] - h), (0, self._padded[0] - w),
                                       (0, 0)), mode="edge")
            try:
                self._video.send(frame.tobytes())
            except Exception as e:
                self.abort()
                raise AnimationError(f"cannot write {self.path}: ffmpeg failed "
                                     f"({first_line(e)})") from None
        else:
            from PIL import Image

            image = Image.fromarray(frame, "RGB")
            if self.suffix == ".gif":
                if self._palette is None:
                    self._palette = shared_palette([frame], self._exact)
                # The same palette and no dithering: a pixel that did not change keeps its
                # index, so still parts do not shimmer and Pillow stores only what moved.
                if self._lookup is None:
                    self._lookup = _exact_lookup(self._palette)
                image = _quantize(frame, image, self._palette, self._lookup)
            self._images.append(image)
        self.frames_added += 1

    def finish(self) -> Path:
        """Encode what is left, then put the file in place. Returns its path."""
        self.encode()
        return self.commit()

    def encode(self) -> None:
        """Encode what is left into the temporary file (no Qt: fine on a worker thread). The
        target is not touched until `commit()`, so a cancel during the encoding still leaves
        the old file as it was."""
        if self._done or self._encoded:
            raise AnimationError("this animation is already finished")
        if self.frames_added == 0:
            self.abort()
            raise AnimationError("an animation needs at least one frame")
        try:
            if self.suffix == ".mp4":
                self._video.close()  # waits for ffmpeg to write the file
                self._video = None
            else:
                self._save_pillow()
        except AnimationError:
            self.abort()
            raise
        except Exception as e:
            self.abort()
            reason = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
            raise AnimationError(f"cannot write {self.path}: {reason}") from None
        self._encoded = True

    def commit(self) -> Path:
        """Put the encoded file in place of the target (an atomic rename). Returns its path."""
        if self._done or not self._encoded:
            raise AnimationError("the animation is not encoded yet")
        self._done = True
        try:
            self._stack.close()  # checks the file is not empty, renames it into place
        except OSError as e:
            raise AnimationError(f"cannot write {self.path}: {e.strerror or e}") from None
        return self.path

    def _save_pillow(self) -> None:
        first, rest = self._images[0], self._images[1:]
        common = {"save_all": True, "append_images": rest, "duration": self.delay_ms,
                  "loop": 0}
        if self.suffix == ".gif":
            # palette=: written once as the global colour table, and no frame gets its own
            # (without it Pillow repeats the table in every frame); optimize=False keeps it as
            # it is, unreordered.
            palette = bytes(self._palette.getpalette() or []) if self._palette else None
            first.save(self.tmp, format="GIF", optimize=True, disposal=1, palette=palette,
                       **common)
        elif self.suffix == ".webp":
            first.save(self.tmp, format="WEBP", lossless=True, quality=50, method=3, **common)
        else:
            first.save(self.tmp, format="PNG", default_image=False, **common)
        self._images = []
        self._lookup = None

    def abort(self) -> None:
        """Stop and remove the temporary file; the target is left as it was. Safe to repeat."""
        if self._done:
            return
        self._done = True
        self._images = []
        self._lookup = None
        if self._video is not None:
            video, self._video = self._video, None
            with contextlib.suppress(Exception):  # ffmpeg may be gone; the file goes anyway
                video.close()
        self._stack.__exit__(AnimationCancelled, AnimationCancelled(), None)

    def __enter__(self) -> AnimationWriter:
        return self

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        if kind is not None:
            self.abort()


def check_writable(path: Path, error: type[Exception] = AnimationError) -> None:
    """Refuse (`error`, one line) a target whose folder is missing or not writable, or a
    folder: before long work, not after it."""
    folder = path.parent
    if not folder.is_dir():
        raise error(f"cannot write {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise error(f"cannot write {path}: it is a folder")
    if not os.access(folder, os.W_OK):
        raise error(f"cannot write {path}: the folder {folder} is not writable")


def write_animation(path: str | Path, frames: Iterable[np.ndarray], *, count: int,
                    width: int, height: int, fps: int,
                    palette_frames: Sequence[np.ndarray] = (),
                    exact_colours: Sequence[tuple[int, int, int]] = (),
                    state: ProgressState | None = None) -> Path:
    """Encode `count` frames (drawn lazily by the iterable) into `path`. Progress goes to
    `state.set_progress` (the last share is the encoding); a cancel
    (`state.is_interruption_requested()`) raises AnimationCancelled and writes nothing."""
    with AnimationWriter(path, width, height, fps, palette_frames=palette_frames,
                         exact_colours=exact_colours) as writer:
        for i, frame in enumerate(frames):
            if state is not None and state.is_interruption_requested():
                raise AnimationCancelled()
            writer.add(frame)
            if state is not None:
                state.set_progress(0.95 * (i + 1) / max(1, count))
        if state is not None and state.is_interruption_requested():
            raise AnimationCancelled()
        if writer.frames_added != count:
            raise AnimationError(f"expected {count} frames, got {writer.frames_added}")
        done = writer.finish()
    if state is not None:
        state.set_progress(1.0)
    return done


def default_length(session: Session) -> int:
    """The length the window offers: the longest run's steps so far, else DEFAULT_STEPS."""
    return max((run.steps for run in session.runs if run.enabled), default=0) or DEFAULT_STEPS
