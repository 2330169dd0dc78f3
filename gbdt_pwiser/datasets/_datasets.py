"""Ad logs for CTR/CVR learning: loaders for the public data and a simulator.

* :func:`load_aliexpress` reads the processed AliExpress layout (MTReclib,
  torch-rechub, FuxiCTR): ``search_id``, ``categorical_1..16``,
  ``numerical_1..63``, ``click``, ``conversion``.
* :func:`load_ali_ccp` reads torch-rechub's processed Ali-CCP layout:
  ``click``, ``purchase``, 23 sparse fields named by their Ali-CCP field ids
  and 8 dense ``D…`` fields.
* :func:`make_ad_log` simulates a search-ad log in the AliExpress layout, with
  requests, position bias, Zipf-distributed ids, a latent purchase intent and
  accidental clicks that never convert: the noise that PWiseR is meant for.
* :func:`train_test_split_by_group` splits a log so that no request lands in
  both parts.

Every function returns an :class:`AdLog`: features ``X`` (categorical fields
as pandas ``category``, numerical ones as ``float32``), funnel labels ``y``
(``click + conversion`` in {0, 1, 2}, int8, see SPEC §7) and per-row group ids
``group`` (int64).

Nothing here downloads anything: the loaders read files that the user has.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import numbers
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._labels import funnel_label

__all__ = [
    "AdLog",
    "ALIEXPRESS_CATEGORICAL",
    "ALIEXPRESS_NUMERICAL",
    "ALIEXPRESS_COLUMNS",
    "ALI_CCP_SPARSE",
    "ALI_CCP_DENSE",
    "ALI_CCP_COLUMNS",
    "load_aliexpress",
    "load_ali_ccp",
    "make_ad_log",
    "train_test_split_by_group",
]

PathLike = str | os.PathLike

# --------------------------------------------------------------------------- schemas

ALIEXPRESS_CATEGORICAL: tuple[str, ...] = tuple(f"categorical_{k}" for k in range(1, 17))
ALIEXPRESS_NUMERICAL: tuple[str, ...] = tuple(f"numerical_{k}" for k in range(1, 64))
#: The 82 columns of the processed AliExpress CSV, in file order.
ALIEXPRESS_COLUMNS: tuple[str, ...] = (
    ("search_id",) + ALIEXPRESS_CATEGORICAL + ALIEXPRESS_NUMERICAL + ("click", "conversion")
)

ALI_CCP_SPARSE: tuple[str, ...] = (
    "101", "121", "122", "124", "125", "126", "127", "128", "129",
    "205", "206", "207", "210", "216", "508", "509", "702", "853", "301",
    "109_14", "110_14", "127_14", "150_14",
)  # fmt: skip
ALI_CCP_DENSE: tuple[str, ...] = (
    "D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853",
)  # fmt: skip
#: The 33 columns of torch-rechub's processed Ali-CCP CSV, in file order.
ALI_CCP_COLUMNS: tuple[str, ...] = ("click", "purchase") + ALI_CCP_SPARSE + ALI_CCP_DENSE
#: Ali-CCP field used as the group: the user id (the layout has no request id).
ALI_CCP_GROUP = "101"


# --------------------------------------------------------------------------- AdLog


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class AdLog:
    """An exposure log: features, funnel labels and group ids, row-aligned.

    Attributes
    ----------
    X : pandas.DataFrame of shape (n, d)
        Features. Categorical fields have pandas ``category`` dtype (integer
        categories), numerical fields ``float32``. The group column and the
        labels are not in ``X``.
    y : ndarray of shape (n,), int8
        Funnel labels ``click + conversion``: 0 no click, 1 click only,
        2 conversion.
    group : ndarray of shape (n,), int64
        Group id of each row (the request for AliExpress and the simulator,
        the user for Ali-CCP). Equal ids form one group; rows need not be
        sorted by group (see :meth:`sort_by_group`).
    truth : pandas.DataFrame or None
        Ground truth per row, only for simulated logs (see :func:`make_ad_log`);
        ``None`` for real data.

    Examples
    --------
    >>> from gbdt_pwiser.datasets import make_ad_log
    >>> log = make_ad_log(200, random_state=0)
    >>> log.X.shape[0] == log.y.shape[0] == log.group.shape[0] == len(log)
    True
    >>> bool(((log.click + log.conversion) == log.y).all())
    True
    """

    X: pd.DataFrame
    y: np.ndarray
    group: np.ndarray
    truth: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(self.X).__name__}")
        n = self.X.shape[0]
        y = np.asarray(self.y)
        group = np.asarray(self.group)
        if y.shape != (n,) or group.shape != (n,):
            raise ValueError(
                f"X, y and group must have the same number of rows: "
                f"{n}, {y.shape}, {group.shape}"
            )
        if self.truth is not None and self.truth.shape[0] != n:
            raise ValueError(f"truth has {self.truth.shape[0]} rows, X has {n}")
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "group", group)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        n = len(self)
        clicks = int(np.count_nonzero(self.y >= 1))
        conv = int(np.count_nonzero(self.y == 2))
        return (
            f"AdLog(n_rows={n}, n_groups={self.n_groups}, n_features={self.X.shape[1]}, "
            f"clicks={clicks}, conversions={conv})"
        )

    @property
    def click(self) -> np.ndarray:
        """Click labels (int8 0/1): ``y >= 1``."""
        return (self.y >= 1).astype(np.int8)

    @property
    def conversion(self) -> np.ndarray:
        """Conversion labels (int8 0/1): ``y == 2``."""
        return (self.y == 2).astype(np.int8)

    @property
    def n_groups(self) -> int:
        """Number of distinct group ids."""
        return int(np.unique(self.group).size)

    @property
    def categorical_columns(self) -> list[str]:
        """Names of the ``category`` columns of ``X``."""
        return [c for c, t in self.X.dtypes.items() if isinstance(t, pd.CategoricalDtype)]

    @property
    def numerical_columns(self) -> list[str]:
        """Names of the non-categorical columns of ``X``."""
        return [c for c, t in self.X.dtypes.items() if not isinstance(t, pd.CategoricalDtype)]

    def take(self, indices: npt.ArrayLike) -> AdLog:
        """Return the rows at ``indices`` (positions or a boolean mask) as a new log.

        The index of ``X`` is reset to ``0..m-1``; categories are kept.
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        X = self.X.iloc[idx].reset_index(drop=True)
        truth = None if self.truth is None else self.truth.iloc[idx].reset_index(drop=True)
        return AdLog(X=X, y=self.y[idx], group=self.group[idx], truth=truth)

    def sort_by_group(self) -> AdLog:
        """Return the log with rows sorted by group id (stable: order kept within a group).

        XGBoost's ``qid`` and LightGBM's ``group=sizes`` need each group's rows
        to be contiguous; use this, then :meth:`group_sizes`.
        """
        if self.group.size < 2 or bool(np.all(self.group[1:] >= self.group[:-1])):
            return self
        return self.take(np.argsort(self.group, kind="stable"))

    def group_sizes(self) -> np.ndarray:
        """Lengths of the runs of equal consecutive group ids (int64).

        This is LightGBM's ``group`` argument when the rows are sorted by group.

        Raises
        ------
        ValueError
            If a group id appears in two separate runs (rows not grouped).
        """
        g = self.group
        if g.size == 0:
            return np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        if starts.size != np.unique(g).size:
            raise ValueError("rows are not contiguous by group; call sort_by_group() first")
        return np.diff(np.r_[starts, g.size]).astype(np.int64)

    def align_categories(self, reference: AdLog | pd.DataFrame) -> AdLog:
        """Give every categorical column of ``X`` the categories of ``reference``.

        Loaders infer the categories of each file from its own values, so a
        training file and a test file read separately can have different
        category lists (and different integer codes). Aligning the test log to
        the training log makes the codes agree; values unseen in the
        reference become missing (NaN).
        """
        ref = reference.X if isinstance(reference, AdLog) else reference
        X = self.X.copy(deep=False)
        for col in self.categorical_columns:
            if col in ref.columns and isinstance(ref[col].dtype, pd.CategoricalDtype):
                X[col] = X[col].cat.set_categories(ref[col].cat.categories)
        return AdLog(X=X, y=self.y, group=self.group, truth=self.truth)

    def to_frame(
        self,
        *,
        group_column: str | None = "search_id",
        click_column: str = "click",
        conversion_column: str = "conversion",
    ) -> pd.DataFrame:
        """Return one DataFrame in the CSV layout: group column, ``X``, click, conversion.

        With the defaults this is the AliExpress layout, so
        ``log.to_frame().to_csv(path, index=False)`` writes a file that
        :func:`load_aliexpress` reads back. Pass ``group_column=None`` to leave
        the group out (e.g. for Ali-CCP, whose group is the feature ``101``).
        """
        cols: dict[str, Any] = {}
        if group_column is not None:
            cols[group_column] = self.group
        for c in self.X.columns:
            cols[c] = self.X[c]
        cols[click_column] = self.click
        cols[conversion_column] = self.conversion
        return pd.DataFrame(cols, index=self.X.index)


# --------------------------------------------------------------------------- loaders


def _check_nrows(nrows: int | None) -> int | None:
    if nrows is None:
        return None
    if isinstance(nrows, bool) or not isinstance(nrows, numbers.Integral) or nrows < 0:
        raise ValueError(f"nrows must be None or a non-negative integer, got {nrows!r}")
    return int(nrows)


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


def _read_header(path: str) -> list[str]:
    """First line of a (possibly compressed, by extension) CSV file, parsed."""
    import pyarrow as pa

    buf = b""
    try:
        with pa.input_stream(path) as f:  # compression detected from the extension
            while b"\n" not in buf:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                buf += chunk
    except (OSError, pa.ArrowException) as e:
        raise ValueError(f"cannot read {path!r}: {e}") from e
    line = buf.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path!r} is not a UTF-8 text CSV file") from None
    if not text.strip():
        raise ValueError(f"{path!r} is empty or has no header line")
    return next(csv.reader([text]))


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
            f"{path!r} does not have the {layout} layout ({len(expected)} columns): "
            + "; ".join(problems)
        )


def _read_columns(
    path: str, types: dict[str, Any], nrows: int | None, header: list[str] | None = None
) -> dict[str, Any]:
    """Read the named columns with fixed Arrow types; returns name -> ChunkedArray."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(column_types=types, include_columns=list(types))
    try:
        if nrows is None:
            table = pacsv.read_csv(path, convert_options=convert)
        else:
            reader = pacsv.open_csv(path, convert_options=convert)
            batches, got = [], 0
            while got < nrows:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                batches.append(batch)
                got += batch.num_rows
            reader.close()
            table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, nrows)
    except pa.ArrowInvalid as e:
        msg = str(e)
        hit = re.search(r"CSV column #(\d+)", msg)
        if hit and header is not None and int(hit.group(1)) < len(header):
            msg = f"column {header[int(hit.group(1))]!r}: {msg}"
        raise ValueError(f"cannot parse {path!r} with the expected column types: {msg}") from e
    except (OSError, pa.ArrowException) as e:
        raise ValueError(f"cannot read {path!r}: {e}") from e
    cols = {name: table.column(name) for name in types}
    del table
    return cols


def _no_nulls(path: str, name: str, col: Any) -> np.ndarray:
    if col.null_count:
        raise ValueError(f"{path!r}: column {name!r} has {col.null_count} missing value(s)")
    return col.to_numpy()


def _int_codes_dtype(n_categories: int) -> type[np.signedinteger]:
    for dt in (np.int8, np.int16, np.int32):
        if n_categories <= np.iinfo(dt).max:
            return dt
    return np.int64


def _categorical(values: np.ndarray, missing: np.ndarray | None = None) -> pd.Categorical:
    """Integer array -> Categorical with sorted integer categories, in O(n) when dense."""
    if missing is not None and missing.any():
        valid = values[~missing]
    else:
        missing = None
        valid = values
    if valid.size == 0:
        codes = np.full(values.shape, -1, dtype=np.int8)
        return pd.Categorical.from_codes(codes, categories=pd.Index([], dtype=values.dtype))
    lo, hi = int(valid.min()), int(valid.max())
    span = hi - lo + 1
    if span <= max(1 << 20, 2 * values.size):
        shifted = values.astype(np.int64) - lo
        if missing is not None:
            shifted[missing] = 0
        present = np.zeros(span, dtype=bool)
        present[shifted if missing is None else shifted[~missing]] = True
        cats = (np.flatnonzero(present) + lo).astype(values.dtype)
        lut = (np.cumsum(present) - 1).astype(_int_codes_dtype(cats.size))
        codes = lut[shifted]
    else:
        cats, inv = np.unique(valid, return_inverse=True)
        codes_valid = inv.astype(_int_codes_dtype(cats.size))
        if missing is None:
            codes = codes_valid
        else:
            codes = np.full(values.shape, -1, dtype=codes_valid.dtype)
            codes[~missing] = codes_valid
    if missing is not None:
        codes[missing] = -1
    return pd.Categorical.from_codes(codes, categories=pd.Index(cats))


def _to_categorical_column(col: Any) -> pd.Categorical:
    import pyarrow.compute as pc

    if col.null_count:
        missing = col.is_null().to_numpy(zero_copy_only=False)
        values = pc.fill_null(col, 0).to_numpy()
        return _categorical(values, missing)
    return _categorical(col.to_numpy())


def _load(
    path: PathLike,
    *,
    nrows: int | None,
    layout: str,
    expected: tuple[str, ...],
    group_col: str | None,
    click_col: str,
    conversion_col: str,
    categorical: tuple[str, ...],
    numerical: tuple[str, ...],
) -> AdLog:
    import pyarrow as pa

    nrows = _check_nrows(nrows)
    p = _check_file(path)
    header = _read_header(p)
    _check_schema(p, header, expected, layout)

    types: dict[str, Any] = {}
    for c in expected:
        if c in (click_col, conversion_col):
            types[c] = pa.int8()
        elif c == group_col:
            types[c] = pa.int64()
        elif c in categorical:
            types[c] = pa.int32()
        elif c in numerical:
            types[c] = pa.float32()
        else:  # pragma: no cover - the schemas above list every column
            raise AssertionError(f"column {c!r} has no type")
    cols = _read_columns(p, types, nrows, header)

    click = _no_nulls(p, click_col, cols.pop(click_col))
    conversion = _no_nulls(p, conversion_col, cols.pop(conversion_col))
    try:
        y = funnel_label(click, conversion)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{p!r}: {e}") from e
    del click, conversion

    if group_col is not None and group_col not in categorical:
        group = _no_nulls(p, group_col, cols.pop(group_col)).astype(np.int64, copy=False)
    else:
        group = None  # taken from a categorical feature below

    data: dict[str, Any] = {}
    for c in expected:
        if c not in cols:
            continue
        col = cols.pop(c)  # drop Arrow's copy as soon as the column is converted
        if c in categorical:
            if c == group_col:
                group = _no_nulls(p, c, col).astype(np.int64)
            data[c] = _to_categorical_column(col)
        else:
            data[c] = col.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        del col
    assert group is not None
    X = pd.DataFrame(data, copy=False)
    return AdLog(X=X, y=y, group=group)


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
    return _load(
        path,
        nrows=nrows,
        layout="processed AliExpress",
        expected=ALIEXPRESS_COLUMNS,
        group_col="search_id",
        click_col="click",
        conversion_col="conversion",
        categorical=ALIEXPRESS_CATEGORICAL,
        numerical=ALIEXPRESS_NUMERICAL,
    )


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
    return _load(
        path,
        nrows=nrows,
        layout="torch-rechub processed Ali-CCP",
        expected=ALI_CCP_COLUMNS,
        group_col=ALI_CCP_GROUP,
        click_col="click",
        conversion_col="purchase",
        categorical=ALI_CCP_SPARSE,
        numerical=ALI_CCP_DENSE,
    )


# --------------------------------------------------------------------------- simulator

#: Roles of the first categorical columns of :func:`make_ad_log` (later ones are noise).
SIM_CATEGORICAL_ROLES: tuple[str, ...] = (
    "user_segment", "query_category", "device", "item_id", "item_category", "shop",
)  # fmt: skip
#: Roles of the first numerical columns of :func:`make_ad_log` (later ones are noise).
SIM_NUMERICAL_ROLES: tuple[str, ...] = (
    "position", "user_purchase_history", "user_activity", "log_price",
    "item_rating", "item_ctr_history", "relevance", "thumbnail_appeal",
)  # fmt: skip

_CALIBRATION_ROWS = 1 << 18
_N_SEGMENTS = 50
_DEVICE_P = np.array([0.6, 0.25, 0.1, 0.05])
_DEVICE_ACCIDENTAL = np.array([0.5, -0.3, 0.0, -0.5])  # mobile app: fat fingers
_NOISE_VOCAB = (100, 10, 1000, 5)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))


def _solve_intercept(score: np.ndarray, target: float, factor: np.ndarray | None = None) -> float:
    """b such that mean(factor * sigmoid(score + b)) == target (bisection, deterministic)."""
    lo, hi = -40.0, 40.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        p = _sigmoid(score + mid)
        m = float(np.mean(p if factor is None else factor * p))
        if m < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _zipf(rng: np.random.Generator, vocab: int, a: float, size: int | tuple[int, ...]) -> np.ndarray:
    """Bounded Zipf: P(k) ∝ (k+1)^-a for k in 0..vocab-1."""
    w = np.arange(1, vocab + 1, dtype=np.float64) ** (-a)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    u = rng.random(size)
    return np.minimum(np.searchsorted(cdf, u, side="right"), vocab - 1)


def _check_real(name: str, value: Any, lo: float, hi: float, lo_open: bool, hi_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    ok_lo = v > lo if lo_open else v >= lo
    ok_hi = v < hi if hi_open else v <= hi
    if not (ok_lo and ok_hi):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return v


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def make_ad_log(
    n_requests: int = 20000,
    *,
    mean_request_size: float = 25.0,
    ctr: float = 0.025,
    cvr: float = 0.025,
    accidental_click_rate: float = 0.3,
    n_categorical: int = 8,
    n_numerical: int = 12,
    position_bias: float = 0.4,
    zipf_a: float = 1.1,
    n_items: int = 2000,
    n_item_categories: int = 20,
    category_match_rate: float = 0.6,
    intent_click_weight: float = 0.5,
    request_size_shape: float = 3.0,
    with_truth: bool = True,
    random_state: int | np.random.Generator | None = 0,
) -> AdLog:
    """Simulate a search-ad exposure log in the AliExpress layout.

    Each request (a search, the group) shows a list of items; the user may
    click some of them and buy some of the clicked ones. Clicks come from two
    mechanisms: **intent clicks**, driven by the user's latent purchase intent,
    the item's relevance, quality and appeal and by position, which may
    convert; and **accidental clicks**, driven by position, thumbnail appeal
    ("clickbait") and device only, which never convert. Accidental clicks are
    the label noise that PWiseR targets: they look like clicks, so the true
    click probability ranks conversions worse than a model that also knows
    which clicks convert (see *Ground truth* below).

    The whole simulation is vectorised NumPy and deterministic given
    ``random_state``. The intercepts of the three logits are solved by
    bisection on (the first 2**18 rows of) the generated log so that the
    *expected* CTR, CVR among clicks and accidental share match ``ctr``,
    ``cvr`` and ``accidental_click_rate``; the realised rates then differ by
    sampling noise only.

    Parameters
    ----------
    n_requests : int, default 20000
        Number of requests (groups). The number of rows is about
        ``n_requests * mean_request_size``.
    mean_request_size : float, default 25
        Mean number of exposures per request. Sizes are ``1 +
        NegativeBinomial`` with mean ``mean_request_size - 1`` and shape
        ``request_size_shape`` (standard deviation about 14 at the defaults).
    ctr : float, default 0.025
        Target overall click-through rate (clicks per exposure). AliExpress's
        five country logs have about 2 % (1.9–2.6 %).
    cvr : float, default 0.025
        Target conversion rate among clicks (AliExpress: about 2–3.6 %). Must
        be below ``1 - accidental_click_rate``.
    accidental_click_rate : float, default 0.3
        Target share of clicks that are accidental (never convert). 0 turns
        the mechanism off.
    n_categorical : int, default 8
        Number of ``categorical_k`` columns (the real data has 16). The first
        six have the roles, in order: user segment (request-level, 50 Zipf
        values, shifts purchase intent), query category (request-level), device
        (request-level, 4 values, changes the accidental-click rate), item id
        (``n_items``, Zipf within category, carries item quality and appeal),
        item category (matching the query makes an item relevant) and shop
        (``n_items // 10`` shops, shop trust drives conversion). Columns beyond
        six are Zipf noise with 100, 10, 1000 and 5 values in turn. With fewer
        than six columns the remaining roles still act but are unobserved.
    n_numerical : int, default 12
        Number of ``numerical_k`` columns (the real data has 63). The first
        eight have the roles, in order: position in the request (0 = top),
        user purchase history (noisy view of the request's intent), user
        activity (click propensity), log price (lowers conversion), item rating
        (noisy item quality), item historical CTR (noisy appeal and quality),
        query-item relevance (noisy), thumbnail appeal (noisy clickbait score).
        Columns beyond eight are noise (normal, uniform, log-normal, sparse
        zero-inflated, in turn). With fewer than eight columns the remaining
        roles still act but are unobserved.
    position_bias : float, default 0.4
        Intent-click log-odds fall by ``position_bias * log(1 + position)``;
        accidental clicks fall twice as fast, so they gather at the top.
    zipf_a : float, default 1.1
        Exponent of the bounded Zipf laws of item, category, shop, segment and
        noise ids: ``P(rank k) ∝ k ** -zipf_a``. 0 gives uniform ids.
    n_items : int, default 2000
        Number of items, rounded up to a multiple of ``n_item_categories``.
    n_item_categories : int, default 20
        Number of item (and query) categories.
    category_match_rate : float, default 0.6
        Probability that a shown item is in the query's category (otherwise the
        category is drawn from the Zipf law).
    intent_click_weight : float, default 0.5
        Weight of the request's purchase intent in the intent-click logit
        (its weight in the conversion logit is 1).
    request_size_shape : float, default 3
        Shape of the negative binomial of request sizes (larger: less spread).
    with_truth : bool, default True
        Attach the per-row ground truth as ``log.truth``.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    AdLog
        ``X``: ``categorical_1..n_categorical`` (``category``, integer
        categories ``0..vocab-1``, the same list in every log with the same
        settings) then ``numerical_1..n_numerical`` (float32). ``y``: funnel
        labels. ``group``: the request id ``0..n_requests-1`` (int64); rows are
        contiguous by request and ordered by position. ``truth`` (if
        ``with_truth``): float32 columns ``p_click`` (true click probability),
        ``p_conversion`` (P(conversion), i.e. true pCTCVR), ``p_cvr``
        (P(conversion | click)), ``p_intent_click``, ``p_accidental_click``
        and bool ``accidental`` (the click was accidental). Write it in the CSV
        layout with ``log.to_frame().to_csv(path, index=False)``.

    Notes
    -----
    Realised rates at the defaults (20000 requests, about 500k rows; seeds 0
    and 1): CTR 2.50 %, CVR among clicks 2.3–2.6 %, 30 % of clicks accidental,
    mean request size 25.0 (standard deviation 15), 1.3–1.5 % of requests hold
    a conversion. Every such request has another row (conversion × non-click
    pairs) and 60–70 % of them a click-only row too (conversion × click-only
    pairs). Simulating takes about 0.7 s per 500k rows.

    Ground truth at the defaults: the AUC of the true click probability
    against conversions (all exposures) is about 0.90, against 0.94 for the
    true conversion probability ``p_conversion``; among clicked rows the true
    click probability reaches about 0.68 against 0.85 for ``p_cvr``. Clicks
    alone are a diluted signal of conversions; ranking conversions above
    click-only and non-click rows is the information that closes the gap. The
    true click probability has a click AUC of about 0.79.

    Examples
    --------
    >>> from gbdt_pwiser.datasets import make_ad_log
    >>> log = make_ad_log(2000, random_state=0)
    >>> log.X.columns[:3].tolist()
    ['categorical_1', 'categorical_2', 'categorical_3']
    >>> log.X.shape[1]
    20
    >>> bool(0.015 < log.click.mean() < 0.035)
    True
    >>> sizes = log.group_sizes()
    >>> len(sizes), bool(20 < sizes.mean() < 30)
    (2000, True)
    >>> make_ad_log(2000, random_state=0).X.equals(log.X)
    True
    """
    n_requests = _check_int("n_requests", n_requests, 1)
    mean_request_size = _check_real("mean_request_size", mean_request_size, 1.0, math.inf, False, True)
    ctr = _check_real("ctr", ctr, 0.0, 1.0, True, True)
    cvr = _check_real("cvr", cvr, 0.0, 1.0, True, True)
    acc_rate = _check_real("accidental_click_rate", accidental_click_rate, 0.0, 1.0, False, True)
    if cvr >= 1.0 - acc_rate:
        raise ValueError(
            f"cvr ({cvr}) must be below 1 - accidental_click_rate ({1.0 - acc_rate}): "
            "accidental clicks never convert"
        )
    n_categorical = _check_int("n_categorical", n_categorical, 0)
    n_numerical = _check_int("n_numerical", n_numerical, 0)
    if n_categorical + n_numerical == 0:
        raise ValueError("n_categorical + n_numerical must be at least 1")
    position_bias = _check_real("position_bias", position_bias, 0.0, math.inf, False, True)
    zipf_a = _check_real("zipf_a", zipf_a, 0.0, math.inf, False, True)
    n_cat = _check_int("n_item_categories", n_item_categories, 1)
    n_items = _check_int("n_items", n_items, 1)
    match_rate = _check_real("category_match_rate", category_match_rate, 0.0, 1.0, False, False)
    intent_w = _check_real("intent_click_weight", intent_click_weight, -math.inf, math.inf, True, True)
    size_shape = _check_real("request_size_shape", request_size_shape, 0.0, math.inf, True, True)

    rng = np.random.default_rng(random_state)
    f64 = np.float64

    # ---- the world: items, shops, segments (independent of the requests)
    per_cat = -(-n_items // n_cat)
    n_items_eff = per_cat * n_cat
    n_shops = max(10, n_items_eff // 10)
    item_quality = rng.standard_normal(n_items_eff)
    item_appeal = rng.standard_normal(n_items_eff)
    cat_price = rng.normal(3.0, 0.7, n_cat)
    item_logprice_dev = rng.normal(0.0, 0.5, n_items_eff)  # deviation from the category's price
    item_shop = _zipf(rng, n_shops, zipf_a, n_items_eff)
    shop_trust = rng.normal(0.0, 0.5, n_shops)
    item_label = rng.permutation(n_items_eff)  # public id: no order by category or popularity
    item_rating = item_quality + rng.normal(0.0, 0.5, n_items_eff)
    item_ctr_hist = 0.7 * item_appeal + 0.3 * item_quality + rng.normal(0.0, 0.3, n_items_eff)
    item_thumb = item_appeal + rng.normal(0.0, 0.7, n_items_eff)
    segment_intent = rng.normal(0.0, 0.5, _N_SEGMENTS)

    # ---- requests
    m = mean_request_size - 1.0
    if m > 0:
        sizes = 1 + rng.negative_binomial(size_shape, size_shape / (size_shape + m), n_requests)
    else:
        sizes = np.ones(n_requests, dtype=np.int64)
    sizes = sizes.astype(np.int64)
    n = int(sizes.sum())
    starts = np.cumsum(sizes) - sizes
    req = np.repeat(np.arange(n_requests, dtype=np.int64), sizes)

    r_segment = _zipf(rng, _N_SEGMENTS, zipf_a, n_requests)
    r_query = _zipf(rng, n_cat, zipf_a, n_requests)
    r_device = np.minimum(np.searchsorted(np.cumsum(_DEVICE_P), rng.random(n_requests)), 3)
    r_intent = segment_intent[r_segment] + rng.standard_normal(n_requests)
    r_activity = rng.standard_normal(n_requests)
    r_history = 0.7 * r_intent + rng.normal(0.0, 0.7, n_requests)
    r_activity_obs = r_activity + rng.normal(0.0, 0.3, n_requests)

    # ---- exposures: which items, then the engine's ranking gives positions
    in_query = rng.random(n) < match_rate
    cat = np.where(in_query, r_query[req], _zipf(rng, n_cat, zipf_a, n))
    item = cat * per_cat + _zipf(rng, per_cat, zipf_a, n)
    match = (cat == r_query[req]).astype(f64)
    relevance = match + rng.normal(0.0, 0.5, n)
    engine = relevance + 0.3 * item_rating[item] + 0.3 * item_ctr_hist[item] + rng.standard_normal(n)
    order = np.lexsort((-engine, req))
    del engine, in_query
    cat, item, match, relevance = cat[order], item[order], match[order], relevance[order]
    pos = np.arange(n, dtype=np.int64) - starts[req]
    logpos = np.log1p(pos)

    # ---- click and conversion mechanisms
    q, a = item_quality[item], item_appeal[item]
    price_dev = item_logprice_dev[item]
    s_click = (
        0.8 * match + 0.4 * q + 0.6 * a + intent_w * r_intent[req] + 0.3 * r_activity[req]
        - position_bias * logpos - 0.2 * price_dev + rng.normal(0.0, 0.3, n)
    )  # fmt: skip
    s_acc = 0.8 * a + _DEVICE_ACCIDENTAL[r_device[req]] - 2.0 * position_bias * logpos
    s_conv = (
        r_intent[req] + 0.8 * q + shop_trust[item_shop[item]] + 0.4 * match
        - 0.5 * price_dev + rng.normal(0.0, 0.3, n)
    )  # fmt: skip
    del q, a

    cal = slice(0, min(n, _CALIBRATION_ROWS))
    p_int = _sigmoid(s_click + _solve_intercept(s_click[cal], ctr * (1.0 - acc_rate)))
    del s_click
    if acc_rate > 0:
        not_int = 1.0 - p_int
        p_acc = _sigmoid(s_acc + _solve_intercept(s_acc[cal], ctr * acc_rate, not_int[cal]))
        del not_int
    else:
        p_acc = np.zeros(n)
    del s_acc
    p_cv = _sigmoid(s_conv + _solve_intercept(s_conv[cal], ctr * cvr, p_int[cal]))
    del s_conv

    intent_click = rng.random(n) < p_int
    accidental = ~intent_click & (rng.random(n) < p_acc)
    conversion = intent_click & (rng.random(n) < p_cv)
    y = (intent_click | accidental).astype(np.int8) + conversion.astype(np.int8)

    # ---- observed features
    data: dict[str, Any] = {}
    n_noise_cat = 0
    for k in range(n_categorical):
        role = SIM_CATEGORICAL_ROLES[k] if k < len(SIM_CATEGORICAL_ROLES) else None
        if role == "user_segment":
            codes, vocab = r_segment[req], _N_SEGMENTS
        elif role == "query_category":
            codes, vocab = r_query[req], n_cat
        elif role == "device":
            codes, vocab = r_device[req], len(_DEVICE_P)
        elif role == "item_id":
            codes, vocab = item_label[item], n_items_eff
        elif role == "item_category":
            codes, vocab = cat, n_cat
        elif role == "shop":
            codes, vocab = item_shop[item], n_shops
        else:
            vocab = _NOISE_VOCAB[n_noise_cat % len(_NOISE_VOCAB)]
            codes = _zipf(rng, vocab, zipf_a, n)
            n_noise_cat += 1
        data[f"categorical_{k + 1}"] = pd.Categorical.from_codes(
            codes.astype(_int_codes_dtype(vocab)), categories=pd.RangeIndex(vocab)
        )
    n_noise_num = 0
    for k in range(n_numerical):
        role = SIM_NUMERICAL_ROLES[k] if k < len(SIM_NUMERICAL_ROLES) else None
        if role == "position":
            v = pos
        elif role == "user_purchase_history":
            v = r_history[req]
        elif role == "user_activity":
            v = r_activity_obs[req]
        elif role == "log_price":
            v = cat_price[cat] + price_dev
        elif role == "item_rating":
            v = item_rating[item]
        elif role == "item_ctr_history":
            v = item_ctr_hist[item]
        elif role == "relevance":
            v = relevance
        elif role == "thumbnail_appeal":
            v = item_thumb[item]
        else:
            kind = n_noise_num % 4
            if kind == 0:
                v = rng.standard_normal(n)
            elif kind == 1:
                v = rng.random(n)
            elif kind == 2:
                v = rng.lognormal(0.0, 1.0, n)
            else:
                v = np.where(rng.random(n) < 0.8, 0.0, rng.random(n))
            n_noise_num += 1
        data[f"numerical_{k + 1}"] = np.asarray(v, dtype=np.float32)
    X = pd.DataFrame(data, copy=False)

    truth = None
    if with_truth:
        p_click = p_int + (1.0 - p_int) * p_acc
        p_ctcvr = p_int * p_cv
        truth = pd.DataFrame(
            {
                "p_click": p_click.astype(np.float32),
                "p_conversion": p_ctcvr.astype(np.float32),
                "p_cvr": (p_ctcvr / p_click).astype(np.float32),
                "p_intent_click": p_int.astype(np.float32),
                "p_accidental_click": p_acc.astype(np.float32),
                "accidental": accidental,
            },
            copy=False,
        )
    return AdLog(X=X, y=y, group=req, truth=truth)


# --------------------------------------------------------------------------- splitting


def train_test_split_by_group(
    log: AdLog,
    test_size: float | int = 0.2,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[AdLog, AdLog]:
    """Split a log into train and test parts with no group in both.

    Groups (requests, users) are shuffled with ``numpy.random.default_rng
    (random_state)`` and a share of them goes to the test part; rows keep their
    original order inside each part.

    Parameters
    ----------
    log : AdLog
        The log to split.
    test_size : float or int, default 0.2
        A float in (0, 1): the share of **groups** in the test part (rounded up,
        so the row share is only approximately ``test_size``); an int: the
        number of test groups. Both parts always get at least one group.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the shuffle.

    Returns
    -------
    train, test : AdLog
        ``truth`` is split alongside when present.

    Raises
    ------
    ValueError
        If the log has fewer than 2 groups or ``test_size`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
    >>> log = make_ad_log(100, random_state=0)
    >>> train, test = train_test_split_by_group(log, test_size=0.25, random_state=0)
    >>> train.n_groups, test.n_groups
    (75, 25)
    >>> len(np.intersect1d(train.group, test.group))
    0
    >>> len(train) + len(test) == len(log)
    True
    """
    if not isinstance(log, AdLog):
        raise TypeError(f"log must be an AdLog, got {type(log).__name__}")
    uniq, inverse = np.unique(log.group, return_inverse=True)
    n_groups = uniq.size
    if n_groups < 2:
        raise ValueError(f"cannot split by group: the log has {n_groups} group(s), need at least 2")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise ValueError(f"test_size must be a float in (0, 1) or an int, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
        if not 1 <= n_test <= n_groups - 1:
            raise ValueError(f"test_size={n_test} groups must be between 1 and {n_groups - 1}")
    else:
        frac = float(test_size)
        if not 0.0 < frac < 1.0:
            raise ValueError(f"test_size must be in (0, 1) as a float, got {test_size!r}")
        n_test = min(max(int(math.ceil(frac * n_groups)), 1), n_groups - 1)
    rng = np.random.default_rng(random_state)
    is_test_group = np.zeros(n_groups, dtype=bool)
    is_test_group[rng.permutation(n_groups)[:n_test]] = True
    is_test = is_test_group[inverse.ravel()]
    return log.take(np.flatnonzero(~is_test)), log.take(np.flatnonzero(is_test))
