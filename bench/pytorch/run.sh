#!/usr/bin/env bash
# The PyTorch baseline, tuned as a careful user would tune it on a small VM: glibc keeps large
# freed blocks instead of returning them to the OS (no page faults every step). OMP_WAIT_POLICY is
# left to the caller: PASSIVE helped on a Zen 4 VM but cost 20% on a Zen 3 one (measured: 84 vs
# 105 tok/s at 2 threads), so try both. Installs Debian's python3-torch if missing.
#   bash bench/pytorch/run.sh [fbi_step.py options]
set -euo pipefail
cd "$(dirname "$0")"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-torch >/dev/null
fi
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=1073741824
exec /usr/bin/python3 fbi_step.py "$@"
