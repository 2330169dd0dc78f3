"""Neural multi-task baselines against the boosted chain, each with BCE and with BCE + λ·PWiseR.

The logic of ``gbdt-pwiser bench-neural`` (the command line lives in
``gbdt_pwiser.cli.bench_neural``): on one training part it trains

* each neural multi-task model of ``gbdt_pwiser.neural.models`` (SharedBottom,
  ESMM, MMoE, PLE) with BCE and with BCE + λ·PWiseR on the CTR head, and
* the boosted chain (``CTCVRClassifier``, built by the caller) with BCE
  (λ = 0) and with BCE + λ·PWiseR,

then evaluates every model on the same held-out groups and makes one table
(rows = model × loss) of the AUC of pCTR, pCVR and pCTCVR, the CTR GAUC, the
conversion AUC of pCTR and the training time. The table goes to
``neural_bench.md`` and everything else (data summary, settings, all metrics,
per-epoch losses, machine) to ``neural_bench.json``.

This module imports PyTorch only when a neural model is actually trained, and
nothing of the command line: the caller passes the data and a factory of the
boosted chain.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "NEURAL_MODELS",
    "MODEL_NAMES",
    "MODEL_ALIASES",
    "LOSSES",
    "DEFAULTS",
    "QUICK",
    "BenchError",
    "require_torch",
    "resolve_settings",
    "run_bench",
    "format_table",
    "format_delta_table",
]


class BenchError(Exception):
    """A problem with the inputs of a bench run (PyTorch missing, an unusable log ...), in one line."""


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

#: Spellings ``--models`` accepts (lower case, without ``-`` and ``_``).
MODEL_ALIASES: dict[str, str] = {
    "sharedbottom": "shared_bottom",
    "shared": "shared_bottom",
    "sb": "shared_bottom",
    "esmm": "esmm",
    "mmoe": "mmoe",
    "ple": "ple",
    "gbdt": "gbdt",
    "trees": "gbdt",
    "tree": "gbdt",
    "chain": "gbdt",
}


def resolve_settings(args: Any) -> dict[str, Any]:
    """The effective sizes: explicit options, else ``QUICK`` (``--quick``) or ``DEFAULTS``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``bench-neural`` options (``quick`` and the size options).

    Returns
    -------
    dict
        The keys of ``DEFAULTS`` with their effective values, plus
        ``model_params`` (network sizes per neural model).
    """
    base = QUICK if getattr(args, "quick", False) else DEFAULTS
    out = {k: (getattr(args, k, None) if getattr(args, k, None) is not None else v) for k, v in base.items()}
    out["model_params"] = {m: dict(SMALL_NETS[m]) if out["small_nets"] else {} for m in NEURAL_MODELS}
    return out


def require_torch() -> Any:
    """Import PyTorch, or raise ``BenchError`` saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise BenchError(
            f"the neural models need PyTorch, which is not installed ({exc}): pip install gbdt-pwiser[torch]"
        ) from None
    return torch


def _display(model: str, backend: str) -> str:
    return NEURAL_MODELS.get(model, f"GBDT chain ({backend})")


def _loss_label(loss: str, lam: float) -> str:
    return "BCE" if loss == "bce" else f"BCE + {lam:g}·PWiseR"


def _fit_neural(model: str, loss: Literal["bce", "pwiser"], args: Any, cfg: dict[str, Any], train: Any) -> Any:
    from .training import fit_neural

    return fit_neural(
        model,
        train.X,
        train.y,
        train.group,
        loss=loss,
        lam=args.lam,
        margin_click_only=args.margin_click_only,
        margin_no_click=args.margin_no_click,
        pair_loss=args.pair_loss,
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        embedding_dim=cfg["embedding_dim"],
        model_params=cfg["model_params"][model],
        random_state=args.seed,
        progress=not args.quiet,
    )


# --------------------------------------------------------------------------- tables


def _fmt(v: Any, digits: int) -> str:
    return "nan" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table, one row per model × loss.

    Parameters
    ----------
    rows : list of dict
        Result rows with ``model``, ``loss`` and the keys of ``COLUMNS``.

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
        Result rows as for ``format_table``, with ``key`` (model id) and ``loss_id``.

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
    for name, key in zip(models, keys, strict=True):
        b, p = by[(key, "bce")], by[(key, "pwiser")]
        vals = []
        for k, h in cols:
            d = float(p.get(k, math.nan)) - float(b.get(k, math.nan))
            vals.append(("nan" if not math.isfinite(d) else f"{d:+.4f}").rjust(len(h) + 2))
        lines.append(f"| {name.ljust(mw)} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the run


def run_bench(
    args: Any,
    log: Any,
    train: Any,
    test: Any,
    make_gbdt: Callable[[float], Any],
    *,
    t_start: float | None = None,
) -> dict[str, Any]:
    """Train and evaluate every model × loss of ``args`` on one split; print and write the tables.

    Parameters
    ----------
    args : argparse.Namespace
        The ``bench-neural`` options: ``models``, ``losses``, ``lam``,
        ``margin_click_only``, ``margin_no_click``, ``pair_loss``, ``seed``,
        ``backend``, ``torch_threads``, ``quiet``, ``out`` and the size options
        (resolved with ``resolve_settings``).
    log, train, test : AdLog
        The whole log (for the data summary) and its split by group.
    make_gbdt : callable
        ``make_gbdt(lam)`` returns an unfitted boosted chain (``CTCVRClassifier``).
    t_start : float, optional
        ``time.perf_counter()`` at the start of the run (loading included).

    Returns
    -------
    dict
        The summary written to ``neural_bench.json``: ``data``, ``settings``,
        ``rows`` (one per model × loss, with every metric of
        ``gbdt_pwiser.metrics.evaluate``, ``train_s`` and, for neural
        models, the per-epoch training loss), ``machine`` and ``total_s``.

    Raises
    ------
    BenchError
        PyTorch missing for a neural model, a model that cannot be trained on
        the data, or an output folder that cannot be written.
    """
    from tqdm.auto import tqdm

    from ..metrics import evaluate

    cfg = resolve_settings(args)
    torch = require_torch() if any(m in NEURAL_MODELS for m in args.models) else None
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot create the output folder {out}: {exc}") from exc
    t_all = time.perf_counter() if t_start is None else t_start
    runs = [(m, loss) for m in args.models for loss in args.losses]
    prev_threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
    rows: list[dict[str, Any]] = []
    bar = tqdm(runs, disable=True if args.quiet else None, unit="model", file=sys.stderr, dynamic_ncols=True)
    try:
        for model_id, loss in bar:
            name = _display(model_id, args.backend)
            bar.set_description(f"{name} / {_loss_label(loss, args.lam)}")
            t0 = time.perf_counter()
            try:
                if model_id == "gbdt":
                    model = make_gbdt(0.0 if loss == "bce" else args.lam)
                    model.fit(train.X, train.y, group=train.group)
                else:
                    model = _fit_neural(model_id, loss, args, cfg, train)
            except ValueError as exc:
                raise BenchError(f"{name} with {loss}: {exc}") from exc
            train_s = time.perf_counter() - t0
            metrics = evaluate(model, test.X, test.y, test.group)
            row: dict[str, Any] = {
                "model": name,
                "loss": _loss_label(loss, args.lam),
                "key": model_id,
                "loss_id": loss,
                "lam": 0.0 if loss == "bce" else float(args.lam),
                **metrics,
                "train_s": train_s,
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
        "data": {
            "source": desc,
            "rows": len(log),
            "groups": int(log.n_groups),
            "train_rows": len(train),
            "test_rows": len(test),
            "test_clicks": int((test.y >= 1).sum()),
            "test_conversions": int((test.y == 2).sum()),
            "ctr": float(np.mean(clicked)),
            "cvr_given_click": float(np.mean(log.y[clicked] == 2)) if clicked.any() else float("nan"),
        },
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "effective": cfg},
        "rows": rows,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": getattr(torch, "__version__", None),
            "torch_threads": args.torch_threads if torch is not None else None,
        },
        "total_s": time.perf_counter() - t_all,
    }
    table = format_table(rows)
    delta = format_delta_table(rows)
    d = summary["data"]
    data_line = (
        f"data: {desc}: {d['rows']} exposures in {d['groups']} groups, CTR {d['ctr']:.2%}, "
        f"CVR among clicks {d['cvr_given_click']:.2%}; test: {d['test_rows']} rows, "
        f"{d['test_clicks']} clicks, {d['test_conversions']} conversions"
    )
    settings_line = (
        f"nets: {cfg['epochs']} epoch(s), batch {cfg['batch_size']}, lr {cfg['lr']:g}, "
        f"embedding {cfg['embedding_dim']}{', small networks' if cfg['small_nets'] else ''}, "
        f"{args.torch_threads} torch thread(s); "
        f"trees: {args.backend}, {cfg['n_estimators']} trees, depth {cfg['max_depth']}, "
        f"learning rate {cfg['learning_rate']:g}, cvr_space={args.cvr_space}, pairs={args.pairs}; "
        f"PWiseR: λ={args.lam:g}, m1={args.margin_click_only:g}, m2={args.margin_no_click:g}, "
        f"{args.pair_loss}; seed {args.seed}; total {summary['total_s']:.0f} s"
    )
    md = [f"{data_line}  ", f"{settings_line}", "", table, ""]
    if delta:
        md += ["PWiseR − BCE, per model (positive: PWiseR is better):", "", delta, ""]
    print(data_line)  # the results first, then the files: a failed write loses nothing
    print(settings_line)
    print(table)
    if delta:
        print("PWiseR − BCE, per model (positive: PWiseR is better):")
        print(delta)
    try:
        (out / "neural_bench.json").write_text(json.dumps(summary, indent=1, default=float))
        (out / "neural_bench.md").write_text("\n".join(md))
    except OSError as exc:
        raise BenchError(f"cannot write to {out}: {exc}") from exc
    print(f"wrote {out / 'neural_bench.json'}, {out / 'neural_bench.md'}")
    return summary
