"""The ``flipnet`` command line.

    flipnet train [--dataset mnist] [--arch 784-256-256-10]
                  [--weights ternary|binary|fp32|hybrid] [--epochs N]
                  [--batch-size B] [--seed S] [--recipe default|paper|device|hybrid|fp32]
                  [--lr LR] [--lr-end LR] [--weight-decay WD] [--p0 P] [--p1 P]
                  [--k-frac F[,F...]] [--margin M] [--vote sign|weighted] [--filter hurt|net]
                  [--calib-target T] [--counter-shift C] [--counter-shift-end C1]
                  [--counter-threshold TAU] [--counter-decay R] [--counter-round nearest|stochastic]
                  [--counter-bits B[,B...]]
                  [--recalibrate-every EPOCHS] [--recalibrate-steps STEPS] [--recalibrate-from 0|1]
                  [--input centered|half]
                  [--out model.flip] [--data-dir DIR] [--json] [--report]
                  [--data PATH [--test-data PATH] [--label COLUMN] [--input-scale METHOD]]
                  [--plot PATH.png]
    flipnet eval MODEL [--dataset mnist] [--data-dir DIR] [--data PATH [--label COLUMN]] [--json]
    flipnet info MODEL [--json]
    flipnet plot MODEL [-o PATH.png]
    flipnet export MODEL [--format c|npz|onnx] [-o OUT] [--name NAME] [--onnx-input uint8|int8]
                   [--json]
    flipnet device ... / flipnet demo ...      (flipnet.cli.device)

With ``--json`` the last line of stdout is one JSON object; progress always goes to stderr.
User errors (missing file, corrupt model, bad arch, data not found) print one line
``flipnet: error: ...`` to stderr and exit with status 1 (2 for bad usage), no traceback.

One module per group of subcommands (:mod:`.train`, :mod:`.model_file`, :mod:`.device`),
each with ``register(subparsers)``, sets ``func`` with ``parser.set_defaults(func=f)``;
``f(args)`` returns the exit status (None = 0). What they share is in :mod:`._common`.
"""

import argparse
import sys

from .._version import __version__
from ..errors import FlipnetError
from . import model_file, train
from ._common import err, one_line

__all__ = ["main", "build_parser"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="flipnet",
        description="Train, evaluate and inspect integer-only binary/ternary networks.")
    parser.add_argument("--version", action="version", version="flipnet " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train.register(sub)
    model_file.register(sub)
    try:
        from . import device
    except ImportError as exc:  # keep train/eval/info usable if the device tools are broken
        err("flipnet: warning: device commands unavailable (%s)" % exc)
    else:
        device.register(sub)
    return parser


def main(argv=None):
    """Run the ``flipnet`` command line with ``argv`` (default: sys.argv[1:]); returns the exit
    status: 0, 1 for an error (one line on stderr), 2 for bad usage, 130 when interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status = func(args)
    except KeyboardInterrupt:
        err("flipnet: interrupted")
        return 130
    except (FlipnetError, OSError, ValueError) as exc:
        err("flipnet: error: %s" % one_line(exc))
        return 1
    return 0 if status is None else int(status)
