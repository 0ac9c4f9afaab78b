#!/usr/bin/env bash
# Installs what bitgrad needs from Debian packages (root, or sudo), skipping what is present
# (clang-format: the layout check; gnuplot-nox: the demo's plots; OpenMPI: data-parallel training;
# g++-aarch64-linux-gnu and qemu-user: the NEON kernels' tests, ctest label aarch64).
set -euo pipefail
packages=(cmake ninja-build g++ libeigen3-dev doctest-dev libcxxopts-dev libopenblas-openmp-dev
          nlohmann-json3-dev libsentencepiece-dev sentencepiece clang-format gnuplot-nox
          libopenmpi-dev openmpi-bin g++-aarch64-linux-gnu qemu-user)
missing=()
# npm (for the demo's text package) often comes with a Node.js that is not Debian's; only ask
# Debian for it when there is no npm at all.
command -v npm >/dev/null 2>&1 || missing+=(npm)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
