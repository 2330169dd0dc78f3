"""Regenerate every benchmark and the results block of ``docs/performance.md``.

    python benchmarks/run_all.py            # full sizes (about 15-25 minutes on 2 cores)
    python benchmarks/run_all.py --smoke    # seconds; what the test suite runs
    python benchmarks/run_all.py --tables-only   # rebuild the page's tables from results/*.json

Run it on an otherwise idle machine: the ratios are only as good as the quiet.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_fit  # noqa: E402
import bench_fit_gap  # noqa: E402
import bench_memory  # noqa: E402
import bench_objective  # noqa: E402
import bench_startup  # noqa: E402
from common import DOCS, RESULTS, condition, write_between  # noqa: E402

PAGE = DOCS / "performance.md"
BEGIN, END = "<!-- perf:begin -->", "<!-- perf:end -->"

TARGETS = {
    "fit_exact": 1.10,
    "fit_k4": 1.05,
    "rss": 1.10,
    "warm_start": 1.0,
    "cold_fit": 5.0,
}


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _ok(v: float, target: float, higher_is_better: bool = False) -> str:
    good = v >= target if higher_is_better else v <= target
    return "met" if good else "**missed**"


def tables() -> str:
    lines: list[str] = []
    names = ("fit_xgboost", "fit_lightgbm", "objective", "memory", "startup")
    any_res = next((r for r in (_load(n) for n in names) if r), None)
    if any_res is None:
        return "No results yet: run `python benchmarks/run_all.py`."
    m = any_res["machine"]
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}, "
        f"NumPy {m['numpy']}, Numba {m['numba']} ({m['numba_threading_layer']} threads), "
        f"XGBoost {m['xgboost']}, LightGBM {m['lightgbm']}. Measured {any_res['date']}."
    )
    lines.append("")
    for backend, ref in (("xgboost", "native binary:logistic"), ("lightgbm", "native binary")):
        r = _load(f"fit_{backend}")
        if not r:
            continue
        by_regime = r["results"] if "regimes" in r else {"simulator": r["results"]}
        la = r.get("load_average", {})
        lines.append(
            f"**Fit time, {backend}** ({r['rounds']} rounds, depth 6, {r['features']} features, "
            f"{r['threads']} threads, median of {r['repeat']} interleaved paired ratios over `{ref}`; "
            + (
                f"load average {la['before']} before, {la['after']} after, "
                f"{condition(la['before'], la['after'], r.get('machine', {}).get('cores'))}; measured {r['date']})"
                if la
                else f"load average not recorded; measured {r['date']}, simulator labels)"
            )
        )
        lines.append("")
        lines.append("| regime | rows | objective | median fit (s) | ratio | range | goal |")
        lines.append("|---|---|---|---|---|---|---|")
        for regime, by_rows in by_regime.items():
            for n, res in by_rows.items():
                for name, v in res.items():
                    tgt = ""
                    if name == "PWiseR exact":
                        tgt = f"≤ {TARGETS['fit_exact']} {_ok(v['ratio_median'], TARGETS['fit_exact'])}"
                    elif name == "PWiseR k=4":
                        tgt = f"≤ {TARGETS['fit_k4']} {_ok(v['ratio_median'], TARGETS['fit_k4'])}"
                    lines.append(
                        f"| {regime} | {int(n):,} | {name} | {v['median_s']:.3f} | {v['ratio_median']:.3f} | "
                        f"{v['ratio_min']:.3f}–{v['ratio_max']:.3f} | {tgt} |"
                    )
        lines.append("")
    for path in sorted(RESULTS.glob("fit_gap_*.json"), key=lambda p: json.loads(p.read_text())["n"]):
        lines.append(bench_fit_gap.markdown(json.loads(path.read_text())))
        lines.append("")
    r = _load("objective")
    if r and "regimes" in r:
        lines.append(bench_objective.markdown(r))
        lines.append("")
    r = _load("memory")
    if r:
        lines.append(
            f"**Peak RSS of the fit** ({r['rows']:,} rows × 30 features, {r['rounds']} rounds, fresh process each)"
        )
        lines.append("")
        lines.append(
            "| backend | native (MiB) | PWiseR exact (MiB) | ratio | PWiseR k=4 (MiB) | ratio | "
            "target ≤ 1.10 | floor: native after one tiny Numba call (MiB) | ratio |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for b, v in r["results"].items():
            floor = v.get("native + one Numba call")
            floor_cells = f"{floor:.0f} | {v['native + one Numba call_over_native']:.3f}" if floor else "– | –"
            lines.append(
                f"| {b} | {v['native']:.0f} | {v['exact']:.0f} | {v['exact_over_native']:.3f} | "
                f"{v['k=4']:.0f} | {v['k=4_over_native']:.3f} | "
                f"{_ok(max(v['exact_over_native'], v['k=4_over_native']), TARGETS['rss'])} | {floor_cells} |"
            )
        lines.append("")
    r = _load("startup")
    if r and "grad_hess" in r["best"]:
        b = r["best"]
        lines.append(
            "**Start-up** (fresh process each; 100k rows in groups of 25, sparse labels; fits: 10 features, "
            "5 rounds; best of runs). Cold: an empty Numba cache, so every kernel the program needs "
            "compiles (a fresh install); warm: the next process, loading them from the cache."
        )
        lines.append("")
        lines.append("| program | Numba cache | import (s) | first call / fit (s) | second call (ms) | goal |")
        lines.append("|---|---|---|---|---|---|")
        for prog, v in b.items():
            for k in ("cold", "warm"):
                second = f"{v[k]['second_s'] * 1e3:.1f}" if "second_s" in v[k] else ""
                goal = ""
                if prog != "grad_hess":
                    tgt = TARGETS["cold_fit"] if k == "cold" else TARGETS["warm_start"]
                    goal = f"≤ {tgt:g} s {_ok(v[k]['first_s'], tgt)}"
                elif k == "warm":
                    goal = f"≤ {TARGETS['warm_start']:g} s {_ok(v[k]['first_s'], TARGETS['warm_start'])}"
                lines.append(f"| {prog} | {k} | {v[k]['import_s']:.2f} | {v[k]['first_s']:.2f} | {second} | {goal} |")
        lines.append("")
    return "\n".join(lines)


def write_page(page: Path = PAGE) -> None:
    """Rewrite the results block of the performance page (``docs/performance.md``)."""
    write_between(page, BEGIN, END, tables() + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--tables-only", action="store_true")
    a = ap.parse_args(argv)
    if not a.tables_only:
        extra = ["--smoke"] if a.smoke else []
        for mod in (bench_objective, bench_fit, bench_fit_gap, bench_memory, bench_startup):
            print(f"== {mod.__name__}", flush=True)
            mod.main(extra)
    if not a.smoke:
        write_page()
        print(f"updated {PAGE}")


if __name__ == "__main__":
    main()
