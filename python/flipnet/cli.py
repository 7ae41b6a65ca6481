"""The ``flipnet`` command line.

    flipnet train [--dataset mnist] [--arch 784-256-256-10]
                  [--weights ternary|binary|fp32|hybrid] [--epochs N]
                  [--batch-size B] [--seed S] [--recipe default|paper|device|hybrid|fp32]
                  [--lr LR] [--lr-end LR] [--weight-decay WD] [--p0 P] [--p1 P]
                  [--k-frac F[,F...]] [--margin M] [--vote sign|weighted] [--filter hurt|net]
                  [--calib-target T] [--counter-shift C] [--counter-shift-end C1]
                  [--counter-threshold TAU] [--counter-decay R]
                  [--recalibrate-every EPOCHS] [--recalibrate-steps STEPS]
                  [--input centered|half]
                  [--out model.flip] [--data-dir DIR] [--json] [--report]
    flipnet eval MODEL [--dataset mnist] [--data-dir DIR] [--json]
    flipnet info MODEL [--json]
    flipnet export MODEL [--format c|npz|onnx] [-o OUT] [--name NAME] [--onnx-input uint8|int8]
                   [--json]
    flipnet device ... / flipnet demo ...      (added by flipnet.device.cli.register)

With ``--json`` the last line of stdout is one JSON object; progress always goes to stderr.
User errors (missing file, corrupt model, bad arch, data not found) print one line
``flipnet: error: ...`` to stderr and exit with status 1 (2 for bad usage), no traceback.

Subcommands registered by other modules set ``func`` with ``parser.set_defaults(func=f)``;
``f(args)`` returns the exit status (None = 0).
"""

import argparse
import json
import os
import sys
import time

from . import recipes as _recipes
from ._version import __version__
from .errors import FlipnetError, ShapeError

DATASET_CHOICES = ("mnist", "fashion_mnist")


def _err(msg):
    print(msg, file=sys.stderr)


def _emit_json(obj):
    sys.stdout.flush()
    print(json.dumps(obj, sort_keys=True, default=_json_default))
    sys.stdout.flush()


def _json_default(o):
    """NumPy scalars and arrays as plain JSON; bytes (e.g. a pulled model) as their length."""
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, bytes):
        return len(o)
    raise TypeError("%s is not JSON serializable" % type(o).__name__)


def _k_frac(text):
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected a fraction or comma-separated fractions per layer, got %r" % text) from None
    for v in vals:
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError("k fractions must be in [0, 1], got %r" % v)
    return vals[0] if len(vals) == 1 else vals


def _prob(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a probability, got %r" % text) from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("a probability must be in [0, 1], got %r" % v)
    return v


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number >= 0, got %r" % text) from None
    if not (v >= 0.0 and v < float("inf")):
        raise argparse.ArgumentTypeError("expected a finite number >= 0, got %r" % text)
    return v


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text) from None
    if v < 1:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    return v


def _nonneg(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an integer >= 0, got %r" % text) from None
    if v < 0:
        raise argparse.ArgumentTypeError("expected an integer >= 0, got %r" % text)
    return v


def _int_range(lo, hi):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected an integer in [%d, %d], got %r"
                                             % (lo, hi, text)) from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError("expected an integer in [%d, %d], got %r"
                                             % (lo, hi, text))
        return v
    return parse


def _load_data(name, data_dir, limit=None, test_limit=None):
    from . import datasets

    (x, y), (xt, yt) = datasets.load(name, path=data_dir)
    if limit:
        x, y = x[:limit], y[:limit]
    if test_limit:
        xt, yt = xt[:test_limit], yt[:test_limit]
    return (x, y), (xt, yt)


# ---- train -----------------------------------------------------------------------------------
def cmd_train(args):
    from .model import Model, kinds_name, load, parse_sizes
    from .schedule import Schedule

    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, p0=args.p0, p1=args.p1,
                     k_frac=args.k_frac, margin=args.margin, vote=args.vote,
                     filter=args.filter, recalibrate_every=args.recalibrate_every,
                     recalibrate_steps=args.recalibrate_steps, calib_target=args.calib_target,
                     counter_shift=args.counter_shift, counter_threshold=args.counter_threshold,
                     counter_shift_end=args.counter_shift_end, counter_decay=args.counter_decay,
                     input=args.input, lr=args.lr, weight_decay=args.weight_decay,
                     lr_end=args.lr_end)
    if args.resume:
        # continue a saved model: its recipe, with the options given here on top
        if args.arch or args.weights:
            raise ShapeError("--resume keeps the saved model's architecture; drop --arch/--weights")
        model = load(args.resume)
        recipe = _recipes.get(model.recipe, **overrides)
        model.recipe = recipe
        model._set_rule(recipe)
        weights = kinds_name(model.kinds)
        weights = weights if isinstance(weights, str) else ",".join(weights)
        sizes = model.sizes
        args.recipe = args.recipe or "resumed"
    else:
        # --weights hybrid / fp32 without --recipe: their own default recipe (flipnet.recipes)
        args.recipe = args.recipe or _recipes.default_for(args.weights)
        recipe = _recipes.get(args.recipe, arch=args.arch, weights=args.weights, **overrides)
        # check the architecture before spending time on data
        sizes = parse_sizes(recipe["arch"])
        weights = recipe["weights"]
        model = Model(sizes, weights, seed=args.seed, recipe=recipe)
    (x, y), (xt, yt) = _load_data(args.dataset, args.data_dir, args.limit, args.test_limit)
    per = int(x[0].size)
    if sizes[0] != per:
        raise ShapeError("the model takes %d inputs but %s samples have %d values "
                         "(use --arch %d-...)" % (sizes[0], args.dataset, per, per))
    n_classes = int(max(y.max(), yt.max())) + 1
    if sizes[-1] < n_classes:
        raise ShapeError("the model has %d classes but %s has %d"
                         % (sizes[-1], args.dataset, n_classes))
    model.meta["dataset"] = args.dataset
    if args.limit:
        model.meta["train_limit"] = args.limit
    verbose = 0 if args.quiet else 1
    if not args.quiet:
        _err("flipnet %s: training %s %s on %s (%d train / %d test samples), recipe %s"
             % (__version__, model.arch, weights, args.dataset, len(x), len(xt),
                args.recipe))
    t0 = time.perf_counter()
    history = model.fit(x, y, validation_data=(xt, yt) if not args.no_val else None,
                        schedule=Schedule.from_recipe(recipe), verbose=verbose)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    acc = model.evaluate(xt, yt)
    eval_seconds = time.perf_counter() - t1
    nbytes = model.save(args.out) if args.out else None
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
        "flipnet_version": __version__,
    }
    if args.report:
        from . import accounting

        rep = accounting.report(model, history, acc, test_samples=len(xt))
        result["report"] = rep
        _err(accounting.format_report(rep))
    if args.json:
        _emit_json(result)
    else:
        print("test accuracy %.4f after %d epochs (%d steps) in %.1f s, %.0f samples/s"
              % (acc, len(history), model.steps, seconds, result["samples_per_s"] or 0.0))
        if args.out:
            print("saved %s (%d bytes)" % (args.out, nbytes))
    return 0


# ---- eval / info -----------------------------------------------------------------------------
def cmd_eval(args):
    from .model import load

    model = load(args.model)
    dataset = args.dataset or model.meta.get("dataset") or "mnist"
    _, (xt, yt) = _load_data(dataset, args.data_dir, test_limit=args.limit)
    if int(xt[0].size) != model.n_inputs:
        raise ShapeError("%s takes %d inputs but %s samples have %d values"
                                 % (args.model, model.n_inputs, dataset, int(xt[0].size)))
    t0 = time.perf_counter()
    acc = model.evaluate(xt, yt)
    seconds = time.perf_counter() - t0
    result = {"command": "eval", "model": os.path.abspath(args.model), "dataset": dataset,
              "arch": model.arch, "n": int(len(xt)), "accuracy": acc, "seconds": seconds,
              "samples_per_s": len(xt) / seconds if seconds > 0 else None}
    if args.json:
        _emit_json(result)
    else:
        print("%s on %s test (%d samples): accuracy %.4f (%.0f samples/s)"
              % (args.model, dataset, len(xt), acc, result["samples_per_s"] or 0.0))
    return 0


def cmd_info(args):
    from .model import load

    model = load(args.model)
    mem = model.memory_report(model.recipe.get("batch_size", 64))
    training = model.training_log
    result = {
        "command": "info",
        "model": os.path.abspath(args.model),
        "bytes": os.path.getsize(args.model),
        "arch": model.arch,
        "sizes": model.sizes,
        "kinds": model.kinds,
        "seed": model.seed,
        "steps": model.steps,
        "samples": model.samples,
        "shifts": model.shifts,
        "rule": model.rule,
        "recipe": model.recipe,
        "epochs": model.epochs_trained,
        "seconds": sum(float(t.get("seconds") or 0.0) for t in training),
        "training": training,
        "weights": model.n_weights,
        "weight_bytes": mem["weight_bytes"],
        "bits_per_weight": mem["bits_per_weight"],
        "counter_bytes": mem["counter_bytes"],
        "counter_bits_per_weight": mem["counter_bits_per_weight"],
        "params": mem["params"],
        "fp32_params": mem["fp32_params"],
        "opt_bytes": mem["opt_bytes"],
        "float_output": model.float_output,
        "scratch_train_bytes": mem["scratch_train_bytes"],
        "scratch_infer_bytes": mem["scratch_infer_bytes"],
        "meta": model.meta,
    }
    if model.epoch_log:
        last = model.epoch_log[-1]
        result["train_accuracy"] = last.get("train_acc")
        result["val_accuracy"] = last.get("val_acc")
    if args.json:
        _emit_json(result)
    else:
        print("%s: flipnet model, %d bytes" % (args.model, result["bytes"]))
        print("  arch      %s (%s)" % (model.arch, ", ".join(model.kinds)))
        print("  weights   %d in %d bytes (%.3f bits/weight)"
              % (model.n_weights, mem["weight_bytes"], mem["bits_per_weight"]))
        if mem["counter_bytes"]:
            print("  counters  %d bytes (%.3f bits/weight of training state)"
                  % (mem["counter_bytes"], mem["counter_bits_per_weight"]))
        if mem["fp32_params"]:
            print("  fp32      %d parameters (W and bias) in %s; AdamW state %d bytes"
                  % (mem["fp32_params"], ", ".join("layer %d" % l for l, k in
                                                   enumerate(model.kinds) if k == "fp32"),
                     mem["opt_bytes"]))
        print("  rule      %s" % ", ".join("%s=%s" % kv for kv in model.rule.items()))
        print("  shifts    %s" % model.shifts)
        print("  trained   %d epochs, %d steps, %d samples, %.1f s"
              % (model.epochs_trained, model.steps, model.samples, result["seconds"]))
        for t in training:
            print("    %s: %s epochs, %s steps in %.1f s (flipnet %s)"
                  % (t.get("where"), t.get("epochs"), t.get("steps"),
                     float(t.get("seconds") or 0.0), t.get("flipnet_version")))
        if model.epoch_log:
            print("  last epoch train acc %s, val acc %s"
                  % (result.get("train_accuracy"), result.get("val_accuracy")))
    return 0


# ---- export ----------------------------------------------------------------------------------
def cmd_export(args):
    from . import export as _export
    from .errors import ArgumentError
    from .model import load

    fmt = args.format
    if fmt is None and args.out is None:
        raise ArgumentError("give --format (c, npz or onnx) or an output -o OUT ending in "
                            ".h / .npz / .onnx")
    if fmt is not None:
        fmt = _export.format_for(args.out or "", fmt)  # a bad format fails before the load
    out = args.out
    if out is None:
        out = os.path.splitext(args.model)[0] + _export.SUFFIX[fmt]
    model = load(args.model)
    info = _export.export(model, out, fmt, name=args.name, source=args.model,
                          input=args.onnx_input)
    result = {"command": "export", "model": os.path.abspath(args.model), "format": info["format"],
              "out": os.path.abspath(out), "bytes": info["bytes"], "arch": model.arch,
              "kinds": model.kinds, "input": model.input_encoding}
    if args.json:
        _emit_json(result)
    else:
        print("wrote %s (%s, %d bytes) from %s %s"
              % (out, {"c": "C header", "onnx": "ONNX"}.get(info["format"], info["format"]),
                 info["bytes"], model.arch,
                 ",".join(sorted(set(model.kinds)))))
    return 0


# ---- parser ----------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(
        prog="flipnet",
        description="Train, evaluate and inspect integer-only binary/ternary networks.")
    parser.add_argument("--version", action="version", version="flipnet " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    d = _recipes.DEFAULT
    t = sub.add_parser("train", help="train a model on a data set",
                       description="Train a model on MNIST or Fashion-MNIST. Recipe values "
                       "(flipnet.recipes) are used for every option not given.")
    t.add_argument("--dataset", choices=DATASET_CHOICES, default="mnist")
    t.add_argument("--arch", help="layer sizes, inputs to classes (recipe: %s)" % d["arch"])
    t.add_argument("--weights", choices=("ternary", "binary", "fp32", "hybrid"),
                   help="layer kinds: all ternary / binary / FP32 (AdamW), or hybrid = FP32 "
                   "first and last layer, ternary hidden layers (recipe: %s)" % d["weights"])
    t.add_argument("--recipe", choices=sorted(_recipes.RECIPES),
                   help="defaults for the options below (default: 'default', or 'hybrid' / "
                   "'fp32' with --weights hybrid / fp32)")
    t.add_argument("--epochs", type=_nonneg, help="(recipe: %d)" % d["epochs"])
    t.add_argument("--batch-size", type=_positive, help="(recipe: %d)" % d["batch_size"])
    t.add_argument("--seed", type=_nonneg, default=0)
    t.add_argument("--resume", metavar="MODEL",
                   help="continue training a saved model (its recipe, overridden by the options "
                   "given); --epochs more epochs")
    t.add_argument("--p0", type=_prob, help="first change probability (recipe: %s)" % d["p0"])
    t.add_argument("--p1", type=_prob, help="last change probability (recipe: %s)" % d["p1"])
    t.add_argument("--k-frac", type=_k_frac,
                   help="k as a fraction of each layer's weights, or one per layer "
                   "comma-separated (recipe: %s)" % d["k_frac"])
    t.add_argument("--margin", type=_nonneg, help="output error margin (recipe: %s)" % d["margin"])
    t.add_argument("--vote", choices=("sign", "weighted"), help="(recipe: %s)" % d["vote"])
    t.add_argument("--filter", choices=("hurt", "net"), help="(recipe: %s)" % d["filter"])
    t.add_argument("--recalibrate-every", type=_nonneg, metavar="EPOCHS",
                   help="recalibrate the shifts every N epochs, 0 = never (recipe: %s)"
                   % d["recalibrate_every"])
    t.add_argument("--recalibrate-steps", type=_nonneg, metavar="STEPS",
                   help="also recalibrate the shifts every N steps on the batch just trained, "
                   "0 = never (recipe: %s)" % d["recalibrate_steps"])
    t.add_argument("--calib-target", type=_int_range(1, 127), metavar="T",
                   help="calibration target mean |activation|, 1..127 (recipe: %s)"
                   % d["calib_target"])
    t.add_argument("--counter-shift", type=_int_range(0, 31), metavar="C",
                   help="hysteresis counters: H += round(vote / 2^C), 0..31 (recipe: %s)"
                   % d["counter_shift"])
    t.add_argument("--counter-shift-end", type=_int_range(0, 31), metavar="C1",
                   help="anneal the counters' shift from --counter-shift up to C1 over the run, "
                   "in equal parts (recipe: %s)" % d["counter_shift_end"])
    t.add_argument("--counter-threshold", type=_int_range(0, 127), metavar="TAU",
                   help="hysteresis counters: move a weight once |H| >= TAU, 1..127; 0 = off; "
                   "> 0 creates the model with counters (recipe: %s)" % d["counter_threshold"])
    t.add_argument("--counter-decay", type=_int_range(0, 7), metavar="R",
                   help="hysteresis counters: after each step's vote |H| -= |H| >> R, 1..7; "
                   "0 = off (recipe: %s; the hybrid recipe: %s)"
                   % (d["counter_decay"], _recipes.HYBRID["counter_decay"]))
    t.add_argument("--lr", type=_nonneg_float,
                   help="AdamW learning rate of the FP32 layers (recipe: %s)" % d["lr"])
    t.add_argument("--lr-end", type=_nonneg_float, metavar="LR",
                   help="decay the AdamW learning rate linearly to LR over the run (recipe: %s; "
                   "the hybrid and fp32 recipes: %s; equal to --lr: constant)"
                   % (d["lr_end"], _recipes.HYBRID["lr_end"]))
    t.add_argument("--weight-decay", type=_nonneg_float, metavar="WD",
                   help="AdamW weight decay of the FP32 layers (recipe: %s)" % d["weight_decay"])
    t.add_argument("--input", choices=("centered", "half"),
                   help="uint8 pixels to int8: centered = clamp(p-128, -127, 127), half = p >> 1 "
                   "(recipe: %s)" % d["input"])
    t.add_argument("--out", default="model.flip", help="model file to write (default: "
                   "%(default)s; '' to not save)")
    t.add_argument("--data-dir", help="directory holding the data set files")
    t.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    t.add_argument("--no-val", action="store_true", help="skip the per-epoch test evaluation")
    t.add_argument("--report", action="store_true",
                   help="print the run's accounting (updates, bits, operations, energy; the "
                   "paper's Table 1 shape) to stderr, and add it to --json as \"report\"")
    # for tests and quick experiments: train / test on the first N samples only
    t.add_argument("--limit", type=_positive, help=argparse.SUPPRESS)
    t.add_argument("--test-limit", type=_positive, help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="accuracy of a model file on a test set")
    e.add_argument("model")
    e.add_argument("--dataset", choices=DATASET_CHOICES,
                   help="default: the data set the model was trained on, else mnist")
    e.add_argument("--data-dir", help="directory holding the data set files")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    e.add_argument("--limit", type=_positive, help=argparse.SUPPRESS)
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="describe a model file")
    i.add_argument("model")
    i.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    i.set_defaults(func=cmd_info)

    x = sub.add_parser("export", help="export a model file as a C header, npz or ONNX",
                       description="Export a model: 'c' = a C header with the packed weights "
                       "as const data for an inference-only firmware, 'npz' = int8 weights per "
                       "layer (float32 weights and biases for FP32 layers), shifts and JSON "
                       "metadata (any model), 'onnx' = an ONNX graph (opset 17) "
                       "that ONNX Runtime runs with flipnet's exact integer semantics (needs "
                       "pip install \"flipnet[onnx]\"); c and onnx: ternary/binary layers only "
                       "(docs/export.md).")
    x.add_argument("model")
    x.add_argument("--format", "-f", metavar="FORMAT",
                   help="c, npz or onnx (default: from OUT's suffix, .h / .npz / .onnx)")
    x.add_argument("--out", "-o", metavar="OUT",
                   help="file to write (default: MODEL with the format's suffix)")
    x.add_argument("--name", help="C header: identifier prefix (default: OUT's file name)")
    x.add_argument("--onnx-input", choices=("uint8", "int8"), default=None,
                   help="ONNX: the graph's input, uint8 pixels encoded in the graph by the "
                   "model's input encoding (default) or int8 values already encoded")
    x.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    x.set_defaults(func=cmd_export)

    try:
        from .device import cli as device_cli
    except ImportError as exc:  # keep train/eval/info usable if the device tools are broken
        _err("flipnet: warning: device commands unavailable (%s)" % exc)
    else:
        device_cli.register(sub)
    return parser


def _one_line(exc):
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return "%s: %s" % (exc.filename, exc.strerror)
    text = str(exc) or exc.__class__.__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status = func(args)
    except KeyboardInterrupt:
        _err("flipnet: interrupted")
        return 130
    except (FlipnetError, OSError, ValueError) as exc:
        _err("flipnet: error: %s" % _one_line(exc))
        return 1
    return 0 if status is None else int(status)


if __name__ == "__main__":  # python -m flipnet.cli
    sys.exit(main())
