"""The firmware under qemu-system-arm (MPS2 AN386 Cortex-M4F, AN385 M3, AN500 M7): trains
from samples streamed over the emulated UART (synthetic data, synth.py: the checks never
depend on MNIST being present), bit-identical to the host twin and the in-process core;
survives malformed input and a faulty link; fits the RAM/flash bar.

Needs qemu-system-arm, and a built image (built here with cmake + arm-none-eabi-gcc when
those are installed; else the tests are skipped).
"""

import os
import re
import shutil

import numpy as np
import pytest
from lean import LEAN

from flipnet.device import sim
from flipnet.device.client import Device, DeviceError
from flipnet.device.session import InProcessTwin, train_on_device

from test_device_twin import (SCHED, assert_same_model, check_random_frames,  # noqa: E402
                              run_battery)

ARCH = [784, 128, 10]
BAR = 64 * 1024


def _firmware(board):
    if not sim.qemu_available():
        pytest.skip("qemu-system-arm not installed")
    if shutil.which("arm-none-eabi-gcc") and shutil.which("cmake") and sim.repo_root():
        try:
            return sim.build_firmware(board)  # incremental: cheap when up to date
        except DeviceError as exc:
            pytest.fail(str(exc))
    elf = sim.find_firmware(board)
    if elf is None:
        pytest.skip("no firmware image for %s and no arm-none-eabi toolchain to build it" % board)
    return elf


@pytest.fixture(scope="module")
def m4():
    elf = _firmware("mps2-an386")
    with sim.start_qemu("mps2-an386", elf=elf) as proc:
        with Device(proc.port, timeout=5.0) as dev:
            yield dev, elf


def _size_report(elf):
    path = os.path.splitext(elf)[0] + ".size.txt"
    with open(path) as f:
        head = f.readline()
    m = re.search(r"flash (\d+) B, static RAM \(\.data\+\.bss\) (\d+) B", head)
    assert m, head
    return int(m.group(1)), int(m.group(2))


def test_m4_trains_bit_exact_and_within_the_bar(m4, synthetic, tmp_path):
    dev, elf = m4
    (x, y), (xt, yt) = synthetic
    n, epochs = 400, 3
    ref = InProcessTwin()
    s = train_on_device(dev, x[:n], y[:n], ARCH, seed=1, epochs=epochs, batch=8,
                        recipe="paper", schedule=SCHED, bits=4, progress=False, mirror=ref)
    st = s["device_stats"]
    assert st["trained"] == n * epochs and st["steps"] == n * epochs // 8
    # bit-identical to the in-process core ...
    assert_same_model(s["model_bytes"], ref.pull())
    # ... and to the host twin (the same device loop compiled for the PC)
    with sim.start_twin() as twin, Device(twin.port) as tdev:
        t = train_on_device(tdev, x[:n], y[:n], ARCH, seed=1, epochs=epochs, batch=8,
                            recipe="paper", schedule=SCHED, bits=4, progress=False)
    assert_same_model(s["model_bytes"], t["model_bytes"])
    # far above chance on held-out data, evaluated on the host ...
    from flipnet.model import Model
    from flipnet.device.session import prepare_inputs

    m = Model.from_bytes(s["model_bytes"])
    xt8, table = prepare_inputs(xt[:2000], 4)
    acc = m.evaluate(xt8, yt[:2000])
    assert acc > 0.3, acc
    # ... and on the device, which agrees with the host exactly
    correct, k = dev.evaluate(xt8[:200], yt[:200], bits=4, table=table)
    assert correct == int((m.predict(xt8[:200]) == yt[:200]).sum())
    # the bar: RAM (static + measured stack high-water) and flash <= 64 KB
    flash, static = _size_report(elf)
    assert st["ram_static"] == static
    assert 0 < st["stack_used"] < st["stack_bytes"]
    assert static + st["stack_used"] <= BAR, (static, st["stack_used"])
    assert flash <= BAR, flash


def test_m4_device_recipe_bit_exact(m4, synthetic):
    """The device recipe as `flipnet device train` runs it: the widest 100-h-10 the M4 holds
    (int8 counters, crop20-pool2 samples, stochastic rounding, an annealed counter shift sent
    in each TRAIN), a short run bit-identical to the in-process core and to Model.fit."""
    import flipnet
    from flipnet import recipes
    from flipnet.device import plan

    dev, _ = m4
    (x, y), _ = synthetic
    n = 160
    h = plan.largest_hidden(dev.info(), 100, 10, 8, 8)
    assert h >= 256  # the 64 KB part's model
    ref = InProcessTwin()
    s = train_on_device(dev, x[:n], y[:n], [100, h, 10], seed=2, epochs=2, batch=8,
                        recipe="device", bits=8, progress=False, mirror=ref)
    assert s["plan"]["arena_used"] == plan.device_bytes([100, h, 10], 8, 8)
    assert_same_model(s["model_bytes"], ref.pull())
    m = flipnet.Model([100, h, 10], seed=2, recipe=dict(recipes.DEVICE, epochs=2))
    m.fit(x[:n], y[:n], verbose=0)
    d = flipnet.Model.from_bytes(s["model_bytes"])
    for layer in range(2):
        assert np.array_equal(d.weights(layer), m.weights(layer))
        assert np.array_equal(d.counters(layer), m.counters(layer))
    assert d.shifts == m.shifts and d.rule == m.rule


@pytest.mark.parametrize("board,bits", [("mps2-an385", 8), ("mps2-an500", 2)])
def test_m3_m7_train_bit_exact(board, bits, synthetic):
    (x, y), _ = synthetic
    n = 96
    elf = _firmware(board)
    ref = InProcessTwin()
    with sim.start_qemu(board, elf=elf) as proc, Device(proc.port, timeout=5.0) as dev:
        assert dev.info()["board"] == board
        s = train_on_device(dev, x[:n], y[:n], ARCH, seed=3, epochs=1, batch=8,
                            recipe=LEAN, schedule=SCHED, bits=bits, progress=False,
                            mirror=ref)
    assert s["device_stats"]["trained"] == n
    assert_same_model(s["model_bytes"], ref.pull())
    flash, static = _size_report(elf)
    assert flash <= BAR and static + s["device_stats"]["stack_used"] <= BAR


def test_m4_malformed_input(m4):
    dev, _ = m4
    run_battery(dev, seed=11)
    check_random_frames(dev, count=60, seed=12)


def test_m4_faulty_link_exactly_once(synthetic):
    import serial

    from flipnet.device.faults import FaultyPort

    (x, y), _ = synthetic
    n = 32
    elf = _firmware("mps2-an386")
    clean = InProcessTwin()
    train_on_device(clean, x[:n], y[:n], ARCH, seed=9, batch=8, recipe="paper",
                    schedule=SCHED, bits=4, progress=False)
    with sim.start_qemu("mps2-an386", elf=elf) as proc:
        ser = serial.serial_for_url(proc.port, timeout=0.02)
        port = FaultyPort(ser, seed=4, flip=5e-5, drop=5e-5, dup=5e-5, flip_in=1e-4,
                          drop_in=1e-4, dup_in=1e-4, frame_drop=0.1, frame_dup=0.1,
                          delay=0.1)
        with Device(port, timeout=1.0, retries=10) as dev:
            s = train_on_device(dev, x[:n], y[:n], ARCH, seed=9, batch=8, recipe="paper",
                                schedule=SCHED, bits=4, progress=False)
            assert dev.link_stats()["retransmits"] > 0
    assert s["device_stats"]["trained"] == n
    assert_same_model(s["model_bytes"], clean.pull())


def test_m4_rejects_models_beyond_its_ram(m4):
    from flipnet.device.client import DeviceReplyError

    dev, _ = m4
    info = dev.info()
    h = info["largest_hidden"]
    assert h >= 128
    dev.configure([784, h, 10], "ternary", seed=1, batch=8)
    with pytest.raises(DeviceReplyError) as ei:
        dev.configure([784, h + 1, 10], "ternary", seed=1, batch=8)
    assert ei.value.status == -107
    assert np.asarray(dev.stats()["changes"]).size == 2  # the h-model is still there


def test_nucleo_image_on_qemu_stm32f405(synthetic):
    """The NUCLEO-F446RE image, unchanged, on QEMU's netduinoplus2 (STM32F405: the same
    USART2 at 0x40004400): its register-level UART driver and the whole device loop work."""
    (x, y), _ = synthetic
    elf = _firmware("nucleo-f446re")
    ref = InProcessTwin()
    with sim.start_qemu("nucleo-f446re", elf=elf) as proc, \
            Device(proc.port, timeout=5.0) as dev:
        assert dev.info()["board"] == "nucleo-f446re"
        s = train_on_device(dev, x[:32], y[:32], ARCH, seed=6, batch=8, recipe="paper",
                            schedule=SCHED, bits=4, progress=False, mirror=ref)
        run_battery(dev, seed=13)
    assert s["device_stats"]["trained"] == 32
    assert_same_model(s["model_bytes"], ref.pull())
