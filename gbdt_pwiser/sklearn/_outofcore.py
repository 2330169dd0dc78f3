"""``CTCVRClassifier.fit(ParquetLog(...))``: the chained fit from Parquet shards, out of core.

The features never sit in memory whole: XGBoost's external memory
(``ExtMemQuantileDMatrix``) reads them one shard at a time and keeps its
quantised pages on disk. What is held in memory is the per-row state the
objectives need (:class:`~gbdt_pwiser._external.LogState`: int8 funnel labels,
float64 weights when given, int64 group sizes) plus XGBoost's own per-row
buffers (labels, weights, predictions, gradients). The boosters, eval sets,
early stopping and the fitted attributes are those of the in-memory fit
(:meth:`CTCVRClassifier._fit_chain` is shared).
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from .._external import ParquetLog
from .._validation import check_random_state
from ._inputs import check_sample_weight
from ._rows import ParquetRows
from ._shared import clear_fitted

__all__ = ["fit_log"]


def check_log_fit(est: Any, y: Any, group: Any, sample_weight: Any) -> None:
    """What an out-of-core fit supports; a ``ValueError`` saying why otherwise."""
    if y is not None or group is not None or sample_weight is not None:
        raise ValueError("with X=ParquetLog(...), labels, groups and weights come from its columns "
                         "(label=, group=, weight=): call fit(log) with y, group and sample_weight unset")
    if est.backend != "xgboost":
        raise ValueError(f"backend={est.backend!r} cannot fit from a ParquetLog: out-of-core training uses "
                         "XGBoost's external memory (ExtMemQuantileDMatrix); LightGBM has no external-memory "
                         "Dataset (it bins the whole training set in memory). Use backend=\"xgboost\", or "
                         "read the shards into memory for LightGBM")
    if est.structure != "chain":
        raise ValueError('structure="shared" cannot fit from a ParquetLog (its multi-output booster is '
                         'trained in memory only); use structure="chain"')
    if est.device != "cpu":
        raise ValueError(f'device={est.device!r}: fits from a ParquetLog run on device="cpu" only')


def fit_log(est: Any, log: ParquetLog, y: Any, group: Any, sample_weight: Any, eval_set: Any) -> Any:
    """Fit ``est`` (a ``CTCVRClassifier``) from the shards of ``log``; returns ``est``."""
    check_log_fit(est, y, group, sample_weight)
    seed, nthread = check_random_state(est.random_state), est._nthread()
    features = log.columns()
    state = log.read_state()
    yf = state.y
    w = check_sample_weight(state.weight, yf.size)
    # the feature layout predict and eval_set are checked against (numeric columns, by name)
    est.n_features_in_ = len(features)
    est.feature_names_in_ = np.asarray(features, dtype=object)
    est._columns, est._categorical = list(features), []
    w_click, has_conv, evals = est._check_fit_data(yf, w, eval_set)
    clear_fitted(est)
    est.classes_ = np.array([0, 1])
    with tempfile.TemporaryDirectory(prefix="gbdt-pwiser-extmem-", dir=log.cache_dir) as cache:
        rows = ParquetRows(est, log, state, cache)
        try:
            return est._fit_chain(rows, yf, w, state.sizes, evals, seed, nthread, has_conv, w_click)
        finally:
            rows.close()
