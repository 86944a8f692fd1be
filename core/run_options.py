"""The command line's per-run tool options, shared by `run`/`export` (main.py) and `train`
(core/model_cli.py): --scheduler, --clip-norm, --clip-value (and, for the race, --noise and
--seed), each belonging to the --optimizer before it, or to every run when given before any.

    --optimizer "SGD(lr=0.1)" --scheduler "StepLR(step_size=50)" --optimizer "Adam(lr=0.01)"

gives the StepLR to the SGD run only. Importing this module loads no torch (argparse wiring runs
before the engine is needed); `gradient_tools` does, to validate a scheduler against torch's
own signature.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

# The options `InOrder` records, by argparse dest.
RUN_SETTINGS = ("scheduler", "clip_norm", "clip_value", "noise", "seed", "grad_noise",
                "grad_noise_seed")
# train's --noise and --seed are the data's: its gradient noise is --grad-noise / --grad-noise-seed
_SAME_AS = {"grad_noise": "noise", "grad_noise_seed": "seed"}
ErrorType = Callable[[str], Exception]


class InOrder(argparse.Action):
    """`append`, and also the (option, value) pair in command-line order in `args.in_order`,
    so each --scheduler / --clip-norm / --clip-value / --noise / --seed knows which
    --optimizer it follows."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])
        ordered = [*(getattr(namespace, "in_order", None) or []), (self.dest, values)]
        namespace.in_order = ordered


def add_tool_arguments(parser: argparse.ArgumentParser | Any, *, noise: bool = True) -> None:
    """--scheduler, --clip-norm, --clip-value, and the gradient noise: --noise, --seed with
    `noise`, else (train, whose --noise and --seed are the data's) --grad-noise and
    --grad-noise-seed; the parser's --optimizer must use `InOrder` too."""
    parser.add_argument("--scheduler", action=InOrder, default=[], metavar="SPEC",
                        help="a torch.optim.lr_scheduler, e.g. 'CosineAnnealingLR(T_max=200)', "
                             "for the --optimizer before it (or every run, given before any)")
    parser.add_argument("--clip-norm", action=InOrder, default=[], type=float, metavar="X",
                        help="clip each gradient with torch.nn.utils.clip_grad_norm_(max_norm=X)")
    parser.add_argument("--clip-value", action=InOrder, default=[], type=float, metavar="X",
                        help="clip each gradient with torch.nn.utils.clip_grad_value_("
                             "clip_value=X)")
    if noise:
        parser.add_argument("--noise", action=InOrder, default=[], type=float, metavar="SIGMA",
                            help="add seeded Gaussian noise of this standard deviation to each "
                                 "gradient")
        parser.add_argument("--seed", action=InOrder, default=[], type=int, metavar="N",
                            help="the seed of --noise (default 0)")
    else:
        parser.add_argument("--grad-noise", action=InOrder, default=[], type=float,
                            metavar="SIGMA",
                            help="add seeded Gaussian noise of this standard deviation to each "
                                 "gradient (on top of the minibatches' own noise)")
        parser.add_argument("--grad-noise-seed", action=InOrder, default=[], type=int,
                            metavar="N", help="the seed of --grad-noise (default 0)")


def run_settings(args: argparse.Namespace, error: ErrorType
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The settings for every run (given before any --optimizer) and for each --optimizer's
    run (given after it). The same option twice for one run is refused."""
    shared: dict[str, Any] = {}
    per_run: list[dict[str, Any]] = []
    for dest, value in getattr(args, "in_order", None) or []:
        if dest == "optimizer":
            per_run.append({})
            continue
        if dest not in RUN_SETTINGS:
            continue
        target = per_run[-1] if per_run else shared
        option = "--" + dest.replace("_", "-")
        key = _SAME_AS.get(dest, dest)
        if key in target:
            whose = f"--optimizer {len(per_run)}" if per_run else "every run"
            raise error(f"{option} is given twice for {whose}")
        target[key] = value
    return shared, per_run


def settings_for_run(shared: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """One run's settings: its own over the shared ones; its own clipping replaces all's."""
    if "clip_norm" in own or "clip_value" in own:
        shared = {k: v for k, v in shared.items() if k not in ("clip_norm", "clip_value")}
    return {**shared, **own}


def gradient_tools(settings: dict[str, Any], error: ErrorType,
                   noise_option: str = "--noise") -> dict[str, Any]:
    """Run keyword arguments (scheduler, clipping, noise) from one run's options; a bad one is
    an `error` of one line naming the option, the scheduler, the argument and the value."""
    from core.errors import PlaygroundError
    from core.gradient_tools import GradientClipping, GradientNoise
    from core.run import scheduler_setting

    tools: dict[str, Any] = {}
    if "scheduler" in settings:
        try:
            tools["scheduler"] = scheduler_setting(settings["scheduler"])
        except PlaygroundError as e:
            raise error(f"--scheduler {settings['scheduler']!r}: {e}") from None
    if "clip_norm" in settings and "clip_value" in settings:
        raise error("give --clip-norm or --clip-value for a run, not both")
    try:
        if "clip_norm" in settings:
            tools["clipping"] = GradientClipping("norm", settings["clip_norm"])
        elif "clip_value" in settings:
            tools["clipping"] = GradientClipping("value", settings["clip_value"])
        if "noise" in settings:
            tools["noise"] = GradientNoise(settings["noise"], settings.get("seed", 0))
    except PlaygroundError as e:
        text = str(e)  # "<option> must be ...": named as this command spells the option
        word = text.split(" ", 1)[0]
        seed = "--seed" if noise_option == "--noise" else noise_option + "-seed"
        option = {"noise": noise_option, "seed": seed}.get(word, "--" + word.replace("_", "-"))
        raise error(option + text[len(word):]) from None
    if "seed" in settings and "noise" not in settings:
        raise error("the noise seed (--seed, or train's --grad-noise-seed) goes with the gradient "
                    "noise (--noise, or train's --grad-noise)")
    return tools
