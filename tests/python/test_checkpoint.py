"""Training survives a reset (issue 12, docs/protocol.md section 10): the firmware's
checkpoint store on the host twin (a flash file) and on QEMU M4 (a semihosting file), the
twin and QEMU killed and restarted, the model restored at boot bit for bit, the reply cache
committed with it (a retransmitted TRAIN is not applied twice), E_STEPS for a host that is
ahead of a restored device, SAVE / RESTORE / wipe, and a flash file of garbage booting to
"no checkpoint". The power-cut sweep of the store itself is tests/c/test_ckpt.c.
"""

import os
import struct

import numpy as np
import pytest

from flipnet.device import protocol as P
from flipnet.device import sim
from flipnet.device.client import Device, DeviceReplyError
from flipnet.device.framing import encode_frame

from test_device_twin import assert_same_model

SIZES = [16, 8, 4]
K, PQ = [10, 3], [30000, 30000]


def _batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(-40, 40, (4, 16)).astype(np.int8), rng.integers(0, 4, 4))
            for _ in range(n)]


def _train(dev, batches, first_step):
    r = None
    for i, (x, y) in enumerate(batches):
        step = first_step + i
        r = dev.train(x, y, K, PQ, calibrate=(step == 0), expected_steps=step)
    return r


def _reference(batches):
    """The same steps on a twin without a store, never interrupted."""
    with sim.start_twin(sim.find_twin()) as t, Device(t.port, timeout=2.0) as d:
        d.configure(SIZES, seed=3, batch=4)
        _train(d, batches, 0)
        return d.pull()


def _send(dev, frame):
    """Write a raw frame, return the first reply frame."""
    dev.write_raw(frame)
    for _ in range(2000):
        for f in dev.decoder.feed(dev.read_raw()):
            if hasattr(f, "seq"):
                return f
    raise AssertionError("no reply")


@pytest.fixture
def flash(tmp_path):
    return str(tmp_path / "flash.bin")


def test_twin_resumes_from_its_checkpoint(twin_exe, flash, tmp_path):
    batches = _batches(12)
    link = str(tmp_path / "pty")
    with sim.start_twin(twin_exe, link=link, flash=flash) as t, Device(link, timeout=2.0) as d:
        st = d.info()["store"]
        assert st["store"] and st["checkpoint"] is None and st["slots"] == 2
        d.configure(SIZES, seed=3, batch=4, checkpoint_every=4)
        assert d.checkpoint()["checkpoint"]["steps"] == 0  # CONFIGURE saved step 0
        _train(d, batches[:7], 0)
        st = d.checkpoint()
        assert st["every"] == 4 and st["checkpoint"]["steps"] == 4
        assert st["writes"] == 2 and st["erases"] == 2 and st["wear"] == 2
        t.proc.kill()  # SIGKILL: nothing after step 4 was saved
    with sim.start_twin(twin_exe, link=link, flash=flash) as t, Device(link, timeout=2.0) as d:
        st = d.info()["store"]
        assert st["restored"] and st["every"] == 4 and st["checkpoint"]["steps"] == 4
        assert d.stats()["steps"] == 4
        d.sizes, d.batch = list(SIZES), 4
        # the host is ahead (step 7): the device refuses instead of training an older model
        with pytest.raises(DeviceReplyError) as e:
            d.train(*batches[7], K, PQ, expected_steps=7)
        assert e.value.status == P.E_STEPS and e.value.detail == (4, 7)
        assert d.stats()["steps"] == 4
        _train(d, batches[4:], 4)  # resend from the first step the checkpoint lacks
        pulled = d.pull()
    assert_same_model(pulled, _reference(batches))


def test_reply_cache_is_committed_with_the_checkpoint(twin_exe, flash, tmp_path):
    """A TRAIN acknowledged at a cadence point, retransmitted after a reset (its reply was
    lost), gets its cached reply: applied once."""
    link = str(tmp_path / "pty")
    (x, y), = _batches(1)
    payload = P.train_payload(x, y, K, PQ, calibrate=True, expected_steps=0)
    frame = encode_frame(P.CMD["TRAIN"], 0x1234, payload)
    with sim.start_twin(twin_exe, link=link, flash=flash) as t, Device(link, timeout=2.0) as d:
        d.configure(SIZES, seed=3, batch=4, checkpoint_every=1)
        assert _send(d, frame).status == 0
        assert d.stats()["steps"] == 1
        t.proc.kill()  # the reply was "lost": the host will retransmit
    with sim.start_twin(twin_exe, link=link, flash=flash) as t, Device(link, timeout=2.0) as d:
        reply = _send(d, frame)  # the same seq and CRC: the retransmission, first thing
        assert reply.seq == 0x1234 and reply.status == 0
        assert P.parse_train(reply.payload, 2)["steps"] == 1
        st = d.stats()
        assert st["steps"] == 1 and st["dup_frames"] == 1  # answered from the cache


def test_save_restore_wipe_and_errors(twin_exe, flash, tmp_path):
    batches = _batches(6)
    with sim.start_twin(twin_exe, flash=flash) as t, Device(t.port, timeout=2.0) as d:
        with pytest.raises(DeviceReplyError) as e:
            d.save()  # no model
        assert e.value.status == -106
        with pytest.raises(DeviceReplyError) as e:
            d.restore()  # no checkpoint
        assert e.value.status == P.E_STORAGE
        for bad in (b"\x00", b"\x09\x00\x00\x00\x00", b"\x00" * 6):
            with pytest.raises(DeviceReplyError) as e:
                d.request(P.CMD["SAVE"], bad)
            assert e.value.status in (-105, -2)
        d.configure(SIZES, seed=3, batch=4)  # no cadence: nothing saved
        assert d.checkpoint()["checkpoint"] is None
        _train(d, batches[:3], 0)
        st = d.save()
        assert st["checkpoint"]["steps"] == 3
        saved = d.pull()
        _train(d, batches[3:], 3)
        assert d.stats()["steps"] == 6
        st = d.restore()
        assert st["restored"] and d.stats()["steps"] == 3
        assert_same_model(d.pull(), saved)
        assert d.set_checkpoint_every(5)["every"] == 5
        assert d.wipe_checkpoints()["checkpoint"] is None
        assert d.stats()["steps"] == 3  # the live model stays
    with sim.start_twin(twin_exe, flash=flash) as t, Device(t.port, timeout=2.0) as d:
        assert d.info()["store"]["checkpoint"] is None and not d.info()["configured"]
    # no store on the twin without --flash: a clear refusal, and configure says so
    with sim.start_twin(twin_exe) as t, Device(t.port, timeout=2.0) as d:
        assert d.info()["store"]["store"] is False
        with pytest.raises(Exception, match="no checkpoint store"):
            d.configure(SIZES, seed=3, batch=4, checkpoint_every=4)
        with pytest.raises(DeviceReplyError) as e:  # the device's own check
            d.request(P.CMD["CONFIGURE"], P.configure_payload(SIZES, seed=3, batch=4,
                                                              checkpoint_every=4))
        assert e.value.status == P.E_STORAGE and not d.stats()["configured"]
        d.configure(SIZES, seed=3, batch=4)
        with pytest.raises(DeviceReplyError) as e:
            d.save()
        assert e.value.status == P.E_STORAGE


def test_garbage_flash_boots_to_no_checkpoint(twin_exe, flash):
    rng = np.random.default_rng(5)
    data = bytearray(rng.integers(0, 256, 128 * 1024, dtype=np.uint8).tobytes())
    for slot in (0, 64 * 1024):  # headers that start right and are wrong further on
        data[slot:slot + 8] = b"FNCK" + struct.pack("<HH", 1, 112)
    with open(flash, "wb") as f:
        f.write(bytes(data))
    with sim.start_twin(twin_exe, flash=flash) as t, Device(t.port, timeout=2.0) as d:
        st = d.info()["store"]
        assert st["store"] and st["checkpoint"] is None and not d.info()["configured"]
        d.configure(SIZES, seed=3, batch=4, checkpoint_every=2)
        _train(d, _batches(2), 0)
        assert d.checkpoint()["checkpoint"]["steps"] == 2
    with sim.start_twin(twin_exe, flash=flash) as t, Device(t.port, timeout=2.0) as d:
        assert d.stats()["steps"] == 2


def test_qemu_m4_keeps_its_checkpoint_across_a_restart(tmp_path):
    if not sim.qemu_available():
        pytest.skip("qemu-system-arm not installed")
    elf = sim.build_firmware("mps2-an386")
    flash = str(tmp_path / "m4flash.bin")
    extra = ["-semihosting-config", "enable=on,target=native,arg=flash=" + flash]
    batches = _batches(9)
    with sim.start_qemu("mps2-an386", elf=elf) as q, Device(q.port, timeout=5.0) as d:
        assert d.info()["store"]["store"] is False  # no semihosting: boots without a store
    with sim.start_qemu("mps2-an386", elf=elf, extra=extra) as q, \
            Device(q.port, timeout=5.0) as d:
        d.configure(SIZES, seed=3, batch=4, checkpoint_every=3)
        _train(d, batches[:5], 0)
        assert d.checkpoint()["checkpoint"]["steps"] == 3
    assert os.path.getsize(flash) == 128 * 1024
    with sim.start_qemu("mps2-an386", elf=elf, extra=extra) as q, \
            Device(q.port, timeout=5.0) as d:
        assert d.info()["store"]["restored"] and d.stats()["steps"] == 3
        d.sizes, d.batch = list(SIZES), 4
        _train(d, batches[3:], 3)
        pulled = d.pull()
    assert_same_model(pulled, _reference(batches))


def test_device_train_survives_kills_bit_identical(twin_exe, tmp_path):
    """train_on_device with a checkpoint cadence: the twin killed (SIGKILL) and restarted at
    random steps; the host reconnects, reads where the checkpoint left off, resends from
    there: the pulled model equals an uninterrupted run's, bit for bit."""
    from flipnet.device.session import train_on_device
    from synth import digits

    (x, y), _ = digits(n_train=480, n_test=8, seed=2)
    kw = dict(sizes=[784, 24, 10], seed=5, epochs=2, batch=8, bits=4, progress=False,
              recipe="device", input="half")
    with sim.start_twin(twin_exe) as t, Device(t.port, timeout=2.0) as d:
        clean = train_on_device(d, x, y, **kw)
    flash = str(tmp_path / "flash.bin")
    link = str(tmp_path / "pty")
    rng = np.random.default_rng(11)
    kills = set(int(v) for v in rng.choice(np.arange(3, 118), 5, replace=False))
    state = {"twin": sim.start_twin(twin_exe, link=link, flash=flash), "killed": 0}

    def on_step(step, r):
        if step in kills:
            kills.discard(step)
            state["twin"].proc.kill()
            state["twin"].stop()
            state["killed"] += 1
            state["twin"] = sim.start_twin(twin_exe, link=link, flash=flash)

    try:
        with Device(link, timeout=2.0) as d:
            s = train_on_device(d, x, y, checkpoint_every=7, on_step=on_step, **kw)
    finally:
        state["twin"].stop()
    assert state["killed"] == 5 and s["resets"] >= 5
    assert s["steps"] == clean["steps"] == 120
    assert_same_model(s["device_bytes"], clean["device_bytes"])


def test_cli_save_restore_info(twin_exe, tmp_path):
    import subprocess
    import sys

    flash = str(tmp_path / "flash.bin")
    import flipnet

    env = dict(os.environ, FLIPNET_TWIN=twin_exe,
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(flipnet.__file__))))

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "flipnet", "device"] + list(a), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    with sim.start_twin(twin_exe, flash=flash) as t:
        r = cli("save", "--port", t.port)
        assert r.returncode != 0 and "E_STATE" in r.stderr  # no model: a clear error
        with Device(t.port, timeout=2.0) as d:
            d.configure(SIZES, seed=3, batch=4)
            _train(d, _batches(2), 0)
        r = cli("save", "--port", t.port, "--every", "5")
        assert r.returncode == 0 and "step 2" in r.stdout and "every 5 steps" in r.stdout
        r = cli("info", "--port", t.port)
        assert "checkpoint     step 2" in r.stdout, r.stdout
        r = cli("restore", "--port", t.port)
        assert r.returncode == 0 and "the live model" in r.stdout
        r = cli("save", "--port", t.port, "--wipe")
        assert r.returncode == 0 and "empty" in r.stdout
        r = cli("restore", "--port", t.port)
        assert r.returncode != 0 and "E_STORAGE" in r.stderr
    r = subprocess.run([sys.executable, "-m", "flipnet", "device", "train", "--help"],
                       stdout=subprocess.PIPE, text=True)
    assert "--checkpoint-every" in r.stdout


def test_out_in_a_missing_directory_fails_before_training(twin_exe, tmp_path):
    import subprocess
    import sys

    import flipnet

    env = dict(os.environ, FLIPNET_TWIN=twin_exe,
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(flipnet.__file__))))
    out = str(tmp_path / "missing" / "model.flip")
    with sim.start_twin(twin_exe) as t:
        r = subprocess.run([sys.executable, "-m", "flipnet", "device", "train", "--port", t.port,
                            "--data-dir", str(tmp_path / "no-data"), "--limit", "64", "-q",
                            "--out", out], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert r.returncode != 0 and "does not exist" in r.stderr, r.stderr
        with Device(t.port, timeout=2.0) as d:
            assert not d.stats()["configured"]  # nothing was configured or trained


def test_qemu_m4_device_train_survives_kills(tmp_path):
    """The same on QEMU M4: qemu-system-arm killed at 3 random steps and restarted (same
    TCP port, same semihosting flash file); the pulled model is bit-identical."""
    from flipnet.device.session import train_on_device
    from synth import digits

    if not sim.qemu_available():
        pytest.skip("qemu-system-arm not installed")
    elf = sim.build_firmware("mps2-an386")
    (x, y), _ = digits(n_train=240, n_test=8, seed=3)
    kw = dict(sizes=[784, 24, 10], seed=5, epochs=2, batch=8, bits=4, progress=False,
              recipe="device", input="half")
    with sim.start_twin(sim.find_twin()) as t, Device(t.port, timeout=2.0) as d:
        clean = train_on_device(d, x, y, **kw)
    flash = str(tmp_path / "m4flash.bin")
    extra = ["-semihosting-config", "enable=on,target=native,arg=flash=" + flash]
    rng = np.random.default_rng(13)
    kills = set(int(v) for v in rng.choice(np.arange(3, 58), 3, replace=False))
    q = sim.start_qemu("mps2-an386", elf=elf, extra=extra)
    tcp = int(q.port.rsplit(":", 1)[1])
    state = {"q": q, "killed": 0}

    def on_step(step, r):
        if step in kills:
            kills.discard(step)
            state["q"].proc.kill()
            state["q"].stop()
            state["killed"] += 1
            state["q"] = sim.start_qemu("mps2-an386", elf=elf, extra=extra, port=tcp)

    try:
        with Device(q.port, timeout=5.0) as d:
            s = train_on_device(d, x, y, checkpoint_every=5, on_step=on_step, **kw)
    finally:
        state["q"].stop()
    assert state["killed"] == 3 and s["resets"] >= 3
    assert_same_model(s["device_bytes"], clean["device_bytes"])


def test_twin_killed_at_random_moments(twin_exe, tmp_path):
    """SIGKILL at 20 random moments (not step boundaries: inside a request, between the step
    and its reply, in the middle of a checkpoint write), the twin restarted each time; the
    host resumes: the pulled model equals an uninterrupted run's."""
    import threading

    from flipnet.device.session import train_on_device
    from synth import digits

    (x, y), _ = digits(n_train=960, n_test=8, seed=4)
    kw = dict(sizes=[784, 32, 10], seed=7, epochs=2, batch=8, bits=8, progress=False,
              recipe="device", input="half")
    with sim.start_twin(twin_exe) as t, Device(t.port, timeout=2.0) as d:
        clean = train_on_device(d, x, y, **kw)
    flash = str(tmp_path / "flash.bin")
    link = str(tmp_path / "pty")
    state = {"twin": sim.start_twin(twin_exe, link=link, flash=flash), "killed": 0}
    done = threading.Event()
    rng = np.random.default_rng(21)

    def killer():
        while state["killed"] < 20 and not done.wait(float(rng.uniform(0.02, 0.12))):
            state["twin"].proc.kill()
            state["twin"].stop()
            state["killed"] += 1
            state["twin"] = sim.start_twin(twin_exe, link=link, flash=flash)
        # the twin dies with the thread that started it (PR_SET_PDEATHSIG): stay until done
        done.wait()

    th = threading.Thread(target=killer, daemon=True)
    try:
        with Device(link, timeout=2.0) as d:
            th.start()
            s = train_on_device(d, x, y, checkpoint_every=3, **kw)
            done.set()
            th.join()
    finally:
        done.set()
        state["twin"].stop()
    assert state["killed"] >= 10 and s["resets"] >= 1
    assert_same_model(s["device_bytes"], clean["device_bytes"])
