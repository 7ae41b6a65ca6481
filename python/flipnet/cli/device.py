"""``flipnet device ...`` and ``flipnet demo``.

    flipnet device info    --port URL [--json]
    flipnet device train   --port URL [--dataset mnist | --data PATH [--test-data PATH]
                           [--label COLUMN] [--input-scale METHOD]]
                           [--arch 784-128-10] [--weights ternary]
                           [--limit N] [--skip N] [--epochs E] [--batch B] [--bits 8|4|2|1]
                           [--input ENCODING] [--seed S] [--recipe device|default|paper]
                           [--p0 P] [--p1 P]
                           [--k-frac F] [--margin M] [--out model.flip] [--pull-every N]
                           [--resume FILE] [--init MODEL | --continue]
                           [--checkpoint-every N] [--json]
    flipnet device eval    --port URL [--model FILE] [--dataset mnist] [--limit N]
                           [--input ENCODING] [--json]
    flipnet device predict --port URL [--dataset mnist] [--limit N] [--input ENCODING] [--json]
    flipnet device pull    --port URL [--out model.flip] [--base MODEL]
    flipnet device load    --port URL MODEL [--batch B]
    flipnet device stats   --port URL [--json]
    flipnet device reset   --port URL
    flipnet device save    --port URL [--every N] [--wipe]   (checkpoint in the device's flash)
    flipnet device restore --port URL                        (the newest checkpoint, live)
    flipnet device selftest --port URL [--frames N]   (replaces the device's model)
    flipnet device sim     [--board host|mps2-an386|mps2-an385|mps2-an500] [--link PATH]
                           [--flash FILE]
    flipnet demo           [--board mps2-an386] [--twin] [--limit N] [--epochs E] [--bits B]

``--port`` takes anything pyserial opens: /dev/ttyACM0, COM3, socket://127.0.0.1:4444, a
pty path such as the one ``flipnet device sim`` prints.
"""

import os
import sys
import time

from ._common import DATASET_CHOICES as DATASETS
from ._common import (INPUT_HELP, check_plot, emit_json, err, file_data_args, input_encoding,
                      load_data, load_file_data, plot_arg)
from ._vocab import canonical

__all__ = ["register"]


def _open(args):
    from ..device.client import Device

    return Device(args.port, baudrate=args.baud, timeout=args.timeout, retries=args.retries)


def _port_args(p, required=True):
    p.add_argument("--port", required=required,
                   help="serial port or URL: /dev/ttyACM0, COM3, socket://HOST:PORT, a pty path")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default %(default)s)")
    p.add_argument("--timeout", type=float, default=3.0,
                   help="seconds to wait for a reply before retransmitting (default %(default)s)")
    p.add_argument("--retries", type=int, default=10,
                   help="retransmissions before giving up (default %(default)s)")


def _command(sub, name, help, func):
    """A device subcommand ``name`` that talks to a device on --port; runs ``func(args)``."""
    p = sub.add_parser(name, help=help)
    _port_args(p)
    p.set_defaults(func=func)
    return p


def _data_args(p):
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--data-dir", help="directory holding the data set files")
    p.add_argument("--limit", type=int, help="use only the first N samples")


def _infer_args(p):
    p.add_argument("--bits", type=int, choices=(1, 2, 4, 8), default=8)
    p.add_argument("--input", type=input_encoding, metavar="ENCODING",
                   help="input encoding the device's model was trained with, e.g. half or "
                        "crop20-pool2 (default: --model's, else the inference firmware's "
                        "model's, else centered)")
    p.add_argument("--json", action="store_true")


def _load(args):
    """The data set of ``args`` (downloaded if missing, unless --data-dir names a place)."""
    return load_data(args.dataset, args.data_dir, download=args.data_dir is None)


def _train_args(p, limit_default):
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--data-dir", help="directory holding the data set files")
    file_data_args(p)
    plot_arg(p)
    p.add_argument("--limit", type=int,
                   help="train on the first N training samples (default %d of --dataset, all "
                   "of --data; 0 = all)" % limit_default)
    p.set_defaults(dataset_limit=limit_default)
    p.add_argument("--skip", type=int, default=0,
                   help="start at training sample N (with --limit: samples N .. N+limit-1)")
    p.add_argument("--test-limit", type=int,
                   help="evaluate on the first N test samples on the host (default 10000 of "
                   "--dataset, all of --data)")
    p.add_argument("--arch", help="layer sizes of a fresh model (default: the recipe's input "
                   "width, e.g. 100 for crop20-pool2, then the widest hidden layer that trains "
                   "in the device's RAM at --batch, then the classes)")
    p.add_argument("--weights", choices=("ternary", "binary"),
                   help="weights of a fresh model (default ternary)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=8,
                   help="samples per TRAIN frame (default %(default)s; bounded by device RAM)")
    p.add_argument("--bits", type=int, choices=(1, 2, 4, 8), default=8,
                   help="bits per input value on the link (default %(default)s)")
    p.add_argument("--input", type=input_encoding, metavar="ENCODING",
                   help="%s. The host encodes, the device gets the int8 samples (default: the "
                        "recipe's; a continued model's own)" % INPUT_HELP)
    p.add_argument("--seed", type=int, help="seed of a fresh model (default 1)")
    p.add_argument("--recipe", help="device (default for a fresh model of device train), demo "
                   "(flipnet demo's: one pass over a short stream), paper or default "
                   "(flipnet.recipes); a continued model's default is its own recipe, whose "
                   "rule it keeps")
    p.add_argument("--p0", type=float, help="change probability at the first step")
    p.add_argument("--p1", type=float, help="change probability at the last step")
    p.add_argument("--k-frac", type=float, help="k as a fraction of each layer's weights")
    p.add_argument("--margin", type=int, help="output error margin")
    p.add_argument("--out", default="device.flip", help="model file (default %(default)s)")
    p.add_argument("--pull-every", type=int, default=200,
                   help="also pull the model to --out every N steps (default %(default)s; 0 = "
                        "only at the end)")
    p.add_argument("--resume", metavar="FILE",
                   help="continue an interrupted run from the model file it pulled (same "
                        "data, seed, batch, epochs, schedule): bit-identical to an "
                        "uninterrupted run")
    p.add_argument("--init", metavar="MODEL",
                   help="load this model file onto the device and continue training it "
                        "(e.g. pre-trained on the host) instead of configuring a fresh one")
    p.add_argument("--continue", dest="cont", action="store_true",
                   help="continue training the model the device holds (after `flipnet device "
                        "load`) instead of configuring a fresh one")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="the device saves a checkpoint in its flash at the start and every N "
                        "steps; when it resets or the link drops, reconnect, read where its "
                        "checkpoint left off and resend from there (bit-identical result; "
                        "docs/protocol.md section 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def register(subparsers):
    """Add ``device`` (with its subcommands) and ``demo`` to the ``flipnet`` parser."""
    dev = subparsers.add_parser("device", help="train on a microcontroller (or its twin) over "
                                "a serial link")
    sub = dev.add_subparsers(dest="device_cmd", metavar="COMMAND")

    p = _command(sub, "info", "what the device is and has (board, RAM, protocol)", cmd_info)
    p.add_argument("--json", action="store_true")

    p = _command(sub, "train", "stream a data set to the device, train, pull the model", cmd_train)
    _train_args(p, limit_default=10000)

    p = _command(sub, "eval", "accuracy of the device's model, computed on the device", cmd_eval)
    _data_args(p)
    p.add_argument("--model", help="load this model file onto the device first")
    _infer_args(p)

    p = _command(sub, "predict", "classes predicted by the device for test samples", cmd_predict)
    _data_args(p)
    _infer_args(p)

    p = _command(sub, "pull", "copy the device's model into a model file", cmd_pull)
    p.add_argument("--out", default="device.flip")
    p.add_argument("--base", metavar="MODEL",
                   help="the model file the device's model was loaded from: its history goes "
                        "into the pulled file (default: found by itself when this machine "
                        "loaded it with `flipnet device load`)")

    p = _command(sub, "load", "send a model file to the device", cmd_load)
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=8, help="largest batch to size RAM for")

    p = _command(sub, "stats", "training counters and RAM high-water mark", cmd_stats)
    p.add_argument("--json", action="store_true")

    _command(sub, "reset", "forget the device's model and counters", cmd_reset)

    p = _command(sub, "save", "write a checkpoint of the device's model to its flash",
                 cmd_save)
    p.add_argument("--every", type=int, metavar="N",
                   help="also save every N training steps from now on (0: on demand only)")
    p.add_argument("--wipe", action="store_true",
                   help="erase every checkpoint instead (the live model stays)")

    _command(sub, "restore", "make the newest checkpoint in the device's flash its live "
             "model (what a reset does at boot)", cmd_restore)

    p = _command(sub, "selftest", "check the device's handling of damaged and invalid input "
                 "(replaces its model)", cmd_selftest)
    p.add_argument("--frames", type=int, default=200, help="random frames to send afterwards")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("sim", help="run a device without hardware: the host twin on a "
                       "pseudo-terminal, or the firmware under QEMU; prints its port")
    p.add_argument("--board", default="host",
                   help="host (the twin, default) or a QEMU board: mps2-an386, mps2-an385, "
                        "mps2-an500")
    p.add_argument("--link", help="host twin: also create this symlink to the pty")
    p.add_argument("--flash", metavar="FILE",
                   help="keep the device's checkpoints in FILE (host twin: its flash; QEMU: "
                        "a semihosting file), so that a restarted device resumes")
    p.add_argument("--elf", help="QEMU: firmware image (default: the built one)")
    p.set_defaults(func=cmd_sim)

    dev.set_defaults(func=lambda args: (dev.print_help(sys.stderr), 2)[1])

    d = subparsers.add_parser("demo", help="the whole story in one command: start a device "
                              "(QEMU M4 firmware, else the host twin), stream MNIST, train on "
                              "it, pull the model, evaluate it on the host")
    d.add_argument("--board", default="mps2-an386", help="QEMU board (default %(default)s)")
    d.add_argument("--twin", action="store_true", help="use the host twin even if QEMU works")
    d.add_argument("--build", action="store_true",
                   help="build the firmware first if no image is found (needs cmake and "
                        "arm-none-eabi-gcc); an error, not a fallback to the host twin, when "
                        "the firmware cannot be built or run")
    _train_args(d, limit_default=20000)
    d.set_defaults(func=cmd_demo, out="demo.flip", bits=8, timeout=3.0, retries=10,
                   recipe="demo")
    return dev


# ---- commands ------------------------------------------------------------------------------
def cmd_info(args):
    with _open(args) as dev:
        info = dev.info()
        stats = dev.stats()
    if args.json:
        emit_json({"info": info, "stats": stats})
        return 0
    print("board          %s (protocol %d, core %s)" % (info["board"], info["protocol"],
                                                       info["core_version"]))
    model = info.get("model")  # an inference-only firmware's compiled-in model
    if model:
        print("firmware       inference-only: predict / evaluate; no training, load or pull")
        print("model          %s %s (%s input), %d training steps, %d B of weights in flash"
              % (model["arch"], _kinds(model["kinds"]), model["input"], model["steps"],
                 model["weight_bytes"]))
    print("RAM            %s static + stack %s of %s reserved; %s %d B"
          % (_b(info["ram_static"]), _b(stats["stack_used"]), _b(info["stack_bytes"]),
             "scratch" if model else "arena", info["arena_bytes"]))
    print("frames         request <= %d B, reply <= %d B, batch <= %d"
          % (info["max_frame"], info["max_reply"], info["max_batch"]))
    if model:
        print("classified     %d samples" % stats["trained"])
        return 0
    print("largest model  %s, the device recipe's (batch 8); 784-%d-10 ternary without "
          "counters" % (_device_recipe_model(info), info["largest_hidden"]))
    if stats["configured"]:
        print("model          %d layers, %d steps, %d samples, %d trained since configure"
              % (stats["n_layers"], stats["steps"], stats["samples"], stats["trained"]))
    else:
        print("model          none (configure or load one)")
    if "store" in info:
        print("checkpoint     %s" % _store_line(info["store"]))
    return 0


def _device_recipe_model(info):
    """The device recipe's largest model on this device, e.g. "100-350-10 ternary, int8
    counters" (MNIST's 28x28 images, 10 classes)."""
    from .. import recipes
    from ..device import plan
    from ..inputs import parse_encoding

    rec = recipes.DEVICE
    n_in = parse_encoding(rec["input"]).n_inputs(28)
    h = plan.largest_hidden(info, n_in, 10, rec["counter_bits"], rec["batch_size"])
    return "%d-%d-10 ternary, %d-bit counters, input %s" % (n_in, h, rec["counter_bits"],
                                                           rec["input"])


def _b(n):
    return "%d B" % n if n else "?"


def _kinds(kinds):
    if isinstance(kinds, str):
        return kinds
    kinds = list(kinds)
    return kinds[0] if len(set(kinds)) == 1 else "/".join(kinds)


def _summary_lines(s, acc, n_test, path):
    st = s["device_stats"]
    ram = (st.get("ram_static") or 0) + (st.get("stack_used") or 0)
    link = s.get("link", {})
    lines = [
        "device         %s" % s["board"],
        "model          %s %s, seed %d%s" % ("-".join(map(str, s["sizes"])), _kinds(s["kinds"]),
                                            s["seed"], ", continued" if s.get("continued") else ""),
        "trained        %d samples in %d steps (batch %d, %d-bit inputs), %.1f s, %.0f samples/s"
        % (s["samples"], s["steps"], s["batch"], s["bits"], s["seconds"],
           s["samples_per_s"] or 0),
        "on-device acc  %.4f (running, during training)" % s["train_acc"],
    ]
    if acc is not None:
        lines.append("test accuracy  %.4f (pulled model, evaluated on the host, %d samples)"
                     % (acc, n_test))
    lines.append("changes        %s weights changed per layer" % ", ".join(map(str, s["changes"])))
    if ram:
        lines.append("device RAM     %d B (static %d + stack high-water %d)"
                     % (ram, st["ram_static"], st["stack_used"]))
    if link and link.get("bytes_sent"):
        lines.append("link           %d B sent, %d B received, %d retransmits"
                     % (link["bytes_sent"], link["bytes_received"], link["retransmits"]))
    if path:
        lines.append("saved          %s" % path)
    return lines


def _digits_fallback(exc):
    """scikit-learn's 8x8 digits as uint8 pixels, for a demo without MNIST offline."""
    try:
        import numpy as np
        from sklearn.datasets import load_digits
    except ImportError:
        raise exc from None
    d = load_digits()
    x = np.clip(d.images * 16, 0, 255).astype(np.uint8)
    y = d.target.astype(np.uint8)
    err("flipnet demo: %s; using scikit-learn's digits (8x8) instead"
         % str(exc).splitlines()[0])
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])


def _run_training(args, dev, announce=None, fallback=False):
    from ..arch import parse_sizes
    from ..device.session import train_on_device
    from ..errors import DatasetError

    import os

    init = getattr(args, "init", None)
    cont = bool(getattr(args, "cont", False))
    out = getattr(args, "out", None)
    if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        # before any training, not after it
        raise ValueError("--out %s: the directory %s does not exist"
                         % (out, os.path.dirname(os.path.abspath(out))))
    if init and cont:
        raise ValueError("--init MODEL loads a model and continues it; --continue continues "
                         "the one the device holds: give one of them")
    if (init or cont) and (args.arch or args.weights):
        raise ValueError("--arch / --weights describe a fresh model; a continued model keeps "
                         "its own (drop them, or drop --init / --continue)")
    sizes = None if (init or cont or not args.arch) else parse_sizes(args.arch)
    if not args.data:  # MNIST's default shares; your own data: all of it
        args.limit = args.dataset_limit if args.limit is None else args.limit
        args.test_limit = 10000 if args.test_limit is None else args.test_limit
    check_plot(args)
    scale = None
    try:
        if args.data:
            (x, y), (xt, yt), scale = _file_samples(args, init, cont)
            args.test_limit = len(xt) if args.test_limit is None else args.test_limit
        else:
            if args.input_scale is not None:
                raise ValueError("--input-scale is for float features given with --data")
            (x, y), (xt, yt) = _load(args)
    except DatasetError as exc:
        if args.data:
            raise
        if not fallback:
            raise
        (x, y), (xt, yt) = _digits_fallback(exc)
        args.dataset = "sklearn_digits"
        if not getattr(args, "input", None):
            args.input = "half"  # 8x8 images: no room to crop and pool
        if sizes:
            sizes[0] = 64
    skip = max(0, int(getattr(args, "skip", 0) or 0))
    if skip:
        if skip >= len(x):
            raise ValueError("--skip %d: the %s training set has %d samples"
                             % (skip, args.dataset, len(x)))
        x, y = x[skip:], y[skip:]
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    sched = {k: v for k, v in (("p0", args.p0), ("p1", args.p1), ("k_frac", args.k_frac),
                               ("margin", args.margin)) if v is not None}
    if announce:
        announce()
    resume = None
    if getattr(args, "resume", None):
        with open(args.resume, "rb") as f:
            resume = f.read()
    if init:
        from ..device import history

        with open(init, "rb") as f:
            init = f.read()
        history.remember(init)  # so that a later `flipnet device pull` finds its history
    recipe = args.recipe if (args.recipe or init or cont) else "device"
    if sizes is None and not (init or cont):
        sizes = _fitting_model(dev, args, recipe, x, y)
    test = (xt[:args.test_limit], yt[:args.test_limit]) if args.test_limit else None
    s = train_on_device(dev, x, y, sizes, kinds=args.weights or "ternary",
                        seed=args.seed if (args.seed is not None or init or cont) else 1,
                        epochs=args.epochs, batch=args.batch, recipe=recipe,
                        schedule=sched or None, bits=args.bits,
                        pull_every=args.pull_every, out=args.out or None,
                        progress=not args.quiet, resume=resume, init=init, on_device=cont,
                        record={"dataset": args.dataset, "skip": skip}, test_data=test,
                        input=getattr(args, "input", None), input_scale=scale,
                        checkpoint_every=getattr(args, "checkpoint_every", None))
    s["data"] = os.path.abspath(args.data) if args.data else None
    s["dataset"] = args.dataset
    s["input_scale"] = scale.to_dict() if scale is not None else None
    s["plot"] = None
    if args.plot:
        from .. import plots

        plots.plot(s["model"], args.plot, title="%s on %s (%s)" % (
            s["model"].arch, s["board"], args.dataset))
        s["plot"] = os.path.abspath(args.plot)
    return s, s["test_acc"], s["model"]


def _file_samples(args, init, cont):
    """(train, test, input scale) of --data: float features quantized here by --input-scale
    (fitted on the training samples; a continued model's own scale), so the device gets int8
    samples and the pulled model keeps the scale; per-sample data (not images) takes the
    per-value encoding "centered" unless --input says otherwise."""
    import numpy as np

    from ..inputs import FeatureScale, is_float, make_scale

    (x, y), (xt, yt) = load_file_data(args, args.seed or 0)
    args.dataset = os.path.basename(os.path.normpath(args.data))
    scale = None
    if is_float(x):
        base = None
        if init or cont:
            from ..model import Model

            if init:
                with open(init, "rb") as f:
                    base = Model.from_bytes(f.read(), source=repr(init)).input_scale
        if isinstance(base, FeatureScale):
            scale = base
        else:
            scale = FeatureScale.fit(x, make_scale(args.input_scale) or "std")
        x, xt = scale.apply(x, "--data"), scale.apply(xt, "--test-data")
    elif args.input_scale is not None:
        raise ValueError("--input-scale is for float features; %s holds %s samples (their "
                         "encoding is --input)" % (args.data, x.dtype))
    if x.dtype != np.uint8 and not args.input:
        args.input = "centered"  # int8 samples are sent as they are
    return (x, y), (xt, yt), scale


def _fitting_model(dev, args, recipe, x, y):
    """A fresh model's sizes when --arch is not given: the recipe's input width for this data
    (e.g. 100 for crop20-pool2 on 28x28 images), the widest hidden layer that trains in the
    device's RAM at --batch (flipnet.device.plan), the data's classes. A device that reports
    no arena (the in-process core) takes the recipe's own arch."""
    import numpy as np

    from .. import recipes
    from ..arch import parse_sizes
    from ..device import plan
    from ..inputs import image_side, parse_encoding

    rec = recipes.get(recipe)
    enc = getattr(args, "input", None) or rec["input"]
    if parse_encoding(enc).reduces:
        n_in = parse_encoding(enc).n_inputs(image_side(x, enc))
    else:
        n_in = int(np.prod(x.shape[1:]))
    classes = int(np.max(y)) + 1
    info = dev.info()
    if not info.get("arena_bytes"):
        sizes = parse_sizes(rec["arch"])
        return [n_in] + sizes[1:-1] + [classes]
    bits = rec.get("counter_bits", 8) if rec.get("counter_threshold", 0) > 0 else None
    h = plan.largest_hidden(info, n_in, classes, bits, args.batch, args.weights or "ternary")
    if h < 1:
        raise ValueError("no %d-h-%d model trains on this device at batch %d (arena %d B, "
                         "frames %d B): try a smaller --batch, --input with a smaller width, "
                         "or --arch" % (n_in, classes, args.batch, info["arena_bytes"],
                                        info["max_frame"]))
    return [n_in, h, classes]


def cmd_train(args):
    with _open(args) as dev:
        s, acc, _ = _run_training(args, dev)
    _report(args, s, acc, args.test_limit)
    return 0


def _report(args, s, acc, n_test):
    out = dict(s)
    for key in ("model_bytes", "device_bytes", "model"):
        out.pop(key, None)
    # the vocabulary of every command's JSON (docs/json.md), with the old keys as aliases
    command = "device train" if args.command == "device" else args.command
    out.update(command=command, accuracy=acc, train_accuracy=s["train_acc"],
               batch_size=s["batch"], arch="-".join(map(str, s["sizes"])),
               n_train=s.get("n_train"), out=args.out or None)
    out = canonical(out, ("test_acc", "train_acc", "batch"))
    if args.json:
        emit_json(out)
        return
    for ln in _summary_lines(s, acc, s.get("n_test", n_test), args.out):
        print(ln)


def _device_input(dev, args, model=None):
    """The input encoding for the device's model: --input, else ``model``'s (the file
    loaded with --model), else what the inference-only firmware says its model uses, else
    centered."""
    if args.input:
        return args.input
    if model is not None:
        return model.input_encoding
    info = dev.info().get("model")
    return info["input"] if info else "centered"


def _device_samples(dev, args, x, model=None):
    """(int8 samples, table) of the uint8 images ``x`` for the device's model, checked
    against its input width."""
    from ..device.session import prepare_inputs

    enc = _device_input(dev, args, model)
    x8, table = prepare_inputs(x, args.bits, enc)
    n0 = dev.sizes[0] if dev.sizes else None
    if n0 is not None and x8.shape[1] != n0:
        raise ValueError("the device's model takes %d inputs, but %s's samples encoded as %r "
                         "give %d; pass the encoding the model was trained with: --input "
                         "ENCODING (e.g. crop20-pool2 for 100 inputs from 28 x 28 images)"
                         % (n0, args.dataset, enc, x8.shape[1]))
    return x8, table


def cmd_eval(args):
    (_, _), (xt, yt) = _load(args)
    if args.limit:
        xt, yt = xt[:args.limit], yt[:args.limit]
    model = None
    with _open(args) as dev:
        if args.model:
            from ..model import Model

            with open(args.model, "rb") as f:
                data = f.read()
            model = Model.from_bytes(data, source=repr(args.model))
            dev.load(data)
        elif not dev.info()["inference_only"]:
            _adopt_device_model(dev)
        x8, table = _device_samples(dev, args, xt, model)
        correct, n = dev.evaluate(x8, yt, bits=args.bits, table=table)
    if args.json:
        emit_json(canonical({"command": "device eval", "correct": correct, "n_test": n,
                             "accuracy": correct / n if n else None}, ("n",)))
    else:
        print("device accuracy %.4f (%d/%d)" % (correct / n if n else 0.0, correct, n))
    return 0


def _adopt_device_model(dev):
    """Learn the device's current architecture (for a connection that did not configure)."""
    from ..model import Model

    m = Model.from_bytes(dev.pull(), source="the device's model")
    dev.sizes = list(m.sizes)
    dev.batch = dev.batch or 1
    return m


def cmd_predict(args):
    (_, _), (xt, yt) = _load(args)
    n = args.limit or 10
    with _open(args) as dev:
        if not dev.info()["inference_only"]:
            _adopt_device_model(dev)
        x8, table = _device_samples(dev, args, xt[:n])
        classes = dev.predict(x8, bits=args.bits, table=table)
    if args.json:
        emit_json({"classes": classes.tolist(), "labels": yt[:n].tolist()})
    else:
        print("predicted %s" % " ".join(map(str, classes.tolist())))
        print("labels    %s" % " ".join(map(str, yt[:n].tolist())))
    return 0


def cmd_pull(args):
    from ..device import history

    with _open(args) as dev:
        data = dev.pull()
    base = None
    if args.base:
        with open(args.base, "rb") as f:
            base = f.read()
        history.check_base(data, base)  # a ValueError says which file the device had
    else:
        base = history.recall(data)
        dm = history.device_meta(data)
        if base is None and dm and dm.get("origin") == "load":
            err("flipnet: the device's model was loaded from a file this machine does not "
                 "know (CRC %s): the pulled file records the device session only; pass "
                 "--base MODEL to keep that file's history" % dm.get("load_crc"))
    model = history.adopt(data, base=base, record={"port": args.port})
    nbytes = model.save(args.out)
    log = model.training_log
    print("saved %s (%d bytes; %d steps, %d samples; history: %s)"
          % (args.out, nbytes, model.steps, model.samples,
             ", ".join("%s %d steps" % (r.get("where", "?"), r.get("steps", 0)) for r in log)
             or "none"))
    return 0


def cmd_load(args):
    from ..device import history

    with open(args.model, "rb") as f:
        data = f.read()
    with _open(args) as dev:
        r = dev.load(data, batch=args.batch)
    history.remember(data)
    print("loaded %s (%d bytes, sent %d without its metadata, CRC %s) onto %s"
          % (args.model, len(data), r["total"], r["crc"], args.port))
    return 0


def cmd_stats(args):
    with _open(args) as dev:
        st = dev.stats()
    if args.json:
        emit_json(st)
    else:
        for k in sorted(st):
            print("%-14s %s" % (k, st[k]))
    return 0


def _store_line(st):
    if not st or not st.get("store"):
        return "none (no flash for checkpoints)" if st else "none (firmware without checkpoints)"
    ck = st["checkpoint"]
    what = ("step %d (%d samples), #%d, CRC %08x, %d B%s" % (
        ck["steps"], ck["samples"], ck["seq"], ck["crc"], ck["bytes"],
        ", the live model" if st["restored"] else "") if ck else "empty")
    return "%s; every %s; %d slots of %d B, %d sector erases in its life" % (
        what, "%d steps" % st["every"] if st["every"] else "-- (on demand)", st["slots"],
        st["slot_bytes"], st["wear"])


def cmd_save(args):
    with _open(args) as dev:
        if args.wipe:
            st = dev.wipe_checkpoints()
        else:
            st = dev.save(every=args.every)
    print("checkpoint     %s" % _store_line(st))
    return 0


def cmd_restore(args):
    with _open(args) as dev:
        st = dev.restore()
    print("restored       %s" % _store_line(st))
    return 0


def cmd_reset(args):
    with _open(args) as dev:
        dev.reset()
    print("reset %s" % args.port)
    return 0


def cmd_selftest(args):
    from ..device import selftest

    with _open(args) as dev:
        try:
            cases = selftest.malformed_battery(dev, args.seed)
            selftest.random_frames(dev, args.frames, args.seed)
        except AssertionError as exc:
            err("flipnet: selftest FAILED on %s: %s" % (args.port, exc))
            return 1
    print("selftest passed on %s: %d malformed-input cases, %d random frames; the model and "
          "the sample counter were left intact" % (args.port, len(cases), args.frames))
    return 0


def _start_device(board, elf=None, link=None, flash=None):
    import os

    from ..device import sim

    if board == "host":
        return sim.start_twin(link=link, flash=flash)
    extra = []
    if flash:  # the MPS2 firmware's checkpoint flash: a semihosting file (docs/protocol.md 10)
        extra = ["-semihosting-config",
                 "enable=on,target=native,arg=flash=" + os.path.abspath(flash)]
    return sim.start_qemu(board, elf=elf, extra=extra)


def cmd_sim(args):
    import signal

    def _stop(signum, frame):
        raise KeyboardInterrupt

    proc = _start_device(args.board, args.elf, args.link, getattr(args, "flash", None))
    try:
        signal.signal(signal.SIGTERM, _stop)  # stop the child on `kill` too, not only Ctrl-C
    except ValueError:  # not the main thread
        pass
    try:
        print(proc.port, flush=True)
        err("flipnet: %s running (pid %d); connect with --port %s; Ctrl-C stops it"
             % (proc.what, proc.pid, proc.port))
        while proc.alive():
            time.sleep(0.5)
        err("flipnet: %s exited" % proc.what)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        proc.stop()


def cmd_demo(args):
    from ..device import sim
    from ..device.client import Device, DeviceError

    t0 = time.perf_counter()
    proc = None
    why = None
    if not args.twin:
        if not sim.qemu_available():
            why = "qemu-system-arm not found"
        else:
            elf = sim.find_firmware(args.board)
            if elf is None and args.build:
                elf = sim.build_firmware(args.board)
            if elf is None:
                why = ("no firmware image for %s (build it with cmake, see firmware/"
                       "CMakeLists.txt, or pass --build)" % args.board)
            else:
                try:
                    proc = sim.start_qemu(args.board, elf=elf)
                except DeviceError as exc:
                    why = str(exc)
        if why and args.build:  # asked for the emulated board: no quiet fallback
            raise DeviceError("flipnet demo --build: cannot run the %s firmware: %s"
                              % (args.board, why))
    if proc is None:
        if why:
            err("flipnet demo: %s; using the host twin" % why)
        try:
            proc = sim.start_twin()
        except DeviceError as exc:
            # e.g. no C compiler: the same training steps, computed in this process by the
            # core's Python bindings
            err("flipnet demo: host twin unavailable (%s); training in-process instead"
                % str(exc).splitlines()[0])
    if proc is None:
        from ..device.session import InProcessTwin

        dev = InProcessTwin()
        s, acc, _ = _run_training(args, dev, fallback=True)
        s["device"] = "in-process core (no device)"
    else:
        with proc:
            if not args.quiet:
                err("flipnet demo: device = %s on %s" % (proc.what, proc.port))
            with Device(proc.port, timeout=args.timeout, retries=args.retries) as dev:
                s, acc, _ = _run_training(args, dev, fallback=True)
        s["device"] = proc.what
    s["wall_seconds"] = time.perf_counter() - t0
    _report(args, s, acc, args.test_limit)
    return 0
