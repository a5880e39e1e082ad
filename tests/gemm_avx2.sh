#!/bin/sh
# The AVX2 + FMA fp32 kernels (core/gemm_avx2.c) on every suite that checks
# the weight GEMMs' numerics: make test runs each suite once on the host's
# default backend (AVX-512 where the CPU has it), so this runs them again
# with ERSERVE_GEMM=avx2 (the AVX2 kernels even on an AVX-512 host):
# test_gemm (float64 reference, bit-exact whatever the batch and the thread
# count; it checks the backend really is AVX2 under ERSERVE_GEMM=avx2), test_encoder (the PyTorch goldens), test_narrow and
# test_store_noalloc.  Skipped (77) on a CPU without AVX2 and FMA.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD="${BUILD:-build}"
if ! grep -qw avx2 /proc/cpuinfo 2>/dev/null || ! grep -qw fma /proc/cpuinfo 2>/dev/null; then
  echo "SKIP: gemm_avx2: this CPU has no AVX2 and FMA"
  exit 77
fi
rc=0
for t in test_gemm test_encoder test_narrow test_store_noalloc; do
  out=$(ERSERVE_GEMM=avx2 "$BUILD/tests/core/$t" 2>&1)
  line=$(echo "$out" | grep -E '^[0-9]+%: Checks')
  echo "gemm_avx2: $t: $line"
  case "$line" in
    *"Failures: 0, Errors: 0"*) ;;
    *) echo "$out" | grep -E ':[FE]:' | head -10; rc=1 ;;
  esac
done
exit $rc
