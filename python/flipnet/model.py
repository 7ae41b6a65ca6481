"""flipnet.Model: a binary/ternary (or hybrid, with FP32 layers) dense network trained by
the C core.

The model owns its memory as NumPy buffers (the weight area and a scratch area, both
4-byte aligned ``uint32`` arrays) and a ``flipnet_model`` struct that points at the weight
area; every computation is a call into the core (``flipnet._core``).

Inputs
------
``x`` is any array of shape ``(N, ...)``; everything after the first axis is flattened to the
model's input width. Two dtypes are accepted:

* ``uint8`` (pixels): quantized to int8 by the model's input encoding (recipe key ``input``,
  stored in the model file): ``"centered"`` = ``clamp(p - 128, -127, 127)`` (the paper's
  reading, docs/rule.md §1) or ``"half"`` = ``p >> 1`` in ``[0, 127]`` (a dark background is 0
  and casts no vote; the default recipe's choice, see docs/benchmarks.md),
* ``int8`` already in ``[-127, 127]`` (the value -128 is rejected); used as given.

Labels ``y`` are 1-D integer class indices in ``[0, classes)``. Problems are reported with
``ValueError`` subclasses from :mod:`flipnet.errors` saying what was wrong and what to do.

Layer kinds
-----------
``"ternary"`` and ``"binary"`` layers are trained by the integer, gradient-free rule;
``"fp32"`` layers (float32 W and bias, trained with PyTorch's AdamW) make hybrid networks
(docs/rule.md section 8). ``"hybrid"`` is the paper's Hybrid model: FP32 first and last layer,
ternary hidden layers. An FP32 layer reads an int8 value ``a`` as ``a / 128``; a model whose last
layer is FP32 has float logits.
"""

import json
import os
import platform
import sys
import time

import numpy as np

from . import accounting as _accounting
from . import recipes as _recipes
from ._ffi import ffi, lib
from ._version import __version__
from .errors import (
    ArgumentError,
    InputRangeError,
    LabelError,
    ShapeError,
    UnsupportedVersionError,
    check,
)
from .schedule import Schedule, shuffle_order

__all__ = ["Model", "History", "load", "quantize", "KINDS", "META_FORMAT"]

KINDS = {"ternary": 1, "binary": 2, "fp32": 3}
#: names for whole-model kind choices, besides the layer kinds
MODEL_KINDS = ("ternary", "binary", "fp32", "hybrid")
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_VOTES = {"sign": 0, "weighted": 1}
_FILTERS = {"hurt": 0, "net": 1}
_BACKPROPS = {"sign": 0}
MAX_LAYERS = lib.FLIPNET_MAX_LAYERS
MAX_WIDTH = lib.FLIPNET_MAX_WIDTH
MAX_BATCH = lib.FLIPNET_MAX_BATCH
META_FORMAT = "flipnet-meta/1"
#: samples per core call in forward / predict / evaluate
INFER_CHUNK = 1024


INPUT_ENCODINGS = ("centered", "half")


def quantize(x, encoding="centered"):
    """uint8 pixels -> int8 inputs.

    ``"centered"``: ``clamp(p - 128, -127, 127)`` (docs/rule.md section 1);
    ``"half"``: ``p >> 1``, in ``[0, 127]``.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ArgumentError("quantize() takes uint8 pixels, got dtype %s" % x.dtype)
    if encoding == "centered":
        return np.clip(x.astype(np.int16) - 128, -127, 127).astype(np.int8)
    if encoding == "half":
        return (x >> 1).astype(np.int8)
    raise ArgumentError("unknown input encoding %r; choose one of %s"
                        % (encoding, ", ".join(INPUT_ENCODINGS)))


def _lookup(table, value, what):
    if isinstance(value, str):
        key = value.lower()
        if key in table:
            return table[key]
    elif isinstance(value, (int, np.integer)) and int(value) in table.values():
        return int(value)
    raise ArgumentError("unknown %s %r; choose one of %s" % (what, value, ", ".join(table)))


def _name(table, code):
    for k, v in table.items():
        if v == code:
            return k
    return int(code)


def parse_sizes(sizes):
    """Layer sizes from a list of ints or an ``"784-256-256-10"`` string."""
    if isinstance(sizes, str):
        parts = sizes.replace("x", "-").replace(",", "-").split("-")
        try:
            sizes = [int(p) for p in parts if p.strip() != ""]
        except ValueError:
            raise ShapeError(
                "bad architecture %r: expected sizes separated by '-', e.g. 784-256-256-10" % sizes
            ) from None
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise ShapeError("layer sizes must be integers, got %r" % (sizes,)) from None
    if len(sizes) < 2:
        raise ShapeError("an architecture needs at least 2 sizes (inputs and classes), got %r"
                         % (sizes,))
    if len(sizes) - 1 > MAX_LAYERS:
        raise ShapeError("%d layers requested; the core supports at most %d"
                         % (len(sizes) - 1, MAX_LAYERS))
    for s in sizes:
        if not 1 <= s <= MAX_WIDTH:
            raise ShapeError("layer size %d out of range [1, %d] in %r" % (s, MAX_WIDTH, sizes))
    if sizes[-1] < 2:
        raise ShapeError("the last size is the number of classes and must be >= 2, got %d"
                         % sizes[-1])
    return sizes


def hybrid_kinds(n_layers):
    """The paper's Hybrid model: FP32 first and last layer, ternary hidden layers."""
    return ["fp32"] + ["ternary"] * (n_layers - 2) + ["fp32"] if n_layers >= 2 else ["fp32"]


def kinds_name(kinds):
    """A model's kinds as the name it was made from ("ternary", "binary", "fp32", "hybrid"),
    or the list itself for other mixes."""
    kinds = list(kinds)
    if len(set(kinds)) == 1:
        return kinds[0]
    if len(kinds) >= 3 and kinds == hybrid_kinds(len(kinds)):
        return "hybrid"
    return kinds


def _parse_kinds(kinds, n_layers):
    if isinstance(kinds, str) and kinds.lower() == "hybrid":
        kinds = hybrid_kinds(n_layers)
    if isinstance(kinds, (str, int, np.integer)):
        kinds = [kinds] * n_layers
    kinds = list(kinds)
    if len(kinds) != n_layers:
        raise ShapeError("%d layer kinds given for %d layers" % (len(kinds), n_layers))
    return [_lookup(KINDS, k, "layer kind") for k in kinds]


class History:
    """What :meth:`Model.fit` did, one dict per epoch.

    Keys per epoch: ``epoch`` (1-based within this fit), ``train_acc`` (running accuracy of the
    training forward passes), ``val_acc`` (None without validation data), ``changes``
    (weights changed per layer), ``eligible`` (weights the vote wanted to change, per layer),
    ``errors`` (samples with an output error), ``p`` (change probability at the epoch's last
    step), ``k`` (per layer), ``seconds``, ``samples``, ``samples_per_s``, ``shifts``,
    ``loss`` (mean training cross-entropy of the epoch when the last layer is FP32, else None),
    ``clip_rate`` (per hidden layer, the fraction of its training activations at the clamp);
    for
    the accounting (:mod:`flipnet.accounting`): ``steps``, ``error_steps`` (steps with at
    least one error), ``calibrations`` and ``calib_samples`` (shift calibrations and their
    samples), ``nonzero`` (nonzero weights per layer at the end of the epoch) and ``ops``
    (operations by phase and kind, from the op model).
    """

    def __init__(self, epochs=None):
        self.epochs = list(epochs or [])

    def append(self, record):
        self.epochs.append(record)

    def __len__(self):
        return len(self.epochs)

    def __getitem__(self, i):
        return self.epochs[i]

    def __iter__(self):
        return iter(self.epochs)

    def _col(self, key):
        return [e.get(key) for e in self.epochs]

    train_acc = property(lambda self: self._col("train_acc"))
    val_acc = property(lambda self: self._col("val_acc"))
    changes = property(lambda self: self._col("changes"))
    seconds = property(lambda self: self._col("seconds"))
    samples_per_s = property(lambda self: self._col("samples_per_s"))

    def to_list(self):
        return [dict(e) for e in self.epochs]

    def __repr__(self):
        return "History(%d epochs, train_acc=%s, val_acc=%s)" % (
            len(self), self.train_acc, self.val_acc)


class Model:
    """A dense binary/ternary network, or a hybrid one with FP32 layers.

    ``Model(sizes, kinds="ternary", seed=0, recipe=None, counters=None, vote=None, filter=None,
    margin=None, backprop=None, calib_target=None, counter_shift=None, counter_threshold=None,
    counter_decay=None, weights=None)``:
    ``sizes`` like ``[784, 256, 256, 10]`` (or ``"784-256-256-10"``), ``kinds`` (or its alias
    ``weights``) one kind for all layers or one per layer (``"ternary"``/``"binary"``/``"fp32"``),
    or ``"hybrid"`` (FP32 first and last layer, ternary hidden layers: the paper's Hybrid),
    ``seed`` seeds every random choice (init, data order, flips). The rule options (vote,
    filter, margin, backprop, calib_target, counter_shift, counter_threshold, counter_decay)
    default to the recipe's (``flipnet.recipes.DEFAULT``, or the ``"fp32"`` / ``"hybrid"``
    recipe for those kinds, unless ``recipe`` names another); they are stored in the model and
    in its file.

    ``input``: how uint8 pixels become int8 inputs, ``"centered"`` or ``"half"`` (see the
    module docstring); default the recipe's.

    ``counters``: keep one int8 hysteresis counter per weight (docs/rule.md 7.1; training
    state, saved with the model). ``None`` (default): exactly when ``counter_threshold > 0``;
    ``True``: always (the rule can be switched on later); ``False`` with
    ``counter_threshold > 0`` is an error.
    """

    # ---- construction ---------------------------------------------------------------------
    def __init__(self, sizes, kinds="ternary", seed=0, recipe=None, counters=None, input=None,
                 weights=None, **rule):
        if weights is not None:
            kinds = weights
        sizes = parse_sizes(sizes)
        if recipe is None and isinstance(kinds, str):
            recipe = _recipes.default_for(kinds)
        kinds = _parse_kinds(kinds, len(sizes) - 1)
        seed = int(seed)
        if not 0 <= seed < 2 ** 64:
            raise ArgumentError("seed must be in [0, 2**64), got %d" % seed)
        for key in rule:
            if key not in _recipes.RULE_KEYS:
                raise ArgumentError("unknown rule option %r (rule options: %s)"
                                    % (key, ", ".join(_recipes.RULE_KEYS)))
        self.recipe = _recipes.get(recipe, **rule)
        if input is not None:
            self.recipe["input"] = input
        if self.recipe["input"] not in INPUT_ENCODINGS:
            raise ArgumentError("unknown input encoding %r; choose one of %s"
                                % (self.recipe["input"], ", ".join(INPUT_ENCODINGS)))
        tau = self.recipe.get("counter_threshold", 0)
        if not isinstance(tau, (int, np.integer)) or isinstance(tau, bool):
            raise ArgumentError("counter_threshold must be an integer in [0, 127], got %r" % (tau,))
        if counters is None:
            counters = int(tau) > 0
        elif not counters and int(tau) > 0:
            raise ArgumentError("counter_threshold=%d needs counters; drop counters=False "
                                "(or set counter_threshold=0)" % tau)
        arch = self._make_arch(sizes, kinds, bool(counters))
        self._alloc(arch)
        check(lib.flipnet_model_init(self._m, arch, self._wptr, self._weights.nbytes, seed),
              "flipnet_model_init(%s)" % "-".join(map(str, sizes)))
        self._set_rule(self.recipe)
        self._init_state()
        self._recipe_arch()

    def _recipe_arch(self):
        """Keep the recipe's arch/weights entries true to this model."""
        self.recipe["arch"] = self.arch
        self.recipe["weights"] = kinds_name(self.kinds)

    @classmethod
    def ternary(cls, sizes, seed=0, **options):
        """All layers ternary ({-1, 0, +1})."""
        return cls(sizes, "ternary", seed=seed, **options)

    @classmethod
    def binary(cls, sizes, seed=0, **options):
        """All layers binary ({-1, +1})."""
        return cls(sizes, "binary", seed=seed, **options)

    @classmethod
    def fp32(cls, sizes, seed=0, **options):
        """All layers FP32 with ReLU between them, trained with AdamW: the float baseline."""
        return cls(sizes, "fp32", seed=seed, **options)

    @classmethod
    def hybrid(cls, sizes, seed=0, **options):
        """The paper's Hybrid: FP32 first and last layer (AdamW), ternary hidden layers."""
        return cls(sizes, "hybrid", seed=seed, **options)

    @staticmethod
    def _make_arch(sizes, kinds, counters=False):
        arch = ffi.new("flipnet_arch *")
        arch.n_layers = len(kinds)
        arch.counters = 1 if counters else 0
        for i, s in enumerate(sizes):
            arch.sizes[i] = s
        for i, k in enumerate(kinds):
            arch.kinds[i] = k
        return arch

    def _alloc(self, arch):
        nbytes = ffi.new("size_t *")
        check(lib.flipnet_model_size(arch, nbytes), "flipnet_model_size")
        # uint32 storage: 4-byte aligned (NumPy aligns far more), zero-filled
        self._weights = np.zeros(max(1, (nbytes[0] + 3) // 4), dtype=np.uint32)
        self._wptr = ffi.from_buffer(self._weights)
        self._m = ffi.new("flipnet_model *")
        self._scratch = {}  # training flag -> (batch capacity, uint32 array)

    def _init_state(self):
        self.meta = {}  # free-form user metadata, saved with the model
        self._calibrated = False
        self._epochs_trained = 0
        self._training_log = []  # one record per fit() / device session
        self._epoch_log = []  # all epochs across fits

    def _set_rule(self, r):
        rule = self._m.rule
        rule.vote = _lookup(_VOTES, r["vote"], "vote")
        rule.filter = _lookup(_FILTERS, r["filter"], "filter")
        rule.backprop = _lookup(_BACKPROPS, r["backprop"], "backprop mode")
        margin = int(r["margin"])
        if not 0 <= margin < 2 ** 31:
            raise ArgumentError("margin must be in [0, 2**31), got %d" % margin)
        vals = {}
        for key, lo, hi in (("calib_target", 1, 127), ("counter_shift", 0, 31),
                            ("counter_threshold", 0, 127), ("counter_decay", 0, 7)):
            v = r.get(key, _recipes.PAPER[key])
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ArgumentError("%s must be an integer in [%d, %d], got %r" % (key, lo, hi, v))
            vals[key] = int(v)
        if vals["counter_threshold"] > 0 and not self.has_counters:
            raise ArgumentError(
                "counter_threshold=%d needs a model with counters; this one has none (create it "
                "with counter_threshold > 0 or counters=True)" % vals["counter_threshold"])
        if vals["counter_decay"] > 0 and vals["counter_threshold"] == 0:
            raise ArgumentError(
                "counter_decay=%d acts on the hysteresis counters, which are off "
                "(counter_threshold=0); set counter_threshold > 0 or counter_decay=0"
                % vals["counter_decay"])
        rule.margin = margin
        rule.calib_target = vals["calib_target"]
        rule.counter_shift = vals["counter_shift"]
        rule.counter_threshold = vals["counter_threshold"]
        rule.counter_decay = vals["counter_decay"]

    # ---- properties ---------------------------------------------------------------------
    @property
    def n_layers(self):
        return int(self._m.n_layers)

    @property
    def sizes(self):
        L = self.n_layers
        return [int(self._m.layers[0].n)] + [int(self._m.layers[l].m) for l in range(L)]

    @property
    def arch(self):
        """The sizes as a string, ``"784-256-256-10"``."""
        return "-".join(map(str, self.sizes))

    @property
    def kinds(self):
        return [_KIND_NAMES.get(int(self._m.layers[l].kind), int(self._m.layers[l].kind))
                for l in range(self.n_layers)]

    @property
    def input_encoding(self):
        """How uint8 pixels are quantized: ``"centered"`` or ``"half"`` (see quantize)."""
        return self.recipe.get("input", "centered")

    @property
    def n_inputs(self):
        return int(self._m.layers[0].n)

    @property
    def n_classes(self):
        return int(self._m.layers[self.n_layers - 1].m)

    @property
    def has_counters(self):
        """True when the model keeps hysteresis counters (docs/rule.md 7.1)."""
        return self._m.counters != ffi.NULL

    @property
    def n_weights(self):
        """Weights (n * m per layer; FP32 biases not included, see n_params)."""
        return sum(int(self._m.layers[l].n) * int(self._m.layers[l].m)
                   for l in range(self.n_layers))

    @property
    def n_params(self):
        """Trainable parameters: every weight, plus the biases of the FP32 layers."""
        return self.n_weights + sum(int(self._m.layers[l].m) for l in range(self.n_layers)
                                    if self._m.layers[l].kind == KINDS["fp32"])

    @property
    def fp32_params(self):
        """Parameters of the FP32 layers (W and bias), 0 for an integer-only model."""
        return sum(int(ly.m) * int(ly.n) + int(ly.m) for ly in
                   (self._m.layers[l] for l in range(self.n_layers)) if ly.kind == KINDS["fp32"])

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

    @property
    def seed(self):
        return int(self._m.seed)

    @property
    def steps(self):
        return int(self._m.steps)

    @property
    def samples(self):
        return int(self._m.samples)

    @property
    def shifts(self):
        """Activation shift of each hidden layer (the last layer has none). An FP32 layer's is
        its output scale 2^s (0..15) when an integer layer follows it, else unused (0)."""
        return [int(self._m.layers[l].shift) for l in range(self.n_layers - 1)]

    @shifts.setter
    def shifts(self, values):
        values = [int(v) for v in values]
        if len(values) != self.n_layers - 1:
            raise ShapeError("%d shifts given; the model has %d hidden layers"
                             % (len(values), self.n_layers - 1))
        for l, v in enumerate(values):
            hi = 15 if self._m.layers[l].kind == KINDS["fp32"] else 31
            if not 0 <= v <= hi:
                raise ArgumentError("layer %d's shift must be in [0, %d], got %d" % (l, hi, v))
        for l, v in enumerate(values):
            self._m.layers[l].shift = v
        self._calibrated = True

    @property
    def rule(self):
        r = self._m.rule
        return {"vote": _name(_VOTES, r.vote), "filter": _name(_FILTERS, r.filter),
                "backprop": _name(_BACKPROPS, r.backprop), "margin": int(r.margin),
                "calib_target": int(r.calib_target), "counter_shift": int(r.counter_shift),
                "counter_threshold": int(r.counter_threshold),
                "counter_decay": int(r.counter_decay)}

    @property
    def calibrated(self):
        return self._calibrated

    @property
    def epochs_trained(self):
        return self._epochs_trained

    @property
    def training_log(self):
        """One record per training session (fit on the host, or a device session)."""
        return list(self._training_log)

    @property
    def epoch_log(self):
        """Every epoch this model was trained for, across fits (list of History records)."""
        return list(self._epoch_log)

    def __repr__(self):
        kinds = set(self.kinds)
        kind = kinds.pop() if len(kinds) == 1 else ",".join(map(str, self.kinds))
        return "Model(%s, %s, seed=%d, steps=%d, rule=%s)" % (
            self.arch, kind, self.seed, self.steps, self.rule)

    # ---- input checks -----------------------------------------------------------------
    def _prepare_x(self, x, name="x"):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if not isinstance(x, np.ndarray):
            raise ArgumentError("%s must be a NumPy array of shape (N, ...), got %s"
                                % (name, type(x).__name__))
        if x.ndim < 2:
            raise ShapeError(
                "%s has shape %s; it needs a leading sample axis, shape (N, ...) with %d values "
                "per sample (for a single sample use %s[None])"
                % (name, x.shape, self.n_inputs, name))
        n = x.shape[0]
        if n == 0:
            raise ShapeError("%s is empty (0 samples); pass at least one sample" % name)
        per = int(np.prod(x.shape[1:]))
        if per != self.n_inputs:
            raise ShapeError(
                "%s has %d values per sample (shape %s) but the model's input layer takes %d"
                % (name, per, x.shape, self.n_inputs))
        if x.dtype == np.uint8:
            x8 = quantize(x, self.input_encoding)
        elif x.dtype == np.int8:
            x8 = x
            if np.any(x8 == -128):
                raise InputRangeError(
                    "%s contains -128; int8 inputs must be in [-127, 127] "
                    "(clip them with np.clip(%s, -127, 127))" % (name, name))
        else:
            raise ArgumentError(
                "%s has dtype %s; pass uint8 pixels (quantized by the model's input encoding) "
                "or int8 values in [-127, 127] (floats in [0, 1]: "
                "(x * 255).round().astype(np.uint8))" % (name, x.dtype))
        return np.ascontiguousarray(x8.reshape(n, per))

    def _prepare_y(self, y, n, name="y"):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            hint = " (one-hot labels? use y.argmax(axis=1))" if y.ndim == 2 else ""
            raise ShapeError("%s must be 1-D class indices of shape (N,), got shape %s%s"
                             % (name, y.shape, hint))
        if y.shape[0] != n:
            raise ShapeError("%s has %d labels but x has %d samples" % (name, y.shape[0], n))
        if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
            raise ArgumentError("%s must hold integer class indices, got dtype %s"
                                % (name, y.dtype))
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= self.n_classes:
            raise LabelError("%s has labels in [%d, %d] but the model has %d classes: labels "
                             "must be in [0, %d]" % (name, lo, hi, self.n_classes,
                                                     self.n_classes - 1))
        return np.ascontiguousarray(y, dtype=np.uint16)

    # ---- memory ---------------------------------------------------------------------------
    def _scratch_size(self, batch, training):
        nbytes = ffi.new("size_t *")
        check(lib.flipnet_scratch_size(self._m, int(batch), int(bool(training)), nbytes),
              "flipnet_scratch_size(batch=%d, training=%d)" % (batch, training))
        return int(nbytes[0])

    def _scratch_for(self, batch, training):
        key = bool(training)
        have = self._scratch.get(key)
        if have is None or have[0] < batch:
            nbytes = self._scratch_size(batch, training)
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
        counters, one int8 per weight, 0 without), ``counter_bits_per_weight``,
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
        for l in range(self.n_layers):
            ly = self._m.layers[l]
            nw = int(ly.n) * int(ly.m)
            if ly.kind == KINDS["fp32"]:
                np_ = nw + int(ly.m)
                lb, cb, ob = 4 * np_, 0, 8 * np_
            else:
                planes = 2 if ly.kind == KINDS["ternary"] else 1
                np_ = nw
                lb = (int(ly.m) * planes * int(ly.bpr) + 3) // 4 * 4  # rows, layer padded to 4
                cb, ob = ((nw + 3) // 4 * 4 if counter_bytes else 0), 0
            layers.append({"n": int(ly.n), "m": int(ly.m),
                           "kind": _KIND_NAMES.get(int(ly.kind), int(ly.kind)),
                           "weights": nw, "params": np_, "weight_bytes": lb,
                           "bits_per_weight": lb * 8 / nw, "counter_bytes": cb, "opt_bytes": ob})
        struct = int(ffi.sizeof("flipnet_model"))
        train = self._scratch_size(batch_size, True)
        infer = self._scratch_size(batch_size, False)
        return {
            "arch": self.arch,
            "kinds": self.kinds,
            "batch_size": batch_size,
            "weights": self.n_weights,
            "weight_bytes": weight_bytes,
            "bits_per_weight": weight_bytes * 8 / self.n_weights,
            "counter_bytes": counter_bytes,
            "counter_bits_per_weight": counter_bytes * 8 / self.n_weights,
            "params": self.n_params,
            "fp32_params": self.fp32_params,
            "opt_bytes": opt_bytes,
            "opt_bits_per_param": (opt_bytes * 8 / self.fp32_params) if self.fp32_params else 0.0,
            "model_struct_bytes": struct,
            "scratch_train_bytes": train,
            "scratch_infer_bytes": infer,
            "train_total_bytes": weight_bytes + counter_bytes + opt_bytes + struct + train,
            "infer_total_bytes": weight_bytes + struct + infer,
            "layers": layers,
        }

    # ---- inference ------------------------------------------------------------------------
    def _chunks(self, n, chunk=INFER_CHUNK):
        for s in range(0, n, chunk):
            yield s, min(n, s + chunk)

    def forward(self, x):
        """Logits of shape (N, classes): int32 for an integer last layer, float32 when the last
        layer is FP32 (``float_output``; flipnet_forward_f32)."""
        x8 = self._prepare_x(x)
        n = x8.shape[0]
        flt = self.float_output
        out = np.empty((n, self.n_classes), dtype=np.float32 if flt else np.int32)
        scratch, sbytes = self._scratch_for(min(n, INFER_CHUNK), False)
        for s, e in self._chunks(n):
            if flt:
                check(lib.flipnet_forward_f32(
                    self._m, ffi.from_buffer("int8_t[]", x8[s:e]), e - s,
                    ffi.from_buffer("float[]", out[s:e], require_writable=True), scratch, sbytes),
                    "flipnet_forward_f32(batch=%d)" % (e - s))
            else:
                check(lib.flipnet_forward(
                    self._m, ffi.from_buffer("int8_t[]", x8[s:e]), e - s,
                    ffi.from_buffer("int32_t[]", out[s:e], require_writable=True), scratch, sbytes),
                    "flipnet_forward(batch=%d)" % (e - s))
        return out

    def _predict8(self, x8):
        n = x8.shape[0]
        out = np.empty(n, dtype=np.uint16)
        scratch, sbytes = self._scratch_for(min(n, INFER_CHUNK), False)
        for s, e in self._chunks(n):
            check(lib.flipnet_predict(self._m, ffi.from_buffer("int8_t[]", x8[s:e]), e - s,
                                      ffi.from_buffer("uint16_t[]", out[s:e],
                                                      require_writable=True),
                                      scratch, sbytes),
                  "flipnet_predict(batch=%d)" % (e - s))
        return out

    def predict(self, x):
        """Predicted class per sample (argmax of the logits, lowest index on ties), int64 (N,)."""
        return self._predict8(self._prepare_x(x)).astype(np.int64)

    def evaluate(self, x, y):
        """Accuracy (fraction of samples predicted right), a float in [0, 1]."""
        x8 = self._prepare_x(x)
        y16 = self._prepare_y(y, x8.shape[0])
        return float(np.mean(self._predict8(x8) == y16))

    def calibrate(self, x):
        """Set every hidden layer's shift from the batch ``x`` (docs/rule.md section 1).

        All of ``x`` is one batch (at most FLIPNET_MAX_BATCH samples); a few hundred to a few
        thousand samples are plenty.
        """
        x8 = self._prepare_x(x)
        n = x8.shape[0]
        if n > MAX_BATCH:
            raise ArgumentError("calibrate() takes at most %d samples, got %d" % (MAX_BATCH, n))
        scratch, sbytes = self._scratch_for(n, False)
        check(lib.flipnet_calibrate(self._m, ffi.from_buffer("int8_t[]", x8), n, scratch, sbytes),
              "flipnet_calibrate(batch=%d)" % n)
        self._calibrated = True
        return self.shifts

    # ---- weights --------------------------------------------------------------------------
    def _check_layer(self, layer):
        layer = int(layer)
        if layer < 0:
            layer += self.n_layers
        if not 0 <= layer < self.n_layers:
            raise ArgumentError("layer %d out of range: the model has %d layers"
                                % (layer, self.n_layers))
        return layer

    def _f32_layer(self, layer):
        """W (m, n) and bias (m) of an FP32 layer as float32 arrays (copies)."""
        ly = self._m.layers[layer]
        m, n = int(ly.m), int(ly.n)
        buf = np.empty(m * n + m, dtype=np.float32)
        check(lib.flipnet_layer_get_f32(self._m, layer, ffi.from_buffer("float[]", buf,
                                                                        require_writable=True)),
              "flipnet_layer_get_f32(%d)" % layer)
        return buf[:m * n].reshape(m, n), buf[m * n:]

    def _get_s8(self, fn, name, layer):
        """An int8 (m, n) array of layer ``layer`` filled by core function ``fn``."""
        ly = self._m.layers[layer]
        a = np.empty((int(ly.m), int(ly.n)), dtype=np.int8)
        check(fn(self._m, layer, ffi.from_buffer("int8_t[]", a, require_writable=True)),
              "%s(%d)" % (name, layer))
        return a

    def _checked_shape(self, layer, a, what):
        """``a`` as an array of layer ``layer``'s (m, n) shape, else ShapeError."""
        ly = self._m.layers[layer]
        a = np.asarray(a)
        shape = (int(ly.m), int(ly.n))
        if a.shape != shape:
            raise ShapeError("layer %d %s must have shape %s (outputs, inputs), got %s"
                             % (layer, what, shape, a.shape))
        return a

    def _counter_layer(self, layer):
        """Checked index of a layer with counters (not FP32, in a model that has them)."""
        layer = self._check_layer(layer)
        if not self.has_counters:
            raise ArgumentError("this model has no counters (create it with counter_threshold > 0 "
                                "or counters=True)")
        if self._m.layers[layer].kind == KINDS["fp32"]:
            raise ArgumentError("layer %d is FP32: it has no counters (AdamW state instead, see "
                                "adamw_state)" % layer)
        return layer

    def weights(self, layer):
        """Layer ``layer``'s weights (m, n): ``w[j, i]`` connects input i to output j; int8 for
        ternary/binary layers, float32 for FP32 layers (their bias: :meth:`bias`)."""
        layer = self._check_layer(layer)
        ly = self._m.layers[layer]
        if ly.kind == KINDS["fp32"]:
            return self._f32_layer(layer)[0]
        return self._get_s8(lib.flipnet_layer_get, "flipnet_layer_get", layer)

    def bias(self, layer):
        """An FP32 layer's bias, float32 (m,) (ternary/binary layers have none: ArgumentError)."""
        layer = self._check_layer(layer)
        if self._m.layers[layer].kind != KINDS["fp32"]:
            raise ArgumentError("layer %d is %s and has no bias; only FP32 layers do"
                                % (layer, self.kinds[layer]))
        return self._f32_layer(layer)[1]

    def adamw_state(self, layer):
        """An FP32 layer's AdamW moments as a dict of float32 copies: ``exp_avg`` and
        ``exp_avg_sq`` for W (m, n) and for the bias (``exp_avg_bias``, ``exp_avg_sq_bias``),
        named as torch.optim.AdamW's state."""
        layer = self._check_layer(layer)
        ly = self._m.layers[layer]
        if ly.kind != KINDS["fp32"]:
            raise ArgumentError("layer %d is %s: only FP32 layers have an AdamW state"
                                % (layer, self.kinds[layer]))
        m, n = int(ly.m), int(ly.n)
        off = sum(2 * (int(self._m.layers[k].m) * (int(self._m.layers[k].n) + 1))
                  for k in range(layer) if self._m.layers[k].kind == KINDS["fp32"])
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
        ly = self._m.layers[layer]
        w = self._checked_shape(layer, w, "weights")
        shape = w.shape
        if ly.kind == KINDS["fp32"]:
            if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
                raise ArgumentError("FP32 weights must be numbers, got dtype %s" % w.dtype)
            b = self._f32_layer(layer)[1] if bias is None else np.asarray(bias)
            if b.shape != (shape[0],):
                raise ShapeError("layer %d bias must have shape (%d,), got %s"
                                 % (layer, shape[0], b.shape))
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
        allowed = (-1, 0, 1) if ly.kind == KINDS["ternary"] else (-1, 1)
        if not np.isin(w, allowed).all():
            raise ArgumentError("layer %d is %s: weights must be in %s"
                                % (layer, _KIND_NAMES.get(int(ly.kind)), allowed))
        w8 = np.ascontiguousarray(w, dtype=np.int8)
        check(lib.flipnet_layer_set(self._m, layer, ffi.from_buffer("int8_t[]", w8)),
              "flipnet_layer_set(%d)" % layer)

    def counters(self, layer):
        """Layer ``layer``'s hysteresis counters as int8 (m, n), indexed like :meth:`weights`.

        Raises ArgumentError for a model without counters (see ``has_counters``)."""
        layer = self._counter_layer(layer)
        return self._get_s8(lib.flipnet_counters_get, "flipnet_counters_get", layer)

    def set_counters(self, layer, h):
        """Replace layer ``layer``'s counters with integer (m, n) values in [-127, 127]."""
        layer = self._counter_layer(layer)
        h = self._checked_shape(layer, h, "counters")
        if not np.issubdtype(h.dtype, np.integer) or h.size and (h.min() < -127 or h.max() > 127):
            raise ArgumentError("counters must be integers in [-127, 127]")
        h8 = np.ascontiguousarray(h, dtype=np.int8)
        check(lib.flipnet_counters_set(self._m, layer, ffi.from_buffer("int8_t[]", h8)),
              "flipnet_counters_set(%d)" % layer)

    def __reduce__(self):
        # picklable (multiprocessing, caching) through the model file format
        return (Model.from_bytes, (self.to_bytes(),))

    def copy(self):
        """An independent copy (weights, shifts, counters, rule, metadata)."""
        return Model.from_bytes(self.to_bytes())

    # ---- training -------------------------------------------------------------------------
    def _make_schedule(self, schedule):
        if schedule is None:
            return Schedule.from_recipe(self.recipe)
        if isinstance(schedule, Schedule):
            return schedule
        if isinstance(schedule, dict):
            allowed = ("p0", "p1", "k_frac", "k_frac_end", "margin", "recalibrate_every",
                       "recalibrate_steps", "recalibrate_until", "counter_shift_end")
            unknown = sorted(set(schedule) - set(allowed))
            if unknown:
                raise ArgumentError("unknown schedule option(s) %s; allowed: %s"
                                    % (", ".join(unknown), ", ".join(allowed)))
            return Schedule(recipe=self.recipe, **schedule)
        raise ArgumentError("schedule must be a flipnet.Schedule, a dict of its options or None")

    def _adamw(self, lr=None, weight_decay=None, betas=None, eps=None):
        """AdamW hyperparameters (recipe values for None), checked: (lr, wd, beta1, beta2, eps)."""
        r = self.recipe
        lr = r.get("lr", 1e-3) if lr is None else lr
        weight_decay = r.get("weight_decay", 1e-2) if weight_decay is None else weight_decay
        betas = r.get("betas", (0.9, 0.999)) if betas is None else betas
        eps = r.get("eps", 1e-8) if eps is None else eps
        try:
            b1, b2 = (float(b) for b in betas)
            lr, weight_decay, eps = float(lr), float(weight_decay), float(eps)
        except (TypeError, ValueError):
            raise ArgumentError("AdamW: lr, weight_decay and eps must be numbers and betas a pair "
                                "of numbers, got lr=%r weight_decay=%r betas=%r eps=%r"
                                % (lr, weight_decay, betas, eps)) from None
        vals = (lr, weight_decay, b1, b2, eps)
        if not all(np.isfinite(np.float32(v)) for v in vals) or lr < 0 or weight_decay < 0 \
                or not (0 <= b1 < 1 and 0 <= b2 < 1) or not np.float32(eps) > 0:
            raise ArgumentError("AdamW needs finite lr >= 0, weight_decay >= 0, betas in [0, 1) "
                                "and eps > 0 (as float32), got lr=%r weight_decay=%r betas=%r "
                                "eps=%r" % (lr, weight_decay, (b1, b2), eps))
        if np.float32(b1) >= 1 or np.float32(b2) >= 1:
            raise ArgumentError("betas must stay below 1 as float32, got %r" % ((b1, b2),))
        return vals

    @staticmethod
    def _set_adamw(params, vals):
        params.lr, params.weight_decay, params.beta1, params.beta2, params.eps = vals

    def fit(self, x, y, epochs=None, batch_size=None, validation_data=None, schedule=None,
            verbose=1, shuffle=None, calibrate_samples=None, lr=None, weight_decay=None,
            betas=None, eps=None, lr_end=None):
        """Train on (x, y); returns a :class:`History`.

        ``epochs``, ``batch_size``, ``shuffle``, ``calibrate_samples`` default to the model's
        recipe (``model.recipe``); ``schedule`` is a :class:`flipnet.Schedule` or a dict of its
        options (p0, p1, k_frac, k_frac_end, margin, recalibrate_every, recalibrate_steps),
        completed from the recipe. ``validation_data=(x_val, y_val)`` is evaluated after each epoch.
        ``verbose``: 0 silent, 1 a progress bar on stderr (running accuracy, samples/s).

        Data order: each epoch is shuffled deterministically from the model seed and the
        model's epoch counter (see flipnet.schedule.shuffle_order). Before the first step of
        a never-calibrated model, the shifts are calibrated on the first ``calibrate_samples``
        samples of that order. With ``recalibrate_steps = N > 0`` the shifts are also
        recalibrated on the batch just trained whenever ``model.steps`` becomes a multiple of N,
        during the first ``recalibrate_until`` fraction of the run's steps (then the shifts
        stay put: a late shift change moves every activation of a layer by 2x at once).

        FP32 layers (docs/rule.md 8) are trained with PyTorch's AdamW, ``lr``,
        ``weight_decay``, ``betas``, ``eps``: the recipe's (PyTorch's defaults 1e-3, 1e-2,
        (0.9, 0.999), 1e-8 unless the recipe says otherwise), constant over the run, passed to
        the core as float32; ignored by a model without FP32 layers. ``lr_end`` (recipe key, None
        = constant): the learning rate decays linearly from ``lr`` at the first step to
        ``lr_end`` at the last step of the run.
        """
        r = self.recipe
        adamw = self._adamw(lr, weight_decay, betas, eps)
        lr_end = r.get("lr_end") if lr_end is None else lr_end
        if lr_end is not None:
            lr_end = float(lr_end)
            if not (0.0 <= lr_end < float("inf")):
                raise ArgumentError("lr_end must be a finite number >= 0, got %r" % (lr_end,))
        epochs = int(r["epochs"] if epochs is None else epochs)
        batch_size = int(r["batch_size"] if batch_size is None else batch_size)
        shuffle = bool(r.get("shuffle", True) if shuffle is None else shuffle)
        calibrate_samples = int(r.get("calibrate_samples", 1024) if calibrate_samples is None
                                else calibrate_samples)
        if epochs < 0:
            raise ArgumentError("epochs must be >= 0, got %d" % epochs)
        if not 1 <= batch_size <= MAX_BATCH:
            raise ArgumentError("batch_size must be in [1, %d], got %d" % (MAX_BATCH, batch_size))
        sched = self._make_schedule(schedule)
        x8 = self._prepare_x(x)
        n = x8.shape[0]
        y16 = self._prepare_y(y, n)
        val = None
        if validation_data is not None:
            try:
                xv, yv = validation_data
            except (TypeError, ValueError):
                raise ArgumentError("validation_data must be a pair (x_val, y_val)") from None
            xv8 = self._prepare_x(xv, "x_val")
            val = (xv8, self._prepare_y(yv, xv8.shape[0], "y_val"))
        if sched.margin is not None:
            self._m.rule.margin = int(sched.margin)
            self.recipe["margin"] = int(sched.margin)

        L = self.n_layers
        shapes = [(int(self._m.layers[l].n), int(self._m.layers[l].m)) for l in range(L)]
        shapes_kinds = [(n_, m_, k_) for (n_, m_), k_ in zip(shapes, self.kinds)]
        anneal = sched.counter_shift_end is not None and self.rule["counter_threshold"] > 0
        steps_per_epoch = -(-n // batch_size)
        total = epochs * steps_per_epoch
        scratch, sbytes = self._scratch_for(min(batch_size, n), True)
        params = ffi.new("flipnet_step_params *")
        self._set_adamw(params, adamw)
        stats = ffi.new("flipnet_step_stats *")
        history = History()
        session = {"where": "host", "machine": platform.machine(),
                   "python": platform.python_version(), "flipnet_version": __version__,
                   "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "epochs": 0, "steps": 0, "samples": 0, "seconds": 0.0,
                   "batch_size": batch_size, "n_train": n, "schedule": sched.to_dict(),
                   "rule": self.rule}
        if self.has_fp32:
            session["adamw"] = {"lr": adamw[0], "weight_decay": adamw[1],
                                "betas": [adamw[2], adamw[3]], "eps": adamw[4]}
            if lr_end is not None:
                session["adamw"]["lr_end"] = lr_end
        flt = self.float_output
        step = 0
        tqdm = _tqdm() if verbose else None
        t_run = time.perf_counter()
        try:
            for e in range(epochs):
                order = (shuffle_order(n, self.seed, self._epochs_trained) if shuffle
                         else np.arange(n, dtype=np.int64))
                recal = sched.recalibrate_every and e > 0 and e % sched.recalibrate_every == 0
                calib_samples = calibrations = error_steps = 0
                nz_start = self.nonzero()
                if calibrate_samples > 0 and (not self._calibrated or recal):
                    xc = x8[np.sort(order[:min(calibrate_samples, MAX_BATCH)])]
                    self.calibrate(xc)
                    calib_samples += len(xc)
                    calibrations += 1
                bar = None
                if tqdm is not None:
                    bar = tqdm(total=n, desc="epoch %d/%d" % (e + 1, epochs), unit="sample",
                               file=sys.stderr, leave=True,
                               dynamic_ncols=True, mininterval=0.5)
                correct = errors = seen = 0
                loss_sum = 0.0
                changes = [0] * L
                eligible = [0] * L
                clipped = [0] * L
                ks, ps = [0] * L, [0] * L
                t0 = time.perf_counter()
                for s in range(steps_per_epoch):
                    idx = order[s * batch_size:(s + 1) * batch_size]
                    b = len(idx)
                    xb = x8[idx]
                    yb = y16[idx]
                    ks, ps = sched.step_params(step, total, shapes)
                    if lr_end is not None:
                        params.lr = adamw[0] + (lr_end - adamw[0]) * sched.progress(step, total)
                    for l in range(L):
                        params.k[l] = ks[l]
                        params.p_q16[l] = ps[l]
                    if anneal:
                        self._m.rule.counter_shift = sched.counter_shift_at(step, total)
                    check(lib.flipnet_train_step(self._m, ffi.from_buffer("int8_t[]", xb),
                                                 ffi.from_buffer("uint16_t[]", yb), b, params,
                                                 stats, scratch, sbytes),
                          "flipnet_train_step(step=%d, batch=%d)" % (self.steps, b))
                    step += 1
                    seen += b
                    session["steps"] += 1
                    session["samples"] += b
                    correct += stats.correct
                    errors += stats.errors
                    loss_sum += float(stats.loss) * b
                    error_steps += stats.errors != 0
                    for l in range(L):
                        changes[l] += stats.changes[l]
                        eligible[l] += stats.eligible[l]
                        clipped[l] += stats.clipped[l]
                    if (sched.recalibrate_steps and self.steps % sched.recalibrate_steps == 0
                            and step <= sched.recalibrate_until * total):
                        self.calibrate(xb)
                        calib_samples += b
                        calibrations += 1
                    if bar is not None:
                        bar.update(b)
                        if s % 16 == 0 or s == steps_per_epoch - 1:
                            dt = time.perf_counter() - t0
                            bar.set_postfix(acc="%.4f" % (correct / seen),
                                            sps="%.0f" % (seen / dt if dt > 0 else 0.0),
                                            refresh=False)
                seconds = time.perf_counter() - t0
                val_acc = self._evaluate8(*val) if val is not None else None
                rec = {"epoch": e + 1, "train_acc": correct / seen, "val_acc": val_acc,
                       "changes": changes, "eligible": eligible, "errors": errors,
                       "p": ps[0] / 65536.0, "k": ks, "seconds": seconds, "samples": seen,
                       "samples_per_s": seen / seconds if seconds > 0 else None,
                       "shifts": self.shifts, "steps": steps_per_epoch,
                       "loss": loss_sum / seen if flt else None,
                       "clip_rate": [c / (seen * int(self._m.layers[l].m)) for l, c in
                                     enumerate(clipped[:L - 1])],
                       "error_steps": error_steps, "calib_samples": calib_samples,
                       "calibrations": calibrations, "nonzero": self.nonzero()}
                rec["ops"] = _accounting.epoch_ops(
                    shapes_kinds, self.rule,
                    dict(rec, nonzero=[(a + b) // 2 for a, b in zip(nz_start, rec["nonzero"])]))
                if bar is not None:
                    post = {"acc": "%.4f" % rec["train_acc"]}
                    if flt:
                        post["loss"] = "%.4f" % rec["loss"]
                    if val_acc is not None:
                        post["val"] = "%.4f" % val_acc
                    bar.set_postfix(post, refresh=False)
                    bar.close()
                history.append(rec)
                self._epoch_log.append(dict(rec, session=len(self._training_log)))
                self._epochs_trained += 1
                session["epochs"] += 1
        finally:
            if anneal:  # the rule keeps the recipe's starting shift; the schedule is in the recipe
                self._m.rule.counter_shift = sched.counter_shift
            session["seconds"] = time.perf_counter() - t_run
            if session["steps"]:
                self._training_log.append(session)
        return history

    def train_step(self, x, y, k, p, lr=None, weight_decay=None, betas=None, eps=None):
        """One training step on the batch (x, y) with explicit integer parameters.

        ``k``: weights to select, one int per layer (or one for all); ``p``: change probability,
        a float in [0, 1] (converted to Q16) or, if an int, already Q16 (65536 = 1.0), one per
        layer or one for all. FP32 layers: AdamW with ``lr``, ``weight_decay``, ``betas``,
        ``eps`` (recipe values for None; see fit). Returns the step's statistics as a dict
        (correct, errors, loss, and per layer changes, eligible, clipped). No calibration, no
        schedule: the building block of :meth:`fit`, for experiments and for checking a device
        against the host.
        """
        adamw = self._adamw(lr, weight_decay, betas, eps)
        x8 = self._prepare_x(x)
        b = x8.shape[0]
        if b > MAX_BATCH:
            raise ArgumentError("a batch has at most %d samples, got %d" % (MAX_BATCH, b))
        y16 = self._prepare_y(y, b)
        L = self.n_layers
        ks = list(k) if isinstance(k, (list, tuple, np.ndarray)) else [k] * L
        ps = list(p) if isinstance(p, (list, tuple, np.ndarray)) else [p] * L
        if len(ks) != L or len(ps) != L:
            raise ShapeError("k and p need one value per layer (%d)" % L)
        params = ffi.new("flipnet_step_params *")
        for l in range(L):
            kl = int(ks[l])
            pl = ps[l]
            q = int(pl) if isinstance(pl, (int, np.integer)) else int(round(float(pl) * 65536))
            if kl < 0 or not 0 <= q <= 65536:
                raise ArgumentError("k must be >= 0 and p in [0, 1] (Q16: [0, 65536]); got "
                                    "k=%r p=%r for layer %d" % (ks[l], pl, l))
            params.k[l] = kl
            params.p_q16[l] = q
        self._set_adamw(params, adamw)
        stats = ffi.new("flipnet_step_stats *")
        scratch, sbytes = self._scratch_for(b, True)
        check(lib.flipnet_train_step(self._m, ffi.from_buffer("int8_t[]", x8),
                                     ffi.from_buffer("uint16_t[]", y16), b, params, stats,
                                     scratch, sbytes),
              "flipnet_train_step(step=%d, batch=%d)" % (self.steps, b))
        return {"correct": int(stats.correct), "errors": int(stats.errors),
                "loss": float(stats.loss),
                "changes": [int(stats.changes[l]) for l in range(L)],
                "eligible": [int(stats.eligible[l]) for l in range(L)],
                "clipped": [int(stats.clipped[l]) for l in range(L)]}

    def add_training_record(self, where, steps, samples, seconds, **info):
        """Record a training session done elsewhere (e.g. ``where="device"``) in the metadata.

        The record lands in :attr:`training_log` and in the saved file, beside the host's own
        fit() records. Extra keyword arguments (board, port, epochs, ...) are kept as given and
        must be JSON-serializable.
        """
        rec = {"where": str(where), "steps": int(steps), "samples": int(samples),
               "seconds": float(seconds), "flipnet_version": __version__,
               "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        rec.update(info)
        json.dumps(rec, default=_json_default)  # fail now rather than at save()
        self._training_log.append(rec)
        if info.get("epochs"):
            self._epochs_trained += int(info["epochs"])
        self._calibrated = self._calibrated or bool(any(self.shifts))
        return rec

    def _evaluate8(self, x8, y16):
        return float(np.mean(self._predict8(x8) == y16))

    # ---- files ----------------------------------------------------------------------------
    def _meta_dict(self):
        return {
            "format": META_FORMAT,
            "flipnet_version": __version__,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "arch": self.arch,
            "kinds": self.kinds,
            "recipe": self.recipe,
            "calibrated": self._calibrated,
            "epochs_trained": self._epochs_trained,
            "training": self._training_log,
            "history": self._epoch_log,
            "user": self.meta,
        }

    def to_bytes(self):
        """The model as a model file (bytes): format v1, or v2 with FP32 layers; metadata is
        UTF-8 JSON (see save)."""
        meta = json.dumps(self._meta_dict(), sort_keys=True, default=_json_default).encode("utf-8")
        size = ffi.new("size_t *")
        check(lib.flipnet_file_size(self._m, len(meta), size), "flipnet_file_size")
        buf = bytearray(size[0])
        written = ffi.new("size_t *")
        check(lib.flipnet_file_write(self._m, ffi.from_buffer("uint8_t[]", meta), len(meta),
                                     ffi.from_buffer("uint8_t[]", buf), len(buf), written),
              "flipnet_file_write")
        return bytes(buf[:written[0]])

    def save(self, path):
        """Write the model file (docs/format.md: v1, or v2 for a model with FP32 layers, their
        AdamW state included) to ``path``; returns its size.

        The metadata blob is UTF-8 JSON: recipe, calibration state, epochs trained, training
        sessions (where: host/device, steps, samples, seconds, flipnet version), per-epoch
        history and ``model.meta`` (free-form, JSON-serializable). Written atomically.
        """
        data = self.to_bytes()
        path = os.fspath(path)
        tmp = "%s.tmp-%d" % (path, os.getpid())
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return len(data)

    def export(self, path, format=None, name=None, **options):
        """Export for use outside flipnet (docs/export.md): ``format`` ``"c"`` (a C header
        with the packed weights as const data for an inference-only firmware), ``"npz"``
        (weights per layer, shifts and JSON metadata) or ``"onnx"`` (a graph ONNX Runtime runs
        with the core's exact integer semantics; ``input="uint8"|"int8"``; needs the ``onnx``
        extra); default from ``path``'s suffix (``.h`` / ``.npz`` / ``.onnx``). ``name``: the
        C identifier prefix (default: the file's stem). Returns a dict (format, path, bytes);
        see :func:`flipnet.export.export`.
        """
        from .export import export

        return export(self, path, format, name=name, **options)

    @classmethod
    def from_bytes(cls, data, source="model file"):
        """A model from the bytes of a model file (checked: magic, version, sizes, CRC)."""
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
        raw = bytes(ffi.buffer(meta_p[0], meta_n[0])) if meta_n[0] else b""
        self._init_state()
        self.recipe = _recipes.get(None)
        self.recipe.update(self.rule)
        self.recipe["input"] = "centered"  # unless the metadata says otherwise
        self._calibrated = any(self.shifts) or self.steps > 0
        if raw:
            try:
                meta = json.loads(raw.decode("utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("not an object")
            except ValueError:
                meta = {"user": {"raw_metadata": raw.decode("latin-1")}}
            rec = meta.get("recipe")
            if isinstance(rec, dict):
                self.recipe.update({k: v for k, v in rec.items() if k in _recipes.DEFAULT})
                self.recipe.update(self.rule)  # the file's rule fields win
                if self.recipe.get("input") not in INPUT_ENCODINGS:
                    self.recipe["input"] = "centered"
            self._calibrated = bool(meta.get("calibrated", self._calibrated))
            self._epochs_trained = int(meta.get("epochs_trained", 0))
            self._training_log = list(meta.get("training", []))
            self._epoch_log = list(meta.get("history", []))
            self.meta = dict(meta.get("user", {}))
        self._recipe_arch()
        return self


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError("%s is not JSON serializable" % type(o).__name__)


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm


def load(path):
    """Read a model file written by :meth:`Model.save` (or a device export).

    Raises ``FileNotFoundError`` for a missing file and a :class:`flipnet.ModelFileError`
    subclass for a file that is not a valid flipnet model (wrong magic, unknown version,
    truncated, inconsistent sizes, CRC mismatch, invalid field).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return Model.from_bytes(data, source=repr(path))
