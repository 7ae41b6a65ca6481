"""Plots of training (flipnet.plots, matplotlib): --plot on train, device train (the twin and
the QEMU M4) and demo, and flipnet plot MODEL; each checks that a valid PNG of a real size was
written and that the curve it draws comes from the run."""

import json
import struct
import sys

import numpy as np

import flipnet
from flipnet import cli, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_bytes=10000):
    """A PNG file: the signature, an IHDR of a picture (800 x 600 at our size) and more than
    ``min_bytes`` (a curve, not a blank canvas)."""
    with open(path, "rb") as f:
        head = f.read(33)
        f.seek(0, 2)
        size = f.tell()
    assert head[:8] == PNG_MAGIC, "not a PNG"
    assert head[12:16] == b"IHDR"
    w, h = struct.unpack(">II", head[16:24])
    assert (w, h) == (800, 600), (w, h)
    assert size > min_bytes, size


def _npz(tmp_path, n=500, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 12)) + y[:, None] * np.linspace(-1, 1, 12) * 1.5
    p = tmp_path / "d.npz"
    m = n * 4 // 5
    np.savez(p, x=x[:m].astype(np.float32), y=y[:m], x_test=x[m:], y_test=y[m:])
    return p


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_plot_of_a_history_and_its_curve(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (600, 64), dtype=np.uint8)
    y = (x[:, :32].sum(1) > x[:, 32:].sum(1)).astype(np.int64)
    m = flipnet.Model([64, 32, 2], seed=0)
    h = m.fit(x[:500], y[:500], epochs=3, batch_size=10, validation_data=(x[500:], y[500:]),
              verbose=0)
    pts, starts, _ = plots.series(h)
    assert pts[-1]["samples"] == 1500 and len(pts) >= 30
    # the per-epoch validation accuracies are on the curve, at the end of each epoch
    assert [p["val_accuracy"] for p in pts if p["val_accuracy"] is not None] == h.val_acc
    assert sum(sum(p["changes"]) for p in pts) == sum(sum(e["changes"]) for e in h.epochs)
    check_png(plots.plot(h, str(tmp_path / "h.png")))
    # the model file keeps the curve: the same points from the file
    path = str(tmp_path / "m.flip")
    m.save(path)
    fpts, _, _ = plots.series(flipnet.load(path))
    assert [p["train_accuracy"] for p in fpts] == [p["train_accuracy"] for p in pts]


def test_cli_train_plot_and_flipnet_plot(tmp_path, capsys):
    data = _npz(tmp_path)
    out, png = str(tmp_path / "m.flip"), str(tmp_path / "train.png")
    assert cli.main(["train", "--data", str(data), "--arch", "12-48-3", "--epochs", "4",
                     "--out", out, "--plot", png, "--quiet", "--json"]) == 0
    r = _last_json(capsys)
    assert r["plot"] == png
    check_png(png)
    assert cli.main(["plot", out]) == 0
    check_png(str(tmp_path / "m.png"))
    assert cli.main(["plot", out, "-o", str(tmp_path / "sub" / "again.png")]) == 0
    check_png(str(tmp_path / "sub" / "again.png"))


def test_missing_matplotlib_is_a_clear_error_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    data = _npz(tmp_path)
    rc = cli.main(["train", "--data", str(data), "--out", str(tmp_path / "m.flip"),
                   "--plot", str(tmp_path / "x.png"), "--quiet"])
    assert rc == 1
    assert 'pip install "flipnet[plot]"' in capsys.readouterr().err
    assert not (tmp_path / "m.flip").exists()  # refused before training


def test_device_train_plot_on_the_twin_and_demo(tmp_path, capsys, twin_exe, monkeypatch,
                                                synthetic_dir):
    from flipnet.device import sim

    data = _npz(tmp_path)
    out, png = str(tmp_path / "dev.flip"), str(tmp_path / "curve.png")
    with sim.start_twin(twin_exe) as proc:
        assert cli.main(["device", "train", "--port", proc.port, "--data", str(data),
                         "--epochs", "3", "--arch", "12-48-3", "--out", out, "--plot", png,
                         "--json", "--quiet"]) == 0
    r = _last_json(capsys)
    assert r["plot"] == png and 0.5 < r["accuracy"] <= 1.0
    assert r["curve"][-1]["samples"] == 1200 and r["curve"][-1]["val_accuracy"] == r["accuracy"]
    check_png(png)
    # the pulled file keeps the device's curve: flipnet plot draws it again
    pts, _, _ = plots.series(flipnet.load(out))
    assert pts == r["curve"]
    assert cli.main(["plot", out, "-o", str(tmp_path / "again.png")]) == 0
    check_png(str(tmp_path / "again.png"))
    monkeypatch.setenv("FLIPNET_TWIN", twin_exe)
    demo_png = str(tmp_path / "demo.png")
    assert cli.main(["demo", "--twin", "--data-dir", synthetic_dir, "--limit", "400",
                     "--test-limit", "100", "--out", str(tmp_path / "demo.flip"), "--plot",
                     demo_png, "--quiet", "--json"]) == 0
    assert _last_json(capsys)["plot"] == demo_png
    check_png(demo_png)


def test_device_train_data_plot_json_on_qemu(tmp_path, capsys):
    """The issue's bar on the emulated Cortex-M4: --data some.npz --plot curve.png --json."""
    from test_firmware_qemu import _firmware

    from flipnet.device import sim

    elf = _firmware("mps2-an386")
    data = _npz(tmp_path, n=300)
    png = str(tmp_path / "m4.png")
    with sim.start_qemu("mps2-an386", elf=elf) as proc:
        assert cli.main(["device", "train", "--port", proc.port, "--data", str(data),
                         "--epochs", "2", "--out", str(tmp_path / "m4.flip"), "--plot", png,
                         "--json", "--quiet", "--timeout", "10"]) == 0
    r = _last_json(capsys)
    assert r["board"] == "mps2-an386" and r["n_train"] == 240
    assert r["accuracy"] > 0.5 and r["plot"] == png
    check_png(png)
