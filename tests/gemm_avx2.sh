#!/bin/sh
# The AVX2 + FMA fp32 kernels (core/gemm_avx2.c, core/att_kernels_avx2.c)
# where make test runs every suite once on the host's default backend.
#
# 1. Suites rerun with ERSERVE_GEMM=avx2 (the AVX2 kernels even on an AVX-512
#    host): test_gemm (float64 reference, bit-exact whatever the batch and
#    the thread count; it checks the backend really is AVX2), test_narrow,
#    test_store_noalloc (no allocation on the AVX2 path), and test_encoder's
#    PyTorch goldens on one model per family (ER_TEST_GOLDEN; the whole list
#    took most of this script's time and adds nothing that 2. does not
#    check).  test_attention is not rerun (19 s here): its
#    avx2_equals_avx512_bits, like test_gemm's, already compares the AVX2
#    kernels with the AVX-512 ones bit for bit in make test's own run.
# 2. On a host with AVX-512F: the head output of every fixture model
#    (erserve-infer --head, floats printed with 9 significant digits, i.e.
#    exactly) under ERSERVE_GEMM=avx2 and =own must be the same bytes.  That
#    is what lets AVX2 and AVX-512 hosts share recycled activations (one
#    numerics class, core/recycle.c), and since the own kernels pass every
#    golden in make test, the AVX2 ones then do too.
# Skipped (77) on a CPU without AVX2 and FMA.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD="${BUILD:-build}"
if ! grep -qw avx2 /proc/cpuinfo 2>/dev/null || ! grep -qw fma /proc/cpuinfo 2>/dev/null; then
  echo "SKIP: gemm_avx2: this CPU has no AVX2 and FMA"
  exit 77
fi
FAMILIES="bert-seqcls,roberta-seqcls,distilbert-seqcls,electra-disc,mpnet-seqcls,nomic-embed"
FAMILIES="$FAMILIES,gte-seqcls,modernbert-seqcls,deberta-v3-seqcls,bert-seqcls-f16"
FAMILIES="$FAMILIES,lora-bert-seqcls,bn-bert-pfeiffer"
. tests/rerun_suites.sh
rc=0
export ER_TEST_GOLDEN="$FAMILIES" # test_encoder's goldens: one model per family
rerun_suites gemm_avx2 avx2 test_gemm test_narrow test_store_noalloc test_encoder || rc=1
unset ER_TEST_GOLDEN
if ! grep -qw avx512f /proc/cpuinfo; then
  echo "gemm_avx2: no AVX-512F here: the own kernels are the AVX2 ones, nothing to compare"
  exit $rc
fi
# 3 sequences (17, 6 and 11 tokens: 6-row tiles and their tails), ids and
# lengths that every fixture's vocabulary and positions accept
in='{"input_ids": [[2,17,33,5,41,9,12,57,23,8,30,44,6,19,51,3,2],[2,40,7,31,11,3],[2,9,28,55,14,36,21,47,5,60,3]]}'
tmp=$(mktemp -d) || exit 1
same=0; failed=0; refused=0
for dir in tests/fixtures/models/*/; do
  dir=${dir%/}
  m=$(basename "$dir")
  if ! echo "$in" | ERSERVE_GEMM=own "$BUILD/bin/erserve-infer" --model "$dir" --head \
       >"$tmp/own" 2>/dev/null; then
    refused=$((refused + 1)) # not a model erserve-infer runs (a pickle-only checkpoint)
    continue
  fi
  echo "$in" | ERSERVE_GEMM=avx2 "$BUILD/bin/erserve-infer" --model "$dir" --head >"$tmp/avx2" 2>/dev/null
  if cmp -s "$tmp/own" "$tmp/avx2"; then
    same=$((same + 1))
  else
    echo "gemm_avx2: $m: the AVX2 kernels' head output differs from the AVX-512 kernels'"
    failed=$((failed + 1)); rc=1
  fi
done
rm -rf "$tmp"
echo "gemm_avx2: avx2 vs own, head outputs bit for bit: $same models equal, $failed differ" \
     "($refused fixtures erserve-infer refuses: pickle-only checkpoints)"
[ "$same" -gt 0 ] || rc=1
exit $rc
