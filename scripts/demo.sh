#!/usr/bin/env bash
# The main job: installs dependencies, builds the examples (Release) and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target 01_quickstart
./build/examples/01_quickstart "$@"
