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
# Modes this host cannot run (bf16 without AVX512-BF16, int8 without VNNI,
# the OpenBLAS backend) print the loader's refusal instead.
set -eu
. tests/bench/common.sh
bench_cc bench_narrow
FAMILIES="${BENCH_FAMILIES:-bert deberta modernbert nomic gte}"

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
for f in $FAMILIES; do
  for d in fp32 fp16 bf16; do
    dir=$(dir_of "$f" "$d")
    # shellcheck disable=SC2046 # the preset's words are separate arguments
    [ -f "$dir/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" --out "$dir" \
      $(preset_of "$f") --head seqcls --seed 7 --dtype "$d" >/dev/null
    for c in fp32 bf16 int8; do
      line=$(BENCH_COMPUTE=$c "$BUILD/bench/bench_narrow" "$dir" 2>&1) ||
        { echo "$f $d $c: $line"; continue; }
      echo "$line" | /usr/bin/python3 -c "import json,sys; r=json.loads(sys.stdin.read()); \
print('%-11s %-10s %-6s %8.0f %8.0f %8.0f %8.0f %8.0f' % ('$f', '$d', r['compute'], \
r['rss_load_mib'], r['rss_forward_mib'], r['anon_mib'], r['file_mib'], r['peak_mib']))"
    done
  done
done
