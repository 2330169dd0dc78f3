"""Calibration of pCTR and pCTCVR: monotone maps fitted on held-out groups of the training data.

pCTCVR multiplies the bid, so predicted rates must match observed ones.
PWiseR's pair term, its margins and conversion weighting move pCTR away from
the click rate; the pCTCVR product inherits that distortion (it correlates
with pCVR), so each task gets its own map: ``f_ctr`` of pCTR and ``f_ctcvr``
of pCTR·pCVR. Calibrated predictions are

    pCTR' = f_ctr(pCTR),  pCTCVR' = min(f_ctcvr(pCTR·pCVR), pCTR'),  pCVR' = pCTCVR' / pCTR'

so ``predict_ctcvr == predict_ctr · predict_cvr`` still holds (pCVR' is 0 where pCTR' is).

The maps are fitted on the predictions of models that did not see the rows
they predict: cross-fitted by group (``calibration_cv=k``: k auxiliary fits,
each on the groups of k − 1 folds, predicting the last), or one group split
(``calibration_cv=f``: one fit on the groups outside a held-out share ``f``).
Folds come from a hash of the group id (:func:`gbdt_pwiser.datasets.split.group_fold`),
so every engine assigns them alike and none needs a global pass. Every
engine reduces the held-out predictions to :class:`Outcomes` — weighted sums
per bin of 0.01 in log-odds — so a billion rows cost 4,000 bins on the driver.

* ``isotonic``: pool-adjacent-violators on the bins, then linear
  interpolation through the centres of the pooled blocks — strictly
  increasing, so the map adds no ties and keeps every AUC (below the first and
  above the last centre it is flat).
* ``sigmoid``: Platt scaling on log-odds, ``σ(a·logit(p) + b)`` with ``a > 0``.

A fitted :class:`Calibrator` is plain numbers (knots, or ``a`` and ``b``):
saved in ``meta.json`` and applied without this package by ``numpy.interp``
or one sigmoid (docs/serving.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit

__all__ = ["BIN_WIDTH", "Calibrator", "MonotoneMap", "Outcomes", "calibrate"]

#: bin width in log-odds, and the range binned (predictions beyond it share the end bins)
BIN_WIDTH = 0.01
_LO, _HI = -20.0, 20.0
_N_BINS = round((_HI - _LO) / BIN_WIDTH)
METHODS = ("isotonic", "sigmoid")


@dataclass
class Outcomes:
    """Weighted sums per log-odds bin of predictions ``p`` and outcomes ``y``: ``Σw``, ``Σw·p``, ``Σw·y``."""

    w: np.ndarray
    wp: np.ndarray
    wy: np.ndarray

    @classmethod
    def empty(cls) -> Outcomes:
        return cls(np.zeros(_N_BINS), np.zeros(_N_BINS), np.zeros(_N_BINS))

    @classmethod
    def of(cls, p: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> Outcomes:
        """The sums of predictions ``p`` in (0, 1) with 0/1 outcomes ``y`` and weights ``w``."""
        p = np.asarray(p, dtype=np.float64)
        with np.errstate(divide="ignore"):
            b = np.floor((logit(np.clip(p, 1e-300, 1.0)) - _LO) / BIN_WIDTH)
        b = np.clip(np.nan_to_num(b, nan=0.0, posinf=_N_BINS - 1, neginf=0), 0, _N_BINS - 1).astype(np.int64)
        w = np.ones(p.size) if w is None else np.asarray(w, dtype=np.float64)
        yy = np.asarray(y, dtype=np.float64)
        return cls(np.bincount(b, w, _N_BINS), np.bincount(b, w * p, _N_BINS), np.bincount(b, w * yy, _N_BINS))

    def __add__(self, other: Outcomes) -> Outcomes:
        return Outcomes(self.w + other.w, self.wp + other.wp, self.wy + other.wy)

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean prediction, observed rate and weight of each non-empty bin."""
        keep = self.w > 0
        w = self.w[keep]
        return self.wp[keep] / w, self.wy[keep] / w, w

    def ratio(self) -> float:
        """Predicted over observed: ``Σw·p / Σw·y`` (1 for calibrated predictions)."""
        obs = self.wy.sum()
        return float(self.wp.sum() / obs) if obs > 0 else float("nan")


@dataclass
class MonotoneMap:
    """A non-decreasing map of probabilities: knots for ``numpy.interp`` (isotonic), or ``σ(a·logit(p) + b)``."""

    method: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, outcomes: Outcomes, method: str) -> MonotoneMap:
        px, py, pw = outcomes.points()
        if px.size == 0:
            raise ValueError("no held-out predictions to calibrate on")
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            fitted = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0).fit_transform(px, py, sample_weight=pw)
            # one knot per pooled block, at its weighted centre: strictly increasing, so no ties
            starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
            wsum = np.add.reduceat(pw, starts)
            return cls(method, x=np.add.reduceat(pw * px, starts) / wsum, y=fitted[starts])
        from sklearn.linear_model import LogisticRegression

        z = logit(np.clip(px, 1e-12, 1 - 1e-12)).reshape(-1, 1)
        pos = pw * py
        lr = LogisticRegression(C=1e6).fit(
            np.r_[z, z], np.r_[np.ones(z.shape[0]), np.zeros(z.shape[0])], sample_weight=np.r_[pos, pw - pos]
        )
        return cls(method, a=max(float(lr.coef_[0, 0]), 1e-6), b=float(lr.intercept_[0]))

    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        if self.x is None or self.y is None:
            raise ValueError("an isotonic MonotoneMap needs its knots x and y")
        return self.x, self.y

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(p, *self._knots())
        return expit(self.a * logit(np.clip(p, 1e-300, 1.0)) + self.b)

    def to_json(self) -> dict[str, Any]:
        if self.method == "isotonic":
            x, y = self._knots()
            return {"method": self.method, "x": x.tolist(), "y": y.tolist()}
        return {"method": self.method, "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MonotoneMap:
        if raw["method"] == "isotonic":
            return cls("isotonic", x=np.asarray(raw["x"], dtype=np.float64), y=np.asarray(raw["y"], dtype=np.float64))
        return cls(raw["method"], a=float(raw["a"]), b=float(raw["b"]))


@dataclass
class Calibrator:
    """The fitted calibration of a model (its ``calibration_`` attribute): one map per task.

    ``ratios`` are predicted/observed of the held-out predictions before
    calibration (``"ctr"``, ``"ctcvr"``): what the maps correct.
    """

    ctr: MonotoneMap
    ctcvr: MonotoneMap
    ratios: dict[str, float]

    def apply(self, pctr: np.ndarray, pcvr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated ``(pCTR, pCVR)`` (see the module docstring)."""
        c = self.ctr(pctr)
        t = np.minimum(self.ctcvr(pctr * pcvr), c)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(c > 0, t / np.where(c > 0, c, 1.0), 0.0)
        return c, np.clip(v, 0.0, 1.0)

    def to_json(self) -> dict[str, Any]:
        return {"ctr": self.ctr.to_json(), "ctcvr": self.ctcvr.to_json(), "ratios": self.ratios}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Calibrator:
        return cls(MonotoneMap.from_json(raw["ctr"]), MonotoneMap.from_json(raw["ctcvr"]), dict(raw["ratios"]))


def calibrate(ctr: Outcomes, ctcvr: Outcomes, method: str) -> Calibrator:
    """A :class:`Calibrator` from the held-out outcomes of clicks (pCTR) and conversions (pCTCVR)."""
    if method not in METHODS:
        raise ValueError(f"calibration must be one of {METHODS} or None, got {method!r}")
    return Calibrator(
        MonotoneMap.fit(ctr, method), MonotoneMap.fit(ctcvr, method), {"ctr": ctr.ratio(), "ctcvr": ctcvr.ratio()}
    )
