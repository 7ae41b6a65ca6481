"""The golden values pinned in the C tests (tests/c) are reproduced by their generator,
tests/c/golden.py, from the NumPy reference (python/flipnet/reference.py) and, for the FP32
hybrid run, the core."""

import copy
import importlib.util
import os
import subprocess
import sys

import pytest

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "c", "golden.py")


@pytest.fixture(scope="module")
def golden():
    spec = importlib.util.spec_from_file_location("flipnet_golden", GOLDEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def computed(golden):
    return golden.compute()


def test_every_pinned_value_is_reproduced(golden, computed):
    pins = golden.pinned()
    assert len(pins["train"]) == 3 and len(pins["counters"]) == 18
    assert golden.check(computed, pins) == []


def test_a_changed_pin_is_reported(golden, computed):
    """The comparison is not vacuous: one value off anywhere is reported."""
    pins = golden.pinned()
    for edit in ("train", "counters", "FN_INTEGER_RUN_CRC1", "FN_HYBRID_RUN_CRC"):
        bad = copy.deepcopy(pins)
        if edit == "train":
            bad["train"][2][-1] ^= 1
        elif edit == "counters":
            bad["counters"]["g_btb_h1"][3] += 1
        else:
            bad[edit] += 1
        assert len(golden.check(computed, bad)) == 1, edit


def test_command_line(golden):
    r = subprocess.run([sys.executable, GOLDEN, "--check"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    assert r.returncode == 0 and "25 pinned tables and constants reproduced" in r.stdout, r.stdout
    r = subprocess.run([sys.executable, GOLDEN], stdout=subprocess.PIPE, text=True, timeout=300)
    assert r.returncode == 0
    assert "#define FN_HYBRID_RUN_CRC %du" % golden.pinned()["FN_HYBRID_RUN_CRC"] in r.stdout
