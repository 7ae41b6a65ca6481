"""flipnet.Model: a binary/ternary (or hybrid, with FP32 layers) dense network trained by
the C core.

:class:`Model` is the user's model: made from layer sizes, kinds and a recipe; it takes
uint8 pixels or int8 inputs (:mod:`flipnet.inputs`), trains (:mod:`flipnet.training`), saves
itself with its history (:mod:`flipnet.metadata`, :mod:`flipnet.files`) and exports
(:mod:`flipnet.export`). What touches the core's struct and buffers is its base class,
:class:`flipnet.core.CoreModel` (memory, layers, weights, counters, the model file's bytes).

Layer kinds
-----------
``"ternary"`` and ``"binary"`` layers are trained by the integer, gradient-free rule;
``"fp32"`` layers (float32 W and bias, trained with PyTorch's AdamW) make hybrid networks
(docs/rule.md section 8). ``"hybrid"`` is the paper's Hybrid model: FP32 first and last layer,
ternary hidden layers. An FP32 layer reads an int8 value ``a`` as ``a / 128``; a model whose last
layer is FP32 has float logits.
"""

import os

import numpy as np

from . import metadata as _metadata
from . import recipes as _recipes
from . import rule as _rule
from . import training as _training
from .arch import KINDS, kinds_name, parse_kinds, parse_sizes
from .core import CoreModel
from .errors import ArgumentError
from .files import write_atomic
from .inputs import (DEFAULT_SCALE, FeatureScale, check_encoding, image_side, is_float,
                     make_scale, parse_encoding, prepare_x, prepare_y, quantize)
from .metadata import META_FORMAT, Provenance
from .training import History

# names this module had before its split (core, training, metadata, inputs, arch), still here
from ._ffi import ffi, lib  # noqa: F401
from .arch import MODEL_KINDS, hybrid_kinds  # noqa: F401
from .core import INFER_CHUNK, MAX_BATCH, MAX_LAYERS, MAX_WIDTH  # noqa: F401
from .inputs import INPUT_ENCODINGS  # noqa: F401

__all__ = ["Model", "History", "load", "quantize", "KINDS", "META_FORMAT"]


def _kind_constructor(kind, doc):
    def make(cls, sizes, seed=0, **options):
        return cls(sizes, kind, seed=seed, **options)
    make.__name__ = make.__qualname__ = kind
    make.__doc__ = doc
    return classmethod(make)


def _counters_option(recipe, counters):
    """Whether a model made with ``recipe`` keeps hysteresis counters: ``counters`` checked
    against the recipe's counter_threshold (None: exactly when it is > 0)."""
    tau = recipe.get("counter_threshold", 0)
    if not isinstance(tau, (int, np.integer)) or isinstance(tau, bool):
        raise ArgumentError("counter_threshold must be an integer in [%d, %d], got %r"
                            % (_rule.RANGES["counter_threshold"] + (tau,)))
    if counters is None:
        return int(tau) > 0
    if not counters and int(tau) > 0:
        raise ArgumentError("counter_threshold=%d needs counters; drop counters=False "
                            "(or set counter_threshold=0)" % tau)
    return bool(counters)


class Model(CoreModel):
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

    ``input``: the input encoding, how uint8 pixels become int8 inputs (:mod:`flipnet.inputs`):
    ``"centered"`` or ``"half"`` (one input per pixel), or one that reduces a square image
    first, e.g. ``"crop20-pool2"`` (the central 20x20 pixels averaged in 2x2 blocks: 100
    inputs from a 28x28 image, so ``sizes`` ``[100, ...]``); default the recipe's. The model
    then takes ordinary uint8 images everywhere (fit, predict, evaluate, device training) and
    encodes them itself, or int8 samples already encoded.

    ``counters``: keep one hysteresis counter per weight (docs/rule.md 7.1; training
    state, saved with the model). ``None`` (default): exactly when ``counter_threshold > 0``;
    ``True``: always (the rule can be switched on later); ``False`` with
    ``counter_threshold > 0`` is an error. ``counter_bits``: their width, 8, 4 or 2 bits (or
    one per layer; default the recipe's, 8): narrower counters take a quarter or an eighth of
    the memory and hold less evidence (values in [-(2^(b-1) - 1), 2^(b-1) - 1]; a layer's
    threshold is min(counter_threshold, that)).

    ``input_scale``: how float features (sensor readings, ...) become int8 inputs
    (:class:`flipnet.inputs.FeatureScale`): ``"std"`` (the default when the model is first fit
    on floats), ``"minmax"``, ``"absmax"``, a number (that scale for every feature), or a
    fitted FeatureScale; fitted on the first float features the model is fit on, saved with
    it, and applied again by predict / evaluate (uint8 and int8 inputs are not scaled).

    Saved with the model: ``recipe`` (a dict, :mod:`flipnet.recipes`), ``provenance``
    (:class:`flipnet.metadata.Provenance`: calibration, epochs, training sessions) and ``meta``
    (free-form user metadata, a JSON-serializable dict).
    """

    # ---- construction ---------------------------------------------------------------------
    def __init__(self, sizes, kinds="ternary", seed=0, recipe=None, counters=None, input=None,
                 weights=None, counter_bits=None, input_scale=None, **rule):
        if weights is not None:
            kinds = weights
        sizes = parse_sizes(sizes)
        if recipe is None and isinstance(kinds, str):
            recipe = _recipes.default_for(kinds)
        kinds = parse_kinds(kinds, len(sizes) - 1)
        seed = int(seed)
        if not 0 <= seed < 2 ** 64:
            raise ArgumentError("seed must be in [0, 2**64), got %d" % seed)
        for key in rule:
            if key not in _recipes.RULE_KEYS:
                raise ArgumentError("unknown rule option %r (rule options: %s)"
                                    % (key, ", ".join(_recipes.RULE_KEYS)))
        recipe = _recipes.get(recipe, **rule)
        if input is not None:
            recipe["input"] = input
        recipe["input"] = check_encoding(recipe["input"], sizes[0])
        if counter_bits is not None:
            recipe["counter_bits"] = counter_bits
        bits = _rule.check_counter_bits(recipe.get("counter_bits", 8), len(kinds))
        super().__init__(sizes, kinds, _counters_option(recipe, counters), seed, bits)
        self._image_side = None
        self.set_rule(recipe)
        self.provenance = Provenance()
        self.meta = {}
        self.set_recipe(recipe)
        self.input_scale = input_scale

    ternary = _kind_constructor("ternary", "All layers ternary ({-1, 0, +1}).")
    binary = _kind_constructor("binary", "All layers binary ({-1, +1}).")
    fp32 = _kind_constructor("fp32", "All layers FP32 with ReLU between them, trained with "
                             "AdamW: the float baseline.")
    hybrid = _kind_constructor("hybrid", "The paper's Hybrid: FP32 first and last layer "
                               "(AdamW), ternary hidden layers.")

    def set_recipe(self, recipe):
        """Make the dict ``recipe`` the model's recipe (:mod:`flipnet.recipes`), with its
        ``arch`` / ``weights`` entries set to this model's. The rule is not changed (see
        :meth:`set_rule`)."""
        recipe["arch"] = self.arch
        recipe["weights"] = kinds_name(self.kinds)
        self.recipe = recipe

    # ---- properties ---------------------------------------------------------------------
    @property
    def input_encoding(self):
        """How uint8 pixels become the int8 inputs: ``"centered"``, ``"half"``, or a reducing
        encoding such as ``"crop20-pool2"`` (:mod:`flipnet.inputs`, :func:`quantize`)."""
        return self.recipe.get("input", "centered")

    @property
    def image_side(self):
        """For a reducing input encoding, the side ``S`` of the square uint8 images the model
        takes (``S x S`` pixels per sample): fixed by the encoding and the input width for a
        pool without a crop (``"pool2"`` with 196 inputs: 28), else the side of the images
        the model was first fit on (a device session's too), saved with it; None while
        unknown (any side the encoding allows is then taken) and for per-pixel encodings.
        Settable (e.g. before exporting a model trained on int8 samples only)."""
        enc = parse_encoding(self.input_encoding)
        if not enc.reduces:
            return None
        fixed = enc.fixed_side(self.n_inputs)
        if fixed is not None:
            return fixed
        side = getattr(self, "_image_side", None)
        if side is not None:
            try:
                enc.check_side(side)
            except ValueError:
                return None
        return side

    @image_side.setter
    def image_side(self, side):
        enc = parse_encoding(self.input_encoding)
        if side is None:
            self._image_side = None
            return
        if not isinstance(side, (int, np.integer)) or isinstance(side, bool):
            raise ArgumentError("image_side must be an integer, got %r" % (side,))
        side = int(side)
        if not enc.reduces:
            raise ArgumentError("input encoding %r is per pixel: the model has no image side "
                                "(it takes %d pixels in any layout)"
                                % (enc.name, self.n_inputs))
        enc.check_side(side)
        fixed = enc.fixed_side(self.n_inputs)
        if fixed is not None and side != fixed:
            raise ArgumentError("input encoding %r with %d inputs takes %d x %d images, not "
                                "%d x %d" % (enc.name, self.n_inputs, fixed, fixed, side, side))
        self._image_side = side

    @property
    def input_scale(self):
        """How float features become the int8 inputs: a fitted
        :class:`flipnet.inputs.FeatureScale`, the method it will be fitted with on the first
        float features fit sees (``"std"``, ``"minmax"``, ``"absmax"`` or a number), or None
        (no floats seen yet: fit would use ``"std"``). Settable; saved with the model."""
        return getattr(self, "_input_scale", None)

    @input_scale.setter
    def input_scale(self, spec):
        spec = make_scale(spec)
        if isinstance(spec, FeatureScale) and spec.n_features != self.n_inputs:
            raise ArgumentError("the input scale has %d features but the model takes %d inputs"
                                % (spec.n_features, self.n_inputs))
        if spec is not None and parse_encoding(self.input_encoding).reduces:
            raise ArgumentError("input encoding %r reduces images; an input scale is for float "
                                "features, one per input (use a per-pixel encoding such as "
                                "'half')" % self.input_encoding)
        self._input_scale = spec

    def _set_shifts(self, values):
        self.set_shifts(values)
        self.provenance.calibrated = True

    shifts = property(CoreModel.shifts.fget, _set_shifts, doc=CoreModel.shifts.__doc__)
    calibrated = property(lambda self: self.provenance.calibrated)
    epochs_trained = property(lambda self: self.provenance.epochs_trained)
    training_log = property(lambda self: list(self.provenance.sessions), doc=(
        "One record per training session (fit on the host, or a device session)."))
    epoch_log = property(lambda self: list(self.provenance.epochs), doc=(
        "Every epoch this model was trained for, across fits (list of History records)."))

    def __repr__(self):
        kinds = set(self.kinds)
        kind = kinds.pop() if len(kinds) == 1 else ",".join(map(str, self.kinds))
        return "Model(%s, %s, seed=%d, steps=%d, rule=%s)" % (
            self.arch, kind, self.seed, self.steps, self.rule)

    # ---- inference ------------------------------------------------------------------------
    def _x(self, x, name="x", learn_side=False):
        """``x`` encoded for the core (flipnet.inputs.prepare_x); with ``learn_side``, a
        reducing model that does not know its image side yet takes the side of ``x``'s
        images (fit)."""
        scale = self.input_scale
        if learn_side and is_float(x) and not isinstance(scale, FeatureScale) \
                and not parse_encoding(self.input_encoding).reduces:
            # the first float features fit sees: the model's input scale from now on
            self.input_scale = FeatureScale.fit(x, DEFAULT_SCALE if scale is None else scale,
                                                name)
            scale = self.input_scale
        x8 = prepare_x(x, self.n_inputs, self.input_encoding, name, self.image_side,
                       scale if isinstance(scale, FeatureScale) else None)
        if learn_side and self.image_side is None:
            side = image_side(x, self.input_encoding, name)
            if side is not None:
                self.image_side = side
        return x8

    def forward(self, x, threads=None):
        """Logits of shape (N, classes): int32 for an integer last layer, float32 when the last
        layer is FP32 (``float_output``; flipnet_forward_f32). ``threads``: None for
        flipnet.threads.default(); the logits are the same for any number."""
        return self.core_forward(self._x(x), threads)

    def predict(self, x, threads=None):
        """Predicted class per sample (argmax of the logits, lowest index on ties), int64 (N,)."""
        return self.core_predict(self._x(x), threads).astype(np.int64)

    def evaluate(self, x, y, threads=None):
        """Accuracy (fraction of samples predicted right), a float in [0, 1]."""
        x8 = self._x(x)
        y16 = prepare_y(y, x8.shape[0], self.n_classes)
        return float(np.mean(self.core_predict(x8, threads) == y16))

    def calibrate(self, x, first=0):
        """Set every hidden layer's shift from the batch ``x`` (docs/rule.md section 1); with
        ``first = 1`` only those of the layers after the first (its shift is kept).

        All of ``x`` is one batch (at most FLIPNET_MAX_BATCH samples); a few hundred to a few
        thousand samples are plenty.
        """
        shifts = self.core_calibrate(self._x(x), first)
        self.provenance.calibrated = True
        return shifts

    # ---- training (flipnet.training) ----------------------------------------------------
    def fit(self, x, y=None, epochs=None, batch_size=None, validation_data=None, schedule=None,
            verbose=1, shuffle=None, calibrate_samples=None, lr=None, weight_decay=None,
            betas=None, eps=None, lr_end=None, steps=None, curve_every=None, threads=None):
        # encoded here, once (the model's encoding, image side and input scale); the loop
        # gets int8; a stream of batches is encoded batch by batch as it arrives
        if y is None:
            x = (self._encode_batch(item) for item in _iterate(x))
        else:
            x = self._x(x, learn_side=True)
        if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            validation_data = (self._x(validation_data[0], "x_val"), validation_data[1])
        return _training.fit(self, x, y, epochs, batch_size, validation_data, schedule, verbose,
                             shuffle, calibrate_samples, lr, weight_decay, betas, eps, lr_end,
                             steps, curve_every, threads)

    def _encode_batch(self, item):
        try:
            xb, yb = item
        except (TypeError, ValueError):
            raise ArgumentError("each item of a stream must be a pair (x, y) of a batch's "
                                "samples and labels, got %s" % type(item).__name__) from None
        return self._x(xb, "x of a batch", learn_side=True), yb

    def train_step(self, x, y, k, p, lr=None, weight_decay=None, betas=None, eps=None,
                   threads=None):
        return _training.train_step(self, self._x(x, learn_side=True), y, k, p, lr,
                                    weight_decay, betas, eps, threads)

    fit.__doc__ = _training.fit.__doc__
    train_step.__doc__ = _training.train_step.__doc__

    def add_training_record(self, where, steps, samples, seconds, **info):
        """Record a training session done elsewhere (e.g. ``where="device"``) in the metadata.

        The record lands in :attr:`training_log` and in the saved file, beside the host's own
        fit() records. Extra keyword arguments (board, port, epochs, ...) are kept as given and
        must be JSON-serializable.
        """
        return _metadata.add_training_record(self, where, steps, samples, seconds, **info)

    # ---- files ----------------------------------------------------------------------------
    def to_bytes(self):
        """The model as a model file (bytes): format v1, or v2 with FP32 layers; metadata is
        UTF-8 JSON (see save)."""
        return self.file_bytes(_metadata.encode(self))

    @classmethod
    def from_bytes(cls, data, source="model file"):
        """A model from the bytes of a model file (checked: magic, version, sizes, CRC)."""
        self, raw = cls.read_file(data, source)
        _metadata.apply(self, raw)
        return self

    def save(self, path):
        """Write the model file (docs/format.md: v1, or v2 for a model with FP32 layers, their
        AdamW state included) to ``path``; returns its size.

        The metadata blob is UTF-8 JSON (:mod:`flipnet.metadata`): recipe, calibration state,
        epochs trained, training sessions (where: host/device, steps, samples, seconds, flipnet
        version), per-epoch history and ``model.meta`` (free-form, JSON-serializable). Written
        atomically (:func:`flipnet.files.write_atomic`).
        """
        return write_atomic(path, self.to_bytes())

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

    def __reduce__(self):
        # picklable (multiprocessing, caching) through the model file format
        return (Model.from_bytes, (self.to_bytes(),))

    def copy(self):
        """An independent copy (weights, shifts, counters, rule, metadata)."""
        return Model.from_bytes(self.to_bytes())


def _iterate(batches):
    """``iter(batches)`` with a clear error for what is not an iterable of batches."""
    if isinstance(batches, np.ndarray):
        raise ArgumentError("fit(x) without y: x must be an iterable of (x, y) batches; for "
                            "arrays pass fit(x, y)")
    try:
        return iter(batches)
    except TypeError:
        raise ArgumentError("fit(batches) takes an iterable of (x, y) batches (a generator, a "
                            "list of pairs), got %s; for arrays pass fit(x, y)"
                            % type(batches).__name__) from None


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
