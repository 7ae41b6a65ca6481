"""Exceptions of flipnet.

Every status code of the C core (``flipnet_status`` in ``csrc/include/flipnet/flipnet.h``)
maps to one exception class; :func:`check` raises it with the core's own message
(``flipnet_status_str``) plus what the Python side was doing. The base class
:class:`FlipnetError` is never raised directly, so ``except flipnet.FlipnetError`` catches
everything flipnet raises on purpose.

Argument errors (bad pointer, argument, shape, memory size, alignment, label, input value)
also subclass :class:`ValueError`; model file errors form the :class:`ModelFileError`
family. The Python side raises the same classes for problems it finds before calling the
core (wrong dtype, wrong shape, labels out of range, ...).
"""

__all__ = [
    "FlipnetError",
    "ArgumentError",
    "NullPointerError",
    "ShapeError",
    "BufferSizeError",
    "AlignmentError",
    "LabelError",
    "InputRangeError",
    "ABIError",
    "ModelFileError",
    "BadMagicError",
    "UnsupportedVersionError",
    "TruncatedFileError",
    "FileSizeError",
    "ChecksumError",
    "InvalidFieldError",
    "UnknownStatusError",
    "DatasetError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "DownloadError",
    "DataFileError",
    "check",
    "error_for_status",
]


class FlipnetError(Exception):
    """Base class of every flipnet error (never raised directly)."""

    #: C status code this class stands for (None for Python-side only errors)
    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


# --- argument errors (also ValueError) ----------------------------------------------------
class ArgumentError(FlipnetError, ValueError):
    """An argument is out of range (FLIPNET_E_ARG) or of the wrong type/dtype."""

    status = -2


class NullPointerError(FlipnetError, ValueError):
    """A required pointer was NULL (FLIPNET_E_NULL); a bug in the binding if seen."""

    status = -1


class ShapeError(FlipnetError, ValueError):
    """Layer sizes or array shapes are invalid (FLIPNET_E_SHAPE)."""

    status = -3


class BufferSizeError(FlipnetError, ValueError):
    """A memory area is smaller than the core's size query answered (FLIPNET_E_NOMEM)."""

    status = -4


class AlignmentError(FlipnetError, ValueError):
    """A memory area is not 4-byte aligned (FLIPNET_E_ALIGN)."""

    status = -5


class LabelError(FlipnetError, ValueError):
    """A label is negative or >= the number of classes (FLIPNET_E_LABEL)."""

    status = -6


class InputRangeError(FlipnetError, ValueError):
    """An int8 input value is -128; inputs must be in [-127, 127] (FLIPNET_E_INPUT)."""

    status = -7


class ABIError(FlipnetError):
    """The compiled core and these bindings come from different flipnet.h versions
    (FLIPNET_E_ABI): rebuild the extension (``pip install .``)."""

    status = -8


# --- model file errors ----------------------------------------------------------------------
class ModelFileError(FlipnetError):
    """A model file cannot be read (family of the FLIPNET_E_FMT_* codes)."""


class BadMagicError(ModelFileError):
    """Not a flipnet model file (wrong magic)."""

    status = -20


class UnsupportedVersionError(ModelFileError):
    """The file's format version is one this flipnet does not know."""

    status = -21


class TruncatedFileError(ModelFileError):
    """The file ends before the sizes it declares."""

    status = -22


class FileSizeError(ModelFileError):
    """Size fields of the file disagree with each other or with the layers."""

    status = -23


class ChecksumError(ModelFileError):
    """CRC-32 mismatch: the file is corrupted."""

    status = -24


class InvalidFieldError(ModelFileError):
    """A field of the file has an invalid value (layer kind, shift, ...)."""

    status = -25


class UnknownStatusError(FlipnetError):
    """The core returned a status code this binding does not know."""


# --- data sets (Python side only) ---------------------------------------------------------
class DatasetError(FlipnetError):
    """Base class of data set loading errors."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The data set files were not found anywhere flipnet looked (and could not be downloaded)."""


class IDXFormatError(DatasetError, ValueError):
    """An IDX file is malformed (magic, dimensions, size)."""


class DownloadError(DatasetError):
    """A download failed or its SHA-256 did not match (the partial file is deleted)."""


class DataFileError(DatasetError, ValueError):
    """A data file (``.npz``, ``.csv``, a directory of IDX files; :mod:`flipnet.data`) cannot be
    read as labelled samples: the message says which file, where and what to do."""


_BY_STATUS = {
    cls.status: cls
    for cls in (
        NullPointerError,
        ArgumentError,
        ShapeError,
        BufferSizeError,
        AlignmentError,
        LabelError,
        InputRangeError,
        ABIError,
        BadMagicError,
        UnsupportedVersionError,
        TruncatedFileError,
        FileSizeError,
        ChecksumError,
        InvalidFieldError,
    )
}


def _status_str(status):
    try:
        from ._core import ffi, lib
    except ImportError:  # pragma: no cover - only without the extension
        return "status %d" % status
    return ffi.string(lib.flipnet_status_str(int(status))).decode("utf-8", "replace")


def error_for_status(status, context=None):
    """The exception instance for a nonzero status code (not raised)."""
    status = int(status)
    cls = _BY_STATUS.get(status, UnknownStatusError)
    msg = "%s (flipnet status %d)" % (_status_str(status), status)
    if context:
        msg = "%s: %s" % (context, msg)
    return cls(msg, status)


def check(status, context=None):
    """Raise the exception class of ``status`` if it is not FLIPNET_OK (0).

    ``context`` says what was being done (``"flipnet_train_step(batch=64)"``); it is put in
    front of the core's message.
    """
    if status != 0:
        raise error_for_status(status, context)
    return status
