#!/usr/bin/env bash
# The prepared GPU check of device="cuda": every figure in one run of < 10 minutes on one GPU
# (benchmarks/gpu_check.py has the stages): the card's copy bandwidth, CUDA kernels against the CPU
# at 1M and 10M rows (exact and pairs=4, both pair losses, float32/float64 margins) with their GB/s,
# and, when XGBoost is there, an XGBoost device="cuda" fit with PWiseR against binary:logistic at
# 10M rows with the host<->device copies per round.
# Result: $OUT/gpu_check.json (else benchmarks/results/gpu_check.json); exit 0 = every check passed.
#
#   bash benchmarks/gpu_check.sh [gpu_check.py options]     e.g. --rows 1000000 --skip-fit
#   NUMBA_ENABLE_CUDASIM=1 bash benchmarks/gpu_check.sh --cpu-smoke   (no GPU: simulator, tiny sizes)
#
# The kernel checks need numba + numba-cuda (+ its CUDA 13 NVVM/NVRTC wheels or a CUDA toolkit) and
# what `import gbdt_pwiser.objectives` needs (numpy, numba); not XGBoost.
#
# XGBoost on a machine without network: its wheel (xgboost 3.2.0: 131 MB) is larger than the
# 64 MiB one command may carry, so it comes in parts. Here, once:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       xgboost==3.2.0 -d /tmp/xgbwhl
#   for i in 1 2 3; do mkdir -p .whl/p$i; done
#   split -b 45M -d -a 2 /tmp/xgbwhl/xgboost-3.2.0-*.whl /tmp/xgbwhl/part-
#   mv /tmp/xgbwhl/part-00 .whl/p1/xgboost-3.2.0-py3-none-manylinux_2_28_x86_64.whl.part-00   (p2: part-01, ...)
#   (cd /tmp/xgbwhl && sha256sum xgboost-*.whl) > .whl/p1/xgboost.sha256
# then carry .whl/p1, .whl/p2, .whl/p3 in three consecutive calls (a warm machine keeps them).
# This script (through benchmarks/wheels.sh) finds every xgboost-*.whl.part-* under .whl/ (or $GPU_CHECK_WHEELS), joins them in
# name order with cat, checks the sha256 when given, and installs the wheel (and any whole *.whl
# there) with pip --no-index --no-deps --target $GPU_CHECK_SITE. No wheel and no xgboost: the fit
# is skipped with a line saying so.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
WHL="${GPU_CHECK_WHEELS:-$ROOT/.whl}"
JOIN="${TMPDIR:-/tmp}/gpu_check_wheels"

echo "== machine"
"$PY" --version
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi not available"

source "$ROOT/benchmarks/wheels.sh"  # joins the parts, installs the wheels into $SITE, sets PYTHONPATH
"$PY" -c "import xgboost; print('== xgboost', xgboost.__version__)" 2>/dev/null \
  || echo "== xgboost not installed: the XGBoost fit will be skipped (see the header for the wheel parts)"

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/numba_cache}"
OUTDIR="${OUT:-$ROOT/benchmarks/results}"
mkdir -p "$OUTDIR"

timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-570}" \
  "$PY" "$ROOT/benchmarks/gpu_check.py" --out "$OUTDIR/gpu_check.json" "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "== gpu_check.py ran out of time; partial results in $OUTDIR/gpu_check.json"
fi
exit "$rc"
