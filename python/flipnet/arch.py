"""Layer kinds and architectures: the one table of the core's layer kinds, and the parsers of
layer sizes (``"784-256-256-10"``) and kind lists, for the model, the exporters, the command
line and the device tools.

Pure Python: the core (``flipnet._core``) is loaded only when :func:`parse_sizes` checks sizes
against its limits without being given them.
"""

import numpy as np

from .errors import ArgumentError, ShapeError

__all__ = ["KINDS", "KIND_NAMES", "INTEGER_KINDS", "MODEL_KINDS", "kind_name", "lookup",
           "name_of", "parse_sizes", "hybrid_kinds", "kinds_name", "parse_kinds"]

#: layer kind -> the core's ``flipnet_kind`` code
KINDS = {"ternary": 1, "binary": 2, "fp32": 3}
#: ``flipnet_kind`` code -> layer kind
KIND_NAMES = {v: k for k, v in KINDS.items()}
#: the kinds of the integer-only inference path (the device, the C header, ONNX export)
INTEGER_KINDS = ("ternary", "binary")
#: names for whole-model kind choices, besides the layer kinds
MODEL_KINDS = ("ternary", "binary", "fp32", "hybrid")


def kind_name(code):
    """The name of a ``flipnet_kind`` code, or the code itself (an int) if it has none."""
    return KIND_NAMES.get(int(code), int(code))


def lookup(table, value, what):
    """The code of ``value`` in ``table`` (name -> code): a name (any case) or a code the table
    holds; ArgumentError naming ``what`` and the choices otherwise."""
    if isinstance(value, str):
        key = value.lower()
        if key in table:
            return table[key]
    elif isinstance(value, (int, np.integer)) and int(value) in table.values():
        return int(value)
    raise ArgumentError("unknown %s %r; choose one of %s" % (what, value, ", ".join(table)))


def name_of(table, code):
    """The name of ``code`` in ``table`` (name -> code), or the code (an int) if it has none."""
    for k, v in table.items():
        if v == code:
            return k
    return int(code)


def parse_sizes(sizes, max_layers=None, max_width=None):
    """Layer sizes (a list of ints) from a list of ints or an ``"784-256-256-10"`` string
    (``x`` and ``,`` also separate), checked: at least 2 sizes, at most ``max_layers`` layers,
    each size in ``[1, max_width]``, at least 2 classes. The limits default to the core's
    (FLIPNET_MAX_LAYERS, FLIPNET_MAX_WIDTH). ShapeError says what is wrong."""
    if max_layers is None or max_width is None:
        from ._ffi import lib

        max_layers = lib.FLIPNET_MAX_LAYERS if max_layers is None else max_layers
        max_width = lib.FLIPNET_MAX_WIDTH if max_width is None else max_width
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
    if len(sizes) - 1 > max_layers:
        raise ShapeError("%d layers requested; the core supports at most %d"
                         % (len(sizes) - 1, max_layers))
    for s in sizes:
        if not 1 <= s <= max_width:
            raise ShapeError("layer size %d out of range [1, %d] in %r" % (s, max_width, sizes))
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


def parse_kinds(kinds, n_layers):
    """``flipnet_kind`` codes, one per layer, from one kind for all layers (name or code),
    ``"hybrid"``, or a list of one kind per layer."""
    if isinstance(kinds, str) and kinds.lower() == "hybrid":
        kinds = hybrid_kinds(n_layers)
    if isinstance(kinds, (str, int, np.integer)):
        kinds = [kinds] * n_layers
    kinds = list(kinds)
    if len(kinds) != n_layers:
        raise ShapeError("%d layer kinds given for %d layers" % (len(kinds), n_layers))
    return [lookup(KINDS, k, "layer kind") for k in kinds]
