"""The training rule's options (docs/rule.md): their codes in the core's ``flipnet_rule`` and
their ranges, checked here and nowhere else in Python (the model, the command line's option
types and the device protocol read these tables). Pure Python.
"""

import numpy as np

from . import recipes as _recipes
from .arch import lookup
from .errors import ArgumentError

__all__ = ["VOTES", "FILTERS", "BACKPROPS", "ROUNDINGS", "RANGES", "COUNTER_BITS", "check",
           "check_counter_bits"]

#: ``vote`` -> ``flipnet_vote``
VOTES = {"sign": 0, "weighted": 1}
#: ``filter`` -> ``flipnet_filter``
FILTERS = {"hurt": 0, "net": 1}
#: ``backprop`` -> ``flipnet_backprop``
BACKPROPS = {"sign": 0}
#: ``counter_round`` -> ``flipnet_round`` (docs/rule.md 7.1, 7.2)
ROUNDINGS = {"nearest": 0, "stochastic": 1}
#: the counter widths the core keeps (bits per counter)
COUNTER_BITS = (8, 4, 2)
#: the small integer options and their ranges (lowest, highest), as the core checks them
RANGES = {"calib_target": (1, 127), "counter_shift": (0, 31), "counter_threshold": (0, 127),
          "counter_decay": (0, 7)}


def check(options, has_counters):
    """The rule of ``options`` (a recipe or a rule dict: ``vote``, ``filter``, ``backprop``,
    ``margin``, and the keys of :data:`RANGES`, which default to the paper's) as the core's
    codes, a dict keyed by ``flipnet.recipes.RULE_KEYS``. ``has_counters``: the model keeps
    hysteresis counters (counter_threshold > 0 needs them). ArgumentError says what is wrong.
    """
    codes = {"vote": lookup(VOTES, options["vote"], "vote"),
             "filter": lookup(FILTERS, options["filter"], "filter"),
             "backprop": lookup(BACKPROPS, options["backprop"], "backprop mode"),
             "counter_round": lookup(ROUNDINGS, options.get("counter_round", "nearest"),
                                     "counter rounding")}
    margin = int(options["margin"])
    if not 0 <= margin < 2 ** 31:
        raise ArgumentError("margin must be in [0, 2**31), got %d" % margin)
    codes["margin"] = margin
    for key, (lo, hi) in RANGES.items():
        v = options.get(key, _recipes.PAPER[key])
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ArgumentError("%s must be an integer in [%d, %d], got %r" % (key, lo, hi, v))
        codes[key] = int(v)
    if codes["counter_threshold"] > 0 and not has_counters:
        raise ArgumentError(
            "counter_threshold=%d needs a model with counters; this one has none (create it "
            "with counter_threshold > 0 or counters=True)" % codes["counter_threshold"])
    if codes["counter_round"] != ROUNDINGS["nearest"] and codes["counter_threshold"] == 0:
        raise ArgumentError(
            "counter_round=stochastic rounds the hysteresis counters' increments, which are off "
            "(counter_threshold=0); set counter_threshold > 0 or counter_round=nearest")
    if codes["counter_decay"] > 0 and codes["counter_threshold"] == 0:
        raise ArgumentError(
            "counter_decay=%d acts on the hysteresis counters, which are off "
            "(counter_threshold=0); set counter_threshold > 0 or counter_decay=0"
            % codes["counter_decay"])
    return codes


def check_counter_bits(bits, n_layers):
    """Counter widths per layer from ``bits`` (one of :data:`COUNTER_BITS` for every layer, or
    a list with one per layer), a list; ArgumentError says what is wrong."""
    values = list(bits) if isinstance(bits, (list, tuple)) else [bits] * n_layers
    if len(values) != n_layers:
        raise ArgumentError("%d counter widths given for %d layers" % (len(values), n_layers))
    for v in values:
        if (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                or int(v) not in COUNTER_BITS):
            raise ArgumentError("counter_bits must be one of %s (bits per hysteresis counter), "
                                "got %r" % (", ".join(map(str, COUNTER_BITS)), v))
    return [int(v) for v in values]
