"""Ablation of the training recipe on MNIST (one row per option set), as a Markdown table.

    python bench/ablation.py [--epochs 10] [--seed 0] [--only NAME ...] > ablation.md

Every row trains ``784-256-256-10`` (unless the row says otherwise) from seed 0 with
``flipnet.Model.fit`` on the 60,000 training images and reports the test accuracy after the
last epoch, the best epoch, the training time and the memory per weight. Rows start from the
``paper`` recipe and add one idea at a time, then take single ideas out of the default recipe.
"""
import argparse
import sys
import time

import flipnet
from flipnet import datasets, recipes

OFF = dict(counter_shift=0, counter_shift_end=None, counter_threshold=0)
ROWS = [
    ("paper (centered input, sign vote, hurt filter, k 0.2%, p 0.3->0.01)", "paper", {}),
    ("paper + half input (p >> 1)", "paper", dict(input="half")),
    ("... + recalibrate every 50 steps", "paper", dict(input="half", recalibrate_steps=50)),
    ("... + weighted net vote, margin 256, calib target 96", "paper",
     dict(input="half", recalibrate_steps=50, vote="weighted", filter="net", margin=256,
          calib_target=96)),
    ("... + counters (shift 7, threshold 32), k all, p 1->0.01 = default w/o annealing",
     "default", dict(counter_shift_end=None)),
    ("default (... + counter shift annealed 7->9)", "default", {}),
    ("default, centered input", "default", dict(input="centered")),
    ("default, calib target 32", "default", dict(calib_target=32)),
    ("default, margin 64", "default", dict(margin=64)),
    ("default, no step recalibration", "default", dict(recalibrate_steps=0, recalibrate_every=1)),
    ("default, sign vote", "default", dict(vote="sign")),
    ("default, batch 32", "default", dict(batch_size=32)),
    ("default, binary weights", "default", dict(weights="binary")),
    ("default, 784-512-512-10", "default", dict(arch="784-512-512-10")),
]


def run(recipe_name, opts, epochs, seed, data):
    (x, y), (xt, yt) = data
    r = recipes.get(recipe_name)
    r["arch"] = "784-256-256-10"
    r.update(opts)
    r["epochs"] = epochs
    m = flipnet.Model(r["arch"], r["weights"], seed=seed, recipe=r)
    t0 = time.perf_counter()
    h = m.fit(x, y, validation_data=(xt, yt), verbose=0)
    secs = time.perf_counter() - t0
    rep = m.memory_report(r["batch_size"])
    return h.val_acc[-1], max(h.val_acc), secs, rep


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", type=int, help="row numbers to run (1-based)")
    a = ap.parse_args(argv)
    data = datasets.load_mnist()
    print("| # | option set | test acc (last) | best epoch | train s | weight bits/w "
          "| counter bits/w |")
    print("|---|---|---|---|---|---|---|")
    for i, (name, base, opts) in enumerate(ROWS, 1):
        if a.only and i not in a.only:
            continue
        last, best, secs, rep = run(base, opts, a.epochs, a.seed, data)
        print("| %d | %s | %.2f%% | %.2f%% | %.0f | %.2f | %.1f |" % (
            i, name, 100 * last, 100 * best, secs, rep["bits_per_weight"],
            rep["counter_bits_per_weight"]), flush=True)


if __name__ == "__main__":
    sys.exit(main())
