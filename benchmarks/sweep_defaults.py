"""Evidence for the default λ and margins: a sweep on the simulator.

Fits the CTR booster (xgb.train + PWiseRObjective, same rounds and trees) on
``make_ad_log`` data for several λ and margin settings, scores a held-out
split (by request) and writes ``benchmarks/results/sweep_defaults.json`` and
``.md``. The conversion AUC of pCTR is the figure PWiseR is meant to lift;
click AUC must not fall much.

    python benchmarks/sweep_defaults.py [--requests 16000] [--seeds 0 1 2 3] [--rounds 100]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

from gbdt_pwiser import PWiseRObjective, initial_margin
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.metrics import click_auc, conversion_auc, conversion_gauc

OUT = Path(__file__).resolve().parent / "results"


def fit_score(train, test, obj, rounds, seed):
    tr = train.sort_by_group()
    dtrain = xgb.DMatrix(tr.X, label=tr.y, qid=tr.group, enable_categorical=True)
    dtest = xgb.DMatrix(test.X, enable_categorical=True)
    params = {
        "tree_method": "hist",
        "max_depth": 6,
        "eta": 0.1,
        "nthread": 2,
        "seed": seed,
        "base_score": initial_margin(tr.y),
        "disable_default_eval_metric": 1,
        "min_child_weight": 1.0,
    }
    b = xgb.train(params, dtrain, rounds, obj=obj)
    m = b.predict(dtest, output_margin=True)
    return {
        "click_auc": click_auc(m, test.y),
        "conv_auc_of_pctr": conversion_auc(m, test.y),
        "conv_gauc_of_pctr": conversion_gauc(m, test.y, test.group),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=16000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--m1", type=float, default=0.05, help="margin_click_only of the λ sweep")
    ap.add_argument("--m2", type=float, default=0.1, help="margin_no_click of the λ sweep")
    a = ap.parse_args()
    lam_grid = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    margin_grid = [(m1, m2) for m1 in (0.0, 0.02, 0.05, 0.1) for m2 in (0.02, 0.05, 0.1, 0.3)]
    configs = [("lam", lam, a.m1, a.m2) for lam in lam_grid]
    configs += [("margins", 1.0, m1, m2) for m1, m2 in margin_grid if (m1, m2) != (a.m1, a.m2)]
    rows = []
    for seed in a.seeds:
        log = make_ad_log(a.requests, random_state=seed)
        train, test = train_test_split_by_group(log, test_size=0.3, random_state=seed)
        for kind, lam, m1, m2 in configs:
            t = time.perf_counter()
            res = fit_score(
                train, test, PWiseRObjective(lam=lam, margin_click_only=m1, margin_no_click=m2), a.rounds, seed
            )
            rows.append(
                {"seed": seed, "sweep": kind, "lam": lam, "m1": m1, "m2": m2, "fit_s": time.perf_counter() - t, **res}
            )
            print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "sweep_defaults.json").write_text(
        json.dumps({"requests": a.requests, "rounds": a.rounds, "seeds": a.seeds, "results": rows}, indent=1)
    )
    # mean over seeds
    keys = sorted({(r["lam"], r["m1"], r["m2"]) for r in rows})
    lines = [
        "| λ | m1 (click-only) | m2 (no click) | click AUC | conv. AUC of pCTR | conv. GAUC of pCTR |",
        "|---|---|---|---|---|---|",
    ]
    for k in keys:
        sel = [r for r in rows if (r["lam"], r["m1"], r["m2"]) == k]
        mean = {m: np.mean([r[m] for r in sel]) for m in ("click_auc", "conv_auc_of_pctr", "conv_gauc_of_pctr")}
        lines.append(
            f"| {k[0]} | {k[1]} | {k[2]} | {mean['click_auc']:.4f} | {mean['conv_auc_of_pctr']:.4f} "
            f"| {mean['conv_gauc_of_pctr']:.4f} |"
        )
    (OUT / "sweep_defaults.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
