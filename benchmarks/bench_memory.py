"""Peak RSS of an XGBoost/LightGBM fit with PWiseR against the native objective.

Each fit runs in a fresh process that loads the same data (made once, saved as
``.npy``) and fits with the same parameters; the process's peak resident set size
(``VmHWM``) is compared. A fourth process, the floor of any Numba objective, runs the native fit
after one call of a tiny compiled function of the package (``draw_indices``, loaded from the
cache): what loading and running compiled Numba code costs, whatever the kernel. Writes
``results/memory.json``.

    python benchmarks/bench_memory.py [--rows 1000000] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_data, run_python, write_result

CODE = r"""
import json, sys
import numpy as np
from common import proc_status_mib as hwm_mib
from gbdt_pwiser import PWiseRObjective, initial_margin
X, y, g = (np.load(f"{data}/{{k}}.npy") for k in ("X", "y", "g"))
rss0 = hwm_mib()
variant, backend = {variant!r}, {backend!r}
if variant == "native + one Numba call":
    from gbdt_pwiser.kernels.cpu import draw_indices
    draw_indices(np.uint64(1), np.arange(4), 10)
    variant = "native"
if backend == "xgboost":
    import xgboost as xgb
    base = {{"tree_method": "hist", "max_depth": 6, "eta": 0.1, "nthread": 2, "seed": 0}}
    if variant == "native":
        d = xgb.DMatrix(X, label=(y >= 1).astype(np.float32), nthread=2)
        xgb.train({{**base, "objective": "binary:logistic"}}, d, {rounds})
    else:
        d = xgb.DMatrix(X, label=y, qid=g, nthread=2)
        obj = PWiseRObjective(pairs="all" if variant == "exact" else 4)
        xgb.train({{**base, "base_score": initial_margin(y), "disable_default_eval_metric": 1}}, d, {rounds}, obj=obj)
else:
    import lightgbm as lgb
    base = {{"num_leaves": 63, "max_depth": 6, "num_threads": 2, "verbose": -1, "metric": "None", "seed": 0}}
    if variant == "native":
        lgb.train({{**base, "objective": "binary"}}, lgb.Dataset(X, label=(y >= 1).astype(np.float32)), {rounds})
    else:
        sizes = np.bincount(g - g.min()); sizes = sizes[sizes > 0]
        ds = lgb.Dataset(X, label=y, group=sizes, init_score=np.full(y.size, initial_margin(y)))
        obj = PWiseRObjective(pairs="all" if variant == "exact" else 4)
        lgb.train({{**base, "objective": obj}}, ds, {rounds})
print(json.dumps({{"peak_rss_mib": hwm_mib(), "after_load_mib": rss0}}))
"""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--backends", nargs="+", default=["xgboost", "lightgbm"])
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.rows, a.rounds = 3000, 2
    res: dict = {}
    with tempfile.TemporaryDirectory() as data:
        # the data are made once and loaded by every child, so the peak is the fit's, not the simulator's
        X, y, g = make_data(a.rows, 30)
        for k, v in (("X", X), ("y", y), ("g", g)):
            np.save(f"{data}/{k}.npy", v)
        del X, y, g
        for backend in a.backends:
            res[backend] = {}
            for variant in ("native", "native + one Numba call", "exact", "k=4"):
                out = run_python(CODE.format(data=data, rounds=a.rounds, variant=variant, backend=backend))
                r = json.loads(out.strip().splitlines()[-1])
                res[backend][variant] = r["peak_rss_mib"]
                res[backend]["data_loaded_mib"] = r["after_load_mib"]
            nat = res[backend]["native"]
            for variant in ("native + one Numba call", "exact", "k=4"):
                res[backend][f"{variant}_over_native"] = res[backend][variant] / nat
            print(
                f"{backend}: peak RSS native {nat:.0f} MiB, exact {res[backend]['exact']:.0f} MiB "
                f"({res[backend]['exact_over_native']:.3f}x), k=4 {res[backend]['k=4']:.0f} MiB "
                f"({res[backend]['k=4_over_native']:.3f}x); native after one Numba call "
                f"{res[backend]['native + one Numba call']:.0f} MiB "
                f"({res[backend]['native + one Numba call_over_native']:.3f}x)",
                flush=True,
            )
    out = {"rows": a.rows, "rounds": a.rounds, "results": res}
    if not a.smoke:
        write_result("memory", out)
    return out


if __name__ == "__main__":
    main()
