"""Where a PWiseR fit spends the time it adds over native, for XGBoost and LightGBM on T threads.

A PWiseR fit differs from a native one in three ways: the booster calls a Python objective every
round (margins out, gradients in), the objective computes its gradients, and those gradients grow
different trees. This benchmark separates the three by *replaying* gradients: a first fit records
each round's gradient and Hessian; a second fit gets them back from a custom objective that does
no work, so it grows exactly the same trees (checked: identical predictions) with the objective's
computation removed. For each objective (a NumPy BCE, PWiseR exact, PWiseR k=4):

* ``fit / replay`` is what the objective's computation costs inside training, its threads'
  interference with the booster's included: issue #23's goal, ≤ 1.06 for exact and k=4;
* ``replay − native`` is the custom-objective path plus the different trees;
* ``replay(NumPy BCE) − native`` is the custom-objective path alone (BCE grows native's trees);
* the trees' total node count says how much more tree the gradients ask for;
* the objective's calls are also timed one by one inside each fit ("timed calls"): unlike
  ``fit − replay``, a difference of two fits, this is not blurred by the trees' own time varying.

PWiseR with λ=0 (BCE only) is also fitted against the NumPy BCE objective (goal: ≤ 1.03). The
booster trains on ``--threads`` threads (XGBoost: ``nthread`` of the parameters and of the
``DMatrix``; LightGBM: ``num_threads``) and the objectives take the booster's threads (their
default, ``n_jobs=None``). Each fit's process CPU time is kept beside its wall time (threads that
spin burn CPU). Runs interleaved after one warm-up pass; medians of ``--repeat`` passes; the load
average before and after. Writes ``results/fit_gap_<backend>_<regime>_<rows>_t<threads>.json``.
Needs a quiet machine: on a loaded one, OpenMP fits on every core scatter by tens of per cent.

    python benchmarks/bench_fit_gap.py [--backends xgboost lightgbm] [--rows 300000] [--regime dense]
                                       [--rounds 40] [--repeat 9] [--threads 2] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import NumpyBCE, lgb_setup
from common import REGIMES, condition, load_average, make_regime_data, write_result

from gbdt_pwiser import PWiseRObjective, initial_margin

#: issue #23's goals: fit / replayed fit for PWiseR, λ=0 fit / NumPy BCE fit
GOALS = {"PWiseR exact": 1.06, "PWiseR k=4": 1.06, "PWiseR λ=0": 1.03}


class _Shared:
    """Kept, not copied, when LightGBM deep-copies its parameters (the objective among them)."""

    def __deepcopy__(self, memo):
        return self


class Recorder(_Shared):
    """Wrap an objective and keep a copy of every round's gradient and Hessian."""

    def __init__(self, obj):
        self.obj, self.g, self.h = obj, [], []

    def __call__(self, predt, data):
        g, h = self.obj(predt, data)
        self.g.append(np.array(g, dtype=np.float32))
        self.h.append(np.array(h, dtype=np.float32))
        return g, h


class Replay(_Shared):
    """A custom objective that returns recorded gradients: the same trees, no computation."""

    def __init__(self, rec: Recorder):
        self.g, self.h, self.i = rec.g, rec.h, 0

    def __call__(self, predt, data):
        i, self.i = self.i, self.i + 1
        return self.g[i], self.h[i]


class Timed(_Shared):
    """Time every call of a ``(predt, data)`` objective (``.s``: seconds in all)."""

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


MAKERS = {
    "NumPy BCE": NumpyBCE,
    "PWiseR exact": PWiseRObjective,
    "PWiseR k=4": lambda: PWiseRObjective(pairs=4),
    "PWiseR λ=0": lambda: PWiseRObjective(lam=0.0),
}
REPLAYED = ("NumPy BCE", "PWiseR exact", "PWiseR k=4")


class _XGB:
    """XGBoost: DMatrix with qid, hist trees of depth 6 on ``threads`` threads."""

    def __init__(self, X, y, group, threads, rounds):
        import xgboost as xgb

        self.xgb, self.rounds = xgb, rounds
        base = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "nthread": threads, "seed": 0, "max_bin": 256}
        self.native_params = {**base, "objective": "binary:logistic"}
        self.params = {**base, "base_score": initial_margin(y), "disable_default_eval_metric": 1}
        self.d_native = xgb.DMatrix(X, label=(y >= 1).astype(np.float32), nthread=threads)
        self.d = xgb.DMatrix(X, label=y, qid=group, nthread=threads)

    def native(self):
        return self.xgb.train(self.native_params, self.d_native, self.rounds)

    def fit(self, obj):
        return self.xgb.train(self.params, self.d, self.rounds, obj=obj)

    def margins(self, booster):
        return booster.predict(self.d, output_margin=True)

    @staticmethod
    def nodes(booster) -> int:
        return int(sum(d.count("\n") for d in booster.get_dump()))


class _LGB:
    """LightGBM: Dataset with group sizes, 63 leaves, depth 6, on ``threads`` threads."""

    def __init__(self, X, y, group, threads, rounds):
        import lightgbm as lgb

        self.lgb, self.rounds, self.X = lgb, rounds, X
        base, self.d_native, self.d = lgb_setup(X, y, group, threads)
        base = {**base, "deterministic": True}
        self.native_params = {**base, "objective": "binary"}
        self.params = base

    def native(self):
        return self.lgb.train(self.native_params, self.d_native, self.rounds)

    def fit(self, obj):
        return self.lgb.train({**self.params, "objective": obj}, self.d, self.rounds)

    def margins(self, booster):
        return booster.predict(self.X, raw_score=True)

    @staticmethod
    def nodes(booster) -> int:
        return int(sum(t["num_leaves"] * 2 - 1 for t in booster.dump_model()["tree_info"]))


BACKENDS = {"xgboost": _XGB, "lightgbm": _LGB}


def interleaved(b, variants: dict, repeat: int) -> tuple[dict, dict, dict]:
    """Fit every variant (name -> objective maker; None: the native objective) once a pass, for
    ``repeat`` passes after one that warms caches and is dropped. Per variant: the fits' wall
    seconds, process CPU seconds and seconds in the objective's timed calls (custom objectives)."""
    wall: dict = {k: [] for k in variants}
    cpu: dict = {k: [] for k in variants}
    calls: dict = {k: [] for k in variants if variants[k]}
    for rep in range(repeat + 1):
        for name, mk in variants.items():
            obj = timed(mk()) if mk else None
            c0, t = time.process_time(), time.perf_counter()
            b.native() if obj is None else b.fit(obj)
            w, proc = time.perf_counter() - t, time.process_time() - c0
            if rep:
                wall[name].append(w)
                cpu[name].append(proc)
                if obj is not None:
                    calls[name].append(obj.s)
    return wall, cpu, calls


def run(backend, n, regime, rounds, repeat, threads, features=30):
    X, y, group = make_regime_data(n, features, regime)
    b = BACKENDS[backend](X, y, group, threads, rounds)
    # record each replayed objective's gradients once (float32: what the boosters keep of them), and
    # check that replaying them grows the same model, bit for bit
    recorded, nodes = {}, {"native": b.nodes(b.native())}
    for name in REPLAYED:
        rec = Recorder(MAKERS[name]())
        b1, b2 = b.fit(rec), None
        b2 = b.fit(Replay(rec))
        if not np.array_equal(b.margins(b1), b.margins(b2)):
            raise RuntimeError(f"{backend}: replaying {name}'s gradients grew a different model")
        recorded[name] = rec
        nodes[name] = b.nodes(b1)
    nodes["PWiseR λ=0"] = b.nodes(b.fit(MAKERS["PWiseR λ=0"]()))

    variants = {"native": None, **MAKERS}
    for name in REPLAYED:
        variants[f"replay {name}"] = lambda rec=recorded[name]: Replay(rec)
    times, cpu, calls = interleaved(b, variants, repeat)
    med = {k: float(np.median(v)) for k, v in times.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    med_calls = {k: float(np.median(v)) for k, v in calls.items()}
    path = med["replay NumPy BCE"] - med["native"]
    rows = {}
    for name in MAKERS:
        ref = f"replay {name}" if name in REPLAYED else "NumPy BCE"
        r = {
            "fit_s": med[name],
            "ratio": med[name] / med["native"],
            "cpu_s": med_cpu[name],
            "nodes": nodes[name],
            "nodes_over_native": nodes[name] / nodes["native"],
            "timed_calls_s": med_calls[name],
            "timed_calls_over_native": med_calls[name] / med["native"],
            "reference": ref,
            "over_reference": med[name] / med[ref],
            "over_reference_paired": float(np.median(np.array(times[name]) / np.array(times[ref]))),
        }
        if name in REPLAYED:
            r.update(
                replay_s=med[ref],
                replay_ratio=med[ref] / med["native"],
                replay_cpu_s=med_cpu[ref],
                objective_s=med[name] - med[ref],
                custom_path_and_trees_s=med[ref] - med["native"],
                replay_timed_calls_s=med_calls[ref],
            )
            r["different_trees_s"] = r["custom_path_and_trees_s"] - path
        if name in GOALS:
            r["goal"] = GOALS[name]
            r["met"] = bool(r["over_reference"] <= GOALS[name])
        rows[name] = r
    return {
        "backend": backend,
        "native_s": med["native"],
        "native_cpu_s": med_cpu["native"],
        "native_nodes": nodes["native"],
        "custom_path_s": path,
        "rows": rows,
        "times_s": times,
        "cpu_s": cpu,
        "calls_s": calls,
    }


def markdown(r: dict) -> str:
    backend = r.get("backend", "xgboost")
    la = r["load_average"]
    cond = condition(la.get("before"), la.get("after"), r.get("machine", {}).get("cores"))
    lines = [
        f"**Where the fit time goes** ({backend}, {r['regime']} regime, {int(r['n']):,} rows × 30, "
        f"{r['rounds']} rounds, depth 6, booster and objective on {r['threads']} thread(s), median of "
        f"{r['repeat']}; load average {la['before']} before, {la['after']} after ({cond}); {r['date']}"
        + (f"; {r['machine']['cores']} cores, {r['machine']['cpu']}" if "machine" in r else "")
        + "). "
        f"Native {r['native_s']:.3f} s, {r['native_nodes']:,} tree nodes; the custom-objective path itself "
        f"(replayed NumPy BCE − native) {r['custom_path_s']:+.3f} s.",
        "",
        "| objective | fit (s) | / native | replayed / native | **fit / reference** (goal) | "
        "its computation (s) | its calls, timed (s) | different trees (s) | tree nodes / native | "
        "CPU s / wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in r["rows"].items():
        ref = v.get("reference", f"replay {name}")
        over = v.get("over_reference", v["fit_s"] / v["replay_s"] if "replay_s" in v else None)
        goal = f" (≤ {v['goal']}: {'met' if v['met'] else '**missed**'})" if "goal" in v else ""
        cell = "–" if over is None else f"{over:.3f}× of {ref}{goal}"
        lines.append(
            f"| {name} | {v['fit_s']:.3f} | {v['ratio']:.3f}× | "
            + (f"{v['replay_ratio']:.3f}× | " if "replay_ratio" in v else "– | ")
            + f"{cell} | "
            + (f"{v['objective_s']:+.3f} | " if "objective_s" in v else "– | ")
            + (f"{v['timed_calls_s']:.3f} | " if "timed_calls_s" in v else "– | ")
            + (f"{v['different_trees_s']:+.3f} | " if "different_trees_s" in v else "– | ")
            + f"{v['nodes_over_native']:.3f} | "
            + (f"{v['cpu_s'] / v['fit_s']:.2f} |" if "cpu_s" in v else "– |")
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--regime", default="dense", choices=list(REGIMES))
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    a = ap.parse_args(argv)
    if a.smoke:
        a.rows, a.rounds, a.repeat = 3000, 3, 1
    out = {}
    for backend in a.backends:
        before = load_average()
        r = run(backend, a.rows, a.regime, a.rounds, a.repeat, a.threads)
        r.update(
            n=a.rows,
            regime=a.regime,
            rounds=a.rounds,
            repeat=a.repeat,
            threads=a.threads,
            load_average={"before": before, "after": load_average()},
        )
        if not a.smoke:
            path = write_result(f"fit_gap_{backend}_{a.regime}_{a.rows}_t{a.threads}", r)
            r["date"] = json.loads(path.read_text())["date"]
            (path.with_suffix(".md")).write_text(markdown(r) + "\n")
        else:
            r["date"] = "smoke"
        print(markdown(r), flush=True)
        out[backend] = r
    return out


if __name__ == "__main__":
    main()
