"""Eval sets, early stopping and lost workers of the Dask engine.

Early stopping needs the eval-set AUC each round, and it must be the AUC of
*all* eval rows. XGBoost's distributed binary ``auc`` is not that when the
eval rows are spread over workers: each worker computes the area under its
own rows' ROC curve and the areas are summed (``Σ_w area_w / Σ_w P_w·N_w``),
so positive/negative pairs on different workers are never compared (measured
on a 2-worker cluster: 0.006 away from ``sklearn.metrics.roc_auc_score``
with the eval set in 3 partitions). With every eval row on one worker the
other workers add zero to both sums, and the reported AUC equals the
single-process one (measured: within 1e-15). So each eval set is gathered
into one partition (it must fit in one worker's memory) and watched with the
native ``auc`` on a binary label:

* CTR booster, ``ctr_stopping_metric="auc_click"``: label ``y >= 1``;
  ``"auc_conv"``: label ``y == 2``; the GAUC metrics are refused (XGBoost's
  ranking AUC averages groups differently from :func:`~gbdt_pwiser.metrics.click_gauc`).
* CVR booster, ``cvr_space="clicked"``: the clicked eval rows, label ``y == 2``
  (:func:`~gbdt_pwiser.metrics.clicked_conversion_auc`); ``cvr_space="entire"``
  is refused (its metric, the AUC of pCTR·pCVR, is not a native metric).

LightGBM's Dask estimators evaluate each worker's eval chunks on their own
(no reduction of the metric) and run the early-stopping callback per worker,
so workers can stop at different rounds (LightGBM issues #6963, #7009);
``eval_set`` is refused there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..._labels import as_funnel
from .._base import FitResult
from .partition import _is_dask

__all__ = ["check_eval_set", "eval_frames", "xgboost_evals", "xgboost_result", "worker_lost"]

#: native metric watched for each stopping metric (on a binary label built from the funnel label)
_NATIVE = {"auc_click": 1, "auc_conv": 2}


def check_eval_set(eval_set: Any) -> None:
    """The form of ``eval_set`` (what the engine can evaluate is refused in :mod:`gbdt_pwiser.engines.limits`)."""
    if (
        not isinstance(eval_set, (list, tuple))
        or not eval_set
        or (isinstance(eval_set, tuple) and not isinstance(eval_set[0], (tuple, list)))
    ):
        raise TypeError("eval_set must be a non-empty list of (X, y) or (X, y, group) tuples")


def _eval_part(X: pd.DataFrame, y: Any, y_col: str, k: int) -> pd.DataFrame:
    lab = as_funnel(y, f"eval_set[{k}] y")
    if lab.shape[0] != len(X):
        raise ValueError(f"eval_set[{k}]: a partition of X has {len(X)} rows but y's has {lab.shape[0]}")
    return X.assign(**{y_col: lab.astype(np.int8)})


def eval_frames(eval_set: Sequence, features: list, y_col: str) -> list:
    """Each eval set as one persisted one-partition dask DataFrame (features + funnel label ``y_col``)."""
    import dask.dataframe as dd

    out = []
    for k, item in enumerate(eval_set):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise TypeError(f"eval_set[{k}] must be (X, y) or (X, y, group)")
        Xe, ye = item[0], item[1]
        if _is_dask(Xe) != _is_dask(ye):
            raise TypeError(
                f"eval_set[{k}]: X and y must both be dask collections (partitioned alike) or both in memory"
            )
        if not _is_dask(Xe):
            if not isinstance(Xe, pd.DataFrame):
                raise TypeError(f"eval_set[{k}] X must be a dask or pandas DataFrame, got {type(Xe).__name__}")
            y_arr = np.asarray(ye)
            Xe = dd.from_pandas(Xe.reset_index(drop=True), npartitions=1, sort=False)
            ye = dd.from_pandas(pd.DataFrame(y_arr) if y_arr.ndim == 2 else pd.Series(y_arr), npartitions=1, sort=False)
        if not hasattr(Xe, "columns") or list(Xe.columns) != features:
            raise ValueError(
                f"eval_set[{k}] X must have the training columns {features}, got {list(getattr(Xe, 'columns', []))}"
            )
        if ye.npartitions != Xe.npartitions:
            raise ValueError(f"eval_set[{k}]: y has {ye.npartitions} partitions but X has {Xe.npartitions}")
        meta = Xe._meta.assign(**{y_col: np.zeros(0, np.int8)})
        frame = dd.map_partitions(_eval_part, Xe, ye, y_col, k, meta=meta, align_dataframes=False)
        out.append(frame[[*features, y_col]].repartition(npartitions=1).persist())
    return out


def xgboost_evals(client: Any, frames: list, features: list, y_col: str, which: str, metric: str) -> list:
    """``[(DaskDMatrix, "valid_k"), ...]`` with the binary label the watched AUC needs."""
    import xgboost as xgb
    import xgboost.dask  # not imported by "import xgboost"

    out = []
    for k, f in enumerate(frames):
        if which == "ctr":
            label = (f[y_col] >= _NATIVE[metric]).astype(np.float32)
            X = f[features]
        else:  # clicked rows, label: converted
            sub = f[f[y_col] >= 1]
            label, X = (sub[y_col] == 2).astype(np.float32), sub[features]
        out.append((xgb.dask.DaskDMatrix(client, X, label=label, enable_categorical=True), f"valid_{k}"))
    return out


def xgboost_result(out: dict, metric: str, early_stopping_rounds: int | None) -> FitResult:
    """A :class:`FitResult` from ``xgboost.dask.train``'s output, the history under ``metric``'s name."""
    booster = out["booster"]
    history = {
        name: {metric: [float(v) for v in ms["auc"]]} for name, ms in out.get("history", {}).items() if "auc" in ms
    }
    best = None
    if early_stopping_rounds is not None:
        best = int(booster.best_iteration)
    used = booster.num_boosted_rounds() if best is None else best + 1
    return FitResult(booster, 0.0, int(used), best, history)


def xgboost_eval_params(params: dict, evals: list) -> dict:
    """``params`` with the native ``auc`` as the only metric when eval sets are watched."""
    return {**params, "eval_metric": "auc"} if evals else params


# --------------------------------------------------------------------------- lost workers


def _lost_errors() -> tuple:
    import distributed
    from distributed.comm.core import CommClosedError

    errs: list = [distributed.KilledWorker, CommClosedError]
    try:
        from xgboost.core import XGBoostError

        errs.append(XGBoostError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from lightgbm.basic import LightGBMError

        errs.append(LightGBMError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def _workers(client: Any) -> set:
    try:
        return set(client.scheduler_info().get("workers", {}))
    except (OSError, TimeoutError):  # the scheduler cannot answer (CommClosedError is an OSError)
        return set()


#: how long the scheduler is given to notice a dead worker after the collective failed
_LOSS_WAIT_S = 5.0


def _lost(client: Any, before: set, exc: BaseException) -> bool:
    """Whether a worker of ``before`` has left the cluster (the state decides, not the error's text)."""
    import time

    import distributed
    from distributed.comm.core import CommClosedError

    if isinstance(exc, (distributed.KilledWorker, CommClosedError)):
        return True
    deadline = time.monotonic() + _LOSS_WAIT_S
    while True:
        if not before <= _workers(client):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


@contextlib.contextmanager
def worker_lost(which: str, client: Any) -> Iterator[None]:
    """Re-raise a training failure as a clear ``RuntimeError`` when a worker was lost during it.

    A booster's collective (XGBoost's ring, LightGBM's sockets) fails when a
    worker dies; whether that happened is read from the cluster's state: a
    worker present when training started is gone (the nanny may have
    restarted it under a new address). Any other failure is re-raised as it is.
    """
    before = _workers(client)
    try:
        yield
    except _lost_errors() as exc:
        if not _lost(client, before, exc):
            raise
        raise RuntimeError(
            f"a Dask worker was lost during training of the {which} booster ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); the boosters' collective cannot continue "
            "without it: restart the worker (or the cluster) and fit again"
        ) from exc
