"""``--data`` as a Parquet log on a Dask cluster: read on the workers, split by group there.

With ``--dask-workers``/``--scheduler`` and a Parquet folder or glob, the
client never holds the training rows: the workers read them, one partition
per file, with the types and checks of the in-memory loader
(:func:`gbdt_pwiser.datasets.parquet.read_typed`), each partition is
converted as the loaders convert a file (:func:`gbdt_pwiser.datasets.parquet.parquet_part`, categories fixed over
the whole log in one pass), and the groups are split by a seeded hash of the
group id (a group is in the test part when its hash falls below
``--test-size``; the share of test groups is close to, not exactly,
``--test-size``). Only the test part is gathered to the client, for the
metrics and the bootstrap; the training part is handed to
``DaskCTCVRClassifier.fit``, which repartitions it by group itself.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ParquetLog", "ParquetTrain", "split_parquet_log", "fit_parquet"]

_Y, _G = "__gbdt_pwiser_y__", "__gbdt_pwiser_group__"
_BUCKETS = 1 << 20


@dataclass
class ParquetLog:
    """A Parquet log left on the cluster; the counts are filled in by :func:`split_parquet_log`."""

    files: list
    layout: str
    rows: int = 0
    n_groups: int = 0
    ctr: float = float("nan")
    cvr_given_click: float = float("nan")
    categories: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.rows


@dataclass
class ParquetTrain:
    """The training part of a :class:`ParquetLog` (rows whose group hashes at or above the test share)."""

    log: ParquetLog
    test_size: float
    seed: int
    rows: int = 0

    def __len__(self) -> int:
        return self.rows


def _test_mask(group: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """True for the rows of test groups: a seeded hash of the group id, the same on every worker."""
    key = f"{seed:016d}"[-16:]
    h = pd.util.hash_array(np.asarray(group, dtype=np.int64), hash_key=key, categorize=False)
    return (h % np.uint64(_BUCKETS)) < np.uint64(int(round(test_size * _BUCKETS)))


def _typed(log: ParquetLog) -> Any:
    """The layout's columns with the loaders' types, one partition per file, read and checked on the workers
    exactly as the in-memory loader reads each file (errors name the file and the column)."""
    import dask.dataframe as dd

    from ..datasets.parquet import read_typed_frame, typed_meta

    return dd.from_map(read_typed_frame, log.files, layout=log.layout, meta=typed_meta(log.layout),
                       label="read-parquet-log")


def _converted(log: ParquetLog) -> Any:
    """The log as a dask DataFrame of features + funnel label + group, converted on the workers."""
    from ..datasets.parquet import feature_columns, parquet_part

    raw = _typed(log)
    meta = parquet_part(raw._meta, log.layout, log.categories, _Y, _G)
    return raw.map_partitions(parquet_part, log.layout, log.categories, _Y, _G, meta=meta), feature_columns(log.layout)


def _split_part(part: pd.DataFrame, test_size: float, seed: int, test: bool) -> pd.DataFrame:
    mask = _test_mask(part[_G].to_numpy(), test_size, seed)
    return part[mask if test else ~mask]


def split_parquet_log(log: ParquetLog, args: argparse.Namespace, client: Any) -> tuple[ParquetTrain, Any]:
    """Categories and counts of the whole log, and the test part as an in-memory ``AdLog``.

    Problems of the data are ``ValueError`` (the command reports them in one line).
    """
    import dask

    from ..datasets import AdLog
    from ..datasets.loaders import LAYOUTS

    spec = LAYOUTS[log.layout]
    raw = _typed(log)
    cats = list(spec["categorical"])
    uniq = [raw[c].dropna().drop_duplicates() for c in cats]
    click = raw[spec["click_col"]] >= 1
    conv = raw[spec["conversion_col"]] >= 1
    n, n_click, n_conv, n_groups, *values = dask.compute(
        raw.shape[0], click.sum(), (click & conv).sum(), raw[spec["group_col"]].nunique(), *uniq)
    if n == 0:
        raise ValueError(f"the Parquet log {args.data} has no rows")
    log.categories = {c: np.sort(np.asarray(v, dtype=np.int64)).astype(np.int32) for c, v in zip(cats, values)}
    log.rows, log.n_groups = int(n), int(n_groups)
    log.ctr = n_click / n
    log.cvr_given_click = n_conv / n_click if n_click else float("nan")
    frame, feats = _converted(log)
    test_size, seed = float(args.test_size), int(args.seed)
    test_ddf = frame.map_partitions(_split_part, test_size, seed, True, meta=frame._meta)
    train_ddf = frame.map_partitions(_split_part, test_size, seed, False, meta=frame._meta)
    test_pdf, (n_train, train_click, train_conv) = dask.compute(
        test_ddf, (train_ddf.shape[0], (train_ddf[_Y] >= 1).sum(), (train_ddf[_Y] == 2).sum()))
    if len(test_pdf) == 0 or n_train == 0:
        raise ValueError(f"the group split left an empty part ({n_train} train rows, {len(test_pdf)} test rows): "
                        "use more groups or another --test-size")
    if train_click == 0:
        raise ValueError("the training part has no clicks")
    if train_conv == 0:
        raise ValueError("the training part has no conversions: nothing to compare")
    test = AdLog(X=test_pdf[feats].reset_index(drop=True), y=test_pdf[_Y].to_numpy(np.int8),
                 group=test_pdf[_G].to_numpy(np.int64))
    return ParquetTrain(log, test_size, seed, rows=int(n_train)), test


def fit_parquet(model: Any, train: ParquetTrain, client: Any) -> Any:
    """``DaskCTCVRClassifier.fit`` on the training part, read on the workers (fit repartitions by group)."""
    frame, feats = _converted(train.log)
    part = frame.map_partitions(_split_part, train.test_size, train.seed, False, meta=frame._meta)
    model.client = client
    try:
        model.fit(part[feats], part[_Y], group=part[_G])
    finally:
        model.client = None
    return model
