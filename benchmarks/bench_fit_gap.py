"""Where a PWiseR XGBoost fit spends the time it adds over native ``binary:logistic``.

A PWiseR fit differs from a native one in three ways: XGBoost calls a Python objective every
round (margins out, gradients in), the objective computes its gradients, and those gradients
grow different trees. This benchmark separates the three by *replaying* gradients: a first fit
records each round's gradient and Hessian; a second fit gets them back from a custom objective
that does no work, so it grows exactly the same trees (checked: identical predictions) with
the objective's computation removed. For each objective (a NumPy BCE, PWiseR exact, PWiseR k=4):

* ``replay − native`` is the custom-objective path plus the different trees;
* ``replay(NumPy BCE) − native`` is the custom-objective path alone (BCE grows native's trees);
* ``objective − replay`` is the objective's own computation inside training;
* the trees' total node count says how much more tree the gradients ask for;
* the objective's calls are also timed one by one inside each fit (their sum, "timed calls"):
  unlike ``objective − replay``, a difference of two fits that scatter by ±10 % on this VM, this
  is not blurred by the trees' own time varying between passes.

Runs interleaved (native, …, native, …) after one warm-up pass; medians of ``--repeat`` passes (on
this VM one-thread fits of a few seconds scatter by ±20 % between passes, so use 9 or more).
Writes ``results/fit_gap_<regime>_<rows>.json``.

    python benchmarks/bench_fit_gap.py [--rows 300000] [--regime dense] [--rounds 50] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import NumpyBCE  # noqa: E402
from common import REGIMES, load_average, make_regime_data, write_result  # noqa: E402

from gbdt_pwiser import PWiseRObjective, initial_margin  # noqa: E402


class Recorder:
    """Wrap an objective and keep a copy of every round's gradient and Hessian."""

    def __init__(self, obj):
        self.obj, self.g, self.h = obj, [], []

    def __call__(self, predt, dtrain):
        g, h = self.obj(predt, dtrain)
        self.g.append(np.array(g, dtype=np.float32))
        self.h.append(np.array(h, dtype=np.float32))
        return g, h


class Replay:
    """A custom objective that returns recorded gradients: the same trees, no computation."""

    def __init__(self, rec: Recorder):
        self.g, self.h, self.i = rec.g, rec.h, 0

    def __call__(self, predt, dtrain):
        i, self.i = self.i, self.i + 1
        return self.g[i], self.h[i]


class Timed:
    """Time every call of a ``(predt, dtrain)`` objective (``.s``: seconds in all)."""

    def __init__(self, obj):
        self.obj, self.s = obj, 0.0

    def __call__(self, *args):
        t = time.perf_counter()
        out = self.obj(*args)
        self.s += time.perf_counter() - t
        return out


class TimedObjective(Timed):
    """:class:`Timed` for an ``xgboost.objective.Objective`` (called with the round, XGBoost >= 3.2)."""


def timed(obj):
    try:
        from xgboost.objective import Objective
    except ImportError:  # XGBoost < 3.2: every objective is called as (predt, dtrain)
        return Timed(obj)
    if not issubclass(TimedObjective, Objective):
        Objective.register(TimedObjective)
    return TimedObjective(obj) if isinstance(obj, Objective) else Timed(obj)


def _nodes(booster) -> int:
    return int(sum(d.count("\n") for d in booster.get_dump()))


def run(n, regime, rounds, repeat, threads, features=30):
    import xgboost as xgb

    X, y, group = make_regime_data(n, features, regime)
    click = (y >= 1).astype(np.float32)
    base = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "nthread": threads, "seed": 0, "max_bin": 256}
    custom = {**base, "base_score": initial_margin(y), "disable_default_eval_metric": 1}
    d_native = xgb.DMatrix(X, label=click, nthread=threads)
    d_pw = xgb.DMatrix(X, label=y, qid=group, nthread=threads)
    makers = {"NumPy BCE": NumpyBCE, "PWiseR exact": PWiseRObjective, "PWiseR k=4": lambda: PWiseRObjective(pairs=4)}

    # record each objective's gradients once (float32: what XGBoost keeps of them), and check that
    # replaying them grows the same model, bit for bit
    recorded, nodes = {}, {}
    ref = xgb.train({**base, "objective": "binary:logistic"}, d_native, rounds)
    nodes["native"] = _nodes(ref)
    for name, mk in makers.items():
        rec = Recorder(mk())
        b1 = xgb.train(custom, d_pw, rounds, obj=rec)
        b2 = xgb.train(custom, d_pw, rounds, obj=Replay(rec))
        if not np.array_equal(b1.predict(d_pw, output_margin=True), b2.predict(d_pw, output_margin=True)):
            raise RuntimeError(f"replaying {name}'s gradients grew a different model")
        recorded[name] = rec
        nodes[name] = _nodes(b1)

    variants = {"native": (d_native, {**base, "objective": "binary:logistic"}, None)}
    for name, mk in makers.items():
        variants[name] = (d_pw, custom, mk)
        variants[f"replay {name}"] = (d_pw, custom, lambda rec=recorded[name]: Replay(rec))
    times = {k: [] for k in variants}
    calls = {k: [] for k in variants if variants[k][2]}
    for rep in range(repeat + 1):  # the first pass warms caches and is dropped
        for name, (d, params, mk) in variants.items():
            obj = timed(mk()) if mk else None
            t = time.perf_counter()
            xgb.train(params, d, rounds, obj=obj)
            if rep:
                times[name].append(time.perf_counter() - t)
                if obj is not None:
                    calls[name].append(obj.s)
    med = {k: float(np.median(v)) for k, v in times.items()}
    med_calls = {k: float(np.median(v)) for k, v in calls.items()}
    rows = {}
    for name in makers:
        rows[name] = {
            "fit_s": med[name], "ratio": med[name] / med["native"],
            "replay_ratio": med[f"replay {name}"] / med["native"],
            "replay_s": med[f"replay {name}"],
            "objective_s": med[name] - med[f"replay {name}"],
            "custom_path_and_trees_s": med[f"replay {name}"] - med["native"],
            "nodes": nodes[name], "nodes_over_native": nodes[name] / nodes["native"],
            "timed_calls_s": med_calls[name], "timed_calls_over_native": med_calls[name] / med["native"],
            "replay_timed_calls_s": med_calls[f"replay {name}"],
        }
    path = med["replay NumPy BCE"] - med["native"]
    for r in rows.values():
        r["different_trees_s"] = r["custom_path_and_trees_s"] - path
    return {"native_s": med["native"], "native_nodes": nodes["native"], "custom_path_s": path,
            "rows": rows, "times_s": times, "calls_s": calls}


def markdown(r: dict) -> str:
    lines = [f"**Where the fit time goes** (XGBoost, {r['regime']} regime, {int(r['n']):,} rows × 30, "
             f"{r['rounds']} rounds, depth 6, {r['threads']} thread(s), median of {r['repeat']}; "
             f"load average {r['load_average']['before']} before, {r['load_average']['after']} after; "
             f"{r['date']}). Native `binary:logistic` {r['native_s']:.3f} s, {r['native_nodes']:,} tree nodes; "
             f"XGBoost's custom-objective path itself (replayed NumPy BCE − native) {r['custom_path_s']:+.3f} s.",
             "",
             "| objective | fit (s) | / native | replayed (no computation) / native | its computation (s) | "
             "its calls, timed in the fit (s) | timed calls / native | different trees (s) | tree nodes / native |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, v in r["rows"].items():
        timed_s = f"{v['timed_calls_s']:.3f}" if "timed_calls_s" in v else "–"
        timed_r = f"{v['timed_calls_over_native']:.3f}×" if "timed_calls_s" in v else "–"
        lines.append(f"| {name} | {v['fit_s']:.3f} | {v['ratio']:.3f}× | {v['replay_ratio']:.3f}× | "
                     f"{v['objective_s']:+.3f} | {timed_s} | {timed_r} | "
                     f"{v['different_trees_s']:+.3f} | {v['nodes_over_native']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--regime", default="dense", choices=list(REGIMES))
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    a = ap.parse_args(argv)
    if a.smoke:
        a.rows, a.rounds, a.repeat = 3000, 3, 1
    before = load_average()
    r = run(a.rows, a.regime, a.rounds, a.repeat, a.threads)
    r.update(n=a.rows, regime=a.regime, rounds=a.rounds, repeat=a.repeat, threads=a.threads,
             load_average={"before": before, "after": load_average()})
    if not a.smoke:
        path = write_result(f"fit_gap_{a.regime}_{a.rows}", r)
        r["date"] = json.loads(path.read_text())["date"]
    else:
        r["date"] = "smoke"
    print(markdown(r), flush=True)
    return r


if __name__ == "__main__":
    main()
