#!/bin/sh
# Runs each test given as an argument from the repository root and prints one
# closing line: "N passed, M failed, K skipped", counting test cases:
#   - a libcheck binary (tests/<module>/test_*): its "Checks: X, Failures: Y,
#     Errors: Z" line; a case that printed "SKIP: name: why" (ER_SKIP in
#     check_main.h) counts as skipped, not passed;
#   - a libFuzzer target (fuzz_*): one case, a bounded run over its corpus;
#   - a script (*.sh): one case, by its exit status (77: skipped, having
#     said why on a "SKIP: " line).
# A binary that crashes or prints no summary counts as one failure.
# ERSERVE_VALGRIND=1 runs each libcheck binary under valgrind memcheck
# without forking (fuzzers are skipped then, and counted as skipped).
cd "$(dirname "$0")/.." || exit 1
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-120}"
passed=0; failed=0; skipped=0; failed_names=""
log="${TMPDIR:-/tmp}/erserve-run.$$"
for t in "$@"; do
  echo "== $t"
  name=$(basename "$t")
  started=$(date +%s)
  case "$name" in
  fuzz_*)
    # libFuzzer target: a bounded run over a scratch copy of its seed corpus.
    if [ "${ERSERVE_VALGRIND:-0}" = 1 ]; then
      echo "SKIP: $name: libFuzzer targets carry their own sanitizers; not run under valgrind"
      skipped=$((skipped + 1)); continue
    fi
    corpus="${BUILD:-build}/fuzz-corpus/${name#fuzz_}"
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/${name#fuzz_}" ] && cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/"
    "$t" -max_total_time="${FUZZ_SECONDS:-10}" -rss_limit_mb=2048 -print_final_stats=1 \
      "$corpus" >"$corpus.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then tail -n 6 "$corpus.log"; else tail -n 60 "$corpus.log"; fi
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names="$failed_names $t"; fi
    ;;
  *.sh)
    "$t"; rc=$?
    if [ $rc -eq 0 ]; then passed=$((passed + 1))
    elif [ $rc -eq 77 ]; then skipped=$((skipped + 1)) # it printed "SKIP: why"
    else failed=$((failed + 1)); failed_names="$failed_names $t"; fi
    ;;
  *)
    if [ "${ERSERVE_VALGRIND:-0}" = 1 ]; then
      CK_FORK=no CK_TIMEOUT_MULTIPLIER=20 valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --suppressions=tests/valgrind.supp "$t" >"$log" 2>&1
    else
      "$t" >"$log" 2>&1
    fi
    rc=$?
    cat "$log"
    summary=$(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$log" | tail -n 1)
    n_skip=$(grep -c '^SKIP: ' "$log")
    if [ -z "$summary" ]; then
      echo "run.sh: $t printed no libcheck summary (exit $rc): counted as one failure"
      failed=$((failed + 1)); failed_names="$failed_names $t"
    else
      read -r checks failures errors <<EOS
$summary
EOS
      bad=$((failures + errors))
      if [ $rc -ne 0 ] && [ $bad -eq 0 ]; then bad=1; fi # e.g. valgrind found an error
      passed=$((passed + checks - bad - n_skip)); failed=$((failed + bad)); skipped=$((skipped + n_skip))
      [ $bad -eq 0 ] || failed_names="$failed_names $t"
    fi
    ;;
  esac
  echo "== $t: $(($(date +%s) - started)) s"
done
rm -f "$log"
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
