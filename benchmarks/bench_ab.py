"""Before/after: the objective benchmark's per-round and whole-call times of two checkouts, same session.

Runs :func:`bench_objective.bench_regime` (both regimes, one thread) in fresh interpreters,
alternating between this checkout and ``--base`` (another checkout of the repository, e.g.
``git worktree add /tmp/base main``) ``--pairs`` times, and reports per case the median time of
each tree and the median of the paired ratios (this tree / base, runs adjacent in time), also
normalised by each run's own λ=0 round (a pass both trees share, which absorbs a machine that
changes speed between runs). Numba's cache does not see a changed callee in another file, so the
compiled kernels of both trees are deleted first and each tree compiles once before timing
(``--keep-cache`` skips that). Writes ``results/ab_objective.json`` and ``results/ab_objective.md``.

    python benchmarks/bench_ab.py --base /tmp/base [--pairs 5] [--rows 2000000] [--repeat 11] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from common import load_average, write_result

HERE = Path(__file__).resolve().parents[1]
CASES = ("numpy", "round exact", "round k=4", "round lam=0", "call exact", "call k=4")

_CHILD = r"""
import json, sys
sys.path.insert(0, {bench!r})
import numba
numba.set_num_threads(1)
import bench_objective as B
from common import REGIMES
out = {{}}
for name, (ctr, cvr) in REGIMES.items():
    out[name] = B.bench_regime({rows}, ctr, cvr, {repeat})["median_s"]
print("RESULT " + json.dumps(out))
"""


def run_tree(tree: Path, rows: int, repeat: int) -> dict:
    """One measurement of ``tree`` (its package and its bench_objective.py) in a fresh interpreter."""
    code = _CHILD.format(bench=str(tree / "benchmarks"), rows=rows, repeat=repeat)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tree, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"{tree}: {res.stderr[-2000:]}")
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def clear_numba_cache(tree: Path) -> int:
    files = [p for p in (tree / "gbdt_pwiser").rglob("__pycache__/*") if p.suffix in (".nbi", ".nbc")]
    for p in files:
        p.unlink()
    return len(files)


def summarise(runs: list[dict]) -> dict:
    base = [r["base"] for r in runs]
    new = [r["this"] for r in runs]
    out = {}
    for reg in base[0]:
        out[reg] = {}
        for case in CASES:
            b = np.array([x[reg][case] for x in base])
            n = np.array([x[reg][case] for x in new])
            lb = np.array([x[reg]["round lam=0"] for x in base])
            ln = np.array([x[reg]["round lam=0"] for x in new])
            out[reg][case] = {
                "base_ms": float(np.median(b) * 1e3),
                "this_ms": float(np.median(n) * 1e3),
                "paired_ratio": float(np.median(n / b)),
                "paired_ratio_min": float(np.min(n / b)),
                "paired_ratio_max": float(np.max(n / b)),
                "ratio_over_lam0": float(np.median((n / ln) / (b / lb))),
            }
    return out


def markdown(out: dict) -> str:
    la = out["load_average"]
    lines = [
        f"**Before/after, objective** ({out['rows']:,} rows in groups of 25, one thread; {out['pairs']} "
        f"alternating pairs of fresh processes, each the median CPU time of {out['repeat']} reps; this tree "
        f"`{out['this']}` vs base `{out['base']}`; load average {la['before']} before, {la['after']} after; "
        f"{out.get('date', '')})",
        "",
        "| regime | measure | base (ms) | this (ms) | paired this/base (min–max) | normalised by λ=0 |",
        "|---|---|---|---|---|---|",
    ]
    for reg, cases in out["summary"].items():
        for case, v in cases.items():
            lines.append(
                f"| {reg} | {case} | {v['base_ms']:.2f} | {v['this_ms']:.2f} | {v['paired_ratio']:.3f} "
                f"({v['paired_ratio_min']:.3f}–{v['paired_ratio_max']:.3f}) | {v['ratio_over_lam0']:.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="the other checkout (the 'before')")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--keep-cache", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.pairs, a.rows, a.repeat = 1, 20_000, 2
    trees = {"base": a.base.resolve(), "this": HERE}
    if not a.keep_cache and not a.smoke:
        for tree in trees.values():
            clear_numba_cache(tree)
            run_tree(tree, 20_000, 1)  # compile once, outside the timed runs
    before = load_average()
    runs = []
    for i in range(a.pairs):
        pair = {name: run_tree(tree, a.rows, a.repeat) for name, tree in trees.items()}
        runs.append(pair)
        print(
            f"pair {i + 1}/{a.pairs}: dense exact base {pair['base']['dense']['round exact'] * 1e3:.2f} ms, "
            f"this {pair['this']['dense']['round exact'] * 1e3:.2f} ms",
            flush=True,
        )
    out = {
        "rows": a.rows,
        "repeat": a.repeat,
        "pairs": a.pairs,
        "base": str(trees["base"]),
        "this": str(HERE),
        "load_average": {"before": before, "after": load_average()},
        "runs": runs,
        "summary": summarise(runs),
    }
    print(markdown(out), flush=True)
    if not a.smoke:
        path = write_result("ab_objective", out)
        out["date"] = json.loads(path.read_text())["date"]
        (common.RESULTS / "ab_objective.md").write_text(markdown(out) + "\n")
    return out


if __name__ == "__main__":
    main()
