"""One prepared GPU check of ``device="cuda"`` (run by ``gpu_check.sh``): every figure in one run.

Stages (the JSON result is rewritten after each, so a timeout keeps what was done):

1. ``env``       — versions, GPU name and compute capability, and which modules
   ``import gbdt_pwiser.objectives`` pulled in (must be neither xgboost nor lightgbm).
2. ``bandwidth`` — the card's memory bandwidth, measured here: device-to-device
   copies of ``--bw-mib`` MiB (numba-cuda, and CuPy when installed); GB/s =
   2 x bytes / time (read + write).
3. ``kernels``   — for each of ``--rows`` (default 1M and 10M rows, groups of ~25,
   10 % CTR, 20 % of clicks convert): exact and sampled (``pairs=4``) pairs, both
   pair losses, float32 and float64 margins: GPU ``grad_hess`` against the CPU
   (pass: ``allclose(rtol=1e-9, atol=1e-12 scale)``), then the kernels' time
   from device margins and their throughput GB/s = bytes per call / time, where
   bytes is the minimum traffic (each row's margin, label, [weight], gradient and
   Hessian once; each active row's ``perm`` entry, margin and gradient/Hessian
   read-modify-write once more), reported against the measured bandwidth. Plus
   the BCE-only pass (lam=0, pure streaming) and one giant group (``group=None``:
   the row-parallel kernels) at ``--giant-rows``.
4. ``fit``       — when ``import xgboost`` works: ``xgb.train`` with
   ``device="cuda"`` at ``--fit-rows`` x ``--features`` (10M x 30, ``--rounds``
   50, depth 6): native ``binary:logistic`` against PWiseR with the objective on
   the GPU, with the host<->device copies per round counted. Skipped with a
   clear line when XGBoost is not installed.

``--cpu-smoke`` runs the whole flow at tiny sizes without a GPU: under
``NUMBA_ENABLE_CUDASIM=1`` the CUDA kernels run in numba's simulator and XGBoost
(if importable) on the CPU. ``--dry-run`` stops after the plan.
Exit status 0 when every stage that ran passed.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODULES = ("numpy", "numba", "llvmlite", "numba_cuda", "cuda.bindings", "cupy", "xgboost", "sklearn", "pandas")


class Recorder:
    """Collects results and rewrites the JSON file after every stage."""

    def __init__(self, path: Path, args: argparse.Namespace) -> None:
        self.path = path
        self.t0 = time.perf_counter()
        self.data: dict[str, Any] = {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "stages": {},
            "ok": None,
        }

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - self.t0, 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_jsonable))
        tmp.replace(self.path)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def log(msg: str) -> None:
    print(msg, flush=True)


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``; the arguments are bound by the call, not looked up later."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def repeated(reps: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
    """``fn(*args, **kwargs)`` called ``reps`` times."""
    return [fn(*args, **kwargs) for _ in range(reps)]


def funnel(n: int, seed: int, ctr: float = 0.10, cvr: float = 0.20, group: int = 25):
    """Labels (10 % clicks, 20 % of them convert), contiguous groups of `group` rows (ptr), margins."""
    rng = np.random.default_rng(seed)
    click = rng.random(n) < ctr
    conv = click & (rng.random(n) < cvr)
    y = (click.astype(np.int8) + conv.astype(np.int8)).astype(np.int8)
    z = rng.normal(-2.0, 1.5, n)
    return y, z, np.arange(0, n + group, group).clip(max=n).astype(np.int64)


# --------------------------------------------------------------------------- stages


def stage_env() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "NUMBA_ENABLE_CUDASIM": os.environ.get("NUMBA_ENABLE_CUDASIM", ""),
    }
    before = set(sys.modules)
    import gbdt_pwiser.objectives  # noqa: F401 - what does the objective layer pull in?

    pulled = set(sys.modules) - before
    info["objectives_import_pulled"] = sorted(
        m for m in ("xgboost", "lightgbm", "sklearn", "pandas", "numba.cuda") if m in pulled
    )
    versions = {}
    for name in MODULES:
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "present")
        except Exception as exc:  # report, don't fail
            versions[name] = f"MISSING ({type(exc).__name__})"
    info["versions"] = versions
    from gbdt_pwiser.kernels import cuda as kc

    ok, why = kc.cuda_status()
    info["cuda_ok"], info["cuda_mode"] = ok, why
    if ok and why == "gpu":
        dev = kc.cuda.get_current_device()
        info["gpu"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        info["compute_capability"] = list(dev.compute_capability)
    return info


def stage_bandwidth(args: argparse.Namespace, simulator: bool) -> dict[str, Any]:
    from gbdt_pwiser.kernels import cuda as kc

    cuda = kc.get_cuda()
    n = (1 << 17) if simulator else (args.bw_mib << 20) // 8
    a = cuda.to_device(np.ones(n))
    b = cuda.device_array(n)
    reps = 2 if simulator else 20
    b.copy_to_device(a)
    cuda.synchronize()
    _, t = timed(lambda: ([b.copy_to_device(a) for _ in range(reps)], cuda.synchronize()))
    out = {"bytes": 8 * n, "reps": reps, "numba_copy_GBps": 2 * 8 * n * reps / t / 1e9}
    log(f"  numba-cuda device copy {8 * n >> 20} MiB: {out['numba_copy_GBps']:.1f} GB/s")
    if not simulator:
        try:
            import cupy as cp

            x = cp.ones(n)
            y = cp.empty_like(x)
            cp.copyto(y, x)
            cp.cuda.Device().synchronize()
            start, stop = cp.cuda.Event(), cp.cuda.Event()
            start.record()
            for _ in range(reps):
                cp.copyto(y, x)
            stop.record()
            stop.synchronize()
            out["cupy_copy_GBps"] = 2 * 8 * n * reps / (cp.cuda.get_elapsed_time(start, stop) / 1e3) / 1e9
            log(f"  cupy device copy: {out['cupy_copy_GBps']:.1f} GB/s")
        except Exception as exc:  # optional second figure
            out["cupy"] = f"not measured ({type(exc).__name__}: {exc})"
    out["reference_GBps"] = max(out.get("cupy_copy_GBps", 0.0), out["numba_copy_GBps"])
    return out


def _compare(g, gc, h, hc) -> dict[str, Any]:
    scale = max(1.0, float(np.abs(gc).max(initial=0.0)), float(np.abs(hc).max(initial=0.0)))
    ok = bool(np.allclose(g, gc, rtol=1e-9, atol=1e-12 * scale) and np.allclose(h, hc, rtol=1e-9, atol=1e-12 * scale))
    rel = lambda a, b: float(np.max(np.abs(a - b) / (np.abs(b) + 1e-12 * scale), initial=0.0))
    return {
        "ok": ok and bool(np.isfinite(g).all() and np.isfinite(h).all()),
        "max_rel_diff_grad": rel(g, gc),
        "max_rel_diff_hess": rel(h, hc),
        "bitwise_equal": bool(np.array_equal(g, gc) and np.array_equal(h, hc)),
    }


def traffic_bytes(data: Any, zbytes: int, lam: float) -> int:
    """Minimum bytes one grad_hess call must move (see the module docstring)."""
    n, wb = data.n, 8 if data.has_w else 0
    total = n * (zbytes + 1 + wb + 16)  # BCE: z, y, [w] in; g, h out
    if lam > 0.0:
        active = int(data.perm.size)
        total += active * (8 + zbytes + wb + 32)  # perm, z, [w]; g, h read and written
    return total


def stage_kernels(
    rec: Recorder, args: argparse.Namespace, rows: list[int], giant: int, bw: float | None
) -> dict[str, Any]:
    from gbdt_pwiser import PWiseRObjective, prepare_data
    from gbdt_pwiser.kernels import cuda as kc
    from gbdt_pwiser.objectives import _cuda as gpu

    cuda = kc.get_cuda()
    out: dict[str, Any] = {"reference_GBps": bw, "cases": []}
    configs = [("bce_only", dict(lam=0.0))]
    for loss in ("squared_hinge", "logistic"):
        configs += [(f"{loss}_exact", dict(pair_loss=loss)), (f"{loss}_k4", dict(pair_loss=loss, pairs=4))]
    for n, is_giant in [(r, False) for r in rows] + [(giant, True)]:
        y, z64, ptr = funnel(n, seed=n)
        data = prepare_data(y, None) if is_giant else prepare_data(y, group_ptr=ptr)
        label = "giant_group" if is_giant else "groups_of_25"
        for margin in ("float32", "float64"):
            z = z64.astype(margin)
            zdev = cuda.to_device(z)
            for name, kw in configs:
                if is_giant and name == "bce_only":
                    continue
                if rec.elapsed() > args.budget_s * 0.6:
                    out["cases"].append({"case": name, "rows": n, "margin": margin, "skipped": "time budget"})
                    continue
                cpu_obj = PWiseRObjective(random_state=5, **kw)
                gpu_obj = PWiseRObjective(random_state=5, device="cuda", **kw)
                (gc, hc), t_cpu = timed(cpu_obj.grad_hess_prepared, z, data, 3)
                (gd, hd), t_first = timed(gpu.pwiser_grad_hess_cuda, gpu_obj, z, data, 3)
                res = {
                    "case": name,
                    "layout": label,
                    "rows": n,
                    "margin": margin,
                    "active_groups": data.n_active_groups,
                    **_compare(gd.copy_to_host(), gc, hd.copy_to_host(), hc),
                    "cpu_s": t_cpu,
                    "gpu_first_call_s": t_first,
                }
                reps = args.reps
                _, t_dev = timed(repeated, reps, gpu.pwiser_grad_hess_cuda, gpu_obj, zdev, data, 3, reuse=True)
                _, t_host = timed(repeated, reps, gpu.pwiser_grad_hess_cuda, gpu_obj, z, data, 3, reuse=True)
                nbytes = traffic_bytes(data, z.itemsize, kw.get("lam", 1.0))
                res.update(
                    gpu_device_margins_s=t_dev / reps,
                    gpu_host_margins_s=t_host / reps,
                    bytes=nbytes,
                    kernel_GBps=nbytes / (t_dev / reps) / 1e9,
                )
                if bw:
                    res["fraction_of_bandwidth"] = res["kernel_GBps"] / bw
                out["cases"].append(res)
                log(
                    f"  {label:12s} {n:>9} {margin} {name:22s} ok={res['ok']!s:5s} "
                    f"rel g={res['max_rel_diff_grad']:.1e} h={res['max_rel_diff_hess']:.1e}  cpu {1e3 * t_cpu:8.2f} ms"
                    f"  gpu {1e3 * t_dev / reps:7.3f} ms ({res['kernel_GBps']:7.1f} GB/s"
                    + (f", {100 * res['fraction_of_bandwidth']:.0f} % of copy)" if bw else ")")
                )
                rec.save()
    out["ok"] = all(c.get("ok", True) for c in out["cases"])
    out["launch_signatures_declared"] = _check_signatures(kc)
    return out


def _check_signatures(kc: Any) -> Any:
    """On a GPU: every signature the launches compiled is one the gpu_compile tests compile."""
    if kc.is_simulator():
        return "not checked (simulator)"
    declared = {n: {tuple(map(str, kc.KERNEL_SIGNATURES(m)[n])) for m in ("float32", "float64")} for n in kc.KERNELS}
    extra = {
        n: [list(map(str, s)) for s in getattr(kc.kernels(), n).signatures if tuple(map(str, s)) not in declared[n]]
        for n in kc.KERNELS
    }
    extra = {n: s for n, s in extra.items() if s}
    return True if not extra else {"undeclared": extra}


def stage_fit(rec: Recorder, args: argparse.Namespace, xgb_device: str, obj_device: str) -> dict[str, Any]:
    import xgboost as xgb

    from gbdt_pwiser import PWiseRObjective, initial_margin
    from gbdt_pwiser.objectives import _cuda as gpu

    n, rounds = args.fit_rows, args.rounds
    out: dict[str, Any] = {
        "rows": n,
        "features": args.features,
        "rounds": rounds,
        "depth": args.depth,
        "xgb_device": xgb_device,
        "objective_device": obj_device,
        "xgboost": xgb.__version__,
        "runs": {},
    }
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, args.features), dtype=np.float32)
    click = rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - 0.7 * X[:, 1] - 2.0)))
    conv = click & (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 4] - 1.5))))
    y = (click.astype(np.int8) + conv.astype(np.int8)).astype(np.int8)
    qid = np.arange(n) // 25
    dtrain = xgb.QuantileDMatrix(X, label=y, qid=qid, max_bin=256)
    base = {
        "device": xgb_device,
        "tree_method": "hist",
        "max_depth": args.depth,
        "eta": 0.1,
        "max_bin": 256,
        "verbosity": 0,
    }
    seen: dict[str, Any] = {}

    class Counting(PWiseRObjective):
        """Records what XGBoost hands the objective (host numpy or device array)."""

        def __call__(self, *args):  # (predt, dmat), or (iteration, predt, dmat) from XGBoost >= 3.2
            predt = args[-2]
            seen["predt"] = f"{type(predt).__module__}.{type(predt).__name__} {predt.dtype}"
            seen["predt_on_device"] = hasattr(predt, "__cuda_array_interface__")
            return super().__call__(*args)

    runs = [
        ("native_binary_logistic", {**base, "objective": "binary:logistic"}, None),
        (
            "pwiser_gpu_exact",
            {**base, "base_score": initial_margin(y), "disable_default_eval_metric": 1},
            lambda: Counting(device=obj_device),
        ),
        (
            "pwiser_gpu_k4",
            {**base, "base_score": initial_margin(y), "disable_default_eval_metric": 1},
            lambda: Counting(device=obj_device, pairs=4),
        ),
    ]
    for name, params, make in runs:
        if rec.elapsed() > args.budget_s * 0.9:
            out["runs"][name] = {"skipped": "time budget"}
            continue
        if make is None:
            dtrain.set_label(click.astype(np.float32))
        else:
            dtrain.set_label(y)
        _, t_warm = timed(xgb.train, params, dtrain, num_boost_round=2, obj=make() if make else None)
        obj = make() if make else None
        c0 = dict(gpu.COPIES)
        bst, t_fit = timed(xgb.train, params, dtrain, num_boost_round=rounds, obj=obj)
        res: dict[str, Any] = {"fit_s": t_fit, "per_round_ms": 1e3 * t_fit / rounds, "warmup_2_rounds_s": t_warm}
        if make is not None:
            h2d = gpu.COPIES["margin_h2d"] - c0["margin_h2d"]
            res["copies_per_round"] = {
                "margins_device_to_host_in_xgboost": 1 if not seen.get("predt_on_device") else 0,
                "margins_host_to_device_in_objective": h2d / rounds,
                "margin_bytes_host_to_device_per_round": (gpu.COPIES["margin_h2d_bytes"] - c0["margin_h2d_bytes"])
                / rounds,
                "gradients_device_to_host": gpu.COPIES["grad_d2h"] - c0["grad_d2h"],
                "predt_received": seen.get("predt"),
            }
        out["runs"][name] = res
        log(
            f"  {name:24s} fit {t_fit:8.2f} s ({res['per_round_ms']:8.1f} ms/round)"
            + (f"  copies/round {res['copies_per_round']}" if make else "")
        )
        rec.save()
        del bst
    nat = out["runs"].get("native_binary_logistic", {}).get("fit_s")
    if nat:
        out["ratio_to_native"] = {k: v["fit_s"] / nat for k, v in out["runs"].items() if "fit_s" in v}
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_out = (
        Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "benchmarks" / "results"
    ) / "gpu_check.json"
    p.add_argument(
        "--out",
        type=Path,
        default=default_out,
        help="JSON result (default $OUT/gpu_check.json, else benchmarks/results/gpu_check.json)",
    )
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--giant-rows", type=int, default=1_000_000, help="rows of the one-group (group=None) cases")
    p.add_argument("--fit-rows", type=int, default=10_000_000)
    p.add_argument("--features", type=int, default=30)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--reps", type=int, default=10, help="calls per kernel timing")
    p.add_argument("--bw-mib", type=int, default=1024, help="MiB copied by the bandwidth measurement")
    p.add_argument("--budget-s", type=float, default=540.0, help="start no new work after about this long")
    p.add_argument("--skip-fit", action="store_true")
    p.add_argument("--cpu-smoke", action="store_true", help="tiny sizes, no GPU (CUDA simulator, XGBoost on CPU)")
    p.add_argument("--dry-run", action="store_true", help="stop after the environment and the plan")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpu_smoke:
        args.rows = sorted({min(r, 200 + 100 * i) for i, r in enumerate(args.rows[:2])})
        args.giant_rows = min(args.giant_rows, 120)
        args.fit_rows, args.rounds, args.features, args.reps = min(args.fit_rows, 500), min(args.rounds, 2), 5, 1
    rec = Recorder(args.out, args)
    failed = False

    def run(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        nonlocal failed
        log(f"== {name}")
        t = time.perf_counter()
        try:
            res = fn()
        except Exception as exc:  # record and go on
            failed = True
            rec.data["stages"][name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            log(f"  FAILED: {type(exc).__name__}: {exc}")
            rec.save()
            return None
        res["stage_s"] = round(time.perf_counter() - t, 2)
        rec.data["stages"][name] = res
        rec.save()
        return res

    env = run("env", stage_env) or {}
    log(f"  {json.dumps(env)}")
    pulled = env.get("objectives_import_pulled")
    failed |= pulled is None or bool({"xgboost", "lightgbm"} & set(pulled))
    mode = env.get("cuda_mode") if env.get("cuda_ok") else None
    simulator = mode == "simulator"
    try:
        importlib.import_module("xgboost")
        has_xgb = True
    except Exception:
        has_xgb = False
    fit_device = "cuda" if mode == "gpu" else "cpu"
    rec.data["plan"] = plan = {
        "kernels": {"rows": args.rows, "giant_rows": args.giant_rows, "runs_on": mode or "skipped: no CUDA"},
        "fit": (
            "--skip-fit"
            if args.skip_fit
            else "xgboost is not installed (no xgboost-*.whl.part-* found)"
            if not has_xgb
            else {"rows": args.fit_rows, "rounds": args.rounds, "xgb_device": fit_device}
        ),
    }
    log(f"== plan: {json.dumps(plan)}")
    if args.dry_run:
        rec.data["ok"] = not failed
        rec.save()
        return int(failed)
    if mode is None:
        rec.data["stages"]["kernels"] = {"skipped": env.get("cuda_mode", "no environment")}
        log(f"== kernels skipped: {rec.data['stages']['kernels']['skipped']}")
        failed |= not args.cpu_smoke
    else:
        bw = run("bandwidth", lambda: stage_bandwidth(args, simulator))
        ref = bw["reference_GBps"] if bw and not simulator else None
        res = run("kernels", lambda: stage_kernels(rec, args, args.rows, args.giant_rows, ref))
        failed |= res is None or not res["ok"]
    if isinstance(plan["fit"], str):
        rec.data["stages"]["fit"] = {"skipped": plan["fit"]}
        log(f"== fit skipped: {plan['fit']}")
    elif mode is None:
        rec.data["stages"]["fit"] = {"skipped": "no CUDA (the objective runs with device='cuda')"}
    else:
        # the simulator's device arrays are no gradients XGBoost takes: there the objective runs on the CPU
        failed |= run("fit", lambda: stage_fit(rec, args, fit_device, fit_device)) is None
    rec.data["ok"] = not failed
    rec.save()
    log(f"== {'OK' if not failed else 'FAILED'} in {rec.elapsed():.1f} s; wrote {args.out}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
