"""Is PWiseR worth it on this log? The methods it competes with, each over its knob, and the pairs it has.

``gbdt-pwiser compare --evidence`` (and ``benchmarks/``) use this module; it
builds estimators and knows nothing about the command line. A *method* turns
training data and one value of its knob into test predictions
``(pCTR, pCVR)``:

``pwiser``   the chain of :class:`~gbdt_pwiser.CTCVRClassifier`, knob λ (λ = 0 is the BCE chain).
``weighted`` conversion-weighted BCE: the CTR booster with ``sample_weight = 1 + α·conversion``, knob α
             (α = 0 is the BCE chain).
``ranker``   the boosters' own ranking objective on funnel labels (relevance 0/1/2 within a group):
             XGBoost ``rank:pairwise`` with ``qid``, LightGBM ``lambdarank`` with group sizes. Its
             scores are no probabilities: pCTR is a Platt calibration ``σ(a·score + b)`` fitted
             on the training rows against clicks (monotone, so the rank-based CTR and conversion
             AUCs are those of the raw score). No knob.
``shared``   ``CTCVRClassifier(structure="shared")``, knob λ (XGBoost only).

The CTR-side methods (``weighted``, ``ranker``) take pCVR from the BCE chain's
CVR booster: with ``cvr_space="clicked"`` that booster does not depend on the
CTR model at all, so pCTCVR = pCTR·pCVR compares the CTR models alone. (With
``cvr_space="entire"`` that CVR booster was fitted against the BCE chain's pCTR,
an approximation for these two methods.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.special import expit

__all__ = ["METHODS", "Method", "pair_counts", "evaluate_point", "bootstrap_sd", "summarise"]

#: metrics of a trade-off point: key -> (target, score)
POINT_METRICS = {"ctr_auc": ("click", 0), "ctr_conv_auc": ("conversion", 0), "ctcvr_auc": ("conversion", 2)}


def pair_counts(y: np.ndarray, group: np.ndarray) -> dict[str, float]:
    """The pairs PWiseR has: per group conversion × click-only and conversion × non-click pairs.

    Returns totals, the number of groups, the share of groups holding any pair
    and the mean number of click-only partners per conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.evidence import pair_counts
    >>> c = pair_counts(np.array([2, 1, 0, 0, 1, 0]), np.array([0, 0, 0, 1, 1, 1]))
    >>> c["pairs_click_only"], c["pairs_no_click"], c["share_groups_with_pairs"]
    (1, 1, 0.5)
    """
    y = np.asarray(y)
    _, codes = np.unique(np.asarray(group), return_inverse=True)
    k = int(codes.max()) + 1 if codes.size else 0
    conv = np.bincount(codes, weights=(y == 2), minlength=k)
    click_only = np.bincount(codes, weights=(y == 1), minlength=k)
    no_click = np.bincount(codes, weights=(y == 0), minlength=k)
    p1, p2 = conv * click_only, conv * no_click
    n_conv = float(conv.sum())
    return {"groups": k, "conversions": int(n_conv), "pairs_click_only": int(p1.sum()),
            "pairs_no_click": int(p2.sum()),
            "share_groups_with_pairs": float(np.mean((p1 + p2) > 0)) if k else 0.0,
            "click_only_partners_per_conversion": float(p1.sum() / n_conv) if n_conv else 0.0}


def support_warning(counts: dict[str, float], min_conversions: int = 100, min_partners: float = 0.5) -> str | None:
    """One line when the test data cannot support a verdict on PWiseR, else None."""
    if counts["conversions"] < min_conversions:
        return (f"only {counts['conversions']} test conversions (< {min_conversions}): differences of conversion "
                "AUCs are mostly noise here")
    if counts["click_only_partners_per_conversion"] < min_partners:
        return (f"only {counts['click_only_partners_per_conversion']:.2f} click-only partners per conversion: "
                "PWiseR's conversion-vs-click-only term has little to work on")
    return None


@dataclass
class Method:
    """A competitor: ``fit(train, test, value, base) -> (pCTR, pCVR)`` on the test rows, over ``knob``."""

    name: str
    label: str
    knob: str | None
    fit: Callable[..., tuple[np.ndarray, np.ndarray]]


def _fit_pwiser(make: Callable[..., Any], train: Any, test: Any, value: float, base: Any):
    m = make(lam=value).fit(train.X, train.y, group=train.group)
    return m.predict_ctr(test.X), m.predict_cvr(test.X)


def _fit_shared(make: Callable[..., Any], train: Any, test: Any, value: float, base: Any):
    m = make(lam=value, structure="shared", cvr_params=None).fit(train.X, train.y, group=train.group)
    return m.predict_ctr(test.X), m.predict_cvr(test.X)


def _fit_weighted(make: Callable[..., Any], train: Any, test: Any, value: float, base: Any):
    w = 1.0 + value * (train.y == 2)
    m = make(lam=0.0).fit(train.X, train.y, group=train.group, sample_weight=w)
    return m.predict_ctr(test.X), base.predict_cvr(test.X)


def _fit_ranker(make: Callable[..., Any], train: Any, test: Any, value: float, base: Any):
    from sklearn.linear_model import LogisticRegression

    est = make(lam=0.0)
    order = np.argsort(train.group, kind="stable")
    X, y, g = train.X.iloc[order], train.y[order], train.group[order]
    kw: dict[str, Any] = {"n_estimators": est.n_estimators, "learning_rate": est.learning_rate,
                          "max_depth": est.max_depth, "random_state": 0 if est.random_state is None
                          else est.random_state, "n_jobs": est.n_jobs}
    if est.backend == "xgboost":
        import xgboost as xgb

        r = xgb.XGBRanker(objective="rank:pairwise", tree_method="hist", enable_categorical=True, **kw)
        r.fit(X, y, qid=g)
    else:
        import lightgbm as lgb

        _, sizes = np.unique(g, return_counts=True)
        r = lgb.LGBMRanker(objective="lambdarank", verbose=-1, deterministic=True, force_col_wise=True, **kw)
        r.fit(X, y, group=sizes)
    s_train = np.asarray(r.predict(X), dtype=np.float64)
    platt = LogisticRegression(C=1e6).fit(s_train.reshape(-1, 1), (y >= 1).astype(int))
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    return expit(a * np.asarray(r.predict(test.X), dtype=np.float64) + b), base.predict_cvr(test.X)


#: name -> Method
METHODS: dict[str, Method] = {
    "pwiser": Method("pwiser", "PWiseR chain (λ)", "lam", _fit_pwiser),
    "weighted": Method("weighted", "conversion-weighted BCE (α)", "alpha", _fit_weighted),
    "ranker": Method("ranker", "ranking objective on funnel labels", None, _fit_ranker),
    "shared": Method("shared", "shared multi-output booster (λ)", "lam", _fit_shared),
}


def _targets(y: np.ndarray) -> dict[str, np.ndarray]:
    return {"click": y >= 1, "conversion": y == 2}


def evaluate_point(pctr: np.ndarray, pcvr: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Click AUC and conversion AUC of pCTR, and the CTCVR AUC of pCTR·pCVR, on the test rows."""
    from .metrics import auc

    scores = (pctr, pcvr, pctr * pcvr)
    t = _targets(y)
    return {k: float(auc(t[target], scores[col])) for k, (target, col) in POINT_METRICS.items()}


def bootstrap_sd(pctr: np.ndarray, pcvr: np.ndarray, y: np.ndarray, group: np.ndarray, n_resamples: int,
                 seed: int) -> dict[str, float]:
    """Standard deviation of each point metric over a bootstrap of test groups (the error bar of one split)."""
    from ._bootstrap import group_bootstrap_draws, weighted_auc

    _, codes = np.unique(group, return_inverse=True)
    draws = group_bootstrap_draws(int(codes.max()) + 1, n_resamples, seed)
    counts = np.stack([np.bincount(d, minlength=int(codes.max()) + 1) for d in draws])[:, codes]
    scores = (pctr, pcvr, pctr * pcvr)
    t = _targets(y)
    return {k: float(np.nanstd(weighted_auc(t[target], scores[col], counts), ddof=1))
            for k, (target, col) in POINT_METRICS.items()}


def summarise(points: list[dict[str, float]]) -> dict[str, float]:
    """Mean and SD over seeds of each point metric (``{"ctr_auc": mean, "ctr_auc_sd": sd, ...}``)."""
    out: dict[str, float] = {}
    for k in POINT_METRICS:
        v = np.array([p[k] for p in points], dtype=np.float64)
        out[k] = float(np.nanmean(v))
        out[f"{k}_sd"] = float(np.nanstd(v, ddof=1)) if v.size > 1 else float("nan")
    return out
