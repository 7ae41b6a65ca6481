"""Threads for the core's passes (docs/speed.md).

The C core starts no threads: it splits each pass over a layer into parts and hands them to a
runner. These bindings bring one, a small pool of POSIX threads (``python/flipnet/_pool.c``),
one pool per thread count, started on first use and kept for the process. Results are
bit-identical for any thread count, so the number is a speed setting only.

``threads=None`` everywhere means :func:`default`: the ``FLIPNET_THREADS`` environment variable
if set, else the value given to :func:`set_default`, else the machine's cores
(``os.cpu_count()``), at most ``FLIPNET_MAX_THREADS`` (64).
"""

import os

from ._ffi import ffi, lib
from .errors import ArgumentError

__all__ = ["MAX_THREADS", "default", "set_default", "resolve", "runner", "available_kernels",
           "kernels", "use_kernels"]

MAX_THREADS = int(lib.FLIPNET_MAX_THREADS)
_pools = {}  # threads -> fnp_pool * (kept for the process)
_default = None


def _check(n, what="threads"):
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise ArgumentError("%s must be an integer in 1..%d, got %r" % (what, MAX_THREADS, n))
    n = int(n.__index__())
    if not 1 <= n <= MAX_THREADS:
        raise ArgumentError("%s must be in 1..%d, got %d" % (what, MAX_THREADS, n))
    return n


def default():
    """The thread count used when a call passes ``threads=None``."""
    env = os.environ.get("FLIPNET_THREADS")
    if env:
        try:
            return _check(int(env), "FLIPNET_THREADS")
        except ValueError:
            raise ArgumentError("FLIPNET_THREADS must be an integer in 1..%d, got %r"
                                % (MAX_THREADS, env)) from None
    if _default is not None:
        return _default
    return max(1, min(MAX_THREADS, os.cpu_count() or 1))


def set_default(threads):
    """Set the process-wide default thread count (``None``: back to the machine's cores)."""
    global _default
    _default = None if threads is None else _check(threads)


def resolve(threads):
    """``threads`` checked, or :func:`default` for None."""
    return default() if threads is None else _check(threads)


def runner(threads):
    """``(runner pointer, threads)`` for the core's ``_mt`` calls: ``ffi.NULL`` and 1 for one
    thread, else a pool's runner and the threads it really has (fewer when the OS refused
    some)."""
    n = resolve(threads)
    if n == 1:
        return ffi.NULL, 1
    pool = _pools.get(n)
    if pool is None:
        pool = lib.fnp_create(n)
        if pool == ffi.NULL:
            raise MemoryError("flipnet could not start a pool of %d threads" % n)
        _pools[n] = pool
    return lib.fnp_runner(pool), int(lib.fnp_threads(pool))


def _forget_pools():  # a forked child has none of the parent's threads
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def available_kernels():
    """Names of the kernel sets this build and CPU run, fastest first (``flipnet_kernels_
    available``); every one gives the same bits."""
    out, i = [], 0
    while True:
        p = lib.flipnet_kernels_available(i)
        if p == ffi.NULL:
            return out
        out.append(ffi.string(p).decode())
        i += 1


def kernels():
    """The name of the kernel set in use."""
    return ffi.string(lib.flipnet_kernels()).decode()


def use_kernels(name):
    """Use the kernel set ``name`` ("auto": the fastest available) for the whole process."""
    if lib.flipnet_use_kernels(str(name).encode()) != 0:
        raise ArgumentError("kernel set %r is not available here; available: %s (or 'auto')"
                            % (name, ", ".join(available_kernels())))
