# Sourced by the backend reruns (tests/gemm_avx2.sh, tests/gemm_onednn.sh):
# make test runs every suite once on the host's default GEMM backend, and
# these rerun some of them on another.
#
# rerun_suites TAG BACKEND SUITE...: runs each $BUILD/tests/core/SUITE with
# ERSERVE_GEMM=BACKEND, prints "TAG: SUITE: <libcheck summary> (N skipped)"
# and, for a suite with failures, its failing lines; returns 1 if any suite
# failed.  The last suite's output is left in $rerun_out.
rerun_suites() {
  tag=$1; backend=$2; shift 2
  rerun_rc=0
  for t in "$@"; do
    rerun_out=$(ERSERVE_GEMM=$backend "$BUILD/tests/core/$t" 2>&1)
    line=$(echo "$rerun_out" | grep -E '^[0-9]+%: Checks')
    echo "$tag: $t: $line ($(echo "$rerun_out" | grep -c '^SKIP') skipped)"
    case "$line" in
      *"Failures: 0, Errors: 0"*) ;;
      *) echo "$rerun_out" | grep -E ':[FE]:' | head -10; rerun_rc=1 ;;
    esac
  done
  return $rerun_rc
}
