"""The ``AdLog`` type: features, funnel labels and group ids of an exposure log, row-aligned."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["AdLog"]


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
    weight : ndarray of shape (n,), float64, or None
        Per-row weights (``sample_weight`` of a fit), when the log has a
        weight column (:func:`load_log`'s ``weight=``); ``None`` otherwise.

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
    weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(self.X).__name__}")
        n = self.X.shape[0]
        y = np.asarray(self.y)
        group = np.asarray(self.group)
        if y.shape != (n,) or group.shape != (n,):
            raise ValueError(f"X, y and group must have the same number of rows: {n}, {y.shape}, {group.shape}")
        if self.truth is not None and self.truth.shape[0] != n:
            raise ValueError(f"truth has {self.truth.shape[0]} rows, X has {n}")
        if self.weight is not None:
            weight = np.asarray(self.weight, dtype=np.float64)
            if weight.shape != (n,):
                raise ValueError(f"weight has shape {weight.shape}, X has {n} rows")
            object.__setattr__(self, "weight", weight)
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
        return [str(c) for c, t in self.X.dtypes.items() if isinstance(t, pd.CategoricalDtype)]

    @property
    def numerical_columns(self) -> list[str]:
        """Names of the non-categorical columns of ``X``."""
        return [str(c) for c, t in self.X.dtypes.items() if not isinstance(t, pd.CategoricalDtype)]

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
        weight = None if self.weight is None else self.weight[idx]
        return AdLog(X=X, y=self.y[idx], group=self.group[idx], truth=truth, weight=weight)

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
        return AdLog(X=X, y=self.y, group=self.group, truth=self.truth, weight=self.weight)

    def to_frame(
        self,
        *,
        group_column: str | None = "search_id",
        click_column: str = "click",
        conversion_column: str = "conversion",
        weight_column: str = "weight",
    ) -> pd.DataFrame:
        """Return one DataFrame in the CSV layout: group column, ``X``, click, conversion (and weight, if any).

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
        if self.weight is not None:
            cols[weight_column] = self.weight
        return pd.DataFrame(cols, index=self.X.index)


def _int_codes_dtype(n_categories: int) -> type[np.signedinteger]:
    """Smallest signed integer dtype that holds category codes ``0..n_categories-1``."""
    for dt in (np.int8, np.int16, np.int32):
        if n_categories <= np.iinfo(dt).max:
            return dt
    return np.int64
