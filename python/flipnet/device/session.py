"""Training sessions on a device: stream a data set, train, pull the model.

:func:`train_on_device` drives any object with the :class:`~flipnet.device.client.Device`
training interface (``info, configure, train, pull, stats``): a real board, the host twin,
QEMU, or :class:`InProcessTwin`, which runs the same steps in this process through the
core's Python bindings. Given the same seed, data, batch, schedule and packing, all of them
end with bit-identical weights; the tests check exactly that.

Data order and schedule are the host's, as in ``Model.fit``: each epoch is shuffled with
``flipnet.schedule.shuffle_order(n, seed, epoch)``, k and p per step come from a
``flipnet.Schedule`` (recipe values) and travel in every TRAIN frame; the shifts are
calibrated on the first batch (and again every ``recalibrate_every`` epochs).
"""

import os
import sys
import time

import numpy as np

from .. import progress as _progress
from .. import recipes as _recipes
from ..files import write_atomic
from ..curve import Curve, auto_every
from ..inputs import check_encoding, image_side, parse_encoding
from ..schedule import Schedule, shuffle_order
from . import protocol as P
from .client import DeviceError

__all__ = ["InProcessTwin", "train_on_device", "prepare_inputs"]


class InProcessTwin:
    """The device's training interface, computed in-process by ``flipnet.Model``."""

    port = "in-process"

    def __init__(self):
        self.model = None
        self.sizes = None
        self.batch = None
        self.trained = 0
        self.bytes_sent = self.bytes_received = 0

    def info(self, refresh=False):
        return {"board": "in-process", "protocol": 1, "max_frame": 1 << 30,
                "max_reply": 1 << 30, "arena_bytes": 0, "ram_static": 0, "stack_bytes": 0,
                "max_batch": 65535, "configured": self.model is not None}

    def configure(self, sizes, kinds="ternary", seed=0, batch=8, vote="sign", filter="hurt",
                  backprop="sign", margin=0, **extra):
        from .. import recipes
        from ..model import Model

        counters = extra.pop("counters", False)  # True, or the bits per counter
        if counters and counters is not True:
            extra["counter_bits"] = int(counters)
        unknown = [k for k in extra if k not in recipes.RULE_KEYS + ("counter_bits",)]
        if unknown:
            raise ValueError("the in-process twin does not support %s" % ", ".join(unknown))
        # unspecified rule options take the core's defaults (paper mode), as on a device
        self.model = Model(sizes, kinds, seed=seed, recipe="paper", vote=vote, filter=filter,
                           backprop=backprop, margin=margin, **extra)
        self.sizes = [int(s) for s in sizes]
        self.batch = int(batch)
        self.trained = 0
        return {"in_process": True}

    def train(self, x, y, k, p_q16, calibrate=False, bits=8, table=None, calibrate_after=False,
              calibrate_from=0, counter_shift=None):
        m = self.model
        x8 = np.ascontiguousarray(x, dtype=np.int8)
        if calibrate:
            m.calibrate(x8, first=calibrate_from)
        keep = m.rule["counter_shift"]
        if counter_shift is not None:  # this step only, as the device does
            m.set_rule(counter_shift=counter_shift)
        try:
            r = m.train_step(x8, np.asarray(y), [int(v) for v in k], [int(v) for v in p_q16])
        finally:
            m.set_rule(counter_shift=keep)
        if calibrate_after:
            m.calibrate(x8, first=calibrate_from)
        self.trained += x8.shape[0]
        r.update(steps=m.steps, samples=m.samples, shifts=list(m.shifts))
        return r

    def load(self, data, batch=8, chunk=None):
        from ..model import Model

        self.model = Model.from_bytes(data)
        self.sizes = list(self.model.sizes)
        self.batch = int(batch)
        self.trained = 0
        return {"done": True}

    def stats(self):
        m = self.model
        return {"steps": m.steps, "samples": m.samples, "trained": self.trained,
                "stack_used": 0, "ram_static": 0, "arena_used": 0}

    def pull(self):
        return self.model.to_bytes()

    def link_stats(self):
        return {"bytes_sent": 0, "bytes_received": 0, "retransmits": 0, "naks": 0,
                "bad_replies": 0}


def _reconnect(dev, how, exc, steps0, step, sizes, batch, timeout=None):
    """After a device reset or a dropped link: a device answering again, and the run's step
    its checkpoint resumes at. Returns (device, step)."""
    from .client import Device

    timeout = float(os.environ.get("FLIPNET_RECONNECT_TIMEOUT", 60) if timeout is None
                    else timeout)
    deadline = time.monotonic() + timeout
    last = exc
    while True:
        new = None
        try:
            if callable(how):
                new = how()
            else:
                try:
                    dev.close()
                except Exception:  # noqa: BLE001 - the old connection may be gone already
                    pass
                new = Device(dev.port, baudrate=dev.baudrate, timeout=min(dev.timeout, 2.0),
                             retries=2, runs=dev.runs)
            info = new.info(refresh=True)
            st = new.stats()
            break
        except DeviceError as e:  # not back yet
            last = e
            if new is not None and new is not dev:
                try:
                    new.close()
                except Exception:  # noqa: BLE001
                    pass
            if time.monotonic() > deadline:
                raise DeviceError("the device on %s did not come back within %.0f s after %s"
                                  % (dev.port, timeout, last), dev.port) from None
            time.sleep(0.3)
    if not st["configured"]:
        raise DeviceError("the device on %s came back without a model (no checkpoint in its "
                          "flash): the run cannot resume there; start it again (or --resume "
                          "from the last pulled file)" % new.port, new.port)
    back = int(st["steps"]) - steps0
    if back < 0 or back > step:
        raise DeviceError("the device on %s came back with a model at step %d, outside this "
                          "run (steps %d to %d): not this run's checkpoint"
                          % (new.port, st["steps"], steps0, steps0 + step), new.port)
    if hasattr(new, "timeout"):
        new.timeout, new.retries = dev.timeout, dev.retries
    new.sizes = list(sizes)
    new.batch = batch
    del info
    return new, back


def prepare_inputs(x, bits=8, encoding="centered", side=None):
    """Samples -> (int8 (N, n0) the device trains on, table for ``bits`` < 8).

    uint8 pixels are encoded by the input encoding as ``flipnet.quantize`` does (``encoding``
    "centered": ``clamp(p - 128, -127, 127)``, "half": ``p >> 1``; a reducing one such as
    "crop20-pool2" crops and averages each image first, so the device gets the reduced
    samples, e.g. 100 values instead of 784), exactly with 8 bits, binned
    (``protocol.pixel_table``) with fewer; int8 inputs are sent as they are (8 bits only).
    ``side``: for a reducing encoding, the only image side taken (None: any it allows).
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError("inputs need a leading sample axis, shape (N, ...); got shape %s"
                         % (x.shape,))
    if x.dtype == np.uint8:
        s = image_side(x, encoding)
        if side is not None and s is not None and s != side:
            raise ValueError("the images are %d x %d pixels; the model (input encoding %r) "
                             "takes %d x %d images" % (s, s, encoding, side, side))
        x8, _, table = P.quantize_pixels(x.reshape(x.shape[0], -1) if s is None else x, bits,
                                         encoding)
        return np.ascontiguousarray(x8.reshape(x.shape[0], -1)), table
    x = x.reshape(x.shape[0], -1)
    if x.dtype != np.int8:
        raise ValueError("inputs must be uint8 pixels or int8 values, got %s" % x.dtype)
    if bits != 8:
        raise ValueError("int8 inputs are sent with 8 bits; pass uint8 pixels to pack them")
    return np.ascontiguousarray(x), None


def _as_model_bytes(model, what):
    from ..model import Model

    if isinstance(model, Model):
        return model.to_bytes(), model
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            data = f.read()
        return data, Model.from_bytes(data, source=repr(os.fspath(model)))
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        return data, Model.from_bytes(data, source=what)
    raise TypeError("%s must be a flipnet.Model, the bytes of a model file or its path, not %s"
                    % (what, type(model).__name__))


def train_on_device(dev, x, y, sizes=None, kinds="ternary", seed=None, epochs=1, batch=8,
                    recipe=None, schedule=None, bits=8, pull_every=0, out=None, progress=True,
                    mirror=None, calibrate=True, on_step=None, resume=None, init=None,
                    on_device=False, record=None, test_data=None, input=None,
                    checkpoint_every=None, reconnect=None, input_scale=None, curve_every=None):
    """Train a model on ``dev`` from (x, y); returns a summary dict.

    The model is, by default, a fresh one (CONFIGURE with ``sizes``, ``kinds``, ``seed``).
    To continue training an existing model on the device instead:

    * ``init``: a model (``flipnet.Model``, the bytes of a model file or its path), e.g.
      pre-trained on the host. It is loaded onto the device (LOAD) and trained further from
      exactly its state: weights, counters, shifts, rule, seed and RNG step counter.
    * ``on_device=True``: the model the device already holds (after ``flipnet device load``);
      it is pulled once first to learn its architecture, seed and step counter.

    A continued model keeps its shifts (it is calibrated only if it never was), its rule
    (the recipe's rule options do not apply; a ``schedule`` margin other than the model's
    is an error) and its seed; the data order continues its epoch count
    (``shuffle_order(n, seed, epochs_trained + e)``) and step recalibration follows its step
    counter, as ``Model.fit`` on the host would. ``recipe`` defaults to the model's own
    (from its metadata), else ``"device"``.

    ``x``: uint8 pixels (N, ...) or int8 (N, n0); ``y`` labels. The host encodes uint8 pixels
    by the input encoding (``input``, default the recipe's; :func:`prepare_inputs`) and
    sends the int8 samples: with a reducing encoding (``"crop20-pool2"``: 100 inputs from a
    28x28 image) the frames carry the reduced samples, and the pulled model keeps the
    encoding and the image side, so it predicts from raw images on the host.
    ``recipe`` (name or dict;
    default ``"device"``, flipnet.recipes.DEVICE) gives the rule (vote, filter, margin,
    calib_target, counters), the input encoding and the schedule (p0, p1, k_frac,
    recalibrate_every, recalibrate_steps, recalibrate_until); ``schedule`` (a
    ``flipnet.Schedule`` or dict) overrides the latter. A fresh model's shifts are calibrated
    on the first batch (the device cannot hold ``calibrate_samples``), at each
    ``recalibrate_every`` epoch start, and after every ``recalibrate_steps``-th step on the
    batch just trained during the first ``recalibrate_until`` of the run, as ``Model.fit``
    does. ``bits``: input packing on the link (1, 2, 4, 8). ``pull_every``: also pull the
    model to ``out`` every N steps. ``mirror``: another device-like object (e.g.
    :class:`InProcessTwin`) that gets the same steps; ``on_step(step, reply)`` is called
    after every step.

    ``resume``: the bytes of a model file pulled from an earlier run of the same session
    (same data, seed, batch, schedule, epochs, ``init``; e.g. the ``out`` file of a run that
    crashed). It is loaded onto the device and training continues at its step count; data
    order, k/p schedule and flip coins depend only on the step, so the result is
    bit-identical to an uninterrupted run.

    ``checkpoint_every``: the device writes a checkpoint to its flash every that many steps
    (and at the start; docs/protocol.md section 10). ``reconnect``: when the device resets
    or the link drops during training, reopen it (``True``: the same port, or a callable
    returning a new device object), waiting up to ``reconnect_timeout`` (60 s) for it, read
    where its checkpoint left off and send again from the first step it does not hold: every
    TRAIN carries the step counter it expects, so a device that restarted from an older
    checkpoint refuses a step rather than apply it out of order, and the final model is
    bit-identical to an uninterrupted run. ``True`` by default with ``checkpoint_every``.

    ``record``: extra fields (JSON-serializable; e.g. the data set's name) for the session's
    training record. ``test_data=(x_test, y_test)``: evaluate the pulled model on the host
    (inputs packed as for training) and record the accuracy. ``input_scale``: the
    :class:`flipnet.inputs.FeatureScale` that made ``x`` (int8) from float features: the
    pulled model keeps it, so it predicts from the float features. The session's record and
    the summary hold ``curve``: the running accuracy and weight changes every
    ``curve_every`` samples (default: about 64 points; :mod:`flipnet.curve`), the test
    accuracy on its last point, for :mod:`flipnet.plots`.

    The summary holds ``model`` (a ``flipnet.Model``: the pulled model with its history, the
    base model's sessions plus one ``where: "device"`` record for this one, see
    :func:`flipnet.device.history.adopt`), ``model_bytes`` (its file), ``device_bytes``
    (the file exactly as pulled), ``steps``, ``samples``, ``train_acc`` (on-device running
    accuracy), ``test_acc``, ``seconds``, link and device statistics.
    """
    from . import history

    base_bytes = base = None
    if init is not None and on_device:
        raise ValueError("give init= (a model to load) or on_device=True (the model the "
                         "device holds), not both")
    if on_device and resume is not None:
        raise ValueError("resume= continues a session that loaded its model: pass the same "
                         "init= with it (on_device=True has no file to start from)")
    info = dev.info()
    if init is not None:
        base_bytes, base = _as_model_bytes(init, "the init model")
    elif on_device:
        pulled0 = dev.pull()
        base = history.adopt(pulled0, base=history.recall(pulled0), where="device")
        base_bytes = pulled0
    cont = base is not None
    if cont:
        if sizes is not None and [int(v) for v in sizes] != list(base.sizes):
            raise ValueError("sizes %s differ from the %s model being continued"
                             % ("-".join(map(str, sizes)), base.arch))
        if seed is not None and int(seed) != base.seed:
            raise ValueError("seed %d differs from the continued model's seed %d (its RNG and "
                             "data order use its own)" % (int(seed), base.seed))
        sizes = list(base.sizes)
        seed = base.seed
        kinds = base.kinds
        rec = _recipes.get(dict(base.recipe) if recipe is None else recipe)
    else:
        if sizes is None:
            raise ValueError("sizes are needed for a fresh model (or pass init= / on_device=)")
        seed = 0 if seed is None else int(seed)
        rec = _recipes.get("device" if recipe is None else recipe)
    if schedule is None:
        sched = Schedule.from_recipe(rec)
    elif isinstance(schedule, Schedule):
        sched = schedule
    else:
        sched = Schedule(recipe=rec, **schedule)
    if input is not None:
        rec["input"] = input
    encoding = rec.get("input", "centered")
    n0 = int(base.sizes[0] if cont else sizes[0])
    encoding = check_encoding(encoding, n0)
    side = base.image_side if cont and base.input_encoding == encoding else None
    if cont:
        margin = base.rule["margin"]
        explicit = schedule.get("margin") if isinstance(schedule, dict) else None
        if explicit is not None and int(explicit) != margin:
            raise ValueError("margin %d: the margin is part of the continued model's rule "
                             "(%d); it cannot change on the device" % (int(explicit), margin))
    else:
        margin = rec["margin"] if sched.margin is None else sched.margin
    x8, table = prepare_inputs(x, bits, encoding, side)
    side = side or image_side(x, encoding)
    y = np.asarray(y).astype(np.int64).ravel()
    n = x8.shape[0]
    if y.shape[0] != n:
        raise ValueError("%d labels for %d samples" % (y.shape[0], n))
    sizes = [int(s) for s in sizes]
    if x8.shape[1] != sizes[0]:
        raise ValueError("samples have %d values%s but the model has %d inputs"
                         % (x8.shape[1], " (%s as input encoding %r gives them)"
                            % ("uint8 images" if side else "int8 samples", encoding)
                            if parse_encoding(encoding).reduces else "", sizes[0]))
    batch = int(min(batch, n))
    rule = base.rule if cont else rec  # a continued model keeps its own rule
    cfg = dict(kinds=kinds, seed=seed, batch=batch, vote=rule["vote"], filter=rule["filter"],
               backprop=rule["backprop"], margin=int(margin))
    # rule options of newer cores, when the recipe sets them away from their defaults
    for key, default in (("calib_target", 32), ("counters", False), ("counter_shift", 0),
                         ("counter_threshold", 0), ("counter_decay", 0),
                         ("counter_round", "nearest")):
        if rec.get(key, default) != default:
            cfg[key] = rec[key]
    if int(rec.get("counter_threshold", 0)) > 0 or rec.get("counters"):
        widths = rec.get("counter_bits", 8)
        if isinstance(widths, (list, tuple)):  # CONFIGURE gives every layer one width
            if len(set(widths)) != 1:
                raise ValueError("the device takes one counter width for every layer (CONFIGURE); "
                                 "got %s: use one width, or load a host model with --continue"
                                 % (widths,))
            widths = widths[0]
        cfg["counters"] = int(widths)
    L = len(sizes) - 1
    shapes = [(sizes[i], sizes[i + 1]) for i in range(L)]
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    steps0 = base.steps if cont else 0          # the model's step counter at the start
    epoch0 = base.epochs_trained if cont else 0  # its epoch counter (data order)
    calibrated0 = base.calibrated if cont else False
    start = 0
    if resume is not None:
        from ..model import Model

        m = Model.from_bytes(resume, source="the resume file")
        if list(m.sizes) != sizes or m.seed != int(seed):
            raise ValueError("the resume file is a %s model with seed %d, not %s with seed %d"
                             % ("-".join(map(str, m.sizes)), m.seed,
                                "-".join(map(str, sizes)), int(seed)))
        start = int(m.steps) - steps0
        if start < 0 or start > total:
            raise ValueError("the resume file has %d steps; this run goes from %d to %d"
                             % (m.steps, steps0, steps0 + total))
        plan = dev.load(resume, batch=batch)
        if mirror is not None:
            mirror.load(resume, batch=batch)
    elif init is not None:
        plan = dev.load(base_bytes, batch=batch)
        if mirror is not None:
            mirror.load(base_bytes, batch=batch)
    elif on_device:
        plan = {"on_device": True}
        if mirror is not None:
            mirror.load(base_bytes, batch=batch)
    else:
        plan = dev.configure(sizes, **cfg, **({} if checkpoint_every is None else
                                              {"checkpoint_every": int(checkpoint_every)}))
        if mirror is not None:
            mirror.configure(sizes, **cfg)
    if checkpoint_every is not None and (resume is not None or init is not None or on_device):
        dev.save(every=int(checkpoint_every))  # a loaded model: its first checkpoint now
    if on_device:
        dev.sizes = list(sizes)
        dev.batch = batch
    if reconnect is None and checkpoint_every:
        reconnect = True
    if reconnect is not None and mirror is not None:
        raise ValueError("reconnect= (resuming after a device reset) cannot drive a mirror")
    bar = _progress.bar(epochs * n, "device %s" % info.get("board", "?"), progress)
    if bar is not None and start:
        bar.update(min(start * batch, epochs * n))
    curve = Curve(curve_every or auto_every(epochs * n, batch), L)  # for plots (flipnet.plots)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    sent0 = getattr(dev, "bytes_sent", 0)
    recv0 = getattr(dev, "bytes_received", 0)
    every = getattr(sched, "recalibrate_steps", 0)
    until = getattr(sched, "recalibrate_until", 1.0)
    # a schedule that anneals the counters' shift sends each step's (TRAIN flags bit 3), as
    # Model.fit sets it; the model keeps its starting shift
    anneal = (sched.counter_shift_end is not None
              and int((base.rule if cont else rec).get("counter_threshold", 0)) > 0)
    # per-step results, so that steps redone after a device reset are counted once
    res_n = np.zeros(total, np.int64)
    res_correct = np.zeros(total, np.int64)
    res_changes = np.zeros((total, L), np.int64)
    orders = {}
    resets = 0
    step = start

    def _recover(exc, at):
        """A device reset or a dropped link at step ``at``: the step to go on from."""
        nonlocal dev, resets
        if reconnect is None or (getattr(exc, "status", None) is not None
                                 and exc.status != P.E_STEPS):
            raise exc
        dev, back = _reconnect(dev, reconnect, exc, steps0, at, sizes, batch)
        resets += 1
        if progress:
            sys.stderr.write("\ndevice reset or link lost at step %d (%s): resuming from its "
                             "checkpoint at step %d\n" % (at, exc, back))
        return back

    data = None
    try:
        while data is None:
            while step < total:
                e, s = divmod(step, steps_per_epoch)
                if e not in orders:
                    orders = {e: shuffle_order(n, seed, epoch0 + e)}
                idx = orders[e][s * batch:(s + 1) * batch]
                xb, yb = x8[idx], y[idx]
                ks, ps = sched.step_params(step, total, shapes)
                cal = calibrate and s == 0 and ((e == 0 and not calibrated0) or (
                    e > 0 and sched.recalibrate_every and e % sched.recalibrate_every == 0))
                after = bool(calibrate and every and (steps0 + step + 1) % every == 0
                             and step + 1 <= until * total)
                # a recalibration (not the first calibration) may keep the first layer's shift
                keep = sched.recalibrate_from if (after or (cal and e > 0)) else 0
                shift = sched.counter_shift_at(step, total) if anneal else None
                kw = dict(calibrate=cal, bits=bits, table=table, calibrate_after=after,
                          calibrate_from=keep, counter_shift=shift)
                if reconnect is not None:
                    kw["expected_steps"] = steps0 + step
                try:
                    r = dev.train(xb, yb, ks, ps, **kw)
                except DeviceError as exc:
                    step = _recover(exc, step)
                    continue
                if mirror is not None:
                    kw.pop("expected_steps", None)
                    mirror.train(xb, yb, ks, ps, **kw)
                res_n[step] = len(idx)
                res_correct[step] = r["correct"]
                res_changes[step] = r["changes"][:L]
                step += 1
                if on_step is not None:
                    on_step(step, r)
                if bar is not None:
                    bar.update(len(idx))
                    if step % 4 == 0 or step == total:
                        dt = max(1e-9, time.perf_counter() - t0)
                        seen = int(res_n.sum())
                        link = (getattr(dev, "bytes_sent", 0) - sent0 +
                                getattr(dev, "bytes_received", 0) - recv0) / dt
                        bar.set_postfix(acc="%.3f" % (res_correct.sum() / max(1, seen)),
                                        sps="%.0f" % (seen / dt), link="%.1fkB/s" % (link / 1e3),
                                        refresh=False)
                if pull_every and out and step % pull_every == 0 and step < total:
                    try:
                        write_atomic(out, dev.pull())
                    except DeviceError as exc:
                        step = _recover(exc, step)
            try:  # the final pull, itself resumable: a reset here trains the rest again
                data = dev.pull()
                dstats = dev.stats()
            except DeviceError as exc:
                data = None
                step = _recover(exc, step)
    finally:
        if bar is not None:
            bar.close()
    seen = int(res_n.sum())
    correct = int(res_correct.sum())
    changes = [int(v) for v in res_changes.sum(axis=0)]
    for k in range(start, step):  # the curve from the per-step results, in step order
        curve.step(int(res_n[k]), int(res_correct[k]), [int(v) for v in res_changes[k]])
    seconds = time.perf_counter() - t0
    link = dev.link_stats() if hasattr(dev, "link_stats") else None
    test_acc = n_test = None
    if test_data is not None:
        from ..model import Model

        xt, yt = test_data
        xt8, _ = prepare_inputs(xt, bits, encoding, side)
        test_acc = Model.from_bytes(data).evaluate(xt8, np.asarray(yt))
        n_test = int(xt8.shape[0])
    if test_acc is not None:
        curve.set_validation(test_acc)
    else:
        curve.flush()
    rec_info = {"board": info.get("board"), "port": getattr(dev, "port", None),
                "started": started, "epochs": epochs, "batch": batch, "bits": bits,
                "train_acc": correct / seen if seen else None, "test_acc": test_acc,
                "n_test": n_test, "schedule": sched.to_dict(), "resumed_at": start,
                "continued": cont, "device_stats": dict(dstats), "link": link,
                "curve": curve.points}
    rec_info.update(record or {})
    rec_info.update(steps=step - start, samples=seen, seconds=seconds, resets=resets)
    recipe_keys = dict(rec, input=encoding)
    model = history.adopt(data, base=base if cont else None, recipe=recipe_keys,
                          record=rec_info)
    if side is not None:
        model.image_side = side  # the images it was trained on: predict takes them raw
    if input_scale is not None:
        model.input_scale = input_scale  # the float features it was trained on
    model_bytes = model.to_bytes()
    summary = {
        "board": info.get("board"), "sizes": sizes, "kinds": kinds, "seed": seed,
        "epochs": epochs, "batch": batch, "bits": bits, "steps": step - start,
        "samples": seen, "n_train": n, "resumed_at": start, "continued": cont, "resets": resets,
        "train_acc": correct / seen if seen else None, "test_acc": test_acc,
        "n_test": n_test, "changes": changes,
        "seconds": seconds, "samples_per_s": seen / seconds if seconds > 0 else None,
        "plan": plan, "device_stats": dstats, "model": model, "model_bytes": model_bytes,
        "device_bytes": data, "schedule": sched.to_dict(), "input": encoding,
        "image_side": side, "curve": curve.points,
        "rule": {k: cfg[k] for k in ("vote", "filter", "backprop", "margin")},
        "info": info,
    }
    if link is not None:
        summary["link"] = link
    if out:
        write_atomic(out, model_bytes)
    return summary
