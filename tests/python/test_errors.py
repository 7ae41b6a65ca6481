"""Status codes of the core map to exception classes (docs: ../shared/docs/DESIGN.md §5)."""

import pytest

import flipnet
from flipnet import errors
from flipnet._core import ffi, lib


def _status_codes():
    return {name: getattr(lib, name) for name in dir(lib)
            if name.startswith("FLIPNET_E_") and isinstance(getattr(lib, name), int)}


def test_every_status_code_has_its_own_class():
    codes = _status_codes()
    assert len(codes) >= 13
    classes = {}
    for name, code in codes.items():
        exc = errors.error_for_status(code)
        assert type(exc) is not errors.UnknownStatusError, name
        assert type(exc) is not errors.FlipnetError, name
        assert isinstance(exc, errors.FlipnetError)
        assert exc.status == code
        classes[type(exc)] = name
    assert len(classes) == len(codes), "two status codes share a class"


def test_argument_and_format_families():
    for name, code in _status_codes().items():
        exc = errors.error_for_status(code)
        if name.startswith("FLIPNET_E_FMT_"):
            assert isinstance(exc, errors.ModelFileError), name
        elif name == "FLIPNET_E_ABI":  # a build problem, not a bad argument
            assert isinstance(exc, errors.ABIError) and not isinstance(exc, ValueError)
        else:
            assert isinstance(exc, ValueError), name


def test_check_message_has_core_string_and_context():
    assert errors.check(0) == 0
    with pytest.raises(errors.LabelError) as info:
        errors.check(lib.FLIPNET_E_LABEL, "flipnet_train_step(batch=3)")
    core = ffi.string(lib.flipnet_status_str(lib.FLIPNET_E_LABEL)).decode()
    msg = str(info.value)
    assert core in msg and "flipnet_train_step(batch=3)" in msg and "-6" in msg
    assert isinstance(info.value, ValueError)


def test_unknown_status():
    with pytest.raises(errors.UnknownStatusError) as info:
        errors.check(-999)
    assert isinstance(info.value, flipnet.FlipnetError)


def test_public_names_exported():
    for name in ("FlipnetError", "ModelFileError", "ChecksumError", "ShapeError", "LabelError"):
        assert getattr(flipnet, name) is getattr(errors, name)
