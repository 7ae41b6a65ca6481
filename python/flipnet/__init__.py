"""flipnet: integer-only, gradient-free training of tiny binary/ternary neural networks.

    import flipnet
    (x, y), (xt, yt) = flipnet.datasets.load_mnist()
    model = flipnet.Model.ternary([784, 256, 256, 10], seed=0)
    history = model.fit(x, y, epochs=10, batch_size=64, validation_data=(xt, yt))
    model.save("mnist.flip"); model = flipnet.load("mnist.flip")

The compiled core (flipnet._core) is loaded on first use of Model / load, so the pure-Python
parts (datasets, recipes, schedule, errors) import without it.
"""

from . import errors, recipes  # noqa: F401
from ._version import __version__  # noqa: F401
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from .schedule import Schedule  # noqa: F401

_LAZY = {"Model": "model", "History": "training", "load": "model", "quantize": "model",
         "datasets": None, "schedule": None, "cli": None, "data": None,
         "connect": "device.model", "DeviceModel": "device.model"}

__all__ = ["Model", "History", "load", "quantize", "Schedule", "recipes", "datasets", "data",
           "connect", "DeviceModel", "errors", "__version__"] + list(_errors_all)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod = _LAZY[name]
        if mod is None:
            return importlib.import_module("." + name, __name__)
        value = getattr(importlib.import_module("." + mod, __name__), name)
        globals()[name] = value
        return value
    raise AttributeError("module 'flipnet' has no attribute %r" % name)
