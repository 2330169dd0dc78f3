#!/usr/bin/env bash
# The prepared run of issue #23's figures on a machine with many cores (the GPU test machine's 16):
# the objective's threads next to the booster's, measured in fits, not modelled. One command,
# about 4 minutes on 16 cores (232 s measured), no network:
#
#   * bench_fit_gap.py --threads T: PWiseR exact and k=4 against their replayed fits, λ=0 against a
#     NumPy BCE objective (XGBoost and LightGBM, dense 300k rows × 30, 40 rounds);
#   * bench_threads.py --threads T, candidates: one thread, the objectives' pool, the booster's
#     OpenMP team (the default), the team with parts of 16,384 rows; and the passes' parallel
#     efficiency at 1, 2, 4, 8 and T threads on 2M rows (pool and team), with the model.
#
#   bash benchmarks/threads_check.sh [threads]        (default: every core)
#   THREADS_CHECK_STEPS="gap candidates" bash benchmarks/threads_check.sh 16   (some of the steps)
#
# XGBoost and LightGBM on a machine without them: bring their wheels (xgboost-cpu is 5.6 MB,
# lightgbm 3.5 MB; here, once):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_28_x86_64 xgboost-cpu==3.2.0 lightgbm==4.7.0 -d .whl-cpu
# and carry .whl-cpu (benchmarks/wheels.sh installs them). Results: $OUT (else benchmarks/results).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
T="${1:-$(nproc)}"
SITE="${THREADS_CHECK_SITE:-/tmp/threads_check_site}"
WHL="${THREADS_CHECK_WHEELS:-$ROOT/.whl-cpu}"
JOIN="${TMPDIR:-/tmp}/threads_check_wheels"
source "$ROOT/benchmarks/wheels.sh"

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/numba_cache}"
export BENCH_RESULTS="${OUT:-$ROOT/benchmarks/results}"
mkdir -p "$BENCH_RESULTS"

backends=()
for b in xgboost lightgbm; do
  if "$PY" -c "import $b" 2>/dev/null; then backends+=("$b"); else echo "== $b: not importable, skipped"; fi
done
[ "${#backends[@]}" -gt 0 ] || { echo "== neither booster is importable"; exit 2; }
echo "== $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $T threads; load $(cut -d' ' -f1-3 /proc/loadavg); boosters: ${backends[*]}"
"$PY" -c "import numpy, numba; print('== numpy', numpy.__version__, 'numba', numba.__version__)"

rc=0
step() {  # step <seconds> <command...>: a step that fails or runs out of time does not stop the others
  local limit=$1 t0=$SECONDS
  shift
  echo "== $*"
  timeout --kill-after=10 "$limit" "$@" || { echo "== failed ($?): $*"; rc=1; }
  echo "== $((SECONDS - t0)) s"
}
want() { [[ " ${THREADS_CHECK_STEPS:-gap passes candidates} " == *" $1 "* ]]; }  # the steps to run
want gap && step 170 "$PY" benchmarks/bench_fit_gap.py --threads "$T" --repeat 5 --backends "${backends[@]}"
want passes && step 110 "$PY" benchmarks/bench_threads.py --threads "$T" --parts efficiency model --eff-repeat 9 \
  --eff-threads 1 2 4 8 "$T" --name "threads_t${T}_passes"
want candidates && step 270 "$PY" benchmarks/bench_threads.py --threads "$T" --repeat 3 --parts candidates --backends "${backends[@]}" \
  --name "threads_t${T}_fits" --candidates "one thread (first default)" "objectives' pool (second default)" \
  "booster's OpenMP team (default)" "booster's OpenMP team, parts of 16,384 rows"
echo "== done, load $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
