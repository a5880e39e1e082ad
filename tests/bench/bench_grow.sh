#!/bin/sh
# Store cost as it grows (make bench; minutes at the default size): one store
# filled to BENCH_GROW_MAX values (1000000) of 16-token documents of the
# tiny model (hidden 64, fp16), budget BENCH_GROW_BUDGET (0.9) of the final
# size so eviction runs over the last part of the fill; a hit's store read and an end-to-end hit (er_run) per decade,
# disk bytes per value against the value's size (tests/bench/bench_grow.c);
# then the time and peak memory of `erserve-cache verify` on the full store.
# Needs about 4.5 KB of disk per value kept (BENCH_GROW_DIR, default under
# $BUILD/bench).
set -eu
cd "$(dirname "$0")/../.."
BUILD="${BUILD:-build}"
MAX="${BENCH_GROW_MAX:-1000000}"
. tests/bench/blas_env.sh
make --no-print-directory BUILD="$BUILD" "$BUILD/bench/bench_grow" "$BUILD/bin/erserve-cache" >/dev/null
M="$BUILD/bench/tiny-seqcls"
[ -f "$M/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" --out "$M" --preset tiny --head seqcls --seed 42 >/dev/null
S="${BENCH_GROW_DIR:-$BUILD/bench/grow-store}"
rm -rf "$S"
trap 'rm -rf "$S"' EXIT
"$BUILD/bench/bench_grow" "$M" "$S" "$MAX" "${BENCH_GROW_PROBES:-2000}" "${BENCH_GROW_BUDGET:-0.9}"
echo "store: $(du -sh "$S" | cut -f1) on disk (data.mdb allocated)"
/usr/bin/time -f "erserve-cache verify: %e s, peak RSS %M KB" "$BUILD/bin/erserve-cache" --store "$S" \
  verify
