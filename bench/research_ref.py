"""Research harness: train with the NumPy reference rule on MNIST (fast BLAS path).

Usage: python bench/research_ref.py --arch 784-256-256-10 --epochs 3 [--k-frac 0.002] ...
Prints test accuracy per epoch. The reference is exact, so a recipe found here behaves the
same in the C core.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from flipnet import reference as ref  # noqa: E402


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load(root):
    xtr = idx(f"{root}/train-images-idx3-ubyte.gz").reshape(-1, 784)
    ytr = idx(f"{root}/train-labels-idx1-ubyte.gz")
    xte = idx(f"{root}/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    yte = idx(f"{root}/t10k-labels-idx1-ubyte.gz")
    q = lambda x: np.clip(x.astype(np.int16) - 128, -127, 127).astype(np.int8)  # noqa: E731
    return q(xtr), ytr.astype(np.int64), q(xte), yte.astype(np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="784-256-256-10")
    ap.add_argument("--kind", default="ternary")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--k-frac", type=float, default=0.002)
    ap.add_argument("--p0", type=float, default=0.3)
    ap.add_argument("--p1", type=float, default=0.01)
    ap.add_argument("--margin", type=int, default=64)
    ap.add_argument("--vote", type=int, default=0)
    ap.add_argument("--filter", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--recal", type=int, default=0, help="recalibrate every N epochs (0 never)")
    ap.add_argument("--data", default=os.environ.get("FLIPNET_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")) )
    a = ap.parse_args()
    xtr, ytr, xte, yte = load(os.path.join(a.data, "mnist"))
    if a.limit:
        xtr, ytr = xtr[: a.limit], ytr[: a.limit]
    sizes = [int(s) for s in a.arch.split("-")]
    kind = ref.TERNARY if a.kind == "ternary" else ref.BINARY
    m = ref.RefModel(sizes, [kind] * (len(sizes) - 1), seed=a.seed,
                     rule=dict(vote=a.vote, filter=a.filter, margin=a.margin))
    m.calibrate(xtr[:256])
    print("shifts", m.shifts, flush=True)
    steps_per_epoch = (len(xtr) + a.batch - 1) // a.batch
    total = steps_per_epoch * a.epochs
    rng = np.random.default_rng(a.seed)
    ks = [max(1, int(a.k_frac * sizes[i] * sizes[i + 1])) for i in range(len(sizes) - 1)]
    t0 = time.time()
    for ep in range(a.epochs):
        perm = rng.permutation(len(xtr))
        correct = 0
        ch = np.zeros(len(ks))
        for s in range(steps_per_epoch):
            t = ep * steps_per_epoch + s
            p = a.p0 + (a.p1 - a.p0) * t / max(1, total - 1)
            pq = [int(round(p * 65536))] * len(ks)
            idxs = perm[s * a.batch:(s + 1) * a.batch]
            st = m.train_step(xtr[idxs], ytr[idxs], ks, pq)
            correct += st.correct
            ch += st.changes
        if a.recal and (ep + 1) % a.recal == 0:
            m.calibrate(xtr[:256])
        acc = (m.predict(xte) == yte).mean()
        print(f"epoch {ep+1} train {correct/len(xtr):.4f} test {acc:.4f} changes {ch.astype(int).tolist()} "
              f"shifts {m.shifts} {time.time()-t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
