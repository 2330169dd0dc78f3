"""``CTCVRClassifier(structure="shared")``: one XGBoost booster with two outputs that share every split.

The estimator's ``fit`` validates and sorts the data as for the chain, then
hands it to :func:`fit_shared`; prediction goes through :func:`predict_shared`.
The booster is trained with
:class:`~gbdt_pwiser.objectives.SharedCTCVRObjective` on
:class:`~._backends.XGBoostSharedBackend` (``multi_strategy="multi_output_tree"``,
``num_target=2``), starts from :func:`~gbdt_pwiser.objectives.initial_margins`
and outputs ``[z, u]`` per row: pCTR = σ(z), pCVR = σ(u), pCTCVR = σ(z)·σ(u).

Fitted attributes (the chain's ``ctr_booster_``/``cvr_booster_`` and their
margins/rounds are absent): ``booster_``, ``init_margins_`` (the 2-vector
start), ``n_rounds_``, ``best_iteration_``, ``categorical_codes_`` (a fitted
:class:`~._encode.CategoricalCodes`: pandas ``category`` columns reach the
booster as codes, since multi-output trees refuse categorical features) and
``evals_result_ = {"shared": {"valid_k": {"auc_ctcvr": [...]}}}``.

No conversions in the training data: unlike the chain, there is no constant
fallback. The booster still trains (its CVR output starts at the log-odds of a
rate near 0 and the pCTCVR term keeps it there), with a ``UserWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .. import metrics as M
from ..objectives import SharedCTCVRObjective, initial_margins, shared_probabilities
from ._backends import SHARED_BACKENDS, Backend, EvalData, TrainData, grad_fn
from ._encode import CategoricalCodes
from ._inputs import check_X

__all__ = ["CHAIN_FITTED", "SHARED_FITTED", "check_shared", "clear_fitted", "fit_shared", "predict_shared",
           "shared_backend"]

#: Fitted attributes of each structure (``clear_fitted`` drops both before a new fit).
CHAIN_FITTED = ("ctr_booster_", "cvr_booster_", "ctr_init_margin_", "cvr_init_margin_", "n_rounds_ctr_",
                "n_rounds_cvr_", "best_iteration_ctr_", "best_iteration_cvr_", "cvr_fallback_rate_")
SHARED_FITTED = ("booster_", "init_margins_", "n_rounds_", "best_iteration_", "categorical_codes_")


def check_shared(est: Any) -> None:
    """Parameter combinations ``structure="shared"`` cannot honour raise a ``ValueError``."""
    if est.structure != "shared":
        return
    if est.backend not in SHARED_BACKENDS:
        raise ValueError(f'structure="shared" needs backend="xgboost" (multi-output trees); '
                         f'{est.backend} has none. Use structure="chain" with backend={est.backend!r}')
    if est.cvr_params is not None:
        raise ValueError('structure="shared" trains one booster: pass its native parameters in ctr_params, '
                         "not cvr_params")
    if str(est.device) != "cpu":
        raise ValueError(f'structure="shared" computes its gradients on the CPU; device={est.device!r} is '
                         'not supported (use device="cpu")')


def shared_backend(name: str) -> Backend:
    """The shared booster's backend of ``backend=name``."""
    return SHARED_BACKENDS[name]()


def clear_fitted(est: Any) -> None:
    """Drop the fitted attributes of both structures (a refit may change ``structure``)."""
    for key in CHAIN_FITTED + SHARED_FITTED:
        est.__dict__.pop(key, None)


def _ctcvr_metric(y: np.ndarray):
    """CTCVR AUC of σ(z)·σ(u) from ``(n, 2)`` margins: the early-stopping metric of the shared booster."""
    return lambda m: M.conversion_auc(shared_probabilities(m)[2], y)


def fit_shared(est: Any, Xc: Any, yf: np.ndarray, w: np.ndarray | None, sizes: np.ndarray | None,
               evals: list[tuple[Any, np.ndarray, Any]], seed: int, nthread: int | None,
               has_conv: bool) -> None:
    """Train the shared booster on validated, group-sorted rows and set the fitted attributes."""
    est._start_fit("shared")
    be = shared_backend(est.backend_)
    if not has_conv:
        warnings.warn("y has no conversions: the shared booster's CVR output learns only that none occur "
                      "(pCVR stays near 0)", UserWarning, stacklevel=4)
    enc = CategoricalCodes().fit(Xc)
    init = initial_margins(yf, w)
    obj = SharedCTCVRObjective(lam=est.lam, margin_click_only=est.margin_click_only,
                               margin_no_click=est.margin_no_click, pair_loss=est.pair_loss, pairs=est.pairs,
                               random_state=seed, n_jobs=None, ctcvr_weight_ctr=est.ctcvr_weight_ctr)
    base = be.params(learning_rate=est.learning_rate, max_depth=est.max_depth, seed=seed, nthread=nthread,
                     device=est.device)
    ev = [EvalData(enc.transform(Xe), ye, init, _ctcvr_metric(ye)) for Xe, ye, _ in evals]
    with est._round_bar("shared booster") as bar:
        res = be.train({**base, **(est.ctr_params or {})}, est.n_estimators,
                       TrainData(enc.transform(Xc), yf.astype(np.float32), w), ev, grad_fn(obj, yf, w, sizes),
                       init, "auc_ctcvr", est.early_stopping_rounds, tick=None if bar is None else bar.update)
    est.booster_ = res.booster
    est.init_margins_ = init
    est.n_rounds_ = res.n_rounds
    est.best_iteration_ = res.best_iteration
    est.categorical_codes_ = enc
    est.evals_result_ = {"shared": res.history} if evals else {}


def predict_shared(est: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(pCTR, pCVR)`` of the fitted shared booster."""
    check_is_fitted(est, "booster_")
    Xc = check_X(est, X, reset=False)
    m = shared_backend(est.backend_).predict_margin(est.booster_, est.categorical_codes_.transform(Xc), est.n_rounds_,
                                           est._nthread())
    ctr, cvr, _ = shared_probabilities(m)
    return ctr, cvr


def codes_to_json(enc: CategoricalCodes) -> dict[str, list[Any]]:
    """The categories of a fitted :class:`CategoricalCodes`, JSON-ready (column → list)."""
    return {str(c): [v.item() if isinstance(v, np.generic) else v for v in cats.tolist()]
            for c, cats in enc.categories_.items()}


def codes_from_json(raw: dict[str, list[Any]], columns: list[Any] | None) -> CategoricalCodes:
    """Inverse of :func:`codes_to_json` (column names restored from the fitted ``columns``)."""
    by_str = {str(c): c for c in (columns or [])}
    enc = CategoricalCodes()
    enc.categories_ = {by_str.get(c, c): pd.Index(v) for c, v in raw.items()}
    return enc
