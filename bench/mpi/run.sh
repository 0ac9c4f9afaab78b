#!/usr/bin/env bash
# Data parallelism on this machine, both layouts in one run: one process with 2 threads (the
# baseline) and 2 processes with 1 thread each, then the ratio of their tokens/s.
#   bash bench/mpi/run.sh [data_parallel_bench options, e.g. --preset 130M --batch 4 --seq 256]
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=build/bench/data_parallel_bench
[ -x "$bench" ] || { echo "build it first: cmake --build build --target data_parallel_bench (needs libopenmpi-dev)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# mpirun binds a rank to one core by default: the 2-thread process must be free to use both.
one=$(OMP_NUM_THREADS=2 mpirun -np 1 --bind-to none "$bench" "$@")
two=$(OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core "$bench" "$@")
echo "$one"
echo "$two"
python3 - "$one" "$two" <<'PY'
import json, sys
step = lambda text: [json.loads(l) for l in text.splitlines() if '"dp_step"' in l][0]
a, b = step(sys.argv[1]), step(sys.argv[2])
print(json.dumps({"bench": "dp_scaling", "baseline": "1 process x 2 threads", "tokens_per_s_1x2": a["tokens_per_s"],
                  "tokens_per_s_2x1": b["tokens_per_s"], "ratio_2x1_over_1x2": round(b["tokens_per_s"] / a["tokens_per_s"], 3),
                  "allreduce_share_2x1": round(b["allreduce_s_per_step"] / max(b["step_s"], 1e-12), 3)}))
PY
