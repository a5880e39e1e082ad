#!/bin/sh
# Runs each test binary given as an argument (one libcheck suite each) from the
# repository root and prints one closing line: "N passed, N failed".
# ERSERVE_VALGRIND=1 runs each under valgrind memcheck without forking.
cd "$(dirname "$0")/.." || exit 1
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-120}"
passed=0; failed=0; failed_names=""
for t in "$@"; do
  echo "== $t"
  if [ "${ERSERVE_VALGRIND:-0}" = 1 ]; then
    CK_FORK=no CK_TIMEOUT_MULTIPLIER=20 valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite,indirect --suppressions=tests/valgrind.supp "$t"
  else
    "$t"
  fi
  if [ $? -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names="$failed_names $t"; fi
done
[ -n "$failed_names" ] && echo "failed suites:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
