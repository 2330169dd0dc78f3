"""Neural multi-task baselines against the boosted chain, each with BCE and with BCE + λ·PWiseR.

``gbdt-pwiser bench-neural`` (also ``python benchmarks/neural_vs_gbdt.py``)
loads or simulates one ad log, splits it once by group, and trains on the same
training part

* each neural multi-task model of :mod:`gbdt_pwiser.neural.models` (SharedBottom,
  ESMM, MMoE, PLE) with BCE and with BCE + λ·PWiseR on the CTR head, and
* the boosted chain :class:`~gbdt_pwiser.CTCVRClassifier` with BCE (λ = 0) and
  with BCE + λ·PWiseR,

then evaluates every model on the same held-out groups and prints one table
(rows = model × loss) of the AUC of pCTR, pCVR and pCTCVR, the CTR GAUC, the
conversion AUC of pCTR and the training time. The table goes to
``neural_bench.md`` and everything else (data summary, settings, all metrics,
per-epoch losses, machine) to ``neural_bench.json`` in ``--out``.

The neural models need the optional ``torch`` extra (``pip install
gbdt-pwiser[torch]``); this module imports PyTorch only when a neural model is
actually trained, so the command line stays importable without it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..cli.compare import UserError, load_log, split_log

__all__ = [
    "NEURAL_MODELS",
    "MODEL_NAMES",
    "LOSSES",
    "DEFAULTS",
    "QUICK",
    "add_arguments",
    "build_parser",
    "resolve_settings",
    "run_bench",
    "format_table",
    "format_delta_table",
    "main",
]

#: Neural architectures, in table order, with their display names.
NEURAL_MODELS: dict[str, str] = {"shared_bottom": "SharedBottom", "esmm": "ESMM", "mmoe": "MMoE", "ple": "PLE"}
#: Every name ``--models`` accepts (``gbdt`` is the boosted chain).
MODEL_NAMES: tuple[str, ...] = (*NEURAL_MODELS, "gbdt")
#: Every name ``--losses`` accepts.
LOSSES: tuple[str, ...] = ("bce", "pwiser")

#: Default sizes: about 300k exposures (12k requests) and 3 epochs; the whole
#: default run (5 models × 2 losses) takes about 1 minute on 2 idle CPU cores,
#: leaving room for busy machines under the 10-minute budget.
DEFAULTS: dict[str, Any] = {
    "requests": 12000,
    "epochs": 3,
    "batch_size": 2048,
    "lr": 2e-3,
    "embedding_dim": 8,
    "n_estimators": 100,
    "learning_rate": 0.1,
    "max_depth": 6,
    "small_nets": False,
}
#: ``--quick``: a tiny run (about 25k exposures, 1 epoch, small networks, 20 trees, a few seconds) for smoke tests.
QUICK: dict[str, Any] = {
    "requests": 1000,
    "epochs": 1,
    "batch_size": 256,
    "lr": 3e-3,
    "embedding_dim": 4,
    "n_estimators": 20,
    "learning_rate": 0.3,
    "max_depth": 4,
    "small_nets": True,
}
#: Network sizes of ``--quick`` (``small_nets``); otherwise each class's defaults.
SMALL_NETS: dict[str, dict[str, Any]] = {
    "shared_bottom": {"bottom": (32,), "tower": (16,)},
    "esmm": {"tower": (32,)},
    "mmoe": {"n_experts": 2, "expert": (32,), "tower": (16,)},
    "ple": {"n_levels": 1, "n_shared_experts": 1, "n_task_experts": 1, "expert": (32,), "tower": (16,)},
}

#: Table columns: (result key, header).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("ctr_auc", "CTR AUC"),
    ("cvr_auc", "CVR AUC"),
    ("ctcvr_auc", "CTCVR AUC"),
    ("ctr_gauc", "CTR GAUC"),
    ("ctr_conv_auc", "conv. AUC of pCTR"),
    ("train_s", "train (s)"),
)

_ALIASES: dict[str, str] = {
    "sharedbottom": "shared_bottom", "shared": "shared_bottom", "sb": "shared_bottom",
    "esmm": "esmm", "mmoe": "mmoe", "ple": "ple",
    "gbdt": "gbdt", "trees": "gbdt", "tree": "gbdt", "chain": "gbdt",
}


# --------------------------------------------------------------------------- argument parsing


def _name_list(choices: Sequence[str], aliases: dict[str, str], what: str) -> Any:
    def parse(text: str) -> list[str]:
        out: list[str] = []
        for raw in text.split(","):
            key = raw.strip().lower().replace("-", "").replace("_", "")
            if not key:
                continue
            name = aliases.get(key)
            if name is None:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {raw.strip()!r}; choose from {','.join(choices)}")
            if name not in out:
                out.append(name)
        if not out:
            raise argparse.ArgumentTypeError(f"give at least one of {','.join(choices)}")
        return [c for c in choices if c in out]  # table order

    return parse


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench-neural`` options to ``parser``.

    Size options default to ``None`` and are resolved by
    :func:`resolve_settings` from :data:`DEFAULTS`, or from :data:`QUICK` with
    ``--quick``; an explicit value always wins.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)parser to extend.

    Returns
    -------
    argparse.ArgumentParser
        ``parser`` itself.
    """
    from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
    from ..cli.compare import _nonneg, _pairs

    d = parser.add_argument_group("data")
    d.add_argument("--data", type=Path, help="CSV file of an ad log (default: simulate one)")
    d.add_argument("--format", choices=["aliexpress", "ali-ccp"], default="aliexpress",
                   help="layout of --data (default: aliexpress)")
    d.add_argument("--requests", type=int, default=None,
                   help=f"simulated requests when --data is not given (default {DEFAULTS['requests']}, "
                        f"about {DEFAULTS['requests'] * 25 // 1000}k exposures; --quick: {QUICK['requests']})")
    d.add_argument("--nrows", type=int, default=None, help="read at most this many rows of --data")
    d.add_argument("--test-size", type=float, default=0.2, help="share of groups held out (default 0.2)")
    d.add_argument("--seed", type=int, default=0, help="seed of the simulator, the split and every model (default 0)")
    s = parser.add_argument_group("what to train")
    s.add_argument("--models", type=_name_list(MODEL_NAMES, _ALIASES, "model"), default=list(MODEL_NAMES),
                   help=f"comma-separated subset of {','.join(MODEL_NAMES)} (default: all)")
    s.add_argument("--losses", type=_name_list(LOSSES, {"bce": "bce", "pwiser": "pwiser"}, "loss"),
                   default=list(LOSSES), help="comma-separated subset of bce,pwiser (default: both)")
    s.add_argument("--quick", action="store_true",
                   help="tiny run for a smoke test (about 25k exposures, 1 epoch, small networks, 20 trees)")
    p = parser.add_argument_group("PWiseR")
    p.add_argument("--lam", type=_nonneg, default=DEFAULT_LAM, help=f"λ of the PWiseR rows (default {DEFAULT_LAM})")
    p.add_argument("--margin-click-only", type=_nonneg, default=DEFAULT_MARGIN_CLICK_ONLY,
                   help=f"margin m1 against click-only rows (default {DEFAULT_MARGIN_CLICK_ONLY})")
    p.add_argument("--margin-no-click", type=_nonneg, default=DEFAULT_MARGIN_NO_CLICK,
                   help=f"margin m2 against non-clicks (default {DEFAULT_MARGIN_NO_CLICK})")
    p.add_argument("--pair-loss", choices=["squared_hinge", "logistic"], default="squared_hinge")
    n = parser.add_argument_group("neural models")
    n.add_argument("--epochs", type=_positive_int, default=None,
                   help=f"training epochs (default {DEFAULTS['epochs']}; --quick: {QUICK['epochs']})")
    n.add_argument("--batch-size", type=_positive_int, default=None,
                   help=f"rows per batch, whole groups (default {DEFAULTS['batch_size']})")
    n.add_argument("--lr", type=_positive_float, default=None, help=f"Adam learning rate (default {DEFAULTS['lr']:g})")
    n.add_argument("--embedding-dim", type=_positive_int, default=None,
                   help=f"embedding size (default {DEFAULTS['embedding_dim']})")
    g = parser.add_argument_group("boosted chain")
    g.add_argument("--backend", choices=["xgboost", "lightgbm"], default="xgboost")
    g.add_argument("--pairs", type=_pairs, default="all", help='"all" (exact) or k sampled partners')
    g.add_argument("--cvr-space", choices=["clicked", "entire"], default="clicked")
    g.add_argument("--n-estimators", type=_positive_int, default=None,
                   help=f"trees per booster (default {DEFAULTS['n_estimators']})")
    g.add_argument("--learning-rate", type=_positive_float, default=None,
                   help=f"boosting learning rate (default {DEFAULTS['learning_rate']:g})")
    g.add_argument("--max-depth", type=_positive_int, default=None,
                   help=f"tree depth (default {DEFAULTS['max_depth']})")
    o = parser.add_argument_group("run and output")
    o.add_argument("--torch-threads", type=_positive_int, default=1,
                   help="PyTorch threads while training the networks (default 1: these small networks gain "
                        "little from more, and spinning threads slow down ten-fold on a busy machine)")
    o.add_argument("--n-jobs", type=_positive_int, default=None,
                   help="threads of the boosting library (default: its own)")
    o.add_argument("--out", type=Path, default=Path("neural_bench_out"), help="output folder (default neural_bench_out)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    o.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser of the ``bench-neural`` options."""
    return add_arguments(argparse.ArgumentParser(
        prog="gbdt-pwiser bench-neural", description=__doc__.split("\n\n")[0]))


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The effective sizes: explicit options, else :data:`QUICK` (``--quick``) or :data:`DEFAULTS`.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``bench-neural`` options.

    Returns
    -------
    dict
        The keys of :data:`DEFAULTS` with their effective values, plus
        ``model_params`` (network sizes per neural model).
    """
    base = QUICK if getattr(args, "quick", False) else DEFAULTS
    out = {k: (getattr(args, k, None) if getattr(args, k, None) is not None else v) for k, v in base.items()}
    out["model_params"] = {m: dict(SMALL_NETS[m]) if out["small_nets"] else {} for m in NEURAL_MODELS}
    return out


# --------------------------------------------------------------------------- training


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise UserError(f"the neural models need PyTorch, which is not installed ({exc}): "
                        "pip install gbdt-pwiser[torch]") from None
    return torch


def _display(model: str, backend: str) -> str:
    return NEURAL_MODELS.get(model, f"GBDT chain ({backend})")


def _loss_label(loss: str, lam: float) -> str:
    return "BCE" if loss == "bce" else f"BCE + {lam:g}·PWiseR"


def _fit_neural(model: str, loss: str, args: argparse.Namespace, cfg: dict[str, Any], train: Any) -> Any:
    from .models import fit_neural

    return fit_neural(
        model, train.X, train.y, train.group, loss=loss, lam=args.lam,
        margin_click_only=args.margin_click_only, margin_no_click=args.margin_no_click,
        pair_loss=args.pair_loss, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        embedding_dim=cfg["embedding_dim"], model_params=cfg["model_params"][model],
        random_state=args.seed, progress=not args.quiet,
    )


def _fit_gbdt(loss: str, args: argparse.Namespace, cfg: dict[str, Any], train: Any) -> Any:
    from ..cli.compare import make_model

    model = make_model(args, 0.0 if loss == "bce" else args.lam, n_estimators=cfg["n_estimators"],
                       learning_rate=cfg["learning_rate"], max_depth=cfg["max_depth"], verbose=False)
    return model.fit(train.X, train.y, group=train.group)


# --------------------------------------------------------------------------- tables


def _fmt(v: Any, digits: int) -> str:
    return "nan" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table, one row per model × loss.

    Parameters
    ----------
    rows : list of dict
        Result rows with ``model``, ``loss`` and the keys of :data:`COLUMNS`.

    Returns
    -------
    str
        A Markdown table (no trailing newline).
    """
    mw = max(len("model"), *(len(r["model"]) for r in rows))
    lw = max(len("loss"), *(len(r["loss"]) for r in rows))
    head = f"| {'model'.ljust(mw)} | {'loss'.ljust(lw)} | " + " | ".join(h for _, h in COLUMNS) + " |"
    sep = f"|{'-' * (mw + 2)}|{'-' * (lw + 2)}|" + "|".join("-" * (len(h) + 1) + ":" for _, h in COLUMNS) + "|"
    lines = [head, sep]
    for r in rows:
        vals = [_fmt(r.get(k), 1 if k == "train_s" else 4).rjust(len(h)) for k, h in COLUMNS]
        lines.append(f"| {r['model'].ljust(mw)} | {r['loss'].ljust(lw)} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def format_delta_table(rows: list[dict[str, Any]]) -> str:
    """PWiseR minus BCE per model (AUC columns), as a Markdown table; empty when no model has both.

    Parameters
    ----------
    rows : list of dict
        Result rows as for :func:`format_table`, with ``key`` (model id) and ``loss_id``.

    Returns
    -------
    str
        A Markdown table (no trailing newline), or ``""``.
    """
    cols = [(k, h) for k, h in COLUMNS if k != "train_s"]
    by = {(r["key"], r["loss_id"]): r for r in rows}
    models = [r["model"] for r in rows if r["loss_id"] == "bce" and (r["key"], "pwiser") in by]
    keys = [r["key"] for r in rows if r["loss_id"] == "bce" and (r["key"], "pwiser") in by]
    if not keys:
        return ""
    mw = max(len("model"), *(len(m) for m in models))
    head = f"| {'model'.ljust(mw)} | " + " | ".join(f"Δ {h}" for _, h in cols) + " |"
    sep = f"|{'-' * (mw + 2)}|" + "|".join("-" * (len(h) + 3) + ":" for _, h in cols) + "|"
    lines = [head, sep]
    for name, key in zip(models, keys):
        b, p = by[(key, "bce")], by[(key, "pwiser")]
        vals = []
        for k, h in cols:
            d = float(p.get(k, math.nan)) - float(b.get(k, math.nan))
            vals.append(("nan" if not math.isfinite(d) else f"{d:+.4f}").rjust(len(h) + 2))
        lines.append(f"| {name.ljust(mw)} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the run


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by parsed ``bench-neural`` options.

    Parameters
    ----------
    args : argparse.Namespace
        Options from :func:`add_arguments` (the ``bench-neural`` subcommand).

    Returns
    -------
    dict
        The summary written to ``neural_bench.json``: ``data``, ``settings``,
        ``rows`` (one per model × loss, with every metric of
        :func:`gbdt_pwiser.metrics.evaluate`, ``train_s`` and, for neural
        models, the per-epoch training loss), ``machine`` and ``total_s``.

    Raises
    ------
    UserError
        On bad input (missing file, unusable data, PyTorch not installed for
        a neural model …); the command line prints it in one line.
    """
    from tqdm.auto import tqdm

    from ..metrics import evaluate

    cfg = resolve_settings(args)
    neural = [m for m in args.models if m in NEURAL_MODELS]
    torch = _require_torch() if neural else None
    if args.requests is None:
        args.requests = cfg["requests"]
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {out}: {exc}") from exc

    t_all = time.perf_counter()
    log = load_log(args)
    train, test = split_log(log, args.test_size, args.seed)
    runs = [(m, loss) for m in args.models for loss in args.losses]
    prev_threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
    rows: list[dict[str, Any]] = []
    bar = tqdm(runs, disable=args.quiet, unit="model", file=sys.stderr, dynamic_ncols=True)
    try:
        for model_id, loss in bar:
            name = _display(model_id, args.backend)
            bar.set_description(f"{name} / {_loss_label(loss, args.lam)}")
            t0 = time.perf_counter()
            try:
                if model_id == "gbdt":
                    model = _fit_gbdt(loss, args, cfg, train)
                else:
                    model = _fit_neural(model_id, loss, args, cfg, train)
            except ValueError as exc:
                raise UserError(f"{name} with {loss}: {exc}") from exc
            train_s = time.perf_counter() - t0
            metrics = evaluate(model, test.X, test.y, test.group)
            row: dict[str, Any] = {
                "model": name, "loss": _loss_label(loss, args.lam), "key": model_id, "loss_id": loss,
                "lam": 0.0 if loss == "bce" else float(args.lam), **metrics, "train_s": train_s,
            }
            if model_id != "gbdt":
                row["epoch_loss"] = [float(v) for v in model.history_]
            rows.append(row)
    finally:
        bar.close()
        if torch is not None and prev_threads is not None:
            torch.set_num_threads(prev_threads)

    desc = "simulated log" if args.data is None else f"{args.data} ({args.format})"
    clicked = log.y >= 1
    summary: dict[str, Any] = {
        "data": {"source": desc, "rows": len(log), "groups": int(log.n_groups),
                 "train_rows": len(train), "test_rows": len(test),
                 "test_clicks": int((test.y >= 1).sum()), "test_conversions": int((test.y == 2).sum()),
                 "ctr": float(np.mean(clicked)),
                 "cvr_given_click": float(np.mean(log.y[clicked] == 2)) if clicked.any() else float("nan")},
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "effective": cfg},
        "rows": rows,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "torch": getattr(torch, "__version__", None),
                    "torch_threads": args.torch_threads if torch is not None else None},
        "total_s": time.perf_counter() - t_all,
    }
    table = format_table(rows)
    delta = format_delta_table(rows)
    d = summary["data"]
    data_line = (f"data: {desc}: {d['rows']} exposures in {d['groups']} groups, CTR {d['ctr']:.2%}, "
                 f"CVR among clicks {d['cvr_given_click']:.2%}; test: {d['test_rows']} rows, "
                 f"{d['test_clicks']} clicks, {d['test_conversions']} conversions")
    settings_line = (f"nets: {cfg['epochs']} epoch(s), batch {cfg['batch_size']}, lr {cfg['lr']:g}, "
                     f"embedding {cfg['embedding_dim']}{', small networks' if cfg['small_nets'] else ''}, "
                     f"{args.torch_threads} torch thread(s); "
                     f"trees: {args.backend}, {cfg['n_estimators']} trees, depth {cfg['max_depth']}, "
                     f"learning rate {cfg['learning_rate']:g}, cvr_space={args.cvr_space}, pairs={args.pairs}; "
                     f"PWiseR: λ={args.lam:g}, m1={args.margin_click_only:g}, m2={args.margin_no_click:g}, "
                     f"{args.pair_loss}; seed {args.seed}; total {summary['total_s']:.0f} s")
    md = [f"{data_line}  ", f"{settings_line}", "", table, ""]
    if delta:
        md += ["PWiseR − BCE, per model (positive: PWiseR is better):", "", delta, ""]
    try:
        (out / "neural_bench.json").write_text(json.dumps(summary, indent=1, default=float))
        (out / "neural_bench.md").write_text("\n".join(md))
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc}") from exc
    print(data_line)
    print(settings_line)
    print(table)
    if delta:
        print("PWiseR − BCE, per model (positive: PWiseR is better):")
        print(delta)
    print(f"wrote {out / 'neural_bench.json'}, {out / 'neural_bench.md'}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gbdt-pwiser bench-neural`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from ..cli import main as cli_main

    return cli_main(["bench-neural", *(sys.argv[1:] if argv is None else argv)])
