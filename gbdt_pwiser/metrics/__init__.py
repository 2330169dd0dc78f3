"""The metrics (docs/mathematics.md §6), each defined once: AUC/GAUC for funnel labels, calibration (predicted /
observed, expected calibration error, reliability curve), eval-metric adapters for XGBoost/LightGBM,
``evaluate`` for fitted pCTR/pCVR/pCTCVR models, and the scikit-learn scorers (``scoring=``) built on the
same functions.

The adapters score raw margins (what a custom objective's booster outputs):
AUC is rank-based, so margins and probabilities give the same value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit
from sklearn.metrics import log_loss, roc_auc_score

from .._labels import as_funnel
from .._validation import check_labels, group_codes
from .reliability import calibration_ratio, expected_calibration_error, reliability_curve

__all__ = [
    "auc",
    "gauc",
    "click_auc",
    "conversion_auc",
    "clicked_conversion_auc",
    "click_gauc",
    "conversion_gauc",
    "calibration_ratio",
    "reliability_curve",
    "expected_calibration_error",
    "xgb_metric",
    "lgb_metric",
    "METRICS",
    "margin_metric",
    "evaluate",
    "evaluate_predictions",
    "METRIC_LABELS",
    "ctr_auc_scorer",
    "cvr_auc_scorer",
    "ctcvr_auc_scorer",
    "pctr_conversion_auc_scorer",
]


def auc(y_true: npt.ArrayLike, score: npt.ArrayLike, weight: npt.ArrayLike | None = None) -> float:
    """ROC AUC; NaN when only one class is present.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import auc
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    yt = np.asarray(y_true)
    if yt.size == 0 or np.unique(yt).size < 2:
        return float("nan")
    return float(roc_auc_score(yt, np.asarray(score, dtype=np.float64), sample_weight=weight))


def gauc(y_true: npt.ArrayLike, score: npt.ArrayLike, group: npt.ArrayLike) -> float:
    """Group AUC: impression-weighted mean of per-group AUC over groups with both classes.

    Vectorised: average ranks within each group (ties count 1/2), then the
    Mann–Whitney statistic per group.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import gauc
    >>> gauc([0, 1, 1, 0, 0, 1], [0.1, 0.9, 0.2, 0.3, 0.5, 0.4], [0, 0, 0, 1, 1, 1])  # (1.0 + 0.5) / 2
    0.75
    """
    yt = np.asarray(y_true).astype(np.float64)
    s = np.asarray(score, dtype=np.float64)
    if yt.shape != s.shape:
        raise ValueError(f"y_true and score have different shapes: {yt.shape} != {s.shape}")
    codes = group_codes(group, yt.size)
    if yt.size == 0:
        return float("nan")
    ranks = pd.Series(s).groupby(codes).rank(method="average").to_numpy()
    G = int(codes.max()) + 1
    n = np.bincount(codes, minlength=G).astype(np.float64)
    npos = np.bincount(codes, weights=yt, minlength=G)
    rpos = np.bincount(codes, weights=ranks * yt, minlength=G)
    nneg = n - npos
    ok = (npos > 0) & (nneg > 0)
    if not np.any(ok):
        return float("nan")
    per = (rpos[ok] - npos[ok] * (npos[ok] + 1) / 2) / (npos[ok] * nneg[ok])
    return float(np.average(per, weights=n[ok]))


def click_auc(score: npt.ArrayLike, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float:
    """AUC of a score against clicks (``y >= 1``) over all exposures: the CTR AUC of pCTR.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import click_auc
    >>> click_auc([0.1, 0.6, 0.4, 0.3], [0, 1, 2, 0])
    1.0
    """
    lab = check_labels(y)
    return auc(lab >= 1, score, sample_weight)


def conversion_auc(score: npt.ArrayLike, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float:
    """AUC of a score against conversions (``y == 2``) over all exposures.

    The CTCVR AUC of pCTCVR, or the conversion AUC of pCTR.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import conversion_auc
    >>> conversion_auc([0.1, 0.6, 0.4, 0.3], [0, 1, 2, 2])
    0.5
    """
    lab = check_labels(y)
    return auc(lab == 2, score, sample_weight)


def clicked_conversion_auc(score: npt.ArrayLike, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float:
    """AUC of a score against conversions over the clicked exposures (``y >= 1``): the CVR AUC of pCVR.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import clicked_conversion_auc
    >>> clicked_conversion_auc([0.9, 0.2, 0.6, 0.3], [0, 1, 2, 1])  # row 0 (no click) is left out
    1.0
    """
    lab = check_labels(y)
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    if s.size != lab.size:
        raise ValueError(f"score has {s.size} rows but y has {lab.size}")
    clicked = lab >= 1
    w = None if sample_weight is None else np.asarray(sample_weight)[clicked]
    return auc(lab[clicked] == 2, s[clicked], w)


def click_gauc(score: npt.ArrayLike, y: npt.ArrayLike, group: npt.ArrayLike) -> float:
    """GAUC of a score against clicks, by group."""
    return gauc(check_labels(y) >= 1, score, group)


def conversion_gauc(score: npt.ArrayLike, y: npt.ArrayLike, group: npt.ArrayLike) -> float:
    """GAUC of a score against conversions, by group."""
    return gauc(check_labels(y) == 2, score, group)


#: The eval metrics by name, for :func:`xgb_metric`, :func:`lgb_metric` and early stopping:
#: ``name -> (function(score, y[, group]), needs_group)``.
METRICS: dict[str, tuple[Callable[..., float], bool]] = {
    # name: (function(score, y[, group]), needs_group)
    "auc_click": (click_auc, False),
    "auc_conv": (conversion_auc, False),
    "auc_click_group": (click_gauc, True),
    "auc_conv_group": (conversion_gauc, True),
}


def margin_metric(
    name: str, y: np.ndarray, group: np.ndarray | None = None, ctr_prob: np.ndarray | None = None
) -> Callable[[np.ndarray], float]:
    """``margin -> score``: an early-stopping metric of a booster's raw margin on one eval set (higher is better).

    The one definition every training engine uses. ``name`` is a key of
    :data:`METRICS` (AUC/GAUC of the margin against clicks or conversions;
    rank-based, so the margin stands for its probability; the GAUC metrics
    take ``group``, one group when None) or ``"auc_ctcvr"``: the CTCVR AUC of
    pCTR·σ(u) with ``ctr_prob`` given (the entire-space CVR booster), or of
    σ(z)·σ(u) from ``(n, 2)`` margins ``[z, u]`` (the shared booster).

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.metrics import margin_metric
    >>> y = np.array([0, 1, 2, 2])
    >>> margin_metric("auc_click", y)(np.array([-1.0, 0.5, 0.2, 0.9]))
    1.0
    >>> margin_metric("auc_ctcvr", y, ctr_prob=np.full(4, 0.5))(np.array([-1.0, 0.5, 0.2, 0.9]))
    0.75
    """
    if name == "auc_ctcvr":
        if ctr_prob is not None:
            return lambda u: conversion_auc(ctr_prob * expit(u), y)
        from ..objectives.multitask import shared_probabilities

        return lambda m: conversion_auc(shared_probabilities(m)[2], y)
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {[*sorted(METRICS), 'auc_ctcvr']}")
    fn, needs_group = METRICS[name]
    if needs_group:
        g = np.zeros(y.size, dtype=np.int64) if group is None else group
        return lambda z: fn(z, y, g)
    return lambda z: fn(z, y)


def _check_names(names: Sequence[str]) -> tuple[str, ...]:
    if not names:
        names = ("auc_click", "auc_conv")
    for nm in names:
        if nm not in METRICS:
            raise ValueError(f"unknown metric {nm!r}; choose from {sorted(METRICS)}")
    return tuple(names)


def _evaluate(
    names: tuple[str, ...], score: np.ndarray, y: np.ndarray, ptr: np.ndarray | None
) -> list[tuple[str, float]]:
    out = []
    group = None
    for nm in names:
        fn, needs_group = METRICS[nm]
        if needs_group:
            if group is None:
                sizes = np.diff(ptr) if ptr is not None and ptr.size > 1 else np.array([y.size])
                group = np.repeat(np.arange(sizes.size), sizes)
            out.append((nm, fn(score, y, group)))
        else:
            out.append((nm, fn(score, y)))
    return out


def xgb_metric(*names: str) -> Callable[[np.ndarray, Any], list[tuple[str, float]]]:
    """``custom_metric`` for ``xgb.train`` reporting AUCs of the margin on funnel labels.

    Names: ``"auc_click"``, ``"auc_conv"``, ``"auc_click_group"``, ``"auc_conv_group"``
    (the last two are GAUC, with groups from the evaluation DMatrix's ``qid``).
    Every name starts with ``auc`` so that XGBoost's early stopping maximises
    it; early stopping watches the last name.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import xgb_metric
    >>> metric = xgb_metric("auc_click", "auc_conv")
    >>> # xgb.train(params, dtrain, evals=[(dvalid, "valid")], obj=obj, custom_metric=metric)
    """
    chosen = _check_names(names)

    def metric(predt: np.ndarray, dmat: Any) -> list[tuple[str, float]]:
        y = check_labels(dmat.get_label(), name="DMatrix label")
        ptr = np.asarray(dmat.get_uint_info("group_ptr"), dtype=np.int64)
        return _evaluate(chosen, np.asarray(predt).reshape(-1), y, ptr)

    metric.__name__ = "pwiser_metric"
    return metric


def lgb_metric(*names: str) -> Callable[[np.ndarray, Any], list[tuple[str, float, bool]]]:
    """``feval`` for ``lgb.train`` reporting the same AUCs (higher is better).

    Examples
    --------
    >>> from gbdt_pwiser.metrics import lgb_metric
    >>> feval = lgb_metric("auc_click", "auc_conv_group")
    >>> # lgb.train(params, dtrain, valid_sets=[dvalid], feval=feval)
    """
    chosen = _check_names(names)

    def feval(preds: np.ndarray, ds: Any) -> list[tuple[str, float, bool]]:
        y = check_labels(ds.get_label(), name="Dataset label")
        grp = ds.get_group()
        ptr = None
        if grp is not None:
            from ..objectives._prepare import ptr_from_sizes

            ptr = ptr_from_sizes(grp, y.size, "Dataset group")
        return [(nm, v, True) for nm, v in _evaluate(chosen, np.asarray(preds).reshape(-1), y, ptr)]

    feval.__name__ = "pwiser_feval"
    return feval


# --------------------------------------------------------------------------- evaluate

#: What each key of :func:`evaluate`'s result measures, as the tables print it.
METRIC_LABELS: dict[str, str] = {
    "ctr_auc": "CTR AUC (pCTR vs click, all rows)",
    "cvr_auc": "CVR AUC (pCVR vs conversion, clicked rows)",
    "ctcvr_auc": "CTCVR AUC (pCTCVR vs conversion, all rows)",
    "ctr_conv_auc": "conversion AUC of pCTR (all rows)",
    "ctr_gauc": "CTR GAUC (by group)",
    "ctcvr_gauc": "CTCVR GAUC (by group)",
    "ctr_logloss": "CTR log loss",
    "ctcvr_logloss": "CTCVR log loss",
    "ctr_ratio": "pCTR predicted / observed clicks",
    "ctcvr_ratio": "pCTCVR predicted / observed conv.",
    "ctr_ece": "pCTR calibration error (ECE)",
    "ctcvr_ece": "pCTCVR calibration error (ECE)",
}
#: bins of the expected calibration errors of :func:`evaluate_predictions`
ECE_BINS = 10


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
        Keys of :data:`METRIC_LABELS`: the AUCs, GAUCs and log losses, and the
        calibration of pCTR (against clicks) and of pCTCVR (against
        conversions): predicted / observed (:func:`calibration_ratio`) and the
        expected calibration error over 10 equal-weight bins
        (:func:`expected_calibration_error`). A metric whose rows hold one
        class only is NaN.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import evaluate_predictions
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
    out = {
        "ctr_auc": click_auc(pc, lab),
        "cvr_auc": clicked_conversion_auc(pv, lab),
        "ctcvr_auc": conversion_auc(pctcvr, lab),
        "ctr_conv_auc": conversion_auc(pc, lab),
        "ctr_gauc": gauc(click, pc, group) if group is not None else float("nan"),
        "ctcvr_gauc": gauc(conv, pctcvr, group) if group is not None else float("nan"),
        "ctr_logloss": _logloss(click, pc),
        "ctcvr_logloss": _logloss(conv, pctcvr),
        "ctr_ratio": calibration_ratio(click, pc),
        "ctcvr_ratio": calibration_ratio(conv, pctcvr),
        "ctr_ece": expected_calibration_error(click, pc, ECE_BINS),
        "ctcvr_ece": expected_calibration_error(conv, pctcvr, ECE_BINS),
    }
    return out


def evaluate(model: Any, X: Any, y: npt.ArrayLike, group: npt.ArrayLike | None = None) -> dict[str, float]:
    """Evaluate a fitted CTR/CVR model on ``(X, y, group)``.

    ``model`` needs ``predict_ctr(X)`` and ``predict_cvr(X)`` (a
    :class:`~gbdt_pwiser.CTCVRClassifier`, or the neural baselines). Returns the
    figures of :func:`evaluate_predictions`: AUC of pCTR on clicks (all rows),
    of pCVR on conversions (clicked rows), of pCTCVR on conversions (all rows),
    the conversion AUC of pCTR, GAUC by group, log loss, and the calibration
    of pCTR and pCTCVR (predicted / observed, expected calibration error).

    Examples
    --------
    >>> from gbdt_pwiser import CTCVRClassifier, evaluate
    >>> from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
    >>> train, test = train_test_split_by_group(make_ad_log(400, ctr=0.1, cvr=0.2, random_state=0))
    >>> model = CTCVRClassifier(n_estimators=10, n_jobs=1).fit(train.X, train.y, group=train.group)
    >>> m = evaluate(model, test.X, test.y, test.group)
    >>> sorted(k for k in m if "ratio" in k or "ece" in k)
    ['ctcvr_ece', 'ctcvr_ratio', 'ctr_ece', 'ctr_ratio']
    >>> 0.5 < m["ctr_ratio"] < 2.0
    True
    """
    return evaluate_predictions(as_funnel(y), model.predict_ctr(X), model.predict_cvr(X), group)


# --------------------------------------------------------------------------- scikit-learn scorers


class _AUCScorer:
    """A scorer ``scorer(estimator, X, y, sample_weight=None)`` for ``scoring=``.

    Calls one prediction method of a fitted :class:`~gbdt_pwiser.CTCVRClassifier`
    (or of a ``Pipeline`` ending in one: the other steps transform ``X`` first)
    and scores it with one of the metric functions above; ``y`` is funnel labels
    or ``[click, conversion]``, as in ``CTCVRClassifier.fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GroupKFold, cross_val_score
    >>> from gbdt_pwiser import CTCVRClassifier
    >>> from gbdt_pwiser.metrics import click_auc, ctr_auc_scorer, pctr_conversion_auc_scorer
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(200, 3)), rng.choice([0, 1, 2], size=200, p=[0.7, 0.2, 0.1])
    >>> model = CTCVRClassifier(n_estimators=3, n_jobs=1).fit(X, y, group="all")
    >>> ctr_auc_scorer(model, X, y) == click_auc(model.predict_ctr(X), y)
    True
    >>> scores = cross_val_score(
    ...     CTCVRClassifier(n_estimators=3, n_jobs=1, lam=0.0),
    ...     X,
    ...     y,
    ...     groups=np.repeat(np.arange(20), 10),
    ...     cv=GroupKFold(2),
    ...     scoring=pctr_conversion_auc_scorer,
    ... )
    >>> scores.shape
    (2,)
    """

    def __init__(self, name: str, method: str, metric: Callable[..., float]) -> None:
        self._name, self._method, self._metric = name, method, metric

    def __call__(self, estimator: Any, X: Any, y_true: Any, sample_weight: Any = None) -> float:
        from sklearn.pipeline import Pipeline

        while isinstance(estimator, Pipeline):
            if len(estimator.steps) > 1:
                X = estimator[:-1].transform(X)
            estimator = estimator.steps[-1][1]
        score = getattr(estimator, self._method)(X)
        return self._metric(score, as_funnel(y_true), sample_weight)

    def __repr__(self) -> str:
        return self._name


#: AUC of pCTR against clicks over all exposures (:func:`click_auc` of ``predict_ctr``).
ctr_auc_scorer = _AUCScorer("ctr_auc_scorer", "predict_ctr", click_auc)
#: AUC of pCVR against conversions over the clicked exposures (:func:`clicked_conversion_auc`).
cvr_auc_scorer = _AUCScorer("cvr_auc_scorer", "predict_cvr", clicked_conversion_auc)
#: AUC of pCTCVR against conversions over all exposures (what ``CTCVRClassifier.score`` returns).
ctcvr_auc_scorer = _AUCScorer("ctcvr_auc_scorer", "predict_ctcvr", conversion_auc)
#: AUC of pCTR against conversions over all exposures (what the PWiseR term improves).
pctr_conversion_auc_scorer = _AUCScorer("pctr_conversion_auc_scorer", "predict_ctr", conversion_auc)
