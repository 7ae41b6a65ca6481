"""Host-side training schedules and data order.

The core only ever sees integers: per step and per layer a count ``k`` of weights to select
and a change probability ``p_q16`` in Q16 (65536 = 1.0). The float math here (linear decays,
fractions of a layer's weights) is host-side schedule computation only; :meth:`Schedule.step_params`
converts it to those integers (``k = max(1, round(frac * n * m))`` capped at ``n * m``,
``p_q16 = round(p * 65536)``), so the core and a device never see a float.

Data order: :func:`shuffle_order` gives the order of epoch ``e`` as the argsort (stable) of
the 64-bit keys ``flipnet_rand(seed, stream(SHUFFLE=3, 0, e), i)`` for sample ``i``
(docs/rule.md section 6). It is a pure function of (seed, epoch, n), reproducible on any
machine; :func:`flipnet_rand` here is a vectorized NumPy twin of the core's function.
"""

import math

import numpy as np

from . import recipes as _recipes
from . import reference as _ref
from .errors import ArgumentError
from .rule import RANGES

__all__ = ["Schedule", "flipnet_rand", "stream", "shuffle_order", "PURPOSE_INIT",
           "PURPOSE_FLIP", "PURPOSE_SHUFFLE"]

PURPOSE_INIT = 1
PURPOSE_FLIP = 2
PURPOSE_SHUFFLE = 3


def stream(purpose, layer, step):
    """``(purpose << 56) | (layer << 48) | (step mod 2^48)`` (docs/rule.md section 6)."""
    return _ref.stream(int(purpose), int(layer), int(step))


def flipnet_rand(seed, stream_id, index):
    """The core's counter-based RNG in NumPy (the reference's): uint64 array for an array of
    indices."""
    return _ref.rand(int(seed) & ((1 << 64) - 1), int(stream_id) & ((1 << 64) - 1), index)


def shuffle_order(n, seed, epoch):
    """Order of the ``n`` samples in epoch ``epoch`` (int64 permutation of ``range(n)``)."""
    keys = flipnet_rand(seed, stream(PURPOSE_SHUFFLE, 0, epoch), np.arange(n, dtype=np.uint64))
    return np.argsort(keys, kind="stable").astype(np.int64)


def _lerp(a, b, t):
    return a + (b - a) * t


class Schedule:
    """Per-step k and p for each layer, from recipe values.

    ``p`` decays linearly from ``p0`` at step 0 to ``p1`` at the last step of the run;
    ``k_frac`` (a float, or one per layer) is constant, or decays linearly to ``k_frac_end``.
    ``margin``, ``recalibrate_every`` (epochs), ``recalibrate_steps`` (steps) and
    ``recalibrate_from`` (0: recalibrations set every hidden layer's shift; 1: the first
    layer's keeps its first calibration) are carried for the training loop. With hysteresis
    counters, ``counter_shift_end`` (None = constant) anneals the counters' shift from the
    rule's ``counter_shift`` ``c0`` up to ``c1``: the run is cut into ``c1 - c0 + 1`` equal
    parts, part ``i`` uses shift ``c0 + i`` (each step of the shift halves the evidence one
    batch adds, so late changes need more agreement).
    """

    def __init__(self, p0=None, p1=None, k_frac=None, k_frac_end=None, margin=None,
                 recalibrate_every=None, recipe=None, recalibrate_steps=None,
                 counter_shift_end=None, recalibrate_until=None, recalibrate_from=None):
        r = _recipes.get(recipe)
        self.recalibrate_from = int(r.get("recalibrate_from", 0) if recalibrate_from is None
                                    else recalibrate_from)
        if self.recalibrate_from not in (0, 1):
            raise ArgumentError("recalibrate_from must be 0 (every hidden layer) or 1 (keep the "
                                "first layer's shift), got %r" % (self.recalibrate_from,))
        self.recalibrate_until = float(r.get("recalibrate_until", 1.0) if recalibrate_until is None
                                       else recalibrate_until)
        if not 0.0 <= self.recalibrate_until <= 1.0:
            raise ArgumentError("recalibrate_until must be a fraction in [0, 1], got %r"
                                % (self.recalibrate_until,))
        self.counter_shift = int(r["counter_shift"])
        self.counter_shift_end = (r.get("counter_shift_end") if counter_shift_end is None
                                  else counter_shift_end)
        if self.counter_shift_end is not None:
            self.counter_shift_end = int(self.counter_shift_end)
            hi = RANGES["counter_shift"][1]
            if not self.counter_shift <= self.counter_shift_end <= hi:
                raise ArgumentError("counter_shift_end must be in [counter_shift (%d), %d], got %d"
                                    % (self.counter_shift, hi, self.counter_shift_end))
        self.p0 = float(r["p0"] if p0 is None else p0)
        self.p1 = float(r["p1"] if p1 is None else p1)
        self.k_frac = r["k_frac"] if k_frac is None else k_frac
        self.k_frac_end = r["k_frac_end"] if k_frac_end is None else k_frac_end
        self.margin = r["margin"] if margin is None else margin
        self.recalibrate_every = int(r["recalibrate_every"] if recalibrate_every is None
                                     else recalibrate_every)
        self.recalibrate_steps = int(r["recalibrate_steps"] if recalibrate_steps is None
                                     else recalibrate_steps)
        for name in ("p0", "p1"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0) or math.isnan(v):
                raise ArgumentError("%s must be a probability in [0, 1], got %r" % (name, v))
        for name in ("k_frac", "k_frac_end"):
            v = getattr(self, name)
            if v is None:
                continue
            for f in (v if isinstance(v, (list, tuple)) else [v]):
                if not (0.0 <= float(f) <= 1.0):
                    raise ArgumentError("%s must be a fraction in [0, 1], got %r" % (name, f))
        if self.margin is not None and int(self.margin) < 0:
            raise ArgumentError("margin must be >= 0, got %r" % (self.margin,))
        if self.recalibrate_every < 0:
            raise ArgumentError("recalibrate_every must be >= 0")
        if self.recalibrate_steps < 0:
            raise ArgumentError("recalibrate_steps must be >= 0")

    @classmethod
    def from_recipe(cls, recipe):
        r = _recipes.get(recipe)
        return cls(p0=r["p0"], p1=r["p1"], k_frac=r["k_frac"], k_frac_end=r["k_frac_end"],
                   margin=r["margin"], recalibrate_every=r["recalibrate_every"], recipe=r,
                   recalibrate_steps=r["recalibrate_steps"],
                   counter_shift_end=r.get("counter_shift_end"),
                   recalibrate_until=r.get("recalibrate_until"),
                   recalibrate_from=r.get("recalibrate_from"))

    def to_dict(self):
        return {"p0": self.p0, "p1": self.p1, "k_frac": self.k_frac,
                "k_frac_end": self.k_frac_end, "margin": self.margin,
                "recalibrate_every": self.recalibrate_every,
                "recalibrate_steps": self.recalibrate_steps,
                "recalibrate_until": self.recalibrate_until,
                "recalibrate_from": self.recalibrate_from, "p_decay": "linear",
                "counter_shift": self.counter_shift, "counter_shift_end": self.counter_shift_end}

    def __repr__(self):
        return "Schedule(%s)" % ", ".join("%s=%r" % kv for kv in self.to_dict().items())

    @staticmethod
    def _per_layer(v, n_layers, name):
        if isinstance(v, (list, tuple)):
            if len(v) != n_layers:
                raise ArgumentError("%s has %d values but the model has %d layers"
                                    % (name, len(v), n_layers))
            return [float(f) for f in v]
        return [float(v)] * n_layers

    def progress(self, step, total_steps):
        return 0.0 if total_steps <= 1 else min(1.0, max(0.0, step / (total_steps - 1)))

    def p_at(self, step, total_steps):
        return _lerp(self.p0, self.p1, self.progress(step, total_steps))

    def k_frac_at(self, step, total_steps, n_layers):
        f0 = self._per_layer(self.k_frac, n_layers, "k_frac")
        if self.k_frac_end is None:
            return f0
        f1 = self._per_layer(self.k_frac_end, n_layers, "k_frac_end")
        t = self.progress(step, total_steps)
        return [_lerp(a, b, t) for a, b in zip(f0, f1)]

    def counter_shift_at(self, step, total_steps):
        """The counters' shift at ``step`` (see the class docstring)."""
        c0, c1 = self.counter_shift, self.counter_shift_end
        if c1 is None or total_steps <= 0:
            return c0
        return min(c1, c0 + ((c1 - c0 + 1) * step) // total_steps)

    def step_params(self, step, total_steps, layer_shapes):
        """Integer parameters of one step: (k list, p_q16 list), one value per layer.

        ``layer_shapes`` is a list of (n, m) per layer.
        """
        fracs = self.k_frac_at(step, total_steps, len(layer_shapes))
        p_q16 = min(65536, max(0, int(round(self.p_at(step, total_steps) * 65536))))
        ks = []
        for (n, m), f in zip(layer_shapes, fracs):
            w = n * m
            k = 0 if f <= 0 else max(1, int(round(f * w)))
            ks.append(min(k, w))
        return ks, [p_q16] * len(layer_shapes)
