"""A model file's metadata (docs/format.md: the UTF-8 JSON blob after the weights): the recipe,
calibration state, epochs trained, training sessions (where: host/device, steps, samples,
seconds, flipnet version), per-epoch history and the user's free-form ``model.meta``.

:class:`Provenance` is what a model has been through; :func:`encode` writes a model's
metadata, :func:`apply` gives a model read from a file the metadata the file holds. The core
state (weights, counters, shifts, rule, seed, step counter) is not here: the core writes it.
"""

import json
import time

import numpy as np

from . import recipes as _recipes
from ._version import __version__
from .inputs import FeatureScale, check_encoding, make_scale

__all__ = ["META_FORMAT", "Provenance", "json_default", "timestamp", "encode", "apply",
           "add_training_record"]

#: value of the metadata's "format" entry
META_FORMAT = "flipnet-meta/1"


def json_default(o):
    """NumPy scalars and arrays as plain JSON values (``json.dumps(..., default=...)``)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError("%s is not JSON serializable" % type(o).__name__)


def timestamp():
    """The current UTC time as ``2024-01-31T12:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Provenance:
    """What a model has been through, saved in its metadata.

    ``calibrated`` (its shifts have been set), ``epochs_trained``, ``sessions`` (one record
    per training session: a fit on the host, a session on a device) and ``epochs`` (every
    epoch's :class:`flipnet.History` record across fits, with the index of its session).
    """

    def __init__(self, calibrated=False):
        self.calibrated = bool(calibrated)
        self.epochs_trained = 0
        self.sessions = []
        self.epochs = []

    def copy(self):
        """An independent copy (the records copied one by one)."""
        c = Provenance(self.calibrated)
        c.epochs_trained = self.epochs_trained
        c.sessions = [dict(r) for r in self.sessions]
        c.epochs = [dict(r) for r in self.epochs]
        return c

    def add_epoch(self, record):
        """One more epoch trained, of the session that :meth:`add_session` adds next."""
        self.epochs.append(dict(record, session=len(self.sessions)))
        self.epochs_trained += 1

    def add_session(self, record):
        self.sessions.append(record)


def add_training_record(model, where, steps, samples, seconds, **info):
    """Record a training session done elsewhere in ``model``'s metadata (see
    :meth:`flipnet.Model.add_training_record`); returns the record."""
    rec = {"where": str(where), "steps": int(steps), "samples": int(samples),
           "seconds": float(seconds), "flipnet_version": __version__, "recorded": timestamp()}
    rec.update(info)
    json.dumps(rec, default=json_default)  # fail now rather than at save()
    p = model.provenance
    p.add_session(rec)
    if info.get("epochs"):
        p.epochs_trained += int(info["epochs"])
    p.calibrated = p.calibrated or bool(any(model.shifts))
    return rec


def _scale_json(scale):
    if isinstance(scale, FeatureScale):
        return scale.to_dict()
    return None if scale is None else {"method": scale}


def encode(model):
    """The metadata blob of ``model`` (UTF-8 JSON bytes)."""
    p = model.provenance
    meta = {
        "format": META_FORMAT,
        "flipnet_version": __version__,
        "saved": timestamp(),
        "arch": model.arch,
        "kinds": model.kinds,
        "recipe": model.recipe,
        "image_side": model.image_side,
        "input_scale": _scale_json(model.input_scale),
        "calibrated": p.calibrated,
        "epochs_trained": p.epochs_trained,
        "training": p.sessions,
        "history": p.epochs,
        "user": model.meta,
    }
    return json.dumps(meta, sort_keys=True, default=json_default).encode("utf-8")


def _field(meta, key, default, kind, what):
    """meta[key] (default when absent) as ``kind``; a value of another type is a damaged file."""
    v = meta.get(key, default)
    ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 0) if kind is int \
        else isinstance(v, kind)
    if not ok:
        from .errors import InvalidFieldError

        raise InvalidFieldError(
            "the model file's metadata field %r should be %s, got %s (%.60r); the file was "
            "damaged or written by a different program: re-save it with flipnet or drop its "
            "metadata" % (key, what if kind is not int else "a non-negative integer",
                          type(v).__name__, v))
    return kind(v)


def apply(model, raw):
    """Give ``model``, just read from a model file, the file's metadata blob ``raw`` (bytes;
    empty for none): its recipe (the rule fields from the core state win), image side,
    provenance and user metadata. A blob that is not a JSON object is kept as
    ``meta["raw_metadata"]``; an input encoding this version does not know, or one that does
    not fit the model's input width, becomes ``"centered"``."""
    recipe = _recipes.get(None)
    recipe.update(model.rule)
    recipe["input"] = "centered"  # unless the metadata says otherwise
    prov = Provenance(calibrated=any(model.shifts) or model.steps > 0)
    user = {}
    if raw:
        try:
            meta = json.loads(raw.decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except ValueError:
            meta = {"user": {"raw_metadata": raw.decode("latin-1")}}
        rec = meta.get("recipe")
        if isinstance(rec, dict):
            recipe.update({k: v for k, v in rec.items() if k in _recipes.DEFAULT})
            recipe.update(model.rule)  # the file's rule fields win
            try:
                recipe["input"] = check_encoding(recipe.get("input"), model.n_inputs)
            except ValueError:  # an encoding this version does not know
                recipe["input"] = "centered"
        prov.calibrated = bool(meta.get("calibrated", prov.calibrated))
        prov.epochs_trained = _field(meta, "epochs_trained", 0, int, "an integer")
        prov.sessions = _field(meta, "training", [], list, "a list")
        prov.epochs = _field(meta, "history", [], list, "a list")
        user = _field(meta, "user", {}, dict, "an object")
    model.provenance = prov
    model.meta = user
    model.set_recipe(recipe)
    scale = meta.get("input_scale") if raw else None
    model.input_scale = None
    if scale is not None:
        # strict: float features quantized another way would be silently misread
        try:
            if not isinstance(scale, dict):
                raise ValueError("not an object")
            model.input_scale = make_scale(scale)
        except ValueError as exc:
            from .errors import InvalidFieldError

            raise InvalidFieldError(
                "the model file's input_scale (how float features become its int8 inputs, "
                "docs/format.md) is unusable: %s; the file was damaged or written by a "
                "different program" % exc) from None
    side = meta.get("image_side") if raw else None
    model.image_side = None
    if isinstance(side, int) and not isinstance(side, bool):
        try:
            model.image_side = side
        except ValueError:  # not a side this encoding takes: the file's metadata is stale
            pass
