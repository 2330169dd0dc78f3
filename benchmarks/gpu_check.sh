#!/usr/bin/env bash
# One prepared GPU check of PWiseRObjective(device="cuda"), < 5 minutes on one GPU:
#   1. CPU vs GPU grad_hess at 1M rows (groups of ~25; exact and pairs=4; a giant group),
#   2. XGBoost device="cuda" fit time, PWiseR vs native binary:logistic, 10M rows x 30, 50 rounds, depth 6.
# Result: $OUT/gpu_check.json (or benchmarks/results/gpu_check.json); exit status 0 = all checks passed.
#
# Usage (from anywhere):  bash benchmarks/gpu_check.sh [gpu_check.py options]
#   e.g. --fit-rows 2000000 --rounds 20, --skip-fit, --dry-run, --cpu-smoke (no GPU needed)
#
# Bare machine without internet: put the missing wheels in .whl/ at the repository root (or in
# shared/.whl/, shared/wheels/ or $GPU_CHECK_WHEELS); they are installed with
# `pip install --no-index --no-deps --target /tmp/site .whl/*.whl` (or, without pip, unzipped
# there) and put first on PYTHONPATH. For Python 3.12 that is typically: numpy,
# numba, llvmlite, numba-cuda with its CUDA wheels (cuda-bindings, cuda-core, cuda-pathfinder and,
# unless a CUDA toolkit is installed, NVVM/libdevice and NVRTC: nvidia-cuda-nvcc-cuXX,
# nvidia-cuda-nvrtc-cuXX, matching the driver's CUDA major version), xgboost, and what
# `import gbdt_pwiser` needs (scipy, scikit-learn, pandas, pyarrow, joblib, threadpoolctl, ...).
# The environment stage of the JSON lists what was found.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/site}"

# wheels: $GPU_CHECK_WHEELS, else .whl/, else shared/.whl/ or shared/wheels/ (the first that holds any)
WHL=""
for d in "${GPU_CHECK_WHEELS:-}" .whl shared/.whl shared/wheels; do
  if [ -n "$d" ] && [ -d "$d" ] && compgen -G "$d/*.whl" > /dev/null; then WHL="$d"; break; fi
done
if [ -n "$WHL" ]; then
  echo "== installing $(ls "$WHL"/*.whl | wc -l) wheel(s) from $WHL/ into $SITE"
  mkdir -p "$SITE"
  if ! "$PY" -m pip install --quiet --no-index --no-deps --upgrade --target "$SITE" "$WHL"/*.whl; then
    echo "   pip failed or missing: unzipping the wheels into $SITE instead"
    "$PY" - "$SITE" "$WHL"/*.whl <<'EOF'
import sys, zipfile
site, wheels = sys.argv[1], sys.argv[2:]
for whl in wheels:
    with zipfile.ZipFile(whl) as zf:
        zf.extractall(site)
    print("   unzipped", whl)
EOF
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/numba_cache}"

OUTDIR="${OUT:-$ROOT/benchmarks/results}"
mkdir -p "$OUTDIR"

echo "== machine"
"$PY" --version
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi not available"

timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-295}" \
  "$PY" "$ROOT/benchmarks/gpu_check.py" --out "$OUTDIR/gpu_check.json" "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "== gpu_check.py ran out of time; partial results in $OUTDIR/gpu_check.json"
fi
exit "$rc"
