#!/bin/sh
# Memory of F16/BF16 checkpoints (issue 10; make bench): RSS of one process
# per (checkpoint dtype, compute mode) after loading a bert-base-shaped model
# (random weights, one seed, written as F32, F16 and BF16 by erserve-genmodel
# --dtype; generated here, never committed) and after one 1 x 128 forward,
# with the peak (load-time transients included).  The F16/BF16 layer weights
# are packed straight from the checkpoint and the word embeddings widened a
# row at a time, so a narrow checkpoint costs no more than an F32 one.
# Modes this host cannot run (bf16 without AVX512-BF16, int8 without VNNI,
# the OpenBLAS backend) print the loader's refusal instead.
set -eu
. tests/bench/common.sh
bench_cc bench_narrow
for d in fp16 bf16; do
  [ -f "$BUILD/bench/bert-base-$d/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" \
    --out "$BUILD/bench/bert-base-$d" --preset bert-base --head seqcls --seed 7 --dtype $d
done
echo "== narrow checkpoints: RSS (MiB) of bert-base after load / after one 1x128 forward (of it:"
echo "   anonymous, mapped file pages: the kernel maps page-cache pages around each"
echo "   embedding row read, so the file part varies with the page cache) / peak"
printf "%-10s %-6s %8s %8s %8s %8s %8s\n" checkpoint mode load forward anon file peak
for d in fp32 fp16 bf16; do
  dir="$BUILD/bench/bert-base-$d"
  [ "$d" = fp32 ] && dir="$MODEL"
  for c in fp32 bf16 int8; do
    line=$(BENCH_COMPUTE=$c "$BUILD/bench/bench_narrow" "$dir" 2>&1) || { echo "$d $c: $line"; continue; }
    echo "$line" | /usr/bin/python3 -c "import json,sys; r=json.loads(sys.stdin.read()); \
print('%-10s %-6s %8.0f %8.0f %8.0f %8.0f %8.0f' % ('$d', r['compute'], r['rss_load_mib'], \
r['rss_forward_mib'], r['anon_mib'], r['file_mib'], r['peak_mib']))"
  done
done
