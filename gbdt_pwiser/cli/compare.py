"""``gbdt-pwiser compare``: the BCE chain against the PWiseR chain on one split by group (the main job)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._data import UserError, _distributed, fit_log, load_log, log_rates, make_model, split_log
from ._options import add_dask_options, add_data_options, add_pwiser_options, add_run_options, add_tree_options, integer, real_list
from ._output import check_writable, format_compare_table, plot_roc, plot_sweep, plots_available, progress
from ._evidence import TRADEOFF_PLOTS, evidence_methods, format_evidence, run_evidence
from ._options import add_evidence_options

__all__ = ["DESCRIPTION", "TREE_DEFAULTS", "BOOTSTRAP_METRICS", "add_parser", "run"]

DESCRIPTION = (
    "Fit the BCE chain (lambda = 0) and the PWiseR chain of CTCVRClassifier on one split by group, "
    "print a table of the standard figures with the difference PWiseR - BCE and its bootstrap "
    "confidence interval over test groups, and write results.json, results.md and PNG plots "
    "(a lambda sweep and ROC curves) to an output folder. With no arguments it runs on a simulated "
    "AliExpress-style log of about 500k exposures."
)
TREE_DEFAULTS: dict[str, Any] = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6}
#: AUC differences with a bootstrap interval: metric -> (target, score, rows).
BOOTSTRAP_METRICS: dict[str, tuple[str, str, str]] = {
    "ctr_auc": ("click", "p_ctr", "all"),
    "ctr_conv_auc": ("conversion", "p_ctr", "all"),
    "cvr_auc": ("conversion", "p_cvr", "clicked"),
    "ctcvr_auc": ("conversion", "p_ctcvr", "all"),
}
CONFIDENCE = 0.95


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to ``sub`` (the result of ``add_subparsers``)."""
    c = sub.add_parser("compare", help="fit the BCE chain and the PWiseR chain and compare them (main job)",
                       description=DESCRIPTION)
    add_data_options(c, requests=20000, requests_help="default 20000, about 500k exposures")
    m = c.add_argument_group("model")
    add_pwiser_options(m, lam_help="λ of the PWiseR chain")
    add_tree_options(m, defaults=TREE_DEFAULTS, resolved=True)
    add_dask_options(c)
    o = c.add_argument_group("output")
    o.add_argument("--bootstrap", type=integer(lo=0), default=200,
                   help="resamples of test groups for the confidence intervals of the AUC differences "
                        "(default 200; 0: no intervals)")
    o.add_argument("--sweep-lam", type=real_list, default=[0.0, 0.5, 1.0, 2.0],
                   help="λ values of the sweep plot (default 0,0.5,1,2)")
    o.add_argument("--no-sweep", action="store_true", help="skip the λ sweep")
    o.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    add_run_options(o, out="gbdt_pwiser_out")
    add_evidence_options(c.add_argument_group("evidence: is PWiseR worth it here?"))
    return c


def fit_eval(args: argparse.Namespace, lam: float, train: Any, test: Any) -> tuple[dict[str, float], Any, float]:
    """Fit the chain with ``lam`` on ``train``; its metrics on ``test``, the model and the fit time."""
    from ..metrics import evaluate

    model = make_model(args, lam)
    t0 = time.perf_counter()
    fit_log(model, args, train)
    fit_s = time.perf_counter() - t0
    return evaluate(model, test.X, test.y, test.group), model, fit_s


def count_test_part(test: Any) -> dict[str, int]:
    """Rows, clicks, conversions, groups and groups holding a conversion of the test part."""
    conv_groups = np.unique(test.group[test.y == 2])
    return {"test_rows": len(test), "test_clicks": int(np.count_nonzero(test.y >= 1)),
            "test_conversions": int(np.count_nonzero(test.y == 2)), "test_groups": int(test.n_groups),
            "test_groups_with_conversion": int(conv_groups.size)}


def differences(results: dict[str, dict[str, float]], predictions: dict[str, dict[str, np.ndarray]], test: Any,
                n_resamples: int, seed: int) -> dict[str, dict[str, float]]:
    """PWiseR − BCE per metric; the AUCs of ``BOOTSTRAP_METRICS`` with a paired group-bootstrap interval."""
    from .._bootstrap import paired_auc_difference

    out: dict[str, dict[str, float]] = {}
    for k in results["BCE"]:
        if k in ("fit_s", "lam"):
            continue
        out[k] = {"delta": float(results["PWiseR"][k]) - float(results["BCE"][k])}
    if n_resamples == 0:
        return out
    targets = {"click": test.y >= 1, "conversion": test.y == 2}
    rows = {"all": None, "clicked": test.y >= 1}
    for k, (target, score, subset) in BOOTSTRAP_METRICS.items():
        ci = paired_auc_difference(targets[target], predictions["PWiseR"][score], predictions["BCE"][score],
                                   test.group, rows=rows[subset], n_resamples=n_resamples,
                                   confidence=CONFIDENCE, random_state=seed)
        out[k] = {**ci, "delta": out[k]["delta"]}  # the point difference of the table's own AUCs
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``compare`` with parsed options; prints the table and returns the summary written to results.json."""
    out = Path(args.out)
    if not args.no_plots and not plots_available():
        args.no_plots = True  # no matplotlib: one note said so, and results.json records that no plot was drawn
    sweep_lams = [] if args.no_sweep else [lam for lam in args.sweep_lam if lam not in (0.0, args.lam)]
    plots = [] if args.no_plots else ["roc.png"] + (["lambda_sweep.png"] if sweep_lams else []) + (
        [name for _, name in TRADEOFF_PLOTS] if evidence_methods(args) else [])
    if evidence_methods(args) and _distributed(args):
        raise UserError("the evidence run fits its competitors in memory: drop --dask-workers/--scheduler, or "
                        "--evidence/--methods")
    check_writable(out, ["results.json", "results.md", *plots])  # before any fitting
    stages = ["load data", "split by group", "fit BCE chain (λ=0)", f"fit PWiseR chain (λ={args.lam:g})"]
    stages += [f"λ sweep: fit λ={lam:g}" for lam in sweep_lams]
    stages += ["bootstrap and write results"]
    bar = progress(args.quiet, total=len(stages), unit="stage")

    def stage(i: int) -> None:
        bar.set_description(stages[i])

    t_all = time.perf_counter()
    stage(0)
    log = load_log(args)
    bar.update()
    stage(1)
    train, test = split_log(log, args.test_size, args.seed, args)
    bar.update()
    results: dict[str, dict[str, float]] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {}
    for i, (name, lam) in enumerate((("BCE", 0.0), ("PWiseR", args.lam))):
        stage(2 + i)
        metrics, model, fit_s = fit_eval(args, lam, train, test)
        results[name] = {**metrics, "fit_s": fit_s, "lam": lam}
        p_ctr, p_cvr = model.predict_ctr(test.X), model.predict_cvr(test.X)
        predictions[name] = {"p_ctr": p_ctr, "p_cvr": p_cvr, "p_ctcvr": p_ctr * p_cvr}
        bar.update()
    sweep = [{"lam": 0.0, **results["BCE"]}, {"lam": args.lam, **results["PWiseR"]}]
    for j, lam in enumerate(sweep_lams):
        stage(4 + j)
        metrics, _, fit_s = fit_eval(args, lam, train, test)
        sweep.append({"lam": lam, **metrics, "fit_s": fit_s})
        bar.update()
    sweep.sort(key=lambda r: r["lam"])
    stage(len(stages) - 1)
    diffs = differences(results, predictions, test, args.bootstrap, args.seed)
    desc = "simulated log" if args.data is None else f"{args.data} ({args.format})"
    from ..evidence import pair_counts, support_warning

    pairs_test = pair_counts(test.y, test.group)
    ctr, cvr_given_click = log_rates(log)
    summary: dict[str, Any] = {
        "data": {"source": desc, "rows": len(log), "groups": int(log.n_groups), "train_rows": len(train),
                 **count_test_part(test), "test_pairs": pairs_test, "ctr": ctr, "cvr_given_click": cvr_given_click},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
        "differences": diffs,
        "bootstrap": {"n_resamples": args.bootstrap, "confidence": CONFIDENCE, "unit": "test group",
                      "paired": True, "seed": args.seed, "metrics": list(BOOTSTRAP_METRICS) if args.bootstrap else []},
        "sweep": sweep if len(sweep) > 2 else [],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "total_s": None,
    }
    table = format_compare_table(results, diffs, CONFIDENCE if args.bootstrap else None)
    d = summary["data"]
    lines = [
        f"data: {desc}: {d['rows']} exposures in {d['groups']} groups, CTR {d['ctr']:.2%}, "
        f"CVR among clicks {d['cvr_given_click']:.2%}",
        f"test: {d['test_rows']} rows in {d['test_groups']} groups, {d['test_clicks']} clicks, "
        f"{d['test_conversions']} conversions in {d['test_groups_with_conversion']} groups",
        f"backend: {args.backend}, cvr_space={args.cvr_space}, pairs={args.pairs}, pair_loss={args.pair_loss}",
        f"PWiseR pairs in the test part: {pairs_test['pairs_click_only']} conversion/click-only, "
        f"{pairs_test['pairs_no_click']} conversion/non-click; "
        f"{pairs_test['share_groups_with_pairs']:.1%} of groups hold a pair, "
        f"{pairs_test['click_only_partners_per_conversion']:.2f} click-only partners per conversion",
    ]
    if evidence_methods(args):
        summary["evidence"] = run_evidence(args, log, out, plots=not args.no_plots)
    note = (f"intervals: paired bootstrap over the {d['test_groups']} test groups, {args.bootstrap} resamples, "
            f"{CONFIDENCE:.0%} percentile; an interval that contains 0 shows no effect" if args.bootstrap else "")
    bar.update()
    bar.close()
    # the results first, then the files: a failed write loses nothing
    for ln in lines:
        print(ln)
    if d["test_conversions"] == 0 or d["test_clicks"] in (0, d["test_rows"]):
        print("gbdt-pwiser: warning: the test part lacks clicks, non-clicks or conversions, so some AUCs are "
              "undefined (nan); use more data or another --seed/--test-size", file=sys.stderr)
    weak = support_warning(pairs_test)
    if weak and d["test_conversions"] > 0:
        print(f"gbdt-pwiser: warning: {weak}", file=sys.stderr)
    print(table)
    if note:
        print(note)
    if "evidence" in summary:
        print(format_evidence(summary["evidence"]))
        if summary["evidence"]["plots"]:
            print("wrote " + ", ".join(summary["evidence"]["plots"]))
    written = [out / "results.json", out / "results.md"]
    if not args.no_plots:
        curves = {f"{name} chain": p for name, p in predictions.items()}
        plot_roc(curves, test.y, out / "roc.png")
        written.append(out / "roc.png")
        if summary["sweep"]:
            plot_sweep(sweep, out / "lambda_sweep.png",
                       f"{args.backend}, {desc}: AUC vs λ (m1={args.margin_click_only:g}, m2={args.margin_no_click:g})")
            written.append(out / "lambda_sweep.png")
    summary["total_s"] = time.perf_counter() - t_all
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "results.md").write_text("\n".join([*(f"{ln}  " for ln in lines), "", table, "", note, ""]))
    print("wrote " + ", ".join(str(p) for p in written))
    return summary
