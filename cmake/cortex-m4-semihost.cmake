# Build the core and the C unit tests for a Cortex-M4 and run them with ctest under
# qemu-system-arm (MPS2 AN386 board, newlib semihosting: no UART, no firmware needed).
#   cmake -B build-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/cortex-m4-semihost.cmake && cmake --build build-m4 -j2
#   ctest --test-dir build-m4
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb")
set(FLIPNET_SEMIHOST ON CACHE BOOL "link the C tests for qemu-system-arm semihosting" FORCE)
set(CMAKE_CROSSCOMPILING_EMULATOR
    qemu-system-arm;-M;mps2-an386;-nographic;-monitor;none;-serial;none;-semihosting;-kernel)
