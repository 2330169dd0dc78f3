"""``ParquetLog``: an exposure log stored as Parquet shards, read one shard at a time.

``CTCVRClassifier().fit(ParquetLog(...))`` trains out of core (the engine in
:mod:`gbdt_pwiser.engines.external` hands the shards to XGBoost's external
memory); the Dask path of the command line reads it on the workers, one
partition per shard. The log knows its files and its columns
(:class:`~gbdt_pwiser.datasets.LogColumns`: the same arguments as
:func:`~gbdt_pwiser.datasets.load_log`), reads the per-row state the
objectives need (:class:`LogState`) and converts each shard as every reader
converts a log (:mod:`gbdt_pwiser.datasets.columns`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .._optional import require
from .columns import (
    LogColumns,
    categorical_features,
    category_union,
    category_values,
    feature_frame,
    meta_values,
    warn_inferred,
)
from .sources import cast_columns, check_columns, group_runs, list_files, numeric_matrix, read_schema, read_table

__all__ = ["ParquetLog", "LogState", "Shard", "LABEL_COLUMN", "GROUP_COLUMN", "WEIGHT_COLUMN"]

#: The columns :meth:`ParquetLog.read_frame` adds beside the features: funnel label, group id, weight.
LABEL_COLUMN, GROUP_COLUMN, WEIGHT_COLUMN = "__gbdt_pwiser_y__", "__gbdt_pwiser_group__", "__gbdt_pwiser_weight__"


class LogState(NamedTuple):
    """Labels, weights and groups of every row of a :class:`ParquetLog`, in shard order.

    This is the O(n) state the out-of-core fit keeps in memory (the features
    stay in the shards): int8 funnel labels, float64 weights or ``None``, the
    non-empty shards in the order read and their row counts, and the groups:
    when every group lies whole in one shard, its rows contiguous, ``sizes``
    (int64, one per group, the cheap layout); otherwise ``codes`` (int64, one
    per row: the groups are scattered across shards or within one). The
    group id of every row only when asked for (calibration splits by group).
    ``categories``: each categorical feature's categories over all shards.
    """

    y: np.ndarray
    weight: np.ndarray | None
    sizes: np.ndarray | None
    shards: list[str]
    shard_rows: np.ndarray
    ids: np.ndarray | None = None
    codes: np.ndarray | None = None
    categories: Mapping[str, Any] = MappingProxyType({})  # read-only: the default is shared

    @property
    def whole_groups(self) -> bool:
        """Whether every group lies whole in one shard, its rows contiguous."""
        return self.codes is None


class Shard(NamedTuple):
    """One shard read by :meth:`ParquetLog.read_shard`: features, funnel labels, group ids and weights."""

    X: Any  # a DataFrame, or a float32 matrix when every feature is numeric (``feature_types`` then set)
    y: np.ndarray
    group: np.ndarray
    weight: np.ndarray | None
    feature_types: list[str] | None


class ParquetLog:
    """An exposure log stored as Parquet shards: ``CTCVRClassifier().fit(ParquetLog(...))`` trains out of core.

    The features are read one shard at a time into XGBoost's external memory
    (``xgboost.ExtMemQuantileDMatrix``, its quantised pages cached on disk);
    only the labels, groups and weights of all rows are held in memory, as
    the PWiseR objective needs them (:class:`LogState`).

    The groups may lie anywhere: when every shard holds whole groups, its
    rows contiguous by group, the fit keeps one size per group (the cheap
    layout); when a group's rows are scattered across shards (or within
    one), it keeps one group code per row (8 bytes a row) and the objective
    pairs the rows wherever they are. Shards are read in sorted file order;
    every shard has the label, group, weight and feature columns.

    **Categorical features** follow :func:`~gbdt_pwiser.datasets.load_log`'s
    rules (text, bool and dictionary columns inferred, or ``categorical=``);
    their categories are collected over all shards before training and the
    fitted model takes pandas ``category`` columns at prediction time. Out of
    core, store them as integer codes where you can: XGBoost's external memory
    takes every shard as numbers, and text categories cost a lookup per
    shard and a vocabulary held in memory.

    Parameters
    ----------
    path : str, path-like or list of str
        A folder of Parquet files (searched recursively), a glob pattern, or a
        list of files (see :func:`gbdt_pwiser.datasets.sources.list_files`).
    click, conversion : str, optional
        The label columns (0/1, bool or integers), as in ``load_log``.
    label : str or [str, str], optional
        Instead of ``click``/``conversion``: the funnel-label column (0 no
        click, 1 click only, 2 conversion), or the click and conversion columns.
    group : str
        The group-id column (e.g. the request id).
    weight : str, optional
        Column of per-row weights.
    features : list of str, optional
        Feature columns; default every column of the first shard that is not
        a label, group or weight column.
    categorical : list of str, optional
        The categorical features; default inferred (see above).
    cache_dir : str or path-like, optional
        Where XGBoost writes its external-memory pages during ``fit`` (a
        temporary folder, removed after the fit, is made inside it); default
        the system's temporary folder.
    types : dict, optional
        Arrow types to read some columns as (safe casts: a fraction in an
        integer column is an error naming the shard and the column), e.g.
        the fixed types of the paper's layouts (``LAYOUTS[name].types()``).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np, pandas as pd
    >>> from gbdt_pwiser import CTCVRClassifier, ParquetLog
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    >>> df["click"] = (rng.random(600) < 1 / (1 + np.exp(-df["a"]))).astype(int)
    >>> df["conversion"] = df["click"] * (rng.random(600) < 0.4)
    >>> df["request"] = rng.integers(0, 60, 600)  # requests scattered over the shards
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for k in range(3):
    ...         df.iloc[200 * k : 200 * (k + 1)].to_parquet(f"{folder}/part-{k}.parquet")
    ...     log = ParquetLog(folder, click="click", conversion="conversion", group="request")
    ...     model = CTCVRClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(log)
    >>> model.feature_names_in_.tolist()
    ['a', 'b', 'c']
    >>> model.predict_ctcvr(df[["a", "b", "c"]]).shape  # predict from an in-memory frame
    (600,)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Sequence[str],
        *,
        group: str,
        label: str | Sequence[str] | None = None,
        click: str | None = None,
        conversion: str | None = None,
        features: Sequence[str] | None = None,
        weight: str | None = None,
        categorical: Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        types: dict[str, Any] | None = None,
    ) -> None:
        require("pyarrow", extra="parquet", feature="ParquetLog")
        self.path = path
        self.label = label
        self.click = click
        self.conversion = conversion
        self.group = group
        self.features = features
        self.weight = weight
        self.categorical = categorical
        self.cache_dir = cache_dir
        self.types = types

    def __repr__(self) -> str:
        roles = (
            f"label={self.label!r}"
            if self.label is not None
            else f"click={self.click!r}, conversion={self.conversion!r}"
        )
        return (
            f"ParquetLog({self.path!r}, {roles}, group={self.group!r}, features={self.features!r}, "
            f"weight={self.weight!r}, categorical={self.categorical!r})"
        )

    # ------------------------------------------------------------------ columns
    @property
    def spec(self) -> LogColumns:
        """The roles of the columns (checked: a ``TypeError``/``ValueError`` names the bad argument)."""
        label, click, conversion = self.label, self.click, self.conversion
        if isinstance(label, (list, tuple)):
            if len(label) != 2 or click is not None or conversion is not None:
                raise ValueError(
                    f"label must name the funnel-label column or the [click, conversion] columns, got {label!r}"
                )
            (click, conversion), label = label, None
        elif label is not None and not isinstance(label, str):
            raise ValueError(
                f"label must name the funnel-label column or the [click, conversion] columns, got {label!r}"
            )
        return LogColumns.of(
            group=self.group,
            label=label,
            click=click,
            conversion=conversion,
            weight=self.weight,
            features=self.features,
            categorical=self.categorical,
        )

    def files(self) -> list[str]:
        """The shards, in the order they are read (see :func:`~gbdt_pwiser.datasets.sources.list_files`)."""
        return list_files(self.path, "parquet")

    def labels(self) -> list[str]:
        """The label column(s): ``[funnel]`` or ``[click, conversion]``."""
        return self.spec.labels

    def meta_columns(self) -> list[str]:
        """Label, group and weight columns (everything that is not a feature)."""
        return self.spec.meta

    def columns(self, files: Sequence[str] | None = None) -> list[str]:
        """The feature columns (the default ones taken from the first shard's schema)."""
        first = (self.files() if files is None else list(files))[0]
        return self.spec.feature_names(read_schema(first).names, f"shard {first!r}")

    def categorical_columns(self, shard: str, features: Sequence[str]) -> list[str]:
        """The categorical features, by the types of ``shard`` (a feature of no usable type is a ``ColumnError``)."""
        schema = read_schema(shard)
        return categorical_features({c: schema.field(c).type for c in features}, self.spec, f"shard {shard!r}")

    def check_schema(self, shard: str, features: Sequence[str]) -> None:
        """The shard has every column, a numeric weight and usable features (errors naming the shard)."""
        import pyarrow as pa

        schema = read_schema(shard)
        check_columns(schema.names, self.spec.needed(features), f"shard {shard!r}")
        if self.weight and not (pa.types.is_integer(wt := schema.field(self.weight).type) or pa.types.is_floating(wt)):
            raise TypeError(f"shard {shard!r}: weight column {self.weight!r} has type {wt}; weights must be numeric")
        self.categorical_columns(shard, features)

    # ------------------------------------------------------------------ reading
    def _read(self, shard: str, columns: Sequence[str]) -> Any:
        """Columns of one shard as an Arrow table, cast to :attr:`types` (errors name the shard and column)."""
        table = read_table(shard, columns)
        return table if not self.types else cast_columns(table, shard, self.types)

    def read_state(self, with_ids: bool = False) -> LogState:
        """Read and check the labels, groups and weights of every shard (and the categorical features' values).

        ``with_ids``: keep the group id of every row too (``LogState.ids``).
        """
        files = self.files()
        features = self.columns(files)
        self.check_schema(files[0], features)
        cats = self.categorical_columns(files[0], features)
        spec = self.spec
        ys, ws, used, ids = [], [], [], []
        runs: list[Any] = []  # (boundaries, ids) of each shard's runs; None once a group is scattered
        values: dict[str, list[np.ndarray]] = {c: [] for c in cats}
        whole = True
        for f in files:
            self.check_schema(f, features)
            table = self._read(f, list(dict.fromkeys(spec.meta + cats)))
            if table.num_rows == 0:
                continue
            where = f"shard {f!r}"
            y, g, w = meta_values({c: table.column(c) for c in spec.meta}, spec, where)
            for c, v in _category_values(table, cats, where).items():
                values[c].append(v)
            ys.append(y)
            ws.append(w)
            used.append(f)
            r = _runs(g) if whole else None
            whole = r is not None
            runs.append(r)
            ids.append(g if r is None or with_ids else None)  # whole runs keep one id per group, not per row
        if not used:
            raise ValueError(f"the Parquet shards at {self.path!r} hold no rows")
        whole = whole and _unique([r[1] for r in runs])
        all_ids = None
        if with_ids or not whole:
            all_ids = _concat(
                [g if g is not None else np.repeat(r[1], np.diff(r[0])) for g, r in zip(ids, runs, strict=True)]
            )
        return LogState(
            np.concatenate(ys),
            np.concatenate(ws) if self.weight else None,
            np.concatenate([np.diff(r[0]) for r in runs]).astype(np.int64) if whole else None,
            used,
            np.array([y.size for y in ys], dtype=np.int64),
            all_ids if with_ids else None,
            None if whole or all_ids is None else pd.factorize(all_ids)[0].astype(np.int64),
            {c: category_union(v) for c, v in values.items()},
        )

    def read_shard(
        self,
        shard: str,
        features: Sequence[str],
        categories: Mapping[str, Any] | None = None,
        take: Callable[[int], np.ndarray | None] | None = None,
        extra: Sequence[str] = (),
    ) -> tuple[Shard, Any]:
        """One shard's rows as the readers convert them (``take(n_rows)``: a mask of the rows to keep, or None).

        Features are a float32 matrix when all are numeric, else a DataFrame
        with the categorical ones as ``category`` (``categories`` fixes them).
        Also returns the Arrow table of the ``extra`` columns.
        """
        import pyarrow as pa

        spec, where = self.spec, f"shard {shard!r}"
        table = self._read(shard, list(dict.fromkeys(list(features) + spec.meta + list(extra))))
        keep = None if take is None else take(table.num_rows)
        if keep is not None:
            table = table.filter(pa.array(keep))
        cols = {c: table.column(c) for c in table.column_names}
        y, g, w = meta_values(cols, spec, where)
        numeric = None if categories else numeric_matrix(table, features)
        if numeric is not None:
            X, types = numeric
        else:
            X, types = feature_frame(cols, spec, features, where, categories)[0], None  # type: ignore[assignment]
        return Shard(X, y, g, w, types), table.select(list(extra))

    def category_values(self, shard: str, categorical: Sequence[str]) -> dict[str, np.ndarray]:
        """The distinct values of each ``categorical`` column in one shard (their union gives the categories)."""
        return _category_values(self._read(shard, list(categorical)), categorical, f"shard {shard!r}")

    def read_frame(self, shard: str, features: Sequence[str], categories: dict[str, Any]) -> pd.DataFrame:
        """One shard as a pandas frame: the features, ``LABEL_COLUMN`` (funnel labels), ``GROUP_COLUMN``
        and ``WEIGHT_COLUMN`` (when the log has weights) — one partition of a Dask frame."""
        spec, where = self.spec, f"shard {shard!r}"
        table = self._read(shard, list(dict.fromkeys(list(features) + spec.meta)))
        cols = {c: table.column(c) for c in table.column_names}
        y, g, w = meta_values(cols, spec, where)
        X = feature_frame(cols, spec, features, where, categories)[0]
        X[LABEL_COLUMN], X[GROUP_COLUMN] = y, g
        if w is not None:
            X[WEIGHT_COLUMN] = w
        return X

    def frame_meta(self, features: Sequence[str], categories: dict[str, Any]) -> pd.DataFrame:
        """The empty frame of :meth:`read_frame`'s columns and dtypes (a Dask frame's ``meta``), from the schema."""
        import pyarrow as pa

        schema = read_schema(self.files()[0])
        out: dict[str, Any] = {}
        for c in features:
            out[c] = (
                pd.Series(pd.Categorical([], categories=categories[c]))
                if c in categories
                else pd.Series([], dtype=np.float32)
            )
        out[LABEL_COLUMN] = pd.Series([], dtype=np.int8)
        gt = schema.field(self.group).type
        whole = pa.types.is_integer(gt) or pa.types.is_floating(gt)
        out[GROUP_COLUMN] = pd.Series([], dtype=np.int64 if whole else object)
        if self.weight:
            out[WEIGHT_COLUMN] = pd.Series([], dtype=np.float64)
        return pd.DataFrame(out)

    def iter_features(
        self,
        shards: Sequence[str] | None = None,
        row_mask: np.ndarray | None = None,
        categories: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]:
        """The features of each shard in turn, as pandas DataFrames (``categories``: of the categorical ones).

        ``row_mask``: a boolean per row of ``shards`` (in their order): only
        the rows it marks.
        """
        import pyarrow as pa

        files = self.files() if shards is None else list(shards)
        features = self.columns(files)
        start = 0
        for f in files:
            table = self._read(f, features)
            if row_mask is not None:
                n = table.num_rows
                table = table.filter(pa.array(row_mask[start : start + n]))
                start += n
            yield feature_frame(
                {c: table.column(c) for c in features}, self.spec, features, f"shard {f!r}", categories or {}
            )[0]

    def warn_inferred(self, state: LogState) -> None:
        """The :class:`~gbdt_pwiser.datasets.InferredCategoricalWarning` of a read that inferred categoricals."""
        if self.categorical is None:
            warn_inferred(list(state.categories), repr(self.path), stacklevel=5)


def _runs(g: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Run boundaries and run ids of group ids ``g``, or None when a group's rows are not contiguous."""
    from ..exceptions import GroupLayoutError

    try:
        return group_runs(g, "")
    except GroupLayoutError:
        return None


def _category_values(table: Any, categorical: Sequence[str], where: str) -> dict[str, np.ndarray]:
    return {c: category_values(table.column(c), c, where) for c in categorical}


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if any(p.dtype == object for p in parts):
        return np.concatenate([np.asarray(p, dtype=object) for p in parts])
    return np.concatenate(parts)


def _unique(heads: list[np.ndarray]) -> bool:
    """Whether no group id is the head of runs in two shards."""
    if not heads:
        return True
    codes = pd.factorize(_concat(heads))[0]
    return bool(np.unique(codes).size == codes.size)
