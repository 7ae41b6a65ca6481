#!/usr/bin/env bash
# flipnet's whole test suite (the README's test command; CI runs it through .ci/run).
#
#   1. C unit tests on the host, under ASan + UBSan (ctest)
#   2. the same C tests cross-compiled for aarch64, run under qemu-aarch64
#   3. the same C tests bare-metal on a Cortex-M4 (mps2-an386) under qemu-system-arm
#   4. firmware builds for every board and the inference-only firmware for a 784-128-10 model
#      (size reports in build/fw-*/)
#   5. Python tests (pytest): API, CLI, data sets, C vs NumPy reference bit-exactness,
#      protocol, host twin and QEMU end to end
#
# Needs: cmake, gcc, python with `pip install -e ".[test,onnx,torch,plot]"`, and for 2-4 the
# Debian packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user gcc-arm-none-eabi
# libnewlib-arm-none-eabi qemu-system-arm (.ci/run installs all of it). Missing cross tools
# skip 2-4 with a notice, except under CI=true, where they are required; under CI=true a C
# test that did not run (ctest: skipped, disabled, none found) and a skipped Python test
# (tests/python/conftest.py; the real-board tests excepted) fail the run too.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

need() {  # need TOOL...: 0 if all present; else skip (dev) or fail (CI)
  local t
  for t in "$@"; do
    if ! command -v "$t" >/dev/null 2>&1; then
      if [ "${CI:-}" = "true" ]; then echo "error: $t is required in CI" >&2; exit 1; fi
      echo "=== SKIPPED (no $t installed): $STEP" >&2
      return 1
    fi
  done
}

run_ctest() {  # run_ctest BUILD_DIR: its C tests; under CI=true every one of them must run
  local log
  log=$(mktemp)
  ctest --test-dir "$1" --output-on-failure --no-tests=error -j"$JOBS" | tee "$log"
  if [ "${CI:-}" = "true" ] && grep -q "The following tests did not run" "$log"; then
    echo "error: C tests did not run in $1 (skipped or disabled), not allowed in CI" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}

STEP="C tests, host, ASan+UBSan"; echo "=== $STEP"
cmake -S . -B build/test-host -DFLIPNET_SANITIZE=ON -DFLIPNET_BENCH=OFF >/dev/null
cmake --build build/test-host -j"$JOBS" >/dev/null
run_ctest build/test-host

STEP="C tests, aarch64 under qemu-aarch64"
if need aarch64-linux-gnu-gcc qemu-aarch64; then
  echo "=== $STEP"
  cmake -S . -B build/test-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
        -DFLIPNET_BENCH=OFF >/dev/null
  cmake --build build/test-aarch64 -j"$JOBS" >/dev/null
  run_ctest build/test-aarch64
fi

STEP="C tests, Cortex-M4 under qemu-system-arm"
if need arm-none-eabi-gcc qemu-system-arm; then
  echo "=== $STEP"
  cmake -S . -B build/test-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/cortex-m4-semihost.cmake >/dev/null
  cmake --build build/test-m4 -j"$JOBS" >/dev/null
  run_ctest build/test-m4

  STEP="firmware builds"; echo "=== $STEP"
  for board in mps2-an386 mps2-an385 mps2-an500 nucleo-f446re; do
    cmake -S firmware -B "build/fw-$board" -DBOARD="$board" \
          -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/arm-none-eabi.cmake" >/dev/null
    cmake --build "build/fw-$board" -j"$JOBS" >/dev/null
    cat "build/fw-$board"/*.size.txt 2>/dev/null | tail -n 2 || true
  done
  # the inference-only firmware for a 784-128-10 ternary model (untrained: the image's size
  # does not depend on the weights' values)
  python3 -c 'import flipnet; flipnet.Model.ternary([784, 128, 10], seed=0).export(
      "build/infer_model.h", "c")'
  cmake -S firmware -B build/fw-infer-mps2-an386 -DBOARD=mps2-an386 \
        -DFW_MODEL_HEADER="$PWD/build/infer_model.h" \
        -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/arm-none-eabi.cmake" >/dev/null
  cmake --build build/fw-infer-mps2-an386 -j"$JOBS" >/dev/null
  tail -n 1 build/fw-infer-mps2-an386/flipnet-infer-mps2-an386.size.txt
fi
cmake -S firmware -B build/fw-host -DBOARD=host >/dev/null
cmake --build build/fw-host -j"$JOBS" >/dev/null

STEP="Python tests"; echo "=== $STEP"
python3 -m pytest -q tests/python
