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

import copy
import os
import warnings
from functools import partial
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._validation import check_random_state
from ..calibration import Outcomes, calibrate
from ..datasets.split import group_fold, group_holdout
from ..engines import Engine, FitResult, Task, TrainingData, engine_for, engine_kind, limits
from ..engines._inputs import check_monitored, check_native_params
from ..objectives import EntireSpaceCVRObjective, PWiseRObjective, SharedCTCVRObjective
from ._encode import CategoricalCodes

__all__ = [
    "CHAIN_FITTED",
    "SHARED_FITTED",
    "check_continuable",
    "clear_fitted",
    "fit",
    "fit_chain",
    "fit_shared",
    "store_fit",
]

#: Fitted attributes of each structure (``clear_fitted`` drops both before a new fit).
CHAIN_FITTED = (
    "ctr_booster_",
    "cvr_booster_",
    "ctr_init_margin_",
    "cvr_init_margin_",
    "n_rounds_ctr_",
    "n_rounds_cvr_",
    "best_iteration_ctr_",
    "best_iteration_cvr_",
    "cvr_fallback_rate_",
)
SHARED_FITTED = ("booster_", "init_margins_", "n_rounds_", "best_iteration_", "categorical_codes_")


def clear_fitted(est: Any) -> None:
    """Drop the fitted attributes of both structures (a refit may change ``structure``) and the calibration."""
    for key in CHAIN_FITTED + SHARED_FITTED + ("calibration_",):
        est.__dict__.pop(key, None)


def fit(
    est: Any, X: Any, y: Any, group: Any, sample_weight: Any, eval_set: Any, client: Any = None, init_model: Any = None
) -> Any:
    """Fit ``est`` on the engine for ``X`` (Dask when ``client`` is given); returns ``est``.

    ``init_model``: a fitted model (or the path of a saved one) to continue.
    """
    limits.check(engine_kind(X, client), est, eval_set=eval_set, group=group)
    check_native_params(est.ctr_params, est.cvr_params, est.device)
    engine = engine_for(est, X, client)
    if est.early_stopping_rounds is not None and eval_set is None:
        raise ValueError("early_stopping_rounds needs an eval_set")
    previous = _load_previous(est, init_model)
    data = engine.prepare(est, X, y, group, sample_weight)
    try:
        sums = data.sums
        if sums.clicks == 0:
            raise ValueError(
                f"y has only one class: no clicks{'' if sample_weight is None else ' among rows of positive weight'}"
                "; the CTR model needs clicked rows (funnel labels: 0 no click, 1 click only, 2 conversion)"
            )
        if previous is not None:
            check_continuable(est, previous)
        evals = engine.prepare_evals(est, eval_set)
        _check_watched(est, engine, evals, sums.has_conversions)
        clear_fitted(est)
        est.classes_ = np.array([0, 1])
        est.backend_, est.structure_ = est.backend, est.structure
        seed, nthread = check_random_state(est.random_state), est._nthread()
        if est.structure == "shared":
            fit_shared(est, engine, data, evals, seed, nthread, previous)
        else:
            fit_chain(est, engine, data, evals, seed, nthread, previous)
        if getattr(est, "calibration", None) is not None:
            fit_calibration(est, engine, data, seed, nthread, previous)
    finally:
        engine.close(data)
    return est


def _load_previous(est: Any, init_model: Any) -> Any:
    """The fitted model to continue (``init_model``: a fitted estimator or a saved model's path), or None."""
    if init_model is None:
        return None
    if isinstance(init_model, (str, os.PathLike)):
        return type(est).load_model(init_model)
    if not hasattr(init_model, "save_model") or not hasattr(init_model, "predict_ctcvr"):
        raise TypeError(
            f"init_model must be a fitted CTCVRClassifier or the path of a saved one, got {type(init_model).__name__}"
        )
    check_is_fitted(init_model, "structure_")
    # model.fit(..., init_model=model), the daily retrain: the fit clears est's fitted attributes
    # before training, so it continues from a copy holding them (the boosters are not modified)
    return copy.copy(init_model) if init_model is est else init_model


def check_continuable(est: Any, previous: Any) -> None:
    """``previous`` must have been fitted as ``est`` is being fitted: same features, backend, structure."""
    checks = [("backend", previous.backend_, est.backend), ("structure", previous.structure_, est.structure)]
    if est.structure == "chain":
        checks.append(("cvr_space", previous.cvr_space, est.cvr_space))
    for name, was, now in checks:
        if was != now:
            raise ValueError(
                f"init_model was fitted with {name}={was!r}, this fit has {name}={now!r}: continued "
                "training needs the same booster, structure and CVR loss"
            )
    was_names = list(getattr(previous, "feature_names_in_", [])) or None
    now_names = list(getattr(est, "feature_names_in_", [])) or None
    if previous.n_features_in_ != est.n_features_in_ or was_names != now_names:
        raise ValueError(
            f"init_model was fitted on {previous.n_features_in_} features {was_names or ''}, this fit "
            f"has {est.n_features_in_} {now_names or ''}: continued training needs the same features"
        )
    if list(previous._categorical) != list(est._categorical):
        raise ValueError(
            f"init_model was fitted with categorical columns {previous._categorical}, this fit has "
            f"{est._categorical}: continued training needs the same feature types"
        )


def _continue(booster: Any, offset: Any, n_rounds: int) -> FitResult | None:
    """What a task continues from: a fitted booster's first ``n_rounds`` rounds and its offset."""
    return None if booster is None else FitResult(booster, offset, int(n_rounds), None, {})


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
    return engine.library.params(
        learning_rate=est.learning_rate, max_depth=est.max_depth, seed=seed, nthread=nthread, device=est.device
    )


def fit_chain(
    est: Any,
    engine: Engine,
    data: TrainingData,
    evals: list[Any],
    seed: int,
    nthread: int | None,
    previous: Any = None,
    rounds: dict[str, int] | None = None,
) -> None:
    """The CTR booster, then the CVR booster; sets the chain's fitted attributes on ``est``.

    ``previous``: a fitted chain whose boosters each booster continues.
    ``rounds``: boosting rounds per booster (``{"ctr": n, "cvr": n}``) instead of ``n_estimators``.
    """
    rounds = rounds or {}
    sums = data.sums
    alpha = float(est.conversion_weight)
    base = _base_params(est, engine, seed, nthread)
    # n_jobs=None: inside the boosting loop the objectives' kernels take the booster's threads
    # (the estimator's n_jobs), on the booster's own OpenMP team (see PWiseRObjective's n_jobs).
    obj_kw = {"device": est.device, "n_jobs": None}
    es = est.early_stopping_rounds

    ctr_obj = PWiseRObjective(
        lam=est.lam,
        margin_click_only=est.margin_click_only,
        margin_no_click=est.margin_no_click,
        pair_loss=est.pair_loss,
        pairs=est.pairs,
        random_state=seed,
        **obj_kw,
    )
    # conversion weighting: the CTR booster's rows (and its starting margin) weigh conversions 1 + α
    ctr_start = engine.sums(data, alpha).ctr_margin
    with est._round_bar("CTR booster") as bar:
        ctr = engine.train(
            data,
            Task(
                "ctr",
                "all",
                ctr_obj,
                ctr_start,
                {**base, **(est.ctr_params or {})},
                rounds.get("ctr", est.n_estimators),
                est.ctr_stopping_metric,
                es,
                tick=None if bar is None else bar.update,
                conversion_weight=alpha,
                init=None
                if previous is None
                else _continue(previous.ctr_booster_, previous.ctr_init_margin_, previous.n_rounds_ctr_),
            ),
            evals,
        )
    store_fit(est, "ctr", ctr)
    history = {"ctr": ctr.history}
    prev_cvr = (
        None
        if previous is None
        else _continue(previous.cvr_booster_, previous.cvr_init_margin_, previous.n_rounds_cvr_)
    )
    if not sums.has_conversions:
        if prev_cvr is None:
            store_fit(est, "cvr", None, w_click=sums.clicks)
        else:  # continuing without conversions: the CVR booster stays as it was
            warnings.warn(
                "y has no conversions: the CVR booster of init_model is kept as it was", UserWarning, stacklevel=5
            )
            store_fit(est, "cvr", prev_cvr)
    else:
        cvr_params = {**base, **(est.cvr_params or {})}
        if est.cvr_space == "clicked":  # native log-loss on the clicked rows, the library's own intercept
            task = Task(
                "cvr",
                "clicked",
                None,
                0.0,
                cvr_params,
                rounds.get("cvr", est.n_estimators),
                "auc_conv",
                es,
                init=prev_cvr,
            )
        else:  # entire space: BCE(pCTR·σ(u), conversion) from the log-odds of the conversion rate among clicks
            task = Task(
                "cvr",
                "all",
                EntireSpaceCVRObjective(**obj_kw),
                sums.cvr_margin,
                cvr_params,
                rounds.get("cvr", est.n_estimators),
                "auc_ctcvr",
                es,
                ctr=ctr,
                init=prev_cvr,
            )
        with est._round_bar("CVR booster") as bar:
            task.tick = None if bar is None else bar.update
            cvr = engine.train(data, task, evals)
        store_fit(est, "cvr", cvr)
        history["cvr"] = cvr.history
    est.evals_result_ = history if evals else {}


def fit_shared(
    est: Any,
    engine: Engine,
    data: TrainingData,
    evals: list[Any],
    seed: int,
    nthread: int | None,
    previous: Any = None,
    rounds: dict[str, int] | None = None,
) -> None:
    """One two-output booster ``[z, u]``; sets ``booster_``, ``init_margins_`` and the rest on ``est``.

    Category columns reach the booster as codes (:class:`~._encode.CategoricalCodes`;
    XGBoost's multi-output trees refuse categorical features); a continued
    booster (``previous``) keeps its codes and its starting margins.
    """
    sums = data.sums
    if not sums.has_conversions:
        warnings.warn(
            "y has no conversions: the shared booster's CVR output learns only that none occur (pCVR stays near 0)",
            UserWarning,
            stacklevel=5,
        )
    if previous is None:
        enc = CategoricalCodes().fit(data.meta)
        init = np.array([sums.ctr_margin, sums.cvr_margin])
    else:
        enc, init = previous.categorical_codes_, np.asarray(previous.init_margins_, dtype=np.float64)
    obj = SharedCTCVRObjective(
        lam=est.lam,
        margin_click_only=est.margin_click_only,
        margin_no_click=est.margin_no_click,
        pair_loss=est.pair_loss,
        pairs=est.pairs,
        random_state=seed,
        n_jobs=None,
        ctcvr_weight_ctr=est.ctcvr_weight_ctr,
    )
    params = {**_base_params(est, engine, seed, nthread), **(est.ctr_params or {})}
    with est._round_bar("shared booster") as bar:
        n_rounds = (rounds or {}).get("shared", est.n_estimators)
        res = engine.train(
            data,
            Task(
                "shared",
                "all",
                obj,
                init,
                params,
                n_rounds,
                "auc_ctcvr",
                est.early_stopping_rounds,
                transform=enc.transform,
                tick=None if bar is None else bar.update,
                init=None if previous is None else _continue(previous.booster_, 0.0, previous.n_rounds_),
            ),
            evals,
        )
    est.booster_ = res.booster
    est.init_margins_ = init
    est.n_rounds_ = res.n_rounds
    est.best_iteration_ = res.best_iteration
    est.categorical_codes_ = enc
    est.evals_result_ = {"shared": res.history} if evals else {}


def _fold_keep(ids: np.ndarray, n_folds: int, fold: int, seed: int, held: bool) -> np.ndarray:
    """The rows of fold ``fold`` (``held``) or of the other folds: calibration's cross-fitting by group."""
    folds = group_fold(ids, n_folds, seed)
    return folds == fold if held else folds != fold


def _holdout_keep(ids: np.ndarray, fraction: float, seed: int, held: bool) -> np.ndarray:
    """The rows of the held-out groups (``held``) or of the others: calibration's group split."""
    out = group_holdout(ids, fraction, seed)
    return out if held else ~out


def fit_calibration(
    est: Any, engine: Engine, data: TrainingData, seed: int, nthread: int | None, previous: Any = None
) -> None:
    """Fit ``est.calibration_`` on held-out groups (see :mod:`gbdt_pwiser.calibration`).

    Each auxiliary model is ``est``'s model (same parameters, the rounds ``est``
    kept, continuing ``previous`` when given) fitted on the other groups; its
    predictions on the held-out groups are reduced to binned outcomes where
    the rows are.
    """
    cv = est.calibration_cv
    if isinstance(cv, (int, np.integer)):
        splits = [
            (
                partial(_fold_keep, n_folds=int(cv), fold=k, seed=seed, held=False),
                partial(_fold_keep, n_folds=int(cv), fold=k, seed=seed, held=True),
            )
            for k in range(int(cv))
        ]
    else:
        splits = [
            (
                partial(_holdout_keep, fraction=float(cv), seed=seed, held=False),
                partial(_holdout_keep, fraction=float(cv), seed=seed, held=True),
            )
        ]
    # the rounds the main fit kept (after early stopping), less those of the model it continued
    names = {"shared": "n_rounds_"} if est.structure == "shared" else {"ctr": "n_rounds_ctr_", "cvr": "n_rounds_cvr_"}
    rounds = {
        k: max(1, getattr(est, a) - (getattr(previous, a) if previous is not None else 0)) for k, a in names.items()
    }
    ctr, ctcvr = Outcomes.empty(), Outcomes.empty()
    for keep_train, keep_held in splits:
        part, held = engine.subset(data, keep_train), engine.subset(data, keep_held)
        try:
            if part.sums.clicks == 0 or held.sums.rows == 0:
                raise ValueError(
                    f"calibration_cv={cv!r}: a split by group left a part without clicks or rows; "
                    "use fewer folds (or a larger held-out share) or more groups"
                )
            aux = _auxiliary(est)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the auxiliary fits repeat the main fit's warnings
                (fit_shared if est.structure == "shared" else fit_chain)(
                    aux, engine, part, [], seed, nthread, previous, rounds
                )
            a, b = engine.outcomes(held, aux)
        finally:
            engine.close(part)
            engine.close(held)
        ctr, ctcvr = ctr + a, ctcvr + b
    if ctcvr.wy.sum() <= 0 or ctr.wy.sum() <= 0:
        raise ValueError(
            "calibration: the held-out groups hold no click or no conversion to calibrate on; "
            "use fewer folds (or a larger held-out share) or more data"
        )
    est.calibration_ = calibrate(ctr, ctcvr, est.calibration)


def _auxiliary(est: Any) -> Any:
    """An unfitted copy of ``est``'s model for calibration's held-out predictions (no calibration, no stopping)."""
    aux = type(est)(
        **{**est.get_params(deep=False), "calibration": None, "early_stopping_rounds": None, "verbose": False}
    )
    for key in ("n_features_in_", "feature_names_in_", "_columns", "_categorical"):
        if hasattr(est, key):
            setattr(aux, key, getattr(est, key))
    aux.classes_, aux.backend_, aux.structure_ = est.classes_, est.backend_, est.structure_
    return aux


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
                f"{est.cvr_fallback_rate_:.3g} (0.5 / (clicks + 1))",
                UserWarning,
                stacklevel=6,
            )
