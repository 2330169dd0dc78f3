"""What the commands show: progress bars (only on a terminal), the compare table and the plots."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import MissingOptionalDependency, require

__all__ = ["check_writable", "progress", "on_terminal", "format_compare_table", "format_interval", "plots_available",
           "plot_sweep", "plot_roc", "plot_tradeoff"]

#: Rows of the compare table, in order.
TABLE_ROWS = ["ctr_auc", "ctr_conv_auc", "cvr_auc", "ctcvr_auc", "ctr_gauc", "ctcvr_gauc",
              "ctr_logloss", "ctcvr_logloss", "fit_s"]


def check_writable(folder: Path, names: list[str]) -> None:
    """Create ``folder`` and check that the files ``names`` can be written there, before any work.

    An ``OSError`` naming the path otherwise (a folder where a file goes, a
    read-only file or folder), so a run never fails after all its fitting.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the output folder {folder}: {exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write to the output folder {folder}: permission denied")
    for name in names:
        path = folder / name
        if path.is_dir():
            raise IsADirectoryError(f"cannot write {path}: it is a folder")
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(f"cannot write {path}: permission denied")


def on_terminal(quiet: bool, stream: Any = None) -> bool:
    """Whether progress bars should be drawn: not ``--quiet`` and ``stream`` (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return not quiet and bool(getattr(stream, "isatty", lambda: False)())


def progress(quiet: bool, stream: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar on stderr that draws only on a terminal (tqdm's ``disable=None``) and never with ``--quiet``.

    In a CI log or a pipe a bar would print hundreds of escape-code lines.
    """
    from tqdm.auto import tqdm

    return tqdm(disable=True if quiet else None, file=sys.stderr if stream is None else stream,
                dynamic_ncols=True, **kwargs)


def format_interval(ci: dict[str, float] | None) -> str:
    """``+0.0123 [-0.0040, +0.0290]`` (difference and interval), or ``+0.0123`` without an interval."""
    if ci is None:
        return ""
    delta = "nan" if not math.isfinite(ci["delta"]) else f"{ci['delta']:+.4f}"
    if "low" not in ci:
        return delta
    if not (math.isfinite(ci["low"]) and math.isfinite(ci["high"])):
        return f"{delta} [n/a]"
    return f"{delta} [{ci['low']:+.4f}, {ci['high']:+.4f}]"


def format_compare_table(results: dict[str, dict[str, float]], differences: dict[str, dict[str, float]],
                         confidence: float | None) -> str:
    """The compare table: one row per metric, a column per chain and the difference PWiseR − BCE.

    ``differences`` maps a metric to ``{"delta", "low", "high"}`` (bootstrap)
    or ``{"delta"}``; ``confidence`` names the interval in the header (None:
    no bootstrap).
    """
    from ..metrics import METRIC_LABELS

    names = list(results)
    labels = {**METRIC_LABELS, "fit_s": "fit time (s)"}
    width = max(len(labels[k]) for k in TABLE_ROWS)
    diff_head = "PWiseR − BCE" + ("" if confidence is None else f" [{confidence:.0%} CI]")
    cells = {k: format_interval(differences.get(k)) for k in TABLE_ROWS}
    dw = max(len(diff_head), *(len(c) for c in cells.values()))
    head = f"| {'metric'.ljust(width)} | " + " | ".join(n.rjust(14) for n in names) + f" | {diff_head.ljust(dw)} |"
    sep = "|" + "-" * (width + 2) + "|" + "|".join("-" * 16 for _ in names) + "|" + "-" * (dw + 2) + "|"
    lines = [head, sep]
    for k in TABLE_ROWS:
        vals = []
        for n in names:
            v = results[n].get(k, float("nan"))
            vals.append((f"{v:.2f}" if k == "fit_s" else f"{v:.4f}").rjust(14))
        lines.append(f"| {labels[k].ljust(width)} | " + " | ".join(vals) + f" | {cells[k].ljust(dw)} |")
    return "\n".join(lines)


def plots_available(stream: Any = None) -> bool:
    """Whether matplotlib (the ``cli`` extra) is installed; if not, say in one line that the plots are skipped."""
    try:
        require("matplotlib", extra="cli", feature="drawing the plots")
    except MissingOptionalDependency as exc:
        print(f"gbdt-pwiser: note: plots skipped: {exc}", file=sys.stderr if stream is None else stream)
        return False
    return True


def plot_sweep(sweep: list[dict[str, float]], path: Path, title: str) -> None:
    """AUCs against λ (one PNG)."""
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
    """ROC curves of pCTR against clicks and of pCTCVR against conversions (one PNG)."""
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


def plot_tradeoff(curves: dict[str, list[dict[str, Any]]], y_key: str, path: Path, title: str) -> None:
    """Click AUC (x) against ``y_key`` (y), one curve per method over its knob, with SD error bars (one PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ylabel = {"ctr_conv_auc": "conversion AUC of pCTR", "ctcvr_auc": "CTCVR AUC (pCTR·pCVR)"}[y_key]
    fig, ax = plt.subplots(figsize=(6.8, 4.6), dpi=110)
    for label, pts in curves.items():
        xs = [p["ctr_auc"] for p in pts]
        ys = [p[y_key] for p in pts]
        err = lambda key: [0.0 if not math.isfinite(p.get(f"{key}_sd", float("nan"))) else p[f"{key}_sd"]
                           for p in pts]
        line = ax.errorbar(xs, ys, xerr=err("ctr_auc"), yerr=err(y_key), fmt="o-", capsize=3, label=label)
        for p in pts:
            if p.get("knob") is not None:
                ax.annotate(f"{p['knob']}={p['value']:g}", (p["ctr_auc"], p[y_key]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points", color=line[0].get_color())
    ax.set_xlabel("click AUC of pCTR")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
