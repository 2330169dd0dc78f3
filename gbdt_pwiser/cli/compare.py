"""``gbdt-pwiser compare``: BCE, PWiseR and conversion-weighted BCE on one split by group (the main job).

The work is the evaluation layer's (:func:`gbdt_pwiser.evaluation.run_comparison`):
this module turns the options into its models and settings, and prints and
writes what it returns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from ..evaluation import BOOTSTRAP_METRICS, Model, fit_plan, run_comparison, support_warning
from ._data import UserError, dask_client, distributed, estimator_params, read_log, source_description
from ._evidence import TRADEOFF_PLOTS, evidence_methods, format_evidence, run_evidence
from ._options import (
    COMPARE_SIM_CVR,
    add_dask_options,
    add_data_options,
    add_evidence_options,
    add_pwiser_options,
    add_run_options,
    add_tree_options,
    integer,
    real,
    real_list,
)
from ._output import check_writable, format_compare_table, plots_available, progress

__all__ = ["DESCRIPTION", "TREE_DEFAULTS", "CONFIDENCE", "add_parser", "run", "main_models"]

DESCRIPTION = (
    "Fit three CTCVRClassifier chains on one split by group: BCE (lambda = 0), PWiseR (--lam) and "
    "conversion-weighted BCE (--conversion-weight), print a table of the standard figures (AUCs, GAUCs, log "
    "losses, calibration) with each difference to BCE and its bootstrap confidence interval over test groups, "
    "and write results.json, results.md and PNG plots (ROC curves, reliability, a lambda sweep) to an output "
    "folder. With no arguments it runs on a simulated AliExpress-style log of about 500k exposures."
)
TREE_DEFAULTS: dict[str, Any] = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6}
CONFIDENCE = 0.95
#: The main job's plots (the λ sweep only with sweep values besides 0 and --lam).
PLOTS = ("roc.png", "calibration.png", "lambda_sweep.png")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to ``sub`` (the result of ``add_subparsers``)."""
    c = sub.add_parser(
        "compare",
        help="fit BCE, PWiseR and conversion-weighted BCE and compare them (main job)",
        description=DESCRIPTION,
    )
    add_data_options(c, requests=20000, requests_help="default 20000, about 500k exposures", sim_cvr=COMPARE_SIM_CVR)
    m = c.add_argument_group("model")
    add_pwiser_options(m, lam_help="λ of the PWiseR chain")
    m.add_argument(
        "--conversion-weight",
        type=real(lo=0.0),
        default=1.0,
        metavar="ALPHA",
        help="α of the conversion-weighted BCE chain, CTCVRClassifier(lam=0, conversion_weight=α): "
        "its CTR booster weighs converted rows 1 + α times (default 1)",
    )
    m.add_argument(
        "--calibration",
        choices=["isotonic", "sigmoid"],
        default=None,
        help="fit every chain with calibrated predictions, CTCVRClassifier(calibration=...): monotone "
        "maps of pCTR and pCTCVR fitted on held-out groups of the training part (default: none)",
    )
    add_tree_options(m, defaults=TREE_DEFAULTS, resolved=True)
    add_dask_options(c)
    o = c.add_argument_group("output")
    o.add_argument(
        "--bootstrap",
        type=integer(lo=0),
        default=200,
        help="resamples of test groups for the confidence intervals of the AUC differences "
        "(default 200; 0: no intervals)",
    )
    o.add_argument(
        "--sweep-lam",
        type=real_list,
        default=[0.0, 0.5, 1.0, 2.0],
        help="λ values of the sweep plot (default 0,0.5,1,2)",
    )
    o.add_argument("--no-sweep", action="store_true", help="skip the λ sweep")
    o.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    add_run_options(o, out="gbdt_pwiser_out")
    add_evidence_options(c.add_argument_group("evidence: is PWiseR worth it here?"))
    return c


def main_models(args: argparse.Namespace) -> tuple[list[Model], list[Model]]:
    """The table's models (BCE, PWiseR at ``--lam``, weighted BCE at ``--conversion-weight``; equal fits once)
    and the λ sweep's further PWiseR chains."""
    table: dict[tuple[Any, ...], Model] = {}
    for m in (Model("bce"), Model("pwiser", args.lam), Model("weighted", args.conversion_weight)):
        table.setdefault(m.key, m)
    sweep = [] if args.no_sweep else [Model("pwiser", lam) for lam in args.sweep_lam]
    return list(table.values()), [m for m in dict.fromkeys(sweep) if m.key not in table]


def _summary(args: argparse.Namespace, result: Any, shown: list[Model], desc: str) -> dict[str, Any]:
    """What results.json holds: the data, the settings, each model's metrics, the differences, the sweep."""
    res = result.results()
    results = {
        m.name: {
            **res[m.name],
            "lam": m.params().get("lam", 0.0),
            "conversion_weight": m.params().get("conversion_weight", 0.0),
        }
        for m in shown
    }
    diffs: dict[str, dict[str, dict[str, float]]] = {}
    for rec in result.differences.to_dict("records"):
        if rec["model"] in results:
            with_ci = rec.get("n_valid", float("nan")) == rec.get("n_valid")  # NaN: no interval for this metric
            diffs.setdefault(rec["model"], {})[rec["metric"]] = {
                k: rec[k] for k in (("delta", "low", "high", "n_valid") if with_ci else ("delta",))
            }
    sweep = result.sweep()
    return {
        "data": {"source": desc, **result.data},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "models": [m.name for m in shown],
        "results": results,
        "differences": diffs,
        "bootstrap": {
            "n_resamples": args.bootstrap,
            "confidence": CONFIDENCE,
            "unit": "test group",
            "paired": True,
            "seed": args.seed,
            "metrics": list(BOOTSTRAP_METRICS) if args.bootstrap else [],
        },
        "sweep": sweep if len(sweep) > 2 else [],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "total_s": None,
    }


def _header(args: argparse.Namespace, d: dict[str, Any], desc: str) -> list[str]:
    pairs = d["test_pairs"]
    return [
        f"data: {desc}: {d['rows']} exposures in {d['groups']} groups, CTR {d['ctr']:.2%}, "
        f"CVR among clicks {d['cvr_given_click']:.2%}",
        f"test: {d['test_rows']} rows in {d['test_groups']} groups, {d['test_clicks']} clicks, "
        f"{d['test_conversions']} conversions in {d['test_groups_with_conversion']} groups",
        f"backend: {args.backend}, cvr_space={args.cvr_space}, pairs={args.pairs}, pair_loss={args.pair_loss}"
        + (f", calibration={args.calibration}" if args.calibration else ""),
        f"PWiseR pairs in the test part: {pairs['pairs_click_only']} conversion/click-only, "
        f"{pairs['pairs_no_click']} conversion/non-click; "
        f"{pairs['share_groups_with_pairs']:.1%} of groups hold a pair, "
        f"{pairs['click_only_partners_per_conversion']:.2f} click-only partners per conversion",
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``compare`` with parsed options; prints the table and returns the summary written to results.json."""
    out = Path(args.out)
    if not args.no_plots and not plots_available():
        args.no_plots = True  # no matplotlib: one note said so, and results.json records that no plot was drawn
    shown, sweep = main_models(args)
    plots = (
        []
        if args.no_plots
        else ["roc.png", "calibration.png"]
        + (["lambda_sweep.png"] if sweep else [])
        + (list(TRADEOFF_PLOTS) if evidence_methods(args) else [])
    )
    if evidence_methods(args) and distributed(args):
        raise UserError(
            "the evidence run fits its competitors in memory: drop --dask-workers/--scheduler, or --evidence/--methods"
        )
    check_writable(out, ["results.json", "results.md", *plots])  # before any fitting
    t_all = time.perf_counter()
    log = read_log(args)
    desc = source_description(args)
    params = estimator_params(args)
    models = shown + sweep
    bar = progress(args.quiet, total=len(fit_plan(models)), unit="fit", desc="compare")
    with dask_client(args) if distributed(args) else contextlib.nullcontext() as client:
        try:
            result = run_comparison(
                log,
                models=models,
                seeds=[args.seed],
                test_size=args.test_size,
                params=params,
                calibration=args.calibration,
                baseline=shown[0].name,
                bootstrap=args.bootstrap,
                confidence=CONFIDENCE,
                intervals=[m.name for m in shown],
                client=client,
                progress=bar,
            )
        finally:
            bar.close()
    summary = _summary(args, result, shown, desc)
    d = summary["data"]
    lines = _header(args, d, desc)
    if evidence_methods(args):
        summary["evidence"] = run_evidence(args, log, params, out, plots=not args.no_plots)
    table = format_compare_table(
        summary["results"], summary["differences"], shown[0].name, CONFIDENCE if args.bootstrap else None
    )
    note = (
        f"intervals: paired bootstrap over the {d['test_groups']} test groups, {args.bootstrap} resamples, "
        f"{CONFIDENCE:.0%} percentile; an interval that contains 0 shows no effect"
        if args.bootstrap
        else ""
    )
    # the results first, then the files: a failed write loses nothing
    for ln in lines:
        print(ln)
    if d["test_conversions"] == 0 or d["test_clicks"] in (0, d["test_rows"]):
        print(
            "gbdt-pwiser: warning: the test part lacks clicks, non-clicks or conversions, so some AUCs are "
            "undefined (nan); use more data or another --seed/--test-size",
            file=sys.stderr,
        )
    weak = support_warning(d["test_pairs"])
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
        title = f"{args.backend}, {desc}: AUC vs λ (m1={args.margin_click_only:g}, m2={args.margin_no_click:g})"
        written += result.save_plots(out, list(PLOTS), models=[m.name for m in shown], title=title)
    summary["total_s"] = time.perf_counter() - t_all
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "results.md").write_text("\n".join([*(f"{ln}  " for ln in lines), "", table, "", note, ""]))
    print("wrote " + ", ".join(str(p) for p in written))
    return summary
