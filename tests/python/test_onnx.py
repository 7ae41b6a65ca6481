"""ONNX export (docs/export.md): ONNX Runtime on the exported graph gives exactly the core's
logits and classes.

Trained models are compared on a whole test set (2,000 images of the synthetic data, synth.py:
the check never depends on MNIST being present), crafted models on
random data built to hit the edges of the integer semantics: activations clamped at +-127,
shifts of 0 and >= 23 (where the floor is -1 or 0), floor vs truncation of negative sums,
ties in the logits, widths that are not multiples of 8, 1 to 8 layers. Skipped as a whole
when onnx / onnxruntime are not installed (`pip install -e ".[test,onnx]"`), except under
CI=true, where that fails (.ci/run installs them).
"""

import json
import os
import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import flipnet  # noqa: E402
from flipnet import cli  # noqa: E402
from flipnet import export as fx  # noqa: E402
from flipnet import onnx_export as ox  # noqa: E402
from flipnet.errors import ArgumentError, FlipnetError  # noqa: E402

#: every op the exporter may emit (docs/export.md lists them)
OPS = {"Cast", "Sub", "Clip", "BitShift", "MatMulInteger", "Mod", "Div", "ArgMax"}


def session(path_or_proto, optimize=True):
    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = path_or_proto
    if isinstance(data, onnx.ModelProto):
        data = data.SerializeToString()
    elif not isinstance(data, bytes):
        data = os.fspath(data)
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def run_ort(sess, x):
    """(logits, classes) from ORT for uint8 pixels or int8 inputs x (N, n0)."""
    name = sess.get_inputs()[0].name
    x = np.ascontiguousarray(x.reshape(len(x), -1))
    logits, classes = sess.run(["logits", "class"], {name: x})
    assert logits.dtype == np.int32 and classes.dtype == np.int64
    return logits, classes


def assert_same(model, sess, x):
    """ORT and the core agree exactly on x: logits (flipnet_forward) and classes
    (flipnet_predict)."""
    logits, classes = run_ort(sess, x)
    core_logits = model.forward(x)
    core_classes = model.predict(x)
    np.testing.assert_array_equal(logits, core_logits)
    np.testing.assert_array_equal(classes, core_classes)
    return core_logits, core_classes


def numpy_forward(model, x8, rounding="floor", hidden=False):
    """docs/rule.md section 1 in NumPy; rounding="trunc" is the wrong shift (toward zero),
    to show where it would differ. Returns the logits (and the pre-clamp hidden values)."""
    a = x8.reshape(len(x8), -1).astype(np.int64)
    pre = []
    for l in range(model.n_layers):
        z = a @ model.weights(l).T.astype(np.int64)
        if l == model.n_layers - 1:
            break
        s = int(model._m.layers[l].shift)
        q = z >> s if rounding == "floor" else np.fix(z / float(2 ** s)).astype(np.int64)
        pre.append(q)
        a = np.clip(q, -127, 127)
    return (z, pre) if hidden else z


def random_model(sizes, kinds, shifts, rng, input="half", zero_frac=0.3):
    m = flipnet.Model(sizes, kinds, seed=3, input=input)
    for l, kind in enumerate(m.kinds):
        shape = (sizes[l + 1], sizes[l])
        w = rng.choice([-1, 1], size=shape).astype(np.int8)
        if kind == "ternary":
            w[rng.random(shape) < zero_frac] = 0
        m.set_weights(l, w)
    m.shifts = shifts
    return m


# ---- trained models, a whole test set ------------------------------------------------------
@pytest.fixture(scope="module")
def trained(synthetic):
    (x, y), _ = synthetic
    models = {}
    m = flipnet.Model.ternary([784, 128, 10], seed=0, input="half")
    m.fit(x, y, epochs=1, verbose=0)
    models["ternary-784-128-10"] = m
    m = flipnet.Model.binary([784, 128, 10], seed=1, input="half")
    m.fit(x, y, epochs=1, verbose=0)
    models["binary-784-128-10"] = m
    m = flipnet.Model([784, 64, 32, 10], ["ternary", "binary", "ternary"], seed=0,
                      input="centered")
    m.fit(x, y, epochs=3, verbose=0)
    models["mixed-784-64-32-10-centered"] = m
    m = flipnet.Model([784, 61, 33, 10], ["binary", "ternary", "ternary"], seed=2,
                      input="half")
    m.fit(x[:3000], y[:3000], epochs=1, verbose=0)
    models["mixed-784-61-33-10-half"] = m
    return models


@pytest.mark.parametrize("which", ["ternary-784-128-10", "binary-784-128-10",
                                   "mixed-784-64-32-10-centered", "mixed-784-61-33-10-half"])
def test_test_set_identical(trained, synthetic, tmp_path, which):
    model = trained[which]
    _, (xt, yt) = synthetic
    assert len(xt) == 2000
    path = tmp_path / "m.onnx"
    info = fx.export(model, path, "onnx")
    assert info == {"format": "onnx", "path": str(path), "bytes": os.path.getsize(path)}
    _, classes = assert_same(model, session(path), xt)
    acc = float(np.mean(classes == yt))
    assert acc > 0.3, "%s: %.4f (a trained model, not a constant one)" % (which, acc)
    # the already-encoded int8 path: same results from flipnet.quantize'd inputs
    x8 = flipnet.quantize(xt, model.input_encoding)
    model.export(tmp_path / "m8.onnx")  # format from the suffix: uint8 input
    fx.export(model, tmp_path / "m8.onnx", "onnx", input="int8")
    sess8 = session(tmp_path / "m8.onnx")
    assert sess8.get_inputs()[0].name == "x" and sess8.get_inputs()[0].type == "tensor(int8)"
    logits8, classes8 = run_ort(sess8, x8)
    np.testing.assert_array_equal(logits8, model.forward(xt))
    np.testing.assert_array_equal(classes8, classes)


def test_without_graph_optimizations(trained, synthetic):
    """The result does not depend on ORT's graph rewrites."""
    model = trained["mixed-784-64-32-10-centered"]
    _, (xt, _) = synthetic
    assert_same(model, session(ox.build(model), optimize=False), xt)


def test_negative_values_floor_shift(trained, synthetic):
    """With centered inputs most hidden sums are negative; z >> s must be the floor. A graph
    that divides toward zero would change logits and classes on this model: the check above is
    able to catch it."""
    model = trained["mixed-784-64-32-10-centered"]
    _, (xt, _) = synthetic
    x8 = flipnet.quantize(xt, "centered")
    assert all(s > 0 for s in model.shifts)
    floor_logits, pre = numpy_forward(model, x8, hidden=True)
    trunc_logits = numpy_forward(model, x8, rounding="trunc")
    np.testing.assert_array_equal(floor_logits, model.forward(xt))  # the oracle is right
    z0 = x8.reshape(len(x8), -1).astype(np.int64) @ model.weights(0).T.astype(np.int64)
    s0 = model.shifts[0]
    assert np.mean((z0 < 0) & (z0 % (1 << s0) != 0)) > 0.2  # negative, not a multiple
    trunc_classes = trunc_logits.argmax(axis=1)
    assert np.sum(trunc_classes != model.predict(xt)) > 10
    logits, classes = run_ort(session(ox.build(model)), xt)
    np.testing.assert_array_equal(logits, floor_logits)
    assert not np.array_equal(logits, trunc_logits)


# ---- crafted edge cases -------------------------------------------------------------------
def test_clamp_at_127(rng):
    """Shift 0 and saturating rows: most hidden values are beyond +-127 before the clamp."""
    m = random_model([40, 12, 9, 5], ["ternary", "binary", "ternary"], [0, 1], rng)
    w = m.weights(0)
    w[0, :] = 1
    w[1, :] = -1
    m.set_weights(0, w)
    x = rng.integers(0, 256, size=(3000, 40), dtype=np.uint8)
    x[:4] = np.array([255, 0, 254, 1], dtype=np.uint8)[:, None]  # extremes of both encodings
    sess = session(ox.build(m))
    assert_same(m, sess, x)
    _, pre = numpy_forward(m, flipnet.quantize(x, "half"), hidden=True)
    assert np.mean(np.abs(pre[0]) > 127) > 0.2 and (pre[0] > 127).any() and (pre[0] < -127).any()
    assert np.mean(np.abs(pre[1]) > 127) > 0.05
    # the int8 path at the range ends: every input +127 or -127
    x8 = rng.choice(np.array([-127, 127], dtype=np.int8), size=(500, 40))
    logits, classes = run_ort(session(ox.build(m, input="int8")), x8)
    np.testing.assert_array_equal(logits, m.forward(x8))
    np.testing.assert_array_equal(classes, m.predict(x8))


def test_argmax_ties_lowest_index(rng):
    """Duplicated rows of the last layer tie their logits: class 2k wins over 2k+1, and an
    all-zero last layer predicts class 0 for every sample, in ORT as in flipnet_predict."""
    m = random_model([30, 17, 6], ["binary", "ternary"], [2], rng)
    w = m.weights(1)
    w[1::2] = w[0::2]
    m.set_weights(1, w)
    x = rng.integers(0, 256, size=(2000, 30), dtype=np.uint8)
    logits, classes = assert_same(m, session(ox.build(m)), x)
    assert (classes % 2 == 0).all()
    top = logits.max(axis=1, keepdims=True)
    assert ((logits == top).sum(axis=1) >= 2).all()  # every sample has a tie at the top
    m.set_weights(1, np.zeros((6, 17), dtype=np.int8))
    logits, classes = assert_same(m, session(ox.build(m)), x)
    assert (logits == 0).all() and (classes == 0).all()


@pytest.mark.parametrize("sizes, kinds, shifts", [
    ([23, 3], ["ternary"], []),
    ([37, 13, 11, 7, 5, 3], ["ternary", "binary", "ternary", "binary", "ternary"],
     [1, 2, 0, 3]),
    ([29, 15, 9, 17, 3, 11, 5, 7, 3], ["binary", "ternary"] * 4, [2, 3, 1, 0, 2, 1, 2]),
    ([45, 19, 7, 4], ["ternary", "ternary", "binary"], [31, 0]),   # a shift >= 31
    ([45, 19, 7, 4], ["binary", "ternary", "ternary"], [23, 30]),  # only -1 / 0 pass
])
@pytest.mark.parametrize("encoding", ["centered", "half"])
def test_odd_widths_depths_shifts(rng, sizes, kinds, shifts, encoding):
    m = random_model(sizes, kinds, shifts, rng, input=encoding)
    x = rng.integers(0, 256, size=(1500, sizes[0]), dtype=np.uint8)
    assert_same(m, session(ox.build(m)), x)
    x8 = rng.integers(-127, 128, size=(700, sizes[0])).astype(np.int8)
    logits, classes = run_ort(session(ox.build(m, input="int8")), x8)
    np.testing.assert_array_equal(logits, m.forward(x8))
    np.testing.assert_array_equal(classes, m.predict(x8))
    np.testing.assert_array_equal(logits, numpy_forward(m, x8))


# ---- the graph itself ---------------------------------------------------------------------
def test_graph_structure(trained, tmp_path):
    model = trained["mixed-784-64-32-10-centered"]
    path = tmp_path / "m.onnx"
    model.export(path, "onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", ox.OPSET)]
    assert proto.ir_version == ox.IR_VERSION and proto.producer_name == "flipnet"
    g = proto.graph
    assert {n.op_type for n in g.node} <= OPS
    assert len({n.name for n in g.node}) == len(g.node) and all(n.name for n in g.node)
    (inp,) = g.input
    assert inp.name == "pixels" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 784
    outs = {o.name: o.type.tensor_type.elem_type for o in g.output}
    assert outs == {"logits": onnx.TensorProto.INT32, "class": onnx.TensorProto.INT64}
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    for l, kind in enumerate(model.kinds):
        w = inits["layer%d.weight" % l]
        assert w.dtype == np.int8
        np.testing.assert_array_equal(w, model.weights(l).T)
        assert set(np.unique(w)) <= ({-1, 0, 1} if kind == "ternary" else {-1, 1})
    assert int(inits["layer0.divisor"]) == 2 ** model.shifts[0]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["format"] == "flipnet-onnx/1" and meta["arch"] == "784-64-32-10"
    assert meta["kinds"] == "ternary,binary,ternary" and meta["input_encoding"] == "centered"
    assert meta["shifts"] == ",".join(map(str, model.shifts))
    assert meta["flipnet_version"] == flipnet.__version__
    assert json.loads(meta["rule"]) == model.rule
    # dynamic batch: 1 sample and 3 samples through the same session
    sess = session(path)
    x = np.zeros((3, 784), dtype=np.uint8)
    x[1, 100:300] = 255
    assert run_ort(sess, x[:1])[0].shape == (1, 10)
    assert_same(model, sess, x)
    # the half encoding uses BitShift on uint8, no int32 detour
    half = ox.build(trained["binary-784-128-10"])
    assert [n.op_type for n in half.graph.node][:2] == ["BitShift", "Cast"]


def test_unknown_layer_kind_refused(trained, tmp_path):
    """A layer kind the exporter does not know (e.g. a future FP32 kind 3) is refused with an
    error naming the layer and the kind; nothing is written."""
    model = flipnet.Model([20, 9, 7, 3], ["ternary", "binary", "ternary"], seed=0)
    model._m.layers[1].kind = 3
    path = tmp_path / "m.onnx"
    with pytest.raises(ox.UnsupportedLayerError, match=r"layer 1 \(9 -> 7\).*kind .*\(3\)"):
        fx.export(model, path, "onnx")
    with pytest.raises(ArgumentError, match="only ternary"):
        ox.build(model, input="int8")
    assert not path.exists()
    model._m.layers[1].kind = 2
    assert ox.check_kinds(model) == ["ternary", "binary", "ternary"]


def test_bad_input_option(trained, tmp_path):
    model = trained["binary-784-128-10"]
    with pytest.raises(ArgumentError, match="unknown ONNX input 'float'"):
        fx.export(model, tmp_path / "m.onnx", "onnx", input="float")
    with pytest.raises(ArgumentError, match="ONNX graph's input; the c format has none"):
        fx.export(model, tmp_path / "m.h", "c", input="int8")
    assert os.listdir(tmp_path) == []


def test_missing_onnx_message(trained, tmp_path, monkeypatch, capsys):
    """Without the onnx package: a flipnet error that says which extra to install; the CLI
    prints it on one line with status 1."""
    model = trained["binary-784-128-10"]
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ox.OnnxUnavailableError) as exc:
        fx.export(model, tmp_path / "m.onnx", "onnx")
    assert isinstance(exc.value, FlipnetError) and isinstance(exc.value, ImportError)
    assert 'pip install "flipnet[onnx]"' in str(exc.value)
    flip = tmp_path / "m.flip"
    model.save(flip)
    status = cli.main(["export", str(flip), "--format", "onnx"])
    out, err = capsys.readouterr()
    assert status == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("flipnet: error: ONNX export needs the 'onnx' package")
    assert 'pip install "flipnet[onnx]"' in err
    assert sorted(os.listdir(tmp_path)) == ["m.flip"]


# ---- CLI ----------------------------------------------------------------------------------
def test_cli_export_onnx(trained, synthetic, tmp_path, capsys):
    model = trained["mixed-784-61-33-10-half"]
    _, (xt, _) = synthetic
    flip = tmp_path / "mixed.flip"
    model.save(flip)
    out = tmp_path / "mixed_graph.onnx"
    status = cli.main(["export", str(flip), "--format", "onnx", "-o", str(out)])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    assert "wrote %s (ONNX, %d bytes) from 784-61-33-10" % (out, os.path.getsize(out)) in stdout
    assert_same(model, session(out), xt)

    # --json, the format from the suffix, the int8 input
    out8 = tmp_path / "i8.onnx"
    status = cli.main(["export", str(flip), "-o", str(out8), "--onnx-input", "int8", "--json"])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["format"] == "onnx" and res["out"] == str(out8.resolve())
    assert res["bytes"] == os.path.getsize(out8) and res["arch"] == "784-61-33-10"
    logits, _ = run_ort(session(out8), flipnet.quantize(xt[:500], "half"))
    np.testing.assert_array_equal(logits, model.forward(xt[:500]))

    # no -o: beside the model, MODEL.onnx
    status = cli.main(["export", str(flip), "--format", "onnx"])
    capsys.readouterr()
    assert status == 0 and (tmp_path / "mixed.onnx").is_file()
    # --onnx-input is only for onnx; --name only for c
    status = cli.main(["export", str(flip), "--format", "onnx", "--name", "kws"])
    _, err = capsys.readouterr()
    assert status == 1 and "the onnx format has no names" in err
