# The host twin: the device loop as a Linux/macOS program behind a pseudo-terminal (default)
# or stdin/stdout (--stdio). Built with the host compiler (no toolchain file).
set(BOARD_KIND host)
set(BOARD_CPU_FLAGS)
set(BOARD_SOURCES ${FW_DIR}/boards/host/host.c)
set(BOARD_LDSCRIPT "")
set(BOARD_LDDIRS "")
set(BOARD_DEFINES _XOPEN_SOURCE=600 _DEFAULT_SOURCE)
set(BOARD_QEMU_MACHINE "")
