#!/bin/sh
# The opt-in oneDNN backend (--gemm onednn, core/gemm_dnnl.c) on the suites
# that check the weight GEMMs' numerics and recycling: make test runs each
# suite once on the host's default backend, so this reruns them with
# ERSERVE_GEMM=onednn: test_gemm (float64 reference on tails and bert-base's
# shapes, rows bit-identical whatever the batch and the thread count, the
# refusals; it checks the backend really is oneDNN), test_encoder (the
# PyTorch goldens, batch composition), test_recycle (a hit equals a miss bit
# for bit, er_run equals er_forward) and test_store_noalloc (a skip that
# states oneDNN's allocations per execute, measured).  Skipped (77) where
# the build has no oneDNN (libdnnl-dev missing when it was built).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD="${BUILD:-build}"
if ! ldd "$BUILD/tests/core/test_gemm" 2>/dev/null | grep -q libdnnl; then
  echo "SKIP: gemm_onednn: this build has no oneDNN (apt-get install libdnnl-dev, then rebuild)"
  exit 77
fi
. tests/rerun_suites.sh
rc=0
rerun_suites gemm_onednn onednn test_gemm test_encoder test_recycle test_store_noalloc || rc=1
echo "$rerun_out" | grep -m1 '^SKIP: test_no_alloc_fn' | sed 's/^SKIP: /gemm_onednn: /'
exit $rc
