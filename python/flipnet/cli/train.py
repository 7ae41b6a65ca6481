"""``flipnet train``: train a model on a data set, save it, report."""

import argparse
import os
import time

from .. import threads as flipnet_threads
from .. import recipes as _recipes
from .._version import __version__
from ..errors import ShapeError
from ..arch import MODEL_KINDS
from ..rule import COUNTER_BITS, FILTERS, RANGES, ROUNDINGS, VOTES
from ._common import (DATASET_CHOICES, INPUT_HELP, check_plot, emit_json, err,
                      file_data_args, input_encoding, int_range, k_frac, load_data,
                      load_file_data, nonneg, nonneg_float, plot_arg, positive, prob)

__all__ = ["register", "cmd_train"]


def _counter_bits(text):
    """--counter-bits: one width for every layer, or a comma list (one per layer)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or any(v not in COUNTER_BITS for v in values):
        raise argparse.ArgumentTypeError(
            "expected %s, or a comma list of them (one per layer), got %r"
            % ("/".join(map(str, COUNTER_BITS)), text))
    return values[0] if len(values) == 1 else values


def _rule_range(key):
    return int_range(*RANGES[key])  # the rule's own range of the option (flipnet.rule)


def register(sub):
    """Add ``train`` to the ``flipnet`` parser's subcommands ``sub``."""
    d = _recipes.DEFAULT
    t = sub.add_parser("train", help="train a model on a data set",
                       description="Train a model on MNIST, Fashion-MNIST or your own samples "
                       "(--data: .npz, .csv, IDX files). Recipe values (flipnet.recipes) are "
                       "used for every option not given.")
    t.add_argument("--dataset", choices=DATASET_CHOICES, default="mnist")
    t.add_argument("--arch", help="layer sizes, inputs to classes (recipe: %s)" % d["arch"])
    t.add_argument("--weights", choices=MODEL_KINDS,
                   help="layer kinds: all ternary / binary / FP32 (AdamW), or hybrid = FP32 "
                   "first and last layer, ternary hidden layers (recipe: %s)" % d["weights"])
    t.add_argument("--recipe", choices=sorted(_recipes.RECIPES),
                   help="defaults for the options below (default: 'default', or 'hybrid' / "
                   "'fp32' with --weights hybrid / fp32)")
    t.add_argument("--epochs", type=nonneg, help="(recipe: %d)" % d["epochs"])
    t.add_argument("--batch-size", type=positive, help="(recipe: %d)" % d["batch_size"])
    t.add_argument("--seed", type=nonneg, default=0)
    t.add_argument("--threads", type=positive, default=None,
                   help="threads for training and evaluation (default: FLIPNET_THREADS, else the "
                        "machine's cores); the trained model is the same for any number")
    t.add_argument("--resume", metavar="MODEL",
                   help="continue training a saved model (its recipe, overridden by the options "
                   "given); --epochs more epochs")
    t.add_argument("--p0", type=prob, help="first change probability (recipe: %s)" % d["p0"])
    t.add_argument("--p1", type=prob, help="last change probability (recipe: %s)" % d["p1"])
    t.add_argument("--k-frac", type=k_frac,
                   help="k as a fraction of each layer's weights, or one per layer "
                   "comma-separated (recipe: %s)" % d["k_frac"])
    t.add_argument("--margin", type=nonneg, help="output error margin (recipe: %s)" % d["margin"])
    t.add_argument("--vote", choices=tuple(VOTES), help="(recipe: %s)" % d["vote"])
    t.add_argument("--filter", choices=tuple(FILTERS), help="(recipe: %s)" % d["filter"])
    t.add_argument("--recalibrate-every", type=nonneg, metavar="EPOCHS",
                   help="recalibrate the shifts every N epochs, 0 = never (recipe: %s)"
                   % d["recalibrate_every"])
    t.add_argument("--recalibrate-steps", type=nonneg, metavar="STEPS",
                   help="also recalibrate the shifts every N steps on the batch just trained, "
                   "0 = never (recipe: %s)" % d["recalibrate_steps"])
    t.add_argument("--recalibrate-from", type=int, choices=(0, 1), metavar="{0,1}",
                   help="recalibrations set every hidden layer's shift (0) or keep the first "
                   "layer's from its first calibration (1) (recipe: %s)" % d["recalibrate_from"])
    t.add_argument("--calib-target", type=_rule_range("calib_target"), metavar="T",
                   help="calibration target mean |activation|, 1..127 (recipe: %s)"
                   % d["calib_target"])
    t.add_argument("--counter-shift", type=_rule_range("counter_shift"), metavar="C",
                   help="hysteresis counters: H += round(vote / 2^C), 0..31 (recipe: %s)"
                   % d["counter_shift"])
    t.add_argument("--counter-shift-end", type=_rule_range("counter_shift"), metavar="C1",
                   help="anneal the counters' shift from --counter-shift up to C1 over the run, "
                   "in equal parts (recipe: %s)" % d["counter_shift_end"])
    t.add_argument("--counter-threshold", type=_rule_range("counter_threshold"), metavar="TAU",
                   help="hysteresis counters: move a weight once |H| >= TAU, 1..127; 0 = off; "
                   "> 0 creates the model with counters (recipe: %s)" % d["counter_threshold"])
    t.add_argument("--counter-decay", type=_rule_range("counter_decay"), metavar="R",
                   help="hysteresis counters: after each step's vote |H| -= |H| >> R, 1..7; "
                   "0 = off (recipe: %s; the hybrid recipe: %s)"
                   % (d["counter_decay"], _recipes.HYBRID["counter_decay"]))
    t.add_argument("--counter-round", choices=sorted(ROUNDINGS),
                   help="hysteresis counters: round vote / 2^C to nearest, or stochastically "
                   "(down or up with the probability of the rest; docs/rule.md 7.2) (recipe: %s)"
                   % d["counter_round"])
    t.add_argument("--counter-bits", type=_counter_bits, metavar="B",
                   help="bits per hysteresis counter, %s (or a comma list, one per layer): "
                   "narrower counters take less memory (recipe: %s)"
                   % ("/".join(map(str, COUNTER_BITS)), d["counter_bits"]))
    t.add_argument("--lr", type=nonneg_float,
                   help="AdamW learning rate of the FP32 layers (recipe: %s)" % d["lr"])
    t.add_argument("--lr-end", type=nonneg_float, metavar="LR",
                   help="decay the AdamW learning rate linearly to LR over the run (recipe: %s; "
                   "the hybrid and fp32 recipes: %s; equal to --lr: constant)"
                   % (d["lr_end"], _recipes.HYBRID["lr_end"]))
    t.add_argument("--weight-decay", type=nonneg_float, metavar="WD",
                   help="AdamW weight decay of the FP32 layers (recipe: %s)" % d["weight_decay"])
    t.add_argument("--input", type=input_encoding, metavar="ENCODING",
                   help="%s (recipe: %s)" % (INPUT_HELP, d["input"]))
    t.add_argument("--out", default="model.flip", help="model file to write (default: "
                   "%(default)s; '' to not save)")
    t.add_argument("--data-dir", help="directory holding the data set files")
    file_data_args(t)
    plot_arg(t)
    t.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    t.add_argument("--no-val", action="store_true", help="skip the per-epoch test evaluation")
    t.add_argument("--report", action="store_true",
                   help="print the run's accounting (updates, bits, operations, energy; the "
                   "paper's Table 1 shape) to stderr, and add it to --json as \"report\"")
    # for tests and quick experiments: train / test on the first N samples only
    t.add_argument("--limit", type=positive, help=argparse.SUPPRESS)
    t.add_argument("--test-limit", type=positive, help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_train)
    return t


def _check_arch_input(sizes, encoding):
    """ShapeError naming --arch when a crop encoding's width is not the first layer's."""
    from ..inputs import parse_encoding

    enc = parse_encoding(encoding)
    if enc.crop and enc.n_inputs() != sizes[0]:
        raise ShapeError("--arch %s takes %d inputs, but input encoding %r gives %d (%s): use "
                         "--arch %d-..." % ("-".join(map(str, sizes)), sizes[0], enc.name,
                                            enc.n_inputs(), enc.what(), enc.n_inputs()))


def _check_input_width(model, x, dataset):
    """ShapeError unless the model's input layer is as wide as its input encoding makes the
    data set's samples (784 pixels, or 100 for crop20-pool2 on 28 x 28 images)."""
    from ..inputs import parse_encoding

    enc = parse_encoding(model.input_encoding)
    per = int(x[0].size)
    if not enc.reduces:
        if model.n_inputs != per:
            raise ShapeError("the model takes %d inputs but %s samples have %d values "
                             "(use --arch %d-...)" % (model.n_inputs, dataset, per, per))
        return
    side = int(x.shape[1]) if x.ndim == 3 and x.shape[1] == x.shape[2] else None
    if side is None:
        raise ShapeError("input encoding %r reduces square images; %s samples have shape %s"
                         % (enc.name, dataset, x.shape[1:]))
    enc.check_side(side, "%s's images" % dataset)
    want = enc.n_inputs(side)
    if model.n_inputs != want:
        raise ShapeError("the model takes %d inputs but input encoding %r makes %d from %s's "
                         "%d x %d images (use --arch %d-...)"
                         % (model.n_inputs, enc.name, want, dataset, side, side, want))
    if model.image_side not in (None, side):
        raise ShapeError("the model was trained on %d x %d images; %s's are %d x %d"
                         % (model.image_side, model.image_side, dataset, side, side))


def _data_width(x, encoding):
    """Inputs the samples ``x`` give under input encoding ``encoding``."""
    from ..inputs import image_side, parse_encoding

    enc = parse_encoding(encoding)
    if enc.reduces and x.dtype.kind == "u":
        return enc.n_inputs(image_side(x, encoding))
    return int(x[0].size)


def _classes(files):
    """Classes of the --data samples (training and test labels)."""
    (x, y), (xt, yt) = files
    return max(len(files[0].classes or ()), int(max(y.max(), yt.max())) + 1)


def _set_input_scale(model, x, method):
    """--input-scale on ``model`` for the --data samples ``x``: float features only."""
    from ..inputs import is_float

    if method is None:
        return
    if not is_float(x):
        raise ShapeError("--input-scale is for float features; these samples are %s (their "
                         "encoding is --input)" % x.dtype)
    model.input_scale = method


def _scale_dict(model):
    from ..inputs import FeatureScale

    scale = model.input_scale
    return scale.to_dict() if isinstance(scale, FeatureScale) else None


def cmd_train(args):
    from ..arch import kinds_name, parse_sizes
    from ..model import Model, load
    from ..schedule import Schedule

    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, p0=args.p0, p1=args.p1,
                     k_frac=args.k_frac, margin=args.margin, vote=args.vote,
                     filter=args.filter, recalibrate_every=args.recalibrate_every,
                     recalibrate_steps=args.recalibrate_steps, calib_target=args.calib_target,
                     recalibrate_from=args.recalibrate_from,
                     counter_shift=args.counter_shift, counter_threshold=args.counter_threshold,
                     counter_shift_end=args.counter_shift_end, counter_decay=args.counter_decay,
                     counter_round=args.counter_round, counter_bits=args.counter_bits,
                     input=args.input, lr=args.lr, weight_decay=args.weight_decay,
                     lr_end=args.lr_end)
    check_plot(args)
    files = load_file_data(args, args.seed) if args.data else None
    if files is not None:
        args.dataset = os.path.basename(os.path.normpath(args.data))
    if args.resume:
        # continue a saved model: its recipe, with the options given here on top
        if args.arch or args.weights or args.counter_bits:
            raise ShapeError("--resume keeps the saved model's architecture; drop "
                             "--arch/--weights/--counter-bits")
        model = load(args.resume)
        recipe = _recipes.get(model.recipe, **overrides)
        model.recipe = recipe
        model.set_rule(recipe)
        weights = kinds_name(model.kinds)
        weights = weights if isinstance(weights, str) else ",".join(weights)
        sizes = model.sizes
        args.recipe = args.recipe or "resumed"
    else:
        # --weights hybrid / fp32 without --recipe: their own default recipe (flipnet.recipes)
        args.recipe = args.recipe or _recipes.default_for(args.weights)
        recipe = _recipes.get(args.recipe, arch=args.arch, weights=args.weights, **overrides)
        if files is not None and not args.arch:  # the recipe's hidden layers for this data
            hidden = parse_sizes(recipe["arch"])[1:-1]
            recipe["arch"] = "-".join(map(str, [_data_width(files[0].x, recipe["input"])]
                                          + hidden + [_classes(files)]))
        # check the architecture before spending time on data
        sizes = parse_sizes(recipe["arch"])
        weights = recipe["weights"]
        _check_arch_input(sizes, recipe["input"])
        model = Model(sizes, weights, seed=args.seed, recipe=recipe)
    if files is not None:
        (x, y), (xt, yt) = files
        _set_input_scale(model, x, args.input_scale)
        if files[0].classes:
            model.meta["classes"] = files[0].classes
    else:
        if args.input_scale is not None:
            raise ShapeError("--input-scale is for float features given with --data")
        (x, y), (xt, yt) = load_data(args.dataset, args.data_dir, args.limit, args.test_limit)
    _check_input_width(model, x, args.dataset)
    n_classes = int(max(y.max(), yt.max())) + 1
    if sizes[-1] < n_classes:
        raise ShapeError("the model has %d classes but %s has %d"
                         % (sizes[-1], args.dataset, n_classes))
    model.meta["dataset"] = args.dataset
    if args.limit:
        model.meta["train_limit"] = args.limit
    verbose = 0 if args.quiet else 1
    if not args.quiet:
        err("flipnet %s: training %s %s on %s (%d train / %d test samples), recipe %s"
             % (__version__, model.arch, weights, args.dataset, len(x), len(xt),
                args.recipe))
    t0 = time.perf_counter()
    history = model.fit(x, y, validation_data=(xt, yt) if not args.no_val else None,
                        schedule=Schedule.from_recipe(recipe), verbose=verbose,
                        threads=args.threads)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    acc = model.evaluate(xt, yt, threads=args.threads)
    eval_seconds = time.perf_counter() - t1
    nbytes = model.save(args.out) if args.out else None
    if args.plot:
        from .. import plots

        plots.plot(history, args.plot, title="%s %s on %s" % (model.arch, weights,
                                                             args.dataset))
    mem = model.memory_report(recipe["batch_size"])
    train_samples = sum(e["samples"] for e in history)
    train_seconds = sum(e["seconds"] for e in history)
    result = {
        "command": "train",
        "dataset": args.dataset,
        "arch": model.arch,
        "weights": weights,
        "recipe": args.recipe,
        "resumed_from": os.path.abspath(args.resume) if args.resume else None,
        "seed": model.seed,
        "epochs": len(history),
        "batch_size": recipe["batch_size"],
        "steps": model.steps,
        "n_train": int(len(x)),
        "n_test": int(len(xt)),
        "accuracy": acc,
        "train_accuracy": history[-1]["train_acc"] if len(history) else None,
        "seconds": seconds,
        "threads": flipnet_threads.resolve(args.threads), "kernels": flipnet_threads.kernels(),
        "train_seconds": train_seconds,
        "samples_per_s": train_samples / train_seconds if train_seconds > 0 else None,
        "eval_seconds": eval_seconds,
        "out": os.path.abspath(args.out) if args.out else None,
        "bytes": nbytes,
        "weight_bytes": mem["weight_bytes"],
        "bits_per_weight": mem["bits_per_weight"],
        "counter_bytes": mem["counter_bytes"],
        "kinds": model.kinds,
        "fp32_params": mem["fp32_params"],
        "opt_bytes": mem["opt_bytes"],
        "scratch_train_bytes": mem["scratch_train_bytes"],
        "history": history.to_list(),
        "data": os.path.abspath(args.data) if args.data else None,
        "input_scale": _scale_dict(model),
        "plot": os.path.abspath(args.plot) if args.plot else None,
        "flipnet_version": __version__,
    }
    if args.report:
        from .. import accounting

        rep = accounting.report(model, history, acc, test_samples=len(xt))
        result["report"] = rep
        err(accounting.format_report(rep))
    if args.json:
        emit_json(result)
    else:
        print("test accuracy %.4f after %d epochs (%d steps) in %.1f s, %.0f samples/s"
              % (acc, len(history), model.steps, seconds, result["samples_per_s"] or 0.0))
        if args.out:
            print("saved %s (%d bytes)" % (args.out, nbytes))
    return 0
