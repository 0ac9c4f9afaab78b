#!/usr/bin/env bash
# The kernel tests on AArch64, cross-compiled and run under qemu-user (ctest label aarch64):
#   bash tests/aarch64/run_kernel_tests.sh WORK_DIR [CXX QEMU]
# CXX (aarch64-linux-gnu-g++) and QEMU (qemu-aarch64) are the paths CMake found, or empty / *-NOTFOUND.
# A missing tool fails the test when CI=true (CI must not pass by running nothing) and skips it with
# exit code 77 (ctest's SKIP_RETURN_CODE) elsewhere; scripts/setup.sh installs both.
#
# Two programs (the variants choose between two code paths at compile time):
#   dotprod  tests/main.cpp + tests/kernels/*.test.cpp for -march=armv8.2-a+dotprod, run on qemu's
#            `max` CPU: the NEON variants with vdotq_s32, the float GEMM (Eigen's NEON path) and the
#            +-1-panel prefill against their references.
#   armv8-a  the int8 sign kernel (the one variant with a second path, vpaddl + vpadal) and the
#            dispatch check for plain ARMv8-A, run on a Cortex-A53 (no dot product).
# variant.test.cpp checks that the dispatch picks NEON in every family, so a NEON variant that
# reported "not supported" cannot leave the references to pass alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:?usage: run_kernel_tests.sh WORK_DIR [CXX QEMU]}"
cxx="${2:-$(command -v aarch64-linux-gnu-g++ || true)}"
qemu="${3:-$(command -v qemu-aarch64 || true)}"

missing=()
[[ -n "$cxx" && "$cxx" != *NOTFOUND && -x "$cxx" ]] || missing+=("aarch64-linux-gnu-g++ (Debian g++-aarch64-linux-gnu)")
[[ -n "$qemu" && "$qemu" != *NOTFOUND && -x "$qemu" ]] || missing+=("qemu-aarch64 (Debian qemu-user)")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "aarch64 kernel tests: FAILED, missing ${missing[*]}; CI must run them: install with scripts/setup.sh" >&2
    exit 1
  fi
  echo "aarch64 kernel tests: skipped, missing ${missing[*]} (scripts/setup.sh installs them)"
  exit 77
fi

# Only the headers the tests need from /usr/include (doctest, nlohmann): the cross compiler must not
# see the host's C library headers there.
mkdir -p "$work/include"
for d in doctest nlohmann; do ln -sfn "/usr/include/$d" "$work/include/$d"; done
flags=(-std=c++20 -O2 -fopenmp -fno-trapping-math -fno-math-errno -Wall -Wextra -Wno-maybe-uninitialized -Werror
       -I "$root/include" -I "$root/tests" -isystem /usr/include/eigen3 -isystem "$work/include")
jobs="$(nproc)"

# build NAME MARCH SOURCES...: one object per source (in $work/NAME, named after it), compiled $jobs
# at a time, then linked.
build() {
  local name="$1" march="$2"
  shift 2
  mkdir -p "$work/$name"
  (cd "$work/$name" && printf '%s\n' "$@" | xargs -P "$jobs" -n 1 "$cxx" "${flags[@]}" "$march" -c) ||
    { echo "aarch64 kernel tests: the $name program did not compile" >&2; exit 1; }
  local objs=()
  for s in "$@"; do objs+=("$work/$name/$(basename "$s" .cpp).o"); done
  "$cxx" -fopenmp "${objs[@]}" -o "$work/$name/kernel_tests"
}

start=$SECONDS
build dotprod -march=armv8.2-a+dotprod "$root/tests/main.cpp" "$root"/tests/kernels/*.test.cpp
build armv8-a -march=armv8-a "$root/tests/main.cpp" "$root/tests/kernels/sign_matmul_q8.test.cpp" \
  "$root/tests/kernels/variant.test.cpp"
echo "aarch64 kernel tests: compiled in $((SECONDS - start)) s"

export OMP_NUM_THREADS=2
start=$SECONDS
"$qemu" -cpu max -L /usr/aarch64-linux-gnu "$work/dotprod/kernel_tests"
"$qemu" -cpu cortex-a53 -L /usr/aarch64-linux-gnu "$work/armv8-a/kernel_tests"
echo "aarch64 kernel tests: passed under qemu in $((SECONDS - start)) s"
