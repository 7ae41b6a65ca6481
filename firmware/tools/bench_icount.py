#!/usr/bin/env python3
"""Instructions per training sample of the firmware (and per classified sample of the
inference-only firmware, --infer), measured under QEMU with -icount.

With ``-icount shift=0`` QEMU advances guest time by exactly 1 ns per executed instruction,
and the MPS2 boards' CMSDK dual timer (firmware/boards/mps2-common/board.c) counts guest
time at 25 MHz: one tick = 40 instructions. The firmware adds up the ticks spent in
flipnet_calibrate + flipnet_train_step for every TRAIN (STATS.train_ticks), so

    instructions per sample = train_ticks * (1e9 / tick_hz) / samples trained

(frame reception, COBS/CRC and input unpacking are not included; they are reported apart
as the instructions of the whole run between the first and last TRAIN reply are not
observable from the host). Deterministic: the same image and data give the same count.

    python firmware/tools/bench_icount.py [--board mps2-an386] [--samples 96] [--arch A-H-C]
                                          [--recipe device]

Without --arch the model is the recipe's largest on the board (the device recipe: 100-h-10
on the crop20-pool2 input, int8 counters; flipnet.device.plan), as flipnet device train
picks it.

With ``--infer MODEL`` (a .flip model file or a header from ``flipnet export --format c``) the
inference-only firmware is built for MODEL and sent ``--samples`` MNIST test images in PREDICT
frames of 8; it adds up the ticks spent in flipnet_predict the same way (STATS.train_ticks on
that firmware), so the result is instructions per classified sample (link and input decoding
not included).

    python firmware/tools/bench_icount.py --infer model.flip --samples 1000 --markdown
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

from flipnet import recipes  # noqa: E402
from flipnet.datasets import load_mnist  # noqa: E402
from flipnet.device import plan  # noqa: E402
from flipnet.inputs import parse_encoding  # noqa: E402
from flipnet.device import sim  # noqa: E402
from flipnet.device.client import Device  # noqa: E402
from flipnet.device.session import prepare_inputs, train_on_device  # noqa: E402


def size_report(elf):
    """(flash, static RAM) from the build's <image>.size.txt."""
    import re

    with open(os.path.splitext(elf)[0] + ".size.txt") as f:
        m = re.search(r"flash (\d+) B, static RAM \(\.data\+\.bss\) (\d+) B", f.readline())
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def measure(board, samples, arch, batch, bits, seed, kinds, recipe="device"):
    (x, y), _ = load_mnist(download=False)
    elf = sim.find_firmware(board) or sim.build_firmware(board)
    flash, _ = size_report(elf)
    rec = recipes.get(recipe)
    with sim.start_qemu(board, elf=elf, icount=0) as proc, \
            Device(proc.port, timeout=30.0) as dev:
        if arch is None:  # the recipe's largest model on this board
            n_in = parse_encoding(rec["input"]).n_inputs(28)
            bits_c = rec["counter_bits"] if rec["counter_threshold"] > 0 else None
            arch = [n_in, plan.largest_hidden(dev.info(), n_in, 10, bits_c, batch), 10]
        s = train_on_device(dev, x[:samples], y[:samples], arch, kinds=kinds, seed=seed,
                            epochs=1, batch=batch, recipe=rec, bits=bits, progress=False)
    st = s["device_stats"]
    ns = st["train_ticks"] * 1e9 / st["tick_hz"]
    return {"board": board, "arch": "-".join(map(str, arch)), "kinds": kinds, "batch": batch,
            "samples": st["trained"], "steps": st["steps"], "train_ticks": st["train_ticks"],
            "tick_hz": st["tick_hz"], "instructions": int(round(ns)),
            "instructions_per_sample": int(round(ns / st["trained"])),
            "ram_static": st["ram_static"], "stack_used": st["stack_used"],
            "ram_total": st["ram_static"] + st["stack_used"], "flash": flash}


def measure_infer(board, model, samples, opt="-O2"):
    (_, _), (xt, _) = load_mnist(download=False)
    elf = sim.build_infer_firmware(model, board=board, options=["-DFW_OPT=" + opt])
    flash, static = size_report(elf)
    with sim.start_qemu(board, elf=elf, icount=0) as proc, \
            Device(proc.port, timeout=30.0) as dev:
        info = dev.info()
        x8, _ = prepare_inputs(xt[:samples], 8, info["model"]["input"])
        dev.predict(x8)
        st = dev.stats()
    ns = st["train_ticks"] * 1e9 / st["tick_hz"]
    return {"board": board, "arch": info["model"]["arch"],
            "kinds": "/".join(sorted(set(info["model"]["kinds"]))),
            "batch": info["max_batch"], "samples": st["trained"], "train_ticks": st["train_ticks"],
            "tick_hz": st["tick_hz"], "instructions": int(round(ns)),
            "instructions_per_sample": int(round(ns / st["trained"])),
            "weight_bytes": info["model"]["weight_bytes"], "scratch": info["arena_bytes"],
            "ram_static": st["ram_static"], "stack_used": st["stack_used"],
            "ram_total": st["ram_static"] + st["stack_used"], "flash": flash}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", action="append", help="default: mps2-an386 (repeatable)")
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--arch", help="the model (default: the recipe's largest on the board)")
    ap.add_argument("--recipe", default="device", help="flipnet.recipes name (default device)")
    ap.add_argument("--weights", default="ternary")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--infer", metavar="MODEL",
                    help="measure the inference-only firmware for MODEL (.flip or exported .h): "
                         "instructions per classified sample")
    ap.add_argument("--opt", default="-O2", help="--infer: FW_OPT of the build (default -O2)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="a table for docs/benchmarks.md")
    a = ap.parse_args()
    arch = [int(v) for v in a.arch.split("-")] if a.arch else None
    if a.infer:
        rows = [measure_infer(b, a.infer, a.samples, a.opt) for b in (a.board or ["mps2-an386"])]
        if a.json:
            print(json.dumps(rows, indent=1))
            return
        if a.markdown:
            print("| board | model | flash (weights) | static RAM | stack high-water | RAM total "
                  "| instructions/sample |")
            print("|---|---|---:|---:|---:|---:|---:|")
        for r in rows:
            if a.markdown:
                print("| %s | %s %s | %d B (%d B) | %d B | %d B | %d B | %d |" % (
                    r["board"], r["arch"], r["kinds"], r["flash"], r["weight_bytes"],
                    r["ram_static"], r["stack_used"], r["ram_total"],
                    r["instructions_per_sample"]))
            else:
                print("%-12s inference %s %s: %d samples, %d instructions/sample (predict, "
                      "batch %d), flash %d B (weights %d), RAM %d B (static %d + stack %d)"
                      % (r["board"], r["arch"], r["kinds"], r["samples"],
                         r["instructions_per_sample"], r["batch"], r["flash"],
                         r["weight_bytes"], r["ram_total"], r["ram_static"], r["stack_used"]))
        return
    rows = [measure(b, a.samples, arch, a.batch, a.bits, a.seed, a.weights, a.recipe)
            for b in (a.board or ["mps2-an386"])]
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    if a.markdown:
        print("| board | flash | static RAM | stack high-water | RAM total | instructions/sample |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print("| %s | %s B | %d B | %d B | %d B | %d |" % (
                r["board"], r["flash"], r["ram_static"], r["stack_used"], r["ram_total"],
                r["instructions_per_sample"]))
        return
    for r in rows:
        print("%-12s %s %s batch %d: %d samples, %d instructions/sample (train step incl. "
              "calibration), RAM %d B (static %d + stack %d)"
              % (r["board"], r["arch"], r["kinds"], r["batch"], r["samples"],
                 r["instructions_per_sample"], r["ram_total"], r["ram_static"],
                 r["stack_used"]))


if __name__ == "__main__":
    main()
