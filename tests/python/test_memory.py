"""Model.memory_report: the bytes the core needs, and the packing density of the weights."""

import numpy as np
import pytest

import flipnet
from flipnet import errors
from flipnet._core import ffi, lib

KEYS = {"weights", "weight_bytes", "bits_per_weight", "model_struct_bytes",
        "scratch_train_bytes", "scratch_infer_bytes", "train_total_bytes", "infer_total_bytes",
        "batch_size", "layers", "arch", "kinds"}


def test_ternary_is_two_bits_per_resident_weight():
    m = flipnet.Model.ternary([1024, 256, 256, 10])  # widths multiple of 32: no row padding
    r = m.memory_report(64)
    assert KEYS <= set(r)
    assert r["weights"] == 1024 * 256 + 256 * 256 + 256 * 10
    assert r["bits_per_weight"] <= 2.0
    assert r["weight_bytes"] == r["weights"] // 4
    assert all(layer["bits_per_weight"] == 2.0 for layer in r["layers"])


def test_binary_is_one_bit_per_resident_weight():
    r = flipnet.Model.binary([1024, 128, 10]).memory_report(32)
    assert r["bits_per_weight"] == 1.0


def test_mnist_model_is_exactly_two_bits_per_resident_weight():
    """784 = 98 bytes per plane row: no row padding at all (the issue's <= 2 bits/weight)."""
    r = flipnet.Model.ternary([784, 256, 256, 10]).memory_report(64)
    assert r["bits_per_weight"] == 2.0
    assert all(layer["bits_per_weight"] == 2.0 for layer in r["layers"])
    assert r["weight_bytes"] == 256 * 2 * 98 + 256 * 2 * 32 + 10 * 2 * 32
    assert sum(layer["weight_bytes"] for layer in r["layers"]) == r["weight_bytes"]
    b = flipnet.Model.binary([784, 128, 10]).memory_report(8)
    assert b["bits_per_weight"] == 1.0 and b["weight_bytes"] == 128 * 98 + 10 * 16


def test_row_padding_is_at_most_seven_bits_per_plane_row():
    """Rows pad to whole bytes (785 inputs: 99 bytes per plane), layers to 4 bytes."""
    r = flipnet.Model.ternary([785, 33, 10]).memory_report(8)
    first, last = r["layers"]
    assert first["weight_bytes"] == 33 * 2 * 99 + 2  # 6534 -> 6536
    assert first["bits_per_weight"] == pytest.approx(6536 * 8 / (785 * 33))
    assert last["weight_bytes"] == 10 * 2 * 5  # 33 inputs: 5 bytes per plane row
    assert r["weight_bytes"] == first["weight_bytes"] + last["weight_bytes"]
    assert r["bits_per_weight"] < 2 * (785 + 7) / 785 + 0.01


def test_report_matches_core_queries_and_batch():
    m = flipnet.Model.ternary([784, 128, 10], recipe="paper")
    small, big = m.memory_report(1), m.memory_report(256)
    size = ffi.new("size_t *")
    arch = m._make_arch(m.sizes, [1, 1])
    assert lib.flipnet_model_size(arch, size) == 0 and size[0] == small["weight_bytes"]
    assert m._weights.nbytes >= small["weight_bytes"]
    assert big["scratch_train_bytes"] > small["scratch_train_bytes"]
    assert big["scratch_infer_bytes"] > small["scratch_infer_bytes"]
    for r in (small, big):
        assert r["scratch_train_bytes"] >= r["scratch_infer_bytes"]
        assert r["train_total_bytes"] == (r["weight_bytes"] + r["model_struct_bytes"]
                                          + r["scratch_train_bytes"])
    with pytest.raises(errors.ArgumentError):
        m.memory_report(0)


def test_reported_scratch_is_enough_and_less_is_refused():
    m = flipnet.Model.ternary([784, 64, 10], seed=0)
    b = 16
    need = m.memory_report(b)["scratch_train_bytes"]
    x = np.zeros((b, 784), np.int8)
    y = np.zeros(b, np.uint16)
    params = ffi.new("flipnet_step_params *")
    for nbytes, want in ((need, 0), (need - 4, lib.FLIPNET_E_NOMEM)):
        scratch = np.zeros((nbytes + 3) // 4, np.uint32)
        st = lib.flipnet_train_step(m._m, ffi.from_buffer("int8_t[]", x),
                                    ffi.from_buffer("uint16_t[]", y), b, params, ffi.NULL,
                                    ffi.from_buffer(scratch), nbytes)
        assert st == want
    with pytest.raises(errors.BufferSizeError):
        errors.check(lib.FLIPNET_E_NOMEM, "train step")


def test_buffers_are_numpy_owned_and_aligned():
    m = flipnet.Model.ternary([784, 64, 10], seed=0)
    m.forward(np.zeros((3, 784), np.int8))
    m.train_step(np.zeros((5, 784), np.int8), np.zeros(5, np.int64), k=1, p=0.5)
    bufs = [m._weights] + [entry[1] for entry in m._scratch.values()]
    assert len(bufs) == 3
    for b in bufs:
        assert isinstance(b, np.ndarray) and b.dtype == np.uint32
        assert b.ctypes.data % 4 == 0
    assert int(ffi.cast("uintptr_t", m._m.weights)) == m._weights.ctypes.data
