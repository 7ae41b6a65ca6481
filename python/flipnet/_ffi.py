"""Access to the compiled core (flipnet._core), with a clear message when it is not built.

At import, the core's binary interface is checked against the one these bindings are written
for (``flipnet_abi_check``: the FLIPNET_ABI number and the public struct sizes), so a stale
extension fails loudly instead of misreading memory. In a source checkout (csrc/ beside
python/), a warning says when the built extension is older than the C sources, since other
work may change csrc/ under a development build.
"""

import glob
import os
import warnings

try:
    from ._core import ffi, lib  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "flipnet's C extension (flipnet._core) is not built or cannot be loaded (%s). "
        "Install the package with `pip install .` (or `pip install -e .` for development), "
        "or build it in place with `python python/flipnet/_build.py` from the repository root."
        % exc
    ) from exc


#: FLIPNET_ABI of the flipnet.h these bindings are written for
ABI = 2


def _check_abi():
    try:
        status = lib.flipnet_abi_check(ABI, ffi.sizeof("flipnet_model"), ffi.sizeof("flipnet_arch"),
                                       ffi.sizeof("flipnet_step_params"),
                                       ffi.sizeof("flipnet_step_stats"),
                                       ffi.sizeof("flipnet_model_view"))
    except (AttributeError, ffi.error):  # an extension older than the ABI check itself
        status = -8
    if status != 0:
        raise ImportError(
            "flipnet's C extension (%s) was built from another flipnet.h than this package's "
            "Python code expects (ABI %d); rebuild it: `pip install .` (or `pip install -e .`, "
            "or `python python/flipnet/_build.py` in a checkout)"
            % (getattr(_core_module(), "__file__", "flipnet._core"), ABI))


def _core_module():
    from . import _core

    return _core


def _check_fresh():
    from . import _core

    here = os.path.dirname(os.path.abspath(__file__))
    csrc = os.path.join(here, "..", "..", "csrc")
    so = getattr(_core, "__file__", None)
    if not so or not os.path.isdir(csrc) or os.path.dirname(os.path.abspath(so)) != here:
        return
    sources = glob.glob(os.path.join(csrc, "src", "*.[ch]")) + \
        glob.glob(os.path.join(csrc, "include", "flipnet", "*.h"))
    try:
        newest = max(os.path.getmtime(p) for p in sources) if sources else 0
        if newest > os.path.getmtime(so) + 1:
            warnings.warn("flipnet._core (%s) is older than the C sources in %s; rebuild with "
                          "`python python/flipnet/_build.py` or `pip install -e .`"
                          % (so, os.path.normpath(csrc)), stacklevel=3)
    except OSError:
        pass


_check_abi()
_check_fresh()
