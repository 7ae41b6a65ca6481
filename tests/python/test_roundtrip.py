"""Round trip host -> device -> host (issue 5): a model pre-trained on the host is loaded
onto a device, trained further there on streamed samples and pulled back. It must end
bit-identical (weights, counters, shifts, rule, seed, steps, samples) to the host twin doing
the same, to the in-process core doing the same steps, and to ``Model.fit`` continuing the
same model on the host with the same data; the pulled file records its history (the host
session and the device session). Synthetic data (synth.py), never MNIST.

The QEMU Cortex-M4 part needs qemu-system-arm and a firmware image (built here when cmake and
arm-none-eabi-gcc are installed); it is skipped otherwise. The rest uses the host twin.
"""

import json
import os
import sys

import numpy as np
import pytest
from lean import LEAN

import flipnet
from flipnet import recipes
from flipnet.device import history, sim
from flipnet.device.client import Device
from flipnet.device.session import InProcessTwin, prepare_inputs, train_on_device

from test_device_twin import assert_same_model  # noqa: E402
from test_firmware_qemu import _firmware  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the host twin needs a pty")

ARCH = [784, 128, 10]
N_HOST = 1000   # host pre-training samples
SKIP = 2000     # the device trains on other samples: training images from here


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """`flipnet device load` remembers loaded files in ~/.cache: use a private one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def host_model(data, arch=ARCH, recipe=LEAN, seed=5):
    (x, y), _ = data
    m = flipnet.Model(arch, seed=seed, recipe=recipe)
    m.fit(x[:N_HOST], y[:N_HOST], epochs=1, verbose=0)
    assert m.training_log[-1]["where"] == "host" and m.calibrated
    return m


def device_data(data, model, n, bits):
    """n samples the host never saw, packed as the device gets them, and their int8 values."""
    (x, y), _ = data
    xs, ys = x[SKIP:SKIP + n], y[SKIP:SKIP + n]
    x8, _ = prepare_inputs(xs, bits, model.input_encoding)
    return xs, ys, x8


def continue_on_host(model_bytes, x8, y, epochs=1, batch=8):
    """What Model.fit does with the same model and the same int8 samples."""
    h = flipnet.Model.from_bytes(model_bytes)
    h.fit(x8, y, epochs=epochs, batch_size=batch, verbose=0)
    return h


def assert_bit_identical(a, b):
    """a, b: Models or model file bytes; every piece of training state."""
    a = a if isinstance(a, flipnet.Model) else flipnet.Model.from_bytes(a)
    b = b if isinstance(b, flipnet.Model) else flipnet.Model.from_bytes(b)
    assert_same_model(a.to_bytes(), b.to_bytes())  # weights, shifts, steps, samples, seed, rule
    assert a.has_counters == b.has_counters
    for layer in range(a.n_layers):
        if a.has_counters:
            assert np.array_equal(a.counters(layer), b.counters(layer)), layer
    # the core state is the whole file minus the metadata: compare it byte for byte
    assert history.device_file(a.to_bytes()) == history.device_file(b.to_bytes())


def check_history(m, base, board, steps, samples):
    log = m.training_log
    assert [r["where"] for r in log] == ["host", "device"], log
    host, dev = log
    assert host == base.training_log[0]  # the host session, as it was
    assert dev["board"] == board and dev["origin"] == "load"
    assert dev["steps"] == steps and dev["samples"] == samples
    assert dev["steps_before"] == base.steps and dev["samples_before"] == base.samples
    assert dev["load_crc"] == history.file_crc(history.device_file(base.to_bytes()))
    assert dev["seconds"] > 0 and dev.get("compute_seconds", 1) > 0
    assert m.steps == base.steps + steps and m.samples == base.samples + samples
    assert m.recipe["input"] == base.recipe["input"]
    assert m.epochs_trained == base.epochs_trained + 1


# ---- pieces --------------------------------------------------------------------------------
def test_device_file_strips_only_the_metadata(synthetic):
    m = host_model(synthetic, arch=[784, 16, 10], recipe="default")
    full = m.to_bytes()
    bare = history.device_file(full)
    assert len(bare) < len(full) and history.file_meta(bare) == b""
    assert history.device_file(bare) == bare  # deterministic, idempotent
    assert_bit_identical(flipnet.Model.from_bytes(bare), m)
    with pytest.raises(flipnet.errors.ModelFileError):
        history.device_file(full[:-1] + bytes([full[-1] ^ 1]))


def test_host_model_with_history_loads_where_the_whole_file_would_not_fit(synthetic,
                                                                           twin_exe):
    """A 784-128-10 model's host history makes its file too big to stage beside the weights
    in a 64 KB device's arena; LOAD sends it without the metadata and the device takes it."""
    m = host_model(synthetic)
    full = m.to_bytes()
    with sim.start_twin(twin_exe) as proc, Device(proc.port) as dev:
        info = dev.info()
        weights = dev.configure(ARCH, batch=8)["weight_bytes"]
        assert weights + len(full) > info["arena_bytes"]  # the whole file would not fit
        r = dev.load(full, batch=8)
        assert r["done"] and r["crc"] == history.file_crc(history.device_file(full))
        pulled = dev.pull()
    assert_bit_identical(pulled, m)
    meta = history.device_meta(pulled)
    assert meta["origin"] == "load" and meta["load_crc"] == r["crc"]
    assert meta["start_steps"] == m.steps and meta["start_samples"] == m.samples


def test_continue_errors_are_clear(synthetic, twin_exe):
    m = host_model(synthetic, arch=[784, 16, 10])
    (x, y), _ = synthetic
    twin = InProcessTwin()
    with pytest.raises(ValueError, match="seed 3 differs"):
        train_on_device(twin, x[:8], y[:8], init=m, seed=3, progress=False)
    with pytest.raises(ValueError, match="sizes 784-32-10 differ"):
        train_on_device(twin, x[:8], y[:8], [784, 32, 10], init=m, progress=False)
    with pytest.raises(ValueError, match="margin"):
        train_on_device(twin, x[:8], y[:8], init=m, schedule={"margin": 1}, progress=False)
    other = flipnet.Model.ternary([784, 16, 10], seed=9).to_bytes()
    with sim.start_twin(twin_exe) as proc, Device(proc.port) as dev:
        dev.load(m.to_bytes())
        with pytest.raises(ValueError, match="loaded from another file"):
            history.check_base(dev.pull(), other)
        dev.configure([784, 16, 10], batch=8)
        with pytest.raises(ValueError, match="was not loaded from a file"):
            history.check_base(dev.pull(), other)


# ---- the round trip: host twin and in-process ------------------------------------------------
@pytest.mark.parametrize("recipe,arch", [("lean", ARCH), ("counters", [784, 16, 10])])
def test_round_trip_on_the_twin_matches_the_core_and_model_fit(synthetic, twin_exe, recipe,
                                                               arch):
    """'counters': the default recipe (hysteresis counters, net vote, ...) without the
    counter-shift annealing, which a device cannot follow (TRAIN carries no counter shift)."""
    rec = dict(recipes.get("default"), counter_shift_end=None) if recipe == "counters" \
        else LEAN
    base = host_model(synthetic, arch=arch, recipe=rec)
    assert base.has_counters == (recipe == "counters")
    base_bytes = base.to_bytes()
    n = 120
    xs, ys, x8 = device_data(synthetic, base, n, 8)
    ref = InProcessTwin()
    with sim.start_twin(twin_exe) as proc, Device(proc.port) as dev:
        s = train_on_device(dev, xs, ys, init=base_bytes, batch=8, bits=8, progress=False,
                            mirror=ref)
    assert s["continued"] and s["steps"] == n // 8 and s["samples"] == n
    assert s["device_stats"]["trained"] == n
    assert_bit_identical(s["model"], ref.pull())
    assert_bit_identical(s["model"], continue_on_host(base_bytes, x8, ys))
    check_history(s["model"], base, "host", n // 8, n)
    # the saved file says the same
    again = flipnet.Model.from_bytes(s["model_bytes"])
    assert again.training_log == s["model"].training_log


# ---- the round trip on the QEMU Cortex-M4 ---------------------------------------------------
@pytest.fixture(scope="module")
def m4_elf():
    return _firmware("mps2-an386")


def test_round_trip_on_qemu_m4_equals_twin_core_and_model_fit(synthetic, m4_elf, twin_exe):
    base = host_model(synthetic)
    base_bytes = base.to_bytes()
    n, bits = 200, 4  # 4-bit link: both sides train on the same binned int8 values
    xs, ys, x8 = device_data(synthetic, base, n, bits)
    ref = InProcessTwin()
    with sim.start_qemu("mps2-an386", elf=m4_elf) as proc, \
            Device(proc.port, timeout=5.0) as dev:
        s = train_on_device(dev, xs, ys, init=base_bytes, batch=8, bits=bits,
                            progress=False, mirror=ref)
        info = dev.info()
    assert info["board"] == "mps2-an386"
    with sim.start_twin(twin_exe) as proc, Device(proc.port) as tdev:
        t = train_on_device(tdev, xs, ys, init=base_bytes, batch=8, bits=bits,
                            progress=False)
    m = s["model"]
    assert_bit_identical(m, t["model"])      # the host twin
    assert_bit_identical(m, ref.pull())      # the in-process core, step by step
    assert_bit_identical(m, continue_on_host(base_bytes, x8, ys))  # Model.fit on the host
    assert m.steps == base.steps + n // 8 and m.steps > base.steps
    check_history(m, base, "mps2-an386", n // 8, n)
    assert t["model"].training_log[-1]["board"] == "host"
    # the device really moved: the model is not the one loaded
    assert not all(np.array_equal(m.weights(i), base.weights(i)) for i in range(2))


def test_cli_load_train_continue_pull_on_qemu(synthetic, synthetic_dir, m4_elf, twin_exe,
                                             tmp_path, capsys):
    """The documented commands: flipnet device load / train --continue / pull (the data set
    read from IDX files of the synthetic data, --data-dir)."""
    from flipnet import cli

    base = host_model(synthetic)
    host_file = str(tmp_path / "host.flip")
    base.save(host_file)
    n = 48
    results = {}
    qemu = sim.start_qemu("mps2-an386", elf=m4_elf)
    twin = sim.start_twin(twin_exe)
    with qemu, twin:
        for name, proc in (("qemu", qemu), ("twin", twin)):
            out = str(tmp_path / ("%s-train.flip" % name))
            pulled = str(tmp_path / ("%s-pulled.flip" % name))
            assert cli.main(["device", "load", "--port", proc.port, host_file]) == 0
            assert "CRC" in capsys.readouterr().out
            assert cli.main(["device", "train", "--port", proc.port, "--continue", "--skip",
                             str(SKIP), "--limit", str(n), "--bits", "4", "--test-limit", "500",
                             "--data-dir", synthetic_dir, "--out", out, "--quiet", "--json",
                             "--timeout", "5"]) == 0
            line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert line["continued"] and line["samples"] == n and line["test_acc"] > 0.5
            assert cli.main(["device", "pull", "--port", proc.port, "--out", pulled]) == 0
            assert "host %d steps, device %d steps" % (base.steps, n // 8) in \
                capsys.readouterr().out
            results[name] = (flipnet.load(out), flipnet.load(pulled))
    for trained, pulled in results.values():
        assert_bit_identical(trained, pulled)
        assert [r["where"] for r in pulled.training_log] == ["host", "device"]
        assert [r["where"] for r in trained.training_log] == ["host", "device"]
        assert trained.training_log[-1]["dataset"] == "mnist"  # --dataset's default
        assert trained.training_log[-1]["skip"] == SKIP
    assert_bit_identical(results["qemu"][0], results["twin"][0])
    _, _, x8 = device_data(synthetic, base, n, 4)
    (x, y), _ = synthetic
    assert_bit_identical(results["qemu"][0],
                         continue_on_host(base.to_bytes(), x8, y[SKIP:SKIP + n]))
    assert results["qemu"][1].training_log[-1]["board"] == "mps2-an386"


def test_cli_pull_without_the_base_says_so(synthetic, twin_exe, tmp_path, capsys, monkeypatch):
    from flipnet import cli

    base = host_model(synthetic, arch=[784, 16, 10])
    host_file = str(tmp_path / "host.flip")
    base.save(host_file)
    with sim.start_twin(twin_exe) as proc:
        assert cli.main(["device", "load", "--port", proc.port, host_file]) == 0
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "another-machine"))
        out = str(tmp_path / "p.flip")
        assert cli.main(["device", "pull", "--port", proc.port, "--out", out]) == 0
        err = capsys.readouterr().err
        assert "--base" in err and "does not know" in err
        assert flipnet.load(out).training_log == []  # nothing trained on the device yet
        assert cli.main(["device", "pull", "--port", proc.port, "--out", out, "--base",
                         host_file]) == 0
        assert flipnet.load(out).training_log == base.training_log
        other = str(tmp_path / "other.flip")
        flipnet.Model.ternary([784, 16, 10], seed=1).save(other)
        assert cli.main(["device", "pull", "--port", proc.port, "--out", out, "--base",
                         other]) == 1
        assert "loaded from another file" in capsys.readouterr().err
    assert os.path.exists(out)
