"""The cffi binding follows the public header: every declared function is in flipnet._core."""

import importlib.util
import os
import re

import pytest

from flipnet._core import ffi, lib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HEADER = os.path.join(ROOT, "csrc", "include", "flipnet", "flipnet.h")


@pytest.fixture(scope="module")
def header():
    if not os.path.isfile(HEADER):
        pytest.skip("no source checkout (csrc/include/flipnet/flipnet.h) beside the tests")
    with open(HEADER, encoding="utf-8") as f:
        return f.read()


def test_every_header_function_is_bound(header):
    code = re.sub(r"/\*.*?\*/", "", header, flags=re.DOTALL)
    names = set(re.findall(r"\b(flipnet_[a-z0-9_]+)\s*\(", code))
    assert {"flipnet_train_step", "flipnet_file_read", "flipnet_rand"} <= names
    missing = [n for n in sorted(names) if not hasattr(lib, n)]
    assert not missing


def test_header_constants_and_structs(header):
    for name in re.findall(r"#define\s+(FLIPNET_[A-Z_]+)\s+\d+u?\b", header):
        value = int(re.search(r"#define\s+%s\s+(\d+)" % name, header).group(1))
        assert getattr(lib, name) == value, name
    # k and p_q16 per layer, then the five AdamW floats
    assert ffi.sizeof("flipnet_model") > 0 and ffi.sizeof("flipnet_step_params") == 64 + 5 * 4


def test_cdef_derivation_parses(header):
    spec = importlib.util.spec_from_file_location(
        "_flipnet_build", os.path.join(ROOT, "python", "flipnet", "_build.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cdef = mod.header_cdef(HEADER)
    assert "#include" not in cdef and "extern" not in cdef and "/*" not in cdef
    assert "flipnet_train_step(" in cdef and "FLIPNET_MAX_LAYERS 8" in cdef
