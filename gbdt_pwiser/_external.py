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
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from ._labels import as_funnel
from ._optional import require
from ._validation import check_shard_groups, check_weight
from .objectives._adapters import GROUP_START_FIELD

__all__ = ["ParquetLog", "LogState", "parquet_shards", "ParquetShardIter", "external_dmatrix"]

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
        again = heads[pd.Series(heads).duplicated().to_numpy()][0]
        again = again.item() if isinstance(again, np.generic) else again
        raise ValueError(f"{where}: the rows of a group are not contiguous (group {again!r} comes back after "
                         "other groups); sort it by group "
                         "(gbdt_pwiser.dask.partition_by_group does this for dask partitions)")
    return np.append(starts, n), heads


def _features(table: Any, features: list[str]) -> tuple[Any, list[str] | None]:
    """The feature columns of an Arrow table: one float32 (n, d) array when all are numeric or bool.

    Returns ``(matrix, XGBoost feature types)``: NaN for nulls, the types
    pandas columns would get (``int``, ``float``, ``i`` for bool). Other
    columns (categories) come as a pandas DataFrame and ``None``.
    """
    import pyarrow as pa

    kinds = []
    for c in features:
        t = table.schema.field(c).type
        if pa.types.is_boolean(t):
            kinds.append("i")
        elif pa.types.is_integer(t):
            kinds.append("int")
        elif pa.types.is_floating(t):
            kinds.append("float")
        else:
            return table.select(features).to_pandas(), None
    out = np.empty((table.num_rows, len(features)), dtype=np.float32)  # one copy of the shard
    for j, c in enumerate(features):
        # nulls become NaN; unsafe: ints beyond 2**24 round as XGBoost's own float32 conversion does
        out[:, j] = table.column(c).cast(pa.float32(), safe=False).to_numpy(zero_copy_only=False)
    return out, kinds


class _ShardIterBase:
    """Reads shard ``i`` as (X, funnel labels, weights, group boundaries), checking the layout."""

    def __init__(self, files: Sequence[str], features: Sequence[str] | None, label: str | Sequence[str],
                 group: str, weight: str | None = None, base_margin: str | None = None,
                 clicked_only: bool = False) -> None:
        self.files = list(files)
        self.clicked_only = clicked_only
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
            table = pq.read_table(self.files[i], columns=cols)
        except (KeyError, ValueError) as exc:  # a missing column
            raise ValueError(f"{where}: {exc}") from exc
        data, types = _features(table, self.features)
        df = table.drop_columns(self.features).to_pandas()
        del table
        y = as_funnel(df[self.label[0]] if len(self.label) == 1 else df[self.label], f"{where} labels")
        g = df[self.group].to_numpy()
        ptr, heads = group_runs(g, where)
        if not self._checked:
            self._seen.append(pd.util.hash_array(np.asarray(heads, dtype=object) if heads.dtype == object
                                                 else heads))
        w = None
        if self.weight:
            w = check_weight(df[self.weight].to_numpy(dtype=np.float64), y.size, f"{where} weight")
        n_groups = ptr.size - 1
        if self.clicked_only:  # the clicked-space CVR booster: clicked rows, 0/1 conversion labels
            keep = np.flatnonzero(y >= 1)
            out = {"data": data[keep] if types is not None else data.iloc[keep],
                   "label": (y[keep] == 2).astype(np.float32)}
            if w is not None:
                out["weight"] = w[keep]
        else:
            out = self._all_rows(data, y, w, ptr)
        if types is not None:
            out["feature_names"], out["feature_types"] = self.features, types
        if self.base_margin:
            bm = df[self.base_margin].to_numpy(dtype=np.float64)
            out["base_margin"] = bm[keep] if self.clicked_only else bm
        self._group_offset += n_groups
        return out

    def _all_rows(self, data: Any, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> dict[str, Any]:
        n_groups = ptr.size - 1
        out: dict[str, Any] = {"data": data, "label": y.astype(np.float32)}
        if w is None:
            out["qid"] = np.repeat(np.arange(self._group_offset, self._group_offset + n_groups,
                                             dtype=np.int64), np.diff(ptr))
        else:  # XGBoost's sketch takes only per-group weights beside qid: flag the groups instead
            out["weight"] = w
            out[GROUP_START_FIELD] = group_starts(ptr, y.size)
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

    require("pyarrow", extra="parquet", feature="ParquetShardIter (external memory over Parquet shards)")

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
            Keep the pages in host memory instead of on disk (XGBoost reads
            it for GPU training; CPU pages go to ``cache_prefix``).
        clicked_only : bool, default=False
            Give only the clicked rows, labelled 0/1 by conversion, without
            groups (the clicked-space CVR booster's data).
        """

        def __init__(self, files, features, label, group, weight=None, base_margin=None, *,
                     cache_prefix=None, on_host=True, clicked_only=False):
            _ShardIterBase.__init__(self, files, features, label, group, weight, base_margin, clicked_only)
            if cache_prefix is None:
                cache_prefix = os.path.join(os.path.dirname(os.path.abspath(self.files[0])), ".xgb-cache")
            xgb.DataIter.__init__(self, cache_prefix=cache_prefix, on_host=on_host)

        def next(self, input_data) -> bool:
            while self._pos < len(self.files):
                batch = self._read(self._pos)
                self._pos += 1
                if batch["label"].size:  # skip an empty shard (or one without clicks)
                    input_data(**batch)
                    return True
            self._end_of_pass()
            return False

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


class LogState(NamedTuple):
    """Labels, weights and group sizes of every row of a :class:`ParquetLog`, in shard order.

    This is the O(n) state the out-of-core fit keeps in memory (the features
    stay in the shards): int8 funnel labels, float64 weights or ``None``, the
    int64 size of each group, and the non-empty shards in the order read.
    """

    y: np.ndarray
    weight: np.ndarray | None
    sizes: np.ndarray
    shards: list[str]


class ParquetLog:
    """An exposure log stored as Parquet shards: ``CTCVRClassifier().fit(ParquetLog(...))`` trains out of core.

    The features are read one shard at a time into XGBoost's external memory
    (``xgboost.ExtMemQuantileDMatrix``, its quantised pages cached on disk);
    only the labels, groups and weights of all rows are held in memory, as
    the PWiseR objective needs them (:class:`LogState`).

    Layout required of the shards: every shard holds whole groups, its rows
    contiguous (sorted) by group, and no group id appears in two shards;
    every shard has the label, group, weight and feature columns (numeric or
    bool features; category columns are not supported out of core: store
    their codes). A violation is a ``ValueError`` naming the shard and the
    group or column. Shards are read in sorted file order.

    Parameters
    ----------
    path : str, path-like or list of str
        A folder of ``*.parquet`` files, a glob pattern, or a list of files.
    label : str or [str, str]
        The funnel-label column (0 no click, 1 click only, 2 conversion), or
        the click and conversion columns.
    group : str
        The group-id column (e.g. the request id).
    features : list of str, optional
        Feature columns; default every column of the first shard that is not
        a label, group or weight column.
    weight : str, optional
        Column of per-row weights.
    cache_dir : str or path-like, optional
        Where XGBoost writes its external-memory pages during ``fit`` (a
        temporary folder, removed after the fit, is made inside it); default
        the system's temporary folder.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np, pandas as pd
    >>> from gbdt_pwiser import CTCVRClassifier, ParquetLog
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    >>> df["click"] = (rng.random(600) < 1 / (1 + np.exp(-df["a"]))).astype(int)
    >>> df["conversion"] = df["click"] * (rng.random(600) < 0.4)
    >>> df["request"] = np.repeat(np.arange(60), 10)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for k in range(3):                                  # 3 shards of 20 whole requests
    ...         df.iloc[200 * k:200 * (k + 1)].to_parquet(f"{folder}/part-{k}.parquet")
    ...     log = ParquetLog(folder, label=["click", "conversion"], group="request")
    ...     model = CTCVRClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(log)
    >>> model.feature_names_in_.tolist()
    ['a', 'b', 'c']
    >>> model.predict_ctcvr(df[["a", "b", "c"]]).shape          # predict from an in-memory frame
    (600,)
    """

    def __init__(self, path: str | os.PathLike | Sequence[str], *, label: str | Sequence[str], group: str,
                 features: Sequence[str] | None = None, weight: str | None = None,
                 cache_dir: str | os.PathLike | None = None) -> None:
        require("pyarrow", extra="parquet", feature="ParquetLog")
        self.path = path
        self.label = label
        self.group = group
        self.features = features
        self.weight = weight
        self.cache_dir = cache_dir

    def __repr__(self) -> str:
        return (f"ParquetLog({self.path!r}, label={self.label!r}, group={self.group!r}, "
                f"features={self.features!r}, weight={self.weight!r})")

    def _labels(self) -> list[str]:
        lab = [self.label] if isinstance(self.label, str) else list(self.label)
        if len(lab) not in (1, 2) or not all(isinstance(c, str) for c in lab):
            raise ValueError("label must name the funnel-label column or the [click, conversion] columns, "
                             f"got {self.label!r}")
        return lab

    def columns(self) -> list[str]:
        """The feature columns (checked against the first shard's schema)."""
        import pyarrow.parquet as pq

        if not isinstance(self.group, str):
            raise ValueError(f"group must name the group-id column, got {self.group!r}")
        meta = set(self._labels()) | {self.group} | ({self.weight} if self.weight else set())
        if self.features is None:
            names = pq.read_schema(parquet_shards(self.path)[0]).names
            return [c for c in names if c not in meta and not c.startswith("__index_level_")]
        feats = [self.features] if isinstance(self.features, str) else list(self.features)
        clash = meta & set(feats)
        if clash:
            raise ValueError(f"columns {sorted(clash)} are both features and label/group/weight")
        if not feats:
            raise ValueError("features is empty")
        return feats

    def _check_schema(self, shard: str, features: list[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(shard)
        need = self._labels() + [self.group] + ([self.weight] if self.weight else []) + features
        missing = [c for c in need if c not in schema.names]
        if missing:
            raise ValueError(f"shard {shard!r} has no column {missing[0]!r} (its columns: {schema.names})")
        for c in features:
            t = schema.field(c).type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
                raise TypeError(f"shard {shard!r}: feature column {c!r} has type {t}; out-of-core fits take "
                                "numeric or bool features (store category columns as their integer codes)")

    def read_state(self) -> LogState:
        """Read and check the labels, groups and weights of every shard (not the features)."""
        import pyarrow.parquet as pq

        files, features, lab = parquet_shards(self.path), self.columns(), self._labels()
        ys, ws, sizes, heads, used = [], [], [], [], []
        for f in files:
            self._check_schema(f, features)
            cols = lab + [self.group] + ([self.weight] if self.weight else [])
            df = pq.read_table(f, columns=cols).to_pandas()
            if len(df) == 0:
                continue
            where = f"shard {f!r}"
            try:
                ys.append(as_funnel(df[lab[0]] if len(lab) == 1 else df[lab], f"{where} labels"))
            except ValueError as exc:  # funnel_label's messages do not name the data
                raise ValueError(exc.args[0] if where in str(exc) else f"{where} labels: {exc}") from exc
            ptr, h = group_runs(df[self.group].to_numpy(), where)
            sizes.append(np.diff(ptr))
            heads.append(h)
            if self.weight:
                ws.append(check_weight(df[self.weight].to_numpy(dtype=np.float64), len(df), f"{where} weight"))
            used.append(f)
        if not used:
            raise ValueError(f"the Parquet shards at {self.path!r} hold no rows")
        check_shard_groups(heads, used)
        return LogState(np.concatenate(ys), np.concatenate(ws) if self.weight else None,
                        np.concatenate(sizes).astype(np.int64), used)

    def iter_features(self, shards: Sequence[str] | None = None) -> Iterator[Any]:
        """The feature columns of each shard in turn, as pandas DataFrames."""
        import pyarrow.parquet as pq

        features = self.columns()
        for f in parquet_shards(self.path) if shards is None else shards:
            yield pq.read_table(f, columns=features).to_pandas()

    def dmatrix(self, shards: Sequence[str], *, clicked_only: bool = False, cache_prefix: str,
                **kwargs: Any) -> Any:
        """An ``ExtMemQuantileDMatrix`` of ``shards`` (pages on disk at ``cache_prefix``); ``kwargs`` as
        for ``ExtMemQuantileDMatrix`` (``max_bin``, ``nthread``)."""
        import xgboost as xgb

        it = __getattr__("ParquetShardIter")(list(shards), self.columns(), self._labels(), self.group,
                                             self.weight, cache_prefix=cache_prefix, on_host=False,
                                             clicked_only=clicked_only)
        return xgb.ExtMemQuantileDMatrix(it, missing=np.nan, **kwargs)
