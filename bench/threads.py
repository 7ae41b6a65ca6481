#!/usr/bin/env python3
"""Training steps per second on 1 and 2 threads, interleaved, and the bit-identity of the
weights they give (docs/benchmarks.md, "Speed").

    python3 bench/threads.py [ARCH] [BATCH] [STEPS]      # default 784-256-256-10 64 2000

A loop of Model.core_train_step (no Python fit loop around it) with the default recipe's
k = every weight and p = 1.0, on MNIST quantized "half"; 3 repeats per thread count.
"""

import hashlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import flipnet  # noqa: E402
from flipnet import datasets, training  # noqa: E402


def main(argv):
    sizes = [int(s) for s in (argv[0] if argv else "784-256-256-10").split("-")]
    B = int(argv[1]) if len(argv) > 1 else 64
    steps = int(argv[2]) if len(argv) > 2 else 2000
    (x, y), _ = datasets.load_mnist()
    x8 = flipnet.quantize(x.reshape(len(x), -1)[:20000], "half")
    y = y[:20000].astype(np.uint16)
    xs = [np.ascontiguousarray(x8[i * B:(i + 1) * B]) for i in range(len(x8) // B)]
    ys = [np.ascontiguousarray(y[i * B:(i + 1) * B]) for i in range(len(x8) // B)]
    rates, digests = {}, {}
    for T in [1, 2, 1, 2, 1, 2]:
        m = flipnet.Model(sizes, seed=0)
        m.calibrate(x8[:1024])
        params = training._step_params(training.adamw_options(m.recipe, None, None, None, None))
        for ly, (n, mm) in enumerate(zip(sizes[:-1], sizes[1:])):
            params.k[ly] = n * mm
            params.p_q16[ly] = 65536
        t0 = time.perf_counter()
        for s in range(steps):
            m.core_train_step(xs[s % len(xs)], ys[s % len(xs)], params, None, T)
        rates.setdefault(T, []).append(steps * B / (time.perf_counter() - t0))
        h = hashlib.sha256()
        for ly in range(m.n_layers):
            h.update(m.weights(ly).tobytes())
            h.update(m.counters(ly).tobytes())
        digests.setdefault(T, set()).add(h.hexdigest())
    for T, r in rates.items():
        print("%d thread(s): %s samples/s" % (T, ", ".join("%.0f" % v for v in r)))
    print("2 threads / 1 thread (best of each): %.2f" % (max(rates[2]) / max(rates[1])))
    same = len(digests[1] | digests[2]) == 1
    print("weights and counters bit-identical: %s" % same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
