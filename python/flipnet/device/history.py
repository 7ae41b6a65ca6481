"""Where a model has been: model files on their way to a device and back.

A device keeps no metadata of the files it is given (it has no RAM to spare for a host's
training history), and a host-trained model's history can be larger than the room a
microcontroller has for staging the file. So:

* :func:`device_file` strips the metadata blob from a model file before it is sent with
  LOAD (the weights, counters, shifts, rule, seed and step counter are untouched; the
  device checks the file's CRC as before).
* The device records where its model came from in the metadata of the file it answers PULL
  with (docs/protocol.md, PULL): ``origin`` (``"configure"`` or ``"load"``), ``load_crc``
  (the CRC field of the file it received), ``start_steps`` / ``start_samples`` (the model's
  counters when it arrived), ``train_ticks`` / ``tick_hz`` (time spent training since).
  :func:`device_meta` reads it.
* :func:`adopt` turns a pulled file back into a :class:`flipnet.Model` whose metadata is
  the base model's (recipe, training sessions, per-epoch history, user metadata) plus one
  record for the device session (``where: "device"``, board, steps, samples, seconds).
  The base is the model file that was loaded; :func:`check_base` checks that the device's
  model really descends from it (same CRC of the stripped file).
* ``flipnet device load`` keeps a copy of each file it loads in a small local cache
  (:func:`remember`, keyed by that CRC) so that ``flipnet device pull`` finds the base by
  itself (:func:`recall`); ``--base FILE`` names it explicitly.
"""

import json
import os
import struct
import time
import zlib

from ..files import write_atomic
__all__ = ["device_file", "file_crc", "file_meta", "device_meta", "check_base", "adopt",
           "remember", "recall", "cache_dir"]

_HEADER = 64  # fixed part of a v1 model file (docs/format.md)


def _check_file(data, what="model file"):
    from ..model import Model

    return Model.from_bytes(bytes(data), source=what)


def device_file(data):
    """The model file ``data`` without its metadata blob (bytes): what LOAD sends.

    Deterministic: the same model always gives the same bytes (and CRC)."""
    data = bytes(data)
    if len(data) < _HEADER + 4:
        _check_file(data)  # raises the core's error for a short / bad file
    meta_bytes = struct.unpack_from("<I", data, 28)[0]
    end = len(data) - 4 - meta_bytes
    if end < _HEADER or zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        _check_file(data)  # corrupt: let the core say how
        raise ValueError("not a valid model file")  # pragma: no cover - the core raised
    body = bytearray(data[:end])
    struct.pack_into("<I", body, 28, 0)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def file_crc(data):
    """The CRC field of a model file (its last 4 bytes: the CRC-32 of everything before it)
    as 8 hex digits: the file's identity in a device's ``load_crc``. (The CRC-32 of a whole
    file, its own CRC included, is the same constant for every file.)"""
    data = bytes(data)
    return "%08x" % struct.unpack_from("<I", data, len(data) - 4)[0]


def file_meta(data):
    """The raw metadata blob (bytes) of a (checked) model file."""
    data = bytes(data)
    meta_bytes = struct.unpack_from("<I", data, 28)[0]
    return data[len(data) - 4 - meta_bytes:len(data) - 4]


def device_meta(data):
    """The device's provenance record of a pulled file (dict), or None when the file was not
    written by a device (or by an older firmware without one)."""
    try:
        meta = json.loads(file_meta(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("source") != "device":
        return None
    return meta


def check_base(pulled, base):
    """Raise ValueError unless the device model ``pulled`` was loaded from ``base`` (bytes)."""
    dm = device_meta(pulled)
    if dm is None or dm.get("origin") != "load":
        raise ValueError("the device's model was not loaded from a file (it was %s on the "
                         "device), so it has no base model"
                         % ("configured" if dm else "written without device metadata"))
    crc = file_crc(device_file(base))
    if dm.get("load_crc") != crc:
        raise ValueError("the device's model was loaded from another file (CRC %s of the "
                         "file it received; this base gives %s)" % (dm.get("load_crc"), crc))


def adopt(pulled, base=None, recipe=None, record=None, where="device"):
    """A :class:`flipnet.Model` from the pulled file ``pulled`` with the history merged.

    ``base``: the model file (bytes or a Model) the device's model was loaded from, or None
    (a model configured on the device). Its recipe, training sessions, epoch history,
    ``epochs_trained`` and user metadata are kept. ``recipe``: host-side recipe keys to set
    (input encoding, schedule options; the file's rule always wins). ``record``: fields of
    the device session's record; ``steps`` / ``samples`` default to what the model gained on
    the device, ``seconds`` to the device's training time (``train_ticks / tick_hz``).
    """
    from .. import recipes as _recipes
    from ..model import Model

    m = Model.from_bytes(bytes(pulled), source="the model pulled from the device")
    dm = device_meta(pulled) or {}
    merged = dict(m.recipe)
    if base is not None:
        b = base if isinstance(base, Model) else Model.from_bytes(bytes(base),
                                                                    source="the base model")
        # everything but the core state (weights, counters, shifts, rule, seed, counters)
        merged = dict(b.recipe)
        calibrated = b.calibrated or m.calibrated
        m.provenance = b.provenance.copy()
        m.provenance.calibrated = calibrated
        m.meta = dict(b.meta)
    if recipe:
        merged.update({k: v for k, v in dict(recipe).items() if k in _recipes.DEFAULT})
    merged.update(m.rule)
    m.set_recipe(merged)
    rec = dict(record or {})
    start_steps = int(dm.get("start_steps", 0))
    start_samples = int(dm.get("start_samples", 0))
    compute = None
    if dm.get("tick_hz"):
        compute = int(dm.get("train_ticks", 0)) / float(dm["tick_hz"])
    steps = int(rec.pop("steps", m.steps - start_steps))
    samples = int(rec.pop("samples", m.samples - start_samples))
    seconds = rec.pop("seconds", compute if compute is not None else 0.0)
    info = {"board": dm.get("board"), "origin": dm.get("origin"),
            "steps_before": start_steps, "samples_before": start_samples}
    if dm.get("load_crc"):
        info["load_crc"] = dm["load_crc"]
    if compute is not None:
        info["compute_seconds"] = compute
    info.update(rec)
    if steps or samples:
        m.add_training_record(where, steps, samples, seconds or 0.0, **info)
    return m


# ---- the local cache of loaded files ---------------------------------------------------------
def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "flipnet", "loaded")


def _key(compact):
    return "%s-%d" % (file_crc(compact), len(compact))


def remember(data, keep=64):
    """Keep a copy of the model file ``data`` (as loaded onto a device), keyed by the CRC of
    its stripped form; returns the path, or None if the cache cannot be written."""
    data = bytes(data)
    d = cache_dir()
    path = os.path.join(d, _key(device_file(data)) + ".flip")
    try:
        os.makedirs(d, exist_ok=True)
        write_atomic(path, data)
        files = sorted((os.path.getmtime(os.path.join(d, n)), n) for n in os.listdir(d)
                       if n.endswith(".flip"))
        for _, n in files[:-keep] if len(files) > keep else []:
            os.unlink(os.path.join(d, n))
    except OSError:
        return None
    return path


def recall(pulled):
    """The cached base file (bytes) of a pulled device model, or None."""
    dm = device_meta(pulled)
    if not dm or dm.get("origin") != "load" or not dm.get("load_crc"):
        return None
    d = cache_dir()
    try:
        names = [n for n in os.listdir(d) if n.startswith(dm["load_crc"] + "-")]
    except OSError:
        return None
    for n in names:
        try:
            with open(os.path.join(d, n), "rb") as f:
                data = f.read()
            check_base(pulled, data)
            os.utime(os.path.join(d, n), (time.time(), time.time()))
            return data
        except (OSError, ValueError):
            continue
    return None
