"""``DaskCTCVRClassifier``: the CTR → CVR chain trained with ``xgboost.dask`` / ``lightgbm.dask``.

The estimator is glue over the phase-1 pieces: :func:`partition_by_group`
(groups whole in one partition), :func:`group_statistics` (the global
normalisers), :class:`GlobalPWiseRObjective` (exact gradients on every
worker) and :class:`EntireSpaceLabelObjective` (pCTR carried in the label).
Prediction, scoring and persistence are :class:`CTCVRClassifier`'s
(:meth:`DaskCTCVRClassifier.to_local`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import _fit_context
from sklearn.utils.validation import check_is_fitted

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._validation import GroupLayoutError, check_random_state
from ..objectives import PWiseRObjective, initial_margin
from ..sklearn._backends import FitResult
from ..sklearn._base import _ChainBase
from ..sklearn._classifier import CTCVRClassifier, store_fit
from ..sklearn._inputs import check_native_params, check_X
from ..sklearn._persistence import _FITTED
from ._evals import (check_eval_labels, check_eval_support, eval_frames, worker_lost, xgboost_eval_params,
                     xgboost_evals, xgboost_result)
from ._boosters import lightgbm_fit_kwargs, xgboost_dmatrix, xgboost_params
from ._objectives import EntireSpaceLabelObjective, GlobalPWiseRObjective, entire_space_label
from ._partition import (G_COL, W_COL, Y_COL, _is_dask, group_statistics, nonempty_partitions, partition_by_group,
                         partitions_of, training_frame)

__all__ = ["DaskCTCVRClassifier"]

# column names of the training frame (features keep theirs)
_Y, _G, _W, _ESL = Y_COL, G_COL, W_COL, "__gbdt_pwiser_esl__"


def _esl_part(part: pd.DataFrame, local: CTCVRClassifier, features: list) -> pd.Series:
    """Entire-space labels ``±pCTR`` of one partition, pCTR from the fitted CTR booster."""
    pctr = expit(local._ctr_margin(part[features]))
    return pd.Series(entire_space_label(part[_Y].to_numpy(), pctr), index=part.index, name=_ESL)


def _lgb_dask_params(params: dict) -> dict:
    """LightGBM's Dask estimators set the threads from each worker's own (they ignore ``num_threads``)."""
    return {k: v for k, v in params.items() if k not in ("num_threads", "n_jobs")}


def _predict_part(part: Any, local: CTCVRClassifier, method: str) -> np.ndarray:
    return getattr(local, method)(part)


class DaskCTCVRClassifier(_ChainBase):
    """:class:`~gbdt_pwiser.CTCVRClassifier` trained on a Dask cluster.

    The CTR booster is trained by ``xgboost.dask.train`` or
    ``lightgbm.dask.DaskLGBMRanker`` with :class:`GlobalPWiseRObjective`: every
    group lies whole in one partition (scattered groups are repartitioned with
    :func:`partition_by_group`), and the global normalisers of
    :func:`group_statistics` make each worker's gradient equal to the
    single-process one. The CVR booster is trained on the clicked rows with the
    native log-loss (``cvr_space="clicked"``; each partition is filtered) or on
    all rows with the entire-space loss, pCTR travelling in each row's label
    (``cvr_space="entire"``, :class:`EntireSpaceLabelObjective`).

    Parameters
    ----------
    backend, lam, margin_click_only, margin_no_click, pair_loss, pairs, cvr_space, \
n_estimators, learning_rate, max_depth, ctr_params, cvr_params, early_stopping_rounds, \
ctr_stopping_metric, device, n_jobs, random_state, verbose
        As :class:`~gbdt_pwiser.CTCVRClassifier`. ``early_stopping_rounds``
        needs ``backend="xgboost"``, ``ctr_stopping_metric`` in
        {"auc_click", "auc_conv"} and ``cvr_space="clicked"`` (see Notes);
        ``verbose`` draws no bar; ``n_jobs`` is the boosters' threads on each
        worker.
    client : distributed.Client, optional
        The cluster to train on; by default the current client
        (``distributed.get_client()``).

    Attributes
    ----------
    backend_, structure_, ctr_booster_, cvr_booster_, ctr_init_margin_, cvr_init_margin_, \
cvr_fallback_rate_, classes_, n_features_in_, feature_names_in_, n_rounds_ctr_, n_rounds_cvr_, \
best_iteration_ctr_, best_iteration_cvr_, evals_result_
        As :class:`~gbdt_pwiser.CTCVRClassifier` (plain ``xgboost.Booster`` /
        ``lightgbm.Booster`` objects). ``evals_result_`` is ``{}`` without ``eval_set``.
    n_partitions_ : int
        Partitions the CTR booster was trained on (after any repartitioning; empty ones are dropped).
    repartitioned_ : bool
        Whether ``fit`` had to repartition the data by group.

    Notes
    -----
    * Groups: ``group`` is required when ``lam > 0``. ``group=None`` or
      ``"all"`` (one group holding every row) has no distributed meaning: the
      pairs of one group would span all workers. Use
      :class:`~gbdt_pwiser.CTCVRClassifier` for that, or ``lam=0`` (then the
      groups are irrelevant and each partition serves as one).
    * Exact: the CTR gradients (global normalisers), the starting margins, the
      entire-space gradients. Not exact: the trees themselves, since
      ``xgboost.dask`` and ``lightgbm.dask`` build histograms from distributed
      quantile sketches and LightGBM's data-parallel learner votes on splits;
      AUCs are close to, not equal to, a single-process fit.
    * Early stopping (XGBoost): each eval set is gathered into one partition,
      so one worker holds all its rows and XGBoost's distributed ``auc`` (a
      sum of per-worker areas) is exactly the AUC of the whole eval set; the
      CTR booster watches it on ``y >= 1`` (``"auc_click"``) or ``y == 2``
      (``"auc_conv"``), the clicked-space CVR booster on the clicked rows.
      GAUC metrics, ``cvr_space="entire"`` (``ValueError``) and LightGBM
      (``NotImplementedError``: its Dask metrics are per worker) are refused.
    * A worker lost during training is a ``RuntimeError`` naming the booster.
    * Structure: the chained model only. The shared two-output booster
      (``CTCVRClassifier(structure="shared")``) is single-process; its
      parameters ``structure`` and ``ctcvr_weight_ctr`` do not exist here.
    * Prediction: dask inputs give dask arrays (one block per partition,
      computed on the workers); pandas/numpy inputs give numpy arrays, exactly
      those of :meth:`to_local`. Save with ``to_local().save_model(path)``.

    Examples
    --------
    >>> import dask.dataframe as dd, distributed
    >>> from gbdt_pwiser.dask import DaskCTCVRClassifier
    >>> from gbdt_pwiser.datasets import make_ad_log
    >>> log = make_ad_log(200, random_state=0)
    >>> df = log.X.select_dtypes("number").assign(y=log.y, g=log.group)
    >>> with distributed.Client(n_workers=1, threads_per_worker=1, processes=False,
    ...                         dashboard_address=None) as client:   # doctest: +SKIP
    ...     ddf = dd.from_pandas(df, npartitions=2, sort=False)
    ...     X = ddf.drop(columns=["y", "g"])
    ...     model = DaskCTCVRClassifier(n_estimators=5).fit(X, ddf["y"], group=ddf["g"])
    ...     local = model.to_local()                                   # a CTCVRClassifier
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in CTCVRClassifier._parameter_constraints.items()
           if k not in ("structure", "ctcvr_weight_ctr")},
        "client": [None, object],
    }

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
        client: Any = None,
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
        self.client = client

    def _client(self) -> Any:
        if self.client is not None:
            return self.client
        import distributed

        try:
            return distributed.get_client()
        except ValueError:
            raise ValueError("no Dask client: pass client= or create a distributed.Client first") from None

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, group: Any = None, sample_weight: Any = None,
            eval_set: Sequence[tuple[Any, ...]] | None = None) -> DaskCTCVRClassifier:
        """Fit the CTR booster, then the CVR booster, on the cluster.

        Parameters
        ----------
        X : dask.dataframe.DataFrame of shape (n, d)
            Features (numeric, bool or ``category`` columns; categories that
            ``dd.read_parquet`` leaves unknown are made known with one pass,
            as ``X.categorize()`` would).
        y : dask Series/Array of funnel labels, or a dask DataFrame/Array of shape (n, 2)
            Funnel labels in {0, 1, 2} or [click, conversion], partitioned like
            ``X`` (a dask Array: one row chunk per partition of ``X``).
            Selected from the same dask DataFrame as ``X`` (``ddf["y"]``),
            it is read alike whatever dask's optimiser does.
        group : dask Series/Array of group ids, "all" or None
            Required when ``lam > 0`` (see Notes). Groups scattered over
            partitions are repartitioned with :func:`partition_by_group`.
        sample_weight : dask Series/Array, optional
            Non-negative row weights, partitioned like ``X``.
        eval_set : list of (X, y) or (X, y, group), optional
            Dask or pandas validation data (``group`` is not used: the GAUC
            metrics are refused); each set is gathered on one worker (see Notes).

        Returns
        -------
        self : DaskCTCVRClassifier
        """
        check_eval_support(self, eval_set)
        check_native_params(self.ctr_params, self.cvr_params, self.device, self._backend())
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        if not (_is_dask(X) and hasattr(X, "columns")):
            raise TypeError(f"X must be a dask DataFrame, got {type(X).__name__} "
                            "(use CTCVRClassifier for in-memory data)")
        if isinstance(group, str) or group is None:
            if group is not None and group != "all":
                raise ValueError(f'group must be per-row group ids, "all" or None, got {group!r}')
            if self.lam > 0:
                raise ValueError(
                    f"group is required when lam > 0 (lam={self.lam!r}): PWiseR pairs live in groups, and "
                    f"group={group!r} (all rows in one group) would put one group's pairs on every worker; "
                    "pass per-row group ids, lam=0, or train CTCVRClassifier on one machine"
                )
            group = None
        client = self._client()
        seed, nthread = check_random_state(self.random_state), self._nthread()
        check_X(self, X._meta_nonempty, reset=True)
        features = list(X.columns)
        clash = [c for c in features if c in (_Y, _G, _W, _ESL)]
        if clash:
            raise ValueError(f"X has reserved column names {clash}")
        frame = training_frame(X, y, group, sample_weight)
        w_col = None if sample_weight is None else _W

        def stats_of(f: Any, check: bool) -> Any:
            return group_statistics(f[_Y], f[_G], None if w_col is None else f[w_col], check_groups=check)

        self.repartitioned_ = False
        try:
            stats = stats_of(frame, group is not None)
        except GroupLayoutError:  # groups split over partitions or not contiguous: repartition once
            frame = partition_by_group(frame, _G)
            stats = stats_of(frame, False)
            self.repartitioned_ = True
        frame, keep = nonempty_partitions(frame.persist(), stats.rows)
        stats = stats.partitions(keep)
        self.n_partitions_ = int(frame.npartitions)
        w_click = stats.click_weight
        if w_click == 0:
            raise ValueError("y has only one class: no clicks; the CTR model needs clicked rows "
                             "(funnel labels: 0 no click, 1 click only, 2 conversion)")
        w = None if w_col is None else frame[w_col]
        conv = frame[_Y] == 2
        w_conv = float((conv.sum() if w is None else (w * conv).sum()).compute())
        es = self.early_stopping_rounds
        evals = [] if eval_set is None else eval_frames(eval_set, features, _Y)
        check_eval_labels(self, evals, _Y, w_conv > 0)

        self._start_fit("chain")
        backend = self._fitted_backend()
        base = backend.params(learning_rate=self.learning_rate, max_depth=self.max_depth, seed=seed,
                              nthread=nthread, device=self.device)
        ctr_obj = GlobalPWiseRObjective.from_stats(
            PWiseRObjective(lam=self.lam, margin_click_only=self.margin_click_only,
                            margin_no_click=self.margin_no_click, pair_loss=self.pair_loss, pairs=self.pairs,
                            random_state=seed, device=self.device, n_jobs=None), stats)
        Xf = frame[features]
        ctr_params = {**base, **(self.ctr_params or {})}
        if self.backend == "xgboost":
            import xgboost as xgb
            import xgboost.dask  # noqa: F401

            dtrain = xgboost_dmatrix(client, Xf, frame[_Y], frame[_G], w, stats=stats, check_groups=False,
                                     enable_categorical=True)
            ev = xgboost_evals(client, evals, features, _Y, "ctr", self.ctr_stopping_metric)
            with worker_lost("CTR"):
                out = xgb.dask.train(client, xgboost_eval_params(xgboost_params(stats, ctr_params), ev), dtrain,
                                     num_boost_round=self.n_estimators, obj=ctr_obj, evals=ev,
                                     early_stopping_rounds=es, verbose_eval=False)
            ctr = xgboost_result(out, self.ctr_stopping_metric, es)
        else:
            import lightgbm as lgb

            ctr_params = _lgb_dask_params(ctr_params)
            model = lgb.dask.DaskLGBMRanker(objective=ctr_obj, n_estimators=self.n_estimators, client=client,
                                            **{**ctr_params, "metric": "None"})
            with worker_lost("CTR"):
                model.fit(**lightgbm_fit_kwargs(Xf, frame[_Y], frame[_G], w, stats=stats, check_groups=False))
            ctr = FitResult(model.booster_, stats.initial_margin, model.booster_.current_iteration(), None, {})
        store_fit(self, "ctr", ctr)
        history = {"ctr": ctr.history}

        if w_conv <= 0:
            store_fit(self, "cvr", None, w_click=w_click)
        else:
            cvr_params = {**base, **(self.cvr_params or {})}
            if self.backend == "lightgbm":
                cvr_params = _lgb_dask_params(cvr_params)
            # log-odds of the conversion rate among clicks (as CTCVRClassifier), from the global sums
            u0 = initial_margin(np.array([1, 0]), np.array([w_conv, w_click - w_conv]))
            if self.cvr_space == "clicked":
                sub, _ = nonempty_partitions(frame[frame[_Y] >= 1])  # partitions without clicks dropped
                label = (sub[_Y] == 2).astype(np.float32)
                sw = None if w_col is None else sub[w_col]
                ev = xgboost_evals(client, evals, features, _Y, "cvr", "auc_conv") if evals else []
                with worker_lost("CVR"):
                    cvr = self._train_cvr_clicked(client, sub[features], label, sw, cvr_params, ev)
            else:
                esl = frame.map_partitions(_esl_part, self.to_local(), features,
                                           meta=pd.Series([], dtype=np.float32, name=_ESL))
                with worker_lost("CVR"):
                    cvr = self._train_cvr_entire(client, Xf, esl, w, u0, cvr_params)
            store_fit(self, "cvr", cvr)
            history["cvr"] = cvr.history
        self.evals_result_ = history if evals else {}
        self.classes_ = np.array([0, 1])
        return self

    def _train_cvr_clicked(self, client: Any, X: Any, label: Any, w: Any, params: dict,
                           evals: list) -> FitResult:
        """Native log-loss on the clicked rows (the library's own intercept, as CTCVRClassifier)."""
        if self.backend == "xgboost":
            import xgboost as xgb

            dtrain = xgb.dask.DaskQuantileDMatrix(client, X, label=label, weight=w, enable_categorical=True)
            params = {**params, "objective": "binary:logitraw", "disable_default_eval_metric": 1}
            out = xgb.dask.train(client, xgboost_eval_params(params, evals), dtrain,
                                 num_boost_round=self.n_estimators, evals=evals,
                                 early_stopping_rounds=self.early_stopping_rounds, verbose_eval=False)
            return xgboost_result(out, "auc_conv", self.early_stopping_rounds)
        import lightgbm as lgb

        model = lgb.dask.DaskLGBMRegressor(objective="binary", n_estimators=self.n_estimators, client=client,
                                           **{**params, "metric": "None"})
        model.fit(X, label, sample_weight=w)
        return FitResult(model.booster_, 0.0, model.booster_.current_iteration(), None, {})

    def _train_cvr_entire(self, client: Any, X: Any, esl: Any, w: Any, u0: float, params: dict) -> FitResult:
        """Entire-space loss from ``u0``, pCTR carried in the label."""
        obj = EntireSpaceLabelObjective(device=self.device)
        if self.backend == "xgboost":
            import xgboost as xgb

            dtrain = xgb.dask.DaskQuantileDMatrix(client, X, label=esl, weight=w, enable_categorical=True)
            out = xgb.dask.train(client, {**params, "base_score": u0, "disable_default_eval_metric": 1},
                                 dtrain, num_boost_round=self.n_estimators, obj=obj)
            return FitResult(out["booster"], 0.0, out["booster"].num_boosted_rounds(), None, {})
        import lightgbm as lgb

        model = lgb.dask.DaskLGBMRegressor(objective=obj, n_estimators=self.n_estimators, client=client,
                                           **{**params, "metric": "None"})
        model.fit(X, esl, sample_weight=w, init_score=esl.astype(np.float64) * 0.0 + u0)
        return FitResult(model.booster_, float(u0), model.booster_.current_iteration(), None, {})

    # ------------------------------------------------------------------ local model, prediction
    def to_local(self) -> CTCVRClassifier:
        """An ordinary :class:`~gbdt_pwiser.CTCVRClassifier` with these boosters (predicts identically).

        Use it to save (``to_local().save_model(path)``), to predict without a
        cluster, or to ship the model.
        """
        check_is_fitted(self, "ctr_booster_")
        params = self.get_params(deep=False)
        params.pop("client")
        local = CTCVRClassifier(**params)
        for key in _FITTED + ("ctr_booster_", "cvr_booster_", "classes_", "feature_names_in_"):
            if hasattr(self, key):
                setattr(local, key, getattr(self, key))
        return local

    def _dask_predict(self, X: Any, method: str, tail: tuple) -> Any:
        import dask
        import dask.array as da

        local = self.to_local()
        blocks = [da.from_delayed(dask.delayed(_predict_part)(p, local, method), shape=(np.nan,) + tail,
                                  dtype=np.float64) for p in partitions_of(X, "X")]
        return da.concatenate(blocks) if len(blocks) > 1 else blocks[0]

    def predict_ctr(self, X: Any) -> Any:
        """pCTR per row: a dask Array for dask input, else a numpy array (see :class:`CTCVRClassifier`)."""
        return self._dask_predict(X, "predict_ctr", ()) if _is_dask(X) else super().predict_ctr(X)

    def predict_cvr(self, X: Any) -> Any:
        """pCVR per row (dask Array for dask input)."""
        return self._dask_predict(X, "predict_cvr", ()) if _is_dask(X) else super().predict_cvr(X)

    def predict_ctcvr(self, X: Any) -> Any:
        """pCTCVR = pCTR · pCVR per row (dask Array for dask input)."""
        return self._dask_predict(X, "predict_ctcvr", ()) if _is_dask(X) else super().predict_ctcvr(X)

    def predict_proba(self, X: Any) -> Any:
        """``[1 - pCTCVR, pCTCVR]`` per row, shape (n, 2) (dask Array for dask input)."""
        return self._dask_predict(X, "predict_proba", (2,)) if _is_dask(X) else super().predict_proba(X)

    def predict(self, X: Any) -> Any:
        """Predicted class (1 = converts) (dask Array for dask input)."""
        if _is_dask(X):
            return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)
        return super().predict(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """CTCVR AUC; dask inputs are gathered to the driver first (the AUC needs every row)."""
        if _is_dask(X):
            X = X.compute()
        if _is_dask(y):
            y = y.compute()
        if _is_dask(sample_weight):
            sample_weight = sample_weight.compute()
        return super().score(X, y, sample_weight)

    def save_model(self, path: Any) -> None:
        """Save as :class:`CTCVRClassifier` would (``to_local().save_model``); load with
        ``CTCVRClassifier.load_model``."""
        self.to_local().save_model(path)

    @classmethod
    def load_model(cls, path: Any) -> Any:
        raise NotImplementedError("load a saved model with CTCVRClassifier.load_model(path)")
