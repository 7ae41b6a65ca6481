"""Checks of a real board (or any device) behind a serial port; skipped unless
FLIPNET_TEST_PORT is set, e.g.

    FLIPNET_TEST_PORT=/dev/ttyACM0 python -m pytest tests/python/test_device_hardware.py
    FLIPNET_TEST_BAUD=115200 (default)

The board's model is replaced. What is checked: INFO sanity, the malformed-input battery,
random frames, and a short training run (synthetic data, tests/python/synth.py)
bit-identical to the in-process core. These are the only tests marked ``hardware``: the only
ones allowed to skip under CI=true (conftest.py).
"""

import os

import pytest

PORT = os.environ.get("FLIPNET_TEST_PORT")
pytestmark = [pytest.mark.hardware,
              pytest.mark.skipif(not PORT, reason="set FLIPNET_TEST_PORT to a device's port")]


@pytest.fixture(scope="module")
def board():
    from flipnet.device.client import Device

    with Device(PORT, baudrate=int(os.environ.get("FLIPNET_TEST_BAUD", "115200")),
                timeout=10.0) as dev:
        yield dev


def test_info(board):
    info = board.info(refresh=True)
    assert info["protocol"] == 1 and info["board"]
    assert info["max_frame"] >= 1024


def test_malformed_input(board):
    from flipnet.device import selftest

    selftest.malformed_battery(board, seed=21)
    selftest.random_frames(board, count=50, seed=22)


def test_training_matches_the_core(board, synthetic):
    from flipnet.device.session import InProcessTwin, train_on_device

    from test_device_twin import SCHED, assert_same_model

    (x, y), _ = synthetic
    info = board.info()
    hidden = min(128, info["largest_hidden"]) if info["largest_hidden"] else 32
    ref = InProcessTwin()
    s = train_on_device(board, x[:48], y[:48], [784, hidden, 10], seed=2, batch=8,
                        recipe="paper", schedule=SCHED, bits=4, progress=False, mirror=ref)
    assert s["device_stats"]["trained"] == 48
    assert_same_model(s["model_bytes"], ref.pull())
