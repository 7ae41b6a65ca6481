"""Files written whole or not at all: the one atomic write behind every file flipnet writes
(model files, exports, downloaded data sets, the device tools' cache, pulled models, the host
twin's executable).

The new content goes to a temporary file beside the target (same directory, so the same file
system), is flushed to the disk (fsync), then renamed over the target (``os.replace``, atomic),
and the directory is fsynced where the OS allows it (POSIX), so that the rename itself lasts
a power cut. A reader sees the old file or the new one, never part of one. On any failure,
an interrupt included, the temporary file is removed and the target is left as it was.
"""

import contextlib
import errno
import os

__all__ = ["atomic_path", "write_atomic"]


def _fsync_path(path, directory=False):
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if directory else os.O_RDWR)
    except OSError:
        if directory:  # e.g. Windows: a directory cannot be opened; nothing to sync
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """A context that yields the temporary path to write ``path``'s new content to (by any
    means: ``open`` it, or let a compiler or a download write it). When the block ends without
    an exception, the temporary file becomes ``path`` as the module docstring says; when it
    raises, the temporary file is removed. OSErrors about the temporary file name ``path``.

        with atomic_path("model.flip") as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        try:
            yield tmp
            _fsync_path(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            if exc.filename != tmp:
                raise
            raise type(exc)(exc.errno, exc.strerror or str(exc), path) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    _fsync_path(os.path.dirname(os.path.abspath(path)), directory=True)


def write_atomic(path, data):
    """Write ``path`` atomically (see the module docstring) with ``data``: bytes, or a
    function that writes the content to the binary file object it is given. Returns the size
    of the file written. OSErrors name ``path`` (not the temporary file)."""
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            try:
                if callable(data):
                    data(f)
                else:
                    f.write(data)
                f.flush()
            except OSError as exc:
                if exc.filename is not None:
                    raise
                raise type(exc)(exc.errno, exc.strerror or str(exc), path) from None
    return os.path.getsize(path)
