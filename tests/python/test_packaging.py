"""Packaging: the sdist and the wheel carry the core and the firmware sources (flipnet/_src in
the wheel; setup.py, MANIFEST.in), so that a wheel installed in a fresh venv, run from an
empty directory far from any checkout, builds the firmware and trains on the emulated
Cortex-M4 (`flipnet demo --build`); the source-tree lookup order (device/sim.py); and a demo
asked to --build that cannot build or run the device fails instead of falling back.

The wheel test builds an sdist and, from it, a wheel (python -m build, no isolation: the
build requirements are those installed), installs the wheel into a venv made with
--system-site-packages (numpy, cffi, ... from the system; flipnet itself from the wheel, as
checked), and needs cmake, arm-none-eabi-gcc, qemu-system-arm and MNIST (the demo's data, found
as flipnet.datasets finds it and passed on through FLIPNET_DATA). ~30 s.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from flipnet.device import sim

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
#: files the device builds need, relative to the source tree (and to flipnet/_src in a wheel)
NEEDED = ["csrc/include/flipnet/flipnet.h", "firmware/CMakeLists.txt", "firmware/src/link.c",
          "firmware/src/device.c", "firmware/boards/host/host.c",
          "firmware/boards/mps2-an386/board.cmake", "cmake/arm-none-eabi.cmake"]
#: not shipped: build products and caches
JUNK = re.compile(r"(^|/)(__pycache__|build|build-[^/]*)/|\.(so|o|obj|elf|pyc)$")


def _clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "FLIPNET_ROOT", "FLIPNET_TWIN", "FLIPNET_FIRMWARE_DIR",
                        "PYTHONHOME", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a fresh firmware build, from the wheel
    return env


def _need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("needs %s" % ", ".join(missing))


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(sdist, wheel) built from a copy of this checkout (so that nothing is written into
    it): the sdist first, the wheel from the sdist."""
    pytest.importorskip("build")
    if not os.path.isfile(os.path.join(ROOT, "setup.py")):
        pytest.skip("not a source checkout")
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(ROOT, str(src), ignore=shutil.ignore_patterns(
        ".git", "build", "build-*", "dist", "__pycache__", "*.so", "*.o", "*.egg-info",
        ".pytest_cache", "*.flip", "*.elf", "_src"))
    r = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                        str(tmp / "dist"), str(src)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:]
    out = sorted(os.listdir(str(tmp / "dist")))
    sdist = [f for f in out if f.endswith(".tar.gz")]
    wheel = [f for f in out if f.endswith(".whl")]
    assert len(sdist) == 1 and len(wheel) == 1, out
    return str(tmp / "dist" / sdist[0]), str(tmp / "dist" / wheel[0])


def test_sdist_carries_the_core_firmware_and_toolchain_files(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    for f in NEEDED + ["setup.py", "MANIFEST.in", "python/flipnet/_build.py"]:
        assert f in names, f
    tracked = [os.path.relpath(os.path.join(d, f), ROOT)
               for tree in ("csrc", "firmware", "cmake")
               for d, _, files in os.walk(os.path.join(ROOT, tree)) for f in files]
    tracked = [f for f in tracked if not JUNK.search(f)]
    assert len(tracked) > 30 and set(tracked) <= set(names), set(tracked) - set(names)
    assert not [n for n in names if JUNK.search(n)]


def test_wheel_carries_the_sources_as_package_data(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    for f in NEEDED:
        assert "flipnet/_src/" + f in names, f
    assert any(re.match(r"flipnet/_core.*\.so$", n) for n in names)
    assert sum(n.startswith("flipnet/_src/csrc/src/") and n.endswith(".c") for n in names) >= 5
    assert not [n for n in names if n.startswith("flipnet/_src/") and JUNK.search(n)]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_trains_on_the_emulated_m4(dists, tmp_path):
    """pip install <wheel> in a fresh venv; from an empty directory, `flipnet demo --build`
    builds the firmware from the wheel's sources and trains on QEMU's Cortex-M4."""
    _need("cmake", "arm-none-eabi-gcc", "qemu-system-arm")
    from flipnet import datasets

    mnist = datasets.find_dataset("mnist")
    if mnist is None:
        pytest.skip("MNIST not available locally (the demo's data)")
    _, wheel = dists
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = _clean_env(tmp_path)
    env["FLIPNET_DATA"] = mnist
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed",
                        "--no-index", wheel], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    assert r.returncode == 0, r.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run(
        [py, "-c", "import flipnet, flipnet.device.sim as s; print(flipnet.__file__); "
                   "print(s.repo_root())"],
        cwd=str(empty), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=120)
    assert where.returncode == 0, where.stdout
    init, root = where.stdout.split()
    site = str(venv / "lib")
    assert init.startswith(site) and init.endswith(os.path.join("flipnet", "__init__.py")), init
    assert root == os.path.join(os.path.dirname(init), "_src"), root  # the wheel's own copy
    r = subprocess.run([str(venv / "bin" / "flipnet"), "demo", "--build", "--limit", "160",
                        "--test-limit", "200", "--epochs", "1"],
                       cwd=str(empty), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    out = " ".join(r.stdout.split())  # the summary's columns, single-spaced
    assert "device mps2-an386 " in out, r.stdout
    assert "trained 160 samples in 20 steps" in out, r.stdout
    assert "flipnet demo: device = qemu mps2-an386 on socket://" in r.stderr, r.stderr
    assert "host twin" not in r.stderr and "in-process" not in r.stderr, r.stderr
    assert (empty / "demo.flip").exists()
    built = [os.path.join(d, f) for d, _, fs in os.walk(str(tmp_path / "cache")) for f in fs
             if f == "flipnet-mps2-an386.elf"]
    assert len(built) == 1 and "/src-" in built[0], built  # built here, from the wheel


# ---- the source-tree lookup ---------------------------------------------------------------------
def _fake_tree(d):
    for sub in ("csrc/src", "firmware/src"):
        os.makedirs(os.path.join(str(d), sub))
    return str(d)


def test_lookup_order(tmp_path, monkeypatch):
    """$FLIPNET_ROOT first, then the checkout this package runs from, the current directory
    and its parents, and the package's own copy (flipnet/_src) last."""
    monkeypatch.delenv("FLIPNET_ROOT", raising=False)
    here = os.path.dirname(os.path.abspath(sim.__file__))
    cands = sim.root_candidates()
    assert cands[0] == os.path.normpath(os.path.join(here, "..", "..", ".."))
    assert cands[-1] == os.path.normpath(os.path.join(here, "..", "_src"))
    other = _fake_tree(tmp_path / "other")
    monkeypatch.setenv("FLIPNET_ROOT", other)
    assert sim.root_candidates()[0] == other and sim.repo_root() == other
    assert sim.build_base(other) == os.path.join(other, "build")
    if sim.packaged_root() is None:  # a checkout: it wins over the current directory
        monkeypatch.delenv("FLIPNET_ROOT")
        monkeypatch.chdir(other)
        assert sim.repo_root() == os.path.normpath(os.path.join(here, "..", "..", ".."))


def test_packaged_sources_build_into_the_cache(tmp_path, monkeypatch):
    pkg = _fake_tree(tmp_path / "pkg" / "_src")
    monkeypatch.setattr(sim, "packaged_root", lambda: pkg)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    base = sim.build_base(pkg)
    assert base.startswith(str(tmp_path / "cache" / "flipnet" / "src-"))
    with open(os.path.join(pkg, "csrc", "src", "a.c"), "w") as f:
        f.write("int a;\n")
    assert sim.build_base(pkg) != base  # other sources, another build directory


def test_no_sources_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sim, "repo_root", lambda: None)
    for call in (lambda: sim.build_firmware("mps2-an386"), lambda: sim.build_twin()):
        with pytest.raises(sim.DeviceError) as ei:
            call()
        msg = str(ei.value)
        assert "no flipnet source tree" in msg and "FLIPNET_ROOT" in msg and "_src" in msg


# ---- flipnet demo --build: no quiet fallback -----------------------------------------------------
def test_demo_build_fails_loudly_without_qemu(monkeypatch, capsys, tmp_path):
    from flipnet import cli

    monkeypatch.setattr(sim, "qemu_available", lambda: False)
    rc = cli.main(["demo", "--build", "--limit", "8", "--out", str(tmp_path / "d.flip"),
                   "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "demo --build: cannot run the mps2-an386 firmware: qemu-system-arm not found" in err
    assert not (tmp_path / "d.flip").exists()


def test_demo_build_fails_loudly_without_sources(monkeypatch, capsys, tmp_path):
    from flipnet import cli

    monkeypatch.setattr(sim, "qemu_available", lambda: True)
    monkeypatch.setattr(sim, "find_firmware", lambda board: None)
    monkeypatch.setattr(sim, "repo_root", lambda: None)
    rc = cli.main(["demo", "--build", "--limit", "8", "--out", str(tmp_path / "d.flip"),
                   "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot build the firmware: no flipnet source tree" in err, err


def test_demo_without_build_says_what_it_fell_back_to(monkeypatch, capsys, tmp_path,
                                                      synthetic_dir, twin_exe):
    """Without --build (and even with --quiet) the fallback to the host twin is stated, and
    the summary names the device that trained."""
    from flipnet import cli

    monkeypatch.setattr(sim, "qemu_available", lambda: False)
    monkeypatch.setenv("FLIPNET_TWIN", twin_exe)
    rc = cli.main(["demo", "--limit", "16", "--test-limit", "20", "--data-dir", synthetic_dir,
                   "--out", str(tmp_path / "d.flip"), "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "qemu-system-arm not found; using the host twin" in cap.err
    assert re.search(r"^device\s+host$", cap.out, re.M), cap.out
