"""Export a trained model for use outside flipnet's own model file (docs/export.md).

    flipnet.export.export(model, "mnist.h", "c")       # or model.export("mnist.h", "c")
    flipnet.export.export(model, "mnist.npz", "npz")
    flipnet.export.export(model, "mnist.onnx", "onnx")  # or input="int8"; needs flipnet[onnx]

Formats:

* ``"c"``: a self-contained C header for an inference-only firmware: the packed weights as
  a ``static const`` byte array, exactly the core's weight area (``flipnet.h`` layout
  comment, ``docs/format.md``), and the model as a ``static const flipnet_model_view
  <name>_model`` (layer table with the shifts, weights) for ``flipnet_view_forward`` /
  ``flipnet_view_predict``: struct and weights in flash, nothing to cast. Also the input
  encoding, the provenance (seed, steps, samples) and ``<name>_check()``, which checks the
  core's ABI and scratch size against the header.
* ``"npz"``: NumPy arrays: ``w<l>`` int8 (m, n) per layer (``Model.weights(l)``; float32
  for an FP32 layer, with its bias ``b<l>`` float32 (m,)), ``shift<l>`` (uint8 scalar; the
  last layer's is unused) and ``meta``, a JSON string (arch, kinds, shifts, rule, input
  encoding, seed, steps, versions).

* ``"onnx"``: an ONNX graph (opset 17) that ONNX Runtime runs with exactly the core's integer
  semantics: same logits and classes as ``flipnet_forward`` / ``flipnet_predict``. Input
  uint8 pixels (encoded in the graph) or, with ``input="int8"``, int8 already encoded; built by
  :mod:`flipnet.onnx_export`, which needs the optional ``onnx`` package
  (``pip install "flipnet[onnx]"``).
"""

import json
import os
import re

import numpy as np

from ._ffi import ABI
from ._version import __version__
from .arch import INTEGER_KINDS, KINDS, kind_name
from .errors import ArgumentError
from .files import write_atomic
from .inputs import FeatureScale, describe, parse_encoding

__all__ = ["FORMATS", "SUFFIX", "NPZ_FORMAT", "NPZ_FORMAT_VERSION", "C_FORMAT_VERSION", "export",
           "export_npz", "export_c", "c_header", "npz_arrays", "packed_weights", "c_name",
           "format_for"]

#: formats export() writes
FORMATS = ("c", "npz", "onnx")
#: formats named in issue 5 that are not written yet
_PLANNED = ()
_SUFFIXES = {".h": "c", ".npz": "npz", ".onnx": "onnx"}
#: the usual file suffix of each format
SUFFIX = {"c": ".h", "npz": ".npz", "onnx": ".onnx"}
NPZ_FORMAT = "flipnet-npz/1"
NPZ_FORMAT_VERSION = 1
C_FORMAT_VERSION = 2

_KIND_MACROS = {"ternary": "FLIPNET_TERNARY", "binary": "FLIPNET_BINARY"}

#: a value q in [0, 255] (a pixel, or a block mean) to the int8 input, per scaling
_SCALE_C = {
    "centered": "((int8_t)((q) == 0 ? -127 : (int)(q) - 128))",
    "half": "((int8_t)((q) >> 1))",
}


# ---- formats and names -------------------------------------------------------------------------
def format_for(path, format=None):
    """The export format: ``format`` checked, or guessed from the suffix of ``path``."""
    if format is None:
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        if suffix not in _SUFFIXES:
            raise ArgumentError("cannot tell the export format from %r; give one of %s "
                                "(or an output ending in .h / .npz / .onnx)"
                                % (os.fspath(path), ", ".join(FORMATS)))
        return _SUFFIXES[suffix]
    if not isinstance(format, str):
        raise ArgumentError("the export format must be a string, one of %s; got %r"
                            % (", ".join(FORMATS), format))
    key = format.strip().lower()
    if key in ("h", "header"):
        key = "c"
    if key in FORMATS:
        return key
    if key in _PLANNED:
        raise ArgumentError("export format %r is not available yet (planned, issue 5); "
                            "choose one of %s" % (format, ", ".join(FORMATS)))
    raise ArgumentError("unknown export format %r; choose one of %s"
                        % (format, ", ".join(FORMATS)))


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def c_name(path=None, name=None):
    """The C identifier prefix of a header: ``name`` checked, or derived from ``path``'s stem
    (non-identifier characters become ``_``, a leading digit gets ``m_``)."""
    if name is None:
        stem = os.path.splitext(os.path.basename(os.fspath(path or "")))[0]
        name = re.sub(r"[^0-9A-Za-z_]", "_", stem) or "model"
        if name[0].isdigit():
            name = "m_" + name
        what = "the name derived from %r" % os.path.basename(os.fspath(path))
    else:
        what = "name"
        if not isinstance(name, str) or not _IDENT.match(name):
            raise ArgumentError("C name %r is not a C identifier ([A-Za-z_][A-Za-z0-9_]*)"
                                % (name,))
    if name.lower().startswith("flipnet") or name.startswith("__"):
        raise ArgumentError("%s %r would clash with the core's identifiers (flipnet_*) or the "
                            "compiler's (__*); pick another name (--name)" % (what, name))
    return name


# ---- the core's packed bytes -------------------------------------------------------------------
def packed_weights(model):
    """(weight bytes, layer table) exactly as the core lays them out: the model's
    :meth:`~flipnet.core.CoreModel.packed_weights`, the weight area as a model file's weights
    section holds it (``docs/format.md``), every padding bit and byte 0. The layer table is a
    list of dicts (kind code, shift, n, m, bpr, offset), the core's layer records.
    """
    return model.packed_weights()


def _meta(model, layers):
    enc = model.input_encoding
    spec = parse_encoding(enc)
    side = model.image_side
    return {
        "format": NPZ_FORMAT,
        "format_version": NPZ_FORMAT_VERSION,
        "model_format_version": 2 if any(L["kind"] == KINDS["fp32"] for L in layers) else 1,
        "flipnet_version": __version__,
        "arch": model.arch,
        "sizes": model.sizes,
        "kinds": [kind_name(L["kind"]) for L in layers],
        "shifts": [L["shift"] for L in layers],
        "rule": model.rule,
        "input": {"encoding": enc, "quantize": describe(enc, side),
                  "dtype": "int8", "range": [-127, 127], "n_inputs": model.n_inputs,
                  "image_side": side,
                  "image_values": (side * side if side else None) if spec.reduces
                  else model.n_inputs},
        "seed": model.seed,
        "steps": model.steps,
        "samples": model.samples,
        "epochs_trained": model.epochs_trained,
        "dataset": model.meta.get("dataset"),
    }


# ---- writing (atomically: flipnet.files.write_atomic) -----------------------------------------
def npz_arrays(model):
    """The npz entries as a dict of NumPy arrays (see the module docstring)."""
    _, layers = packed_weights(model)
    out = {}
    for l, L in enumerate(layers):
        out["w%d" % l] = model.weights(l)
        if model.kinds[l] == "fp32":
            out["b%d" % l] = model.bias(l)  # FP32 layers carry a bias (docs/rule.md 8)
        out["shift%d" % l] = np.array(L["shift"], dtype=np.uint8)
    out["meta"] = np.array(json.dumps(_meta(model, layers), sort_keys=True))
    return out


def export_npz(model, path):
    """Write ``path`` as an uncompressed ``.npz`` (``np.load(path)`` reads it without
    pickles); returns its size in bytes."""
    arrays = npz_arrays(model)
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def _c_bytes(data, indent="    ", per_line=16):
    lines = []
    for s in range(0, len(data), per_line):
        lines.append(indent + ", ".join("0x%02x" % b for b in data[s:s + per_line]) + ",")
    return lines


def _c_comment(text, width=92, prefix=" * "):
    """``text`` as comment lines of a header (wrapped)."""
    import textwrap

    return [prefix + ln for ln in textwrap.wrap(text, width - len(prefix))]


def _c_block(text, width=92):
    """``text`` as a C block comment: one line, or ``/* ...`` `` * ...`` `` */``."""
    if len(text) + 6 <= width:
        return ["/* %s */" % text]
    lines = _c_comment(text, width)
    return ["/*" + lines[0][2:]] + lines[1:] + [" */"]


def _c_features(model, name, scale):
    """The header's input part for a model of float features (its input scale,
    flipnet.inputs.FeatureScale): the offsets and scales as double arrays and
    ``<name>_input_from_features``, the host's computation in C (not in FLIPNET_NO_FLOAT
    builds, which have no floating point)."""
    N = name.upper()
    comment = _c_comment(
        "Input: %d int8 values per sample in [-127, 127], from %d float features f by the "
        "model's input scale (flipnet.inputs.FeatureScale, method %s, fitted on the training "
        "data): x[j] = clamp(rint((f[j] - offset[j]) * scale[j]), -127, 127), rint rounding "
        "half to even, in double precision as on the host; %s_input_from_features(f, x) does "
        "it (finite features; a NaN gives 0). Not in a FLIPNET_NO_FLOAT build: there, quantize "
        "on the sensor side with the same formula."
        % (model.n_inputs, scale.n_features, scale.method, name))
    macros = _c_block("float features quantized by the input scale (docs/data.md); its method "
                      "and the arrays %s_feature_offset, %s_feature_scale" % (name, name)) + [
        "#define %s_INPUT_SCALE \"%s\"" % (N, scale.method),
    ]

    def arr(values):
        vals = ["%.17g" % v for v in values]
        return ["    " + ", ".join(vals[i:i + 4]) + "," for i in range(0, len(vals), 4)]

    body = ["#ifndef FLIPNET_NO_FLOAT",
            "/* per feature j: x[j] = clamp(rint((f[j] - offset[j]) * scale[j]), -127, 127) */",
            "static const double %s_feature_offset[%s_N_INPUTS] = {" % (name, N)] + \
        arr(scale.offset) + [
            "};", "static const double %s_feature_scale[%s_N_INPUTS] = {" % (name, N)] + \
        arr(scale.scale) + [
            "};",
            "",
            "/* The model's %d inputs x from %d float features f (double, the host's precision)."
            % (model.n_inputs, scale.n_features),
            " * Rounds half to even without libm, as numpy.rint does. */",
            "static inline void %s_input_from_features(const double *f, int8_t *x)" % name,
            "{",
            "    size_t j;",
            "    for (j = 0; j < %s_N_INPUTS; j++) {" % N,
            "        double v = (f[j] - %s_feature_offset[j]) * %s_feature_scale[j];"
            % (name, name),
            "        double a, r;",
            "        long k;",
            "        if (v != v) v = 0.0; /* NaN */",
            "        if (v > 127.0) v = 127.0;",
            "        if (v < -127.0) v = -127.0;",
            "        a = v < 0.0 ? -v : v;",
            "        k = (long)a; /* a in [0, 127]: exact */",
            "        r = a - (double)k;",
            "        if (r > 0.5 || (r == 0.5 && (k & 1L))) k++;",
            "        x[j] = (int8_t)(v < 0.0 ? -k : k);",
            "    }",
            "}",
            "#endif /* FLIPNET_NO_FLOAT */"]
    return comment, macros, body


def _c_input(model, name):
    """The header's input part: (comment lines, macro lines, function lines) for the model's
    input encoding (flipnet.inputs): the macros, ``<name>_input_from_image`` and, for a
    per-pixel encoding, ``<NAME>_INPUT_FROM_PIXEL``; for a model of float features, its input
    scale (:func:`_c_features`)."""
    if isinstance(model.input_scale, FeatureScale):
        return _c_features(model, name, model.input_scale)
    N = name.upper()
    enc = parse_encoding(model.input_encoding)
    side = model.image_side
    n0 = model.n_inputs
    formula = describe(enc, side)
    macros = _c_block("input encoding \"%s\" (flipnet.inputs, docs/export.md): %s"
                      % (enc.name, formula)) + [
        "#define %s_INPUT_ENCODING \"%s\"" % (N, enc.name),
    ] + _c_block("its parts: the scaling (1 half: x = q >> 1; 0 centered: x = clamp(q - 128, "
                 "-127, 127)), the side of the central crop (0: none), the side of the averaged "
                 "blocks (1: none)") + [
        "#define %s_INPUT_HALF %du" % (N, 1 if enc.scaling == "half" else 0),
        "#define %s_INPUT_CROP %du" % (N, enc.crop),
        "#define %s_INPUT_POOL %du" % (N, enc.pool),
    ]
    fn = "static inline void %s_input_from_image(const uint8_t *pixels, int8_t *x)" % name
    if not enc.reduces:
        comment = [
            " * Input: %d int8 values per sample in [-127, 127] (-128 is rejected), in the order"
            % n0,
            " * the training data was flattened (MNIST: 28 x 28 pixels row by row). Input",
        ] + _c_comment("encoding \"%s\" of uint8 pixels p: %s; %s_input_from_image(pixels, x) "
                       "encodes the %d pixels of a sample, %s_INPUT_FROM_PIXEL(p) one pixel."
                       % (enc.name, formula, name, n0, N))
        macros += [
            "/* pixels per sample that %s_input_from_image reads: one per input */" % name,
            "#define %s_IMAGE_BYTES %du" % (N, n0),
            "#define %s_INPUT_FROM_PIXEL(p) %s" % (N, _SCALE_C[enc.scaling].replace("q", "p")),
        ]
        body = [
            "/* x[i] = %s_INPUT_FROM_PIXEL(pixels[i]) for the %s_N_INPUTS pixels of a sample. */"
            % (N, N),
            fn,
            "{",
            "    size_t i;",
            "    for (i = 0; i < %s_N_INPUTS; i++) x[i] = %s_INPUT_FROM_PIXEL(pixels[i]);" % (N, N),
            "}",
        ]
        return comment, macros, body
    why = ("There is no %s_INPUT_FROM_PIXEL: an input is the mean of a block of pixels, not a "
           "function of one pixel." % N if enc.pool > 1 else
           "There is no %s_INPUT_FROM_PIXEL: the crop drops pixels, so inputs and pixels do "
           "not correspond one to one." % N)
    if side is None:
        comment = _c_comment(
            "Input: %d int8 values per sample in [-127, 127] (-128 is rejected), encoded from "
            "a square uint8 image by the input encoding \"%s\": %s. The model does not know "
            "the side of its images (it was never fit on uint8 images), so this header has no "
            "%s_input_from_image: set model.image_side and export again. %s"
            % (n0, enc.name, formula, name, why))
        return comment, macros, []
    C = enc.crop or side
    o = (side - C) // 2
    P, B, k = enc.pool, C // enc.pool, enc.block_shift
    comment = _c_comment(
        "Input: %d int8 values per sample in [-127, 127], from a %d x %d uint8 image (%d "
        "pixels, row by row) by the input encoding \"%s\": %s. %s_input_from_image(pixels, x) "
        "does it. %s" % (n0, side, side, side * side, enc.name, formula, name, why))
    macros += [
        "/* the image %s_input_from_image reads: %s_IMAGE_SIDE x %s_IMAGE_SIDE uint8 pixels, "
        "row by row */" % (name, N, N),
        "#define %s_IMAGE_SIDE %du" % (N, side),
        "#define %s_IMAGE_BYTES %du" % (N, side * side),
    ]
    if enc.scaling == "half":
        scale = ["            x[r * %du + c] = (int8_t)(sum >> %du); /* (sum >> %d) >> 1 */"
                 % (B, k + 1, k)]
    else:
        scale = ["            q = sum >> %du; /* the block's floor mean, 0..255 */" % k,
                 "            x[r * %du + c] = (int8_t)(q == 0u ? -127 : (int)q - 128);" % B]
    body = _c_block("The model's %d inputs x from a %d x %d uint8 image (%d pixels, row by "
                    "row): %s." % (n0, side, side, side * side, formula)) + [fn, "{",
             "    unsigned r, c, i, j, sum%s;" % ("" if enc.scaling == "half" else ", q"),
             "    for (r = 0; r < %du; r++) {" % B,
             "        for (c = 0; c < %du; c++) {" % B,
             "            const uint8_t *block = pixels + (%du + %du * r) * %du + %du + %du * c;"
             % (o, P, side, o, P),
             "            sum = 0;",
             "            for (i = 0; i < %du; i++)" % P,
             "                for (j = 0; j < %du; j++) sum += block[i * %du + j];" % (P, side),
             ] + scale + ["        }", "    }", "}"]
    return comment, macros, body


def c_header(model, name, source=None):
    """The text of the C header for ``model`` with identifier prefix ``name``."""
    name = c_name(name=name)
    N = name.upper()
    data, layers = packed_weights(model)
    for l, Ly in enumerate(layers):
        kind = kind_name(Ly["kind"])
        if kind not in INTEGER_KINDS:
            raise ArgumentError("cannot export layer %d to a C header: its kind is %s (%d); the "
                                "header is for the integer-only inference build, which runs "
                                "ternary (1) and binary (2) layers; export this model as npz "
                                "instead" % (l, kind if isinstance(kind, str) else "unknown",
                                             Ly["kind"]))
    meta = _meta(model, layers)
    in_comment, in_macros, in_body = _c_input(model, name)
    L = len(layers)
    scratch1 = model.scratch_bytes(1)
    guard = "%s_FLIPNET_EXPORT_H" % N
    kinds = ", ".join(meta["kinds"])
    src = " from %s" % os.path.basename(os.fspath(source)) if source else ""
    o = []
    o += [
        "/*",
        " * %s.h: a flipnet model as C data, generated by flipnet %s%s." % (name, __version__, src),
        " * Do not edit; export the model again instead. Header format %d, weights in the core's"
        % C_FORMAT_VERSION,
        " * packed layout of model file format v1 (flipnet.h, docs/format.md, docs/export.md).",
        " *",
        " * Model: %s (%s), %d layers, %d classes%s;"
        % (model.arch, kinds, L, model.n_classes,
           ", trained on %s" % meta["dataset"] if meta["dataset"] else ""),
        " * seed %d, %d training steps, %d samples." % (model.seed, model.steps, model.samples),
        " * Weights: %d bytes of const data (%d weights)." % (len(data), model.n_weights),
        " *",
    ] + in_comment + [
        " * Output: flipnet_predict gives the class index 0..%d (argmax of the logits,"
        % (model.n_classes - 1),
        " * lowest index on ties); flipnet_forward the %d int32 logits." % model.n_classes,
        " *",
        " * Use (in exactly one .c file, linked with the core: the sources in csrc/src):",
        " *     #include \"%s.h\"" % name,
        " *     static uint32_t scratch[(%s_SCRATCH_BYTES + 3) / 4];   // batch 1" % N,
        " *     int8_t x[%s_N_INPUTS]; uint16_t cls;" % N,
        " *     if (%s_check() != FLIPNET_OK) ...;   // once, at start-up" % name,
    ] + ([" *     %s_input_from_features(f, x);   // %s_N_INPUTS double features"
          % (name, N)] if isinstance(model.input_scale, FeatureScale) else
         [" *     %s_input_from_image(pixels, x);   // %s_IMAGE_BYTES uint8 pixels"
          % (name, N)] if in_body else []) + [
        " *     flipnet_view_predict(&%s_model, x, 1, &cls, scratch, sizeof scratch);" % name,
        " * For batches > 1 size the scratch with",
        " * flipnet_view_scratch_size(&%s_model, batch, &bytes). The model is a const" % name,
        " * flipnet_model_view: its struct and weights stay in flash on a microcontroller, and",
        " * the core only reads them (no training).",
        " */",
        "#ifndef %s" % guard,
        "#define %s" % guard,
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#include \"flipnet/flipnet.h\"",
        "",
        "#if FLIPNET_FILE_VERSION != 1 || !defined(FLIPNET_ABI) || FLIPNET_ABI != %d" % ABI,
        "#error \"%s.h holds a flipnet_model_view (ABI %d) over weights in the packed layout of "
        "model file format v1; this flipnet core uses another: export the model again with a "
        "matching flipnet\"" % (name, ABI),
        "#endif",
        "",
        "#define %s_N_LAYERS %du" % (N, L),
        "#define %s_N_INPUTS %du" % (N, model.n_inputs),
        "#define %s_N_CLASSES %du" % (N, model.n_classes),
        "#define %s_WEIGHT_BYTES %du" % (N, len(data)),
        "/* scratch bytes of flipnet_view_predict / _forward for one sample (this core version;"
        " %s_check checks it) */" % name,
        "#define %s_SCRATCH_BYTES %du" % (N, scratch1),
    ] + in_macros + [
        "/* provenance: the seed of the model's RNG, its training steps and samples */",
        "#define %s_SEED UINT64_C(%d)" % (N, model.seed),
        "#define %s_STEPS UINT64_C(%d)" % (N, model.steps),
        "#define %s_SAMPLES UINT64_C(%d)" % (N, model.samples),
        "",
        "/* Packed weights (flipnet.h): layer l, row j at offset + j * planes * bpr; ternary rows",
        " * [pos plane][neg plane] (w = pos - neg), binary rows [neg plane] (w = neg ? -1 : +1);",
        " * input i is bit i % 8 of byte i / 8 of a plane; padding is 0. The union keeps the",
        " * bytes 4-byte aligned, as the core requires. */",
        "static const union {",
        "    uint32_t align;",
        "    uint8_t bytes[%s_WEIGHT_BYTES];" % N,
        "} %s_weights = {.bytes = {" % name,
    ]
    pos = 0
    for l, Ly in enumerate(layers):
        end = layers[l + 1]["offset"] if l + 1 < L else len(data)
        planes = 2 if Ly["kind"] == KINDS["ternary"] else 1
        o.append("    /* layer %d: %d rows of %d bytes at offset %d */"
                 % (l, Ly["m"], planes * Ly["bpr"], Ly["offset"]))
        o += _c_bytes(data[pos:end])
        pos = end
    o += [
        "}};",
        "",
        "/* The model, read only (flipnet_model_view): the layer table (kind, activation shift,",
        " * reserved, n inputs, m outputs, bytes per bit plane per row, byte offset in",
        " * %s_weights) and the weights above. */" % name,
        "static const flipnet_model_view %s_model = {" % name,
        "    %s_N_LAYERS," % N,
        "    {",
    ] + ["        {%s, %du, 0u, %du, %du, %du, %du}, /* layer %d: %d -> %d %s */"
         % (_KIND_MACROS[kind_name(Ly["kind"])], Ly["shift"], Ly["n"], Ly["m"], Ly["bpr"],
            Ly["offset"], l, Ly["n"], Ly["m"], kind_name(Ly["kind"]))
         for l, Ly in enumerate(layers)] + [
        "    },",
        "    %s_weights.bytes," % name,
        "    %s_WEIGHT_BYTES};" % N,
        "",
        "/* FLIPNET_OK when the core this is linked with runs the model above: the same ABI as",
        " * this header's flipnet.h (FLIPNET_E_ABI), the core's own check of the model passes,",
        " * and one sample needs at most %s_SCRATCH_BYTES of scratch (FLIPNET_E_NOMEM). */" % N,
        "static inline flipnet_status %s_check(void)" % name,
        "{",
        "    size_t scratch = 0;",
        "    flipnet_status st = FLIPNET_ABI_CHECK();",
        "    if (st == FLIPNET_OK) st = flipnet_view_scratch_size(&%s_model, 1u, &scratch);" % name,
        "    if (st != FLIPNET_OK) return st;",
        "    return scratch > %s_SCRATCH_BYTES ? FLIPNET_E_NOMEM : FLIPNET_OK;" % N,
        "}",
        "",
    ] + (in_body + [""] if in_body else []) + [
        "#endif /* %s */" % guard,
        "",
    ]
    return "\n".join(o)


def export_c(model, path, name=None, source=None):
    """Write the C header to ``path``; identifiers are prefixed with ``name`` (default: the
    file's stem); ``source`` (the model file's name) is noted in its comment. Returns its size
    in bytes."""
    name = c_name(path, name)
    text = c_header(model, name, source)
    return write_atomic(path, text.encode("ascii"))


def export(model, path, format=None, name=None, source=None, input=None):
    """Export ``model`` to ``path`` as ``format`` (``"c"``, ``"npz"`` or ``"onnx"``; default:
    from the suffix, ``.h`` / ``.npz`` / ``.onnx``). ``name``: C identifier prefix (format
    ``"c"`` only); ``source``: where the model came from, noted in the header's comment;
    ``input``: the ONNX graph's input (format ``"onnx"`` only), ``"uint8"`` pixels (default)
    or ``"int8"`` values already encoded (:func:`flipnet.onnx_export.build`).

    Returns a dict: format, path, bytes. Raises ArgumentError (a ValueError) for an unknown
    format, a bad name or a layer kind the format cannot hold, OSError when ``path`` cannot be
    written, and for ONNX without the ``onnx`` package
    :class:`flipnet.onnx_export.OnnxUnavailableError` (``pip install "flipnet[onnx]"``).
    """
    fmt = format_for(path, format)
    if name is not None and fmt != "c":
        raise ArgumentError("name= is for the C header; the %s format has no names" % fmt)
    if input is not None and fmt != "onnx":
        raise ArgumentError("input= (--onnx-input) chooses the ONNX graph's input; the %s "
                            "format has none" % fmt)
    if fmt == "c":
        nbytes = export_c(model, path, name, source)
    elif fmt == "npz":
        nbytes = export_npz(model, path)
    else:
        from .onnx_export import export_onnx

        nbytes = export_onnx(model, path, "uint8" if input is None else input)
    return {"format": fmt, "path": os.fspath(path), "bytes": nbytes}
