"""``ParquetLog``: an exposure log stored as Parquet shards, read one shard at a time.

``CTCVRClassifier().fit(ParquetLog(...))`` trains out of core (the engine in
:mod:`gbdt_pwiser.engines.external` hands the shards to XGBoost's external
memory); the log itself knows its files, its columns and how to read the
per-row state the objectives need (:class:`LogState`), checking the layout as
it goes (:mod:`gbdt_pwiser.datasets.sources`).
"""

from __future__ import annotations

import os
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from .._labels import as_funnel
from .._optional import require
from .._validation import check_weight
from ..exceptions import ColumnError
from .sources import check_columns, check_shard_groups, group_runs, list_files, read_schema, read_table

__all__ = ["ParquetLog", "LogState"]


class LogState(NamedTuple):
    """Labels, weights and group sizes of every row of a :class:`ParquetLog`, in shard order.

    This is the O(n) state the out-of-core fit keeps in memory (the features
    stay in the shards): int8 funnel labels, float64 weights or ``None``, the
    int64 size of each group, the non-empty shards in the order read and their
    row counts; the group id of every row only when asked for (calibration
    splits by group).
    """

    y: np.ndarray
    weight: np.ndarray | None
    sizes: np.ndarray
    shards: list[str]
    shard_rows: np.ndarray
    ids: np.ndarray | None = None


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
        A folder of Parquet files (searched recursively), a glob pattern, or a
        list of files (see :func:`gbdt_pwiser.datasets.sources.list_files`).
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

    def __init__(self, path: str | os.PathLike[str] | Sequence[str], *, label: str | Sequence[str], group: str,
                 features: Sequence[str] | None = None, weight: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
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

    # ------------------------------------------------------------------ columns
    def files(self) -> list[str]:
        """The shards, in the order they are read (see :func:`~gbdt_pwiser.datasets.sources.list_files`)."""
        return list_files(self.path, "parquet")

    def labels(self) -> list[str]:
        """The label column(s): ``[funnel]`` or ``[click, conversion]``."""
        lab = ([self.label] if isinstance(self.label, str)
               else list(self.label) if isinstance(self.label, (list, tuple)) else [])
        if len(lab) not in (1, 2) or not all(isinstance(c, str) for c in lab):
            raise ValueError("label must name the funnel-label column or the [click, conversion] columns, "
                             f"got {self.label!r}")
        return lab

    def meta_columns(self) -> list[str]:
        """Label, group and weight columns (everything that is not a feature); one column in two roles is an error."""
        if not isinstance(self.group, str):
            raise ValueError(f"group must name the group-id column, got {self.group!r}")
        used = self.labels() + [self.group] + ([self.weight] if self.weight else [])
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise ValueError(f"columns {twice} are given more than one role (label, group, weight): each needs its "
                             "own column")
        return used

    def columns(self, files: Sequence[str] | None = None) -> list[str]:
        """The feature columns (the default ones taken from the first shard's schema)."""
        meta = set(self.meta_columns())
        if self.features is None:
            first = (self.files() if files is None else list(files))[0]
            names = read_schema(first).names
            feats = [c for c in names if c not in meta and not c.startswith("__index_level_")]
            if not feats:
                raise ColumnError(f"shard {first!r} has no feature column: its columns {names} are all label, "
                                  "group or weight columns", "", first)
            return feats
        feats = [self.features] if isinstance(self.features, str) else list(self.features)
        twice = sorted({c for c in feats if feats.count(c) > 1})
        if twice:
            raise ValueError(f"features lists columns {twice} more than once")
        clash = meta & set(feats)
        if clash:
            raise ValueError(f"columns {sorted(clash)} are both features and label/group/weight")
        if not feats:
            raise ValueError("features is empty")
        return feats

    def check_schema(self, shard: str, features: Sequence[str]) -> None:
        """The shard has every column, and numeric or bool features (``ColumnError``/``TypeError`` naming it)."""
        import pyarrow as pa

        schema = read_schema(shard)
        check_columns(schema.names, self.meta_columns() + list(features), f"shard {shard!r}")
        if self.weight and not (pa.types.is_integer(wt := schema.field(self.weight).type) or pa.types.is_floating(wt)):
            raise TypeError(f"shard {shard!r}: weight column {self.weight!r} has type {wt}; weights must be numeric")
        for c in features:
            t = schema.field(c).type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
                raise TypeError(f"shard {shard!r}: feature column {c!r} has type {t}; out-of-core fits take "
                                "numeric or bool features (store category columns as their integer codes)")

    # ------------------------------------------------------------------ reading
    def read_state(self, with_ids: bool = False) -> LogState:
        """Read and check the labels, groups and weights of every shard (not the features).

        ``with_ids``: keep the group id of every row too (``LogState.ids``).
        """
        files = self.files()
        features, lab = self.columns(files), self.labels()
        ys, ws, sizes, heads, used, ids = [], [], [], [], [], []
        for f in files:
            self.check_schema(f, features)
            df = read_table(f, self.meta_columns()).to_pandas()
            if len(df) == 0:
                continue
            where = f"shard {f!r}"
            ys.append(as_funnel(df[lab[0]] if len(lab) == 1 else df[lab], f"{where} labels"))
            g = df[self.group].to_numpy()
            ptr, h = group_runs(g, where)
            sizes.append(np.diff(ptr))
            heads.append(h)
            if with_ids:
                ids.append(g)
            if self.weight:
                ws.append(check_weight(df[self.weight].to_numpy(dtype=np.float64), len(df), f"{where} weight"))
            used.append(f)
        if not used:
            raise ValueError(f"the Parquet shards at {self.path!r} hold no rows")
        check_shard_groups(heads, used)
        return LogState(np.concatenate(ys), np.concatenate(ws) if self.weight else None,
                        np.concatenate(sizes).astype(np.int64), used,
                        np.array([y.size for y in ys], dtype=np.int64), np.concatenate(ids) if with_ids else None)

    def iter_features(self, shards: Sequence[str] | None = None, row_mask: np.ndarray | None = None) -> Iterator[Any]:
        """The feature columns of each shard in turn, as pandas DataFrames.

        ``row_mask``: a boolean per row of ``shards`` (in their order): only
        the rows it marks.
        """
        files = self.files() if shards is None else list(shards)
        features = self.columns(files)
        start = 0
        for f in files:
            df = read_table(f, features).to_pandas()
            if row_mask is not None:
                keep = row_mask[start:start + len(df)]
                start += len(df)
                df = df[keep]
            yield df
