"""`main.py autograd`: argparse wiring for the lab, so main.py needs only a few lines.

Importing this module loads neither torch nor the rest of the lab; run_autograd_command does.
"""

from __future__ import annotations

import argparse
import json


def add_autograd_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `autograd`: --tensor (repeatable), --expr, --gradient, --no-grad, --json."""
    parser.add_argument("--tensor", action="append", default=[], required=True,
                        metavar="NAME=VALUE",
                        help='a named tensor, e.g. "a=[2., 3.]", "W=[[1., 2.], [3., 4.]]", '
                             '"x=randn(3, seed=0)" (zeros, ones, arange, randn); repeatable')
    parser.add_argument("--expr", required=True, metavar="EXPR",
                        help='Q over the tensors, e.g. "3*a**3 - b**2" or "h = a * b; sum(h)"')
    parser.add_argument("--gradient", metavar="V",
                        help='v for Q.backward(gradient=v), with Q\'s shape, e.g. "[1., 1.]" '
                             "(needed when Q is not a scalar)")
    parser.add_argument("--no-grad", action="append", default=[], metavar="NAME", dest="no_grad",
                        help="requires_grad=False for this tensor; repeatable")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_autograd_command(args: argparse.Namespace) -> str:
    """The text `autograd` prints: JSON with --json, else a short table.

    Raises LabError (a PlaygroundError, so a ValueError) with one line for bad input.
    """
    from core.lab.report import autograd_report, report_table

    report = autograd_report(args.tensor, args.expr, args.gradient, args.no_grad)
    if args.json:
        return json.dumps(report, indent=1, allow_nan=False)
    return report_table(report)
