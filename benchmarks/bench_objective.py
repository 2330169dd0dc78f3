"""Objective time: ``grad_hess`` against a vectorised NumPy BCE-only gradient, and scaling.

Per-round cost (data prepared once, as inside ``xgb.train``) and a full
``grad_hess`` call (validation and preparation included), exact and k=4, groups
of ~25, against ``p = 1/(1+exp(-z)); g = p - c; h = p(1-p)`` on the same rows.
Writes ``results/objective.json``.

    python benchmarks/bench_objective.py [--rows 1000000 2000000 10000000] [--smoke]

``--compare-kernels OLD_CPU_PY`` instead times this tree's CPU kernels against
an older ``gbdt_pwiser/kernels/cpu.py`` (e.g. ``git show e57d3aa:gbdt_pwiser/kernels/cpu.py
> /tmp/old_cpu.py``) on the same data, interleaving old and new calls in one
process (robust to a loaded machine), and reports medians; results go to
``results/kernels_before_after.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_data, timeit, write_result  # noqa: E402

from gbdt_pwiser import PWiseRObjective, prepare_data  # noqa: E402


def numpy_bce(z: np.ndarray, c: np.ndarray):
    p = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    return p - c, p * (1.0 - p)


def funnel(n: int, ctr: float, cvr: float, group: int, seed: int = 0):
    """Labels with click rate ctr and conversion rate cvr among clicks, contiguous groups of `group` rows."""
    rng = np.random.default_rng(seed)
    click = rng.random(n) < ctr
    conv = click & (rng.random(n) < cvr)
    y = (click.astype(np.int8) + conv.astype(np.int8)).astype(np.int8)
    z = rng.normal(-2.0, 1.0, n).astype(np.float32)  # XGBoost's float32 margins
    return z, y, np.arange(0, n + group, group).clip(max=n)


def compare_kernels(old_path: str, rows: int, reps: int, group: int = 25) -> dict:
    """Median seconds per call of the old and the new CPU kernels, interleaved, one thread."""
    import numba

    from gbdt_pwiser._defaults import HESSIAN_FLOOR
    from gbdt_pwiser.kernels import cpu as new

    spec = importlib.util.spec_from_file_location("old_cpu_kernels", old_path)
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old  # Numba's cache needs the module importable by name
    spec.loader.exec_module(old)
    numba.set_num_threads(1)
    out = {"rows": rows, "group_size": group, "reps": reps, "threads": 1, "old": old_path, "cases": {}}
    for label, ctr, cvr in (("dense (CTR 10%, CVR 20%)", 0.10, 0.20), ("sparse (CTR 2.5%, CVR 2.5%)", 0.025, 0.025)):
        z, y, ptr = funnel(rows, ctr, cvr, group)
        data = prepare_data(y, group_ptr=ptr)
        a = np.random.default_rng(3).uniform(0.01, 0.99, rows)
        g = np.empty(rows)
        h = np.empty(rows)
        sc_c, sc_n = data.scales(1.0)
        key = new.round_key(0, 3)
        calls = {"bce_pass": lambda K: K.bce_pass(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g, h),
                 "esmm_pass": lambda K: K.esmm_pass(z, data.y, a, data.w, data.has_w, HESSIAN_FLOOR, g, h)}
        for name, kind, k in (("pairs sq_hinge exact", 0, 0), ("pairs logistic exact", 1, 0),
                              ("pairs sq_hinge k=4", 0, 4), ("pairs logistic k=4", 1, 4)):
            calls[name] = (lambda kind, k: lambda K: K.pair_pass(
                z, data.w, data.has_w, data.perm, data.aptr, data.anP, data.anC, data.pptr, sc_c, sc_n, 0.0, 0.0,
                kind, k, key, g, h, *data.scratch()))(kind, k)
        res = {}
        for name, call in calls.items():
            t = {"old": [], "new": []}
            vals = {}
            for which, K in (("old", old), ("new", new)):  # compile, and keep the outputs to compare
                g[:] = 0.0
                h[:] = 0.0
                call(K)
                vals[which] = (g.copy(), h.copy())
            for _ in range(reps):
                for which, K in (("old", old), ("new", new)):
                    t0 = time.perf_counter()
                    call(K)
                    t[which].append(time.perf_counter() - t0)
            mo, mn = float(np.median(t["old"])), float(np.median(t["new"]))
            same = bool(np.array_equal(vals["old"][0], vals["new"][0]) and np.array_equal(vals["old"][1], vals["new"][1]))
            res[name] = {"old_ms": 1e3 * mo, "new_ms": 1e3 * mn, "new_over_old": mn / mo, "bitwise_equal": same}
            print(f"{label:28s} {name:22s} old {1e3 * mo:8.2f} ms  new {1e3 * mn:8.2f} ms  "
                  f"new/old {mn / mo:5.2f}  equal={same}", flush=True)
        out["cases"][label] = {"active_groups": int(data.n_active_groups), "results": res}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000, 10_000_000])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--compare-kernels", metavar="OLD_CPU_PY", help="time old vs new CPU kernels (see above)")
    a = ap.parse_args(argv)
    if a.compare_kernels:
        n = 20_000 if a.smoke else a.rows[0]
        out = compare_kernels(a.compare_kernels, n, 2 if a.smoke else a.repeat)
        if not a.smoke:
            write_result("kernels_before_after", out)
        return out
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
