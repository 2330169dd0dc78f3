"""The comparison's plots as matplotlib figures: ROC curves, reliability (calibration), the λ sweep, trade-offs.

Each function returns a ``matplotlib.figure.Figure`` built without pyplot (no
global state, no backend switch: a notebook shows it, ``fig.savefig(path)``
writes it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["roc_figure", "calibration_figure", "sweep_figure", "tradeoff_figure"]

#: the two targets of the ROC and reliability plots: (prediction key, label of y, title)
_TARGETS = (("p_ctr", "click", "pCTR vs clicks"), ("p_ctcvr", "conversion", "pCTCVR vs conversions"))


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    return fig, fig.subplots(1, ncols)


def _truth(y: np.ndarray) -> dict[str, np.ndarray]:
    return {"click": y >= 1, "conversion": y == 2}


def roc_figure(predictions: dict[str, dict[str, np.ndarray]], y: np.ndarray) -> Any:
    """ROC curves of pCTR against clicks and of pCTCVR against conversions, one curve per model.

    ``predictions``: model name -> ``{"p_ctr": ..., "p_ctcvr": ...}`` on the test rows; ``y`` funnel labels.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, axes = _figure(10, 4.2, 2)
    truth = _truth(np.asarray(y))
    for ax, (key, target, title) in zip(axes, _TARGETS, strict=True):
        for name, p in predictions.items():
            if np.unique(truth[target]).size < 2:
                continue
            fpr, tpr, _ = roc_curve(truth[target], p[key])
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(truth[target], p[key]):.4f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def calibration_figure(predictions: dict[str, dict[str, np.ndarray]], y: np.ndarray, n_bins: int = 10) -> Any:
    """Reliability plots of pCTR (clicks) and pCTCVR (conversions): observed against predicted rate per bin.

    The bins are :func:`gbdt_pwiser.metrics.reliability_curve`'s (equal
    weight); both axes are logarithmic (the rates are small) and bins without
    a positive are not drawn. A calibrated model lies on the diagonal; the
    legend gives predicted / observed and the ECE of each model.
    """
    from ..metrics import calibration_ratio, expected_calibration_error, reliability_curve

    fig, axes = _figure(10, 4.4, 2)
    truth = _truth(np.asarray(y))
    for ax, (key, target, title) in zip(axes, _TARGETS, strict=True):
        lo, hi = np.inf, 0.0
        for name, p in predictions.items():
            mean_p, rate, _ = reliability_curve(truth[target], p[key], n_bins)
            keep = (rate > 0) & (mean_p > 0)
            ratio = calibration_ratio(truth[target], p[key])
            ece = expected_calibration_error(truth[target], p[key], n_bins)
            ax.plot(mean_p[keep], rate[keep], "o-", ms=4, label=f"{name} (pred/obs {ratio:.2f}, ECE {ece:.2g})")
            if keep.any():
                lo = min(lo, mean_p[keep].min(), rate[keep].min())
                hi = max(hi, mean_p[keep].max(), rate[keep].max())
        if hi > 0:
            ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(f"{title}: {n_bins} equal-weight bins", fontsize=10)
        ax.set_xlabel("mean predicted rate")
        ax.set_ylabel("observed rate")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def sweep_figure(points: list[dict[str, float]], title: str) -> Any:
    """AUCs against λ (``points``: one dict per λ with ``lam`` and the metrics of :func:`gbdt_pwiser.evaluate`)."""
    fig, ax = _figure(6.4, 4.2)
    lams = [r["lam"] for r in points]
    for key, label, style in (
        ("ctr_auc", "click AUC of pCTR", "o-"),
        ("ctr_conv_auc", "conversion AUC of pCTR", "s-"),
        ("ctcvr_auc", "CTCVR AUC", "^-"),
    ):
        ax.plot(lams, [r[key] for r in points], style, label=label)
    ax.set_xlabel("λ (weight of PWiseR)")
    ax.set_ylabel("AUC on the held-out groups")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def tradeoff_figure(curves: dict[str, list[dict[str, Any]]], y_key: str, title: str) -> Any:
    """Click AUC (x) against ``y_key`` (y), one curve per method over its knob, with SD error bars."""
    ylabel = {"ctr_conv_auc": "conversion AUC of pCTR", "ctcvr_auc": "CTCVR AUC (pCTR·pCVR)"}[y_key]
    fig, ax = _figure(6.8, 4.6)
    for label, pts in curves.items():
        xs = [p["ctr_auc"] for p in pts]
        ys = [p[y_key] for p in pts]

        def err(key: str, pts: list[dict[str, Any]] = pts) -> list[float]:
            return [0.0 if not math.isfinite(p.get(f"{key}_sd", float("nan"))) else p[f"{key}_sd"] for p in pts]

        line = ax.errorbar(xs, ys, xerr=err("ctr_auc"), yerr=err(y_key), fmt="o-", capsize=3, label=label)
        for p in pts:
            if p.get("knob") is not None:
                ax.annotate(
                    f"{p['knob']}={p['value']:g}",
                    (p["ctr_auc"], p[y_key]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                    color=line[0].get_color(),
                )
    ax.set_xlabel("click AUC of pCTR")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
