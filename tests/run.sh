#!/bin/sh
# Runs each test binary given as an argument (one libcheck suite each) from the
# repository root and prints one closing line: "N passed, N failed".
# ERSERVE_VALGRIND=1 runs each under valgrind memcheck without forking.
cd "$(dirname "$0")/.." || exit 1
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-120}"
passed=0; failed=0; failed_names=""
for t in "$@"; do
  echo "== $t"
  name=$(basename "$t")
  case "$name" in
  fuzz_*)
    # libFuzzer target: a bounded run over a scratch copy of its seed corpus.
    [ "${ERSERVE_VALGRIND:-0}" = 1 ] && continue
    corpus="${BUILD:-build}/fuzz-corpus/${name#fuzz_}"
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/${name#fuzz_}" ] && cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/"
    "$t" -max_total_time="${FUZZ_SECONDS:-10}" -rss_limit_mb=2048 -print_final_stats=1 \
      "$corpus" >"$corpus.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then tail -n 6 "$corpus.log"; else tail -n 60 "$corpus.log"; fi
    ;;
  *)
  if [ "${ERSERVE_VALGRIND:-0}" = 1 ]; then
    CK_FORK=no CK_TIMEOUT_MULTIPLIER=20 valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite,indirect --suppressions=tests/valgrind.supp "$t"
  else
    "$t"
  fi
  rc=$?
  ;;
  esac
  if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names="$failed_names $t"; fi
done
[ -n "$failed_names" ] && echo "failed suites:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
