"""The columns of an exposure log — labels, group, weight, features — and the one conversion of what was read.

Every reader of a log from files names the roles of its columns with a
:class:`LogColumns` and converts the Arrow columns it read with
:func:`convert`: :func:`~gbdt_pwiser.datasets.load_log` (a user's own CSV or
Parquet log), the loaders of the paper's layouts, and
:class:`~gbdt_pwiser.datasets.ParquetLog` (out-of-core shards, Dask
partitions). So a column is accepted, refused and typed the same way
whichever path reads it.

Rules
-----
* **Labels**: ``click`` and ``conversion`` columns of 0/1, bool or integers
  (0/1 only); or one funnel-label column ``label`` (0, 1, 2). Missing values,
  other values and a conversion without a click are errors naming the column
  (and the number of rows).
* **Group**: any ids (integers, strings); missing ids are an error.
  **Weight**: non-negative numbers.
* **Features**: every other column, unless ``features`` lists them (the group
  column may be listed to be a feature too).
* **Categorical features**. With ``categorical=None`` they are inferred: text
  columns, bool columns and pandas ``category`` columns (Parquet dictionaries)
  become pandas ``category``; the inferred names are reported by an
  :class:`InferredCategoricalWarning`. An explicit ``categorical=[...]`` list
  wins: exactly those columns are categorical (integer ids included), no
  inference and no warning; a text column left out of it is an error.
  Categories are the sorted distinct values; a missing cell is a missing
  category (NaN).
* **Numerical features** become float32; missing cells stay NaN (the
  boosters' missing values). A column that is neither (dates, lists, binary)
  is a :class:`~gbdt_pwiser.exceptions.ColumnError` naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._labels import _funnel_label, as_funnel
from .._validation import check_weight
from ..exceptions import ColumnError
from .adlog import _int_codes_dtype
from .sources import check_columns

__all__ = [
    "InferredCategoricalWarning",
    "LogColumns",
    "Converted",
    "convert",
    "meta_values",
    "feature_frame",
    "categorical_features",
    "category_values",
    "category_union",
    "categorical_column",
    "feature_kind",
    "warn_inferred",
]


class InferredCategoricalWarning(UserWarning):
    """Feature columns read as categorical because of their type (text, bool, pandas ``category``).

    Raised (as a warning) by the readers when ``categorical`` is not given;
    its ``columns`` attribute lists them. Pass ``categorical=[...]`` to choose
    them yourself (no warning then), or filter the warning.
    """

    def __init__(self, message: str, columns: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.columns = list(columns)


def _names(value: Any, what: str, allow_none: bool = True) -> tuple[str, ...] | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{what} is required")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, pd.Index, np.ndarray)) or not all(isinstance(c, str) for c in items):
        raise TypeError(f"{what} must be a list of column names, got {value!r}")
    items = list(items)
    twice = sorted({c for c in items if items.count(c) > 1})
    if twice:
        raise ValueError(f"{what} lists columns {twice} more than once")
    return tuple(items)


def _name(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must name a column (a str), got {value!r}")
    return value


@dataclass(frozen=True)
class LogColumns:
    """The roles of a log's columns (see the module docstring for the rules).

    Build it with :meth:`of`, which checks the arguments: labels as ``click``
    and ``conversion`` or as one funnel-label ``label``; ``group``; optional
    ``weight``, ``features`` and ``categorical``. A column in two roles is a
    ``ValueError``.

    Examples
    --------
    >>> from gbdt_pwiser.datasets.columns import LogColumns
    >>> cols = LogColumns.of(click="clicked", conversion="booked", group="search_id")
    >>> cols.labels, cols.meta
    (['clicked', 'booked'], ['clicked', 'booked', 'search_id'])
    >>> cols.feature_names(["search_id", "price", "clicked", "booked", "country"], "'log.csv'")
    ['price', 'country']
    """

    group: str
    click: str | None = None
    conversion: str | None = None
    label: str | None = None
    weight: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        *,
        group: Any,
        click: Any = None,
        conversion: Any = None,
        label: Any = None,
        weight: Any = None,
        features: Any = None,
        categorical: Any = None,
    ) -> LogColumns:
        """Checked column roles (``TypeError``/``ValueError`` naming the argument)."""
        if not isinstance(group, str):
            raise TypeError(f"group must name the group-id column (a str), got {group!r}")
        click, conversion, label = _name(click, "click"), _name(conversion, "conversion"), _name(label, "label")
        if label is not None and (click is not None or conversion is not None):
            raise ValueError("give either label (a funnel-label column) or click and conversion, not both")
        if label is None and (click is None or conversion is None):
            missing = "conversion" if click is not None else "click"
            raise ValueError(
                f"{missing} is required: name the click and conversion columns (or one funnel-label column as label)"
            )
        out = cls(
            group,
            click,
            conversion,
            label,
            _name(weight, "weight"),
            _names(features, "features"),
            _names(categorical, "categorical"),
        )
        used = out.meta
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise ValueError(
                f"columns {twice} are given more than one role (click, conversion, label, group, "
                "weight): each needs its own column"
            )
        if out.features is not None:
            clash = [c for c in out.features if c in used and c != group]
            if clash:
                raise ValueError(f"columns {clash} are both features and labels/weight")
            if not out.features:
                raise ValueError("features is empty")
        return out

    @property
    def labels(self) -> list[str]:
        """``[label]`` or ``[click, conversion]``."""
        return [self.label] if self.label is not None else [self.click, self.conversion]  # type: ignore[list-item]

    @property
    def meta(self) -> list[str]:
        """Label, group and weight columns."""
        return self.labels + [self.group] + ([self.weight] if self.weight else [])

    def feature_names(self, available: Sequence[str], where: str) -> list[str]:
        """The feature columns, given the columns ``available`` in the data ``where`` names.

        Checks that every needed column exists (a :class:`~gbdt_pwiser.exceptions.ColumnError` with
        the closest existing name) and that ``categorical`` lists features.
        """
        names = [str(c) for c in available]
        if self.features is None:
            meta = set(self.meta)
            check_columns(names, self.meta, where)
            feats = [c for c in names if c not in meta and not c.startswith("__index_level_")]
            if not feats:
                raise ColumnError(
                    f"{where} has no feature column: its columns {names} are all label, group or weight columns",
                    "",
                    where,
                )
        else:
            feats = list(self.features)
            check_columns(names, self.needed(feats), where)
        if self.categorical is not None:
            check_columns(names, self.categorical, where)
            outside = [c for c in self.categorical if c not in feats]
            if outside:
                raise ValueError(f"categorical lists {outside}, which are not features (features: {feats})")
        return feats

    def needed(self, features: Sequence[str]) -> list[str]:
        """The columns to read: labels, group, weight and ``features`` (each once)."""
        return list(dict.fromkeys(self.meta + list(features)))


# --------------------------------------------------------------------------- conversion


def feature_kind(arrow_type: Any, explicit: bool, listed: bool) -> str:
    """``"category"``, ``"number"`` or ``"other"``: what a feature column of ``arrow_type`` becomes.

    ``explicit``: ``categorical`` was given, and ``listed``: the column is in it.
    """
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    textual = pa.types.is_string(t) or pa.types.is_large_string(t)
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
    if explicit:
        if listed:
            return "category" if textual or numeric or pa.types.is_boolean(t) else "other"
        return "number" if numeric or pa.types.is_boolean(t) else "other"
    if textual or pa.types.is_boolean(t) or pa.types.is_dictionary(arrow_type):
        return "category"
    return "number" if numeric else "other"


def _plain(col: Any) -> Any:
    import pyarrow as pa

    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


def _integral(col: Any, name: str, where: str) -> Any:
    """A float categorical column as int64 (its values must be whole numbers)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_floating(col.type):
        return col
    valid = pc.drop_null(col)
    vals = valid.to_numpy(zero_copy_only=False) if len(valid) else np.zeros(0)
    if not np.all(np.isfinite(vals)) or np.any(vals != np.round(vals)):
        raise ColumnError(
            f"{where}: categorical column {name!r} holds fractional or infinite numbers; "
            "categories must be whole numbers or text",
            name,
            where,
        )
    return col.cast(pa.int64())


def category_values(col: Any, name: str = "", where: str = "") -> np.ndarray:
    """The sorted distinct non-missing values of a categorical column (to fix categories across files)."""
    import pyarrow.compute as pc

    col = _integral(_plain(col), name, where)
    vals = pc.unique(pc.drop_null(col)).to_numpy(zero_copy_only=False)
    return np.sort(vals)


def category_union(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The sorted distinct values of the :func:`category_values` of several files (a log's categories)."""
    if not parts:
        return np.zeros(0)
    if any(p.dtype == object for p in parts):
        return np.sort(pd.unique(np.concatenate([np.asarray(p, dtype=object) for p in parts])))
    return np.sort(pd.unique(np.concatenate(parts)))


def _dense_int_categorical(values: np.ndarray, missing: np.ndarray | None) -> pd.Categorical:
    """Integer array -> Categorical with sorted integer categories, in O(n) when the values are dense."""
    valid = values if missing is None else values[~missing]
    if valid.size == 0:
        return pd.Categorical.from_codes(
            np.full(values.shape, -1, dtype=np.int8), categories=pd.Index([], dtype=values.dtype)
        )
    lo, hi = int(valid.min()), int(valid.max())
    span = hi - lo + 1
    if span <= max(1 << 20, 2 * values.size):
        shifted = values.astype(np.int64) - lo
        if missing is not None:
            shifted[missing] = 0
        present = np.zeros(span, dtype=bool)
        present[shifted if missing is None else shifted[~missing]] = True
        cats = (np.flatnonzero(present) + lo).astype(values.dtype)
        codes = (np.cumsum(present) - 1).astype(_int_codes_dtype(cats.size))[shifted]
    else:
        cats, inv = np.unique(valid, return_inverse=True)
        codes_valid = inv.astype(_int_codes_dtype(cats.size))
        codes = codes_valid if missing is None else np.full(values.shape, -1, dtype=codes_valid.dtype)
        if missing is not None:
            codes[~missing] = codes_valid
    if missing is not None:
        codes[missing] = -1
    return pd.Categorical.from_codes(codes, categories=pd.Index(cats))


def categorical_column(col: Any, name: str, where: str, categories: Any = None) -> pd.Categorical:
    """An Arrow column (integers, text, bools, dictionary) as a pandas ``Categorical``.

    ``categories`` fixes the categories (values outside them become
    missing); default: the column's sorted distinct values.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    col = _integral(_plain(col), name, where)
    missing = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else None
    if categories is None and pa.types.is_integer(col.type):
        return _dense_int_categorical(
            pc.fill_null(col, 0).to_numpy() if missing is not None else col.to_numpy(), missing
        )
    values = col.to_numpy(zero_copy_only=False)
    if categories is None:
        categories = np.sort(pc.unique(pc.drop_null(col)).to_numpy(zero_copy_only=False))
    cats = pd.Index(categories)
    codes = cats.get_indexer(values)
    if missing is not None:
        codes[missing] = -1
    return pd.Categorical.from_codes(codes.astype(_int_codes_dtype(len(cats))), categories=cats)


def _group_values(col: Any, name: str, where: str) -> np.ndarray:
    import pyarrow as pa

    col = _plain(col)
    if col.null_count:
        raise ValueError(
            f"{where}: group column {name!r} has {col.null_count} missing value(s); every row needs a group id"
        )
    if pa.types.is_integer(col.type):
        return col.to_numpy().astype(np.int64, copy=False)
    values = col.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(col.type) and np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
        return values.astype(np.int64)
    return values


def _weight_values(col: Any, name: str, where: str) -> np.ndarray:
    import pyarrow as pa

    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        raise TypeError(f"{where}: weight column {name!r} has type {col.type}; weights must be numbers")
    values = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return check_weight(values, values.size, f"{where}: weight column {name!r}")


def _labels(cols: dict[str, Any], spec: LogColumns, where: str) -> np.ndarray:
    def values(name: str) -> np.ndarray:
        return _plain(cols[name]).to_numpy(zero_copy_only=False)

    if spec.label is not None:
        return as_funnel(values(spec.label), f"{where}: column {spec.label!r}")
    click, conversion = spec.click, spec.conversion
    assert click is not None and conversion is not None  # LogColumns.of: a label, or both of these
    return _funnel_label(
        values(click),
        values(conversion),
        (f"column {click!r}", f"column {conversion!r}"),
        f"{where}: ",
    )


@dataclass
class Converted:
    """What :func:`convert` returns: features, funnel labels, group ids, weights and the inferred categoricals."""

    X: pd.DataFrame
    y: np.ndarray
    group: np.ndarray
    weight: np.ndarray | None
    inferred: list[str]


def meta_values(cols: dict[str, Any], spec: LogColumns, where: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """Funnel labels (int8), group ids and weights (float64 or None) from the Arrow columns ``cols``."""
    y = _labels(cols, spec, where)
    group = _group_values(cols[spec.group], spec.group, where)
    weight = None if spec.weight is None else _weight_values(cols[spec.weight], spec.weight, where)
    return y, group, weight


def categorical_features(types: dict[str, Any], spec: LogColumns, where: str) -> list[str]:
    """The features (name -> Arrow type, in order) that are categorical; a column of another type is an error."""
    explicit = spec.categorical is not None
    listed = set(spec.categorical or ())
    out = []
    for c, t in types.items():
        kind = feature_kind(t, explicit, c in listed)
        if kind == "other":
            hint = (
                "list it in categorical= or leave it out of features="
                if explicit and feature_kind(t, True, True) == "category"
                else "leave it out with features= or convert it"
            )
            raise ColumnError(
                f"{where}: feature column {c!r} has type {t}, neither numeric nor categorical; {hint}", c, where
            )
        if kind == "category":
            out.append(c)
    return out


def feature_frame(
    cols: dict[str, Any],
    spec: LogColumns,
    features: Sequence[str],
    where: str,
    categories: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The features as a DataFrame (categorical ones ``category``, the others float32) and the categorical ones.

    ``cols`` loses each feature column once converted. ``categories`` fixes
    each categorical column's categories.
    """
    import pyarrow as pa

    cats = categorical_features({c: cols[c].type for c in features}, spec, where)
    data: dict[str, Any] = {}
    for c in features:
        col = cols.pop(c)
        if c in cats:
            data[c] = categorical_column(col, c, where, None if categories is None else categories.get(c))
        else:  # nulls become NaN; unsafe: ints beyond 2**24 round as the boosters' own float32 conversion does
            data[c] = col.cast(pa.float32(), safe=False).to_numpy(zero_copy_only=False)
        del col
    return pd.DataFrame(data, copy=False), cats


def convert(
    cols: dict[str, Any],
    spec: LogColumns,
    features: Sequence[str],
    where: str,
    categories: dict[str, Any] | None = None,
) -> Converted:
    """Convert the Arrow columns ``cols`` (name -> ChunkedArray) of a log by the rules of the module docstring.

    ``cols`` is emptied as it goes (each Arrow column released once
    converted). ``categories`` fixes each categorical column's categories
    (shards and partitions of one log must share them). ``where`` names the
    data in error messages.
    """
    y, group, weight = meta_values(cols, spec, where)
    for c in spec.meta:
        if c not in features:
            cols.pop(c, None)
    X, cats = feature_frame(cols, spec, features, where, categories)
    return Converted(X, y, group, weight, [] if spec.categorical is not None else cats)


def warn_inferred(inferred: Sequence[str], where: str, stacklevel: int = 3) -> None:
    """The :class:`InferredCategoricalWarning` of a read that inferred categorical columns (none: no warning)."""
    if inferred:
        shown = list(inferred) if len(inferred) <= 8 else [*inferred[:8], f"... {len(inferred) - 8} more"]
        warnings.warn(
            InferredCategoricalWarning(
                f"{where}: columns {shown} read as categorical (text, bool or category columns); "
                "pass categorical=[...] to choose them",
                inferred,
            ),
            stacklevel=stacklevel,
        )
