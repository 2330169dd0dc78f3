"""Group-whole partitions and the one pass of global statistics PWiseR needs on Dask.

PWiseR's pairs live inside groups, and its normalisers are global: the total
weight ``W = Σ w_i`` and the pair totals ``Σ_G W_P,G · W_C,G`` and
``Σ_G W_P,G · W_N,G``. When every group lies whole in one partition, each
partition's contribution to these sums is local, so one pass over the
partitions gives the exact global values (:func:`group_statistics`), and every
worker's objective can then be given them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..._labels import as_funnel
from ..._validation import check_no_inf, check_weight
from ...datasets.sources import group_runs
from ...exceptions import GroupLayoutError
from ...objectives.pwiser import prepare_data

__all__ = [
    "GlobalStats",
    "partition_by_group",
    "group_statistics",
    "partitions_of",
    "training_frame",
    "nonempty_partitions",
    "known_categories",
    "Y_COL",
    "G_COL",
    "W_COL",
]

_ROW_KEY, _HASH_KEY = "__gbdt_pwiser_row__", "__gbdt_pwiser_hash__"
#: Columns of :func:`training_frame` besides the features: funnel label, group id, row weight.
Y_COL, G_COL, W_COL = "__gbdt_pwiser_y__", "__gbdt_pwiser_group__", "__gbdt_pwiser_w__"


# --------------------------------------------------------------------------- collections


def _is_dask(obj: Any) -> bool:
    return hasattr(obj, "__dask_graph__") and hasattr(obj, "to_delayed")


def partitions_of(coll: Any, name: str) -> list:
    """Row partitions of a dask DataFrame/Series/Array as a list of ``Delayed``."""
    if not _is_dask(coll):
        raise TypeError(f"{name} must be a dask DataFrame, Series or Array, got {type(coll).__name__}")
    parts = coll.to_delayed()
    if isinstance(parts, np.ndarray):  # dask Array: one block per row chunk
        if parts.ndim == 2 and parts.shape[1] != 1:
            raise ValueError(
                f"{name} is chunked along its columns ({parts.shape[1]} column chunks); "
                "rechunk it to whole rows, e.g. arr.rechunk({1: -1})"
            )
        parts = list(parts.reshape(parts.shape[0], -1)[:, 0])
    return list(parts)


def _values(part: Any) -> np.ndarray:
    return np.asarray(part.to_numpy() if hasattr(part, "to_numpy") else part)


def _rows_like(coll: Any, name: str, npartitions: int) -> Any:
    """``coll`` as a dask DataFrame/Series, checked to have ``npartitions`` partitions.

    The count is the one the user sees (``npartitions``, or the row chunks of
    a dask Array), before dask's optimiser, which may merge the partitions of
    small Parquet files differently for different column selections. A dask
    Array becomes a Series/DataFrame with one partition per row chunk.
    """
    if coll is None:
        return None
    if not _is_dask(coll):
        raise TypeError(
            f"{name} must be a dask Series, DataFrame or Array partitioned like X, got {type(coll).__name__}"
        )
    import dask.array as da

    if not isinstance(coll, da.Array):
        n = int(coll.npartitions)
    else:  # one partition per row chunk
        import dask.dataframe as dd

        if coll.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D, got a {coll.ndim}-D dask Array")
        if coll.ndim == 2:
            coll = coll.rechunk({1: -1})
        n = int(coll.numblocks[0])
        coll = dd.from_dask_array(coll)
    if n != npartitions:
        raise ValueError(
            f"{name} has {n} partitions but X has {npartitions}: X, y, group and sample_weight "
            "must be partitioned alike"
        )
    return coll


def _assemble(X: pd.DataFrame, y: Any, g: Any, w: Any, partition_info: dict | None = None) -> pd.DataFrame:
    """One partition of :func:`training_frame`."""
    i = 0 if partition_info is None else int(partition_info["number"])
    for name, v in (("y", y), ("group", g), ("sample_weight", w)):
        if v is not None and len(v) != len(X):
            raise ValueError(
                f"partition {i} of {name} has {len(v)} rows but partition {i} of X has {len(X)}: "
                "X, y, group and sample_weight must be partitioned alike (select them from one "
                "dask DataFrame, or persist them first: dask's optimiser may merge the partitions "
                "of separately read Parquet files differently)"
            )
    check_no_inf(X, f"X (partition {i})")
    out = X.copy()
    out[Y_COL] = as_funnel(y, f"y (partition {i})").astype(np.int8)
    out[G_COL] = np.full(len(X), i, dtype=np.int64) if g is None else _values(g).reshape(-1)
    if w is not None:
        out[W_COL] = check_weight(_values(w).reshape(-1), len(X), f"sample_weight (partition {i})")
    return out


def known_categories(X: Any) -> Any:
    """``X`` with the categories of every ``category`` column known.

    ``dd.read_parquet`` of files written from pandas categoricals gives
    columns whose categories are unknown until read, and each partition then
    has its own: the boosters would see different codes on different workers.
    Such columns are made known with one pass over them
    (``X.categorize(columns=...)``), as a user would.
    """
    unknown = [c for c, t in X.dtypes.items() if isinstance(t, pd.CategoricalDtype) and not X[c].cat.known]
    return X.categorize(columns=unknown, index=False) if unknown else X


def training_frame(X: Any, y: Any, group: Any = None, sample_weight: Any = None) -> Any:
    """One dask DataFrame of the features of ``X``, the funnel label, the group id and the weight.

    The columns are those of ``X`` (their categories made known, see
    :func:`known_categories`), ``Y_COL`` (int8 funnel labels from funnel or
    ``[click, conversion]`` labels), ``G_COL`` (the group ids; the partition
    number when ``group`` is None) and ``W_COL`` (float64, with
    ``sample_weight``). They are assembled partition by partition in one
    graph, so dask's optimiser reads ``X``, ``y``, ``group`` and
    ``sample_weight`` selected from one frame alike (it may merge small
    Parquet files into fewer partitions when only some columns are read).
    ``y``, ``group`` and ``sample_weight`` may be dask Series, DataFrames or
    Arrays (one row chunk per partition of ``X``).

    Raises
    ------
    ValueError
        A collection with another number of partitions, or a partition with
        another number of rows (on the workers), or bad labels.
    """
    import dask.dataframe as dd

    X = known_categories(X)
    y, group, sample_weight = (
        _rows_like(c, name, X.npartitions) for c, name in ((y, "y"), (group, "group"), (sample_weight, "sample_weight"))
    )
    meta = X._meta.assign(
        **{
            Y_COL: np.zeros(0, np.int8),
            G_COL: (np.zeros(0, np.int64) if group is None else _values(group._meta).reshape(-1)[:0]),
        }
    )
    if sample_weight is not None:
        meta[W_COL] = np.zeros(0, np.float64)
    return dd.map_partitions(_assemble, X, y, group, sample_weight, meta=meta, align_dataframes=False)


def _exact_key(ids: np.ndarray) -> np.ndarray:
    """int64 shuffle keys of integer ids: the id where float64 holds it exactly, else 53 bits of its hash."""
    ids = np.asarray(ids)
    exact = ids <= 2**53 if ids.dtype.kind == "u" else (ids >= -(2**53)) & (ids <= 2**53)
    key = np.where(exact, ids, 0).astype(np.int64)
    if not exact.all():
        key[~exact] = (pd.util.hash_array(ids[~exact]) >> np.uint64(11)).astype(np.int64)
    return key


def partition_by_group(df: Any, group: str, npartitions: int | None = None) -> Any:
    """Repartition a dask DataFrame so that every group lies whole in one partition.

    Rows are hash-shuffled on ``group`` (one shuffle, no global sort) and then
    sorted by group inside each partition; rows of a group keep their original
    order (partition, then position), so the result is the same whatever the
    order in which the shuffle delivers its pieces.

    Parameters
    ----------
    df : dask.dataframe.DataFrame
        The exposure log (features, labels, weights and the group column).
    group : str
        Name of the group-id column (request, session, user...).
    npartitions : int, optional
        Number of output partitions (default: as many as ``df`` has).

    Returns
    -------
    dask.dataframe.DataFrame
        Same rows and columns; each group in exactly one partition, contiguous
        and sorted by ``group`` inside it.

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd
    >>> from gbdt_pwiser.dask import partition_by_group
    >>> pdf = pd.DataFrame({"g": [3, 1, 2, 1, 3, 2], "y": [2, 0, 1, 1, 0, 0]})
    >>> ddf = partition_by_group(dd.from_pandas(pdf, npartitions=3), "g", npartitions=2)
    >>> parts = [p for p in ddf.partitions]
    >>> sorted(int(v) for p in parts for v in p["g"].drop_duplicates().compute())
    [1, 2, 3]
    """
    if not (_is_dask(df) and hasattr(df, "columns")):
        raise TypeError(f"df must be a dask DataFrame, got {type(df).__name__}")
    if not isinstance(group, str) or group not in df.columns:
        raise ValueError(f"group must name a column of df, got {group!r}")
    for key in (_ROW_KEY, _HASH_KEY):
        if key in df.columns:
            raise ValueError(f"df already has a column named {key!r}")
    nparts = df.npartitions if npartitions is None else int(npartitions)
    if nparts < 1:
        raise ValueError(f"npartitions must be >= 1, got {npartitions!r}")

    # dask hashes numeric shuffle columns as float64, which maps integer ids beyond 2**53 (64-bit request
    # ids) to a few values: all rows would meet in a few partitions. Integer ids are shuffled on a key
    # that is the id where float64 holds it exactly (the same partitions as the id itself) and 53 bits
    # of pandas' hash of the id beyond; other ids on themselves.
    on = _HASH_KEY if pd.api.types.is_integer_dtype(df._meta[group].dtype) else group

    def add_key(part: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
        number = 0 if partition_info is None else int(partition_info["number"])
        keys = {_ROW_KEY: (np.int64(number) << np.int64(40)) + np.arange(len(part), dtype=np.int64)}
        if on == _HASH_KEY:
            keys[_HASH_KEY] = _exact_key(part[group].to_numpy())
        return part.assign(**keys)

    def sort_part(part: pd.DataFrame) -> pd.DataFrame:
        if part[group].isna().any():
            raise ValueError(f"group column {group!r} contains missing (NaN/None) group ids")
        return part.sort_values([group, _ROW_KEY], kind="stable").drop(
            columns=[_ROW_KEY] + ([_HASH_KEY] if on == _HASH_KEY else [])
        )

    meta = df._meta.assign(
        **{k: np.zeros(0, dtype=np.int64) for k in (_ROW_KEY, _HASH_KEY) if k == _ROW_KEY or on == _HASH_KEY}
    )
    keyed = df.map_partitions(add_key, meta=meta)
    shuffled = keyed.shuffle(on=on, npartitions=nparts)
    return shuffled.map_partitions(sort_part, meta=df._meta)


# --------------------------------------------------------------------------- statistics


@dataclass
class GlobalStats:
    """The global normalisers of PWiseR and the layout of the partitions.

    ``total_weight`` is ``W = Σ w_i`` (the row count without weights);
    ``pair_weight_c``/``pair_weight_n`` are ``Σ_G W_P,G·W_C,G`` and
    ``Σ_G W_P,G·W_N,G`` over all groups; ``click_weight`` and ``conversion_weight`` are the weighted click
    and conversion counts. ``rows``/``groups`` hold the row and group counts of each partition.
    """

    total_weight: float
    pair_weight_c: float
    pair_weight_n: float
    click_weight: float
    conversion_weight: float
    rows: np.ndarray
    groups: np.ndarray
    min_group: list = field(default_factory=list, repr=False)
    max_group: list = field(default_factory=list, repr=False)

    @property
    def n_rows(self) -> int:
        return int(self.rows.sum())

    @property
    def n_groups(self) -> int:
        return int(self.groups.sum())

    @property
    def npartitions(self) -> int:
        return int(self.rows.size)

    @property
    def initial_margin(self) -> float:
        """Log-odds of the global weighted click rate (as :func:`gbdt_pwiser.initial_margin`)."""
        rate = self.click_weight / self.total_weight if self.total_weight > 0 else 0.5
        rate = min(max(rate, 1e-6), 1.0 - 1e-6)
        return float(np.log(rate / (1.0 - rate)))

    def normalisers(self) -> dict[str, float]:
        """The three numbers every worker's objective needs."""
        return {
            "total_weight": self.total_weight,
            "pair_weight_c": self.pair_weight_c,
            "pair_weight_n": self.pair_weight_n,
        }

    def partitions(self, keep: np.ndarray) -> GlobalStats:
        """The statistics of partitions ``keep`` only (the totals must not change: drop empty ones)."""
        import dataclasses

        keep = np.asarray(keep, dtype=np.int64)
        return dataclasses.replace(
            self,
            rows=self.rows[keep],
            groups=self.groups[keep],
            min_group=[self.min_group[i] for i in keep] if self.min_group else [],
            max_group=[self.max_group[i] for i in keep] if self.max_group else [],
        )


def nonempty_partitions(frame: Any, lengths: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
    """``frame`` without its empty partitions, and the positions kept.

    LightGBM's Dask estimators fail on a worker whose partitions are all
    empty ("Input data must be 2 dimensional and non empty"); empty
    partitions add nothing to any sum. ``lengths`` (rows per partition) are
    computed when not given.
    """
    n = np.asarray(frame.map_partitions(len).compute() if lengths is None else lengths)
    keep = np.flatnonzero(n > 0)
    return (frame if keep.size == n.size else frame.partitions[[int(i) for i in keep]]), keep


def _labels_part(y: Any, i: int) -> np.ndarray:
    return as_funnel(y, f"y (partition {i})")


def _runs(g: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Group boundaries of partition ``i`` and each group's id (rows of a group must be contiguous)."""
    return group_runs(np.asarray(g).reshape(-1), f"group (partition {i})")


def _partition_stats(i: int, y: Any, g: Any, w: Any, nx: Any) -> dict[str, Any]:
    lab = _labels_part(y, i)
    n = lab.size
    if nx is not None and int(nx) != n:
        raise ValueError(
            f"partition {i} of X has {int(nx)} rows but partition {i} of y has {n}: "
            "X, y, group and sample_weight must be partitioned alike"
        )
    gv = np.asarray(g.to_numpy() if hasattr(g, "to_numpy") else g).reshape(-1)
    if gv.size != n:
        raise ValueError(
            f"partition {i} of group has {gv.size} rows but partition {i} of y has {n}: "
            "X, y, group and sample_weight must be partitioned alike"
        )
    wv = None
    if w is not None:
        wv = np.asarray(w.to_numpy() if hasattr(w, "to_numpy") else w, dtype=np.float64).reshape(-1)
        if wv.size != n:
            raise ValueError(
                f"partition {i} of sample_weight has {wv.size} rows but partition {i} of y "
                f"has {n}: X, y, group and sample_weight must be partitioned alike"
            )
        wv = check_weight(wv, n, f"sample_weight (partition {i})")
    ptr, heads = _runs(gv, i)
    data = prepare_data(lab, weight=wv, group_ptr=ptr)
    click = lab >= 1
    conv = lab == 2
    cw = float(click.sum()) if wv is None else float(np.dot(click, wv))
    vw = float(conv.sum()) if wv is None else float(np.dot(conv, wv))
    lo = hi = None
    if heads.size:
        try:  # the range of ids held (groups need not come sorted, only contiguous)
            lo, hi = min(heads), max(heads)
        except TypeError:  # ids of mixed, unordered types
            lo = hi = None
    return {
        "n": n,
        "W": data.total_weight,
        "pc": data.pair_weight_c,
        "pn": data.pair_weight_n,
        "cw": cw,
        "vw": vw,
        "G": ptr.size - 1,
        "min": lo,
        "max": hi,
    }


def _unique_groups(g: Any) -> pd.Series:
    arr = np.asarray(g.to_numpy() if hasattr(g, "to_numpy") else g).reshape(-1)
    return pd.Series(pd.unique(arr))


def _ranges_disjoint(stats: list[dict]) -> bool:
    """True when the partitions hold disjoint ranges of ids (then no group can straddle)."""
    spans = [(s["min"], s["max"]) for s in stats if s["G"] > 0]
    if any(lo is None for lo, _ in spans):
        return False
    try:
        spans.sort(key=lambda t: t[0])
        return all(spans[k][1] < spans[k + 1][0] for k in range(len(spans) - 1))
    except TypeError:  # ids of different types in different partitions
        return False


def _straddlers(gparts: list, group: Any) -> list:
    """Group ids that occur in more than one partition (a distributed count, no O(G) on the client)."""
    import dask.dataframe as dd
    from dask import delayed

    meta = pd.Series([], dtype=getattr(group, "dtype", object))
    uniq = dd.from_delayed([delayed(_unique_groups)(g) for g in gparts], meta=meta, verify_meta=False)
    counts = uniq.value_counts(split_out=max(1, len(gparts) // 4))
    bad = counts[counts > 1]
    return list(bad.head(3, npartitions=-1).index)


def group_statistics(
    y: Any, group: Any, sample_weight: Any = None, *, X: Any = None, check_groups: bool = True
) -> GlobalStats:
    """One pass over the partitions: PWiseR's global normalisers, with the layout checked.

    Parameters
    ----------
    y : dask Series/Array of funnel labels, or an (n, 2) click/conversion dask DataFrame/Array
    group : dask Series/Array of group ids
        Every group must lie whole in one partition, its rows contiguous.
    sample_weight : dask Series/Array, optional
    X : dask DataFrame/Array, optional
        Checked to have the same partitions (count and rows) as ``y``.
    check_groups : bool, default=True
        Verify that no group id occurs in two partitions. Cheap when the
        partitions hold disjoint ranges of sorted ids; otherwise a distributed
        count of the (partition, group) pairs. Skip it only for data from
        :func:`partition_by_group`.

    Returns
    -------
    GlobalStats

    Raises
    ------
    GroupLayoutError
        A group split across partitions or not contiguous in its partition
        (a ``ValueError``; :func:`partition_by_group` fixes the layout, and the
        Dask engine repartitions on it).
    ValueError
        Mismatched partitions, bad labels or weights (each naming the partition).
    """
    import dask

    yp = partitions_of(y, "y")
    gp = partitions_of(group, "group")
    wp = partitions_of(sample_weight, "sample_weight") if sample_weight is not None else [None] * len(yp)
    xp = partitions_of(X, "X") if X is not None else [None] * len(yp)
    for name, parted in (("group", gp), ("sample_weight", wp), ("X", xp)):
        if len(parted) != len(yp):
            raise ValueError(
                f"{name} has {len(parted)} partitions but y has {len(yp)}: "
                "X, y, group and sample_weight must be partitioned alike"
            )
    nx = [dask.delayed(len)(p) if p is not None else None for p in xp]
    tasks = [dask.delayed(_partition_stats)(i, yp[i], gp[i], wp[i], nx[i]) for i in range(len(yp))]
    parts = list(dask.compute(*tasks))
    if check_groups and len(parts) > 1 and not _ranges_disjoint(parts):
        bad = _straddlers(gp, group)
        if bad:
            raise GroupLayoutError(
                f"groups straddle partitions (e.g. {bad!r}): every group must lie whole in one partition; "
                "use gbdt_pwiser.dask.partition_by_group (or let fit repartition)",
                bad[0],
                "partitions",
            )
    stats = GlobalStats(
        total_weight=float(sum(p["W"] for p in parts)),
        pair_weight_c=float(sum(p["pc"] for p in parts)),
        pair_weight_n=float(sum(p["pn"] for p in parts)),
        click_weight=float(sum(p["cw"] for p in parts)),
        conversion_weight=float(sum(p["vw"] for p in parts)),
        rows=np.array([p["n"] for p in parts], dtype=np.int64),
        groups=np.array([p["G"] for p in parts], dtype=np.int64),
        min_group=[p["min"] for p in parts],
        max_group=[p["max"] for p in parts],
    )
    if stats.n_rows == 0:
        raise ValueError("y is empty")
    if not stats.total_weight > 0:
        raise ValueError("sample_weight sums to zero")
    return stats
