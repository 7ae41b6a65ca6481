"""Input encodings that reduce the image (flipnet.inputs): "crop20-pool2" and its family.

The exact integer formula against a naive per-pixel loop; a model fed raw uint8 images
against the same model fed the int8 samples already encoded (fit, predict, save/load); the
C header's <name>_input_from_image compiled with the host cc, the ONNX graph in ONNX Runtime
and a device session on the host twin, each against the core; clear errors; the CLI. All on
synthetic data (synth.py) except one accuracy check on MNIST.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from lean import LEAN

import flipnet
from flipnet import cli
from flipnet import inputs as I
from flipnet.device import protocol as P
from flipnet.errors import ArgumentError, ShapeError

from test_export import CORE_INC, core_objects  # noqa: F401,E402  (core_objects: a fixture)

REDUCING = ["crop20-pool2", "crop24-pool2", "pool2", "pool4", "crop20", "crop16-pool4",
            "crop20-pool2-centered", "pool2-centered", "crop24-centered"]


def naive(p, encoding):
    """The encoding of one S x S image, pixel by pixel, from the docstring's definition."""
    e = I.parse_encoding(encoding)
    S = p.shape[0]
    C = e.crop or S
    o = (S - C) // 2
    P_ = e.pool
    out = []
    for r in range(C // P_):
        for c in range(C // P_):
            total = 0
            for i in range(P_):
                for j in range(P_):
                    total += int(p[o + P_ * r + i][o + P_ * c + j])
            q = total // (P_ * P_)
            if e.scaling == "half":
                out.append(q >> 1)
            else:
                out.append(min(127, max(-127, q - 128)))
    return np.array(out, dtype=np.int64)


def trained_model(data, encoding, n_hidden=32, seed=4, n=1000):
    (x, y), _ = data
    n0 = I.parse_encoding(encoding).n_inputs(28)
    m = flipnet.Model([n0, n_hidden, 10], seed=seed, input=encoding)
    m.fit(x[:n], y[:n], epochs=1, batch_size=32, verbose=0)
    return m


@pytest.fixture(scope="module")
def c20(synthetic):
    """A 100-32-10 ternary model with input crop20-pool2, fit on synthetic 28x28 images."""
    return trained_model(synthetic, "crop20-pool2")


# ---- the encodings --------------------------------------------------------------------------
def test_the_issue_formula(synthetic):
    """x[r*10+c] = (p[4+2r][4+2c] + p[4+2r][5+2c] + p[5+2r][4+2c] + p[5+2r][5+2c]) >> 3."""
    (x, _), _ = synthetic
    p = x[:300].astype(np.int64)
    want = np.stack([(p[:, 4 + 2 * r, 4 + 2 * c] + p[:, 4 + 2 * r, 5 + 2 * c] +
                      p[:, 5 + 2 * r, 4 + 2 * c] + p[:, 5 + 2 * r, 5 + 2 * c]) >> 3
                     for r in range(10) for c in range(10)], axis=1)
    got = flipnet.quantize(x[:300], "crop20-pool2")
    assert got.dtype == np.int8 and got.shape == (300, 100)
    np.testing.assert_array_equal(got, want)
    assert 0 <= got.min() and got.max() <= 127
    # the same from flat (N, 784) samples
    np.testing.assert_array_equal(flipnet.quantize(x[:300].reshape(300, -1), "crop20-pool2"),
                                  want)


@pytest.mark.parametrize("encoding", REDUCING)
@pytest.mark.parametrize("side", [28, 32])
def test_encodings_equal_a_naive_loop(encoding, side):
    rng = np.random.default_rng(side)
    imgs = rng.integers(0, 256, (12, side, side), dtype=np.uint8)
    imgs[0] = 0
    imgs[1] = 255  # the extremes: q = 0 and q = 255
    got = I.quantize(imgs, encoding)
    want = np.stack([naive(p, encoding) for p in imgs])
    np.testing.assert_array_equal(got, want)
    e = I.parse_encoding(encoding)
    assert got.shape == (12, e.n_inputs(side))
    lo, hi = (0, 127) if e.scaling == "half" else (-127, 127)
    assert got.min() == lo and got.max() == hi
    # reduce_pixels gives the block means; the scaling is the per-pixel one
    np.testing.assert_array_equal(I.scale_pixels(I.reduce_pixels(imgs, encoding), e.scaling),
                                  got)


def test_names():
    for name, parts in [("centered", ("centered", 0, 1)), ("half", ("half", 0, 1)),
                        ("pool2", ("half", 0, 2)), ("crop20-pool2", ("half", 20, 2)),
                        ("crop24-pool2", ("half", 24, 2)), ("crop20", ("half", 20, 1)),
                        ("crop20-pool2-centered", ("centered", 20, 2)),
                        ("pool4-centered", ("centered", 0, 4))]:
        e = I.parse_encoding(name)
        assert e.name == name and (e.scaling, e.crop, e.pool) == parts
        assert e.reduces == (name not in I.SCALINGS)
    # -half is the default scaling: accepted, dropped from the name
    assert I.check_encoding("crop20-pool2-half") == "crop20-pool2"
    assert flipnet.Model([100, 10], input="crop20-pool2-half").input_encoding == "crop20-pool2"
    for bad, words in [("crop20pool2", "did you mean 'crop20-pool2'"), ("pool3", "one of 2, 4"),
                       ("pool1", "one of 2, 4"), ("crop21-pool2", "not a multiple"),
                       ("crop0", "unknown input encoding"), ("", "unknown"),
                       ("pool2-crop20", "unknown"), ("avg2", "[crop<C>-][pool<P>]"),
                       (None, "unknown"), ("Half", "unknown")]:
        with pytest.raises(ArgumentError, match=words.replace("[", r"\[").replace("(", r"\(")):
            I.parse_encoding(bad)
    assert I.parse_encoding("crop20-pool2").n_inputs() == 100
    assert I.parse_encoding("pool2").fixed_side(196) == 28
    assert "sum >> 3" in I.describe("crop20-pool2", 28)
    assert "rows and columns 4..23" in I.describe("crop20-pool2", 28)


def test_widths_are_checked_when_the_model_is_made():
    with pytest.raises(ArgumentError, match="gives 100 inputs .*has 784: make the first layer "
                       "100 wide"):
        flipnet.Model([784, 128, 10], input="crop20-pool2")
    with pytest.raises(ArgumentError, match="not a square number"):
        flipnet.Model([150, 10], input="pool2")
    assert flipnet.Model([144, 10], input="crop24-pool2").n_inputs == 144
    assert flipnet.Model([196, 10], input="pool2").image_side == 28  # fixed by the width
    assert flipnet.Model([100, 10], input="crop20-pool2").image_side is None  # not yet known
    assert flipnet.Model([784, 10], input="half").image_side is None  # per pixel: none


# ---- the model: raw images = the samples already encoded ------------------------------------
def test_fit_predict_on_raw_images_equal_encoded_int8(synthetic):
    (x, y), (xt, yt) = synthetic
    n = 1200
    raw = flipnet.Model([100, 32, 10], seed=9, input="crop20-pool2")
    enc = flipnet.Model([100, 32, 10], seed=9, input="crop20-pool2")
    raw.fit(x[:n], y[:n], epochs=2, batch_size=32, verbose=0, validation_data=(xt[:300],
                                                                              yt[:300]))
    x8, xt8 = flipnet.quantize(x[:n], "crop20-pool2"), flipnet.quantize(xt, "crop20-pool2")
    enc.fit(x8, y[:n], epochs=2, batch_size=32, verbose=0, validation_data=(xt8[:300],
                                                                           yt[:300]))
    assert raw.steps == enc.steps > 0 and raw.shifts == enc.shifts
    for l in range(raw.n_layers):
        np.testing.assert_array_equal(raw.weights(l), enc.weights(l))
        np.testing.assert_array_equal(raw.counters(l), enc.counters(l))
    assert [e["val_acc"] for e in raw.epoch_log] == [e["val_acc"] for e in enc.epoch_log]
    np.testing.assert_array_equal(raw.forward(xt), raw.forward(xt8))
    np.testing.assert_array_equal(raw.predict(xt.reshape(len(xt), -1)), enc.predict(xt8))
    assert raw.evaluate(xt, yt) == enc.evaluate(xt8, yt) > 0.3
    # the raw-image model learnt its image side; the int8-fed one did not
    assert raw.image_side == 28 and enc.image_side is None
    # train_step and calibrate take raw images too
    a, b = raw.copy(), raw.copy()
    a.train_step(x[:16], y[:16], k=50, p=0.5)
    b.train_step(x8[:16], y[:16], k=50, p=0.5)
    np.testing.assert_array_equal(a.weights(0), b.weights(0))
    assert a.calibrate(x[:200]) == b.calibrate(x8[:200])


def test_save_load_keeps_the_encoding_and_image_side(c20, tmp_path):
    path = tmp_path / "c20.flip"
    c20.save(path)
    m = flipnet.load(path)
    assert m.input_encoding == "crop20-pool2" and m.image_side == 28
    assert m.recipe["input"] == "crop20-pool2" and m.sizes[0] == 100
    import pickle

    for twin in (m.copy(), pickle.loads(pickle.dumps(m))):
        assert twin.input_encoding == "crop20-pool2" and twin.image_side == 28
    from flipnet.device import history

    meta = json.loads(history.file_meta(path.read_bytes()).decode())
    assert meta["image_side"] == 28 and meta["recipe"]["input"] == "crop20-pool2"


def test_clear_errors_on_the_wrong_samples(c20, synthetic):
    _, (xt, _) = synthetic
    x8 = flipnet.quantize(xt[:5], "crop20-pool2")
    accepts = "takes uint8 images of 28 x 28 pixels (784 values)"
    cases = [
        (xt[:5].reshape(5, -1)[:, :700], ShapeError, "700 uint8 values per sample"),
        (x8.view(np.uint8), ShapeError, "pass samples already encoded as int8"),
        (np.zeros((5, 32, 32), np.uint8), ShapeError, "32 x 32 images"),
        (np.zeros((5, 28, 27), np.uint8), ShapeError, "not an image the encoding takes"),
        (np.zeros((5, 784), np.int8), ShapeError, "int8 samples are taken as already encoded"),
        (xt[:5].astype(np.float32), ArgumentError, "dtype float32"),
    ]
    for x, kind, words in cases:
        with pytest.raises(kind) as exc:
            c20.predict(x)
        assert words in str(exc.value) and "int8 samples already encoded (100 values)" in \
            str(exc.value), str(exc.value)
        if kind is ShapeError and "32 x 32" in words:
            assert accepts in str(exc.value)
    bad = x8.copy()
    bad[0, 0] = -128
    with pytest.raises(flipnet.InputRangeError):
        c20.predict(bad)
    # a model that does not know its side takes any side the encoding allows ...
    fresh = flipnet.Model([100, 10], input="crop20-pool2")
    assert fresh.predict(np.zeros((2, 32, 32), np.uint8)).shape == (2,)
    with pytest.raises(ShapeError, match="S >= 20 and S - 20 even"):
        fresh.predict(np.zeros((2, 27, 27), np.uint8))
    # ... and image_side is checked when set
    with pytest.raises(ShapeError, match="S >= 20 and S - 20 even"):
        fresh.image_side = 19
    with pytest.raises(ArgumentError, match="per pixel"):
        flipnet.Model([784, 10], input="half").image_side = 28
    with pytest.raises(ArgumentError, match="takes 28 x 28 images"):
        flipnet.Model([196, 10], input="pool2").image_side = 30


def test_per_pixel_encodings_unchanged(synthetic):
    """centered / half: one input per pixel, any sample shape, as before."""
    _, (xt, _) = synthetic
    m = flipnet.Model([784, 16, 10], input="half")
    np.testing.assert_array_equal(m.forward(xt[:20]), m.forward((xt[:20] >> 1).astype(np.int8)))
    assert flipnet.quantize(xt[:3], "half").shape == (3, 28, 28)
    np.testing.assert_array_equal(flipnet.quantize(np.array([0, 1, 128, 255], np.uint8)),
                                  [-127, -127, 0, 127])


# ---- the device path ----------------------------------------------------------------------
def test_device_samples_are_the_reduced_ones(synthetic):
    from flipnet.device.session import prepare_inputs

    (x, _), _ = synthetic
    x8, table = prepare_inputs(x[:50], 8, "crop20-pool2")
    assert table is None and x8.shape == (50, 100)
    np.testing.assert_array_equal(x8, flipnet.quantize(x[:50], "crop20-pool2"))
    # 4 bits: the block means are binned as pixels are; the values are the table's
    x4, table = prepare_inputs(x[:50], 4, "crop20-pool2")
    q = I.reduce_pixels(x[:50], "crop20-pool2")
    np.testing.assert_array_equal(x4, table[q >> 4])
    np.testing.assert_array_equal(table, P.pixel_table(4, "half"))
    x4c, tc = prepare_inputs(x[:50], 4, "crop20-pool2-centered")
    np.testing.assert_array_equal(tc, P.pixel_table(4, "centered"))
    np.testing.assert_array_equal(x4c, tc[q >> 4])
    with pytest.raises(ValueError, match="takes 28 x 28 images"):
        prepare_inputs(np.zeros((2, 32, 32), np.uint8), 8, "crop20-pool2", side=28)


def test_info_encoding_fields():
    """INFO's model fields (docs/protocol.md): scaling bit, pool in bits 4..7, crop u16."""
    assert P.info_encoding(0, 0) == "centered" and P.info_encoding(1, 0) == "half"
    assert P.info_encoding(0x21, 20) == "crop20-pool2"
    assert P.info_encoding(0x20, 20) == "crop20-pool2-centered"
    assert P.info_encoding(0x21, 0) == "pool2" and P.info_encoding(0x41, 0) == "pool4"
    assert P.info_encoding(1, 24) == "crop24"
    with pytest.raises(ValueError, match="does not know"):
        P.info_encoding(0x31, 20)


def test_in_process_device_session_keeps_the_encoding(synthetic):
    """train_on_device with a reducing encoding: 100-value samples, and a pulled model that
    predicts from raw images exactly as from the encoded ones; a mismatching width is an
    error naming the encoding."""
    from flipnet.device.session import InProcessTwin, train_on_device

    (x, y), (xt, yt) = synthetic
    s = train_on_device(InProcessTwin(), x[:160], y[:160], [100, 32, 10], seed=2, batch=8,
                        recipe="device", input="crop20-pool2", progress=False,
                        test_data=(xt[:200], yt[:200]))
    m = s["model"]
    assert s["input"] == "crop20-pool2" and s["image_side"] == 28
    assert m.input_encoding == "crop20-pool2" and m.image_side == 28
    assert flipnet.Model.from_bytes(s["model_bytes"]).image_side == 28
    np.testing.assert_array_equal(m.predict(xt[:200]),
                                  m.predict(flipnet.quantize(xt[:200], "crop20-pool2")))
    assert s["test_acc"] == m.evaluate(xt[:200], yt[:200])
    with pytest.raises(ValueError, match="gives 100 inputs .*has 784"):
        train_on_device(InProcessTwin(), x[:16], y[:16], [784, 16, 10], input="crop20-pool2",
                        progress=False)


@pytest.fixture
def dev(twin_exe):
    from flipnet.device import sim
    from flipnet.device.client import Device

    if sys.platform == "win32":
        pytest.skip("the host twin needs a pty")
    with sim.start_twin(twin_exe) as proc, Device(proc.port, timeout=2.0) as d:
        yield d


@pytest.mark.parametrize("bits", [8, 4])
def test_twin_trains_reduced_samples_bit_exact(dev, synthetic, bits):
    """The host twin (the firmware's code) trains on the reduced samples exactly as the
    in-process core, and the frames are smaller than with 784 pixels (~8x uncoded)."""
    from flipnet.device.session import InProcessTwin, train_on_device
    from test_device_twin import assert_same_model

    (x, y), _ = synthetic
    n = 96
    ref = InProcessTwin()
    sent0 = dev.bytes_sent
    s = train_on_device(dev, x[:n], y[:n], [100, 32, 10], seed=6, batch=8, recipe=LEAN,
                        input="crop20-pool2", bits=bits, progress=False, mirror=ref)
    reduced = dev.bytes_sent - sent0
    assert_same_model(s["model_bytes"], ref.pull())
    m = s["model"]
    assert m.input_encoding == "crop20-pool2" and m.image_side == 28
    assert s["plan"]["weight_bytes"] == 32 * 2 * 13 + 10 * 2 * 4
    # the same session with 784 pixels per sample sends far more
    dev.reset()
    sent0 = dev.bytes_sent
    train_on_device(dev, x[:n], y[:n], [784, 32, 10], seed=6, batch=8, recipe=LEAN,
                    input="half", bits=bits, progress=False)
    full = dev.bytes_sent - sent0
    assert reduced * 2 < full, (reduced, full)  # run-coded frames: 784-pixel ones shrink too
    # uncoded, a TRAIN frame of 8 samples carries 8 x 100 instead of 8 x 784 input values
    from flipnet.device.session import prepare_inputs

    sizes = []
    for enc in ("crop20-pool2", "half"):
        x8, table = prepare_inputs(x[:8], bits, enc)
        sizes.append(len(P.train_payload(x8, y[:8], [1, 1], [1, 1], bits=bits, table=table)))
    assert sizes[0] * 7 < sizes[1], sizes


def test_cli_device_train_with_input(twin_exe, synthetic_dir, tmp_path, capsys):
    from flipnet.device import sim

    out = tmp_path / "dev.flip"
    with sim.start_twin(twin_exe) as proc:
        rc = cli.main(["device", "train", "--port", proc.port, "--data-dir", synthetic_dir,
                       "--limit", "96", "--test-limit", "200", "--arch", "100-32-10",
                       "--input", "crop20-pool2", "--out", str(out), "--quiet", "--json"])
        res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert rc == 0 and res["input"] == "crop20-pool2" and res["image_side"] == 28
        m = flipnet.load(str(out))
        assert m.input_encoding == "crop20-pool2" and m.image_side == 28
        # the training firmware keeps no encoding: eval/predict take --input (or --model's)
        assert cli.main(["device", "eval", "--port", proc.port, "--data-dir", synthetic_dir,
                         "--limit", "50", "--input", "crop20-pool2", "--json"]) == 0
        r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert r["n"] == 50
        assert cli.main(["device", "eval", "--port", proc.port, "--data-dir", synthetic_dir,
                         "--limit", "50", "--model", str(out), "--json"]) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == r
        assert cli.main(["device", "predict", "--port", proc.port, "--data-dir",
                         synthetic_dir, "--limit", "5"]) == 1
        err = capsys.readouterr().err
        assert "takes 100 inputs" in err and "--input" in err


# ---- exports ----------------------------------------------------------------------------------
MAIN_C = r"""
#include <stdio.h>
#include "NAME.h"

/* argv[1]: samples of PFX_IMAGE_BYTES uint8 pixels; prints the encoded x, then the class */
int main(int argc, char **argv)
{
    static uint32_t scratch[(PFX_SCRATCH_BYTES + 3) / 4];
    static uint8_t px[PFX_IMAGE_BYTES];
    int8_t x[PFX_N_INPUTS];
    uint16_t cls;
    unsigned i;
    FILE *f;
    if (argc != 2 || NAME_check() != FLIPNET_OK) return 2;
    f = fopen(argv[1], "rb");
    if (f == NULL) return 4;
    while (fread(px, 1, sizeof px, f) == sizeof px) {
        NAME_input_from_image(px, x);
        if (flipnet_view_predict(&NAME_model, x, 1, &cls, scratch, sizeof scratch)) return 5;
        for (i = 0; i < PFX_N_INPUTS; i++) printf("%d ", (int)x[i]);
        printf("%u\n", (unsigned)cls);
    }
    fclose(f);
    return 0;
}
"""


@pytest.mark.parametrize("encoding", ["crop20-pool2", "crop24-pool2-centered", "pool4",
                                      "crop20", "half", "centered"])
def test_c_header_input_from_image(encoding, synthetic, core_objects, tmp_path):  # noqa: F811
    cc, objs = core_objects
    name = "enc_model"
    m = trained_model(synthetic, encoding, n_hidden=16, n=500) if encoding not in I.SCALINGS \
        else flipnet.Model([784, 16, 10], seed=4, input=encoding)
    m.export(tmp_path / (name + ".h"))
    text = (tmp_path / (name + ".h")).read_text()
    e = I.parse_encoding(encoding)
    assert ("#define ENC_MODEL_INPUT_FROM_PIXEL" in text) == (not e.reduces)
    assert ("#define ENC_MODEL_IMAGE_SIDE 28u" in text) == e.reduces
    assert "#define ENC_MODEL_INPUT_CROP %du" % e.crop in text
    assert "#define ENC_MODEL_INPUT_POOL %du" % e.pool in text
    (tmp_path / "main.c").write_text(MAIN_C.replace("NAME", name).replace("PFX", name.upper()))
    exe = str(tmp_path / "enc")
    res = subprocess.run([cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wcast-qual",
                          "-Wshadow", "-Werror", "-O1", "-I", str(tmp_path), "-I", CORE_INC,
                          str(tmp_path / "main.c"), *objs, "-o", exe],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert res.returncode == 0, res.stdout.decode(errors="replace")
    # random images (every pixel value) and the synthetic digits
    rng = np.random.default_rng(7)
    _, (xt, _) = synthetic
    imgs = np.concatenate([rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), xt[:100]])
    imgs[0], imgs[1] = 0, 255
    (tmp_path / "x.u8").write_bytes(np.ascontiguousarray(imgs).tobytes())
    out = subprocess.run([exe, str(tmp_path / "x.u8")], stdout=subprocess.PIPE, timeout=60)
    assert out.returncode == 0
    rows = np.array([[int(v) for v in ln.split()] for ln in out.stdout.decode().splitlines()])
    assert rows.shape == (len(imgs), m.n_inputs + 1)
    np.testing.assert_array_equal(rows[:, :-1], I.quantize(imgs, encoding).reshape(len(imgs), -1))
    np.testing.assert_array_equal(rows[:, -1], m.predict(imgs))


def test_c_header_without_an_image_side(tmp_path):
    m = flipnet.Model([100, 8, 10], input="crop20-pool2")  # never fit on images
    text = flipnet.export.c_header(m, "nos")
    assert "nos_input_from_image" in text and "set model.image_side" in text
    assert "static inline void nos_input_from_image" not in text
    assert "#define NOS_IMAGE_SIDE" not in text and "#define NOS_INPUT_FROM_PIXEL" not in text
    m.image_side = 28
    assert "static inline void nos_input_from_image" in flipnet.export.c_header(m, "nos")


def test_npz_meta_holds_the_encoding(c20, tmp_path):
    c20.export(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as z:
        meta = json.loads(str(z["meta"]))
    assert meta["input"]["encoding"] == "crop20-pool2" and meta["input"]["image_side"] == 28
    assert meta["input"]["n_inputs"] == 100 and meta["input"]["image_values"] == 784
    assert "sum >> 3" in meta["input"]["quantize"]
    twin = flipnet.Model(meta["sizes"], meta["kinds"], input=meta["input"]["encoding"])
    assert twin.n_inputs == 100


@pytest.mark.parametrize("encoding", ["crop20-pool2", "crop24-pool2", "pool2",
                                      "crop20-pool2-centered", "pool4-centered", "crop20"])
def test_onnx_reproduces_the_encoding(encoding, synthetic):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from flipnet import onnx_export as ox

    m = trained_model(synthetic, encoding, n_hidden=24, n=600)
    _, (xt, _) = synthetic
    rng = np.random.default_rng(3)
    imgs = np.concatenate([xt, rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)])
    proto = ox.build(m)
    names = [n.op_type for n in proto.graph.node]
    assert ("ReduceSum" in names) == (m.image_side and I.parse_encoding(encoding).pool > 1)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.name == "pixels" and inp.shape[1] == 784
    logits, cls = sess.run(["logits", "class"], {"pixels": imgs.reshape(len(imgs), -1)})
    np.testing.assert_array_equal(logits, m.forward(imgs))
    np.testing.assert_array_equal(cls, m.predict(imgs))
    # the int8 graph takes the encoded samples
    s8 = ort.InferenceSession(ox.build(m, "int8").SerializeToString(),
                              providers=["CPUExecutionProvider"])
    assert s8.get_inputs()[0].shape[1] == m.n_inputs
    l8, _ = s8.run(["logits", "class"], {"x": I.quantize(imgs, encoding)})
    np.testing.assert_array_equal(l8, logits)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["input_encoding"] == encoding and props["image_side"] == "28"


def test_onnx_without_an_image_side_names_int8():
    pytest.importorskip("onnx")
    from flipnet import onnx_export as ox

    m = flipnet.Model([100, 8, 10], input="crop20-pool2")
    with pytest.raises(ArgumentError, match="input=\"int8\""):
        ox.build(m)
    assert ox.build(m, "int8").graph.input[0].name == "x"


# ---- the CLI ----------------------------------------------------------------------------------
def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_train_with_input(capsys, synthetic_dir, tmp_path):
    out = tmp_path / "c.flip"
    status, stdout, err = run(capsys, "train", "--data-dir", synthetic_dir, "--arch",
                              "100-32-10", "--input", "crop20-pool2", "--epochs", "1",
                              "--limit", "600", "--test-limit", "200", "--out", out, "--json",
                              "--quiet")
    assert status == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["arch"] == "100-32-10"
    m = flipnet.load(out)
    assert m.input_encoding == "crop20-pool2" and m.image_side == 28
    status, stdout, err = run(capsys, "info", out)
    assert status == 0 and "crop20-pool2 (from 28 x 28 images)" in stdout
    status, stdout, err = run(capsys, "eval", out, "--data-dir", synthetic_dir, "--limit",
                              "200", "--json")
    assert status == 0, err
    assert json.loads(stdout.strip().splitlines()[-1])["accuracy"] == \
        pytest.approx(res["accuracy"])
    # the header and the ONNX graph from the CLI
    status, _, err = run(capsys, "export", out, "-o", tmp_path / "c.h")
    assert status == 0, err
    assert "c_input_from_image" in (tmp_path / "c.h").read_text()


@pytest.mark.parametrize("argv, words", [
    (["--arch", "784-128-10", "--input", "crop20-pool2"],
     "--arch 784-128-10 takes 784 inputs, but input encoding 'crop20-pool2' gives 100"),
    (["--arch", "100-128-10", "--input", "pool2"],
     "input encoding 'pool2' makes 196 from mnist's 28 x 28 images (use --arch 196-...)"),
    (["--input", "crop20-pool2"], "use --arch 100-..."),
    (["--arch", "100-128-10"], "takes 100 inputs but mnist samples have 784"),
])
def test_cli_train_width_errors(capsys, synthetic_dir, argv, words):
    status, _, err = run(capsys, "train", "--data-dir", synthetic_dir, "--limit", "10",
                         "--out", "", *argv)
    assert status == 1 and words in err, err
    assert err.startswith("flipnet: error: ") and err.count("\n") == 1


def test_cli_input_is_checked_and_documented(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--input", "crop20pool2"])
    err = capsys.readouterr().err
    assert "did you mean 'crop20-pool2'" in err
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "crop20-pool2: 100 inputs from 28 x 28" in text and "[crop<C>-][pool<P>]" in text


def test_mnist_accuracy_with_crop20_pool2(capsys, mnist, tmp_path):
    """`flipnet train --arch 100-128-10 --input crop20-pool2 --epochs 1`, the default recipe
    otherwise, on all of MNIST: a sane accuracy (measured 92.19%)."""
    status, stdout, err = run(capsys, "train", "--arch", "100-128-10", "--input",
                              "crop20-pool2", "--epochs", "1", "--out", tmp_path / "m.flip",
                              "--json", "--quiet")
    assert status == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["n_train"] == 60000 and res["n_test"] == 10000
    assert res["accuracy"] > 0.90, res["accuracy"]
    m = flipnet.load(tmp_path / "m.flip")
    assert m.image_side == 28 and m.memory_report()["weight_bytes"] < 4000
    # ONNX Runtime on the exported graph: the same logits on the 10,000 raw test images
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from flipnet import onnx_export as ox

    _, (xt, yt) = mnist
    sess = ort.InferenceSession(ox.build(m).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    logits, cls = sess.run(["logits", "class"], {"pixels": xt.reshape(len(xt), -1)})
    np.testing.assert_array_equal(logits, m.forward(xt))
    assert np.mean(cls == yt) == res["accuracy"]


def test_inference_firmware_twin_with_a_reducing_model(c20, synthetic, tmp_path):
    """The inference-only firmware (its host build) compiles the header of a crop20-pool2
    model and classifies the reduced samples the host sends exactly as the core does."""
    import shutil

    from flipnet.device import sim
    from flipnet.device.client import Device
    from flipnet.device.session import prepare_inputs

    if shutil.which("cmake") is None or sim.repo_root() is None or sys.platform == "win32":
        pytest.skip("needs cmake, a C compiler, a pty and the source tree")
    c20.export(tmp_path / "c20_model.h")
    exe = sim.build_firmware("host", build_dir=str(tmp_path / "fw-infer-host"),
                             model_header=str(tmp_path / "c20_model.h"))
    _, (xt, _) = synthetic
    x8, _ = prepare_inputs(xt[:300], 8, "crop20-pool2")
    x4, table = prepare_inputs(xt[:300], 4, "crop20-pool2")
    with sim.start_twin(exe) as proc, Device(proc.port) as dev:
        info = dev.info()
        assert info["inference_only"] and info["model"]["sizes"] == [100, 32, 10]
        assert info["model"]["input"] == "crop20-pool2"  # INFO names the whole encoding
        np.testing.assert_array_equal(dev.predict(x8), c20.predict(xt[:300]))
        np.testing.assert_array_equal(dev.predict(x4, bits=4, table=table), c20.predict(x4))
        assert info["max_frame"] < 2000  # frames sized for 8 samples of 100 values
