"""The command line's animation options, one parsing for every film: --fps, --steps-per-frame,
--frames and --size, as `export --out race.gif` (the race, main.py) and `train --out anim.gif`
(model mode, core/model_cli.py) read them, with the same defaults and the same one-line
messages.

    add_animation_arguments(parser)              # the four options, with their help
    request = animation_request(args, error)     # checked values: fps, steps per frame, ...
    refuse_animation_options(args, error, out)   # they were given, but --out is not a film

Importing this module loads no torch (argparse wiring runs before the engine is needed). The
bounds that depend on the film (the frame count, the pixels, the GIF's fps, the work) are
core.animation.check_plan's, once the plan is known.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The same keys as core.animation.FORMATS (which imports torch); a test keeps them equal.
ANIMATION_SUFFIXES = (".gif", ".mp4", ".webp", ".apng")
DEFAULT_FPS = 10
DEFAULT_SIZE = (800, 600)
# argparse dest -> the option's name, in the order the messages list them
ANIMATION_OPTIONS = ("fps", "steps_per_frame", "frames", "size")
ErrorType = Callable[[str], Exception]


def is_animation(out: str | Path | None) -> bool:
    """Whether --out names a film (.gif, .mp4, .webp, .apng)."""
    return bool(out) and Path(str(out)).suffix.lower() in ANIMATION_SUFFIXES


def add_animation_arguments(parser: argparse.ArgumentParser | Any, *, what: str = "the runs",
                            size: bool = True, prefix: str = "animations: ") -> None:
    """--fps, --steps-per-frame, --frames (and --size, unless the parser has its own), on a
    parser or an argument group (`prefix`: what each help starts with; "" in a group that
    says it is about animations)."""
    parser.add_argument("--fps", type=int, default=None, metavar="N",
                        help=f"{prefix}frames per second (default {DEFAULT_FPS}; a GIF at "
                             "most 50)")
    parser.add_argument("--steps-per-frame", type=int, default=None, metavar="K",
                        help=f"{prefix}optimizer steps between frames (default: about 100 "
                             f"frames for {what})")
    parser.add_argument("--frames", type=int, default=None, metavar="N",
                        help=f"{prefix}the number of frames, the start included (with "
                             "--steps-per-frame and no --steps, it sets the length)")
    if size:
        parser.add_argument("--size", default=None, metavar="W,H",
                            help=f"{prefix}the picture in pixels, W,H or WxH (default "
                                 f"{DEFAULT_SIZE[0]},{DEFAULT_SIZE[1]})")


def parse_size(text: str, error: ErrorType, option: str = "--size") -> tuple[int, int]:
    """W,H or WxH, in whole pixels (the range is the caller's: pictures and films differ)."""
    parts = text.lower().replace(" ", "").replace("x", ",").split(",")
    try:
        width, height = (int(v) for v in parts)
    except ValueError:
        raise error(f"{option} must be two whole numbers like 800,600 or 800x600 "
                    f"(got {text!r})") from None
    return width, height


@dataclass(frozen=True)
class AnimationRequest:
    """What the options ask of a film: fps, steps per frame and frames (None: the plan's
    default) and the size in pixels."""

    fps: int
    steps_per_frame: int | None
    frames: int | None
    size: tuple[int, int]


def animation_request(args: argparse.Namespace, error: ErrorType,
                      default_size: tuple[int, int] = DEFAULT_SIZE) -> AnimationRequest:
    """The animation options, checked one by one (`error` with one line for a bad one)."""
    size = parse_size(args.size, error) if args.size else default_size
    fps = DEFAULT_FPS if args.fps is None else args.fps
    if fps < 1:
        raise error(f"--fps must be 1 or more (got {fps})")
    if args.steps_per_frame is not None and args.steps_per_frame < 1:
        raise error(f"--steps-per-frame must be 1 or more (got {args.steps_per_frame})")
    return AnimationRequest(fps, args.steps_per_frame, args.frames, size)


def refuse_animation_options(args: argparse.Namespace, error: ErrorType, out: str | None,
                             options: tuple[str, ...] = ANIMATION_OPTIONS) -> None:
    """An animation option given without an animation to make: one line naming it."""
    for option in options:
        if getattr(args, option, None) not in (None, False):
            target = f", not {Path(out).name!r}" if out else ""
            raise error(f"--{option.replace('_', '-')} goes with an animation (--out "
                        f"FILE{', '.join(ANIMATION_SUFFIXES)}){target}")
