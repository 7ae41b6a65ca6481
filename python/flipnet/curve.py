"""Training curves: what a run looked like every N samples, for plots (:mod:`flipnet.plots`)
and for the model file's history.

A :class:`Curve` takes every training step's result (samples, correct, weight changes per
layer) and keeps one point every ``every`` samples::

    {"samples": 4096,                 # training samples seen in this session so far
     "steps": 512,                    # training steps so far
     "train_accuracy": 0.91,          # running accuracy of the forward passes since the
                                      #   previous point (the window)
     "changes": [310, 12],            # weights changed per layer in the window
     "val_accuracy": 0.93}            # only where the run measured it (None elsewhere)

Host fits (:func:`flipnet.training.fit`), device sessions (:class:`flipnet.device.model.DeviceModel`
and ``flipnet device train``) record one in their session record (``"curve"``), which the
model file keeps (:attr:`flipnet.Model.training_log`); ``History.curve`` has the points of
a fit.
"""

__all__ = ["Curve", "auto_every", "POINTS"]

#: points a curve aims at when its ``every`` is chosen for a run of known length
POINTS = 64


def auto_every(total_samples, batch, points=POINTS):
    """Samples between two points: about ``points`` points over ``total_samples`` (None: a
    stream of unknown length, a point every 32 batches), a whole number of batches."""
    batch = max(1, int(batch))
    if not total_samples:
        return 32 * batch
    steps = -(-int(total_samples) // batch)
    return max(1, -(-steps // points)) * batch


class Curve:
    """Points every ``every`` samples of a run of ``n_layers`` layers (module docstring)."""

    def __init__(self, every, n_layers):
        self.every = max(1, int(every))
        self.n_layers = int(n_layers)
        self.points = []
        self.samples = self.steps = 0
        self._window()

    def _window(self):
        self.w_samples = self.w_correct = 0
        self.w_changes = [0] * self.n_layers

    def step(self, samples, correct, changes):
        """One training step: ``samples`` trained, ``correct`` of them right in its forward
        pass, ``changes`` weights changed per layer. Returns the new point, or None."""
        self.samples += int(samples)
        self.steps += 1
        self.w_samples += int(samples)
        self.w_correct += int(correct)
        for i, c in enumerate(changes):
            self.w_changes[i] += int(c)
        if self.w_samples >= self.every:
            return self._point()
        return None

    def _point(self):
        p = {"samples": self.samples, "steps": self.steps,
             "train_accuracy": self.w_correct / self.w_samples,
             "changes": list(self.w_changes), "val_accuracy": None}
        self.points.append(p)
        self._window()
        return p

    def flush(self):
        """The last point, of the samples since the previous one (None if there are none)."""
        return self._point() if self.w_samples else None

    def set_validation(self, accuracy):
        """Record ``accuracy`` (validation, measured now) on the latest point, making one for
        the samples since the previous point if needed."""
        p = self.flush() or (self.points[-1] if self.points else None)
        if p is not None:
            p["val_accuracy"] = None if accuracy is None else float(accuracy)
        return p
