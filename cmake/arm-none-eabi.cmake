# CMake toolchain file for bare-metal Cortex-M builds with the GNU Arm Embedded toolchain
# (Debian/Ubuntu: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi).
#
#   cmake -S firmware -B build/fw-mps2-an386 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake -DBOARD=mps2-an386
#
# CPU flags (-mcpu, -mfpu, -mfloat-abi) come from firmware/boards/<board>/board.cmake.
# Set ARM_NONE_EABI_PREFIX (e.g. /opt/gcc-arm/bin/arm-none-eabi-) for a toolchain off PATH.

set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

if(NOT DEFINED ARM_NONE_EABI_PREFIX)
  set(ARM_NONE_EABI_PREFIX "arm-none-eabi-")
endif()

set(CMAKE_C_COMPILER ${ARM_NONE_EABI_PREFIX}gcc)
set(CMAKE_ASM_COMPILER ${ARM_NONE_EABI_PREFIX}gcc)
set(CMAKE_OBJCOPY ${ARM_NONE_EABI_PREFIX}objcopy CACHE FILEPATH "objcopy")
set(CMAKE_SIZE ${ARM_NONE_EABI_PREFIX}size CACHE FILEPATH "size")

# No host executables can be linked (no startup files): test the compiler with a library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
