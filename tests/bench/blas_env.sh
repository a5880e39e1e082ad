# Sourced by the benchmarks.  OpenBLAS 0.3.21 (Debian 12) does not know some
# recent CPUs (e.g. Sapphire Rapids under a VM that hides the model) and falls
# back to its SSE3 "Prescott" kernels, 3-4x slower.  For benchmarks, pick the
# newest kernel set the CPU supports, for erserve and PyTorch alike, unless the
# caller already chose one.  Tests never change this.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -q avx512f /proc/cpuinfo 2>/dev/null; then OPENBLAS_CORETYPE=SkylakeX
  elif grep -q avx2 /proc/cpuinfo 2>/dev/null; then OPENBLAS_CORETYPE=Haswell
  fi
  [ -n "${OPENBLAS_CORETYPE:-}" ] && export OPENBLAS_CORETYPE
fi
OPENBLAS_CORE_NOTE="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}"
