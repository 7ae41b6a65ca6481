"""Access to the compiled core (flipnet._core), with a clear message when it is not built."""

try:
    from ._core import ffi, lib  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "flipnet's C extension (flipnet._core) is not built or cannot be loaded (%s). "
        "Install the package with `pip install .` (or `pip install -e .` for development), "
        "or build it in place with `python python/flipnet/_build.py` from the repository root."
        % exc
    ) from exc
