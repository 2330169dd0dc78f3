"""Objective time: ``grad_hess`` against a vectorised NumPy BCE-only gradient, and scaling.

Per-round cost (data prepared once, as inside ``xgb.train``) and a full
``grad_hess`` call (validation and preparation included), exact and k=4, groups
of ~25, against ``p = 1/(1+exp(-z)); g = p - c; h = p(1-p)`` on the same rows.
Writes ``results/objective.json``.

    python benchmarks/bench_objective.py [--rows 1000000 2000000 10000000] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_data, timeit, write_result  # noqa: E402

from gbdt_pwiser import PWiseRObjective, prepare_data  # noqa: E402


def numpy_bce(z: np.ndarray, c: np.ndarray):
    p = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    return p - c, p * (1.0 - p)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000, 10_000_000])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.rows, a.repeat = [10000, 40000], 2  # the smallest sizes whose groups hold conversion pairs
    res = {}
    for n in a.rows:
        _, y, g = make_data(n, 1)
        z = np.random.default_rng(1).normal(-3.5, 1.0, y.size).astype(np.float32)  # like XGBoost's predt
        c = (y >= 1).astype(np.float64)
        t_np = float(np.median(timeit(lambda: numpy_bce(z, c), a.repeat)))
        row = {"numpy_bce_s": t_np}
        for name, obj in (("exact", PWiseRObjective(n_jobs=a.threads)),
                          ("k=4", PWiseRObjective(pairs=4, n_jobs=a.threads)),
                          ("bce_only (lam=0)", PWiseRObjective(lam=0.0, n_jobs=a.threads))):
            data = prepare_data(y, group_ptr=np.r_[0, np.flatnonzero(np.diff(g)) + 1, y.size])
            it = iter(range(10**6))
            t_round = float(np.median(timeit(lambda: obj._compute(z, data, next(it), True), a.repeat)))
            t_full = float(np.median(timeit(lambda: obj.grad_hess(z, y, group=g), a.repeat)))
            row[name] = {"per_round_s": t_round, "full_call_s": t_full,
                         "numpy_over_round": t_np / t_round, "numpy_over_full": t_np / t_full}
            print(f"n={y.size:>9} {name:17s} round {t_round*1e3:8.2f} ms ({t_np/t_round:5.2f}x faster than NumPy BCE "
                  f"{t_np*1e3:.2f} ms); full call {t_full*1e3:8.2f} ms", flush=True)
        row["rows"] = int(y.size)
        row["active_groups"] = int(data.n_active_groups)
        res[str(n)] = row
    keys = [str(n) for n in a.rows]
    scaling = {}
    if len(keys) >= 2:
        lo, hi = keys[0], keys[-1]
        for name in ("exact", "k=4"):
            scaling[name] = {"rows_ratio": res[hi]["rows"] / res[lo]["rows"],
                             "time_ratio": res[hi][name]["per_round_s"] / res[lo][name]["per_round_s"]}
            print(f"scaling {name}: {scaling[name]['rows_ratio']:.1f}x rows -> {scaling[name]['time_ratio']:.2f}x time")
    out = {"threads": a.threads, "results": res, "scaling": scaling}
    if not a.smoke:
        write_result("objective", out)
    return out


if __name__ == "__main__":
    main()
