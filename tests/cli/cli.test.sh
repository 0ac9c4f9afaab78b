#!/usr/bin/env bash
# The command-line program end to end, as a new user meets it: a tiny prepare / train / eval /
# resume / generate run, then damaged inputs and bad options. Every failure must exit 1 (library
# error) or 2 (usage), never abort, and name what was wrong where.
#   usage: cli.test.sh <path to the bitgrad binary> <scratch directory>
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bitgrad=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
failures=0

# expect CODE PATTERN CMD...: runs CMD, requires exit code CODE and PATTERN (grep -E) in its output.
expect() {
  local code=$1 pattern=$2
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: $* -> exit $rc (expected $code), output:"
    echo "$out" | tail -n 5 | sed 's/^/    /'
    echo "    (expected to match: $pattern)"
    failures=$((failures + 1))
  else
    echo "ok:   exit $rc  $*"
  fi
}

# A small text with chapter headings (chapters 10, 20 are held out by default).
python3 "$here/sample_text.py" > text.txt

common=(--steps 3 --batch 2 --seq 16 --layers 1 --hidden 16 --intermediate 32 --heads 2 --log-every 1 --seed 3)
expect 0 "train.bin"                "$bitgrad" prepare --text text.txt --out data --vocab 300
# an existing tokenizer (here the one just trained): the same shards, byte for byte
expect 0 "prepare: tokenizer data/tokenizer.model" "$bitgrad" prepare --text text.txt --out data2 --tokenizer data/tokenizer.model
if ! cmp -s data/train.bin data2/train.bin || ! cmp -s data/val.bin data2/val.bin; then
  echo "FAIL: prepare --tokenizer data/tokenizer.model wrote other shards than the tokenizer's own prepare"
  failures=$((failures + 1))
fi
expect 1 "cannot load tokenizer text.txt"          "$bitgrad" prepare --text text.txt --out data3 --tokenizer text.txt
expect 2 "--vocab and --tokenizer exclude each other" "$bitgrad" prepare --text text.txt --out data3 --tokenizer data/tokenizer.model --vocab 300
expect 0 "final model"              "$bitgrad" train --data data --out run "${common[@]}"
expect 0 "final model"              "$bitgrad" train --data data --out bin "${common[@]}" --binarized
expect 0 '"perplexity":[0-9]'       "$bitgrad" eval --model run/final --data data --json --seq 16
expect 0 '"perplexity":[0-9]'       "$bitgrad" eval --unigram --data data --json
# validation loss every 2 steps and after the last: steps 2, 4 and 5
short=(--batch 2 --seq 16 --layers 1 --hidden 16 --intermediate 32 --heads 2 --log-every 1 --seed 3)
expect 0 "step +4/5 .*val [0-9.]+ \(ppl [0-9.]+\)" "$bitgrad" train --data data --out ev "${short[@]}" --steps 5 --eval-every 2 --binarized
n_val=$(grep -c '"val_loss"' ev/metrics.jsonl)
if [ "$n_val" != 3 ]; then
  echo "FAIL: ev/metrics.jsonl has $n_val records with val_loss, expected 3 (steps 2, 4, 5)"
  failures=$((failures + 1))
fi
expect 2 "--eval-every and --eval-windows must be >= 0" "$bitgrad" train --data data --out x "${short[@]}" --eval-every -1
expect 0 "resumed from .*step-00000003" "$bitgrad" train --data data --out run "${common[@]}" --resume
expect 0 "final model"              "$bitgrad" distill --data data --teacher run/final --out st "${common[@]}" --loss mixed
# a teacher in Hugging Face's layout: BF16 tensors in two shards with model.safetensors.index.json
python3 - <<'PY'
import json, os, struct
os.makedirs("hf", exist_ok=True)
raw = open("run/final/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
names = sorted(k for k in header if k != "__metadata__")
shards = [names[: len(names) // 2], names[len(names) // 2:]]
weight_map = {}
for i, part in enumerate(shards):
    file = f"model-0000{i + 1}-of-00002.safetensors"
    head, body, offset = {}, b"", 0
    for name in part:
        b, e = header[name]["data_offsets"]
        floats = struct.unpack(f"<{(e - b) // 4}f", data[b:e])
        words = [struct.unpack("<I", struct.pack("<f", f))[0] for f in floats]
        halves = [((w + 0x7FFF + ((w >> 16) & 1)) >> 16) & 0xFFFF for w in words]  # round to nearest even
        blob = struct.pack(f"<{len(halves)}H", *halves)
        head[name] = {"dtype": "BF16", "shape": header[name]["shape"], "data_offsets": [offset, offset + len(blob)]}
        body += blob
        offset += len(blob)
        weight_map[name] = file
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)
    open(f"hf/{file}", "wb").write(struct.pack("<Q", len(text)) + text + body)
json.dump({"metadata": {}, "weight_map": weight_map}, open("hf/model.safetensors.index.json", "w"))
config = json.load(open("run/final/config.json"))
config = {k: v for k, v in config.items() if not k.startswith("bitgrad_")}
config["torch_dtype"] = "bfloat16"
json.dump(config, open("hf/config.json", "w"))
PY
expect 0 "teacher: hf, weights in bf16" "$bitgrad" distill --data data --teacher hf --out st-hf "${common[@]}"
expect 0 "teacher: hf, weights in float" "$bitgrad" distill --data data --teacher hf --out st-hf2 "${common[@]}" --teacher-storage float
expect 2 "--teacher-storage fp8: expected auto, bf16 or float" "$bitgrad" distill --data data --teacher hf --out x --teacher-storage fp8
# export to Hugging Face's layout; the bf16 export is a model directory bitgrad reads again
expect 0 "exported bin/final -> exp \(float32, config.json .*model.safetensors .*pytorch_model.bin .*tokenizer.model" "$bitgrad" export --model bin/final --out exp --tokenizer data/tokenizer.model
expect 0 "exported bin/final -> exp16 \(bfloat16" "$bitgrad" export --model bin/final --out exp16 --dtype bfloat16 --format safetensors
expect 0 '"perplexity":[0-9]' "$bitgrad" eval --model exp16 --data data --json --seq 16
expect 1 "exp/model.safetensors exists and this export does not write it" "$bitgrad" export --model bin/final --out exp --format pytorch
# convert: the export's pytorch_model.bin back to safetensors gives the same file, byte for byte;
# a directory laid out like an FBI-LLM release (plain LlamaConfig, no bitgrad keys) loads as binarized
mkdir -p fbi && cp exp/pytorch_model.bin fbi/ && python3 -c "
import json
c = json.load(open('exp/config.json'))
json.dump({k: v for k, v in c.items() if not k.startswith('bitgrad_')}, open('fbi/config.json', 'w'))"
expect 0 "converted 1 file\(s\), [0-9]+ tensors -> conv/model.safetensors" "$bitgrad" convert --in exp/pytorch_model.bin --out conv
if ! cmp -s exp/model.safetensors conv/model.safetensors; then
  echo "FAIL: convert of exp/pytorch_model.bin differs from exp/model.safetensors"
  failures=$((failures + 1))
fi
expect 0 "fbi-conv loads as a binarized \(FBI-LLM\) LLaMA" "$bitgrad" convert --in fbi --out fbi-conv
expect 0 '"perplexity":[0-9]' "$bitgrad" eval --model fbi-conv --data data --json --seq 16
head -c 3000 exp/pytorch_model.bin > cut.bin
expect 1 "cut.bin: " "$bitgrad" convert --in cut.bin --out x
expect 2 "--in nofile.bin: no such file or directory" "$bitgrad" convert --in nofile.bin --out x
expect 2 "--dtype int8: expected float32, bfloat16 or float16" "$bitgrad" export --model bin/final --out x --dtype int8
expect 2 "--format onnx: expected safetensors, pytorch or both" "$bitgrad" export --model bin/final --out x --format onnx
expect 0 "."                        "$bitgrad" generate --model bin/final --data data --tokens 5 --prompt "the"
expect 0 "Total params"             "$bitgrad" info --model bin/final
expect 0 "packed MB|packed [0-9.]+ MB" "$bitgrad" pack --model bin/final --out bin.packed.safetensors
expect 0 "packed [0-9.]+ MB"        "$bitgrad" pack --model bin/final --out bin.bf16.safetensors --tables bf16
expect 0 "decode 5 tokens: [0-9.]+ tok/s" "$bitgrad" generate --model bin.packed.safetensors --data data --tokens 5 --prompt "the"
printf 'the whale\n\nthe sea\n' > prompts.txt
expect 0 "decode 4 tokens: [0-9.]+ tok/s" "$bitgrad" generate --model bin.packed.safetensors --data data --tokens 4 --prompts prompts.txt --temperature 0 --repetition-penalty 1.3
expect 0 "decode 4 tokens: [0-9.]+ tok/s, [0-9]+ threads, int8 activations" "$bitgrad" generate --model bin.packed.safetensors --data data --tokens 4 --prompt "the"
expect 0 "decode 4 tokens: [0-9.]+ tok/s, [0-9]+ threads, float activations" "$bitgrad" generate --model bin.packed.safetensors --data data --tokens 4 --prompt "the" --activations float
expect 2 "--activations int4: expected float or int8" "$bitgrad" generate --model bin.packed.safetensors --data data --activations int4
expect 0 '"packed":true.*"perplexity":[0-9]|"perplexity":[0-9].*"packed":true' "$bitgrad" eval --model bin.packed.safetensors --data data --json --seq 16
expect 0 "packed.*int8 tables, int8 activations, fp16 KV cache" "$bitgrad" eval --model bin.packed.safetensors --data data --seq 16
expect 0 "packed.*bf16 tables, float activations, float KV cache" "$bitgrad" eval --model bin.bf16.safetensors --data data --seq 16 --activations float
# zero-shot multiple choice: an ordinary item and a partial-scoring one, float and packed
cat > items.jsonl <<'EOF'
{"context": "Question: where does the whale swim?\nAnswer:", "choices": ["in the sea", "in the desert"], "gold": 0}
{"contexts": ["the whale swam in the sea", "the whale swam in the sand"], "continuation": "and dived.", "gold": 0}
EOF
expect 0 "items: acc [01][.][0-9]+ \+- [0-9.]+ \(2 items, float checkpoint" "$bitgrad" zeroshot --model run/final --data data --items items.jsonl
expect 0 '"task":"items","model":"bin.packed.safetensors","n":2,"acc":[0-9.]+,"acc_stderr":[0-9.]+,"run":"packed, int8 tables, int8 activations"' "$bitgrad" zeroshot --model bin.packed.safetensors --data data --items items.jsonl --json
# PIQA's official layout + labels file -> items, exactly as lm-eval 0.4.2's piqa.yaml builds them
printf '{"goal": "To open a jar", "sol1": "twist the lid", "sol2": "eat the lid"}\n' > piqa.jsonl
echo 0 > piqa-labels.lst
expect 0 "wrote 1 items to piqa-items.jsonl" "$bitgrad" zeroshot --task piqa --in piqa.jsonl --labels piqa-labels.lst --write-items piqa-items.jsonl
if [ "$(cat piqa-items.jsonl)" != '{"context":"Question: To open a jar\nAnswer:","choices":["twist the lid","eat the lid"],"gold":0}' ]; then
  echo "FAIL: piqa-items.jsonl holds: $(cat piqa-items.jsonl)"
  failures=$((failures + 1))
fi
expect 0 "piqa: acc [01][.][0-9]+ \+- [0-9.na]+, acc_norm [01][.][0-9]+" "$bitgrad" zeroshot --model run/final --data data --task piqa --in piqa.jsonl --labels piqa-labels.lst
printf '{"context": "a", "choices": ["b", "c"], "gold": 0}\n{"context": "a", "choices": ["b"], "gold": 0}\n' > bad-items.jsonl
expect 1 'bad-items.jsonl:2: field "choices" has 1 entries, expected at least 2' "$bitgrad" zeroshot --model run/final --data data --items bad-items.jsonl
expect 2 "unknown task 'mmlu', expected one of: boolq, piqa" "$bitgrad" zeroshot --task mmlu --in piqa.jsonl --write-items x.jsonl
expect 2 "zeroshot needs --items FILE, or --task NAME with --in OFFICIAL_FILE" "$bitgrad" zeroshot --model run/final --data data
# FBI-LLM's perplexity protocol on a text file: float checkpoint and packed file
expect 0 '"protocol":"fbi-llm".*"tokens_scored":[1-9]' "$bitgrad" eval --model run/final --text text.txt --data data --json
expect 0 "perplexity [0-9.]+, bits per byte [0-9.]+: [0-9]+ windows of 8 tokens.*packed" "$bitgrad" eval --model bin.packed.safetensors --text text.txt --tokenizer data/tokenizer.model --seq 8
expect 1 "seq_len 4096 must be in \\[2, max_position_embeddings = 16\\]" "$bitgrad" eval --model run/final --text text.txt --data data --seq 4096
expect 2 "no tokenizer: exp16 carries none; give --data DIR or --tokenizer FILE" "$bitgrad" eval --model exp16 --text text.txt
expect 2 "--tables fp8: expected bf16 or int8" "$bitgrad" pack --model bin/final --out x.safetensors --tables fp8
expect 1 "binarized.* is false; pack needs an FBI-LLM" "$bitgrad" pack --model run/final --out x.safetensors
expect 1 "__metadata__.format is \"pt\"" "$bitgrad" generate --model bin/final/model.safetensors --data data
head -c 100 bin.packed.safetensors > cut.safetensors
expect 1 "cut.safetensors: header length" "$bitgrad" generate --model cut.safetensors --data data
expect 2 "--out bin: is a directory"      "$bitgrad" pack --model bin/final --out bin
# resuming a finished run must not save its last step a second time
n_saves=$(grep -c "saved checkpoint" <("$bitgrad" train --data data --out run "${common[@]}" --resume 2>&1))
if [ "$n_saves" -ne 0 ]; then echo "FAIL: resume of a finished run saved again ($n_saves saves)"; failures=$((failures + 1)); fi

# ---- usage errors: exit 2, before any work
expect 2 "--preset: .*unknown preset 'bogus'"  "$bitgrad" train --data data --out x --preset bogus
expect 2 "--data nodir: no such directory"     "$bitgrad" train --data nodir --out x
expect 2 "--teacher nodir: no such directory"  "$bitgrad" distill --data data --teacher nodir --out x
expect 2 "--model nodir: no such file or directory" "$bitgrad" eval --model nodir --data data
expect 2 "--model nodir: no such file or directory" "$bitgrad" generate --model nodir --data data
expect 2 "--text none.txt: no such file"       "$bitgrad" prepare --text none.txt --out p
expect 2 "--steps must be > 0"                 "$bitgrad" train --data data --out x --steps 0
expect 2 "--ste bogus: expected identity"      "$bitgrad" train --data data --out x --ste bogus
touch afile
expect 2 "--out afile: exists and is not a directory" "$bitgrad" train --data data --out afile "${common[@]}"
expect 2 "--out afile: exists and is not a directory" "$bitgrad" prepare --text text.txt --out afile

# ---- sizes bounded before allocation: exit 1 with the figure, never bad_alloc
expect 2 "hidden_size.*overflows|needs"        "$bitgrad" train --data data --out x --hidden 1000000000000 --heads 1
expect 1 "needs .* available"                  "$bitgrad" train --data data --out x "${common[@]}" --batch 1000000000
expect 1 "needs .* available"                  "$bitgrad" train --data data --out x "${common[@]}" --layers 1000000000

# ---- damaged data.json / trainer_state.json / config.json / weights: exit 1 naming file and field
cp -r data d1 && python3 -c "import json;d=json.load(open('d1/data.json'));del d['vocab_size'];json.dump(d,open('d1/data.json','w'))"
expect 1 'd1/data.json: missing field "vocab_size"' "$bitgrad" train --data d1 --out x "${common[@]}"
cp -r data d2 && python3 -c "import json;d=json.load(open('d2/data.json'));del d['val_bytes'];json.dump(d,open('d2/data.json','w'))"
expect 1 'd2/data.json: missing field "val_bytes"' "$bitgrad" eval --model run/final --data d2
cp -r data d3 && python3 -c "import json;d=json.load(open('d3/data.json'));d['vocab_size']=str(d['vocab_size']);json.dump(d,open('d3/data.json','w'))"
expect 1 'd3/data.json: field "vocab_size" must be an integer' "$bitgrad" train --data d3 --out x "${common[@]}"

cp -r run r1 && state=$(ls -d r1/checkpoints/step-*/ | tail -n 1)trainer_state.json
python3 -c "import json,sys;p=sys.argv[1];d=json.load(open(p));d['threads']='two';json.dump(d,open(p,'w'))" "$state"
expect 1 'trainer_state.json: field "threads" must be an integer' "$bitgrad" train --data data --out r1 "${common[@]}" --resume
cp -r run r2 && state=$(ls -d r2/checkpoints/step-*/ | tail -n 1)trainer_state.json
python3 -c "import json,sys;p=sys.argv[1];d=json.load(open(p));d['losses']={};json.dump(d,open(p,'w'))" "$state"
expect 1 'trainer_state.json: field "losses" must be an array' "$bitgrad" train --data data --out r2 "${common[@]}" --resume
expect 1 "saved with batch 2 x seq_len 16 x grad_accum 1, now 2 x 16 x 2" "$bitgrad" train --data data --out run "${common[@]}" --accum 2 --resume

cp -r run/final m1 && python3 -c "import json;d=json.load(open('m1/config.json'));d['hidden_size']=10**12;json.dump(d,open('m1/config.json','w'))"
expect 1 "m1/config.json: .*overflows" "$bitgrad" eval --model m1 --data data
cp -r run/final m2 && python3 -c "
import json
d=json.load(open('m2/config.json'))
d['num_hidden_layers']=10**9
json.dump(d,open('m2/config.json','w'))"
expect 1 "needs .* available" "$bitgrad" eval --model m2 --data data
cp -r run/final m3 && python3 -c "print('[' * 100000 + ']' * 100000)" > m3/config.json
expect 1 "m3/config.json: JSON nested deeper than 64 levels" "$bitgrad" eval --model m3 --data data
cp -r run/final m4 && python3 - m4/model.safetensors <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
off = h['lm_head.weight']['data_offsets'][0]
b[8 + n + off:8 + n + off + 4] = struct.pack('<f', float('nan'))
open(p, 'wb').write(b)
PY
expect 1 "tensor lm_head.weight holds 1 non-finite values" "$bitgrad" eval --model m4 --data data
expect 1 "tensor lm_head.weight holds 1 non-finite values" "$bitgrad" generate --model m4 --data data

# a config.json whose model cannot fit is refused when read, naming the file and the field
cp -r run/final m5 && python3 -c "import json;d=json.load(open('m5/config.json'));d['intermediate_size']=10**12;json.dump(d,open('m5/config.json','w'))"
expect 1 'm5/config.json: field "intermediate_size" is 1000000000000 .*needs .* available' "$bitgrad" eval --model m5 --data data
# the KV cache a generation needs is refused naming --tokens
cp -r bin/final bigctx && python3 -c "import json;d=json.load(open('bigctx/config.json'));d['max_position_embeddings']=10**12;json.dump(d,open('bigctx/config.json','w'))"
expect 0 "." "$bitgrad" pack --model bigctx --out bigctx.packed.safetensors
expect 1 "--tokens 1000000000000: generate: [0-9]+ prompt tokens \+ max_new [0-9]+ .*positions: a KV cache of" "$bitgrad" generate --model bigctx.packed.safetensors --tokens 1000000000000 --prompt "the"
# convert: a view that repeats 12 floats of storage as 40000 x 40000 (stride 0) is named before it
# is written, and refused under a process limit the machine's free memory does not show (ulimit -v)
python3 - <<'PY'
import struct, zipfile
def X(s): b = s.encode(); return b'X' + struct.pack('<I', len(b)) + b
def K(v): return b'K' + bytes([v]) if v < 256 else b'\x8a\x08' + struct.pack('<q', v)
def tup(v): return b'(' + b''.join(K(x) for x in v) + b't'
pkl = (b'\x80\x02ccollections\nOrderedDict\nq\x00)R' + X('w') + b'ctorch._utils\n_rebuild_tensor_v2\n((' + X('storage')
       + b'ctorch\nFloatStorage\n' + X('0') + X('cpu') + K(12) + b'tQ' + K(0) + tup([40000, 40000]) + tup([0, 0]) + b'\x89h\x00)RtRs.')
with zipfile.ZipFile('expand.bin', 'w', zipfile.ZIP_STORED) as z:
    z.writestr('archive/data.pkl', pkl); z.writestr('archive/data/0', struct.pack('<12f', *range(12))); z.writestr('archive/version', '3\n')
PY
if [ -z "${BITGRAD_CLI_SANITIZED:-}" ]; then  # ASan reserves terabytes of address space: no ulimit -v under it
  expect 1 "note: w is a view of 48 bytes of storage that expands to \[40000, 40000\] \(6.40 GB\)" bash -c 'ulimit -v 4000000 && exec "$0" convert --in expand.bin --out xe' "$bitgrad"
  expect 1 "tensor w \(a view of 48 bytes of storage 0 that expands to \[40000, 40000\], 6400000000 bytes\) needs 6.40 GB .*RLIMIT_AS" bash -c 'ulimit -v 4000000 && exec "$0" convert --in expand.bin --out xe' "$bitgrad"
fi

# ---- vocabularies and tiny shards
cp -r data d4 && python3 - d4/val.bin <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
vocab = struct.unpack('<Q', b[24:32])[0]
b[24:32] = struct.pack('<Q', vocab + 100)   # a shard tokenized with a larger vocabulary
open(p, 'wb').write(b)
PY
expect 1 "d4/val.bin: vocabulary of [0-9]+ tokens, larger than the model" "$bitgrad" eval --model run/final --data d4
for n in 0 1; do
  cp -r data "d5_$n" && python3 - "d5_$n/val.bin" "$n" <<'PY'
import struct, sys
p, n = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
width = struct.unpack('<I', b[12:16])[0]
b[16:24] = struct.pack('<Q', n)
open(p, 'wb').write(b[:32 + n * width])
PY
  expect 1 "val.bin: $n tokens; the unigram baseline needs at least 2" "$bitgrad" eval --unigram --data "d5_$n"
done

# ---- prepare: a chapter number that does not fit
{ cat text.txt; echo "CHAPTER 99999999999999999999. Too far"; } > big.txt
expect 1 "big.txt:[0-9]+: chapter number 99999999999999999999 is out of range" "$bitgrad" prepare --text big.txt --out p2 --vocab 300

# ---- the command list, the version, suggestions, options named in every refusal
expect 0 "commands:.*" "$bitgrad" --help
expect 0 "^bitgrad [0-9]+\.[0-9]+\.[0-9]+ \(" "$bitgrad" --version
expect 2 "unknown command 'trian' \(did you mean 'train'\?\)" "$bitgrad" trian
expect 2 "stpes.* does not exist \(did you mean '--steps'\?\)" "$bitgrad" train --data data --out x --stpes 3
expect 2 "--steps abc: not a valid value"      "$bitgrad" train --data data --out x --steps abc
expect 2 "--temperature nan: not a valid value" "$bitgrad" generate --model bin.packed.safetensors --temperature nan
expect 2 "--temperature must be >= 0, got -1"  "$bitgrad" generate --model bin.packed.safetensors --temperature -1
expect 2 "--top-k must be >= 0, got -3"        "$bitgrad" generate --model bin.packed.safetensors --top-k -3
expect 2 "--threads 100000: at most [0-9]+"     "$bitgrad" generate --model bin.packed.safetensors --threads 100000
expect 2 "--threads 100000: at most [0-9]+"     "$bitgrad" train --data data --out x --threads 100000
expect 0 "warning: OMP_NUM_THREADS=100000 is more than" env OMP_NUM_THREADS=100000 "$bitgrad" generate --model bin.packed.safetensors --tokens 2 --prompt "the"
if "$bitgrad" train --help | grep -qE -- "--teacher|--ad-temperature|--loss"; then
  echo "FAIL: train --help lists distillation options"; failures=$((failures + 1))
fi
expect 0 "warning: --warmup 30 is longer than the run" "$bitgrad" train --data data --out wu "${common[@]}"
expect 2 "--teacher bin.packed.safetensors: a file; a teacher is a full-precision model directory" "$bitgrad" distill --data data --teacher bin.packed.safetensors --out x
expect 2 "--temperature is now --ad-temperature" "$bitgrad" distill --data data --teacher run/final --out x --temperature 2

# ---- the packed file carries its tokenizer: generate and eval need no --data
expect 0 "packed bin/final -> bin.packed.safetensors \(with its tokenizer\)" "$bitgrad" pack --model bin/final --out bin.packed.safetensors
expect 0 "decode 3 tokens: [0-9.]+ tok/s" "$bitgrad" generate --model bin.packed.safetensors --tokens 3 --prompt "the"
expect 0 "perplexity [0-9.]+, bits per byte" "$bitgrad" eval --model bin.packed.safetensors --text text.txt --seq 8
# the speed line is a line of its own, after the text's, also through one pipe
if ! "$bitgrad" generate --model bin.packed.safetensors --tokens 3 --prompt "the" 2>&1 | grep -qE "^\[prefill"; then
  echo "FAIL: generate's speed line does not start a line of its own"; failures=$((failures + 1))
fi

# ---- one run a directory: no silent restart, no mixed metrics.jsonl
expect 2 "--out run holds a training run \(checkpoints/, final/, metrics.jsonl\): continue it with --resume, or start over with --overwrite" "$bitgrad" train --data data --out run "${common[@]}"
cp -r run ow
expect 0 "deleted the previous run's checkpoints/, final/, metrics.jsonl" "$bitgrad" train --data data --out ow "${common[@]}" --overwrite
if [ "$(grep -c '"step":3,' ow/metrics.jsonl)" != 1 ]; then
  echo "FAIL: ow/metrics.jsonl holds records of two runs:"; cat ow/metrics.jsonl; failures=$((failures + 1))
fi
# resume with another schedule: refused, or accepted with the learning rate before and after
# (warm-up 2 of 3 steps: step 4 was at the floor, 3e-4; over 6 steps it is half-way down the cosine)
expect 0 "final model" "$bitgrad" train --data data --out sched "${common[@]}" --warmup 2
expect 1 "saved with steps 3, now 6; the learning rate of step 4 changes from 0.0003 to 0.00165. .*allow the change \(--change-schedule\)" "$bitgrad" train --data data --out sched "${common[@]}" --warmup 2 --steps 6 --resume
expect 0 "resume: steps 3, now 6; the learning rate of step 4 changes from 0.0003 to 0.00165" "$bitgrad" train --data data --out sched "${common[@]}" --warmup 2 --steps 6 --resume --change-schedule
expect 1 "saved with 2 threads, now running with 1.*--allow-inexact-resume" "$bitgrad" train --data data --out sched "${common[@]}" --warmup 2 --steps 6 --resume --threads 1
expect 0 "resume: threads 2 -> 1: the run continues, but not bit for bit" "$bitgrad" train --data data --out sched "${common[@]}" --warmup 2 --steps 7 --resume --threads 1 --allow-inexact-resume --change-schedule

# ---- prepare: texts without chapters, a fraction, a vocabulary too small (no partial output)
python3 -c "
import random
random.seed(1)
words = 'the sea whale ship captain harpoon deck wind wave sail night'.split()
print('\n\n'.join(' '.join(random.choice(words) for _ in range(40)) for _ in range(30)))" > plain.txt
expect 0 "\(3 of 30 paragraphs held out\)" "$bitgrad" prepare --text plain.txt --out pp --vocab 300
expect 0 "\(the last [12][0-9]% of the text\)" "$bitgrad" prepare --text plain.txt --out pf --vocab 300 --val-fraction 0.2
expect 1 "a vocabulary of 256 tokens is too small for .*: it needs at least [0-9]+ .*use a vocabulary size of" "$bitgrad" prepare --text text.txt --out small --vocab 256
if [ -n "$(ls -A small 2>/dev/null)" ]; then echo "FAIL: a failed prepare left files in small/: $(ls -A small)"; failures=$((failures + 1)); fi

# ---- zeroshot --write-items onto a directory: refused, no .tmp left
mkdir -p itemsdir
expect 2 "--write-items itemsdir: is a directory" "$bitgrad" zeroshot --task piqa --in piqa.jsonl --labels piqa-labels.lst --write-items itemsdir
if [ -e itemsdir.tmp ]; then echo "FAIL: itemsdir.tmp left behind"; failures=$((failures + 1)); fi
# BoolQ from Hugging Face's copy (no title): refused, lm-eval's passage cannot be rebuilt
printf '{"question": "is the sea salty", "answer": true, "passage": "The sea is salty."}\n' > boolq.jsonl
expect 1 'missing field "title"' "$bitgrad" zeroshot --task boolq --in boolq.jsonl --write-items boolq-items.jsonl

# ---- a plain run (no mpirun) starts no MPI daemon
"$bitgrad" train --data data --out mpi-free "${common[@]}" --steps 100000 --log-every 1000 > mpi-free.log 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "^train:" mpi-free.log 2>/dev/null && break; sleep 0.2; done
children=$(ps -o comm= --ppid "$pid" 2>/dev/null | tr '\n' ' ')
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
if ! grep -q "^train:" mpi-free.log; then echo "FAIL: the background train never started: $(cat mpi-free.log)"; failures=$((failures + 1)); fi
if grep -q orted <<<"$children"; then echo "FAIL: a plain run started an MPI daemon: $children"; failures=$((failures + 1)); fi

if [ "$failures" -ne 0 ]; then echo "$failures CLI check(s) failed"; exit 1; fi
echo "all CLI checks passed"
