#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite:
#   1. the normal build (warnings are errors) and every ctest test;
#   2. a clang ASan/UBSan build of the unit tests and the fuzz targets of
#      every decoder of network input, each fuzzed for a bounded time;
#   3. the integration tests that drive the coordinator's network inputs,
#      against that build's coordinator and agent (harness.py fails a test
#      whose processes logged a sanitizer report).
# GPU tests exit 77 (reported as skipped) on hosts without a CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
fi
jobs=$(nproc)

echo "== build (warnings as errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRF_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== tests"
ctest --test-dir build --output-on-failure --timeout 900

echo "== sanitizers and fuzzing (clang, ASan + UBSan)"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRF_CUDA=OFF -DRF_SANITIZE=ON \
    -DRF_FUZZ=ON -DRF_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -L 'unit|fuzz' --timeout 900

echo "== the real coordinator and agent under ASan + UBSan (their logs are checked)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure --timeout 900 \
    -R '^it_(api_(auth|endpoints|idempotency)|sheets_(job|read)|live_job|e2e_csv|tenant_quota)$'
