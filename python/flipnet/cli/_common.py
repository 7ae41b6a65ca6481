"""What the ``flipnet`` subcommands share: messages on stderr, the ``--json`` line, option
types, data set loading."""

import argparse
import json
import sys

from ..metadata import json_default as _meta_json_default

__all__ = ["DATASET_CHOICES", "err", "emit_json", "json_default", "one_line", "load_data",
           "k_frac", "prob", "nonneg_float", "positive", "nonneg", "int_range",
           "input_encoding", "INPUT_HELP", "DATA_HELP", "SCALE_HELP", "file_data_args",
           "load_file_data", "input_scale", "plot_arg", "check_plot"]

DATASET_CHOICES = ("mnist", "fashion_mnist")


def err(msg):
    """A line on stderr."""
    print(msg, file=sys.stderr)


def json_default(o):
    """NumPy scalars and arrays as plain JSON; bytes (e.g. a pulled model) as their length."""
    if isinstance(o, bytes):
        return len(o)
    return _meta_json_default(o)


def emit_json(obj):
    """``obj`` as one JSON line on stdout (the ``--json`` result: the last line)."""
    sys.stdout.flush()
    print(json.dumps(obj, sort_keys=True, default=json_default))
    sys.stdout.flush()


def one_line(exc):
    """An exception as the one line ``flipnet: error: ...`` shows."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return "%s: %s" % (exc.filename, exc.strerror)
    text = str(exc) or exc.__class__.__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines)


def load_data(name, data_dir, limit=None, test_limit=None, download=True):
    """((x, y), (x_test, y_test)) of data set ``name`` (flipnet.datasets), the first ``limit``
    training and ``test_limit`` test samples when given."""
    from .. import datasets

    (x, y), (xt, yt) = datasets.load(name, path=data_dir, download=download)
    if limit:
        x, y = x[:limit], y[:limit]
    if test_limit:
        xt, yt = xt[:test_limit], yt[:test_limit]
    return (x, y), (xt, yt)


#: --data's help (flipnet.data)
DATA_HELP = ("train on your own labelled samples instead of --dataset: an .npz file (arrays x, "
             "y; x_test, y_test for a test split), a .csv file (one sample a line: features, "
             "and the label in the last column or the one --label names; a header line is "
             "recognized) or a directory of IDX files (train-/t10k-images|labels). Float "
             "features become int8 inputs by --input-scale (docs/data.md)")
SCALE_HELP = ("how float features (--data) become the int8 inputs, fitted on the training data "
              "and stored in the model: std = (f - mean) * 127 / (3 std) (default), minmax = "
              "[min, max] -> [-127, 127], absmax = f * 127 / max|f|, or a number s: rint(f * s); "
              "all clamped to [-127, 127] (docs/data.md)")


def file_data_args(p):
    """--data, --test-data, --label, --input-scale (flipnet.data, docs/data.md)."""
    p.add_argument("--data", metavar="PATH", help=DATA_HELP)
    p.add_argument("--test-data", metavar="PATH",
                   help="test samples for --data (default: its own test split, else 20%% of its "
                   "samples held out, chosen by --seed)")
    p.add_argument("--label", metavar="COLUMN",
                   help="CSV: the label column, by header name or index from 0 (default: the "
                   "last)")
    p.add_argument("--input-scale", metavar="METHOD", type=input_scale, help=SCALE_HELP)


def load_file_data(args, seed=0):
    """((x, y), (x_test, y_test)) of --data / --test-data (flipnet.data.load_split), each a
    flipnet.data.Labelled; --limit / --test-limit applied when the args have them."""
    from .. import data

    label = args.label
    if label is not None and label.lstrip("-").isdigit():
        label = int(label)
    train, test = data.load_split(args.data, args.test_data, label=label, seed=seed)
    limit, test_limit = getattr(args, "limit", None), getattr(args, "test_limit", None)
    if limit:
        train = data.Labelled(train.x[:limit], train.y[:limit], train.classes, train.source)
    if test_limit:
        test = data.Labelled(test.x[:test_limit], test.y[:test_limit], test.classes,
                             test.source)
    return train, test


def plot_arg(p):
    """--plot PATH.png (flipnet.plots)."""
    p.add_argument("--plot", metavar="PATH.png",
                   help="draw the training curve (running and validation accuracy, weights "
                   "changed per layer, over the samples) into this PNG; needs matplotlib: pip "
                   "install \"flipnet[plot]\"")


def check_plot(args):
    """Fail before training when --plot is given and matplotlib is missing."""
    if getattr(args, "plot", None):
        from ..plots import pyplot

        pyplot()


def input_scale(text):
    """An argparse type: an input scale method (flipnet.inputs.make_scale)."""
    from ..inputs import make_scale

    try:
        return make_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---- option types ------------------------------------------------------------------------------
def _number(convert, ok, expected, out_of_range=None):
    """An argparse type: ``convert(text)`` that ``ok`` accepts. Messages: "expected
    <expected>, got <text>", or ``out_of_range`` % {"text": text, "value": value}."""
    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected %s, got %r" % (expected, text)) from None
        if not ok(v):
            raise argparse.ArgumentTypeError(
                (out_of_range or "expected %s, got %%(text)r" % expected)
                % {"text": text, "value": v})
        return v
    return parse


prob = _number(float, lambda v: 0.0 <= v <= 1.0, "a probability",
               "a probability must be in [0, 1], got %(value)r")
nonneg_float = _number(float, lambda v: 0.0 <= v < float("inf"), "a number >= 0",
                       "expected a finite number >= 0, got %(text)r")
positive = _number(int, lambda v: v >= 1, "a positive integer")
nonneg = _number(int, lambda v: v >= 0, "an integer >= 0")


def int_range(lo, hi):
    """An argparse type: an integer in [lo, hi]."""
    return _number(int, lambda v: lo <= v <= hi, "an integer in [%d, %d]" % (lo, hi))


def k_frac(text):
    """k as a fraction of each layer's weights: one, or one per layer comma-separated."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected a fraction or comma-separated fractions per layer, got %r" % text) from None
    for v in vals:
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError("k fractions must be in [0, 1], got %r" % v)
    return vals[0] if len(vals) == 1 else vals


#: --input's help (flipnet.inputs)
INPUT_HELP = ("input encoding, uint8 pixels to int8 inputs: centered = clamp(p-128, -127, 127), "
              "half = p >> 1 (one input per pixel), or [crop<C>-][pool<P>][-centered], which "
              "reduces the S x S image: its central C x C pixels, averaged in P x P blocks "
              "(P 2 or 4; q = floor mean), then q >> 1 (or clamp(q-128, -127, 127) with "
              "-centered); e.g. crop20-pool2: 100 inputs from 28 x 28 (--arch 100-...), "
              "crop24-pool2: 144, pool2: 196")


def input_encoding(text):
    """An argparse type: an input encoding (flipnet.inputs), as its canonical name."""
    from ..inputs import check_encoding

    try:
        return check_encoding(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
