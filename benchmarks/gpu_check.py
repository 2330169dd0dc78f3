"""One prepared GPU check of ``PWiseRObjective(device="cuda")`` (run by ``gpu_check.sh``).

Stages (each timed; the JSON result is rewritten after every stage, so a
timeout still leaves what was done):

1. ``env``      — versions, GPU name, whether ``device="cuda"`` can run.
2. ``equality`` — CPU vs GPU ``grad_hess`` at ``--check-rows`` rows (default
   1M, groups of ~25, float32 margins as XGBoost passes them): exact and
   ``pairs=4``, both pair losses, with weights, and one giant group
   (``group=None``, the row-parallel kernels) at ``--giant-rows``. Pass:
   ``allclose(rtol=1e-9, atol=1e-12·scale)``. Also times CPU vs GPU per call.
3. ``fit``      — ``xgb.train`` with ``device="cuda"``, ``tree_method="hist"``
   at ``--fit-rows`` × ``--features`` (default 10M × 30, 50 rounds, depth 6):
   native ``binary:logistic`` vs PWiseR on the GPU (exact and ``pairs=4``) and
   PWiseR computed on the CPU; prints the time ratios to native.

``--cpu-smoke`` runs the same flow small (10k rows, 5 rounds) with XGBoost on
the CPU; the equality stage then runs in numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` (at ``--sim-rows``) and is skipped otherwise.
``--dry-run`` only prints the plan and the environment.

Exit status: 0 when every stage ran and every equality check passed, else 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODULES = ("numpy", "numba", "llvmlite", "numba_cuda", "cuda.bindings", "xgboost", "scipy", "sklearn", "pandas")


# --------------------------------------------------------------------------- utilities


class Recorder:
    """Collects results and rewrites the JSON file after every stage."""

    def __init__(self, path: Path, args: argparse.Namespace) -> None:
        self.path = path
        self.t0 = time.perf_counter()
        self.data: dict[str, Any] = {"args": vars(args), "stages": {}, "ok": None}

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - self.t0, 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_jsonable))
        tmp.replace(self.path)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def log(msg: str) -> None:
    print(msg, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def make_data(n: int, n_features: int, group_size: float, seed: int, features: bool = True):
    """Funnel labels from a logistic model, sorted groups of ~group_size rows (qid), float32 X."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features), dtype=np.float32) if features else None
    if X is not None:
        s_click = X[:, 0] - 0.7 * X[:, 1] + 0.5 * X[:, 2] * X[:, 3] - 2.0
        s_conv = 0.8 * X[:, 4] + 0.6 * X[:, 0] - 1.5
    else:
        s_click = rng.standard_normal(n) - 2.0
        s_conv = rng.standard_normal(n) - 1.5
    click = rng.random(n) < 1.0 / (1.0 + np.exp(-s_click))
    conv = click & (rng.random(n) < 1.0 / (1.0 + np.exp(-s_conv)))
    y = (click.astype(np.int8) + conv.astype(np.int8)).astype(np.int8)
    sizes = rng.integers(max(1, int(group_size * 0.5)), int(group_size * 1.5) + 1, n // max(1, int(group_size)) + 2)
    qid = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)[:n]
    return X, y, qid


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC with tied scores sharing their mean rank (numpy only)."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    pos = label[order].astype(bool)
    ends = np.r_[np.flatnonzero(np.diff(s) != 0) + 1, s.size]
    starts = np.r_[0, ends[:-1]]
    ranks = np.repeat(0.5 * (starts + ends - 1) + 1.0, ends - starts)
    n1 = int(pos.sum())
    n0 = s.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --------------------------------------------------------------------------- stages


def stage_env(rec: Recorder) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cores": os.cpu_count(),
                            "NUMBA_ENABLE_CUDASIM": os.environ.get("NUMBA_ENABLE_CUDASIM", "")}
    versions = {}
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
            versions[name] = getattr(mod, "__version__", "present")
        except Exception as exc:  # noqa: BLE001 - report, don't fail
            versions[name] = f"MISSING ({type(exc).__name__}: {exc})"
    info["versions"] = versions
    from gbdt_pwiser.kernels import cuda as gpu

    ok, why = gpu.cuda_status()
    info["cuda_ok"], info["cuda_mode"] = ok, why
    if ok and why == "gpu":
        try:
            dev = gpu.cuda.get_current_device()
            info["gpu"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
            info["compute_capability"] = list(dev.compute_capability)
        except Exception as exc:  # noqa: BLE001
            info["gpu"] = f"unknown ({exc})"
    return info


def _compare(g: np.ndarray, gc: np.ndarray, h: np.ndarray, hc: np.ndarray) -> dict[str, Any]:
    scale = max(1.0, float(np.abs(gc).max(initial=0.0)), float(np.abs(hc).max(initial=0.0)))
    ok = bool(np.allclose(g, gc, rtol=1e-9, atol=1e-12 * scale) and np.allclose(h, hc, rtol=1e-9, atol=1e-12 * scale))
    rel_g = float(np.max(np.abs(g - gc) / (np.abs(gc) + 1e-12 * scale), initial=0.0))
    rel_h = float(np.max(np.abs(h - hc) / (np.abs(hc) + 1e-12 * scale), initial=0.0))
    return {"ok": ok, "max_abs_diff_grad": float(np.abs(g - gc).max(initial=0.0)),
            "max_abs_diff_hess": float(np.abs(h - hc).max(initial=0.0)),
            "max_rel_diff_grad": rel_g, "max_rel_diff_hess": rel_h,
            "bitwise_equal": bool(np.array_equal(g, gc) and np.array_equal(h, hc)),
            "hess_min": float(h.min(initial=np.inf)), "finite": bool(np.isfinite(g).all() and np.isfinite(h).all())}


def stage_equality(rec: Recorder, args: argparse.Namespace, n: int, giant: int) -> dict[str, Any]:
    from gbdt_pwiser import PWiseRObjective, prepare_data
    from gbdt_pwiser.kernels import cuda as gpu

    out: dict[str, Any] = {"rows": n, "giant_rows": giant, "cases": []}
    _, y, qid = make_data(n, 0, args.group_size, seed=1, features=False)
    rng = np.random.default_rng(2)
    z = (rng.standard_normal(n) * 1.5 - 2.0).astype(np.float32)  # XGBoost passes float32 margins
    w = rng.uniform(0.2, 3.0, n)
    ptr = np.r_[0, np.flatnonzero(np.diff(qid)) + 1, n].astype(np.int64)
    grouped = prepare_data(y, group_ptr=ptr)
    grouped_w = prepare_data(y, weight=w, group_ptr=ptr)
    yg = y[:giant]
    zg = z[:giant]
    giant_data = prepare_data(yg, None)
    cases = [
        ("sq_all", dict(pair_loss="squared_hinge", pairs="all"), grouped, z),
        ("logistic_all", dict(pair_loss="logistic", pairs="all"), grouped, z),
        ("sq_k4", dict(pair_loss="squared_hinge", pairs=4), grouped, z),
        ("logistic_k4", dict(pair_loss="logistic", pairs=4), grouped, z),
        ("sq_all_weighted", dict(pair_loss="squared_hinge", pairs="all"), grouped_w, z),
        ("logistic_k4_weighted", dict(pair_loss="logistic", pairs=4), grouped_w, z),
        ("giant_sq_all", dict(pair_loss="squared_hinge", pairs="all"), giant_data, zg),
        ("giant_sq_k4", dict(pair_loss="squared_hinge", pairs=4), giant_data, zg),
        ("giant_logistic_k4", dict(pair_loss="logistic", pairs=4), giant_data, zg),
    ]
    for name, kw, data, zz in cases:
        if rec.elapsed() > args.budget_s * 0.45:
            out["cases"].append({"case": name, "skipped": "time budget"})
            continue
        t_case = time.perf_counter()
        cpu_obj = PWiseRObjective(random_state=5, **kw)
        gpu_obj = PWiseRObjective(random_state=5, device="cuda", **kw)
        it = 3
        (gc, hc), t_cpu_first = timed(lambda: cpu_obj.grad_hess_prepared(zz, data, it))
        (gd, hd), t_gpu_first = timed(lambda: gpu.pwiser_grad_hess_cuda(gpu_obj, zz, data, it))
        g, h = gd.copy_to_host(), hd.copy_to_host()
        res = {"case": name, **kw, "rows": int(zz.size), "active_groups": data.n_active_groups,
               **_compare(g, gc, h, hc), "first_call_s": {"cpu": t_cpu_first, "gpu": t_gpu_first}}
        # warm timings: CPU, GPU from host margins, GPU from device margins (kernels only)
        reps = args.reps
        _, t_cpu = timed(lambda: [cpu_obj.grad_hess_prepared(zz, data, it) for _ in range(reps)])
        _, t_gpu = timed(lambda: [gpu.pwiser_grad_hess_cuda(gpu_obj, zz, data, it, reuse=True) for _ in range(reps)])
        zdev = gpu.cuda.to_device(zz)
        _, t_dev = timed(lambda: [gpu.pwiser_grad_hess_cuda(gpu_obj, zdev, data, it, reuse=True) for _ in range(reps)])
        res["per_call_s"] = {"cpu": t_cpu / reps, "gpu_host_margins": t_gpu / reps, "gpu_device_margins": t_dev / reps}
        res["speedup_gpu_vs_cpu"] = (t_cpu / t_gpu) if t_gpu > 0 else None
        res["case_s"] = time.perf_counter() - t_case
        out["cases"].append(res)
        log(f"  {name:22s} ok={res['ok']!s:5s} maxrel g={res['max_rel_diff_grad']:.2e} h={res['max_rel_diff_hess']:.2e}"
            f"  cpu {1e3 * t_cpu / reps:8.2f} ms  gpu {1e3 * t_gpu / reps:8.2f} ms"
            f"  (device margins {1e3 * t_dev / reps:7.2f} ms)")
        rec.save()
    out["ok"] = all(c.get("ok", True) for c in out["cases"])
    return out


def stage_fit(rec: Recorder, args: argparse.Namespace, n: int, rounds: int, device: str, obj_device: str
              ) -> dict[str, Any]:
    import xgboost as xgb

    from gbdt_pwiser import PWiseRObjective, initial_margin

    out: dict[str, Any] = {"rows": n, "features": args.features, "rounds": rounds, "depth": args.depth,
                           "xgb_device": device, "objective_device": obj_device, "runs": {}}
    (X, y, qid), t_data = timed(lambda: make_data(n, args.features, args.group_size, seed=3))
    click = (y >= 1).astype(np.float32)
    out["data_s"] = t_data
    out["click_rate"] = float(click.mean())
    out["conversion_rate"] = float((y == 2).mean())
    log(f"  data {n} x {args.features}: {t_data:.1f} s (click rate {click.mean():.3f})")
    dtrain, t_dm = timed(lambda: xgb.QuantileDMatrix(X, label=click, qid=qid, max_bin=256))
    out["dmatrix_s"] = t_dm
    log(f"  QuantileDMatrix: {t_dm:.1f} s")
    base = {"device": device, "tree_method": "hist", "max_depth": args.depth, "eta": 0.1, "max_bin": 256,
            "verbosity": 0}
    b0 = initial_margin(y)
    sub = np.random.default_rng(0).choice(n, size=min(n, 1_000_000), replace=False)
    runs: list[tuple[str, dict, Any, np.ndarray]] = [
        ("native_binary_logistic", {**base, "objective": "binary:logistic"}, None, click),
        ("pwiser_gpu_exact", {**base, "base_score": b0, "disable_default_eval_metric": 1},
         lambda: PWiseRObjective(device=obj_device), y),
        ("pwiser_gpu_k4", {**base, "base_score": b0, "disable_default_eval_metric": 1},
         lambda: PWiseRObjective(device=obj_device, pairs=4), y),
        ("pwiser_cpu_objective_exact", {**base, "base_score": b0, "disable_default_eval_metric": 1},
         lambda: PWiseRObjective(device="cpu"), y),
    ]
    for name, params, make_obj, label in runs:
        if rec.elapsed() > args.budget_s * 0.92:
            out["runs"][name] = {"skipped": "time budget"}
            continue
        dtrain.set_label(label)
        # warm-up: JIT compilation (CPU and CUDA kernels) and XGBoost's first-iteration set-up
        _, t_warm = timed(lambda: xgb.train(params, dtrain, num_boost_round=2,
                                            obj=make_obj() if make_obj else None))
        obj = make_obj() if make_obj else None
        bst, t_fit = timed(lambda: xgb.train(params, dtrain, num_boost_round=rounds, obj=obj))
        margin = bst.predict(xgb.DMatrix(X[sub]), output_margin=True)
        res = {"fit_s": t_fit, "warmup_2_rounds_s": t_warm, "per_round_s": t_fit / rounds,
               "train_auc_click_1M": auc(margin, click[sub]),
               "train_auc_conversion_1M": auc(margin, (y[sub] == 2).astype(np.int8))}
        out["runs"][name] = res
        log(f"  {name:28s} fit {t_fit:7.2f} s ({1e3 * t_fit / rounds:7.1f} ms/round)  "
            f"AUC click {res['train_auc_click_1M']:.4f} conv {res['train_auc_conversion_1M']:.4f}")
        rec.save()
        del bst
    nat = out["runs"].get("native_binary_logistic", {}).get("fit_s")
    if nat:
        out["ratio_to_native"] = {k: v["fit_s"] / nat for k, v in out["runs"].items() if "fit_s" in v}
        for k, r in out["ratio_to_native"].items():
            log(f"  ratio {k:28s} / native = {r:.2f}")
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    default_out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else \
        ROOT / "benchmarks" / "results" / "gpu_check.json"
    p.add_argument("--out", type=Path, default=default_out, help="JSON result file (default: $OUT/gpu_check.json "
                   "or benchmarks/results/gpu_check.json)")
    p.add_argument("--check-rows", type=int, default=1_000_000)
    p.add_argument("--giant-rows", type=int, default=200_000, help="rows of the one-group (group=None) cases")
    p.add_argument("--sim-rows", type=int, default=3_000, help="rows of the equality stage in the CUDA simulator")
    p.add_argument("--fit-rows", type=int, default=10_000_000)
    p.add_argument("--features", type=int, default=30)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--group-size", type=float, default=25.0)
    p.add_argument("--reps", type=int, default=5, help="calls per warm grad_hess timing")
    p.add_argument("--budget-s", type=float, default=280.0, help="skip remaining work after this much time")
    p.add_argument("--skip-check", action="store_true", help="skip the equality stage")
    p.add_argument("--skip-fit", action="store_true", help="skip the XGBoost fit stage")
    p.add_argument("--cpu-smoke", action="store_true", help="small run without a GPU (XGBoost on the CPU)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the environment only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpu_smoke:
        args.check_rows = min(args.check_rows, 10_000)
        args.giant_rows = min(args.giant_rows, 2_000)
        args.fit_rows = min(args.fit_rows, 10_000)
        args.rounds = min(args.rounds, 5)
        args.reps = 1
    rec = Recorder(args.out, args)
    failed = False

    def run(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        nonlocal failed
        log(f"== {name}")
        t = time.perf_counter()
        try:
            res = fn()
        except Exception as exc:  # noqa: BLE001 - record and go on
            failed = True
            rec.data["stages"][name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            log(f"  FAILED: {type(exc).__name__}: {exc}")
            rec.save()
            return None
        res["stage_s"] = round(time.perf_counter() - t, 2)
        rec.data["stages"][name] = res
        rec.save()
        return res

    env = run("env", lambda: stage_env(rec))
    if env is not None:
        for k, v in env["versions"].items():
            log(f"  {k:14s} {v}")
        log(f"  cuda: {env['cuda_ok']} ({env['cuda_mode']}) {env.get('gpu', '')}")
    cuda_ok = bool(env and env["cuda_ok"])
    real_gpu = cuda_ok and env["cuda_mode"] == "gpu"
    simulator = cuda_ok and env["cuda_mode"] == "simulator"

    check_rows = args.sim_rows if simulator else args.check_rows
    giant_rows = min(args.giant_rows, args.sim_rows) if simulator else args.giant_rows
    fit_device = "cuda" if (real_gpu and not args.cpu_smoke) else "cpu"
    plan = {"equality": None if args.skip_check else {"rows": check_rows, "giant_rows": giant_rows,
                                                      "runs_on": env["cuda_mode"] if cuda_ok else "skipped"},
            "fit": None if args.skip_fit else {"rows": args.fit_rows, "features": args.features,
                                               "rounds": args.rounds, "depth": args.depth,
                                               "xgb_device": fit_device, "objective_device": fit_device}}
    rec.data["plan"] = plan
    log(f"== plan: {json.dumps(plan)}")
    if args.dry_run:
        rec.data["ok"] = not failed
        rec.save()
        log(f"dry run; wrote {args.out}")
        return 0 if not failed else 1

    if not args.skip_check:
        if cuda_ok:
            res = run("equality", lambda: stage_equality(rec, args, check_rows, giant_rows))
            failed |= res is None or not res["ok"]
        else:
            rec.data["stages"]["equality"] = {"skipped": env["cuda_mode"] if env else "no environment"}
            log(f"== equality skipped: {rec.data['stages']['equality']['skipped']}")
            failed |= not args.cpu_smoke  # a real check needs the GPU
    if not args.skip_fit:
        if not real_gpu and not args.cpu_smoke:
            rec.data["stages"]["fit"] = {"skipped": "no real GPU (use --cpu-smoke for a CPU run)"}
            log("== fit skipped: no real GPU")
            failed = True
        else:
            res = run("fit", lambda: stage_fit(rec, args, args.fit_rows, args.rounds, fit_device, fit_device))
            failed |= res is None
    rec.data["ok"] = not failed
    rec.save()
    log(f"== {'OK' if not failed else 'FAILED'} in {rec.elapsed():.1f} s; wrote {args.out}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
