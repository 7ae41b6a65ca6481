"""conftest.py's CI rule: under CI=true every skip fails the run, except in tests marked
hardware; without CI the same skips stay skips."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = '''
import pytest

def test_skips_inside():
    pytest.skip("no tool")

@pytest.mark.skipif(True, reason="never here")
def test_skipif():
    pass

@pytest.fixture
def needs_data():
    pytest.skip("no data")

def test_fixture_skips(needs_data):
    pass

@pytest.mark.hardware
def test_board():
    pytest.skip("set FLIPNET_TEST_PORT")

def test_passes():
    pass
'''

MODULE_SKIP = '''
import pytest
pytest.importorskip("flipnet_no_such_module_for_the_ci_test")

def test_never():
    pass
'''


def _run(tmp_path, ci):
    for name in ("conftest.py", "synth.py"):
        shutil.copy(os.path.join(HERE, name), str(tmp_path / name))
    (tmp_path / "test_cases.py").write_text(CASES)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    env = dict(os.environ)
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                        "--continue-on-collection-errors", str(tmp_path)],
                       cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    return r.returncode, r.stdout


def test_skips_fail_under_ci_except_hardware(tmp_path):
    rc, out = _run(tmp_path, ci=True)
    assert rc != 0, out
    # a skip in the test is a failure, one in its setup (skipif, a fixture) an error
    assert "FAILED test_cases.py::test_skips_inside" in out, out
    for name in ("test_skipif", "test_fixture_skips"):
        assert "ERROR test_cases.py::%s" % name in out, out
    assert "SKIPPED [1] test_cases.py" in out and "set FLIPNET_TEST_PORT" in out, out
    assert "PASSED test_cases.py::test_passes" in out, out
    assert "ERROR test_module_skip.py" in out and "skipped under CI=true" in out, out
    assert "1 failed, 1 passed, 1 skipped, 3 errors" in out, out


def test_skips_stay_skips_without_ci(tmp_path):
    rc, out = _run(tmp_path, ci=False)
    assert rc == 0, out
    assert "1 passed, 5 skipped" in out, out
