# ARM MPS2 with the AN500 FPGA image (cortex-m7), as modelled by qemu-system-arm -M mps2-an500.
set(BOARD_KIND mcu)
set(BOARD_CPU_FLAGS -mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard -mthumb)
set(BOARD_SOURCES
  ${FW_DIR}/boards/armv7m/startup.c
  ${FW_DIR}/boards/mps2-common/board.c
  ${FW_DIR}/boards/mps2-common/flash.c)
set(BOARD_LDSCRIPT ${FW_DIR}/boards/mps2-common/mps2.ld)
set(BOARD_LDDIRS ${FW_DIR}/boards/armv7m)
set(BOARD_DEFINES MPS2_BOARD_NAME="mps2-an500" MPS2_PSRAM=0x60000000u)  # flash.c: PSRAM
set(BOARD_QEMU_MACHINE mps2-an500)
