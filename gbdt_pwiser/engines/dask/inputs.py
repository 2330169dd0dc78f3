"""Inputs of ``xgboost.dask.train`` and ``lightgbm.dask`` estimators for PWiseR training.

Every per-row field the boosters need (funnel labels, group ids or sizes,
initial margins) is built partition by partition from the user's
collections, so it lines up with the partitions of ``X`` by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._labels import as_funnel
from ...datasets.sources import group_starts
from ...objectives._adapters import GROUP_START_FIELD
from .partition import GlobalStats, _runs, group_statistics, partitions_of

__all__ = ["funnel_labels", "global_qid", "group_sizes", "xgboost_dmatrix", "xgboost_params", "lightgbm_fit_kwargs"]


def _aligned(parts: list, func: Any, lengths: np.ndarray, dtype: Any) -> Any:
    """A 1-d dask Array whose block ``i`` is ``func(i, *parts[i])`` with ``lengths[i]`` rows.

    Built from its blocks directly, not with ``da.concatenate``, which drops
    empty blocks: block ``i`` must stay partition ``i`` of ``X`` even when
    that partition is empty (the boosters pair the blocks by position).
    """
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    tasks = [dask.delayed(func)(i, *p) for i, p in enumerate(parts)]
    name = "gbdt-pwiser-aligned-" + tokenize(*tasks)
    layer: dict[Any, Any] = {(name, i): t.key for i, t in enumerate(tasks)}  # each block: the task's result
    graph = HighLevelGraph.from_collections(name, layer, dependencies=tasks)
    return da.Array(graph, name, chunks=(tuple(int(n) for n in lengths),), dtype=dtype)


def _funnel_block(i: int, y: Any) -> np.ndarray:
    return as_funnel(y, f"y (partition {i})").astype(np.float32)


def funnel_labels(y: Any, stats: GlobalStats) -> Any:
    """Funnel labels (float32 dask Array, one block per partition) from funnel or (n, 2) labels."""
    return _aligned([(p,) for p in partitions_of(y, "y")], _funnel_block, stats.rows, np.float32)


def _qid_block(i: int, g: Any, offset: int) -> np.ndarray:
    ptr, _ = _runs(np.asarray(g.to_numpy() if hasattr(g, "to_numpy") else g).reshape(-1), i)
    return np.repeat(np.arange(offset, offset + ptr.size - 1, dtype=np.int64), np.diff(ptr))


def global_qid(group: Any, stats: GlobalStats) -> Any:
    """Integer group ids unique across partitions and rising inside each (XGBoost's ``qid``)."""
    offsets = np.concatenate([[0], np.cumsum(stats.groups)[:-1]]).astype(np.int64)
    parts = [(g, int(o)) for g, o in zip(partitions_of(group, "group"), offsets, strict=True)]
    return _aligned(parts, _qid_block, stats.rows, np.int64)


def _sizes_block(i: int, g: Any) -> np.ndarray:
    ptr, _ = _runs(np.asarray(g.to_numpy() if hasattr(g, "to_numpy") else g).reshape(-1), i)
    return np.diff(ptr).astype(np.int64)


def group_sizes(group: Any, stats: GlobalStats) -> Any:
    """Group sizes, block ``i`` for partition ``i`` (LightGBM's Dask ``group``)."""
    return _aligned([(g,) for g in partitions_of(group, "group")], _sizes_block, stats.groups, np.int64)


def _starts_block(i: int, g: Any) -> np.ndarray:
    arr = np.asarray(g.to_numpy() if hasattr(g, "to_numpy") else g).reshape(-1)
    ptr, _ = _runs(arr, i)
    return group_starts(ptr, arr.size)


def _const_block(i: int, n: int, value: float) -> np.ndarray:
    return np.full(n, value, dtype=np.float64)


def _stats_for(
    y: Any, group: Any, sample_weight: Any, X: Any, stats: GlobalStats | None, check_groups: bool
) -> GlobalStats:
    if stats is None:
        return group_statistics(y, group, sample_weight, X=X, check_groups=check_groups)
    if not isinstance(stats, GlobalStats):
        raise TypeError(f"stats must come from group_statistics, got {type(stats).__name__}")
    if len(partitions_of(y, "y")) != stats.npartitions:
        raise ValueError(
            f"stats describe {stats.npartitions} partitions but y has "
            f"{len(partitions_of(y, 'y'))}: recompute them with group_statistics"
        )
    return stats


def xgboost_dmatrix(
    client: Any,
    X: Any,
    y: Any,
    group: Any,
    sample_weight: Any = None,
    *,
    stats: GlobalStats | None = None,
    quantile: bool = True,
    check_groups: bool = True,
    **kwargs: Any,
) -> Any:
    """A ``DaskQuantileDMatrix`` (or ``DaskDMatrix``) for PWiseR training with ``xgboost.dask.train``.

    Labels become funnel labels; groups become a global ``qid`` (rows of a
    group are contiguous in one partition, so XGBoost needs no re-sort). With
    ``sample_weight`` (which XGBoost's Dask interface does not take together
    with ``qid``) the groups travel as group-start flags in
    ``label_lower_bound`` instead, which :class:`GlobalPWiseRObjective` reads
    (the field is unused by custom objectives).

    Parameters
    ----------
    client : distributed.Client
    X : dask DataFrame or Array
    y, group, sample_weight : dask collections partitioned like ``X``
    stats : GlobalStats, optional
        From :func:`group_statistics` (computed here when not given).
    quantile : bool, default=True
        ``DaskQuantileDMatrix`` (for ``tree_method="hist"``) or ``DaskDMatrix``.
    check_groups : bool, default=True
        Passed to :func:`group_statistics`.
    **kwargs
        Further DMatrix arguments (``enable_categorical``, ``max_bin``...).
    """
    import xgboost as xgb
    import xgboost.dask  # not imported by "import xgboost"

    stats = _stats_for(y, group, sample_weight, X, stats, check_groups)
    label = funnel_labels(y, stats)
    cls = xgb.dask.DaskQuantileDMatrix if quantile else xgb.dask.DaskDMatrix
    if sample_weight is None:
        return cls(client, X, label=label, qid=global_qid(group, stats), **kwargs)
    flags = _aligned([(g,) for g in partitions_of(group, "group")], _starts_block, stats.rows, np.float32)
    return cls(client, X, label=label, weight=sample_weight, **{GROUP_START_FIELD: flags}, **kwargs)


def xgboost_params(stats: GlobalStats, params: dict | None = None) -> dict:
    """``params`` plus what a PWiseR custom objective needs: the global ``base_score`` margin and
    ``disable_default_eval_metric``."""
    out = dict(params or {})
    out.setdefault("base_score", stats.initial_margin)
    out.setdefault("disable_default_eval_metric", 1)
    return out


def lightgbm_fit_kwargs(
    X: Any,
    y: Any,
    group: Any,
    sample_weight: Any = None,
    *,
    stats: GlobalStats | None = None,
    check_groups: bool = True,
    init_margin: float | None = None,
) -> dict:
    """Keyword arguments of ``DaskLGBMRanker(objective=obj).fit(**kwargs)`` for PWiseR training.

    LightGBM's Dask estimators concatenate each worker's partitions and call
    the objective as ``obj(y_true, y_pred, weight, group_sizes)``; the
    returned ``group`` holds the sizes of each partition's groups, and
    ``init_score`` starts every row from ``init_margin``, by default the global
    initial margin (add it to ``predict(..., raw_score=True)``).
    """
    stats = _stats_for(y, group, sample_weight, X, stats, check_groups)
    start = stats.initial_margin if init_margin is None else float(init_margin)
    init = _aligned([(int(n), start) for n in stats.rows], _const_block, stats.rows, np.float64)
    out = {"X": X, "y": funnel_labels(y, stats), "group": group_sizes(group, stats), "init_score": init}
    if sample_weight is not None:
        out["sample_weight"] = sample_weight
    return out
