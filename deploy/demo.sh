#!/bin/sh
# `make run`: serves the demo on 127.0.0.1:8080 (override with ERSERVE_PORT /
# ERSERVE_HOST or any erserve flag appended to the command line).
#
# The demo model is a MiniLM-L6-H384-shaped encoder with RANDOM weights made
# deterministically by erserve-genmodel (nothing is downloaded; answers are
# meaningless).  Three task heads share one lower stack (same --seed), so a
# text computed for one task is a store hit for the others.
set -eu
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
DEMO="${ERSERVE_DEMO_DIR:-$BUILD/demo}"
PORT="${ERSERVE_PORT:-8080}"
HOST="${ERSERVE_HOST:-127.0.0.1}"
SEED=42
# OpenBLAS kernels for CPUs that Debian's OpenBLAS does not recognise.
[ -f tests/bench/blas_env.sh ] && . tests/bench/blas_env.sh

if [ ! -x "$BUILD/bin/erserve" ] || [ ! -x "$BUILD/bin/erserve-genmodel" ]; then
  echo "demo: building erserve" >&2
  make --no-print-directory BUILD="$BUILD" "$BUILD/bin/erserve" "$BUILD/bin/erserve-genmodel" >&2
fi

TOKENIZER=tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json
[ -f "$TOKENIZER" ] || TOKENIZER=../shared/tokenizers/all-MiniLM-L6-v2.tokenizer.json
[ -f "$TOKENIZER" ] || { echo "demo: no all-MiniLM-L6-v2 tokenizer.json found" >&2; exit 1; }

mkdir -p "$DEMO"
for head in seqcls tokcls embedding; do
  if [ ! -f "$DEMO/$head/model.safetensors" ]; then
    echo "demo: generating $DEMO/$head (minilm-l6, random weights, seed $SEED)" >&2
    "$BUILD/bin/erserve-genmodel" --out "$DEMO/$head" --preset minilm-l6 --head "$head" --seed "$SEED" >&2
  fi
done

U="http://$HOST:$PORT"
cat <<EOT
erserve demo (random weights: the labels and scores are meaningless) on $U
Try, from another terminal:
  curl -s $U/v1/tasks
  curl -s $U/v1/tasks/sentiment/predict -H 'Content-Type: application/json' \\
       -d '{"inputs": ["I loved this film", "Terrible service"]}'
  curl -s $U/v1/tasks/ner/predict -H 'Content-Type: application/json' \\
       -d '{"inputs": "Ada Lovelace lived in London", "aggregation_strategy": "simple"}'
  curl -s $U/v1/embeddings -H 'Content-Type: application/json' \\
       -d '{"model": "embed", "input": ["I loved this film"]}'      # a store hit now
  curl -s $U/v1/cache
  curl -s $U/metrics | grep erserve_cache
Stop with Ctrl-C (drains, flushes the store, exits 0).
EOT

exec "$BUILD/bin/erserve" --host "$HOST" --port "$PORT" \
  --task sentiment="$DEMO/seqcls" --task ner="$DEMO/tokcls" --task embed="$DEMO/embedding" \
  --tokenizer "$TOKENIZER" --store "$DEMO/store" "$@"
