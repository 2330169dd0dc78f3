"""The ``gbdt-pwiser`` command line.

``gbdt-pwiser compare`` is the main job: it fits the BCE chain and the PWiseR
chain of :class:`~gbdt_pwiser.CTCVRClassifier` on one split by group, prints a
table of the standard figures, and writes ``results.json``, ``results.md`` and
PNG plots (a λ sweep and ROC curves) to an output folder. With no arguments it
runs on a simulated AliExpress-style log of about 500k exposures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["main"]


class UserError(Exception):
    """A problem with the user's input: reported in one line, without a traceback."""


# --------------------------------------------------------------------------- argument parsing


def _pairs(text: str) -> str | int:
    if text == "all":
        return "all"
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'--pairs must be "all" or a positive integer, got {text!r}') from None
    if k < 1:
        raise argparse.ArgumentTypeError(f'--pairs must be "all" or a positive integer, got {text!r}')
    return k


def _float_list(text: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not vals or any(v < 0 or not np.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected non-negative numbers, got {text!r}")
    return vals


def _nonneg(text: str) -> float:
    v = float(text)
    if v < 0 or not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK

    p = argparse.ArgumentParser(prog="gbdt-pwiser", description="BCE + λ·PWiseR for gradient-boosted trees.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="fit the BCE chain and the PWiseR chain and compare them (main job)",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    d = c.add_argument_group("data")
    d.add_argument("--data", type=Path, help="CSV file of an ad log (default: simulate one)")
    d.add_argument("--format", choices=["aliexpress", "ali-ccp"], default="aliexpress",
                   help="layout of --data (default: aliexpress)")
    d.add_argument("--requests", type=int, default=20000,
                   help="simulated requests when --data is not given (default 20000, about 500k exposures)")
    d.add_argument("--nrows", type=int, default=None, help="read at most this many rows of --data")
    d.add_argument("--test-size", type=float, default=0.2, help="share of groups held out (default 0.2)")
    d.add_argument("--seed", type=int, default=0, help="seed of the simulator, the split and the models")
    m = c.add_argument_group("model")
    m.add_argument("--backend", choices=["xgboost", "lightgbm"], default="xgboost")
    m.add_argument("--lam", type=_nonneg, default=DEFAULT_LAM, help=f"λ of the PWiseR chain (default {DEFAULT_LAM})")
    m.add_argument("--margin-click-only", type=_nonneg, default=DEFAULT_MARGIN_CLICK_ONLY)
    m.add_argument("--margin-no-click", type=_nonneg, default=DEFAULT_MARGIN_NO_CLICK)
    m.add_argument("--pair-loss", choices=["squared_hinge", "logistic"], default="squared_hinge")
    m.add_argument("--pairs", type=_pairs, default="all", help='"all" (exact) or k sampled partners')
    m.add_argument("--cvr-space", choices=["clicked", "entire"], default="clicked")
    m.add_argument("--n-estimators", type=int, default=100)
    m.add_argument("--learning-rate", type=float, default=0.1)
    m.add_argument("--max-depth", type=int, default=6)
    m.add_argument("--n-jobs", type=int, default=None)
    o = c.add_argument_group("output")
    o.add_argument("--sweep-lam", type=_float_list, default=[0.0, 0.5, 1.0, 2.0],
                   help="λ values of the sweep plot (default 0,0.5,1,2); empty to skip with --no-sweep")
    o.add_argument("--no-sweep", action="store_true", help="skip the λ sweep")
    o.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    o.add_argument("--out", type=Path, default=Path("gbdt_pwiser_out"), help="output folder")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    o.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    from ..neural.bench import __doc__ as bench_doc, add_arguments as add_bench_arguments

    add_bench_arguments(sub.add_parser(
        "bench-neural", help="neural multi-task baselines vs the boosted chain, each with BCE and with PWiseR",
        description=bench_doc.split("\n\n")[0]))
    return p


# --------------------------------------------------------------------------- stages


def load_log(args: argparse.Namespace) -> Any:
    from .. import datasets

    if args.data is None:
        if args.requests < 10:
            raise UserError(f"--requests must be at least 10, got {args.requests}")
        return datasets.make_ad_log(args.requests, random_state=args.seed)
    path = Path(args.data)
    if not path.exists():
        raise UserError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise UserError(f"cannot read {path}: it is a folder, give a CSV file")
    loader = datasets.load_aliexpress if args.format == "aliexpress" else datasets.load_ali_ccp
    try:
        return loader(path, nrows=args.nrows)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot load {path} as {args.format}: {exc}") from exc


def split_log(log: Any, test_size: float, seed: int) -> tuple[Any, Any]:
    from ..datasets import train_test_split_by_group

    if not 0 < test_size < 1:
        raise UserError(f"--test-size must be between 0 and 1, got {test_size}")
    if log.n_groups < 4:
        raise UserError(f"too few groups to split: {log.n_groups} (need at least 4)")
    try:
        train, test = train_test_split_by_group(log, test_size=test_size, random_state=seed)
    except ValueError as exc:
        raise UserError(f"cannot split the data by group: {exc}") from exc
    if len(train) < 20 or len(test) < 5:
        raise UserError(f"too few rows to split: {len(log)}")
    if (train.y >= 1).sum() == 0:
        raise UserError("the training part has no clicks")
    if (train.y == 2).sum() == 0:
        raise UserError("the training part has no conversions: nothing to compare")
    if hasattr(test, "align_categories"):
        test = test.align_categories(train)
    return train, test


def make_model(args: argparse.Namespace, lam: float, **overrides: Any) -> Any:
    """The GBDT chain of the command line's options; ``overrides`` replace estimator parameters."""
    from ..sklearn import CTCVRClassifier

    params = dict(
        backend=args.backend, lam=lam, margin_click_only=args.margin_click_only,
        margin_no_click=args.margin_no_click, pair_loss=args.pair_loss, pairs=args.pairs,
        cvr_space=args.cvr_space, n_jobs=args.n_jobs, random_state=args.seed,
        verbose=not args.quiet,  # progress bars over the boosting rounds
    )
    for name in ("n_estimators", "learning_rate", "max_depth"):
        if hasattr(args, name):
            params[name] = getattr(args, name)
    return CTCVRClassifier(**{**params, **overrides})


def fit_eval(args: argparse.Namespace, lam: float, train: Any, test: Any) -> tuple[dict[str, float], Any, float]:
    from ..metrics import evaluate

    model = make_model(args, lam)
    t0 = time.perf_counter()
    model.fit(train.X, train.y, group=train.group)
    fit_s = time.perf_counter() - t0
    return evaluate(model, test.X, test.y, test.group), model, fit_s


TABLE_ROWS = ["ctr_auc", "ctr_conv_auc", "cvr_auc", "ctcvr_auc", "ctr_gauc", "ctcvr_gauc",
              "ctr_logloss", "ctcvr_logloss", "fit_s"]


def format_table(results: dict[str, dict[str, float]]) -> str:
    from ..metrics import METRIC_LABELS

    names = list(results)
    labels = {**METRIC_LABELS, "fit_s": "fit time (s)"}
    width = max(len(labels[k]) for k in TABLE_ROWS)
    head = f"| {'metric'.ljust(width)} | " + " | ".join(n.rjust(14) for n in names) + " |"
    sep = "|" + "-" * (width + 2) + "|" + "|".join("-" * 16 for _ in names) + "|"
    lines = [head, sep]
    for k in TABLE_ROWS:
        vals = []
        for n in names:
            v = results[n].get(k, float("nan"))
            vals.append((f"{v:.2f}" if k == "fit_s" else f"{v:.4f}").rjust(14))
        lines.append(f"| {labels[k].ljust(width)} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def plot_sweep(sweep: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lams = [r["lam"] for r in sweep]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for key, label, style in (("ctr_auc", "click AUC of pCTR", "o-"),
                              ("ctr_conv_auc", "conversion AUC of pCTR", "s-"),
                              ("ctcvr_auc", "CTCVR AUC", "^-")):
        ax.plot(lams, [r[key] for r in sweep], style, label=label)
    ax.set_xlabel("λ (weight of PWiseR)")
    ax.set_ylabel("AUC on the held-out requests")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_roc(curves: dict[str, dict[str, np.ndarray]], test_y: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
    targets = (("p_ctr", test_y >= 1, "pCTR vs clicks"), ("p_ctcvr", test_y == 2, "pCTCVR vs conversions"))
    for ax, (key, truth, title) in zip(axes, targets):
        for name, c in curves.items():
            fpr, tpr, _ = roc_curve(truth, c[key])
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(truth, c[key]):.4f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_compare(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm.auto import tqdm

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {out}: {exc}") from exc
    sweep_lams = [] if args.no_sweep else [lam for lam in args.sweep_lam if lam not in (0.0, args.lam)]
    stages = ["load data", "split by group", "fit BCE chain (λ=0)", f"fit PWiseR chain (λ={args.lam:g})"]
    stages += [f"λ sweep: fit λ={lam:g}" for lam in sweep_lams]
    stages += ["write results"]
    bar = tqdm(total=len(stages), disable=args.quiet, unit="stage", file=sys.stderr, dynamic_ncols=True)

    def stage(i: int) -> None:
        bar.set_description(stages[i])

    t_all = time.perf_counter()
    stage(0)
    log = load_log(args)
    bar.update()
    stage(1)
    train, test = split_log(log, args.test_size, args.seed)
    bar.update()
    results: dict[str, dict[str, float]] = {}
    models: dict[str, Any] = {}
    for i, (name, lam) in enumerate((("BCE", 0.0), ("PWiseR", args.lam))):
        stage(2 + i)
        try:
            metrics, model, fit_s = fit_eval(args, lam, train, test)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        results[name] = {**metrics, "fit_s": fit_s, "lam": lam}
        models[name] = model
        bar.update()
    sweep = [{"lam": 0.0, **results["BCE"]}, {"lam": args.lam, **results["PWiseR"]}]
    for j, lam in enumerate(sweep_lams):
        stage(4 + j)
        metrics, _, fit_s = fit_eval(args, lam, train, test)
        sweep.append({"lam": lam, **metrics, "fit_s": fit_s})
        bar.update()
    sweep.sort(key=lambda r: r["lam"])
    stage(len(stages) - 1)
    desc = "simulated log" if args.data is None else f"{args.data} ({args.format})"
    summary = {
        "data": {"source": desc, "rows": len(log), "groups": int(log.n_groups),
                 "train_rows": len(train), "test_rows": len(test),
                 "ctr": float(np.mean(log.y >= 1)), "cvr_given_click": float(np.mean(log.y[log.y >= 1] == 2))
                 if np.any(log.y >= 1) else float("nan")},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
        "sweep": sweep if len(sweep) > 2 else [],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "total_s": None,
    }
    table = format_table(results)
    if not args.no_plots:
        curves = {}
        for name, model in models.items():
            p_ctr = model.predict_ctr(test.X)
            curves[f"{name} chain"] = {"p_ctr": p_ctr, "p_ctcvr": p_ctr * model.predict_cvr(test.X)}
        plot_roc(curves, test.y, out / "roc.png")
        if summary["sweep"]:
            plot_sweep(sweep, out / "lambda_sweep.png",
                       f"{args.backend}, {desc}: AUC vs λ (m1={args.margin_click_only:g}, m2={args.margin_no_click:g})")
    summary["total_s"] = time.perf_counter() - t_all
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "results.md").write_text(table + "\n")
    bar.update()
    bar.close()
    d = summary["data"]
    print(f"data: {desc}: {d['rows']} exposures in {d['groups']} groups, CTR {d['ctr']:.2%}, "
          f"CVR among clicks {d['cvr_given_click']:.2%}; test: {d['test_rows']} rows")
    print(f"backend: {args.backend}, cvr_space={args.cvr_space}, pairs={args.pairs}, pair_loss={args.pair_loss}")
    print(table)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}"
          + ("" if args.no_plots else f", {out / 'roc.png'}" + (f", {out / 'lambda_sweep.png'}" if summary["sweep"] else "")))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gbdt-pwiser`` and ``python -m gbdt_pwiser``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            run_compare(args)
        elif args.command == "bench-neural":
            from ..neural.bench import run_bench

            run_bench(args)
        return 0
    except UserError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"gbdt-pwiser: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gbdt-pwiser: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
