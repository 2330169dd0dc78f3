"""Paired bootstrap over groups for AUC differences (is PWiseR − BCE noise or an effect?).

Resampling unit: the group (request, user), because rows of one request are
not independent. One resample draws ``G`` groups with replacement out of the
``G`` groups of the test set; every row of a drawn group enters the resample
as often as its group was drawn. Both models' AUCs are computed on the *same*
resample (paired), and the percentile interval of their difference is
reported.

Pure NumPy: a row drawn ``c`` times is an AUC weight ``c`` (exactly the AUC of
the materialised resample, ties counted one half, as scikit-learn's
``roc_auc_score``), so no resample is ever copied and every AUC is one pass
over block sums of the rows sorted once by score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._validation import check_int, check_real, group_codes

__all__ = ["group_bootstrap_draws", "weighted_auc", "paired_auc_difference"]

#: Largest resample × row block held at once (float64 cells, about 32 MB).
_BLOCK_CELLS = 4_000_000


def group_bootstrap_draws(n_groups: int, n_resamples: int, random_state: Any = 0) -> np.ndarray:
    """The drawn group indices, shape ``(n_resamples, n_groups)``.

    ``numpy.random.default_rng(random_state).integers(0, n_groups, (n_resamples, n_groups))``:
    the same seed gives the same resamples for every metric.
    """
    n_groups = check_int(n_groups, "n_groups", lo=1)
    n_resamples = check_int(n_resamples, "n_resamples", lo=1)
    return np.random.default_rng(random_state).integers(0, n_groups, size=(n_resamples, n_groups))


def weighted_auc(y_true: npt.ArrayLike, score: npt.ArrayLike, weights: npt.ArrayLike) -> np.ndarray:
    """ROC AUC of ``score`` against binary ``y_true`` for each row of ``weights`` (shape ``(B, n)``).

    Integer weights ``c`` are the AUC of the data with each row repeated ``c``
    times (ties count one half). NaN where a weight row leaves one class only.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser._bootstrap import weighted_auc
    >>> weighted_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], np.ones((1, 4))).tolist()
    [0.75]
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if s.shape != y.shape or w.shape[1] != y.size:
        raise ValueError(f"y_true, score and weights disagree in length: {y.size}, {s.size}, {w.shape[1]}")
    if y.size == 0:
        return np.full(w.shape[0], np.nan)
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # blocks of tied scores
    y_sorted = y[order]
    ws = w[:, order]
    pos = np.add.reduceat(np.where(y_sorted, ws, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(y_sorted, 0.0, ws), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = np.sum(pos * (neg_below + 0.5 * neg), axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def paired_auc_difference(
    y_true: npt.ArrayLike,
    score_a: npt.ArrayLike,
    score_b: npt.ArrayLike,
    group: npt.ArrayLike,
    *,
    rows: npt.ArrayLike | None = None,
    n_resamples: int = 200,
    confidence: float = 0.95,
    random_state: Any = 0,
) -> dict[str, float]:
    """AUC(a) − AUC(b) with a paired percentile bootstrap interval over groups.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary targets (e.g. conversions).
    score_a, score_b : array-like of shape (n,)
        The two models' scores on the same rows.
    group : array-like of shape (n,)
        Group id of each row (any hashable type); groups are the resampling unit.
    rows : array-like of bool, shape (n,), optional
        Rows the AUC is taken over (e.g. the clicked rows for a CVR AUC).
        Groups are still drawn among all groups, so every metric computed with
        the same ``random_state`` and ``group`` sees the same resamples.
    n_resamples : int, default 200
        Number of bootstrap resamples.
    confidence : float, default 0.95
        Level of the percentile interval.
    random_state : int or numpy.random.Generator, default 0
        Seed of ``group_bootstrap_draws``.

    Returns
    -------
    dict
        ``delta`` (the difference on the data as given), ``low`` and ``high``
        (percentile interval of the resampled differences), ``n_valid``
        (resamples where both classes were present; the others are skipped).

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser._bootstrap import paired_auc_difference
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(400) < 0.3
    >>> good, bad = y + rng.normal(0, 1, 400), rng.normal(0, 1, 400)
    >>> r = paired_auc_difference(y, good, bad, np.repeat(np.arange(40), 10), n_resamples=100)
    >>> bool(0 < r["low"] < r["delta"] < r["high"]), r["n_valid"]
    (True, 100)
    """
    y = np.asarray(y_true).astype(bool).ravel()
    a = np.asarray(score_a, dtype=np.float64).ravel()
    b = np.asarray(score_b, dtype=np.float64).ravel()
    n = y.size
    if a.size != n or b.size != n:
        raise ValueError(f"y_true has {n} rows but the scores have {a.size} and {b.size}")
    confidence = check_real(confidence, "confidence", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    codes = group_codes(group, n)
    mask = np.ones(n, dtype=bool) if rows is None else np.asarray(rows, dtype=bool).ravel()
    if mask.shape != (n,):
        raise ValueError(f"rows must be a boolean mask of shape ({n},), got {mask.shape}")
    y_m, a_m, b_m, c_m = y[mask], a[mask], b[mask], codes[mask]
    ones = np.ones((1, y_m.size))
    delta = float(weighted_auc(y_m, a_m, ones)[0] - weighted_auc(y_m, b_m, ones)[0])
    n_groups = int(codes.max()) + 1 if n else 1
    draws = group_bootstrap_draws(n_groups, n_resamples, random_state)
    diffs = np.empty(n_resamples)
    step = max(1, _BLOCK_CELLS // max(y_m.size, n_groups, 1))
    for s in range(0, n_resamples, step):
        d = draws[s : s + step]
        k = d.shape[0]
        counts = np.bincount((np.arange(k)[:, None] * n_groups + d).ravel(), minlength=k * n_groups)
        w = counts.reshape(k, n_groups)[:, c_m].astype(np.float64)
        diffs[s : s + k] = weighted_auc(y_m, a_m, w) - weighted_auc(y_m, b_m, w)
    valid = diffs[np.isfinite(diffs)]
    if valid.size == 0:
        low = high = float("nan")
    else:
        tail = 50.0 * (1.0 - confidence)
        low, high = (float(v) for v in np.percentile(valid, [tail, 100.0 - tail]))
    return {"delta": delta, "low": low, "high": high, "n_valid": int(valid.size)}
