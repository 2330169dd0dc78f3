"""``DaskCTCVRClassifier``: :class:`~gbdt_pwiser.CTCVRClassifier` on the Dask engine.

The same estimator — the same parameters, the same fit driver — trained by
:class:`gbdt_pwiser.engines.dask.DaskEngine`; this class only adds the client
(a property, as xgboost's Dask estimators have) and predictions on dask inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..engines.dask.partition import _is_dask, partitions_of
from ..sklearn._classifier import CTCVRClassifier

__all__ = ["DaskCTCVRClassifier"]


def _predict_part(part: Any, local: CTCVRClassifier, method: str) -> np.ndarray:
    return getattr(local, method)(part)


class DaskCTCVRClassifier(CTCVRClassifier):
    """:class:`~gbdt_pwiser.CTCVRClassifier` trained on a Dask cluster.

    Every parameter is :class:`~gbdt_pwiser.CTCVRClassifier`'s, with the same
    meaning. The CTR booster is trained by ``xgboost.dask.train`` or
    ``lightgbm.dask.DaskLGBMRanker`` with
    :class:`~gbdt_pwiser.dask.GlobalPWiseRObjective`: every group lies whole in
    one partition (scattered groups are repartitioned with
    :func:`~gbdt_pwiser.dask.partition_by_group`), and the global normalisers of
    :func:`~gbdt_pwiser.dask.group_statistics` make each worker's gradient equal
    to the single-process one. The CVR booster is trained on the clicked rows
    with the native log-loss (``cvr_space="clicked"``; each partition is
    filtered) or on all rows with the entire-space loss, pCTR travelling in each
    row's label (``cvr_space="entire"``,
    :class:`~gbdt_pwiser.dask.EntireSpaceLabelObjective`). ``structure="shared"``
    trains one two-output booster with ``xgboost.dask`` (its objective with
    global normalisers too).

    Parameters
    ----------
    **params
        As :class:`~gbdt_pwiser.CTCVRClassifier`. ``verbose`` draws no bar;
        ``n_jobs`` is the boosters' threads on each worker (LightGBM's Dask
        estimators use each worker's own threads).

    Attributes
    ----------
    client : distributed.Client
        The cluster to train on: the current client (``distributed.get_client()``)
        unless set (``model.client = client``). Not a parameter: ``clone`` and
        ``get_params`` leave it out, and a fitted model keeps no client.
    n_partitions_ : int
        Partitions the CTR booster was trained on (after any repartitioning).
    repartitioned_ : bool
        Whether ``fit`` had to repartition the data by group.

    The other fitted attributes are :class:`~gbdt_pwiser.CTCVRClassifier`'s
    (plain ``xgboost.Booster`` / ``lightgbm.Booster`` objects).

    Notes
    -----
    * Groups: ``group`` is required when ``lam > 0``. ``group=None`` or
      ``"all"`` (one group holding every row) has no distributed meaning: the
      pairs of one group would span all workers. Use
      :class:`~gbdt_pwiser.CTCVRClassifier` for that, or ``lam=0`` (then the
      groups are irrelevant and each partition serves as one).
    * ``X``, ``y``, ``group`` and ``sample_weight`` are assembled into one dask
      DataFrame: dask Series are aligned with ``X`` by index (as in pandas),
      dask Arrays by blocks (chunks equal to ``X``'s partitions). Category
      columns with unknown categories (``dd.read_parquet`` of pandas
      categoricals) are made known first (``X.categorize``, one pass over them).
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
      What cannot be evaluated exactly on the workers is refused
      (:mod:`gbdt_pwiser.engines.limits`): GAUC metrics,
      ``cvr_space="entire"``, the shared booster, and LightGBM (its Dask
      metrics are per worker).
    * A worker lost during training is a ``RuntimeError`` naming the booster.
    * Prediction: dask inputs give dask arrays (one block per partition,
      computed on the workers); pandas/numpy inputs give numpy arrays, exactly
      those of :meth:`to_local`. ``save_model`` writes the same format as
      :class:`~gbdt_pwiser.CTCVRClassifier`.

    Examples
    --------
    >>> import dask.dataframe as dd, distributed
    >>> from gbdt_pwiser.dask import DaskCTCVRClassifier
    >>> from gbdt_pwiser.datasets import make_ad_log
    >>> log = make_ad_log(200, random_state=0)
    >>> df = log.X.select_dtypes("number").assign(y=log.y, g=log.group)
    >>> with distributed.Client(
    ...     n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ... ) as client:  # doctest: +SKIP
    ...     ddf = dd.from_pandas(df, npartitions=2, sort=False)
    ...     X = ddf.drop(columns=["y", "g"])
    ...     model = DaskCTCVRClassifier(n_estimators=5).fit(X, ddf["y"], group=ddf["g"])
    ...     local = model.to_local()  # a CTCVRClassifier
    """

    _client: Any = None

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` to train on (default: ``distributed.get_client()``)."""
        if self._client is not None:
            return self._client
        import distributed

        try:
            return distributed.get_client()
        except ValueError:
            raise ValueError("no Dask client: create a distributed.Client first, or set model.client") from None

    @client.setter
    def client(self, value: Any) -> None:
        self._client = value

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_client", None)  # a fitted model keeps no client (it cannot be pickled)
        return state

    def _fit_client(self) -> Any:
        return self.client

    # ------------------------------------------------------------------ local model, prediction
    def to_local(self) -> CTCVRClassifier:
        """An ordinary :class:`~gbdt_pwiser.CTCVRClassifier` with these boosters (predicts identically).

        Use it to predict without a cluster, or to ship the model.
        """
        check_is_fitted(self, "structure_")
        local = CTCVRClassifier(**self.get_params(deep=False))
        for key, value in vars(self).items():
            if (key.endswith("_") and not key.startswith("__")) or key in ("_columns", "_categorical"):
                setattr(local, key, value)
        return local

    def _dask_predict(self, X: Any, method: str, tail: tuple) -> Any:
        import dask
        import dask.array as da

        local = self.to_local()
        blocks = [
            da.from_delayed(dask.delayed(_predict_part)(p, local, method), shape=(np.nan, *tail), dtype=np.float64)
            for p in partitions_of(X, "X")
        ]
        return da.concatenate(blocks) if len(blocks) > 1 else blocks[0]

    def predict_ctr(self, X: Any) -> Any:
        """pCTR per row: a dask Array for dask input, else a numpy array (see :class:`~gbdt_pwiser.CTCVRClassifier`)."""
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
