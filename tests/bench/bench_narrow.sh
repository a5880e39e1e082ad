#!/bin/sh
# Memory of F16/BF16 checkpoints (issue 10; make bench): RSS of one process
# per (family, checkpoint dtype, compute mode) after loading a base-shaped
# model (random weights, one seed, written as F32, F16 and BF16 by
# erserve-genmodel --dtype; generated here, never committed) and after one
# 1 x 128 forward, with the peak (load-time transients included).  The
# F16/BF16 layer weights are packed straight from the checkpoint and the word
# embeddings widened a row at a time, so a narrow checkpoint costs no more
# than an F32 one.  Families (BENCH_FAMILIES, default all): bert (bert-base),
# deberta (deberta-v3-base), modernbert (modernbert-base), nomic
# (nomic-embed-text-v1.5), gte (gte-base-en-v1.5).
# Then the same for tasks over a bert-base F32 / F16 / BF16 checkpoint
# (BENCH_NARROW_TASKS, default all): lora (bench_lora --make: r = 8 on
# query/value of layers 6-11, unmerged), lora-merged (the same merged:
# BENCH_LORA_MERGE=1), bn (bench_lora --make-bn: Pfeiffer, reduction factor
# 16) and splade (erserve-genmodel --head sparse: the masked-LM head, its
# decoder tied to the word embeddings).
# Modes this host cannot run (bf16 without AVX512-BF16, int8 without VNNI,
# the OpenBLAS backend) print the loader's refusal instead.
set -eu
. tests/bench/common.sh
bench_cc bench_narrow
bench_cc bench_lora
FAMILIES="${BENCH_FAMILIES:-bert deberta modernbert nomic gte}"
TASKS="${BENCH_NARROW_TASKS:-lora lora-merged bn splade}"

preset_of() { # family -> erserve-genmodel --preset and --arch
  case "$1" in
    bert) echo "--preset bert-base" ;;
    deberta) echo "--preset deberta-v3-base" ;;
    modernbert) echo "--preset modernbert-base --arch modernbert" ;;
    nomic) echo "--preset nomic-embed-text-v1.5 --arch nomic_bert" ;;
    gte) echo "--preset gte-base-en-v1.5 --arch gte" ;;
  esac
}

dir_of() { # family dtype -> the model directory (bert fp32: the shared $MODEL)
  if [ "$1" = bert ]; then
    [ "$2" = fp32 ] && echo "$MODEL" || echo "$BUILD/bench/bert-base-$2"
  else
    echo "$BUILD/bench/narrow-$1-$2"
  fi
}

echo "== narrow checkpoints: RSS (MiB) after load / after one 1x128 forward (of it:"
echo "   anonymous, mapped file pages: the kernel maps page-cache pages around each"
echo "   embedding row read, so the file part varies with the page cache) / peak"
printf "%-11s %-10s %-6s %8s %8s %8s %8s %8s\n" family checkpoint mode load forward anon file peak
measure() { # label checkpoint dir [merge] -> one line per compute mode
  for c in fp32 bf16 int8; do
    line=$(BENCH_LORA_MERGE="${4:-0}" BENCH_COMPUTE=$c "$BUILD/bench/bench_narrow" "$3" 2>&1) ||
      { echo "$1 $2 $c: $line"; continue; }
    # the JSON line; an adapter's load logs a line before it
    echo "$line" | grep '^{' | /usr/bin/python3 -c "import json,sys; r=json.loads(sys.stdin.read()); \
print('%-11s %-10s %-6s %8.0f %8.0f %8.0f %8.0f %8.0f' % ('$1', '$2', r['compute'], \
r['rss_load_mib'], r['rss_forward_mib'], r['anon_mib'], r['file_mib'], r['peak_mib']))"
  done
}

for f in $FAMILIES; do
  for d in fp32 fp16 bf16; do
    dir=$(dir_of "$f" "$d")
    # shellcheck disable=SC2046 # the preset's words are separate arguments
    [ -f "$dir/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" --out "$dir" \
      $(preset_of "$f") --head seqcls --seed 7 --dtype "$d" >/dev/null
    measure "$f" "$d" "$dir"
  done
done

[ -n "$TASKS" ] && echo "== tasks over a bert-base checkpoint (adapters: the checkpoint is the base)"
for t in $TASKS; do
  for d in fp32 fp16 bf16; do
    base=$(cd "$(dir_of bert "$d")" 2>/dev/null && pwd) || {
      "$BUILD/bin/erserve-genmodel" --out "$(dir_of bert "$d")" --preset bert-base --head seqcls \
        --seed 7 --dtype "$d" >/dev/null
      base=$(cd "$(dir_of bert "$d")" && pwd)
    }
    w="$BUILD/bench/narrow-tasks-$d"
    mkdir -p "$w"
    case "$t" in
      lora | lora-merged)
        [ -f "$w/lora-0/adapter_config.json" ] || "$BUILD/bench/bench_lora" --make "$base" "$w" 1
        measure "$t" "$d" "$w/lora-0" "$([ "$t" = lora-merged ] && echo 1 || echo 0)" ;;
      bn)
        [ -f "$w/bn-0/adapter_config.json" ] || "$BUILD/bench/bench_lora" --make-bn "$base" "$w" 1
        measure "$t" "$d" "$w/bn-0" ;;
      splade)
        [ -f "$w/splade/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" --out "$w/splade" \
          --preset bert-base --head sparse --seed 7 --dtype "$d" >/dev/null
        measure "$t" "$d" "$w/splade" ;;
    esac
  done
done
