"""Hysteresis counters (docs/rule.md 7.1), calib_target and recalibrate_steps through the Python
API, the model file and the CLI (bit-exactness against the reference is in test_twin.py)."""

import json
import pickle

import numpy as np
import pytest

import flipnet
from flipnet import cli, recipes
from flipnet.errors import ArgumentError, ShapeError
from flipnet.schedule import Schedule

SIZES = [784, 33, 10]


def _batch(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n)


def test_recipes_have_the_keys_with_paper_values():
    r = recipes.PAPER
    assert (r["calib_target"], r["counter_shift"], r["counter_threshold"],
            r["recalibrate_steps"]) == (32, 0, 0, 0)
    dev = recipes.DEVICE  # int8 counters on a microcontroller, beside a reduced input
    assert dev["counter_threshold"] > 0 and dev["counter_bits"] == 8
    assert dev["input"] == "crop20-pool2" and dev["counter_round"] == "stochastic"
    assert recipes.DEFAULT["recalibrate_from"] == 1 and recipes.HYBRID["recalibrate_from"] == 0
    d = recipes.DEFAULT  # the tuned recipe uses the options beyond the paper
    assert d["counter_threshold"] > 0 and d["recalibrate_steps"] > 0
    assert {"calib_target", "counter_shift", "counter_threshold"} <= set(recipes.RULE_KEYS)
    assert Schedule.from_recipe(recipes.get(None, recalibrate_steps=50)).recalibrate_steps == 50
    with pytest.raises(ArgumentError, match="recalibrate_steps"):
        Schedule(recalibrate_steps=-1)
    assert "recalibrate_steps" in Schedule().to_dict()


def test_counters_created_when_the_threshold_is_positive():
    plain = flipnet.Model.ternary(SIZES, recipe="paper")
    assert not plain.has_counters
    assert plain.rule["calib_target"] == 32 and plain.rule["counter_threshold"] == 0
    m = flipnet.Model.ternary(SIZES, counter_threshold=3, counter_shift=2, calib_target=50)
    assert m.has_counters
    assert (m.rule["counter_threshold"], m.rule["counter_shift"], m.rule["calib_target"]) == \
           (3, 2, 50)
    assert m.recipe["counter_threshold"] == 3
    for layer in range(2):
        h = m.counters(layer)
        assert h.dtype == np.int8 and h.shape == m.weights(layer).shape and not h.any()
    # same weights with and without counters
    assert np.array_equal(m.weights(0), plain.weights(0))
    forced = flipnet.Model.binary(SIZES, recipe="paper", counters=True)
    assert forced.has_counters and forced.rule["counter_threshold"] == 0
    r = flipnet.Model(SIZES, "ternary", recipe={"counter_threshold": 5})
    assert r.has_counters
    with pytest.raises(ArgumentError, match="needs counters"):
        flipnet.Model.ternary(SIZES, counters=False, counter_threshold=1)
    with pytest.raises(ArgumentError, match="no counters"):
        plain.counters(0)
    with pytest.raises(ArgumentError, match="no counters"):
        plain.set_counters(0, np.zeros((33, 784), np.int8))


@pytest.mark.parametrize("opts,word", [
    (dict(calib_target=0), "calib_target"), (dict(calib_target=128), "calib_target"),
    (dict(counter_shift=32), "counter_shift"), (dict(counter_shift=-1), "counter_shift"),
    (dict(counter_threshold=128), "counter_threshold"),
    (dict(counter_threshold=-2), "counter_threshold"),
    (dict(counter_threshold=1.5), "counter_threshold"),
    (dict(calib_target=True), "calib_target"),
    (dict(counter_decay=8), "counter_decay"), (dict(counter_decay=-1), "counter_decay"),
    (dict(counter_decay=2, counter_threshold=0), "counter_decay=2 acts on the hysteresis"),
])
def test_bad_rule_values(opts, word):
    with pytest.raises(ArgumentError, match=word):
        flipnet.Model.ternary(SIZES, **opts)


def test_set_counters_and_train_step_updates_them():
    m = flipnet.Model.ternary(SIZES, counter_threshold=2, counter_shift=0, vote="sign")
    h = np.full((10, 33), -5, np.int8)
    m.set_counters(1, h)
    assert np.array_equal(m.counters(-1), h)
    with pytest.raises(ShapeError):
        m.set_counters(1, np.zeros((33, 10), np.int8))
    with pytest.raises(ArgumentError, match="-127, 127"):
        m.set_counters(1, np.full((10, 33), -128, np.int16))
    with pytest.raises(ArgumentError):
        m.counters(2)
    x, y = _batch()
    assert m.rule["counter_decay"] == 0
    m.calibrate(x)
    st = m.train_step(x, y, [100, 50], 1.0)
    assert st["errors"] > 0 and sum(st["changes"]) > 0
    assert m.counters(0).any()


def test_calib_target_moves_the_shifts():
    x, _ = _batch(200)
    shifts = []
    for t in (1, 32, 127):
        m = flipnet.Model.ternary([784, 40, 20, 10], seed=2, calib_target=t)
        shifts.append(m.calibrate(x))
    assert shifts[0][0] > shifts[1][0] > shifts[2][0]


def test_memory_report_counts_counters_separately():
    plain = flipnet.Model.ternary(SIZES, recipe="paper").memory_report(16)
    m = flipnet.Model.ternary(SIZES, recipe="paper", counter_threshold=1).memory_report(16)
    assert plain["counter_bytes"] == 0 and plain["counter_bits_per_weight"] == 0
    assert m["counter_bytes"] == 784 * 33 + 332  # 33 * 10 = 330 -> 332 (4-byte areas)
    assert m["counter_bits_per_weight"] == pytest.approx(8.0, abs=0.01)
    assert m["weight_bytes"] == plain["weight_bytes"]
    assert m["bits_per_weight"] == plain["bits_per_weight"]
    assert m["scratch_train_bytes"] == plain["scratch_train_bytes"]  # no n x m scratch
    assert m["train_total_bytes"] == plain["train_total_bytes"] + m["counter_bytes"]
    assert m["infer_total_bytes"] == plain["infer_total_bytes"]
    assert [ly["counter_bytes"] for ly in m["layers"]] == [784 * 33, 332]


def test_file_round_trip_keeps_counters(tmp_path):
    m = flipnet.Model(SIZES, ["binary", "ternary"], seed=4, counter_threshold=2,
                      counter_shift=1, calib_target=70, counter_decay=3)
    x, y = _batch()
    m.calibrate(x)
    for _ in range(3):
        m.train_step(x, y, [200, 30], 0.5)
    path = tmp_path / "c.flip"
    size = m.save(path)
    plain_size = len(flipnet.Model(SIZES, ["binary", "ternary"], seed=4,
                                   recipe="paper").to_bytes())
    assert size > plain_size + 784 * 33
    for r in (flipnet.load(path), m.copy(), pickle.loads(pickle.dumps(m))):
        assert r.has_counters and r.rule == m.rule and r.shifts == m.shifts
        assert r.recipe["calib_target"] == 70 and r.recipe["counter_threshold"] == 2
        assert r.rule["counter_decay"] == 3  # header byte 63 (docs/format.md)
        for layer in range(2):
            assert np.array_equal(r.counters(layer), m.counters(layer))
            assert np.array_equal(r.weights(layer), m.weights(layer))
        # training continues identically
        a, b = r.train_step(x, y, [50, 10], 0.7), m.copy().train_step(x, y, [50, 10], 0.7)
        assert a == b
    # a file without counters loads without them
    p = flipnet.Model.from_bytes(flipnet.Model.ternary(SIZES, recipe="paper").to_bytes())
    assert not p.has_counters
    # a decay beyond 7 in the header is refused as a bad value, not read
    raw = bytearray(m.to_bytes())
    assert raw[63] == 3
    raw[63] = 8
    with pytest.raises(flipnet.errors.ModelFileError, match="invalid value"):
        flipnet.Model.from_bytes(bytes(raw))


def test_decay_leaks_counters_each_step():
    """docs/rule.md 7.1: with a vote too small to count (shift 31), each step only decays:
    |H| -= |H| >> r, sign kept, values below 2^r stay; no weight moves below tau."""
    m = flipnet.Model([20, 6, 4], "ternary", seed=1, counter_threshold=127, counter_shift=31,
                      counter_decay=2)
    h0 = np.arange(-120, 120, 10, dtype=np.int8)[:24].reshape(4, 6)
    h0[0, :4] = [3, -3, 4, -5]
    m.set_counters(1, h0)
    w0 = [m.weights(layer).copy() for layer in range(2)]
    rng = np.random.default_rng(0)
    x, y = rng.integers(-127, 128, (8, 20), dtype=np.int8), rng.integers(0, 4, 8)
    want = h0.astype(np.int64)
    for _ in range(3):
        st = m.train_step(x, y, [120, 24], 1.0)
        a = np.abs(want)
        want = np.sign(want) * (a - (a >> 2))
        assert np.array_equal(m.counters(1), want)
        assert st["changes"] == [0, 0]
    assert list(want[0, :4]) == [3, -3, 3, -3]  # 3 stays, 4 -> 3, 5 -> 4 -> 3
    for layer in range(2):
        assert np.array_equal(m.weights(layer), w0[layer])


def test_fit_recalibrate_steps():
    x, y = _batch(96, 1)
    m = flipnet.Model.ternary(SIZES, seed=1, calib_target=20)
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, schedule={"recalibrate_steps": 3})
    # the last recalibration was on the last batch (step 6): redo it on a copy
    from flipnet.schedule import shuffle_order
    order = shuffle_order(96, 1, 0)
    c = m.copy()
    c.calibrate(flipnet.quantize(x, m.input_encoding)[order[80:96]])
    assert c.shifts == m.shifts
    with pytest.raises(ArgumentError):
        m.fit(x, y, epochs=1, verbose=0, schedule={"recalibrate_step": 3})


def test_resume_adding_a_counter_rule_to_a_model_without_counters_is_an_error():
    m = flipnet.Model.ternary(SIZES, recipe="paper")
    with pytest.raises(ArgumentError, match="needs a model with counters"):
        m.set_rule(recipes.get(m.recipe, counter_threshold=4))


def test_cli_train_with_counters(capsys, tmp_path, mnist):
    out = tmp_path / "c.flip"
    status = cli.main(["train", "--arch", "784-32-10", "--epochs", "1", "--batch-size", "64",
                       "--limit", "600", "--test-limit", "200", "--counter-threshold", "3",
                       "--counter-shift", "2", "--calib-target", "48", "--recalibrate-steps",
                       "5", "--out", str(out), "--json", "--quiet"])
    o, err = capsys.readouterr()
    assert status == 0, err
    res = json.loads(o.strip().splitlines()[-1])
    assert res["counter_bytes"] == 784 * 32 + 320
    m = flipnet.load(out)
    assert m.has_counters and m.rule["counter_threshold"] == 3 and m.rule["calib_target"] == 48
    assert m.recipe["recalibrate_steps"] == 5
    status = cli.main(["info", str(out)])
    o, err = capsys.readouterr()
    assert status == 0 and "counters" in o
    with pytest.raises(SystemExit):
        cli.main(["train", "--calib-target", "0"])
    capsys.readouterr()
