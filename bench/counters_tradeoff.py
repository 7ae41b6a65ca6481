#!/usr/bin/env python3
"""MNIST accuracy against device RAM: counter widths x hidden widths (issue 11, item 5).

    python3 bench/counters_tradeoff.py [--seed 0] [--epochs 3] [--inputs half,crop20-pool2]
                                       [--hidden 32,64,128,256] [--bits 0,2,4,8] [--json FILE]

Every run is the device's rule on the host (bit-identical to the firmware): batch 8, the
given passes over the 60,000 MNIST training images, test accuracy on the 10,000 test images.
Counter widths: 8 is the device recipe (flipnet.recipes.DEVICE: int8 counters on both
layers); 4 and 2 are the same recipe with counters of that width on the first layer (the
output layer keeps int8 ones: it is small, and narrowing it costs more, docs/benchmarks.md);
0 is the rule without counters (the device's recipe before issue 11: top-k with p decaying
0.3 -> 0.01, k = 1% of each layer, margin 256, weighted net vote, recalibration every 50
steps). RAM is what the model takes in a device's arena at batch 8 (weights + counters +
training scratch, flipnet.device.plan.device_bytes); a device adds its link buffers and stack.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import flipnet  # noqa: E402
from flipnet import datasets, recipes  # noqa: E402
from flipnet.device import plan  # noqa: E402
from flipnet.inputs import parse_encoding  # noqa: E402

NO_COUNTERS = recipes.get("paper", batch_size=8, k_frac=0.01, margin=256, vote="weighted",
                          filter="net", calib_target=96, recalibrate_steps=50)


def run(x, y, xt, yt, encoding, hidden, bits, epochs, seed):
    n_in = parse_encoding(encoding).n_inputs(28) if parse_encoding(encoding).reduces else 784
    sizes = [n_in, hidden, 10]
    if bits == 0:
        rec = dict(NO_COUNTERS, input=encoding, epochs=epochs)
        widths = None
    else:
        widths = [bits, 8]
        rec = recipes.get("device", input=encoding, epochs=epochs, counter_bits=widths)
    m = flipnet.Model(sizes, seed=seed, recipe=rec)
    t0 = time.perf_counter()
    hist = m.fit(x, y, validation_data=(xt, yt), verbose=0)
    return {"input": encoding, "sizes": sizes, "counter_bits": bits, "seed": seed,
            "epochs": epochs, "accuracy": hist[-1]["val_acc"],
            "per_epoch": [h["val_acc"] for h in hist],
            "ram": plan.device_bytes(sizes, widths, 8), "seconds": time.perf_counter() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--inputs", default="half,crop20-pool2")
    ap.add_argument("--hidden", default="32,64,128,256")
    ap.add_argument("--bits", default="0,2,4,8")
    ap.add_argument("--json", help="also write every run as JSON lines to this file")
    a = ap.parse_args(argv)
    (x, y), (xt, yt) = datasets.load_mnist()
    rows = []
    for enc in a.inputs.split(","):
        for h in [int(v) for v in a.hidden.split(",")]:
            for b in [int(v) for v in a.bits.split(",")]:
                r = run(x, y, xt, yt, enc, h, b, a.epochs, a.seed)
                rows.append(r)
                print("%-13s %-11s %d bits  %6.2f%%  %7d B  (%.0f s)"
                      % (enc, "-".join(map(str, r["sizes"])), b, 100 * r["accuracy"], r["ram"],
                         r["seconds"]), flush=True)
                if a.json:
                    with open(a.json, "a") as f:
                        f.write(json.dumps(r) + "\n")
    return rows


if __name__ == "__main__":
    main()
