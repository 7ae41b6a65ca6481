"""Firmware builds for every board (CMake + arm-none-eabi-gcc), their size reports and
vector tables; the NUCLEO-F446RE image is built and checked, not run."""

import os
import re
import shutil
import struct
import subprocess

import pytest

from flipnet.device import sim

BOARDS = {  # board: (flash origin, RAM origin, RAM size)
    "mps2-an386": (0x00000000, 0x20000000, 4 << 20),
    "mps2-an385": (0x00000000, 0x20000000, 4 << 20),
    "mps2-an500": (0x00000000, 0x20000000, 4 << 20),
    "nucleo-f446re": (0x08000000, 0x20000000, 128 << 10),
}

need_toolchain = pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("cmake") and sim.repo_root()),
    reason="needs cmake, arm-none-eabi-gcc and the source tree")


@need_toolchain
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_builds_with_size_report_and_vector_table(board):
    elf = sim.build_firmware(board)
    base = os.path.splitext(elf)[0]
    for ext in (".elf", ".bin", ".map", ".size.txt"):
        assert os.path.exists(base + ext), base + ext
    with open(base + ".size.txt") as f:
        head = f.readline()
    m = re.search(r"flash (\d+) B, static RAM \(\.data\+\.bss\) (\d+) B, stack reserved (\d+)",
                  head)
    assert m, head
    flash, static, stack = (int(v) for v in m.groups())
    assert flash <= 64 * 1024 and static <= 64 * 1024 - 1024  # the bar leaves >= 1 KB of stack
    flash_org, ram_org, ram_size = BOARDS[board]
    with open(base + ".bin", "rb") as f:
        sp, reset = struct.unpack("<II", f.read(8))
    assert ram_org < sp <= ram_org + ram_size and sp % 8 == 0
    assert sp >= ram_org + static + stack  # the stack sits above .data/.bss
    assert reset & 1 and flash_org <= reset - 1 < flash_org + flash  # Thumb, inside the image
    out = subprocess.run(["arm-none-eabi-nm", elf], capture_output=True, text=True).stdout
    for sym in ("Reset_Handler", "fw_run", "flipnet_train_step", "flipnet_crc32"):
        assert re.search(r" T %s$" % sym, out, re.M), sym


@need_toolchain
def test_cortex_m_images_use_the_right_instruction_sets():
    """M3 soft-float; M4F/M7 hard-float: the ELF attributes say so."""
    for board, fp in (("mps2-an385", False), ("mps2-an386", True), ("mps2-an500", True)):
        elf = sim.build_firmware(board)
        hdr = subprocess.run(["arm-none-eabi-readelf", "-h", "-A", elf], capture_output=True,
                             text=True).stdout
        assert ("hard-float ABI" in hdr) == fp, (board, hdr)
        cpu = {"mps2-an385": "Cortex-M3", "mps2-an386": "Cortex-M4", "mps2-an500": "Cortex-M7"}
        assert ("Tag_CPU_name: \"%s\"" % cpu[board]) in hdr or "Tag_CPU_arch: v7E-M" in hdr \
            or "Tag_CPU_arch: v7" in hdr, hdr


def test_host_twin_builds_with_cmake(tmp_path):
    if not (shutil.which("cmake") and shutil.which("cc") and sim.repo_root()):
        pytest.skip("needs cmake and a C compiler")
    root = sim.repo_root()
    b = str(tmp_path / "fw-host")
    subprocess.run(["cmake", "-S", os.path.join(root, "firmware"), "-B", b, "-DBOARD=host"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", b, "-j2"], check=True, capture_output=True)
    assert os.access(os.path.join(b, "flipnet-twin"), os.X_OK)


def test_mcu_board_without_toolchain_file_is_refused(tmp_path):
    if not (shutil.which("cmake") and sim.repo_root()):
        pytest.skip("needs cmake")
    r = subprocess.run(["cmake", "-S", os.path.join(sim.repo_root(), "firmware"), "-B",
                        str(tmp_path / "b"), "-DBOARD=mps2-an386"], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "CMAKE_TOOLCHAIN_FILE" in r.stderr
