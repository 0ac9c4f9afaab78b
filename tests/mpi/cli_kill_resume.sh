#!/usr/bin/env bash
# `mpirun -np 2 bitgrad train` end to end: a job killed in the middle resumes to the same weights,
# byte for byte, as a job never killed; a world of another size is refused; rank 0 alone writes.
#   usage: cli_kill_resume.sh <mpiexec> <bitgrad binary> <scratch directory>
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mpiexec=$1
bitgrad=$2
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

python3 "$here/../cli/sample_text.py" > text.txt
"$bitgrad" prepare --text text.txt --out data --vocab 300 > /dev/null || fail "prepare"
run=(--data data --steps 300 --batch 2 --seq 16 --layers 1 --hidden 32 --intermediate 64 --heads 2 --log-every 10
     --save-every 2 --keep 3 --seed 4 --binarized --precision fp32)

"$mpiexec" -np 2 "$bitgrad" train --out straight "${run[@]}" > straight.log 2>&1 || { cat straight.log; fail "straight run"; }
grep -q "data parallel: 2 processes" straight.log || fail "no data-parallel banner in straight.log"
[ "$(grep -c '^final model' straight.log)" = 1 ] || fail "final model reported by more than rank 0"

# The same job, killed (SIGKILL to mpirun and both ranks) once it has saved a checkpoint
"$mpiexec" -np 2 "$bitgrad" train --out killed "${run[@]}" > killed.log 2>&1 &
job=$!
for _ in $(seq 1 3000); do
  compgen -G "killed/checkpoints/step-*/COMPLETE" > /dev/null && break
  kill -0 $job 2>/dev/null || break
  sleep 0.01
done
pkill -KILL -P $job 2>/dev/null; kill -KILL $job 2>/dev/null; pkill -KILL -f "bitgrad train --out killed" 2>/dev/null
wait $job 2>/dev/null
[ -e killed/final/model.safetensors ] && fail "the job finished before the kill (nothing was killed)"
"$mpiexec" -np 2 "$bitgrad" train --out killed "${run[@]}" --resume > resumed.log 2>&1 || { cat resumed.log; fail "resume"; }
grep -q "resumed from killed/checkpoints/step-" resumed.log || { cat resumed.log; fail "resume did not find a checkpoint"; }
cmp -s straight/final/model.safetensors killed/final/model.safetensors || fail "killed + resumed weights differ from the straight run's"

# A world of one cannot continue what two processes saved
out=$("$bitgrad" train --out killed "${run[@]}" --resume 2>&1)
[ $? -eq 1 ] && grep -q "saved by 2 data-parallel processes, now running 1" <<<"$out" || { echo "$out"; fail "world-size mismatch not refused"; }
echo "kill and resume under MPI: ok"
