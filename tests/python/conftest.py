"""Shared fixtures of the Python tests, and the CI rule on skips.

Tests that check exactness (C core vs reference.py, twin vs core, firmware vs host, ...) run on
the synthetic data of ``synth.py`` (the ``synthetic`` fixtures), never on files that might be
missing. Real MNIST (the ``mnist`` fixtures) is only for tests where accuracy or the data set
itself is the point; it comes from $FLIPNET_DATA or ../shared/data (found by flipnet.datasets'
search), and those tests are skipped, with the places looked at, only if it truly is absent.

Under ``CI=true`` a skip is a failure (a missing tool, package or data set must not pass
silently), except for tests marked ``hardware`` (they need a real board on
FLIPNET_TEST_PORT). .ci/run installs everything the other tests need.
"""

import glob
import os
import sys

import numpy as np
import pytest

import synth

CI = os.environ.get("CI", "").strip().lower() == "true"

# From a source checkout with an in-place build (python python/flipnet/_build.py, or
# pip install -e .), import the checkout; otherwise the installed package.
_PY = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                   "python"))
if glob.glob(os.path.join(_PY, "flipnet", "_core*")) and _PY not in sys.path:
    sys.path.insert(0, _PY)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "hardware: needs a real board on FLIPNET_TEST_PORT; the only tests that may "
        "skip under CI=true")
    config.addinivalue_line(
        "markers", "slow: takes tens of seconds (builds a wheel, a venv, ...); runs in CI all "
        "the same (deselect locally with -m 'not slow')")


def _skip_reason(rep):
    lr = rep.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2])
    return str(lr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """CI=true: a skipped test (in setup or in the test) fails, unless marked hardware."""
    outcome = yield
    rep = outcome.get_result()
    if CI and rep.skipped and not hasattr(rep, "wasxfail") and \
            item.get_closest_marker("hardware") is None:
        rep.outcome = "failed"
        rep.longrepr = "skipped under CI=true, which allows skips only in tests marked " \
                       "hardware: %s" % _skip_reason(rep)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """CI=true: a module skipped while being collected (pytest.importorskip at module level,
    pytest.skip(allow_module_level=True)) fails."""
    outcome = yield
    rep = outcome.get_result()
    if CI and rep.skipped:
        rep.outcome = "failed"
        rep.longrepr = "%s skipped under CI=true: %s" % (collector.nodeid, _skip_reason(rep))


@pytest.fixture(scope="session")
def synthetic():
    """MNIST-shaped synthetic data ((x, y), (xt, yt)), 4,000 + 2,000 samples (synth.py)."""
    return synth.digits(4000, 2000)


@pytest.fixture(scope="session")
def synthetic_small(synthetic):
    """2,000 training and 500 test samples of the synthetic data."""
    (x, y), (xt, yt) = synthetic
    return (x[:2000], y[:2000]), (xt[:500], yt[:500])


@pytest.fixture(scope="session")
def synthetic_dir(synthetic, tmp_path_factory):
    """The synthetic data as the four MNIST IDX files (raw) in a directory, for commands that
    read a data set (``--data-dir``)."""
    d = tmp_path_factory.mktemp("synthetic-idx")
    (x, y), (xt, yt) = synthetic
    synth.write_idx(str(d), x, y, xt, yt)
    return str(d)


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST ((x, y), (xt, yt)), uint8; skipped if not present locally (never downloads)."""
    from flipnet import datasets
    from flipnet.errors import DatasetNotFoundError

    try:
        return datasets.load_mnist(download=False)
    except DatasetNotFoundError as exc:
        # an installed flipnet run from elsewhere: look beside this checkout too
        d = os.path.dirname(os.path.abspath(__file__))
        while os.path.dirname(d) != d:
            cand = os.path.join(d, "shared", "data", "mnist")
            if datasets.find_dataset("mnist", cand):
                return datasets.load_mnist(cand, download=False)
            d = os.path.dirname(d)
        pytest.skip("MNIST not available locally: %s" % exc)


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """2,000 training and 500 test samples of MNIST."""
    (x, y), (xt, yt) = mnist
    return (x[:2000], y[:2000]), (xt[:500], yt[:500])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def twin_exe():
    """The host twin of the training firmware (firmware/boards/host), built once."""
    import shutil
    from flipnet.device import sim
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")) or sim.repo_root() is None:
        pytest.skip("no C compiler or no source tree to build the host twin")
    return sim.build_twin()
