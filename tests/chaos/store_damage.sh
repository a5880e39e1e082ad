#!/bin/sh
# Chaos for the store's file (minutes; not part of `make test`): each round
# warms a ~50 MB store with erserve-cache (fixture model, evictions under a
# 24 MB budget), damages the closed file one way (truncation to a random
# size, random bytes flipped past the meta pages, bytes flipped in leaf pages
# only, a zeroed range, a flipped meta page), then checks:
#   - stats and verify never die of a signal (SIGBUS was exit 135), and say
#     what to do when they refuse;
#   - warm on the damaged store never dies of a signal;
#   - verify --repair exits 0 and the result verifies;
#   - the repaired store takes writes (warm) and verifies again.
# Usage: BUILD=build CHAOS_ROUNDS=20 CHAOS_SEED=1 sh tests/chaos/store_damage.sh
# Exit 0 when every round passed.
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
ROUNDS=${CHAOS_ROUNDS:-20}
SEED=${CHAOS_SEED:-1}
BIN=$BUILD/bin/erserve-cache
MODEL=tests/fixtures/models/bert-seqcls
[ -x "$BIN" ] || { echo "store_damage: build $BIN first (make)"; exit 1; }
W=$(mktemp -d /tmp/er_chaos_XXXXXX) || exit 1
trap 'rm -rf "$W"' EXIT
python3 - "$W/docs.jsonl" "$SEED" <<'PY'
import random, sys
random.seed(int(sys.argv[2]))
with open(sys.argv[1], "w") as f:
    for i in range(6000):
        ids = [random.randint(5, 250) for _ in range(random.randint(20, 38))]
        f.write('{"id": %d, "input_ids": [2, %s, 3]}\n' % (i, ", ".join(map(str, ids))))
PY
# damage.py MODE SEED FILE
cat > "$W/damage.py" <<'PY'
import os, random, struct, sys
mode, seed, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = random.Random(seed)
size = os.path.getsize(path)
with open(path, "r+b") as f:
    ps = struct.unpack_from("<I", f.read(64), 40)[0]
    pages = size // ps
    if mode == "truncate":
        f.truncate(r.randrange(ps, size))
    elif mode == "flip":
        for _ in range(r.randint(20, 400)):
            off = r.randrange(2 * ps, size)
            f.seek(off); b = f.read(1); f.seek(off)
            f.write(bytes([b[0] ^ (1 << r.randrange(8))]))
    elif mode == "leaf":
        leaves = []
        for n in range(2, pages):
            f.seek(n * ps); h = f.read(16)
            if struct.unpack_from("<H", h, 10)[0] & 7 == 2: leaves.append(n)
        for n in r.sample(leaves, min(len(leaves), r.randint(1, 20))):
            for _ in range(r.randint(1, 8)):
                off = n * ps + r.randrange(16, ps)
                f.seek(off); b = f.read(1); f.seek(off)
                f.write(bytes([b[0] ^ (1 << r.randrange(8))]))
    elif mode == "zero":
        off = r.randrange(2 * ps, size); n = r.randrange(1, 64 * ps)
        f.seek(off); f.write(bytes(min(n, size - off)))
    elif mode == "meta":
        off = r.choice([0, ps]) + r.randrange(16, 160)
        f.seek(off); b = f.read(1); f.seek(off)
        f.write(bytes([b[0] ^ (1 << r.randrange(8))]))
print("%s: %d bytes, page %d" % (mode, size, ps))
PY
fail=0
signalled() { [ "$1" -ge 128 ]; }
i=0
while [ $i -lt "$ROUNDS" ]; do
  i=$((i + 1))
  S=$W/store
  rm -rf "$S"
  set -- truncate flip leaf zero meta
  shift $(( (i - 1) % 5 )); mode=$1
  "$BIN" --store "$S" --model "$MODEL" --dtype fp32 --budget 24M warm "$W/docs.jsonl" 2>/dev/null ||
    { echo "round $i: warm failed"; fail=1; continue; }
  what=$(python3 "$W/damage.py" "$mode" $((SEED * 1000 + i)) "$S/data.mdb")
  "$BIN" --store "$S" stats >/dev/null 2>"$W/err"; rc=$?
  if signalled $rc; then echo "round $i ($what): stats died, exit $rc"; fail=1; fi
  if [ $rc -ne 0 ] && ! grep -q 'verify --repair' "$W/err"; then
    echo "round $i ($what): stats refused without saying what to run:"; cat "$W/err"; fail=1; fi
  "$BIN" --store "$S" verify >/dev/null 2>&1; rc=$?
  if signalled $rc; then echo "round $i ($what): verify died, exit $rc"; fail=1; fi
  "$BIN" --store "$S" --model "$MODEL" --dtype fp32 --budget 24M warm "$W/docs.jsonl" >/dev/null 2>&1; rc=$?
  if signalled $rc; then echo "round $i ($what): warm on the damaged store died, exit $rc"; fail=1; fi
  "$BIN" --store "$S" --budget 24M verify --repair >"$W/rep" 2>&1; rc=$?
  if [ $rc -ne 0 ]; then echo "round $i ($what): verify --repair exit $rc:"; cat "$W/rep"; fail=1; continue; fi
  "$BIN" --store "$S" verify >/dev/null 2>&1 || { echo "round $i ($what): repaired store does not verify"; fail=1; continue; }
  "$BIN" --store "$S" --model "$MODEL" --dtype fp32 --budget 24M warm "$W/docs.jsonl" >/dev/null 2>&1 ||
    { echo "round $i ($what): warm on the repaired store failed"; fail=1; continue; }
  "$BIN" --store "$S" verify >/dev/null 2>&1 || { echo "round $i ($what): store does not verify after warm"; fail=1; continue; }
  echo "round $i ($what): ok, repair: $(grep -E '^(recovered|copies ok|values ok|indexes)' "$W/rep" | tr -s ' ' | paste -sd, -)"
done
[ $fail -eq 0 ] && echo "store_damage: $ROUNDS rounds passed" || echo "store_damage: FAILED"
exit $fail
