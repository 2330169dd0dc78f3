"""Ad logs stored as Parquet: a folder of ``.parquet`` files or a glob of them, in a loader's layout.

The columns are those of :func:`~gbdt_pwiser.datasets.load_aliexpress` or
:func:`~gbdt_pwiser.datasets.load_ali_ccp` (any order; extra columns are
ignored), read with the same fixed types and converted the same way, so a
Parquet log and its CSV give the same :class:`AdLog`. :func:`parquet_part`
converts one partition the same way on a Dask worker, with categories fixed
in advance (every partition must share them).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from .._labels import funnel_label
from .._optional import require
from .._validation import check_int
from .adlog import AdLog
from .loaders import LAYOUTS, _arrow_types, _to_adlog
from .sources import check_columns, list_files, read_schema, read_table

__all__ = ["load_parquet_log", "parquet_part", "feature_columns", "check_parquet_columns", "read_typed",
           "read_typed_frame", "typed_meta"]


def _layout(layout: str) -> dict[str, Any]:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    return LAYOUTS[layout]


def check_parquet_columns(files: list[str], layout: str) -> None:
    """Every file's schema must hold the layout's columns (extra columns are allowed)."""
    spec = _layout(layout)
    for f in files:
        check_columns(read_schema(f).names, spec["expected"], f"{f!r} ({spec['layout']} layout)")


def load_parquet_log(path: str | os.PathLike, layout: str = "aliexpress", *, nrows: int | None = None) -> AdLog:
    """Read a Parquet log (folder, glob or file) of a loader's layout into memory.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.parquet`` file, a folder of them (recursively) or a glob such as ``"logs/day=*/*.parquet"``.
    layout : {"aliexpress", "ali-ccp"}
        The column layout (as :func:`load_aliexpress` / :func:`load_ali_ccp`).
    nrows : int, optional
        Read only the first ``nrows`` rows (files in sorted order).

    Returns
    -------
    AdLog
        As the CSV loader of the layout returns.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gbdt_pwiser.datasets import make_ad_log, load_parquet_log
    >>> sim = make_ad_log(40, n_categorical=16, n_numerical=63, random_state=1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     frame = sim.to_frame()
    ...     frame.iloc[:100].to_parquet(Path(d) / "a.parquet")
    ...     frame.iloc[100:].to_parquet(Path(d) / "b.parquet")
    ...     log = load_parquet_log(d)
    >>> bool((log.y == sim.y).all()) and log.X.shape[1] == 79
    True
    """
    pa = require("pyarrow", extra="parquet", feature="load_parquet_log")

    nrows = None if nrows is None else check_int(nrows, "nrows", lo=0)
    spec = _layout(layout)
    files = list_files(path, "parquet")
    check_parquet_columns(files, layout)
    tables, got = [], 0
    for f in files:  # file by file: an error names the file and the column
        if tables and nrows is not None and got >= nrows:
            break
        t = read_typed(f, layout)
        tables.append(t if nrows is None else t.slice(0, nrows - got))
        got += tables[-1].num_rows
    table = pa.concat_tables(tables)
    cols = {c: table.column(c) for c in table.column_names}
    del table, tables
    return _to_adlog(os.fspath(path), cols, **spec)


def read_typed(path: str, layout: str) -> Any:
    """One Parquet file's columns of a layout as an Arrow table with the loaders' fixed types.

    Casts are safe (text that is not a number, a fraction in an integer
    column or an overflow is an error, never a silent change), the labels and
    the group id must be complete and the labels valid funnel labels. Every
    problem is a ``ValueError`` naming the file and the column. The same read
    serves the in-memory loader and each Dask partition, so both paths accept
    and refuse the same files.
    """
    import pyarrow as pa

    spec = _layout(layout)
    types = _arrow_types(**{k: v for k, v in spec.items() if k != "layout"})
    table = read_table(path, list(types))
    cols = {}
    for c, t in types.items():
        col = table.column(c)
        try:
            cols[c] = col.cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ValueError(f"{path!r}: column {c!r} ({col.type}) cannot be read as {t}: {exc}") from exc
    for c in (spec["click_col"], spec["conversion_col"], spec["group_col"]):
        if cols[c].null_count:
            raise ValueError(f"{path!r}: column {c!r} has {cols[c].null_count} missing value(s)")
    try:
        funnel_label(cols[spec["click_col"]].to_numpy(), cols[spec["conversion_col"]].to_numpy())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path!r}: {exc}") from exc
    return pa.table(cols)


def typed_frame(table: Any) -> pd.DataFrame:
    """A :func:`read_typed` table as pandas: integer category columns nullable ``Int32`` (every
    partition of a Dask frame gets the same dtypes, with or without missing values)."""
    import pyarrow as pa

    return table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)


def read_typed_frame(path: str, layout: str) -> pd.DataFrame:
    """:func:`read_typed` as a pandas frame (:func:`typed_frame`): one partition of a Dask frame."""
    return typed_frame(read_typed(path, layout))


def typed_meta(layout: str) -> pd.DataFrame:
    """The empty frame of :func:`read_typed_frame`'s dtypes (a Dask frame's ``meta``)."""
    import pyarrow as pa

    spec = _layout(layout)
    types = _arrow_types(**{k: v for k, v in spec.items() if k != "layout"})
    return typed_frame(pa.table({c: pa.array([], type=t) for c, t in types.items()}))


def feature_columns(layout: str) -> list[str]:
    """The feature columns of a layout, in the order the loaders give ``X``."""
    spec = _layout(layout)
    drop = {spec["click_col"], spec["conversion_col"]}
    if spec["group_col"] not in spec["categorical"]:
        drop.add(spec["group_col"])
    return [c for c in spec["expected"] if c not in drop]


def parquet_part(df: pd.DataFrame, layout: str, categories: dict[str, np.ndarray], y_col: str,
                 g_col: str) -> pd.DataFrame:
    """One partition of a Parquet log as the loaders convert it: features, funnel label ``y_col``, group ``g_col``.

    ``categories`` holds each categorical column's categories over the whole
    log, so every partition gets the same ``category`` dtype.
    """
    spec = _layout(layout)
    name = f"a partition of the {spec['layout']} Parquet log"
    for c in (spec["click_col"], spec["conversion_col"], spec["group_col"]):
        if df[c].isna().any():
            raise ValueError(f"{name}: column {c!r} has missing values")
    y = funnel_label(df[spec["click_col"]].to_numpy().astype(np.int8),
                     df[spec["conversion_col"]].to_numpy().astype(np.int8))
    out: dict[str, Any] = {}
    for c in feature_columns(layout):
        if c in spec["categorical"]:
            out[c] = pd.Categorical(df[c].to_numpy(dtype=np.float64, na_value=np.nan)
                                    if df[c].isna().any() else df[c].to_numpy(),
                                    categories=pd.Index(categories[c]))
        else:
            out[c] = df[c].to_numpy(dtype=np.float32, na_value=np.nan)
    out[y_col] = y.astype(np.int8)
    out[g_col] = df[spec["group_col"]].to_numpy().astype(np.int64)
    return pd.DataFrame(out, index=df.index)
