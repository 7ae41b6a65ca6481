"""ONNX export: a graph that ONNX Runtime runs with exactly flipnet's integer semantics.

    from flipnet.export import export
    export(model, "mnist.onnx", "onnx")                 # input: uint8 pixels (N, n0)
    export(model, "mnist_i8.onnx", "onnx", input="int8")  # input: int8 already encoded

    import onnxruntime as ort
    sess = ort.InferenceSession("mnist.onnx", providers=["CPUExecutionProvider"])
    logits, cls = sess.run(["logits", "class"], {"pixels": xt.reshape(len(xt), -1)})

The graph (opset :data:`OPSET`, documented op by op in docs/export.md) computes what the core's
``flipnet_forward`` / ``flipnet_predict`` compute (docs/rule.md section 1), bit for bit:

* input encoding of the model, from uint8 pixels ``p``: ``"centered"``
  ``clamp(int32(p) - 128, -127, 127)``, ``"half"`` ``p >> 1`` (BitShift on uint8), cast to
  int8; with ``input="int8"`` the graph takes the int8 values directly (they must be in
  ``[-127, 127]``: the core refuses -128, the graph cannot);
* per layer ``z = MatMulInteger(a, W^T)``: int8 x int8 -> int32, the weights an int8
  initializer ``layer<l>.weight`` of shape ``(n, m)`` with values in {-1, 0, 1} (ternary) or
  {-1, 1} (binary);
* hidden layers ``a = int8(clamp(floor(z / 2^s), -127, 127))``: ONNX's BitShift is unsigned
  only, so the arithmetic shift is ``Div(z - Mod(z, 2^s), 2^s)`` with ``Mod(fmod=0)`` (the
  remainder takes the divisor's sign, so it is in ``[0, 2^s)``): the division is then exact,
  and whatever rounding Div uses, the result is the floor;
* the last layer's ``z`` are the int32 ``logits``; ``class`` is their ArgMax (int64) with
  ``select_last_index=0``: the lowest index wins ties, as in ``flipnet_predict``.

onnx is imported only here, and only when a graph is built: flipnet works without it;
without it :func:`build` raises :class:`OnnxUnavailableError` naming the extra to install.
"""

import json
import os

import numpy as np

from ._version import __version__
from .arch import INTEGER_KINDS, KINDS
from .errors import ArgumentError, FlipnetError
from .files import write_atomic
from .inputs import describe, parse_encoding

__all__ = ["OPSET", "IR_VERSION", "ONNX_FORMAT", "INPUTS", "OnnxUnavailableError",
           "UnsupportedLayerError", "build", "export_onnx", "check_kinds"]

#: the ONNX operator set of the graph (every op it uses is at its final version by opset 14;
#: ONNX Runtime has run opset 17 since 1.12)
OPSET = 17
#: the IR version matching OPSET (ONNX's version table: opset 17 = IR 8), kept low so that
#: older runtimes load the file
IR_VERSION = 8
#: value of the "format" metadata entry
ONNX_FORMAT = "flipnet-onnx/1"
#: graph inputs export_onnx can build: uint8 pixels (encoded in the graph) or int8 values
INPUTS = ("uint8", "int8")
#: |z| <= FLIPNET_MAX_WIDTH * 127 < 2^23, so for shifts >= 23 floor(z / 2^s) is -1 or 0; a
#: shift s is written as min(s, 30) (2^30 still fits int32) and gives the same result
_MAX_SHIFT = 30


class OnnxUnavailableError(FlipnetError, ImportError):
    """ONNX export needs the ``onnx`` package: ``pip install "flipnet[onnx]"``."""


class UnsupportedLayerError(ArgumentError):
    """The model has a layer kind the ONNX exporter does not write."""


def _onnx():
    try:
        import onnx  # noqa: F401
        from onnx import TensorProto, checker, helper, numpy_helper  # noqa: F401
    except ImportError as exc:
        raise OnnxUnavailableError(
            "ONNX export needs the 'onnx' package, which is not installed (%s); install it "
            "with: pip install \"flipnet[onnx]\" (onnx and onnxruntime)" % exc) from None
    return onnx


def check_kinds(model):
    """The model's layer kinds as names; UnsupportedLayerError for a kind not in
    ternary/binary (names the layer and its kind)."""
    kinds = list(model.kinds)
    sizes = model.sizes
    for l, kind in enumerate(kinds):
        if kind not in INTEGER_KINDS:  # a name, or the code of a kind without one
            raise UnsupportedLayerError(
                "cannot export layer %d (%d -> %d) to ONNX: its kind is %s (%d), and ONNX "
                "export writes only ternary (1) and binary (2) layers; export this model as "
                "npz instead, or retrain it with ternary/binary layers"
                % (l, sizes[l], sizes[l + 1], kind if isinstance(kind, str) else "unknown",
                   KINDS.get(kind, kind)))
    return kinds


def _metadata(model, kinds, shifts, input):
    enc = model.input_encoding
    meta = {
        "format": ONNX_FORMAT,
        "flipnet_version": __version__,
        "arch": model.arch,
        "kinds": ",".join(kinds),
        "shifts": ",".join(str(s) for s in shifts),
        "input_encoding": enc,
        "input": ("uint8 pixels, encoded in the graph as %r" % enc if input == "uint8"
                  else "int8 in [-127, 127], already encoded as %r" % enc),
        "input_formula": describe(enc, model.image_side),
        "n_classes": str(model.n_classes),
        "seed": str(model.seed),
        "steps": str(model.steps),
        "samples": str(model.samples),
        "rule": json.dumps(model.rule, sort_keys=True),
    }
    if model.image_side is not None:
        meta["image_side"] = str(model.image_side)
    if model.meta.get("dataset"):
        meta["dataset"] = str(model.meta["dataset"])
    return meta


def _reduce_nodes(model, spec, node, const, helper, T, batch):
    """The graph input ``pixels`` (uint8 (N, S*S)) and the nodes of a reducing input encoding
    (crop, block sums, floor mean, scaling; all integer): (graph input, name of the int8 x)."""
    side = model.image_side
    if side is None:
        raise ArgumentError(
            "the ONNX graph's uint8 input needs the side of the model's images, which this "
            "model does not know (input encoding %r; it was never fit on uint8 images): set "
            "model.image_side (e.g. 28) first, or export input=\"int8\" (--onnx-input int8) "
            "for samples already encoded" % spec.name)
    C, P, k = spec.crop or side, spec.pool, spec.block_shift
    o, B = (side - C) // 2, C // spec.pool
    graph_in = helper.make_tensor_value_info(
        "pixels", T.UINT8, [batch, side * side],
        "uint8 pixels of %d x %d images, one row per sample, row by row; encoded in the graph "
        "as %r: %s" % (side, side, spec.name, describe(spec, side)))
    t = node("Reshape", ["pixels", const("input.image_shape", [-1, side, side], np.int64)],
             ["input.image"], "input/image", "(N, S*S) -> (N, %d, %d) images" % (side, side))
    if C != side:
        t = node("Slice", [t, const("input.crop_starts", [o, o], np.int64),
                           const("input.crop_ends", [o + C, o + C], np.int64),
                           const("input.crop_axes", [1, 2], np.int64)], ["input.crop"],
                 "input/crop", "the central %d x %d pixels: rows and columns %d..%d"
                 % (C, C, o, o + C - 1))
    t = node("Cast", [t], ["input.p_i32"], "input/cast_int32", "uint8 pixel to int32",
             to=T.INT32)
    if P > 1:
        t = node("Reshape", [t, const("input.block_shape", [-1, B, P, B, P], np.int64)],
                 ["input.blocks"], "input/blocks",
                 "(N, %d, %d) -> (N, %d, %d, %d, %d): block (r, c) is [:, r, :, c, :]"
                 % (C, C, B, P, B, P))
        t = node("ReduceSum", [t, const("input.block_axes", [2, 4], np.int64)],
                 ["input.block_sum"], "input/block_sum",
                 "sum of each block's %d pixels (int32, at most %d)" % (P * P, 255 * P * P),
                 keepdims=0)
        t = node("Div", [t, const("input.block_count", 1 << k, np.int32)], ["input.q"],
                 "input/block_mean", "q = sum >> %d: the floor mean (exact: the sum is >= 0, "
                 "so truncating and flooring Div agree)" % k)
    t = node("Reshape", [t, const("input.flat_shape", [-1, B * B], np.int64)],
             ["input.q_flat"], "input/flatten", "(N, %d, %d) -> (N, %d), row by row"
             % (B, B, B * B))
    if spec.scaling == "half":
        t = node("Div", [t, const("input.two", 2, np.int32)], ["input.half"], "input/half",
                 "x = q >> 1 in [0, 127] (q >= 0: exact floor)")
    else:
        t = node("Sub", [t, const("input.offset", 128, np.int32)], ["input.centered"],
                 "input/sub_128", "q - 128")
        t = node("Clip", [t, const("input.min", -127, np.int32),
                          const("input.max", 127, np.int32)], ["input.clamped"],
                 "input/clamp", "clamp(q - 128, -127, 127): q 0 -> -127")
    x = node("Cast", [t], ["x"], "input/cast_int8", "encoded input, int8", to=T.INT8)
    return graph_in, x


def build(model, input="uint8"):
    """The ONNX graph of ``model`` as an ``onnx.ModelProto``, checked by ``onnx.checker``.

    ``input``: ``"uint8"`` (default: graph input ``pixels``, uint8 ``(N, n0)``, encoded in the
    graph by the model's input encoding) or ``"int8"`` (graph input ``x``, int8 ``(N, n0)``,
    values in ``[-127, 127]`` already encoded). Outputs ``logits`` int32 ``(N, classes)`` and
    ``class`` int64 ``(N,)``; ``N`` is dynamic.
    """
    if input not in INPUTS:
        raise ArgumentError("unknown ONNX input %r; choose uint8 (raw pixels, encoded in the "
                            "graph) or int8 (already encoded, in [-127, 127])" % (input,))
    kinds = check_kinds(model)
    onnx = _onnx()
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    L = model.n_layers
    sizes = model.sizes
    shifts = model.shifts  # of the hidden layers
    enc = model.input_encoding
    nodes, inits = [], []

    def const(name, value, dtype):
        inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    def node(op, inputs, outputs, name, doc, **attrs):
        n = helper.make_node(op, inputs, outputs, name=name, **attrs)
        n.doc_string = doc
        nodes.append(n)
        return outputs[0]

    batch = "N"
    spec = parse_encoding(enc)
    if input == "uint8" and spec.reduces:
        graph_in, x = _reduce_nodes(model, spec, node, const, helper, T, batch)
    elif input == "uint8":
        graph_in = helper.make_tensor_value_info(
            "pixels", T.UINT8, [batch, sizes[0]],
            "uint8 pixels, one row per sample, flattened as in training (MNIST: 28x28 row by row)")
        if enc == "centered":
            t = node("Cast", ["pixels"], ["input.p_i32"], "input/cast_int32",
                     "uint8 pixel to int32", to=T.INT32)
            t = node("Sub", [t, const("input.offset", 128, np.int32)], ["input.centered"],
                     "input/sub_128", "p - 128")
            t = node("Clip", [t, const("input.min", -127, np.int32),
                              const("input.max", 127, np.int32)], ["input.clamped"],
                     "input/clamp", "clamp(p - 128, -127, 127): pixel 0 -> -127")
            x = node("Cast", [t], ["x"], "input/cast_int8", "encoded input, int8",
                     to=T.INT8)
        elif enc == "half":
            t = node("BitShift", ["pixels", const("input.shift", 1, np.uint8)], ["input.half"],
                     "input/shr_1", "p >> 1 (unsigned), in [0, 127]", direction="RIGHT")
            x = node("Cast", [t], ["x"], "input/cast_int8", "encoded input, int8",
                     to=T.INT8)
        else:  # pragma: no cover - parse_encoding knows no other scaling
            raise ArgumentError("cannot export input encoding %r to ONNX" % (enc,))
    else:
        graph_in = helper.make_tensor_value_info(
            "x", T.INT8, [batch, sizes[0]],
            "int8 inputs in [-127, 127] (never -128), encoded as %r" % enc)
        x = "x"

    if L > 1:
        lo = const("clamp.min", -127, np.int32)
        hi = const("clamp.max", 127, np.int32)
    a = x
    for l in range(L):
        n, m, kind = sizes[l], sizes[l + 1], kinds[l]
        w = model.weights(l)  # (m, n), w[j, i]
        wname = "layer%d.weight" % l
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T.astype(np.int8)), wname))
        inits[-1].doc_string = ("layer %d: %d -> %d %s, int8 (n, m) = W^T, values in %s"
                                % (l, n, m, kind, "{-1, 0, 1}" if kind == "ternary"
                                   else "{-1, 1}"))
        last = l == L - 1
        z = node("MatMulInteger", [a, wname], ["logits" if last else "layer%d.z" % l],
                 "layer%d/matmul" % l,
                 "z = a @ W^T: int8 x int8 -> int32 (%s, %d -> %d)" % (kind, n, m))
        if last:
            break
        s = min(shifts[l], _MAX_SHIFT)
        if s > 0:
            d = const("layer%d.divisor" % l, 1 << s, np.int32)
            r = node("Mod", [z, d], ["layer%d.rem" % l], "layer%d/mod" % l,
                     "z mod 2^%d, in [0, 2^%d) (fmod=0: sign of the divisor)" % (s, s), fmod=0)
            t = node("Sub", [z, r], ["layer%d.z_rounded" % l], "layer%d/sub" % l,
                     "z - (z mod 2^%d): z rounded down to a multiple of 2^%d" % (s, s))
            z = node("Div", [t, d], ["layer%d.shifted" % l], "layer%d/div" % l,
                     "exact division: floor(z / 2^%d) = z >> %d (arithmetic)" % (s, s))
        t = node("Clip", [z, lo, hi], ["layer%d.clamped" % l], "layer%d/clamp" % l,
                 "clamp(z >> %d, -127, 127)" % shifts[l])
        a = node("Cast", [t], ["layer%d.act" % l], "layer%d/cast_int8" % l,
                 "activation, int8: the input of layer %d" % (l + 1), to=T.INT8)
    node("ArgMax", ["logits"], ["class"], "predict/argmax",
         "predicted class: argmax of the logits, the lowest index wins ties",
         axis=1, keepdims=0, select_last_index=0)

    outputs = [
        helper.make_tensor_value_info("logits", T.INT32, [batch, sizes[-1]],
                                      "int32 logits of the last layer (flipnet_forward)"),
        helper.make_tensor_value_info("class", T.INT64, [batch],
                                      "predicted class, lowest index on ties (flipnet_predict)"),
    ]
    graph = helper.make_graph(
        nodes, "flipnet_%s" % model.arch.replace("-", "_"), [graph_in], outputs, inits,
        doc_string="flipnet %s (%s), integer-only: ternary/binary weights, int8 activations, "
                   "int32 logits; docs/export.md" % (model.arch, ",".join(kinds)))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="flipnet", producer_version=__version__,
                              doc_string="flipnet model %s; same predictions and logits as "
                              "flipnet_predict / flipnet_forward" % model.arch)
    proto.ir_version = IR_VERSION
    proto.model_version = 1
    helper.set_model_props(proto, _metadata(model, kinds, shifts, input))
    # shapes of the intermediate tensors, for viewers (Netron)
    proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, input="uint8"):
    """Write the ONNX graph of ``model`` to ``path`` (see :func:`build`); returns its size in
    bytes. Written atomically (a temporary file beside ``path``, then renamed)."""
    return write_atomic(os.fspath(path), build(model, input).SerializeToString())
