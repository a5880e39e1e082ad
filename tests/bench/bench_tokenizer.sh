#!/bin/sh
# Tokenizer throughput (one thread) on generated English and multilingual
# text, C vs the JS reference @huggingface/tokenizers 0.2.0 in the same run.
# Run from the repository root (make bench sets BUILD).
set -e
BUILD="${BUILD:-build}"
out="$BUILD/bench/tokenizer"
mkdir -p "$out"
tok=tests/tokenizer/data/bert-base-uncased.tokenizer.json
make --no-print-directory BUILD="$BUILD" "$BUILD/bench/bench_tokenizer" >/dev/null
"$BUILD/bench/bench_tokenizer" gen "$out"
js_mod=""
if command -v node >/dev/null 2>&1; then
  if [ ! -d "$BUILD/node/node_modules/@huggingface/tokenizers" ] && command -v npm >/dev/null 2>&1; then
    mkdir -p "$BUILD/node"
    cp tests/tokenizer/package.json tests/tokenizer/package-lock.json "$BUILD/node/"
    (cd "$BUILD/node" && npm ci --silent >/dev/null 2>&1) || true
  fi
  m="$BUILD/node/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs"
  [ -f "$m" ] && js_mod="$(cd "$(dirname "$m")" && pwd)/$(basename "$m")"
fi
for f in english multi; do
  echo "== tokenizer $f ($(wc -c <"$out/$f.txt") bytes, bert-base-uncased, one thread)"
  printf '  C  : '; "$BUILD/bench/bench_tokenizer" run "$tok" "$out/$f.txt"
  if [ -n "$js_mod" ]; then
    printf '  JS : '; node tests/bench/bench_tokenizer_js.mjs "$js_mod" "$tok" "$out/$f.txt"
  else
    echo "  JS : skipped (node or @huggingface/tokenizers 0.2.0 not available)"
  fi
done
