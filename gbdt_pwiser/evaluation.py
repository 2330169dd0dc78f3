"""``evaluate``: the field's standard figures for a pCTR/pCVR/pCTCVR model (SPEC §6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import log_loss

from ._validation import check_labels
from .metrics import auc, gauc

__all__ = ["evaluate", "evaluate_predictions", "METRIC_LABELS"]

METRIC_LABELS: dict[str, str] = {
    "ctr_auc": "CTR AUC (pCTR vs click, all rows)",
    "cvr_auc": "CVR AUC (pCVR vs conversion, clicked rows)",
    "ctcvr_auc": "CTCVR AUC (pCTCVR vs conversion, all rows)",
    "ctr_conv_auc": "conversion AUC of pCTR (all rows)",
    "ctr_gauc": "CTR GAUC (by group)",
    "ctcvr_gauc": "CTCVR GAUC (by group)",
    "ctr_logloss": "CTR log loss",
    "ctcvr_logloss": "CTCVR log loss",
}


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    if np.unique(y).size < 2:
        return float("nan")
    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))


def evaluate_predictions(
    y: npt.ArrayLike,
    p_ctr: npt.ArrayLike,
    p_cvr: npt.ArrayLike,
    group: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Metrics from predicted probabilities (pCTCVR = pCTR · pCVR).

    Parameters
    ----------
    y : array-like of shape (n,)
        Funnel labels (0 no click, 1 click-only, 2 conversion).
    p_ctr, p_cvr : array-like of shape (n,)
        Predicted click probability and conversion-given-click probability.
    group : array-like of shape (n,), optional
        Group ids for GAUC (NaN results without groups).

    Returns
    -------
    dict
        Keys of :data:`METRIC_LABELS`. A metric whose rows hold one class only is NaN.

    Examples
    --------
    >>> from gbdt_pwiser.evaluation import evaluate_predictions
    >>> m = evaluate_predictions([0, 1, 2, 0], [0.1, 0.6, 0.7, 0.2], [0.1, 0.2, 0.9, 0.1])
    >>> m["ctr_auc"], m["cvr_auc"], m["ctcvr_auc"]
    (1.0, 1.0, 1.0)
    """
    lab = check_labels(y)
    pc = np.asarray(p_ctr, dtype=np.float64).reshape(-1)
    pv = np.asarray(p_cvr, dtype=np.float64).reshape(-1)
    if pc.size != lab.size or pv.size != lab.size:
        raise ValueError(f"predictions have {pc.size}/{pv.size} rows but y has {lab.size}")
    click = (lab >= 1).astype(np.int8)
    conv = (lab == 2).astype(np.int8)
    pctcvr = pc * pv
    clicked = click == 1
    out = {
        "ctr_auc": auc(click, pc),
        "cvr_auc": auc(conv[clicked], pv[clicked]),
        "ctcvr_auc": auc(conv, pctcvr),
        "ctr_conv_auc": auc(conv, pc),
        "ctr_gauc": gauc(click, pc, group) if group is not None else float("nan"),
        "ctcvr_gauc": gauc(conv, pctcvr, group) if group is not None else float("nan"),
        "ctr_logloss": _logloss(click, pc),
        "ctcvr_logloss": _logloss(conv, pctcvr),
    }
    return out


def evaluate(model: Any, X: Any, y: npt.ArrayLike, group: npt.ArrayLike | None = None) -> dict[str, float]:
    """Evaluate a fitted CTR/CVR model on ``(X, y, group)``.

    ``model`` needs ``predict_ctr(X)`` and ``predict_cvr(X)`` (a
    :class:`~gbdt_pwiser.CTCVRClassifier`, or the neural baselines). Returns the
    figures of :func:`evaluate_predictions`: AUC of pCTR on clicks (all rows),
    of pCVR on conversions (clicked rows), of pCTCVR on conversions (all rows),
    the conversion AUC of pCTR, GAUC by group and log loss.
    """
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 2:
        from ._labels import funnel_label

        y = funnel_label(y[:, 0], y[:, 1])
    return evaluate_predictions(y, model.predict_ctr(X), model.predict_cvr(X), group)
