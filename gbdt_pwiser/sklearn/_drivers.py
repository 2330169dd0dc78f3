"""The fit drivers: one for the CTR → CVR chain, one for the shared booster, both on any engine.

:func:`fit` is every estimator's ``fit`` after parameter validation: it asks
:mod:`gbdt_pwiser.engines.limits` whether the engine can honour the settings,
lets the engine prepare the data and the eval sets, checks what early stopping
needs, and runs :func:`fit_chain` or :func:`fit_shared`. The drivers decide
*what* each booster learns (objective, rows, starting margin, native
parameters, stopping metric) as :class:`~gbdt_pwiser.engines.Task` objects;
the engine decides *how* (docs/architecture.md). There is no engine- or
booster-specific branch here.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validation import check_random_state
from ..engines import Engine, FitResult, Task, TrainingData, engine_for, engine_kind, limits
from ..engines._inputs import check_monitored, check_native_params
from ..objectives import EntireSpaceCVRObjective, PWiseRObjective, SharedCTCVRObjective
from ._encode import CategoricalCodes

__all__ = ["CHAIN_FITTED", "SHARED_FITTED", "clear_fitted", "fit", "fit_chain", "fit_shared", "store_fit"]

#: Fitted attributes of each structure (``clear_fitted`` drops both before a new fit).
CHAIN_FITTED = ("ctr_booster_", "cvr_booster_", "ctr_init_margin_", "cvr_init_margin_", "n_rounds_ctr_",
                "n_rounds_cvr_", "best_iteration_ctr_", "best_iteration_cvr_", "cvr_fallback_rate_")
SHARED_FITTED = ("booster_", "init_margins_", "n_rounds_", "best_iteration_", "categorical_codes_")


def clear_fitted(est: Any) -> None:
    """Drop the fitted attributes of both structures (a refit may change ``structure``)."""
    for key in CHAIN_FITTED + SHARED_FITTED:
        est.__dict__.pop(key, None)


def fit(est: Any, X: Any, y: Any, group: Any, sample_weight: Any, eval_set: Any, client: Any = None) -> Any:
    """Fit ``est`` on the engine for ``X`` (Dask when ``client`` is given); returns ``est``."""
    limits.check(engine_kind(X, client), est, eval_set=eval_set, group=group)
    check_native_params(est.ctr_params, est.cvr_params, est.device)
    engine = engine_for(est, X, client)
    if est.early_stopping_rounds is not None and eval_set is None:
        raise ValueError("early_stopping_rounds needs an eval_set")
    data = engine.prepare(est, X, y, group, sample_weight)
    try:
        sums = data.sums
        if sums.clicks == 0:
            raise ValueError(
                f"y has only one class: no clicks{'' if sample_weight is None else ' among rows of positive weight'}"
                "; the CTR model needs clicked rows (funnel labels: 0 no click, 1 click only, 2 conversion)")
        evals = engine.prepare_evals(est, eval_set)
        _check_watched(est, engine, evals, sums.has_conversions)
        clear_fitted(est)
        est.classes_ = np.array([0, 1])
        est.backend_, est.structure_ = est.backend, est.structure
        seed, nthread = check_random_state(est.random_state), est._nthread()
        if est.structure == "shared":
            fit_shared(est, engine, data, evals, seed, nthread)
        else:
            fit_chain(est, engine, data, evals, seed, nthread)
    finally:
        engine.close(data)
    return est


def _check_watched(est: Any, engine: Engine, evals: list[Any], has_conv: bool) -> None:
    """With early stopping, the watched (last) eval set must hold both classes of each watched label."""
    if est.early_stopping_rounds is None or not evals:
        return
    (ye,) = engine.eval_labels(evals)[-1:]
    if ye.size == 0:
        raise ValueError("the last eval_set is empty")
    if est.structure == "shared":
        check_monitored(ye, "cvr", est.ctr_stopping_metric, "entire")
        return
    for which in ("ctr", "cvr") if has_conv else ("ctr",):
        check_monitored(ye, which, est.ctr_stopping_metric, est.cvr_space)


def _base_params(est: Any, engine: Engine, seed: int, nthread: int | None) -> dict[str, Any]:
    return engine.library.params(learning_rate=est.learning_rate, max_depth=est.max_depth, seed=seed,
                                 nthread=nthread, device=est.device)


def fit_chain(est: Any, engine: Engine, data: TrainingData, evals: list[Any], seed: int,
              nthread: int | None) -> None:
    """The CTR booster, then the CVR booster; sets the chain's fitted attributes on ``est``."""
    sums = data.sums
    base = _base_params(est, engine, seed, nthread)
    # n_jobs=None: the objectives' kernels run on one thread inside the boosting loop,
    # leaving the cores to the booster (see PWiseRObjective's n_jobs).
    obj_kw = {"device": est.device, "n_jobs": None}
    es = est.early_stopping_rounds

    ctr_obj = PWiseRObjective(lam=est.lam, margin_click_only=est.margin_click_only,
                              margin_no_click=est.margin_no_click, pair_loss=est.pair_loss, pairs=est.pairs,
                              random_state=seed, **obj_kw)
    with est._round_bar("CTR booster") as bar:
        ctr = engine.train(data, Task("ctr", "all", ctr_obj, sums.ctr_margin, {**base, **(est.ctr_params or {})},
                                      est.n_estimators, est.ctr_stopping_metric, es,
                                      tick=None if bar is None else bar.update), evals)
    store_fit(est, "ctr", ctr)
    history = {"ctr": ctr.history}
    if not sums.has_conversions:
        store_fit(est, "cvr", None, w_click=sums.clicks)
    else:
        cvr_params = {**base, **(est.cvr_params or {})}
        if est.cvr_space == "clicked":  # native log-loss on the clicked rows, the library's own intercept
            task = Task("cvr", "clicked", None, 0.0, cvr_params, est.n_estimators, "auc_conv", es)
        else:  # entire space: BCE(pCTR·σ(u), conversion) from the log-odds of the conversion rate among clicks
            task = Task("cvr", "all", EntireSpaceCVRObjective(**obj_kw), sums.cvr_margin, cvr_params,
                        est.n_estimators, "auc_ctcvr", es, ctr=ctr)
        with est._round_bar("CVR booster") as bar:
            task.tick = None if bar is None else bar.update
            cvr = engine.train(data, task, evals)
        store_fit(est, "cvr", cvr)
        history["cvr"] = cvr.history
    est.evals_result_ = history if evals else {}


def fit_shared(est: Any, engine: Engine, data: TrainingData, evals: list[Any], seed: int,
               nthread: int | None) -> None:
    """One two-output booster ``[z, u]``; sets ``booster_``, ``init_margins_`` and the rest on ``est``.

    Category columns reach the booster as codes (:class:`~._encode.CategoricalCodes`;
    XGBoost's multi-output trees refuse categorical features).
    """
    sums = data.sums
    if not sums.has_conversions:
        warnings.warn("y has no conversions: the shared booster's CVR output learns only that none occur "
                      "(pCVR stays near 0)", UserWarning, stacklevel=5)
    enc = CategoricalCodes().fit(data.meta)
    init = np.array([sums.ctr_margin, sums.cvr_margin])
    obj = SharedCTCVRObjective(lam=est.lam, margin_click_only=est.margin_click_only,
                               margin_no_click=est.margin_no_click, pair_loss=est.pair_loss, pairs=est.pairs,
                               random_state=seed, n_jobs=None, ctcvr_weight_ctr=est.ctcvr_weight_ctr)
    params = {**_base_params(est, engine, seed, nthread), **(est.ctr_params or {})}
    with est._round_bar("shared booster") as bar:
        res = engine.train(data, Task("shared", "all", obj, init, params, est.n_estimators, "auc_ctcvr",
                                      est.early_stopping_rounds, transform=enc.transform,
                                      tick=None if bar is None else bar.update), evals)
    est.booster_ = res.booster
    est.init_margins_ = init
    est.n_rounds_ = res.n_rounds
    est.best_iteration_ = res.best_iteration
    est.categorical_codes_ = enc
    est.evals_result_ = {"shared": res.history} if evals else {}


def store_fit(est: Any, which: str, result: FitResult | None, w_click: float | None = None) -> None:
    """Record one booster's :class:`~gbdt_pwiser.engines.FitResult` on ``est`` (``ctr_booster_``...).

    ``which="cvr"`` with ``result=None``: no conversion in the training data;
    pCVR becomes the constant ``0.5 / (w_click + 1)`` (``cvr_fallback_rate_``),
    with a warning.
    """
    setattr(est, f"{which}_booster_", None if result is None else result.booster)
    setattr(est, f"{which}_init_margin_", 0.0 if result is None else float(result.offset))
    setattr(est, f"n_rounds_{which}_", 0 if result is None else result.n_rounds)
    setattr(est, f"best_iteration_{which}_", None if result is None else result.best_iteration)
    if which == "cvr":
        est.cvr_fallback_rate_ = None
        if result is None and w_click is not None:
            est.cvr_fallback_rate_ = 0.5 / (w_click + 1)
            warnings.warn(
                f"y has no conversions: the CVR booster is not trained and pCVR is the constant "
                f"{est.cvr_fallback_rate_:.3g} (0.5 / (clicks + 1))", UserWarning, stacklevel=6,
            )
