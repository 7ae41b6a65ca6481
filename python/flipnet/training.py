"""The training loop: :func:`fit` (data order, schedule, calibration, progress, the per-epoch
:class:`History` and its operation accounting) and :func:`train_step`, on a
:class:`flipnet.Model` (``Model.fit`` and ``Model.train_step`` call them).

Every step is one call of the core (``Model.core_train_step``); what a step does is the
core's (docs/rule.md), what steps are taken, in which order and with which k, p and AdamW
parameters is decided here.
"""

import platform
import time

import numpy as np

from . import accounting as _accounting
from . import progress as _progress
from . import threads as _threads
from ._ffi import ffi, lib
from ._version import __version__
from .errors import ArgumentError, ShapeError
from .inputs import prepare_x, prepare_y
from .curve import Curve, auto_every
from .metadata import timestamp
from .schedule import Schedule, shuffle_order
from .stream import Stream, check_steps

__all__ = ["History", "fit", "train_step", "adamw_options", "make_schedule", "SCHEDULE_OPTIONS"]

MAX_BATCH = lib.FLIPNET_MAX_BATCH
#: the options of a schedule given to fit() as a dict
SCHEDULE_OPTIONS = ("p0", "p1", "k_frac", "k_frac_end", "margin", "recalibrate_every",
                    "recalibrate_steps", "recalibrate_until", "recalibrate_from",
                    "counter_shift_end")


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

    ``curve``: the run every N samples (:mod:`flipnet.curve`: samples, steps,
    ``train_accuracy`` of the window, weight ``changes`` per layer, ``val_accuracy`` where
    measured), for plots (:func:`flipnet.plots.plot`).
    """

    def __init__(self, epochs=None, curve=None):
        self.epochs = list(epochs or [])
        self.curve = list(curve or [])

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

    @property
    def samples(self):
        """Training samples seen, over all epochs."""
        return sum(int(e.get("samples") or 0) for e in self.epochs)

    def __repr__(self):
        return "History(%d epochs, train_acc=%s, val_acc=%s)" % (
            len(self), self.train_acc, self.val_acc)


def make_schedule(schedule, recipe):
    """A :class:`flipnet.Schedule` from ``schedule``: None (the recipe's), a Schedule, or a
    dict of options (:data:`SCHEDULE_OPTIONS`) completed from ``recipe``."""
    if schedule is None:
        return Schedule.from_recipe(recipe)
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, dict):
        unknown = sorted(set(schedule) - set(SCHEDULE_OPTIONS))
        if unknown:
            raise ArgumentError("unknown schedule option(s) %s; allowed: %s"
                                % (", ".join(unknown), ", ".join(SCHEDULE_OPTIONS)))
        return Schedule(recipe=recipe, **schedule)
    raise ArgumentError("schedule must be a flipnet.Schedule, a dict of its options or None")


def adamw_options(recipe, lr=None, weight_decay=None, betas=None, eps=None):
    """AdamW hyperparameters (``recipe`` values for None), checked: (lr, wd, beta1, beta2, eps)."""
    r = recipe
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


def _step_params(adamw):
    params = ffi.new("flipnet_step_params *")
    params.lr, params.weight_decay, params.beta1, params.beta2, params.eps = adamw
    return params


def _per_layer(stats, field, n_layers):
    return [int(getattr(stats, field)[l]) for l in range(n_layers)]


def train_step(model, x, y, k, p, lr=None, weight_decay=None, betas=None, eps=None,
               threads=None):
    """One training step on the batch (x, y) with explicit integer parameters.

    ``k``: weights to select, one int per layer (or one for all); ``p``: change probability,
    a float in [0, 1] (converted to Q16) or, if an int, already Q16 (65536 = 1.0), one per
    layer or one for all. FP32 layers: AdamW with ``lr``, ``weight_decay``, ``betas``,
    ``eps`` (recipe values for None; see fit). Returns the step's statistics as a dict
    (correct, errors, loss, and per layer changes, eligible, clipped). No calibration, no
    schedule: the building block of :meth:`fit`, for experiments and for checking a device
    against the host. ``threads``: threads for the step (None: flipnet.threads.default());
    the result is the same for any number.
    """
    adamw = adamw_options(model.recipe, lr, weight_decay, betas, eps)
    x8 = prepare_x(x, model.n_inputs, model.input_encoding)
    b = x8.shape[0]
    if b > MAX_BATCH:
        raise ArgumentError("a batch has at most %d samples, got %d" % (MAX_BATCH, b))
    y16 = prepare_y(y, b, model.n_classes)
    L = model.n_layers
    ks = list(k) if isinstance(k, (list, tuple, np.ndarray)) else [k] * L
    ps = list(p) if isinstance(p, (list, tuple, np.ndarray)) else [p] * L
    if len(ks) != L or len(ps) != L:
        raise ShapeError("k and p need one value per layer (%d)" % L)
    params = _step_params(adamw)
    for l in range(L):
        kl = int(ks[l])
        pl = ps[l]
        q = int(pl) if isinstance(pl, (int, np.integer)) else int(round(float(pl) * 65536))
        if kl < 0 or not 0 <= q <= 65536:
            raise ArgumentError("k must be >= 0 and p in [0, 1] (Q16: [0, 65536]); got "
                                "k=%r p=%r for layer %d" % (ks[l], pl, l))
        params.k[l] = kl
        params.p_q16[l] = q
    stats = ffi.new("flipnet_step_stats *")
    model.core_train_step(x8, y16, params, stats, threads)
    return {"correct": int(stats.correct), "errors": int(stats.errors),
            "loss": float(stats.loss), "changes": _per_layer(stats, "changes", L),
            "eligible": _per_layer(stats, "eligible", L),
            "clipped": _per_layer(stats, "clipped", L)}


def fit(model, x, y=None, epochs=None, batch_size=None, validation_data=None, schedule=None,
        verbose=1, shuffle=None, calibrate_samples=None, lr=None, weight_decay=None,
        betas=None, eps=None, lr_end=None, steps=None, curve_every=None, threads=None):
    """Train on (x, y); returns a :class:`History`.

    ``fit(batches)`` (``y`` None) trains on a stream instead: an iterable of ``(x, y)`` batches
    (a generator reading a sensor, a list of pairs), in one pass, the samples in the order they
    arrive, in steps of ``batch_size`` samples whatever the sizes of the batches
    (:mod:`flipnet.stream`). ``steps`` is the run's length in steps, the schedule's horizon
    (p decays from p0 to p1 over it, the counters' shift anneals; past it the schedule stays at
    its end); without it the stream has no known end and the schedule stays at its start (p0,
    the starting shift). A never-calibrated model is calibrated on the stream's first
    ``calibrate_samples`` samples. So a stream of ``(x[i:i + b], y[i:i + b])`` gives exactly the
    model ``fit(x, y, shuffle=False)`` gives, with ``steps = ceil(len(x) / batch_size)``.
    Float features of a stream need the model's input scale: one fitted before (e.g.
    ``input_scale=flipnet.inputs.FeatureScale.fit(sample)``), else the stream's first batch
    fits it. ``validation_data`` is evaluated at the end.

    ``curve_every``: samples between two points of ``History.curve`` (default: about 64 points
    over the run; a stream of unknown length: every 32 batches).

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

    ``threads``: threads for every step and evaluation (None: flipnet.threads.default(), the
    machine's cores unless FLIPNET_THREADS or flipnet.threads.set_default say otherwise). The
    trained model is bit-identical for any number of threads.
    """
    r = model.recipe
    threads = _threads.resolve(threads)
    stream = y is None
    if stream:
        steps = check_steps(steps, epochs)
        epochs = 1
    adamw = adamw_options(r, lr, weight_decay, betas, eps)
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
    sched = make_schedule(schedule, r)
    if stream:
        n = None

        def encode(xb, yb):
            xb8 = prepare_x(xb, model.n_inputs, model.input_encoding, "x of a batch")
            return xb8, prepare_y(yb, xb8.shape[0], model.n_classes, "y of a batch")
        x8 = Stream(x, batch_size, encode)
    else:
        x8 = prepare_x(x, model.n_inputs, model.input_encoding)
        n = x8.shape[0]
        y16 = prepare_y(y, n, model.n_classes)
    val = None
    if validation_data is not None:
        try:
            xv, yv = validation_data
        except (TypeError, ValueError):
            raise ArgumentError("validation_data must be a pair (x_val, y_val)") from None
        xv8 = prepare_x(xv, model.n_inputs, model.input_encoding, "x_val")
        val = (xv8, prepare_y(yv, xv8.shape[0], model.n_classes, "y_val"))
    if sched.margin is not None:
        model.set_rule(margin=int(sched.margin))
        r["margin"] = int(sched.margin)
    run = _Run(model, sched, epochs, batch_size, n, adamw, lr_end, verbose,
               steps if stream else None, curve_every, threads)
    calib_n = min(calibrate_samples, MAX_BATCH)
    try:
        if stream:
            run.epoch(0, x8, lambda: x8.peek(calib_n), val, calibrate_samples, None)
        for e in range(0 if stream else epochs):
            order = (shuffle_order(n, model.seed, model.epochs_trained) if shuffle
                     else np.arange(n, dtype=np.int64))
            batches = ((x8[i], y16[i]) for i in (order[s:s + batch_size]
                                                 for s in range(0, n, batch_size)))
            run.epoch(e, batches, lambda o=order: x8[np.sort(o[:calib_n])], val,
                      calibrate_samples, n)
    finally:
        run.close()
    return run.history


class _Run:
    """One fit(): the step counter over the run, the core's step structs, the session record."""

    def __init__(self, model, sched, epochs, batch_size, n, adamw, lr_end, verbose, steps=None,
                 curve_every=None, threads=1):
        self.model, self.sched, self.epochs, self.n = model, sched, epochs, n
        self.threads = threads
        self.batch_size, self.lr0, self.lr_end, self.verbose = batch_size, adamw[0], lr_end, verbose
        L = model.n_layers
        sizes = model.sizes
        self.shapes = [(sizes[l], sizes[l + 1]) for l in range(L)]
        self.shapes_kinds = [(n_, m_, k_) for (n_, m_), k_ in zip(self.shapes, model.kinds)]
        self.anneal = sched.counter_shift_end is not None and model.rule["counter_threshold"] > 0
        self.counter_shift = model.rule["counter_shift"]
        # a stream: its steps if known, else None (no known end: the schedule stays at its start)
        self.steps_per_epoch = -(-n // batch_size) if n is not None else steps
        self.total = epochs * self.steps_per_epoch if n is not None else steps
        self.params = _step_params(adamw)
        self.stats = ffi.new("flipnet_step_stats *")
        self.history = History()
        self.curve = Curve(curve_every or auto_every(
            n * epochs if n is not None else (steps or 0) * batch_size, batch_size), L)
        self.history.curve = self.curve.points
        self.session = {"where": "host", "machine": platform.machine(),
                        "python": platform.python_version(), "flipnet_version": __version__,
                        "started": timestamp(), "epochs": 0, "steps": 0, "samples": 0,
                        "seconds": 0.0, "batch_size": batch_size, "n_train": n,
                        "schedule": sched.to_dict(), "rule": model.rule,
                        "curve": self.curve.points,
                        "threads": threads, "kernels": _threads.kernels()}
        if n is None:
            self.session["stream"] = True
        if model.has_fp32:
            self.session["adamw"] = {"lr": adamw[0], "weight_decay": adamw[1],
                                     "betas": [adamw[2], adamw[3]], "eps": adamw[4]}
            if lr_end is not None:
                self.session["adamw"]["lr_end"] = lr_end
        self.step = 0
        self.t_run = time.perf_counter()

    def close(self):
        if self.anneal:  # the rule keeps the recipe's starting shift; the schedule is in the recipe
            self.model.set_rule(counter_shift=self.sched.counter_shift)
        self.session["seconds"] = time.perf_counter() - self.t_run
        if self.session["steps"]:
            self.model.provenance.add_session(self.session)

    def _set_step(self):
        """k, p, lr and the counters' shift of the next step; returns (ks, ps)."""
        sched, step, total, params = self.sched, self.step, self.total, self.params
        if total is None:  # a stream without a known end: always at the run's start
            step, total = 0, 1
        ks, ps = sched.step_params(step, total, self.shapes)
        if self.lr_end is not None:
            params.lr = self.lr0 + (self.lr_end - self.lr0) * sched.progress(step, total)
        for l in range(len(ks)):
            params.k[l] = ks[l]
            params.p_q16[l] = ps[l]
        if self.anneal:
            shift = sched.counter_shift_at(step, total)
            if shift != self.counter_shift:
                self.model.set_rule(counter_shift=shift)
                self.counter_shift = shift
        return ks, ps

    def epoch(self, e, batches, calib_batch, val, calibrate_samples, n):
        """One epoch over ``batches`` ((x8, y16) per step; ``n`` samples, None for a stream);
        ``calib_batch()`` gives the samples to calibrate on when the epoch needs it."""
        model, sched, stats = self.model, self.sched, self.stats
        L = model.n_layers
        recal = sched.recalibrate_every and e > 0 and e % sched.recalibrate_every == 0
        calib_samples = calibrations = error_steps = 0
        nz_start = model.nonzero()
        if calibrate_samples > 0 and (not model.calibrated or recal):
            xc = calib_batch()
            if xc is not None and len(xc):
                model.calibrate(xc, first=sched.recalibrate_from if model.calibrated else 0)
                calib_samples += len(xc)
                calibrations += 1
        bar = _progress.bar(n, "epoch %d/%d" % (e + 1, self.epochs) if n is not None
                            else "stream", bool(self.verbose))
        correct = errors = seen = 0
        loss_sum = 0.0
        changes, eligible, clipped = [0] * L, [0] * L, [0] * L
        ks = ps = [0] * L
        t0 = time.perf_counter()
        steps = 0
        for s, (xb, yb) in enumerate(batches):
            b = len(xb)
            ks, ps = self._set_step()
            model.core_train_step(xb, yb, self.params, stats, self.threads)
            self.step += 1
            steps += 1
            seen += b
            self.session["steps"] += 1
            self.session["samples"] += b
            correct += stats.correct
            errors += stats.errors
            loss_sum += float(stats.loss) * b
            error_steps += stats.errors != 0
            step_changes = [int(stats.changes[l]) for l in range(L)]
            for l in range(L):
                changes[l] += step_changes[l]
                eligible[l] += stats.eligible[l]
                clipped[l] += stats.clipped[l]
            self.curve.step(b, stats.correct, step_changes)
            until = (sched.recalibrate_until * self.total if self.total is not None
                     else float("inf"))
            if (sched.recalibrate_steps and model.steps % sched.recalibrate_steps == 0
                    and self.step <= until):
                model.calibrate(xb, first=sched.recalibrate_from)
                calib_samples += b
                calibrations += 1
            if bar is not None:
                bar.update(b)
                if s % 16 == 0:
                    dt = time.perf_counter() - t0
                    bar.set_postfix(acc="%.4f" % (correct / seen),
                                    sps="%.0f" % (seen / dt if dt > 0 else 0.0), refresh=False)
        seconds = time.perf_counter() - t0
        if not seen:
            if bar is not None:
                bar.close()
            raise ArgumentError("the stream gave no samples: nothing to train on")
        flt = model.float_output
        val_acc = model.evaluate(*val, threads=self.threads) if val is not None else None
        if val_acc is not None:
            self.curve.set_validation(val_acc)
        else:
            self.curve.flush()
        sizes = model.sizes
        rec = {"epoch": e + 1, "train_acc": correct / seen, "val_acc": val_acc,
               "changes": changes, "eligible": eligible, "errors": errors,
               "p": ps[0] / 65536.0, "k": ks, "seconds": seconds, "samples": seen,
               "samples_per_s": seen / seconds if seconds > 0 else None,
               "shifts": model.shifts, "steps": steps,
               "loss": loss_sum / seen if flt else None,
               "clip_rate": [c / (seen * sizes[l + 1]) for l, c in enumerate(clipped[:L - 1])],
               "error_steps": error_steps, "calib_samples": calib_samples,
               "calibrations": calibrations, "nonzero": model.nonzero()}
        rec["ops"] = _accounting.epoch_ops(
            self.shapes_kinds, model.rule,
            dict(rec, nonzero=[(a + b) // 2 for a, b in zip(nz_start, rec["nonzero"])]))
        if bar is not None:
            post = {"acc": "%.4f" % rec["train_acc"]}
            if flt:
                post["loss"] = "%.4f" % rec["loss"]
            if val_acc is not None:
                post["val"] = "%.4f" % val_acc
            bar.set_postfix(post, refresh=False)
            bar.close()
        self.history.append(rec)
        model.provenance.add_epoch(rec)
        self.session["epochs"] += 1
