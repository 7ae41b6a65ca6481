#!/usr/bin/env python3
"""flipnet against PyTorch FP32 (and ONNX Runtime for inference), same MLP, same data, one run.

    python3 bench/speed.py [--arch 784-256-256-10] [--batch 64,32] [--repeats 5]
                           [--threads 1] [--steps 200] [--json FILE]

Training: samples/s of `Model.train_step` loops (the default recipe's rule: counters, weighted
net vote; k and p as the recipe's first step) against a PyTorch nn.Sequential of Linear+ReLU
layers trained with torch.optim.AdamW and cross-entropy, on the same MNIST batches. Forward:
samples/s of `flipnet_forward` against PyTorch's forward (no grad) and ONNX Runtime's session of
the model's exact ONNX export, at batch 1,000 and batch 1. Each measurement is repeated
`--repeats` times, the libraries interleaved (flipnet, torch, ort, flipnet, ...), and the
median is reported, with the ratio. `--threads` sets torch.set_num_threads, ORT's
intra_op_num_threads and flipnet's threads (where the build has them).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import flipnet  # noqa: E402
from flipnet import datasets  # noqa: E402


def _median_rate(samples_per_run, times):
    return samples_per_run / statistics.median(times)


class FlipnetTrain:
    def __init__(self, sizes, x8, y, batch, threads):
        self.m = flipnet.Model(sizes, seed=0)
        self.m.calibrate(x8[:1024])
        self.x8, self.y, self.batch = x8, y, batch
        self.threads = threads
        shapes = list(zip(sizes[:-1], sizes[1:]))
        self.k = [n * m for n, m in shapes]  # the default recipe: k = every weight, p 1.0
        self.p = 65536
        self.pos = 0

    def run(self, steps):
        b, n = self.batch, len(self.x8)
        t0 = time.perf_counter()
        for _ in range(steps):
            i = self.pos % (n - b)
            self.m.train_step(self.x8[i:i + b], self.y[i:i + b], self.k, self.p,
                              threads=self.threads)
            self.pos += b
        return time.perf_counter() - t0


class TorchTrain:
    def __init__(self, sizes, xf, y, batch):
        import torch

        layers = []
        for i, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(n, m))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.torch = torch
        self.net = torch.nn.Sequential(*layers)
        self.opt = torch.optim.AdamW(self.net.parameters())
        self.loss = torch.nn.CrossEntropyLoss()
        self.x = torch.from_numpy(xf)
        self.y = torch.from_numpy(y.astype(np.int64))
        self.batch = batch
        self.pos = 0

    def run(self, steps):
        b, n = self.batch, len(self.x)
        t0 = time.perf_counter()
        for _ in range(steps):
            i = self.pos % (n - b)
            self.opt.zero_grad(set_to_none=True)
            out = self.loss(self.net(self.x[i:i + b]), self.y[i:i + b])
            out.backward()
            self.opt.step()
            self.pos += b
        return time.perf_counter() - t0


def bench_train(sizes, x8, xf, y, batch, steps, repeats, threads):
    f = FlipnetTrain(sizes, x8, y, batch, threads)
    t = TorchTrain(sizes, xf, y, batch)
    f.run(10)  # warm up (and the counters past their first steps)
    t.run(10)
    tf, tt = [], []
    for _ in range(repeats):
        tf.append(f.run(steps))
        tt.append(t.run(steps))
    rf = _median_rate(steps * batch, tf)
    rt = _median_rate(steps * batch, tt)
    return {"what": "train", "arch": "-".join(map(str, sizes)), "batch": batch,
            "flipnet_samples_per_s": rf, "torch_samples_per_s": rt, "ratio": rf / rt}


def bench_forward(sizes, x8, xf, batch, repeats, threads, runs):
    import onnxruntime as ort
    import torch

    m = flipnet.Model(sizes, seed=0)
    m.calibrate(x8[:1024])
    net = TorchTrain(sizes, xf, np.zeros(len(xf), np.int64), batch).net.eval()
    path = "/tmp/flipnet_speed.onnx"
    m.export(path, "onnx", input="int8")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    xb8, xbf = x8[:batch], torch.from_numpy(xf[:batch])
    feeds = {name: xb8}

    def tf():
        t0 = time.perf_counter()
        for _ in range(runs):
            m.forward(xb8, threads=threads)
        return time.perf_counter() - t0

    def tt():
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(runs):
                net(xbf)
        return time.perf_counter() - t0

    def to():
        t0 = time.perf_counter()
        for _ in range(runs):
            sess.run(None, feeds)
        return time.perf_counter() - t0

    for fn in (tf, tt, to):
        fn()
    times = {"flipnet": [], "torch": [], "onnxruntime": []}
    for _ in range(repeats):
        times["flipnet"].append(tf())
        times["torch"].append(tt())
        times["onnxruntime"].append(to())
    rates = {k: _median_rate(runs * batch, v) for k, v in times.items()}
    weights = sum(n * mm for n, mm in zip(sizes[:-1], sizes[1:]))
    return {"what": "forward", "arch": "-".join(map(str, sizes)), "batch": batch,
            "flipnet_samples_per_s": rates["flipnet"], "torch_samples_per_s": rates["torch"],
            "ort_samples_per_s": rates["onnxruntime"],
            "ratio": rates["flipnet"] / rates["torch"],
            "ratio_ort": rates["flipnet"] / rates["onnxruntime"],
            "flipnet_weight_visits_per_s": rates["flipnet"] * weights}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="784-256-256-10")
    ap.add_argument("--batch", default="64,32")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--forward", default="1000,1", help="forward batches (empty: none)")
    ap.add_argument("--json", help="append the results as JSON lines to this file")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    sizes = [int(v) for v in a.arch.split("-")]
    (x, y), _ = datasets.load_mnist()
    x = x.reshape(len(x), -1)
    x8 = flipnet.quantize(x, "half")
    xf = (x.astype(np.float32) / 255.0)
    rows = []
    for b in [int(v) for v in a.batch.split(",") if v]:
        rows.append(bench_train(sizes, x8, xf, y, b, a.steps, a.repeats, a.threads))
    for b in [int(v) for v in a.forward.split(",") if v]:
        runs = max(3, 20000 // b)
        rows.append(bench_forward(sizes, x8, xf, b, a.repeats, a.threads, runs))
    meta = {"machine": platform.processor() or platform.machine(), "threads": a.threads,
            "repeats": a.repeats, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    for r in rows:
        r.update(meta)
        extra = ("  ORT %.0f/s (x%.2f)" % (r["ort_samples_per_s"], r["ratio_ort"])
                 if "ort_samples_per_s" in r else "")
        print("%-8s %s batch %5d: flipnet %9.0f/s  torch %9.0f/s  x%.2f%s"
              % (r["what"], r["arch"], r["batch"], r["flipnet_samples_per_s"],
                 r["torch_samples_per_s"], r["ratio"], extra), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(r) + "\n")
    return rows


if __name__ == "__main__":
    main()
