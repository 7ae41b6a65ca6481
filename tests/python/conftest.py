"""Shared fixtures of the Python tests.

Real data comes from $FLIPNET_DATA or ../shared/data (found by flipnet.datasets' search);
tests that need it are skipped, with the places looked at, only if it truly is absent.
"""

import glob
import os
import sys

import numpy as np
import pytest

# From a source checkout with an in-place build (python python/flipnet/_build.py, or
# pip install -e .), import the checkout; otherwise the installed package.
_PY = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                   "python"))
if glob.glob(os.path.join(_PY, "flipnet", "_core*")) and _PY not in sys.path:
    sys.path.insert(0, _PY)


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
