"""Evidence table: PWiseR against its competitors, in a sparse and a dense regime, over seeds.

The methods of :mod:`gbdt_pwiser.evaluation` (the ones ``gbdt-pwiser compare
--evidence`` runs): the PWiseR chain over λ (λ = 0 is the BCE chain),
conversion-weighted BCE over α, the boosters' ranking objective on funnel
labels (Platt-calibrated pCTR) and the shared multi-output booster over λ, all
``CTCVRClassifier``-based with the same tree settings. Each seed simulates a
log (``make_ad_log``) and splits it by request. Reported: click AUC, conversion
AUC of pCTR and CTCVR AUC on the held-out part, mean ± SD over seeds, with the
test conversions and PWiseR's pairs, into ``benchmarks/results/evidence.json``
and ``.md``. The conditions (sizes, machine load) go with the figures.

    python benchmarks/bench_evidence.py [--sparse-requests 4000] [--dense-requests 1000] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import common
import numpy as np
import pandas as pd

from gbdt_pwiser.datasets import make_ad_log
from gbdt_pwiser.evaluation import METHODS, POINT_METRICS, models, run_comparison

REGIMES: dict[str, dict[str, float]] = {"sparse": {}, "dense": {"ctr": 0.10, "cvr": 0.20}}
#: the competitors and their knob values (λ = 0 and α = 0 are the BCE chain)
COMPETITORS = ("pwiser", "weighted", "ranker", "shared")
LAMS, ALPHAS = [0.0, 1.0, 2.0], [0.0, 1.0, 3.0]


def _key(m: Any) -> str:
    knob = METHODS[m.method].knob
    return m.method if knob is None else f"{m.method} {knob}={m.value:g}"


def run_regime(a: argparse.Namespace, regime: str, n_requests: int) -> dict[str, Any]:
    chosen = models(COMPETITORS, lam=LAMS, conversion_weight=ALPHAS)
    params = {"n_estimators": a.n_estimators, "max_depth": a.depth, "learning_rate": a.eta, "n_jobs": a.nthread}
    table = []
    data: list[dict[str, Any]] = []
    for seed in a.seeds:
        log = make_ad_log(n_requests, random_state=seed, **REGIMES[regime])
        result = run_comparison(
            log, models=chosen, seeds=[seed], test_size=0.3, params=params, baseline=None, bootstrap=0
        )
        d = result.data
        data.append(
            {
                "rows": d["rows"],
                "test_conversions": d["test_conversions"],
                **{k: v for k, v in d["test_pairs"].items() if k.startswith("pairs")},
            }
        )
        table.append(result.table)
    points = {}
    everything = pd.concat(table)
    for m in chosen:
        v = everything[(everything["model"] == m.name) & (everything["method"] == m.method)]
        points[_key(m)] = {
            **{k: float(np.nanmean(v[k])) for k in POINT_METRICS},
            **{f"{k}_sd": float(np.nanstd(v[k], ddof=1)) if len(v) > 1 else float("nan") for k in POINT_METRICS},
        }
    return {"data": data, "points": points}


def _md(out: dict[str, Any]) -> str:
    lines = [f"Conditions: {out['conditions']}", ""]
    for regime, r in out["regimes"].items():
        conv = [d["test_conversions"] for d in r["data"]]
        lines += [
            f"### {regime}: {r['data'][0]['rows']} rows per log, test conversions per seed {conv}",
            "",
            "| method | click AUC | conversion AUC of pCTR | CTCVR AUC |",
            "|---|---|---|---|",
        ]
        for key, p in r["points"].items():
            cells = [f"{p[k]:.4f} ± {p[k + '_sd']:.4f}" for k in ("ctr_auc", "ctr_conv_auc", "ctcvr_auc")]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sparse-requests", type=int, default=4000)
    p.add_argument("--dense-requests", type=int, default=1000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-estimators", type=int, default=60)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--eta", type=float, default=0.1)
    p.add_argument("--nthread", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, print only, write no result file")
    a = p.parse_args(argv)
    if a.smoke:
        # 800 sparse requests: a few training conversions at 2.5 % of clicks
        a.sparse_requests, a.dense_requests, a.seeds, a.n_estimators, a.depth = 800, 100, [0], 4, 3
    t0 = time.perf_counter()
    out: dict[str, Any] = {"regimes": {}}
    for regime, n in (("sparse", a.sparse_requests), ("dense", a.dense_requests)):
        out["regimes"][regime] = run_regime(a, regime, n)
    out["conditions"] = (
        f"make_ad_log, {len(a.seeds)} seeds {a.seeds} (each a new log and split by request, "
        f"30 % held out), {a.n_estimators} rounds, depth {a.depth}, eta {a.eta}, {a.nthread} "
        f"threads; {time.perf_counter() - t0:.0f} s on a shared, loaded machine"
    )
    out["machine"] = common.machine()
    md = _md(out)
    print(md)
    if not a.smoke:
        common.write_result("evidence", out)
        (common.RESULTS / "evidence.md").write_text(md + "\n")
    return out


if __name__ == "__main__":
    main()
