"""Training from a stream: an iterable of ``(x, y)`` batches (a generator reading a sensor, a
list of pairs, ...) cut into training steps of a fixed number of samples.

``Model.fit(batches)`` and ``DeviceModel.fit(batches)`` (:mod:`flipnet.device.model`) train
on the samples in the order they arrive: the samples of all batches, one after the other, in
steps of ``batch_size`` (the last step of a finite stream may be smaller), whatever the sizes
of the batches given: a sensor that yields one sample at a time trains in steps of
``batch_size`` all the same. So a stream of ``(x[i:i + b], y[i:i + b])`` trains exactly like
``fit(x, y, shuffle=False)`` (with ``steps`` = the number of steps, see :func:`check_steps`).
"""

import numpy as np

from .errors import ArgumentError

__all__ = ["Stream", "check_steps", "is_stream"]


def is_stream(x, y):
    """Whether ``fit(x, y)`` was given a stream of batches: ``y`` is None."""
    return y is None


def check_steps(steps, epochs):
    """``steps`` (the run's length in steps, the schedule's horizon; None: unknown) checked;
    a stream is one pass (``epochs`` None or 1)."""
    if epochs not in (None, 1):
        raise ArgumentError("a stream of (x, y) batches is trained in one pass: epochs must be 1 "
                            "(or None), got %r; pass arrays fit(x, y, epochs=...) to train "
                            "for several epochs" % (epochs,))
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ArgumentError("steps must be a positive integer (the number of training steps "
                            "the stream will give, for the schedule), got %r" % (steps,))
    return int(steps)


class Stream:
    """The samples of ``batches`` (an iterable of ``(x, y)`` pairs), encoded by
    ``encode(x, y) -> (x8, y16)`` as they arrive, in steps of ``batch_size`` samples.

    Iterate it for the steps (``(x8, y16)`` arrays); :meth:`peek` reads ahead (e.g. the
    samples to calibrate on before the first step). ``samples`` counts what was read.
    """

    def __init__(self, batches, batch_size, encode):
        try:
            self._it = iter(batches)
        except TypeError:
            raise ArgumentError("fit(batches) takes an iterable of (x, y) batches (a generator, "
                                "a list of pairs), got %s; for arrays pass fit(x, y)"
                                % type(batches).__name__) from None
        self.batch_size = int(batch_size)
        self._encode = encode
        self._x, self._y = [], []
        self._held = 0
        self._done = False
        self.samples = 0
        self.batches = 0

    def _read(self):
        try:
            item = next(self._it)
        except StopIteration:
            self._done = True
            return
        self.batches += 1
        try:
            xb, yb = item
        except (TypeError, ValueError):
            raise ArgumentError("batch %d of the stream is not a pair (x, y): each item must be "
                                "(samples, labels), e.g. (x[i:i + 8], y[i:i + 8])"
                                % self.batches) from None
        x8, y16 = self._encode(xb, yb)
        if len(x8):
            self._x.append(x8)
            self._y.append(y16)
            self._held += len(x8)
            self.samples += len(x8)

    def _join(self):
        if len(self._x) > 1:
            self._x = [np.concatenate(self._x)]
            self._y = [np.concatenate(self._y)]

    def peek(self, n):
        """The next ``n`` samples' x8 (fewer if the stream ends first), not consumed."""
        while self._held < n and not self._done:
            self._read()
        if not self._held:
            return None
        self._join()
        return self._x[0][:n]

    def __iter__(self):
        B = self.batch_size
        while True:
            while self._held < B and not self._done:
                self._read()
            if not self._held:
                return
            self._join()
            x, y = self._x[0], self._y[0]
            take = min(B, self._held)
            self._x, self._y = [x[take:]], [y[take:]]
            self._held -= take
            yield np.ascontiguousarray(x[:take]), np.ascontiguousarray(y[:take])
