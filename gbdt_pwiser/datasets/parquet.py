"""Ad logs stored as Parquet: a folder of ``.parquet`` files or a glob of them, in a loader's layout.

The columns are those of :func:`~gbdt_pwiser.datasets.load_aliexpress` or
:func:`~gbdt_pwiser.datasets.load_ali_ccp` (any order; extra columns are
ignored), read with the same fixed types and converted the same way, so a
Parquet log and its CSV give the same :class:`AdLog`. :func:`parquet_part`
converts one partition the same way on a Dask worker, with categories fixed
in advance (every partition must share them).
"""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np
import pandas as pd

from .._labels import funnel_label
from .._optional import require
from .._validation import check_int
from .adlog import AdLog
from .loaders import LAYOUTS, _arrow_types, _to_adlog

__all__ = ["parquet_files", "load_parquet_log", "parquet_part", "feature_columns", "check_parquet_columns"]


def _layout(layout: str) -> dict[str, Any]:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    return LAYOUTS[layout]


def parquet_files(path: str | os.PathLike) -> list[str]:
    """The Parquet files of ``path``: a ``.parquet`` file, a folder (searched recursively) or a glob.

    Raises
    ------
    FileNotFoundError
        ``path`` (not a glob) does not exist.
    ValueError
        A glob that matches nothing, or a folder without ``.parquet`` files.
    """
    p = os.fspath(path)
    if glob.has_magic(p):
        files = sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f))
        if not files:
            raise ValueError(f"no file matches the glob {p!r}")
        return files
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such file or folder: {p!r}")
    if os.path.isdir(p):
        files = sorted(glob.glob(os.path.join(glob.escape(p), "**", "*.parquet"), recursive=True))
        if not files:
            raise ValueError(f"the folder {p!r} holds no .parquet files")
        return files
    return [p]


def is_parquet(path: str | os.PathLike) -> bool:
    """Whether ``path`` names Parquet data (a folder, a glob or a ``.parquet`` file) rather than a CSV."""
    p = os.fspath(path)
    return glob.has_magic(p) or os.path.isdir(p) or p.endswith((".parquet", ".parq", ".pq"))


def check_parquet_columns(files: list[str], layout: str) -> None:
    """Every file's schema must hold the layout's columns (extra columns are allowed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = _layout(layout)
    for f in files:
        try:
            names = set(pq.read_schema(f).names)
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"cannot read {f!r} as Parquet: {exc}") from exc
        missing = [c for c in spec["expected"] if c not in names]
        if missing:
            raise ValueError(f"{f!r} does not have the {spec['layout']} layout: missing columns {missing}")


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
    import pyarrow.dataset as ds

    nrows = None if nrows is None else check_int(nrows, "nrows", lo=0)
    spec = _layout(layout)
    files = parquet_files(path)
    check_parquet_columns(files, layout)
    types = _arrow_types(**{k: v for k, v in spec.items() if k != "layout"})
    try:
        data = ds.dataset(files, format="parquet")
        table = data.head(nrows, columns=list(types)) if nrows is not None else data.to_table(columns=list(types))
        cols = {c: table.column(c).cast(t) for c, t in types.items()}
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"cannot read {os.fspath(path)!r} with the {spec['layout']} column types: {exc}") from exc
    del table
    return _to_adlog(os.fspath(path), cols, **spec)


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
