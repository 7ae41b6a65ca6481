"""Inputs and labels as the core takes them, checked (pure NumPy); the input encodings.

``x`` is any array of shape ``(N, ...)``. Two dtypes are accepted:

* ``uint8`` (pixels): encoded to int8 by the model's **input encoding** (recipe key
  ``input``, stored in the model file; below),
* ``int8`` already encoded, in ``[-127, 127]`` (the value -128 is rejected); used as given,
  ``n_inputs`` values per sample.

Input encodings
---------------
An encoding maps the uint8 pixels ``p`` of one sample to the model's int8 inputs ``x``, exactly
and in integers. Its name is ``[crop<C>-][pool<P>][-centered]`` or one of the two per-pixel
encodings:

``"centered"``  ``x = clamp(p - 128, -127, 127)``, one input per pixel (the paper's reading,
                docs/rule.md section 1),
``"half"``      ``x = p >> 1`` in ``[0, 127]``, one input per pixel (a dark background is 0 and
                casts no vote; the default recipe's choice, docs/benchmarks.md).

The others **reduce a square image** of ``S x S`` pixels (row by row: ``S * S`` values per
sample, or shape ``(N, S, S)``) to fewer inputs, then scale each value like a pixel:

``crop<C>``     keep the central ``C x C`` pixels: rows and columns ``o .. o + C - 1`` with
                ``o = (S - C) / 2`` (``C <= S``, ``S - C`` even);
``pool<P>``     ``P`` in {2, 4}: average each ``P x P`` block (row-major blocks) with the floor,
                ``q = (sum of its P*P pixels) >> log2(P*P)``, a uint8 "pixel" (the side being
                pooled, ``C`` or ``S``, must be a multiple of ``P``);
scaling         ``q >> 1`` in ``[0, 127]`` (the ``half`` scaling; the default), or with the
                suffix ``-centered`` ``clamp(q - 128, -127, 127)``.

So ``"crop20-pool2"`` on a 28x28 image gives 100 inputs, for ``r, c`` in ``0..9``::

    x[r*10 + c] = (p[4+2r][4+2c] + p[4+2r][5+2c] + p[5+2r][4+2c] + p[5+2r][5+2c]) >> 3

(``(sum >> 2) >> 1 == sum >> 3``; in general ``sum >> (log2(P*P) + 1)``, in ``[0, 127]``);
``"crop24-pool2"`` gives 144 inputs, ``"pool2"`` 196 (the whole 28x28 image, 2x2-averaged),
``"pool4"`` 49. The model's ``n_inputs`` is the reduced size (``(C / P)^2``, or ``(S / P)^2``
without a crop). A reducing model takes uint8 images of ``S x S`` pixels and reduces them, or
int8 samples already encoded (``n_inputs`` values); the side ``S`` comes from the samples (a
perfect square, or a ``(S, S)`` sample shape) and, once the model has been fit on images, must
be that side (``Model.image_side``). A ``-half`` suffix is accepted and dropped (the canonical
name has none).

Every host path (``Model`` fit/predict/evaluate, device sessions, exports) encodes through
this module; the C header's ``<name>_input_from_image`` and the ONNX graph compute the same.

Float features
--------------
Samples that are not pixels (sensor readings, audio features, ...) come as floats (any float
dtype, shape ``(N, n_inputs)``) and are quantized to int8 by the model's **input scale**
(:class:`FeatureScale`, stored in the model file beside the encoding), per feature ``j``::

    x[j] = clamp(rint((f[j] - offset[j]) * scale[j]), -127, 127)

(``rint``: round half to even, in float64). The offsets and scales are fitted on the training
data the first time a model is fit on floats, by one of the :data:`SCALE_METHODS`:

``"std"``     (the default) ``offset`` = the feature's mean, ``scale`` = 127 / (3 x its standard
              deviation): the mean maps to 0 and 3 standard deviations to +-127 (values
              further out are clamped);
``"minmax"``  the feature's [min, max] maps to [-127, 127];
``"absmax"``  ``offset`` 0, ``scale`` = 127 / max |f|: 0 stays 0 (for signed readings whose
              sign means something);
a number s    ``offset`` 0, ``scale`` s for every feature (fixed point: ``x = rint(f * s)``).

A constant feature gets ``scale`` 0 (always 0). Predict, evaluate and every export apply the
stored numbers again, so the model takes the same float features ever after. Floats are only
read through a per-feature encoding (``"centered"``, ``"half"``: the encoding then applies to
uint8 pixels only); a reducing encoding takes images.

Labels ``y`` are 1-D integer class indices in ``[0, classes)``. Problems are reported with
``ValueError`` subclasses from :mod:`flipnet.errors` saying what was wrong and what to do.
"""

import math
import re
from collections import namedtuple

import numpy as np

from .errors import ArgumentError, InputRangeError, LabelError, ShapeError

__all__ = ["INPUT_ENCODINGS", "SCALINGS", "POOLS", "EXAMPLES", "Encoding", "parse_encoding",
           "check_encoding", "describe", "scale_pixels", "reduce_pixels", "quantize",
           "image_side", "prepare_x", "prepare_y", "SCALE_METHODS", "DEFAULT_SCALE",
           "FeatureScale", "make_scale", "is_float"]

#: the per-pixel encodings; every other encoding reduces an image and ends in one of these
#: scalings (``-centered``, or ``half`` by default)
SCALINGS = ("centered", "half")
#: the per-pixel encodings (this module's name for them before the reducing ones existed)
INPUT_ENCODINGS = SCALINGS
#: the block sides of ``pool<P>``
POOLS = (2, 4)
#: encodings named in messages and --help (the grammar allows more)
EXAMPLES = ("centered", "half", "pool2", "crop20-pool2", "crop24-pool2", "crop20-pool2-centered")

_NAME = re.compile(r"^(?:crop(?P<crop>[1-9][0-9]*))?-?(?:pool(?P<pool>[0-9]+))?"
                   r"(?:-?(?P<scaling>centered|half))?$")
_GRAMMAR = ("an input encoding is 'centered', 'half', or [crop<C>-][pool<P>][-centered] "
            "(P in 2, 4; e.g. %s)" % ", ".join(EXAMPLES[2:]))


class Encoding(namedtuple("Encoding", "name scaling crop pool")):
    """A parsed input encoding: ``name`` (canonical), ``scaling`` (``"centered"`` /
    ``"half"``), ``crop`` (the side ``C`` of the central crop, 0 for none), ``pool`` (the
    block side ``P``, 1 for none)."""

    __slots__ = ()

    @property
    def reduces(self):
        """Whether it maps a square image to fewer inputs (a crop or a pool)."""
        return self.crop > 0 or self.pool > 1

    @property
    def block_shift(self):
        """``log2(P * P)``: the floor mean of a block is its sum shifted right by this."""
        return 2 * (self.pool.bit_length() - 1)

    def fixed_side(self, n_inputs):
        """The image side ``S`` that gives ``n_inputs`` inputs, when only one does (a pool
        without a crop), else None."""
        if self.crop or self.pool == 1:
            return None
        side = _isqrt(n_inputs)
        return side * self.pool if side * side == n_inputs else None

    def n_inputs(self, side=None):
        """Inputs per sample from an ``side x side`` image (``side`` checked; it may be None
        for a crop, whose output does not depend on it)."""
        if side is not None:
            self.check_side(side)
        if self.crop:
            return (self.crop // self.pool) ** 2
        if side is None:
            raise ArgumentError("%r: the number of inputs depends on the image side" % self.name)
        return (side // self.pool) ** 2

    def side_rule(self):
        """The image sides it takes, in words."""
        if self.crop:
            return "S >= %d and S - %d even" % (self.crop, self.crop)
        return "S a multiple of %d" % self.pool

    def check_side(self, side, what="the images"):
        """ShapeError unless an ``S x S`` image can be encoded."""
        C, P = self.crop, self.pool
        if C:
            ok = side >= C and (side - C) % 2 == 0
        else:
            ok = side >= P and side % P == 0
        if not ok:
            raise ShapeError("%s are %d x %d pixels; input encoding %r takes square images of "
                             "S x S pixels with %s" % (what, side, side, self.name,
                                                       self.side_rule()))
        return side

    def check_inputs(self, n_inputs):
        """ArgumentError unless a model with ``n_inputs`` inputs can use this encoding."""
        if not self.reduces:
            return
        if self.crop:
            want = self.n_inputs()
            if n_inputs != want:
                raise ArgumentError(
                    "input encoding %r gives %d inputs (%s), but the model's input layer has "
                    "%d: make the first layer %d wide" % (self.name, want, self.what(),
                                                          n_inputs, want))
        elif self.fixed_side(n_inputs) is None:
            raise ArgumentError(
                "input encoding %r gives (S / %d)^2 inputs from an S x S image, but the "
                "model's input layer has %d, not a square number (28 x 28 images give %d)"
                % (self.name, self.pool, n_inputs, (28 // self.pool) ** 2))

    def what(self, side=None):
        """What it does, in words (for messages and comments)."""
        parts = []
        if self.crop:
            parts.append("the central %d x %d pixels" % (self.crop, self.crop))
        elif side is not None:
            parts.append("the %d x %d image" % (side, side))
        else:
            parts.append("the image")
        if self.pool > 1:
            parts.append("averaged in %d x %d blocks" % (self.pool, self.pool))
            if self.crop:
                parts.append("%d x %d values" % ((self.crop // self.pool,) * 2))
        return ", ".join(parts)


def _isqrt(n):
    return math.isqrt(int(n)) if n >= 0 else -1


_CACHE = {}


def parse_encoding(encoding):
    """The :class:`Encoding` named ``encoding`` (a name, or an Encoding); ArgumentError with
    the grammar for anything else."""
    if isinstance(encoding, Encoding):
        return encoding
    hit = _CACHE.get(encoding) if isinstance(encoding, str) else None
    if hit is not None:
        return hit
    m = _NAME.match(encoding) if isinstance(encoding, str) else None
    if m is None or not encoding or encoding.startswith("-") or encoding.endswith("-"):
        raise ArgumentError("unknown input encoding %r; %s" % (encoding, _GRAMMAR))
    crop = int(m.group("crop") or 0)
    pool = int(m.group("pool") or 1)
    scaling = m.group("scaling")
    if m.group("pool") is not None and pool not in POOLS:
        raise ArgumentError("input encoding %r: pool%d is not supported; the block side P is "
                            "one of %s" % (encoding, pool, ", ".join(map(str, POOLS))))
    if crop and crop % pool:
        raise ArgumentError("input encoding %r: the crop side %d is not a multiple of the "
                            "block side %d" % (encoding, crop, pool))
    parts = (["crop%d" % crop] if crop else []) + (["pool%d" % pool] if pool > 1 else [])
    if not parts and scaling is None:
        raise ArgumentError("unknown input encoding %r; %s" % (encoding, _GRAMMAR))
    scaling = scaling or "half"
    if parts and scaling == "centered":
        parts.append("centered")
    name = "-".join(parts) if parts else scaling
    # the separators must be where the canonical name has them
    spelled = encoding if not encoding.endswith("-half") or not parts else encoding[:-5]
    if spelled != name:
        raise ArgumentError("unknown input encoding %r (did you mean %r?); %s"
                            % (encoding, name, _GRAMMAR))
    enc = Encoding(name, scaling, crop, pool)
    if len(_CACHE) < 256:
        _CACHE[encoding] = enc
    return enc


def check_encoding(encoding, n_inputs=None):
    """The canonical name of ``encoding`` (ArgumentError if it is none); with ``n_inputs``,
    also checks that a model with that many inputs can use it."""
    enc = parse_encoding(encoding)
    if n_inputs is not None:
        enc.check_inputs(int(n_inputs))
    return enc.name


def describe(encoding, side=None):
    """The encoding's exact integer formula, in words (docs, headers, npz metadata)."""
    enc = parse_encoding(encoding)
    if not enc.reduces:
        return ("x = clamp(p - 128, -127, 127): pixel 0 -> -127, 128 -> 0, 255 -> 127"
                if enc.scaling == "centered" else
                "x = p >> 1, in [0, 127]: a dark background is 0")
    C, P, k = enc.crop, enc.pool, enc.block_shift
    image = "the %d x %d image" % (side, side) if side is not None else "the S x S image"
    if C:
        o = ("rows and columns %d..%d" % ((side - C) // 2, (side + C) // 2 - 1)
             if side is not None else "offset (S - %d) / 2" % C)
        text = "the central %d x %d pixels of %s (%s)" % (C, C, image, o)
    else:
        text = image
    out = (C or side or 0) // P
    if P > 1:
        text += (", averaged in %d x %d blocks: q = (sum of the block's %d pixels) >> %d"
                 % (P, P, P * P, k))
    else:
        text += ", q = p"
    if out:
        text += " (%d x %d = %d values, row by row)" % (out, out, out * out)
    if enc.scaling == "half":
        return text + "; x = q >> 1 in [0, 127]%s" % (" (= sum >> %d)" % (k + 1) if P > 1 else "")
    return text + "; x = clamp(q - 128, -127, 127)"


def scale_pixels(p, scaling):
    """uint8 values -> int8 by a per-pixel scaling: ``"centered"`` ``clamp(p - 128, -127,
    127)``, ``"half"`` ``p >> 1``. Any shape."""
    if scaling == "centered":
        return np.clip(p.astype(np.int16) - 128, -127, 127).astype(np.int8)
    if scaling == "half":
        return (p >> 1).astype(np.int8)
    raise ArgumentError("unknown scaling %r; choose one of %s" % (scaling, ", ".join(SCALINGS)))


def _images(x, enc, name):
    """(uint8 (N, S, S), S) from uint8 samples ``x`` of shape (N, S*S), (N, S, S) or those
    with axes of length 1."""
    dims = [d for d in x.shape[1:] if d != 1]
    per = int(np.prod(x.shape[1:]))
    if len(dims) == 2 and dims[0] == dims[1]:
        side = dims[0]
    elif len(dims) <= 1 and _isqrt(per) ** 2 == per:
        side = _isqrt(per)
    else:
        raise ShapeError(
            "%s has uint8 samples of shape %s (%d values); input encoding %r takes square "
            "images: (N, S, S) or (N, S * S) uint8 pixels, row by row, with %s"
            % (name, x.shape[1:], per, enc.name, enc.side_rule()))
    enc.check_side(side, "%s's images" % name)
    return x.reshape(x.shape[0], side, side), side


def reduce_pixels(x, encoding, name="x"):
    """The uint8 values ``q`` an encoding scales (shape (N, n)): for a reducing encoding the
    cropped and block-averaged images (floor means, in [0, 255]), row by row; for a per-pixel
    one the pixels themselves, flattened."""
    enc = parse_encoding(encoding)
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ArgumentError("reduce_pixels() takes uint8 pixels, got dtype %s" % x.dtype)
    if not enc.reduces:
        return x.reshape(x.shape[0], -1)
    if x.ndim < 2:
        raise ShapeError("%s has shape %s; images need a leading sample axis, (N, S, S) or "
                         "(N, S * S)" % (name, x.shape))
    img, side = _images(x, enc, name)
    n = img.shape[0]
    C = enc.crop or side
    o = (side - C) // 2
    img = img[:, o:o + C, o:o + C]
    P = enc.pool
    if P > 1:
        b = C // P
        s = img.reshape(n, b, P, b, P).astype(np.uint16).sum(axis=(2, 4), dtype=np.uint16)
        img = (s >> enc.block_shift).astype(np.uint8)
    return np.ascontiguousarray(img.reshape(n, -1))


def quantize(x, encoding="centered"):
    """uint8 pixels -> int8 inputs by the input encoding ``encoding`` (module docstring).

    A per-pixel encoding (``"centered"``: ``clamp(p - 128, -127, 127)``, docs/rule.md section
    1; ``"half"``: ``p >> 1``) keeps the shape of ``x``; a reducing one (``"crop20-pool2"``,
    ...) takes images (N, S, S) or (N, S * S) and returns (N, n_inputs).
    """
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ArgumentError("quantize() takes uint8 pixels, got dtype %s" % x.dtype)
    enc = parse_encoding(encoding)
    if enc.reduces:
        return scale_pixels(reduce_pixels(x, enc), enc.scaling)
    return scale_pixels(x, enc.scaling)


def image_side(x, encoding, name="x"):
    """The side ``S`` of the uint8 images ``x`` (N, S, S) or (N, S * S) as ``encoding`` reads
    them (checked), or None when the encoding does not reduce or ``x`` is not uint8."""
    enc = parse_encoding(encoding)
    x = np.asarray(x)
    if not enc.reduces or x.dtype != np.uint8 or x.ndim < 2:
        return None
    return _images(x, enc, name)[1]


def _accepts(enc, n_inputs, side):
    """What a reducing model takes, in words."""
    if side is not None:
        images = "uint8 images of %d x %d pixels (%d values)" % (side, side, side * side)
    else:
        images = ("square uint8 images of S x S pixels with %s (e.g. 28 x 28 = 784 values)"
                  % enc.side_rule())
    return ("model (input encoding %r, %d inputs) takes %s, encoded to its %d inputs "
            "(%s), or int8 samples already encoded (%d values)"
            % (enc.name, n_inputs, images, n_inputs, enc.what(side), n_inputs))


def _prepare_images(x, n_inputs, enc, name, side):
    n = x.shape[0]
    per = int(np.prod(x.shape[1:]))
    if x.dtype == np.uint8:
        try:
            img, s = _images(x, enc, name)
        except ShapeError:
            hint = ("; uint8 values are read as raw pixels: pass samples already encoded as "
                    "int8" if per == n_inputs else "")
            raise ShapeError("%s has %d uint8 values per sample (shape %s), not an image the "
                             "encoding takes; the %s%s"
                             % (name, per, x.shape, _accepts(enc, n_inputs, side), hint)) \
                from None
        got = (s // enc.pool) ** 2 if not enc.crop else (enc.crop // enc.pool) ** 2
        if (side is not None and s != side) or got != n_inputs:
            raise ShapeError("%s has %d x %d images (shape %s), which %r encodes to %d inputs; "
                             "the %s" % (name, s, s, x.shape, enc.name, got,
                                         _accepts(enc, n_inputs, side)))
        return scale_pixels(reduce_pixels(img, enc, name), enc.scaling)
    if x.dtype == np.int8:
        if per != n_inputs:
            raise ShapeError("%s has %d int8 values per sample (shape %s); int8 samples are "
                             "taken as already encoded, and the %s"
                             % (name, per, x.shape, _accepts(enc, n_inputs, side)))
        return x.reshape(n, per)
    raise ArgumentError(
        "%s has dtype %s; the %s (floats in [0, 1]: (x * 255).round().astype(np.uint8))"
        % (name, x.dtype, _accepts(enc, n_inputs, side)))


# ---- float features ------------------------------------------------------------------------
#: how :meth:`FeatureScale.fit` chooses the offsets and scales (module docstring), besides a
#: number (a fixed scale for every feature)
SCALE_METHODS = ("std", "minmax", "absmax")
#: the method a model fit on float features without an input scale uses
DEFAULT_SCALE = "std"
#: standard deviations that "std" maps to +-127
STD_SPAN = 3.0


def is_float(x):
    """Whether ``x`` (an array) holds floats (float16/32/64): features for the input scale."""
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def _finite_2d(x, name):
    x = np.asarray(x)
    if x.ndim < 2:
        raise ShapeError("%s has shape %s; it needs a leading sample axis, shape (N, features)"
                         % (name, x.shape))
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if x.shape[0] == 0:
        raise ShapeError("%s is empty (0 samples); pass at least one sample" % name)
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputRangeError("%s has a value that is not a finite number (%r at sample %d, "
                              "feature %d): fill or drop missing values first"
                              % (name, x[i, j], i, j))
    return x


class FeatureScale:
    """How float features become the model's int8 inputs, per feature ``j``:
    ``x[j] = clamp(rint((f[j] - offset[j]) * scale[j]), -127, 127)`` (module docstring).

    ``FeatureScale(offset, scale, method=None)`` with one offset and scale per feature (float64
    arrays); :meth:`fit` chooses them from data; ``method`` records how (``"std"``,
    ``"minmax"``, ``"absmax"``, or the fixed scale as a string). Saved with the model
    (:meth:`to_dict`, :meth:`from_dict`).
    """

    def __init__(self, offset, scale, method=None):
        self.offset = np.array(offset, dtype=np.float64).ravel()
        self.scale = np.array(scale, dtype=np.float64).ravel()
        if self.offset.shape != self.scale.shape or self.offset.size == 0:
            raise ArgumentError("an input scale needs one offset and one scale per feature, got "
                                "%d offsets and %d scales" % (self.offset.size, self.scale.size))
        if not (np.all(np.isfinite(self.offset)) and np.all(np.isfinite(self.scale))
                and np.all(self.scale >= 0)):
            raise ArgumentError("an input scale's offsets must be finite and its scales finite "
                                "and >= 0")
        self.method = None if method is None else str(method)

    @property
    def n_features(self):
        return int(self.offset.size)

    @classmethod
    def fit(cls, x, method=DEFAULT_SCALE, name="x"):
        """The scale ``method`` (one of :data:`SCALE_METHODS`, or a number: that scale for every
        feature, offset 0) fitted on the float features ``x`` (N, features)."""
        method = _scale_method(method)
        f = _finite_2d(x, name)
        n = f.shape[1]
        if not isinstance(method, str):
            return cls(np.zeros(n), np.full(n, method), repr(method))
        if method == "std":
            offset = f.mean(axis=0)
            spread = STD_SPAN * f.std(axis=0)
            top = 127.0
        elif method == "minmax":
            lo, hi = f.min(axis=0), f.max(axis=0)
            offset = (lo + hi) / 2.0
            spread = hi - lo
            top = 254.0
        else:  # absmax
            offset = np.zeros(n)
            spread = np.abs(f).max(axis=0)
            top = 127.0
        with np.errstate(divide="ignore"):
            scale = np.where(spread > 0, top / np.where(spread > 0, spread, 1.0), 0.0)
        return cls(offset, scale, method)

    def apply(self, x, name="x"):
        """``x`` (N, features) floats -> int8 (N, features), C-contiguous."""
        f = _finite_2d(x, name)
        if f.shape[1] != self.n_features:
            raise ShapeError("%s has %d features per sample but the model's input scale was "
                             "fitted on %d" % (name, f.shape[1], self.n_features))
        q = np.rint((f - self.offset) * self.scale)
        return np.ascontiguousarray(np.clip(q, -127, 127).astype(np.int8))

    def to_dict(self):
        """JSON-ready: ``{"method", "offset", "scale"}`` (lists of floats)."""
        return {"method": self.method, "offset": self.offset.tolist(),
                "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d):
        if isinstance(d, FeatureScale):
            return d
        try:
            return cls(d["offset"], d["scale"], d.get("method"))
        except (KeyError, TypeError, AttributeError):
            raise ArgumentError("an input scale is a dict with 'offset' and 'scale' (one number "
                                "per feature), got %r" % (d,)) from None

    def describe(self):
        """The formula, in words (docs, headers)."""
        how = {"std": "offset = mean, scale = 127 / (%g standard deviations)" % STD_SPAN,
               "minmax": "[min, max] of each feature -> [-127, 127]",
               "absmax": "offset 0, scale = 127 / max |f|"}.get(self.method, None)
        if how is None and self.method is not None:
            how = "offset 0, scale %s" % self.method
        return ("x[j] = clamp(rint((f[j] - offset[j]) * scale[j]), -127, 127) for %d float "
                "features%s" % (self.n_features, " (%s, fitted on the training data)" % how
                                if how else ""))

    def __eq__(self, other):
        return (isinstance(other, FeatureScale) and np.array_equal(self.offset, other.offset)
                and np.array_equal(self.scale, other.scale))

    __hash__ = None

    def __repr__(self):
        return "FeatureScale(%d features, method=%r)" % (self.n_features, self.method)


def _scale_method(method):
    """A method name of :data:`SCALE_METHODS` or a positive finite number (float)."""
    if isinstance(method, str):
        m = method.strip().lower()
        if m in SCALE_METHODS:
            return m
        try:
            method = float(m)
        except ValueError:
            raise ArgumentError("unknown input scale %r; choose one of %s, or a number (the "
                                "scale of every feature)" % (method, ", ".join(SCALE_METHODS))) \
                from None
    if isinstance(method, bool) or not isinstance(method, (int, float, np.integer, np.floating)):
        raise ArgumentError("an input scale is one of %s, a number, a FeatureScale or its dict; "
                            "got %r" % (", ".join(SCALE_METHODS), method))
    v = float(method)
    if not (0.0 < v < float("inf")):
        raise ArgumentError("a fixed input scale must be a finite number > 0, got %r" % (method,))
    return v


def make_scale(spec):
    """An input scale from ``spec``: None (none), a method (``"std"``, ``"minmax"``,
    ``"absmax"`` or a number: fitted on the first float features the model is fit on, returned
    as its canonical name / float), a :class:`FeatureScale` or its dict (fitted)."""
    if spec is None or isinstance(spec, FeatureScale):
        return spec
    if isinstance(spec, dict):
        if "offset" not in spec and spec.get("method") is not None:
            return _scale_method(spec["method"])
        return FeatureScale.from_dict(spec)
    return _scale_method(spec)


def prepare_x(x, n_inputs, encoding, name="x", side=None, scale=None):
    """``x`` as a C-contiguous int8 array (N, n_inputs) for the core (see the module
    docstring); ``name`` is the argument's name in error messages. For a reducing encoding
    ``side``, when not None, is the only image side taken. ``scale``: the model's fitted
    :class:`FeatureScale`, which float features need (None: floats are refused)."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise ArgumentError("%s must be a NumPy array of shape (N, ...), got %s"
                            % (name, type(x).__name__))
    enc = parse_encoding(encoding)
    if x.ndim < 2:
        raise ShapeError(
            "%s has shape %s; it needs a leading sample axis, shape (N, ...) with %d values "
            "per sample (for a single sample use %s[None])" % (name, x.shape, n_inputs, name))
    n = x.shape[0]
    if n == 0:
        raise ShapeError("%s is empty (0 samples); pass at least one sample" % name)
    if is_float(x) and isinstance(scale, FeatureScale) and not enc.reduces:
        if scale.n_features != n_inputs:
            raise ShapeError("the model's input scale has %d features but its input layer "
                             "takes %d" % (scale.n_features, n_inputs))
        return scale.apply(x, name)
    if enc.reduces:
        x8 = _prepare_images(x, n_inputs, enc, name, side)
    else:
        per = int(np.prod(x.shape[1:]))
        if per != n_inputs:
            raise ShapeError(
                "%s has %d values per sample (shape %s) but the model's input layer takes %d"
                % (name, per, x.shape, n_inputs))
        if x.dtype == np.uint8:
            x8 = scale_pixels(x, enc.scaling)
        elif x.dtype == np.int8:
            x8 = x
        else:
            raise ArgumentError(
                "%s has dtype %s; pass uint8 pixels (quantized by the model's input encoding), "
                "int8 values in [-127, 127], or float features with an input scale (fit sets "
                "one on float features, see flipnet.inputs.FeatureScale; images as floats in "
                "[0, 1]: (x * 255).round().astype(np.uint8))" % (name, x.dtype))
        x8 = x8.reshape(n, per)
    if x.dtype == np.int8 and np.any(x8 == -128):
        raise InputRangeError(
            "%s contains -128; int8 inputs must be in [-127, 127] "
            "(clip them with np.clip(%s, -127, 127))" % (name, name))
    return np.ascontiguousarray(x8)


def prepare_y(y, n, n_classes, name="y"):
    """``y`` as a C-contiguous uint16 array (n,) of class indices in ``[0, n_classes)``."""
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
        raise ArgumentError("%s must hold integer class indices, got dtype %s" % (name, y.dtype))
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= n_classes:
        raise LabelError("%s has labels in [%d, %d] but the model has %d classes: labels "
                         "must be in [0, %d]" % (name, lo, hi, n_classes, n_classes - 1))
    return np.ascontiguousarray(y, dtype=np.uint16)
