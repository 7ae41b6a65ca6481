"""Hybrid and FP32 models from Python (docs/rule.md 8): kinds, float logits, weights access,
files (format v2), AdamW arguments, memory report, accounting, CLI, and that they learn MNIST.

The FP32 path against PyTorch is tests/python/test_fp32_torch.py."""

import json
import struct

import numpy as np
import pytest

import flipnet
from flipnet import accounting as acc
from flipnet import cli, errors, recipes


def test_kinds_and_recipes():
    h = flipnet.Model([20, 16, 12, 8, 4], "hybrid", seed=1)
    assert h.kinds == ["fp32", "ternary", "ternary", "fp32"]
    assert h.recipe["weights"] == "hybrid" and h.has_fp32 and h.float_output
    # the hybrid recipe leaks the ternary layers' counters (docs/rule.md 7.1); others do not
    assert h.rule["counter_decay"] == recipes.HYBRID["counter_decay"] == 4
    assert flipnet.Model([20, 16, 4], "ternary").rule["counter_decay"] == 0
    f = flipnet.Model.fp32([20, 16, 4], seed=1)
    assert f.kinds == ["fp32", "fp32"] and f.recipe["weights"] == "fp32"
    assert f.rule["counter_threshold"] == 0 and not f.has_counters  # FP32 recipe
    assert flipnet.Model.hybrid("20-16-4").kinds == ["fp32", "fp32"]
    m = flipnet.Model([20, 16, 4], weights=["fp32", "binary"])
    assert m.kinds == ["fp32", "binary"] and not m.float_output
    assert m.recipe["weights"] == ["fp32", "binary"]
    t = flipnet.Model([20, 16, 4], "ternary")
    assert not t.has_fp32 and t.fp32_params == 0
    assert recipes.default_for("hybrid") == "hybrid" and recipes.default_for("binary") == "default"
    with pytest.raises(errors.ArgumentError, match="layer kind"):
        flipnet.Model([20, 16, 4], ["fp32", "float16"])
    # every recipe carries PyTorch's AdamW defaults unless tuned
    for name in ("default", "paper", "fp32"):
        r = recipes.get(name)
        assert (r["lr"], r["weight_decay"], r["betas"], r["eps"]) == (1e-3, 1e-2, [0.9, 0.999],
                                                                      1e-8)


def test_float_logits_predict_and_weights():
    m = flipnet.Model([6, 5, 3], "hybrid", seed=2)
    x = np.random.default_rng(0).integers(-127, 128, (7, 6)).astype(np.int8)
    z = m.forward(x)
    assert z.dtype == np.float32 and z.shape == (7, 3)
    assert np.array_equal(m.predict(x), z.argmax(axis=1))
    # the logits by hand: x / 128, ReLU between two FP32 layers
    h = np.maximum(x.astype(np.float64) / 128 @ m.weights(0).T + m.bias(0), 0)
    assert np.allclose(z, h @ m.weights(1).T + m.bias(1), atol=1e-5)
    w0 = m.weights(0)
    assert w0.dtype == np.float32 and w0.shape == (5, 6)
    assert np.all(np.abs(w0) <= 1 / np.sqrt(6)) and np.all(np.abs(m.bias(0)) <= 1 / np.sqrt(6))
    m.set_weights(0, np.ones((5, 6)), bias=np.arange(5))
    assert np.array_equal(m.weights(0), np.ones((5, 6), np.float32))
    assert np.array_equal(m.bias(0), np.arange(5, dtype=np.float32))
    m.set_weights(0, np.zeros((5, 6)))  # bias kept
    assert np.array_equal(m.bias(0), np.arange(5, dtype=np.float32))
    with pytest.raises(errors.ArgumentError, match="finite"):
        m.set_weights(0, np.full((5, 6), np.nan))
    with pytest.raises(errors.ShapeError):
        m.set_weights(0, np.zeros((5, 6)), bias=np.zeros(4))
    # integer last layer: int32 logits
    mi = flipnet.Model([6, 5, 3], ["fp32", "ternary"], seed=2, counters=True)
    assert mi.forward(x).dtype == np.int32
    with pytest.raises(errors.ArgumentError, match="no bias"):
        mi.bias(1)
    with pytest.raises(errors.ArgumentError, match="FP32"):
        mi.counters(0)
    assert mi.counters(1).shape == (3, 5)
    with pytest.raises(errors.ArgumentError, match=r"\[0, 15\]"):
        mi.shifts = [16]
    mi.shifts = [15]


def test_file_v2_round_trip_and_continued_training(synthetic_small):
    (x, y), _ = synthetic_small
    m = flipnet.Model([784, 24, 16, 10], "hybrid", seed=4)
    m.fit(x[:512], y[:512], epochs=1, batch_size=64, verbose=0)
    data = m.to_bytes()
    assert struct.unpack("<I", data[8:12])[0] == 2 and data[62] & 2  # v2 with the AdamW state
    r = flipnet.Model.from_bytes(data)
    assert r.kinds == m.kinds and r.shifts == m.shifts and r.steps == m.steps
    for l in (0, 2):
        assert np.array_equal(r.weights(l), m.weights(l)) and np.array_equal(r.bias(l), m.bias(l))
        for k, v in m.adamw_state(l).items():
            assert np.array_equal(r.adamw_state(l)[k], v), k
    assert np.array_equal(r.weights(1), m.weights(1))
    assert np.abs(m.adamw_state(0)["exp_avg_sq"]).sum() > 0
    # both continue bit for bit
    sa = m.train_step(x[:64], y[:64], k=[0, 100, 0], p=0.5)
    sb = r.train_step(x[:64], y[:64], k=[0, 100, 0], p=0.5)
    assert sa == sb
    assert np.array_equal(r.weights(0), m.weights(0)) and np.array_equal(r.weights(1), m.weights(1))
    # integer-only models still write v1
    t = flipnet.Model([784, 16, 10], "ternary")
    assert struct.unpack("<I", t.to_bytes()[8:12])[0] == 1


def test_adamw_arguments_are_checked():
    m = flipnet.Model([6, 4, 3], "fp32", seed=0)
    x = np.zeros((2, 6), np.int8)
    for bad in (dict(lr=-1e-3), dict(weight_decay=-1), dict(betas=(1.0, 0.999)),
                dict(betas=(0.9, float("nan"))), dict(eps=0.0), dict(lr=float("inf")),
                dict(betas=0.9)):
        with pytest.raises(errors.ArgumentError, match="lr|betas|AdamW"):
            m.train_step(x, [0, 1], k=0, p=0.0, **bad)
    assert m.steps == 0
    st = m.train_step(x, [0, 1], k=0, p=0.0, lr=0.0)
    assert st["loss"] == pytest.approx(np.log(3) + 0, abs=0.5) and m.steps == 1


def test_memory_report():
    m = flipnet.Model([784, 256, 256, 10], "hybrid", seed=0)
    r = m.memory_report(64)
    fp = 784 * 256 + 256 + 256 * 10 + 10
    assert r["fp32_params"] == m.fp32_params == fp
    assert r["opt_bytes"] == 8 * fp and r["opt_bits_per_param"] == 64
    assert r["layers"][0]["kind"] == "fp32"
    assert r["layers"][0]["weight_bytes"] == 4 * (784 * 256 + 256)
    assert r["layers"][1]["kind"] == "ternary" and r["layers"][1]["bits_per_weight"] == 2.0
    assert r["weight_bytes"] == 4 * fp + 256 * 256 // 4
    assert r["train_total_bytes"] > r["weight_bytes"] + r["opt_bytes"] + r["counter_bytes"]
    assert r["counter_bytes"] == 256 * 256  # counters only for the ternary layer


@pytest.mark.parametrize("kind,floor", [("hybrid", 0.82), ("fp32", 0.82)])
def test_learns_mnist(mnist, kind, floor):
    """A small model learns: catches a wrong sign anywhere in the float path or the vote."""
    (x, y), (xt, yt) = mnist
    m = flipnet.Model([784, 64, 32, 10], kind, seed=0)
    h = m.fit(x[:6000], y[:6000], epochs=2, verbose=0, lr_end=1e-3)  # constant lr, as PyTorch
    assert h[1]["loss"] < h[0]["loss"] < 1.5
    assert m.evaluate(xt[:2000], yt[:2000]) > floor
    if kind == "hybrid":
        assert sum(h[0]["changes"][1:2]) > 0  # the ternary layer trained too


def test_ternary_layer_alone_learns_under_fp32_layers(mnist):
    """FP32 layers frozen (lr 0): the ternary layer's vote on the discretized float error
    lowers the loss by itself."""
    (x, y), _ = mnist
    m = flipnet.Model([784, 64, 32, 10], "hybrid", seed=3)
    m.calibrate(x[:1024])
    first = last = None
    for s in range(60):
        st = m.train_step(x[s * 64:(s + 1) * 64], y[s * 64:(s + 1) * 64], k=[0, 60, 0], p=0.5,
                          lr=0.0, weight_decay=0.0)
        first = st["loss"] if s < 5 and first is None else first
        last = st["loss"]
    losses = []
    for s in range(5):
        xb, yb = x[10000 + s * 256:10000 + (s + 1) * 256], y[10000 + s * 256:10000 + (s + 1) * 256]
        z = m.forward(xb).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        losses.append(float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(yb)), yb])))
    assert np.mean(losses) < first - 0.2, (first, last, losses)


def test_accounting_of_fp32_layers():
    layers = [(4, 3, "fp32"), (3, 2, "fp32")]
    agg = {"samples": 2, "steps": 1, "errors": 2, "error_steps": 1, "eligible": [0, 0],
           "changes": [0, 0], "nonzero": [12, 6]}
    ph = acc.epoch_ops(layers, {"vote": "weighted", "filter": "net", "counter_threshold": 0},
                       agg)
    # forward per sample: layer 0 12 mul + 12 add + 4 mul (x / 128) + 3 ReLU adds; layer 1 6 + 6
    assert ph["forward"]["fp32_mul"] == 2 * (12 + 4 + 6)
    assert ph["forward"]["fp32_add"] == 2 * (12 + 3 + 6)
    # backprop into layer 0's outputs: 6 mul + 6 add, derivative 3 + 3 per sample
    assert (ph["backprop"]["fp32_mul"], ph["backprop"]["fp32_add"]) == (2 * 9, 2 * 9)
    # gradients: mn mul, mn + m add per sample; AdamW 10 mul 4 add per parameter and step
    assert ph["gradients"]["fp32_mul"] == 2 * (12 + 6)
    assert ph["gradients"]["fp32_add"] == 2 * (15 + 8)
    assert (ph["adamw"]["fp32_mul"], ph["adamw"]["fp32_add"]) == (10 * 23, 4 * 23)
    assert ph["error"]["fp32_mul"] > 0 and ph["error"]["int32_add"] == 0
    assert all(ph[p]["int32_add"] == 0 for p in ("vote", "select", "update", "backprop"))


def test_accounting_report_of_a_hybrid_fit(synthetic_small):
    (x, y), (xt, yt) = synthetic_small
    m = flipnet.Model([784, 32, 16, 10], "hybrid", seed=0)
    h = m.fit(x[:640], y[:640], epochs=1, verbose=0)
    rep = acc.report(m, h, m.evaluate(xt, yt))
    row = rep["rows"][0]
    fp = 784 * 32 + 32 + 16 * 10 + 10
    assert row["model"].endswith("hybrid") and row["fp32_params"] == fp
    assert row["updates"] == fp * 10 + sum(h[0]["changes"])
    assert row["bits"] == 32 * fp + 2 * 32 * 16
    assert row["optimizer_bits"] == 64 * fp + 8 * 32 * 16  # AdamW state + ternary counters
    assert rep["ops"]["phases"]["adamw"]["fp32_mul"] == 10 * fp * 10
    assert rep["ops"]["train"]["fp32_mul"] > rep["ops"]["phases"]["adamw"]["fp32_mul"]
    assert row["energy_7nm_j"] > row["optimizer_energy_7nm_j"] > 0
    assert "hybrid" in acc.format_report(rep)


def test_cli_hybrid_train_info_eval(capsys, tmp_path, mnist):
    out_path = tmp_path / "h.flip"
    status = cli.main(["train", "--weights", "hybrid", "--arch", "784-32-16-10", "--epochs", "1",
                       "--limit", "640", "--test-limit", "200", "--lr", "0.002",
                       "--weight-decay", "0", "--out", str(out_path), "--json", "--quiet",
                       "--report"])
    out, err = capsys.readouterr()
    assert status == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["recipe"] == "hybrid" and res["weights"] == "hybrid"
    assert res["kinds"] == ["fp32", "ternary", "fp32"]
    assert res["fp32_params"] == 784 * 32 + 32 + 16 * 10 + 10
    assert res["history"][0]["loss"] > 0 and res["report"]["rows"][0]["fp32_params"] > 0
    m = flipnet.load(out_path)
    assert m.rule["counter_decay"] == 4  # the hybrid recipe's, kept in the file
    assert m.training_log[-1]["adamw"] == {"lr": 0.002, "weight_decay": 0.0, "lr_end": 0.0,
                                           "betas": [0.9, 0.999], "eps": 1e-8}
    assert cli.main(["info", str(out_path), "--json"]) == 0
    info = json.loads(capsys.readouterr()[0].strip().splitlines()[-1])
    assert info["kinds"] == ["fp32", "ternary", "fp32"] and info["float_output"]
    assert info["opt_bytes"] == 8 * info["fp32_params"]
    assert cli.main(["info", str(out_path)]) == 0
    assert "fp32" in capsys.readouterr()[0]
    assert cli.main(["eval", str(out_path), "--limit", "200", "--json"]) == 0
    ev = json.loads(capsys.readouterr()[0].strip().splitlines()[-1])
    assert ev["accuracy"] == pytest.approx(res["accuracy"])
    # bad values are usage errors
    with pytest.raises(SystemExit):
        cli.main(["train", "--weights", "hybrid", "--lr", "-1"])
    with pytest.raises(SystemExit):
        cli.main(["train", "--weights", "hybrid", "--counter-decay", "8"])
    capsys.readouterr()
    # --counter-decay overrides the recipe
    out2 = tmp_path / "h0.flip"
    assert cli.main(["train", "--weights", "hybrid", "--arch", "784-16-8-10", "--epochs", "1",
                     "--limit", "128", "--test-limit", "50", "--counter-decay", "0", "--quiet",
                     "--out", str(out2)]) == 0
    assert flipnet.load(out2).rule["counter_decay"] == 0


def test_lr_end_decays_the_learning_rate(synthetic_small):
    (x, y), _ = synthetic_small
    a = flipnet.Model([784, 16, 10], "fp32", seed=0)
    b = a.copy()
    c = a.copy()
    a.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0, lr_end=1e-3)  # constant
    b.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0, lr_end=0.0)
    # 4 steps: lr 1e-3, 2/3e-3, 1/3e-3, 0: the runs differ from the second step on
    assert not np.array_equal(a.weights(0), b.weights(0))
    assert b.training_log[-1]["adamw"]["lr_end"] == 0.0
    assert c.recipe["lr_end"] == 0.0  # the fp32 recipe's default does the same
    c.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    assert np.array_equal(b.weights(0), c.weights(0))
    with pytest.raises(errors.ArgumentError, match="lr_end"):
        a.fit(x[:64], y[:64], epochs=1, verbose=0, lr_end=-1.0)
