"""examples/basic_motions.py end to end on the host twin (BasicMotions smartwatch data from
../shared/data or $FLIPNET_DATA: CSV of feature windows, trained on the device, pulled,
exported as a C header that computes what the model computes from the float features), and
the README's Python script, run exactly as the README prints it."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import flipnet
from test_export import CORE_INC, core_objects  # noqa: F401  (a fixture)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "basic_motions.py")


def _env(twin_exe):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(flipnet.__file__)))
    env["FLIPNET_TWIN"] = twin_exe
    return env


def _example_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("basic_motions", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, twin_exe):
    out = tmp_path_factory.mktemp("motions")
    res = subprocess.run([sys.executable, EXAMPLE, "--out", str(out), "--json"],
                         env=_env(twin_exe), cwd=str(out), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out, json.loads(res.stdout.strip().splitlines()[-1])


def test_example_trains_on_the_twin_pulls_and_exports(example_run):
    out, r = example_run
    assert r["board"] == "host" and r["arch"] == "36-64-4"
    assert r["n_train"] == 40 and r["n_test"] == 40
    assert r["classes"] == ["badminton", "running", "standing", "walking"]
    assert r["accuracy"] >= 0.75  # 4 activities: chance is 0.25
    m = flipnet.load(r["model"])
    assert m.input_scale is not None and m.input_scale.method == "std"
    assert m.training_log[-1]["where"] == "device"
    # the CSV files the example wrote are what flipnet.data reads
    (x, y), (xt, yt) = flipnet.data.load_split(out / "motions_train.csv",
                                               test=out / "motions_test.csv", label="activity")
    assert x.shape == (40, 36) and m.evaluate(xt, yt) == r["accuracy"]
    assert "motions_input_from_features" in open(r["header"]).read()


MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "motions.h"

int main(int argc, char **argv)
{
    static uint32_t scratch[(MOTIONS_SCRATCH_BYTES + 3) / 4];
    double f[MOTIONS_N_INPUTS];
    int8_t x[MOTIONS_N_INPUTS];
    uint16_t cls;
    size_t j;
    FILE *in = fopen(argv[1], "rb");
    if (argc < 2 || in == NULL || motions_check() != FLIPNET_OK) return 2;
    while (fread(f, sizeof f, 1, in) == 1) {
        motions_input_from_features(f, x);
        if (flipnet_view_predict(&motions_model, x, 1, &cls, scratch, sizeof scratch)
            != FLIPNET_OK) return 3;
        printf("%u", (unsigned)cls);
        for (j = 0; j < MOTIONS_N_INPUTS; j++) printf(" %d", (int)x[j]);
        printf("\n");
    }
    fclose(in);
    return 0;
}
"""


def test_the_c_header_quantizes_and_predicts_like_the_model(example_run, core_objects,  # noqa: F811
                                                            tmp_path):
    out, r = example_run
    cc, objs = core_objects
    main = tmp_path / "main.c"
    main.write_text(MAIN_C)
    exe = str(tmp_path / "motions")
    res = subprocess.run([cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O1",
                          "-I", str(out), "-I", CORE_INC, str(main), *objs, "-o", exe],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert res.returncode == 0, res.stdout
    m = flipnet.load(r["model"])
    _, (xt, yt) = flipnet.data.load_split(out / "motions_train.csv",
                                          test=out / "motions_test.csv", label="activity")
    # the test windows, and values on rounding boundaries and outside the clamp
    s = m.input_scale
    edge = np.array([s.offset + (k + 0.5) / np.where(s.scale > 0, s.scale, 1.0)
                     for k in (-200, -128, -3, -1, 0, 1, 2, 126, 300)])
    f = np.ascontiguousarray(np.concatenate([xt, edge]), dtype=np.float64)
    data = tmp_path / "f.f64"
    f.tofile(data)
    res = subprocess.run([exe, str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = np.array([[int(v) for v in ln.split()] for ln in res.stdout.splitlines()])
    np.testing.assert_array_equal(rows[:, 1:], s.apply(f))  # the same int8 inputs
    np.testing.assert_array_equal(rows[:, 0], m.predict(f))  # the same classes


def test_flipnet_data_points_the_example_elsewhere(tmp_path, monkeypatch):
    mod = _example_module()
    src = mod.find_data()
    here = tmp_path / "mine" / "basicmotions"
    here.mkdir(parents=True)
    for name in mod.FILES:
        os.symlink(os.path.join(src, name), here / name)
    monkeypatch.setenv("FLIPNET_DATA", str(tmp_path / "mine"))
    assert mod.find_data() == str(here)
    monkeypatch.setenv("FLIPNET_DATA", str(here))  # the folder itself
    assert mod.find_data() == str(here)


def _readme_script():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- readme-script -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no <!-- readme-script --> python block"
    return m.group(1)


def test_readme_script_runs_as_printed(example_run, twin_exe, tmp_path):
    script = _readme_script()
    assert len(script.strip().splitlines()) <= 12
    out, r = example_run
    for name in ("motions_train.csv", "motions_test.csv"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    (tmp_path / "readme.py").write_text(script)
    res = subprocess.run([sys.executable, "readme.py"], cwd=str(tmp_path), env=_env(twin_exe),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    acc = float(re.search(r"accuracy on the device: ([0-9.]+)", res.stdout).group(1))
    assert acc == pytest.approx(r["accuracy"], abs=1e-3)  # the example's model, seed 1
    m = flipnet.load(str(tmp_path / "motions.flip"))
    assert m.arch == "36-64-4" and m.input_scale is not None


def test_example_on_the_qemu_m4_gives_the_twins_model(example_run, tmp_path):
    """The same session on the Cortex-M4 firmware under QEMU: bit-identical to the twin's."""
    from test_firmware_qemu import _firmware

    elf = _firmware("mps2-an386")
    out, r = example_run
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(flipnet.__file__)))
    env["FLIPNET_FIRMWARE_DIR"] = os.path.dirname(elf)
    res = subprocess.run([sys.executable, EXAMPLE, "--port", "qemu", "--out", str(tmp_path),
                          "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    q = json.loads(res.stdout.strip().splitlines()[-1])
    assert q["board"] == "mps2-an386" and q["accuracy"] == r["accuracy"]
    a, b = flipnet.load(q["model"]), flipnet.load(r["model"])
    for i in range(a.n_layers):
        assert np.array_equal(a.weights(i), b.weights(i))
    assert (a.shifts, a.steps, a.samples) == (b.shifts, b.steps, b.samples)
