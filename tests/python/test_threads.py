"""Threads and kernel sets are speed settings only: a user who changes `threads=` or the kernel
set gets the same model, bit for bit, and bad settings get clear errors (docs/speed.md)."""

import hashlib
import os

import numpy as np
import pytest

import flipnet
from flipnet import threads as fthreads
from flipnet.errors import ArgumentError

# wide enough that every pass splits into several parts (the core's part grain is 16,384
# weight visits), with a hidden width that is not a multiple of 32 or of the thread count
SIZES = [784, 200, 96, 10]


def _digest(model):
    h = hashlib.sha256()
    for layer in range(model.n_layers):
        h.update(np.ascontiguousarray(model.weights(layer)).tobytes())
        h.update(np.ascontiguousarray(model.counters(layer)).tobytes())
    return h.hexdigest()


def _train(data, threads, kernels=None):
    (x, y), (xt, yt) = data
    m = flipnet.Model(SIZES, seed=3)
    m.calibrate(x[:512])
    hist = m.fit(x[:1024], y[:1024], epochs=1, batch_size=64, validation_data=(xt, yt),
                 threads=threads)
    return m, hist


@pytest.fixture(scope="module")
def trained(synthetic_small):
    return {t: _train(synthetic_small, t) for t in (1, 2, 3)}


def test_fit_gives_the_same_model_for_any_thread_count(trained):
    digests = {t: _digest(m) for t, (m, _) in trained.items()}
    assert len(set(digests.values())) == 1, digests
    # and the training really changed the weights (a no-op would also be "identical")
    fresh = flipnet.Model(SIZES, seed=3)
    assert _digest(fresh) != digests[1]
    accs = {t: h[-1]["val_acc"] for t, (_, h) in trained.items()}
    assert len(set(accs.values())) == 1, accs


def test_forward_and_predict_are_the_same_for_any_thread_count(trained, synthetic_small):
    (_, _), (xt, _) = synthetic_small
    m = trained[1][0]
    ref = m.forward(xt, threads=1)
    for t in (2, 3, 7):
        assert np.array_equal(m.forward(xt, threads=t), ref)
        assert np.array_equal(m.predict(xt, threads=t), m.predict(xt, threads=1))
    # batch 1 and a batch smaller than the thread count
    assert np.array_equal(m.forward(xt[:1], threads=2), ref[:1])
    assert np.array_equal(m.forward(xt[:2], threads=3), ref[:2])


def test_the_session_records_threads_and_kernels(trained):
    m, _ = trained[2]
    session = m.training_log[-1]
    assert session["threads"] == 2
    assert session["kernels"] in fthreads.available_kernels()


def test_every_kernel_set_gives_the_same_model(synthetic_small):
    names = fthreads.available_kernels()
    assert names[-1] in ("portable", "dsp") and "portable" in names
    before = fthreads.kernels()
    digests = {}
    try:
        for name in names:
            fthreads.use_kernels(name)
            assert fthreads.kernels() == name
            digests[name] = _digest(_train(synthetic_small, 1)[0])
    finally:
        fthreads.use_kernels(before)
    assert len(set(digests.values())) == 1, digests


def test_the_fastest_kernel_set_this_cpu_has_is_chosen():
    names = fthreads.available_kernels()
    fthreads.use_kernels("auto")
    assert fthreads.kernels() == names[0]
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        flags = []
    if "avx512_vnni" in flags and "avx512bw" in flags:
        assert names[0] == "avx512vnni"
    elif "avx2" in flags:
        assert names[0] == "avx2"


@pytest.mark.parametrize("bad", [0, -1, fthreads.MAX_THREADS + 1, 2.0, "2", True, None])
def test_bad_thread_counts_are_refused_with_the_range(bad, synthetic_small):
    (x, y), _ = synthetic_small
    m = flipnet.Model([784, 16, 10], seed=0)
    if bad is None:  # None is "the default", valid
        m.forward(x[:4], threads=bad)
        return
    with pytest.raises(ArgumentError, match="1..%d" % fthreads.MAX_THREADS):
        m.forward(x[:4], threads=bad)
    with pytest.raises(ArgumentError, match="1..%d" % fthreads.MAX_THREADS):
        m.fit(x[:64], y[:64], epochs=1, batch_size=32, threads=bad)


def test_the_default_follows_the_environment_then_set_default(monkeypatch):
    monkeypatch.delenv("FLIPNET_THREADS", raising=False)
    fthreads.set_default(None)
    assert fthreads.default() == max(1, min(fthreads.MAX_THREADS, os.cpu_count() or 1))
    fthreads.set_default(3)
    try:
        assert fthreads.default() == 3
        monkeypatch.setenv("FLIPNET_THREADS", "2")
        assert fthreads.default() == 2
        monkeypatch.setenv("FLIPNET_THREADS", "two")
        with pytest.raises(ArgumentError, match="FLIPNET_THREADS"):
            fthreads.default()
        monkeypatch.setenv("FLIPNET_THREADS", "0")
        with pytest.raises(ArgumentError, match="FLIPNET_THREADS"):
            fthreads.default()
    finally:
        fthreads.set_default(None)


def test_an_unknown_kernel_set_is_refused_and_the_current_one_kept():
    before = fthreads.kernels()
    with pytest.raises(ArgumentError, match="available: .*portable"):
        fthreads.use_kernels("neon-on-x86")
    assert fthreads.kernels() == before
