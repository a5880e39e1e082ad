#!/bin/sh
# Engine benchmark (make bench): erserve full forward vs the same-run sgemm
# ceiling and vs the PyTorch reference on the same OpenBLAS, on a random
# bert-base-shaped model (generated here, never committed).
set -eu
ITERS="${BENCH_ITERS:-5}"
. tests/bench/common.sh
bench_cc bench_engine
echo "== engine: bert-base shape, full forward (erserve vs PyTorch, same OpenBLAS: $OPENBLAS_CORE_NOTE)"
for shape in "1 128" "8 128"; do
  set -- $shape
  for t in 1 2; do
    e=$("$BUILD/bench/bench_engine" "$MODEL" "$1" "$2" "$t" "$ITERS")
    echo "$e"
    if /usr/bin/python3 -c "import torch" 2>/dev/null; then
      p=$(/usr/bin/python3 tests/bench/torch_ref.py --model "$MODEL" --batch "$1" --seq "$2" \
            --threads "$t" --iters "$ITERS" 2>/dev/null | tail -n 1)
      echo "$p"
      python3 - "$e" "$p" <<'PY'
import json, sys
e, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"   ratio erserve/pytorch tokens/s at {e['batch']}x{e['seq']}, {e['threads']} thread(s): "
      f"{e['tokens_per_s'] / p['tokens_per_s']:.2f}  (erserve at {100 * e['fraction_of_peak']:.0f}% of sgemm peak)")
PY
    else
      echo "   (PyTorch comparison skipped: python3-torch not installed; make fixtures installs it)"
    fi
  done
done
