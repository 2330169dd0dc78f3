"""The one data-source module: finding a log's files, checking their columns and group layout, reading shards.

Every path that reads a log from files uses these functions — the loaders
(:func:`~gbdt_pwiser.datasets.load_parquet_log`, the CSV loaders),
:class:`~gbdt_pwiser.datasets.ParquetLog` (the out-of-core engine reads its
shards through it), the Dask engine and the command line — so a folder, a glob
and a list of files are understood the same way everywhere, and a bad file is
reported the same way, naming the file (and the column or group).

* :func:`list_files` — the data files of a file, a folder (searched
  recursively), a glob or a list.
* :func:`list_log_files` — the same, for a log that may be CSV or Parquet: the files and their kind.
* :func:`read_schema`, :func:`read_table` — Parquet I/O whose errors name the file.
* :func:`column_names`, :func:`read_csv`, :func:`read_files` — the one reader of a log's files, CSV or
  Parquet, with inferred or fixed column types and a row limit.
* :func:`check_columns` — required columns present (the error names the closest existing one).
* :func:`group_runs`, :func:`check_shard_groups`, :func:`group_starts` — group layout.
* :func:`numeric_matrix` — the numeric feature columns of an Arrow table as one float32 array.

Failures that callers react to are typed (:mod:`gbdt_pwiser.exceptions`):
:class:`~gbdt_pwiser.exceptions.GroupLayoutError`,
:class:`~gbdt_pwiser.exceptions.DataSourceError` and
:class:`~gbdt_pwiser.exceptions.ColumnError`, all ``ValueError`` subclasses.
"""

from __future__ import annotations

import csv
import difflib
import glob
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import ColumnError, DataSourceError, GroupLayoutError

__all__ = [
    "PARQUET_SUFFIXES",
    "CSV_SUFFIXES",
    "list_files",
    "list_log_files",
    "is_parquet",
    "read_schema",
    "read_table",
    "column_names",
    "read_csv",
    "read_files",
    "cast_columns",
    "check_columns",
    "closest",
    "group_runs",
    "check_shard_groups",
    "group_starts",
    "numeric_matrix",
]

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
#: CSV files, plain or compressed (pyarrow detects the compression from the extension)
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.lz4", ".tsv")

_KINDS = {"parquet": PARQUET_SUFFIXES, "csv": CSV_SUFFIXES}
_NAMES = {"parquet": "Parquet", "csv": "CSV"}


def _fspath(path: Any) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str, an os.PathLike or a list of them, got {type(path).__name__}") from None


def list_files(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], kind: str = "parquet") -> list[str]:
    """The data files of ``path``, in sorted order.

    Parameters
    ----------
    path : str, path-like, or list of them
        One file; a folder (searched recursively for files with the ``kind``'s
        suffixes; hidden files and folders, such as ``.xgb-cache``, are
        skipped); a glob pattern (``**`` matches across folders); or a list of
        files, kept in its order.
    kind : {"parquet", "csv"}
        What a folder is searched for: ``.parquet``/``.parq``/``.pq`` files, or
        ``.csv``/``.tsv`` files (optionally compressed: ``.csv.gz``...).

    Returns
    -------
    list of str

    Raises
    ------
    FileNotFoundError
        ``path`` (not a glob) does not exist, or a listed file does not.
    ValueError
        A glob that matches no file, a folder without files of the kind, an empty list.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gbdt_pwiser.datasets.sources import list_files
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in ("day=2/b.parquet", "day=1/a.parquet", "notes.txt"):
    ...         f = pathlib.Path(d, name)
    ...         f.parent.mkdir(exist_ok=True)
    ...         f.touch()
    ...     [pathlib.Path(f).relative_to(d).as_posix() for f in list_files(d)]
    ['day=1/a.parquet', 'day=2/b.parquet']
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    suffixes, label = _KINDS[kind], _NAMES[kind]
    if isinstance(path, (list, tuple)):
        files = [_fspath(p) for p in path]
        if not files:
            raise ValueError("the list of files is empty")
        for f in files:
            if not os.path.isfile(f):
                raise FileNotFoundError(f"no such file: {f!r}")
        return files
    p = _fspath(path)
    if glob.has_magic(p):
        files = sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f))
        if not files:
            raise ValueError(f"no file matches the glob {p!r} (no {label} files)")
        return files
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such file or folder: {p!r}")
    if os.path.isdir(p):
        files = []
        for root, dirs, names in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
            files.extend(
                os.path.join(root, n) for n in names if n.lower().endswith(suffixes) and not n.startswith((".", "_"))
            )
        if not files:
            raise ValueError(
                f"no {label} files in {p!r}: the folder holds no {suffixes[0]} files "
                f"(searched recursively for {', '.join('*' + s for s in suffixes)})"
            )
        return sorted(files)
    return [p]


def is_parquet(path: Any) -> bool:
    """Whether ``path`` names Parquet data (a folder, a glob, a list or a Parquet file) rather than a CSV file."""
    if isinstance(path, (list, tuple)):
        return bool(path) and all(is_parquet(p) for p in path)
    p = _fspath(path)
    if p.lower().endswith(CSV_SUFFIXES):
        return False
    return glob.has_magic(p) or os.path.isdir(p) or p.lower().endswith(PARQUET_SUFFIXES)


def list_log_files(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> tuple[list[str], str]:
    """The files of a log that may be CSV or Parquet, and their kind (``"csv"`` or ``"parquet"``).

    A file is Parquet by its suffix (``.parquet``/``.parq``/``.pq``), else CSV;
    a folder holds one kind (searched recursively, as :func:`list_files`); a
    glob or a list must match files of one kind.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gbdt_pwiser.datasets.sources import list_log_files
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in ("b.csv", "a.csv.gz"):
    ...         pathlib.Path(d, name).touch()
    ...     files, kind = list_log_files(d)
    ...     [pathlib.Path(f).name for f in files], kind
    (['a.csv.gz', 'b.csv'], 'csv')
    """

    def kind_of(f: str) -> str:
        return "parquet" if f.lower().endswith(PARQUET_SUFFIXES) else "csv"

    if isinstance(path, (list, tuple)) or glob.has_magic(_fspath(path)):
        files = (
            list_files(path, "parquet")
            if isinstance(path, (list, tuple))
            else sorted(f for f in glob.glob(_fspath(path), recursive=True) if os.path.isfile(f))
        )
        if not files:
            return list_files(path, "parquet"), "parquet"  # the glob's own error
        kinds = {kind_of(f) for f in files}
        if len(kinds) > 1:
            raise ValueError(
                f"{_fspath(path) if not isinstance(path, (list, tuple)) else 'the list'} holds both "
                "CSV and Parquet files: give one kind"
            )
        return files, kinds.pop()
    p = _fspath(path)
    if os.path.isdir(p):
        found = {}
        for kind in _KINDS:
            try:
                found[kind] = list_files(p, kind)
            except ValueError:
                continue
        if len(found) > 1:
            raise ValueError(f"the folder {p!r} holds both CSV and Parquet files: give one kind (a glob selects them)")
        if not found:
            raise ValueError(
                f"the folder {p!r} holds no CSV or Parquet files (searched recursively for "
                f"{', '.join('*' + s for s in PARQUET_SUFFIXES + CSV_SUFFIXES)})"
            )
        kind, files = found.popitem()
        return files, kind
    files = list_files(p, "parquet")
    return files, kind_of(files[0])


def _unreadable(file: str, exc: Exception) -> DataSourceError:
    return DataSourceError(f"shard {file!r} is not a readable Parquet file ({type(exc).__name__}: {exc})", file)


def read_schema(file: str) -> Any:
    """The Arrow schema of a Parquet file; a :class:`DataSourceError` naming the file if it cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(file)
    except (OSError, pa.ArrowException) as exc:  # not Parquet, truncated, unreadable
        raise _unreadable(file, exc) from exc


def read_table(file: str, columns: Sequence[str]) -> Any:
    """Columns of a Parquet file as an Arrow table; errors name the file (and a missing or doubled column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_columns(read_schema(file).names, columns, f"shard {file!r}")
    try:
        return pq.read_table(file, columns=list(columns))
    except (OSError, pa.ArrowException) as exc:  # a damaged page
        raise _unreadable(file, exc) from exc


def csv_header(path: str) -> list[str]:
    """The column names of a (possibly compressed, by extension) CSV file: its first line, parsed."""
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
        raise DataSourceError(f"cannot read {path!r}: {e}", path) from e
    line = buf.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataSourceError(f"{path!r} is not a UTF-8 text CSV file", path) from None
    if not text.strip():
        raise DataSourceError(f"{path!r} is empty or has no header line", path)
    return next(csv.reader([text]))


def column_names(file: str, kind: str) -> list[str]:
    """The columns of one file of a log: a Parquet file's schema, or a CSV file's header."""
    if kind == "parquet":
        return [c for c in read_schema(file).names if not c.startswith("__index_level_")]
    return csv_header(file)


def read_csv(
    path: str, columns: Sequence[str] | None = None, types: dict[str, Any] | None = None, nrows: int | None = None
) -> Any:
    """The ``columns`` (default all) of a CSV file as an Arrow table, with pyarrow's multithreaded reader.

    ``types`` fixes the Arrow type of some columns (the others are inferred);
    ``nrows`` streams only the first rows. A cell that does not parse is a
    :class:`DataSourceError` naming the file and the column.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(
        column_types=dict(types or {}), include_columns=None if columns is None else list(columns)
    )
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
        header = csv_header(path) if hit else []
        if hit and int(hit.group(1)) < len(header):
            msg = f"column {header[int(hit.group(1))]!r}: {msg}"
        raise DataSourceError(f"cannot parse {path!r} with the expected column types: {msg}", path) from e
    except (OSError, pa.ArrowException) as e:
        raise DataSourceError(f"cannot read {path!r}: {e}", path) from e
    return table


def cast_columns(table: Any, file: str, types: dict[str, Any]) -> Any:
    """``table`` with the columns of ``types`` cast safely: a lossy cast is an error naming the file and column."""
    import pyarrow as pa

    for c, t in types.items():
        if c not in table.column_names or table.schema.field(c).type == t:
            continue
        col = table.column(c)
        try:
            cast = col.cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise DataSourceError(f"{file!r}: column {c!r} ({col.type}) cannot be read as {t}: {exc}", file) from exc
        table = table.set_column(table.column_names.index(c), c, cast)
    return table


def read_files(
    files: Sequence[str],
    kind: str,
    columns: Sequence[str],
    types: dict[str, Any] | None = None,
    nrows: int | None = None,
    complete: Sequence[str] = (),
) -> Any:
    """The ``columns`` of a log's files (in order) as one Arrow table; at most ``nrows`` rows.

    CSV cells are parsed by pyarrow (types inferred, or fixed by ``types``);
    Parquet columns keep their stored types, or are cast safely to ``types``
    (a fraction in an integer column, text that is not a number: a
    :class:`DataSourceError` naming the file and the column). Files whose
    types of a column differ are unified where no value changes (int64 and
    double give double); otherwise the error names the column. A missing
    value in a ``complete`` column (labels, group) is an error naming the file.
    """
    import pyarrow as pa

    tables: list[Any] = []
    got = 0
    for f in files:
        if tables and nrows is not None and got >= nrows:
            break
        left = None if nrows is None else nrows - got
        if kind == "parquet":
            t = cast_columns(read_table(f, columns), f, dict(types or {}))
            t = t if left is None else t.slice(0, left)
        else:
            check_columns(csv_header(f), columns, repr(f))
            t = read_csv(f, columns, types, left).select(list(columns))
        for c in complete:
            if t.column(c).null_count:
                raise DataSourceError(f"{f!r}: column {c!r} has {t.column(c).null_count} missing value(s)", f)
        tables.append(t)
        got += t.num_rows
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataSourceError(
            f"the files of the log disagree on a column's type ({exc}); "
            f"files: {list(files)[:3]}{' ...' if len(files) > 3 else ''}"
        ) from exc


def closest(name: str, names: Sequence[str]) -> str | None:
    """The existing column name closest to a misspelt ``name`` (``None`` when nothing is close).

    Examples
    --------
    >>> from gbdt_pwiser.datasets.sources import closest
    >>> closest("clicks", ["click", "conversion", "search_id"])
    'click'
    """
    hits = difflib.get_close_matches(name, [str(n) for n in names], n=1, cutoff=0.6)
    if not hits:
        lower = {str(n).lower(): str(n) for n in names}
        return lower.get(name.lower())
    return hits[0]


def check_columns(available: Sequence[str], needed: Sequence[str], where: str) -> None:
    """Every ``needed`` column must be in ``available``: a :class:`ColumnError` naming the first missing one.

    ``where`` names the data (``"shard 'a.parquet'"``, ``"'log.csv'"``); the
    message proposes the closest existing column name and lists every missing
    one. A needed column present twice is an error too.
    """
    have = list(available)
    missing = [c for c in needed if c not in have]
    if not missing:
        twice = [c for c in dict.fromkeys(needed) if have.count(c) > 1]
        if twice:
            raise ColumnError(f"{where} has {have.count(twice[0])} columns named {twice[0]!r}", str(twice[0]), where)
        return
    c = missing[0]
    near = closest(str(c), have)
    hint = f"; did you mean {near!r}?" if near is not None else ""
    more = f"; missing columns {missing}" if len(missing) > 1 else ""
    shown = have if len(have) <= 12 else [*have[:12], f"... {len(have) - 12} more"]
    raise ColumnError(f"{where} has no column {c!r}{hint}{more} (its columns: {shown})", str(c), where)


# --------------------------------------------------------------------------- group layout


def group_runs(g: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Boundaries of the runs of equal group ids, and each run's id.

    Raises
    ------
    GroupLayoutError
        A group's rows are not contiguous (its id comes back after other groups).
    ValueError
        Missing (NaN/None) group ids.
    """
    import pandas as pd

    g = np.asarray(g)
    if g.dtype.kind in "fOmM" and pd.isna(g).any():  # integer ids cannot be missing
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
        raise GroupLayoutError(
            f"{where}: the rows of a group are not contiguous (group {again!r} comes back "
            "after other groups); sort it by group "
            "(gbdt_pwiser.dask.partition_by_group does this for dask partitions)",
            again,
            where,
        )
    return np.append(starts, n), heads


def check_shard_groups(heads: Sequence[np.ndarray], shards: Sequence[str]) -> None:
    """Each group must lie whole in one shard: ``heads[i]`` are the group ids of shard ``shards[i]``.

    A group id met in two shards is a :class:`GroupLayoutError` naming the
    group and both shards (each shard's own rows are checked by :func:`group_runs`).
    """
    import pandas as pd

    if not heads:
        return
    sizes = [h.size for h in heads]
    allids = (
        np.concatenate([np.asarray(h, dtype=object) for h in heads])
        if any(h.dtype == object for h in heads)
        else np.concatenate(heads)
    )
    codes, _ = pd.factorize(allids)
    if np.unique(codes).size == codes.size:
        return
    dup = pd.Series(codes).duplicated(keep=False).to_numpy()
    first = np.flatnonzero(dup)[0]
    gid = allids[first]
    gid = gid.item() if isinstance(gid, np.generic) else gid
    shard_of = np.repeat(np.arange(len(shards)), sizes)
    where = sorted(set(shard_of[dup & (codes == codes[first])].tolist()))
    names = " and ".join(repr(shards[i]) for i in where[:2])
    raise GroupLayoutError(
        f"group {gid!r} occurs in shards {names}: a group id in more than one shard; "
        "every group must lie whole in one Parquet shard (write the shards partitioned by "
        "group)",
        gid,
        names,
    )


def group_starts(ptr: np.ndarray, n: int) -> np.ndarray:
    """Per-row float32 flags: 1 on the first row of each group, 0 elsewhere."""
    flags = np.zeros(n, dtype=np.float32)
    flags[np.asarray(ptr[:-1], dtype=np.int64)[np.diff(ptr) > 0]] = 1.0
    return flags


# --------------------------------------------------------------------------- features


def numeric_matrix(table: Any, features: Sequence[str]) -> tuple[np.ndarray, list[str]] | None:
    """The feature columns of an Arrow table as one float32 ``(n, d)`` array, when all are numeric or bool.

    Returns ``(matrix, XGBoost feature types)`` — NaN for nulls; the types
    pandas columns would get (``int``, ``float``, ``i`` for bool) — or
    ``None`` when a column is of another type.
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
            return None
    out = np.empty((table.num_rows, len(features)), dtype=np.float32)  # one copy of the shard
    for j, c in enumerate(features):
        # nulls become NaN; unsafe: ints beyond 2**24 round as XGBoost's own float32 conversion does
        out[:, j] = table.column(c).cast(pa.float32(), safe=False).to_numpy(zero_copy_only=False)
    return out, kinds
