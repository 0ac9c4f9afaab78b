#!/usr/bin/env bash
# bitgrad's packed decode and prefill next to llama.cpp's low-bit types, side by side in one sitting.
#
# Alternates, ROUNDS times, the llama.cpp anchor (../shared/anchors/llamacpp/run.sh: builds llama.cpp
# from a source tree you give it, writes random-weight GGUF models of the FBI shapes, quantizes them
# and runs llama-bench) with ./build/bench/decode_bench on the same shapes, then prints per shape the
# median over rounds of each side's best-of-REPS figure, and bitgrad / llama.cpp's best type.
# A ratio between runs of different sittings means little on a VM whose speed swings: this script
# is how docs/inference.md's comparison table is made.
#
#   LLAMACPP_SRC=/path/to/llama.cpp.git bash bench/compare_llamacpp.sh > compare.jsonl
#
# stdout: the raw JSON lines of both sides (tagged "round"), then one "summary" line per (shape,
# side, configuration) and a Markdown table on stderr. Env vars (defaults in brackets):
#   LLAMACPP_SRC     llama.cpp git dir or checkout (required; the project does not vendor it)
#   LLAMACPP_REF     commit [c392e5094deaf2d1a7c18683214f007fad3fe42b: the figures of issue 21]
#   LLAMACPP_ANCHOR  the anchor script [<repo>/../shared/anchors/llamacpp/run.sh]
#   SHAPES           [130M 1.3B]          TYPES  llama.cpp types [TQ2_0 TQ1_0 Q4_0]
#   ROUNDS           [3]                  THREADS [2]    PP TG REPS [128 64 3]
#   TABLES           decode_bench --tables [bf16,int8]   ACTIVATIONS --activations [float,int8]
#   ONCE_SHAPES      shapes run once after the rounds, both sides (e.g. 7B: its models take minutes) []
#   DECODE_BENCH     [./build/bench/decode_bench]
#   WORK_DIR         the anchor's work dir, kept so its build and models serve every round
#                    [$HOME/.cache/bitgrad-llamacpp]; the models are deleted at the end unless KEEP_MODELS=1
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${LLAMACPP_SRC:?set LLAMACPP_SRC to a llama.cpp git dir or checkout (fetch github:ggerganov/llama.cpp)}"
LLAMACPP_REF="${LLAMACPP_REF:-c392e5094deaf2d1a7c18683214f007fad3fe42b}"
ANCHOR="${LLAMACPP_ANCHOR:-$repo/../shared/anchors/llamacpp/run.sh}"
SHAPES="${SHAPES:-130M 1.3B}"
TYPES="${TYPES:-TQ2_0 TQ1_0 Q4_0}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
PP="${PP:-128}"; TG="${TG:-64}"; REPS="${REPS:-3}"
TABLES="${TABLES:-bf16,int8}"; ACTIVATIONS="${ACTIVATIONS:-float,int8}"
ONCE_SHAPES="${ONCE_SHAPES:-}"
DECODE_BENCH="${DECODE_BENCH:-$repo/build/bench/decode_bench}"
WORK_DIR="${WORK_DIR:-${HOME:-/tmp}/.cache/bitgrad-llamacpp}"

log() { echo "[compare $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -f "$ANCHOR" ] || die "no llama.cpp anchor at $ANCHOR (set LLAMACPP_ANCHOR)"
[ -x "$DECODE_BENCH" ] || die "no $DECODE_BENCH: build it (cmake --build build --target decode_bench)"
[ "$REPS" = 3 ] || log "note: decode_bench always takes the best of 3 repetitions; llama.cpp takes REPS=$REPS"
mkdir -p "$WORK_DIR"
raw="$(mktemp)"; trap 'rm -f "$raw"' EXIT
cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
isa="$(grep -o -w 'avx2\|avx512f\|avx512_vnni\|avx512_bf16\|asimddp' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ')"
echo "{\"machine\":\"${cpu:-unknown}\",\"isa\":\"${isa% }\",\"cores\":$(nproc),\"threads\":\"$THREADS\",\"llamacpp_ref\":\"$LLAMACPP_REF\"}"
log "machine: ${cpu:-unknown} [${isa% }], $(nproc) cores"

presets() { echo "$1" | tr ' ' ','; }

# One side each, for the shapes given; every line goes to stdout and to $raw, tagged with the round.
run_llamacpp() {  # round shapes
  log "round $1: llama.cpp [$2] types [$TYPES]"
  LLAMACPP_SRC="$LLAMACPP_SRC" LLAMACPP_REF="$LLAMACPP_REF" WORK_DIR="$WORK_DIR" KEEP_MODELS=1 \
    SHAPES="$2" TYPES="$TYPES" THREADS="$THREADS" PP="$PP" TG="$TG" REPS="$REPS" \
    bash "$ANCHOR" | while IFS= read -r line; do
      # llama-bench reports the mean of its repetitions; the best one is in its own JSON file
      shape="$(sed -n 's/.*"shape": "\([^"]*\)".*/\1/p' <<<"$line")"
      type="$(sed -n 's/.*"type": "\([^"]*\)".*/\1/p' <<<"$line")"
      bench="$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$WORK_DIR/bench-$shape-$type.json")"
      echo "{\"side\":\"llama.cpp\",\"round\":$1,\"anchor\":$line,\"bench\":$bench}"
    done | tee -a "$raw"
}
run_bitgrad() {  # round shapes
  log "round $1: bitgrad decode_bench [$2] tables [$TABLES] activations [$ACTIVATIONS]"
  "$DECODE_BENCH" --presets "$(presets "$2")" --threads "$THREADS" --prompt "$PP" --gen "$TG" --dense no \
    --tables "$TABLES" --activations "$ACTIVATIONS" | while IFS= read -r line; do
      echo "{\"side\":\"bitgrad\",\"round\":$1,\"bench\":$line}"
    done | tee -a "$raw"
}

for round in $(seq 1 "$ROUNDS"); do
  # alternate which side goes first, so neither always runs on a cooler (or warmer) machine
  if [ $((round % 2)) = 1 ]; then run_llamacpp "$round" "$SHAPES"; run_bitgrad "$round" "$SHAPES"
  else run_bitgrad "$round" "$SHAPES"; run_llamacpp "$round" "$SHAPES"; fi
done
if [ -n "$ONCE_SHAPES" ]; then
  run_llamacpp 0 "$ONCE_SHAPES"
  run_bitgrad 0 "$ONCE_SHAPES"
fi
[ "${KEEP_MODELS:-0}" = 1 ] || rm -rf "$WORK_DIR/models"

python3 - "$raw" <<'PYEOF'
import json, statistics, sys
from collections import defaultdict

runs = defaultdict(list)   # (shape, side, config) -> [(decode, prefill)] one per round
fractions = defaultdict(list)  # bitgrad: decode bytes/s over the same run's bandwidth probe, per round
read_fractions = defaultdict(list)  # the same over the read-only probe
meta = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["side"] == "llama.cpp":
        a = r["anchor"]
        best = {}
        for x in r["bench"]:  # llama-bench: one record per test (pp or tg), samples_ts per repetition
            key = "prefill" if int(x["n_gen"]) == 0 else "decode"
            if int(x["n_threads"]) == a["threads"]:
                best[key] = max(x.get("samples_ts") or [x["avg_ts"]])
        key = (a["shape"], "llama.cpp", a["type"])
        runs[key].append((best.get("decode"), best.get("prefill")))
        meta[key] = {"bytes_per_token_mib": round(a["decode_bytes_per_token"] / 2**20, 2),
                     "cpu": a.get("cpu"), "commit": a.get("llamacpp_commit")}
    else:
        b = r["bench"]
        if "skipped" in b:
            continue
        cfg = f'{b["format"].replace("packed-1bit-", "")} / {b["activations"]} activations'
        if b.get("library_default"):
            cfg += " (default)"
        key = (b["preset"], "bitgrad", cfg)
        runs[key].append((b["decode_tokens_per_s"], b["prefill_tokens_per_s"]))
        fractions[key].append(b["fraction_of_bandwidth"])
        if "fraction_of_read_bandwidth" in b:
            read_fractions[key].append(b["fraction_of_read_bandwidth"])
        meta[key] = {"bytes_per_token_mib": b["bytes_per_token_mib"], "rss_mib": b["rss_mib"]}

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

summary = defaultdict(dict)
for (shape, side, cfg), xs in runs.items():
    summary[shape][(side, cfg)] = (med([d for d, _ in xs]), med([p for _, p in xs]), len(xs))

rows = []
for shape, s in summary.items():
    ll = {cfg: v for (side, cfg), v in s.items() if side == "llama.cpp"}
    best_dec = max(ll.items(), key=lambda kv: kv[1][0] or 0, default=(None, (None, None, 0)))
    best_pre = max(ll.items(), key=lambda kv: kv[1][1] or 0, default=(None, (None, None, 0)))
    for (side, cfg), (dec, pre, n) in sorted(s.items()):
        out = {"summary": "compare_llamacpp", "shape": shape, "side": side, "config": cfg, "rounds": n,
               "decode_tokens_per_s": dec, "prefill_tokens_per_s": pre, **meta[(shape, side, cfg)]}
        if fractions[(shape, side, cfg)]:
            out["fraction_of_bandwidth"] = med(fractions[(shape, side, cfg)])
        if read_fractions[(shape, side, cfg)]:
            out["fraction_of_read_bandwidth"] = med(read_fractions[(shape, side, cfg)])
        if best_dec[0] and dec:
            out["decode_vs_llamacpp_best"] = round(dec / best_dec[1][0], 3)
            out["llamacpp_best_decode_type"] = best_dec[0]
        if best_pre[0] and pre:
            out["prefill_vs_llamacpp_best"] = round(pre / best_pre[1][1], 3)
            out["llamacpp_best_prefill_type"] = best_pre[0]
        print(json.dumps(out))
        rows.append(out)

fmt = lambda x: "-" if x is None else f"{x:.1f}"
ratio = lambda x: "-" if x is None else f"{x:.2f}x"
fmt2 = lambda x: "-" if x is None else f"{x:.2f}"
print("\n| shape | side | configuration | decode tok/s | vs llama.cpp best | prefill tok/s | vs llama.cpp best "
      "| bytes/token | of the bandwidth probe | of the read probe | rounds |", file=sys.stderr)
print("|---|---|---|---|---|---|---|---|---|---|---|", file=sys.stderr)
for o in rows:
    print(f'| {o["shape"]} | {o["side"]} | {o["config"]} | {fmt(o["decode_tokens_per_s"])} | '
          f'{ratio(o.get("decode_vs_llamacpp_best"))} | {fmt(o["prefill_tokens_per_s"])} | '
          f'{ratio(o.get("prefill_vs_llamacpp_best"))} | {o["bytes_per_token_mib"]} MiB | '
          f'{fmt2(o.get("fraction_of_bandwidth"))} | {fmt2(o.get("fraction_of_read_bandwidth"))} | {o["rounds"]} |',
          file=sys.stderr)
PYEOF
