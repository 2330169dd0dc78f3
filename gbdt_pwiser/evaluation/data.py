"""The data side of a comparison: describe a log, split it by group, fit a model on the training part.

In memory a log is an :class:`~gbdt_pwiser.datasets.AdLog`, split with
:func:`~gbdt_pwiser.datasets.train_test_split_by_group` (an exact share of
the groups). With a Dask client, an ``AdLog`` is trained on the cluster
(scattered to the workers in whole groups), and a
:class:`~gbdt_pwiser.datasets.ParquetLog` never comes to this process: the
workers read it (:func:`gbdt_pwiser.dask.read_parquet_log`), split it by a
seeded hash of the group id (:func:`gbdt_pwiser.datasets.split.group_holdout`:
a group is in the test part when its hash falls below the test share, so the
share of test groups is close to, not exactly, ``test_size``), and only the
test part is gathered here, for the metrics and the bootstrap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..datasets import AdLog, ParquetLog, train_test_split_by_group
from ..datasets.parquet_log import GROUP_COLUMN, LABEL_COLUMN, WEIGHT_COLUMN
from ..datasets.split import group_holdout

__all__ = ["DaskPart", "describe", "split", "fit"]


@dataclass
class DaskPart:
    """The training part of a :class:`~gbdt_pwiser.datasets.ParquetLog` on Dask: a dask frame of its rows."""

    frame: Any
    features: list[str]
    rows: int
    weighted: bool

    def __len__(self) -> int:
        return self.rows


def describe(log: AdLog) -> dict[str, Any]:
    """Rows, groups, click rate and conversion rate among clicks of an in-memory log."""
    clicked = log.y >= 1
    return {
        "rows": len(log),
        "groups": int(log.n_groups),
        "ctr": float(np.mean(clicked)) if len(log) else float("nan"),
        "cvr_given_click": float(np.mean(log.y[clicked] == 2)) if clicked.any() else float("nan"),
    }


def _check_train(clicks: int, conversions: int) -> None:
    if clicks == 0:
        raise ValueError("the training part has no clicks")
    if conversions == 0:
        raise ValueError("the training part has no conversions: nothing to compare")


def split(
    log: AdLog | ParquetLog, test_size: float, seed: int, client: Any = None
) -> tuple[AdLog | DaskPart, AdLog, dict[str, Any]]:
    """Training and test parts with no group in both, and a description of the whole log (:func:`describe`).

    The test part is an ``AdLog`` whose categories are aligned to the
    training part's. Problems of the data are ``ValueError`` (too few groups
    or rows, a training part without clicks or conversions).
    """
    if isinstance(log, ParquetLog):
        if client is None:
            raise ValueError(
                "a ParquetLog is compared on a Dask cluster: pass client= (or load it into memory with load_log)"
            )
        return _split_parquet(log, test_size, seed)
    if not isinstance(log, AdLog):
        raise TypeError(f"log must be an AdLog (load_log, make_ad_log) or a ParquetLog, got {type(log).__name__}")
    if log.n_groups < 4:
        raise ValueError(f"too few groups to split: {log.n_groups} (need at least 4)")
    try:
        train, test = train_test_split_by_group(log, test_size=test_size, random_state=seed)
    except ValueError as exc:
        raise ValueError(f"cannot split the data by group: {exc}") from exc
    if len(train) < 20 or len(test) < 5:
        raise ValueError(f"too few rows to split: {len(log)}")
    _check_train(int(np.count_nonzero(train.y >= 1)), int(np.count_nonzero(train.y == 2)))
    return train, test.align_categories(train), describe(log)


def _holdout(part: pd.DataFrame, test_size: float, seed: int, test: bool) -> pd.DataFrame:
    mask = group_holdout(part[GROUP_COLUMN].to_numpy(), test_size, seed)
    return part[mask if test else ~mask]


def _split_parquet(log: ParquetLog, test_size: float, seed: int) -> tuple[DaskPart, AdLog, dict[str, Any]]:
    import dask

    from ..dask import read_parquet_log

    frame, features = read_parquet_log(log)
    y, g = frame[LABEL_COLUMN], frame[GROUP_COLUMN]
    test_ddf = frame.map_partitions(_holdout, test_size, seed, True, meta=frame._meta)
    train_ddf = frame.map_partitions(_holdout, test_size, seed, False, meta=frame._meta)
    ty = train_ddf[LABEL_COLUMN]
    n, n_click, n_conv, n_groups, test_pdf, n_train, train_click, train_conv = dask.compute(
        frame.shape[0],
        (y >= 1).sum(),
        (y == 2).sum(),
        g.nunique(),
        test_ddf,
        train_ddf.shape[0],
        (ty >= 1).sum(),
        (ty == 2).sum(),
    )
    if n == 0:
        raise ValueError(f"the Parquet log {log.path} has no rows")
    if len(test_pdf) == 0 or n_train == 0:
        raise ValueError(
            f"the group split left an empty part ({n_train} train rows, {len(test_pdf)} test rows): "
            "use more groups or another test size"
        )
    _check_train(int(train_click), int(train_conv))
    weighted = WEIGHT_COLUMN in frame.columns
    test = AdLog(
        X=test_pdf[features].reset_index(drop=True),
        y=test_pdf[LABEL_COLUMN].to_numpy(np.int8),
        group=test_pdf[GROUP_COLUMN].to_numpy(),
        weight=test_pdf[WEIGHT_COLUMN].to_numpy() if weighted else None,
    )
    about = {
        "rows": int(n),
        "groups": int(n_groups),
        "ctr": float(n_click / n),
        "cvr_given_click": float(n_conv / n_click) if n_click else float("nan"),
    }
    return DaskPart(train_ddf, features, int(n_train), weighted), test, about


def fit(model: Any, train: AdLog | DaskPart, client: Any = None) -> Any:
    """``model.fit`` on a training part: in memory, or on the cluster of ``client`` (a Dask estimator).

    An in-memory ``AdLog`` on Dask is scattered to the workers (2 partitions
    per worker, not embedded in the task graph) and partitioned by group
    before the fit. The fitted model keeps no client.
    """
    if client is None:
        assert isinstance(train, AdLog), "a Dask part is fitted on a client"
        return model.fit(train.X, train.y, group=train.group, sample_weight=train.weight)
    model.client = client
    try:
        if isinstance(train, DaskPart):
            f = train.frame
            return model.fit(
                f[train.features],
                f[LABEL_COLUMN],
                group=f[GROUP_COLUMN],
                sample_weight=f[WEIGHT_COLUMN] if train.weighted else None,
            )
        import dask.dataframe as dd

        from ..dask import partition_by_group

        nparts = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        frame = pd.DataFrame(train.X).assign(**{LABEL_COLUMN: train.y, GROUP_COLUMN: train.group})
        if train.weight is not None:
            frame[WEIGHT_COLUMN] = train.weight
        frame = frame.reset_index(drop=True)
        cuts = np.linspace(0, len(frame), nparts + 1).astype(int)
        pieces = client.scatter([frame.iloc[a:b] for a, b in itertools.pairwise(cuts)])
        # whole groups up front: no failed layout check on the workers
        ddf = partition_by_group(dd.from_delayed(pieces, meta=frame.iloc[:0], verify_meta=False), GROUP_COLUMN)
        return model.fit(
            ddf[list(train.X.columns)],
            ddf[LABEL_COLUMN],
            group=ddf[GROUP_COLUMN],
            sample_weight=ddf[WEIGHT_COLUMN] if train.weight is not None else None,
        )
    finally:
        model.client = None
