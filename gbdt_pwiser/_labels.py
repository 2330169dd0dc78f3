"""Funnel labels: one label column carrying click and conversion (SPEC §7)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["funnel_label", "split_funnel_label"]


def _as_binary(values: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
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
            f"{name} must contain only 0 and 1; found {arr[bad][0]!r} at index {int(np.flatnonzero(bad)[0])}"
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
    c = _as_binary(click, "click")
    v = _as_binary(conversion, "conversion")
    if c.shape[0] != v.shape[0]:
        raise ValueError(f"click and conversion have different lengths: {c.shape[0]} != {v.shape[0]}")
    bad = (v == 1) & (c == 0)
    if np.any(bad):
        idx = np.flatnonzero(bad)
        raise ValueError(
            f"conversion without a click at {idx.size} row(s) (first at index {int(idx[0])}); "
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
