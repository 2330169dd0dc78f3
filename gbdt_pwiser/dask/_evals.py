"""Eval sets, early stopping and lost workers of :class:`DaskCTCVRClassifier`.

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
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from .._labels import as_funnel
from ..sklearn._backends import FitResult
from ..sklearn._inputs import check_monitored
from ._partition import _is_dask

__all__ = ["check_eval_support", "eval_frames", "xgboost_evals", "xgboost_result", "worker_lost"]

#: native metric watched for each stopping metric (on a binary label built from the funnel label)
_NATIVE = {"auc_click": 1, "auc_conv": 2}


def check_eval_support(est: Any, eval_set: Any) -> None:
    """Refuse, before any work, what cannot be evaluated exactly on Dask."""
    if eval_set is None and est.early_stopping_rounds is None:
        return
    if eval_set is None:
        raise ValueError("early_stopping_rounds needs an eval_set")
    if est.backend == "lightgbm":
        raise NotImplementedError(
            "eval_set and early_stopping_rounds are not supported with backend='lightgbm' on Dask: "
            "lightgbm.dask evaluates each worker's eval rows on their own (an AUC of part of the rows, "
            "never reduced over workers) and each worker's early-stopping callback decides alone, so "
            "workers can stop at different rounds; use backend='xgboost', or choose n_estimators on a "
            "sample with CTCVRClassifier"
        )
    if est.ctr_stopping_metric not in _NATIVE:
        raise ValueError(
            f"ctr_stopping_metric={est.ctr_stopping_metric!r} cannot be computed exactly on Dask (XGBoost's "
            "distributed ranking AUC is not this GAUC); use 'auc_click' or 'auc_conv'"
        )
    if est.cvr_space == "entire":
        raise ValueError(
            "eval_set is not supported with cvr_space='entire' on Dask: that booster's metric is the AUC of "
            "pCTR*pCVR, which XGBoost cannot evaluate natively on the workers; use cvr_space='clicked'"
        )
    if (not isinstance(eval_set, (list, tuple)) or not eval_set
            or (isinstance(eval_set, tuple) and not isinstance(eval_set[0], (tuple, list)))):
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
            raise TypeError(f"eval_set[{k}]: X and y must both be dask collections (partitioned alike) or both "
                            "in memory")
        if not _is_dask(Xe):
            if not isinstance(Xe, pd.DataFrame):
                raise TypeError(f"eval_set[{k}] X must be a dask or pandas DataFrame, got {type(Xe).__name__}")
            y_arr = np.asarray(ye)
            Xe = dd.from_pandas(Xe.reset_index(drop=True), npartitions=1, sort=False)
            ye = dd.from_pandas(pd.DataFrame(y_arr) if y_arr.ndim == 2 else pd.Series(y_arr), npartitions=1,
                                sort=False)
        if not hasattr(Xe, "columns") or list(Xe.columns) != features:
            raise ValueError(f"eval_set[{k}] X must have the training columns {features}, "
                             f"got {list(getattr(Xe, 'columns', []))}")
        if ye.npartitions != Xe.npartitions:
            raise ValueError(f"eval_set[{k}]: y has {ye.npartitions} partitions but X has {Xe.npartitions}")
        meta = Xe._meta.assign(**{y_col: np.zeros(0, np.int8)})
        frame = dd.map_partitions(_eval_part, Xe, ye, y_col, k, meta=meta, align_dataframes=False)
        out.append(frame[features + [y_col]].repartition(npartitions=1).persist())
    return out


def check_eval_labels(est: Any, frames: list, y_col: str, has_conv: bool) -> None:
    """The watched (last) eval set must hold both classes of each watched label."""
    if est.early_stopping_rounds is None:
        return
    ye = frames[-1][y_col].compute().to_numpy()
    if ye.size == 0:
        raise ValueError("the last eval_set is empty")
    for which in ("ctr", "cvr") if has_conv else ("ctr",):
        check_monitored(ye, which, est.ctr_stopping_metric, est.cvr_space)


def xgboost_evals(client: Any, frames: list, features: list, y_col: str, which: str, metric: str) -> list:
    """``[(DaskDMatrix, "valid_k"), ...]`` with the binary label the watched AUC needs."""
    import xgboost as xgb

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
    history = {name: {metric: [float(v) for v in ms["auc"]]} for name, ms in out.get("history", {}).items()
               if "auc" in ms}
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


def _is_lost(exc: BaseException) -> bool:
    import distributed
    from distributed.comm.core import CommClosedError

    if isinstance(exc, (distributed.KilledWorker, CommClosedError)):
        return True
    text = str(exc).lower()  # the boosters' collective errors (XGBoost: "Ring Allreduce failed ... Poll
    # error"; LightGBM: "Socket recv error, Connection reset by peer")
    keys = ("socket", "connection", "allreduce", "allgather", "broadcast", "poll error", "broken pipe",
            "collective", "tracker")
    return any(k in text for k in keys)


@contextlib.contextmanager
def worker_lost(which: str) -> Iterator[None]:
    """Re-raise a lost worker during training of the ``which`` booster as a clear ``RuntimeError``."""
    try:
        yield
    except _lost_errors() as exc:
        if not _is_lost(exc):
            raise
        raise RuntimeError(
            f"a Dask worker was lost during training of the {which} booster ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); the boosters' collective cannot continue "
            "without it: restart the worker (or the cluster) and fit again"
        ) from exc
