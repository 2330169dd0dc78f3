"""``read_parquet_log``: a :class:`~gbdt_pwiser.datasets.ParquetLog` as a Dask frame, read on the workers."""

from __future__ import annotations

from typing import Any

from ..datasets.columns import category_union
from ..datasets.parquet_log import GROUP_COLUMN, LABEL_COLUMN, WEIGHT_COLUMN, ParquetLog

__all__ = ["read_parquet_log", "LABEL_COLUMN", "GROUP_COLUMN", "WEIGHT_COLUMN"]


def read_parquet_log(log: ParquetLog) -> tuple[Any, list[str]]:
    """The log as a dask DataFrame, one partition per shard, and its feature columns.

    Every partition is converted as :func:`~gbdt_pwiser.datasets.load_log`
    converts a log (:meth:`gbdt_pwiser.datasets.ParquetLog.read_frame`: features, then the funnel
    label ``LABEL_COLUMN``, the group id ``GROUP_COLUMN`` and, with weights,
    ``WEIGHT_COLUMN``), on the workers of the current Dask client: the
    client reads the first shard's schema only. The categorical features'
    categories are collected over all shards first (one pass over those
    columns, also on the workers), so every partition has the same
    ``category`` dtypes. A group's rows may lie in several shards
    (:meth:`DaskCTCVRClassifier.fit` repartitions by group).

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from distributed import Client, LocalCluster
    >>> from gbdt_pwiser.dask import read_parquet_log
    >>> from gbdt_pwiser.datasets import ParquetLog
    >>> frame = pd.DataFrame(
    ...     {
    ...         "q": [1, 1, 2, 2],
    ...         "x": [0.5, 1.5, 2.5, 3.5],
    ...         "city": ["a", "b", "a", "c"],
    ...         "click": [1, 0, 1, 1],
    ...         "buy": [1, 0, 0, 0],
    ...     }
    ... )
    >>> with (
    ...     tempfile.TemporaryDirectory() as d,
    ...     LocalCluster(n_workers=1, processes=False, dashboard_address=None) as c,
    ...     Client(c),
    ... ):
    ...     frame.iloc[:3].to_parquet(f"{d}/a.parquet")
    ...     frame.iloc[3:].to_parquet(f"{d}/b.parquet")
    ...     ddf, features = read_parquet_log(
    ...         ParquetLog(d, click="click", conversion="buy", group="q", categorical=["city"])
    ...     )
    ...     part = ddf.partitions[1].compute()
    >>> features, ddf.npartitions, part["city"].cat.categories.tolist()
    (['x', 'city'], 2, ['a', 'b', 'c'])
    """
    import dask
    import dask.dataframe as dd

    files = log.files()
    features = log.columns(files)
    log.check_schema(files[0], features)
    cats = log.categorical_columns(files[0], features)
    categories: dict[str, Any] = {}
    if cats:
        per_file = dask.compute(*[dask.delayed(log.category_values)(f, cats) for f in files])
        categories = {c: category_union([p[c] for p in per_file]) for c in cats}
    meta = log.frame_meta(features, categories)
    frame = dd.from_map(
        log.read_frame,
        files,
        features=features,
        categories=categories,
        meta=meta,
        label="read-parquet-log",
        enforce_metadata=False,
    )
    return frame, features
