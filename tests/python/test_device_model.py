"""flipnet.connect(port): a model on a device shaped like flipnet.Model (fit, evaluate,
predict, pull, save, load, a context manager), on the host twin; fit on a stream of batches
gives bit-identical weights to fit on the same arrays, exactly once under link faults."""

import inspect
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the host twin needs a pty")

import flipnet  # noqa: E402
from flipnet.device import sim  # noqa: E402
from flipnet.device.model import DeviceModel  # noqa: E402
from flipnet.errors import ArgumentError, LabelError  # noqa: E402
from flipnet.inputs import FeatureScale  # noqa: E402

SIZES = [12, 48, 3]


def _features(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 12)) + y[:, None] * np.linspace(-1, 1, 12) * 1.5
    return x, y


def _batches(x, y, sizes):
    """(x, y) in batches of the given sizes, cycling, as a live source would give them."""
    i = k = 0
    while i < len(x):
        b = sizes[k % len(sizes)]
        yield x[i:i + b], y[i:i + b]
        i += b
        k += 1


def _state(m):
    return ([m.weights(i) for i in range(m.n_layers)],
            [m.counters(i) for i in range(m.n_layers)] if m.has_counters else None,
            m.shifts, m.steps, m.samples, m.seed, m.rule)


def _assert_same(a, b):
    wa, ca, *ra = _state(a)
    wb, cb, *rb = _state(b)
    for i, (p, q) in enumerate(zip(wa, wb)):
        assert np.array_equal(p, q), "layer %d weights differ" % i
    if ca is not None or cb is not None:
        for i, (p, q) in enumerate(zip(ca, cb)):
            assert np.array_equal(p, q), "layer %d counters differ" % i
    assert ra == rb


@pytest.fixture
def twin(twin_exe):
    with sim.start_twin(twin_exe) as proc:
        yield proc


@pytest.fixture
def twin2(twin_exe):
    with sim.start_twin(twin_exe) as proc:
        yield proc


def test_fit_evaluate_predict_pull_save_load(tmp_path, twin, twin2):
    x, y = _features()
    with flipnet.connect(twin.port, SIZES, seed=2) as dev:
        assert isinstance(dev, DeviceModel)
        h = dev.fit(x[:320], y[:320], epochs=3, batch_size=8,
                    validation_data=(x[320:], y[320:]), verbose=0)
        assert isinstance(h, flipnet.History) and len(h) == 3
        assert h.val_acc[-1] == dev.evaluate(x[320:], y[320:]) > 0.6
        assert [e["samples"] for e in h.epochs] == [320] * 3
        m = dev.pull()
        assert isinstance(m, flipnet.Model) and m.arch == "12-48-3" and m.steps == 120
        # the host model computes what the device computes, from the same float features
        assert m.input_scale == FeatureScale.fit(x[:320], "std")
        assert np.array_equal(m.predict(x[320:]), dev.predict(x[320:]))
        assert m.evaluate(x[320:], y[320:]) == dev.evaluate(x[320:], y[320:])
        path = str(tmp_path / "dev.flip")
        dev.save(path)
        saved = flipnet.load(path)
        _assert_same(saved, m)
        assert saved.training_log[-1]["where"] == "device"
        assert len(saved.epoch_log) == 3
    # load onto another device: the same model there, training continues from its state
    with flipnet.connect(twin2.port) as dev2:
        dev2.load(path)
        assert dev2.evaluate(x[320:], y[320:]) == m.evaluate(x[320:], y[320:])
        dev2.fit(x[:80], y[:80], epochs=1, verbose=0)
        assert dev2.pull().steps == m.steps + 10


def test_context_manager_stops_a_started_twin(twin_exe, monkeypatch):
    monkeypatch.setenv("FLIPNET_TWIN", twin_exe)
    x, y = _features(64)
    with flipnet.connect("twin", SIZES) as dev:
        dev.fit(x, y, epochs=1, verbose=0)
        proc = dev._close.__self__
        assert proc.alive()
    assert not proc.alive()


def test_fit_on_a_generator_is_bit_identical_to_fit_on_arrays(twin, twin2):
    x, y = _features(203)  # not a multiple of the batch: a short last step
    scale = FeatureScale.fit(x)  # a stream's floats need a scale fitted beforehand
    with flipnet.connect(twin.port, SIZES, seed=7, input_scale=scale) as a:
        a.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        ma = a.pull()
    steps = -(-len(x) // 8)
    with flipnet.connect(twin2.port, SIZES, seed=7, input_scale=scale) as b:
        # batches of other sizes than 8, one sample at a time included: cut into steps of 8
        hb = b.fit(_batches(x, y, [1, 5, 13, 8, 3]), batch_size=8, steps=steps, verbose=0)
        mb = b.pull()
    assert hb.epochs[0]["samples"] == len(x) and hb.epochs[0]["steps"] == steps
    assert ma.steps == mb.steps == steps
    _assert_same(ma, mb)


def test_host_fit_on_a_generator_is_bit_identical_to_fit_on_arrays():
    x, y = _features(203)
    scale = FeatureScale.fit(x)
    a = flipnet.Model(SIZES, seed=3, input_scale=scale, recipe="device", input="half")
    a.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    b = flipnet.Model(SIZES, seed=3, input_scale=scale, recipe="device", input="half")
    b.fit(_batches(x, y, [7, 2, 16]), batch_size=8, steps=-(-len(x) // 8), verbose=0)
    _assert_same(a, b)


def test_stream_is_applied_exactly_once_over_a_faulty_link(twin, twin2):
    import serial

    from flipnet.device.client import Device
    from flipnet.device.faults import FaultyPort

    x, y = _features(160)
    scale = FeatureScale.fit(x)
    with flipnet.connect(twin.port, SIZES, seed=4, input_scale=scale) as clean:
        clean.fit(_batches(x, y, [8]), batch_size=8, steps=20, verbose=0)
        mc = clean.pull()
    port = FaultyPort(serial.serial_for_url(twin2.port, timeout=0.02), seed=11,
                      flip=3e-5, drop=3e-5, dup=3e-5, flip_in=3e-4, drop_in=3e-4, dup_in=3e-4,
                      frame_drop=0.08, frame_dup=0.08, delay=0.1, max_delay=0.02)
    with Device(port, timeout=0.25, retries=30) as link:
        dev = flipnet.connect(link, SIZES, seed=4, input_scale=scale)
        dev.fit(_batches(x, y, [3, 11]), batch_size=8, steps=20, verbose=0)
        mf = dev.pull()
        stats = link.stats()
        retransmits = link.link_stats()["retransmits"]
    assert sum(port.counts.values()) > 5 and retransmits > 0  # the link really was bad
    assert stats["trained"] == 160 and stats["steps"] == 20  # every sample applied once
    _assert_same(mc, mf)


def test_same_argument_names_and_errors_as_model_fit(twin):
    host = inspect.signature(flipnet.Model.fit).parameters
    dev_params = inspect.signature(DeviceModel.fit).parameters
    for name in ("x", "y", "epochs", "batch_size", "validation_data", "schedule", "verbose",
                 "shuffle", "steps", "curve_every"):
        assert name in host and name in dev_params, name
    assert list(dev_params)[1:5] == list(host)[1:5]  # x, y, epochs, batch_size positionally
    x, y = _features(64)
    m = flipnet.Model(SIZES, recipe="device", input="half")
    with flipnet.connect(twin.port, SIZES) as dev:
        for kwargs, err in (({"batch_size": 0}, ArgumentError),
                            ({"validation_data": (x,)}, ArgumentError),
                            ({"epochs": 2, "y": None}, ArgumentError)):
            args = (x, kwargs.pop("y", y))
            if args[1] is None:
                args = ([(x[:8], y[:8])],)
            with pytest.raises(err):
                m.fit(*args, verbose=0, **kwargs)
            with pytest.raises(err):
                dev.fit(*args, verbose=0, **kwargs)
        bad = y.copy()
        bad[3] = 9  # a label >= classes
        with pytest.raises(LabelError):
            m.fit(x, bad, verbose=0)
        with pytest.raises(LabelError):
            dev.fit(x, bad, verbose=0)
        with pytest.raises(ArgumentError, match="pair"):
            dev.fit(iter([x[:8]]), verbose=0)
        with pytest.raises(ArgumentError, match="no samples"):
            dev.fit(iter([]), verbose=0)
