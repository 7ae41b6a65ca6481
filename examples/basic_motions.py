"""A sensor task end to end, not MNIST: smartwatch motions on a (simulated) microcontroller.

BasicMotions (UEA archive): a smartwatch's 3D accelerometer and 3D gyroscope, 6 channels x 100
steps (10 s at 10 Hz), 4 activities (standing, walking, running, badminton), 40 training and
40 test recordings. This script

1. reads the recordings (ARFF) and turns each into a window of 36 features (per channel: mean,
   standard deviation, min, max, mean |step-to-step change|, and the mean of the first half
   minus that of the second), written as CSV files with a header and an ``activity`` label
   column: ``motions_train.csv``, ``motions_test.csv`` (what a user's own data logger gives);
2. loads them with ``flipnet.data`` (float features);
3. connects to a device (``--port``: the host twin by default, ``qemu`` for the firmware on an
   emulated Cortex-M4, or a serial port / URL), trains a 36-h-4 ternary model there from the
   streamed samples (the host quantizes the features with the model's input scale, fitted on
   the training data), evaluates it on the device;
4. pulls the model (a ``flipnet.Model``, with the input scale), checks that the host computes
   what the device computed, saves it and exports it as a C header for the inference-only
   firmware.

    python examples/basic_motions.py [--port twin|qemu|URL] [--out DIR] [--json]

The data is looked for in ``$FLIPNET_DATA/basicmotions`` (or ``$FLIPNET_DATA`` itself), then
in ``shared/data/basicmotions`` in the working directory or any parent of it, or of this
script's directory (a checkout beside ``../shared/data``).
"""

import argparse
import json
import os
import sys

import numpy as np

import flipnet
from flipnet.export import export

NAME = "basicmotions"
FILES = ("BasicMotions_TRAIN.arff", "BasicMotions_TEST.arff")
CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
STATS = ("mean", "std", "min", "max", "motion", "drift")


def find_data():
    """The directory holding the two ARFF files (module docstring), or an error that lists
    where it looked."""
    dirs = []
    env = os.environ.get("FLIPNET_DATA")
    if env:
        env = os.path.abspath(os.path.expanduser(env))
        dirs += [os.path.join(env, NAME), env]
    for start in (os.getcwd(), os.path.dirname(os.path.abspath(__file__))):
        d = start
        while True:
            cand = os.path.join(d, "shared", "data", NAME)
            if cand not in dirs:
                dirs.append(cand)
            if os.path.dirname(d) == d:
                break
            d = os.path.dirname(d)
    for d in dirs:
        if all(os.path.isfile(os.path.join(d, f)) for f in FILES):
            return d
    raise SystemExit("BasicMotions not found (%s). Looked in:\n  %s\nSet FLIPNET_DATA to a "
                     "directory holding basicmotions/." % (", ".join(FILES), "\n  ".join(dirs)))


def read_arff(path):
    """(recordings float64 (N, 6, 100), activity names (N,)) of a multivariate ARFF file."""
    xs, labels = [], []
    with open(path, encoding="utf-8") as f:
        data = False
        for line in f:
            line = line.strip()
            if not line or line.startswith("%"):
                continue
            if line.lower() == "@data":
                data = True
                continue
            if not data:
                continue
            series, _, label = line.rpartition(",")
            rows = series.strip("'").split("\\n")
            xs.append([[float(v) for v in r.split(",")] for r in rows])
            labels.append(label.strip())
    return np.array(xs, dtype=np.float64), labels


def features(rec):
    """36 features of one recording (6, 100): per channel the STATS."""
    out = []
    for ch in rec:
        half = len(ch) // 2
        out += [ch.mean(), ch.std(), ch.min(), ch.max(), np.abs(np.diff(ch)).mean(),
                ch[:half].mean() - ch[half:].mean()]
    return out


def write_csv(path, recs, labels):
    header = ["%s_%s" % (c, s) for c in CHANNELS for s in STATS] + ["activity"]
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for rec, lab in zip(recs, labels):
            f.write(",".join("%.6g" % v for v in features(rec)) + ",%s\n" % lab.lower())


def make_csvs(out_dir):
    """motions_train.csv and motions_test.csv in ``out_dir`` from the ARFF files."""
    src = find_data()
    paths = []
    for name, split in zip(FILES, ("train", "test")):
        recs, labels = read_arff(os.path.join(src, name))
        p = os.path.join(out_dir, "motions_%s.csv" % split)
        write_csv(p, recs, labels)
        paths.append(p)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", default="twin",
                    help="twin (default), qemu, or a serial port / URL of a board")
    ap.add_argument("--out", default=".", help="directory for the CSV, model and header files")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    train_csv, test_csv = make_csvs(args.out)
    (x, y), (xt, yt) = flipnet.data.load_split(train_csv, test=test_csv, label="activity")
    classes = flipnet.data.load(train_csv, label="activity").classes
    print("%d training and %d test windows of %d features, classes %s"
          % (len(x), len(xt), x.shape[1], ", ".join(classes)), file=sys.stderr)

    with flipnet.connect(args.port, [x.shape[1], args.hidden, len(classes)],
                         seed=args.seed) as dev:
        board = dev.info()["board"]
        history = dev.fit(x, y, epochs=args.epochs, batch_size=8, validation_data=(xt, yt),
                          verbose=0)
        device_acc = dev.evaluate(xt, yt)
        device_pred = dev.predict(xt)
        model = dev.pull()
    model.meta["classes"] = classes
    host_pred = model.predict(xt)  # the same integers on the host, from the same floats
    if not np.array_equal(host_pred, device_pred):
        raise SystemExit("the pulled model predicts differently from the device")
    flip = os.path.join(args.out, "motions.flip")
    header = os.path.join(args.out, "motions.h")
    model.save(flip)
    export(flipnet.load(flip), header, format="c", name="motions")
    result = {"board": board, "arch": model.arch, "epochs": len(history),
              "train_accuracy": history.train_acc[-1], "accuracy": device_acc,
              "n_train": int(len(x)), "n_test": int(len(xt)), "classes": classes,
              "model": flip, "header": header, "bytes": os.path.getsize(flip),
              "header_bytes": os.path.getsize(header),
              "input_scale": model.input_scale.method}
    print("%s on %s: test accuracy %.3f after %d epochs (running training accuracy %.3f); "
          "saved %s, C header %s" % (model.arch, board, device_acc, len(history),
                                     history.train_acc[-1], flip, header))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
