"""``flipnet eval``, ``flipnet info``, ``flipnet plot`` and ``flipnet export``: what to do with a
model file."""

import argparse
import os
import time

from ..errors import ArgumentError, ShapeError
from ._common import DATASET_CHOICES, emit_json, load_data, positive
from ._vocab import canonical

__all__ = ["register", "cmd_eval", "cmd_info", "cmd_export", "cmd_plot"]


def register(sub):
    """Add ``eval``, ``info`` and ``export`` to the ``flipnet`` parser's subcommands ``sub``."""
    e = sub.add_parser("eval", help="accuracy of a model file on a test set")
    e.add_argument("model")
    e.add_argument("--dataset", choices=DATASET_CHOICES,
                   help="default: the data set the model was trained on, else mnist")
    e.add_argument("--data-dir", help="directory holding the data set files")
    e.add_argument("--data", metavar="PATH",
                   help="test samples from a file instead of --dataset: an .npz (x_test, y_test, "
                   "else x, y), a .csv (features and a label column) or a directory of IDX "
                   "files (t10k-...); float features go through the model's stored input scale")
    e.add_argument("--label", metavar="COLUMN",
                   help="CSV: the label column, by header name or index (default: the last)")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    e.add_argument("--limit", type=positive, help=argparse.SUPPRESS)
    e.set_defaults(func=cmd_eval)

    pl = sub.add_parser("plot", help="draw a model file's training curve into a PNG",
                        description="Draw the training curve a model file keeps (running and "
                        "validation accuracy, weights changed per layer, over the samples of "
                        "every training session, host and device) into a PNG. Needs matplotlib: "
                        "pip install \"flipnet[plot]\".")
    pl.add_argument("model")
    pl.add_argument("--out", "-o", metavar="PATH.png",
                    help="the PNG to write (default: MODEL with .png)")
    pl.set_defaults(func=cmd_plot)

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


def cmd_eval(args):
    from ..model import load

    model = load(args.model)
    if args.data:
        from .. import data

        label = int(args.label) if args.label and args.label.lstrip("-").isdigit() \
            else args.label
        split = "test" if data.has_split(args.data, "test") else "train"
        xt, yt = data.load(args.data, label, split=split, classes=model.meta.get("classes"))
        if args.limit:
            xt, yt = xt[:args.limit], yt[:args.limit]
        dataset = os.path.basename(os.path.normpath(args.data))
    else:
        dataset = args.dataset or model.meta.get("dataset") or "mnist"
        _, (xt, yt) = load_data(dataset, args.data_dir, test_limit=args.limit)
    try:
        model.predict(xt[:1])  # the data set's images fit the model's input (encoding)
    except ValueError as exc:
        raise ShapeError("%s cannot read %s's test samples: %s" % (args.model, dataset, exc)) \
            from None
    t0 = time.perf_counter()
    acc = model.evaluate(xt, yt)
    seconds = time.perf_counter() - t0
    result = {"command": "eval", "model": os.path.abspath(args.model), "dataset": dataset,
              "arch": model.arch, "n_test": int(len(xt)), "accuracy": acc,
              "seconds": seconds, "samples_per_s": len(xt) / seconds if seconds > 0 else None}
    result = canonical(result, ("n",))
    if args.json:
        emit_json(result)
    else:
        print("%s on %s test (%d samples): accuracy %.4f (%.0f samples/s)"
              % (args.model, dataset, len(xt), acc, result["samples_per_s"] or 0.0))
    return 0


def cmd_plot(args):
    from .. import plots
    from ..model import load

    model = load(args.model)
    out = args.out or os.path.splitext(args.model)[0] + ".png"
    plots.plot(model, out, title="%s (%s)" % (os.path.basename(args.model), model.arch))
    print("wrote %s" % out)
    return 0


def cmd_info(args):
    from ..model import load

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
        "input": model.input_encoding,
        "input_scale": (model.input_scale.to_dict()
                        if hasattr(model.input_scale, "to_dict") else None),
        "image_side": model.image_side,
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
        emit_json(result)
    else:
        print("%s: flipnet model, %d bytes" % (args.model, result["bytes"]))
        print("  arch      %s (%s)" % (model.arch, ", ".join(model.kinds)))
        if result["input_scale"]:
            print("  features  %s" % model.input_scale.describe())
        print("  input     %s%s" % (model.input_encoding, " (from %d x %d images)"
                                    % (model.image_side, model.image_side)
                                    if model.image_side else ""))
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


def cmd_export(args):
    from .. import export as _export
    from ..model import load

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
        emit_json(result)
    else:
        print("wrote %s (%s, %d bytes) from %s %s"
              % (out, {"c": "C header", "onnx": "ONNX"}.get(info["format"], info["format"]),
                 info["bytes"], model.arch,
                 ",".join(sorted(set(model.kinds)))))
    return 0
