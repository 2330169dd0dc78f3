"""Categorical columns as ordinal codes, for boosters that refuse categorical features.

XGBoost 3.2's multi-output trees (``multi_strategy="multi_output_tree"``, the
shared CTR/CVR booster) stop with "Categorical features support for
multi-target tree is not yet implemented". The estimator keeps its pandas
``category`` interface and hands such a booster the category codes instead:
each category becomes its position in the categories seen at fit time (the
pandas code), as a float; missing values and categories unseen at fit time
become NaN, which the trees treat as missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["CategoricalCodes", "categorical_columns"]

#: float32 holds every integer code exactly up to 2**24 categories; float64 beyond.
_FLOAT32_MAX_LEVELS = 2**24


def categorical_columns(X: Any) -> list[Any]:
    """Names of the pandas ``category`` columns of ``X`` (empty for anything but a DataFrame)."""
    if not isinstance(X, pd.DataFrame):
        return []
    return [c for c, dt in X.dtypes.items() if isinstance(dt, pd.CategoricalDtype)]


def _codes(values: pd.Series, cats: pd.Index) -> np.ndarray:
    """Position of each value in ``cats``; -1 for missing or unseen values (any dtype)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        own = values.cat.codes.to_numpy()
        if values.cat.categories.equals(cats):
            return own
        lut = cats.get_indexer(values.cat.categories)  # the column's own levels, re-coded once
        return np.where(own >= 0, lut[own], -1)
    return cats.get_indexer(pd.Index(values))


class CategoricalCodes(TransformerMixin, BaseEstimator):
    """Replace the pandas ``category`` columns of a DataFrame by their codes (floats).

    ``fit`` records each categorical column's categories; ``transform`` maps
    values to their position in them (NaN for missing or unseen values) and
    leaves every other column, and the column order, as it is. Inputs that are
    not DataFrames (arrays, DMatrix-ready numbers) pass through unchanged.

    Attributes
    ----------
    categories_ : dict
        Column name → ``pandas.Index`` of the categories seen by ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from gbdt_pwiser.sklearn._encode import CategoricalCodes
    >>> X = pd.DataFrame({"shop": pd.Categorical(["b", "a", "b"]), "price": [1.0, 2.0, 3.0]})
    >>> enc = CategoricalCodes().fit(X)
    >>> enc.transform(X)["shop"].tolist()
    [1.0, 0.0, 1.0]
    >>> new = pd.DataFrame({"shop": pd.Categorical(["a", "c", None]), "price": [1.0, 2.0, 3.0]})
    >>> enc.transform(new)["shop"].tolist()  # unseen "c" and missing -> NaN
    [0.0, nan, nan]
    """

    def fit(self, X: Any, y: Any = None) -> CategoricalCodes:
        self.categories_ = {c: X[c].cat.categories for c in categorical_columns(X)}
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "categories_")
        if not self.categories_:
            return X
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"X must be a pandas DataFrame with the categorical columns seen in fit "
                f"({list(self.categories_)}), got {type(X).__name__}"
            )
        missing = [c for c in self.categories_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the categorical column(s) {missing} seen in fit")
        out = X.copy(deep=False)
        for col, cats in self.categories_.items():
            dtype = np.float32 if len(cats) <= _FLOAT32_MAX_LEVELS else np.float64
            codes = _codes(X[col], cats)
            out[col] = np.where(codes >= 0, codes, np.nan).astype(dtype)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
