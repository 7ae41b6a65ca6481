"""Access to the compiled core (flipnet._core), with a clear message when it is not built.

In a source checkout (csrc/ beside python/), a warning says when the built extension is older
than the C sources, since other work may change csrc/ under a development build.
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


_check_fresh()
