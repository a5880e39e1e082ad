#!/bin/sh
# LoRA and bottleneck adapter tasks (make bench): memory of one
# bert-base-shaped base plus N adapter tasks (LoRA r = 8 on query/value above
# the cut, unmerged and merged; AdapterHub Pfeiffer bottleneck adapters,
# reduction factor 16, after the FFN above the cut) against the base plus N
# full tasks (own upper layers, shared lower stack), and per-request cost on
# a store hit of each kind.  N = BENCH_LORA_TASKS (20); full tasks:
# BENCH_LORA_FULL (20; each is a 420 MiB file on disk).
set -eu
ITERS="${BENCH_ITERS:-5}"
N="${BENCH_LORA_TASKS:-20}"
NF="${BENCH_LORA_FULL:-20}"
. tests/bench/common.sh
bench_cc bench_lora
W="$BUILD/bench/lora"
mkdir -p "$W"
ABS_MODEL="$(cd "$MODEL" && pwd)"
"$BUILD/bench/bench_lora" --make "$ABS_MODEL" "$W" "$N"
"$BUILD/bench/bench_lora" --make-bn "$ABS_MODEL" "$W" "$N"
i=0; full=""
while [ "$i" -lt "$NF" ]; do
  d="$BUILD/bench/bert-base-full$i"
  [ -f "$d/model.safetensors" ] || "$BUILD/bin/erserve-genmodel" --out "$d" --preset bert-base \
    --head seqcls --seed 7 --upper-seed $((200 + i)) --upper-from 6 >/dev/null
  full="$full $d"; i=$((i + 1))
done
loras=""; bns=""; i=0
while [ "$i" -lt "$N" ]; do loras="$loras $W/lora-$i"; bns="$bns $W/bn-$i"; i=$((i + 1)); done
echo "== LoRA tasks: bert-base shape, cut 6, r=8 on query/value of layers 6-11 ($OPENBLAS_CORE_NOTE)"
"$BUILD/bench/bench_lora" --rss unmerged "$MODEL"
# shellcheck disable=SC2086
"$BUILD/bench/bench_lora" --rss unmerged "$MODEL" $loras
# shellcheck disable=SC2086
"$BUILD/bench/bench_lora" --rss merge "$MODEL" $loras
# shellcheck disable=SC2086
"$BUILD/bench/bench_lora" --rss unmerged "$MODEL" $full
echo "== bottleneck tasks: Pfeiffer, reduction factor 16, after the FFN of layers 6-11"
# shellcheck disable=SC2086
"$BUILD/bench/bench_lora" --rss unmerged "$MODEL" $bns
"$BUILD/bench/bench_lora" --hit "$MODEL" "$W/lora-0" "$BUILD/bench/bert-base-full0" \
  "${BENCH_BATCH:-8}" "${BENCH_SEQ:-128}" "$ITERS" "$W/bn-0"
