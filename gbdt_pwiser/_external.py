"""Out-of-core XGBoost training data from a folder of Parquet shards (external memory).

XGBoost's external memory reads the features one shard at a time
(``xgboost.DataIter``) and keeps only its quantised pages on disk or host
memory; labels, weights and group boundaries (its ``MetaInfo``) stay in
memory, and so does the objective's own per-row state (labels, weights and
the row order of the active groups, see :class:`PreparedData`).

Each shard must hold whole groups, its rows sorted (contiguous) by group; a
group id met in two shards is an error.
"""

from __future__ import annotations

import glob as _glob
import os
from typing import Any, Sequence

import numpy as np

from ._labels import as_funnel
from ._validation import check_weight
from .objectives._adapters import GROUP_START_FIELD

__all__ = ["parquet_shards", "ParquetShardIter", "external_dmatrix"]

def parquet_shards(path: str | os.PathLike | Sequence[str]) -> list[str]:
    """The Parquet files of a folder, a glob pattern or a list, in sorted order."""
    if isinstance(path, (list, tuple)):
        files = [os.fspath(p) for p in path]
    else:
        p = os.fspath(path)
        if os.path.isdir(p):
            files = sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith((".parquet", ".parq")))
        else:
            files = sorted(_glob.glob(p))
    if not files:
        raise ValueError(f"no Parquet files found at {path!r}")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"not a file: {missing[0]!r}")
    return files


def group_starts(ptr: np.ndarray, n: int) -> np.ndarray:
    """Per-row float32 flags: 1 on the first row of each group, 0 elsewhere."""
    flags = np.zeros(n, dtype=np.float32)
    flags[np.asarray(ptr[:-1], dtype=np.int64)[np.diff(ptr) > 0]] = 1.0
    return flags


def group_runs(g: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Boundaries of the runs of equal group ids and each run's id; ValueError if a group recurs."""
    import pandas as pd

    s = pd.Series(g)
    if s.isna().any():
        raise ValueError(f"{where}: missing (NaN/None) group ids")
    n = g.size
    if n == 0:
        return np.zeros(1, dtype=np.int64), g[:0]
    change = np.flatnonzero(g[1:] != g[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    heads = g[starts]
    if pd.unique(heads).size != heads.size:
        raise ValueError(f"{where}: the rows of a group are not contiguous; sort it by group "
                         "(gbdt_pwiser.dask.partition_by_group does this for dask partitions)")
    return np.append(starts, n), heads


class _ShardIterBase:
    """Reads shard ``i`` as (X, funnel labels, weights, group boundaries), checking the layout."""

    def __init__(self, files: Sequence[str], features: Sequence[str] | None, label: str | Sequence[str],
                 group: str, weight: str | None = None, base_margin: str | None = None) -> None:
        self.files = list(files)
        self.label = [label] if isinstance(label, str) else list(label)
        if len(self.label) not in (1, 2):
            raise ValueError("label must name the funnel-label column or the [click, conversion] columns")
        self.group = group
        self.weight = weight
        self.base_margin = base_margin
        extra = set(self.label) | {group} | ({weight} if weight else set()) | ({base_margin} if base_margin else set())
        if features is None:
            import pyarrow.parquet as pq

            names = pq.read_schema(self.files[0]).names
            features = [c for c in names if c not in extra]
        self.features = list(features)
        clash = extra & set(self.features)
        if clash:
            raise ValueError(f"columns {sorted(clash)} are both features and label/group/weight")
        self._pos = 0
        self._group_offset = 0
        self._seen: list[np.ndarray] = []
        self._checked = False

    def _read(self, i: int) -> dict[str, Any]:
        import pyarrow.parquet as pq
        import pandas as pd

        cols = self.features + self.label + [self.group] + ([self.weight] if self.weight else []) + (
            [self.base_margin] if self.base_margin else [])
        where = f"shard {self.files[i]!r}"
        try:
            df = pq.read_table(self.files[i], columns=cols).to_pandas()
        except (KeyError, ValueError) as exc:  # a missing column
            raise ValueError(f"{where}: {exc}") from exc
        y = as_funnel(df[self.label[0]] if len(self.label) == 1 else df[self.label], f"{where} labels")
        g = df[self.group].to_numpy()
        ptr, heads = group_runs(g, where)
        if not self._checked:
            self._seen.append(pd.util.hash_array(np.asarray(heads, dtype=object) if heads.dtype == object
                                                 else heads))
        w = None
        if self.weight:
            w = check_weight(df[self.weight].to_numpy(dtype=np.float64), y.size, f"{where} weight")
        out: dict[str, Any] = {"data": df[self.features], "label": y.astype(np.float32)}
        n_groups = ptr.size - 1
        if w is None:
            out["qid"] = np.repeat(np.arange(self._group_offset, self._group_offset + n_groups,
                                             dtype=np.int64), np.diff(ptr))
        else:  # XGBoost's sketch takes only per-group weights beside qid: flag the groups instead
            out["weight"] = w
            out[GROUP_START_FIELD] = group_starts(ptr, y.size)
        if self.base_margin:
            out["base_margin"] = df[self.base_margin].to_numpy(dtype=np.float64)
        self._group_offset += n_groups
        return out

    def _end_of_pass(self) -> None:
        if not self._checked:
            hashes = np.concatenate(self._seen) if self._seen else np.zeros(0, dtype=np.uint64)
            self._seen = []
            self._checked = True
            if np.unique(hashes).size != hashes.size:
                raise ValueError("a group id occurs in more than one shard: every group must lie whole in "
                                 "one Parquet shard (write the shards partitioned by group)")


def _make_iter_class() -> type:
    import xgboost as xgb

    class ParquetShardIter(_ShardIterBase, xgb.DataIter):
        """``xgboost.DataIter`` over Parquet shards with funnel labels and whole groups per shard.

        Parameters
        ----------
        files : list of str
            The shards (see :func:`parquet_shards`), read in this order.
        features : list of str or None
            Feature columns (default: every column but label/group/weight).
        label : str or [str, str]
            The funnel-label column, or the click and conversion columns.
        group : str
            The group-id column.
        weight : str, optional
        base_margin : str, optional
            Column of starting margins.
        cache_prefix : str, optional
            Where XGBoost keeps its external-memory pages (default: a temporary
            file next to the first shard).
        on_host : bool, default=True
            Keep the pages in host memory instead of on disk.
        """

        def __init__(self, files, features, label, group, weight=None, base_margin=None, *,
                     cache_prefix=None, on_host=True):
            _ShardIterBase.__init__(self, files, features, label, group, weight, base_margin)
            if cache_prefix is None:
                cache_prefix = os.path.join(os.path.dirname(os.path.abspath(self.files[0])), ".xgb-cache")
            xgb.DataIter.__init__(self, cache_prefix=cache_prefix, on_host=on_host)

        def next(self, input_data) -> bool:
            if self._pos == len(self.files):
                self._end_of_pass()
                return False
            input_data(**self._read(self._pos))
            self._pos += 1
            return True

        def reset(self) -> None:
            self._pos = 0
            self._group_offset = 0

    return ParquetShardIter


def __getattr__(name: str) -> Any:
    if name == "ParquetShardIter":
        cls = _make_iter_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def external_dmatrix(path: str | os.PathLike | Sequence[str], *, label: str | Sequence[str], group: str,
                     features: Sequence[str] | None = None, weight: str | None = None,
                     base_margin: str | None = None, cache_prefix: str | None = None, on_host: bool = True,
                     **kwargs: Any) -> Any:
    """An ``xgboost.ExtMemQuantileDMatrix`` over a folder or glob of Parquet shards.

    Labels become funnel labels and groups a ``qid`` rising across the shards;
    with ``weight`` (XGBoost's sketch keeps only per-group weights beside
    ``qid``) the groups travel as group-start flags in ``label_lower_bound``
    instead. :class:`gbdt_pwiser.PWiseRObjective` reads either. ``kwargs`` go to ``ExtMemQuantileDMatrix`` (``max_bin``, ``nthread``...).

    Returns
    -------
    xgboost.ExtMemQuantileDMatrix
    """
    import xgboost as xgb

    it = __getattr__("ParquetShardIter")(parquet_shards(path), features, label, group, weight, base_margin,
                                         cache_prefix=cache_prefix, on_host=on_host)
    return xgb.ExtMemQuantileDMatrix(it, **kwargs)
