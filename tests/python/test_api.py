"""flipnet.Model: construction, inputs, inference, training, weights, files."""

import json
import os

import numpy as np
import pytest

import flipnet
from flipnet import errors
from flipnet.schedule import flipnet_rand, stream

SMALL = [784, 32, 10]


def _x(rng, n, dtype=np.uint8):
    if dtype == np.uint8:
        return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return rng.integers(-127, 128, size=(n, 784)).astype(np.int8)


# ---- construction --------------------------------------------------------------------------
def test_constructors_and_properties():
    m = flipnet.Model.ternary([784, 256, 256, 10], seed=3)
    assert m.sizes == [784, 256, 256, 10]
    assert m.arch == "784-256-256-10"
    assert m.kinds == ["ternary"] * 3
    assert (m.n_layers, m.n_inputs, m.n_classes, m.seed) == (3, 784, 10, 3)
    assert (m.steps, m.samples) == (0, 0)
    assert m.n_weights == 784 * 256 + 256 * 256 + 256 * 10
    b = flipnet.Model.binary("784-64-10", seed=1)
    assert b.kinds == ["binary", "binary"]
    mixed = flipnet.Model([784, 64, 10], ["ternary", "binary"], seed=0, recipe="paper", margin=7,
                          vote="sign", filter="net")
    assert mixed.kinds == ["ternary", "binary"]
    assert mixed.rule == {"vote": "sign", "filter": "net", "backprop": "sign", "margin": 7,
                          "calib_target": 32, "counter_shift": 0, "counter_threshold": 0,
                          "counter_decay": 0, "counter_round": "nearest"}
    assert "784-64-10" in repr(mixed)


def test_default_rule_comes_from_recipe():
    d = flipnet.recipes.DEFAULT
    m = flipnet.Model.ternary(SMALL)
    assert m.rule == {k: d[k] for k in flipnet.recipes.RULE_KEYS}
    p = flipnet.Model.ternary(SMALL, recipe="paper")
    assert p.rule["vote"] == flipnet.recipes.PAPER["vote"]
    assert p.rule["margin"] == flipnet.recipes.PAPER["margin"]


@pytest.mark.parametrize("sizes", [[784], [784, 0, 10], "784-abc-10", [784, 10] + [10] * 8,
                                   [784, 70000, 10], [784, 1]])
def test_bad_architectures(sizes):
    with pytest.raises(errors.ShapeError) as info:
        flipnet.Model.ternary(sizes)
    assert isinstance(info.value, ValueError)


def test_bad_options():
    with pytest.raises(errors.ArgumentError):
        flipnet.Model(SMALL, "quaternary")
    with pytest.raises(errors.ShapeError):
        flipnet.Model(SMALL, ["ternary"] * 3)
    with pytest.raises(errors.ArgumentError):
        flipnet.Model.ternary(SMALL, vote="loud")
    with pytest.raises(errors.ArgumentError):
        flipnet.Model.ternary(SMALL, momentum=0.9)
    with pytest.raises(errors.ArgumentError):
        flipnet.Model.ternary(SMALL, seed=-1)
    with pytest.raises(errors.ArgumentError):
        flipnet.Model.ternary(SMALL, margin=-3)


def test_init_follows_rule_rng():
    """Initial weights are docs/rule.md section 6, computed independently here."""
    m = flipnet.Model.ternary([40, 3, 2], seed=11)
    w = m.weights(0)
    u = flipnet_rand(11, stream(1, 0, 0), np.arange(40 * 3)).reshape(3, 40)
    assert np.array_equal(w, ((u >> np.uint64(32)) % np.uint64(3)).astype(np.int64) - 1)
    b = flipnet.Model.binary([40, 3, 2], seed=11)
    ub = flipnet_rand(11, stream(1, 1, 0), np.arange(3 * 2)).reshape(2, 3)
    assert np.array_equal(b.weights(1), np.where(ub >> np.uint64(63), -1, 1))


def test_seed_determinism():
    a, b, c = (flipnet.Model.ternary(SMALL, seed=s) for s in (5, 5, 6))
    assert np.array_equal(a.weights(0), b.weights(0))
    assert not np.array_equal(a.weights(0), c.weights(0))


def test_numpy_rand_matches_core():
    from flipnet._core import lib

    for seed, st in ((0, 0), (1, stream(3, 0, 7)), (2 ** 64 - 1, stream(2, 5, 2 ** 40))):
        got = flipnet_rand(seed, st, np.arange(5))
        want = [lib.flipnet_rand(seed, st, i) for i in range(5)]
        assert [int(v) for v in got] == want


# ---- inputs -------------------------------------------------------------------------------------
def test_forward_predict_shapes_and_dtypes(rng):
    m = flipnet.Model.ternary(SMALL, seed=0)
    x = _x(rng, 7)
    logits = m.forward(x)
    assert logits.shape == (7, 10) and logits.dtype == np.int32
    pred = m.predict(x)
    assert pred.shape == (7,) and np.issubdtype(pred.dtype, np.integer)
    assert np.array_equal(pred, np.argmax(logits, axis=1))
    acc = m.evaluate(x, np.zeros(7, dtype=np.int64))
    assert isinstance(acc, float) and 0.0 <= acc <= 1.0


def test_uint8_is_quantized_and_shapes_flatten(rng):
    m = flipnet.Model.ternary(SMALL, seed=0, input="centered")
    x = _x(rng, 5)
    q = flipnet.quantize(x)
    assert q.dtype == np.int8 and q.min() >= -127
    assert np.array_equal(q, np.clip(x.astype(np.int32) - 128, -127, 127))
    h = flipnet.quantize(x, "half")
    assert np.array_equal(h, x >> 1) and h.dtype == np.int8
    half = flipnet.Model.ternary(SMALL, seed=0, input="half")
    assert np.array_equal(half.forward(x), half.forward(h.reshape(5, 784)))
    with pytest.raises(ValueError, match="input encoding"):
        flipnet.Model.ternary(SMALL, input="log")
    ref = m.forward(q.reshape(5, 784))
    assert np.array_equal(m.forward(x), ref)  # uint8 (N, 28, 28)
    assert np.array_equal(m.forward(x.reshape(5, 784)), ref)
    assert np.array_equal(m.forward(q.reshape(5, 1, 28, 28)), ref)


def test_many_samples_are_chunked(rng):
    m = flipnet.Model.ternary([784, 16, 10], seed=0)
    x = _x(rng, 2500)
    full = m.forward(x)
    assert np.array_equal(full[2100:2110], m.forward(x[2100:2110]))


@pytest.mark.parametrize("bad,cls,words", [
    (np.zeros(784, np.uint8), errors.ShapeError, "leading sample axis"),
    (np.zeros((3, 783), np.uint8), errors.ShapeError, "783 values per sample"),
    (np.zeros((0, 784), np.uint8), errors.ShapeError, "empty"),
    (np.zeros((3, 784), np.float32), errors.ArgumentError, "dtype float32"),
    (np.zeros((3, 784), np.int32), errors.ArgumentError, "uint8"),
    (np.full((3, 784), -128, np.int8), errors.InputRangeError, "-128"),
])
def test_bad_inputs(bad, cls, words):
    m = flipnet.Model.ternary(SMALL)
    for call in (m.forward, m.predict, m.calibrate):
        with pytest.raises(cls) as info:
            call(bad)
        assert isinstance(info.value, ValueError)
        assert words in str(info.value)


@pytest.mark.parametrize("labels,cls,words", [
    (np.array([0, 1, 10]), errors.LabelError, "must be in [0, 9]"),
    (np.array([0, -1, 2]), errors.LabelError, "labels in [-1, 2]"),
    (np.array([0, 1]), errors.ShapeError, "2 labels but x has 3"),
    (np.eye(10)[[0, 1, 2]], errors.ShapeError, "one-hot"),
    (np.array([0.0, 1.0, 2.0]), errors.ArgumentError, "integer"),
])
def test_bad_labels(labels, cls, words, rng):
    m = flipnet.Model.ternary(SMALL)
    x = _x(rng, 3)
    for call in (m.evaluate, lambda a, b: m.fit(a, b, epochs=1, verbose=0)):
        with pytest.raises(cls) as info:
            call(x, labels)
        assert isinstance(info.value, ValueError)
        assert words in str(info.value)


# ---- weights and calibration --------------------------------------------------------------------
def test_weights_round_trip(rng):
    m = flipnet.Model.ternary(SMALL, seed=0)
    w = rng.integers(-1, 2, size=(32, 784)).astype(np.int8)
    m.set_weights(0, w)
    assert np.array_equal(m.weights(0), w)
    assert m.weights(-1).shape == (10, 32)
    with pytest.raises(errors.ShapeError):
        m.set_weights(0, w.T)
    with pytest.raises(errors.ArgumentError):
        m.set_weights(1, np.full((10, 32), 2))
    with pytest.raises(errors.ArgumentError):
        m.weights(2)
    b = flipnet.Model.binary(SMALL, seed=0)
    with pytest.raises(errors.ArgumentError):
        b.set_weights(1, np.zeros((10, 32), np.int8))
    b.set_weights(1, np.ones((10, 32), np.int8))
    assert (b.weights(1) == 1).all()


def test_calibrate_and_shifts(rng):
    m = flipnet.Model.ternary([784, 64, 64, 10], seed=0)
    assert m.shifts == [0, 0] and not m.calibrated
    shifts = m.calibrate(_x(rng, 256))
    assert shifts == m.shifts and all(0 <= s <= 31 for s in shifts) and shifts[0] > 0
    assert m.calibrated
    m.shifts = [3, 2]
    assert m.shifts == [3, 2]
    with pytest.raises(errors.ArgumentError):
        m.shifts = [40, 1]
    with pytest.raises(errors.ShapeError):
        m.shifts = [1]


# ---- training -----------------------------------------------------------------------------------
def test_fit_history_and_counters(synthetic_small):
    (x, y), (xt, yt) = synthetic_small
    x, y = x[:1000], y[:1000]
    m = flipnet.Model.ternary([784, 64, 10], seed=0)
    h = m.fit(x, y, epochs=2, batch_size=96, validation_data=(xt, yt), verbose=0)
    assert len(h) == 2
    steps_per_epoch = -(-1000 // 96)  # last batch partial (40 samples)
    assert m.steps == 2 * steps_per_epoch and m.samples == 2000
    for i, e in enumerate(h):
        assert e["epoch"] == i + 1 and e["samples"] == 1000
        assert 0 <= e["train_acc"] <= 1 and 0 <= e["val_acc"] <= 1
        assert len(e["changes"]) == 2 and sum(e["changes"]) > 0
        assert e["seconds"] > 0 and e["samples_per_s"] > 0
    assert h.val_acc == [e["val_acc"] for e in h]
    assert h[-1]["p"] == pytest.approx(flipnet.recipes.DEFAULT["p1"], abs=1e-4)
    assert m.epochs_trained == 2 and m.calibrated
    assert m.training_log[-1]["where"] == "host" and m.training_log[-1]["steps"] == m.steps


def test_fit_learns(mnist_small):
    """Sanity, not a benchmark: a one-layer model gets well above chance (10%) quickly."""
    (x, y), (xt, yt) = mnist_small
    m = flipnet.Model.ternary([784, 10], seed=0)
    h = m.fit(x, y, epochs=6, batch_size=64, verbose=0, schedule={"k_frac": 0.01})
    acc = m.evaluate(xt, yt)
    assert acc > 0.35, h.to_list()


def test_fit_is_deterministic(synthetic_small):
    (x, y), _ = synthetic_small
    a = flipnet.Model.ternary([784, 32, 10], seed=4)
    b = flipnet.Model.ternary([784, 32, 10], seed=4)
    ha = a.fit(x[:600], y[:600], epochs=1, batch_size=50, verbose=0)
    hb = b.fit(x[:600], y[:600], epochs=1, batch_size=50, verbose=0)
    assert np.array_equal(a.weights(0), b.weights(0)) and ha[0]["changes"] == hb[0]["changes"]


def test_fit_schedule_options(synthetic_small):
    (x, y), _ = synthetic_small
    m = flipnet.Model.ternary([784, 32, 10], seed=0)
    h = m.fit(x[:200], y[:200], epochs=1, batch_size=200, verbose=0,
              schedule={"p0": 1.0, "p1": 1.0, "k_frac": [0.0, 0.01], "margin": 5})
    assert h[0]["changes"][0] == 0 and h[0]["changes"][1] > 0
    assert h[0]["k"] == [0, round(0.01 * 320)]
    assert m.rule["margin"] == 5
    sched = flipnet.Schedule(p0=0.5, p1=0.5, k_frac=0.001)
    m.fit(x[:64], y[:64], epochs=1, schedule=sched, verbose=0)
    with pytest.raises(errors.ArgumentError):
        m.fit(x[:64], y[:64], schedule={"p0": 1.5}, verbose=0)
    with pytest.raises(errors.ArgumentError):
        m.fit(x[:64], y[:64], schedule={"k_frac": [0.1]}, verbose=0)
    with pytest.raises(errors.ArgumentError):
        m.fit(x[:64], y[:64], batch_size=0, verbose=0)
    with pytest.raises(errors.ArgumentError, match="lr"):
        m.fit(x[:64], y[:64], schedule={"lr": 0.1}, verbose=0)


def test_fit_progress_bar_goes_to_stderr(synthetic_small, capsys):
    (x, y), _ = synthetic_small
    m = flipnet.Model.ternary([784, 16, 10], seed=0)
    m.fit(x[:128], y[:128], epochs=1, batch_size=64, verbose=1)
    out, err = capsys.readouterr()
    assert out == "" and "epoch 1/1" in err and "acc=" in err


# ---- files --------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path, synthetic_small):
    (x, y), (xt, yt) = synthetic_small
    m = flipnet.Model([784, 48, 10], ["ternary", "binary"], seed=9, margin=3)
    m.fit(x[:300], y[:300], epochs=1, batch_size=64, verbose=0)
    m.meta["note"] = "hello"
    path = tmp_path / "m.flip"
    nbytes = m.save(path)
    assert nbytes == os.path.getsize(path)
    r = flipnet.load(path)
    assert (r.sizes, r.kinds, r.seed, r.steps, r.samples, r.shifts, r.rule) == \
           (m.sizes, m.kinds, m.seed, m.steps, m.samples, m.shifts, m.rule)
    for layer in range(2):
        assert np.array_equal(r.weights(layer), m.weights(layer))
    assert np.array_equal(r.forward(xt), m.forward(xt))
    assert r.meta == {"note": "hello"} and r.recipe == m.recipe
    assert r.epochs_trained == 1 and len(r.epoch_log) == 1 and r.calibrated
    assert r.training_log[0]["where"] == "host"
    assert r.training_log[0]["flipnet_version"] == flipnet.__version__
    assert m.copy().to_bytes()[:64] == m.to_bytes()[:64]


def test_training_continues_identically_after_reload(tmp_path, synthetic_small):
    (x, y), _ = synthetic_small
    x, y = x[:400], y[:400]
    a = flipnet.Model.ternary([784, 32, 10], seed=2)
    a.fit(x, y, epochs=1, batch_size=64, verbose=0)
    a.save(tmp_path / "a.flip")
    b = flipnet.load(tmp_path / "a.flip")
    a.fit(x, y, epochs=1, batch_size=64, verbose=0)
    b.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert np.array_equal(a.weights(0), b.weights(0)) and a.steps == b.steps


def test_metadata_is_json(tmp_path):
    m = flipnet.Model.ternary(SMALL)
    data = m.to_bytes()
    meta = json.loads(data[data.index(b'{"'):-4].decode("utf-8"))
    assert meta["format"] == flipnet.model.META_FORMAT
    assert meta["recipe"]["vote"] == m.rule["vote"]


def _corrupt(data, offset, value):
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


def test_corrupt_files_raise_the_right_class(tmp_path):
    good = flipnet.Model.ternary(SMALL, seed=1).to_bytes()
    cases = {
        "magic": (_corrupt(good, 0, ord("X")), errors.BadMagicError),
        "version": (_corrupt(good, 8, 9), errors.UnsupportedVersionError),
        "truncated": (good[:len(good) // 2], errors.TruncatedFileError),
        "empty": (b"", errors.TruncatedFileError),
        "trailing": (good + b"\0", errors.FileSizeError),
        "crc": (_corrupt(good, 200, good[200] ^ 0x10), errors.ChecksumError),
        "not a model": (b"hello world, this is not a model file at all" * 3,
                        errors.BadMagicError),
    }
    for name, (data, cls) in cases.items():
        p = tmp_path / (name + ".flip")
        p.write_bytes(data)
        with pytest.raises(cls) as info:
            flipnet.load(p)
        assert isinstance(info.value, errors.ModelFileError), name
        assert str(p) in str(info.value)
    with pytest.raises(FileNotFoundError):
        flipnet.load(tmp_path / "missing.flip")


def test_foreign_metadata_still_loads():
    """A file whose metadata is not our JSON (e.g. written by a device) loads with defaults."""
    from flipnet._core import ffi, lib

    m = flipnet.Model.ternary(SMALL, seed=1)
    meta = b"\xffnot json"
    size = ffi.new("size_t *")
    lib.flipnet_file_size(m._m, len(meta), size)
    buf = bytearray(size[0])
    written = ffi.new("size_t *")
    assert lib.flipnet_file_write(m._m, meta, len(meta), ffi.from_buffer(buf), len(buf),
                                  written) == 0
    r = flipnet.Model.from_bytes(bytes(buf))
    assert np.array_equal(r.weights(0), m.weights(0))
    assert "raw_metadata" in r.meta and r.rule == m.rule


@pytest.mark.parametrize("field,value", [("epochs_trained", [1]), ("epochs_trained", -3),
                                         ("training", 5), ("history", "x"), ("user", [1, 2])])
def test_metadata_of_the_wrong_type_is_a_clear_file_error(field, value):
    """A valid-CRC file whose JSON metadata has a field of another type is refused with the
    field's name, not a raw TypeError."""
    import json

    from flipnet._core import ffi, lib
    from flipnet.errors import InvalidFieldError

    m = flipnet.Model.ternary(SMALL, seed=1)
    meta = json.dumps({field: value}).encode()
    size = ffi.new("size_t *")
    lib.flipnet_file_size(m._m, len(meta), size)
    buf = bytearray(size[0])
    written = ffi.new("size_t *")
    assert lib.flipnet_file_write(m._m, meta, len(meta), ffi.from_buffer(buf), len(buf),
                                  written) == 0
    with pytest.raises(InvalidFieldError, match=field):
        flipnet.Model.from_bytes(bytes(buf))


def test_train_step_matches_fit_building_block(synthetic_small):
    (x, y), _ = synthetic_small
    a = flipnet.Model.ternary([784, 32, 10], seed=1)
    b = a.copy()
    st = a.train_step(x[:64], y[:64], k=[50, 3], p=1.0)
    assert set(st) == {"correct", "errors", "loss", "changes", "eligible", "clipped"}
    assert st["loss"] == 0.0  # no FP32 last layer
    assert a.steps == 1 and a.samples == 64 and st["changes"][0] <= 50
    st_b = b.train_step(x[:64], y[:64], k=[50, 3], p=[65536, 65536])  # Q16 ints
    assert st_b == st and np.array_equal(a.weights(0), b.weights(0))
    with pytest.raises(errors.ArgumentError):
        a.train_step(x[:4], y[:4], k=1, p=1.5)
    with pytest.raises(errors.ShapeError):
        a.train_step(x[:4], y[:4], k=[1, 2, 3], p=0.5)
    with pytest.raises(errors.ArgumentError):  # k larger than the layer: the core refuses
        a.train_step(x[:4], y[:4], k=[10 ** 6, 1], p=0.5)


def test_device_training_record(tmp_path):
    m = flipnet.Model.ternary(SMALL)
    m.add_training_record("device", steps=10, samples=640, seconds=1.5, board="mps2-an386",
                          epochs=1)
    m.save(tmp_path / "d.flip")
    r = flipnet.load(tmp_path / "d.flip")
    assert r.training_log[-1]["where"] == "device" and r.training_log[-1]["board"] == "mps2-an386"
    assert r.epochs_trained == 1
    with pytest.raises(TypeError):
        m.add_training_record("device", 1, 1, 1.0, thing=object())


def test_pickle_round_trip():
    import pickle

    m = flipnet.Model.binary([784, 64, 10], seed=5)
    m.meta["k"] = 1
    r = pickle.loads(pickle.dumps(m))
    assert np.array_equal(r.weights(0), m.weights(0)) and r.meta == {"k": 1}


def test_interrupted_fit_is_recorded(synthetic_small):
    (x, y), _ = synthetic_small

    class Stop(Exception):
        pass

    class Sched(flipnet.Schedule):
        calls = 0

        def step_params(self, step, total, shapes):
            Sched.calls += 1
            if Sched.calls > 3:
                raise Stop()
            return super().step_params(step, total, shapes)

    m = flipnet.Model.ternary([784, 16, 10], seed=0)
    with pytest.raises(Stop):
        m.fit(x[:640], y[:640], epochs=2, batch_size=64, schedule=Sched(), verbose=0)
    assert m.steps == 3 and m.training_log[-1]["steps"] == 3
    assert m.training_log[-1]["samples"] == 192 and m.training_log[-1]["epochs"] == 0


def test_calibration_policy(synthetic_small, monkeypatch):
    (x, y), _ = synthetic_small
    m = flipnet.Model.ternary([784, 16, 10], seed=0)
    calls = []
    real = m.calibrate
    monkeypatch.setattr(m, "calibrate",
                        lambda xs, first=0: calls.append(len(xs)) or real(xs, first))
    m.fit(x[:300], y[:300], epochs=3, batch_size=100, verbose=0, calibrate_samples=200,
          schedule={"recalibrate_every": 2})
    assert calls == [200, 200]  # before epoch 1 (never calibrated) and before epoch 3
    m.fit(x[:300], y[:300], epochs=1, batch_size=100, verbose=0)
    assert len(calls) == 2  # already calibrated: not again
