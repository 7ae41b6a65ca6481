"""Accounting of a training run: parameter updates, bits of state, operations by kind, energy.

The operation counts come from an explicit op model of what the core computes
(docs/rule.md; ``csrc/src/train.c``), driven by the counts the core reports per step
(``errors``, ``eligible[l]``, ``changes[l]``) summed per epoch by :meth:`flipnet.Model.fit`,
the layer sizes, and the number of nonzero weights per layer. Six kinds are counted, the
ones of the per-operation energy table the paper uses (BitNet's, from Horowitz / Jouppi):
``int8_add, int8_mul, int32_add, int32_mul, fp32_add, fp32_mul``.

Op model (counted per step of batch ``B``, layer ``l`` with ``n`` inputs and ``m`` outputs,
``E`` = samples with an output error in the step, ``C`` = classes):

conventions
    a compare, a sign, an abs, a shift, a clamp bound and a logical (and/or/xor) operation
    count as one *add* of the operands' width (int8 operands: INT8 add, wider: INT32 add);
    a 64-bit add/xor/shift is 2 INT32 adds and a 64-bit multiply (low 64 bits of the
    product) is ``MUL64_INT32_MULS = 3`` INT32 multiplies (schoolbook: lo*lo, lo*hi, hi*lo).
    Loop indices, addresses, memsets and loads/stores are not counted.
forward (per sample)
    ``nz_l`` INT32 adds per layer (one add or subtract of an int8 input per nonzero weight;
    no multiplies), plus ``3 m`` INT32 adds per hidden layer (shift, two clamp bounds).
    ``nz_l`` is not known per step: we use the mean of the layer's nonzero count at the start
    and at the end of each epoch (binary layers: every weight is nonzero).
output error (per sample)
    ``2 (C - 1) + 2`` INT32 adds (prediction argmax, argmax over the wrong classes, the margin
    add and compare).
backprop, ``G = D W^T`` (layers ``l = L-1 .. 1``, over the error samples only)
    ``nzD_l * n`` INT32 adds, ``nzD_l`` = nonzero entries of ``D_l``: exactly ``2 E`` at the
    last layer; at a hidden layer the core does not report it and we use the upper bound
    ``E * m`` (every unit of every error sample carries an error). Then per error sample and
    input: 2 INT32 adds (sign of G) and 2 INT8 adds (activation not at the clamp).
vote (every layer)
    ``nzD_l * n`` (INT8 mul ``d * x`` + INT32 add) for the sum ``S = P + N``; the sign vote adds
    2 INT8 adds per term (``sign(x)``); the HURT filter adds ``A = P - N``: per term 1 INT8 add
    (``|x|``) + 1 INT32 add, and 4 INT32 adds per weight of a row with errors (P, N, select).
    The vote is counted once (the C core recomputes, without counters, the rows that reach the
    threshold in a second pass; not counted).
    Rows with errors: ``m`` per step with errors (upper bound; exact for hidden layers in
    practice, the last layer has at most ``min(C, 2 E)``).
no counters, per weight of a row with errors
    3 INT32 adds (sign of E, eligibility).
hysteresis counters (docs/rule.md 7.1), per weight of a row with errors
    5 INT32 adds (rounding add, shift, add to H, two clamp bounds); per weight and step (all
    weights, pass 1 and pass 2, an upper bound for pass 2 which visits only rows reaching the
    threshold): 2 x 3 INT8 adds (direction from H: two compares; eligibility: one compare);
    with ``counter_decay`` > 0, 4 INT8 adds more per weight and step (abs, shift, subtract,
    sign back).
selection, per eligible weight (``eligible[l]``, exact from the core)
    8 INT32 adds in pass 1 (abs, key: 5, histogram increment, row max), 8 in pass 2 (abs, key:
    5, key threshold compare, ``u < thr``), one RNG draw (below). Every eligible weight is
    counted as drawn: exact when ``k >= eligible`` (the default recipe, k = all weights),
    an upper bound otherwise. Per layer and step: ``2 * 256 + 255`` INT32 adds (eligible sum,
    threshold scan over the 256 bins) and 2 64-bit multiplies (``P * r / t``, the division
    counted as a multiply) + the RNG base (2 mix64 = 4 64-bit multiplies, 14 64-bit adds).
RNG draw ``mix64(base + (index + 1) * golden)``
    3 64-bit multiplies (9 INT32 mul) and 8 64-bit add/xor/shift (16 INT32 adds).
update, per changed weight (``changes[l]``, exact from the core)
    ternary: 1 INT8 add (``w + d``) + 3 INT8 adds (bit-plane clear/set); binary: 1 INT8 add
    (xor); + 1 INT32 add (the change counter).
calibration (per calibration batch of ``b`` samples, hidden layers)
    forward twice (``2 nz_l`` INT32 adds per sample) + ``3 m`` (shift/clamp) + ``3 m``
    (``|Z|`` and a 64-bit sum) INT32 adds per sample; per layer and calibration 1 INT32 mul
    (the mean's division) and 64 INT32 adds (the shift search).
inference (per sample)
    the forward above + ``C - 1`` INT32 adds (argmax).

No float operation happens in the core for ternary/binary layers: the FP32 columns of an
integer run are 0 (the schedule's floats, k and p per step, are host bookkeeping, not counted).

FP32 layers (docs/rule.md 8; per sample unless said, layer with ``n`` inputs, ``m`` outputs)
    forward: ``m n`` FP32 mul and ``m n`` FP32 add (dot products and the bias); ``n`` FP32 mul
    to read int8 inputs as ``a / 128`` (first layer, or after an integer layer); after the layer
    ReLU ``m`` FP32 add (a compare) when an FP32 layer follows, or the int8 output
    ``round(z 2^s)`` ``m`` FP32 mul + 3 ``m`` FP32 add (round, two clamp bounds) when an
    integer layer follows. An integer layer feeding an FP32 one: ``m`` FP32 mul (``a / 128``).
    output error of an FP32 last layer: softmax and cross-entropy, per class 2 exps
    (``EXP_MUL``, ``EXP_ADD`` each) + 2 mul + 3 add, per sample one log (``LOG_MUL``,
    ``LOG_ADD``) (the core computes these in double; counted as FP32).
    backprop into layer ``l - 1`` (``l > 0``; from an FP32 layer or an integer layer whose error
    is float): ``m n`` FP32 mul + ``m n`` FP32 add, then the derivative ``n`` mul + ``n`` add.
    An integer layer whose error is float discretizes it: 3 ``m`` FP32 add (abs, mean, compare);
    its vote is counted as above with ``nzD = E m`` (upper bound).
    gradients: ``m n`` FP32 mul + ``m n + m`` FP32 add (W and bias).
    AdamW (phase ``adamw``, per step): ``ADAMW_MUL`` FP32 mul + ``ADAMW_ADD`` FP32 add per FP32
    parameter (the paper's count below); every FP32 parameter is one update per step.
    calibration of an FP32 layer feeding an integer one: its forward + 16 candidate shifts,
    ``16 m`` FP32 mul and ``64 m`` FP32 add per calibration sample.

AdamW reference (the paper's section 4.4, our reading): per step, AdamW touches every one of
the ``N`` parameters with 10 FP32 multiplies and 4 FP32 adds (PyTorch's algorithm: decoupled
weight decay ``theta -= lr*wd*theta`` 1 mul 1 add; ``m = b1 m + (1-b1) g`` 2 mul 1 add;
``v = b2 v + (1-b2) g^2`` 3 mul 1 add; bias corrections 2 mul; ``theta -= lr * m_hat /
sqrt(v_hat)`` 2 mul 1 add, the square root and ``+ eps`` not counted). This is the one
count that reproduces the paper's Table 1: 53,600,266 parameters (784-4096-4096-4096-4096-10
with biases) x 2,350 steps (10 epochs of 235 batches of 256) = 125.96B updates, x (10 x 1.31
+ 4 x 0.38) pJ = 1.84 J. Forward and backward passes are not in the paper's number; the AdamW
row here counts the optimizer only, and so does ``optimizer`` of our runs (phases vote,
counters, select, update), beside the whole step (``train``).
"""

from collections import OrderedDict

__all__ = ["KINDS", "PJ", "MUL64_INT32_MULS", "ADAMW_MUL", "ADAMW_ADD", "PAPER_TABLE1",
           "zero_ops", "add_ops", "energy", "forward_ops", "step_ops", "epoch_ops",
           "adamw_ops", "report", "format_report", "OPTIMIZER_PHASES"]

KINDS = ("int8_add", "int8_mul", "int32_add", "int32_mul", "fp32_add", "fp32_mul")

#: energy per operation in pJ (BitNet, from Horowitz / Jouppi), per process node
PJ = {
    "7nm": {"int8_add": 0.007, "int8_mul": 0.07, "int32_add": 0.03, "int32_mul": 1.48,
            "fp32_add": 0.38, "fp32_mul": 1.31},
    "45nm": {"int8_add": 0.03, "int8_mul": 0.2, "int32_add": 0.1, "int32_mul": 3.1,
             "fp32_add": 0.9, "fp32_mul": 3.7},
}

MUL64_INT32_MULS = 3
ADD64_INT32_ADDS = 2
#: AdamW, FP32 operations per parameter and step (see the module docstring)
ADAMW_MUL = 10
ADAMW_ADD = 4
KEY_BINS = 256

#: transcendental functions of the softmax error, FP32 ops each (Horner degree 13 + reduction)
EXP_MUL = 15
EXP_ADD = 15
LOG_MUL = 13
LOG_ADD = 14

#: phases whose ops form the optimizer's share (comparable to the paper's energy column)
OPTIMIZER_PHASES = ("vote", "counters", "select", "update", "adamw")
PHASES = ("forward", "error", "backprop", "gradients") + OPTIMIZER_PHASES + ("calibrate",)

#: the paper's Table 1 (MNIST, 784-4096x4-10, 10 epochs, batch 256), for comparison
PAPER_TABLE1 = [
    {"model": "paper Full-Precision", "fp32_params": 53.6e6, "accuracy": 0.9833,
     "updates": 125.96e9, "bits": 1.72e9, "energy_7nm_j": 1.84},
    {"model": "paper Hybrid", "fp32_params": 3.26e6, "accuracy": 0.9715,
     "updates": 14.02e9, "bits": 130.68e6, "energy_7nm_j": 0.24},
    {"model": "paper Full-Ternary", "fp32_params": 0, "accuracy": 0.9446,
     "updates": 6.78e9, "bits": 84.79e6, "energy_7nm_j": 0.13},
]


def zero_ops():
    return OrderedDict((k, 0) for k in KINDS)


def add_ops(a, b, times=1):
    """a += b * times (dicts of kind -> count); returns a."""
    for k in KINDS:
        a[k] = a.get(k, 0) + b.get(k, 0) * times
    return a


def energy(ops, node="7nm"):
    """Joules: sum(count x pJ) x 1e-12."""
    table = PJ[node]
    return sum(ops.get(k, 0) * table[k] for k in KINDS) * 1e-12


def _ops(**kw):
    o = zero_ops()
    o.update(kw)
    return o


def _mix64():
    return _ops(int32_mul=2 * MUL64_INT32_MULS, int32_add=6 * ADD64_INT32_ADDS)


_DRAW = _ops(int32_mul=3 * MUL64_INT32_MULS, int32_add=8 * ADD64_INT32_ADDS)
_RNG_BASE = add_ops(add_ops(zero_ops(), _mix64(), 2), _ops(int32_add=2 * ADD64_INT32_ADDS))


def forward_ops(layers, nonzero, samples, argmax=True):
    """Ops of ``samples`` forward passes (inference: with the argmax).

    ``layers``: list of ``(n, m, kind)``; ``nonzero``: nonzero weights per layer (unused for
    FP32 layers, which compute every product).
    """
    o = zero_ops()
    L = len(layers)
    for l, (n, m, kind) in enumerate(layers):
        nxt = layers[l + 1][2] if l < L - 1 else None
        if kind == "fp32":
            o["fp32_mul"] += m * n * samples
            o["fp32_add"] += m * n * samples
            if l == 0 or layers[l - 1][2] != "fp32":
                o["fp32_mul"] += n * samples  # int8 input read as a / 128
            if nxt == "fp32":
                o["fp32_add"] += m * samples  # ReLU
            elif nxt is not None:
                o["fp32_mul"] += m * samples  # round(z 2^s), clamped
                o["fp32_add"] += 3 * m * samples
            continue
        o["int32_add"] += nonzero[l] * samples
        if l < L - 1:
            o["int32_add"] += 3 * m * samples
    if argmax:
        o["fp32_add" if layers[-1][2] == "fp32" else "int32_add"] += (layers[-1][1] - 1) * samples
    return o


def epoch_ops(layers, rule, agg):
    """Ops by phase (dict phase -> ops) for aggregated step counts.

    ``layers``: ``(n, m, kind)`` per layer, kind ``"ternary"`` / ``"binary"``; ``rule``: the
    model's rule dict (vote, filter, counter_threshold); ``agg``: ``samples``, ``steps``,
    ``errors`` (error samples), ``error_steps`` (steps with at least one error),
    ``eligible`` and ``changes`` (per layer), ``nonzero`` (per layer, see the module
    docstring), ``calib_samples`` and ``calibrations`` (0 when absent).
    """
    L = len(layers)
    C = layers[-1][1]
    S, T = agg["samples"], agg["steps"]
    E, Te = agg["errors"], agg["error_steps"]
    nz = agg["nonzero"]
    counters = rule.get("counter_threshold", 0) > 0
    weighted = rule.get("vote") == "weighted"
    hurt = rule.get("filter") == "hurt" and not counters
    ph = OrderedDict((p, zero_ops()) for p in PHASES)

    ph["forward"] = forward_ops(layers, nz, S, argmax=False)
    if layers[-1][2] == "fp32":  # softmax cross-entropy
        er = ph["error"]
        er["fp32_mul"] += (C * (2 * EXP_MUL + 2) + LOG_MUL) * S
        er["fp32_add"] += (C * (2 * EXP_ADD + 3) + LOG_ADD + C - 1) * S
    else:
        ph["error"]["int32_add"] += (2 * (C - 1) + 2) * S
    sel_steps = T if counters else Te
    for l, (n, m, kind) in enumerate(layers):
        nxt = layers[l + 1][2] if l < L - 1 else None
        if nxt is not None and kind != "fp32" and nxt == "fp32":
            ph["forward"]["fp32_mul"] += m * S  # a / 128 for the FP32 layer above
        # float error at this layer's outputs: an FP32 layer at or above it
        ferr = any(k == "fp32" for (_n, _m, k) in layers[l:])
        if ferr and l > 0:
            b = ph["backprop"]
            b["fp32_mul"] += m * n * S + n * S
            b["fp32_add"] += m * n * S + n * S
        if kind == "fp32":
            g = ph["gradients"]
            g["fp32_mul"] += m * n * S
            g["fp32_add"] += (m * n + m) * S
            a = ph["adamw"]
            a["fp32_mul"] += ADAMW_MUL * (m * n + m) * T
            a["fp32_add"] += ADAMW_ADD * (m * n + m) * T
            continue
        if ferr:
            ph["backprop"]["fp32_add"] += 3 * m * S  # discretize
            nzd = E * m
        else:
            nzd = 2 * E if l == L - 1 else E * m
            # integer backprop (into an FP32 layer below too; the cast is not counted)
            if l > 0:
                b = ph["backprop"]
                b["int32_add"] += nzd * n + 2 * E * n
                b["int8_add"] += 2 * E * n
        v = ph["vote"]
        v["int8_mul"] += nzd * n
        v["int32_add"] += nzd * n
        if not weighted:
            v["int8_add"] += 2 * nzd * n
        row_weights = Te * m * n  # weights of rows with errors
        if hurt:
            v["int8_add"] += nzd * n
            v["int32_add"] += nzd * n + 4 * row_weights
        if counters:
            c = ph["counters"]
            c["int32_add"] += 5 * row_weights
            c["int8_add"] += 2 * 3 * T * n * m
            if rule.get("counter_decay", 0):  # |H| -= |H| >> r: abs, shift, sub, sign back
                c["int8_add"] += 4 * T * n * m
        else:
            v["int32_add"] += 3 * row_weights
        el, ch = agg["eligible"][l], agg["changes"][l]
        s = ph["select"]
        s["int32_add"] += 16 * el + (2 * KEY_BINS + KEY_BINS - 1) * sel_steps
        s["int32_mul"] += 2 * MUL64_INT32_MULS * sel_steps
        add_ops(s, _DRAW, el)
        add_ops(s, _RNG_BASE, sel_steps)
        u = ph["update"]
        u["int8_add"] += (4 if kind == "ternary" else 1) * ch
        u["int32_add"] += ch
    cs, cn = agg.get("calib_samples", 0), agg.get("calibrations", 0)
    for l in range(L - 1):
        n, m, kind = layers[l]
        c = ph["calibrate"]
        if kind == "fp32":
            c["fp32_mul"] += (m * n + n + 16 * m) * cs
            c["fp32_add"] += (m * n + 64 * m) * cs
            continue
        c["int32_add"] += (2 * nz[l] + 6 * m) * cs + 64 * cn
        c["int32_mul"] += cn
    return ph


def step_ops(layers, rule, batch, stats, nonzero):
    """Ops by phase of one training step from the core's stats dict (Model.train_step)."""
    agg = {"samples": batch, "steps": 1, "errors": stats["errors"],
           "error_steps": 1 if stats["errors"] else 0, "eligible": stats["eligible"],
           "changes": stats["changes"], "nonzero": nonzero}
    return epoch_ops(layers, rule, agg)


def total(phases, which=None):
    o = zero_ops()
    for p, ops in phases.items():
        if which is None or p in which:
            add_ops(o, ops)
    return o


def adamw_ops(params, steps):
    """FP32 ops of ``steps`` AdamW steps on ``params`` parameters (optimizer only)."""
    return _ops(fp32_mul=ADAMW_MUL * params * steps, fp32_add=ADAMW_ADD * params * steps)


def _layers(model):
    return [(ly["n"], ly["m"], ly["kind"]) for ly in model.memory_report(1)["layers"]]


def report(model, history, accuracy, name=None, test_samples=0):
    """Table-1-shaped accounting of a finished fit (``history`` from :meth:`Model.fit`).

    Returns a JSON-ready dict: ``rows`` (this run, and the AdamW FP32 reference of the same
    size and steps), ``ops`` (by phase and total), ``energy_j`` per node, ``inference``
    (ops and energy per sample with the final weights) and ``paper_table1``.
    """
    layers = _layers(model)
    mem = model.memory_report(1)
    phases = OrderedDict((p, zero_ops()) for p in PHASES)
    steps = updates = 0
    for rec in history:
        ops = rec.get("ops")
        if ops is None:
            raise ValueError("history record without 'ops' (fit of an older flipnet?)")
        for p, o in ops.items():
            add_ops(phases.setdefault(p, zero_ops()), o)
        steps += rec.get("steps", 0)
        updates += sum(rec["changes"])
    train = total(phases)
    opt = total(phases, OPTIMIZER_PHASES)
    nonzero = [int(v) for v in model.nonzero()]
    infer = forward_ops(layers, nonzero, 1)
    kinds = sorted(set(model.kinds))
    if len(kinds) == 1:
        kind = "full-" + kinds[0]
    elif model.kinds == ["fp32"] + ["ternary"] * (len(model.kinds) - 2) + ["fp32"]:
        kind = "hybrid"
    else:
        kind = "mixed " + "/".join(kinds)
    name = name or "flipnet %s %s" % (model.arch, kind)
    n = model.n_weights
    fp32 = model.fp32_params
    updates += fp32 * steps  # AdamW updates every FP32 parameter every step
    row = OrderedDict([
        ("model", name), ("fp32_params", fp32), ("accuracy", accuracy), ("updates", updates),
        ("bits", mem["weight_bytes"] * 8),
        ("optimizer_bits", (mem["counter_bytes"] + mem.get("opt_bytes", 0)) * 8),
        ("steps", steps),
        ("energy_7nm_j", energy(train, "7nm")), ("energy_45nm_j", energy(train, "45nm")),
        ("optimizer_energy_7nm_j", energy(opt, "7nm")),
        ("optimizer_energy_45nm_j", energy(opt, "45nm"))])
    aw = adamw_ops(n, steps)
    ref = OrderedDict([
        ("model", "AdamW FP32 reference, %d params (optimizer only)" % n), ("fp32_params", n),
        ("accuracy", None), ("updates", n * steps), ("bits", 32 * n),
        ("optimizer_bits", 64 * n), ("steps", steps),
        ("energy_7nm_j", energy(aw, "7nm")), ("energy_45nm_j", energy(aw, "45nm")),
        ("optimizer_energy_7nm_j", energy(aw, "7nm")),
        ("optimizer_energy_45nm_j", energy(aw, "45nm"))])
    out = OrderedDict([
        ("rows", [row, ref]),
        ("ops", OrderedDict([("train", train), ("optimizer", opt), ("phases", phases)])),
        ("energy_j", {node: {"train": energy(train, node), "optimizer": energy(opt, node)}
                      for node in PJ}),
        ("inference", OrderedDict([
            ("nonzero", nonzero), ("ops_per_sample", infer),
            ("energy_per_sample_j", {node: energy(infer, node) for node in PJ}),
            ("test_samples", int(test_samples)),
            ("test_energy_j", {node: energy(infer, node) * test_samples for node in PJ})])),
        ("pj_per_op", PJ),
        ("paper_table1", PAPER_TABLE1),
    ])
    return out


def _si(v):
    if v is None:
        return "-"
    v = float(v)
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return "%.2f%s" % (v / div, suf)
    return "%g" % v


def format_report(rep):
    """The report as a Markdown table shaped like the paper's Table 1 (plus the paper rows)."""
    head = ("| model | # FP32 params | accuracy | # updates | # bits (model) | # bits (optimizer) "
            "| energy 7nm [J] | energy 45nm [J] | optimizer-only 7nm [J] |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rep["rows"]:
        acc = "-" if r["accuracy"] is None else "%.2f%%" % (100 * r["accuracy"])
        lines.append("| %s | %s | %s | %s | %s | %s | %.4g | %.4g | %.4g |" % (
            r["model"], _si(r["fp32_params"]), acc, _si(r["updates"]), _si(r["bits"]),
            _si(r["optimizer_bits"]), r["energy_7nm_j"], r["energy_45nm_j"],
            r["optimizer_energy_7nm_j"]))
    for r in rep.get("paper_table1", []):
        lines.append("| %s | %s | %.2f%% | %s | %s | - | %.2f | - | %.2f |" % (
            r["model"], _si(r["fp32_params"]), 100 * r["accuracy"], _si(r["updates"]),
            _si(r["bits"]), r["energy_7nm_j"], r["energy_7nm_j"]))
    return "\n".join(lines)
