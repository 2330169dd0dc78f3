"""Input validation shared by every public entry point.

Everything that reaches a Numba kernel goes through here first, so a user
sees a ``ValueError``/``TypeError`` naming the problem instead of a Numba
typing error, a crash or NaN gradients.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "check_real",
    "check_int",
    "check_margin",
    "check_margin_matrix",
    "check_labels",
    "check_weight",
    "check_no_inf",
    "check_ctr_prob",
    "check_lam_margins",
    "check_pairs",
    "check_pair_loss",
    "check_device",
    "check_n_jobs",
    "check_random_state",
    "group_layout",
    "group_codes",
    "NoConversionWarning",
]

PAIR_LOSSES = ("squared_hinge", "logistic")


class NoConversionWarning(UserWarning):
    """Training labels hold no conversion (label 2), so the pairwise term is zero.

    Funnel labels are ``click + conversion``; labels that are only 0/1 are click
    labels, with which PWiseR reduces to plain BCE whatever ``lam`` is.
    """


DEVICES = ("cpu", "cuda")


def _to_numeric_array(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "to_numpy"):  # pandas objects
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.dtype.kind in "USOVMm":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex dtype {arr.dtype}")
    return arr


def check_margin(margin: npt.ArrayLike, name: str = "margin", finite: bool = True) -> np.ndarray:
    """Return the margins as a 1-D float32/float64 array (float32 is not copied).

    ``finite=False`` leaves the NaN/infinity check to the caller: the CPU kernels count non-finite
    margins as they read them, and the objective then raises :func:`non_finite_margin` (no pass of
    its own over the margins every round).
    """
    arr = _to_numeric_array(margin, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D raw scores of shape (n,), got shape {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    if finite and not np.all(np.isfinite(arr)):
        raise non_finite_margin(arr, name)
    return arr


def non_finite_margin(arr: np.ndarray, name: str) -> ValueError:
    """The error for 1-D margins ``arr`` that hold a NaN or an infinity (how many, and the first)."""
    bad = np.flatnonzero(~np.isfinite(arr))
    return ValueError(f"{name} contains {bad.size} NaN or infinite value(s) (first at index {int(bad[0])})")


def check_labels(y: npt.ArrayLike, n: int | None = None, name: str = "y") -> np.ndarray:
    """Return funnel labels in {0, 1, 2} as int8, rejecting anything else.

    One cast and one comparison over the labels on the happy path; the
    offending value is looked up only when the check fails. A ``(n, 2)``
    array (``[click, conversion]`` columns) gets an error that points to
    :func:`~gbdt_pwiser.funnel_label`.

    Examples
    --------
    >>> check_labels([0.0, 1.0, 2.0])
    array([0, 1, 2], dtype=int8)
    >>> check_labels([[1, 0], [1, 1]], name="DMatrix label")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: DMatrix label has 2 columns (shape (2, 2)); ... build it with funnel_label(click, conversion)
    """
    arr = _to_numeric_array(y, name)
    if arr.ndim == 2 and arr.shape[1] == 2:
        raise ValueError(
            f"{name} has 2 columns (shape {arr.shape}); PWiseR needs one funnel label column "
            "y = click + conversion in {0, 1, 2}: build it with funnel_label(click, conversion)"
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D funnel labels in {{0, 1, 2}}, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but margin has {n}")
    if arr.dtype.kind == "b":
        return arr.astype(np.int8)
    if arr.dtype.kind in "iu":
        # one pass: viewed as unsigned, negative values are huge
        unsigned = arr.view(arr.dtype.str.replace("i", "u")) if arr.dtype.kind == "i" else arr
        if not np.any(unsigned > 2):
            return arr.astype(np.int8, copy=False)
    else:  # float: NaN, inf, 0.5, -1 or 258 all fail "cast to int8, within 0..2, casts back exactly"
        with np.errstate(invalid="ignore", over="ignore"):
            lab = arr.astype(np.int8)
        if not np.any(lab.view(np.uint8) > 2) and np.array_equal(lab, arr):
            return lab
        if not np.all(np.isfinite(arr)):
            bad = np.flatnonzero(~np.isfinite(arr))
            raise ValueError(f"{name} contains {bad.size} NaN or infinite label(s) (first at index {int(bad[0])})")
        if np.any(arr != np.round(arr)):
            bad = np.flatnonzero(arr != np.round(arr))
            raise ValueError(
                f"{name} must be integral funnel labels in {{0, 1, 2}}; "
                f"found {arr[bad[0]].item()!r} at index {int(bad[0])}"
            )
    idx = np.flatnonzero((arr < 0) | (arr > 2))
    raise ValueError(
        f"{name} must be funnel labels in {{0, 1, 2}} (0 no click, 1 click-only, 2 conversion); "
        f"found {arr[idx[0]].item()!r} at index {int(idx[0])}"
    )


@overload
def check_weight(weight: None, n: int, name: str = ...) -> None: ...
@overload
def check_weight(weight: npt.ArrayLike, n: int, name: str = ...) -> np.ndarray: ...
def check_weight(weight: npt.ArrayLike | None, n: int, name: str = "weight") -> np.ndarray | None:
    """Return per-row weights as float64 (or None), rejecting negative/NaN values."""
    if weight is None:
        return None
    arr = _to_numeric_array(weight, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n,), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but margin has {n}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(f"{name} contains {bad.size} NaN or infinite value(s) (first at index {int(bad[0])})")
    if np.any(arr < 0):
        idx = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"{name} must be non-negative; found {float(arr[idx])!r} at index {idx}")
    return arr


def check_no_inf(X: Any, name: str = "X", columns: Sequence[Any] | None = None) -> None:
    """Features may hold NaN (missing) but not ±inf, which XGBoost refuses deep in its C++ code.

    ``X`` is a pandas DataFrame (its float columns are checked) or a 2-D
    array whose columns are named by ``columns`` (else numbered). A
    ``ValueError`` names ``name``, the column and the first row.

    Examples
    --------
    >>> import numpy as np
    >>> check_no_inf(np.array([[0.0, np.nan], [1.0, np.inf]]), "shard 'a.parquet'", ["u", "v"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: shard 'a.parquet': column 'v' contains 1 infinite value(s) (first at row 1); features take NaN ...
    """
    if hasattr(X, "dtypes"):
        import pandas as pd

        for c, t in X.dtypes.items():
            if pd.api.types.is_float_dtype(t):
                extension = isinstance(t, pd.api.extensions.ExtensionDtype)
                _raise_if_inf(
                    X[c].to_numpy(dtype=np.float64, na_value=np.nan) if extension else X[c].to_numpy(),
                    f"{name}: column {c!r}",
                )
        return
    arr = np.asarray(X)
    if arr.dtype.kind == "f" and arr.ndim == 2 and np.isinf(arr).any():
        for j in range(arr.shape[1]):
            _raise_if_inf(arr[:, j], f"{name}: column {columns[j] if columns is not None else j!r}")


def _raise_if_inf(v: np.ndarray, where: str) -> None:
    inf = np.isinf(v)
    if inf.any():
        rows = np.flatnonzero(inf)
        raise ValueError(
            f"{where} contains {rows.size} infinite value(s) (first at row {int(rows[0])}); "
            "features take NaN for missing values, not inf"
        )


def check_ctr_prob(ctr_prob: Any, n: int, name: str = "ctr_prob") -> np.ndarray:
    """pCTR per row as float64 in [0, 1], clipped away from 0 and 1 for the logs."""
    arr = check_margin(ctr_prob, name).astype(np.float64, copy=False)
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} rows but margin has {n}")
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"{name} must be probabilities in [0, 1]")
    return np.clip(arr, 1e-12, 1.0 - 1e-12)


def check_real(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the given interval (the one number check).

    ``TypeError`` for a non-number (or a bool), ``ValueError`` naming the interval otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    ok = np.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if not ok:
        raise ValueError(f"{name} must be {_interval_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def _interval_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is None and hi is None:
        return "a finite number"
    if hi is None:
        return f"a finite number {'>' if lo_open else '>='} {lo:g}"
    if lo is None:
        return f"a finite number {'<' if hi_open else '<='} {hi:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def check_int(value: Any, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as an int (NumPy integers accepted, bools not) inside ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        if hi is None:
            what = f"an integer >= {lo}"
        elif lo is None:
            what = f"an integer <= {hi}"
        else:
            what = f"an integer in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


def check_lam_margins(lam: Any, m1: Any, m2: Any) -> tuple[float, float, float]:
    """λ and the two margins of PWiseR, each a finite float >= 0."""
    return (
        check_real(lam, "lam", lo=0.0),
        check_real(m1, "margin_click_only", lo=0.0),
        check_real(m2, "margin_no_click", lo=0.0),
    )


def check_n_jobs(n_jobs: Any, name: str = "n_jobs") -> int | None:
    """``None``, ``-1`` (all cores) or a positive thread count; 0, bools and non-ints are rejected.

    Examples
    --------
    >>> check_n_jobs(None), check_n_jobs(-1), check_n_jobs(4)
    (None, -1, 4)
    >>> check_n_jobs(0)
    Traceback (most recent call last):
    ...
    ValueError: n_jobs must be None, -1 or a positive int, got 0
    """
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise ValueError(f"{name} must be None, -1 or a positive int, got {n_jobs!r}")
    if n_jobs == 0:  # negative values mean "all cores", as in the thread helper
        raise ValueError(f"{name} must be None, -1 or a positive int, got {n_jobs!r}")
    return int(n_jobs)


def check_pairs(pairs: Any) -> int:
    """Return 0 for exact mode (``"all"``) or the positive sample count k."""
    if isinstance(pairs, str):
        if pairs == "all":
            return 0
        raise ValueError(f'pairs must be "all" or a positive int, got {pairs!r}')
    if isinstance(pairs, bool) or not isinstance(pairs, numbers.Integral):
        raise TypeError(f'pairs must be "all" or a positive int, got {type(pairs).__name__}')
    if int(pairs) < 1:
        raise ValueError(f'pairs must be "all" or a positive int, got {pairs!r}')
    return int(pairs)


def check_pair_loss(pair_loss: Any) -> int:
    """Index of ``pair_loss`` in ``PAIR_LOSSES`` (the kernels' loss code)."""
    if pair_loss not in PAIR_LOSSES:
        raise ValueError(f"pair_loss must be one of {PAIR_LOSSES}, got {pair_loss!r}")
    return PAIR_LOSSES.index(pair_loss)


def check_device(device: Any) -> str:
    """``"cpu"``, ``"cuda"`` or ``"cuda:<ordinal>"``."""
    if not isinstance(device, str):
        raise TypeError(f'device must be "cpu" or "cuda", got {type(device).__name__}')
    base = device.split(":", 1)[0]
    if base not in DEVICES:
        raise ValueError(f'device must be "cpu" or "cuda" (optionally "cuda:<ordinal>"), got {device!r}')
    if ":" in device and not device.split(":", 1)[1].isdigit():
        raise ValueError(f"invalid device ordinal in {device!r}")
    return device


def check_random_state(random_state: Any) -> int:
    """A non-negative int seed (``None`` is 0; a NumPy generator draws one)."""
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(f"random_state must be None or an int, got {type(random_state).__name__}")
    if int(random_state) < 0:
        raise ValueError(f"random_state must be >= 0, got {random_state!r}")
    return int(random_state)


def _group_array(group: Any, n: int, name: str) -> np.ndarray:
    if hasattr(group, "to_numpy") and not isinstance(group, np.ndarray):
        group = group.to_numpy()
    arr = np.asarray(group)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D per-row group ids, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but margin has {n}")
    if arr.dtype.kind == "f" and np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN group ids")
    return arr


def _contiguous_ptr(arr: np.ndarray) -> np.ndarray | None:
    """Boundaries of the runs of equal numeric ids if every id forms one run, else None."""
    n = arr.shape[0]
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(arr[1:], arr[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    # runs are groups iff each id value appears in exactly one run: rising run ids (the usual
    # case) need one comparison, others a sort of the G run ids (np.sort, not np.unique: NumPy
    # 2.4's hash-based unique took ~100 ms for 80,000 int ids, 40x the sort)
    ids = arr[starts]
    if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
        ids = np.sort(ids)
        if np.any(ids[1:] == ids[:-1]):
            return None
    return np.append(starts, n).astype(np.int64)


def group_layout(group: Any, n: int, name: str = "group") -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """``(ptr, None, G)`` when the groups are contiguous runs, else ``(None, codes, G)``.

    Numeric ids that come grouped (the usual case: rows sorted by request) are
    handled in two vectorised passes without hashing or a sort over all rows.
    """
    arr = _group_array(group, n, name)
    if arr.dtype.kind in "iubf":
        ptr = _contiguous_ptr(arr)
        if ptr is not None:
            return ptr, None, ptr.size - 1
    codes = group_codes(arr, n, name)
    return None, codes, (int(codes.max()) + 1 if n else 0)


def group_codes(group: Any, n: int, name: str = "group") -> np.ndarray:
    """Map per-row group ids of any hashable type to int64 codes 0..G-1.

    Codes follow first appearance, so contiguous groups give non-decreasing codes.
    """
    arr = _group_array(group, n, name)
    if arr.dtype.kind in "iub":
        ptr = _contiguous_ptr(arr)
        if ptr is not None:  # contiguous integer ids: codes without hashing
            return np.repeat(np.arange(ptr.size - 1, dtype=np.int64), np.diff(ptr))
    import pandas as pd

    codes, _ = pd.factorize(arr, use_na_sentinel=True)
    if np.any(codes < 0):
        raise ValueError(f"{name} contains missing (NaN/None) group ids")
    return codes.astype(np.int64, copy=False)


def check_margin_matrix(margins: npt.ArrayLike, n_outputs: int = 2, name: str = "margins") -> np.ndarray:
    """Return ``(n, n_outputs)`` raw scores as a C-contiguous float32/float64 array (float32 kept).

    The multi-output twin of :func:`check_margin`: one column per output of a
    multi-output booster (e.g. ``[z, u]``, the CTR and CVR margins).
    """
    arr = _to_numeric_array(margins, name)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(
            f"{name} must be raw scores of shape (n, {n_outputs}) (one column per output), got shape {arr.shape}"
        )
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    arr = np.ascontiguousarray(arr)
    finite = np.isfinite(arr)
    if not np.all(finite):
        rows, cols = np.nonzero(~finite)
        raise ValueError(
            f"{name} contains {rows.size} NaN or infinite value(s) (first at row {int(rows[0])}, column {int(cols[0])})"
        )
    return arr
