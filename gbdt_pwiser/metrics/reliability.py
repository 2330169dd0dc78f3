"""Calibration metrics: predicted / observed, the reliability curve and the expected calibration error.

Re-exported by :mod:`gbdt_pwiser.metrics`, where :func:`~gbdt_pwiser.metrics.evaluate`
reports them for pCTR (against clicks) and pCTCVR (against conversions).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .._validation import check_int, check_weight
from ..calibration import Outcomes

__all__ = ["calibration_ratio", "reliability_curve", "expected_calibration_error"]


def calibration_ratio(y_true: npt.ArrayLike, prob: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float:
    """Predicted over observed: ``Σ w·p / Σ w·y`` (1 when the predicted rate matches the observed one).

    Above 1 the model over-predicts (a pCTCVR of 1.3× the observed
    conversions overbids by 30 %). NaN without a positive. The same ratio
    the estimator's ``calibration_.ratios`` report
    (:meth:`gbdt_pwiser.calibration.Outcomes.ratio`).

    Examples
    --------
    >>> from gbdt_pwiser.metrics import calibration_ratio
    >>> calibration_ratio([0, 1, 0, 0], [0.1, 0.6, 0.2, 0.1])
    1.0
    """
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    if p.size != y.size:
        raise ValueError(f"prob has {p.size} rows but y_true has {y.size}")
    return Outcomes.of(p, y, check_weight(sample_weight, y.size, "sample_weight")).ratio()


def reliability_curve(
    y_true: npt.ArrayLike, prob: npt.ArrayLike, n_bins: int = 10, sample_weight: npt.ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean prediction, observed rate and weight of each of ``n_bins`` equal-weight bins of the sorted predictions.

    Equal-weight (quantile) bins, not equal-width ones: click and
    conversion rates are a few per cent or less, so equal-width bins of
    [0, 1] would put nearly every row in the first. A calibrated model's
    points lie on the diagonal (the reliability plot).

    Examples
    --------
    >>> from gbdt_pwiser.metrics import reliability_curve
    >>> mean_p, rate, w = reliability_curve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> mean_p.round(2).tolist(), rate.tolist(), w.tolist()
    ([0.15, 0.8], [0.0, 1.0], [2.0, 2.0])
    """
    n_bins = check_int(n_bins, "n_bins", lo=1)
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    if p.size != y.size:
        raise ValueError(f"prob has {p.size} rows but y_true has {y.size}")
    w = np.ones(y.size) if sample_weight is None else check_weight(sample_weight, y.size, "sample_weight")
    order = np.argsort(p, kind="stable")
    before = np.cumsum(w[order]) - w[order]  # weight of the rows before each one
    total = float(w.sum())
    b = np.minimum((before / total * n_bins).astype(np.int64), n_bins - 1) if total > 0 else np.zeros(y.size, int)
    ws = np.bincount(b, w[order], n_bins)
    keep = ws > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, w[order] * p[order], n_bins) / ws
        rate = np.bincount(b, w[order] * y[order], n_bins) / ws
    return mean_p[keep], rate[keep], ws[keep]


def expected_calibration_error(
    y_true: npt.ArrayLike, prob: npt.ArrayLike, n_bins: int = 10, sample_weight: npt.ArrayLike | None = None
) -> float:
    """Expected calibration error: the weighted mean of ``|mean prediction − observed rate|`` over the bins.

    The bins are those of :func:`reliability_curve` (``n_bins`` equal-weight
    bins of the sorted predictions). In units of the rate: an ECE of 0.002 on
    pCTR is 0.2 percentage points of click rate; compare it with the rate
    itself. NaN for no rows.

    Examples
    --------
    >>> from gbdt_pwiser.metrics import expected_calibration_error
    >>> round(expected_calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2), 4)
    0.175
    """
    mean_p, rate, w = reliability_curve(y_true, prob, n_bins, sample_weight)
    if not w.size:
        return float("nan")
    return float(np.sum(w * np.abs(mean_p - rate)) / np.sum(w))
