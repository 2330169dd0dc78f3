"""Start-up: the first call and the first fits in a fresh process, with a cold and a warm Numba cache.

Three programs, each in a fresh interpreter: ``grad_hess`` twice (the objective alone), one
``xgb.train`` with :class:`~gbdt_pwiser.PWiseRObjective`, and one ``CTCVRClassifier().fit``
(100k rows, groups of 25, sparse labels; 10 features and 5 rounds for the fits). Cold: an empty
``NUMBA_CACHE_DIR`` (every kernel the program needs compiles). Warm: the same folder again, filled
by the cold run (kernels load from the cache). Import time is reported separately; "first fit"
counts from the data in memory to the fitted model. Writes ``results/startup.json``.

    python benchmarks/bench_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_python, write_result

DATA = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
{imports}
t1 = time.perf_counter()
rng = np.random.default_rng(0)
n = 100_000
y = rng.choice([0, 1, 2], n, p=[0.95, 0.04, 0.01]).astype(np.int8)
g = np.repeat(np.arange(n // 25), 25)
X = rng.normal(size=(n, 10)).astype(np.float32)
z = rng.normal(size=n).astype(np.float32)
"""

PROGRAMS = {
    "grad_hess": (
        "from gbdt_pwiser import PWiseRObjective",
        r"""
t2 = time.perf_counter()
PWiseRObjective().grad_hess(z, y, group=g)
t3 = time.perf_counter()
PWiseRObjective().grad_hess(z, y, group=g)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_s": t3 - t2, "second_s": t4 - t3}))
""",
    ),
    "xgb.train": (
        "import xgboost as xgb\nfrom gbdt_pwiser import PWiseRObjective",
        r"""
t2 = time.perf_counter()
d = xgb.DMatrix(X, label=y)
d.set_group(np.full(n // 25, 25))
xgb.train({"tree_method": "hist", "max_depth": 6}, d, 5, obj=PWiseRObjective())
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_s": t3 - t2}))
""",
    ),
    "CTCVRClassifier": (
        "from gbdt_pwiser import CTCVRClassifier",
        r"""
t2 = time.perf_counter()
CTCVRClassifier(n_estimators=5).fit(X, y, group=g)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_s": t3 - t2}))
""",
    ),
}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.repeat = 1
    runs: dict = {prog: {"cold": [], "warm": []} for prog in PROGRAMS}
    for _ in range(a.repeat):
        for prog, (imports, body) in PROGRAMS.items():
            code = DATA.format(imports=imports) + body
            with tempfile.TemporaryDirectory() as cache:
                env = {"NUMBA_CACHE_DIR": cache}
                for state in ("cold", "warm"):
                    runs[prog][state].append(json.loads(run_python(code, env).strip().splitlines()[-1]))
    best = {
        prog: {state: {m: min(r[m] for r in rs) for m in rs[0]} for state, rs in v.items()} for prog, v in runs.items()
    }
    for prog, v in best.items():
        for state, r in v.items():
            extra = f", second {r['second_s'] * 1e3:.1f} ms" if "second_s" in r else ""
            print(
                f"{prog:16s} {state} cache: import {r['import_s']:.2f} s, first {r['first_s']:.2f} s{extra}", flush=True
            )
    out = {"runs": runs, "best": best}
    if not a.smoke:
        write_result("startup", out)
    return out


if __name__ == "__main__":
    main()
