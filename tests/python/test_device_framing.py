"""Unit tests of the pure protocol layers: COBS, frames, stream splitting, payloads, packing."""

import random
import struct
import zlib

import numpy as np
import pytest

from flipnet.device import framing as F
from flipnet.device import protocol as P


# ---- COBS -------------------------------------------------------------------------------
@pytest.mark.parametrize("data,enc", [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
])
def test_cobs_known_vectors(data, enc):
    assert F.cobs_encode(data) == enc
    assert F.cobs_decode(enc) == data


def test_cobs_long_runs():
    run = bytes(range(1, 255))  # 254 non-zero bytes: one full block
    assert F.cobs_encode(run) == b"\xff" + run
    assert F.cobs_encode(run + b"\x00") == b"\xff" + run + b"\x01\x01"
    assert F.cobs_encode(run + b"\x05") == b"\xff" + run + b"\x02\x05"
    for data in (run + b"\x00", run * 3, b"\x00" + run + b"\x00" + run, bytes(1000)):
        assert F.cobs_decode(F.cobs_encode(data)) == data


def test_cobs_roundtrip_random():
    rng = random.Random(1)
    for n in list(range(0, 700)) + [4096, 20000]:
        zero_rate = rng.choice([0.0, 0.01, 0.3, 0.9])
        data = bytes(0 if rng.random() < zero_rate else rng.randrange(1, 256) for _ in range(n))
        enc = F.cobs_encode(data)
        assert 0 not in enc
        assert len(enc) <= n + n // 254 + 1
        assert F.cobs_decode(enc) == data


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x11\x22", b"\x03\x11\x00"])
def test_cobs_decode_rejects(bad):
    with pytest.raises(F.FramingError):
        F.cobs_decode(bad)


# ---- frames -------------------------------------------------------------------------------
def test_frame_layout_and_crc():
    f = F.build_frame(0x03, 0x01020304, b"abc", status=-2)
    assert f[:8] == struct.pack("<BBhI", 1, 3, -2, 0x01020304)
    assert f[8:11] == b"abc"
    assert struct.unpack("<I", f[-4:])[0] == zlib.crc32(f[:-4])
    fr = F.parse_frame(f)
    assert fr == F.Frame(1, 3, -2, 0x01020304, b"abc")


def test_frame_crc_detects_every_single_bit_flip():
    f = bytearray(F.build_frame(0x08, 77, bytes(range(40))))
    for i in range(len(f) * 8):
        g = bytearray(f)
        g[i // 8] ^= 1 << (i % 8)
        with pytest.raises(F.FramingError):
            F.parse_frame(g)


def test_frame_too_short():
    with pytest.raises(F.FramingError):
        F.parse_frame(b"\x01\x02\x03")


def test_encode_frame_wire_format():
    w = F.encode_frame(0x01, 5)
    assert w[0] == 0 and w[-1] == 0 and 0 not in w[1:-1]
    assert F.parse_frame(F.cobs_decode(w[1:-1])).seq == 5
    assert len(w) <= F.max_encoded_size(F.MIN_FRAME)


def test_stream_decoder_splits_and_reports():
    good = [F.encode_frame(0x81, i, bytes([i]) * i) for i in range(1, 6)]
    bad = b"\x00\x05\x11\x22\x33\x44\x00"  # valid COBS, bad frame (too short)
    stream = b"\x00\x00" + good[0] + bad + b"".join(good[1:])
    dec = F.StreamDecoder()
    items = []
    for i in range(0, len(stream), 3):  # arbitrary fragmentation
        items += dec.feed(stream[i:i + 3])
    frames = [it for it in items if isinstance(it, F.Frame)]
    errors = [it for it in items if isinstance(it, F.FramingError)]
    assert [fr.seq for fr in frames] == [1, 2, 3, 4, 5]
    assert len(errors) == 1


def test_stream_decoder_oversized():
    dec = F.StreamDecoder(max_encoded=16)
    items = dec.feed(b"\x00" + bytes([1]) * 40 + b"\x00" + F.encode_frame(0x81, 9))
    assert isinstance(items[0], F.FramingError)
    assert items[-1].seq == 9


# ---- packing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pack_unpack_codes(bits):
    rng = np.random.default_rng(bits)
    for count in (1, 7, 784, 785, 8 * 784):
        codes = rng.integers(0, 1 << bits, count).astype(np.uint8)
        data = P.pack_codes(codes, bits)
        assert len(data) == (count * bits + 7) // 8
        assert np.array_equal(P.unpack_codes(data, bits, count), codes)


def test_pack_is_lsb_first():
    assert P.pack_codes([1, 0, 0, 0, 0, 0, 0, 1], 1) == b"\x81"
    assert P.pack_codes([1, 2, 3, 0], 2) == bytes([1 | 2 << 2 | 3 << 4])
    assert P.pack_codes([0xA, 0x5], 4) == b"\x5a"


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_quantize_pixels_matches_table(bits):
    pixels = np.arange(256, dtype=np.uint8).reshape(2, 128)
    x, codes, table = P.quantize_pixels(pixels, bits)
    assert table.shape == (1 << bits,) and table.min() >= -127
    assert np.array_equal(x, table[codes])
    tab, packed = P.encode_inputs(x, bits, table)
    assert tab == table.tobytes()
    assert np.array_equal(P.unpack_codes(packed, bits, x.size), codes.ravel())


def test_quantize_pixels_8bit_is_the_cores_quantization():
    pixels = np.arange(256, dtype=np.uint8)
    x, _, table = P.quantize_pixels(pixels, 8)
    assert table is None
    assert np.array_equal(x, np.clip(pixels.astype(int) - 128, -127, 127))


def test_encode_inputs_errors():
    with pytest.raises(ValueError):
        P.encode_inputs(np.array([[-128]], np.int8), 8)
    with pytest.raises(ValueError):
        P.encode_inputs(np.array([[5]], np.int8), 1, np.array([-64, 64], np.int8))
    with pytest.raises(ValueError):
        P.encode_inputs(np.array([[64]], np.int8), 1, None)


# ---- payloads -------------------------------------------------------------------------------
def test_configure_payload_layout():
    p = P.configure_payload([784, 128, 10], "ternary", seed=2 ** 40 + 3, batch=8,
                            vote="weighted", margin=64)
    assert len(p) == 24 + 2 * 3 + 2
    L, vote, filt, bp, margin, seed, batch, calib, cnt, cs, ct, _ = \
        struct.unpack_from("<BBBBiQHBBBBH", p)
    assert (L, vote, filt, bp, margin, seed, batch) == (2, 1, 0, 0, 64, 2 ** 40 + 3, 8)
    assert (calib, cnt, cs, ct) == (32, 0, 0, 0)
    assert struct.unpack_from("<3H", p, 24) == (784, 128, 10)
    assert p[-2:] == b"\x01\x01"
    with pytest.raises(ValueError):
        P.configure_payload([4, 2], "quaternary")


def test_train_payload_layout():
    x = np.array([[1, -2, 3], [4, 5, -6]], np.int8)
    p = P.train_payload(x, [1, 0], k=[7, 1], p_q16=[65536, 100], calibrate=True)
    assert p[:4] == struct.pack("<BBH", 1, 8, 2)
    assert struct.unpack_from("<4I", p, 4) == (7, 1, 65536, 100)
    assert struct.unpack_from("<2H", p, 20) == (1, 0)
    assert p[24:] == x.tobytes()
    table = np.array([-100, 100], np.int8)
    x1 = np.array([[100, -100, 100]], np.int8)
    p1 = P.train_payload(x1, [2], [1], [1], bits=1, table=table)
    assert p1[:4] == struct.pack("<BBH", 0, 1, 1)
    assert p1[12:14] == table.tobytes()
    assert p1[14:16] == b"\x02\x00" and p1[16:] == b"\x05"


def test_reply_parsers():
    info = struct.pack("<BBBBIIIIIHBBI", 1, 0, 1, 0, 6656, 1088, 53248, 61000, 4096, 64, 8, 1,
                       130) + b"mps2-an386".ljust(16, b"\x00")
    d = P.parse_info(info)
    assert d["board"] == "mps2-an386" and d["max_frame"] == 6656 and d["configured"]
    tr = struct.pack("<IIQQ", 5, 3, 10, 80) + bytes([6, 0]) + struct.pack("<4I", 100, 2, 9000, 40)
    d = P.parse_train(tr, 2)
    assert d == {"correct": 5, "errors": 3, "steps": 10, "samples": 80, "shifts": [6, 0],
                 "changes": [100, 2], "eligible": [9000, 40]}
    st = struct.pack("<QQQIIIIIIIBBHIQ", 1, 8, 8, 1, 0, 0, 900, 4096, 61000, 52000, 2, 1, 0,
                     25000000, 50000000) + struct.pack("<2Q", 10, 1)
    d = P.parse_stats(st)
    assert d["trained"] == 8 and d["changes"] == [10, 1] and d["stack_used"] == 900
    assert d["train_seconds"] == 2.0
    with pytest.raises(ValueError):
        P.parse_stats(st[:20])
    assert "E_NOMEM" in P.status_name(-107)


# ---- run coding of sample inputs (docs/protocol.md, TRAIN) -----------------------------------
def test_run_coding_roundtrip_and_known_vector():
    # background 0: 3 zeros + "ab", 40 zeros (31 + extension 9) + nothing
    data = b"\x00\x00\x00ab" + b"\x00" * 40
    coded, segs = P.runcode(data)
    assert coded == b"\x00" + bytes([3 << 3 | 2]) + b"ab" + bytes([31 << 3 | 0, 9])
    assert segs == [(3, 2, 1), (40, 0, 2)]
    assert P.rundecode(coded) == data
    rng = np.random.default_rng(5)
    for t in range(400):
        n = int(rng.integers(1, 3000))
        kind = t % 3
        if kind == 0:
            a = (rng.random(n) < 0.15) * rng.integers(1, 256, n)
        elif kind == 1:
            a = np.repeat(rng.integers(0, 4, n), rng.integers(1, 400, n))[:n]
        else:
            a = rng.integers(0, 256, n)
        data = a.astype(np.uint8).tobytes()
        coded, segs = P.runcode(data)
        assert P.rundecode(coded) == data
        assert len(coded) == 1 + sum(h + l for _, l, h in segs)


def test_samples_payload_uses_run_coding_only_when_shorter_and_decodable():
    x = np.full((8, 784), -127, np.int8)
    x[:, 300:310] = 5
    plain = P.predict_payload(x)
    coded = P.predict_payload(x, max_frame=6656)
    assert coded[0] & P.SAMPLES_RUNS and not plain[0] & P.SAMPLES_RUNS
    assert len(coded) < len(plain) // 20
    assert P.rundecode(coded[4:]) == x.view(np.uint8).tobytes()
    noise = np.random.default_rng(1).integers(-127, 128, (8, 784)).astype(np.int8)
    assert P.predict_payload(noise, max_frame=6656) == P.predict_payload(noise)  # not shorter
    assert P.predict_payload(x, max_frame=6280) == plain  # decoded at 12 + 6272 > 6280
