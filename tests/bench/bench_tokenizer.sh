#!/bin/sh
# Tokenizer throughput, one thread: erserve's C tokenizer against the Rust
# reference (Hugging Face tokenizers 0.22.2 through @anush008/tokenizers
# 0.6.0, encodeBatch of 256 lines) for every tokenizer file in
# tests/tokenizer/data, on the generated English and multilingual corpora,
# C and Rust interleaved round by round in the same run (the machine is
# shared: a ratio taken within one round is steadier than absolute figures).
# Tokens count every id returned, specials included, on both sides (the
# totals are compared and a difference is printed); the
# Rust figure includes its binding's per-call cost, printed on its own (an
# empty encode) and not subtracted.  Then the pathological inputs
# (bench_tokenizer_pathological) and tokenization's share of a 1 x 128
# bert-base forward measured here with bench_engine.
# Run from the repository root (make bench sets BUILD).  TOK_ROUNDS (3).
set -eu
ROUNDS="${TOK_ROUNDS:-3}"
. tests/bench/common.sh
out="$BUILD/bench/tokenizer"
mkdir -p "$out"
bench_cc bench_tokenizer
bench_cc bench_tokenizer_pathological
bench_cc bench_engine
"$BUILD/bench/bench_tokenizer" gen "$out"
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
NODE_RUST_DIR="$BUILD/node-rust"
export NODE_RUST_DIR

# The Rust side needs node and the pinned package (installed once, offline
# from npm's cache when it can); without them only the C side runs.
rust=""
if command -v node >/dev/null 2>&1; then
  if [ ! -d "$NODE_RUST_DIR/node_modules/@anush008/tokenizers" ] && command -v npm >/dev/null 2>&1; then
    mkdir -p "$NODE_RUST_DIR"
    cp tests/tokenizer/rust/package.json tests/tokenizer/rust/package-lock.json "$NODE_RUST_DIR/"
    npm ci --silent --prefix "$NODE_RUST_DIR" >/dev/null 2>&1 || true
  fi
  node -e 'require(process.argv[1])' "$(pwd)/$NODE_RUST_DIR/node_modules/@anush008/tokenizers" 2>/dev/null && rust=1
fi
[ -n "$rust" ] || echo "Rust side skipped: node or @anush008/tokenizers@0.6.0 not available" \
  "(mkdir -p $NODE_RUST_DIR && cp tests/tokenizer/rust/package*.json $NODE_RUST_DIR/ && npm ci --prefix $NODE_RUST_DIR)"

c_tps() { # TOKENIZER FILE -> "tokens/s tokens" (best of the program's own 3)
  "$BUILD/bench/bench_tokenizer" run "$1" "$2" | awk '{print $3, $7}'
}
rust_tps() { # TOKENIZER FILE -> "tokens/s tokens" of encodeBatch/256, one pass
  node tests/tokenizer/bench_rust.mjs "$1" "$2" --batch 256 --reps 1 --overhead 0 |
    awk '/^encodeBatch/ {sub(/\(/, "", $6); print $2, $6}'
}

# One row per tokenizer and corpus: C and Rust alternate ROUNDS times; the
# best of each side, and the median of the per-round ratios.
bench_row() { # NAME TOKENIZER CORPUS
  cs="" rs="" qs=""
  i=0
  while [ "$i" -lt "$ROUNDS" ]; do
    set -- "$1" "$2" "$3" $(c_tps "$2" "$out/$3.txt")
    c=$4 cn=$5
    cs="$cs $c"
    if [ -n "$rust" ] && [ -f "$2" ]; then
      set -- "$1" "$2" "$3" $(rust_tps "$2" "$out/$3.txt")
      r=$4
      # the same corpus must give the same number of tokens, else the
      # two sides did not do the same work
      [ "$5" = "$cn" ] || echo "   $1 $3: token counts differ: C $cn, Rust $5" >&2
      rs="$rs $r"
      qs="$qs $(awk -v c="$c" -v r="$r" 'BEGIN{printf "%.3f", c / r}')"
    fi
    i=$((i + 1))
  done
  printf '%s\n%s\n%s\n' "$cs" "$rs" "$qs" | awk -v n="$1" -v k="$3" '
    function best(s,  a, m, i, j) { m = split(s, a, " "); j = 0; for (i = 1; i <= m; i++) if (a[i] > j) j = a[i]; return j }
    function med(s,  a, m, i, j, t) { m = split(s, a, " "); if (!m) return 0
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return a[int((m + 1) / 2)] }
    NR == 1 { c = best($0) } NR == 2 { r = best($0) } NR == 3 { q = med($0) }
    END { if (r) printf "| %-20s | %-7s | %10.0f | %10.0f | %5.2f | %5.2f |\n", n, k, c, r, c / r, q
          else   printf "| %-20s | %-7s | %10.0f | %10s | %5s | %5s |\n", n, k, c, "-", "-", "-" }'
}

echo "== tokenizer: erserve C vs Rust tokenizers 0.22.2 encodeBatch/256, one thread," \
  "best of $ROUNDS interleaved rounds ($(wc -c <"$out/english.txt") B english, $(wc -c <"$out/multi.txt") B multi)"
echo "| tokenizer            | corpus  | C tokens/s | Rust tok/s | C/Rust best | C/Rust median |"
for tok in tests/tokenizer/data/*.tokenizer.json tests/tokenizer/data/bert-cased-legacy; do
  name=$(basename "$tok" .tokenizer.json)
  for corpus in english multi; do bench_row "$name" "$tok" "$corpus"; done
done
if [ -n "$rust" ]; then
  echo "== Rust binding per-call overhead (bert-base-uncased), us per call:"
  node tests/tokenizer/bench_rust.mjs tests/tokenizer/data/bert-base-uncased.tokenizer.json \
    "$out/english.txt" --batch 256 --reps 3 | grep '^overhead'
fi

echo "== tokenization's share of a 1 x 128 bert-base forward (one thread)"
bert=tests/tokenizer/data/bert-base-uncased.tokenizer.json
e=$("$BUILD/bench/bench_engine" "$MODEL" 1 128 1 3)
ms=$(echo "$e" | sed 's/.*"ms_per_forward":\([0-9.]*\).*/\1/')
c=$(c_tps "$bert" "$out/english.txt" | cut -d' ' -f1)
awk -v ms="$ms" -v c="$c" 'BEGIN { t = 128 / c * 1e3
  printf "   forward %.1f ms; 128 tokens of English at %.0f tokens/s: %.4f ms = %.4f%% of the forward\n", ms, c, t, 100 * t / ms }'

echo "== pathological inputs, C (time: best of 3; x4 in = time at full size / at a quarter: 4 is linear)"
for tok in tests/tokenizer/data/*.tokenizer.json tests/tokenizer/data/bert-cased-legacy; do
  echo " $(basename "$tok" .tokenizer.json)"
  "$BUILD/bench/bench_tokenizer_pathological" "$tok"
done
