"""Firmware builds for every board (CMake + arm-none-eabi-gcc), their size reports and
vector tables; the NUCLEO-F446RE image is built and checked, not run."""

import glob
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


#: per board, the ARM build attributes (readelf -A) its CPU must give: architecture and profile
#: (v7-M: Cortex-M3; v7E-M, with the DSP instructions: Cortex-M4 / M7), the FPU (none on the
#: M3; single-precision FPv4 on the M4F; FPv5 with doubles on the M7) and the float ABI
#: (soft / hard: float arguments in VFP registers)
CPU_ATTRS = {
    "mps2-an385": {"Tag_CPU_arch": "v7", "Tag_CPU_arch_profile": "Microcontroller",
                   "Tag_THUMB_ISA_use": "Thumb-2", "Tag_FP_arch": None,
                   "Tag_ABI_VFP_args": None, "Tag_ABI_HardFP_use": None},
    "mps2-an386": {"Tag_CPU_arch": "v7E-M", "Tag_CPU_arch_profile": "Microcontroller",
                   "Tag_THUMB_ISA_use": "Thumb-2", "Tag_FP_arch": "VFPv4-D16",
                   "Tag_ABI_VFP_args": "VFP registers", "Tag_ABI_HardFP_use": "SP only"},
    "mps2-an500": {"Tag_CPU_arch": "v7E-M", "Tag_CPU_arch_profile": "Microcontroller",
                   "Tag_THUMB_ISA_use": "Thumb-2", "Tag_FP_arch": "FPv5/FP-D16 for ARMv8",
                   "Tag_ABI_VFP_args": "VFP registers", "Tag_ABI_HardFP_use": None},
    "nucleo-f446re": {"Tag_CPU_arch": "v7E-M", "Tag_CPU_arch_profile": "Microcontroller",
                      "Tag_THUMB_ISA_use": "Thumb-2", "Tag_FP_arch": "VFPv4-D16",
                      "Tag_ABI_VFP_args": "VFP registers", "Tag_ABI_HardFP_use": "SP only"},
}


def arm_attributes(path):
    """{tag: value} of an ARM ELF file's build attributes (arm-none-eabi-readelf -A)."""
    out = subprocess.run(["arm-none-eabi-readelf", "-A", path], capture_output=True, text=True,
                         check=True).stdout
    attrs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(Tag_\w+): (.*)$", line)
        if m:
            attrs[m.group(1)] = m.group(2).strip().strip('"')
    return attrs


def cpu_attrs(attrs):
    return {k: attrs.get(k) for k in CPU_ATTRS["mps2-an385"]}


@need_toolchain
@pytest.mark.parametrize("board", sorted(CPU_ATTRS))
def test_cortex_m_images_use_the_right_instruction_sets(board):
    """The exact CPU of each board, from the ELF's build attributes: the image and every
    object linked into it (the device loop's and the core's) were compiled for it."""
    elf = sim.build_firmware(board)
    want = CPU_ATTRS[board]
    assert cpu_attrs(arm_attributes(elf)) == want, board
    hdr = subprocess.run(["arm-none-eabi-readelf", "-h", elf], capture_output=True,
                         text=True, check=True).stdout
    hard = want["Tag_ABI_VFP_args"] is not None
    assert ("hard-float ABI" in hdr) == hard and ("soft-float ABI" in hdr) != hard, hdr
    build = os.path.dirname(elf)
    objs = [o for ext in ("o", "obj") for o in
            glob.glob(os.path.join(build, "CMakeFiles", "*.dir", "**", "*." + ext),
                      recursive=True)]  # the targets' objects (not CMake's compiler probe)
    assert len(objs) >= 5, objs  # the device loop, the board and the core's sources
    for obj in objs:
        assert cpu_attrs(arm_attributes(obj)) == want, obj


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
