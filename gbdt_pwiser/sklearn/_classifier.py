"""``CTCVRClassifier``: the chained CTR → CVR gradient-boosted estimator (SPEC §5, §7).

The estimator is glue and contains no loss mathematics: the CTR booster is
trained with :class:`~gbdt_pwiser.objectives.PWiseRObjective`, the entire-space
CVR booster with :class:`~gbdt_pwiser.objectives.EntireSpaceCVRObjective`, the
clicked-space CVR booster with the library's native log-loss, and evaluation
uses :mod:`gbdt_pwiser.metrics`. Everything that differs between XGBoost and
LightGBM lives in one small adapter per library (``_XGBoostBackend``,
``_LightGBMBackend``) behind the same four operations: train, predict a raw
margin, serialise and deserialise a booster.
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import metrics as M
from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._labels import as_funnel, funnel_label
from .._validation import check_labels, check_random_state, check_weight, group_codes
from ..objectives import EntireSpaceCVRObjective, PWiseRObjective, initial_margin

__all__ = [
    "CTCVRClassifier",
    "ctr_auc_scorer",
    "cvr_auc_scorer",
    "ctcvr_auc_scorer",
    "pctr_conversion_auc_scorer",
]

_FORMAT = "gbdt_pwiser.CTCVRClassifier"
_FORMAT_VERSION = 1
_CTR_METRICS = ("auc_click", "auc_conv", "auc_click_group", "auc_conv_group")  # keys of metrics.METRICS
# Keys that the estimator sets itself; ctr_params / cvr_params may not override them.
_RESERVED = frozenset({
    "objective", "obj", "application", "app", "objective_type", "loss",
    "base_score", "init_score", "boost_from_average",
    "num_boost_round", "n_estimators", "num_iterations", "num_iteration", "num_trees", "num_round",
    "num_rounds", "nrounds", "n_iter", "max_iter",
    "early_stopping_rounds", "early_stopping_round", "early_stopping", "n_iter_no_change",
    "metric", "metrics", "metric_types", "eval_metric", "custom_metric", "feval",
})


# --------------------------------------------------------------------------- labels and inputs


def _as_funnel(y: Any, name: str = "y") -> np.ndarray:
    if y is None:
        raise ValueError(f"CTCVRClassifier requires y to be passed, but the target {name} is None")
    return as_funnel(y, name)


def _n_rows(X: Any) -> int:
    return int(X.shape[0])


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


def _is_allowed_column(dtype: Any) -> bool:
    return isinstance(dtype, pd.CategoricalDtype) or (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- backend adapters


GradFn = Callable[[Any], "tuple[Any, Any]"]


@dataclass
class _TrainData:
    """Training rows of one booster."""

    X: Any
    label: np.ndarray  # funnel labels (custom objective) or 0/1 targets (native log-loss)
    weight: np.ndarray | None


@dataclass
class _EvalData:
    """One evaluation set: features and a metric of the raw margin (higher is better)."""

    X: Any
    label: np.ndarray
    init_margin: float
    metric: Callable[[np.ndarray], float]


@dataclass
class _Fit:
    booster: Any
    offset: float  # added to the booster's raw prediction (LightGBM's init_score)
    n_rounds: int  # boosting rounds used for prediction
    best_iteration: int | None
    history: dict[str, dict[str, list[float]]]


class _Stopper:
    """Early stopping on a higher-is-better score; the same rule for both backends."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.best_score = -np.inf
        self.best_iteration = 0

    def update(self, iteration: int, score: float) -> bool:
        """Record round ``iteration``'s score; True when training should stop."""
        if score > self.best_score:
            self.best_score = score
            self.best_iteration = iteration
            return False
        return iteration - self.best_iteration >= self.rounds


class _Backend:
    """The interface of a backend adapter."""

    name = ""
    suffix = ""

    def params(self, est: CTCVRClassifier, seed: int, nthread: int | None) -> dict[str, Any]:
        raise NotImplementedError

    def train(self, params: dict[str, Any], n_rounds: int, data: _TrainData, evals: list[_EvalData],
              grad: GradFn | None, init_margin: float, metric_name: str,
              early_stopping_rounds: int | None, tick: Callable[[int], Any] | None = None) -> _Fit:
        """Train a booster from ``init_margin`` with ``grad(margin) -> (grad, hess)``.

        ``tick(1)`` is called after every round (progress bars).

        ``grad=None`` means the library's native binary log-loss (and its own intercept).
        Each eval set's ``metric`` gets the raw margin every round (higher is better);
        with ``early_stopping_rounds`` the last eval set decides.
        """
        raise NotImplementedError

    def predict_margin(self, booster: Any, X: Any, n_rounds: int, nthread: int | None) -> np.ndarray:
        """Raw margin of the first ``n_rounds`` rounds (without the ``_Fit.offset``), float64."""
        raise NotImplementedError

    def to_bytes(self, booster: Any) -> bytes:
        raise NotImplementedError

    def from_bytes(self, raw: bytes, nthread: int | None) -> Any:
        raise NotImplementedError


class _XGBoostBackend(_Backend):
    name = "xgboost"
    suffix = "ubj"

    def params(self, est: CTCVRClassifier, seed: int, nthread: int | None) -> dict[str, Any]:
        p: dict[str, Any] = {"tree_method": "hist", "eta": float(est.learning_rate), "seed": seed,
                             "device": est.device, "verbosity": 1}
        if est.max_depth is not None:
            p["max_depth"] = int(est.max_depth)
        if nthread is not None:
            p["nthread"] = nthread
        return p

    @staticmethod
    def _dmatrix(X: Any, label: Any = None, weight: Any = None, nthread: int | None = None) -> Any:
        import xgboost as xgb

        return xgb.DMatrix(X, label=label, weight=weight, missing=np.nan,
                           enable_categorical=isinstance(X, pd.DataFrame), nthread=nthread)

    def train(self, params, n_rounds, data, evals, grad, init_margin, metric_name,
              early_stopping_rounds, tick=None):
        import xgboost as xgb

        params = {**params, "disable_default_eval_metric": 1}
        if grad is None:
            params["objective"] = "binary:logitraw"  # log-loss; predictions stay raw margins
        else:
            params["base_score"] = float(init_margin)  # a custom objective has an identity link
        nthread = params.get("nthread")
        dtrain = self._dmatrix(data.X, data.label, data.weight, nthread=nthread)
        dmats = [self._dmatrix(e.X, e.label, nthread=nthread) for e in evals]
        by_id = {id(d): e.metric for d, e in zip(dmats, evals)}

        def custom_metric(predt: np.ndarray, dmat: Any) -> list[tuple[str, float]]:
            return [(metric_name, by_id[id(dmat)](np.asarray(predt, dtype=np.float64).reshape(-1)))]

        callbacks = []
        stopper = _Stopper(early_stopping_rounds) if early_stopping_rounds else None
        if stopper is not None:
            watch = f"valid_{len(evals) - 1}"

            class _Stop(xgb.callback.TrainingCallback):
                def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                    return stopper.update(epoch, float(evals_log[watch][metric_name][-1]))

            callbacks.append(_Stop())
        if tick is not None:
            class _Tick(xgb.callback.TrainingCallback):
                def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                    tick(1)
                    return False

            callbacks.insert(0, _Tick())
        history: dict[str, Any] = {}
        booster = xgb.train(params, dtrain, num_boost_round=n_rounds,
                            evals=[(d, f"valid_{k}") for k, d in enumerate(dmats)],
                            obj=None if grad is None else (lambda predt, _dtrain: grad(predt)),
                            custom_metric=custom_metric if evals else None,
                            callbacks=callbacks, evals_result=history, verbose_eval=False)
        best = None if stopper is None else stopper.best_iteration
        used = booster.num_boosted_rounds() if best is None else best + 1
        return _Fit(booster, 0.0, int(used), best, _plain_history(history))

    def predict_margin(self, booster, X, n_rounds, nthread):
        margin = booster.predict(self._dmatrix(X, nthread=nthread), output_margin=True,
                                 iteration_range=(0, n_rounds))
        return np.asarray(margin, dtype=np.float64)

    def to_bytes(self, booster):
        return bytes(booster.save_raw("ubj"))

    def from_bytes(self, raw, nthread):
        import xgboost as xgb

        booster = xgb.Booster(model_file=bytearray(raw))
        if nthread is not None:
            booster.set_param({"nthread": nthread})
        return booster


class _LightGBMBackend(_Backend):
    name = "lightgbm"
    suffix = "txt"

    def params(self, est: CTCVRClassifier, seed: int, nthread: int | None) -> dict[str, Any]:
        # feature_pre_filter=False: when no feature can be split (tiny data) LightGBM drops them all
        # and then aborts with a custom objective; deterministic + force_col_wise: reproducible fits.
        p: dict[str, Any] = {"learning_rate": float(est.learning_rate), "seed": seed, "verbose": -1,
                             "deterministic": True, "force_col_wise": True, "feature_pre_filter": False}
        if est.max_depth is not None:
            p["max_depth"] = int(est.max_depth)
            p["num_leaves"] = int(min(31, 2 ** int(est.max_depth)))
        if nthread is not None:
            p["num_threads"] = nthread
        return p

    def train(self, params, n_rounds, data, evals, grad, init_margin, metric_name,
              early_stopping_rounds, tick=None):
        import lightgbm as lgb

        native = grad is None
        params = {**params, "metric": "None",
                  "objective": "binary" if native else (lambda preds, _dataset: grad(preds))}

        def init(n: int, value: float) -> np.ndarray | None:
            return None if native else np.full(n, value, dtype=np.float64)

        dtrain = lgb.Dataset(data.X, label=data.label, weight=data.weight,
                             init_score=init(_n_rows(data.X), init_margin))
        dvalids = [lgb.Dataset(e.X, label=e.label, init_score=init(_n_rows(e.X), e.init_margin),
                               reference=dtrain) for e in evals]
        by_id = {id(d): e.metric for d, e in zip(dvalids, evals)}

        def feval(preds: np.ndarray, ds: Any) -> tuple[str, float, bool]:
            z = np.asarray(preds, dtype=np.float64).reshape(-1)
            if native:  # LightGBM hands built-in objectives' probabilities to feval
                with np.errstate(divide="ignore"):
                    z = np.log(z) - np.log1p(-z)
            return metric_name, by_id[id(ds)](z), True

        history: dict[str, Any] = {}
        callbacks: list[Any] = [lgb.record_evaluation(history)] if evals else []
        if tick is not None:
            def _tick(env: Any) -> None:
                tick(1)

            _tick.order = 5  # type: ignore[attr-defined]
            callbacks.append(_tick)
        stopper = _Stopper(early_stopping_rounds) if early_stopping_rounds else None
        if stopper is not None:
            watch = f"valid_{len(evals) - 1}"

            best_list: list[Any] = []

            def stop(env: Any) -> None:
                for item in env.evaluation_result_list:
                    if item[0] == watch:
                        done = stopper.update(env.iteration, float(item[2]))
                        if stopper.best_iteration == env.iteration:
                            best_list[:] = env.evaluation_result_list
                        if done:
                            raise lgb.callback.EarlyStopException(stopper.best_iteration, list(best_list))

            stop.order = 30  # type: ignore[attr-defined]
            callbacks.append(stop)
        booster = lgb.train(params, dtrain, num_boost_round=n_rounds, valid_sets=dvalids,
                            valid_names=[f"valid_{k}" for k in range(len(dvalids))],
                            feval=feval if evals else None, callbacks=callbacks)
        best = None if stopper is None else stopper.best_iteration
        used = booster.current_iteration() if best is None else best + 1
        return _Fit(booster, 0.0 if native else float(init_margin), int(used), best,
                    _plain_history(history))

    def predict_margin(self, booster, X, n_rounds, nthread):
        kw = {} if nthread is None else {"num_threads": nthread}
        return np.asarray(booster.predict(X, raw_score=True, num_iteration=n_rounds, **kw), dtype=np.float64)

    def to_bytes(self, booster):
        return booster.model_to_string().encode("utf-8")

    def from_bytes(self, raw, nthread):
        import lightgbm as lgb

        return lgb.Booster(model_str=raw.decode("utf-8"))


_BACKENDS: dict[str, type[_Backend]] = {"xgboost": _XGBoostBackend, "lightgbm": _LightGBMBackend}


def _grad_fn(objective: Any, y: np.ndarray, w: np.ndarray | None, sizes: np.ndarray | None) -> GradFn:
    """``margin -> (grad, hess)`` through the objective's documented call
    ``obj(y_true, y_pred, sample_weight, group_sizes)``: labels, weights and groups come
    from here, identically for both backends (XGBoost would want per-group weights with ``qid``)."""
    return lambda margin: objective(y, margin, w, sizes)


def _plain_history(history: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    return {d: {m: [float(v) for v in vals] for m, vals in ms.items()} for d, ms in history.items()}


# --------------------------------------------------------------------------- the estimator


class CTCVRClassifier(ClassifierMixin, BaseEstimator):
    """Chained CTR → CVR gradient-boosted classifier with the PWiseR CTR loss.

    Two boosters are trained (SPEC §5): a **CTR booster** on all exposures
    with BCE + λ·PWiseR (:class:`~gbdt_pwiser.PWiseRObjective`), whose pair
    term pushes each conversion above the click-only and non-clicked
    exposures of its group, and a **CVR booster** either on the clicked
    exposures with plain log-loss (``cvr_space="clicked"``) or on all
    exposures with the entire-space (ESMM) loss ``BCE(pCTR·pCVR, conversion)``
    (``cvr_space="entire"``, :class:`~gbdt_pwiser.EntireSpaceCVRObjective`).
    ``pCTCVR = pCTR · pCVR`` is the probability of a conversion per exposure;
    as a scikit-learn classifier the target class is "converts"
    (``classes_ = [0, 1]``) and :meth:`score` is the CTCVR AUC.

    Parameters
    ----------
    backend : {"xgboost", "lightgbm"}, default="xgboost"
        Gradient-boosting library of both boosters.
    lam : float, default=1.0
        Weight λ ≥ 0 of the pairwise term of the CTR loss; 0 gives plain BCE.
    margin_click_only : float, default=0.02
        Margin of conversion-vs-click-only pairs.
    margin_no_click : float, default=0.02
        Margin of conversion-vs-non-click pairs.
    pair_loss : {"squared_hinge", "logistic"}, default="squared_hinge"
        Pair loss of the PWiseR term.
    pairs : "all" or int, default="all"
        Exact all-pairs mode or ``k`` sampled partners per conversion and term.
    cvr_space : {"clicked", "entire"}, default="clicked"
        Training space of the CVR booster (see above).
    n_estimators : int, default=100
        Boosting rounds of each booster (an upper bound with early stopping).
    learning_rate : float, default=0.1
        Shrinkage of both boosters.
    max_depth : int or None, default=6
        Maximum tree depth (LightGBM: also ``num_leaves = min(31, 2**max_depth)``);
        ``None`` keeps the library's default.
    ctr_params, cvr_params : dict, optional
        Extra native parameters of the CTR / CVR booster (e.g. ``subsample``,
        ``reg_lambda``, ``min_child_weight`` for XGBoost; ``num_leaves``,
        ``min_data_in_leaf``, ``feature_fraction`` for LightGBM). They override
        the estimator's settings, except the objective, the number of rounds,
        the starting margin and the metrics, which the estimator owns.
    early_stopping_rounds : int, optional
        Stop a booster when its metric on the **last** ``eval_set`` has not
        improved for this many rounds; prediction then uses the best round.
        The CTR booster watches ``ctr_stopping_metric``; the CVR booster the
        conversion AUC of pCVR over the clicked rows (``cvr_space="clicked"``)
        or of pCTCVR over all rows (``cvr_space="entire"``, the quantity its
        loss fits).
    ctr_stopping_metric : {"auc_click", "auc_conv", "auc_click_group", "auc_conv_group"}, default="auc_click"
        Early-stopping metric of the CTR booster, computed on pCTR: AUC/GAUC
        against clicks (the booster's own label, the stable default) or against
        conversions (what the PWiseR term targets; noisier, since conversions
        are rare). GAUC uses the eval set's groups.
    device : {"cpu", "cuda"}, default="cpu"
        Where the objectives compute gradients, and XGBoost's ``device``.
        ``"cuda"`` needs ``backend="xgboost"`` (LightGBM accepts a custom
        objective's gradients as host arrays only; its own GPU tree learner can
        be chosen with ``device_type`` in ``ctr_params``/``cvr_params``).
    n_jobs : int, optional
        Threads of the boosters (``nthread`` / ``num_threads``); ``-1`` for all
        cores, ``None`` for the libraries' defaults. The objectives' kernels run
        on one thread inside the boosting loop, where they cost a few per cent
        of a round (see :class:`~gbdt_pwiser.PWiseRObjective`).
    random_state : int, optional
        Seed of both boosters (row/column subsampling) and of the sampled pair
        mode. ``None`` means 0: fits are deterministic unless you change it.
    verbose : bool, default=False
        Show a progress bar over the boosting rounds of each booster (tqdm, on
        standard error).

    Attributes
    ----------
    ctr_booster_ : xgboost.Booster or lightgbm.Booster
        The CTR booster (raw margin = log-odds of click; for LightGBM add
        ``ctr_init_margin_``, its ``init_score``).
    cvr_booster_ : xgboost.Booster, lightgbm.Booster or None
        The CVR booster; ``None`` when the training data had no conversion.
    ctr_init_margin_, cvr_init_margin_ : float
        Starting margins: log-odds of the click rate for the CTR booster, of the
        conversion rate among clicks for the entire-space CVR booster (the
        clicked-space booster uses the library's own intercept, reported as 0).
    cvr_fallback_rate_ : float or None
        Constant pCVR used when the training data had no conversion
        (``0.5 / (clicks + 1)``), else ``None``.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: does the exposure convert.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in :meth:`fit` (only for string column names).
    best_iteration_ctr_, best_iteration_cvr_ : int or None
        0-based best round of each booster with early stopping, else ``None``.
    n_rounds_ctr_, n_rounds_cvr_ : int
        Rounds each booster uses for prediction.
    evals_result_ : dict
        ``{"ctr": {"valid_0": {metric: [...]}, ...}, "cvr": {...}}`` when
        ``eval_set`` was given.

    Notes
    -----
    * Groups: ``group`` holds per-row ids of any type and order. The training
      rows are stably sorted by group before the CTR data is built (XGBoost
      needs a sorted ``qid``, LightGBM contiguous ``group`` sizes); predictions
      do not depend on row order. Without ``group`` all rows form one group.
    * Starting margins: a custom objective has no intercept, so the CTR booster
      starts from :func:`~gbdt_pwiser.initial_margin` (``base_score`` in XGBoost,
      ``init_score`` in LightGBM, added back to LightGBM's raw predictions).
    * Metadata routing (scikit-learn ≥ 1.4): with
      ``sklearn.set_config(enable_metadata_routing=True)`` call
      ``set_fit_request(group=True, sample_weight=True)`` (or
      ``group="groups"`` to share ``GroupKFold``'s ``groups``) so ``Pipeline``
      and ``GridSearchCV`` route them to :meth:`fit`.
    * Saved models: :meth:`save_model` writes the boosters in their native
      formats (XGBoost UBJSON, LightGBM text) plus ``meta.json`` (parameters and
      fitted metadata) to a directory, or to a zip archive if the path ends
      in ``.zip``; :meth:`load_model` reads either.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser import CTCVRClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3))
    >>> click = rng.random(400) < 1 / (1 + np.exp(-X[:, 0]))
    >>> conversion = click & (rng.random(400) < 1 / (1 + np.exp(-X[:, 1])))
    >>> y = np.c_[click, conversion].astype(int)           # or funnel labels click + conversion
    >>> group = np.repeat(np.arange(40), 10)               # e.g. request ids
    >>> model = CTCVRClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(X, y, group=group)
    >>> proba = model.predict_proba(X)
    >>> proba.shape, bool(np.allclose(proba[:, 1], model.predict_ctcvr(X)))
    ((400, 2), True)
    >>> bool(0.5 < model.score(X, y) <= 1.0)               # CTCVR AUC
    True
    """

    def __init__(
        self,
        backend: str = "xgboost",
        lam: float = DEFAULT_LAM,
        margin_click_only: float = DEFAULT_MARGIN_CLICK_ONLY,
        margin_no_click: float = DEFAULT_MARGIN_NO_CLICK,
        pair_loss: str = "squared_hinge",
        pairs: str | int = "all",
        cvr_space: str = "clicked",
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_depth: int | None = 6,
        ctr_params: dict[str, Any] | None = None,
        cvr_params: dict[str, Any] | None = None,
        early_stopping_rounds: int | None = None,
        ctr_stopping_metric: str = "auc_click",
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.backend = backend
        self.lam = lam
        self.margin_click_only = margin_click_only
        self.margin_no_click = margin_no_click
        self.pair_loss = pair_loss
        self.pairs = pairs
        self.cvr_space = cvr_space
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.ctr_params = ctr_params
        self.cvr_params = cvr_params
        self.early_stopping_rounds = early_stopping_rounds
        self.ctr_stopping_metric = ctr_stopping_metric
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ scikit-learn plumbing
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.categorical = True
        tags.target_tags.required = True
        # The target is a funnel label (0 no click, 1 click only, 2 conversion), not a set of
        # classes; the classifier predicts one binary event, "converts".
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ validation
    def _checked_params(self) -> dict[str, Any]:
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {sorted(_BACKENDS)}, got {self.backend!r}")
        if self.cvr_space not in ("clicked", "entire"):
            raise ValueError(f'cvr_space must be "clicked" or "entire", got {self.cvr_space!r}')
        if isinstance(self.n_estimators, bool) or not isinstance(self.n_estimators, numbers.Integral) \
                or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be a positive int, got {self.n_estimators!r}")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, numbers.Real) \
                or not 0 < self.learning_rate:
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if self.max_depth is not None and (isinstance(self.max_depth, bool)
                                           or not isinstance(self.max_depth, numbers.Integral)
                                           or self.max_depth < 1):
            raise ValueError(f"max_depth must be None or a positive int, got {self.max_depth!r}")
        esr = self.early_stopping_rounds
        if esr is not None and (isinstance(esr, bool) or not isinstance(esr, numbers.Integral) or esr < 1):
            raise ValueError(f"early_stopping_rounds must be None or a positive int, got {esr!r}")
        if self.ctr_stopping_metric not in _CTR_METRICS:
            raise ValueError(f"ctr_stopping_metric must be one of {_CTR_METRICS}, got {self.ctr_stopping_metric!r}")
        for name in ("ctr_params", "cvr_params"):
            extra = getattr(self, name)
            if extra is None:
                continue
            if not isinstance(extra, dict):
                raise TypeError(f"{name} must be a dict of native {self.backend} parameters, got "
                                f"{type(extra).__name__}")
            bad = sorted(k for k in extra if k in _RESERVED)
            if bad:
                raise ValueError(f"{name} may not set {bad}: the estimator sets the objective, rounds, "
                                 "starting margin and metrics (use n_estimators / early_stopping_rounds)")
        nj = self.n_jobs
        if nj is not None and (isinstance(nj, bool) or not isinstance(nj, numbers.Integral) or nj == 0):
            raise ValueError(f"n_jobs must be None, a positive int or a negative int (-1 = all cores), got {nj!r}")
        nthread = None if nj is None else (int(nj) if nj > 0 else max(1, (os.cpu_count() or 1) + 1 + int(nj)))
        return {"seed": check_random_state(self.random_state), "nthread": nthread}

    def _check_X(self, X: Any, reset: bool) -> Any:
        """Validate features; DataFrames keep their dtypes (categories), the rest becomes float/CSR."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            bad = [c for c, t in X.dtypes.items() if not _is_allowed_column(t)]
            if bad:
                raise TypeError(
                    f"columns {bad} have unsupported dtypes {[str(X[c].dtype) for c in bad]}; "
                    "use numeric, bool or pandas 'category' columns"
                )
            cats = [c for c, t in X.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
            if X.shape[0] < 1:
                raise ValueError(f"X has 0 samples; a minimum of 1 is required by {type(self).__name__}")
            if reset:
                self._columns = list(X.columns)
                self._categorical = cats
            else:
                if getattr(self, "_columns", None) is None:
                    return validate_data(self, X.to_numpy(dtype=np.float64, na_value=np.nan), reset=False,
                                         accept_sparse="csr", dtype=[np.float64, np.float32],
                                         ensure_all_finite="allow-nan")
                if list(X.columns) != self._columns:
                    raise ValueError(f"X has columns {list(X.columns)} but the model was fitted with "
                                     f"{self._columns}")
                lost = [c for c in self._categorical if c not in cats]
                if lost:
                    raise TypeError(f"columns {lost} were 'category' in fit but are "
                                    f"{[str(X[c].dtype) for c in lost]} now")
                new = [c for c in cats if c not in self._categorical]
                if new:
                    raise TypeError(f"columns {new} are 'category' now but were numeric in fit")
            return X
        if not reset and getattr(self, "_categorical", None):
            raise TypeError(
                f"the model was fitted on a DataFrame with categorical columns {self._categorical}; "
                "pass a DataFrame with the same columns"
            )
        Xa = validate_data(self, X, reset=reset, accept_sparse="csr", dtype=[np.float64, np.float32],
                           ensure_all_finite="allow-nan", ensure_min_samples=1)
        if sp.issparse(Xa) and not isinstance(Xa, sp.spmatrix):
            Xa = sp.csr_matrix(Xa)  # scipy sparse arrays: the boosters take sparse matrices
        if reset:
            self._columns = None
            self._categorical = []
        elif self._columns is not None:  # fitted on a DataFrame without categories: restore names
            if sp.issparse(Xa):
                raise TypeError("the model was fitted on a DataFrame; pass a DataFrame or a dense array")
            Xa = pd.DataFrame(Xa, columns=self._columns)
        return Xa

    @staticmethod
    def _check_lengths(n: int, **arrays: Any) -> None:
        for name, arr in arrays.items():
            if arr is not None and np.shape(arr)[0] != n:
                raise ValueError(f"X has {n} rows but {name} has {np.shape(arr)[0]}")

    def _check_weight(self, sample_weight: Any, n: int) -> np.ndarray | None:
        if sample_weight is None:
            return None
        w = check_weight(sample_weight, n, "sample_weight")
        if w is not None and not w.sum() > 0:
            raise ValueError("sample_weight sums to zero")
        return w

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, group: npt.ArrayLike | None = None,
            sample_weight: npt.ArrayLike | None = None,
            eval_set: Sequence[tuple[Any, ...]] | None = None) -> CTCVRClassifier:
        """Fit the CTR booster, then the CVR booster.

        Parameters
        ----------
        X : array-like, scipy.sparse CSR matrix or pandas.DataFrame of shape (n, d)
            Features; NaN is missing. DataFrame ``category`` columns use the
            backends' native categorical splits.
        y : array-like of shape (n,) or (n, 2)
            Funnel labels in {0, 1, 2} (click + conversion) or [click, conversion].
        group : array-like of shape (n,), optional
            Group id per row (request, session, user…), any type and order.
            PWiseR pairs are formed within groups; ``None`` = one group.
        sample_weight : array-like of shape (n,), optional
            Non-negative row weights (a pair weighs ``w_i·w_j``).
        eval_set : list of (X, y) or (X, y, group), optional
            Validation data, scored every round; with ``early_stopping_rounds``
            the last one decides when to stop.

        Returns
        -------
        self : CTCVRClassifier
        """
        cfg = self._checked_params()
        if self.backend == "lightgbm" and str(self.device).startswith("cuda"):
            raise ValueError('device="cuda" needs backend="xgboost": LightGBM takes a custom objective\'s '
                             "gradients as host arrays only (use device=\"cpu\"; LightGBM's own GPU tree "
                             'learner can still be chosen with ctr_params={"device_type": ...})')
        backend = _BACKENDS[self.backend]()
        Xc = self._check_X(X, reset=True)
        n = _n_rows(Xc)
        yf = _as_funnel(y)
        group = None if group is None else np.asarray(group)
        sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        self._check_lengths(n, y=yf, group=group, sample_weight=sample_weight)
        w = self._check_weight(sample_weight, n)
        codes = None if group is None else group_codes(group, n, "group")
        used = yf if w is None else yf[w > 0]
        n_click = int(np.count_nonzero(used >= 1))
        if n_click == 0:
            raise ValueError(
                f"y has only one class: no clicks{'' if w is None else ' among rows of positive weight'}; "
                "the CTR model needs clicked rows (funnel labels: 0 no click, 1 click only, 2 conversion)"
            )
        evals = self._check_eval_set(eval_set)
        if self.early_stopping_rounds is not None and not evals:
            raise ValueError("early_stopping_rounds needs an eval_set")

        # Stable sort by group: the objective takes contiguous groups (sizes); predictions do not
        # depend on row order.
        if codes is not None and codes.size > 1 and np.any(codes[1:] < codes[:-1]):
            order = np.argsort(codes, kind="stable")
            Xc, yf, codes = _take(Xc, order), yf[order], codes[order]
            w = None if w is None else w[order]

        es = self.early_stopping_rounds
        base = backend.params(self, cfg["seed"], cfg["nthread"])
        # n_jobs=None: the objectives' kernels run on one thread inside the boosting loop,
        # leaving the cores to the booster (see PWiseRObjective's n_jobs).
        obj_kw = {"device": self.device, "n_jobs": None}

        # ---- CTR booster: BCE + λ·PWiseR on all rows
        ctr_obj = PWiseRObjective(lam=self.lam, margin_click_only=self.margin_click_only,
                                  margin_no_click=self.margin_no_click, pair_loss=self.pair_loss,
                                  pairs=self.pairs, random_state=cfg["seed"], **obj_kw)
        m0 = initial_margin(yf, w)
        if es is not None:
            self._check_monitored(evals[-1], "ctr")
        ctr_evals = [_EvalData(Xe, ye, m0, self._ctr_metric(ye, ge)) for Xe, ye, ge in evals]
        sizes = None if codes is None else np.bincount(codes)
        with self._round_bar("CTR booster") as bar:
            ctr = backend.train({**base, **(self.ctr_params or {})}, self.n_estimators,
                                _TrainData(Xc, yf.astype(np.float32), w), ctr_evals,
                                _grad_fn(ctr_obj, yf, w, sizes), m0, self.ctr_stopping_metric, es,
                                tick=None if bar is None else bar.update)
        self.ctr_booster_ = ctr.booster
        self.ctr_init_margin_ = ctr.offset
        self.n_rounds_ctr_ = ctr.n_rounds
        self.best_iteration_ctr_ = ctr.best_iteration
        history = {"ctr": ctr.history}

        # ---- CVR booster
        self.cvr_booster_ = None
        self.cvr_init_margin_ = 0.0
        self.n_rounds_cvr_ = 0
        self.best_iteration_cvr_ = None
        self.cvr_fallback_rate_ = None
        n_conv = int(np.count_nonzero(used == 2))
        if n_conv == 0:
            self.cvr_fallback_rate_ = 0.5 / (n_click + 1)
            warnings.warn(
                f"y has no conversions: the CVR booster is not trained and pCVR is the constant "
                f"{self.cvr_fallback_rate_:.3g} (0.5 / (clicks + 1))", UserWarning, stacklevel=2,
            )
        else:
            clicked = yf >= 1
            if self.cvr_space == "clicked":
                idx = np.flatnonzero(clicked)
                data = _TrainData(_take(Xc, idx), (yf[idx] == 2).astype(np.float32),
                                  None if w is None else w[idx])
                cvr_grad, u0 = None, 0.0
                cvr_evals = []
                for Xe, ye, _ in evals:
                    ie = np.flatnonzero(ye >= 1)
                    ve = (ye[ie] == 2).astype(np.float32)
                    cvr_evals.append(_EvalData(_take(Xe, ie), ve, 0.0, _auc_of_margin(ve)))
            else:
                pctr = expit(self._ctr_margin(Xc))
                data = _TrainData(Xc, yf.astype(np.float32), w)
                cvr_grad = _grad_fn(EntireSpaceCVRObjective(ctr_prob=pctr, **obj_kw), yf, w, None)
                # start u at the log-odds of the conversion rate among clicks
                u0 = initial_margin((yf[clicked] == 2).astype(np.int8), None if w is None else w[clicked])
                cvr_evals = [_EvalData(Xe, ye, u0, _ctcvr_auc_of_margin(ye, expit(self._ctr_margin(Xe))))
                             for Xe, ye, _ in evals]
            if es is not None:
                self._check_monitored(evals[-1], "cvr")
            with self._round_bar("CVR booster") as bar:
                cvr = backend.train({**base, **(self.cvr_params or {})}, self.n_estimators, data, cvr_evals,
                                    cvr_grad, u0, "auc_conv" if self.cvr_space == "clicked" else "auc_ctcvr",
                                    es, tick=None if bar is None else bar.update)
            self.cvr_booster_ = cvr.booster
            self.cvr_init_margin_ = cvr.offset
            self.n_rounds_cvr_ = cvr.n_rounds
            self.best_iteration_cvr_ = cvr.best_iteration
            history["cvr"] = cvr.history
        self.evals_result_ = history if evals else {}
        self.classes_ = np.array([0, 1])
        return self

    def _check_eval_set(self, eval_set: Any) -> list[tuple[Any, np.ndarray, np.ndarray | None]]:
        if eval_set is None:
            return []
        if isinstance(eval_set, tuple) and len(eval_set) in (2, 3) and not isinstance(eval_set[0], tuple):
            raise TypeError("eval_set must be a list of (X, y) or (X, y, group) tuples")
        out = []
        for k, item in enumerate(eval_set):
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise TypeError(f"eval_set[{k}] must be (X, y) or (X, y, group)")
            Xe = self._check_X(item[0], reset=False)
            ye = _as_funnel(item[1], f"eval_set[{k}] y")
            ge = item[2] if len(item) == 3 else None
            ne = _n_rows(Xe)
            if ye.shape[0] != ne:
                raise ValueError(f"eval_set[{k}]: X has {ne} rows but y has {ye.shape[0]}")
            ce = None if ge is None else group_codes(ge, ne, f"eval_set[{k}] group")
            out.append((Xe, ye, ce))
        return out

    def _check_monitored(self, ev: tuple[Any, np.ndarray, Any], which: str) -> None:
        """The watched eval set must have both classes of the watched label."""
        _, ye, _ = ev
        if which == "ctr":
            target = (ye >= 1) if self.ctr_stopping_metric.startswith("auc_click") else (ye == 2)
        elif self.cvr_space == "clicked":
            target = ye[ye >= 1] == 2
        else:
            target = ye == 2
        if np.unique(target).size < 2:
            what = "clicks" if which == "ctr" and self.ctr_stopping_metric.startswith("auc_click") else "conversions"
            raise ValueError(f"the last eval_set has only one class of {what} "
                             f"({'clicked rows' if which == 'cvr' and self.cvr_space == 'clicked' else 'all rows'}); "
                             f"cannot early-stop the {which.upper()} booster on its AUC")

    def _ctr_metric(self, ye: np.ndarray, ge: np.ndarray | None) -> Callable[[np.ndarray], float]:
        fn, needs_group = M.METRICS[self.ctr_stopping_metric]
        if needs_group:
            g = np.zeros(ye.size, dtype=np.int64) if ge is None else ge
            return lambda z: fn(z, ye, g)
        return lambda z: fn(z, ye)

    # ------------------------------------------------------------------ predict
    def _round_bar(self, desc: str) -> Any:
        """A tqdm bar over the boosting rounds when ``verbose``, else a null context."""
        if not self.verbose:
            return contextlib.nullcontext(None)
        import sys

        from tqdm.auto import tqdm

        return tqdm(total=self.n_estimators, desc=desc, unit="round", leave=False, file=sys.stderr,
                    dynamic_ncols=True)

    def _backend(self) -> _Backend:
        return _BACKENDS[self.backend]()

    def _nthread(self) -> int | None:
        return self._checked_params()["nthread"]

    def _ctr_margin(self, Xc: Any) -> np.ndarray:
        return (self._backend().predict_margin(self.ctr_booster_, Xc, self.n_rounds_ctr_, self._nthread())
                + self.ctr_init_margin_)

    def _predict_all(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "ctr_booster_")
        Xc = self._check_X(X, reset=False)
        pctr = expit(self._ctr_margin(Xc))
        if self.cvr_booster_ is None:
            pcvr = np.full(pctr.shape, float(self.cvr_fallback_rate_))
        else:
            u = (self._backend().predict_margin(self.cvr_booster_, Xc, self.n_rounds_cvr_, self._nthread())
                 + self.cvr_init_margin_)
            pcvr = expit(u)
        return np.asarray(pctr, dtype=np.float64), np.asarray(pcvr, dtype=np.float64)

    def predict_ctr(self, X: Any) -> np.ndarray:
        """pCTR: probability of a click per exposure, shape (n,)."""
        return self._predict_all(X)[0]

    def predict_cvr(self, X: Any) -> np.ndarray:
        """pCVR: probability of a conversion given a click, shape (n,)."""
        return self._predict_all(X)[1]

    def predict_ctcvr(self, X: Any) -> np.ndarray:
        """pCTCVR = pCTR · pCVR: probability of a conversion per exposure, shape (n,)."""
        pctr, pcvr = self._predict_all(X)
        return pctr * pcvr

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[1 - pCTCVR, pCTCVR]`` per row, shape (n, 2) (columns follow ``classes_``)."""
        p = self.predict_ctcvr(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class (1 = converts): the argmax of :meth:`predict_proba`."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: npt.ArrayLike | None = None) -> float:
        """CTCVR AUC: AUC of pCTCVR against conversions over all exposures (SPEC §6).

        ``y`` as in :meth:`fit`. NaN when ``y`` has a single conversion class.
        """
        return _ctcvr_auc(_as_funnel(y), self.predict_ctcvr(X), sample_weight)

    # ------------------------------------------------------------------ persistence
    def save_model(self, path: str | os.PathLike[str]) -> None:
        """Save the fitted model: native boosters + ``meta.json``, to a directory or a ``.zip``.

        The boosters are stored in their native formats (``ctr.ubj``/``cvr.ubj``
        for XGBoost, ``ctr.txt``/``cvr.txt`` for LightGBM), so they can also be
        loaded by the libraries alone; the parameters and fitted metadata go to
        ``meta.json``. Load with :meth:`load_model`.
        """
        check_is_fitted(self, "ctr_booster_")
        be = self._backend()
        files = {f"ctr.{be.suffix}": be.to_bytes(self.ctr_booster_)}
        if self.cvr_booster_ is not None:
            files[f"cvr.{be.suffix}"] = be.to_bytes(self.cvr_booster_)
        fitted = {
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": None if not hasattr(self, "feature_names_in_") else list(self.feature_names_in_),
            "classes_": self.classes_.tolist(),
            "ctr_init_margin_": self.ctr_init_margin_, "cvr_init_margin_": self.cvr_init_margin_,
            "n_rounds_ctr_": self.n_rounds_ctr_, "n_rounds_cvr_": self.n_rounds_cvr_,
            "best_iteration_ctr_": self.best_iteration_ctr_, "best_iteration_cvr_": self.best_iteration_cvr_,
            "cvr_fallback_rate_": self.cvr_fallback_rate_, "evals_result_": self.evals_result_,
            "_columns": self._columns, "_categorical": self._categorical,
        }
        from .. import __version__

        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "gbdt_pwiser_version": __version__,
                "params": self.get_params(deep=False), "fitted": fitted, "files": sorted(files)}
        try:
            files["meta.json"] = json.dumps(meta, default=_json_default, indent=1).encode("utf-8")
        except TypeError as exc:
            raise TypeError(f"cannot save the parameters as JSON ({exc}); use ints/floats/strings in "
                            "the parameters, or pickle the estimator instead") from None
        path = Path(path)
        if path.suffix == ".zip":
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, raw in files.items():
                    zf.writestr(name, raw)
        else:
            path.mkdir(parents=True, exist_ok=True)
            for name, raw in files.items():
                (path / name).write_bytes(raw)

    @classmethod
    def load_model(cls, path: str | os.PathLike[str]) -> CTCVRClassifier:
        """Load a model written by :meth:`save_model` (directory or ``.zip``)."""
        path = Path(path)
        if path.is_dir():
            def read(name: str) -> bytes:
                return (path / name).read_bytes()
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                blobs = {name: zf.read(name) for name in zf.namelist()}

            def read(name: str) -> bytes:
                return blobs[name]
        else:
            raise FileNotFoundError(f"{str(path)!r} is neither a saved model directory nor a zip archive")
        try:
            meta = json.loads(read("meta.json").decode("utf-8"))
        except (KeyError, FileNotFoundError):
            raise ValueError(f"{str(path)!r} has no meta.json: not a saved CTCVRClassifier") from None
        if meta.get("format") != _FORMAT or meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"{str(path)!r} is not a CTCVRClassifier model of format version {_FORMAT_VERSION}")
        est = cls(**meta["params"])
        cfg = est._checked_params()
        be = est._backend()
        fitted = dict(meta["fitted"])
        names = fitted.pop("feature_names_in_")
        if names is not None:
            est.feature_names_in_ = np.asarray(names, dtype=object)
        est.classes_ = np.asarray(fitted.pop("classes_"))
        for key, value in fitted.items():
            setattr(est, key, value)
        est.ctr_booster_ = be.from_bytes(read(f"ctr.{be.suffix}"), cfg["nthread"])
        est.cvr_booster_ = (be.from_bytes(read(f"cvr.{be.suffix}"), cfg["nthread"])
                            if f"cvr.{be.suffix}" in meta["files"] else None)
        return est


# --------------------------------------------------------------------------- metrics and scorers


def _auc_of_margin(target: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda z: M.auc(target, z)


def _ctcvr_auc_of_margin(y: np.ndarray, pctr: np.ndarray) -> Callable[[np.ndarray], float]:
    """Conversion AUC of pCTR·σ(u) over all rows: the early-stopping metric of the entire-space booster."""
    return lambda u: M.conversion_auc(pctr * expit(u), y)


def _ctcvr_auc(y: np.ndarray, pctcvr: np.ndarray, sample_weight: Any = None) -> float:
    return M.auc(y == 2, pctcvr, sample_weight)


def _ctr_auc(y_true: Any, pctr: np.ndarray, sample_weight: Any = None) -> float:
    return M.auc(_as_funnel(y_true) >= 1, pctr, sample_weight)


def _cvr_auc(y_true: Any, pcvr: np.ndarray, sample_weight: Any = None) -> float:
    y = _as_funnel(y_true)
    clicked = y >= 1
    w = None if sample_weight is None else np.asarray(sample_weight)[clicked]
    return M.auc(y[clicked] == 2, np.asarray(pcvr)[clicked], w)


def _ctcvr_auc_score(y_true: Any, pctcvr: np.ndarray, sample_weight: Any = None) -> float:
    return _ctcvr_auc(_as_funnel(y_true), pctcvr, sample_weight)


def _pctr_conversion_auc(y_true: Any, pctr: np.ndarray, sample_weight: Any = None) -> float:
    return M.auc(_as_funnel(y_true) == 2, pctr, sample_weight)


class _AUCScorer:
    """A scorer ``scorer(estimator, X, y, sample_weight=None)`` for ``scoring=``.

    Works on a fitted :class:`CTCVRClassifier` or a ``Pipeline`` ending in one
    (the other steps transform ``X`` first); ``y`` as in :meth:`CTCVRClassifier.fit`.
    """

    def __init__(self, name: str, method: str, func: Callable[..., float]) -> None:
        self._name, self._method, self._func = name, method, func

    def __call__(self, estimator: Any, X: Any, y_true: Any, sample_weight: Any = None) -> float:
        from sklearn.pipeline import Pipeline

        while isinstance(estimator, Pipeline):
            if len(estimator.steps) > 1:
                X = estimator[:-1].transform(X)
            estimator = estimator.steps[-1][1]
        return self._func(y_true, getattr(estimator, self._method)(X), sample_weight)

    def __repr__(self) -> str:
        return self._name


#: AUC of pCTR against clicks over all exposures (``scoring=ctr_auc_scorer``).
ctr_auc_scorer = _AUCScorer("ctr_auc_scorer", "predict_ctr", _ctr_auc)
#: AUC of pCVR against conversions over the clicked exposures.
cvr_auc_scorer = _AUCScorer("cvr_auc_scorer", "predict_cvr", _cvr_auc)
#: AUC of pCTCVR against conversions over all exposures (what :meth:`CTCVRClassifier.score` returns).
ctcvr_auc_scorer = _AUCScorer("ctcvr_auc_scorer", "predict_ctcvr", _ctcvr_auc_score)
#: AUC of pCTR against conversions over all exposures (what the PWiseR term improves).
pctr_conversion_auc_scorer = _AUCScorer("pctr_conversion_auc_scorer", "predict_ctr", _pctr_conversion_auc)
