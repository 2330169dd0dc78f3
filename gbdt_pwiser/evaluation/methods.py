"""The methods PWiseR competes with, each over its knob, as models a comparison fits.

A *method* is a way to train the CTR side; a :class:`Model` is a method with
one value of its knob:

``bce``      the chain of :class:`~gbdt_pwiser.CTCVRClassifier` with ``lam=0`` (plain BCE). No knob.
``pwiser``   the chain with BCE + λ·PWiseR, knob λ (λ = 0 is the BCE chain).
``weighted`` conversion-weighted BCE: ``CTCVRClassifier(lam=0, conversion_weight=α)`` — its CTR booster
             weighs converted rows ``1 + α`` times, its CVR booster is trained as the BCE chain's — knob α
             (α = 0 is the BCE chain).
``ranker``   the boosters' own ranking objective on funnel labels (relevance 0/1/2 within a group):
             XGBoost ``rank:pairwise`` with ``qid``, LightGBM ``lambdarank`` with group sizes. Its
             scores are no probabilities: pCTR is a Platt calibration ``σ(a·score + b)`` fitted
             on the training rows against clicks (monotone, so the rank-based CTR and conversion
             AUCs are those of the raw score); pCVR is the BCE chain's. No knob.
``shared``   ``CTCVRClassifier(structure="shared")``, knob λ (XGBoost only).

Models with the same estimator settings are one fit (``bce``, ``pwiser`` at
λ = 0 and ``weighted`` at α = 0 are the same BCE chain): :attr:`Model.key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = ["METHODS", "Method", "Model", "models", "fit_ranker"]


@dataclass(frozen=True)
class Method:
    """A competitor: its name, the label of its curve, its knob (``"lam"``, ``"alpha"`` or None)."""

    name: str
    label: str
    knob: str | None


#: name -> Method
METHODS: dict[str, Method] = {
    "bce": Method("bce", "BCE chain", None),
    "pwiser": Method("pwiser", "PWiseR chain (λ)", "lam"),
    "weighted": Method("weighted", "conversion-weighted BCE (α)", "alpha"),
    "ranker": Method("ranker", "ranking objective on funnel labels", None),
    "shared": Method("shared", "shared multi-output booster (λ)", "lam"),
}
_SYMBOL = {"lam": "λ", "alpha": "α"}


@dataclass(frozen=True)
class Model:
    """One method at one value of its knob (``value`` None for a method without knob)."""

    method: str
    value: float | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """What identifies the fit: models with equal keys are the same estimator."""
        v = 0.0 if self.value is None else float(self.value)
        if self.method in ("bce", "pwiser", "weighted"):
            return ("chain", v if self.method == "pwiser" else 0.0, v if self.method == "weighted" else 0.0)
        return (self.method, v)

    @property
    def name(self) -> str:
        """The model's name in tables: ``BCE``, ``PWiseR (λ=1)``, ``weighted BCE (α=1)``, ``shared (λ=1)``,
        ``ranker``."""
        kind, *values = self.key
        if kind == "chain":
            lam, alpha = values
            if lam == 0 and alpha == 0:
                return "BCE"
            return f"PWiseR (λ={lam:g})" if alpha == 0 else f"weighted BCE (α={alpha:g})"
        if kind == "shared":
            return f"shared (λ={values[0]:g})"
        return kind

    def params(self) -> dict[str, Any]:
        """The estimator parameters of this model (over the comparison's common ones)."""
        kind, *values = self.key
        if kind == "chain":
            return {"lam": values[0], "conversion_weight": values[1]}
        if kind == "shared":
            return {"lam": values[0], "structure": "shared", "cvr_params": None}
        return {"lam": 0.0}


def _values(value: float | Sequence[float], what: str) -> list[float]:
    from .._validation import check_real

    raw = [value] if np.isscalar(value) else list(value)  # type: ignore[arg-type]
    if not raw:
        raise ValueError(f"{what} is empty")
    return list(dict.fromkeys(check_real(v, what, lo=0.0) for v in raw))


def models(
    methods: Sequence[str], lam: float | Sequence[float] = 1.0, conversion_weight: float | Sequence[float] = 1.0
) -> list[Model]:
    """The models of ``methods``: ``pwiser`` and ``shared`` at each λ of ``lam``, ``weighted`` at each α.

    Examples
    --------
    >>> from gbdt_pwiser.evaluation import models
    >>> [m.name for m in models(["bce", "pwiser", "weighted"], lam=[1.0, 2.0], conversion_weight=1.0)]
    ['BCE', 'PWiseR (λ=1)', 'PWiseR (λ=2)', 'weighted BCE (α=1)']
    """
    if isinstance(methods, str) or not methods:
        raise ValueError(f"methods must be a non-empty list of method names among {list(METHODS)}, got {methods!r}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    lams, alphas = _values(lam, "lam"), _values(conversion_weight, "conversion_weight")
    out: list[Model] = []
    for name in dict.fromkeys(methods):
        knob = METHODS[name].knob
        values = lams if knob == "lam" else alphas if knob == "alpha" else [None]
        out += [Model(name, v) for v in values]
    return out


def fit_ranker(est: Any, train: Any, X_test: Any) -> np.ndarray:
    """pCTR of the boosters' ranking objective (sizes of ``est``), Platt-calibrated on the training clicks."""
    from sklearn.linear_model import LogisticRegression

    order = np.argsort(train.group, kind="stable")
    X, y, g = train.X.iloc[order], train.y[order], train.group[order]
    kw: dict[str, Any] = {
        "n_estimators": est.n_estimators,
        "learning_rate": est.learning_rate,
        "max_depth": est.max_depth,
        "random_state": 0 if est.random_state is None else est.random_state,
        "n_jobs": est.n_jobs,
    }
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
    return expit(a * np.asarray(r.predict(X_test), dtype=np.float64) + b)
