"""Fit time of XGBoost / LightGBM with PWiseR over their native objectives, same run.

Both label regimes (``common.REGIMES``: sparse = CTR 2.5 %, CVR 2.5 %; dense = CTR 10 %,
CVR 20 %), groups of 25 rows. Same data, parameters and rounds; runs interleaved (native, …, native, …) and the median
of the paired ratios reported. Two extra rows explain the ratio: a plain NumPy BCE custom
objective (the library's own cost of calling Python each round) and PWiseR with λ=0 (the
same trees as BCE, so the difference to NumPy is our objective's own cost; the rest of
PWiseR's ratio is the different trees its gradients grow). Writes
``results/fit_xgboost.json`` and ``results/fit_lightgbm.json``.

    python benchmarks/bench_fit.py [--rows 300000 1000000] [--regimes sparse dense] [--rounds 50] [--repeat 5] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REGIMES, load_average, make_regime_data, write_result

from gbdt_pwiser import PWiseRObjective, initial_margin


class NumpyBCE:
    """A plain NumPy BCE custom objective: isolates the boosting library's own cost of
    calling a Python objective (copying margins out and gradients in) from ours."""

    def __call__(self, predt, data):
        c = (np.asarray(data.get_label()) >= 1).astype(np.float64)
        p = 1.0 / (1.0 + np.exp(-np.asarray(predt, dtype=np.float64)))
        return p - c, p * (1.0 - p)


def _paired(times: dict[str, list[float]], ref: str) -> dict[str, dict[str, float]]:
    out = {}
    for name, ts in times.items():
        ratios = np.array(ts) / np.array(times[ref])
        out[name] = {
            "median_s": float(np.median(ts)),
            "ratio_median": float(np.median(ratios)),
            "ratio_min": float(ratios.min()),
            "ratio_max": float(ratios.max()),
            "times_s": ts,
        }
    return out


def bench_xgboost(X, y, group, rounds, repeat, threads):
    import xgboost as xgb

    click = (y >= 1).astype(np.float32)
    base = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "nthread": threads, "seed": 0, "max_bin": 256}
    d_native = xgb.DMatrix(X, label=click, nthread=threads)
    d_pw = xgb.DMatrix(X, label=y, qid=group, nthread=threads)
    d_rank = xgb.DMatrix(X, label=y, qid=group, nthread=threads)
    b0 = initial_margin(y)
    variants = {
        "native binary:logistic": (d_native, {**base, "objective": "binary:logistic"}, None),
        "custom NumPy BCE": (d_pw, {**base, "base_score": b0, "disable_default_eval_metric": 1}, lambda: NumpyBCE()),
        "PWiseR λ=0": (
            d_pw,
            {**base, "base_score": b0, "disable_default_eval_metric": 1},
            lambda: PWiseRObjective(lam=0.0),
        ),
        "PWiseR exact": (d_pw, {**base, "base_score": b0, "disable_default_eval_metric": 1}, lambda: PWiseRObjective()),
        "PWiseR k=4": (
            d_pw,
            {**base, "base_score": b0, "disable_default_eval_metric": 1},
            lambda: PWiseRObjective(pairs=4),
        ),
        "native rank:pairwise": (
            d_rank,
            {
                **base,
                "objective": "rank:pairwise",
                "lambdarank_pair_method": "mean",
                "lambdarank_num_pair_per_sample": 1,
            },
            None,
        ),
    }
    times = {k: [] for k in variants}
    for rep in range(repeat + 1):  # the first pass warms caches (histogram index, JIT) and is dropped
        for name, (d, params, mk) in variants.items():
            t = time.perf_counter()
            xgb.train(params, d, rounds, obj=mk() if mk else None)
            if rep:
                times[name].append(time.perf_counter() - t)
    return _paired(times, "native binary:logistic")


def lgb_setup(X, y, group, threads):
    """The LightGBM parameters of the fit benchmarks and their two constructed Datasets: the native one
    (click labels) and PWiseR's (funnel labels, group sizes, the starting margin). Also bench_fit_gap.py's."""
    import lightgbm as lgb

    sizes = np.bincount(group - group.min())
    sizes = sizes[sizes > 0]
    base = {
        "learning_rate": 0.1,
        "num_leaves": 63,
        "max_depth": 6,
        "num_threads": threads,
        "seed": 0,
        "verbose": -1,
        "max_bin": 255,
        "metric": "None",
    }
    ds_native = lgb.Dataset(X, label=(y >= 1).astype(np.float32), params={"verbose": -1}, free_raw_data=False)
    ds_pw = lgb.Dataset(
        X,
        label=y,
        group=sizes,
        init_score=np.full(y.size, initial_margin(y)),
        params={"verbose": -1},
        free_raw_data=False,
    )
    ds_native.construct()
    ds_pw.construct()
    return base, ds_native, ds_pw


def bench_lightgbm(X, y, group, rounds, repeat, threads):
    import lightgbm as lgb

    base, ds_native, ds_pw = lgb_setup(X, y, group, threads)
    variants = {
        "native binary": (ds_native, {**base, "objective": "binary"}),
        "custom NumPy BCE": (ds_pw, {**base, "objective": NumpyBCE()}),
        "PWiseR λ=0": (ds_pw, {**base, "objective": PWiseRObjective(lam=0.0)}),
        "PWiseR exact": (ds_pw, {**base, "objective": PWiseRObjective()}),
        "PWiseR k=4": (ds_pw, {**base, "objective": PWiseRObjective(pairs=4)}),
    }
    times = {k: [] for k in variants}
    for rep in range(repeat + 1):
        for name, (ds, params) in variants.items():
            t = time.perf_counter()
            lgb.train(params, ds, rounds)
            if rep:
                times[name].append(time.perf_counter() - t)
    return _paired(times, "native binary")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[300_000, 1_000_000])
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backends", nargs="+", default=["xgboost", "lightgbm"])
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    a = ap.parse_args(argv)
    if a.smoke:
        a.rows, a.rounds, a.repeat = [3000], 3, 1
    out = {}
    for backend in a.backends:
        before = load_average()
        res = {}
        for regime in a.regimes:
            res[regime] = {}
            for n in a.rows:
                X, y, g = make_regime_data(n, a.features, regime)
                fn = bench_xgboost if backend == "xgboost" else bench_lightgbm
                res[regime][str(n)] = r_n = fn(X, y, g, a.rounds, a.repeat, a.threads)
                for name, r in r_n.items():
                    print(
                        f"{backend} {regime} n={n}: {name:24s} {r['median_s']:.3f} s  ratio {r['ratio_median']:.3f} "
                        f"[{r['ratio_min']:.3f}, {r['ratio_max']:.3f}]",
                        flush=True,
                    )
        out[backend] = res
        if not a.smoke:
            write_result(
                f"fit_{backend}",
                {
                    "rounds": a.rounds,
                    "repeat": a.repeat,
                    "features": a.features,
                    "threads": a.threads,
                    "regimes": {k: REGIMES[k] for k in a.regimes},
                    "load_average": {"before": before, "after": load_average()},
                    "results": res,
                },
            )
    return out


if __name__ == "__main__":
    main()
