"""flipnet export: npz and C header (docs/export.md).

The C header test compiles the generated header with the host C compiler, together with the
core's sources and a small main, and checks that it classifies test samples exactly as
Model.predict does (logits included); the models and samples are synthetic data (synth.py),
so the check never depends on MNIST being present.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import flipnet
from flipnet import cli
from flipnet import export as fx
from flipnet.errors import ArgumentError, ModelFileError

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORE_SRC = os.path.join(ROOT, "csrc", "src")
CORE_INC = os.path.join(ROOT, "csrc", "include")
N_SAMPLES = 200


def _cc():
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def models(synthetic):
    """Two small trained models: 784-32-10 ternary ("centered" inputs), and 784-31-13-10
    binary/ternary/binary ("half" inputs, with counters; padding bits and layer padding)."""
    (x, y), _ = synthetic
    a = flipnet.Model.ternary([784, 32, 10], seed=2, input="centered")
    a.fit(x[:2000], y[:2000], epochs=1, verbose=0)
    b = flipnet.Model([784, 31, 13, 10], ["binary", "ternary", "binary"], seed=1, input="half")
    b.fit(x[:1000], y[:1000], epochs=1, verbose=0)
    assert b.has_counters and a.shifts != [0]
    return {"ternary": a, "mixed": b}


@pytest.fixture(scope="module")
def model_file(models, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "tiny.flip"
    models["ternary"].save(path)
    return path


# ---- npz --------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["ternary", "mixed"])
def test_npz_round_trip(models, tmp_path, which):
    model = models[which]
    path = tmp_path / "m.npz"
    info = model.export(path, "npz")
    assert info == {"format": "npz", "path": str(path), "bytes": os.path.getsize(path)}
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        L = model.n_layers
        assert keys == {"meta"} | {"w%d" % l for l in range(L)} | {"shift%d" % l for l in range(L)}
        for l in range(L):
            w = z["w%d" % l]
            assert w.dtype == np.int8 and w.shape == (model.sizes[l + 1], model.sizes[l])
            np.testing.assert_array_equal(w, model.weights(l))
        shifts = [int(z["shift%d" % l]) for l in range(L)]
        meta = json.loads(str(z["meta"]))
    assert shifts[:-1] == model.shifts
    assert meta["format"] == "flipnet-npz/1" and meta["format_version"] == 1
    assert meta["model_format_version"] == 1 and meta["flipnet_version"] == flipnet.__version__
    assert meta["arch"] == model.arch and meta["sizes"] == model.sizes
    assert meta["kinds"] == model.kinds and meta["shifts"] == shifts
    assert meta["rule"] == model.rule and meta["input"]["encoding"] == model.input_encoding
    assert meta["seed"] == model.seed and meta["steps"] == model.steps > 0


def test_npz_rebuilds_the_model(models, tmp_path, synthetic):
    """The npz holds everything inference needs: a Model rebuilt from it predicts the same."""
    model = models["mixed"]
    path = tmp_path / "m.npz"
    model.export(path)  # format from the suffix
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        twin = flipnet.Model(meta["sizes"], meta["kinds"], input=meta["input"]["encoding"])
        for l in range(len(meta["kinds"])):
            twin.set_weights(l, z["w%d" % l])
        twin.shifts = meta["shifts"][:-1]
        _, (xt, _) = synthetic
        want = model.forward(xt[:N_SAMPLES])
        np.testing.assert_array_equal(twin.forward(xt[:N_SAMPLES]), want)
        # docs/export.md's NumPy inference from the arrays alone
        a = flipnet.quantize(xt[:N_SAMPLES].reshape(N_SAMPLES, -1),
                             meta["input"]["encoding"]).astype(np.int32)
        for l in range(len(meta["kinds"])):
            a = a @ z["w%d" % l].T.astype(np.int32)
            if l + 1 < len(meta["kinds"]):
                a = np.clip(a >> int(z["shift%d" % l]), -127, 127)
    np.testing.assert_array_equal(a, want)


# ---- the packed bytes -------------------------------------------------------------------------
def _pack_numpy(w, kind):
    """docs/format.md's layout from the int8 weights, independently of the core."""
    planes = [w > 0, w < 0] if kind == "ternary" else [w < 0]
    rows = np.concatenate([np.packbits(p, axis=1, bitorder="little") for p in planes], axis=1)
    data = rows.tobytes()
    return data + b"\0" * (-len(data) % 4)


@pytest.mark.parametrize("which", ["ternary", "mixed"])
def test_packed_weights_are_the_core_layout(models, which):
    model = models[which]
    data, layers = fx.packed_weights(model)
    assert data == b"".join(_pack_numpy(model.weights(l), k) for l, k in enumerate(model.kinds))
    mem = bytes(flipnet.model.ffi.buffer(model._m.weights, model._m.weight_bytes))
    assert data == mem
    assert [L["shift"] for L in layers[:-1]] == model.shifts
    assert [L["n"] for L in layers] + [layers[-1]["m"]] == model.sizes


# ---- C header ---------------------------------------------------------------------------------
MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "NAME.h"

/* argv[1]: N samples of N_INPUTS uint8 pixels; prints "class logit..." per sample */
int main(int argc, char **argv)
{
    static uint32_t scratch[(PFX_SCRATCH_BYTES + 3) / 4];
    static uint8_t px[PFX_N_INPUTS];
    int8_t x[PFX_N_INPUTS];
    int32_t z[PFX_N_CLASSES];
    uint16_t cls, cls_batch[2];
    int8_t xb[2 * PFX_N_INPUTS];
    void *big;
    size_t bytes = 0;
    unsigned i, j;
    FILE *f;
    flipnet_status st = NAME_check();
    if (argc != 2 || st != FLIPNET_OK) {
        fprintf(stderr, "check: %s\n", flipnet_status_str(st));
        return 2;
    }
    if (flipnet_view_scratch_size(&NAME_model, 2, &bytes) != FLIPNET_OK) return 3;
    big = malloc(bytes);
    f = fopen(argv[1], "rb");
    if (f == NULL || big == NULL) return 4;
    while (fread(px, 1, sizeof px, f) == sizeof px) {
        for (i = 0; i < PFX_N_INPUTS; i++) x[i] = PFX_INPUT_FROM_PIXEL(px[i]);
        st = flipnet_view_predict(&NAME_model, x, 1, &cls, scratch, sizeof scratch);
        if (st == FLIPNET_OK)
            st = flipnet_view_forward(&NAME_model, x, 1, z, scratch, sizeof scratch);
        /* a batch of 2 with a queried scratch size agrees with batch 1 */
        memcpy(xb, x, sizeof x);
        memcpy(xb + PFX_N_INPUTS, x, sizeof x);
        if (st == FLIPNET_OK) st = flipnet_view_predict(&NAME_model, xb, 2, cls_batch, big, bytes);
        if (st != FLIPNET_OK || cls_batch[0] != cls || cls_batch[1] != cls) {
            fprintf(stderr, "predict: %s\n", flipnet_status_str(st));
            return 5;
        }
        printf("%u", (unsigned)cls);
        for (j = 0; j < PFX_N_CLASSES; j++) printf(" %ld", (long)z[j]);
        printf("\n");
    }
    fclose(f);
    free(big);
    return 0;
}
"""


@pytest.fixture(scope="module")
def core_objects(tmp_path_factory):
    """The core's sources compiled once with the host C compiler (skip without one)."""
    cc = _cc()
    if cc is None:
        pytest.skip("no C compiler (cc, gcc, clang) on PATH")
    out = tmp_path_factory.mktemp("core")
    procs, objs = [], []
    for src in sorted(os.listdir(CORE_SRC)):
        if src.endswith(".c"):
            obj = str(out / (src[:-2] + ".o"))
            objs.append(obj)
            procs.append(subprocess.Popen(
                [cc, "-std=c99", "-O1", "-I", CORE_INC, "-I", CORE_SRC, "-c",
                 os.path.join(CORE_SRC, src), "-o", obj],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for p in procs:
        out_text = p.communicate()[0]
        assert p.returncode == 0, out_text.decode(errors="replace")
    return cc, objs


def _build(cc, objs, header_dir, name, tmp_path):
    main = tmp_path / "main.c"
    main.write_text(MAIN_C.replace("NAME", name).replace("PFX", name.upper()))
    exe = str(tmp_path / "classify")
    cmd = [cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wcast-qual", "-Wshadow",
           "-Werror", "-O1", "-I", str(header_dir), "-I", CORE_INC, str(main), *objs, "-o", exe]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert res.returncode == 0, res.stdout.decode(errors="replace")
    return exe


@pytest.mark.parametrize("which", ["ternary", "mixed"])
def test_c_header_predicts_like_the_model(models, synthetic, core_objects, tmp_path, which):
    model = models[which]
    name = "model_%s" % which
    header = tmp_path / ("%s.h" % name)
    info = model.export(header, "c")
    assert info["format"] == "c" and info["bytes"] == os.path.getsize(header)
    text = header.read_text()
    assert "static const union" in text and "static inline flipnet_status %s_check" % name in text
    assert "static const flipnet_model_view %s_model = {" % name in text
    assert '#define %s_INPUT_ENCODING "%s"' % (name.upper(), model.input_encoding) in text
    exe = _build(*core_objects, tmp_path, name, tmp_path)

    _, (xt, _) = synthetic
    px = np.ascontiguousarray(xt[:N_SAMPLES].reshape(N_SAMPLES, -1), dtype=np.uint8)
    data = tmp_path / "x.u8"
    px.tofile(data)
    res = subprocess.run([exe, str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    rows = np.array([[int(v) for v in ln.split()] for ln in res.stdout.decode().splitlines()])
    assert rows.shape == (N_SAMPLES, 1 + model.n_classes)
    np.testing.assert_array_equal(rows[:, 0], model.predict(px))
    np.testing.assert_array_equal(rows[:, 1:], model.forward(px))


def test_c_header_contents(models, tmp_path):
    model = models["mixed"]
    data, layers = fx.packed_weights(model)
    text = fx.c_header(model, "tiny", source="m.flip")
    assert "from m.flip" in text and "#define TINY_WEIGHT_BYTES %du" % len(data) in text
    assert "#define TINY_N_LAYERS 3u" in text and "#define TINY_N_INPUTS 784u" in text
    assert "#if FLIPNET_FILE_VERSION != 1 || !defined(FLIPNET_ABI) || FLIPNET_ABI != 2" in text
    # the byte array is exactly the packed weights
    body = text.split("} tiny_weights = {.bytes = {")[1].split("}};")[0]
    vals = [int(t, 16) for t in body.replace(",", " ").split() if t.startswith("0x")]
    assert bytes(vals) == data
    for L in layers:
        kind = "FLIPNET_TERNARY" if L["kind"] == 1 else "FLIPNET_BINARY"
        assert "{%s, %du, 0u, %du, %du, %du, %du}" % (kind, L["shift"], L["n"], L["m"], L["bpr"],
                                                     L["offset"]) in text
    # inference only: a read-only view (no counters, no rule, nothing writable), provenance
    assert "static const flipnet_model_view tiny_model = {" in text
    assert "flipnet_model " not in text.replace("flipnet_model_view", "")
    assert "#define TINY_STEPS UINT64_C(%d)" % model.steps in text
    assert "#define TINY_SEED UINT64_C(%d)" % model.seed in text


def test_c_names(tmp_path):
    assert fx.c_name(tmp_path / "mnist-784.h") == "mnist_784"
    assert fx.c_name(tmp_path / "7seg.h") == "m_7seg"
    assert fx.c_name(name="kws") == "kws"
    for bad in ("1x", "a-b", "", "flipnet_model", "__x"):
        with pytest.raises(ArgumentError):
            fx.c_name(name=bad)
    with pytest.raises(ArgumentError, match="--name"):
        fx.c_name(tmp_path / "flipnet_mnist.h")


# ---- Python errors ----------------------------------------------------------------------------
def test_export_errors(models, tmp_path):
    model = models["ternary"]
    with pytest.raises(ValueError,
                       match="unknown export format 'tflite'; choose one of c, npz, onnx"):
        model.export(tmp_path / "m.bin", "tflite")
    with pytest.raises(ArgumentError, match="cannot tell the export format"):
        model.export(tmp_path / "m.bin")
    with pytest.raises(ArgumentError):
        model.export(tmp_path / "m.npz", "npz", name="x")
    with pytest.raises(FileNotFoundError) as exc:
        model.export(tmp_path / "missing" / "m.h", "c")
    assert exc.value.filename == str(tmp_path / "missing" / "m.h")
    with pytest.raises(IsADirectoryError):
        model.export(tmp_path, "npz")
    assert sorted(os.listdir(tmp_path)) == []  # nothing half-written
    assert model.export(tmp_path / "m.H", name="other")["format"] == "c"


# ---- CLI --------------------------------------------------------------------------------------
def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_export_c_and_npz(capsys, model_file, models, tmp_path):
    out = tmp_path / "tiny_model.h"
    status, stdout, err = run(capsys, "export", model_file, "--format", "c", "-o", out)
    assert status == 0, err
    assert "tiny_model.h" in stdout and os.path.getsize(out) > 0
    assert "tiny_model_check" in out.read_text() and "from tiny.flip" in out.read_text()

    npz = tmp_path / "x.npz"
    status, stdout, err = run(capsys, "export", model_file, "--format", "npz", "-o", npz,
                              "--json")
    assert status == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["command"] == "export" and res["format"] == "npz"
    assert res["out"] == str(npz.resolve()) and res["bytes"] == os.path.getsize(npz)
    with np.load(npz) as z:
        np.testing.assert_array_equal(z["w0"], models["ternary"].weights(0))

    # format from the suffix; output beside the model when -o is left out; --name
    status, _, err = run(capsys, "export", model_file, "-o", tmp_path / "y.npz")
    assert status == 0, err
    status, _, err = run(capsys, "export", model_file, "--format", "c", "--name", "kws")
    assert status == 0, err
    default_out = model_file.with_suffix(".h")
    assert "kws_check" in default_out.read_text()


@pytest.mark.parametrize("argv, msg", [
    (["--format", "tflite", "-o", "{tmp}/m.bin"], "unknown export format 'tflite'"),
    (["--format", "npz", "-o", "{tmp}/m.npz", "--onnx-input", "int8"],
     "(--onnx-input) chooses the ONNX"),
    (["-o", "{tmp}/m.bin"], "cannot tell the export format"),
    (["--format", "c", "-o", "{tmp}/no/such/dir/m.h"], "No such file or directory"),
    (["--format", "c", "-o", "{tmp}/m.h", "--name", "9lives"], "not a C identifier"),
])
def test_cli_export_errors(capsys, model_file, tmp_path, argv, msg):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    status, out, err = run(capsys, "export", model_file, *argv)
    assert status == 1 and out == ""
    assert err.startswith("flipnet: error: ") and msg in err and err.count("\n") == 1


def test_cli_export_bad_model(capsys, tmp_path):
    bad = tmp_path / "bad.flip"
    bad.write_bytes(b"not a model at all, just some bytes")
    status, _, err = run(capsys, "export", bad, "--format", "npz", "-o", tmp_path / "o.npz")
    assert status == 1 and err.startswith("flipnet: error: ") and err.count("\n") == 1
    assert not (tmp_path / "o.npz").exists()
    status, _, err = run(capsys, "export", tmp_path / "missing.flip", "--format", "c")
    assert status == 1 and "missing.flip" in err and err.count("\n") == 1
    with pytest.raises(ModelFileError):
        flipnet.load(bad)


def test_cli_export_subprocess(model_file, tmp_path):
    """The installed entry point (python -m flipnet) knows the subcommand."""
    res = subprocess.run([sys.executable, "-m", "flipnet", "export", str(model_file), "--format",
                          "c", "-o", str(tmp_path / "m.h")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(
                             os.path.dirname(flipnet.__file__))))
    assert res.returncode == 0, res.stderr.decode()
    assert (tmp_path / "m.h").exists()


def test_hybrid_model_exports_npz_with_biases_and_refuses_c(tmp_path):
    """An FP32 layer's npz entry is its float32 W plus its bias; the integer-only C header
    refuses FP32 layers with a message naming the layer and pointing to npz."""
    m = flipnet.Model("20-8-8-3", "hybrid", seed=3)
    fx.export(m, tmp_path / "h.npz", "npz")
    z = np.load(str(tmp_path / "h.npz"))
    assert z["w0"].dtype == np.float32 and z["w1"].dtype == np.int8
    np.testing.assert_array_equal(z["w0"], m.weights(0))
    np.testing.assert_array_equal(z["b0"], m.bias(0))
    np.testing.assert_array_equal(z["b2"], m.bias(2))
    assert "b1" not in z.files
    assert json.loads(str(z["meta"]))["kinds"] == ["fp32", "ternary", "fp32"]
    with pytest.raises(ArgumentError, match=r"layer 0 .* fp32 .*npz"):
        fx.export(m, tmp_path / "h.h", "c")
    assert not (tmp_path / "h.h").exists()
