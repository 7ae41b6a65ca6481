"""The thin handle on one C model: :class:`CoreModel` owns a ``flipnet_model`` struct and the
NumPy buffers it points at (the weight area and the scratch areas, 4-byte aligned ``uint32``
arrays), and is the only Python code that reads or writes them. Everything it does is a call
into the core (``flipnet._core``) or a read of the struct: the rule, the layers and their
shifts, memory sizes, one core call on prepared int8 inputs (forward, predict, calibrate, a
training step), weight / counter / AdamW-state access, the model file's bytes.

:class:`flipnet.Model` builds on it: recipes, input encodings, metadata, training loop,
exports. Inputs here are already prepared (:mod:`flipnet.inputs`): int8 ``(N, n0)``
C-contiguous in [-127, 127], labels uint16.
"""

import numpy as np

from . import recipes as _recipes
from . import rule as _rule
from . import threads as _threads
from ._ffi import ffi, lib
from ._version import __version__
from .arch import KIND_NAMES, KINDS, kind_name, name_of
from .errors import ArgumentError, ShapeError, UnsupportedVersionError, check

__all__ = ["CoreModel", "MAX_LAYERS", "MAX_WIDTH", "MAX_BATCH", "INFER_CHUNK"]

MAX_LAYERS = lib.FLIPNET_MAX_LAYERS
MAX_WIDTH = lib.FLIPNET_MAX_WIDTH
MAX_BATCH = lib.FLIPNET_MAX_BATCH
#: samples per core call in forward / predict
INFER_CHUNK = 1024
_FP32 = KINDS["fp32"]


#: below this many samples, threads=None runs inference on the calling thread (784-256-256-10
#: on the 2-core host, docs/benchmarks.md: batch 1 took 34.6 us on 1 thread, 39.6 us on 2;
#: batch 8 about the same; batch 64 191 us against 116 us)
SMALL_BATCH = 8

class CoreModel:
    """A handle on one core model (see the module docstring); construct a
    :class:`flipnet.Model`, or ``CoreModel(sizes, kind_codes, counters, seed)`` for a bare one
    (checked sizes, ``flipnet_kind`` codes, hysteresis counters or not, the seed), its rule
    the core's defaults until :meth:`set_rule`."""

    # ---- construction ---------------------------------------------------------------------
    def __init__(self, sizes, kinds, counters, seed, counter_bits=None):
        arch = self._make_arch(sizes, kinds, bool(counters), counter_bits)
        self._alloc(arch)
        check(lib.flipnet_model_init(self._m, arch, self._wptr, self._weights.nbytes, seed),
              "flipnet_model_init(%s)" % "-".join(map(str, sizes)))

    @staticmethod
    def _make_arch(sizes, kinds, counters=False, counter_bits=None):
        arch = ffi.new("flipnet_arch *")
        arch.n_layers = len(kinds)
        arch.counters = 1 if counters else 0
        for i, s in enumerate(sizes):
            arch.sizes[i] = s
        for i, k in enumerate(kinds):
            arch.kinds[i] = k
            arch.counter_bits[i] = counter_bits[i] if counter_bits else 8
        return arch

    def _alloc(self, arch):
        nbytes = ffi.new("size_t *")
        check(lib.flipnet_model_size(arch, nbytes), "flipnet_model_size")
        # uint32 storage: 4-byte aligned (NumPy aligns far more), zero-filled
        self._weights = np.zeros(max(1, (nbytes[0] + 3) // 4), dtype=np.uint32)
        self._wptr = ffi.from_buffer(self._weights)
        self._m = ffi.new("flipnet_model *")
        self._scratch = {}  # (training, threads) -> (batch capacity, uint32 array, pointer)

    def set_rule(self, options=None, **changes):
        """Set the rule from ``options`` (a recipe or rule dict; its rule keys) and keyword
        ``changes`` (``model.set_rule(counter_threshold=4)``), the other options kept, all
        checked (:func:`flipnet.rule.check`). A :class:`flipnet.Model`'s recipe is not changed."""
        unknown = sorted(set(changes) - set(_recipes.RULE_KEYS))
        if unknown:
            raise ArgumentError("unknown rule option(s) %s (rule options: %s)"
                                % (", ".join(unknown), ", ".join(_recipes.RULE_KEYS)))
        r = self.rule
        r.update({k: v for k, v in (options or {}).items() if k in _recipes.RULE_KEYS})
        r.update(changes)
        codes = _rule.check(r, self.has_counters)
        for key, value in codes.items():
            setattr(self._m.rule, key, value)

    # ---- properties ---------------------------------------------------------------------
    def _layer(self, l):
        return self._m.layers[l]

    @property
    def n_layers(self):
        return int(self._m.n_layers)

    @property
    def sizes(self):
        return [int(self._layer(0).n)] + [int(self._layer(l).m) for l in range(self.n_layers)]

    @property
    def arch(self):
        """The sizes as a string, ``"784-256-256-10"``."""
        return "-".join(map(str, self.sizes))

    @property
    def kinds(self):
        return [kind_name(self._layer(l).kind) for l in range(self.n_layers)]

    @property
    def n_inputs(self):
        return int(self._layer(0).n)

    @property
    def n_classes(self):
        return int(self._layer(self.n_layers - 1).m)

    @property
    def has_counters(self):
        """True when the model keeps hysteresis counters (docs/rule.md 7.1)."""
        return self._m.counters != ffi.NULL

    @property
    def counter_bits(self):
        """Bits per hysteresis counter of each layer (8, 4 or 2; 0 for FP32 layers and for a
        model without counters)."""
        if not self.has_counters:
            return [0] * self.n_layers
        return [int(self._m.counter_bits[l]) for l in range(self.n_layers)]

    @property
    def n_weights(self):
        """Weights (n * m per layer; FP32 biases not included, see n_params)."""
        return sum(int(ly.n) * int(ly.m) for ly in self._layers())

    @property
    def n_params(self):
        """Trainable parameters: every weight, plus the biases of the FP32 layers."""
        return self.n_weights + sum(int(ly.m) for ly in self._layers() if ly.kind == _FP32)

    @property
    def fp32_params(self):
        """Parameters of the FP32 layers (W and bias), 0 for an integer-only model."""
        return sum(int(ly.m) * int(ly.n) + int(ly.m) for ly in self._layers() if ly.kind == _FP32)

    def _layers(self):
        return [self._layer(l) for l in range(self.n_layers)]

    @property
    def has_fp32(self):
        """True when some layer is FP32 (a hybrid or float model, docs/rule.md 8)."""
        return any(k == "fp32" for k in self.kinds)

    @property
    def float_output(self):
        """True when the last layer is FP32: the logits are float32 (see forward)."""
        return self.kinds[-1] == "fp32"

    def nonzero(self):
        """Nonzero weights per layer (list of ints; a binary layer has no zero; FP32 layers: W
        entries that are not 0.0)."""
        return [int(np.count_nonzero(self.weights(l))) for l in range(self.n_layers)]

    seed = property(lambda self: int(self._m.seed))
    steps = property(lambda self: int(self._m.steps))
    samples = property(lambda self: int(self._m.samples))

    @property
    def shifts(self):
        """Activation shift of each hidden layer (the last layer has none). An FP32 layer's is
        its output scale 2^s (0..15) when an integer layer follows it, else unused (0)."""
        return [int(self._layer(l).shift) for l in range(self.n_layers - 1)]

    def set_shifts(self, values):
        """Set the activation shift of each hidden layer (see :attr:`shifts`), checked."""
        values = [int(v) for v in values]
        if len(values) != self.n_layers - 1:
            raise ShapeError("%d shifts given; the model has %d hidden layers"
                             % (len(values), self.n_layers - 1))
        for l, v in enumerate(values):
            hi = 15 if self._layer(l).kind == _FP32 else 31
            if not 0 <= v <= hi:
                raise ArgumentError("layer %d's shift must be in [0, %d], got %d" % (l, hi, v))
        for l, v in enumerate(values):
            self._layer(l).shift = v

    @property
    def rule(self):
        r = self._m.rule
        return {"vote": name_of(_rule.VOTES, r.vote), "filter": name_of(_rule.FILTERS, r.filter),
                "backprop": name_of(_rule.BACKPROPS, r.backprop), "margin": int(r.margin),
                "calib_target": int(r.calib_target), "counter_shift": int(r.counter_shift),
                "counter_threshold": int(r.counter_threshold),
                "counter_decay": int(r.counter_decay),
                "counter_round": name_of(_rule.ROUNDINGS, r.counter_round)}

    # ---- memory ---------------------------------------------------------------------------
    def scratch_bytes(self, batch, training=False, threads=1):
        """Scratch bytes the core needs for a batch of ``batch`` samples, for inference
        (flipnet_forward / flipnet_predict / flipnet_calibrate) or ``training``, with
        ``threads`` parts per pass (flipnet_scratch_size_mt)."""
        nbytes = ffi.new("size_t *")
        check(lib.flipnet_scratch_size_mt(self._m, int(batch), int(bool(training)),
                                          int(threads), nbytes),
              "flipnet_scratch_size_mt(batch=%d, training=%d, threads=%d)"
              % (batch, training, threads))
        return int(nbytes[0])

    def _scratch_for(self, batch, training, threads=1):
        key = (bool(training), int(threads))
        have = self._scratch.get(key)
        if have is None or have[0] < batch:
            nbytes = self.scratch_bytes(batch, training, threads)
            buf = np.zeros(max(1, (nbytes + 3) // 4), dtype=np.uint32)
            have = (batch, buf, ffi.from_buffer(buf))
            self._scratch[key] = have
        return have[2], have[1].nbytes

    def memory_report(self, batch_size=64):
        """Bytes the core needs, as a dict.

        ``weight_bytes`` (packed resident weights), ``bits_per_weight`` (weight_bytes * 8 / weights,
        padding included: each plane row to whole bytes, each layer to 4 bytes; 2.0 for ternary
        and 1.0 for binary when the input counts are multiples of 8 and the layers fill whole
        4-byte words, e.g. 784-256-256-10), ``counter_bytes`` (training state: the hysteresis
        counters, ``counter_bits`` bits per weight of each layer, 0 without),
        ``counter_bits_per_weight``,
        ``model_struct_bytes`` (sizeof flipnet_model), ``scratch_train_bytes`` /
        ``scratch_infer_bytes`` at ``batch_size``, ``train_total_bytes`` (weights + counters +
        AdamW state + struct + scratch) / ``infer_total_bytes`` (weights + struct + scratch:
        inference needs neither the counters nor the AdamW state), and per layer (``layers``: n,
        m, kind, weights, params, weight_bytes, bits_per_weight, counter_bytes, opt_bytes).
        FP32 layers (docs/rule.md 8): ``weight_bytes`` holds W and bias as float32 (so
        ``bits_per_weight`` is 32 (m n + m) / (m n)); ``opt_bytes`` / ``opt_bits_per_param`` are
        the AdamW state (two float32 moments per parameter, 64 bits), ``params`` = weights + FP32
        biases, ``fp32_params``.
        """
        batch_size = int(batch_size)
        if not 1 <= batch_size <= MAX_BATCH:
            raise ArgumentError("batch_size must be in [1, %d], got %d" % (MAX_BATCH, batch_size))
        weight_bytes = int(self._m.weight_bytes)
        counter_bytes = int(self._m.counter_bytes)
        opt_bytes = int(self._m.opt_bytes)
        layers = []
        cbits = self.counter_bits
        for l, ly in enumerate(self._layers()):
            nw = int(ly.n) * int(ly.m)
            if ly.kind == _FP32:
                np_ = nw + int(ly.m)
                lb, cb, ob = 4 * np_, 0, 8 * np_
            else:
                planes = 2 if ly.kind == KINDS["ternary"] else 1
                np_ = nw
                lb = (int(ly.m) * planes * int(ly.bpr) + 3) // 4 * 4  # rows, layer padded to 4
                row = (int(ly.n) * cbits[l] + 7) // 8  # each row of counters to whole bytes
                cb, ob = (int(ly.m) * row + 3) // 4 * 4, 0
            layers.append({"n": int(ly.n), "m": int(ly.m), "kind": kind_name(ly.kind),
                           "weights": nw, "params": np_, "weight_bytes": lb,
                           "bits_per_weight": lb * 8 / nw, "counter_bytes": cb, "opt_bytes": ob})
        struct = int(ffi.sizeof("flipnet_model"))
        train = self.scratch_bytes(batch_size, True)
        infer = self.scratch_bytes(batch_size, False)
        fp32 = self.fp32_params
        return {
            "arch": self.arch, "kinds": self.kinds, "batch_size": batch_size,
            "weights": self.n_weights, "weight_bytes": weight_bytes,
            "bits_per_weight": weight_bytes * 8 / self.n_weights,
            "counter_bytes": counter_bytes, "counter_bits": cbits,
            "counter_bits_per_weight": counter_bytes * 8 / self.n_weights,
            "params": self.n_params, "fp32_params": fp32, "opt_bytes": opt_bytes,
            "opt_bits_per_param": (opt_bytes * 8 / fp32) if fp32 else 0.0,
            "model_struct_bytes": struct,
            "scratch_train_bytes": train, "scratch_infer_bytes": infer,
            "train_total_bytes": weight_bytes + counter_bytes + opt_bytes + struct + train,
            "infer_total_bytes": weight_bytes + struct + infer,
            "layers": layers,
        }


    # ---- one core call on prepared inputs ---------------------------------------------------
    def _chunked(self, fn, name, x8, out, ctype, threads=None):
        """``fn`` (a core inference call taking a runner) over ``x8`` in chunks of
        INFER_CHUNK into ``out``, on ``threads`` threads (None: flipnet.threads.default(), or one
        thread below SMALL_BATCH samples)."""
        n = x8.shape[0]
        if threads is None and n < SMALL_BATCH:
            threads = 1  # waking the pool costs more than a few samples' forward
        runner, t = _threads.runner(threads)
        scratch, sbytes = self._scratch_for(min(n, INFER_CHUNK), False, t)
        for s in range(0, n, INFER_CHUNK):
            e = min(n, s + INFER_CHUNK)
            check(fn(self._m, ffi.from_buffer("int8_t[]", x8[s:e]), e - s,
                     ffi.from_buffer(ctype, out[s:e], require_writable=True), scratch, sbytes,
                     runner),
                  "%s(batch=%d)" % (name, e - s))
        return out

    def core_forward(self, x8, threads=None):
        """Logits of the prepared inputs ``x8``, (N, classes): int32, or float32 when the last
        layer is FP32 (``float_output``; flipnet_forward_f32, on the calling thread)."""
        shape = (x8.shape[0], self.n_classes)
        if self.float_output:
            return self._chunked(self._forward_f32, "flipnet_forward_f32", x8,
                                 np.empty(shape, dtype=np.float32), "float[]", 1)
        return self._chunked(lib.flipnet_forward_mt, "flipnet_forward_mt", x8,
                             np.empty(shape, dtype=np.int32), "int32_t[]", threads)

    @staticmethod
    def _forward_f32(m, x, n, out, scratch, sbytes, runner):
        return lib.flipnet_forward_f32(m, x, n, out, scratch, sbytes)

    def core_predict(self, x8, threads=None):
        """Predicted class of each prepared input, uint16 (N,)."""
        return self._chunked(lib.flipnet_predict_mt, "flipnet_predict_mt", x8,
                             np.empty(x8.shape[0], dtype=np.uint16), "uint16_t[]", threads)

    def core_calibrate(self, x8, first=0):
        """flipnet_calibrate_from(first) on the prepared batch ``x8`` (at most
        FLIPNET_MAX_BATCH samples): the shifts of the hidden layers from ``first`` on; returns
        the shifts."""
        n = x8.shape[0]
        if n > MAX_BATCH:
            raise ArgumentError("calibrate() takes at most %d samples, got %d" % (MAX_BATCH, n))
        if int(first) < 0:
            raise ArgumentError("first must be >= 0, got %r" % (first,))
        scratch, sbytes = self._scratch_for(n, False)
        check(lib.flipnet_calibrate_from(self._m, int(first), ffi.from_buffer("int8_t[]", x8), n,
                                         scratch, sbytes),
              "flipnet_calibrate_from(first=%d, batch=%d)" % (first, n))
        return self.shifts

    def core_train_step(self, x8, y16, params, stats=None, threads=None):
        """One ``flipnet_train_step_mt``: prepared inputs ``x8`` (int8 (B, n0), C-contiguous,
        in [-127, 127]), labels ``y16`` (uint16 (B,)), a filled ``flipnet_step_params *`` and a
        ``flipnet_step_stats *`` to fill (or None), on ``threads`` threads (None:
        flipnet.threads.default(); the result is the same for any number); the building block
        of :meth:`train_step` and :meth:`fit` (:mod:`flipnet.training`)."""
        b = x8.shape[0]
        runner, t = _threads.runner(threads)
        scratch, sbytes = self._scratch_for(b, True, t)
        check(lib.flipnet_train_step_mt(self._m, ffi.from_buffer("int8_t[]", x8),
                                        ffi.from_buffer("uint16_t[]", y16), b, params,
                                        ffi.NULL if stats is None else stats, scratch, sbytes,
                                        runner),
              "flipnet_train_step(step=%d, batch=%d)" % (self.steps, b))

    # ---- weights --------------------------------------------------------------------------
    def _check_layer(self, layer, counters=False):
        """Checked index of layer ``layer`` (negative counts from the end); ``counters``: one
        that has counters (not FP32, in a model that keeps them)."""
        layer = int(layer)
        if layer < 0:
            layer += self.n_layers
        if not 0 <= layer < self.n_layers:
            raise ArgumentError("layer %d out of range: the model has %d layers"
                                % (layer, self.n_layers))
        if counters and not self.has_counters:
            raise ArgumentError("this model has no counters (create it with counter_threshold > 0 "
                                "or counters=True)")
        if counters and self._layer(layer).kind == _FP32:
            raise ArgumentError("layer %d is FP32: it has no counters (AdamW state instead, see "
                                "adamw_state)" % layer)
        return layer

    def _fp32_layer(self, layer, what):
        """Checked index of an FP32 layer, else ArgumentError (``what`` it lacks)."""
        layer = self._check_layer(layer)
        if self._layer(layer).kind != _FP32:
            raise ArgumentError("layer %d is %s %s" % (layer, self.kinds[layer], what))
        return layer

    def _shape(self, layer):
        ly = self._layer(layer)
        return int(ly.m), int(ly.n)

    def _f32_layer(self, layer):
        """W (m, n) and bias (m) of an FP32 layer as float32 arrays (copies)."""
        m, n = self._shape(layer)
        buf = np.empty(m * n + m, dtype=np.float32)
        check(lib.flipnet_layer_get_f32(self._m, layer, ffi.from_buffer("float[]", buf,
                                                                        require_writable=True)),
              "flipnet_layer_get_f32(%d)" % layer)
        return buf[:m * n].reshape(m, n), buf[m * n:]

    def _get_s8(self, fn, name, layer):
        """An int8 (m, n) array of layer ``layer`` filled by core function ``fn``."""
        a = np.empty(self._shape(layer), dtype=np.int8)
        check(fn(self._m, layer, ffi.from_buffer("int8_t[]", a, require_writable=True)),
              "%s(%d)" % (name, layer))
        return a

    def _checked_shape(self, layer, a, what):
        """``a`` as an array of layer ``layer``'s (m, n) shape, else ShapeError."""
        a = np.asarray(a)
        if a.shape != self._shape(layer):
            raise ShapeError("layer %d %s must have shape %s (outputs, inputs), got %s"
                             % (layer, what, self._shape(layer), a.shape))
        return a

    def weights(self, layer):
        """Layer ``layer``'s weights (m, n): ``w[j, i]`` connects input i to output j; int8 for
        ternary/binary layers, float32 for FP32 layers (their bias: :meth:`bias`)."""
        layer = self._check_layer(layer)
        if self._layer(layer).kind == _FP32:
            return self._f32_layer(layer)[0]
        return self._get_s8(lib.flipnet_layer_get, "flipnet_layer_get", layer)

    def bias(self, layer):
        """An FP32 layer's bias, float32 (m,) (ternary/binary layers have none: ArgumentError)."""
        return self._f32_layer(self._fp32_layer(layer, "and has no bias; only FP32 layers do"))[1]

    def adamw_state(self, layer):
        """An FP32 layer's AdamW moments as a dict of float32 copies: ``exp_avg`` and
        ``exp_avg_sq`` for W (m, n) and for the bias (``exp_avg_bias``, ``exp_avg_sq_bias``),
        named as torch.optim.AdamW's state."""
        layer = self._fp32_layer(layer, ": only FP32 layers have an AdamW state")
        m, n = self._shape(layer)
        off = sum(2 * (int(ly.m) * (int(ly.n) + 1))
                  for ly in self._layers()[:layer] if ly.kind == _FP32)
        np_ = m * n + m
        allf = np.frombuffer(ffi.buffer(self._m.opt, int(self._m.opt_bytes)), dtype=np.float32)
        m1, m2 = allf[off:off + np_].copy(), allf[off + np_:off + 2 * np_].copy()
        return {"exp_avg": m1[:m * n].reshape(m, n), "exp_avg_bias": m1[m * n:],
                "exp_avg_sq": m2[:m * n].reshape(m, n), "exp_avg_sq_bias": m2[m * n:]}

    def set_weights(self, layer, w, bias=None):
        """Replace layer ``layer``'s weights: int8 (m, n) values of the layer's kind, or for an
        FP32 layer finite floats (m, n) and optionally its bias (m,) (kept when None). The AdamW
        state is left as it is."""
        layer = self._check_layer(layer)
        kind = self._layer(layer).kind
        w = self._checked_shape(layer, w, "weights")
        if kind == _FP32:
            if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
                raise ArgumentError("FP32 weights must be numbers, got dtype %s" % w.dtype)
            b = self._f32_layer(layer)[1] if bias is None else np.asarray(bias)
            if b.shape != (w.shape[0],):
                raise ShapeError("layer %d bias must have shape (%d,), got %s"
                                 % (layer, w.shape[0], b.shape))
            buf = np.concatenate([np.asarray(w, dtype=np.float32).ravel(),
                                  np.asarray(b, dtype=np.float32)])
            if not np.isfinite(buf).all():
                raise ArgumentError("layer %d: FP32 weights and bias must be finite (no NaN/Inf)"
                                    % layer)
            check(lib.flipnet_layer_set_f32(self._m, layer, ffi.from_buffer("float[]", buf)),
                  "flipnet_layer_set_f32(%d)" % layer)
            return
        if bias is not None:
            raise ArgumentError("layer %d is %s and has no bias" % (layer, self.kinds[layer]))
        if not np.issubdtype(w.dtype, np.integer):
            raise ArgumentError("weights must be integers, got dtype %s" % w.dtype)
        allowed = (-1, 0, 1) if kind == KINDS["ternary"] else (-1, 1)
        if not np.isin(w, allowed).all():
            raise ArgumentError("layer %d is %s: weights must be in %s"
                                % (layer, KIND_NAMES.get(int(kind)), allowed))
        w8 = np.ascontiguousarray(w, dtype=np.int8)
        check(lib.flipnet_layer_set(self._m, layer, ffi.from_buffer("int8_t[]", w8)),
              "flipnet_layer_set(%d)" % layer)

    def counters(self, layer):
        """Layer ``layer``'s hysteresis counters as int8 (m, n), indexed like :meth:`weights`.

        Raises ArgumentError for a model without counters (see ``has_counters``)."""
        layer = self._check_layer(layer, counters=True)
        return self._get_s8(lib.flipnet_counters_get, "flipnet_counters_get", layer)

    def set_counters(self, layer, h):
        """Replace layer ``layer``'s counters with integer (m, n) values in [-hmax, hmax],
        hmax = 2^(b-1) - 1 for the layer's counter width b (127 for 8 bits, 7 for 4, 1 for 2)."""
        layer = self._check_layer(layer, counters=True)
        h = self._checked_shape(layer, h, "counters")
        hmax = (1 << (self.counter_bits[layer] - 1)) - 1
        if not np.issubdtype(h.dtype, np.integer) or h.size and (h.min() < -hmax or h.max() > hmax):
            raise ArgumentError("layer %d's counters (%d bits) must be integers in [%d, %d]"
                                % (layer, self.counter_bits[layer], -hmax, hmax))
        h8 = np.ascontiguousarray(h, dtype=np.int8)
        check(lib.flipnet_counters_set(self._m, layer, ffi.from_buffer("int8_t[]", h8)),
              "flipnet_counters_set(%d)" % layer)

    def packed_weights(self):
        """(weight bytes, layer table) exactly as the core lays them out (flipnet.h, the weight
        area of docs/format.md): ternary/binary rows as bit planes, FP32 layers as
        little-endian float32, every padding bit and byte 0, as a model file's weights section
        holds them. The layer table is a list of dicts (kind: the flipnet_kind code, shift, n,
        m, bpr, offset), the core's flipnet_layer fields."""
        data = bytearray(ffi.buffer(self._m.weights, int(self._m.weight_bytes)))
        layers = []
        ends = [int(ly.offset) for ly in self._layers()[1:]] + [len(data)]
        for ly, end in zip(self._layers(), ends):
            start, kind = int(ly.offset), int(ly.kind)
            if kind == _FP32:  # the file's byte order whatever the host's
                data[start:end] = np.frombuffer(data[start:end], "=u4").astype("<u4").tobytes()
            else:  # padding after the rows: 0, as the core writes it to a file
                rows = int(ly.m) * (2 if kind == KINDS["ternary"] else 1) * int(ly.bpr)
                data[start + rows:end] = bytes(end - start - rows)
            layers.append({"kind": kind, "shift": int(ly.shift), "n": int(ly.n), "m": int(ly.m),
                           "bpr": int(ly.bpr), "offset": start})
        return bytes(data), layers

    # ---- the model file's bytes --------------------------------------------------------------
    def file_bytes(self, meta):
        """The model file (docs/format.md: v1, or v2 with FP32 layers) of this model with the
        metadata blob ``meta`` (bytes), as the core writes it."""
        size = ffi.new("size_t *")
        check(lib.flipnet_file_size(self._m, len(meta), size), "flipnet_file_size")
        buf = bytearray(size[0])
        written = ffi.new("size_t *")
        check(lib.flipnet_file_write(self._m, ffi.from_buffer("uint8_t[]", meta), len(meta),
                                     ffi.from_buffer("uint8_t[]", buf), len(buf), written),
              "flipnet_file_write")
        return bytes(buf[:written[0]])

    @classmethod
    def read_file(cls, data, source="model file"):
        """(a handle of class ``cls`` on the model in ``data``, the bytes of a model file
        checked by the core: magic, version, sizes, CRC; the file's metadata blob, bytes).
        ``source`` names the file in error messages. The handle is made without ``__init__``:
        the caller completes it."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ArgumentError("from_bytes() takes bytes, got %s" % type(data).__name__)
        data = bytes(data)
        buf = ffi.from_buffer("uint8_t[]", data)
        arch = ffi.new("flipnet_arch *")
        status = lib.flipnet_file_peek(buf, len(data), arch)
        if status == lib.FLIPNET_E_FMT_VERSION:
            version = int.from_bytes(data[8:12], "little")
            raise UnsupportedVersionError(
                "reading %s: model file format version %d; this flipnet %s reads versions 1 to %d%s"
                % (source, version, __version__, lib.FLIPNET_FILE_VERSION_MAX,
                   " (the file is newer: upgrade flipnet)"
                   if version > lib.FLIPNET_FILE_VERSION_MAX else ""))
        check(status, "reading %s" % source)
        self = cls.__new__(cls)
        self._alloc(arch)
        check(lib.flipnet_file_read(self._m, buf, len(data), self._wptr, self._weights.nbytes),
              "reading %s" % source)
        meta_p = ffi.new("uint8_t **")
        meta_n = ffi.new("size_t *")
        check(lib.flipnet_file_meta(buf, len(data), meta_p, meta_n), "reading %s" % source)
        return self, bytes(ffi.buffer(meta_p[0], meta_n[0])) if meta_n[0] else b""
