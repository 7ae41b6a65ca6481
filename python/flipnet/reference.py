"""Plain NumPy implementation of the flipnet training rule: the oracle the C core must match.

Every function here follows docs/rule.md section by section; the C core (csrc/) computes the
same numbers bit for bit. Nothing here is fast on a microcontroller: the vote is held as a
full (m, n) matrix, which the core never does. Integer products are computed with float64
matrix products, which are exact for every value this rule can produce (|values| < 2**53).

Weights are int8 arrays of shape (m, n): W[j, i] is the weight from input i to output j.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TERNARY = 1
BINARY = 2
VOTE_SIGN, VOTE_WEIGHTED = 0, 1
FILTER_HURT, FILTER_NET = 0, 1
BP_SIGN = 0

PURPOSE_INIT, PURPOSE_FLIP, PURPOSE_SHUFFLE, PURPOSE_COUNTER = 1, 2, 3, 4
ROUND_NEAREST, ROUND_STOCHASTIC = 0, 1
CALIB_TARGET = 32
KEY_MAX_VALUE = (1 << 19) - 1

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SEED_SALT = 0x243F6A8885A308D3


# ---- section 6: RNG ---------------------------------------------------------------------
def _mix64(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _C1
        z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def stream(purpose: int, layer: int, step: int) -> int:
    """Stream id of docs/rule.md section 6."""
    return ((purpose & 0xFF) << 56) | ((layer & 0xFF) << 48) | (step & ((1 << 48) - 1))


def rand(seed: int, strm: int, index) -> np.ndarray:
    """flipnet_rand(seed, stream, index) for an array of indices, as uint64."""
    base = _mix64(np.array([seed ^ _SEED_SALT], dtype=np.uint64))
    base = _mix64(base ^ np.uint64(strm))
    idx = np.asarray(index, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(base + (idx + np.uint64(1)) * _GOLDEN)


def init_weights(sizes, kinds, seed: int) -> list[np.ndarray]:
    """Initial weights of every layer (docs/rule.md section 6)."""
    weights = []
    for layer, kind in enumerate(kinds):
        n, m = sizes[layer], sizes[layer + 1]
        u = rand(seed, stream(PURPOSE_INIT, layer, 0), np.arange(n * m, dtype=np.uint64))
        if kind == TERNARY:
            w = ((u >> np.uint64(32)) % np.uint64(3)).astype(np.int8) - 1
        elif kind == BINARY:
            w = np.where((u >> np.uint64(63)) != 0, -1, 1).astype(np.int8)
        else:
            raise ValueError(f"unknown layer kind {kind}")
        weights.append(w.reshape(m, n))
    return weights


# ---- section 1: forward -----------------------------------------------------------------
def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer product of two small-integer matrices (via float64)."""
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def activation(z: np.ndarray, shift: int) -> np.ndarray:
    return np.clip(z >> shift, -127, 127).astype(np.int8)  # numpy >> is floor for negatives


def forward(weights, shifts, x: np.ndarray):
    """Return (logits int32 (B, classes), inputs of every layer [X0, A0, ..., A_{L-2}])."""
    inputs = [np.asarray(x, dtype=np.int8)]
    z = None
    for layer, w in enumerate(weights):
        z = _matmul(inputs[-1], w.T)
        if layer < len(weights) - 1:
            inputs.append(activation(z, shifts[layer]))
    return z.astype(np.int32), inputs


def calibrate(weights, x: np.ndarray, target: int = CALIB_TARGET, first: int = 0,
              shifts=None) -> list[int]:
    """Shifts of every hidden layer from batch x (docs/rule.md section 1); last stays 0. With
    first > 0 the layers before it keep their shifts (from `shifts`), unless at least 90% of
    their outputs on x clamp with it."""
    shifts = list(shifts) if shifts is not None else [0] * len(weights)
    a = np.asarray(x, dtype=np.int8)
    for layer in range(len(weights) - 1):
        z = _matmul(a, weights[layer].T)
        zs = z >> shifts[layer]
        clamped = int(((zs > 127) | (zs < -127)).sum())
        if layer >= first or clamped * 10 >= 9 * z.size:
            mabs = int(np.abs(z).sum()) // z.size
            s = 0
            while s < 31 and (mabs >> s) > target:
                s += 1
            shifts[layer] = s
        a = activation(z, shifts[layer])
    return shifts


def predict(weights, shifts, x):
    logits, _ = forward(weights, shifts, x)
    return np.argmax(logits, axis=1)  # lowest index on ties


# ---- section 2: output error ------------------------------------------------------------
def output_error(logits: np.ndarray, y: np.ndarray, margin: int) -> np.ndarray:
    z = logits.astype(np.int64)
    b = np.arange(len(y))
    wrong = z.copy()
    wrong[b, y] = np.iinfo(np.int64).min
    w = np.argmax(wrong, axis=1)
    err = z[b, y] <= z[b, w] + margin
    d = np.zeros(z.shape, dtype=np.int8)
    d[b[err], y[err]] = 1
    d[b[err], w[err]] = -1
    return d


# ---- section 5: key ---------------------------------------------------------------------
def key(v: np.ndarray) -> np.ndarray:
    v = np.minimum(np.asarray(v, dtype=np.int64), KEY_MAX_VALUE)
    out = v.copy()
    big = v >= 16
    vb = v[big]
    e = np.frexp(vb.astype(np.float64))[1].astype(np.int64) - 1  # exact floor(log2 v)
    out[big] = (e - 3) * 16 + ((vb >> (e - 4)) & 15)
    return out


# ---- sections 3-5: one training step -----------------------------------------------------
@dataclass
class StepStats:
    correct: int = 0
    errors: int = 0
    changes: list = field(default_factory=list)
    eligible: list = field(default_factory=list)
    clipped: list = field(default_factory=list)


def vote(x: np.ndarray, d: np.ndarray, w: np.ndarray, mode: int, filt: int) -> np.ndarray:
    """E (m, n) of docs/rule.md section 4 for input x (B, n), error d (B, m), weights w (m, n)."""
    s = np.sign(x).astype(np.int64) if mode == VOTE_SIGN else x.astype(np.int64)
    sp, sn = np.maximum(s, 0), np.maximum(-s, 0)
    dp, dn = np.maximum(d, 0).astype(np.int64), np.maximum(-d, 0).astype(np.int64)
    pos = _matmul(dp.T, sp) + _matmul(dn.T, sn)    # sum of positive wishes
    neg = -(_matmul(dp.T, sn) + _matmul(dn.T, sp))  # sum of negative wishes
    if filt == FILTER_NET:
        return pos + neg
    return np.where(w == 1, neg, np.where(w == -1, pos, pos + neg))


def select_and_update(w, e, kind, k, p_q16, seed, layer, step):
    """Apply docs/rule.md section 5 to one layer in place; return (changes, eligible)."""
    m, n = w.shape
    d = np.sign(e).astype(np.int8)
    if kind == TERNARY:
        elig = (d != 0) & (w != d)
    else:
        elig = (d != 0) & (w == -d)
    n_elig = int(elig.sum())
    if k == 0 or n_elig == 0:
        return 0, n_elig
    keys = key(np.abs(e))
    hist = np.bincount(keys[elig], minlength=256)
    big_p = p_q16 << 16
    if n_elig <= k:
        kk, r, t = 0, 0, 1
    else:
        at_or_above = np.cumsum(hist[::-1])[::-1]  # at_or_above[K] = sum_{key >= K} H
        kk = int(np.nonzero(at_or_above >= k)[0].max())
        above = int(at_or_above[kk + 1]) if kk < 255 else 0
        r, t = k - above, int(hist[kk])
    jj, ii = np.nonzero(elig)
    index = jj.astype(np.uint64) * np.uint64(n) + ii.astype(np.uint64)
    u = rand(seed, stream(PURPOSE_FLIP, layer, step), index)
    u = (u >> np.uint64(32)).astype(np.int64)
    kv = keys[jj, ii]
    thr = np.where(kv > kk, big_p, (big_p * r) // t)
    change = (kv >= kk) & (u < thr)
    cj, ci = jj[change], ii[change]
    if kind == TERNARY:
        w[cj, ci] = w[cj, ci] + d[cj, ci]
    else:
        w[cj, ci] = -w[cj, ci]
    return int(change.sum()), n_elig


def counter_max(bits: int = 8) -> int:
    """The largest value of a counter of `bits` bits: 2^(bits-1) - 1 (docs/rule.md 7.1)."""
    return (1 << (bits - 1)) - 1


def counter_update(h: np.ndarray, e: np.ndarray, shift: int, decay: int = 0, bits: int = 8,
                   rounding: int = ROUND_NEAREST, seed: int = 0, layer: int = 0,
                   step: int = 0) -> None:
    """docs/rule.md 7.1 and 7.2, in place: H = clamp(H + inc, -hmax, hmax), hmax =
    counter_max(bits); NEAREST inc = round(E / 2^shift) (half up); STOCHASTIC inc =
    floor(E / 2^shift), plus 1 where the rest f = E mod 2^shift is nonzero and the COUNTER
    stream's draw at j*n + i (top 32 bits) is below f * 2^(32 - shift). Then with decay r > 0
    |H| -= |H| >> r."""
    e = np.asarray(e, dtype=np.int64)
    if rounding == ROUND_STOCHASTIC and shift > 0:
        inc = e >> shift
        f = e & ((1 << shift) - 1)
        m, n = e.shape
        u = rand(seed, stream(PURPOSE_COUNTER, layer, step), np.arange(m * n, dtype=np.uint64))
        u = (u >> np.uint64(32)).astype(np.int64).reshape(m, n)
        inc = inc + ((f != 0) & (u < (f << (32 - shift))))
    else:
        inc = (e + (1 << (shift - 1))) >> shift if shift > 0 else e
    hmax = counter_max(bits)
    np.clip(h.astype(np.int64) + inc, -hmax, hmax, out=h, casting="unsafe")
    if decay:
        a = np.abs(h.astype(np.int64))
        h[...] = np.sign(h) * (a - (a >> decay))


def train_step(weights, kinds, shifts, rule, seed, step, x, y, k, p_q16,
               counters=None, counter_bits=None) -> StepStats:
    """One training step (in place on `weights`, and on `counters` when the rule uses them).

    k, p_q16: per-layer lists; counters: per-layer int8 arrays shaped like the weights;
    counter_bits: per-layer counter widths (8, 4, 2; default 8): a layer's counters stay in
    [-hmax, hmax] and its threshold is min(tau, hmax) (docs/rule.md 7.1)."""
    x = np.asarray(x, dtype=np.int8)
    y = np.asarray(y, dtype=np.int64)
    n_layers = len(weights)
    logits, inputs = forward(weights, shifts, x)
    stats = StepStats()
    stats.correct = int((np.argmax(logits, axis=1) == y).sum())
    stats.clipped = [0] * n_layers
    for layer in range(n_layers - 1):
        z = _matmul(inputs[layer], weights[layer].T) >> shifts[layer]
        stats.clipped[layer] = int(((z > 127) | (z < -127)).sum())
    d = output_error(logits, y, rule.get("margin", 0))
    stats.errors = int(np.any(d != 0, axis=1).sum())
    stats.changes = [0] * n_layers
    stats.eligible = [0] * n_layers
    for layer in range(n_layers - 1, -1, -1):
        w = weights[layer]
        d_prev = None
        if layer > 0:
            g = _matmul(d, w)  # (B, n): sum_j d[b, j] * W[j, i]
            a_prev = inputs[layer]
            live = np.abs(a_prev.astype(np.int16)) < 127
            d_prev = np.where(live, np.sign(g), 0).astype(np.int8)
        tau = rule.get("counter_threshold", 0)
        if tau:
            h = counters[layer]
            bits = counter_bits[layer] if counter_bits is not None else 8
            tau_l = min(tau, counter_max(bits))
            shift = rule.get("counter_shift", 0)
            while shift < 31 and tau_l << (shift - rule.get("counter_shift", 0) + 1) <= tau:
                shift += 1  # narrower counters count coarser steps (docs/rule.md 7.1)
            tau = tau_l
            counter_update(h, vote(inputs[layer], d, w, rule.get("vote", VOTE_SIGN), FILTER_NET),
                           shift, rule.get("counter_decay", 0), bits,
                           rule.get("counter_round", ROUND_NEAREST), seed, layer, step)
            w_before = w.copy()
            h64 = h.astype(np.int64)
            e = np.where(h64 >= tau, h64, np.where(h64 <= -tau, h64, 0))
            ch, el = select_and_update(w, e, kinds[layer], int(k[layer]), int(p_q16[layer]),
                                       seed, layer, step)
            h[w != w_before] = 0
        else:
            e = vote(inputs[layer], d, w, rule.get("vote", VOTE_SIGN),
                     rule.get("filter", FILTER_HURT))
            ch, el = select_and_update(w, e, kinds[layer], int(k[layer]), int(p_q16[layer]),
                                       seed, layer, step)
        stats.changes[layer], stats.eligible[layer] = ch, el
        d = d_prev
    return stats


class RefModel:
    """Convenience holder: the reference state of a model (weights, shifts, counters)."""

    def __init__(self, sizes, kinds, seed=0, rule=None, counter_bits=None):
        self.sizes = list(sizes)
        self.counter_bits = list(counter_bits or [8] * len(kinds))
        self.kinds = list(kinds)
        self.seed = int(seed)
        self.rule = dict(vote=VOTE_SIGN, filter=FILTER_HURT, backprop=BP_SIGN, margin=0,
                         calib_target=CALIB_TARGET, counter_shift=0, counter_threshold=0,
                         counter_decay=0, counter_round=ROUND_NEAREST)
        self.rule.update(rule or {})
        self.weights = init_weights(self.sizes, self.kinds, self.seed)
        self.counters = [np.zeros(w.shape, np.int8) for w in self.weights]
        self.shifts = [0] * len(self.kinds)
        self.steps = 0
        self.samples = 0

    def calibrate(self, x, first=0):
        self.shifts = calibrate(self.weights, x, self.rule["calib_target"], first, self.shifts)

    def forward(self, x):
        return forward(self.weights, self.shifts, x)[0]

    def predict(self, x):
        return predict(self.weights, self.shifts, x)

    def train_step(self, x, y, k, p_q16) -> StepStats:
        st = train_step(self.weights, self.kinds, self.shifts, self.rule, self.seed, self.steps,
                        x, y, k, p_q16, self.counters, self.counter_bits)
        self.steps += 1
        self.samples += len(y)
        return st
