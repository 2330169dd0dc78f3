"""Input checks of the estimators' data: features (arrays, CSR, DataFrames with categories), eval sets.

Labels go through :func:`gbdt_pwiser.as_funnel`, weights and groups through
:mod:`gbdt_pwiser._validation`; what is here is specific to the estimator's
features (scikit-learn's ``validate_data`` plus the DataFrame/category rules).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import validate_data

from .._labels import as_funnel
from .._validation import check_device, check_no_inf, check_weight, group_codes

__all__ = [
    "NoGroupWarning",
    "align_categories",
    "check_X",
    "check_eval_set",
    "check_lengths",
    "check_monitored",
    "check_native_params",
    "check_sample_weight",
    "n_rows",
    "take",
    "warn_no_group",
]

# Keys that the estimator sets itself; ctr_params / cvr_params may not override them.
_RESERVED = frozenset(
    {
        "objective",
        "obj",
        "application",
        "app",
        "objective_type",
        "loss",
        "base_score",
        "init_score",
        "boost_from_average",
        "num_boost_round",
        "n_estimators",
        "num_iterations",
        "num_iteration",
        "num_trees",
        "num_round",
        "num_rounds",
        "nrounds",
        "n_iter",
        "max_iter",
        "early_stopping_rounds",
        "early_stopping_round",
        "early_stopping",
        "n_iter_no_change",
        "metric",
        "metrics",
        "metric_types",
        "eval_metric",
        "custom_metric",
        "feval",
    }
)


class NoGroupWarning(UserWarning):
    """``fit`` got no ``group`` while ``lam > 0``: every row is paired with every other.

    Usually a group was lost on the way (e.g. ``GridSearchCV.fit(..., groups=g)``
    with ``set_fit_request(group=True)``, which routes a parameter named
    ``group``, not ``groups``). Route the splitter's groups with
    ``set_fit_request(group="groups")``, pass ``group=`` to ``fit``, or pass
    ``group="all"`` to form one group on purpose.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from gbdt_pwiser import CTCVRClassifier
    >>> from gbdt_pwiser.sklearn import NoGroupWarning
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(100, 2)), rng.choice([0, 1, 2], size=100, p=[0.6, 0.3, 0.1])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = CTCVRClassifier(n_estimators=2, n_jobs=1).fit(X, y)
    >>> [w.category.__name__ for w in caught]
    ['NoGroupWarning']
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", NoGroupWarning)
    ...     _ = CTCVRClassifier(n_estimators=2, n_jobs=1).fit(X, y, group="all")  # on purpose: no warning
    """


def warn_no_group(lam: float) -> None:
    """The :class:`NoGroupWarning` of a fit without groups (stacklevel: the caller of ``fit``)."""
    warnings.warn(
        f"lam={lam} > 0 but no group reached fit(): all rows form one group for the PWiseR "
        'pairs. Pass group= to fit; with metadata routing, set_fit_request(group="groups") '
        "receives the splitter's groups (set_fit_request(group=True) routes a parameter named "
        '"group", not "groups"); pass group="all" to use one group on purpose.',
        NoGroupWarning,
        stacklevel=6,
    )


def check_native_params(ctr_params: Any, cvr_params: Any, device: str) -> None:
    """What the parameter constraints cannot say: reserved keys of ctr_params / cvr_params, the device's form.

    (What a device cannot do with a booster is refused in :mod:`gbdt_pwiser.engines.limits`.)
    """
    for name, extra in (("ctr_params", ctr_params), ("cvr_params", cvr_params)):
        bad = sorted(k for k in (extra or {}) if k in _RESERVED)
        if bad:
            raise ValueError(
                f"{name} may not set {bad}: the estimator sets the objective, rounds, "
                "starting margin and metrics (use n_estimators / early_stopping_rounds)"
            )
    check_device(device)


def check_monitored(ye: np.ndarray, which: str, ctr_stopping_metric: str, cvr_space: str) -> None:
    """The watched (last) eval set's labels ``ye`` must hold both classes of the watched label."""
    on_clicks = which == "ctr" and ctr_stopping_metric.startswith("auc_click")
    if which == "ctr":
        target = (ye >= 1) if on_clicks else (ye == 2)
    elif cvr_space == "clicked":
        target = ye[ye >= 1] == 2
    else:
        target = ye == 2
    if np.unique(target).size < 2:
        rows = "clicked rows" if which == "cvr" and cvr_space == "clicked" else "all rows"
        raise ValueError(
            f"the last eval_set has only one class of {'clicks' if on_clicks else 'conversions'} "
            f"({rows}); cannot early-stop the {which.upper()} booster on its AUC"
        )


def n_rows(X: Any) -> int:
    return int(X.shape[0])


def take(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of an array, CSR matrix or DataFrame."""
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


def _is_allowed_column(dtype: Any) -> bool:
    return isinstance(dtype, pd.CategoricalDtype) or (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    )


def align_categories(X: pd.DataFrame, categories: dict[Any, Any] | None) -> pd.DataFrame:
    """``X`` with each category column recoded to ``categories[column]`` where its own differ (unseen: NaN)."""
    if not categories:
        return X
    out = None
    for col, cats in categories.items():
        if not X[col].cat.categories.equals(cats):
            out = X.copy(deep=False) if out is None else out
            out[col] = pd.Categorical(X[col], categories=cats)
    return X if out is None else out


def check_X(est: Any, X: Any, reset: bool) -> Any:
    """Validate features; DataFrames keep their dtypes (categories), the rest becomes float/CSR.

    ``reset=True`` (fit) records ``n_features_in_``, ``feature_names_in_`` and the
    DataFrame layout on ``est`` (``categories_``: each category column's
    categories); ``reset=False`` (predict) checks against them and recodes a
    category column whose categories differ to the fitted ones, so the boosters
    see the categories they were trained on: a category seen only at
    prediction time becomes a missing value (LightGBM's own rule; XGBoost 3.2
    would refuse string ones, and both boosters need the fitted category list).
    """
    if isinstance(X, pd.DataFrame):
        validate_data(est, X, reset=reset, skip_check_array=True)
        bad = [c for c, t in X.dtypes.items() if not _is_allowed_column(t)]
        if bad:
            raise TypeError(
                f"columns {bad} have unsupported dtypes {[str(X[c].dtype) for c in bad]}; "
                "use numeric, bool or pandas 'category' columns"
            )
        cats = [c for c, t in X.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
        if X.shape[0] < 1:
            raise ValueError(f"X has 0 samples; a minimum of 1 is required by {type(est).__name__}")
        if X.shape[1] < 1:
            raise ValueError(f"X has 0 features; a minimum of 1 is required by {type(est).__name__}")
        check_no_inf(X, "X")
        if reset:
            est._columns = list(X.columns)
            est._categorical = cats
            est.categories_ = {c: X[c].cat.categories for c in cats}
        else:
            if getattr(est, "_columns", None) is None:
                return validate_data(
                    est,
                    X.to_numpy(dtype=np.float64, na_value=np.nan),
                    reset=False,
                    accept_sparse="csr",
                    dtype=[np.float64, np.float32],
                    ensure_all_finite="allow-nan",
                )
            if list(X.columns) != est._columns:
                raise ValueError(f"X has columns {list(X.columns)} but the model was fitted with {est._columns}")
            lost = [c for c in est._categorical if c not in cats]
            if lost:
                raise TypeError(f"columns {lost} were 'category' in fit but are {[str(X[c].dtype) for c in lost]} now")
            new = [c for c in cats if c not in est._categorical]
            if new:
                raise TypeError(f"columns {new} are 'category' now but were numeric in fit")
            return align_categories(X, getattr(est, "categories_", None))
        return X
    if not reset and getattr(est, "_categorical", None):
        raise TypeError(
            f"the model was fitted on a DataFrame with categorical columns {est._categorical}; "
            "pass a DataFrame with the same columns"
        )
    Xa = validate_data(
        est,
        X,
        reset=reset,
        accept_sparse="csr",
        dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan",
        ensure_min_samples=1,
    )
    if sp.issparse(Xa) and not isinstance(Xa, sp.spmatrix):
        Xa = sp.csr_matrix(Xa)  # scipy sparse arrays: the boosters take sparse matrices
    if reset:
        est._columns = None
        est._categorical = []
    elif est._columns is not None:  # fitted on a DataFrame without categories: restore names
        if sp.issparse(Xa):
            raise TypeError("the model was fitted on a DataFrame; pass a DataFrame or a dense array")
        Xa = pd.DataFrame(Xa, columns=est._columns)
    return Xa


def check_lengths(n: int, **arrays: Any) -> None:
    for name, arr in arrays.items():
        if arr is not None and np.shape(arr)[0] != n:
            raise ValueError(f"X has {n} rows but {name} has {np.shape(arr)[0]}")


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = check_weight(sample_weight, n, "sample_weight")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero")
    big = np.finfo(np.float32).max
    if w.max() > big:  # both boosters store weights as float32: inf there
        raise ValueError(
            f"sample_weight has values above {big:.3g}, beyond the float32 the boosters store weights in: rescale them"
        )
    return w


def check_eval_set(est: Any, eval_set: Any) -> list[tuple[Any, np.ndarray, np.ndarray | None]]:
    """``[(X, funnel labels, group codes or None), ...]`` from ``eval_set``."""
    if eval_set is None:
        return []
    if isinstance(eval_set, tuple) and len(eval_set) in (2, 3) and not isinstance(eval_set[0], tuple):
        raise TypeError("eval_set must be a list of (X, y) or (X, y, group) tuples")
    out = []
    for k, item in enumerate(eval_set):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise TypeError(f"eval_set[{k}] must be (X, y) or (X, y, group)")
        Xe = check_X(est, item[0], reset=False)
        ye = as_funnel(item[1], f"eval_set[{k}] y")
        ge = item[2] if len(item) == 3 else None
        ne = n_rows(Xe)
        if ye.shape[0] != ne:
            raise ValueError(f"eval_set[{k}]: X has {ne} rows but y has {ye.shape[0]}")
        ce = None if ge is None else group_codes(ge, ne, f"eval_set[{k}] group")
        out.append((Xe, ye, ce))
    return out
