"""Funnel labels: one label column carrying click and conversion (docs/mathematics.md §7)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["funnel_label", "split_funnel_label", "as_funnel"]


def _label_values(y: Any, name: str) -> np.ndarray:
    """The NumPy values of labels; missing entries (NaN, ``None``, ``pd.NA`` of nullable columns) are
    a ``ValueError`` saying how many and where."""
    arr = y.to_numpy() if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray) else np.asarray(y)
    missing = None
    if arr.dtype.kind == "O":
        import pandas as pd

        missing = np.asarray(pd.isna(arr))
    elif arr.dtype.kind == "f":
        missing = np.isnan(arr)
    if missing is not None and missing.any():
        first = np.argwhere(missing)[0]
        col = (
            ""
            if arr.ndim != 2
            else f", column {y.columns[first[1]]!r}"
            if hasattr(y, "columns")
            else f", column {int(first[1])}"
        )
        raise ValueError(
            f"{name} has {int(missing.sum())} missing value(s) (first at row {int(first[0])}{col}); "
            "labels must be complete: drop or fill those rows"
        )
    return arr


def _as_binary(values: npt.ArrayLike, name: str) -> np.ndarray:
    arr = _label_values(values, name)
    if arr.dtype.kind in "USO":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric 0/1 values, got dtype {arr.dtype}") from None
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int8)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric 0/1 values, got dtype {arr.dtype}")
    bad = (arr != 0) & (arr != 1)
    if np.any(bad):
        raise ValueError(
            f"{name} must contain only 0 and 1; found {arr[bad][0].item()!r} at index {int(np.flatnonzero(bad)[0])}"
        )
    return arr.astype(np.int8)


def funnel_label(click: npt.ArrayLike, conversion: npt.ArrayLike) -> np.ndarray:
    """Combine click and conversion labels into one funnel label.

    ``y = click + conversion``: 0 = no click, 1 = click without conversion,
    2 = conversion. A single label column carries both tasks through
    XGBoost's ``DMatrix``, LightGBM's ``Dataset`` and scikit-learn's ``y``.

    Parameters
    ----------
    click : array-like of shape (n,)
        1 if the exposure was clicked, else 0.
    conversion : array-like of shape (n,)
        1 if the exposure converted, else 0. A conversion requires a click.

    Returns
    -------
    y : ndarray of shape (n,), dtype int8
        Funnel labels in {0, 1, 2}.

    Raises
    ------
    ValueError
        If the lengths differ, a value is not 0/1, or a conversion has no click.

    Examples
    --------
    >>> from gbdt_pwiser import funnel_label
    >>> funnel_label([0, 1, 1], [0, 0, 1])
    array([0, 1, 2], dtype=int8)
    """
    return _funnel_label(click, conversion)


def _funnel_label(
    click: Any, conversion: Any, names: tuple[str, str] = ("click", "conversion"), where: str = ""
) -> np.ndarray:
    """:func:`funnel_label`; errors name the columns ``names``, prefixed by ``where``."""
    c = _as_binary(click, where + names[0])
    v = _as_binary(conversion, where + names[1])
    if c.shape[0] != v.shape[0]:
        raise ValueError(f"{where}{names[0]} and {names[1]} have different lengths: {c.shape[0]} != {v.shape[0]}")
    bad = (v == 1) & (c == 0)
    if np.any(bad):
        idx = np.flatnonzero(bad)
        raise ValueError(
            f"{where}conversion without a click at {idx.size} row(s) (first at index {int(idx[0])}); "
            "every conversion must also be a click"
        )
    return (c + v).astype(np.int8)


def split_funnel_label(y: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Split funnel labels into ``(click, conversion)`` int8 arrays.

    Examples
    --------
    >>> from gbdt_pwiser import split_funnel_label
    >>> split_funnel_label([0, 1, 2])
    (array([0, 1, 1], dtype=int8), array([0, 0, 1], dtype=int8))
    """
    from ._validation import check_labels

    lab = check_labels(y)
    return (lab >= 1).astype(np.int8), (lab == 2).astype(np.int8)


def as_funnel(y: Any, name: str = "y") -> np.ndarray:
    """Funnel labels from funnel labels ``(n,)`` or ``[click, conversion]`` of shape ``(n, 2)``.

    The one conversion every entry point uses: arrays, pandas objects and lists are
    accepted; an ``(n, 1)`` column is read as funnel labels (with a
    ``DataConversionWarning``, as scikit-learn does); anything else is a
    ``ValueError``/``TypeError`` that names ``name``.

    Examples
    --------
    >>> from gbdt_pwiser import as_funnel
    >>> as_funnel([[0, 0], [1, 0], [1, 1]])
    array([0, 1, 2], dtype=int8)
    """
    from ._validation import check_labels

    if y is None:
        raise ValueError(f"{name} is None; funnel labels (n,) or [click, conversion] (n, 2) are required")
    arr = _label_values(y, name)
    if arr.ndim == 2 and arr.shape[1] == 2:
        cols = (
            (f"column {y.columns[0]!r}", f"column {y.columns[1]!r}")
            if hasattr(y, "columns")
            else ("column 0 (click)", "column 1 (conversion)")
        )
        return _funnel_label(arr[:, 0], arr[:, 1], cols, f"{name}: ")
    if arr.ndim == 2 and arr.shape[1] == 1:
        import warnings

        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            f"A column-vector y was passed when a 1d array was expected; {name} is read as funnel labels.",
            DataConversionWarning,
            stacklevel=3,
        )
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be funnel labels of shape (n,) with values in {{0, 1, 2}} or "
            f"[click, conversion] of shape (n, 2); got shape {arr.shape}"
        )
    if arr.dtype.kind in "OUSV":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"Unknown label type: {name} must hold numeric funnel labels in {{0, 1, 2}} "
                f"(0 no click, 1 click only, 2 conversion), got dtype {arr.dtype}"
            ) from None
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.any(arr != np.round(arr)):
        raise ValueError(
            f"Unknown label type: {name} is continuous; it must hold funnel labels in "
            "{0, 1, 2} (0 no click, 1 click only, 2 conversion)"
        )
    return check_labels(arr, name=name)
