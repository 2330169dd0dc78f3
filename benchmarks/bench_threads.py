"""The objective's threads next to the booster's (issue #23): why two OpenMP pools interfered, the
candidate fixes measured in fits, the passes' parallel efficiency, and a model at 16 and 64 threads.

Parts (``--parts``, all by default), each candidate and each runtime in a fresh process:

* ``spin`` — CPU time burnt by a runtime's idle threads in the 30 ms after a parallel region (the
  process's CPU time while its main thread sleeps): XGBoost's OpenMP team, LightGBM's, Numba's
  ``omp`` and ``workqueue`` layers, and the objectives' pool (``gbdt_pwiser._threads``).
* ``candidates`` — fits with the booster on ``--threads`` threads (dense log, ``--rows`` × 30,
  ``--rounds`` rounds of depth 6; XGBoost and LightGBM), the objective's threads run by each
  candidate: one thread (the first default), the objectives' pool of sleeping threads (the second),
  the booster's own OpenMP team (the default now: ``gbdt_pwiser._threads.OpenMPTeam``), Numba
  ``prange`` over the same kernels on the ``omp`` and the ``workqueue`` layer, and
  ``OMP_WAIT_POLICY=passive`` (honoured by every libgomp at start-up) with Numba ``omp`` and with
  the pool. Per candidate: exact and k=4 fit / replayed fit (the same trees without computation)
  and λ=0 fit / NumPy BCE fit, medians of ``--repeat`` interleaved passes, the objective's calls
  timed inside the fits, and the process CPU time of each fit.
* ``efficiency`` — the passes of one round (λ=0 BCE, exact and k=4 on contiguous groups, exact on
  scattered groups) at 1..``--threads`` threads, ``--eff-rows`` rows, both regimes, interleaved,
  median wall time, the parts run by the pool and by XGBoost's OpenMP team: parallel efficiency
  ``t1 / (T · tT)``; each runner's cost per part; the memory bandwidth of 1..T threads copying at once.
* ``model`` — the per-round cost at 16 and 64 threads from the measured one-thread time per row,
  the bytes per row each pass moves, a machine's memory bandwidth (``--model-bandwidth``, an
  assumption: stated in the table) and the team's measured cost per part.

Writes ``results/threads_t<threads>.json`` and ``.md`` (or ``--name``). The fit and efficiency figures need a
quiet machine (state the load average with them).

    python benchmarks/bench_threads.py [--threads 2] [--rows 300000] [--rounds 40] [--repeat 5]
                                       [--eff-rows 2000000] [--eff-threads 1 2 4 8 16]
                                       [--parts spin candidates efficiency model] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
from common import REGIMES, load_average, make_regime_data, run_python, write_result  # noqa: E402

from gbdt_pwiser._threads import ROWS_PER_THREAD, booster_team, parts_on, run_parts  # noqa: E402

#: candidate -> (environment, how the objective's threads run, n_jobs: None = the booster's[, rows per
#: thread: the smallest part, ``gbdt_pwiser._threads.ROWS_PER_THREAD`` unless given])
CANDIDATES = {
    "one thread (first default)": ({}, "pool", 1),
    "objectives' pool (second default)": ({}, "pool", None),
    "booster's OpenMP team (default)": ({}, "team", None),
    "booster's OpenMP team, parts of 16,384 rows": ({}, "team", None, 16_384),
    "Numba prange, omp layer": ({"NUMBA_THREADING_LAYER": "omp"}, "prange", None),
    "Numba prange, workqueue layer": ({"NUMBA_THREADING_LAYER": "workqueue"}, "prange", None),
    "Numba prange, omp, OMP_WAIT_POLICY=passive": (
        {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "passive"},
        "prange",
        None,
    ),
    "pool, OMP_WAIT_POLICY=passive": ({"OMP_WAIT_POLICY": "passive"}, "pool", None),
}
SPIN_RUNTIMES = {
    "XGBoost's OpenMP": ({}, "xgboost"),
    "LightGBM's OpenMP": ({}, "lightgbm"),
    "Numba omp layer": ({"NUMBA_THREADING_LAYER": "omp"}, "numba"),
    "Numba workqueue layer": ({"NUMBA_THREADING_LAYER": "workqueue"}, "numba"),
    "objectives' pool": ({}, "pool"),
}
#: bytes each pass moves to or from memory per row (a: share of rows in active groups): margins (4)
#: and labels (1) read, g and h written as float32, what a booster is handed (8); the chunked passes
#: also read perm (8 per active row) while the chunk stays in cache; the two passes write the float64
#: sums of g, h and p, σ' (16 + 16), read perm, p, σ' and read + write the sums of the active rows
#: again (8 + 16 + 32), then read the sums and write g, h (16 + 8)
BYTES = {
    "BCE (λ=0)": lambda a: 13.0,
    "exact, contiguous groups": lambda a: 13.0 + 8 * a,
    "k=4, contiguous groups": lambda a: 13.0 + 8 * a,
    "exact, scattered groups": lambda a: 61.0 + 56 * a,
}


def _child(code: str, env: dict) -> dict:
    head = f"import sys; sys.path.insert(0, {str(HERE)!r}); import json, bench_threads as B\n"
    return json.loads(run_python(head + code, env, timeout=3600).strip().splitlines()[-1])


# --------------------------------------------------------------------------- spin (child side)


def _sleep_cpu_ms() -> float:
    c0 = time.process_time()
    time.sleep(0.03)
    return (time.process_time() - c0) * 1e3


def child_spin(runtime: str, threads: int, rounds: int = 12) -> dict:
    """CPU ms burnt by idle threads in the 30 ms after each of ``rounds`` parallel regions."""
    burnt: list[float] = []
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50_000, 10)).astype(np.float32)
    c = (rng.random(50_000) < 0.1).astype(np.float64)

    def probe_obj(preds, data):
        burnt.append(_sleep_cpu_ms())
        p = 1.0 / (1.0 + np.exp(-np.asarray(preds, dtype=np.float64)))
        return p - c, p * (1.0 - p)

    layer = None
    if runtime == "xgboost":
        import xgboost as xgb

        xgb.train({"nthread": threads, "max_depth": 6}, xgb.DMatrix(X, label=c, nthread=threads), rounds, obj=probe_obj)
    elif runtime == "lightgbm":
        import lightgbm as lgb

        lgb.train({"num_threads": threads, "objective": probe_obj, "verbose": -1}, lgb.Dataset(X, label=c), rounds)
    else:
        import numba

        from gbdt_pwiser.kernels import passes

        if runtime == "numba":
            _ensure_prange()

        a = np.ones(4_000_000)
        g, h = np.empty_like(a), np.empty_like(a)
        y = np.zeros(a.size, dtype=np.int8)
        for _ in range(rounds):
            if runtime == "numba":
                numba.set_num_threads(threads)
                _prange_bce(a, y, a[:0], False, 1e-16, g, h, threads)
            else:
                passes.bce_pass(a, y, a[:0], False, 1e-16, g, h, threads)
            burnt.append(_sleep_cpu_ms())
        layer = numba.threading_layer() if runtime == "numba" else None
    return {"median_ms": float(np.median(burnt[2:])), "all_ms": burnt, "layer": layer}


# --------------------------------------------------------------------------- candidates (child side)


def _prange_drivers():
    """Numba prange over the same kernels (one part per thread), compiled in the child."""
    import numba
    from numba import njit, prange

    from gbdt_pwiser.kernels import cpu as K
    from gbdt_pwiser.kernels.groups import Rows

    @njit(parallel=True)
    def chunks(R, floor, crow, cgrp, G, P, S, ga, ha, g, h, parts, rows):
        C = crow.size - 1
        for p in prange(parts):
            c0 = C * p // parts
            c1 = C * (p + 1) // parts
            o0 = p * rows
            o1 = (p + 1) * rows
            Rp = Rows(R.z, R.y, R.w, R.has_w, R.pp[o0:o1], R.pd[o0:o1], 0)
            K.bce_pair_chunks(Rp, floor, crow[c0 : c1 + 1], cgrp[c0 : c1 + 1], G, P, S, ga[o0:o1], ha[o0:o1], g, h)

    @njit(parallel=True)
    def bce(z, y, w, has_w, floor, g, h, parts):
        n = z.size
        for p in prange(parts):
            r0 = n * p // parts
            r1 = n * (p + 1) // parts
            K.bce_rows(z[r0:r1], y[r0:r1], w[r0:r1], has_w, floor, g[r0:r1], h[r0:r1])

    return numba, chunks, bce


def _prange_bce(*args):
    _, _, bce = _prange_drivers.cached
    bce(*args)


def _prange_objective():
    """``PWiseRObjective`` whose round runs as a Numba prange (the candidates' ``prange`` mode)."""
    from gbdt_pwiser import PWiseRObjective
    from gbdt_pwiser._defaults import HESSIAN_FLOOR
    from gbdt_pwiser.kernels import cpu as K
    from gbdt_pwiser.kernels.groups import Pairs, Rows

    numba, chunks, bce = _prange_drivers.cached

    class PrangeObjective(PWiseRObjective):
        def _compute(self, z, data, iteration, reuse):
            lam, m1, m2, loss_kind, k, seed = self._check_params()
            g, h = self._buffers(z.size, reuse)
            threads = min(self._threads(reuse, z.size), numba.config.NUMBA_NUM_THREADS)
            numba.set_num_threads(threads)
            if lam > 0.0 and data.chunks is not None:
                sc_c, sc_n = data.scales(lam)
                P = K.cpu_pairs(Pairs(sc_c, sc_n, m1, m2, loss_kind, k, K.round_key(seed, iteration)))
                parts = min(threads, data.chunks[0].size - 1)
                pp, pd, ga, ha = data.row_buffers(parts * data.max_chunk_rows)
                chunks(
                    Rows(z, data.y, data.w, data.has_w, pp, pd, 0),
                    HESSIAN_FLOOR,
                    *data.chunks,
                    data.groups,
                    P,
                    data.scratch(),
                    ga,
                    ha,
                    g,
                    h,
                    parts,
                    data.max_chunk_rows,
                )
            else:
                bce(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g, h, threads)
            return g, h

    return PrangeObjective


def child_candidate(
    backend: str, mode: str, n_jobs, rows: int, rounds: int, repeat: int, threads: int, rows_per_thread=None
) -> dict:
    import bench_fit_gap as F
    import numba

    from gbdt_pwiser import PWiseRObjective, _threads

    _threads.USE_BOOSTER_TEAMS = mode == "team"  # "pool": the pool runs the parts inside training too
    if rows_per_thread is not None:
        _threads.ROWS_PER_THREAD = rows_per_thread
    make = _prange_objective() if mode == "prange" else PWiseRObjective
    X, y, group = make_regime_data(rows, 30, "dense")
    b = F.BACKENDS[backend](X, y, group, threads, rounds)
    recorded = {}
    for name, kw in (("exact", {}), ("k=4", {"pairs": 4})):
        rec = F.Recorder(make(n_jobs=n_jobs, **kw))
        b.fit(rec)  # the candidate's gradients: the same bits as one thread's (checked below)
        ref = F.Recorder(PWiseRObjective(n_jobs=1, **kw))
        b.fit(ref)
        got, want = rec.g + rec.h, ref.g + ref.h
        if len(got) != len(want) or not all(np.array_equal(a, c) for a, c in zip(got, want, strict=True)):
            raise RuntimeError(f"{mode} gave other gradients than one thread ({name})")
        recorded[name] = rec
    variants = {
        "replay exact": lambda: F.Replay(recorded["exact"]),
        "exact": lambda: make(n_jobs=n_jobs),
        "replay k=4": lambda: F.Replay(recorded["k=4"]),
        "k=4": lambda: make(n_jobs=n_jobs, pairs=4),
        "NumPy BCE": F.NumpyBCE,
        "λ=0": lambda: make(lam=0.0, n_jobs=n_jobs),
    }
    wall, cpu, calls = F.interleaved(b, variants, repeat)
    med = {k: float(np.median(v)) for k, v in wall.items()}
    return {
        "exact_over_replay": med["exact"] / med["replay exact"],
        "k4_over_replay": med["k=4"] / med["replay k=4"],
        "lam0_over_numpy": med["λ=0"] / med["NumPy BCE"],
        "wall_s": med,
        "cpu_s": {k: float(np.median(v)) for k, v in cpu.items()},
        "calls_s": {k: float(np.median(v)) for k, v in calls.items()},
        "layer": numba.threading_layer() if mode == "prange" else None,
    }


_prange_drivers.cached = None  # type: ignore[attr-defined]


def _ensure_prange() -> None:
    if _prange_drivers.cached is None:  # type: ignore[attr-defined]
        _prange_drivers.cached = _prange_drivers()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- efficiency (this process)


def _round_cases(n: int, regime: str):
    """One round of each pass through the objective's own path (data prepared once)."""
    from gbdt_pwiser import PWiseRObjective, prepare_data

    ctr, cvr = REGIMES[regime]
    rng = np.random.default_rng(0)
    click = rng.random(n) < ctr
    y = (click.astype(np.int8) + (click & (rng.random(n) < cvr)).astype(np.int8)).astype(np.int8)
    z = rng.normal(-2.0, 1.0, n).astype(np.float32)
    ids = np.arange(n, dtype=np.int64) // 25
    contiguous = prepare_data(y, ids)
    scattered = prepare_data(y, rng.permutation(ids))
    cases = {
        "BCE (λ=0)": ({"lam": 0.0}, contiguous),
        "exact, contiguous groups": ({}, contiguous),
        "k=4, contiguous groups": ({"pairs": 4}, contiguous),
        "exact, scattered groups": ({}, scattered),
    }
    active = {name: d.perm.size / n for name, (_, d) in cases.items()}

    def call(kw, data, threads, runner):
        obj = PWiseRObjective(n_jobs=threads, **kw)

        def one_round():
            with parts_on(_runner(runner)):
                obj._compute(z, data, 1, reuse=True)

        return one_round

    return cases, active, call


#: who runs the parts of a pass: the objectives' pool (outside training) or XGBoost's OpenMP team
#: (inside ``xgb.train``)
RUNNERS = ("pool", "team")


def _runner(runner: str):
    if runner == "pool":
        return None
    import xgboost  # noqa: F401  (its library, and so its OpenMP runtime, loaded)

    team = booster_team("xgboost")
    if team is None:
        raise RuntimeError("XGBoost's library has no OpenMP team here")
    return team


def efficiency(n: int, threads: list[int], repeat: int, runners=RUNNERS) -> dict:
    """runner -> regime -> pass -> one round's wall and CPU ms on each number of ``threads`` (1 among
    them), and the efficiency.

    One runner at a time (its passes and thread counts interleaved): the team's threads spin ~9 ms
    after each of its regions (the spin part), as they do inside training, and a pool pass started
    meanwhile shared a core with them (the pool's 2.6 ms BCE pass measured 4.9 ms). Sleeping 30 ms
    before every pass instead measured threads woken from sleep: efficiencies of 0.2-0.7 on this
    machine, what neither runner sees in use."""
    out: dict = {r: {} for r in runners}
    for regime in REGIMES:
        cases, active, call = _round_cases(n, regime)
        for r in runners:
            fns = {(name, t): call(kw, data, t, r) for name, (kw, data) in cases.items() for t in threads}
            for fn in fns.values():
                fn()
            wall: dict = {k: [] for k in fns}
            cpu: dict = {k: [] for k in fns}
            for _ in range(repeat):
                for k, fn in fns.items():
                    c0, t0 = time.process_time(), time.perf_counter()
                    fn()
                    wall[k].append(time.perf_counter() - t0)
                    cpu[k].append(time.process_time() - c0)
            res = out[r][regime] = {}
            for name in cases:
                t1 = float(np.median(wall[(name, 1)]))
                res[name] = {"active_share": active[name], "ms": {}, "cpu_ms": {}, "efficiency": {}}
                for t in threads:
                    tt = float(np.median(wall[(name, t)]))
                    res[name]["ms"][str(t)] = tt * 1e3
                    res[name]["cpu_ms"][str(t)] = float(np.median(cpu[(name, t)])) * 1e3
                    res[name]["efficiency"][str(t)] = t1 / (t * tt)
    return out


def part_cost_us(threads: int, runner: str = "pool", reps: int = 2000) -> float:
    """Wall µs per extra part of a pass of ``threads`` empty parts (on the pool, or on XGBoost's
    OpenMP team), beyond one empty part on the caller."""
    team = _runner(runner)

    def median_us(parts: int) -> float:
        ts = []
        with parts_on(team):
            for _ in range(reps):
                t = time.perf_counter()
                run_parts(lambda p: None, parts)
                ts.append(time.perf_counter() - t)
        return float(np.median(ts)) * 1e6

    return (median_us(threads) - median_us(1)) / max(1, threads - 1)


def bandwidth(threads: int, mib: int = 256, reps: int = 5) -> dict:
    """Copy bandwidth (read + write, GB/s) of 1..threads threads copying disjoint parts at once."""
    from numba import njit

    @njit(nogil=True)
    def copy(a, b):
        for i in range(a.size):
            b[i] = a[i]

    a = np.ones(mib * 2**20 // 8)
    b = np.empty_like(a)
    copy(a[:8], b[:8])
    out = {}
    for t in range(1, threads + 1):
        bd = [a.size * p // t for p in range(t + 1)]
        best = np.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            run_parts(lambda p, bd=bd: copy(a[bd[p] : bd[p + 1]], b[bd[p] : bd[p + 1]]), t)
            best = min(best, time.perf_counter() - t0)
        out[str(t)] = 2 * a.nbytes / best / 1e9
    return out


# --------------------------------------------------------------------------- model


def model(
    eff: dict, eff_rows: int, bw_1: float, part_us: float, machines: dict, rows: tuple = (1_000_000, 2_000_000)
) -> dict:
    """ms per round at T threads: max(one thread's time / T', bytes / machine bandwidth) + T' · cost per
    part, with T' = min(T, rows // ROWS_PER_THREAD) the threads a pass takes.

    ``machines``: threads -> memory bandwidth (GB/s) of the machine assumed; per-thread speed as
    here; ``bw_1``: one thread's copy bandwidth here (a thread cannot move more).
    """
    out = {}
    for regime, cases in eff.items():
        for name, r in cases.items():
            per_row = r["ms"]["1"] / 1e3 / eff_rows
            b = BYTES[name](r["active_share"])
            for T, bw in machines.items():
                for n in rows:
                    used = min(int(T), max(1, n // ROWS_PER_THREAD))  # what resolve_threads gives a pass
                    compute = n * per_row / used
                    memory = n * b / (min(bw, used * bw_1) * 1e9)
                    ms = (max(compute, memory) + used * part_us * 1e-6) * 1e3
                    out.setdefault(regime, {}).setdefault(name, {})[f"{T}t_{n}"] = {
                        "ms": ms,
                        "bound": "memory" if memory > compute else "compute",
                        "threads_used": used,
                        "one_thread_ms": n * per_row * 1e3,
                        "bytes_per_row": b,
                        "bandwidth_gbs": bw,
                    }
    return out


# --------------------------------------------------------------------------- report


def markdown(out: dict) -> str:
    la = out["load_average"]
    lines = [
        f"**The objective's threads next to the booster's** ({out['date']}; load average {la['before']} "
        f"before, {la['after']} after; {out['machine']['cores']} cores, {out['machine']['cpu']})",
        "",
    ]
    if "spin" in out:
        lines += [
            "CPU burnt by idle threads in the 30 ms after a parallel region (median over rounds, "
            f"{out['threads']} threads):",
            "",
            "| runtime | CPU ms |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v['median_ms']:.2f} |" for k, v in out["spin"].items()]
        lines.append("")
    if "candidates" in out:
        c = out["candidates_conditions"]
        lines += [
            f"Fits with the booster on {out['threads']} threads ({c}): the objective's threads run by "
            "each candidate (fresh process each).",
            "",
            "| backend | candidate | exact / replayed fit (≤ 1.06) | k=4 / replayed fit (≤ 1.06) | "
            "λ=0 / NumPy BCE fit (≤ 1.03) | replayed exact fit (s) | exact's calls, timed (s) | "
            "CPU s / wall s, exact fit |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for backend, cands in out["candidates"].items():
            for name, v in cands.items():
                if "error" in v:
                    lines.append(f"| {backend} | {name} | {v['error']} | | | | | |")
                    continue
                lines.append(
                    f"| {backend} | {name} | {v['exact_over_replay']:.3f} | {v['k4_over_replay']:.3f} | "
                    f"{v['lam0_over_numpy']:.3f} | {v['wall_s']['replay exact']:.3f} | "
                    f"{v['calls_s']['exact']:.3f} | {v['cpu_s']['exact'] / v['wall_s']['exact']:.2f} |"
                )
        lines.append("")
    if "efficiency" in out:
        e = out["efficiency"]
        runs = e["runners"]
        ts = sorted({t for reg in next(iter(runs.values())).values() for v in reg.values() for t in v["ms"]}, key=int)
        lines += [
            f"Passes of one round, {e['rows']:,} rows in groups of 25, median wall time of {e['repeat']} "
            "interleaved reps, the parts run by the objectives' pool and by XGBoost's OpenMP team (one "
            "runner at a time); "
            "parallel efficiency t1 / (T·tT). Cost per extra part: "
            + ", ".join(f"{r} {us:.1f} µs" for r, us in e["part_us"].items())
            + "; copy bandwidth "
            + ", ".join(f"{t} thread(s) {v:.1f} GB/s" for t, v in e["bandwidth_gbs"].items())
            + ".",
            "",
            "| runner | regime | pass | "
            + " | ".join(f"{t} thread(s) ms" for t in ts)
            + " | "
            + " | ".join(f"efficiency at {t}" for t in ts if t != "1")
            + " |",
            "|---|---|---|" + "---|" * (2 * len(ts) - 1),
        ]
        ts_par = [t for t in ts if t != "1"]
        for runner, regimes in runs.items():
            for regime, cases in regimes.items():
                for name, v in cases.items():
                    lines.append(
                        f"| {runner} | {regime} | {name} | "
                        + " | ".join(f"{v['ms'][t]:.2f}" for t in ts)
                        + " | "
                        + " | ".join(f"{v['efficiency'][t]:.2f}" for t in ts_par)
                        + " |"
                    )
        lines.append("")
    if "model" in out:
        m = out["model"]
        keys = list(next(iter(next(iter(m["ms"].values())).values())).keys())
        lines += [
            "Model of the objective's per-round cost at 16 and 64 threads: max(one thread's time here / T', "
            "bytes per row × rows / memory bandwidth) + T' × the team's cost per part, T' = min(T, rows / "
            f"{ROWS_PER_THREAD:,}) the threads a pass takes (in brackets: what bounds it). Bandwidths assumed: "
            + ", ".join(f"{t} threads {bw} GB/s" for t, bw in m["machines"].items())
            + f" (a thread moves at most {m['bw_1']:.1f} GB/s, as measured here).",
            "",
            "| regime | pass | B/row | "
            + " | ".join(k.replace("t_", " threads, ") + " rows (ms)" for k in keys)
            + " |",
            "|---|---|---|" + "---|" * len(keys),
        ]
        for regime, cases in m["ms"].items():
            for name, v in cases.items():
                lines.append(
                    f"| {regime} | {name} | {v[keys[0]]['bytes_per_row']:.1f} | "
                    + " | ".join(f"{v[k]['ms']:.2f} ({v[k]['bound']}, T'={v[k]['threads_used']})" for k in keys)
                    + " |"
                )
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--eff-rows", type=int, default=2_000_000)
    ap.add_argument("--eff-repeat", type=int, default=15)
    ap.add_argument("--eff-threads", type=int, nargs="+", help="thread counts of the efficiency part (1..--threads)")
    ap.add_argument("--parts", nargs="+", default=["spin", "candidates", "efficiency", "model"])
    ap.add_argument("--backends", nargs="+", default=["xgboost", "lightgbm"])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    ap.add_argument(
        "--model-bandwidth",
        nargs="+",
        default=["16:80", "64:250"],
        help="threads:GB/s of the machines the model assumes",
    )
    ap.add_argument("--name", help="results/<name>.json and .md (default threads_t<threads>)")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    spin = list(SPIN_RUNTIMES)
    if a.smoke:  # every code path once, at tiny sizes, in few processes
        a.rows, a.rounds, a.repeat, a.eff_rows, a.eff_repeat = 3000, 2, 1, 100_000, 2
        a.candidates, a.backends = ["booster's OpenMP team (default)", "Numba prange, omp layer"], ["xgboost"]
        spin = ["Numba omp layer", "objectives' pool"]
    out: dict = {"threads": a.threads, "load_average": {"before": load_average()}}
    if "spin" in a.parts:
        out["spin"] = {
            name: _child(
                f"print(json.dumps(B.child_spin({SPIN_RUNTIMES[name][1]!r}, {a.threads})))", SPIN_RUNTIMES[name][0]
            )
            for name in spin
        }
    if "candidates" in a.parts:
        out["candidates_conditions"] = (
            f"dense log, {a.rows:,} rows × 30, {a.rounds} rounds of depth 6, median of {a.repeat} interleaved passes"
        )
        out["candidates"] = {}
        for backend in a.backends:
            res = out["candidates"][backend] = {}
            for name in a.candidates:
                env, mode, n_jobs, *rpt = CANDIDATES[name]
                code = (
                    ("B._ensure_prange()\n" if mode == "prange" else "")
                    + f"print(json.dumps(B.child_candidate({backend!r}, {mode!r}, {n_jobs!r}, {a.rows}, "
                    f"{a.rounds}, {a.repeat}, {a.threads}, {(rpt or [None])[0]!r})))"
                )
                try:
                    res[name] = {**_child(code, env), "env": env}
                except RuntimeError as exc:  # e.g. a threading layer that is not installed
                    res[name] = {"error": " ".join(str(exc).split())[-200:], "env": env}
                print(
                    backend,
                    name,
                    *(res[name].get(k) for k in ("exact_over_replay", "k4_over_replay", "lam0_over_numpy")),
                    flush=True,
                )
    if "efficiency" in a.parts or "model" in a.parts:
        out["efficiency"] = {
            "rows": a.eff_rows,
            "repeat": a.eff_repeat,
            "runners": efficiency(a.eff_rows, sorted({1, *(a.eff_threads or range(1, a.threads + 1))}), a.eff_repeat),
            "part_us": {r: part_cost_us(a.threads, r) for r in RUNNERS},
            "bandwidth_gbs": bandwidth(a.threads, 16 if a.smoke else 256),
        }
    if "model" in a.parts:
        machines = {t: float(bw) for t, bw in (s.split(":") for s in a.model_bandwidth)}
        e = out["efficiency"]
        out["model"] = {
            "machines": machines,
            "bw_1": e["bandwidth_gbs"]["1"],
            "ms": model(e["runners"]["team"], a.eff_rows, e["bandwidth_gbs"]["1"], e["part_us"]["team"], machines),
        }
    out["load_average"]["after"] = load_average()
    if not a.smoke:
        path = write_result(a.name or f"threads_t{a.threads}", out)
        out = json.loads(path.read_text())
        path.with_suffix(".md").write_text(markdown(out) + "\n")
    else:
        out.update(date="smoke", machine=common.machine())
    print(markdown(out), flush=True)
    return out


if __name__ == "__main__":
    main()
