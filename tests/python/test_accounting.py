"""Accounting (issue 4 part 4): op counts by hand, energy, the --report table in --json."""

import json

import numpy as np
import pytest

import flipnet
from flipnet import accounting as acc
from flipnet import cli

TINY = ["--arch", "784-32-10", "--epochs", "1", "--batch-size", "64", "--limit", "300",
        "--test-limit", "100", "--out", "", "--quiet"]
LAYERS = [(4, 3, "ternary"), (3, 2, "ternary")]


def tiny_step():
    """One step of a 4-3-2 ternary model, weighted net vote, no counters, both samples errors."""
    m = flipnet.Model([4, 3, 2], "ternary", seed=0, recipe="paper", vote="weighted",
                      filter="net", margin=1000)
    m.set_weights(0, np.array([[1, 0, -1, 1], [0, 1, 1, 0], [-1, 1, 0, 1]], dtype=np.int8))
    m.set_weights(1, np.array([[1, 0, -1], [0, 1, 1]], dtype=np.int8))
    m.shifts = [0]
    nz = m.nonzero()
    x = np.array([[10, -20, 30, 5], [-7, 8, 9, -10]], dtype=np.int8)
    stats = m.train_step(x, np.array([0, 1]), k=[12, 6], p=1.0)
    return m, nz, stats


def test_step_ops_by_hand():
    m, nz, stats = tiny_step()
    # A = [[-15, 10, -25], [-26, 17, 5]]; D_1 = [[1, -1], [-1, 1]], D_0 = sign(G) =
    # [[1, -1, -1], [-1, 1, 1]]; eligible: layer 0 2+3+2, layer 1 1+1; k = all, p = 1
    assert nz == [8, 4]
    assert stats["errors"] == 2 and stats["eligible"] == [7, 2] and stats["changes"] == [7, 2]
    ph = acc.step_ops(LAYERS, m.rule, 2, stats, nz)
    # forward: nonzero adds 2*(8+4), shift+clamp 3*3 per sample
    assert ph["forward"]["int32_add"] == 2 * 8 + 2 * 4 + 2 * 9 == 42
    assert ph["error"]["int32_add"] == 2 * (2 * 1 + 2) == 8
    # backprop into layer 1's 3 inputs: nzD = 4 rows x 3, sign 2 x 2 samples x 3, mask int8
    assert dict(ph["backprop"]) == dict(acc.zero_ops(), int32_add=4 * 3 + 12, int8_add=12)
    # vote: layer 1 nzD 4 x n 3, layer 0 nzD 2*3 x n 4 -> 12 + 24 INT8 mul and INT32 add;
    # sign/eligibility 3 per weight of a row with errors: 3 * (6 + 12)
    assert dict(ph["vote"]) == dict(acc.zero_ops(), int8_mul=36, int32_add=36 + 54)
    # select: per layer 767 (bins) + RNG base (2 mix64: 12 mul, 24 + 4 add) + 2 mul64 (6 mul);
    # per eligible 16 adds + a draw (9 mul, 16 add)
    assert ph["select"]["int32_add"] == 2 * (767 + 28) + 9 * (16 + 16) == 1878
    assert ph["select"]["int32_mul"] == 2 * (12 + 6) + 9 * 9 == 117
    assert dict(ph["update"]) == dict(acc.zero_ops(), int8_add=4 * 9, int32_add=9)
    tot = acc.total(ph)
    assert dict(tot) == {"int8_add": 48, "int8_mul": 36, "int32_add": 2051, "int32_mul": 117,
                         "fp32_add": 0, "fp32_mul": 0}
    # with hysteresis counters: +5 INT32 adds per weight of a row with errors, 2 x 3 INT8 adds
    # per weight; the vote loses its 3 adds per weight
    rule = dict(m.rule, counter_threshold=8)
    pc = acc.step_ops(LAYERS, rule, 2, stats, nz)
    assert dict(pc["counters"]) == dict(acc.zero_ops(), int32_add=5 * 18, int8_add=6 * 18)
    assert pc["vote"]["int32_add"] == 36
    # with the counters' decay: 4 more INT8 operations per weight and step (abs, shift, sub, sign)
    pd = acc.step_ops(LAYERS, dict(rule, counter_decay=4), 2, stats, nz)
    assert dict(pd["counters"]) == dict(acc.zero_ops(), int32_add=5 * 18, int8_add=10 * 18)


def test_energy_is_count_times_pj():
    ops = {"int8_add": 1000, "int8_mul": 100, "int32_add": 10, "int32_mul": 3,
           "fp32_add": 7, "fp32_mul": 2}
    e7 = (1000 * 0.007 + 100 * 0.07 + 10 * 0.03 + 3 * 1.48 + 7 * 0.38 + 2 * 1.31) * 1e-12
    e45 = (1000 * 0.03 + 100 * 0.2 + 10 * 0.1 + 3 * 3.1 + 7 * 0.9 + 2 * 3.7) * 1e-12
    assert acc.energy(ops, "7nm") == pytest.approx(e7, rel=1e-12)
    assert acc.energy(ops, "45nm") == pytest.approx(e45, rel=1e-12)


def test_adamw_reproduces_paper_table1():
    # 784-4096x4-10 with biases, 10 epochs x 235 steps: 125.96B updates, 1.84 J at 7 nm
    params = 784 * 4096 + 3 * 4096 * 4096 + 4096 * 10 + 4 * 4096 + 10
    assert params * 2350 == pytest.approx(125.96e9, rel=1e-4)
    assert acc.energy(acc.adamw_ops(params, 2350), "7nm") == pytest.approx(1.84, abs=0.005)


def test_fit_history_records_ops(synthetic):
    (x, y), _ = synthetic
    m = flipnet.Model([784, 16, 10], "ternary", seed=1)
    h = m.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    rec = h[0]
    assert rec["steps"] == 4 and 0 <= rec["error_steps"] <= 4
    assert rec["calibrations"] >= 1 and rec["nonzero"] == m.nonzero()
    ops = acc.total(rec["ops"])
    assert ops["int32_add"] > 0 and ops["fp32_add"] == ops["fp32_mul"] == 0


def _train(capsys, *extra):
    status = cli.main(["train", *TINY, *extra])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out, err


def test_report_in_json(capsys, mnist):
    out, err = _train(capsys, "--json", "--report")
    res = json.loads(out.strip().splitlines()[-1])
    rep = res["report"]
    row, ref = rep["rows"]
    assert row["fp32_params"] == 0 and row["accuracy"] == res["accuracy"]
    assert row["updates"] == sum(sum(e["changes"]) for e in res["history"])
    assert row["bits"] == res["weight_bytes"] * 8
    assert row["optimizer_bits"] == res["counter_bytes"] * 8
    assert row["energy_7nm_j"] > row["optimizer_energy_7nm_j"] > 0
    assert row["energy_45nm_j"] > row["energy_7nm_j"]
    assert row["energy_7nm_j"] == pytest.approx(acc.energy(rep["ops"]["train"], "7nm"))
    assert ref["fp32_params"] == 784 * 32 + 32 * 10 and ref["updates"] == ref["fp32_params"] * 5
    assert set(rep["ops"]["train"]) == set(acc.KINDS)
    assert "| model | # FP32 params | accuracy |" in err  # the table on stderr


def test_no_report_without_flag(capsys, mnist):
    out, err = _train(capsys, "--json")
    res = json.loads(out.strip().splitlines()[-1])
    assert "report" not in res and "# FP32 params" not in err
