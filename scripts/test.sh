#!/usr/bin/env bash
# The test command: installs dependencies, builds (Release, warnings on), runs the whole suite.
#   bash scripts/test.sh              tests (Release build in build/)
#   bash scripts/test.sh --sanitize   the same under -fsanitize=address,undefined (build-asan/, pure Eigen)
#   extra arguments after the flags go to ctest, e.g. bash scripts/test.sh -L slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch_llama2_tokenizer.sh   # the LLaMA-2 tokenizer's test reads it (never committed: Meta's license)
build=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
ctest_args=()
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build=build-asan
  # Pure Eigen here, so the sanitizer sees every line that runs (OpenBLAS is not instrumented).
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITGRAD_SANITIZE=ON -DBITGRAD_USE_BLAS=OFF -DBITGRAD_BUILD_BENCH=OFF)
  export ASAN_OPTIONS=detect_leaks=0   # OpenMP's runtime keeps its thread pool alive at exit
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest_args=(-LE aarch64)  # the emulated kernel tests run once, in the Release build
fi
cmake -S . -B "$build" -G Ninja "${cmake_args[@]}"
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j 1 "${ctest_args[@]}" "$@"
