"""Model file compatibility: a checked-in format-v1 file keeps loading, newer versions are
refused with a message naming the version (issue 5, part 3).

tests/fixtures/model_v1.flip was written by flipnet 0.1.0 (format v1): 64-16-4, ternary then
binary layers, hysteresis counters, trained 5 steps. Never regenerate it: if this test
fails, the reader broke compatibility.
"""

import os
import struct
import zlib

import numpy as np
import pytest

import flipnet
from flipnet.errors import UnsupportedVersionError

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                       "model_v1.flip")
EXPECTED_LOGITS = [[-198, -74, -12, 166], [-212, -64, -54, 96], [0, -214, 148, 34],
                   [85, -105, 91, -345], [-242, 62, 218, -18], [198, 62, -380, 66]]


def test_v1_fixture_loads_and_predicts_as_when_written():
    m = flipnet.load(FIXTURE)
    assert m.sizes == [64, 16, 4] and m.kinds == ["ternary", "binary"]
    assert (m.seed, m.steps, m.samples, m.shifts) == (11, 5, 200, [4])
    assert m.rule == {"vote": "weighted", "filter": "net", "backprop": "sign", "margin": 256,
                      "calib_target": 40, "counter_shift": 2, "counter_threshold": 3,
                      "counter_decay": 0, "counter_round": "nearest"}
    assert m.counter_bits == [8, 8]  # a file from before narrower counters: int8 ones
    assert m.has_counters
    assert int(np.abs(m.counters(0)).sum()) == 46674
    assert int(np.abs(m.counters(1)).sum()) == 3613
    x = np.random.default_rng(0).integers(-127, 128, (6, 64)).astype(np.int8)
    assert m.forward(x).tolist() == EXPECTED_LOGITS
    # and it keeps training
    m.train_step(x, [0, 1, 2, 3, 0, 1], [100, 10], 0.5)
    assert m.steps == 6


def test_newer_format_version_is_refused_naming_it():
    data = bytearray(open(FIXTURE, "rb").read())
    assert struct.unpack("<I", bytes(data[8:12]))[0] == 1
    data[8:12] = struct.pack("<I", 7)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))  # a valid file of version 7
    with pytest.raises(UnsupportedVersionError, match="version 7.*upgrade flipnet"):
        flipnet.Model.from_bytes(bytes(data))
