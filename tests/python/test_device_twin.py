"""The host twin (firmware/src/device.c + the core, on a pseudo-terminal): protocol,
bit-exactness with the in-process core (on synthetic data, synth.py), exactly-once under link
faults, malformed input.

Needs a host C compiler (the twin is built on first use, cached in ~/.cache/flipnet).
"""

import json
import shutil
import struct
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the host twin needs a pty")

from flipnet.device import protocol as P  # noqa: E402
from flipnet.device import selftest, sim  # noqa: E402
from flipnet.device.client import Device, DeviceError, DeviceReplyError  # noqa: E402
from flipnet.device.faults import FaultyPort  # noqa: E402
from flipnet.device.framing import encode_frame  # noqa: E402
from flipnet.device.session import InProcessTwin, train_on_device  # noqa: E402

ARCH = [784, 128, 10]
SCHED = {"k_frac": 0.005, "p0": 0.3, "p1": 0.01}


def _python_path():
    """The directory the flipnet under test is imported from (for subprocesses)."""
    import os

    import flipnet

    return os.path.dirname(os.path.dirname(os.path.abspath(flipnet.__file__)))


def _have_cc():
    return any(shutil.which(c) for c in ("cc", "gcc", "clang"))


@pytest.fixture
def twin(twin_exe):
    with sim.start_twin(twin_exe) as proc:
        yield proc


@pytest.fixture
def dev(twin):
    with Device(twin.port, timeout=2.0) as d:
        yield d


def weights_of(model_bytes):
    from flipnet.model import Model

    m = Model.from_bytes(model_bytes)
    return m, [m.weights(i) for i in range(m.n_layers)]


def assert_same_model(a_bytes, b_bytes):
    ma, wa = weights_of(a_bytes)
    mb, wb = weights_of(b_bytes)
    assert ma.sizes == mb.sizes
    for i, (x, y) in enumerate(zip(wa, wb)):
        assert np.array_equal(x, y), "layer %d weights differ" % i
    assert ma.shifts == mb.shifts
    assert (ma.steps, ma.samples, ma.seed) == (mb.steps, mb.samples, mb.seed)
    assert ma.rule == mb.rule


# ---- basics ---------------------------------------------------------------------------------
def test_info_ping_stats(dev):
    info = dev.info()
    assert info["board"] == "host" and info["protocol"] == 1
    assert info["max_frame"] >= 12 + 4 + 16 + 16 + 8 * 784 + 16
    assert info["largest_hidden"] >= 128
    assert dev.ping(b"\x00hello\x00") == b"\x00hello\x00"
    st = dev.stats()
    assert not st["configured"] and st["trained"] == 0


def test_configure_reports_ram_plan(dev):
    plan = dev.configure(ARCH, "ternary", seed=1, batch=8)
    assert plan["weight_bytes"] == 128 * 2 * 98 + 10 * 2 * 16  # bytes per plane row: ceil(n / 8)
    assert plan["arena_used"] <= plan["arena_bytes"]
    assert dev.stats()["configured"]


def test_train_requires_a_model(dev):
    x = np.zeros((1, 784), np.int8)
    with pytest.raises(DeviceReplyError) as ei:
        dev.request(P.CMD["TRAIN"], P.train_payload(x, [0], [1, 1], [1, 1]))
    assert ei.value.status == -106
    assert "configure" in str(ei.value)


# ---- bit-exact with the in-process core --------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 4, 1])
def test_twin_bit_exact_with_in_process_core(dev, synthetic, bits):
    (x, y), _ = synthetic
    n = 160
    ref = InProcessTwin()
    s = train_on_device(dev, x[:n], y[:n], ARCH, seed=7, epochs=2, batch=8, recipe="paper",
                        schedule=SCHED, bits=bits, progress=False, mirror=ref)
    assert s["steps"] == 2 * n // 8 and s["samples"] == 2 * n
    assert s["device_stats"]["trained"] == 2 * n
    assert_same_model(s["model_bytes"], ref.pull())


def test_in_process_twin_matches_model_fit_style_steps(synthetic):
    """The InProcessTwin's steps are the core's train_step: two runs agree, seeds differ."""
    (x, y), _ = synthetic
    a, b, c = InProcessTwin(), InProcessTwin(), InProcessTwin()
    for t, seed in ((a, 3), (b, 3), (c, 4)):
        train_on_device(t, x[:64], y[:64], [784, 16, 10], input="half", seed=seed, batch=8,
                        progress=False)
    assert_same_model(a.pull(), b.pull())
    assert not np.array_equal(weights_of(a.pull())[1][0], weights_of(c.pull())[1][0])


# ---- exactly once ------------------------------------------------------------------------------
def test_retransmitted_train_is_applied_once(dev):
    dev.configure([784, 16, 10], "ternary", seed=2, batch=4)
    rng = np.random.default_rng(0)
    x = rng.integers(-127, 128, size=(4, 784)).astype(np.int8)
    payload = P.train_payload(x, [1, 2, 3, 4], [20, 2], [65536, 65536], calibrate=True)
    wire = encode_frame(P.CMD["TRAIN"], 0x1234, payload)
    first = selftest.exchange(dev, wire)
    again = selftest.exchange(dev, wire)
    again2 = selftest.exchange(dev, wire[:5] + wire[5:])  # same bytes, third time
    assert first and first == again == again2
    assert first[0].status == 0 and first[0].seq == 0x1234
    st = dev.stats()
    assert st["trained"] == 4 and st["steps"] == 1 and st["dup_frames"] == 2
    # a new sequence number with the same batch is a new step
    selftest.exchange(dev, encode_frame(P.CMD["TRAIN"], 0x1235, payload))
    assert dev.stats()["trained"] == 8


def test_nak_between_retransmissions_keeps_the_cache(dev):
    """A damaged frame between a request and its retransmission must not clear the cached
    reply (else the retransmitted TRAIN would run twice)."""
    dev.configure([784, 16, 10], "ternary", seed=2, batch=4)
    x = np.ones((4, 784), np.int8)
    wire = encode_frame(P.CMD["TRAIN"], 77, P.train_payload(x, [0, 1, 2, 3], [5, 1], [1, 1]))
    selftest.exchange(dev, wire)
    selftest.exchange(dev, b"\x00\x05\x01\x02\x03\x04\x00")  # NAK
    selftest.exchange(dev, wire)
    assert dev.stats()["trained"] == 4


@pytest.mark.parametrize("seed", [1, 2])
def test_training_through_a_faulty_link_equals_a_clean_run(twin, synthetic, seed):
    import serial

    (x, y), _ = synthetic
    n = 96
    clean = InProcessTwin()
    train_on_device(clean, x[:n], y[:n], ARCH, seed=5, epochs=1, batch=8, recipe="paper",
                    schedule=SCHED, bits=4, progress=False)
    port = FaultyPort(serial.serial_for_url(twin.port, timeout=0.02), seed=seed,
                      flip=3e-5, drop=3e-5, dup=3e-5, flip_in=3e-4, drop_in=3e-4, dup_in=3e-4,
                      frame_drop=0.08, frame_dup=0.08, delay=0.1, max_delay=0.02)
    with Device(port, timeout=0.25, retries=30) as dev:
        s = train_on_device(dev, x[:n], y[:n], ARCH, seed=5, epochs=1, batch=8,
                            recipe="paper", schedule=SCHED, bits=4, progress=False)
        link = dev.link_stats()
    faults = port.counts
    assert sum(faults.values()) > 5, faults  # the link really was bad
    assert link["retransmits"] > 0
    assert s["device_stats"]["trained"] == n  # every batch applied exactly once
    assert s["device_stats"]["steps"] == n // 8
    assert_same_model(s["model_bytes"], clean.pull())


# ---- malformed input ---------------------------------------------------------------------------
BATTERY = ["garbage", "oversized frame", "bad crc", "truncated cobs", "short frame",
           "frame without delimiter then a good one", "unknown command", "wrong version",
           "configure bad lengths", "configure too big", "configure huge (32-bit size overflow)",
           "train bad fields", "eval / predict bad", "pull bad", "load bad", "model intact"]


def run_battery(dev, seed):
    """selftest.malformed_battery, and this test's own checks of what it did: every case ran,
    the device still answers, and it holds the model the battery trained before the first
    malformed input (one step of 4 samples), read here, not by the battery."""
    res = selftest.malformed_battery(dev, seed=seed)
    assert list(res) == BATTERY
    assert res.checks >= 60, res.checks
    assert res.before is not None and res.after == res.before
    assert dev.ping(b"after the battery") == b"after the battery"
    model, trained = selftest.snapshot(dev)
    assert (model, trained) == res.before and trained == 4
    st = dev.stats()
    assert st["configured"] and st["steps"] == 1 and st["samples"] == 4
    assert st["bad_frames"] > 0  # the framing-level cases did reach the device
    return res


def check_random_frames(dev, count, seed, include_state_changes=False):
    """selftest.random_frames, and this test's own checks: a reply or a NAK to every frame, the
    device still answers and, without state changes, holds the same model."""
    before = None if include_state_changes else selftest.snapshot(dev)
    res = selftest.random_frames(dev, count=count, seed=seed,
                                 include_state_changes=include_state_changes)
    assert res["frames"] == count and res["replies"] + res["naks"] == count
    assert res["replies"] > count // 2, res
    assert dev.ping(b"after the frames") == b"after the frames"
    if before is not None:
        assert selftest.snapshot(dev) == before == res["before"] == res["after"]
    return res


def test_malformed_input_battery(dev):
    run_battery(dev, seed=1)


def test_random_valid_frames_leave_the_model_alone(dev):
    run_battery(dev, seed=2)
    check_random_frames(dev, count=150, seed=5)


def test_selftest_checks_survive_python_O(twin_exe):
    """selftest's checks are explicit raises: under ``python -O`` (no assert statements) a
    device whose model changed during the battery is still reported, as SelfTestError."""
    import subprocess

    code = "\n".join([
        "import sys",
        "from flipnet.device import selftest, sim",
        "from flipnet.device.client import Device",
        "with sim.start_twin(sys.argv[1]) as t, Device(t.port, timeout=2.0) as dev:",
        "    pull = dev.pull",
        "    calls = []",
        "    def changed():",  # the second pull (after the battery) sees another model
        "        calls.append(1)",
        "        b = pull()",
        "        return b if len(calls) == 1 else b[:-1] + bytes([b[-1] ^ 1])",
        "    dev.pull = changed",
        "    try:",
        "        selftest.malformed_battery(dev, seed=4)",
        "    except selftest.SelfTestError as exc:",
        "        print('caught:', exc)",
        "        sys.exit(3)",
        "print('not caught')",
    ])
    env = dict(__import__("os").environ, PYTHONPATH=_python_path())
    r = subprocess.run([sys.executable, "-O", "-c", code, twin_exe], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 3, r.stdout
    assert "caught: the model or the sample counter changed" in r.stdout


@pytest.fixture(scope="module")
def asan_twin_exe():
    if not _have_cc() or sim.repo_root() is None:
        pytest.skip("no C compiler or no source tree")
    try:
        return sim.build_twin(cflags=["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                      "-g", "-O1"])
    except DeviceError as exc:
        pytest.skip("no sanitizer build here: %s" % str(exc).splitlines()[0])


def test_fuzz_under_sanitizers(asan_twin_exe):
    """Everything, state changes included, through an ASan/UBSan build: no crash, no hang."""
    with sim.start_twin(asan_twin_exe) as proc:
        with Device(proc.port, timeout=2.0) as dev:
            run_battery(dev, seed=3)
            check_random_frames(dev, count=200, seed=6, include_state_changes=True)
            rng = np.random.default_rng(9)
            for _ in range(30):  # raw noise, with zeros
                junk = rng.integers(0, 256, size=int(rng.integers(1, 2000))).astype(np.uint8)
                dev.write_raw(junk.tobytes())
            assert dev.ping(b"still here") == b"still here"
        assert proc.alive()


# ---- load / pull / predict / eval --------------------------------------------------------------
def test_load_a_host_model_and_predict_like_the_host(dev, synthetic):
    from flipnet.model import Model

    (x, y), (xt, yt) = synthetic
    m = Model.ternary([784, 64, 10], seed=11, recipe="paper")
    m.fit(x[:512], y[:512], epochs=1, batch_size=32, verbose=0)
    dev.load(m.to_bytes(), batch=8)
    x8, _ = P.quantize_pixels(xt[:40].reshape(40, -1), 8)[0], None
    cls, logits = dev.predict(x8, logits=True)
    assert np.array_equal(logits, m.forward(x8))
    assert np.array_equal(cls, m.predict(x8))
    correct, n = dev.evaluate(x8, yt[:40])
    assert correct == int((m.predict(x8) == yt[:40]).sum()) and n == 40
    # the pulled model is the loaded one (weights, shifts, counters)
    assert_same_model(dev.pull(), m.to_bytes())


def test_load_rejects_model_too_big_and_keeps_the_old_one(dev):
    from flipnet.model import Model

    dev.configure([784, 16, 10], "ternary", seed=1, batch=4)
    before = dev.pull()
    big = Model.ternary([784, 512, 10], seed=1).to_bytes()
    with pytest.raises(DeviceReplyError) as ei:
        dev.load(big, batch=4)
    assert ei.value.status == -107
    assert dev.pull() == before


def test_pull_chunks_any_size(dev):
    dev.configure([784, 32, 10], "binary", seed=4, batch=2)
    a = dev.pull()
    assert dev.pull(chunk=100) == a
    assert dev.pull(chunk=1) == a if len(a) < 5000 else True


# ---- client errors ------------------------------------------------------------------------------
def test_device_error_names_the_port_and_what_to_check():
    with Device("loop://", timeout=0.05, retries=1) as dev:
        with pytest.raises(DeviceError) as ei:
            dev.info()
    msg = str(ei.value)
    assert "loop://" in msg and "INFO" in msg and "firmware" in msg
    with pytest.raises(DeviceError) as ei:
        Device("/dev/does-not-exist-flipnet")
    assert "/dev/does-not-exist-flipnet" in str(ei.value)
    assert isinstance(ei.value, OSError)


def test_stale_replies_are_ignored(dev):
    """Replies to other sequence numbers (late duplicates) do not satisfy a request."""
    selftest.exchange(dev, encode_frame(P.CMD["PING"], 5, b"old"))
    dev.write_raw(encode_frame(P.CMD["PING"], 5, b"old"))  # cached duplicate reply in flight
    assert dev.ping(b"new") == b"new"


# ---- CLI --------------------------------------------------------------------------------------
def test_cli_device_commands(twin, tmp_path, capsys, mnist):
    from flipnet import cli

    out = tmp_path / "dev.flip"
    assert cli.main(["device", "info", "--port", twin.port, "--json"]) == 0
    info = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"board": "host"' in info
    rc = cli.main(["device", "train", "--port", twin.port, "--limit", "64", "--test-limit",
                   "100", "--bits", "4", "--out", str(out), "--quiet", "--json",
                   "--pull-every", "3"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"samples": 64' in line and '"test_acc"' in line
    assert out.exists()
    import flipnet
    from flipnet import recipes
    from flipnet.device import plan
    from flipnet.device.client import Device

    dev_recipe = recipes.DEVICE  # the device CLI's default recipe, and its largest model
    with Device(twin.port) as d:
        h = plan.largest_hidden(d.info(), 100, 10, 8, 8)
    m = flipnet.load(str(out))
    assert m.sizes == [100, h, 10] and m.samples == 64
    rec = m.training_log[-1]
    assert rec["where"] == "device" and rec["board"] == "host" and rec["samples"] == 64
    assert m.recipe["input"] == dev_recipe["input"] == "crop20-pool2"
    assert m.rule["margin"] == dev_recipe["margin"] and m.has_counters
    assert m.rule["counter_round"] == "stochastic" and m.counter_bits == [8, 8]
    assert cli.main(["device", "eval", "--port", twin.port, "--limit", "50", "--json",
                     "--input", "crop20-pool2"]) == 0
    assert '"n": 50' in capsys.readouterr().out
    assert cli.main(["device", "predict", "--port", twin.port, "--limit", "5", "--input",
                     "crop20-pool2"]) == 0
    assert "predicted" in capsys.readouterr().out
    pulled = tmp_path / "pulled.flip"
    assert cli.main(["device", "pull", "--port", twin.port, "--out", str(pulled)]) == 0
    assert flipnet.load(str(pulled)).samples == 64
    # LOAD stages the file beside the weights: the largest model and a file of its size do
    # not fit twice, which the device says; a smaller one loads
    assert cli.main(["device", "load", "--port", twin.port, str(out)]) == 1
    assert "E_NOMEM" in capsys.readouterr().err
    small = tmp_path / "small.flip"
    flipnet.Model([100, 64, 10], recipe="device", seed=2).save(str(small))
    assert cli.main(["device", "load", "--port", twin.port, str(small)]) == 0
    assert cli.main(["device", "stats", "--port", twin.port, "--json"]) == 0
    assert cli.main(["device", "reset", "--port", twin.port]) == 0
    capsys.readouterr()
    assert cli.main(["device", "info", "--port", "loop://", "--timeout", "0.05",
                     "--retries", "0"]) == 1
    assert "loop://" in capsys.readouterr().err


def test_cli_demo_on_the_twin(tmp_path, capsys, mnist, twin_exe, monkeypatch):
    from flipnet import cli

    monkeypatch.setenv("FLIPNET_TWIN", twin_exe)
    out = tmp_path / "demo.flip"
    rc = cli.main(["demo", "--twin", "--limit", "80", "--test-limit", "200", "--out", str(out),
                   "--quiet", "--json"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"device": "host twin"' in line and '"samples": 80' in line
    assert out.exists()


def test_struct_sizes_agree_with_the_doc():
    # the protocol's fixed reply layouts (docs/protocol.md): INFO 48 bytes, STATS 68 + 8L
    assert struct.calcsize("<BBBBIIIIIHBBI") + 16 == 48
    assert struct.calcsize("<QQQIIIIIIIBBHIQ") == 68


def test_cli_demo_without_a_twin_trains_in_process(tmp_path, capsys, mnist, monkeypatch):
    """An installed package without C sources / compiler still runs the demo (in-process)."""
    from flipnet import cli

    monkeypatch.setenv("FLIPNET_TWIN", str(tmp_path / "no-such-twin"))
    out = tmp_path / "demo.flip"
    rc = cli.main(["demo", "--twin", "--limit", "40", "--test-limit", "100", "--out", str(out),
                   "--json"])
    assert rc == 0
    cap = capsys.readouterr()
    assert "in-process" in cap.err and '"samples": 40' in cap.out
    assert out.exists()


def test_cli_demo_falls_back_to_sklearn_digits_without_mnist(tmp_path, capsys, twin_exe,
                                                             monkeypatch):
    """Offline without MNIST, the demo trains on scikit-learn's 8x8 digits when that is
    installed (a stand-in module here: scikit-learn is not a test dependency)."""
    import sys
    import types

    from flipnet import cli

    rng = np.random.default_rng(0)
    target = np.arange(1797) % 10
    images = rng.integers(0, 17, (1797, 8, 8)).astype(np.float64)
    images[:, 0, 0] = target  # learnable: the class is in one pixel
    datasets_mod = types.ModuleType("sklearn.datasets")
    datasets_mod.load_digits = lambda: types.SimpleNamespace(images=images, target=target)
    sk = types.ModuleType("sklearn")
    sk.datasets = datasets_mod
    monkeypatch.setitem(sys.modules, "sklearn", sk)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", datasets_mod)
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("FLIPNET_TWIN", twin_exe)
    out = tmp_path / "digits.flip"
    rc = cli.main(["demo", "--twin", "--data-dir", str(empty), "--limit", "300", "--test-limit",
                   "200", "--out", str(out), "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "scikit-learn's digits" in cap.err
    res = json.loads(cap.out.strip().splitlines()[-1])
    # 8x8 images: one input per pixel ("half"), the widest hidden layer the twin holds
    assert res["sizes"][0] == 64 and res["sizes"][1] > 128 and res["sizes"][2] == 10
    assert res["samples"] == 300 and res["n_test"] == 200 and res["input"] == "half"
    from flipnet import load

    assert load(out).sizes == res["sizes"]


def test_cli_sim_prints_a_port_that_answers(twin_exe, monkeypatch):
    import subprocess
    import time

    env = dict(__import__("os").environ, FLIPNET_TWIN=twin_exe, PYTHONPATH=_python_path())
    proc = subprocess.Popen([sys.executable, "-m", "flipnet", "device", "sim"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/"), port
        with Device(port, timeout=2.0) as dev:
            assert dev.ping(b"sim") == b"sim"
    finally:
        proc.terminate()
        proc.wait(10)
    time.sleep(0.1)


def test_cli_selftest(twin, capsys):
    from flipnet import cli

    assert cli.main(["device", "selftest", "--port", twin.port, "--frames", "20"]) == 0
    assert "selftest passed on %s: %d malformed-input cases, 20 random frames" % (
        twin.port, len(BATTERY)) in capsys.readouterr().out


def test_resume_after_a_crash_is_bit_identical(twin_exe, synthetic, tmp_path):
    """The periodic pull lets a crashed run continue: the result equals an uninterrupted run."""
    (x, y), _ = synthetic
    n, arch = 80, [784, 32, 10]
    kw = dict(seed=4, epochs=2, batch=8, recipe="paper", schedule=SCHED, bits=4,
              progress=False)
    full = InProcessTwin()
    train_on_device(full, x[:n], y[:n], arch, **kw)
    out = str(tmp_path / "run.flip")

    class Crash(Exception):
        pass

    def crash_at_13(step, reply):
        if step == 13:
            raise Crash

    with sim.start_twin(twin_exe) as proc, Device(proc.port) as dev:
        with pytest.raises(Crash):
            train_on_device(dev, x[:n], y[:n], arch, pull_every=4, out=out,
                            on_step=crash_at_13, **kw)
    with open(out, "rb") as f:
        saved = f.read()
    assert weights_of(saved)[0].steps == 12  # the last periodic pull
    with sim.start_twin(twin_exe) as proc, Device(proc.port) as dev:  # a fresh device
        s = train_on_device(dev, x[:n], y[:n], arch, resume=saved, **kw)
    assert s["resumed_at"] == 12 and s["steps"] == 20 - 12
    assert_same_model(s["model_bytes"], full.pull())


def test_clear_errors_for_requests_beyond_the_device(dev):
    dev.configure([784, 16, 10], "ternary", seed=1, batch=8)
    with pytest.raises(DeviceReplyError) as ei:
        dev.configure([784, 4000, 10], "ternary", seed=1, batch=8)
    assert "needs" in str(ei.value) and "E_NOMEM" in str(ei.value)
    x = np.zeros((9, 784), np.int8)  # 9 * 784 bytes > the device's frames
    with pytest.raises(DeviceReplyError) as ei:
        dev.request(P.CMD["TRAIN"], P.train_payload(x, [0] * 9, [1, 1], [1, 1]))
    assert ei.value.status == -102 and "larger than" in str(ei.value)


def test_twin_stdio_mode(twin_exe):
    """`flipnet-twin --stdio` speaks the protocol on stdin/stdout and exits at end of input."""
    import subprocess

    from flipnet.device.framing import StreamDecoder

    wire = encode_frame(P.CMD["PING"], 9, b"pipe") + encode_frame(P.CMD["INFO"], 10)
    r = subprocess.run([twin_exe, "--stdio"], input=wire, stdout=subprocess.PIPE, timeout=20)
    assert r.returncode == 0
    frames = StreamDecoder().feed(r.stdout)
    assert [f.seq for f in frames] == [9, 10]
    assert frames[0].payload == b"pipe" and P.parse_info(frames[1].payload)["board"] == "host"


@pytest.mark.parametrize("bits", [8, 4])
def test_recipe_options_bit_exact(dev, synthetic, bits):
    """Input encoding 'half', calibration target, recalibration every N steps (calibrate
    after the step, TRAIN flag bit 1): the device and the core agree."""
    from flipnet import recipes

    (x, y), _ = synthetic
    rec = dict(recipes.get("device"), input="half", calib_target=64, recalibrate_steps=3)
    ref = InProcessTwin()
    s = train_on_device(dev, x[:96], y[:96], [784, 32, 10], seed=8, batch=8, recipe=rec,
                        schedule=SCHED, bits=bits, progress=False, mirror=ref)
    assert s["input"] == "half"
    assert_same_model(s["model_bytes"], ref.pull())
    m = weights_of(s["model_bytes"])[0]
    assert m.rule["calib_target"] == 64


@pytest.mark.parametrize("decay,bits,rounding", [(0, 8, "nearest"), (3, 8, "nearest"),
                                                 (0, 4, "stochastic"), (1, 2, "stochastic")])
def test_default_recipe_with_counters_bit_exact(dev, synthetic, decay, bits, rounding):
    """The host's default recipe (per-weight hysteresis counters, net vote, ...) on a model
    small enough for the counters to fit the device's arena; also with the counters' decay
    (CONFIGURE byte 22), packed 4- and 2-bit counters (byte 19) and stochastic rounding
    (byte 23)."""
    from flipnet import recipes

    (x, y), _ = synthetic
    rec = recipes.get("default", counter_decay=decay, counter_bits=bits, counter_round=rounding,
                      counter_shift=4)
    assert rec["counter_threshold"] > 0
    ref = InProcessTwin()
    s = train_on_device(dev, x[:64], y[:64], [784, 16, 10], seed=3, batch=8, recipe=rec,
                        bits=8, progress=False, mirror=ref)
    assert s["plan"]["weight_bytes"] > 784 * 16 * bits // 8  # the counters are in the area
    assert_same_model(s["model_bytes"], ref.pull())
    a, b = weights_of(s["model_bytes"])[0], ref.model
    assert a.rule["counter_decay"] == b.rule["counter_decay"] == decay
    assert a.rule["counter_round"] == b.rule["counter_round"] == rounding
    assert a.counter_bits == b.counter_bits == [bits, bits]
    changed = False
    for layer in range(2):
        assert np.array_equal(a.counters(layer), b.counters(layer))
        changed |= bool(a.counters(layer).any())
    assert changed


def test_host_plan_is_the_devices(dev):
    """flipnet.device.plan computes from INFO what the device accepts: the device recipe's
    largest 100-h-10 model (int8 counters, batch 8) configures, h + 1 is refused with E_NOMEM
    and leaves the h model in place (nothing is touched before the size checks)."""
    from flipnet.device import plan
    from flipnet.device.client import DeviceReplyError

    info = dev.info()
    h = plan.largest_hidden(info, 100, 10, 8, 8)
    assert h > 100
    r = dev.configure([100, h, 10], seed=1, batch=8, counters=8, counter_threshold=32)
    assert r["arena_used"] == plan.device_bytes([100, h, 10], 8, 8) <= info["arena_bytes"]
    dev.train(np.zeros((8, 100), np.int8), np.arange(8) % 10, [10, 10], [0, 0])
    with pytest.raises(DeviceReplyError) as ei:
        dev.configure([100, h + 1, 10], seed=1, batch=8, counters=8, counter_threshold=32)
    assert ei.value.status == -107
    st = dev.stats()
    assert st["configured"] and st["steps"] == 1  # the h model is still there


def test_recalibrations_that_keep_the_first_layers_shift_bit_exact(twin_exe, synthetic):
    """recalibrate_from 1 (TRAIN flags bit 2): the device's step recalibrations keep the first
    layer's shift, as the in-process core's do; with 0 they move it (the option matters)."""
    from flipnet import recipes

    (x, y), _ = synthetic
    pulled = {}
    for first in (0, 1):
        rec = recipes.get("default", recalibrate_steps=2, recalibrate_until=1.0,
                          recalibrate_from=first, calibrate_samples=8, calib_target=100,
                          input="centered")
        ref = InProcessTwin()
        with sim.start_twin(twin_exe) as proc, Device(proc.port) as dev:
            s = train_on_device(dev, x[:400], y[:400], [784, 12, 9, 10], seed=4, batch=8,
                                recipe=rec, bits=8, progress=False, mirror=ref)
        assert_same_model(s["model_bytes"], ref.pull())
        pulled[first] = weights_of(s["model_bytes"])[0]
    assert pulled[0].shifts[0] != pulled[1].shifts[0]


# ---- run-coded inputs ---------------------------------------------------------------------------
def test_run_coded_inputs_train_exactly_as_plain_ones(twin_exe, synthetic):
    (x, y), _ = synthetic
    runs = {}
    for coded in (True, False):
        with sim.start_twin(twin_exe) as proc, Device(proc.port, runs=coded) as dev:
            assert dev.info()["runs"]
            s = train_on_device(dev, x[:64], y[:64], [784, 32, 10], input="half", seed=2,
                                batch=8, bits=8, progress=False)
            runs[coded] = (s["model_bytes"], dev.link_stats()["bytes_sent"])
    assert_same_model(runs[True][0], runs[False][0])
    assert runs[True][1] * 3 < runs[False][1]  # zero background: several times fewer bytes


def _coded_case(rng, t, want):
    """Packed sample bytes of length want (never 0x80: -128 is no 8-bit input) and their run
    coding; every fourth case adversarial: a long run, then literals one segment at a time
    (the in-place decoder's worst case)."""
    a = (rng.random(want) < rng.random()) * rng.integers(1, 256, want)
    a[a == 0x80] = 0x7F
    data = a.astype(np.uint8).tobytes()
    coded, segs = P.runcode(data)
    if t % 4 == 0:
        return _run_then_literals(rng, want - want // 2, want // 2)
    assert P.rundecode(coded) == data
    return data, coded, segs


def _run_then_literals(rng, zrun, n_lits, empty=0):
    """A run of zrun zeros, ``empty`` empty segments (header byte 0, which is also the
    background byte: a run that overwrites it decodes to the same bytes), then n_lits literal
    bytes one segment each: (data, coded, segments)."""
    lits = bytes(rng.integers(1, 128, n_lits).astype(np.uint8))
    head = [31 << 3] + [255] * ((zrun - 31) // 255) + [(zrun - 31) % 255]
    coded = bytes([0]) + bytes(head) + b"\x00" * empty + \
        b"".join(bytes([1, v]) for v in lits)
    segs = [(zrun, 0, len(head))] + [(0, 0, 1)] * empty + [(0, 1, 1)] * n_lits
    data = b"\x00" * zrun + lits
    assert P.rundecode(coded) == data
    return data, coded, segs


def _device_takes(dev, rng, bits, batch, n, data, coded, segs, seed):
    """(host predicate, device accepted) for one run-coded PREDICT of a [n, 4, 3] model; what
    the device accepts must give the logits of the same batch sent uncoded."""
    max_frame = dev.info()["max_frame"]
    at = 8 + 4 + (0 if bits == 8 else 1 << bits)  # frame header, sample header, table
    dev.configure([n, 4, 3], "ternary", seed=seed, batch=batch)
    table = b"" if bits == 8 else bytes(
        np.clip(rng.integers(-127, 128, 1 << bits), -127, 127).astype(np.int8))
    head = struct.pack("<BBH", 1, bits, batch) + table  # flag 1: logits
    plain = P.parse_predict(dev.request(P.CMD["PREDICT"], head + data, reply_size=1024),
                            batch, 3, logits=True)
    ok = P.runs_decode_in_place(segs, at, len(coded), max_frame)
    try:
        r = dev.request(P.CMD["PREDICT"], bytes([head[0] | P.SAMPLES_RUNS]) + head[1:] + coded,
                        reply_size=1024)
    except DeviceReplyError as exc:
        assert exc.status == -107, str(exc)  # E_NOMEM: a run would overwrite coded bytes
        return ok, False
    got = P.parse_predict(r, batch, 3, logits=True)
    assert np.array_equal(got["logits"], plain["logits"])
    return ok, True


def _room(max_frame, bits, batch):
    """Largest batch * n_inputs: the batch unpacked to int8 must fit the frame buffer after
    CONFIGURE's room for the largest TRAIN frame (frame header and CRC, sample header, k and
    p of 2 layers, a 16-entry table, the labels) and after the PREDICT's own header, with the
    logits (3 classes, aligned) behind it."""
    at = 8 + 4 + (0 if bits == 8 else 1 << bits)
    return max_frame - max(12 + 4 + 16 + 16 + 2 * batch, at + 3 + 4 * batch * 3)


@pytest.fixture(scope="module")
def big_arena_dev(twin_exe):
    """The host twin with a larger arena (FW_ARENA_BYTES), for models of up to 6,600 inputs:
    batches that fill a whole frame. The frame buffers and their decoder are the same."""
    exe = sim.build_twin(defines=["FW_ARENA_BYTES=262144u"])
    with sim.start_twin(exe) as proc, Device(proc.port, timeout=2.0) as d:
        yield d


def test_run_coding_in_place_check_matches_the_device_c(big_arena_dev):
    """protocol.runs_decode_in_place (what the host uses to decide whether it may send a batch
    run-coded) says yes exactly when the device's C decoder (firmware/src/link.c, here in the
    host twin) accepts the coded batch, and what it accepts decodes to the same samples as the
    batch sent uncoded (the same logits). Batches near the frame's limit, every input width
    (the decode offset moves with the table), sparse, dense and adversarial data, and runs
    that end exactly at the first coded byte not read yet, or one byte past it."""
    dev = big_arena_dev
    rng = np.random.default_rng(6)
    max_frame = dev.info()["max_frame"]
    seen = {(True, True): 0, (False, False): 0}
    for t in range(240):
        bits = (8, 4, 2, 1)[t % 4 if t % 8 < 4 else int(rng.integers(0, 4))]
        batch = int(rng.integers(1, 9))
        at = 8 + 4 + (0 if bits == 8 else 1 << bits)
        room = _room(max_frame, bits, batch)
        count = int(rng.integers(room - 400, room + 1)) if t % 3 else \
            int(rng.integers(50, room + 1))
        n = max(1, count // batch)
        want = (batch * n * bits + 7) // 8  # packed bytes
        data, coded, segs = _coded_case(rng, t, want)
        if at + len(coded) + 4 > max_frame:
            continue  # the frame itself (with its CRC) would not fit
        got = _device_takes(dev, rng, bits, batch, n, data, coded, segs, seed=t)
        assert got[0] == got[1], (t, bits, batch, n, "host says %s, device %s" % got)
        seen[got] += 1
    assert seen[(True, True)] > 60 and seen[(False, False)] > 20, seen
    # the boundary: a run, E empty segments, then L one-byte literal segments, 8-bit inputs
    # (offset 12), one sample: the coded bytes sit at max_frame - c, c = 1 + h + E + 2L (h:
    # the run's header), so the run of z = max_frame - E - 2L - 12 + d ends on the first
    # unread coded byte (d = 0: fits) or one past it (d = 1: refused, even where that byte is
    # an empty segment's header, 0 like the background, which a decoder that let the run
    # through would still decode right)
    for n_lits in (100, 101, 257, 1000, 2345):
        for empty in (0, 1):
            for d in (0, 1):
                zrun = max_frame - empty - 2 * n_lits - 12 + d
                data, coded, segs = _run_then_literals(rng, zrun, n_lits, empty)
                n = len(data)
                assert n <= _room(max_frame, 8, 1) and 12 + len(coded) + 4 <= max_frame
                got = _device_takes(dev, rng, 8, 1, n, data, coded, segs, seed=n_lits)
                assert got == ((True, True) if d == 0 else (False, False)), \
                    (n_lits, empty, d, got)


def test_run_coded_frame_that_cannot_decode_in_place_is_refused(dev):
    """A long run first, then one-byte literal segments: decoding in place would overwrite
    coded bytes not read yet. The device refuses (E_NOMEM) and the host never sends it."""
    dev.configure([784, 16, 10], "ternary", seed=1, batch=8)
    before = dev.pull()
    want = 8 * 784
    lits = bytes(range(1, 101)) * 21  # 2100 literal bytes
    zrun = want - len(lits)
    head = bytes([31 << 3] + [255] * ((zrun - 31) // 255) + [(zrun - 31) % 255])
    coded = b"\x00" + head + b"".join(bytes([1, v]) for v in lits)
    segs = [(zrun, 0, len(head))] + [(0, 1, 1)] * len(lits)
    assert P.rundecode(coded) == b"\x00" * zrun + lits
    assert not P.runs_decode_in_place(segs, 12, len(coded), dev.info()["max_frame"])
    with pytest.raises(DeviceReplyError) as ei:
        dev.request(P.CMD["PREDICT"], bytes([P.SAMPLES_RUNS, 8, 8, 0]) + coded)
    assert ei.value.status == -107
    for bad in (b"\x00\x08", b"\x00" + b"\xff" * 40, b"\x00\x07\xff\xff"):  # malformed
        with pytest.raises(DeviceReplyError) as ei:
            dev.request(P.CMD["PREDICT"], bytes([P.SAMPLES_RUNS, 8, 1, 0]) + bad)
        assert ei.value.status == -105
    assert dev.pull() == before
