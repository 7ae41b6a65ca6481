"""Research / ablation harness on the C core: train MNIST with explicit rule options.

    python bench/research.py --epochs 10 --vote sign --filter net --margin 256 --input half

Prints one line per epoch (train and test accuracy, changes, seconds) and a final JSON line.
Options here that are not yet in the recipe (per-step recalibration, input quantization) are
experiments; the ones that win move into flipnet.recipes.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import flipnet
from flipnet import datasets


def quantize(x, mode):
    x = x.reshape(len(x), -1)
    if mode == "centered":
        return np.clip(x.astype(np.int16) - 128, -127, 127).astype(np.int8)
    if mode == "half":
        return (x >> 1).astype(np.int8)
    raise SystemExit("unknown input mode " + mode)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="784-256-256-10")
    ap.add_argument("--weights", default="ternary")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--k-frac", type=float, nargs="+", default=[0.002])
    ap.add_argument("--p0", type=float, default=0.3)
    ap.add_argument("--p1", type=float, default=0.01)
    ap.add_argument("--margin", type=int, default=256)
    ap.add_argument("--vote", default="sign")
    ap.add_argument("--filter", default="net")
    ap.add_argument("--input", default="half")
    ap.add_argument("--recal-steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args(argv)
    load = datasets.load_mnist if a.dataset == "mnist" else datasets.load_fashion_mnist
    (xtr, ytr), (xte, yte) = load()
    if a.limit:
        xtr, ytr = xtr[: a.limit], ytr[: a.limit]
    xtr, xte = quantize(xtr, a.input), quantize(xte, a.input)
    sizes = [int(s) for s in a.arch.split("-")]
    L = len(sizes) - 1
    m = flipnet.Model(sizes, a.weights, seed=a.seed, vote=a.vote, filter=a.filter, margin=a.margin)
    kf = a.k_frac * L if len(a.k_frac) == 1 else a.k_frac
    ks = [max(1, round(kf[l] * sizes[l] * sizes[l + 1])) for l in range(L)]
    steps_per_epoch = -(-len(xtr) // a.batch)
    total = steps_per_epoch * a.epochs
    rng = np.random.default_rng(a.seed)
    m.calibrate(xtr[rng.permutation(len(xtr))[:1024]])
    t_start = time.time()
    step = 0
    hist = []
    for ep in range(a.epochs):
        perm = rng.permutation(len(xtr))
        correct = 0
        changes = np.zeros(L, dtype=np.int64)
        t0 = time.time()
        for s in range(steps_per_epoch):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            p = a.p0 + (a.p1 - a.p0) * step / max(1, total - 1)
            st = m.train_step(xtr[idx], ytr[idx], ks, p)
            correct += st["correct"]
            changes += st["changes"]
            step += 1
            if a.recal_steps and step % a.recal_steps == 0:
                m.calibrate(xtr[idx])
        acc = m.evaluate(xte, yte)
        rec = dict(epoch=ep + 1, train=correct / len(xtr), test=acc, changes=changes.tolist(),
                   shifts=m.shifts, seconds=round(time.time() - t0, 1))
        hist.append(rec)
        print(json.dumps(rec), flush=True)
    print(json.dumps(dict(args=vars(a), final_test=hist[-1]["test"], best_test=max(h["test"] for h in hist),
                          seconds=round(time.time() - t_start, 1))))


if __name__ == "__main__":
    sys.exit(main())
