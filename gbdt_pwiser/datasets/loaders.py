"""Loaders of ad logs (no downloads: they read files the user has).

* ``load_log`` reads your own log, CSV or Parquet, in your own column names
  (:mod:`gbdt_pwiser.datasets.columns` has the rules).
* ``load_aliexpress`` reads the processed AliExpress layout (MTReclib,
  torch-rechub, FuxiCTR): ``search_id``, ``categorical_1..16``,
  ``numerical_1..63``, ``click``, ``conversion``.
* ``load_ali_ccp`` reads torch-rechub's processed Ali-CCP layout:
  ``click``, ``purchase``, 23 sparse fields named by their Ali-CCP field ids
  and 8 dense ``D...`` fields.
* ``load_parquet_log`` reads either layout from Parquet files.

All of them read with :func:`read_log`: one listing and reader of files
(:mod:`gbdt_pwiser.datasets.sources`) and one conversion
(:func:`gbdt_pwiser.datasets.columns.convert`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._optional import require
from .._validation import check_int
from .adlog import AdLog
from .columns import LogColumns, convert, warn_inferred
from .sources import check_columns, column_names, csv_header, list_files, list_log_files, read_files

__all__ = [
    "ALIEXPRESS_CATEGORICAL",
    "ALIEXPRESS_NUMERICAL",
    "ALIEXPRESS_COLUMNS",
    "ALI_CCP_SPARSE",
    "ALI_CCP_DENSE",
    "ALI_CCP_COLUMNS",
    "load_log",
    "load_aliexpress",
    "load_ali_ccp",
    "load_parquet_log",
    "LAYOUTS",
    "Layout",
]

PathLike = str | os.PathLike

# --------------------------------------------------------------------------- schemas

#: The 16 categorical fields of the AliExpress layout, ``categorical_1`` … ``categorical_16``.
ALIEXPRESS_CATEGORICAL: tuple[str, ...] = tuple(f"categorical_{k}" for k in range(1, 17))
#: The 63 numerical fields of the AliExpress layout, ``numerical_1`` … ``numerical_63``.
ALIEXPRESS_NUMERICAL: tuple[str, ...] = tuple(f"numerical_{k}" for k in range(1, 64))
#: The 82 columns of the processed AliExpress CSV, in file order.
ALIEXPRESS_COLUMNS: tuple[str, ...] = (
    "search_id",
    *ALIEXPRESS_CATEGORICAL,
    *ALIEXPRESS_NUMERICAL,
    "click",
    "conversion",
)

#: The 23 sparse fields of the Ali-CCP layout, named by their Ali-CCP field ids.
ALI_CCP_SPARSE: tuple[str, ...] = (
    "101", "121", "122", "124", "125", "126", "127", "128", "129",
    "205", "206", "207", "210", "216", "508", "509", "702", "853", "301",
    "109_14", "110_14", "127_14", "150_14",
)  # fmt: skip
#: The 8 dense ``D...`` fields of the Ali-CCP layout.
ALI_CCP_DENSE: tuple[str, ...] = (
    "D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853",
)  # fmt: skip
#: The 33 columns of torch-rechub's processed Ali-CCP CSV, in file order.
ALI_CCP_COLUMNS: tuple[str, ...] = ("click", "purchase", *ALI_CCP_SPARSE, *ALI_CCP_DENSE)
#: Ali-CCP field used as the group: the user id (the layout has no request id).
ALI_CCP_GROUP = "101"


# --------------------------------------------------------------------------- reading


def _check_file(path: PathLike) -> str:
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such file: {p!r}")
    if os.path.isdir(p):
        raise ValueError(f"{p!r} is a directory; pass the path of a CSV file")
    return p


def _check_schema(path: str, header: list[str], expected: Sequence[str], layout: str) -> None:
    counts = Counter(header)
    duplicated = sorted(c for c, k in counts.items() if k > 1)
    missing = [c for c in expected if c not in counts]
    exp = set(expected)
    unexpected = [c for c in header if c not in exp]
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if unexpected:
        problems.append(f"unexpected columns {unexpected}")
    if duplicated:
        problems.append(f"duplicated columns {duplicated}")
    if problems:
        raise ValueError(
            f"{path!r} does not have the {layout} layout ({len(expected)} columns): " + "; ".join(problems)
        )


def _where(path: Any) -> str:
    return f"the list of {len(path)} files" if isinstance(path, (list, tuple)) else repr(os.fspath(path))


def read_log(
    files: Sequence[str],
    kind: str,
    spec: LogColumns,
    *,
    where: str,
    nrows: int | None = None,
    types: dict[str, Any] | None = None,
) -> AdLog:
    """Read the columns ``spec`` names from a log's ``files`` into an ``AdLog`` (the one read every loader makes).

    The columns are checked against the first file (a misspelt one is named
    with the closest existing name), read with :func:`~gbdt_pwiser.datasets.sources.read_files`
    (``types`` fixes some Arrow types) and converted by
    :func:`~gbdt_pwiser.datasets.columns.convert`; inferred categorical
    columns are reported by an :class:`InferredCategoricalWarning`.
    """
    nrows = None if nrows is None else check_int(nrows, "nrows", lo=0)
    features = spec.feature_names(column_names(files[0], kind), f"{where}" if len(files) == 1 else repr(files[0]))
    table = read_files(files, kind, spec.needed(features), types, nrows, complete=[*spec.labels, spec.group])
    cols = {c: table.column(c) for c in table.column_names}
    del table
    out = convert(cols, spec, features, where)
    warn_inferred(out.inferred, where, stacklevel=4)
    return AdLog(X=out.X, y=out.y, group=out.group, weight=out.weight)


def load_log(
    path: PathLike | Sequence[PathLike],
    *,
    click: str,
    conversion: str,
    group: str,
    weight: str | None = None,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    nrows: int | None = None,
) -> AdLog:
    """Read your own exposure log, in your own column names, from CSV or Parquet.

    Parameters
    ----------
    path : str, path-like or list of them
        A CSV file (``.csv``, ``.tsv``, compressed ``.csv.gz``...), a Parquet
        file, a folder of either (searched recursively), a glob such as
        ``"logs/day=*/*.parquet"``, or a list of files; files are read in
        sorted order (a list: in its order).
    click, conversion : str
        The label columns: 0/1, bool or integer (0/1 only) values; a
        conversion needs a click.
    group : str
        The group-id column (e.g. the search or request id; numbers or text).
    weight : str, optional
        A column of non-negative row weights (``AdLog.weight``, the fit's
        ``sample_weight``).
    features : list of str, optional
        The feature columns, in this order (the group column may be one);
        default every column except the labels, the group and the weight.
    categorical : list of str, optional
        The categorical features (integer ids or text), read as pandas
        ``category``. Default: inferred — text, bool and pandas ``category``
        (Parquet dictionary) columns — and reported by an
        :class:`~gbdt_pwiser.datasets.InferredCategoricalWarning`. Given, it
        wins: exactly these columns, no inference, and a text column outside
        it is an error.
    nrows : int, optional
        Read only the first ``nrows`` rows (files in order).

    Returns
    -------
    AdLog
        ``X``: the features (numerical ones float32, missing cells NaN;
        categorical ones ``category`` with their sorted values as categories,
        missing cells NaN); ``y``: funnel labels; ``group``: the ids (int64
        for whole numbers); ``weight``: the weights or None. Categories seen
        only in later data (a test file read separately) are handled by
        :meth:`AdLog.align_categories` and at prediction time by the
        estimator, which turns them into missing values (LightGBM's rule for
        unseen categories; XGBoost sees the fitted categories only).

    Raises
    ------
    ColumnError
        A column that does not exist (the message proposes the closest
        existing name), or a feature that is neither numeric nor categorical.
    ValueError
        NaN in a label or the group, a label outside 0/1, a conversion without
        a click (with the number of rows), a column given two roles.
    FileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> import tempfile, warnings
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from gbdt_pwiser.datasets import InferredCategoricalWarning, load_log
    >>> frame = pd.DataFrame(
    ...     {
    ...         "srch_id": [7, 7, 7, 9, 9],
    ...         "price": [120.0, 80.5, None, 60.0, 95.0],
    ...         "country": ["fr", "de", "fr", "nl", "fr"],
    ...         "clicked": [1, 0, 1, 0, 1],
    ...         "booked": [True, False, False, False, False],
    ...     }
    ... )
    >>> with tempfile.TemporaryDirectory() as d, warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     frame.to_csv(Path(d) / "hotels.csv", index=False)
    ...     log = load_log(Path(d) / "hotels.csv", click="clicked", conversion="booked", group="srch_id")
    >>> log
    AdLog(n_rows=5, n_groups=2, n_features=2, clicks=3, conversions=1)
    >>> log.X.dtypes.astype(str).tolist(), log.y.tolist()
    (['float32', 'category'], [2, 0, 1, 0, 1])
    >>> [w.message.columns for w in seen if w.category is InferredCategoricalWarning]
    [['country']]
    """
    spec = LogColumns.of(
        click=click, conversion=conversion, group=group, weight=weight, features=features, categorical=categorical
    )
    require("pyarrow", extra="parquet", feature="load_log")
    files, kind = list_log_files(path)
    return read_log(files, kind, spec, where=_where(path), nrows=nrows)


def load_aliexpress(path: PathLike, *, nrows: int | None = None) -> AdLog:
    """Read a processed AliExpress CSV file.

    The layout (82 columns, any column order) is the one MTReclib,
    torch-rechub and FuxiCTR use for the AliExpress FR/NL/US/ES/RU search logs:
    ``search_id``, ``categorical_1`` … ``categorical_16``, ``numerical_1`` …
    ``numerical_63``, ``click``, ``conversion``.

    The file is read with pyarrow's multithreaded CSV reader with fixed
    column types (categoricals as int32, numericals as float32, the request id
    as int64, labels as int8), then each column is converted and Arrow's copy
    released. No float64 or object column is ever made: peak memory is about
    twice the typed data (1M rows: 0.27 GB result, about 0.6 GB peak; a plain
    ``pandas.read_csv`` of the same file peaks above 2 GB), and reading runs
    at roughly 3 s per million rows on two cores. Files compressed with
    gzip/bz2/zstd/lz4 are read when the extension says so.

    Parameters
    ----------
    path : str or os.PathLike
        Path of the CSV file.
    nrows : int, optional
        Read only the first ``nrows`` data rows (streamed; the rest of the
        file is not parsed).

    Returns
    -------
    AdLog
        ``X``: the 16 categorical columns (``category`` dtype, sorted integer
        categories found in the file; missing cells are NaN) then the 63
        numerical ones (float32). ``y``: funnel labels. ``group``: ``search_id``.
        Rows keep the file order; use :meth:`AdLog.sort_by_group` before
        building an XGBoost ``DMatrix`` with ``qid``. Files read separately
        infer their categories separately: :meth:`AdLog.align_categories`
        makes a test log's codes agree with a training log's.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is a directory or unreadable, the header lacks a column or
        has an unexpected one (the message names them), a cell does not parse
        as its column type, a label or ``search_id`` is missing, a label is not
        0/1, or a row has a conversion without a click.

    Examples
    --------
    >>> from pathlib import Path
    >>> import tempfile
    >>> from gbdt_pwiser.datasets import make_ad_log, load_aliexpress
    >>> sim = make_ad_log(50, n_categorical=16, n_numerical=63, random_state=1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = Path(d) / "aliexpress_sample.csv"
    ...     sim.to_frame().to_csv(f, index=False)
    ...     log = load_aliexpress(f)
    >>> log.X.shape[1], str(log.X["categorical_1"].dtype), str(log.X["numerical_1"].dtype)
    (79, 'category', 'float32')
    >>> bool((log.y == sim.y).all()) and bool((log.group == sim.group).all())
    True
    """
    return _load_csv(path, "aliexpress", nrows)


def load_ali_ccp(path: PathLike, *, nrows: int | None = None) -> AdLog:
    """Read torch-rechub's processed Ali-CCP CSV file.

    The layout has 33 columns (any order): ``click``, ``purchase``, the 23
    integer-encoded sparse fields ``101``, ``121``, ``122``, ``124``, ``125``,
    ``126``, ``127``, ``128``, ``129``, ``205``, ``206``, ``207``, ``210``,
    ``216``, ``508``, ``509``, ``702``, ``853``, ``301``, ``109_14``,
    ``110_14``, ``127_14``, ``150_14`` and the 8 dense fields ``D109_14``,
    ``D110_14``, ``D127_14``, ``D150_14``, ``D508``, ``D509``, ``D702``,
    ``D853``.

    **Groups.** Ali-CCP has no request id, so the group is the user field
    ``101``: PWiseR pairs are formed within a user's exposures. Field ``101``
    also stays in ``X`` as a categorical feature, as torch-rechub uses it.

    Reading follows :func:`load_aliexpress` (pyarrow, fixed types: sparse
    fields int32, dense float32, labels int8).

    Parameters
    ----------
    path : str or os.PathLike
        Path of the CSV file.
    nrows : int, optional
        Read only the first ``nrows`` data rows.

    Returns
    -------
    AdLog
        ``X``: the 23 sparse fields (``category``) then the 8 dense ones
        (float32). ``y``: funnel labels from ``click`` and ``purchase``.
        ``group``: the user id (field ``101``) as int64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        As for :func:`load_aliexpress`: schema mismatch (columns named),
        unparsable cells, missing labels or user ids, a purchase without a
        click.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gbdt_pwiser.datasets import ALI_CCP_COLUMNS, load_ali_ccp
    >>> row = ["1", "1"] + ["3"] * 23 + ["0.5"] * 8
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = Path(d) / "ali_ccp.csv"
    ...     _ = f.write_text(",".join(ALI_CCP_COLUMNS) + "\\n" + ",".join(row) + "\\n")
    ...     log = load_ali_ccp(f)
    >>> log.X.shape, log.y.tolist(), log.group.tolist()
    ((1, 31), [2], [3])
    """
    return _load_csv(path, "ali-ccp", nrows)


@dataclass(frozen=True)
class Layout:
    """A layout of the paper's logs: its name, every column (``expected``), their roles and fixed Arrow types."""

    name: str
    expected: tuple[str, ...]
    columns: LogColumns

    def types(self) -> dict[str, Any]:
        """The Arrow type each column is read with: labels int8, group int64, categorical int32, numerical float32."""
        import pyarrow as pa

        cats = set(self.columns.categorical or ())
        out = {c: pa.int32() if c in cats else pa.float32() for c in self.expected}
        out.update({c: pa.int8() for c in self.columns.labels})
        if self.columns.group not in cats:
            out[self.columns.group] = pa.int64()
        return out


def _layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {name!r}")
    return LAYOUTS[name]


def _load_csv(path: PathLike, layout: str, nrows: int | None) -> AdLog:
    spec = _layout(layout)
    require("pyarrow", extra="parquet", feature=f"reading the {spec.name} CSV layout")
    nrows = None if nrows is None else check_int(nrows, "nrows", lo=0)
    p = _check_file(path)
    _check_schema(p, csv_header(p), spec.expected, spec.name)
    return read_log([p], "csv", spec.columns, where=repr(p), nrows=nrows, types=spec.types())


def load_parquet_log(path: PathLike, layout: str = "aliexpress", *, nrows: int | None = None) -> AdLog:
    """Read a Parquet log (folder, glob or file) of a loader's layout into memory.

    The columns (any order; extra columns are ignored) are read with the
    layout's fixed types, cast safely (a fraction in an integer column is an
    error naming the file and the column), and converted as the CSV loader
    converts them, so a Parquet log and its CSV give the same ``AdLog``.

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
    require("pyarrow", extra="parquet", feature="load_parquet_log")
    spec = _layout(layout)
    files = list_files(path, "parquet")
    for f in files:
        check_columns(column_names(f, "parquet"), spec.expected, f"{f!r} ({spec.name} layout)")
    return read_log(files, "parquet", spec.columns, where=_where(path), nrows=nrows, types=spec.types())


#: The paper's layouts (``--format`` of the command line), by name.
LAYOUTS: dict[str, Layout] = {
    "aliexpress": Layout(
        "processed AliExpress",
        ALIEXPRESS_COLUMNS,
        LogColumns.of(
            click="click",
            conversion="conversion",
            group="search_id",
            features=ALIEXPRESS_CATEGORICAL + ALIEXPRESS_NUMERICAL,
            categorical=ALIEXPRESS_CATEGORICAL,
        ),
    ),
    "ali-ccp": Layout(
        "torch-rechub processed Ali-CCP",
        ALI_CCP_COLUMNS,
        LogColumns.of(
            click="click",
            conversion="purchase",
            group=ALI_CCP_GROUP,
            features=ALI_CCP_SPARSE + ALI_CCP_DENSE,
            categorical=ALI_CCP_SPARSE,
        ),
    ),
}
