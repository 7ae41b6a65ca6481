"""A model on a device, shaped like :class:`flipnet.Model`: ``flipnet.connect(port)``.

    import flipnet
    with flipnet.connect("/dev/ttyACM0", [60, 64, 4]) as dev:   # or "twin", "qemu", a URL
        history = dev.fit(x, y, epochs=10, validation_data=(xt, yt))   # trained on the board
        print(dev.evaluate(xt, yt))                              # computed on the board
        dev.save("motions.flip")                                 # pulled, with its history
        model = dev.pull()                                       # a flipnet.Model

The same calls, argument names, errors and :class:`flipnet.History` as ``flipnet.Model``, so
code moves between the host and a board by changing the line that makes the model. Every
training step is one TRAIN frame; the client retransmits until it has the reply and the
device answers a repeated frame from its cache (docs/protocol.md), so each batch is applied
exactly once however the link behaves. ``fit`` also takes a stream, an iterable of ``(x, y)``
batches (a sensor feed), cut into steps of ``batch_size`` samples as they arrive
(:mod:`flipnet.stream`): the same model as ``fit`` on the same arrays with ``shuffle=False``.

What runs where: the host encodes the samples (the input encoding, the input scale of float
features: :mod:`flipnet.inputs`), decides the data order and the schedule (k and p of every
step, the counters' shift, calibrations) exactly as :func:`flipnet.device.session.train_on_device`
does; the device trains, evaluates and predicts. The device keeps no metadata, so what the
model file says beyond the core state (recipe, input encoding and scale, history, ``meta``)
is kept here and goes into the file :meth:`DeviceModel.pull` returns.
"""

import time

import numpy as np

from .. import progress as _progress
from .. import recipes as _recipes
from ..arch import parse_sizes
from ..curve import Curve, auto_every
from ..errors import ArgumentError
from ..inputs import (DEFAULT_SCALE, FeatureScale, check_encoding, image_side, is_float,
                      make_scale, parse_encoding, prepare_x, prepare_y)
from ..metadata import Provenance, timestamp
from ..schedule import Schedule, shuffle_order
from ..stream import Stream, check_steps
from ..training import History, make_schedule
from . import plan as _plan
from .client import Device, DeviceError

__all__ = ["DeviceModel", "connect", "configure_options", "step_flags"]


def configure_options(rule, recipe, kinds, seed, batch, margin):
    """CONFIGURE's keyword arguments for a fresh model (:meth:`Device.configure`): the rule's
    vote, filter, backprop and ``margin``, and the newer rule options where ``recipe`` sets
    them away from their defaults; the counters' width (one for every layer)."""
    cfg = dict(kinds=kinds, seed=seed, batch=batch, vote=rule["vote"], filter=rule["filter"],
               backprop=rule["backprop"], margin=int(margin))
    for key, default in (("calib_target", 32), ("counters", False), ("counter_shift", 0),
                         ("counter_threshold", 0), ("counter_decay", 0),
                         ("counter_round", "nearest")):
        if recipe.get(key, default) != default:
            cfg[key] = recipe[key]
    if int(recipe.get("counter_threshold", 0)) > 0 or recipe.get("counters"):
        widths = recipe.get("counter_bits", 8)
        if isinstance(widths, (list, tuple)):
            if len(set(widths)) != 1:
                raise ArgumentError("a device takes one counter width for every layer "
                                    "(CONFIGURE); got %s" % (widths,))
            widths = widths[0]
        cfg["counters"] = int(widths)
    return cfg


def step_flags(sched, step, total, first_in_epoch, epoch, calibrated, steps0, anneal):
    """What a TRAIN frame asks besides the step, as ``train_on_device`` decides it: (calibrate
    before, calibrate after, calibrate_from, counter shift or None). ``step``: the step's index
    in this run of ``total`` steps (None: a stream of unknown length); ``epoch``: its epoch's
    index in this run; ``calibrated``: the model's shifts were set before the run; ``steps0``:
    the model's step counter at the run's start."""
    cal = first_in_epoch and ((epoch == 0 and not calibrated) or (
        epoch > 0 and sched.recalibrate_every and epoch % sched.recalibrate_every == 0))
    every = sched.recalibrate_steps
    until = sched.recalibrate_until * total if total is not None else float("inf")
    after = bool(every and (steps0 + step + 1) % every == 0 and step + 1 <= until)
    keep = sched.recalibrate_from if (after or (cal and epoch > 0)) else 0
    if not anneal:
        shift = None
    elif total is None:
        shift = sched.counter_shift_at(0, 1)
    else:
        shift = sched.counter_shift_at(step, total)
    return bool(cal), after, keep, shift


def _step_params(sched, step, total, shapes):
    if total is None:  # a stream without a known end: always at the run's start
        return sched.step_params(0, 1, shapes)
    return sched.step_params(step, total, shapes)


class DeviceModel:
    """A model trained and run on a device (module docstring); made by :func:`connect`.

    ``device``: a :class:`flipnet.device.Device` or any object with its interface (the host
    twin's, QEMU's, :class:`flipnet.device.session.InProcessTwin`). ``sizes`` (e.g. ``[60, 64,
    4]``; None: from the first fit's data, ``[inputs, h, classes]`` with h the widest hidden
    layer that trains in the device's RAM, :func:`flipnet.device.plan.largest_hidden`),
    ``kinds`` (``"ternary"`` / ``"binary"``), ``seed``, ``recipe`` (default ``"device"``,
    :data:`flipnet.recipes.DEVICE`), ``input`` (the input encoding; default the recipe's, or
    ``"half"`` for samples that are not square images) and ``input_scale`` (float features,
    :class:`flipnet.inputs.FeatureScale`; fitted on the first fit's floats) as for
    :class:`flipnet.Model`. ``model``: start from a model instead of a fresh one (a
    ``flipnet.Model``, its file's bytes or path: loaded onto the device), or ``"device"``: the
    model the device holds.
    """

    def __init__(self, device, sizes=None, kinds="ternary", seed=0, recipe=None, input=None,
                 input_scale=None, model=None, close=None):
        self.device = device
        self._close = close
        self.recipe = _recipes.get("device" if recipe is None else recipe)
        self._explicit_input = input is not None
        if input is not None:
            self.recipe["input"] = check_encoding(input)
        self.sizes = parse_sizes(sizes) if sizes is not None else None
        self.kinds = kinds
        self.seed = int(seed)
        self._input_scale = make_scale(input_scale)
        self.image_side = None
        self.provenance = Provenance()
        self.meta = {}
        self.batch_size = None     # the batch the device's model was sized for
        self.steps = self.samples = 0
        self._ready = False        # a model this object knows is on the device
        if self.sizes is not None:
            self._check_encoding()
        info = device.info()
        if info.get("inference_only") and info.get("model"):
            m = info["model"]
            self.sizes, self.kinds, self.seed = list(m["sizes"]), m["kinds"], int(m["seed"])
            self.recipe["input"] = m["input"]
            self.steps, self.samples = int(m["steps"]), int(m["samples"])
            self.batch_size = info["max_batch"]
            self._ready = True
        if model is not None:
            if isinstance(model, str) and model == "device":
                self._adopt_device_model()
            else:
                self.load(model)

    # ---- lifetime ---------------------------------------------------------------------
    def close(self):
        """Close the connection (and stop the twin / QEMU that :func:`connect` started)."""
        close = getattr(self.device, "close", None)
        if close is not None:
            close()
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "DeviceModel(%s, %s, seed=%d, steps=%d)" % (
            getattr(self.device, "port", "?"), self.arch or "no model yet", self.seed,
            self.steps)

    # ---- what it is -----------------------------------------------------------------------
    arch = property(lambda self: "-".join(map(str, self.sizes)) if self.sizes else None)
    n_inputs = property(lambda self: self.sizes[0] if self.sizes else None)
    n_classes = property(lambda self: self.sizes[-1] if self.sizes else None)
    n_layers = property(lambda self: len(self.sizes) - 1 if self.sizes else None)
    input_encoding = property(lambda self: self.recipe.get("input", "centered"))
    calibrated = property(lambda self: self.provenance.calibrated)
    epochs_trained = property(lambda self: self.provenance.epochs_trained)
    training_log = property(lambda self: list(self.provenance.sessions))
    epoch_log = property(lambda self: list(self.provenance.epochs))

    @property
    def input_scale(self):
        """The input scale of float features (as :attr:`flipnet.Model.input_scale`)."""
        return self._input_scale

    @input_scale.setter
    def input_scale(self, spec):
        self._input_scale = make_scale(spec)

    def info(self):
        """The device's INFO (board, RAM, frame sizes)."""
        return self.device.info()

    def _check_encoding(self):
        """The input encoding checked against the input width; the recipe's reducing one
        (not asked for) gives way to "half" (one input per value) for other widths."""
        try:
            self.recipe["input"] = check_encoding(self.input_encoding, self.sizes[0])
        except ValueError:
            if self._explicit_input or not parse_encoding(self.input_encoding).reduces:
                raise
            self.recipe["input"] = "half"

    # ---- encoding (the host's part) ---------------------------------------------------------
    def _fit_encoding(self, x):
        """Before the first fit: the recipe's reducing encoding only for square images (other
        samples take "half"); a fresh input scale for float features."""
        enc = parse_encoding(self.input_encoding)
        x = np.asarray(x)
        if enc.reduces and not self._explicit_input and not self._ready:
            try:
                image_side(x, enc) if x.dtype == np.uint8 else None
                if x.dtype != np.uint8 and x.dtype != np.int8:
                    raise ValueError
            except ValueError:
                self.recipe["input"] = "half"
        if is_float(x) and not isinstance(self._input_scale, FeatureScale):
            self._input_scale = FeatureScale.fit(
                x, DEFAULT_SCALE if self._input_scale is None else self._input_scale)

    def _encode(self, x, name="x", learn=False):
        """int8 (N, n_inputs) samples of ``x`` for the device (flipnet.inputs.prepare_x)."""
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        n_in = self.n_inputs if self.sizes else _width(x, self.input_encoding, self._input_scale)
        scale = self._input_scale if isinstance(self._input_scale, FeatureScale) else None
        x8 = prepare_x(x, n_in, self.input_encoding, name, self.image_side, scale)
        if learn and self.image_side is None:
            side = image_side(x, self.input_encoding, name) if isinstance(x, np.ndarray) \
                else None
            if side is not None:
                self.image_side = side
        return x8

    # ---- the model on the device ---------------------------------------------------------------
    def _configure(self, x8, classes, batch):
        """CONFIGURE a fresh model for samples ``x8`` and ``classes`` classes."""
        info = self.device.info()
        if self.sizes is None:
            n_in = int(x8.shape[1])
            rec = self.recipe
            bits = rec.get("counter_bits", 8) if rec.get("counter_threshold", 0) > 0 else None
            if info.get("arena_bytes"):
                h = _plan.largest_hidden(info, n_in, classes, bits, batch, self.kinds)
                if h < 1:
                    raise DeviceError("no %d-h-%d model trains on this device at batch %d "
                                      "(arena %d B): give smaller sizes or a smaller "
                                      "batch_size" % (n_in, classes, batch,
                                                      info["arena_bytes"]),
                                      getattr(self.device, "port", None))
            else:  # no RAM budget (the in-process core): the recipe's hidden layers
                h = parse_sizes(rec["arch"])[1]
            self.sizes = [n_in, h, classes]
            self._check_encoding()
        sched = Schedule.from_recipe(self.recipe)
        margin = self.recipe["margin"] if sched.margin is None else sched.margin
        self.recipe["margin"] = int(margin)
        cfg = configure_options(self.recipe, self.recipe, self.kinds, self.seed, batch, margin)
        self.device.configure(self.sizes, **cfg)
        self.batch_size = batch
        self.steps = self.samples = 0
        self._ready = True

    def _need_model(self):
        if self._ready:
            return
        st = self.device.stats() if hasattr(self.device, "stats") else {}
        if st.get("configured"):
            self._adopt_device_model()
            return
        raise ArgumentError("no model on the device yet: fit() one, load() one, or connect with "
                            "model='device' to use the one it holds")

    def _adopt_device_model(self):
        """Take the device's current model as this object's (pulled once: its sizes, seed,
        step counter, rule; the history of a file this machine loaded onto it)."""
        from . import history

        data = self.device.pull()
        m = history.adopt(data, base=history.recall(data), where="device")
        self._take(m, batch=self.batch_size or 8)
        if hasattr(self.device, "sizes"):
            self.device.sizes = list(m.sizes)
            self.device.batch = self.batch_size

    def _take(self, m, batch):
        """This object's host-side state from the flipnet.Model ``m`` (now on the device)."""
        self.sizes, self.kinds, self.seed = list(m.sizes), list(m.kinds), m.seed
        self.recipe = dict(m.recipe)
        self._explicit_input = True
        self._input_scale = m.input_scale
        self.image_side = m.image_side
        self.provenance = m.provenance.copy()
        self.meta = dict(m.meta)
        self.steps, self.samples = m.steps, m.samples
        self.batch_size = int(batch)
        self._ready = True

    def load(self, model, batch_size=None):
        """Put ``model`` (a ``flipnet.Model``, its file's bytes or path) on the device: training
        continues from exactly its state (weights, counters, shifts, rule, seed, steps), and
        its recipe, input encoding and scale and history are kept for :meth:`pull`.
        ``batch_size``: the largest batch to size the device's RAM for (default the recipe's)."""
        import os

        from ..model import Model

        if isinstance(model, Model):
            m = model
        elif isinstance(model, (str, os.PathLike)):
            with open(model, "rb") as f:
                m = Model.from_bytes(f.read(), source=repr(os.fspath(model)))
        elif isinstance(model, (bytes, bytearray, memoryview)):
            m = Model.from_bytes(bytes(model), source="the model to load")
        else:
            raise ArgumentError("load() takes a flipnet.Model, the bytes of a model file or its "
                                "path, not %s" % type(model).__name__)
        batch = int(batch_size or m.recipe.get("batch_size", 8))
        self.device.load(m.to_bytes(), batch=batch)
        self._take(m, batch)
        return self

    # ---- training ---------------------------------------------------------------------------
    def fit(self, x, y=None, epochs=None, batch_size=None, validation_data=None, schedule=None,
            verbose=1, shuffle=None, steps=None, curve_every=None):
        """Train on the device; returns a :class:`flipnet.History` (as :meth:`flipnet.Model.fit`).

        ``x, y`` arrays (uint8 pixels, int8 samples, or float features: the input scale) or a
        stream ``fit(batches)`` of ``(x, y)`` pairs (one pass, ``steps`` the schedule's
        horizon; see :func:`flipnet.training.fit`). ``epochs``, ``batch_size``, ``shuffle``
        default to the recipe's; ``schedule`` (a :class:`flipnet.Schedule` or a dict) overrides
        its p0, p1, k_frac, ...; ``validation_data=(x_val, y_val)`` is evaluated on the device
        after each epoch (``History`` ``val_acc``) and at the end of a stream. Each epoch is
        shuffled with ``shuffle_order(n, seed, epochs_trained + e)``; a never-calibrated model
        is calibrated on its first batch, on the device. The first fit configures a fresh
        model (unless one was loaded) sized for ``batch_size``; later fits continue it.

        Per-epoch records have the host's keys; what the device does not report is None
        (``loss``, ``clip_rate``, ``nonzero``, ``ops``).
        """
        stream = y is None
        if stream:
            steps = check_steps(steps, epochs)
            epochs = 1
        r = self.recipe
        epochs = int(r["epochs"] if epochs is None else epochs)
        batch = int(r["batch_size"] if batch_size is None else batch_size)
        shuffle = bool(r.get("shuffle", True) if shuffle is None else shuffle)
        if epochs < 0:
            raise ArgumentError("epochs must be >= 0, got %d" % epochs)
        if batch < 1:
            raise ArgumentError("batch_size must be >= 1, got %d" % batch)
        info = self.device.info()
        if batch > info.get("max_batch", batch):
            raise ArgumentError("batch_size must be in [1, %d] (the device's largest batch), "
                                "got %d" % (info["max_batch"], batch))
        if self._ready and self.batch_size is not None and batch > self.batch_size:
            raise ArgumentError("the device's model was sized for batches of at most %d "
                                "samples; batch_size=%d needs a fresh model (or load() it "
                                "again with batch_size=%d)" % (self.batch_size, batch, batch))
        sched = make_schedule(schedule, r)
        if stream:
            first = None
            if not self._ready and self.sizes is None:
                raise ArgumentError("a stream needs the model's sizes: connect(port, sizes) "
                                    "(or fit arrays first)")
            data = Stream(x, batch, self._stream_encoder())
            n = None
        else:
            if not self._ready:
                self._fit_encoding(x)
            x8 = self._encode(x, learn=True)
            n = x8.shape[0]
            first = x8
            y = np.asarray(y)
            classes = self.n_classes or _classes(y, validation_data)
            y16 = prepare_y(y, n, classes)
        val = None
        if validation_data is not None:
            try:
                xv, yv = validation_data
            except (TypeError, ValueError):
                raise ArgumentError("validation_data must be a pair (x_val, y_val)") from None
            val = (xv, yv)
        if not self._ready:
            if stream:
                first = data.peek(1)
                if first is None:
                    raise ArgumentError("the stream gave no samples: nothing to train on")
            self._configure(first, self.n_classes or classes, batch)
        if val is not None:  # checked before the first step
            xv8 = self._encode(val[0], "x_val")
            val = (xv8, prepare_y(val[1], xv8.shape[0], self.n_classes, "y_val"))
        if not stream and x8.shape[1] != self.n_inputs:
            raise ArgumentError("samples have %d values but the device's model takes %d"
                                % (x8.shape[1], self.n_inputs))
        if sched.margin is not None and int(sched.margin) != int(r["margin"]) and self.steps:
            raise ArgumentError("margin %d: the margin is part of the model's rule (%d); it "
                                "cannot change on the device" % (int(sched.margin), r["margin"]))
        run = _Run(self, sched, epochs, batch, n, steps, verbose, curve_every)
        try:
            if stream:
                run.epoch(0, data, val)
            for e in range(0 if stream else epochs):
                order = (shuffle_order(n, self.seed, self.epochs_trained) if shuffle
                         else np.arange(n, dtype=np.int64))
                run.epoch(e, ((x8[i], y16[i]) for i in (order[s:s + batch]
                                                        for s in range(0, n, batch))), val)
        finally:
            run.close()
        return run.history

    def _stream_encoder(self):
        def encode(xb, yb):
            if not self._ready:
                self._fit_encoding(xb)
            xb8 = self._encode(xb, "x of a batch", learn=True)
            return xb8, prepare_y(yb, xb8.shape[0], self.n_classes, "y of a batch")
        return encode

    # ---- inference on the device ------------------------------------------------------------
    def evaluate(self, x, y):
        """Accuracy of the device's model on (x, y), computed on the device (EVAL)."""
        self._need_model()
        x8 = self._encode(x)
        y16 = prepare_y(y, x8.shape[0], self.n_classes)
        correct, n = self.device.evaluate(x8, y16)
        return correct / n

    def predict(self, x):
        """Classes the device predicts for ``x`` (int64 (N,)), computed on the device."""
        self._need_model()
        return np.asarray(self.device.predict(self._encode(x)), dtype=np.int64)

    def forward(self, x):
        """The device's logits for ``x``, int32 (N, classes)."""
        self._need_model()
        _, logits = self.device.predict(self._encode(x), logits=True)
        return logits

    # ---- the model file -------------------------------------------------------------------
    def pull(self):
        """The device's model as a :class:`flipnet.Model` (weights, counters, shifts, rule and
        step counter as the device has them) with this object's recipe, input encoding and
        scale, image side, history (one ``where: "device"`` session per fit) and ``meta``."""
        from ..model import Model

        self._need_model()
        m = Model.from_bytes(self.device.pull(), source="the model pulled from the device")
        recipe = dict(self.recipe)
        recipe.update(m.rule)
        m.set_recipe(recipe)
        m.input_scale = self._input_scale if isinstance(self._input_scale, FeatureScale) \
            else None
        if self.image_side is not None:
            m.image_side = self.image_side
        m.provenance = self.provenance.copy()
        m.provenance.calibrated = m.provenance.calibrated or any(m.shifts)
        m.meta = dict(self.meta)
        return m

    def save(self, path):
        """Pull the model and write its file (:meth:`flipnet.Model.save`); returns its size."""
        return self.pull().save(path)


class _Run:
    """One DeviceModel.fit(): the steps, the History, the session record."""

    def __init__(self, dm, sched, epochs, batch, n, steps, verbose, curve_every):
        self.dm, self.sched, self.epochs, self.batch, self.n = dm, sched, epochs, batch, n
        L = len(dm.sizes) - 1
        self.shapes = [(dm.sizes[i], dm.sizes[i + 1]) for i in range(L)]
        self.total = epochs * -(-n // batch) if n is not None else steps
        self.steps0 = dm.steps
        self.calibrated0 = dm.calibrated
        self.anneal = (sched.counter_shift_end is not None
                       and int(dm.recipe.get("counter_threshold", 0)) > 0)
        self.verbose = verbose
        self.step = 0
        self.history = History()
        self.curve = Curve(curve_every or auto_every(
            n * epochs if n is not None else (steps or 0) * batch, batch), L)
        self.history.curve = self.curve.points
        dev = dm.device
        info = dev.info()
        self.session = {"where": "device", "board": info.get("board"),
                        "port": getattr(dev, "port", None), "started": timestamp(),
                        "epochs": 0, "steps": 0, "samples": 0, "seconds": 0.0,
                        "batch_size": batch, "n_train": n, "schedule": sched.to_dict(),
                        "rule": {k: dm.recipe[k] for k in _recipes.RULE_KEYS
                                 if k in dm.recipe},
                        "curve": self.curve.points, "api": "DeviceModel.fit"}
        if n is None:
            self.session["stream"] = True
        self.t_run = time.perf_counter()

    def close(self):
        self.session["seconds"] = time.perf_counter() - self.t_run
        link = getattr(self.dm.device, "link_stats", None)
        if link is not None:
            self.session["link"] = link()
        if self.session["steps"]:
            self.dm.provenance.add_session(self.session)

    def epoch(self, e, batches, val):
        dm, sched, dev = self.dm, self.sched, self.dm.device
        L = len(self.shapes)
        bar = _progress.bar(self.n, "device %s epoch %d/%d" % (
            dev.info().get("board", "?"), e + 1, self.epochs) if self.n is not None
            else "device %s stream" % dev.info().get("board", "?"), bool(self.verbose))
        correct = errors = seen = steps = error_steps = calibrations = calib_samples = 0
        changes, eligible = [0] * L, [0] * L
        ks = ps = [0] * L
        shifts = None
        t0 = time.perf_counter()
        try:
            for s, (xb, yb) in enumerate(batches):
                ks, ps = _step_params(sched, self.step, self.total, self.shapes)
                cal, after, keep, shift = step_flags(sched, self.step, self.total, s == 0, e,
                                                     self.calibrated0, self.steps0, self.anneal)
                r = dev.train(xb, yb, ks, ps, calibrate=cal, bits=8, table=None,
                              calibrate_after=after, calibrate_from=keep, counter_shift=shift)
                b = len(xb)
                self.step += 1
                steps += 1
                seen += b
                correct += r["correct"]
                errors += r["errors"]
                error_steps += r["errors"] != 0
                calibrations += int(cal) + int(after)
                calib_samples += b * (int(cal) + int(after))
                for i in range(L):
                    changes[i] += r["changes"][i]
                    eligible[i] += r["eligible"][i]
                shifts = r.get("shifts", shifts)
                dm.steps, dm.samples = int(r["steps"]), int(r["samples"])
                if cal or after:
                    dm.provenance.calibrated = True
                self.session["steps"] += 1
                self.session["samples"] += b
                self.curve.step(b, r["correct"], r["changes"])
                if bar is not None:
                    bar.update(b)
                    if steps % 4 == 0:
                        dt = max(1e-9, time.perf_counter() - t0)
                        bar.set_postfix(acc="%.3f" % (correct / seen), sps="%.0f" % (seen / dt),
                                        refresh=False)
            seconds = time.perf_counter() - t0
            if not seen:
                raise ArgumentError("the stream gave no samples: nothing to train on")
            val_acc = None
            if val is not None:
                c, m = dev.evaluate(*val)
                val_acc = c / m
                self.curve.set_validation(val_acc)
            else:
                self.curve.flush()
            if bar is not None:
                post = {"acc": "%.4f" % (correct / seen)}
                if val_acc is not None:
                    post["val"] = "%.4f" % val_acc
                bar.set_postfix(post, refresh=False)
        finally:
            if bar is not None:
                bar.close()
        rec = {"epoch": e + 1, "train_acc": correct / seen, "val_acc": val_acc,
               "changes": changes, "eligible": eligible, "errors": errors,
               "p": ps[0] / 65536.0, "k": ks, "seconds": seconds, "samples": seen,
               "samples_per_s": seen / seconds if seconds > 0 else None,
               "shifts": shifts, "steps": steps, "loss": None, "clip_rate": None,
               "error_steps": error_steps, "calib_samples": calib_samples,
               "calibrations": calibrations, "nonzero": None, "ops": None, "where": "device"}
        self.history.append(rec)
        dm.provenance.add_epoch(rec)
        self.session["epochs"] += 1


def _width(x, encoding, scale):
    """The number of int8 inputs ``x`` gives (before the model's sizes are known)."""
    x = np.asarray(x)
    if x.ndim < 2:
        return int(x.size)
    enc = parse_encoding(encoding)
    if enc.reduces and x.dtype == np.uint8:
        return enc.n_inputs(image_side(x, enc))
    return int(np.prod(x.shape[1:]))


def _classes(y, validation_data):
    """Classes for a fresh model: one more than the largest label (training and validation)."""
    labels = [np.asarray(y)]
    if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
        labels.append(np.asarray(validation_data[1]))
    top = 0
    for lab in labels:
        if lab.size and np.issubdtype(lab.dtype, np.integer):
            top = max(top, int(lab.max()))
    return max(2, top + 1)


# ---- connect ---------------------------------------------------------------------------------
def connect(port, sizes=None, kinds="ternary", seed=0, recipe=None, input=None,
            input_scale=None, model=None, baudrate=115200, timeout=3.0, retries=10):
    """A :class:`DeviceModel` on the device at ``port``: a serial port or URL
    (``/dev/ttyACM0``, ``COM3``, ``socket://host:port``, a pty path), an open
    :class:`flipnet.device.Device` (or any object with its interface), or a device started
    here: ``"twin"`` (the host twin on a pseudo-terminal, built on first use; needs a C
    compiler) or ``"qemu"`` / ``"qemu:<board>"`` (the firmware under qemu-system-arm, default
    board mps2-an386; needs a built image, :func:`flipnet.device.sim.build_firmware`). A
    started device is stopped by :meth:`DeviceModel.close` (or the ``with`` block's end).

    The other arguments are :class:`DeviceModel`'s: ``sizes``, ``kinds``, ``seed``, ``recipe``
    (default ``"device"``), ``input``, ``input_scale``, ``model`` (a model to load, or
    ``"device"``); ``baudrate``, ``timeout``, ``retries`` are the link's (:class:`Device`).
    """
    proc = None
    if isinstance(port, str) and (port == "twin" or port == "qemu" or port.startswith("qemu:")):
        from . import sim

        if port == "twin":
            proc = sim.start_twin()
        else:
            board = port.partition(":")[2] or "mps2-an386"
            proc = sim.start_qemu(board)
        port = proc.port
    try:
        dev = Device(port, baudrate=baudrate, timeout=timeout, retries=retries) \
            if isinstance(port, str) else port
        return DeviceModel(dev, sizes, kinds, seed, recipe, input, input_scale, model,
                           close=proc.stop if proc is not None else None)
    except BaseException:
        if proc is not None:
            proc.stop()
        raise
