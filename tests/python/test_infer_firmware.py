"""The inference-only firmware (issue 5): a 784-128-10 ternary model trained briefly on the
host, exported as a C header (`flipnet export --format c`), compiled into
flipnet-infer-mps2-an386.elf, run under qemu-system-arm (Cortex-M4). A test set of 2,000
images (synthetic data, synth.py: the check never depends on MNIST being present) goes over
the emulated UART in PREDICT frames; every prediction must equal the host core's
`Model.predict` and ONNX Runtime's on the exported ONNX graph. Training commands get a clear
refusal; the image links only the inference part of the core and keeps the weights in flash.

The QEMU part needs qemu-system-arm, cmake and arm-none-eabi-gcc (CI has them); the host twin
of the inference firmware (the same loop built for the PC) needs cmake and a C compiler.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from lean import LEAN

import flipnet
from flipnet.device import protocol as P
from flipnet.device import selftest, sim
from flipnet.device.client import Device, DeviceReplyError
from flipnet.device.framing import encode_frame
from flipnet.device.session import prepare_inputs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="QEMU / pty tests")

ARCH = [784, 128, 10]
NAME = "test_model"


@pytest.fixture(scope="module")
def trained(synthetic, tmp_path_factory):
    """A 784-128-10 ternary model trained briefly on the host, its file and its C header."""
    (x, y), _ = synthetic
    d = tmp_path_factory.mktemp("infer")
    m = flipnet.Model.ternary(ARCH, seed=3, recipe=LEAN)
    m.fit(x, y, epochs=1, verbose=0)
    m.save(str(d / "model.flip"))
    from flipnet import cli

    assert cli.main(["export", str(d / "model.flip"), "--format", "c", "-o",
                     str(d / (NAME + ".h"))]) == 0
    return m, d


def _tools(*names):
    missing = [t for t in names if shutil.which(t) is None]
    if missing or sim.repo_root() is None:
        pytest.skip("needs %s and the source tree" % ", ".join(missing or ["the source tree"]))


@pytest.fixture(scope="module")
def elf(trained):
    _tools("qemu-system-arm", "cmake", "arm-none-eabi-gcc")
    m, d = trained
    return sim.build_firmware("mps2-an386", build_dir=str(d / "fw-infer-mps2-an386"),
                              model_header=str(d / (NAME + ".h")))


@pytest.fixture(scope="module")
def qemu(elf):
    """The inference firmware under QEMU (its TCP serial port takes one connection at a time,
    and a new one after the last closed)."""
    with sim.start_qemu("mps2-an386", elf=elf) as proc:
        yield proc


@pytest.fixture
def m4(qemu):
    with Device(qemu.port, timeout=5.0) as dev:
        yield dev, qemu


def _size_report(elf):
    with open(os.path.splitext(elf)[0] + ".size.txt") as f:
        m = re.search(r"flash (\d+) B, static RAM \(\.data\+\.bss\) (\d+) B, stack reserved "
                      r"(\d+) B", f.readline())
    return tuple(int(v) for v in m.groups())


# ---- the image -------------------------------------------------------------------------------
def test_image_links_only_inference_and_keeps_the_weights_in_flash(trained, elf):
    m, d = trained
    weight_bytes = m.memory_report()["weight_bytes"]
    nm = subprocess.run(["arm-none-eabi-nm", "-S", elf], capture_output=True, text=True,
                        check=True).stdout
    syms = {ln.split()[-1]: ln.split() for ln in nm.splitlines() if len(ln.split()) >= 3}
    # (flipnet_predict / flipnet_forward are the one-thread calls of the _mt ones that do the work)
    for name in ("flipnet_predict_mt", "flipnet_forward_mt", "fw_parse_samples", "Reset_Handler"):
        assert name in syms, name
    for name in syms:  # no training, no model files, no FP32 layers, no float formatting
        assert not re.match(r"flipnet_(train_step|calibrate|file_|layer_set|model_init)|"
                            r"fn_(vote|backprop|file|counter|int_(update|error_down|output_error|"
                            r"init)|ternary|binary|fp32|f32|adamw)", name), name
    with open(os.path.splitext(elf)[0] + ".map") as f:
        memory_map = f.read().split("Linker script and memory map", 1)[1]
    linked = re.findall(r"^ \.text\S*\s+0x\S+\s+0x\S+\s+(\S+\.obj)", memory_map, re.M)
    objs = {os.path.basename(o) for o in linked}
    assert {"model.c.obj", "forward.c.obj", "kernels.c.obj", "kind_int.c.obj", "kinds.c.obj",
            "status.c.obj", "infer.c.obj", "link.c.obj"} <= objs, objs
    # the whole core is compiled; --gc-sections keeps no training, file or float code
    assert not objs & {"train.c.obj", "vote.c.obj", "kind_ternary.c.obj", "kind_binary.c.obj",
                       "file.c.obj", "kind_fp32.c.obj", "kernels_f32.c.obj", "fmath.c.obj",
                       "adapt.c.obj", "device.c.obj"}, objs
    # the weights: const data in flash (below 0x20000000), exactly the core's weight bytes
    addr, size = int(syms[NAME + "_weights"][0], 16), int(syms[NAME + "_weights"][1], 16)
    assert size == weight_bytes == 25408 and addr < 0x20000000
    flash, static, stack = _size_report(elf)
    assert flash > weight_bytes and static < 16 * 1024 and stack == 2048
    # RAM is the link's buffers, the scratch and a few hundred bytes of state
    info_ram = 6320 + 348 + 3936  # frame, reply, scratch of 8 samples (INFO says the same)
    assert info_ram < static < info_ram + 1024, static


# ---- a whole test set over the UART --------------------------------------------------------
def test_whole_test_set_identical_to_the_host_core_and_onnx(trained, m4, synthetic):
    m, d = trained
    dev, _ = m4
    (_, _), (xt, yt) = synthetic
    n = len(xt)
    assert n == 2000
    info = dev.info()
    assert info["inference_only"] and info["configured"] and info["runs"]
    model = info["model"]
    assert model["arch"] == "784-128-10" and model["kinds"] == ["ternary", "ternary"]
    assert model["input"] == m.input_encoding and model["steps"] == m.steps
    assert model["weight_bytes"] == 25408 and info["max_batch"] == 8
    x8, _ = prepare_inputs(xt, 8, model["input"])
    host = m.predict(x8)
    t0 = time.perf_counter()
    got = dev.predict(x8)  # 250 PREDICT frames of 8 samples, run-coded
    seconds = time.perf_counter() - t0
    link = dev.link_stats()
    print("\n%d test images classified under QEMU in %.1f s (%d bytes sent, %d received); "
          "accuracy %.4f" % (n, seconds, link["bytes_sent"], link["bytes_received"],
                             float(np.mean(got == yt))))
    assert got.shape == (n,)
    assert np.array_equal(got, host), np.flatnonzero(got != host)[:10]
    assert float(np.mean(got == yt)) > 0.75
    # what keeps the whole MNIST test set well under a minute on two free cores
    # (docs/benchmarks.md: ~46 s; the emulated UART moves ~47 KB/s): run-coded inputs
    assert link["bytes_sent"] < n * 784 / 3.5, link
    assert seconds < 300, seconds  # a hang guard, not a benchmark
    st = dev.stats()
    assert st["trained"] == n and st["train_frames"] == n // 8 and st["changes"] == [0, 0]
    assert 0 < st["stack_used"] < st["stack_bytes"]
    # logits and EVAL agree with the host too
    cls, logits = dev.predict(x8[:40], logits=True)
    assert np.array_equal(logits, m.forward(x8[:40])) and np.array_equal(cls, host[:40])
    correct, n = dev.evaluate(x8[:400], yt[:400])
    assert (correct, n) == (int(np.sum(host[:400] == yt[:400])), 400)
    # ONNX Runtime on the exported graph: the same predictions
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = str(d / "model.onnx")
    m.export(path, "onnx")
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    _, onnx_cls = sess.run(["logits", "class"], {sess.get_inputs()[0].name:
                                                 xt.reshape(len(xt), -1)})
    assert np.array_equal(np.asarray(onnx_cls).ravel(), got)


def test_training_and_model_transfer_are_refused_clearly(m4):
    dev, _ = m4
    x = np.zeros((2, 784), np.int8)
    calls = {"CONFIGURE": lambda: dev.configure([784, 16, 10]),
             "TRAIN": lambda: dev.train(x, [0, 1], [1, 1], [1, 1]),
             "LOAD": lambda: dev.load(flipnet.Model.ternary([784, 16, 10]).to_bytes()),
             "PULL": lambda: dev.pull(),
             "RESET": lambda: dev.reset()}
    for name, call in calls.items():
        with pytest.raises(DeviceReplyError) as ei:
            call()
        e = ei.value
        assert e.status == P.E_INFER_ONLY and e.detail[0] == P.CMD[name], name
        msg = str(e)
        assert "inference-only firmware" in msg and "flash the training firmware" in msg
        assert "784-128-10" in msg and name in msg
    assert dev.info()["configured"]  # nothing changed
    assert dev.predict(x).shape == (2,)


def test_cli_on_the_inference_firmware(qemu, capsys, synthetic_dir):
    from flipnet import cli

    assert cli.main(["device", "info", "--port", qemu.port]) == 0
    out = capsys.readouterr().out
    assert "inference-only" in out and "784-128-10" in out
    assert cli.main(["device", "eval", "--port", qemu.port, "--limit", "80", "--data-dir",
                     synthetic_dir, "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["n"] == 80 and r["accuracy"] > 0.5
    assert cli.main(["device", "train", "--port", qemu.port, "--limit", "8", "--data-dir",
                     synthetic_dir, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "inference-only firmware" in err and "flash the training firmware" in err


def test_damaged_and_random_frames(m4):
    dev, _ = m4
    selftest.random_frames(dev, count=40, seed=21, include_state_changes=True)
    # run-coded inputs that decode to too few / too many bytes, or run past the frame
    for coded in (b"\x00\x08", b"\x00" + b"\xff" * 40, b"\x00\x07\xff\xff"):
        items = selftest.exchange(dev, encode_frame(P.CMD["PREDICT"], 77,
                                                    b"\x80\x08\x01\x00" + coded))
        assert items and items[0].status == -105, items
    assert dev.ping(b"ok") == b"ok"


# ---- the host twin of the inference firmware (no QEMU needed) --------------------------------
def test_host_twin_of_the_inference_firmware(trained, synthetic, tmp_path):
    _tools("cmake")
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler")
    m, d = trained
    (_, _), (xt, _) = synthetic
    exe = sim.build_firmware("host", build_dir=str(tmp_path / "fw-infer-host"),
                             model_header=str(d / (NAME + ".h")))
    x8, table = prepare_inputs(xt[:400], 4, m.input_encoding)
    with sim.start_twin(exe) as proc, Device(proc.port) as dev:
        assert dev.info()["board"] == "host" and dev.info()["inference_only"]
        assert np.array_equal(dev.predict(x8, bits=4, table=table), m.predict(x8))
        dev.runs = False  # uncoded frames give the same
        assert np.array_equal(dev.predict(x8[:64]), m.predict(x8[:64]))
        with pytest.raises(DeviceReplyError, match="inference-only"):
            dev.configure(ARCH)
