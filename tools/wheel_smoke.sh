#!/usr/bin/env bash
# The built wheel, installed into a fresh virtual environment and run from outside the source tree:
#   1. the wheel carries py.typed;
#   2. core install (no extras): import, an xgb.train with PWiseRObjective, a CTCVRClassifier fit,
#      show_versions(), `gbdt-pwiser --version` equal to gbdt_pwiser.__version__, and
#      `gbdt-pwiser compare` without matplotlib (plots skipped with a one-line note);
#   3. with the cli extra: `gbdt-pwiser compare` writes its PNG plots.
# Usage: tools/wheel_smoke.sh WHEEL WORKDIR   (WORKDIR is emptied; PYTHON picks the interpreter)
set -euo pipefail
wheel=$1
work=$2
py=${PYTHON:-python3}
case "$wheel" in *.whl) ;; *) echo "wheel-smoke: not a wheel: $wheel" >&2; exit 2 ;; esac
rm -rf "$work"
mkdir -p "$work"
cd "$work"  # outside the tree: nothing can be imported from the checkout

# no pipe into grep -q: it stops reading at the first match, and the listing's broken pipe failed the step
"$py" -c 'import sys, zipfile; sys.exit("gbdt_pwiser/py.typed" not in zipfile.ZipFile(sys.argv[1]).namelist())' "$wheel" \
  || { echo "wheel-smoke: no py.typed in $wheel" >&2; exit 1; }

"$py" -m venv venv
venv/bin/python -m pip install -q --upgrade pip
venv/bin/python -m pip install -q "$wheel"  # the core only; pip's cache keeps this quick

venv/bin/python - <<'EOF'
import os, sys, importlib.util
from pathlib import Path

import numpy as np
import xgboost as xgb

import gbdt_pwiser
from gbdt_pwiser import CTCVRClassifier, PWiseRObjective, initial_margin
from gbdt_pwiser.datasets import make_ad_log

site = Path(gbdt_pwiser.__file__).resolve().parent
assert Path(sys.prefix).resolve() in site.parents, f"imported from {site}, not the smoke venv"
assert (site / "py.typed").is_file(), "py.typed not installed"
for extra in ("matplotlib", "pyarrow", "dask", "torch"):
    assert importlib.util.find_spec(extra) is None, f"{extra} came with the core install"

log = make_ad_log(300, random_state=0).sort_by_group()
y = log.y
d = xgb.DMatrix(log.X, label=y, qid=log.group, enable_categorical=True)
booster = xgb.train({"tree_method": "hist", "max_depth": 3, "base_score": initial_margin(y)}, d, 5,
                    obj=PWiseRObjective())
assert booster.num_boosted_rounds() == 5
model = CTCVRClassifier(n_estimators=5, random_state=0).fit(log.X, log.y, group=log.group)
p = model.predict_ctcvr(log.X)
assert p.shape == (len(y),) and np.all((p >= 0) & (p <= 1))
gbdt_pwiser.show_versions()
print(f"wheel-smoke: core fit ok ({gbdt_pwiser.__version__}, {site})")
EOF

version=$(venv/bin/python -c "import gbdt_pwiser; print(gbdt_pwiser.__version__)")
test "$(venv/bin/gbdt-pwiser --version)" = "gbdt-pwiser $version"

args=(compare --requests 300 --n-estimators 5 --no-sweep --bootstrap 0 --quiet)
venv/bin/gbdt-pwiser "${args[@]}" --out core_out 2> core.err
cat core.err >&2
grep -qx "gbdt-pwiser: note: plots skipped: .*pip install 'gbdt-pwiser\[cli\]'" core.err
if grep -q Traceback core.err; then echo "wheel-smoke: traceback without matplotlib" >&2; exit 1; fi
test -s core_out/results.json
if ls core_out/*.png >/dev/null 2>&1; then echo "wheel-smoke: plots drawn without matplotlib?" >&2; exit 1; fi

venv/bin/python -m pip install -q "$wheel[cli]"
venv/bin/gbdt-pwiser "${args[@]}" --out cli_out
test -s cli_out/roc.png
echo "wheel-smoke: ok: $(basename "$wheel") (core: fit, CLI without plots; cli extra: plots)"
