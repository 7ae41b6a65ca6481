"""Inputs and labels as the core takes them, checked (pure NumPy).

``x`` is any array of shape ``(N, ...)``; everything after the first axis is flattened to the
model's input width. Two dtypes are accepted:

* ``uint8`` (pixels): quantized to int8 by the model's input encoding (recipe key ``input``,
  stored in the model file): ``"centered"`` = ``clamp(p - 128, -127, 127)`` (the paper's
  reading, docs/rule.md §1) or ``"half"`` = ``p >> 1`` in ``[0, 127]`` (a dark background is 0
  and casts no vote; the default recipe's choice, see docs/benchmarks.md),
* ``int8`` already in ``[-127, 127]`` (the value -128 is rejected); used as given.

Labels ``y`` are 1-D integer class indices in ``[0, classes)``. Problems are reported with
``ValueError`` subclasses from :mod:`flipnet.errors` saying what was wrong and what to do.
"""

import numpy as np

from .errors import ArgumentError, InputRangeError, LabelError, ShapeError

__all__ = ["INPUT_ENCODINGS", "quantize", "check_encoding", "prepare_x", "prepare_y"]

#: how uint8 pixels become int8 inputs
INPUT_ENCODINGS = ("centered", "half")


def check_encoding(encoding):
    """``encoding`` if it is one of :data:`INPUT_ENCODINGS`, else ArgumentError."""
    if encoding not in INPUT_ENCODINGS:
        raise ArgumentError("unknown input encoding %r; choose one of %s"
                            % (encoding, ", ".join(INPUT_ENCODINGS)))
    return encoding


def quantize(x, encoding="centered"):
    """uint8 pixels -> int8 inputs.

    ``"centered"``: ``clamp(p - 128, -127, 127)`` (docs/rule.md section 1);
    ``"half"``: ``p >> 1``, in ``[0, 127]``.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ArgumentError("quantize() takes uint8 pixels, got dtype %s" % x.dtype)
    if check_encoding(encoding) == "centered":
        return np.clip(x.astype(np.int16) - 128, -127, 127).astype(np.int8)
    return (x >> 1).astype(np.int8)  # "half"


def prepare_x(x, n_inputs, encoding, name="x"):
    """``x`` as a C-contiguous int8 array (N, n_inputs) for the core (see the module
    docstring); ``name`` is the argument's name in error messages."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise ArgumentError("%s must be a NumPy array of shape (N, ...), got %s"
                            % (name, type(x).__name__))
    if x.ndim < 2:
        raise ShapeError(
            "%s has shape %s; it needs a leading sample axis, shape (N, ...) with %d values "
            "per sample (for a single sample use %s[None])" % (name, x.shape, n_inputs, name))
    n = x.shape[0]
    if n == 0:
        raise ShapeError("%s is empty (0 samples); pass at least one sample" % name)
    per = int(np.prod(x.shape[1:]))
    if per != n_inputs:
        raise ShapeError(
            "%s has %d values per sample (shape %s) but the model's input layer takes %d"
            % (name, per, x.shape, n_inputs))
    if x.dtype == np.uint8:
        x8 = quantize(x, encoding)
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
