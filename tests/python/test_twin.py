"""Model.fit is the documented loop around the core: replaying it step by step with the NumPy
reference (python/flipnet/reference.py) gives bit-identical weights, shifts and statistics.
Synthetic data (synth.py): the checks never depend on MNIST being present."""

import numpy as np
import pytest

import flipnet
from flipnet import recipes, reference
from flipnet.schedule import Schedule, shuffle_order

VOTES = {"sign": 0, "weighted": 1}
FILTERS = {"hurt": 0, "net": 1}
KINDS = {"ternary": 1, "binary": 2}


@pytest.mark.parametrize("recipe,kinds", [("default", ["ternary", "ternary", "ternary"]),
                                          ("paper", ["ternary", "binary", "ternary"])])
def test_fit_replays_bit_exactly_on_the_reference(synthetic_small, recipe, kinds):
    (x, y), _ = synthetic_small
    n, epochs, batch = 300, 2, 64
    x, y = x[:n], y[:n]
    sizes = [784, 32, 16, 10]
    m = flipnet.Model(sizes, kinds, seed=3, recipe=recipe)
    hist = m.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)

    r = recipes.get(recipe)
    ref = reference.RefModel(sizes, [KINDS[k] for k in kinds], seed=3,
                             rule=dict(vote=VOTES[r["vote"]], filter=FILTERS[r["filter"]],
                                       backprop=0, margin=r["margin"],
                                       calib_target=r["calib_target"],
                                       counter_shift=r["counter_shift"],
                                       counter_threshold=r["counter_threshold"]))
    sched = Schedule.from_recipe(r)
    x8 = flipnet.quantize(x, r["input"]).reshape(n, 784)
    shapes = list(zip(sizes[:-1], sizes[1:]))
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    step = 0
    for e in range(epochs):
        order = shuffle_order(n, 3, e)
        if e == 0:
            ref.calibrate(x8[np.sort(order[:r["calibrate_samples"]])])
        changes = [0] * len(shapes)
        correct = 0
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            k, p = sched.step_params(step, total, shapes)
            if r["counter_threshold"]:
                ref.rule["counter_shift"] = sched.counter_shift_at(step, total)
            st = ref.train_step(x8[idx], y[idx], k, p)
            changes = [a + b for a, b in zip(changes, st.changes)]
            correct += st.correct
            step += 1
            if r["recalibrate_steps"] and ref.steps % r["recalibrate_steps"] == 0:
                ref.calibrate(x8[idx])
        assert hist[e]["changes"] == changes
        assert hist[e]["train_acc"] == correct / n
    assert m.shifts == [int(s) for s in ref.shifts][:len(m.shifts)]
    assert (m.steps, m.samples) == (ref.steps, ref.samples)
    for layer in range(3):
        assert np.array_equal(m.weights(layer), ref.weights[layer]), layer
        if m.has_counters:
            assert np.array_equal(m.counters(layer), ref.counters[layer]), layer


# ---- hysteresis counters (docs/rule.md 7.1) and calib_target ------------------------------
COUNTER_CASES = [
    # kinds, sizes, seed, rule, k fraction, p
    ("ternary", [784, 10], 0, dict(vote=0, counter_shift=0, counter_threshold=2, margin=0),
     0.01, 1.0),
    ("binary", [784, 33, 10], 1, dict(vote=1, counter_shift=5, counter_threshold=7, margin=40,
                                      calib_target=60), 0.004, 0.6),
    ("ternary", [784, 31, 17, 10], 2, dict(vote=0, counter_shift=1, counter_threshold=3,
                                           margin=3, calib_target=20), 0.003, 0.8),
    ("binary", [784, 29, 19, 13, 10], 3, dict(vote=1, counter_shift=7, counter_threshold=1,
                                              margin=100, calib_target=127), 0.5, 0.3),
    ("ternary", [784, 25, 23, 10], 4, dict(vote=1, counter_shift=6, counter_threshold=30,
                                           margin=64, calib_target=64), 1.0, 1.0),
    ("binary", [784, 11, 10], 5, dict(vote=0, counter_shift=0, counter_threshold=127, margin=0,
                                      calib_target=1), 0.02, 1.0),
    # with the decay (counter_decay, the leak of the hybrid recipe)
    ("ternary", [784, 25, 23, 10], 6, dict(vote=1, counter_shift=6, counter_threshold=20,
                                           counter_decay=4, margin=64, calib_target=64), 1.0, 1.0),
    ("binary", [784, 31, 10], 7, dict(vote=0, counter_shift=0, counter_threshold=9,
                                      counter_decay=1, margin=5, calib_target=40), 0.05, 0.7),
    # stochastic rounding (docs/rule.md 7.2), and packed counters of 4 and 2 bits (7.1)
    ("ternary", [784, 25, 10], 8, dict(vote=1, counter_shift=5, counter_threshold=32,
                                       counter_round=1, margin=256, calib_target=96), 1.0, 1.0),
    ("ternary", [784, 27, 10], 9, dict(vote=1, counter_shift=6, counter_threshold=32,
                                       counter_round=1, counter_bits=[4, 8], margin=256,
                                       calib_target=96), 1.0, 1.0),
    ("binary", [784, 21, 13, 10], 10, dict(vote=0, counter_shift=1, counter_threshold=3,
                                           counter_round=1, counter_decay=1,
                                           counter_bits=[2, 4, 8], margin=5, calib_target=40),
     0.05, 0.7),
    ("ternary", [784, 19, 10], 11, dict(vote=1, counter_shift=4, counter_threshold=5,
                                        counter_bits=4, margin=64, calib_target=64), 1.0, 1.0),
]


@pytest.mark.parametrize("kind,sizes,seed,rule,kfrac,p", COUNTER_CASES)
def test_counters_step_by_step_bit_exact(synthetic_small, kind, sizes, seed, rule, kfrac, p):
    """>= 100 steps on batches of the synthetic data: weights, counters and statistics equal
    after every step (C core vs reference.py)."""
    (x, y), _ = synthetic_small
    batch, steps = 37, 110
    x8 = flipnet.quantize(x).reshape(len(x), 784)
    names = {"vote": {0: "sign", 1: "weighted"}, "counter_round": {0: "nearest", 1: "stochastic"}}
    rule = dict(rule)
    bits = rule.pop("counter_bits", 8)
    opts = {k: (names[k][v] if k in names else v) for k, v in rule.items()}
    m = flipnet.Model(sizes, kind, seed=seed, counter_bits=bits, **opts)
    assert m.has_counters
    bits = m.counter_bits
    assert bits == ([bits[0]] * len(bits) if isinstance(bits, int) else bits)
    ref = reference.RefModel(sizes, [KINDS[kind]] * (len(sizes) - 1), seed=seed,
                             rule=dict(rule, filter=0, backprop=0), counter_bits=bits)
    m.calibrate(x8[:500])
    ref.calibrate(x8[:500])
    assert m.shifts == ref.shifts[:len(m.shifts)]
    shapes = list(zip(sizes[:-1], sizes[1:]))
    ks = [max(1, min(n * mm, int(round(kfrac * n * mm)))) for n, mm in shapes]
    pq = int(round(p * 65536))
    order = shuffle_order(len(x), seed, 0)
    total_changes = 0
    for s in range(steps):
        idx = order[(s * batch) % (len(x) - batch):][:batch]
        st = m.train_step(x8[idx], y[idx], ks, pq)
        rs = ref.train_step(x8[idx], y[idx], ks, [pq] * len(ks))
        assert (st["correct"], st["errors"], st["changes"], st["eligible"]) == \
               (rs.correct, rs.errors, rs.changes, rs.eligible), s
        if s % 10 == 9 or s == steps - 1:
            for layer in range(len(shapes)):
                assert np.array_equal(m.weights(layer), ref.weights[layer]), (s, layer)
                assert np.array_equal(m.counters(layer), ref.counters[layer]), (s, layer)
        total_changes += sum(rs.changes)
    assert total_changes > 0 and any((h != 0).any() for h in ref.counters)  # not a no-op run


@pytest.mark.parametrize("first", [0, 1])
def test_fit_with_counters_and_recalibrate_steps_replays_on_the_reference(synthetic_small, first):
    """The research-style recipe (counters, calib_target, recalibrate_steps) through Model.fit;
    with recalibrate_from 1 the recalibrations keep the first layer's shift."""
    (x, y), _ = synthetic_small
    n, epochs, batch, every = 300, 2, 32, 4
    x, y = x[:n], y[:n]
    sizes = [784, 27, 19, 10]
    kinds = ["ternary", "binary", "ternary"]
    opts = dict(vote="weighted", margin=50, calib_target=48, counter_shift=3,
                counter_threshold=4, recalibrate_steps=every, k_frac=0.01,
                recalibrate_from=first)
    m = flipnet.Model(sizes, kinds, seed=7, recipe=dict(opts, counter_shift_end=None))
    hist = m.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)

    r = m.recipe
    ref = reference.RefModel(sizes, [KINDS[k] for k in kinds], seed=7,
                             rule=dict(vote=1, filter=FILTERS[r["filter"]], backprop=0,
                                       margin=50, calib_target=48, counter_shift=3,
                                       counter_threshold=4))
    sched = Schedule.from_recipe(r)
    assert sched.recalibrate_steps == every
    x8 = flipnet.quantize(x, m.input_encoding).reshape(n, 784)
    shapes = list(zip(sizes[:-1], sizes[1:]))
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    step = 0
    recals = []
    for e in range(epochs):
        order = shuffle_order(n, 7, e)
        if e == 0:
            ref.calibrate(x8[np.sort(order[:r["calibrate_samples"]])])
        changes = [0] * len(shapes)
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            k, p = sched.step_params(step, total, shapes)
            st = ref.train_step(x8[idx], y[idx], k, p)
            changes = [a + b for a, b in zip(changes, st.changes)]
            step += 1
            if ref.steps % every == 0 and step <= sched.recalibrate_until * total:
                ref.calibrate(x8[idx], first=first)
                recals.append(list(ref.shifts))
        assert hist[e]["changes"] == changes
    assert len(set(map(tuple, recals))) >= 1
    if first:
        assert len({r[0] for r in recals}) == 1  # the first layer's shift never moved
    assert m.shifts == ref.shifts[:2]
    for layer in range(3):
        assert np.array_equal(m.weights(layer), ref.weights[layer]), layer
        assert np.array_equal(m.counters(layer), ref.counters[layer]), layer


def test_calibrate_from_keeps_a_shift_unless_it_silences_the_layer(synthetic_small):
    """flipnet_calibrate_from(1): the first layer keeps its shift, unless 90% or more of its
    outputs on the batch clamp with it (then it is calibrated too), as reference.py says."""
    (x, _), _ = synthetic_small
    x8 = flipnet.quantize(x[:200], "centered").reshape(200, 784)
    m = flipnet.Model([784, 40, 20, 10], seed=5, input="centered", recipe="paper")
    ref = reference.RefModel([784, 40, 20, 10], [KINDS["ternary"]] * 3, seed=5)
    m.calibrate(x8)
    ref.calibrate(x8)
    good = list(m.shifts)
    for s0, kept in ((good[0] + 1, True), (0, False)):  # one more: kept; 0: everything clamps
        m.shifts = [s0, 0]
        ref.shifts = [s0, 0, 0]
        m.calibrate(x8, first=1)
        ref.calibrate(x8, first=1)
        assert m.shifts == ref.shifts[:2]
        assert (m.shifts[0] == s0) == kept, (s0, m.shifts)
    assert m.shifts[0] == good[0]  # recalibrated as flipnet_calibrate would
