"""Feature encoding of the neural baselines, built on scikit-learn's ``OrdinalEncoder`` and ``StandardScaler``.

This module needs no PyTorch: it turns a DataFrame into the two arrays the
networks read (category indices for the embeddings, standardised numerics).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

__all__ = ["FeatureEncoder"]

#: The index of values unseen at fit time and of missing values (row 0 of every embedding table).
UNKNOWN = 0


def _as_object(s: pd.Series) -> np.ndarray:
    """A categorical/string column as an object array with ``NaN`` for missing values."""
    values = s.astype(object).to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = np.nan
    return values


class FeatureEncoder:
    """Turns a DataFrame into (category indices, standardised numerics).

    ``category``, ``object`` and ``string`` columns are categorical, encoded by
    ``OrdinalEncoder``: the values seen at fit time get the indices ``1..K``
    (in sorted order); values unseen at fit time and missing values get the
    reserved index 0. Numeric and boolean columns are standardised by
    ``StandardScaler`` with the training mean and standard deviation
    (missing and infinite values are ignored when fitting and become 0, the
    training mean, when transforming; a constant column gets scale 1).

    Examples
    --------
    >>> import pandas as pd
    >>> from gbdt_pwiser.neural.encoding import FeatureEncoder
    >>> X = pd.DataFrame({"shop": pd.Categorical(["a", "b", "a"]), "price": [1.0, 2.0, 3.0]})
    >>> enc = FeatureEncoder().fit(X)
    >>> enc.cardinalities
    [3]
    >>> codes, num = enc.transform(pd.DataFrame({"shop": pd.Categorical(["b", "z", None]), "price": [2.0, None, 3.0]}))
    >>> codes[:, 0].tolist(), [round(float(v), 3) for v in num[:, 0]]
    ([2, 0, 0], [0.0, 0.0, 1.225])
    """

    def fit(self, X: pd.DataFrame) -> FeatureEncoder:
        """Learn the columns, categories and numeric statistics of ``X``."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        self.cat_cols_: list[Any] = []
        self.num_cols_: list[Any] = []
        types = pd.api.types
        for col in X.columns:
            dtype = X[col].dtype
            if isinstance(dtype, pd.CategoricalDtype) or types.is_object_dtype(dtype) or types.is_string_dtype(dtype):
                self.cat_cols_.append(col)
            elif types.is_bool_dtype(dtype) or types.is_numeric_dtype(dtype):
                self.num_cols_.append(col)
            else:
                raise TypeError(
                    f"column {col!r} has unsupported dtype {dtype}; use category, string or numeric columns"
                )
        if not self.cat_cols_ and not self.num_cols_:
            raise ValueError("X has no usable feature columns")
        self.ordinal_: OrdinalEncoder | None = None
        if self.cat_cols_:
            self.ordinal_ = OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1, dtype=np.float64
            )
            try:
                self.ordinal_.fit(self._categorical(X))
            except TypeError as exc:  # mixed strings and numbers in one object column
                raise TypeError(f"categorical columns must hold values of one kind: {exc}") from exc
        self.scaler_: StandardScaler | None = None
        if self.num_cols_:
            self.scaler_ = StandardScaler().fit(self._numeric(X))
            # an all-missing column: mean 0, scale 1 (so it transforms to 0)
            self.scaler_.mean_ = np.nan_to_num(self.scaler_.mean_, nan=0.0)
            self.scaler_.scale_ = np.where(np.isfinite(self.scaler_.scale_), self.scaler_.scale_, 1.0)
        return self

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes (categories + the reserved index 0) per categorical column."""
        if self.ordinal_ is None:
            return []
        return [sum(1 for c in cats if not pd.isna(c)) + 1 for cats in self.ordinal_.categories_]

    def _categorical(self, X: pd.DataFrame) -> np.ndarray:
        return np.column_stack([_as_object(X[c]) for c in self.cat_cols_])

    def _numeric(self, X: pd.DataFrame) -> np.ndarray:
        num = X[self.num_cols_].astype(np.float64).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        num[~np.isfinite(num)] = np.nan
        return num

    def transform(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(codes int64 (n, n_cat), numerics float32 (n, n_num))``."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        missing = [c for c in self.cat_cols_ + self.num_cols_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the training columns {missing}")
        n = len(X)
        if self.ordinal_ is None or n == 0:
            codes = np.zeros((n, len(self.cat_cols_)), dtype=np.int64)
        else:
            codes = self.ordinal_.transform(self._categorical(X)).astype(np.int64) + 1  # -1 -> UNKNOWN
        if self.scaler_ is None or n == 0:
            num = np.zeros((n, len(self.num_cols_)), dtype=np.float32)
        else:
            num = np.nan_to_num(self.scaler_.transform(self._numeric(X)), nan=0.0).astype(np.float32)
        return codes, num
