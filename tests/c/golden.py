#!/usr/bin/env python3
"""The generator of the golden values pinned in the C tests (tests/c).

    python3 tests/c/golden.py            # print every pinned table / constant as C
    python3 tests/c/golden.py --check    # recompute them and compare with the C sources

What it recomputes, and from what:

* ``test_train.c``, ``test_golden``: the table ``g[]`` (shifts after calibration; totals of
  correct, errors, changes, eligible, clipped over 8 steps; CRC-32 of the int8 weights of all
  layers) - from the NumPy reference, ``python/flipnet/reference.py`` (``RefModel``).
* ``test_counters.c``: ``g_tb_*`` and ``g_btb_*`` (two runs with hysteresis counters: shifts,
  the statistics of every step, final weights and counters) and ``g_calib_*`` (shifts for
  four calibration targets) - from reference.py.
* ``fn_integer_run.h``: ``FN_INTEGER_RUN_CRC0`` / ``CRC1`` / ``CRC2`` (CRC-32 of the whole
  weight area after a fixed 6-step run of a 24-12-10-4 integer model, counters off / on /
  packed 4-, 2- and 8-bit counters with stochastic rounding and decay) - the weights
  and counters from reference.py, packed into the weight area by the layout documented in
  csrc/include/flipnet/flipnet.h (bit planes, then the counters), in NumPy.
* ``test_hybrid.c``: ``FN_HYBRID_RUN_CRC`` (CRC-32 of the weight area, AdamW state included,
  after a fixed 6-step run of a 27-21-13-5 FP32/ternary/FP32 model) - reference.py has no FP32
  layers, so this one comes from the core itself, through the Python bindings
  (flipnet._core; build them first: ``python3 python/flipnet/_build.py``), on this machine.
  The C test checks that x86-64, aarch64 and the Cortex-M4 all give this value.

The test data are those of tests/c/fn_test.h: inputs from ``fn_test_fill_s8`` (the core's RNG,
stream 0xEE << 56) and labels from the core's RNG (stream 0xEF << 56, or the stream the run
names). tests/python/test_golden.py runs ``--check`` in the test suite.
"""

import argparse
import os
import re
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
if os.path.isdir(os.path.join(ROOT, "python", "flipnet")):
    sys.path.insert(0, os.path.join(ROOT, "python"))

from flipnet import reference as R  # noqa: E402

T, B, F = R.TERNARY, R.BINARY, 3
STREAM_X, STREAM_Y = 0xEE << 56, 0xEF << 56


# ---- the test data of fn_test.h ----------------------------------------------------------------
def fill_s8(count, seed):
    """fn_test_fill_s8: (rand(seed, 0xEE << 56, i) >> 32) % 255 - 127."""
    u = R.rand(seed, STREAM_X, np.arange(count, dtype=np.uint64))
    return ((u >> np.uint64(32)) % np.uint64(255)).astype(np.int64).astype(np.int8) - 127


def fill_labels(count, seed, classes):
    """The tests' fill_labels: (rand(seed, 0xEF << 56, b) >> 32) % classes."""
    u = R.rand(seed, STREAM_Y, np.arange(count, dtype=np.uint64))
    return ((u >> np.uint64(32)) % np.uint64(classes)).astype(np.int64)


def crc32_weights(weights):
    crc = 0
    for w in weights:
        crc = zlib.crc32(np.ascontiguousarray(w, dtype=np.int8).tobytes(), crc)
    return crc


# ---- test_train.c: test_golden -------------------------------------------------------------------
#: L, sizes, kinds, vote, filter, margin, k, p (as the rows of the C table begin)
TRAIN_CONFIGS = [
    (3, [60, 24, 16, 4], [T, B, T], 0, 0, 0, [100, 40, 10], [40000, 65536, 30000]),
    (3, [60, 24, 16, 4], [T, B, T], 1, 1, 3, [100, 40, 10], [40000, 65536, 30000]),
    (1, [33, 5], [B], 0, 1, 40, [20], [65536]),
]


def train_golden():
    """Rows of test_train.c's g[]: every field, padded to the C table's array sizes."""
    rows = []
    for L, sizes, kinds, vote, filt, margin, k, p in TRAIN_CONFIGS:
        batch, n0, classes = 16, sizes[0], sizes[-1]
        ref = R.RefModel(sizes, kinds, seed=2026, rule=dict(vote=vote, filter=filt,
                                                           margin=margin))
        ref.calibrate(fill_s8(batch * n0, 1000).reshape(batch, n0))
        shifts = list(ref.shifts)
        tot = [0] * 5
        for step in range(8):
            x = fill_s8(batch * n0, 1000 + step).reshape(batch, n0)
            y = fill_labels(batch, 1000 + step, classes)
            st = ref.train_step(x, y, k, p)
            tot[0] += st.correct
            tot[1] += st.errors
            tot[2] += sum(st.changes)
            tot[3] += sum(st.eligible)
            tot[4] += sum(st.clipped)

        def pad(v, n):
            return list(v) + [0] * (n - len(v))

        rows.append([L] + pad(sizes, 4) + pad(kinds, 3) + [vote, filt, margin] + pad(k, 3) +
                    pad(p, 3) + pad(shifts, 3) + tot + [crc32_weights(ref.weights)])
    return rows


def train_golden_c(rows):
    out = []
    for r in rows:
        out.append("        {%d, {%s}, {%s}, %d, %d, %d, {%s}, {%s}, {%s},\n"
                   "         {%s}, 0x%08xu},"
                   % (r[0], ", ".join(map(str, r[1:5])), ", ".join(map(str, r[5:8])), r[8],
                      r[9], r[10], ", ".join(map(str, r[11:14])),
                      ", ".join(map(str, r[14:17])), ", ".join(map(str, r[17:20])),
                      ", ".join(map(str, r[20:25])), r[25]))
    return "\n".join(out)


# ---- test_counters.c -----------------------------------------------------------------------
#: name: (sizes, kinds, batch, steps, k, p, vote, counter_shift, counter_threshold,
#:        calib_target, margin, seed), as test_golden's golden_cfg a and b
COUNTER_CONFIGS = {
    "tb": ([13, 6, 4], [T, B], 16, 8, [10, 5], [50000, 40000], 0, 1, 2, 40, 0, 3),
    "btb": ([10, 7, 5, 3], [B, T, B], 12, 8, [70, 35, 15], [65536] * 3, 1, 4, 20, 20, 30, 9),
}
CALIB_TARGETS = (1, 5, 32, 127)


def counters_golden():
    """{array name: values} of test_counters.c's golden arrays."""
    out = {}
    for name, (sizes, kinds, batch, steps, k, p, vote, shift, tau, target, margin, seed) \
            in COUNTER_CONFIGS.items():
        n0, classes = sizes[0], sizes[-1]
        ref = R.RefModel(sizes, kinds, seed=seed, rule=dict(
            vote=vote, margin=margin, counter_shift=shift, counter_threshold=tau,
            calib_target=target))
        ref.calibrate(fill_s8(batch * n0, 100 + seed).reshape(batch, n0))
        out["g_%s_shifts" % name] = list(ref.shifts)
        stats = []
        for s in range(steps):
            x = fill_s8(batch * n0, 1000 * seed + s).reshape(batch, n0)
            y = fill_labels(batch, 1000 * seed + s, classes)
            st = ref.train_step(x, y, k, p)
            stats += [st.correct, st.errors] + list(st.changes) + list(st.eligible)
        out["g_%s_stats" % name] = stats
        for layer in range(len(kinds)):
            out["g_%s_w%d" % (name, layer)] = ref.weights[layer].ravel().tolist()
            out["g_%s_h%d" % (name, layer)] = ref.counters[layer].ravel().tolist()
    sizes, kinds = [21, 17, 9, 4], [T, T, B]
    ref = R.RefModel(sizes, kinds, seed=5)
    x = fill_s8(8 * 21, 77).reshape(8, 21)
    for target in CALIB_TARGETS:
        out["g_calib_%d" % target] = list(R.calibrate(ref.weights, x, target))
    return out


# ---- fn_integer_run.h: the weight area after a fixed run, packed in NumPy ----------------------
def pack_counters(h, bits):
    """One layer's counters as flipnet.h lays them out: per row the b-bit two's complement
    fields, counter i at bit i * b (low bits first in a byte), the row padded to whole bytes."""
    if bits == 8:
        return np.ascontiguousarray(h, dtype=np.int8).tobytes()
    per = 8 // bits
    m, n = h.shape
    fields = (h.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint8)
    fields = np.concatenate([fields, np.zeros((m, -n % per), np.uint8)], axis=1)
    shifts = (np.arange(fields.shape[1]) % per * bits).astype(np.uint8)
    return (fields << shifts).reshape(m, -1, per).sum(axis=2).astype(np.uint8).tobytes()


def pack_area(ref, counters):
    """The weight area of csrc/include/flipnet/flipnet.h for integer layers: per layer the
    rows' bit planes (ternary: pos then neg; binary: neg), bpr = ceil(n / 8) bytes each, the
    layer padded to 4 bytes; then with counters each layer's counters (pack_counters), padded
    to 4."""
    def pad4(b):
        return b + b"\0" * (-len(b) % 4)

    area = b""
    for w, kind in zip(ref.weights, ref.kinds):
        planes = [w > 0, w < 0] if kind == T else [w < 0]
        rows = np.concatenate([np.packbits(pl, axis=1, bitorder="little") for pl in planes],
                              axis=1)
        area += pad4(rows.tobytes())
    if counters:
        for h, bits in zip(ref.counters, ref.counter_bits):
            area += pad4(pack_counters(h, bits))
    return area


def integer_run_crc(counters):
    """fn_integer_run(counters): 24-12-10-4 T/B/T, seed 1234, weighted net vote, margin 8,
    calib_target 40 (counters 1: shift 2, threshold 3; counters 2: also 4-, 2- and 8-bit
    counters, stochastic rounding, decay 1); batch 16 of fn_test_fill_s8(99), labels
    rand(7, 1, i) % 4; calibration, then 6 steps with k = 5 + step, p = 40000."""
    sizes, kinds = [24, 12, 10, 4], [T, B, T]
    rule = dict(vote=R.VOTE_WEIGHTED, filter=R.FILTER_NET, margin=8, calib_target=40)
    bits = [8, 8, 8]
    if counters:
        rule.update(counter_shift=2, counter_threshold=3)
    if counters == 2:
        rule.update(counter_round=R.ROUND_STOCHASTIC, counter_decay=1)
        bits = [4, 2, 8]
    ref = R.RefModel(sizes, kinds, seed=1234, rule=rule, counter_bits=bits)
    x = fill_s8(16 * 24, 99).reshape(16, 24)
    y = (R.rand(7, 1, np.arange(16, dtype=np.uint64)) % np.uint64(4)).astype(np.int64)
    ref.calibrate(x)
    for step in range(6):
        ref.train_step(x, y, [5 + step] * 3, [40000] * 3)
    return zlib.crc32(pack_area(ref, counters))


# ---- test_hybrid.c: the hybrid run, through the core -------------------------------------------
def hybrid_run_crc():
    """hybrid_run(): 27-21-13-5 FP32/ternary/FP32 with counters, seed 77, weighted net vote,
    calib_target 40, counter shift 1 / threshold 2; batch 12 of fn_test_fill_s8(5), labels
    rand(3, 2, i) % 5; calibration, then 6 steps of AdamW (lr 3e-3, weight decay 1e-2, betas
    0.9 / 0.999, eps 1e-8) with k = 40, p = 50000 on the ternary layer. Computed by the core
    (flipnet._core), as fn_test_run_crc does in C."""
    from flipnet._core import ffi, lib

    arch = ffi.new("flipnet_arch *")
    arch.n_layers = 3
    arch.counters = 1
    for i, v in enumerate([27, 21, 13, 5]):
        arch.sizes[i] = v
    for i, v in enumerate([F, T, F]):
        arch.kinds[i] = v
    nbytes = ffi.new("size_t *")
    assert lib.flipnet_model_size(arch, nbytes) == 0
    area = ffi.new("uint32_t[]", (nbytes[0] + 3) // 4)  # 4-byte aligned
    m = ffi.new("flipnet_model *")
    assert lib.flipnet_model_init(m, arch, area, nbytes[0], 77) == 0
    m.rule.vote, m.rule.filter, m.rule.backprop = R.VOTE_WEIGHTED, R.FILTER_NET, R.BP_SIGN
    m.rule.calib_target, m.rule.margin = 40, 0
    m.rule.counter_shift, m.rule.counter_threshold = 1, 2
    batch = 12
    sb = ffi.new("size_t *")
    assert lib.flipnet_scratch_size(m, batch, 1, sb) == 0
    scratch = ffi.new("uint32_t[]", (sb[0] + 3) // 4)
    x = np.ascontiguousarray(fill_s8(batch * 27, 5))
    y = np.ascontiguousarray(
        (R.rand(3, 2, np.arange(batch, dtype=np.uint64)) % np.uint64(5)).astype(np.uint16))
    px = ffi.cast("int8_t *", ffi.from_buffer(x))
    py = ffi.cast("uint16_t *", ffi.from_buffer(y))
    assert lib.flipnet_calibrate(m, px, batch, scratch, sb[0]) == 0
    for _ in range(6):
        p = ffi.new("flipnet_step_params *")
        p.lr, p.weight_decay, p.beta1, p.beta2, p.eps = 3e-3, 1e-2, 0.9, 0.999, 1e-8
        p.k[1], p.p_q16[1] = 40, 50000
        assert lib.flipnet_train_step(m, px, py, batch, p, ffi.NULL, scratch, sb[0]) == 0
    return zlib.crc32(bytes(ffi.buffer(area, nbytes[0])))


# ---- all of it, and the comparison with the C sources -------------------------------------------
def compute():
    return {"train": train_golden(), "counters": counters_golden(),
            "FN_INTEGER_RUN_CRC0": integer_run_crc(0),
            "FN_INTEGER_RUN_CRC1": integer_run_crc(1),
            "FN_INTEGER_RUN_CRC2": integer_run_crc(2),
            "FN_HYBRID_RUN_CRC": hybrid_run_crc()}


def _read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


def _ints(text):
    return [int(v, 0) for v in re.findall(r"-?(?:0x[0-9a-fA-F]+|\d+)", text)]


def pinned():
    """The same values as they are written in the C sources."""
    out = {}
    train = _read("test_train.c")
    body = re.search(r"\} g\[\] = \{(.*?)\n    \};", train, re.S).group(1)
    rows = re.findall(r"\{(\d+, \{.*?)\},?\s*(?=\{\d+, \{|$)", body.strip(), re.S)
    out["train"] = [_ints(r.replace("u}", "}").replace("u,", ",")) for r in rows]
    cnt = _read("test_counters.c")
    out["counters"] = {m.group(1): _ints(m.group(2)) for m in re.finditer(
        r"static const \w+ (g_\w+)(?:\[\w*\])+\s*=\s*\{(.*?)\};", cnt, re.S)}
    for name, src in (("FN_INTEGER_RUN_CRC0", "fn_integer_run.h"),
                      ("FN_INTEGER_RUN_CRC1", "fn_integer_run.h"),
                      ("FN_INTEGER_RUN_CRC2", "fn_integer_run.h"),
                      ("FN_HYBRID_RUN_CRC", "test_hybrid.c")):
        out[name] = int(re.search(r"#define %s (\d+)u" % name, _read(src)).group(1))
    return out


def check(got, pins):
    """Differences between recomputed and pinned values (an empty list when they agree)."""
    bad = []
    if got["train"] != pins["train"]:
        bad.append("test_train.c g[]:\n  pinned   %s\n  computed %s" % (pins["train"],
                                                                          got["train"]))
    for name, vals in got["counters"].items():
        if pins["counters"].get(name) != vals:
            bad.append("test_counters.c %s:\n  pinned   %s\n  computed %s"
                       % (name, pins["counters"].get(name), vals))
    extra = set(pins["counters"]) - set(got["counters"])
    if extra:
        bad.append("test_counters.c: pinned arrays the generator does not make: %s"
                   % ", ".join(sorted(extra)))
    for name in ("FN_INTEGER_RUN_CRC0", "FN_INTEGER_RUN_CRC1", "FN_INTEGER_RUN_CRC2",
                 "FN_HYBRID_RUN_CRC"):
        if got[name] != pins[name]:
            bad.append("%s: pinned %du, computed %du" % (name, pins[name], got[name]))
    return bad


def print_c(got):
    print("/* test_train.c, test_golden: g[] */")
    print(train_golden_c(got["train"]))
    print("\n/* test_counters.c */")
    for name, vals in got["counters"].items():
        if "stats" in name:  # one row per step: correct, errors, changes[L], eligible[L]
            width = 2 + 2 * len(COUNTER_CONFIGS[name.split("_")[1]][1])
            rows = ["{%s}" % ", ".join(map(str, vals[i:i + width]))
                    for i in range(0, len(vals), width)]
            print("static const uint32_t %s[][%d] = {%s};" % (name, width, ", ".join(rows)))
            continue
        ctype = "uint8_t" if "shifts" in name or "calib" in name else "int8_t"
        print("static const %s %s[] = {%s};" % (ctype, name, ", ".join(map(str, vals))))
    for name in ("FN_INTEGER_RUN_CRC0", "FN_INTEGER_RUN_CRC1", "FN_INTEGER_RUN_CRC2",
                 "FN_HYBRID_RUN_CRC"):
        print("#define %s %du" % (name, got[name]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the values pinned in tests/c; exit 1 on a difference")
    args = ap.parse_args(argv)
    got = compute()
    if not args.check:
        print_c(got)
        return 0
    bad = check(got, pinned())
    for b in bad:
        print(b, file=sys.stderr)
    n = len(got["train"]) + len(got["counters"]) + 4
    print("%s: %d pinned tables and constants %s" % (
        os.path.relpath(__file__), n, "differ" if bad else "reproduced"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
