# ST NUCLEO-F446RE (STM32F446RE, Cortex-M4F). Built, not run here; see README.md for flashing.
set(BOARD_KIND mcu)
set(BOARD_CPU_FLAGS -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -mthumb)
set(BOARD_SOURCES
  ${FW_DIR}/boards/armv7m/startup.c
  ${FW_DIR}/boards/nucleo-f446re/board.c
  ${FW_DIR}/boards/nucleo-f446re/flash.c)
set(BOARD_LDSCRIPT ${FW_DIR}/boards/nucleo-f446re/stm32f446re.ld)
set(BOARD_LDDIRS ${FW_DIR}/boards/armv7m)
set(BOARD_DEFINES)
set(BOARD_QEMU_MACHINE "")
