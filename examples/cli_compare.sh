#!/usr/bin/env bash
# The main job from the command line: BCE chain vs PWiseR chain on a simulated log, a λ sweep,
# table + results.json + PNG plots in the output folder. REQUESTS=400 makes it a seconds-long run.
set -euo pipefail
OUT=${OUT:-gbdt_pwiser_out}
gbdt-pwiser compare --requests "${REQUESTS:-20000}" --backend "${BACKEND:-xgboost}" \
    --lam 1.0 --sweep-lam 0,0.5,1,2 --out "$OUT" ${EXTRA:-}
gbdt-pwiser compare --requests "${REQUESTS:-20000}" --backend lightgbm --cvr-space entire \
    --no-sweep --out "$OUT/lightgbm_entire" ${EXTRA:-}
