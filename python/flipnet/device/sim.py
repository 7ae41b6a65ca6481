"""Devices without hardware: the host twin (the firmware's device loop as a POSIX program on
a pseudo-terminal) and the firmware under ``qemu-system-arm`` (MPS2 boards).

    with start_twin() as twin:            # builds the twin on first use (needs a C compiler)
        dev = Device(twin.port)           # "/dev/pts/N"
    with start_qemu("mps2-an386") as q:   # needs qemu-system-arm and a built firmware image
        dev = Device(q.port)              # "socket://127.0.0.1:PORT"

Built images are looked for in ``$FLIPNET_FIRMWARE_DIR`` and the repository's
``build/fw-<board>/`` (``cmake -S firmware -B build/fw-<board> -DBOARD=<board>
-DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake``; :func:`build_firmware` does it).

The sources (csrc/, firmware/, cmake/) come from :func:`repo_root`: ``$FLIPNET_ROOT``, the
checkout this package runs from, a checkout around the current directory, else the copy an
installed package carries in ``flipnet/_src/`` (setup.py puts it in the wheel). Builds from
that copy go to the user cache (``~/.cache/flipnet/src-<digest>/``), not into the package.
"""

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time

from ..files import atomic_path
from .client import DeviceError

__all__ = ["QEMU_BOARDS", "repo_root", "root_candidates", "packaged_root", "build_base",
           "find_twin", "build_twin", "start_twin", "find_firmware", "build_firmware",
           "build_infer_firmware", "start_qemu", "qemu_available"]

#: board -> (QEMU machine, index of the serial port the firmware talks on)
QEMU_BOARDS = {"mps2-an385": ("mps2-an385", 0), "mps2-an386": ("mps2-an386", 0),
               "mps2-an500": ("mps2-an500", 0),
               # the NUCLEO-F446RE image on QEMU's STM32F405 board: the same USART2 at
               # 0x40004400 (QEMU's second serial port); RCC and GPIO are not modelled
               # there (writes ignored), so this checks the UART driver and the whole
               # device loop, not the clock setup
               "nucleo-f446re": ("netduinoplus2", 1)}


def _is_root(d):
    return bool(d) and os.path.isdir(os.path.join(d, "firmware", "src")) and \
        os.path.isdir(os.path.join(d, "csrc", "src"))


def packaged_root():
    """The source tree an installed package carries (flipnet/_src: csrc/, firmware/, cmake/;
    see setup.py), or None (a checkout has none)."""
    d = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "_src"))
    return d if _is_root(d) else None


def root_candidates():
    """The places :func:`repo_root` looks at, in order: $FLIPNET_ROOT, the checkout this
    package runs from, the current directory and its parents (so that ``pip install . &&
    flipnet demo`` in a checkout builds that checkout), then the package's own copy."""
    here = os.path.dirname(os.path.abspath(__file__))
    cands = [os.environ.get("FLIPNET_ROOT", ""), os.path.join(here, "..", "..", "..")]
    d = os.getcwd()
    while True:
        cands.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    cands.append(os.path.join(here, "..", "_src"))
    return [os.path.normpath(c) for c in cands if c]


def repo_root():
    """A flipnet source tree (with csrc/ and firmware/), or None: the first of
    :func:`root_candidates` that holds one."""
    for cand in root_candidates():
        if _is_root(cand):
            return cand
    return None


def _no_sources(what, hint=""):
    return DeviceError("cannot build %s: no flipnet source tree (csrc/ and firmware/) found; "
                       "looked at %s. This package has no copy in flipnet/_src (an install "
                       "from an incomplete sdist or an old wheel?): %sset FLIPNET_ROOT to a "
                       "source checkout" % (what, ", ".join(root_candidates()), hint))


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "flipnet")


def build_base(root):
    """Where builds from ``root`` go: ``root/build`` for a checkout; for the package's own copy
    of the sources, a directory of the user cache named after their digest (an installed
    package's directory may not be writable, and another version builds elsewhere)."""
    pkg = packaged_root()
    if pkg is None or os.path.normpath(root) != pkg:
        return os.path.join(root, "build")
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(pkg) for f in names)
    return os.path.join(_cache_dir(), "src-" + _digest(files))


def _twin_sources(root):
    srcs = sorted(glob.glob(os.path.join(root, "csrc", "src", "*.c")))
    srcs += [os.path.join(root, "firmware", "src", "device.c"),
             os.path.join(root, "firmware", "src", "link.c"),
             os.path.join(root, "firmware", "src", "ckpt.c"),
             os.path.join(root, "firmware", "boards", "host", "host.c")]
    return srcs


def _digest(paths):
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode())
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def build_twin(root=None, out_dir=None, cc=None, defines=None, cflags=None):
    """Compile the host twin with the host C compiler; returns the executable's path.

    ``defines`` (e.g. ``["FW_ARENA_BYTES=200000u"]``) and ``cflags`` (e.g.
    ``["-fsanitize=address,undefined", "-g"]``) make a variant, cached apart."""
    root = root or repo_root()
    if root is None:
        raise _no_sources("the host twin", "set FLIPNET_TWIN to a built flipnet-twin or ")
    srcs = _twin_sources(root)
    headers = sorted(glob.glob(os.path.join(root, "csrc", "include", "flipnet", "*.h")) +
                     glob.glob(os.path.join(root, "csrc", "src", "*.h")) +
                     glob.glob(os.path.join(root, "firmware", "src", "*.h")))
    defines = list(defines or [])
    with open(os.path.join(root, "csrc", "include", "flipnet", "flipnet.h")) as f:
        core_h = f.read()
    if "counter_bytes" in core_h:  # as firmware/CMakeLists.txt: core features
        defines.append("FW_CORE_MODEL_COUNTERS=1")
    if "FLIPNET_NO_FLOAT" in core_h:  # the firmware is integer-only: no FP32 layer code
        defines.append("FLIPNET_NO_FLOAT")
    defs = ["-D%s" % d for d in defines] + list(cflags or [])
    tag = _digest(srcs + headers) + ("-" + hashlib.sha256(" ".join(defs).encode()).hexdigest()[:8]
                                     if defs else "")
    out_dir = out_dir or os.path.join(_cache_dir(), "twin-" + tag)
    exe = os.path.join(out_dir, "flipnet-twin")
    if os.path.exists(exe):
        return exe
    os.makedirs(out_dir, exist_ok=True)
    cc = cc or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or \
        shutil.which("clang")
    if not cc:
        raise DeviceError("cannot build the host twin: no C compiler (cc/gcc/clang) on PATH")
    with atomic_path(exe) as tmp:  # a half-written executable never stands in the cache
        cmd = [cc, "-std=c99", "-O2", "-D_XOPEN_SOURCE=600", "-D_DEFAULT_SOURCE"] + defs + [
            "-I", os.path.join(root, "csrc", "include"),
            "-I", os.path.join(root, "firmware", "src"), "-o", tmp] + srcs
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise DeviceError("building the host twin failed:\n%s\n%s"
                              % (" ".join(cmd), r.stdout))
    return exe


def find_twin(build=True):
    """Path of the host twin: $FLIPNET_TWIN, build/fw-host/flipnet-twin, or build it."""
    env = os.environ.get("FLIPNET_TWIN")
    if env:
        if not os.path.exists(env):
            raise DeviceError("FLIPNET_TWIN=%s does not exist" % env)
        return env
    root = repo_root()
    if build:
        return build_twin(root)
    if root:
        p = os.path.join(build_base(root), "fw-host", "flipnet-twin")
        if os.path.exists(p):
            return p
    return None


class _Proc:
    """A child process serving a device; a context manager that stops it."""

    def __init__(self, proc, port, what):
        self.proc = proc
        self.port = port
        self.what = what

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "<%s pid %s on %s>" % (self.what, self.proc.pid, self.port)


def start_twin(exe=None, link=None, flash=None):
    """Start the host twin on a fresh pseudo-terminal; ``.port`` is its path. ``flash``: a
    file for its checkpoint store (docs/protocol.md section 10), created if missing; a twin
    restarted on the same file resumes from its newest checkpoint."""
    exe = exe or find_twin()
    cmd = [exe] + (["--link", link] if link else []) + (["--flash", os.fspath(flash)]
                                                         if flash else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line:
        err = proc.stderr.read() if proc.poll() is not None else ""
        proc.kill()
        raise DeviceError("the host twin %s did not start: %s" % (exe, err.strip()))
    return _Proc(proc, line, "host twin")


def qemu_available():
    return shutil.which("qemu-system-arm") is not None


def find_firmware(board="mps2-an386"):
    """Path of a built firmware ELF for ``board``, or None."""
    name = "flipnet-%s.elf" % board
    cands = []
    env = os.environ.get("FLIPNET_FIRMWARE_DIR")
    if env:
        cands += [os.path.join(env, name), os.path.join(env, "fw-" + board, name)]
    root = repo_root()
    if root:
        cands.append(os.path.join(build_base(root), "fw-" + board, name))
    cands.append(os.path.join(_cache_dir(), "fw-" + board, name))
    for c in cands:
        if os.path.exists(c):
            return c
    return None


def build_firmware(board="mps2-an386", build_dir=None, jobs=2, quiet=True, model_header=None,
                   options=()):
    """Configure and build the firmware for ``board`` with CMake + arm-none-eabi-gcc (the
    host compiler for ``board="host"``); returns the image's path.

    ``model_header``: a header from ``flipnet export MODEL --format c``: build the
    inference-only firmware for it (``flipnet-infer-<board>.elf``, default build directory
    ``build/fw-infer-<board>``). ``options``: more ``-D...`` arguments for CMake."""
    root = repo_root()
    if root is None:
        raise _no_sources("the firmware")
    host = board == "host"
    for tool in ("cmake",) if host else ("cmake", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            raise DeviceError("cannot build the firmware: %s is not installed (Debian/Ubuntu: "
                              "apt-get install cmake gcc-arm-none-eabi libnewlib-arm-none-eabi)"
                              % tool)
    infer = model_header is not None
    build_dir = build_dir or os.path.join(build_base(root),
                                          ("fw-infer-" if infer else "fw-") + board)
    out = subprocess.DEVNULL if quiet else None
    cfg = ["cmake", "-S", os.path.join(root, "firmware"), "-B", build_dir, "-DBOARD=" + board]
    if not host:
        cfg.append("-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(root, "cmake", "arm-none-eabi.cmake"))
    if infer:
        cfg.append("-DFW_MODEL_HEADER=" + os.path.abspath(os.fspath(model_header)))
    cfg += list(options)
    for cmd in (cfg, ["cmake", "--build", build_dir, "-j%d" % jobs]):
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise DeviceError("firmware build failed: %s\n%s" % (" ".join(cmd), r.stderr))
    name = ("flipnet-infer" if infer else "flipnet") + ("-twin" if host else "-" + board)
    return os.path.join(build_dir, name if host else name + ".elf")


def build_infer_firmware(model, board="mps2-an386", build_dir=None, name="model", jobs=2,
                         quiet=True, options=()):
    """The inference-only firmware for ``model`` (a ``flipnet.Model``, a model file's path,
    or the path of a header from ``flipnet export --format c``): exports the header next to
    the build and builds ``flipnet-infer-<board>.elf`` (``board="host"``: the inference
    firmware's host twin, ``flipnet-infer-twin``). Returns the image's path."""
    root = repo_root()
    if root is None:
        raise _no_sources("the firmware")
    build_dir = build_dir or os.path.join(build_base(root), "fw-infer-" + board)
    if isinstance(model, (str, os.PathLike)) and os.fspath(model).endswith(".h"):
        header = os.path.abspath(os.fspath(model))
    else:
        from ..model import Model, load

        m = model if isinstance(model, Model) else load(model)
        os.makedirs(build_dir, exist_ok=True)
        header = os.path.join(build_dir, "%s.h" % name)
        m.export(header, "c", name=name)
    return build_firmware(board, build_dir=build_dir, jobs=jobs, quiet=quiet,
                          model_header=header, options=options)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_qemu(board="mps2-an386", elf=None, icount=None, extra=(), port=None):
    """Run the firmware for an MPS2 board under qemu-system-arm, UART0 on a TCP socket.

    ``.port`` is a ``socket://127.0.0.1:PORT`` URL for :class:`Device`. ``icount``: an
    ``-icount shift=N`` value (instruction counting; deterministic guest time), or None.
    ``port``: this TCP port instead of a free one (a restarted board at the same address).
    """
    if board not in QEMU_BOARDS:
        raise DeviceError("no QEMU machine for board %r (one of %s)"
                          % (board, ", ".join(QEMU_BOARDS)))
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise DeviceError("qemu-system-arm is not installed (Debian/Ubuntu: apt-get install "
                          "qemu-system-arm)")
    elf = elf or find_firmware(board)
    if elf is None or not os.path.exists(elf):
        raise DeviceError("no firmware image for %s (build it: cmake -S firmware -B "
                          "build/fw-%s -DBOARD=%s -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake"
                          " && cmake --build build/fw-%s)" % (board, board, board, board))
    last = None
    fixed = port
    for _ in range(5 if fixed is None else 20):
        port = _free_port() if fixed is None else int(fixed)
        machine, index = QEMU_BOARDS[board]
        cmd = [qemu, "-M", machine, "-nographic", "-monitor", "none", "-kernel", elf]
        cmd += ["-serial", "null"] * index
        cmd += ["-serial", "tcp:127.0.0.1:%d,server=on,wait=on,nodelay=on" % port]
        if icount is not None:
            cmd += ["-icount", "shift=%s" % icount]
        cmd += list(extra)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                # QEMU is listening once a connect succeeds; close it: pyserial reconnects
                # and QEMU (wait=on) starts the guest on the first connection it accepts
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    pass
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            return _Proc(proc, "socket://127.0.0.1:%d" % port,
                         "qemu %s (%s)" % (board, machine) if machine != board
                         else "qemu %s" % board)
        last = proc.stderr.read()
        if fixed is not None:
            time.sleep(0.25)  # the port may still be held by the previous one
    raise DeviceError("qemu-system-arm did not start: %s" % (last or "").strip())


if __name__ == "__main__":  # pragma: no cover - manual use
    print(find_twin() if len(sys.argv) < 2 else build_firmware(sys.argv[1]))
