"""Evidence for the shared multi-task booster: one two-output booster vs the two-booster chain.

On the simulator (``make_ad_log``) in two regimes, for several seeds, with a
held-out split by request, this fits

* ``shared λ=0`` / ``shared λ=1``: one XGBoost booster with vector leaves
  (``multi_strategy="multi_output_tree"``) and :class:`SharedCTCVRObjective`
  (BCE on clicks + λ·PWiseR on the CTR margin, BCE(pCTR·pCVR, conversion) on
  both margins); ``shared λ=1 β=0``: the same with ``ctcvr_weight_ctr=0``;
* ``chain λ=0`` / ``chain``: the plain chain by hand with ``xgb.train``, a CTR
  booster with :class:`PWiseRObjective` (λ=0 or 1) then an entire-space CVR
  booster with :class:`EntireSpaceCVRObjective` on the CTR booster's pCTR;
* ``chain clicked``: the CTR booster (λ=1) then a clicked-space CVR booster
  (``binary:logistic`` on clicked rows),

all with the same tree settings and number of rounds per booster, on the same
features (categorical columns as codes, since multi-output trees refuse
categorical features). It reports click AUC, the conversion AUC of pCTR, CVR
AUC (clicked rows) and CTCVR AUC (all rows): mean and standard deviation over
seeds, in ``benchmarks/results/shared.json`` and ``.md``.

    python benchmarks/bench_shared.py [--sparse-requests 3000] [--dense-requests 1000] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.special import expit

from gbdt_pwiser import EntireSpaceCVRObjective, PWiseRObjective, initial_margin
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.metrics import auc
from gbdt_pwiser.objectives import SharedCTCVRObjective, initial_margins, shared_probabilities
from gbdt_pwiser.sklearn._encode import CategoricalCodes

RESULTS = Path(__file__).resolve().parent / "results"

#: the simulator's regimes: its defaults (AliExpress-like: 2.5 % CTR, 2.5 % of clicks convert)
#: and a dense one (10 % CTR, 20 % of clicks convert)
REGIMES: dict[str, dict[str, float]] = {"sparse": {}, "dense": {"ctr": 0.10, "cvr": 0.20}}
METRICS = ("click_auc", "conv_auc_of_pctr", "cvr_auc", "ctcvr_auc")
MODELS = ("shared λ=0", "shared λ=1", "shared λ=1 β=0", "chain λ=0", "chain", "chain clicked")


def _tree_params(a: argparse.Namespace, seed: int) -> dict[str, Any]:
    return {"tree_method": "hist", "max_depth": a.depth, "eta": a.eta, "max_bin": a.max_bin,
            "min_child_weight": 1.0, "nthread": a.nthread, "seed": seed, "disable_default_eval_metric": 1}


def _scores(y: np.ndarray, ctr: np.ndarray, cvr: np.ndarray, ctcvr: np.ndarray) -> dict[str, float]:
    click, conv = y >= 1, y == 2
    return {"click_auc": auc(click, ctr), "conv_auc_of_pctr": auc(conv, ctr),
            "cvr_auc": auc(conv[click], cvr[click]), "ctcvr_auc": auc(conv, ctcvr)}


def fit_shared(Xtr, ytr, gtr, Xte, params, rounds, lam, beta):
    obj = SharedCTCVRObjective(lam=lam, ctcvr_weight_ctr=beta)
    p = {**params, "multi_strategy": "multi_output_tree", "num_target": 2,
         "base_score": initial_margins(ytr).tolist()}
    b = xgb.train(p, xgb.DMatrix(Xtr, label=ytr, qid=gtr), rounds, obj=obj)
    return shared_probabilities(b.predict(xgb.DMatrix(Xte), output_margin=True))


def fit_chain(Xtr, ytr, gtr, Xte, params, rounds, lam, cvr_space, cache):
    dtr = xgb.DMatrix(Xtr, label=ytr, qid=gtr)
    dte = xgb.DMatrix(Xte)
    if lam not in cache:  # the clicked and the entire-space chain share their CTR booster
        cache[lam] = xgb.train({**params, "base_score": initial_margin(ytr)}, dtr, rounds,
                               obj=PWiseRObjective(lam=lam))
    ctr_b = cache[lam]
    ctr = expit(ctr_b.predict(dte, output_margin=True))
    clicked = ytr >= 1
    if cvr_space == "entire":
        u0 = initial_margin(ytr[clicked] - 1)  # log-odds of the conversion rate among clicks
        obj = EntireSpaceCVRObjective(ctr_prob=expit(ctr_b.predict(dtr, output_margin=True)))
        cvr_b = xgb.train({**params, "base_score": u0}, xgb.DMatrix(Xtr, label=ytr), rounds, obj=obj)
        cvr = expit(cvr_b.predict(dte, output_margin=True))
    else:
        idx = np.flatnonzero(clicked)
        dcl = xgb.DMatrix(Xtr.iloc[idx], label=(ytr[idx] == 2).astype(np.float32))
        p = {**params, "objective": "binary:logistic"}
        p.pop("disable_default_eval_metric")
        cvr = xgb.train(p, dcl, rounds).predict(dte)
    return ctr, cvr, ctr * cvr


def run_one(regime: str, seed: int, a: argparse.Namespace) -> list[dict[str, Any]]:
    n_req = a.sparse_requests if regime == "sparse" else a.dense_requests
    log = make_ad_log(n_req, random_state=seed, with_truth=True, **REGIMES[regime])
    train, test = train_test_split_by_group(log, test_size=a.test_size, random_state=seed)
    train = train.sort_by_group()
    enc = CategoricalCodes().fit(train.X)
    Xtr, Xte = enc.transform(train.X), enc.transform(test.X)
    params = _tree_params(a, seed)
    ctr_boosters: dict[float, Any] = {}
    fits = {
        "shared λ=0": lambda: fit_shared(Xtr, train.y, train.group, Xte, params, a.rounds, 0.0, 1.0),
        "shared λ=1": lambda: fit_shared(Xtr, train.y, train.group, Xte, params, a.rounds, 1.0, 1.0),
        "shared λ=1 β=0": lambda: fit_shared(Xtr, train.y, train.group, Xte, params, a.rounds, 1.0, 0.0),
        "chain λ=0": lambda: fit_chain(Xtr, train.y, train.group, Xte, params, a.rounds, 0.0, "entire",
                                       ctr_boosters),
        "chain": lambda: fit_chain(Xtr, train.y, train.group, Xte, params, a.rounds, 1.0, "entire", ctr_boosters),
        "chain clicked": lambda: fit_chain(Xtr, train.y, train.group, Xte, params, a.rounds, 1.0, "clicked",
                                           ctr_boosters),
    }
    truth = test.truth
    rows = [{"regime": regime, "seed": seed, "model": "truth", "fit_s": 0.0,
             **_scores(test.y, truth["p_click"].to_numpy(), truth["p_cvr"].to_numpy(),
                       truth["p_conversion"].to_numpy())}]
    info = {"n_train": len(train), "n_test": len(test), "test_conversions": int((test.y == 2).sum()),
            "test_clicks": int((test.y >= 1).sum())}
    for name in a.models:
        t = time.perf_counter()
        ctr, cvr, ctcvr = fits[name]()
        rows.append({"regime": regime, "seed": seed, "model": name, "fit_s": time.perf_counter() - t,
                     **_scores(test.y, ctr, cvr, ctcvr)})
    for r in rows:
        r.update(info)
        print(json.dumps(r), flush=True)
    return rows


def summarise(rows: list[dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
    out = []
    for regime in dict.fromkeys(r["regime"] for r in rows):
        for model in ["truth", *models]:
            sel = [r for r in rows if r["regime"] == regime and r["model"] == model]
            if not sel:
                continue
            s = {"regime": regime, "model": model, "n_seeds": len(sel),
                 "fit_s": float(np.mean([r["fit_s"] for r in sel]))}
            for m in METRICS:
                vals = np.array([r[m] for r in sel], dtype=np.float64)
                s[m] = float(np.nanmean(vals))
                s[m + "_sd"] = float(np.nanstd(vals, ddof=1)) if np.sum(~np.isnan(vals)) > 1 else float("nan")
            out.append(s)
    return out


def table(summary: list[dict[str, Any]], conditions: str) -> str:
    lines = [conditions, "",
             "| regime | model | click AUC | conv. AUC of pCTR | CVR AUC (clicked) | CTCVR AUC | fit s |",
             "|---|---|---|---|---|---|---|"]
    for s in summary:
        cells = " | ".join(f"{s[m]:.4f} ± {s[m + '_sd']:.4f}" for m in METRICS)
        fit = "–" if s["model"] == "truth" else f"{s['fit_s']:.1f}"
        lines.append(f"| {s['regime']} | {s['model']} | {cells} | {fit} |")
    lines += ["", "Mean ± standard deviation over seeds. `truth`: the simulator's true probabilities "
              "(p_click, p_cvr, p_conversion), the ceiling. β = ctcvr_weight_ctr (share of the pCTCVR "
              "term on the CTR margin); the chain's boosters each get the same number of rounds as the "
              "shared booster; `chain clicked` reuses the CTR booster of `chain` (its fit s: the CVR "
              "booster only)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sparse-requests", type=int, default=3000)
    ap.add_argument("--dense-requests", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--eta", type=float, default=0.1)
    ap.add_argument("--max-bin", type=int, default=64)
    ap.add_argument("--nthread", type=int, default=2)
    ap.add_argument("--test-size", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--smoke", action="store_true", help="a tiny run (seconds), for the tests")
    a = ap.parse_args(argv)
    if a.smoke:
        a.sparse_requests, a.dense_requests, a.seeds, a.rounds, a.depth, a.nthread = 300, 150, [0, 1], 3, 3, 1
    t0 = time.perf_counter()
    rows = [r for regime in a.regimes for seed in a.seeds for r in run_one(regime, seed, a)]
    summary = summarise(rows, a.models)
    first = {reg: next(r for r in rows if r["regime"] == reg) for reg in a.regimes}
    conditions = (
        f"Simulator `make_ad_log`, seeds {a.seeds}, 70/30 split by request ({a.test_size:g} test). "
        + "; ".join(f"{reg}: {a.sparse_requests if reg == 'sparse' else a.dense_requests} requests "
                    f"{REGIMES[reg] or '(defaults)'}, ~{first[reg]['n_train']} train rows, "
                    f"~{first[reg]['test_conversions']} test conversions" for reg in a.regimes)
        + f". XGBoost hist, {a.rounds} rounds per booster, depth {a.depth}, eta {a.eta:g}, max_bin "
        f"{a.max_bin}, nthread {a.nthread}; PWiseR margins 0.02/0.02 (defaults). "
        f"Total wall time {time.perf_counter() - t0:.0f} s (machine shared: timings are indicative only)."
    )
    payload = {"benchmark": "shared", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "conditions": conditions,
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
               "summary": summary, "results": rows}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "shared.json").write_text(json.dumps(payload, indent=1, default=float))
    text = table(summary, conditions)
    (a.out / "shared.md").write_text(text)
    print(text)
    return payload


if __name__ == "__main__":
    main()
